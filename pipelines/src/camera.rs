//! One table camera: capture, timecode, overlay, one encode, and the outputs fed from it.
//!
//! A camera is two GStreamer pipelines joined by an appsink/appsrc pair:
//!
//! ```text
//!  source pipeline (restarted on loss)        output pipeline (lives as long as the daemon)
//!  videotestsrc | v4l2src | rtsp  ─► appsink ─► appsrc ─► timecode overlay ─► tee ─► encoder ─► tee ─┬─► mp4mux (fMP4) ─► LL-HLS
//!    ─► convert/scale/rate to the                  (metas: SMPTE timecode,         │                  ├─► splitmuxsink (recording)
//!       configured size and rate                    capture UTC)                   └─► (vision tap)  └─► rtph264pay ─► webrtcbin, one per viewer / WHIP
//! ```
//!
//! Why two pipelines: when a camera is unplugged, an RTSP link drops or a source ends, only the
//! source pipeline is torn down and retried with backoff. The encoder, the WebRTC viewers, the
//! LL-HLS playlist and the recording go on: they get a "camera lost" picture at the same frame
//! rate until the camera returns, so players and viewers never see a frozen or black stream
//! without explanation, and other cameras are untouched.
//!
//! Every frame pushed to the output carries a `GstVideoTimeCodeMeta` with the engine's timecode
//! for the frame's capture instant (the same function that stamps events), and a
//! `GstReferenceTimestampMeta` (`timestamp/x-unix`) with that instant in UTC.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use tracing::{debug, info, warn};

use crate::hls::HlsStream;
use crate::video::{
    require_element, CameraSettings, EncoderKind, FrameTimecode, TableView, TimecodeSource,
    VideoError,
};
use crate::CameraSource;

/// How long the source may deliver nothing before it counts as lost (an RTSP camera that
/// stops sending without closing the connection, a V4L2 device that hangs).
const STALL_AFTER: Duration = Duration::from_secs(3);
/// The longest a source start may take to deliver its first frame.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A source that ran this long before it failed starts its backoff afresh.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);

/// Whether the camera's picture is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraState {
    Starting,
    Up,
    /// The source is lost; viewers see the "camera lost" picture while it is retried.
    Down,
}

/// Called on every state change with a reason for the technician.
pub type StateListener = Arc<dyn Fn(CameraState, &str) + Send + Sync>;

/// Counters of one camera, for `/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct CameraStats {
    /// Frames from the camera pushed to the encoder.
    pub frames: AtomicU64,
    /// "Camera lost" frames pushed while the source was down.
    pub slate_frames: AtomicU64,
    /// Source frames dropped because the output was behind.
    pub dropped: AtomicU64,
    /// Encoded bytes (for the bitrate).
    pub encoded_bytes: AtomicU64,
    /// Encoded frames.
    pub encoded_frames: AtomicU64,
    /// Source restarts.
    pub restarts: AtomicU64,
    /// WebRTC viewers now connected through WHEP.
    pub viewers: AtomicU64,
    /// The capture UTC of a frame minus its PTS in the output pipeline, in µs: what turns the
    /// timestamp a `debugqroverlay` QR code shows back into UTC.
    pub pts_utc_offset_us: std::sync::atomic::AtomicI64,
    /// Encoder latency: the sum (µs) and count of frames timed from the encoder's input to
    /// its output (matched by PTS), so a reader gets the mean over any interval.
    pub encoder_latency_us_sum: AtomicU64,
    pub encoder_latency_frames: AtomicU64,
}

/// The appsrc side, shared by the source's callback and the slate pump.
struct Pusher {
    appsrc: gst_app::AppSrc,
    output: gst::Pipeline,
    last_pts: Option<gst::ClockTime>,
    last_real: Option<Instant>,
    timecode: Arc<dyn TimecodeSource>,
    frame: gst::ClockTime,
    slate: gst::Buffer,
    last_offset_us: Option<i64>,
    last_capture: Option<SystemTime>,
    last_label: Option<FrameTimecode>,
}

impl Pusher {
    /// Pushes one frame captured `age` ago at `capture_utc`, stamped with the engine's timecode.
    fn push(&mut self, mut buffer: gst::Buffer, capture_utc: SystemTime, age: Duration) -> bool {
        let Some(now) = self.output.current_running_time() else {
            return false;
        };
        // At the hand-over from the camera-lost picture (stamped "now") to the camera, the
        // camera's first frame can be older than the last picture shown: drop it, so capture
        // times and timecode labels never run backwards.
        if self.last_capture.is_some_and(|last| capture_utc <= last) {
            return false;
        }
        self.last_capture = Some(capture_utc);
        let age = gst::ClockTime::from_nseconds(u64::try_from(age.as_nanos()).unwrap_or(0));
        let mut pts = now.saturating_sub(age);
        if let Some(last) = self.last_pts {
            // Frames must leave in order even when the slate hands over to the camera.
            if pts <= last {
                pts = last + gst::ClockTime::from_nseconds(1);
            }
        }
        let tc = self.timecode.timecode_at(capture_utc);
        // Two frames never share a label (it can happen only at that same hand-over).
        if self.last_label == Some(tc) {
            return false;
        }
        self.last_label = Some(tc);
        self.last_pts = Some(pts);
        let utc_ns = capture_utc
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(0))
            .unwrap_or(0);
        self.last_offset_us = i64::try_from(utc_ns / 1000)
            .ok()
            .zip(i64::try_from(pts.useconds()).ok())
            .map(|(u, p)| u - p);
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(self.frame);
            while let Some(meta) = b.meta_mut::<gst_video::VideoTimeCodeMeta>() {
                if meta.remove().is_err() {
                    break;
                }
            }
            if let Ok(vtc) = video_time_code(&tc) {
                gst_video::VideoTimeCodeMeta::add(b, &vtc);
            }
            gst::ReferenceTimestampMeta::add(
                b,
                &unix_caps(),
                gst::ClockTime::from_nseconds(utc_ns),
                gst::ClockTime::NONE,
            );
        }
        self.appsrc.push_buffer(buffer).is_ok()
    }
}

/// The caps GStreamer uses to say a reference timestamp is UTC since the Unix epoch.
fn unix_caps() -> gst::Caps {
    gst::Caps::builder("timestamp/x-unix").build()
}

/// The engine's label as a GStreamer timecode.
pub fn video_time_code(tc: &FrameTimecode) -> Result<gst_video::ValidVideoTimeCode, VideoError> {
    let flags = if tc.drop_frame {
        gst_video::VideoTimeCodeFlags::DROP_FRAME
    } else {
        gst_video::VideoTimeCodeFlags::empty()
    };
    gst_video::ValidVideoTimeCode::new(
        gst::Fraction::new(tc.fps_n, tc.fps_d),
        None,
        flags,
        tc.hours,
        tc.minutes,
        tc.seconds,
        tc.frames,
        0,
    )
    .map_err(|e| VideoError::pipeline("-", "timecode", e))
}

/// The label a frame carries, read back from its meta.
pub fn frame_timecode(buffer: &gst::BufferRef) -> Option<FrameTimecode> {
    let meta = buffer.meta::<gst_video::VideoTimeCodeMeta>()?;
    let tc = meta.tc();
    let fps = tc.fps();
    Some(FrameTimecode {
        hours: tc.hours(),
        minutes: tc.minutes(),
        seconds: tc.seconds(),
        frames: tc.frames(),
        fps_n: fps.numer(),
        fps_d: fps.denom(),
        drop_frame: tc
            .flags()
            .contains(gst_video::VideoTimeCodeFlags::DROP_FRAME),
    })
}

/// The UTC capture instant a frame carries.
pub fn frame_capture_utc(buffer: &gst::BufferRef) -> Option<SystemTime> {
    let caps = unix_caps();
    buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| m.reference().is_subset(&caps))
        .map(|m| UNIX_EPOCH + Duration::from_nanos(m.timestamp().nseconds()))
}

/// Times each frame through the encoder: the instant a PTS enters is remembered (the last
/// 64), and the frame with that PTS leaving (give or take the encoder's constant shift) adds
/// its delay to the camera's stats.
fn time_the_encoder(encoder: &gst::Element, stats: &Arc<CameraStats>) {
    let (Some(sink), Some(src)) = (encoder.static_pad("sink"), encoder.static_pad("src")) else {
        return;
    };
    let entered = Arc::new(Mutex::new(
        std::collections::VecDeque::<(u64, Instant)>::new(),
    ));
    {
        let entered = entered.clone();
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                let mut q = entered.lock().unwrap_or_else(PoisonError::into_inner);
                if q.len() >= 64 {
                    q.pop_front();
                }
                q.push_back((pts.nseconds(), Instant::now()));
            }
            gst::PadProbeReturn::Ok
        });
    }
    let stats = stats.clone();
    // x264enc shifts every output timestamp by a constant (1000 hours, so that DTS never goes
    // negative): the shift is learnt from the first frame out and re-learnt if it stops fitting.
    let shift = AtomicU64::new(0);
    src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            let mut q = entered.lock().unwrap_or_else(PoisonError::into_inner);
            let out = pts.nseconds();
            let known = shift.load(Ordering::Relaxed);
            let mut found = q.iter().position(|(p, _)| p.wrapping_add(known) == out);
            if found.is_none() {
                if let Some((first, _)) = q.front() {
                    shift.store(out.wrapping_sub(*first), Ordering::Relaxed);
                    found = Some(0);
                }
            }
            if let Some(i) = found {
                let (_, at) = q[i];
                q.drain(..=i);
                let us = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats
                    .encoder_latency_us_sum
                    .fetch_add(us, Ordering::Relaxed);
                stats.encoder_latency_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// A frame pulled from a [`Camera::tap_raw`] tap: tightly packed pixels (no row padding) with
/// the frame's capture UTC and timecode, for a reader that does not speak GStreamer.
#[derive(Debug, Clone)]
pub struct TappedFrame {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel of the packed format (3 for BGR).
    pub pixel_bytes: u32,
    pub data: Vec<u8>,
    pub capture_utc: Option<SystemTime>,
    pub timecode: Option<FrameTimecode>,
}

/// Waits up to `timeout` for the tap's next frame. `None` on timeout, at the end of the stream,
/// or for a frame in a planar format (ask the tap for a packed one such as `BGR`).
pub fn pull_frame(tap: &gst_app::AppSink, timeout: Duration) -> Option<TappedFrame> {
    let sample = tap.try_pull_sample(gst::ClockTime::from_nseconds(
        u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
    ))?;
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    if info.n_planes() != 1 {
        return None;
    }
    let buffer = sample.buffer()?;
    let map = buffer.map_readable().ok()?;
    let (width, height) = (info.width(), info.height());
    let pixel_bytes = info.format_info().pixel_stride()[0].unsigned_abs();
    let stride = usize::try_from(info.stride()[0].unsigned_abs()).ok()?;
    let row = usize::try_from(width * pixel_bytes).ok()?;
    let mut data = Vec::with_capacity(row * usize::try_from(height).ok()?);
    for y in 0..usize::try_from(height).ok()? {
        let start = y * stride + info.offset()[0];
        data.extend_from_slice(map.get(start..start + row)?);
    }
    Some(TappedFrame {
        width,
        height,
        pixel_bytes,
        data,
        capture_utc: frame_capture_utc(buffer),
        timecode: frame_timecode(buffer),
    })
}

struct Shared {
    settings: CameraSettings,
    stats: Arc<CameraStats>,
    state: Mutex<(CameraState, String)>,
    listener: StateListener,
    stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
    pusher: Mutex<Pusher>,
    table: Mutex<TableView>,
    status_text: Option<gst::Element>,
}

impl Shared {
    fn set_state(&self, state: CameraState, reason: &str) {
        let changed = {
            let mut cur = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = cur.0 != state;
            *cur = (state, reason.to_owned());
            changed
        };
        if changed {
            match state {
                CameraState::Down => {
                    warn!(camera = %self.settings.name, reason, "camera lost; retrying");
                }
                CameraState::Up => info!(camera = %self.settings.name, reason, "camera up"),
                CameraState::Starting => {
                    debug!(camera = %self.settings.name, reason, "camera starting")
                }
            }
            (self.listener)(state, reason);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early when the camera stops.
    fn sleep(&self, d: Duration) {
        let guard = self.wake.0.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopped() {
            return;
        }
        let _ = self.wake.1.wait_timeout(guard, d);
    }
}

/// A running camera.
pub struct Camera {
    shared: Arc<Shared>,
    output: gst::Pipeline,
    encoded: gst::Element,
    raw: gst::Element,
    hls: Arc<HlsStream>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) peers: Mutex<HashMap<String, crate::webrtc::Peer>>,
    pub(crate) self_ref: Weak<Camera>,
    whip_state: Mutex<Option<String>>,
    /// WHEP offers admitted and still being answered: they hold a viewer slot.
    pub(crate) negotiating: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("name", &self.shared.settings.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Camera {
    /// Builds the output pipeline, starts it, and starts the source with retries.
    pub fn start(
        settings: CameraSettings,
        timecode: Arc<dyn TimecodeSource>,
        listener: StateListener,
    ) -> Result<Arc<Camera>, VideoError> {
        crate::video::init()?;
        let name = settings.name.clone();
        let err = |what: &str, e: &dyn std::fmt::Display| VideoError::pipeline(&name, what, e);
        for element in [
            "videotestsrc",
            "videoconvert",
            "videoscale",
            "videorate",
            "appsrc",
            "appsink",
            "textoverlay",
            "timeoverlay",
            "h264parse",
            "mp4mux",
            "rtph264pay",
            "webrtcbin",
            settings.encoder.element(),
        ] {
            require_element(element)?;
        }
        match &settings.source {
            CameraSource::Test => {}
            CameraSource::V4l2 { .. } => require_element("v4l2src")?,
            CameraSource::Rtsp { .. } => require_element("rtspsrc")?,
            CameraSource::Image { .. } => require_element("decodebin")?,
        }
        if settings.qr_timestamp {
            require_element("debugqroverlay")?;
        }

        let output = gst::Pipeline::with_name(&format!("camera-{name}"));
        let caps = raw_caps(&settings);
        let appsrc = gst_app::AppSrc::builder()
            .name("frames")
            .caps(&caps)
            .is_live(true)
            .format(gst::Format::Time)
            .max_buffers(4)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let mut chain: Vec<gst::Element> = vec![appsrc.clone().upcast()];
        let mut status_text = None;
        if settings.overlay {
            let tc = make("timeoverlay", &name)?;
            tc.set_property_from_str("time-mode", "time-code");
            tc.set_property_from_str("halignment", "right");
            tc.set_property_from_str("valignment", "top");
            tc.set_property("font-desc", "Monospace Bold 18");
            chain.push(tc);
        }
        // The status line is always there: it says "camera lost" even when the overlay is off.
        let text = make("textoverlay", &name)?;
        text.set_property_from_str("halignment", "left");
        text.set_property_from_str("valignment", "top");
        text.set_property("font-desc", "Sans Bold 18");
        text.set_property("shaded-background", true);
        text.set_property("text", "");
        chain.push(text.clone());
        status_text = Some(text).or(status_text);
        if settings.qr_timestamp {
            // debugqroverlay encodes each frame's PTS ({"TIMESTAMP": ns, …}); the camera
            // publishes UTC − PTS (`pts_utc_offset_us`), so a reader turns it into the capture
            // UTC. (qroverlay's `data` cannot change per frame in GStreamer 1.22.)
            let q = make("debugqroverlay", &name)?;
            q.set_property("x", 2.0f32);
            q.set_property("y", 55.0f32);
            q.set_property("pixel-size", 4.0f32);
            chain.push(q);
        }
        let raw = make("tee", &name)?;
        raw.set_property("allow-not-linked", true);
        chain.push(raw.clone());
        let enc_queue = make("queue", &name)?;
        enc_queue.set_property("max-size-buffers", 3u32);
        enc_queue.set_property("max-size-bytes", 0u32);
        enc_queue.set_property("max-size-time", 0u64);
        enc_queue.set_property_from_str("leaky", "downstream");
        let encoder = encoder(&settings)?;
        let h264caps = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("profile", "constrained-baseline")
                    .build(),
            )
            .build()
            .map_err(|e| err("capsfilter", &e))?;
        let parse = make("h264parse", &name)?;
        parse.set_property("config-interval", -1i32);
        let encoded = make("tee", &name)?;
        encoded.set_property("allow-not-linked", true);
        let encoder_element = encoder.clone();
        let tail = [enc_queue.clone(), encoder, h264caps, parse, encoded.clone()];
        output
            .add_many(chain.iter().chain(tail.iter()))
            .map_err(|e| err("build", &e))?;
        gst::Element::link_many(&chain).map_err(|e| err("link overlay chain", &e))?;
        gst::Element::link_many(&tail).map_err(|e| err("link encoder", &e))?;
        link_tee(&raw, &enc_queue).map_err(|e| err("link encoder to raw tee", &e))?;

        let stats = Arc::new(CameraStats::default());
        {
            // Bitrate and encoded frame rate, counted where the encode fans out.
            let stats = stats.clone();
            if let Some(pad) = encoded.static_pad("sink") {
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                        stats
                            .encoded_bytes
                            .fetch_add(b.size() as u64, Ordering::Relaxed);
                        stats.encoded_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    gst::PadProbeReturn::Ok
                });
            }
        }
        time_the_encoder(&encoder_element, &stats);
        let hls = Arc::new(HlsStream::new(&name, &settings)?);
        crate::hls::attach(&output, &encoded, &hls, &name, &settings)?;
        if let Some(rec) = &settings.recording {
            crate::recording::attach(&output, &encoded, &name, rec, &settings)?;
        }

        let frame = gst::ClockTime::from_nseconds(
            u64::try_from(settings.frame_duration().as_nanos()).unwrap_or(40_000_000),
        );
        let pusher = Pusher {
            appsrc: appsrc.clone(),
            output: output.clone(),
            last_pts: None,
            last_real: None,
            timecode,
            frame,
            slate: slate_frame(&settings)?,
            last_offset_us: None,
            last_capture: None,
            last_label: None,
        };
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            stats,
            state: Mutex::new((CameraState::Starting, "starting".into())),
            listener,
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
            pusher: Mutex::new(pusher),
            table: Mutex::new(TableView::default()),
            status_text,
        });
        output
            .set_state(gst::State::Playing)
            .map_err(|e| err("start output pipeline", &e))?;
        watch_output_bus(&output, &name);

        let camera = Arc::new_cyclic(|me| Camera {
            shared: shared.clone(),
            output,
            encoded,
            raw,
            hls,
            threads: Mutex::new(Vec::new()),
            peers: Mutex::new(HashMap::new()),
            self_ref: me.clone(),
            whip_state: Mutex::new(None),
            negotiating: std::sync::atomic::AtomicUsize::new(0),
        });
        let pump = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("cam-{name}-pump"))
                .spawn(move || slate_pump(&shared))
                .map_err(|e| err("spawn", &e))?
        };
        let source = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("cam-{name}-src"))
                .spawn(move || source_loop(&shared))
                .map_err(|e| err("spawn", &e))?
        };
        camera
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([pump, source]);
        if let Some(whip) = settings.whip.clone() {
            crate::webrtc::start_whip(&camera, whip);
        }
        Ok(camera)
    }

    pub fn name(&self) -> &str {
        &self.shared.settings.name
    }

    pub fn settings(&self) -> &CameraSettings {
        &self.shared.settings
    }

    pub fn state(&self) -> (CameraState, String) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn stats(&self) -> &CameraStats {
        &self.shared.stats
    }

    /// The LL-HLS fallback of this camera.
    pub fn hls(&self) -> &Arc<HlsStream> {
        &self.hls
    }

    pub(crate) fn output(&self) -> &gst::Pipeline {
        &self.output
    }

    /// The tee the encoded H.264 fans out from.
    pub(crate) fn encoded_tee(&self) -> &gst::Element {
        &self.encoded
    }

    /// The tee of raw, stamped frames (before the encoder), for taps such as vision.
    pub fn raw_tee(&self) -> &gst::Element {
        &self.raw
    }

    pub(crate) fn add_thread(&self, handle: JoinHandle<()>) {
        self.threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.shared.stopped()
    }

    pub(crate) fn sleep_unless_stopping(&self, d: Duration) {
        self.shared.sleep(d);
    }

    pub(crate) fn set_whip_state(&self, state: String) {
        *self
            .whip_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(state);
    }

    /// Where the WHIP push stands (`connecting`, `connected`, `down: …`), if there is one.
    pub fn whip_state(&self) -> Option<String> {
        self.whip_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A tap on the stamped raw frames (before the encoder), downscaled to `width`×`height`
    /// and at most `max_fps` frames a second when given. It never slows the encode: the tap
    /// keeps only the newest frame, and frames the consumer is late for are dropped.
    ///
    /// `format` converts the frames (e.g. `BGR` for OpenCV); they are I420 otherwise.
    pub fn tap_raw(
        &self,
        width: Option<u32>,
        height: Option<u32>,
        max_fps: Option<u32>,
        format: Option<&str>,
    ) -> Result<gst_app::AppSink, VideoError> {
        let name = self.name();
        let err = |what: &str, e: &dyn std::fmt::Display| VideoError::pipeline(name, what, e);
        let queue = make("queue", name)?;
        queue.set_property("max-size-buffers", 1u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        let mut chain = vec![queue.clone()];
        if let Some(fps) = max_fps {
            let rate = make("videorate", name)?;
            rate.set_property("drop-only", true);
            rate.set_property("max-rate", i32::try_from(fps.max(1)).unwrap_or(i32::MAX));
            chain.push(rate);
        }
        if width.is_some() || height.is_some() || format.is_some() {
            chain.push(make("videoscale", name)?);
            if format.is_some() {
                chain.push(make("videoconvert", name)?);
            }
            let mut caps = gst::Caps::builder("video/x-raw");
            if let Some(f) = format {
                caps = caps.field("format", f);
            }
            if let Some(w) = width {
                caps = caps.field("width", i32::try_from(w).unwrap_or(i32::MAX));
            }
            if let Some(h) = height {
                caps = caps.field("height", i32::try_from(h).unwrap_or(i32::MAX));
            }
            let filter = gst::ElementFactory::make("capsfilter")
                .property("caps", caps.build())
                .build()
                .map_err(|e| err("capsfilter", &e))?;
            chain.push(filter);
        }
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .max_buffers(1)
            .drop(true)
            .build();
        chain.push(sink.clone().upcast());
        self.output
            .add_many(&chain)
            .map_err(|e| err("add tap", &e))?;
        gst::Element::link_many(&chain).map_err(|e| err("link tap", &e))?;
        for e in &chain {
            e.sync_state_with_parent()
                .map_err(|e| err("start tap", &e))?;
        }
        link_tee(&self.raw, &queue).map_err(|e| err("link tap", &e))?;
        Ok(sink)
    }

    /// How many encoders the camera's pipeline holds: one, however many viewers watch.
    pub fn encoder_count(&self) -> usize {
        let factory = self.shared.settings.encoder.element();
        self.output
            .iterate_recurse()
            .into_iter()
            .flatten()
            .filter(|e| e.factory().is_some_and(|f| f.name() == factory))
            .count()
    }

    /// What the overlay and the data channel say about the table.
    pub fn set_table(&self, view: TableView) {
        *self
            .shared
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = view;
        crate::webrtc::broadcast_table(self);
    }

    /// Sends the table message (phase, countdown, timecode now) to every viewer.
    pub fn broadcast_table(&self) {
        crate::webrtc::broadcast_table(self);
    }

    pub fn table(&self) -> TableView {
        self.shared
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The timecode of `utc` at the camera's stamping source.
    pub fn timecode_at(&self, utc: SystemTime) -> FrameTimecode {
        let tc = self
            .shared
            .pusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .timecode
            .clone();
        tc.timecode_at(utc)
    }

    /// Stops the source, ends every viewer, finishes the recording's file, and stops the
    /// output, within a bounded time.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.1.notify_all();
        crate::webrtc::close_all(self);
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
        // EOS lets splitmuxsink write the last file's index; a wedged element cannot hold us.
        let _ = self.output.send_event(gst::event::Eos::new());
        if let Some(bus) = self.output.bus() {
            let _ = bus.timed_pop_filtered(
                gst::ClockTime::from_seconds(2),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
        }
        let _ = self.output.set_state(gst::State::Null);
        self.hls.close();
        info!(camera = %self.name(), "camera stopped");
    }
}

fn make(factory: &str, camera: &str) -> Result<gst::Element, VideoError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| VideoError::pipeline(camera, &format!("create {factory}"), e))
}

/// Links a new branch to a tee through a request pad.
pub(crate) fn link_tee(tee: &gst::Element, sink: &gst::Element) -> Result<gst::Pad, String> {
    let src = tee
        .request_pad_simple("src_%u")
        .ok_or_else(|| "tee gave no pad".to_owned())?;
    let sinkpad = sink
        .static_pad("sink")
        .ok_or_else(|| "branch has no sink pad".to_owned())?;
    src.link(&sinkpad).map_err(|e| format!("{e:?}"))?;
    Ok(src)
}

fn raw_caps(s: &CameraSettings) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", i32::try_from(s.width).unwrap_or(1280))
        .field("height", i32::try_from(s.height).unwrap_or(720))
        .field("framerate", gst::Fraction::new(s.fps.0, s.fps.1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

fn encoder(s: &CameraSettings) -> Result<gst::Element, VideoError> {
    let enc = make(s.encoder.element(), &s.name)?;
    let gop = s.keyframe_interval();
    let set = |prop: &str, value: &str| {
        if enc.has_property(prop) {
            enc.set_property_from_str(prop, value);
        }
    };
    match s.encoder {
        EncoderKind::X264 => {
            set("tune", "zerolatency");
            set("speed-preset", "superfast");
            set("bitrate", &s.bitrate_kbps.to_string());
            set("key-int-max", &gop.to_string());
            set("bframes", "0");
            // Slice threads keep latency at one frame while still using both cores.
            set("sliced-threads", "true");
        }
        EncoderKind::V4l2 => {
            set(
                "extra-controls",
                &format!(
                    "controls,video_bitrate={},h264_i_frame_period={gop}",
                    u64::from(s.bitrate_kbps) * 1000
                ),
            );
        }
        EncoderKind::Vaapi => {
            set("rate-control", "cbr");
            set("bitrate", &s.bitrate_kbps.to_string());
            set("keyframe-period", &gop.to_string());
            set("max-bframes", "0");
        }
        EncoderKind::Nvh264 => {
            set("preset", "low-latency-hq");
            set("zerolatency", "true");
            set("bitrate", &s.bitrate_kbps.to_string());
            set("gop-size", &gop.to_string());
            set("bframes", "0");
        }
    }
    Ok(enc)
}

/// A mid-grey frame of the camera's size: what viewers see, with the status line saying the
/// camera is lost, while the source is retried.
fn slate_frame(s: &CameraSettings) -> Result<gst::Buffer, VideoError> {
    let info = gst_video::VideoInfo::builder(
        gst_video::VideoFormat::I420,
        s.width.max(2),
        s.height.max(2),
    )
    .build()
    .map_err(|e| VideoError::pipeline(&s.name, "slate", e))?;
    let y = (info.stride()[0] as usize) * (info.height() as usize);
    let mut data = vec![128u8; info.size()];
    // Dark grey luma, neutral chroma.
    data[..y.min(info.size())].fill(40);
    Ok(gst::Buffer::from_mut_slice(data))
}

/// Keeps the encoder fed while the camera is lost, and the status line current.
fn slate_pump(shared: &Arc<Shared>) {
    let frame = shared.settings.frame_duration();
    let mut next = Instant::now();
    while !shared.stopped() {
        next += frame;
        let now = Instant::now();
        if next > now {
            shared.sleep(next - now);
        } else {
            next = now;
        }
        if shared.stopped() {
            break;
        }
        let (state, reason) = shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(text) = &shared.status_text {
            let line = status_line(shared, state, &reason);
            if text.property::<String>("text") != line {
                text.set_property("text", line);
            }
        }
        let mut pusher = shared.pusher.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(offset) = pusher.last_offset_us {
            shared
                .stats
                .pts_utc_offset_us
                .store(offset, Ordering::Relaxed);
        }
        let idle = pusher.last_real.is_none_or(|t| t.elapsed() > frame * 3);
        if idle {
            let slate = pusher.slate.copy();
            if pusher.push(slate, SystemTime::now(), Duration::ZERO) {
                shared.stats.slate_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn status_line(shared: &Shared, state: CameraState, reason: &str) -> String {
    let name = &shared.settings.name;
    match state {
        CameraState::Down => return format!("CAMERA {name} LOST: {reason}. Reconnecting…"),
        CameraState::Starting => return format!("CAMERA {name}: starting…"),
        CameraState::Up => {}
    }
    if !shared.settings.overlay {
        return String::new();
    }
    let view = shared
        .table
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut line = view.phase.to_uppercase();
    if let Some(deadline) = view.deadline {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        line.push_str(&format!("  {:.1} s", left.as_secs_f64()));
    }
    if let Some(round) = &view.round_id {
        line.push_str(&format!("  · {round}"));
    }
    line
}

/// Runs the source with retries until the camera stops.
fn source_loop(shared: &Arc<Shared>) {
    let mut backoff = BACKOFF_FIRST;
    let mut first = true;
    while !shared.stopped() {
        if !first {
            shared.stats.restarts.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let began = Instant::now();
        let reason = match run_source(shared) {
            Ok(()) => break,
            Err(reason) => reason,
        };
        if shared.stopped() {
            break;
        }
        if began.elapsed() > BACKOFF_RESET_AFTER {
            backoff = BACKOFF_FIRST;
        }
        shared.set_state(CameraState::Down, &reason);
        shared.sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The source pipeline's description.
fn source_description(s: &CameraSettings) -> String {
    let (n, d) = s.fps;
    let scale = format!(
        "videoconvert ! videoscale ! videorate ! video/x-raw,format=I420,width={},height={},framerate={n}/{d},pixel-aspect-ratio=1/1",
        s.width, s.height
    );
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    // Caps were checked at config time; a stray `!` cannot splice elements in.
    let caps = s
        .source_caps
        .as_deref()
        .filter(|c| !c.contains('!'))
        .map(|c| format!("{c} ! "))
        .unwrap_or_default();
    match &s.source {
        CameraSource::Test => {
            format!("videotestsrc is-live=true pattern=ball motion=wavy background-color=0xff1d5f3b ! {scale}")
        }
        CameraSource::V4l2 { device } => format!(
            "v4l2src device=\"{}\" ! {caps}decodebin ! {scale}",
            quote(&device.display().to_string())
        ),
        CameraSource::Rtsp { url } => format!(
            "rtspsrc location=\"{}\" latency=100 protocols=tcp+udp ! decodebin ! {scale}",
            quote(url)
        ),
        // One decode of the file per change; run_image_source repeats it at the frame rate.
        CameraSource::Image { path } => format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=I420,width={},height={},pixel-aspect-ratio=1/1",
            quote(&path.display().to_string()),
            s.width,
            s.height
        ),
    }
}

/// Decodes the still image once, scaled to the camera's size.
fn decode_still(settings: &CameraSettings) -> Result<gst::Buffer, String> {
    let desc = format!(
        "{} ! appsink name=out sync=false",
        source_description(settings)
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("cannot build the image decoder: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the image decoder is not a pipeline".to_owned())?;
    let _guard = NullOnDrop(pipeline.clone());
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| "the image decoder has no appsink".to_owned())?;
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|_| format!("{} cannot be read", settings.source))?;
    let sample = sink
        .try_pull_preroll(gst::ClockTime::from_seconds(5))
        .ok_or_else(|| {
            // The bus says why (no such file, not an image).
            pipeline
                .bus()
                .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(e.error().to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| format!("{} gave no picture", settings.source))
        })?;
    sample
        .buffer_owned()
        .ok_or_else(|| format!("{} gave an empty picture", settings.source))
}

/// A still image as a live camera: decoded again whenever the file's modification time
/// changes (write it by rename, so a half-written file is never read), pushed at the frame
/// rate. A file that vanishes or stops decoding after the first picture keeps the last good
/// one on screen and says so in the state; before the first, the camera is down.
fn run_image_source(shared: &Arc<Shared>, path: &std::path::Path) -> Result<(), String> {
    shared.set_state(CameraState::Starting, "reading the image");
    let (n, d) = shared.settings.fps;
    let period = Duration::from_secs_f64(f64::from(d.max(1)) / f64::from(n.max(1)));
    let mut shown: Option<(std::time::SystemTime, gst::Buffer)> = None;
    let mut problem: Option<String> = None;
    let mut next = Instant::now();
    let mut last_check = None::<Instant>;
    loop {
        if shared.stopped() {
            return Ok(());
        }
        // Checking the file's time four times a second is enough for a picture that changes
        // when a card is dealt, and costs nothing.
        if last_check.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) {
            last_check = Some(Instant::now());
            let modified = std::fs::metadata(path).and_then(|m| m.modified());
            match modified {
                Ok(m) if shown.as_ref().is_some_and(|(t, _)| *t == m) => {}
                Ok(m) => match decode_still(&shared.settings) {
                    Ok(buffer) => {
                        shown = Some((m, buffer));
                        problem = None;
                    }
                    Err(e) => problem = Some(e),
                },
                Err(e) => problem = Some(format!("{}: {e}", path.display())),
            }
            match (&shown, &problem) {
                (None, Some(p)) => return Err(p.clone()),
                (Some(_), Some(p)) => shared.set_state(
                    CameraState::Up,
                    &format!("showing the last good picture; {p}"),
                ),
                _ => shared.set_state(
                    CameraState::Up,
                    &format!("{} delivering frames", shared.settings.source),
                ),
            }
        }
        if let Some((_, buffer)) = &shown {
            let mut pusher = shared.pusher.lock().unwrap_or_else(PoisonError::into_inner);
            pusher.last_real = Some(Instant::now());
            if pusher.push(buffer.copy(), SystemTime::now(), Duration::ZERO) {
                shared.stats.frames.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// Runs the source once: returns why it ended (`Ok` only when the camera was stopped).
fn run_source(shared: &Arc<Shared>) -> Result<(), String> {
    if let CameraSource::Image { path } = &shared.settings.source {
        return run_image_source(shared, path);
    }
    shared.set_state(CameraState::Starting, "starting the source");
    let desc = format!(
        "{} ! appsink name=out sync=false max-buffers=2 drop=true",
        source_description(&shared.settings)
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("cannot build the source: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the source is not a pipeline".to_owned())?;
    let guard = NullOnDrop(pipeline.clone());
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| "the source has no appsink".to_owned())?;
    let last_frame = Arc::new(Mutex::new(None::<Instant>));
    {
        let shared = Arc::downgrade(shared);
        let last_frame = last_frame.clone();
        let pipe = pipeline.downgrade();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let (Some(shared), Some(pipe)) = (shared.upgrade(), pipe.upgrade()) else {
                        return Err(gst::FlowError::Flushing);
                    };
                    let Some(buffer) = sample.buffer_owned() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    // The frame's age: how long ago, on the pipeline clock, it was captured.
                    let age = match (pipe.current_running_time(), buffer.pts()) {
                        (Some(now), Some(pts)) => {
                            Duration::from_nanos(now.saturating_sub(pts).nseconds())
                        }
                        _ => Duration::ZERO,
                    };
                    let capture_utc = SystemTime::now() - age;
                    *last_frame.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now());
                    let mut pusher = shared.pusher.lock().unwrap_or_else(PoisonError::into_inner);
                    pusher.last_real = Some(Instant::now());
                    if pusher.push(buffer, capture_utc, age) {
                        shared.stats.frames.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| format!("{} cannot start", shared.settings.source))?;
    let bus = pipeline.bus().ok_or_else(|| "no bus".to_owned())?;
    let started = Instant::now();
    loop {
        if shared.stopped() {
            drop(guard);
            return Ok(());
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => return Err("the source ended (EOS)".into()),
                MessageView::Error(e) => {
                    return Err(format!(
                        "{}{}",
                        e.error(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    ))
                }
                _ => {}
            }
        }
        let last = *last_frame.lock().unwrap_or_else(PoisonError::into_inner);
        match last {
            Some(t) if t.elapsed() > STALL_AFTER => {
                return Err(format!("no frame for {} s", STALL_AFTER.as_secs()));
            }
            // set_state only reports changes, so saying "up" on every poll is cheap.
            Some(_) => shared.set_state(
                CameraState::Up,
                &format!("{} delivering frames", shared.settings.source),
            ),
            None if started.elapsed() > FIRST_FRAME_WITHIN => {
                return Err(format!(
                    "no frame within {} s of starting",
                    FIRST_FRAME_WITHIN.as_secs()
                ));
            }
            None => {}
        }
    }
}

/// Sets a pipeline to `Null` on every exit path.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Logs what the output pipeline reports; an error there is a bug or a broken encoder.
fn watch_output_bus(output: &gst::Pipeline, name: &str) {
    let Some(bus) = output.bus() else { return };
    let name = name.to_owned();
    bus.set_sync_handler(move |_, msg| {
        use gst::MessageView;
        match msg.view() {
            MessageView::Error(e) => warn!(
                camera = %name,
                element = ?msg.src().map(|s| s.path_string()),
                error = %e.error(),
                debug = ?e.debug(),
                "video output error"
            ),
            MessageView::Warning(w) => {
                debug!(camera = %name, warning = %w.error(), "video output warning")
            }
            MessageView::Eos(_) => return gst::BusSyncReply::Pass,
            _ => {}
        }
        // EOS stays on the bus for `stop`; the rest is consumed here.
        gst::BusSyncReply::Drop
    });
}
