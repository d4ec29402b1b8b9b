//! The rolling recording of one camera, for disputes: `splitmuxsink` writes the encoded stream
//! (the same encode the viewers get) into files of `[[camera]] recording_segment`, named by the
//! UTC and the SMPTE timecode of their first frame:
//!
//! `<recording_dir>/<camera>/20261121T142310.120Z_14-23-10-03.mp4`
//!
//! (drop-frame labels write `d` in place of the last `-`: `14-23-10d03`). Files are fragmented
//! MP4 (a fragment a second), so even the file being written when power fails plays up to its
//! last second. Files older than `recording_retention` are deleted each time a new file starts.
//! `croupier journal export --round <id>` copies the files that cover a round.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::camera::{frame_capture_utc, frame_timecode};
use crate::video::{CameraSettings, FrameTimecode, RecordingSettings, VideoError};

/// A recording file and the instant its first frame was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingFile {
    pub path: PathBuf,
    pub started: SystemTime,
}

/// The file name of a recording that starts at `utc` with label `tc`.
pub fn file_name(utc: SystemTime, tc: Option<&FrameTimecode>) -> String {
    let at = OffsetDateTime::from(utc);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    );
    match tc {
        Some(tc) => {
            let sep = if tc.drop_frame { 'd' } else { '-' };
            format!(
                "{stamp}_{:02}-{:02}-{:02}{sep}{:02}.mp4",
                tc.hours, tc.minutes, tc.seconds, tc.frames
            )
        }
        None => format!("{stamp}.mp4"),
    }
}

/// The UTC start of a recording file, from its name.
pub fn parse_start(name: &str) -> Option<SystemTime> {
    let stamp = name.get(..19)?; // 20261121T142310.120
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    if stamp.get(8..9)? != "T" || name.get(19..20)? != "Z" {
        return None;
    }
    let t = time::Time::from_hms_milli(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
        u16::try_from(num(16..19)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc().into())
}

/// Every recording of a camera directory, oldest first.
pub fn list(dir: &Path) -> Vec<RecordingFile> {
    let mut files: Vec<RecordingFile> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            if !name.ends_with(".mp4") {
                return None;
            }
            Some(RecordingFile {
                started: parse_start(&name)?,
                path: e.path(),
            })
        })
        .collect();
    files.sort_by_key(|f| f.started);
    files
}

/// The files that hold any video between `from` and `to`: each file runs until the next starts.
pub fn covering(dir: &Path, from: SystemTime, to: SystemTime) -> Vec<RecordingFile> {
    let files = list(dir);
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let end = files.get(i + 1).map(|n| n.started);
        let starts_before_end = f.started <= to;
        let ends_after_start = end.is_none_or(|e| e > from);
        if starts_before_end && ends_after_start {
            out.push(f.clone());
        }
    }
    out
}

/// Deletes files whose successor started more than `retention` ago (so whole files go, and
/// the newest is never touched).
pub fn sweep(dir: &Path, retention: Duration) -> usize {
    let files = list(dir);
    let Some(cutoff) = SystemTime::now().checked_sub(retention) else {
        return 0;
    };
    let mut removed = 0;
    for pair in files.windows(2) {
        if pair[1].started < cutoff {
            match std::fs::remove_file(&pair[0].path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    warn!(file = %pair[0].path.display(), error = %e, "cannot delete an expired recording")
                }
            }
        }
    }
    removed
}

/// Adds `queue ! splitmuxsink` to the encoded tee.
pub(crate) fn attach(
    pipeline: &gst::Pipeline,
    encoded: &gst::Element,
    camera: &str,
    rec: &RecordingSettings,
    _settings: &CameraSettings,
) -> Result<(), VideoError> {
    let dir = rec.dir.join(camera);
    std::fs::create_dir_all(&dir).map_err(|source| VideoError::Recording {
        dir: dir.clone(),
        source,
    })?;
    let err = |what: &str, e: &dyn std::fmt::Display| VideoError::pipeline(camera, what, e);
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 3_000_000_000u64)
        .build()
        .map_err(|e| err("create queue", &e))?;
    queue.set_property_from_str("leaky", "downstream");
    let mux = gst::ElementFactory::make("mp4mux")
        .property("fragment-duration", 1000u32)
        .build()
        .map_err(|e| err("create mp4mux", &e))?;
    let split = gst::ElementFactory::make("splitmuxsink")
        .property(
            "max-size-time",
            u64::try_from(rec.segment.as_nanos()).unwrap_or(60_000_000_000),
        )
        .property("send-keyframe-requests", true)
        .property("muxer", &mux)
        .build()
        .map_err(|e| err("create splitmuxsink", &e))?;
    let retention = rec.retention;
    let camera_name = camera.to_owned();
    split.connect("format-location-full", false, move |args| {
        let sample = args.get(2).and_then(|v| v.get::<gst::Sample>().ok());
        let buffer = sample.as_ref().and_then(|s| s.buffer());
        let utc = buffer
            .and_then(frame_capture_utc)
            .unwrap_or_else(SystemTime::now);
        let tc = buffer.and_then(frame_timecode);
        let path = dir.join(file_name(utc, tc.as_ref()));
        let removed = sweep(&dir, retention);
        info!(camera = %camera_name, file = %path.display(), expired_removed = removed, "recording a new file");
        Some(path.to_string_lossy().into_owned().to_value())
    });
    pipeline
        .add_many([&queue, &split])
        .map_err(|e| err("add recording branch", &e))?;
    queue
        .link_pads(Some("src"), &split, Some("video"))
        .map_err(|e| err("link recording", &e))?;
    crate::camera::link_tee(encoded, &queue)
        .map_err(|e| err("link recording to the encoder", &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_to_their_start() {
        let utc = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_271_390_120);
        let tc = FrameTimecode {
            hours: 14,
            minutes: 23,
            seconds: 10,
            frames: 3,
            fps_n: 30000,
            fps_d: 1001,
            drop_frame: true,
        };
        let name = file_name(utc, Some(&tc));
        assert!(name.ends_with("_14-23-10d03.mp4"), "{name}");
        assert_eq!(parse_start(&name), Some(utc));
        assert_eq!(parse_start("garbage.mp4"), None);
        assert_eq!(parse_start("20261321T000000.000Z.mp4"), None);
    }

    #[test]
    fn covering_picks_the_files_a_span_touches() {
        let dir = std::env::temp_dir().join(format!("croupier-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..4u64 {
            let name = file_name(t0 + Duration::from_secs(60 * i), None);
            std::fs::write(dir.join(name), b"x").expect("write");
        }
        let got = covering(
            &dir,
            t0 + Duration::from_secs(70),
            t0 + Duration::from_secs(130),
        );
        let starts: Vec<_> = got.iter().map(|f| f.started).collect();
        assert_eq!(
            starts,
            vec![t0 + Duration::from_secs(60), t0 + Duration::from_secs(120)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
