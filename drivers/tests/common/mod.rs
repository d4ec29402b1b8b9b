//! Helpers shared by the codec tests.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use bytes::BytesMut;
use croupier_drivers::model::Decoded;
use tokio_util::codec::Decoder;

/// Feeds `bytes` in reads of the given sizes (cycled; all at once when empty), ends the input,
/// and returns everything decoded.
pub fn decode_split<D>(codec: &mut D, bytes: &[u8], reads: &[usize]) -> Vec<D::Item>
where
    D: Decoder<Error = std::io::Error>,
{
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = reads.iter().cycle();
    while !rest.is_empty() {
        let n = sizes
            .next()
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (now, later) = rest.split_at(n);
        buf.extend_from_slice(now);
        rest = later;
        while let Some(item) = codec.decode(&mut buf).expect("decoders never err") {
            out.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("decoders never err") {
        out.push(item);
    }
    assert!(buf.is_empty(), "decode_eof leaves nothing behind");
    out
}

/// Every item a decoder makes of `chunks` fed one after another, then EOF.
pub fn decode_chunks<D, T>(mut codec: D, chunks: &[&[u8]]) -> Vec<Decoded<T>>
where
    D: Decoder<Item = Decoded<T>, Error = std::io::Error>,
{
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(item) = codec.decode(&mut buf).expect("decoders never err") {
            out.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("decoders never err") {
        out.push(item);
    }
    out
}
