//! The table's cameras as daemon components: each `[[camera]]` runs one
//! [`croupier_pipelines::camera::Camera`] (capture, timecode, overlay, one encode, WebRTC,
//! LL-HLS, recording), shows up on `/status` and `/metrics` as `camera:<name>`, and is served by
//! the HTTP listener at `/whep/<camera>`, `/hls/<camera>/…` and `/video/<camera>`.
//!
//! Frames are stamped with the engine's own timecode function ([`EngineTimecode`]), so the
//! label on a frame equals the label on an event that happened at the frame's capture instant.
//! A lost camera does not make the table unready: the engine works from its sensors, and the
//! picture says "camera lost" while the source is retried.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use croupier_pipelines::camera::{Camera, CameraState};
use croupier_pipelines::video::{
    CameraSettings, FrameTimecode, IceSettings, RecordingSettings, TableView, TimecodeSource,
    WhipSettings,
};
use time::OffsetDateTime;
use tracing::warn;

use crate::config::{CameraConfig, Config, VideoConfig};
use crate::health::State;
use crate::supervisor::{ComponentCtx, ComponentResult, ComponentSpec};
use crate::table::TableHandle;
use crate::timecode::{Timecode, TimecodeRate};

/// How long the encoder may produce nothing (the camera-lost picture keeps it busy even without
/// a camera) before the camera is rebuilt.
const OUTPUT_STALL: Duration = Duration::from_secs(10);

/// The running cameras, by name, for the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct VideoHandle {
    cameras: Arc<RwLock<BTreeMap<String, Arc<Camera>>>>,
}

impl VideoHandle {
    pub fn get(&self, name: &str) -> Option<Arc<Camera>> {
        self.cameras
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Camera>> {
        self.cameras
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, camera: Arc<Camera>) {
        self.cameras
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(camera.name().to_owned(), camera);
    }

    fn remove(&self, name: &str) -> Option<Arc<Camera>> {
        self.cameras
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }
}

/// The engine's timecode, for the frames.
#[derive(Debug, Clone, Copy)]
pub struct EngineTimecode(pub TimecodeRate);

impl TimecodeSource for EngineTimecode {
    fn timecode_at(&self, utc: SystemTime) -> FrameTimecode {
        let tc = Timecode::at_utc(OffsetDateTime::from(utc), self.0);
        let (n, d) = self.0.fraction();
        FrameTimecode {
            hours: tc.hours(),
            minutes: tc.minutes(),
            seconds: tc.seconds(),
            frames: tc.frames(),
            fps_n: i32::try_from(n).unwrap_or(25),
            fps_d: i32::try_from(d).unwrap_or(1),
            drop_frame: self.0.is_drop_frame(),
        }
    }
}

/// What a camera runs with, from its `[[camera]]` and `[video]`.
pub fn camera_settings(
    cam: &CameraConfig,
    video: &VideoConfig,
    rate: TimecodeRate,
) -> CameraSettings {
    let mut s = CameraSettings::new(cam.name.clone(), cam.source.clone());
    s.width = cam.width;
    s.height = cam.height;
    let (n, d) = cam.fps.unwrap_or(rate).fraction();
    s.fps = (
        i32::try_from(n).unwrap_or(25),
        i32::try_from(d).unwrap_or(1),
    );
    s.source_caps = cam.caps.clone();
    s.encoder = cam.encoder;
    s.bitrate_kbps = cam.bitrate_kbps;
    s.overlay = cam.overlay;
    s.qr_timestamp = cam.qr_timestamp;
    s.max_viewers = cam.max_viewers;
    s.ice = IceSettings {
        stun: video.stun.clone(),
        turn: video.turn.clone(),
    };
    s.recording = cam.recording.then(|| RecordingSettings {
        dir: video.recording_dir.clone(),
        segment: video.recording_segment,
        retention: video.recording_retention,
    });
    s.whip = cam.whip_url.clone().map(|url| WhipSettings {
        url,
        token: cam
            .whip_token_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.trim().to_owned()),
    });
    s
}

/// One supervised component per camera.
pub fn components(config: &Config, table: &TableHandle, video: &VideoHandle) -> Vec<ComponentSpec> {
    config
        .cameras
        .iter()
        .map(|cam| {
            let settings = camera_settings(cam, &config.video, config.timing.timecode_rate);
            let rate = config.timing.timecode_rate;
            let table = table.clone();
            let video = video.clone();
            ComponentSpec::new(
                format!("camera:{}", cam.name),
                "camera",
                format!("{settings:?}"),
                move |ctx| run(settings.clone(), rate, table.clone(), video.clone(), ctx),
            )
        })
        .collect()
}

async fn run(
    settings: CameraSettings,
    rate: TimecodeRate,
    table: TableHandle,
    video: VideoHandle,
    ctx: ComponentCtx,
) -> ComponentResult {
    let health = ctx.health.clone();
    health.fact("source", settings.source.to_string());
    health.fact(
        "fps_target",
        format!(
            "{:.3}",
            f64::from(settings.fps.0) / f64::from(settings.fps.1.max(1))
        ),
    );
    health.fact(
        "format",
        format!(
            "{}x{}@{}/{} {} {} kbit/s",
            settings.width,
            settings.height,
            settings.fps.0,
            settings.fps.1,
            settings.encoder.as_str(),
            settings.bitrate_kbps
        ),
    );
    let listener_health = health.clone();
    let listener = Arc::new(move |state: CameraState, reason: &str| {
        let s = match state {
            CameraState::Starting => State::Starting,
            CameraState::Up => State::Up,
            CameraState::Down => State::Down,
        };
        if s == State::Down {
            listener_health.failed(reason);
        } else {
            listener_health.set(s, reason.to_owned());
        }
    });
    let start = settings.clone();
    let camera = tokio::task::spawn_blocking(move || {
        Camera::start(start, Arc::new(EngineTimecode(rate)), listener)
    })
    .await??;
    video.insert(camera.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_view = TableView::default();
    let mut last_counts = (0u64, 0u64, 0u64, std::time::Instant::now());
    let mut since_rates = 0u32;
    let mut last_dropped = 0u64;
    // The encoder's output is the one thing every viewer, the fallback and the recording share:
    // if it stops (a broken encoder, a wedged element), the whole camera is rebuilt.
    let mut last_encoded = (0u64, std::time::Instant::now());
    let outcome: ComponentResult = loop {
        tokio::select! {
            () = ctx.cancel.cancelled() => break Ok(()),
            _ = tick.tick() => {}
        }
        let encoded = camera
            .stats()
            .encoded_frames
            .load(std::sync::atomic::Ordering::Relaxed);
        if encoded != last_encoded.0 {
            last_encoded = (encoded, std::time::Instant::now());
        } else if last_encoded.1.elapsed() > OUTPUT_STALL {
            break Err(format!(
                "the video output stalled (no encoded frame for {} s); rebuilding the camera",
                OUTPUT_STALL.as_secs()
            )
            .into());
        }
        let view = table_view(&table);
        if view != last_view {
            camera.set_table(view.clone());
            last_view = view;
        }
        since_rates += 1;
        if since_rates >= 5 {
            since_rates = 0;
            // Once a second, so a viewer's countdown and timecode never drift far.
            camera.broadcast_table();
            health.fact("encoders", camera.encoder_count().to_string());
            health.fact(
                "pts_utc_offset_us",
                camera
                    .stats()
                    .pts_utc_offset_us
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .to_string(),
            );
            health.fact("sessions", camera.sessions().to_string());
            let stats = camera.stats();
            use std::sync::atomic::Ordering::Relaxed;
            let frames = stats.frames.load(Relaxed) + stats.slate_frames.load(Relaxed);
            let bytes = stats.encoded_bytes.load(Relaxed);
            let restarts = stats.restarts.load(Relaxed);
            let secs = last_counts.3.elapsed().as_secs_f64().max(0.001);
            health.fact(
                "fps",
                format!("{:.1}", (frames - last_counts.0) as f64 / secs),
            );
            health.fact(
                "bitrate_kbps",
                format!(
                    "{:.0}",
                    (bytes - last_counts.1) as f64 * 8.0 / 1000.0 / secs
                ),
            );
            health.fact("viewers", stats.viewers.load(Relaxed).to_string());
            if let Some(whip) = camera.whip_state() {
                health.fact("whip", whip);
            }
            health.add("reconnects", restarts - last_counts.2);
            health.fact(
                "encoder_latency_us_sum",
                stats.encoder_latency_us_sum.load(Relaxed).to_string(),
            );
            health.fact(
                "encoder_latency_frames",
                stats.encoder_latency_frames.load(Relaxed).to_string(),
            );
            let dropped = stats.dropped.load(Relaxed);
            health.add("dropped", dropped.saturating_sub(last_dropped));
            last_dropped = dropped;
            // Round trip and loss of the WebRTC viewers, from webrtcbin's statistics.
            let peers = camera.peer_stats();
            let rtts: Vec<f64> = peers.iter().filter_map(|p| p.round_trip_time).collect();
            let lost: i64 = peers.iter().filter_map(|p| p.packets_lost).sum();
            let name = camera.name().to_owned();
            let labels = [("camera", name.as_str())];
            crate::metrics::gauge(
                "croupier_webrtc_viewers",
                "WebRTC (WHEP) sessions of the camera.",
                &labels,
                peers.len() as f64,
            );
            crate::metrics::gauge(
                "croupier_webrtc_rtt_max_seconds",
                "The longest round-trip time among the camera's WebRTC viewers (0 without viewers).",
                &labels,
                rtts.iter().copied().fold(0.0, f64::max),
            );
            crate::metrics::gauge(
                "croupier_webrtc_packets_lost",
                "Packets the camera's current WebRTC viewers reported lost (summed over viewers).",
                &labels,
                lost as f64,
            );
            last_counts = (frames, bytes, restarts, std::time::Instant::now());
        }
    };
    video.remove(camera.name());
    let stopping = camera.clone();
    if tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || stopping.stop()),
    )
    .await
    .is_err()
    {
        warn!(camera = %camera.name(), "the camera did not stop within 5 s");
    }
    outcome
}

/// The phase, round and deadline the overlay and data channel show.
fn table_view(table: &TableHandle) -> TableView {
    let Some(snap) = table.snapshot() else {
        return TableView {
            phase: "idle".into(),
            ..TableView::default()
        };
    };
    let deadline = snap.deadline_utc.as_deref().and_then(|d| {
        OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(SystemTime::from)
    });
    let open = snap.phase.as_str() == "open";
    TableView {
        phase: snap.phase.as_str().to_owned(),
        round_id: snap.round_id,
        deadline: deadline.filter(|_| open),
    }
}
