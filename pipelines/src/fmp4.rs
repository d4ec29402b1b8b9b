//! Cuts the LL-HLS fallback's fragmented MP4 into the files the playlist serves.
//!
//! The encoder's output reaches Croupier through GStreamer's
//! `mp4mux fragment-duration=500 streamable=true` and an `appsink`, as a plain byte stream: the
//! buffers are split wherever GStreamer likes, so one MP4 box may span several buffers and one
//! buffer may hold several boxes. [`Fmp4Splitter`] is fed those bytes as they come
//! ([`Fmp4Splitter::push`]) and hands back each piece the moment its last byte arrives:
//!
//! - the **initialisation segment** ([`Fmp4Chunk::Init`], served as `init.mp4` and named by
//!   `EXT-X-MAP`): every box before the first `moof`, that is `ftyp` + `moov` and whatever else
//!   the muxer put there, with the video track's timescale (ticks per second) read from its
//!   `mdhd`. It is handed out when the first `moof` begins;
//! - each **media fragment** ([`Fmp4Chunk::Fragment`], one LL-HLS part): a `moof` and the `mdat`
//!   after it, with any `styp`, `sidx`, `prft` or `emsg` boxes just before the `moof` kept at its
//!   front. Its length, its start on the track's clock and whether it starts on a keyframe are
//!   read from the `moof`: that is what the playlist ([`crate::llhls`]) is told.
//!
//! The `mfra` index mp4mux appends at the end of the stream, and `free`/`skip` padding between
//! fragments, are read past and dropped. A new `ftyp` (or `moov`) after the fragments means the
//! muxer started over: a new `Init` is handed out before the fragments that use it.
//!
//! What GStreamer 1.22's mp4mux was seen to write with `fragment-duration=500` (H.264 from
//! x264enc, 25 and 30 frames/s, with and without B-frames):
//!
//! - `ftyp`, `moov` (with `mvex`/`mehd`/`trex`), then one `moof` + `mdat` per fragment, then an
//!   `mfra` at EOS when it writes to a file (not when it writes to a pipe);
//! - a fragment is closed before the frame that would take it past 500 ms, and before every
//!   keyframe. So fragments last at most 500 ms (15 frames = 500 ms at 30 frames/s, 12 frames =
//!   480 ms at 25), every keyframe starts a fragment, and the fragment before a keyframe may be
//!   shorter (5 frames when keyframes come every 50 frames at 30 frames/s);
//! - a fragment leaves mp4mux when the first frame of the next one reaches it, one frame interval
//!   after its end, and the last one at EOS;
//! - the first `tfdt` is 0 for a file from a non-live source, but the source's first timestamp
//!   from a live one (1 tick was seen): count from the first fragment, not from 0.
//!
//! This module reads and writes nothing itself (sans-IO). A stream it cannot understand, such as
//! a box over [`MAX_BOX_SIZE`], a box that claims to run to the end of the file, a fragment with
//! no initialisation segment before it, or a `moof` whose tables are cut short, is an
//! [`Fmp4Error`] that names the box. After an error the splitter refuses everything
//! ([`Fmp4Error::Stopped`]), and a new splitter cannot pick the stream up in the middle of a box:
//! the pipeline edge restarts the camera's muxer, starts a new splitter with
//! [`Fmp4Splitter::new`] on its output, and tells the playlist about the discontinuity.

use std::fmt;
use std::time::Duration;

/// The largest single box accepted (64 MiB); a bigger one is refused before anything is kept.
///
/// A half-second fragment of a studio camera is a few hundred kilobytes; 64 MiB leaves room for
/// several seconds of very high bitrate video in one `mdat`.
pub const MAX_BOX_SIZE: u64 = 64 * 1024 * 1024;

/// `sample_is_non_sync_sample` in an ISO/IEC 14496-12 sample-flags word.
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

/// An MP4 box type, its four-character code (`moof`, `mdat`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in &self.0 {
            if byte.is_ascii_graphic() || byte == b' ' {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

const FTYP: FourCc = FourCc(*b"ftyp");
const MOOV: FourCc = FourCc(*b"moov");
const TRAK: FourCc = FourCc(*b"trak");
const TKHD: FourCc = FourCc(*b"tkhd");
const MDIA: FourCc = FourCc(*b"mdia");
const MDHD: FourCc = FourCc(*b"mdhd");
const HDLR: FourCc = FourCc(*b"hdlr");
const MVEX: FourCc = FourCc(*b"mvex");
const TREX: FourCc = FourCc(*b"trex");
const MOOF: FourCc = FourCc(*b"moof");
const MFHD: FourCc = FourCc(*b"mfhd");
const TRAF: FourCc = FourCc(*b"traf");
const TFHD: FourCc = FourCc(*b"tfhd");
const TFDT: FourCc = FourCc(*b"tfdt");
const TRUN: FourCc = FourCc(*b"trun");
const MDAT: FourCc = FourCc(*b"mdat");
const MFRA: FourCc = FourCc(*b"mfra");
const FREE: FourCc = FourCc(*b"free");
const SKIP: FourCc = FourCc(*b"skip");
const STYP: FourCc = FourCc(*b"styp");
const SIDX: FourCc = FourCc(*b"sidx");
const SSIX: FourCc = FourCc(*b"ssix");
const PRFT: FourCc = FourCc(*b"prft");
const EMSG: FourCc = FourCc(*b"emsg");
/// The `hdlr` handler type of a video track.
const VIDE: [u8; 4] = *b"vide";

/// Boxes that belong to the fragment whose `moof` follows them.
fn is_fragment_prefix(kind: FourCc) -> bool {
    matches!(kind, STYP | SIDX | SSIX | PRFT | EMSG)
}

/// A piece of the stream, ready to be written and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fmp4Chunk {
    /// The initialisation segment (`EXT-X-MAP`): every box before the first `moof`.
    Init {
        /// `ftyp` + `moov` (and any other box before the first `moof`), as the muxer wrote them.
        bytes: Vec<u8>,
        /// Ticks per second of the first video track (else of the first track), from its `mdhd`.
        timescale: u32,
    },
    /// One media fragment, an LL-HLS part.
    Fragment(Fragment),
}

/// One media fragment: a `moof`, its `mdat`, and the `styp`/`sidx`/`prft`/`emsg` boxes that came
/// just before the `moof`. Timing and independence are those of the fragment's first track
/// fragment (`traf`), the video track in Croupier's streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The fragment's bytes, exactly as the muxer wrote them.
    pub bytes: Vec<u8>,
    /// `mfhd` sequence_number (mp4mux counts from 1).
    pub sequence: u32,
    /// `tfdt` baseMediaDecodeTime, in [`Fragment::timescale`] ticks; 0 when there is no `tfdt`.
    pub decode_time: u64,
    /// The sum of the sample durations, in [`Fragment::timescale`] ticks.
    pub duration_ticks: u64,
    /// [`Fragment::duration_ticks`] as time (rounded down to the nanosecond).
    pub duration: Duration,
    /// Number of samples (frames).
    pub samples: u32,
    /// The first sample is a sync sample (a keyframe): a player can start here.
    pub independent: bool,
    /// The track the timing was read from (`tfhd` track_ID).
    pub track_id: u32,
    /// Ticks per second of that track (its `mdhd`); the same as the `Init` timescale for a stream
    /// with one video track.
    pub timescale: u32,
}

/// A byte stream that is not the fragmented MP4 the splitter expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    #[error("a `{kind}` box of {size} bytes is over the 64 MiB bound; the muxer is not writing short fragments (mp4mux fragment-duration=500)")]
    BoxTooLarge { kind: FourCc, size: u64 },
    #[error("a `{kind}` box has size 0 (\"runs to the end of the file\"), which a live stream cannot have")]
    SizeToEnd { kind: FourCc },
    #[error("a `{kind}` box is malformed: {reason}")]
    BadBox { kind: FourCc, reason: &'static str },
    #[error("a `moof` came before any `moov`: the stream has no initialisation segment; restart the pipeline so that the muxer starts with ftyp + moov")]
    FragmentBeforeInit,
    #[error("media data (`mdat`) came before any `moof`: the stream is not fragmented; set mp4mux fragment-duration=500")]
    NotFragmented,
    #[error("a fragment of track {track_id}, which the initialisation segment does not describe")]
    UnknownTrack { track_id: u32 },
    #[error("the splitter stopped at an earlier error; restart the pipeline with a new splitter")]
    Stopped,
}

fn bad(kind: FourCc, reason: &'static str) -> Fmp4Error {
    Fmp4Error::BadBox { kind, reason }
}

/// Where the splitter is in the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Collecting the initialisation segment, until the first `moof`.
    #[default]
    Init,
    /// Between fragments: collecting prefix boxes until a `moof`.
    AwaitMoof,
    /// A `moof` has been read; its `mdat` completes the fragment.
    AwaitMdat,
    /// An error was returned; only a new splitter goes on.
    Failed,
}

/// The top-level box being read.
#[derive(Debug)]
struct OpenBox {
    kind: FourCc,
    /// Where the box starts in `piece` (when kept).
    start: usize,
    header_len: usize,
    /// Bytes still to come.
    remaining: u64,
    /// Whether the box's bytes go into the piece (else they are read past).
    keep: bool,
}

#[derive(Debug, Clone, Copy)]
struct BoxHeader {
    kind: FourCc,
    size: u64,
    header_len: usize,
}

/// What the initialisation segment says about a track.
#[derive(Debug, Clone, Copy)]
struct Track {
    id: u32,
    timescale: u32,
    video: bool,
}

/// A track's fragment defaults (`moov/mvex/trex`).
#[derive(Debug, Clone, Copy)]
struct Trex {
    track_id: u32,
    default_sample_duration: u32,
    default_sample_flags: u32,
}

/// The parsed `moov`.
#[derive(Debug, Clone)]
struct Movie {
    tracks: Vec<Track>,
    trex: Vec<Trex>,
    /// The first video track's timescale, else the first track's.
    timescale: u32,
}

/// The parsed `moof`, waiting for its `mdat`.
#[derive(Debug, Clone, Copy)]
struct MoofInfo {
    sequence: u32,
    decode_time: u64,
    duration_ticks: u64,
    samples: u32,
    independent: bool,
    track_id: u32,
    timescale: u32,
}

/// Splits a fragmented MP4 byte stream into its initialisation segment and media fragments.
///
/// Feed it every byte of one muxer's output, in order, with [`Fmp4Splitter::push`]. After an
/// error it must be replaced ([`Fmp4Splitter::new`]) along with the stream it was reading.
#[derive(Debug, Default)]
pub struct Fmp4Splitter {
    phase: Phase,
    /// The header of the next box, while it is incomplete (8 bytes, 16 with a largesize).
    head: [u8; 16],
    head_len: usize,
    current: Option<OpenBox>,
    /// The piece being assembled: the init boxes, or a fragment's boxes.
    piece: Vec<u8>,
    /// While collecting the init segment: where a run of fragment-prefix boxes (`styp`, ...)
    /// began in `piece`; they go to the first fragment if a `moof` follows them.
    prefix_start: Option<usize>,
    movie: Option<Movie>,
    moof: Option<MoofInfo>,
}

impl Fmp4Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes as they come; returns every piece completed by them, in order.
    ///
    /// On an error, the pieces completed earlier in the same call are dropped with it, and every
    /// later call answers [`Fmp4Error::Stopped`]: restart the stream and the splitter.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Fmp4Chunk>, Fmp4Error> {
        if self.phase == Phase::Failed {
            return Err(Fmp4Error::Stopped);
        }
        let mut out = Vec::new();
        match self.consume(bytes, &mut out) {
            Ok(()) => Ok(out),
            Err(err) => {
                *self = Self {
                    phase: Phase::Failed,
                    ..Self::default()
                };
                Err(err)
            }
        }
    }

    /// Bytes held and not handed out yet: the unfinished box (header included) and the finished
    /// boxes of the piece it belongs to. Bytes that are read past (`mfra`) are not held.
    pub fn pending(&self) -> usize {
        self.piece.len() + self.head_len
    }

    fn consume(&mut self, mut input: &[u8], out: &mut Vec<Fmp4Chunk>) -> Result<(), Fmp4Error> {
        while !input.is_empty() {
            if let Some(open) = &mut self.current {
                let take = usize::try_from(open.remaining)
                    .map_or(input.len(), |remaining| remaining.min(input.len()));
                let (now, rest) = input.split_at(take);
                if open.keep {
                    self.piece.extend_from_slice(now);
                }
                open.remaining -= now.len() as u64;
                input = rest;
                if open.remaining == 0 {
                    if let Some(done) = self.current.take() {
                        self.finish_box(&done, out)?;
                    }
                }
            } else {
                let want = if self.head_len < 8 { 8 } else { 16 };
                let take = (want - self.head_len).min(input.len());
                let (now, rest) = input.split_at(take);
                self.head[self.head_len..self.head_len + take].copy_from_slice(now);
                self.head_len += take;
                input = rest;
                if let Some(header) = self.header()? {
                    self.start_box(header, out)?;
                }
            }
        }
        Ok(())
    }

    /// The next box's header, once all of it is here.
    fn header(&self) -> Result<Option<BoxHeader>, Fmp4Error> {
        if self.head_len < 8 {
            return Ok(None);
        }
        let [s0, s1, s2, s3, k0, k1, k2, k3, l0, l1, l2, l3, l4, l5, l6, l7] = self.head;
        let kind = FourCc([k0, k1, k2, k3]);
        let (size, header_len) = match u32::from_be_bytes([s0, s1, s2, s3]) {
            0 => return Err(Fmp4Error::SizeToEnd { kind }),
            1 if self.head_len < 16 => return Ok(None),
            1 => (u64::from_be_bytes([l0, l1, l2, l3, l4, l5, l6, l7]), 16),
            size => (u64::from(size), 8),
        };
        if size < header_len as u64 {
            return Err(bad(kind, "its size is smaller than its header"));
        }
        if size > MAX_BOX_SIZE {
            return Err(Fmp4Error::BoxTooLarge { kind, size });
        }
        Ok(Some(BoxHeader {
            kind,
            size,
            header_len,
        }))
    }

    /// A top-level box begins: decide where it belongs.
    fn start_box(&mut self, header: BoxHeader, out: &mut Vec<Fmp4Chunk>) -> Result<(), Fmp4Error> {
        let kind = header.kind;
        let keep = match self.phase {
            Phase::Init => match kind {
                MOOF => {
                    self.emit_init(out)?;
                    self.phase = Phase::AwaitMoof;
                    true
                }
                MDAT => return Err(Fmp4Error::NotFragmented),
                _ => {
                    if is_fragment_prefix(kind) {
                        self.prefix_start.get_or_insert(self.piece.len());
                    } else {
                        self.prefix_start = None;
                    }
                    true
                }
            },
            Phase::AwaitMoof => match kind {
                MOOF => true,
                MDAT => return Err(bad(kind, "media data without a moof before it")),
                FTYP | MOOV => {
                    self.start_over();
                    true
                }
                MFRA | FREE | SKIP => false,
                _ => true,
            },
            Phase::AwaitMdat => match kind {
                MOOF => return Err(bad(kind, "a second moof before the first one's mdat")),
                // The muxer started over before the mdat: the unfinished fragment is dropped.
                FTYP | MOOV => {
                    self.start_over();
                    true
                }
                // Anything between a moof and its mdat stays: the moof's data offsets count it.
                _ => true,
            },
            Phase::Failed => return Err(Fmp4Error::Stopped),
        };
        let start = self.piece.len();
        if keep {
            self.piece
                .extend_from_slice(&self.head[..header.header_len]);
        }
        self.head_len = 0;
        let open = OpenBox {
            kind,
            start,
            header_len: header.header_len,
            remaining: header.size - header.header_len as u64,
            keep,
        };
        if open.remaining == 0 {
            self.finish_box(&open, out)
        } else {
            self.current = Some(open);
            Ok(())
        }
    }

    /// The muxer started over (say a pipeline restart feeding the same appsink): what is held
    /// is dropped and a new initialisation segment begins, to be handed out before the fragments
    /// that use it.
    fn start_over(&mut self) {
        self.piece.clear();
        self.prefix_start = None;
        self.movie = None;
        self.moof = None;
        self.phase = Phase::Init;
    }

    /// A top-level box is complete.
    fn finish_box(&mut self, open: &OpenBox, out: &mut Vec<Fmp4Chunk>) -> Result<(), Fmp4Error> {
        if !open.keep {
            return Ok(());
        }
        let payload = self
            .piece
            .get(open.start + open.header_len..)
            .unwrap_or_default();
        match (self.phase, open.kind) {
            (Phase::Init, MOOV) => {
                if self.movie.is_some() {
                    return Err(bad(MOOV, "a second moov before the first fragment"));
                }
                self.movie = Some(parse_moov(payload)?);
            }
            (Phase::AwaitMoof, MOOF) => {
                let Some(movie) = &self.movie else {
                    return Err(Fmp4Error::FragmentBeforeInit);
                };
                self.moof = Some(parse_moof(payload, movie)?);
                self.phase = Phase::AwaitMdat;
            }
            (Phase::AwaitMdat, MDAT) => {
                let Some(moof) = self.moof.take() else {
                    return Err(bad(MDAT, "media data without a moof before it"));
                };
                let bytes = std::mem::take(&mut self.piece);
                out.push(Fmp4Chunk::Fragment(Fragment {
                    bytes,
                    sequence: moof.sequence,
                    decode_time: moof.decode_time,
                    duration_ticks: moof.duration_ticks,
                    duration: ticks_to_duration(moof.duration_ticks, moof.timescale),
                    samples: moof.samples,
                    independent: moof.independent,
                    track_id: moof.track_id,
                    timescale: moof.timescale,
                }));
                self.phase = Phase::AwaitMoof;
            }
            _ => {}
        }
        Ok(())
    }

    /// The first `moof` has begun: everything before it (but a run of prefix boxes just before
    /// it) is the initialisation segment.
    fn emit_init(&mut self, out: &mut Vec<Fmp4Chunk>) -> Result<(), Fmp4Error> {
        let Some(movie) = &self.movie else {
            return Err(Fmp4Error::FragmentBeforeInit);
        };
        let cut = self.prefix_start.take().unwrap_or(self.piece.len());
        let prefix = self.piece.split_off(cut.min(self.piece.len()));
        let bytes = std::mem::replace(&mut self.piece, prefix);
        out.push(Fmp4Chunk::Init {
            bytes,
            timescale: movie.timescale,
        });
        Ok(())
    }
}

/// `ticks / timescale` as time, rounded down to the nanosecond.
fn ticks_to_duration(ticks: u64, timescale: u32) -> Duration {
    let timescale = u64::from(timescale);
    if timescale == 0 {
        return Duration::ZERO;
    }
    // The remainder is below 2^32, so the product stays below 2^62.
    let nanos = ticks % timescale * 1_000_000_000 / timescale;
    Duration::from_secs(ticks / timescale)
        .checked_add(Duration::from_nanos(nanos))
        .unwrap_or(Duration::MAX)
}

/// A bounds-checked big-endian reader over one box's payload.
#[derive(Debug)]
struct Reader<'a> {
    kind: FourCc,
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(kind: FourCc, data: &'a [u8]) -> Self {
        Reader { kind, data }
    }

    fn truncated(&self) -> Fmp4Error {
        bad(self.kind, "it ends before its fields do")
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fmp4Error> {
        let (head, rest) = self
            .data
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated())?;
        self.data = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, Fmp4Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Fmp4Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn skip(&mut self, n: usize) -> Result<(), Fmp4Error> {
        match self.data.get(n..) {
            Some(rest) => {
                self.data = rest;
                Ok(())
            }
            None => Err(self.truncated()),
        }
    }

    /// A full box's version and flags.
    fn version_flags(&mut self) -> Result<(u8, u32), Fmp4Error> {
        let word = self.u32()?;
        Ok(((word >> 24) as u8, word & 0x00ff_ffff))
    }

    fn remaining(&self) -> usize {
        self.data.len()
    }
}

/// The child boxes of a container box's payload, each as (type, payload).
fn children(parent: FourCc, mut data: &[u8]) -> Result<Vec<(FourCc, &[u8])>, Fmp4Error> {
    let mut found = Vec::new();
    while !data.is_empty() {
        let mut reader = Reader::new(parent, data);
        let (size32, kind) = match (reader.u32(), reader.array::<4>()) {
            (Ok(size), Ok(kind)) => (size, FourCc(kind)),
            _ => return Err(bad(parent, "a child box's header is cut off")),
        };
        let (size, header_len) = match size32 {
            0 => return Err(bad(kind, "size 0 inside another box")),
            1 => (
                reader
                    .u64()
                    .map_err(|_| bad(parent, "a child box's header is cut off"))?,
                16,
            ),
            size => (u64::from(size), 8),
        };
        if size < header_len as u64 {
            return Err(bad(kind, "its size is smaller than its header"));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|&size| size <= data.len())
            .ok_or_else(|| bad(kind, "it runs past the end of the box that holds it"))?;
        let (child, rest) = data.split_at(size);
        found.push((kind, child.get(header_len..).unwrap_or_default()));
        data = rest;
    }
    Ok(found)
}

fn child<'a>(boxes: &[(FourCc, &'a [u8])], kind: FourCc) -> Option<&'a [u8]> {
    boxes
        .iter()
        .find(|(found, _)| *found == kind)
        .map(|(_, payload)| *payload)
}

fn parse_moov(payload: &[u8]) -> Result<Movie, Fmp4Error> {
    let boxes = children(MOOV, payload)?;
    let mut tracks = Vec::new();
    for (kind, trak) in &boxes {
        if *kind == TRAK {
            tracks.push(parse_trak(trak)?);
        }
    }
    let mut trex = Vec::new();
    if let Some(mvex) = child(&boxes, MVEX) {
        for (kind, payload) in children(MVEX, mvex)? {
            if kind == TREX {
                trex.push(parse_trex(payload)?);
            }
        }
    }
    let timescale = tracks
        .iter()
        .find(|track| track.video)
        .or_else(|| tracks.first())
        .map(|track| track.timescale)
        .ok_or_else(|| bad(MOOV, "it describes no track"))?;
    Ok(Movie {
        tracks,
        trex,
        timescale,
    })
}

fn parse_trak(payload: &[u8]) -> Result<Track, Fmp4Error> {
    let boxes = children(TRAK, payload)?;
    let tkhd = child(&boxes, TKHD).ok_or_else(|| bad(TRAK, "it has no tkhd"))?;
    let mut reader = Reader::new(TKHD, tkhd);
    let (version, _) = reader.version_flags()?;
    match version {
        0 => reader.skip(8)?,
        1 => reader.skip(16)?,
        _ => return Err(bad(TKHD, "unknown version")),
    }
    let id = reader.u32()?;

    let mdia = child(&boxes, MDIA).ok_or_else(|| bad(TRAK, "it has no mdia"))?;
    let mdia = children(MDIA, mdia)?;
    let mdhd = child(&mdia, MDHD).ok_or_else(|| bad(MDIA, "it has no mdhd"))?;
    let mut reader = Reader::new(MDHD, mdhd);
    let (version, _) = reader.version_flags()?;
    match version {
        0 => reader.skip(8)?,
        1 => reader.skip(16)?,
        _ => return Err(bad(MDHD, "unknown version")),
    }
    let timescale = reader.u32()?;
    if timescale == 0 {
        return Err(bad(MDHD, "its timescale is 0"));
    }
    let video = match child(&mdia, HDLR) {
        Some(hdlr) => {
            let mut reader = Reader::new(HDLR, hdlr);
            reader.skip(8)?; // version, flags, pre_defined
            reader.array::<4>()? == VIDE
        }
        None => false,
    };
    Ok(Track {
        id,
        timescale,
        video,
    })
}

fn parse_trex(payload: &[u8]) -> Result<Trex, Fmp4Error> {
    let mut reader = Reader::new(TREX, payload);
    reader.version_flags()?;
    let track_id = reader.u32()?;
    let _sample_description_index = reader.u32()?;
    let default_sample_duration = reader.u32()?;
    let _default_sample_size = reader.u32()?;
    let default_sample_flags = reader.u32()?;
    Ok(Trex {
        track_id,
        default_sample_duration,
        default_sample_flags,
    })
}

fn parse_moof(payload: &[u8], movie: &Movie) -> Result<MoofInfo, Fmp4Error> {
    let boxes = children(MOOF, payload)?;
    let mfhd = child(&boxes, MFHD).ok_or_else(|| bad(MOOF, "it has no mfhd"))?;
    let mut reader = Reader::new(MFHD, mfhd);
    reader.version_flags()?;
    let sequence = reader.u32()?;
    let traf = child(&boxes, TRAF).ok_or_else(|| bad(MOOF, "it has no traf"))?;
    let mut info = parse_traf(traf, movie)?;
    info.sequence = sequence;
    Ok(info)
}

/// Timing and independence of one track fragment.
fn parse_traf(payload: &[u8], movie: &Movie) -> Result<MoofInfo, Fmp4Error> {
    let boxes = children(TRAF, payload)?;
    let tfhd = child(&boxes, TFHD).ok_or_else(|| bad(TRAF, "it has no tfhd"))?;
    let mut reader = Reader::new(TFHD, tfhd);
    let (_, flags) = reader.version_flags()?;
    let track_id = reader.u32()?;
    if flags & 0x01 != 0 {
        let _base_data_offset = reader.u64()?;
    }
    if flags & 0x02 != 0 {
        let _sample_description_index = reader.u32()?;
    }
    let tfhd_duration = if flags & 0x08 != 0 {
        Some(reader.u32()?)
    } else {
        None
    };
    if flags & 0x10 != 0 {
        let _default_sample_size = reader.u32()?;
    }
    let tfhd_flags = if flags & 0x20 != 0 {
        Some(reader.u32()?)
    } else {
        None
    };

    let track = movie
        .tracks
        .iter()
        .find(|track| track.id == track_id)
        .ok_or(Fmp4Error::UnknownTrack { track_id })?;
    let trex = movie.trex.iter().find(|trex| trex.track_id == track_id);
    let default_duration = tfhd_duration.or(trex.map(|trex| trex.default_sample_duration));
    let default_flags = tfhd_flags.or(trex.map(|trex| trex.default_sample_flags));

    let decode_time = match child(&boxes, TFDT) {
        Some(tfdt) => {
            let mut reader = Reader::new(TFDT, tfdt);
            match reader.version_flags()? {
                (0, _) => u64::from(reader.u32()?),
                (1, _) => reader.u64()?,
                _ => return Err(bad(TFDT, "unknown version")),
            }
        }
        None => 0,
    };

    let mut samples: u32 = 0;
    let mut duration_ticks: u64 = 0;
    let mut first_flags: Option<u32> = None;
    for (kind, trun) in &boxes {
        if *kind != TRUN {
            continue;
        }
        let run = parse_trun(trun, default_duration, default_flags)?;
        samples = samples
            .checked_add(run.samples)
            .ok_or_else(|| bad(TRAF, "more than 2^32 samples"))?;
        duration_ticks = duration_ticks
            .checked_add(run.duration_ticks)
            .ok_or_else(|| bad(TRAF, "its duration overflows 64 bits"))?;
        if first_flags.is_none() {
            first_flags = run.first_flags;
        }
    }
    Ok(MoofInfo {
        sequence: 0,
        decode_time,
        duration_ticks,
        samples,
        independent: first_flags.is_some_and(|flags| flags & SAMPLE_IS_NON_SYNC == 0),
        track_id,
        timescale: track.timescale,
    })
}

#[derive(Debug)]
struct Run {
    samples: u32,
    duration_ticks: u64,
    /// The flags of the run's first sample; `None` for an empty run.
    first_flags: Option<u32>,
}

/// One `trun`, with the defaults (tfhd, else trex) for what it does not carry.
fn parse_trun(
    payload: &[u8],
    default_duration: Option<u32>,
    default_flags: Option<u32>,
) -> Result<Run, Fmp4Error> {
    let mut reader = Reader::new(TRUN, payload);
    let (_, flags) = reader.version_flags()?;
    let count = reader.u32()?;
    if flags & 0x001 != 0 {
        let _data_offset = reader.u32()?;
    }
    let first_sample_flags = if flags & 0x004 != 0 {
        Some(reader.u32()?)
    } else {
        None
    };
    let has_duration = flags & 0x100 != 0;
    let has_size = flags & 0x200 != 0;
    let has_flags = flags & 0x400 != 0;
    let has_cto = flags & 0x800 != 0;
    let per_sample = 4 * [has_duration, has_size, has_flags, has_cto]
        .iter()
        .filter(|present| **present)
        .count() as u64;
    // Checked before the loop, so a huge sample_count with nothing per sample costs nothing.
    if u64::from(count) * per_sample > reader.remaining() as u64 {
        return Err(bad(
            TRUN,
            "its sample table is shorter than its sample_count",
        ));
    }
    if count == 0 {
        return Ok(Run {
            samples: 0,
            duration_ticks: 0,
            first_flags: None,
        });
    }

    let mut duration_ticks: u64 = 0;
    let mut first_flags = first_sample_flags;
    if per_sample > 0 {
        for index in 0..count {
            if has_duration {
                duration_ticks += u64::from(reader.u32()?);
            }
            if has_size {
                reader.skip(4)?;
            }
            if has_flags {
                let sample_flags = reader.u32()?;
                if index == 0 && first_flags.is_none() {
                    first_flags = Some(sample_flags);
                }
            }
            if has_cto {
                reader.skip(4)?;
            }
        }
    }
    if !has_duration {
        let each = default_duration.ok_or_else(|| {
            bad(
                TRAF,
                "no sample duration: none in the trun, the tfhd or the moov's trex",
            )
        })?;
        duration_ticks = u64::from(count) * u64::from(each);
    }
    let first_flags = first_flags.or(default_flags).ok_or_else(|| {
        bad(
            TRAF,
            "no sample flags: none in the trun, the tfhd or the moov's trex",
        )
    })?;
    Ok(Run {
        samples: count,
        duration_ticks,
        first_flags: Some(first_flags),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // ---- box builders -------------------------------------------------------------------

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = (u32::try_from(payload.len()).unwrap() + 8)
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// The same box with size 1 and a 64-bit largesize.
    fn large(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = 1u32.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
        let mut body = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
        body.extend_from_slice(payload);
        bx(kind, &body)
    }

    fn words(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn ftyp() -> Vec<u8> {
        bx(b"ftyp", b"iso6\0\0\0\0iso6mp41")
    }

    fn mdhd(version: u8, timescale: u32) -> Vec<u8> {
        let times = if version == 1 { 16 } else { 8 };
        let mut body = vec![0u8; times];
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&vec![0u8; if version == 1 { 8 } else { 4 }]);
        body.extend_from_slice(&[0x55, 0xc4, 0, 0]); // language, pre_defined
        full(b"mdhd", version, 0, &body)
    }

    fn trak(id: u32, timescale: u32, handler: &[u8; 4], mdhd_version: u8) -> Vec<u8> {
        let mut tkhd = vec![0u8; 8];
        tkhd.extend_from_slice(&id.to_be_bytes());
        tkhd.extend_from_slice(&[0u8; 68]);
        let mut hdlr = vec![0u8; 4];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 13]);
        let mdia = [
            mdhd(mdhd_version, timescale),
            full(b"hdlr", 0, 0, &hdlr),
            bx(b"minf", &[]),
        ]
        .concat();
        bx(
            b"trak",
            &[full(b"tkhd", 0, 3, &tkhd), bx(b"mdia", &mdia)].concat(),
        )
    }

    fn trex(track: u32, duration: u32, flags: u32) -> Vec<u8> {
        full(b"trex", 0, 0, &words(&[track, 1, duration, 0, flags]))
    }

    /// One video track 1 at `timescale`, with the given trex defaults.
    fn moov(timescale: u32, trex_duration: u32, trex_flags: u32) -> Vec<u8> {
        bx(
            b"moov",
            &[
                full(b"mvhd", 0, 0, &[0u8; 96]),
                trak(1, timescale, b"vide", 0),
                bx(b"mvex", &trex(1, trex_duration, trex_flags)),
            ]
            .concat(),
        )
    }

    const SYNC: u32 = 0x0200_0000;
    const NON_SYNC: u32 = 0x0101_0000;

    #[derive(Default, Clone)]
    struct Tfhd {
        base_data_offset: Option<u64>,
        description: Option<u32>,
        duration: Option<u32>,
        size: Option<u32>,
        flags: Option<u32>,
    }

    fn tfhd(track: u32, t: &Tfhd) -> Vec<u8> {
        let mut flags = 0;
        let mut body = track.to_be_bytes().to_vec();
        if let Some(v) = t.base_data_offset {
            flags |= 0x01;
            body.extend_from_slice(&v.to_be_bytes());
        }
        for (bit, value) in [
            (0x02, t.description),
            (0x08, t.duration),
            (0x10, t.size),
            (0x20, t.flags),
        ] {
            if let Some(v) = value {
                flags |= bit;
                body.extend_from_slice(&v.to_be_bytes());
            }
        }
        full(b"tfhd", 0, flags | 0x02_0000, &body)
    }

    fn tfdt(version: u8, time: u64) -> Vec<u8> {
        if version == 1 {
            full(b"tfdt", 1, 0, &time.to_be_bytes())
        } else {
            full(b"tfdt", 0, 0, &u32::try_from(time).unwrap().to_be_bytes())
        }
    }

    /// A trun with the per-sample fields `flags` asks for; each sample is
    /// (duration, size, flags, composition offset).
    fn trun(flags: u32, first_flags: Option<u32>, samples: &[(u32, u32, u32, u32)]) -> Vec<u8> {
        let mut flags = flags;
        let mut body = u32::try_from(samples.len()).unwrap().to_be_bytes().to_vec();
        flags |= 0x001;
        body.extend_from_slice(&0u32.to_be_bytes()); // data offset, unchecked
        if let Some(f) = first_flags {
            flags |= 0x004;
            body.extend_from_slice(&f.to_be_bytes());
        }
        for &(duration, size, sample_flags, cto) in samples {
            for (bit, value) in [
                (0x100, duration),
                (0x200, size),
                (0x400, sample_flags),
                (0x800, cto),
            ] {
                if flags & bit != 0 {
                    body.extend_from_slice(&value.to_be_bytes());
                }
            }
        }
        full(b"trun", 0, flags, &body)
    }

    fn moof(sequence: u32, traf_children: &[Vec<u8>]) -> Vec<u8> {
        bx(
            b"moof",
            &[
                full(b"mfhd", 0, 0, &sequence.to_be_bytes()),
                bx(b"traf", &traf_children.concat()),
            ]
            .concat(),
        )
    }

    fn mdat(len: usize) -> Vec<u8> {
        bx(b"mdat", &vec![0xab; len])
    }

    /// Three samples of `each` ticks, the first with `first` flags, the others non-sync.
    fn plain_trun(each: u32, first: u32) -> Vec<u8> {
        trun(
            0x100 | 0x200 | 0x400,
            None,
            &[
                (each, 10, first, 0),
                (each, 10, NON_SYNC, 0),
                (each, 10, NON_SYNC, 0),
            ],
        )
    }

    // ---- helpers ------------------------------------------------------------------------

    fn push_all(
        splitter: &mut Fmp4Splitter,
        pieces: &[&[u8]],
    ) -> Result<Vec<Fmp4Chunk>, Fmp4Error> {
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(splitter.push(piece)?);
        }
        Ok(out)
    }

    fn split(bytes: &[u8]) -> Result<Vec<Fmp4Chunk>, Fmp4Error> {
        Fmp4Splitter::new().push(bytes)
    }

    fn fragments(chunks: &[Fmp4Chunk]) -> Vec<&Fragment> {
        chunks
            .iter()
            .filter_map(|chunk| match chunk {
                Fmp4Chunk::Fragment(f) => Some(f),
                Fmp4Chunk::Init { .. } => None,
            })
            .collect()
    }

    fn only_fragment(chunks: &[Fmp4Chunk]) -> Fragment {
        let found = fragments(chunks);
        assert_eq!(found.len(), 1, "{chunks:?}");
        found[0].clone()
    }

    fn init(timescale: u32) -> Vec<u8> {
        [ftyp(), moov(timescale, 0, 0)].concat()
    }

    /// A small stream like mp4mux's, with a styp before the second moof, padding between
    /// fragments and an mfra at the end. Returns the stream and the pieces expected.
    fn small_stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let init = [ftyp(), moov(3000, 0, 0), bx(b"free", b"pad")].concat();
        let f1 = [
            moof(
                1,
                &[tfhd(1, &Tfhd::default()), tfdt(0, 0), plain_trun(100, SYNC)],
            ),
            mdat(30),
        ]
        .concat();
        let f2 = [
            bx(b"styp", b"msdhmsdh"),
            moof(
                2,
                &[
                    tfhd(1, &Tfhd::default()),
                    tfdt(1, 300),
                    plain_trun(100, NON_SYNC),
                ],
            ),
            mdat(25),
        ]
        .concat();
        let f3 = [
            moof(
                3,
                &[
                    tfhd(
                        1,
                        &Tfhd {
                            duration: Some(100),
                            flags: Some(NON_SYNC),
                            ..Tfhd::default()
                        },
                    ),
                    tfdt(0, 600),
                    trun(0x200, Some(SYNC), &[(0, 7, 0, 0), (0, 7, 0, 0)]),
                ],
            ),
            mdat(14),
        ]
        .concat();
        let stream = [
            init.clone(),
            f1.clone(),
            f2.clone(),
            bx(b"free", b""),
            f3.clone(),
            bx(b"mfra", &[0u8; 40]),
        ]
        .concat();
        (stream, vec![init, f1, f2, f3])
    }

    // ---- tests --------------------------------------------------------------------------

    #[test]
    fn cuts_init_and_fragments_with_their_timing() {
        let (stream, expected) = small_stream();
        let chunks = split(&stream).unwrap();
        assert_eq!(chunks.len(), 4);
        assert_eq!(
            chunks[0],
            Fmp4Chunk::Init {
                bytes: expected[0].clone(),
                timescale: 3000
            }
        );
        let frags = fragments(&chunks);
        let want = [
            (1, 0, 300, 3, true),
            (2, 300, 300, 3, false),
            (3, 600, 200, 2, true),
        ];
        for ((fragment, bytes), (seq, time, ticks, samples, independent)) in
            frags.iter().zip(&expected[1..]).zip(want)
        {
            assert_eq!(&fragment.bytes, bytes);
            assert_eq!(fragment.sequence, seq);
            assert_eq!(fragment.decode_time, time);
            assert_eq!(fragment.duration_ticks, ticks);
            assert_eq!(
                fragment.duration,
                Duration::from_nanos(ticks * 1_000_000_000 / 3000)
            );
            assert_eq!(fragment.samples, samples);
            assert_eq!(fragment.independent, independent);
            assert_eq!(fragment.track_id, 1);
            assert_eq!(fragment.timescale, 3000);
        }
    }

    #[test]
    fn every_split_point_gives_the_same_pieces() {
        let (stream, _) = small_stream();
        let reference = split(&stream).unwrap();

        let mut splitter = Fmp4Splitter::new();
        let one_by_one: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(push_all(&mut splitter, &one_by_one).unwrap(), reference);
        assert_eq!(splitter.pending(), 0, "the mfra is read past, not held");

        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            let got = push_all(&mut Fmp4Splitter::new(), &[a, b]).unwrap();
            assert_eq!(got, reference, "split at {at}");
        }
        for (index, at) in (0..stream.len()).step_by(7).enumerate() {
            let step = index % 11 + 1;
            let (a, rest) = stream.split_at(at);
            let (b, c) = rest.split_at((step * 13).min(rest.len()));
            let got = push_all(&mut Fmp4Splitter::new(), &[a, &[], b, c]).unwrap();
            assert_eq!(got, reference, "split at {at} and {step}");
        }
    }

    #[test]
    fn pieces_hold_every_byte_but_the_padding_and_mfra_between_fragments() {
        let (stream, expected) = small_stream();
        let chunks = split(&stream).unwrap();
        let total: usize = chunks
            .iter()
            .map(|c| match c {
                Fmp4Chunk::Init { bytes, .. } => bytes.len(),
                Fmp4Chunk::Fragment(f) => f.bytes.len(),
            })
            .sum();
        assert_eq!(total, expected.iter().map(Vec::len).sum::<usize>());
        assert_eq!(total, stream.len() - 8 - 48);
    }

    #[test]
    fn a_piece_is_handed_out_with_its_last_byte() {
        let (stream, expected) = small_stream();
        let mut splitter = Fmp4Splitter::new();
        // Init waits for the first moof's header; the fragment for the last byte of its mdat.
        let init_end = expected[0].len();
        assert!(splitter.push(&stream[..init_end + 7]).unwrap().is_empty());
        assert_eq!(splitter.pending(), init_end + 7);
        let got = splitter.push(&stream[init_end + 7..init_end + 8]).unwrap();
        assert!(matches!(got.as_slice(), [Fmp4Chunk::Init { .. }]));
        let f1_end = init_end + expected[1].len();
        assert!(splitter
            .push(&stream[init_end + 8..f1_end - 1])
            .unwrap()
            .is_empty());
        let got = splitter.push(&stream[f1_end - 1..f1_end]).unwrap();
        assert_eq!(only_fragment(&got).sequence, 1);
        assert_eq!(splitter.pending(), 0);
    }

    #[test]
    fn largesize_boxes_are_read() {
        let traf = [
            tfhd(1, &Tfhd::default()),
            tfdt(1, 1 << 40),
            plain_trun(512, SYNC),
        ]
        .concat();
        let moof_large = large(
            b"moof",
            &[
                full(b"mfhd", 0, 0, &7u32.to_be_bytes()),
                large(b"traf", &traf),
            ]
            .concat(),
        );
        let moov_large = large(
            b"moov",
            &[trak(1, 90_000, b"vide", 1), bx(b"mvex", &trex(1, 0, 0))].concat(),
        );
        let mdat_large = large(b"mdat", &[1u8; 33]);
        let stream = [
            ftyp(),
            moov_large.clone(),
            moof_large.clone(),
            mdat_large.clone(),
        ]
        .concat();
        let reference = split(&stream).unwrap();
        assert_eq!(
            reference[0],
            Fmp4Chunk::Init {
                bytes: [ftyp(), moov_large].concat(),
                timescale: 90_000
            }
        );
        let fragment = only_fragment(&reference);
        assert_eq!(fragment.bytes, [moof_large, mdat_large].concat());
        assert_eq!(fragment.sequence, 7);
        assert_eq!(fragment.decode_time, 1 << 40);
        assert_eq!(fragment.duration_ticks, 1536);
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(
                push_all(&mut Fmp4Splitter::new(), &[a, b]).unwrap(),
                reference
            );
        }
    }

    #[test]
    fn durations_come_from_trun_then_tfhd_then_trex() {
        let trex_init = [ftyp(), moov(1000, 40, NON_SYNC)].concat();
        let three = [(0, 1, 0, 0); 3];
        let cases = [
            // trun durations win over both defaults
            (
                tfhd(
                    1,
                    &Tfhd {
                        duration: Some(20),
                        ..Tfhd::default()
                    },
                ),
                trun(
                    0x100,
                    Some(SYNC),
                    &[(5, 0, 0, 0), (6, 0, 0, 0), (7, 0, 0, 0)],
                ),
                18,
            ),
            // tfhd default over trex
            (
                tfhd(
                    1,
                    &Tfhd {
                        duration: Some(20),
                        ..Tfhd::default()
                    },
                ),
                trun(0x200, Some(SYNC), &three),
                60,
            ),
            // trex default
            (
                tfhd(1, &Tfhd::default()),
                trun(0x200, Some(SYNC), &three),
                120,
            ),
        ];
        for (tfhd_box, trun_box, ticks) in cases {
            let stream = [trex_init.clone(), moof(1, &[tfhd_box, trun_box]), mdat(3)].concat();
            let fragment = only_fragment(&split(&stream).unwrap());
            assert_eq!(fragment.duration_ticks, ticks);
            assert_eq!(fragment.duration, Duration::from_millis(ticks));
            assert_eq!(fragment.samples, 3);
            assert_eq!(fragment.decode_time, 0, "no tfdt");
        }
    }

    #[test]
    fn first_sample_flags_come_from_trun_then_tfhd_then_trex() {
        let sync_trex = [ftyp(), moov(1000, 40, SYNC)].concat();
        let non_sync_trex = [ftyp(), moov(1000, 40, NON_SYNC)].concat();
        let tfhd_non_sync = tfhd(
            1,
            &Tfhd {
                flags: Some(NON_SYNC),
                ..Tfhd::default()
            },
        );
        let tfhd_sync = tfhd(
            1,
            &Tfhd {
                flags: Some(SYNC),
                ..Tfhd::default()
            },
        );
        let plain = tfhd(1, &Tfhd::default());
        let two = [(0, 1, NON_SYNC, 0), (0, 1, SYNC, 0)];
        let cases = [
            // first_sample_flags wins over per-sample flags and every default
            (
                &non_sync_trex,
                &tfhd_non_sync,
                trun(0x400, Some(SYNC), &two),
                true,
            ),
            (
                &sync_trex,
                &tfhd_sync,
                trun(0x000, Some(NON_SYNC), &two),
                false,
            ),
            // per-sample flags of the first sample
            (&sync_trex, &tfhd_sync, trun(0x400, None, &two), false),
            // tfhd default_sample_flags
            (&non_sync_trex, &tfhd_sync, trun(0x200, None, &two), true),
            (&sync_trex, &tfhd_non_sync, trun(0x200, None, &two), false),
            // trex default_sample_flags
            (&sync_trex, &plain, trun(0x200, None, &two), true),
            (&non_sync_trex, &plain, trun(0x200, None, &two), false),
        ];
        for (index, (init, tfhd_box, trun_box, independent)) in cases.into_iter().enumerate() {
            let stream = [
                init.clone(),
                moof(1, &[tfhd_box.clone(), trun_box]),
                mdat(3),
            ]
            .concat();
            let fragment = only_fragment(&split(&stream).unwrap());
            assert_eq!(fragment.independent, independent, "case {index}");
            assert_eq!(fragment.duration_ticks, 80, "trex duration, case {index}");
        }
    }

    #[test]
    fn non_sync_first_sample_is_not_independent() {
        let stream = [
            init(3000),
            moof(4, &[tfhd(1, &Tfhd::default()), plain_trun(100, NON_SYNC)]),
            mdat(1),
        ]
        .concat();
        let fragment = only_fragment(&split(&stream).unwrap());
        assert!(!fragment.independent);
        assert_eq!(fragment.sequence, 4);
    }

    #[test]
    fn tfhd_optional_fields_are_skipped_in_order() {
        let all = Tfhd {
            base_data_offset: Some(0x0102_0304_0506_0708),
            description: Some(1),
            duration: Some(33),
            size: Some(999),
            flags: Some(NON_SYNC),
        };
        let stream = [
            init(1000),
            moof(1, &[tfhd(1, &all), trun(0x200, None, &[(0, 1, 0, 0); 4])]),
            mdat(4),
        ]
        .concat();
        let fragment = only_fragment(&split(&stream).unwrap());
        assert_eq!(fragment.duration_ticks, 132);
        assert!(!fragment.independent);
    }

    #[test]
    fn several_truns_add_up_and_the_first_traf_counts() {
        let audio_traf = bx(
            b"traf",
            &[
                tfhd(2, &Tfhd::default()),
                trun(0x100, Some(SYNC), &[(1024, 0, 0, 0)]),
            ]
            .concat(),
        );
        let moov_two = bx(
            b"moov",
            &[
                trak(2, 48_000, b"soun", 0),
                trak(1, 90_000, b"vide", 0),
                bx(b"mvex", &[trex(1, 0, 0), trex(2, 0, 0)].concat()),
            ]
            .concat(),
        );
        let video_moof = bx(
            b"moof",
            &[
                full(b"mfhd", 0, 0, &9u32.to_be_bytes()),
                bx(
                    b"traf",
                    &[
                        tfhd(1, &Tfhd::default()),
                        tfdt(0, 9000),
                        trun(
                            0x100 | 0x800,
                            Some(SYNC),
                            &[(3000, 0, 0, 1), (3000, 0, 0, 2)],
                        ),
                        trun(0x100 | 0x400, None, &[]),
                        trun(0x100 | 0x400, None, &[(3000, 0, SYNC, 0)]),
                    ]
                    .concat(),
                ),
                audio_traf,
            ]
            .concat(),
        );
        let stream = [ftyp(), moov_two, video_moof, mdat(9)].concat();
        let chunks = split(&stream).unwrap();
        assert!(
            matches!(
                chunks[0],
                Fmp4Chunk::Init {
                    timescale: 90_000,
                    ..
                }
            ),
            "the video track's timescale"
        );
        let fragment = only_fragment(&chunks);
        assert_eq!(fragment.samples, 3);
        assert_eq!(fragment.duration_ticks, 9000);
        assert_eq!(fragment.duration, Duration::from_millis(100));
        assert_eq!(fragment.decode_time, 9000);
        assert!(fragment.independent);
    }

    #[test]
    fn prefix_boxes_before_the_first_moof_go_with_the_fragment() {
        let prft = full(b"prft", 1, 0, &[0u8; 20]);
        let emsg = full(b"emsg", 1, 0, &[0u8; 12]);
        let f1 = [
            prft,
            emsg,
            moof(1, &[tfhd(1, &Tfhd::default()), plain_trun(1, SYNC)]),
            mdat(2),
        ]
        .concat();
        // a styp before the moov is not "just before the moof": it stays in the init.
        let init = [
            ftyp(),
            bx(b"styp", b"msdh"),
            moov(10, 0, 0),
            bx(b"free", &[]),
        ]
        .concat();
        let chunks = split(&[init.clone(), f1.clone()].concat()).unwrap();
        assert_eq!(
            chunks[0],
            Fmp4Chunk::Init {
                bytes: init,
                timescale: 10
            }
        );
        assert_eq!(only_fragment(&chunks).bytes, f1);
    }

    #[test]
    fn a_new_init_segment_in_the_stream_starts_over() {
        let (first, _) = small_stream();
        let second_init = [ftyp(), moov(90_000, 0, 0)].concat();
        let second_fragment = [
            moof(1, &[tfhd(1, &Tfhd::default()), plain_trun(3000, SYNC)]),
            mdat(5),
        ]
        .concat();
        // A styp left before the new ftyp belongs to no fragment: it is dropped.
        let stream = [
            first,
            bx(b"styp", b"msdh"),
            second_init.clone(),
            second_fragment.clone(),
        ]
        .concat();
        let reference = split(&stream).unwrap();
        assert_eq!(reference.len(), 6);
        assert_eq!(
            reference[4],
            Fmp4Chunk::Init {
                bytes: second_init,
                timescale: 90_000
            }
        );
        let Fmp4Chunk::Fragment(fragment) = &reference[5] else {
            panic!("{:?}", reference[5]);
        };
        assert_eq!(fragment.bytes, second_fragment);
        assert_eq!(fragment.timescale, 90_000);
        assert_eq!(fragment.duration, Duration::from_millis(100));
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(
                push_all(&mut Fmp4Splitter::new(), &[a, b]).unwrap(),
                reference
            );
        }
        // Between a moof and its mdat, the unfinished fragment is dropped.
        let m = moof(1, &[tfhd(1, &Tfhd::default()), plain_trun(1, SYNC)]);
        let stream = [init(10), m, init(20), second_fragment].concat();
        let chunks = split(&stream).unwrap();
        assert!(matches!(
            chunks.as_slice(),
            [
                Fmp4Chunk::Init { timescale: 10, .. },
                Fmp4Chunk::Init { timescale: 20, .. },
                Fmp4Chunk::Fragment(_)
            ]
        ));
    }

    #[test]
    fn a_box_over_the_bound_is_refused_before_it_is_kept() {
        let mut splitter = Fmp4Splitter::new();
        splitter.push(&init(1000)).unwrap();
        let mut header = (u32::try_from(MAX_BOX_SIZE).unwrap() + 1)
            .to_be_bytes()
            .to_vec();
        header.extend_from_slice(b"mdat");
        assert_eq!(
            splitter.push(&header),
            Err(Fmp4Error::BoxTooLarge {
                kind: MDAT,
                size: MAX_BOX_SIZE + 1
            })
        );
        assert_eq!(splitter.pending(), 0);
        assert_eq!(splitter.push(&mdat(1)), Err(Fmp4Error::Stopped));

        let mut header = 1u32.to_be_bytes().to_vec();
        header.extend_from_slice(b"moof");
        header.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut splitter = Fmp4Splitter::new();
        splitter.push(&init(1000)).unwrap();
        for byte in &header[..15] {
            assert!(splitter.push(&[*byte]).unwrap().is_empty());
        }
        assert!(matches!(
            splitter.push(&header[15..]),
            Err(Fmp4Error::BoxTooLarge { size: u64::MAX, .. })
        ));
        // exactly at the bound is fine
        let mut exact = (u32::try_from(MAX_BOX_SIZE).unwrap())
            .to_be_bytes()
            .to_vec();
        exact.extend_from_slice(b"free");
        assert!(Fmp4Splitter::new().push(&exact).unwrap().is_empty());
    }

    #[test]
    fn size_zero_and_undersized_boxes_are_refused() {
        let mut to_end = 0u32.to_be_bytes().to_vec();
        to_end.extend_from_slice(b"mdat");
        assert_eq!(split(&to_end), Err(Fmp4Error::SizeToEnd { kind: MDAT }));
        let mut tiny = 7u32.to_be_bytes().to_vec();
        tiny.extend_from_slice(b"free");
        assert!(matches!(
            split(&tiny),
            Err(Fmp4Error::BadBox { kind: FREE, .. })
        ));
        let mut tiny_large = 1u32.to_be_bytes().to_vec();
        tiny_large.extend_from_slice(b"free");
        tiny_large.extend_from_slice(&15u64.to_be_bytes());
        assert!(matches!(
            split(&tiny_large),
            Err(Fmp4Error::BadBox { kind: FREE, .. })
        ));
    }

    #[test]
    fn truncated_child_boxes_inside_moof_are_errors() {
        let good_trun = plain_trun(100, SYNC);
        // a trun whose sample table is shorter than sample_count says
        let mut short_trun = good_trun.clone();
        short_trun.truncate(short_trun.len() - 4);
        let size = u32::try_from(short_trun.len()).unwrap();
        short_trun[..4].copy_from_slice(&size.to_be_bytes());
        // a tfhd claiming default-sample-duration with no room for it
        let short_tfhd = full(b"tfhd", 0, 0x08, &1u32.to_be_bytes());
        // a child claiming more bytes than its traf holds
        let mut overlong = tfdt(0, 0);
        overlong[3] += 200;
        // a child header cut off after 5 bytes
        let stub = vec![0, 0, 0, 9, b't'];
        let huge_count = full(b"trun", 0, 0x100, &u32::MAX.to_be_bytes());
        let cases: [(Vec<u8>, FourCc); 5] = [
            (
                [tfhd(1, &Tfhd::default()).as_slice(), &short_trun].concat(),
                TRUN,
            ),
            ([short_tfhd.as_slice(), &good_trun].concat(), TFHD),
            (
                [tfhd(1, &Tfhd::default()).as_slice(), &overlong, &good_trun].concat(),
                TFDT,
            ),
            (
                [tfhd(1, &Tfhd::default()).as_slice(), &good_trun, &stub].concat(),
                TRAF,
            ),
            (
                [tfhd(1, &Tfhd::default()).as_slice(), &huge_count].concat(),
                TRUN,
            ),
        ];
        for (traf, kind) in cases {
            let moof_box = bx(
                b"moof",
                &[full(b"mfhd", 0, 0, &1u32.to_be_bytes()), bx(b"traf", &traf)].concat(),
            );
            let stream = [init(1000), moof_box, mdat(1)].concat();
            match split(&stream) {
                Err(Fmp4Error::BadBox { kind: got, .. }) => assert_eq!(got, kind),
                other => panic!("expected a bad {kind}, got {other:?}"),
            }
        }
        // a moof with no mfhd, or no traf
        let no_mfhd = bx(
            b"moof",
            &bx(
                b"traf",
                &[tfhd(1, &Tfhd::default()), good_trun.clone()].concat(),
            ),
        );
        let no_traf = bx(b"moof", &full(b"mfhd", 0, 0, &1u32.to_be_bytes()));
        for moof_box in [no_mfhd, no_traf] {
            assert!(matches!(
                split(&[init(1000), moof_box].concat()),
                Err(Fmp4Error::BadBox { kind: MOOF, .. })
            ));
        }
    }

    #[test]
    fn a_moof_before_the_init_segment_is_an_error() {
        let fragment = [
            moof(1, &[tfhd(1, &Tfhd::default()), plain_trun(1, SYNC)]),
            mdat(1),
        ]
        .concat();
        assert_eq!(split(&fragment), Err(Fmp4Error::FragmentBeforeInit));
        assert_eq!(
            split(&[ftyp(), fragment.clone()].concat()),
            Err(Fmp4Error::FragmentBeforeInit)
        );
        // byte by byte: refused as soon as the moof's header is complete
        let mut splitter = Fmp4Splitter::new();
        let stream = [ftyp(), fragment].concat();
        let header_end = ftyp().len() + 8;
        for byte in &stream[..header_end - 1] {
            assert!(splitter.push(&[*byte]).unwrap().is_empty());
        }
        assert_eq!(
            splitter.push(&stream[header_end - 1..header_end]),
            Err(Fmp4Error::FragmentBeforeInit)
        );
    }

    #[test]
    fn out_of_order_boxes_are_errors() {
        let frag = |seq| {
            [
                moof(seq, &[tfhd(1, &Tfhd::default()), plain_trun(1, SYNC)]),
                mdat(1),
            ]
            .concat()
        };
        // not fragmented: mdat before any moof
        assert_eq!(
            split(&[ftyp(), mdat(4)].concat()),
            Err(Fmp4Error::NotFragmented)
        );
        // mdat with no moof between fragments
        assert!(matches!(
            split(&[init(10), frag(1), mdat(1)].concat()),
            Err(Fmp4Error::BadBox { kind: MDAT, .. })
        ));
        // two moofs in a row
        let m = moof(1, &[tfhd(1, &Tfhd::default()), plain_trun(1, SYNC)]);
        assert!(matches!(
            split(&[init(10), m.clone(), m].concat()),
            Err(Fmp4Error::BadBox { kind: MOOF, .. })
        ));
        // a fragment of a track the moov does not have
        let stranger = [
            moof(1, &[tfhd(5, &Tfhd::default()), plain_trun(1, SYNC)]),
            mdat(1),
        ]
        .concat();
        assert_eq!(
            split(&[init(10), stranger].concat()),
            Err(Fmp4Error::UnknownTrack { track_id: 5 })
        );
        // no durations anywhere: no trex in the moov, none in tfhd or trun
        let bare_moov = bx(b"moov", &trak(1, 10, b"vide", 0));
        let no_duration = [
            moof(
                1,
                &[
                    tfhd(1, &Tfhd::default()),
                    trun(0x400, None, &[(0, 0, SYNC, 0)]),
                ],
            ),
            mdat(1),
        ]
        .concat();
        assert!(matches!(
            split(&[ftyp(), bare_moov, no_duration].concat()),
            Err(Fmp4Error::BadBox { kind: TRAF, .. })
        ));
        // a moov with no track, or a zero timescale
        assert!(matches!(
            split(&[ftyp(), bx(b"moov", &[])].concat()),
            Err(Fmp4Error::BadBox { kind: MOOV, .. })
        ));
        assert!(matches!(
            split(&init(0)),
            Err(Fmp4Error::BadBox { kind: MDHD, .. })
        ));
    }

    #[test]
    fn garbage_and_cut_streams_never_panic() {
        let (stream, _) = small_stream();
        // every prefix of the stream, then every single-byte corruption of it
        for end in 0..=stream.len() {
            let _ = split(&stream[..end]);
        }
        let mut seed: u64 = 0x243f_6a88_85a3_08d3;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 33
        };
        for index in 0..stream.len() {
            for value in [0u8, 1, 0x7f, 0xff, (next() & 0xff) as u8] {
                let mut bad = stream.clone();
                bad[index] = value;
                let mut splitter = Fmp4Splitter::new();
                for piece in bad.chunks(1 + (next() % 50) as usize) {
                    if splitter.push(piece).is_err() {
                        break;
                    }
                }
            }
        }
        for _ in 0..2000 {
            let len = (next() % 300) as usize;
            let junk: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
            let _ = split(&[init(1000), junk.clone()].concat());
            let _ = split(&junk);
        }
    }

    #[test]
    fn ticks_become_time() {
        assert_eq!(ticks_to_duration(1500, 3000), Duration::from_millis(500));
        assert_eq!(
            ticks_to_duration(1001, 30_000),
            Duration::from_nanos(33_366_666)
        );
        assert_eq!(
            ticks_to_duration(u64::MAX, 1),
            Duration::from_secs(u64::MAX)
        );
        assert_eq!(ticks_to_duration(5, 0), Duration::ZERO);
    }

    #[test]
    fn four_cc_displays_printably() {
        assert_eq!(MOOF.to_string(), "moof");
        assert_eq!(FourCc([0, b'a', 0xff, b' ']).to_string(), "\\x00a\\xff ");
        let err = Fmp4Error::BoxTooLarge {
            kind: MDAT,
            size: 1 << 30,
        };
        assert!(err.to_string().contains("`mdat` box of 1073741824 bytes"));
    }
}
