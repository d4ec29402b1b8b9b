//! Reading a device: bytes from any `AsyncRead` (a serial port, a pseudo-terminal, an in-memory
//! duplex in tests) through a sans-IO decoder, each frame stamped with when it was on the wire.
//!
//! The time model: a serial frame is stamped at the read time minus its transmission time at
//! the baud rate (8N1, 10 bits a byte), and minus the transmission time of whatever arrived
//! after it in the same read. So a card read when the shoe sent it is stamped then, not when
//! the operating system got round to handing the bytes over in a batch.
//!
//! [`Stamper`] is the sans-IO core (bytes and read instants in, stamped frames out);
//! [`read_frames`] is the thin async loop around it.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::model::{transmission_time, Decoded, Garbage, Stamp};

/// The largest read at once; frames are far shorter, so one read holds many.
const READ_CHUNK: usize = 4096;

/// What the reader made of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<T> {
    /// A whole frame, stamped with when its first byte was on the wire.
    Frame { frame: T, stamp: Stamp },
    /// Bytes skipped as garbage (counted and logged by the caller; reading goes on).
    Garbage { skipped: usize, reason: Garbage },
}

/// Running totals, for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub bytes: u64,
    pub frames: u64,
    pub garbage_events: u64,
    pub garbage_bytes: u64,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The device went away: end of file (a pseudo-terminal closed, a USB adapter unplugged).
    #[error("device closed (unplugged?)")]
    Closed,
    /// A read failed (EIO after an unplug, a reset adapter).
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The sans-IO core: feed it what each read returned and when; it gives stamped frames.
#[derive(Debug)]
pub struct Stamper<D> {
    decoder: D,
    buffer: BytesMut,
    baud: u32,
    /// 10 for 8N1, 11 with a parity bit.
    bits_per_byte: u32,
    stats: ReadStats,
}

impl<D, T> Stamper<D>
where
    D: Decoder<Item = Decoded<T>, Error = std::io::Error>,
{
    /// `baud` 0 means "not a serial line" (evdev, in-memory): frames get the read time as is.
    pub fn new(decoder: D, baud: u32) -> Self {
        Self::with_bits_per_byte(decoder, baud, 10)
    }

    /// For lines other than 8N1: 11 bits a byte with a parity bit (FEIG's default 8E1).
    pub fn with_bits_per_byte(decoder: D, baud: u32, bits_per_byte: u32) -> Self {
        Self {
            decoder,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            baud,
            bits_per_byte,
            stats: ReadStats::default(),
        }
    }

    /// Drops bytes buffered for a frame that will not be completed (a request/response
    /// protocol whose answer timed out): the next answer must not be glued onto them.
    /// Returns how many bytes were dropped; they count as garbage.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buffer.len();
        if n > 0 {
            self.buffer.clear();
            self.stats.garbage_events += 1;
            self.stats.garbage_bytes += n as u64;
        }
        n
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// Bytes `chunk` were returned by a read at `read_at`.
    pub fn push(&mut self, chunk: &[u8], read_at: Stamp) -> Vec<Output<T>> {
        self.stats.bytes += chunk.len() as u64;
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            match self.decoder.decode(&mut self.buffer) {
                Ok(Some(decoded)) => out.push(self.stamp(decoded, read_at)),
                Ok(None) => break,
                Err(err) => {
                    // Decoders report garbage as items; an error here is a decoder bug. Drop
                    // the buffer rather than loop on it, and count it as garbage.
                    tracing::warn!(error = %err, "decoder error; discarding buffered bytes");
                    let skipped = self.buffer.len();
                    self.buffer.clear();
                    out.push(self.garbage(skipped, Garbage::Malformed));
                    break;
                }
            }
        }
        out
    }

    /// The input ended (EOF or the device went away): whatever is left is a cut frame and is
    /// reported as garbage by the decoder, never as a frame.
    pub fn finish(&mut self, at: Stamp) -> Vec<Output<T>> {
        let mut out = Vec::new();
        loop {
            match self.decoder.decode_eof(&mut self.buffer) {
                Ok(Some(decoded)) => out.push(self.stamp(decoded, at)),
                Ok(None) => break,
                Err(_) => {
                    let skipped = self.buffer.len();
                    self.buffer.clear();
                    if skipped > 0 {
                        out.push(self.garbage(skipped, Garbage::Malformed));
                    }
                    break;
                }
            }
        }
        self.buffer.clear();
        out
    }

    fn garbage(&mut self, skipped: usize, reason: Garbage) -> Output<T> {
        self.stats.garbage_events += 1;
        self.stats.garbage_bytes += skipped as u64;
        Output::Garbage { skipped, reason }
    }

    fn stamp(&mut self, decoded: Decoded<T>, read_at: Stamp) -> Output<T> {
        match decoded {
            Decoded::Frame { frame, wire_len } => {
                self.stats.frames += 1;
                // Everything still buffered arrived after this frame, within the same read.
                let on_wire = transmission_time(wire_len + self.buffer.len(), self.baud)
                    .mul_f64(f64::from(self.bits_per_byte) / 10.0);
                Output::Frame {
                    frame,
                    stamp: read_at.earlier(on_wire),
                }
            }
            Decoded::Garbage { skipped, reason } => self.garbage(skipped, reason),
        }
    }
}

/// Reads `reader` until it closes, fails or `cancel` fires, handing every output to `sink`.
///
/// Returns `Ok(())` only on cancellation; a closed or failed device is an error, so the
/// supervisor marks it down and reopens it with backoff.
pub async fn read_frames<R, D, T>(
    mut reader: R,
    stamper: &mut Stamper<D>,
    cancel: &CancellationToken,
    mut sink: impl FnMut(Output<T>, &ReadStats),
) -> Result<(), ReadError>
where
    R: AsyncRead + Unpin,
    D: Decoder<Item = Decoded<T>, Error = std::io::Error>,
{
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => read,
            () = cancel.cancelled() => return Ok(()),
        };
        let at = Stamp::now();
        match read {
            Ok(0) => {
                for out in stamper.finish(at) {
                    sink(out, &stamper.stats());
                }
                return Err(ReadError::Closed);
            }
            Ok(n) => {
                for out in stamper.push(buf.get(..n).unwrap_or_default(), at) {
                    let stats = stamper.stats();
                    sink(out, &stats);
                }
            }
            Err(err) => {
                for out in stamper.finish(at) {
                    sink(out, &stamper.stats());
                }
                return Err(ReadError::Io(err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A test decoder: frames are bytes up to `\n`; `#` starts garbage up to the next `\n`.
    struct Lines;

    impl Decoder for Lines {
        type Item = Decoded<String>;
        type Error = std::io::Error;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
            let Some(end) = src.iter().position(|b| *b == b'\n') else {
                return Ok(None);
            };
            let line = src.split_to(end + 1);
            if line.first() == Some(&b'#') {
                return Ok(Some(Decoded::Garbage {
                    skipped: line.len(),
                    reason: Garbage::Malformed,
                }));
            }
            Ok(Some(Decoded::Frame {
                frame: String::from_utf8_lossy(&line[..end]).into_owned(),
                wire_len: line.len(),
            }))
        }

        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
            match self.decode(src)? {
                Some(item) => Ok(Some(item)),
                None if src.is_empty() => Ok(None),
                None => {
                    let skipped = src.len();
                    src.clear();
                    Ok(Some(Decoded::Garbage {
                        skipped,
                        reason: Garbage::TooLong,
                    }))
                }
            }
        }
    }

    #[test]
    fn frames_are_stamped_back_by_their_transmission_time() {
        let mut s = Stamper::new(Lines, 9600);
        let at = Stamp::now();
        // Two 10-byte frames in one read: the second ended at the read, the first 10 bytes
        // (10.4 ms at 9600 8N1) before it.
        let out = s.push(b"123456789\nabcdefghi\n", at);
        let stamps: Vec<u64> = out
            .iter()
            .map(|o| match o {
                Output::Frame { stamp, .. } => at.mono_ns - stamp.mono_ns,
                Output::Garbage { .. } => panic!("no garbage here"),
            })
            .collect();
        let ns = |bytes| transmission_time(bytes, 9600).as_nanos() as u64;
        assert_eq!(stamps, vec![ns(20), ns(10)]);
    }

    #[test]
    fn garbage_is_counted_and_reading_goes_on() {
        let mut s = Stamper::new(Lines, 0);
        let at = Stamp::now();
        let out = s.push(b"#junk\nok\n", at);
        assert_eq!(
            out,
            vec![
                Output::Garbage {
                    skipped: 6,
                    reason: Garbage::Malformed
                },
                Output::Frame {
                    frame: "ok".into(),
                    stamp: at
                }
            ]
        );
        assert_eq!(s.stats().garbage_bytes, 6);
        assert_eq!(s.stats().frames, 1);
    }

    #[test]
    fn a_frame_cut_by_a_disconnect_is_never_a_frame() {
        let mut s = Stamper::new(Lines, 9600);
        assert!(s.push(b"KH\nQ", Stamp::now()).len() == 1);
        let end = s.finish(Stamp::now());
        assert!(matches!(
            end.as_slice(),
            [Output::Garbage { skipped: 1, .. }]
        ));
    }

    #[tokio::test]
    async fn reads_an_in_memory_duplex_until_it_closes() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let cancel = CancellationToken::new();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(b"one\ntw").await.expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.write_all(b"o\n").await.expect("write");
        });
        let mut stamper = Stamper::new(Lines, 9600);
        let mut frames = Vec::new();
        let result = read_frames(rx, &mut stamper, &cancel, |out, _| {
            if let Output::Frame { frame, .. } = out {
                frames.push(frame);
            }
        })
        .await;
        writer.await.expect("writer");
        assert!(matches!(result, Err(ReadError::Closed)));
        assert_eq!(frames, vec!["one", "two"]);
    }
}
