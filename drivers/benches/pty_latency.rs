//! Input-to-observation latency over a real pseudo-terminal: a frame written to the master
//! until the decoder hands it over from the slave, read through tokio-serial like a serial
//! port. Also how far the frame's stamp lies from the write instant (the stamp subtracts the
//! 9600-baud transmission time, which a pseudo-terminal does not take).
//! `cargo bench -p croupier-drivers --bench pty_latency`.

use std::time::Duration;

use croupier_drivers::cards::CardLineCodec;
use croupier_drivers::model::monotonic_ns;
use croupier_drivers::pty::PtyPair;
use croupier_drivers::runner::{Output, Stamper};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialPortBuilderExt;

const SAMPLES: usize = 2000;

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let pair = PtyPair::open().expect("pty");
    let slave = pair.slave_path().to_owned();
    let mut master = pair.into_master().expect("master");
    let mut port = tokio_serial::new(slave.to_string_lossy(), 9600)
        .open_native_async()
        .expect("open slave");
    let mut stamper = Stamper::new(
        CardLineCodec::from_config("default", None, None, None).expect("codec"),
        9600,
    );
    let mut latency_us = Vec::with_capacity(SAMPLES);
    let mut stamp_offset_us = Vec::with_capacity(SAMPLES);
    let mut buf = [0u8; 256];
    for i in 0..SAMPLES {
        let line: &[u8] = if i % 2 == 0 { b"KH\r\n" } else { b"TD\r\n" };
        let written = monotonic_ns();
        master.write_all(line).await.expect("write");
        let mut got = None;
        while got.is_none() {
            let n = port.read(&mut buf).await.expect("read");
            let now = croupier_drivers::model::Stamp::now();
            for out in stamper.push(&buf[..n], now) {
                if let Output::Frame { stamp, .. } = out {
                    got = Some((monotonic_ns(), stamp.mono_ns));
                }
            }
        }
        let (decoded, stamped) = got.expect("frame");
        latency_us.push((decoded - written) as f64 / 1e3);
        stamp_offset_us.push((stamped as f64 - written as f64) / 1e3);
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    println!("# {SAMPLES} card lines over a pseudo-terminal, tokio current-thread runtime");
    println!(
        "write -> decoded observation   p50 {:8.1} us   p99 {:8.1} us",
        pct(&mut latency_us, 0.5),
        pct(&mut latency_us, 0.99)
    );
    println!(
        "stamp - write instant          p50 {:8.1} us   p99 {:8.1} us   (4 bytes at 9600 8N1 = 4167 us on a real line)",
        pct(&mut stamp_offset_us, 0.5),
        pct(&mut stamp_offset_us, 0.99)
    );
}
