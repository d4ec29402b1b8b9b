//! The vision stage: the second witness for every card and number, fed by a camera.
//!
//! A `[[camera]]` with `vision = "cards"` or `vision = "wheel"` and a `calibration` file gets one
//! supervised component, `vision:<camera>`, beside its `camera:<camera>`. It taps the camera's
//! raw frames (downscaled to the calibration's image size, at `vision_fps`, the newest frame
//! only: a slow read drops frames, it never slows the encode), runs the card reader or the
//! pocket reader of the `croupier-vision` crate on them, and hands the engine:
//!
//! - `card.seen {card, zone, confidence, timecode}` once per card that stays on the layout
//!   (confirmed over two frames by the [`CardTracker`]),
//! - `pocket.seen {number, confidence, timecode}` once per ball at rest (the crate's
//!   `SettledFilter`: the same pocket in three frames in a row),
//! - `vision.calibration {camera, path, version, sha256}` when the stage starts and whenever the
//!   calibration file changes (it is re-read without a restart).
//!
//! The engine cross-checks the sightings with the shoe and the wheel (`[crosscheck]`) and holds
//! the round on a disagreement. `/status` shows the stage as `vision:<camera>` with its counts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use croupier_drivers::model::Card;
use croupier_pipelines::camera::{pull_frame, TappedFrame};
use croupier_vision::calibration::Calibration;
use croupier_vision::cards::CardReader;
use croupier_vision::opencv::core::{Mat, CV_8UC3};
use croupier_vision::opencv::prelude::*;
use croupier_vision::tracker::{CardTracker, TrackerSettings};
use croupier_vision::wheel::{read_pocket, SettledFilter};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{CameraConfig, Config, VisionKind};
use crate::engine::{At, Input, Source, Witness};
use crate::health::{HealthHandle, State};
use crate::supervisor::{ComponentCtx, ComponentResult, ComponentSpec};
use crate::table::TableHandle;
use crate::video::VideoHandle;

/// How often the calibration file's modification time is looked at.
const CALIBRATION_CHECK: Duration = Duration::from_secs(2);

/// Errors of the vision stage; each ends the component, which the supervisor restarts.
#[derive(Debug, thiserror::Error)]
pub enum VisionStageError {
    #[error("cannot read the calibration {path}: {source}")]
    Calibration {
        path: String,
        #[source]
        source: croupier_vision::VisionError,
    },
    #[error("cannot read the calibration {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the calibration {path} has no {part} part; run `croupier calibrate {part}` on it")]
    Incomplete { path: String, part: &'static str },
    #[error("cannot tap camera {camera}: {detail}")]
    Tap { camera: String, detail: String },
    #[error("the table engine is gone")]
    EngineGone,
}

/// One component per camera that has `vision` set.
pub fn components(config: &Config, table: &TableHandle, video: &VideoHandle) -> Vec<ComponentSpec> {
    config
        .cameras
        .iter()
        .filter_map(|cam| {
            let kind = cam.vision?;
            let path = cam.calibration.clone()?;
            let cam = cam.clone();
            let table = table.clone();
            let video = video.clone();
            Some(ComponentSpec::new(
                format!("vision:{}", cam.name),
                "vision",
                format!("{kind:?}{path:?}{}", cam.vision_fps),
                move |ctx| {
                    run(
                        cam.clone(),
                        kind,
                        path.clone(),
                        table.clone(),
                        video.clone(),
                        ctx,
                    )
                },
            ))
        })
        .collect()
}

/// The calibration as loaded, with what identifies it in the journal.
struct Loaded {
    calibration: Calibration,
    sha256: String,
    modified: Option<SystemTime>,
}

fn load(path: &Path, kind: VisionKind) -> Result<Loaded, VisionStageError> {
    let err = |source| VisionStageError::Calibration {
        path: path.display().to_string(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|source| VisionStageError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let calibration = Calibration::load(path).map_err(err)?;
    let incomplete = |part| VisionStageError::Incomplete {
        path: path.display().to_string(),
        part,
    };
    match kind {
        VisionKind::Cards if calibration.deck.is_none() => return Err(incomplete("deck")),
        VisionKind::Cards if calibration.table.is_none() => return Err(incomplete("table")),
        VisionKind::Wheel if calibration.wheel.is_none() => return Err(incomplete("wheel")),
        _ => {}
    }
    Ok(Loaded {
        calibration,
        sha256: hex::encode(Sha256::digest(&bytes)),
        modified: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    })
}

fn calibration_input(camera: &str, path: &Path, loaded: &Loaded, previous: Option<&str>) -> Input {
    Input::Calibration {
        at: At::now(),
        detail: json!({
            "camera": camera,
            "path": path.display().to_string(),
            "version": loaded.calibration.version,
            "sha256": loaded.sha256,
            "updated_utc": loaded.calibration.updated_utc,
            "previous_sha256": previous,
        }),
    }
}

async fn run(
    cam: CameraConfig,
    kind: VisionKind,
    path: PathBuf,
    table: TableHandle,
    video: VideoHandle,
    ctx: ComponentCtx,
) -> ComponentResult {
    let health = ctx.health.clone();
    health.fact("reads", kind.as_str());
    health.fact("calibration", path.display().to_string());
    let loaded = load(&path, kind)?;
    health.fact(
        "calibration_version",
        loaded.calibration.version.to_string(),
    );
    table
        .vision
        .send(calibration_input(&cam.name, &path, &loaded, None))
        .await
        .map_err(|_| VisionStageError::EngineGone)?;
    info!(camera = %cam.name, version = loaded.calibration.version, sha256 = %loaded.sha256, "vision calibration loaded");

    // The camera component may be (re)starting: wait for it, then tap it.
    health.set(State::Starting, format!("waiting for camera {}", cam.name));
    let camera = loop {
        if let Some(c) = video.get(&cam.name) {
            break c;
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    let (width, height) = match (kind, &loaded.calibration.table) {
        (VisionKind::Cards, Some(t)) => (t.image.width, t.image.height),
        // The wheel's geometry is in the camera's own pixels.
        _ => (cam.width, cam.height),
    };
    let tap = camera
        .tap_raw(Some(width), Some(height), Some(cam.vision_fps), Some("BGR"))
        .map_err(|e| VisionStageError::Tap {
            camera: cam.name.clone(),
            detail: e.to_string(),
        })?;
    health.set(
        State::Up,
        format!(
            "reading {} at {width}x{height}, {} fps",
            kind.as_str(),
            cam.vision_fps
        ),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        let health = health.clone();
        let sender = table.vision.clone();
        let camera_name = cam.name.clone();
        let video = video.clone();
        let camera = camera.clone();
        tokio::task::spawn_blocking(move || {
            let _ = croupier_vision::opencv::core::set_num_threads(1);
            let mut stage = Stage {
                camera: camera_name,
                path,
                kind,
                loaded,
                reader: None,
                tracker: CardTracker::new(TrackerSettings::default()),
                // Three frames in a row (0.6 s at 5 fps) make a ball at rest; a moment of
                // glare or a hand over it does not make it a new one.
                settle: SettledFilter::new(3, 5),
                health,
                sender,
                last_check: Instant::now(),
            };
            stage.reader = stage.card_reader()?;
            while !stop.load(Ordering::Relaxed) {
                // A rebuilt camera is a new pipeline: this tap is dead, start over.
                if !video
                    .get(&stage.camera)
                    .is_some_and(|c| Arc::ptr_eq(&c, &camera))
                {
                    return Err::<(), Box<dyn std::error::Error + Send + Sync>>(
                        "the camera was rebuilt; tapping it again".into(),
                    );
                }
                stage.check_calibration()?;
                let Some(frame) = pull_frame(&tap, Duration::from_millis(250)) else {
                    continue;
                };
                stage.frame(&frame)?;
            }
            Ok(())
        })
    };
    let mut worker = worker;
    let outcome: ComponentResult = tokio::select! {
        () = ctx.cancel.cancelled() => {
            stop.store(true, Ordering::Relaxed);
            match tokio::time::timeout(Duration::from_secs(2), &mut worker).await {
                Ok(_) => Ok(()),
                Err(_) => {
                    warn!(camera = %cam.name, "the vision stage did not stop within 2 s");
                    Ok(())
                }
            }
        }
        joined = &mut worker => match joined {
            Ok(result) => result,
            Err(e) => Err(format!("the vision stage panicked: {e}").into()),
        },
    };
    outcome
}

/// The blocking half: one frame in, sightings out.
struct Stage {
    camera: String,
    path: PathBuf,
    kind: VisionKind,
    loaded: Loaded,
    reader: Option<CardReader>,
    tracker: CardTracker,
    settle: SettledFilter,
    health: HealthHandle,
    sender: mpsc::Sender<Input>,
    last_check: Instant,
}

impl Stage {
    fn card_reader(&self) -> Result<Option<CardReader>, VisionStageError> {
        match self.kind {
            VisionKind::Cards => {
                CardReader::new(&self.loaded.calibration)
                    .map(Some)
                    .map_err(|source| VisionStageError::Calibration {
                        path: self.path.display().to_string(),
                        source,
                    })
            }
            VisionKind::Wheel => Ok(None),
        }
    }

    /// Re-reads a calibration file that changed, and journals the change. A changed file that
    /// does not load is refused (the stage keeps reading with the previous one).
    fn check_calibration(&mut self) -> Result<(), VisionStageError> {
        if self.last_check.elapsed() < CALIBRATION_CHECK {
            return Ok(());
        }
        self.last_check = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == self.loaded.modified {
            return Ok(());
        }
        match load(&self.path, self.kind) {
            Ok(loaded) if loaded.sha256 == self.loaded.sha256 => self.loaded.modified = modified,
            Ok(loaded) => {
                let previous = self.loaded.sha256.clone();
                info!(camera = %self.camera, version = loaded.calibration.version, "vision calibration changed; reloading");
                let input = calibration_input(&self.camera, &self.path, &loaded, Some(&previous));
                let old = std::mem::replace(&mut self.loaded, loaded);
                match self.card_reader() {
                    Ok(reader) => {
                        self.reader = reader;
                        self.health.fact(
                            "calibration_version",
                            self.loaded.calibration.version.to_string(),
                        );
                        self.sender
                            .blocking_send(input)
                            .map_err(|_| VisionStageError::EngineGone)?;
                    }
                    Err(err) => {
                        warn!(camera = %self.camera, error = %err, "the changed calibration is refused; keeping the previous one");
                        self.loaded = old;
                        self.loaded.modified = modified;
                    }
                }
            }
            Err(err) => {
                warn!(camera = %self.camera, error = %err, "the changed calibration is refused; keeping the previous one");
                self.health.add("calibration_refused", 1);
                self.loaded.modified = modified;
            }
        }
        Ok(())
    }

    fn frame(&mut self, frame: &TappedFrame) -> Result<(), VisionStageError> {
        let Some(mat) = to_mat(frame) else {
            self.health.add("frames_unusable", 1);
            return Ok(());
        };
        let started = Instant::now();
        let capture_utc = frame.capture_utc.unwrap_or_else(SystemTime::now);
        let at = at_capture(capture_utc);
        let timecode = frame.timecode.map(|t| t.to_string());
        let base = json!({
            "camera": self.camera,
            "timecode": timecode,
            "capture_utc": crate::clock::format_utc(capture_utc),
        });
        let mut sightings = Vec::new();
        match (&self.reader, self.kind) {
            (Some(reader), VisionKind::Cards) => match reader.read(&mat) {
                Ok(reads) => {
                    self.health.add("rejected", reads.rejected as u64);
                    for read in self.tracker.observe(&reads.cards) {
                        let Ok(card) = read.card.parse::<Card>() else {
                            continue;
                        };
                        let mut detail = base.clone();
                        detail["confidence"] = json!(round3(read.confidence));
                        detail["corners_px"] = json!(read.corners_px);
                        sightings.push(Input::Witness {
                            source: Source::Vision,
                            at,
                            witness: Witness::Card {
                                card,
                                zone: read.zone.clone(),
                            },
                            detail,
                        });
                    }
                }
                Err(err) => {
                    self.health.add("errors", 1);
                    warn!(camera = %self.camera, error = %err, "card reader failed on a frame");
                }
            },
            (_, VisionKind::Wheel) => {
                let Some(wheel) = &self.loaded.calibration.wheel else {
                    return Ok(());
                };
                match read_pocket(&mat, wheel, &self.loaded.calibration.thresholds) {
                    Ok(read) => {
                        if let Some(read) = self.settle.push(read.as_ref()) {
                            if let Some(number) = pocket_number(&read.number) {
                                let mut detail = base.clone();
                                detail["confidence"] = json!(round3(read.confidence));
                                sightings.push(Input::Witness {
                                    source: Source::Vision,
                                    at,
                                    witness: Witness::Pocket { number },
                                    detail,
                                });
                            }
                        }
                    }
                    Err(err) => {
                        self.health.add("errors", 1);
                        warn!(camera = %self.camera, error = %err, "pocket reader failed on a frame");
                    }
                }
            }
            (None, VisionKind::Cards) => {}
        }
        let secs = started.elapsed().as_secs_f64();
        crate::metrics::observe(
            "croupier_vision_read_seconds",
            &[("camera", &self.camera)],
            secs,
        );
        let ms = secs * 1000.0;
        self.health.add("frames", 1);
        self.health.fact("read_ms", format!("{ms:.1}"));
        for input in sightings {
            self.health.add("sightings", 1);
            self.sender
                .blocking_send(input)
                .map_err(|_| VisionStageError::EngineGone)?;
        }
        Ok(())
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The engine's instant for a frame's capture: its UTC, and the monotonic clock that far back.
fn at_capture(capture_utc: SystemTime) -> At {
    let now = At::now();
    let age = SystemTime::now()
        .duration_since(capture_utc)
        .unwrap_or_default();
    At {
        utc: capture_utc,
        mono_ns: now
            .mono_ns
            .saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(0)),
    }
}

/// `"00"` is 37, as the wheel reports it.
fn pocket_number(label: &str) -> Option<u8> {
    if label == "00" {
        return Some(37);
    }
    label.parse::<u8>().ok().filter(|n| *n <= 36)
}

/// A packed BGR frame as an OpenCV matrix (copied: the frame is small and the reader's).
fn to_mat(frame: &TappedFrame) -> Option<Mat> {
    if frame.pixel_bytes != 3 {
        return None;
    }
    let rows = i32::try_from(frame.height).ok()?;
    let flat = Mat::from_slice(&frame.data).ok()?;
    let shaped = flat.reshape(3, rows).ok()?;
    let mut out = Mat::default();
    shaped.copy_to(&mut out).ok()?;
    (out.typ() == CV_8UC3).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pocket_labels_map_to_the_wheel_numbers() {
        assert_eq!(pocket_number("00"), Some(37));
        assert_eq!(pocket_number("0"), Some(0));
        assert_eq!(pocket_number("36"), Some(36));
        assert_eq!(pocket_number("37"), None);
        assert_eq!(pocket_number("x"), None);
    }
}
