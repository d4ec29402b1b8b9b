//! Decode throughput of every device codec, beside a baseline (counting line ends in the same
//! bytes) measured in the same run. `cargo bench -p croupier-drivers --bench decode`.

use std::time::Instant;

use bytes::BytesMut;
use croupier_drivers::cards::CardLineCodec;
use croupier_drivers::feig::{inventory_request, ResponseCodec, SimulatedReader};
use croupier_drivers::model::{Decoded, TagUid};
use croupier_drivers::rfid::{AsciiUidCodec, UidOrder};
use croupier_drivers::simulator::Script;
use croupier_drivers::wheel::WheelCodec;
use croupier_drivers::DeviceRole;
use tokio_util::codec::Decoder;

const RUNS: usize = 31;
const TARGET_BYTES: usize = 4 << 20;

fn stream_of(role: DeviceRole) -> Vec<u8> {
    let mut out = Vec::new();
    for step in Script::new(role, 7) {
        out.extend_from_slice(&step.bytes);
        if out.len() >= TARGET_BYTES {
            break;
        }
    }
    out
}

fn feig_stream() -> Vec<u8> {
    let mut reader = SimulatedReader::new(0);
    for i in 0..6u64 {
        let uid = TagUid((0xE004_0150_0000_0000u64 | i).to_be_bytes());
        reader.place((i % 2) as u8 + 1, uid);
    }
    let request = inventory_request(0xFF, 0);
    let answer = reader.respond(&request);
    let mut out = Vec::new();
    while out.len() < TARGET_BYTES {
        out.extend_from_slice(&answer);
    }
    out
}

/// Decodes `data` in 4 KiB reads; returns (frames, seconds).
fn decode_all<D, T>(mut decoder: D, data: &[u8]) -> (u64, f64)
where
    D: Decoder<Item = Decoded<T>, Error = std::io::Error>,
{
    let start = Instant::now();
    let mut buf = BytesMut::with_capacity(8192);
    let mut frames = 0u64;
    for chunk in data.chunks(4096) {
        buf.extend_from_slice(chunk);
        while let Ok(Some(item)) = decoder.decode(&mut buf) {
            if matches!(item, Decoded::Frame { .. }) {
                frames += 1;
            }
        }
    }
    (frames, start.elapsed().as_secs_f64())
}

fn baseline(data: &[u8]) -> (u64, f64) {
    let start = Instant::now();
    let n = data.iter().filter(|b| **b == b'\n').count() as u64;
    (std::hint::black_box(n), start.elapsed().as_secs_f64())
}

fn report(name: &str, bytes: usize, mut run: impl FnMut() -> (u64, f64)) {
    let mut mbps = Vec::new();
    let mut fps = Vec::new();
    for _ in 0..RUNS {
        let (frames, secs) = run();
        mbps.push(bytes as f64 / secs / 1e6);
        fps.push(frames as f64 / secs);
    }
    // Throughput: the median, and the p99 of the slow side (the 1st percentile of rates).
    mbps.sort_by(f64::total_cmp);
    fps.sort_by(f64::total_cmp);
    let p = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<22} median {:>9.1} MB/s {:>12.0} frames/s   p99(slow) {:>9.1} MB/s",
        p(&mbps, 0.5),
        p(&fps, 0.5),
        p(&mbps, 0.01)
    );
}

fn main() {
    let wheel = stream_of(DeviceRole::Wheel);
    let shoe = stream_of(DeviceRole::Shoe);
    let rfid = stream_of(DeviceRole::Rfid);
    let feig = feig_stream();
    println!(
        "# {RUNS} runs of ~{} MiB each, 4 KiB reads",
        TARGET_BYTES >> 20
    );
    report("baseline (count LF)", wheel.len(), || baseline(&wheel));
    report("wheel (cammegh)", wheel.len(), || {
        decode_all(WheelCodec::default(), &wheel)
    });
    report("cards (default)", shoe.len(), || {
        decode_all(
            CardLineCodec::from_config("default", None, None, None).expect("codec"),
            &shoe,
        )
    });
    report("cards (regex)", shoe.len(), || {
        decode_all(
            CardLineCodec::from_config(
                "regex",
                Some("(?P<rank>10|[2-9AJQKT])(?P<suit>[SHDC])"),
                None,
                None,
            )
            .expect("codec"),
            &shoe,
        )
    });
    report("rfid ascii", rfid.len(), || {
        decode_all(AsciiUidCodec::new(UidOrder::MsbFirst), &rfid)
    });
    report("rfid feig responses", feig.len(), || {
        decode_all(ResponseCodec::new(), &feig)
    });
}
