//! Shared by the targets: feed the input to a decoder in reads whose sizes come from the
//! input itself, and check that every byte is accounted for as a frame or as garbage.

use bytes::BytesMut;
use croupier_drivers::model::Decoded;
use tokio_util::codec::Decoder;

pub fn check<D, T>(mut decoder: D, data: &[u8])
where
    D: Decoder<Item = Decoded<T>, Error = std::io::Error>,
{
    let Some((&split_seed, input)) = data.split_first() else {
        return;
    };
    let mut buf = BytesMut::new();
    let mut accounted = 0usize;
    let mut fed = 0usize;
    let mut step = usize::from(split_seed % 17) + 1;
    for chunk in input.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        while let Some(item) = decoder
            .decode(&mut buf)
            .expect("decoders never fail on input")
        {
            accounted += consumed(&item);
        }
        step = step % 7 + 1;
    }
    while let Some(item) = decoder
        .decode_eof(&mut buf)
        .expect("decoders never fail at EOF")
    {
        accounted += consumed(&item);
    }
    assert!(
        accounted <= fed,
        "more bytes accounted ({accounted}) than fed ({fed})"
    );
}

fn consumed<T>(item: &Decoded<T>) -> usize {
    match item {
        Decoded::Frame { wire_len, .. } => *wire_len,
        Decoded::Garbage { skipped, .. } => *skipped,
    }
}
