//! The fMP4 splitter against what GStreamer's mp4mux really writes.
//!
//! Five seconds of `videotestsrc` (30 frames/s, a keyframe every 60 frames) are encoded with
//! x264enc and muxed by `mp4mux fragment-duration=500 streamable=true`, the LL-HLS fallback's
//! settings, into a file through `gst-launch-1.0`. The file is then fed to the splitter in uneven
//! pieces, as an appsink would hand it over, and the pieces are checked against what the playlist
//! relies on.
//!
//! It needs the GStreamer command line and plugins (Debian: gstreamer1.0-tools,
//! gstreamer1.0-plugins-base, -good for mp4mux, -bad for h264parse, -ugly for x264enc). Without
//! them these tests fail rather than skip: a skipped check would let the splitter drift from the
//! muxer unnoticed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use croupier_pipelines::fmp4::*;
use croupier_pipelines::llhls::{LlHlsPlaylist, PlaylistSettings, MAX_PART_TARGET};

const MISSING: &str = "the GStreamer command line and plugins are needed to check the fMP4 \
     splitter against mp4mux: install the Debian packages gstreamer1.0-tools, \
     gstreamer1.0-plugins-base, gstreamer1.0-plugins-good (mp4mux), gstreamer1.0-plugins-bad \
     (h264parse) and gstreamer1.0-plugins-ugly (x264enc)";

/// mp4mux's fragment-duration.
const FRAGMENT_TARGET: Duration = Duration::from_millis(500);
/// One frame at 30 frames/s, rounded up.
const FRAME: Duration = Duration::from_micros(33_400);
/// 150 frames at 30 frames/s.
const TOTAL: Duration = Duration::from_secs(5);

/// A scratch directory, removed when the test ends (passed or not).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "croupier-fmp4-{}-{nanos}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What mp4mux writes for 150 frames with the fallback's settings.
fn mp4mux_output() -> Vec<u8> {
    let dir = ScratchDir::new();
    let file = dir.0.join("out.mp4");
    let output = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "num-buffers=150",
            "!",
            "video/x-raw,width=320,height=240,framerate=30/1",
            "!",
            "x264enc",
            "key-int-max=60",
            "tune=zerolatency",
            "speed-preset=ultrafast",
            "!",
            "h264parse",
            "!",
            "mp4mux",
            "fragment-duration=500",
            "streamable=true",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", file.display()))
        .output()
        .unwrap_or_else(|err| panic!("cannot run gst-launch-1.0: {err}; {MISSING}"));
    assert!(
        output.status.success(),
        "gst-launch-1.0 failed ({}): {}\n{MISSING}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&file).unwrap_or_else(|err| panic!("cannot read {}: {err}", file.display()))
}

/// Feeds `bytes` in uneven pieces (from one byte to 64 KiB, chosen by `seed`), as an appsink
/// would, and returns every chunk.
fn split_unevenly(bytes: &[u8], seed: u64) -> Vec<Fmp4Chunk> {
    let mut splitter = Fmp4Splitter::new();
    let mut state = seed;
    let mut rest = bytes;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let draw = usize::try_from(state >> 40).unwrap_or(1);
        let size = match draw % 4 {
            0 => 1 + draw % 16,
            1 => 1 + draw % 4096,
            _ => 1 + draw % 65_536,
        };
        let (now, later) = rest.split_at(size.min(rest.len()));
        chunks.extend(
            splitter
                .push(now)
                .unwrap_or_else(|err| panic!("mp4mux's output refused: {err}")),
        );
        rest = later;
    }
    assert_eq!(
        splitter.pending(),
        0,
        "bytes held at the end of the stream (the trailing mfra is read past)"
    );
    chunks
}

fn fragments(chunks: &[Fmp4Chunk]) -> Vec<&Fragment> {
    chunks
        .iter()
        .skip(1)
        .map(|chunk| match chunk {
            Fmp4Chunk::Fragment(fragment) => fragment,
            Fmp4Chunk::Init { .. } => panic!("a second initialisation segment"),
        })
        .collect()
}

#[test]
fn splits_real_mp4mux_output() {
    let bytes = mp4mux_output();
    let reference = Fmp4Splitter::new()
        .push(&bytes)
        .unwrap_or_else(|err| panic!("mp4mux's output refused: {err}"));
    for seed in [1, 2, 3] {
        assert_eq!(
            split_unevenly(&bytes, seed),
            reference,
            "pieces depend on how the stream was split (seed {seed})"
        );
    }

    let Some(Fmp4Chunk::Init {
        bytes: init,
        timescale,
    }) = reference.first()
    else {
        panic!("the first piece is not the initialisation segment: {reference:?}");
    };
    let timescale = *timescale;
    assert!(timescale > 0);
    assert_eq!(
        init.get(4..8),
        Some(b"ftyp".as_slice()),
        "the init segment starts with ftyp"
    );

    let fragments = fragments(&reference);
    assert!(!fragments.is_empty(), "no fragment");

    // The pieces are the file, in order, but for the mfra index mp4mux appends at EOS.
    let mut offset = 0;
    for piece in std::iter::once(init).chain(fragments.iter().map(|f| &f.bytes)) {
        assert_eq!(
            bytes.get(offset..offset + piece.len()),
            Some(piece.as_slice()),
            "the pieces differ from the file at byte {offset}"
        );
        offset += piece.len();
    }
    let tail = &bytes[offset..];
    assert!(
        tail.is_empty() || tail.get(4..8) == Some(b"mfra".as_slice()),
        "after the last fragment: {:?}",
        &tail[..tail.len().min(8)]
    );

    // Fragments follow each other without gap or overlap. The first starts at 0 here; from a
    // live source it starts at the source's first timestamp (1 tick was seen), so only the
    // difference is checked.
    let mut running_ticks = fragments[0].decode_time;
    let mut total = Duration::ZERO;
    for (index, fragment) in fragments.iter().enumerate() {
        assert_eq!(fragment.timescale, timescale, "fragment {index}");
        assert!(fragment.samples > 0, "fragment {index} is empty");
        assert!(
            fragment.duration <= FRAGMENT_TARGET + FRAME,
            "fragment {index} lasts {:?}",
            fragment.duration
        );
        assert_eq!(
            fragment.decode_time, running_ticks,
            "fragment {index} does not start where the previous ones end"
        );
        if index > 0 {
            assert!(fragment.sequence > fragments[index - 1].sequence);
            assert!(fragment.decode_time > fragments[index - 1].decode_time);
        }
        running_ticks += fragment.duration_ticks;
        total += fragment.duration;
    }
    assert!(
        total.abs_diff(TOTAL) <= Duration::from_millis(100),
        "{total:?} of video for 150 frames at 30 frames/s"
    );

    assert!(
        fragments[0].independent,
        "the first fragment has no keyframe"
    );
    assert!(
        fragments[1..].iter().any(|f| f.independent),
        "no later fragment starts on a keyframe (one every 60 frames)"
    );
    assert!(
        fragments.iter().any(|f| !f.independent),
        "every fragment starts on a keyframe"
    );
}

#[test]
fn real_fragments_fit_the_llhls_playlist() {
    let bytes = mp4mux_output();
    let chunks = split_unevenly(&bytes, 7);
    let fragments = fragments(&chunks);
    let mut playlist = LlHlsPlaylist::new(PlaylistSettings::default())
        .unwrap_or_else(|err| panic!("default playlist settings refused: {err}"));
    let start = SystemTime::now();
    let mut segments = 0;
    for (index, fragment) in fragments.iter().enumerate() {
        // mp4mux closes a fragment before the frame that would take it past fragment-duration,
        // and the playlist refuses parts longer than its 500 ms part target.
        assert!(
            fragment.duration <= MAX_PART_TARGET,
            "fragment {index} lasts {:?}",
            fragment.duration
        );
        let offset = Duration::from_nanos(
            u64::try_from(
                u128::from(fragment.decode_time) * 1_000_000_000 / u128::from(fragment.timescale),
            )
            .unwrap_or(u64::MAX),
        );
        let placement = playlist
            .push_part(fragment.duration, fragment.independent, start + offset)
            .unwrap_or_else(|err| panic!("fragment {index} refused by the playlist: {err}"));
        if placement.part == 0 {
            segments += 1;
            assert!(
                fragment.independent,
                "segment {} does not start on a keyframe",
                placement.msn
            );
        }
    }
    assert!(segments >= 2, "5 s of video made {segments} segment(s)");
}
