//! The LL-HLS fallback of one camera, kept in memory and served at `/hls/<camera>/…`.
//!
//! The encoded stream goes through `mp4mux` in fragmented mode (one fragment per part, at most
//! 0.5 s); [`crate::fmp4`] cuts the bytes into the init segment and fragments, [`crate::llhls`]
//! decides where each fragment belongs, and this module keeps the files the playlist names
//! (a few seconds of video: no disk writes) and answers blocking playlist reloads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tracing::warn;

use crate::camera::frame_capture_utc;
use crate::fmp4::{Fmp4Chunk, Fmp4Splitter};
use crate::llhls::{LlHlsPlaylist, PlaylistSettings, Readiness};
use crate::video::{CameraSettings, VideoError};

/// Why a playlist request is answered without a playlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlsRequestError {
    /// HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// HTTP 503: the part did not appear within the hold limit.
    #[error("the requested part did not appear within {0:?}; reload the playlist")]
    Timeout(Duration),
    /// HTTP 503: no video yet.
    #[error("the camera has produced no video yet")]
    NotReady,
}

#[derive(Debug)]
struct Inner {
    playlist: LlHlsPlaylist,
    files: HashMap<String, Bytes>,
    /// Segments being filled, part by part.
    open_segments: HashMap<String, Vec<u8>>,
    splitter: Fmp4Splitter,
    has_init: bool,
    timescale: u32,
    /// The capture UTC of the first frame the muxer took, and the first fragment's decode time.
    first_utc: Option<SystemTime>,
    first_decode: Option<u64>,
    closed: bool,
    /// The muxer's output could not be cut; nothing more is served.
    broken: bool,
}

/// One camera's LL-HLS stream.
#[derive(Debug)]
pub struct HlsStream {
    inner: Mutex<Inner>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl HlsStream {
    pub fn new(camera: &str, _settings: &CameraSettings) -> Result<Self, VideoError> {
        let playlist = LlHlsPlaylist::new(PlaylistSettings::default())
            .map_err(|e| VideoError::pipeline(camera, "LL-HLS playlist", e))?;
        Ok(HlsStream {
            inner: Mutex::new(Inner {
                playlist,
                files: HashMap::new(),
                open_segments: HashMap::new(),
                splitter: Fmp4Splitter::new(),
                has_init: false,
                timescale: 0,
                first_utc: None,
                first_decode: None,
                closed: false,
                broken: false,
            }),
            changed: tokio::sync::watch::channel(0).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A file the playlist names (`init.mp4`, `part<msn>.<i>.m4s`, `seg<msn>.m4s`).
    pub fn file(&self, name: &str) -> Option<Bytes> {
        self.lock().files.get(name).cloned()
    }

    /// The playlist now, without blocking.
    pub fn render(&self) -> Option<String> {
        let inner = self.lock();
        if inner.broken {
            return None;
        }
        inner.has_init.then(|| inner.playlist.render())
    }

    /// The playlist once it holds part `part` of segment `msn` (a blocking reload), or at once
    /// without them.
    pub async fn playlist(
        &self,
        msn: Option<u64>,
        part: Option<u32>,
    ) -> Result<String, HlsRequestError> {
        let mut rx = self.changed.subscribe();
        let (hold, deadline_start) = {
            let inner = self.lock();
            (inner.playlist.hold_limit(), tokio::time::Instant::now())
        };
        loop {
            {
                let inner = self.lock();
                if inner.has_init {
                    match inner.playlist.blocking_request(msn, part) {
                        Ok(Readiness::Ready) => return Ok(inner.playlist.render()),
                        Ok(Readiness::Wait) => {}
                        Err(e) => return Err(HlsRequestError::BadRequest(e.to_string())),
                    }
                } else if msn.is_none() {
                    return Err(HlsRequestError::NotReady);
                }
                if inner.closed {
                    return Err(HlsRequestError::NotReady);
                }
            }
            let left =
                (deadline_start + hold).saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(HlsRequestError::Timeout(hold));
            }
            if tokio::time::timeout(left, rx.changed()).await.is_err() {
                return Err(HlsRequestError::Timeout(hold));
            }
        }
    }

    /// Parts and segments listed now (for `/status`).
    pub fn version(&self) -> u64 {
        self.lock().playlist.version()
    }

    /// Feeds muxer output.
    fn push_bytes(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        if inner.broken {
            return;
        }
        let chunks = match inner.splitter.push(bytes) {
            Ok(chunks) => chunks,
            Err(e) => {
                // The muxer's stream cannot be re-entered mid-box: the fallback stops here (the
                // WebRTC viewers and the recording go on) until the daemon restarts.
                warn!(error = %e, "LL-HLS: the fMP4 stream cannot be cut; the LL-HLS fallback of this camera stops");
                inner.broken = true;
                return;
            }
        };
        let mut changed = false;
        for chunk in chunks {
            match chunk {
                Fmp4Chunk::Init { bytes, timescale } => {
                    inner.timescale = timescale;
                    if inner.has_init {
                        // A new init mid-stream (new caps): tell players with a discontinuity.
                        let name = format!("init{}.mp4", inner.playlist.version());
                        inner.playlist.discontinuity(&name);
                        inner.files.insert(name, Bytes::from(bytes));
                    } else {
                        inner.files.insert("init.mp4".into(), Bytes::from(bytes));
                        inner.has_init = true;
                    }
                    inner.first_decode = None;
                    changed = true;
                }
                Fmp4Chunk::Fragment(frag) => {
                    if !inner.has_init || frag.duration.is_zero() {
                        continue;
                    }
                    let first_decode = *inner.first_decode.get_or_insert(frag.decode_time);
                    let since = frag.decode_time.saturating_sub(first_decode);
                    let offset = if inner.timescale > 0 {
                        Duration::from_nanos(
                            u64::try_from(
                                u128::from(since) * 1_000_000_000 / u128::from(inner.timescale),
                            )
                            .unwrap_or(0),
                        )
                    } else {
                        Duration::ZERO
                    };
                    let started_at = inner.first_utc.unwrap_or_else(SystemTime::now) + offset;
                    let placement =
                        match inner
                            .playlist
                            .push_part(frag.duration, frag.independent, started_at)
                        {
                            Ok(p) => p,
                            Err(e) => {
                                warn!(error = %e, "LL-HLS: fragment refused");
                                continue;
                            }
                        };
                    let bytes = Bytes::from(frag.bytes);
                    inner
                        .files
                        .insert(placement.part_uri.clone(), bytes.clone());
                    // A segment is served once complete: move finished ones into the files.
                    let finished: Vec<String> = inner
                        .open_segments
                        .keys()
                        .filter(|k| **k != placement.segment_uri)
                        .cloned()
                        .collect();
                    for name in finished {
                        if let Some(seg) = inner.open_segments.remove(&name) {
                            inner.files.insert(name, Bytes::from(seg));
                        }
                    }
                    inner
                        .open_segments
                        .entry(placement.segment_uri.clone())
                        .or_default()
                        .extend_from_slice(&bytes);
                    for gone in &placement.evicted {
                        inner.files.remove(gone);
                        inner.open_segments.remove(gone);
                    }
                    changed = true;
                }
            }
        }
        let version = inner.playlist.version();
        drop(inner);
        if changed {
            self.changed.send_replace(version);
        }
    }

    fn note_first_frame(&self, utc: SystemTime) {
        let mut inner = self.lock();
        if inner.first_utc.is_none() {
            inner.first_utc = Some(utc);
        }
    }

    /// Ends held requests (the camera stops).
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.send_modify(|v| *v += 1);
    }
}

/// Adds `queue ! mp4mux (fragmented) ! appsink` to the encoded tee, feeding `hls`.
pub(crate) fn attach(
    pipeline: &gst::Pipeline,
    encoded: &gst::Element,
    hls: &Arc<HlsStream>,
    camera: &str,
    settings: &CameraSettings,
) -> Result<(), VideoError> {
    let err = |what: &str, e: &dyn std::fmt::Display| VideoError::pipeline(camera, what, e);
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 2_000_000_000u64)
        .build()
        .map_err(|e| err("create queue", &e))?;
    queue.set_property_from_str("leaky", "downstream");
    // A fragment per part: whole frames only, at most 0.5 s.
    let frame = settings.frame_duration();
    let fragment_ms =
        u32::try_from(u128::from(settings.frames_per_part()) * frame.as_nanos() / 1_000_000)
            .unwrap_or(480);
    let mux = gst::ElementFactory::make("mp4mux")
        .property("fragment-duration", fragment_ms)
        .property("streamable", true)
        .build()
        .map_err(|e| err("create mp4mux", &e))?;
    let sink = gst_app::AppSink::builder()
        .name(format!("hls-{camera}"))
        .sync(false)
        .build();
    pipeline
        .add_many([&queue, &mux, sink.upcast_ref()])
        .map_err(|e| err("add LL-HLS branch", &e))?;
    // By name: a plain link would take the muxer's first free pad, an audio one.
    queue
        .link_pads(Some("src"), &mux, Some("video_%u"))
        .map_err(|e| err("link LL-HLS muxer", &e))?;
    mux.link(&sink).map_err(|e| err("link LL-HLS sink", &e))?;
    if let Some(pad) = queue.static_pad("sink") {
        let hls = Arc::downgrade(hls);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let (Some(gst::PadProbeData::Buffer(b)), Some(hls)) = (&info.data, hls.upgrade()) {
                if let Some(utc) = frame_capture_utc(b) {
                    hls.note_first_frame(utc);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    let weak = Arc::downgrade(hls);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(hls) = weak.upgrade() else {
                    return Err(gst::FlowError::Flushing);
                };
                if let Some(buffer) = sample.buffer() {
                    if let Ok(map) = buffer.map_readable() {
                        hls.push_bytes(map.as_slice());
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    crate::camera::link_tee(encoded, &queue).map_err(|e| err("link LL-HLS to the encoder", &e))?;
    Ok(())
}
