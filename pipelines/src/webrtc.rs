//! WebRTC out of the camera's one encode: WHEP viewers served by the daemon's HTTP listener,
//! and a WHIP client that pushes the camera to a media server or SFU.
//!
//! Each viewer is a branch on the encoded tee: `queue (leaky) ! rtph264pay ! webrtcbin`. The
//! queue drops old video for a viewer that cannot keep up, so a slow viewer never slows the
//! encoder or the others. A viewer that joins asks the encoder for a keyframe, so it sees a
//! picture at once rather than at the next scheduled one.
//!
//! The offer's H.264 payload type is used as is (webrtcbin does not rewrite payload types),
//! and the viewer's `croupier` data channel gets the table's phase, countdown and timecode.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_video as gst_video;
use gstreamer_webrtc as gst_webrtc;
use tracing::{debug, info, warn};

use crate::camera::{link_tee, Camera};
use crate::video::{IceSettings, VideoError};

/// How long ICE gathering may take before the answer goes out with what was found.
const GATHER_LIMIT: Duration = Duration::from_secs(3);
/// A viewer that never connects is removed after this.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// One WebRTC peer on the encoded tee.
pub(crate) struct Peer {
    pub(crate) id: String,
    webrtc: gst::Element,
    elements: Vec<gst::Element>,
    tee_pad: gst::Pad,
    channel: Arc<Mutex<Option<gst_webrtc::WebRTCDataChannel>>>,
    created: Instant,
    connected: Arc<std::sync::atomic::AtomicBool>,
    counted: bool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The answer to a WHEP offer.
#[derive(Debug, Clone)]
pub struct WhepAnswer {
    /// The session, named in the `Location` header.
    pub session: String,
    pub sdp: String,
}

/// A viewer's WebRTC statistics, from webrtcbin's `get-stats`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerStats {
    pub session: String,
    pub connected: bool,
    pub round_trip_time: Option<f64>,
    pub packets_lost: Option<i64>,
    pub fraction_lost: Option<f64>,
}

/// The H.264 payload type to send, from the viewer's offer.
fn h264_payload(offer: &gst_sdp::SDPMessageRef) -> Result<(u32, String), VideoError> {
    let mut fallback = None;
    for media in offer.medias() {
        if media.media() != Some("video") {
            continue;
        }
        for fmt in media.formats() {
            let Ok(pt) = fmt.parse::<u32>() else { continue };
            let Some(caps) = media.caps_from_media(pt as i32) else {
                continue;
            };
            let Some(s) = caps.structure(0) else { continue };
            let name = s.get::<&str>("encoding-name").unwrap_or_default();
            if !name.eq_ignore_ascii_case("H264") {
                continue;
            }
            let mode = s.get::<&str>("packetization-mode").unwrap_or("0");
            let profile = s
                .get::<&str>("profile-level-id")
                .unwrap_or("42e01f")
                .to_ascii_lowercase();
            if mode != "1" {
                continue;
            }
            // Constrained baseline (42e0.., 42c0.., 4240..) is what the encoder sends.
            if profile.starts_with("42e0")
                || profile.starts_with("42c0")
                || profile.starts_with("4240")
            {
                return Ok((pt, profile));
            }
            fallback.get_or_insert((pt, profile));
        }
    }
    fallback.ok_or_else(|| {
        VideoError::BadOffer(
            "it offers no H.264 video with packetization-mode=1; every viewer shares one H.264 encode".into(),
        )
    })
}

fn make(factory: &str) -> Result<gst::Element, VideoError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| VideoError::Negotiation(format!("cannot create {factory}: {e}")))
}

fn configure_ice(webrtc: &gst::Element, ice: &IceSettings) {
    if let Some(stun) = &ice.stun {
        webrtc.set_property("stun-server", stun);
    }
    for turn in &ice.turn {
        let _ = webrtc.emit_by_name::<bool>("add-turn-server", &[turn]);
    }
}

/// Waits for a webrtcbin promise.
fn wait_promise(
    what: &str,
    f: impl FnOnce(gst::Promise),
) -> Result<Option<gst::Structure>, VideoError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let promise = gst::Promise::with_change_func(move |reply| {
        let _ = tx.send(match reply {
            Ok(s) => Ok(s.map(|s| s.to_owned())),
            Err(e) => Err(format!("{e:?}")),
        });
    });
    f(promise);
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(s)) => {
            if let Some(err) = s
                .as_ref()
                .and_then(|s| s.get::<glib_error::Error>("error").ok())
            {
                return Err(VideoError::Negotiation(format!("{what}: {err}")));
            }
            Ok(s)
        }
        Ok(Err(e)) => Err(VideoError::Negotiation(format!("{what}: {e}"))),
        Err(_) => Err(VideoError::Negotiation(format!(
            "{what}: no reply within 5 s"
        ))),
    }
}

mod glib_error {
    pub use gstreamer::glib::Error;
}

/// Builds a peer branch and links it to the encoded tee.
fn new_peer(camera: &Camera, id: String, pt: u32, profile: &str) -> Result<Peer, VideoError> {
    let output = camera.output();
    let settings = camera.settings();
    let queue = make("queue")?;
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 1_000_000_000u64);
    queue.set_property_from_str("leaky", "downstream");
    let pay = make("rtph264pay")?;
    pay.set_property("pt", pt);
    pay.set_property("config-interval", -1i32);
    pay.set_property_from_str("aggregate-mode", "zero-latency");
    let webrtc = make("webrtcbin")?;
    webrtc.set_property_from_str("bundle-policy", "max-bundle");
    // Its own state changes must not hold up the running pipeline while it negotiates.
    webrtc.set_property("async-handling", true);
    configure_ice(&webrtc, &settings.ice);
    output
        .add_many([&queue, &pay, &webrtc])
        .map_err(|e| VideoError::Negotiation(format!("add branch: {e}")))?;
    let cleanup = |output: &gst::Pipeline| {
        for e in [&queue, &pay, &webrtc] {
            let _ = e.set_state(gst::State::Null);
            let _ = output.remove(e);
        }
    };
    let result = (|| {
        queue
            .link(&pay)
            .map_err(|e| VideoError::Negotiation(format!("link payloader: {e}")))?;
        let sink = webrtc
            .request_pad_simple("sink_%u")
            .ok_or_else(|| VideoError::Negotiation("webrtcbin gave no sink pad".into()))?;
        let src = pay
            .static_pad("src")
            .ok_or_else(|| VideoError::Negotiation("payloader has no src pad".into()))?;
        src.link(&sink)
            .map_err(|e| VideoError::Negotiation(format!("link webrtcbin: {e:?}")))?;
        let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        transceiver.set_property(
            "direction",
            gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
        );
        let codec = gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", "H264")
            .field("clock-rate", 90000i32)
            .field("payload", i32::try_from(pt).unwrap_or(96))
            .field("packetization-mode", "1")
            .build();
        // No profile-level-id here: the payloader's caps carry the encoder's own (42c0xx for
        // constrained baseline), and a mismatch would fail negotiation on the shared tee.
        let _ = profile;
        transceiver.set_property("codec-preferences", &codec);
        for e in [&queue, &pay, &webrtc] {
            e.sync_state_with_parent()
                .map_err(|e| VideoError::Negotiation(format!("start branch: {e}")))?;
        }
        let tee_pad = link_tee(camera.encoded_tee(), &queue)
            .map_err(|e| VideoError::Negotiation(format!("link to the encoder: {e}")))?;
        Ok(tee_pad)
    })();
    let tee_pad = match result {
        Ok(p) => p,
        Err(e) => {
            cleanup(output);
            return Err(e);
        }
    };
    let peer = Peer {
        id,
        webrtc: webrtc.clone(),
        elements: vec![queue, pay, webrtc],
        tee_pad,
        channel: Arc::new(Mutex::new(None)),
        created: Instant::now(),
        connected: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        counted: false,
    };
    watch_peer(camera, &peer);
    Ok(peer)
}

/// Data channel and connection state of a peer.
fn watch_peer(camera: &Camera, peer: &Peer) {
    let channel = peer.channel.clone();
    let cam = camera.self_ref.clone();
    peer.webrtc
        .connect("on-data-channel", false, move |values| {
            let ch = values.get(1)?.get::<gst_webrtc::WebRTCDataChannel>().ok()?;
            debug!(label = ?ch.label(), "viewer opened a data channel");
            let cam2 = cam.clone();
            ch.connect_on_open(move |ch| {
                if let Some(cam) = cam2.upgrade() {
                    let _ = ch.send_string_full(Some(&table_message(&cam)));
                }
            });
            *channel.lock().unwrap_or_else(PoisonError::into_inner) = Some(ch);
            None
        });
    let cam = camera.self_ref.clone();
    let id = peer.id.clone();
    let connected = peer.connected.clone();
    peer.webrtc
        .connect_notify(Some("connection-state"), move |bin, _| {
            let state = bin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            debug!(session = %id, ?state, "viewer connection state");
            match state {
                gst_webrtc::WebRTCPeerConnectionState::Connected => {
                    connected.store(true, std::sync::atomic::Ordering::Relaxed);
                    if let Some(cam) = cam.upgrade() {
                        count_viewer(&cam, &id);
                    }
                }
                gst_webrtc::WebRTCPeerConnectionState::Failed
                | gst_webrtc::WebRTCPeerConnectionState::Closed => {
                    if let Some(cam) = cam.upgrade() {
                        let id = id.clone();
                        // Not from webrtcbin's own thread: removing it there would deadlock.
                        std::thread::spawn(move || remove_peer(&cam, &id));
                    }
                }
                _ => {}
            }
        });
}

fn count_viewer(camera: &Camera, id: &str) {
    let mut peers = camera.peers.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = peers.get_mut(id) {
        if !p.counted {
            p.counted = true;
            camera
                .stats()
                .viewers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn wait_gathering(webrtc: &gst::Element) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let handler = webrtc.connect_notify(Some("ice-gathering-state"), move |bin, _| {
        let state = bin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
        if state == gst_webrtc::WebRTCICEGatheringState::Complete {
            if let Some(tx) = tx.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = tx.send(());
            }
        }
    });
    let done = webrtc.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
        == gst_webrtc::WebRTCICEGatheringState::Complete;
    if !done {
        let _ = rx.recv_timeout(GATHER_LIMIT);
    }
    webrtc.disconnect(handler);
}

fn local_sdp(webrtc: &gst::Element) -> Result<String, VideoError> {
    let desc = webrtc
        .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
        .ok_or_else(|| VideoError::Negotiation("no local description".into()))?;
    desc.sdp()
        .as_text()
        .map_err(|e| VideoError::Negotiation(format!("SDP text: {e}")))
}

fn request_keyframe(peer: &Peer) {
    if let Some(pad) = peer.elements.first().and_then(|q| q.static_pad("sink")) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        let _ = pad.send_event(event);
    }
}

impl Camera {
    /// Answers a WHEP offer: a new viewer on the camera's one encode. Blocks for the ICE
    /// gathering (at most a few seconds): call it off the async runtime.
    pub fn whep_offer(&self, offer: &str) -> Result<WhepAnswer, VideoError> {
        use std::sync::atomic::Ordering::SeqCst;
        let max = self.settings().max_viewers;
        let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes())
            .map_err(|e| VideoError::BadOffer(format!("not SDP: {e}")))?;
        let (pt, profile) = h264_payload(&sdp)?;
        {
            // Admission and the slot it takes are one step, so offers arriving together
            // cannot both take the last slot.
            let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            if peers.len() + self.negotiating.load(SeqCst) >= max {
                return Err(VideoError::TooManyViewers {
                    camera: self.name().to_owned(),
                    max,
                });
            }
            self.negotiating.fetch_add(1, SeqCst);
        }
        let id = uuid_like();
        let peer = match new_peer(self, id.clone(), pt, &profile) {
            Ok(p) => p,
            Err(e) => {
                self.negotiating.fetch_sub(1, SeqCst);
                return Err(e);
            }
        };
        let webrtc = peer.webrtc.clone();
        {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            peers.insert(id.clone(), peer);
            self.negotiating.fetch_sub(1, SeqCst);
        }
        let result = (|| {
            let offer =
                gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
            wait_promise("set-remote-description", |p| {
                webrtc.emit_by_name::<()>("set-remote-description", &[&offer, &p]);
            })?;
            let reply = wait_promise("create-answer", |p| {
                webrtc.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &p]);
            })?;
            let answer = reply
                .as_ref()
                .and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok())
                .ok_or_else(|| VideoError::Negotiation("webrtcbin made no answer".into()))?;
            wait_promise("set-local-description", |p| {
                webrtc.emit_by_name::<()>("set-local-description", &[&answer, &p]);
            })?;
            wait_gathering(&webrtc);
            local_sdp(&webrtc)
        })();
        match result {
            Ok(sdp) => {
                if let Some(peer) = self
                    .peers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&id)
                {
                    request_keyframe(peer);
                }
                info!(camera = %self.name(), session = %id, "WHEP viewer joined");
                self.reap_stale();
                Ok(WhepAnswer { session: id, sdp })
            }
            Err(e) => {
                remove_peer(self, &id);
                Err(e)
            }
        }
    }

    /// Trickled ICE candidates from the viewer (`application/trickle-ice-sdpfrag`).
    pub fn whep_patch(&self, session: &str, fragment: &str) -> Result<(), VideoError> {
        let webrtc = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(session)
            .map(|p| p.webrtc.clone())
            .ok_or_else(|| VideoError::UnknownSession(session.to_owned()))?;
        // With max-bundle every candidate belongs to the first m-line; a fragment may still
        // name several, so count them.
        let mut mline: u32 = 0;
        let mut seen_media = false;
        for line in fragment.lines().map(str::trim) {
            if line.starts_with("m=") {
                if seen_media {
                    mline += 1;
                }
                seen_media = true;
            } else if let Some(c) = line.strip_prefix("a=candidate:") {
                webrtc
                    .emit_by_name::<()>("add-ice-candidate", &[&mline, &format!("candidate:{c}")]);
            }
        }
        Ok(())
    }

    /// Ends a WHEP session (`DELETE`).
    pub fn whep_delete(&self, session: &str) -> Result<(), VideoError> {
        if !self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(session)
        {
            return Err(VideoError::UnknownSession(session.to_owned()));
        }
        remove_peer(self, session);
        Ok(())
    }

    /// Sessions now open (connected or still connecting).
    pub fn sessions(&self) -> usize {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// RTT and loss of every viewer, from webrtcbin's statistics.
    pub fn peer_stats(&self) -> Vec<PeerStats> {
        let peers: Vec<(String, gst::Element, bool)> = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|p| {
                (
                    p.id.clone(),
                    p.webrtc.clone(),
                    p.connected.load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .collect();
        peers
            .into_iter()
            .map(|(session, webrtc, connected)| {
                let mut stats = PeerStats {
                    session,
                    connected,
                    ..PeerStats::default()
                };
                if let Ok(Some(s)) = wait_promise("get-stats", |p| {
                    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &p]);
                }) {
                    for (_, value) in s.iter() {
                        let Ok(entry) = value.get::<gst::Structure>() else {
                            continue;
                        };
                        if entry.name() == "application/x-webrtc-stats" || entry.has_field("type") {
                            if let Ok(t) = entry.get::<gst_webrtc::WebRTCStatsType>("type") {
                                if t == gst_webrtc::WebRTCStatsType::RemoteInboundRtp {
                                    stats.round_trip_time =
                                        entry.get::<f64>("round-trip-time").ok();
                                    stats.packets_lost = entry.get::<i64>("packets-lost").ok();
                                    stats.fraction_lost = entry.get::<f64>("fraction-lost").ok();
                                }
                            }
                        }
                    }
                }
                stats
            })
            .collect()
    }

    /// Removes viewers that never connected.
    fn reap_stale(&self) {
        let stale: Vec<String> = self
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|p| {
                !p.connected.load(std::sync::atomic::Ordering::Relaxed)
                    && p.created.elapsed() > CONNECT_LIMIT
            })
            .map(|p| p.id.clone())
            .collect();
        for id in stale {
            info!(camera = %self.name(), session = %id, "removing a viewer that never connected");
            remove_peer(self, &id);
        }
    }
}

/// Unlinks a peer's branch from the tee and tears it down.
pub(crate) fn remove_peer(camera: &Camera, id: &str) {
    let Some(peer) = camera
        .peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(id)
    else {
        return;
    };
    if peer.counted {
        camera
            .stats()
            .viewers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
    let tee = camera.encoded_tee().clone();
    let output = camera.output().clone();
    if let Some(sink) = peer.elements.first().and_then(|q| q.static_pad("sink")) {
        let _ = peer.tee_pad.unlink(&sink);
    }
    tee.release_request_pad(&peer.tee_pad);
    // Downstream first: a queue stopped while its thread is blocked pushing into an unconnected
    // webrtcbin would wait for it forever.
    for e in peer.elements.iter().rev() {
        let _ = e.set_state(gst::State::Null);
    }
    for e in &peer.elements {
        let _ = output.remove(e);
    }
    info!(camera = %camera.name(), session = %id, "viewer left");
}

/// Ends every peer (the camera stops).
pub(crate) fn close_all(camera: &Camera) {
    let ids: Vec<String> = camera
        .peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .keys()
        .cloned()
        .collect();
    for id in ids {
        remove_peer(camera, &id);
    }
}

/// The data channel message: phase, countdown and the timecode now.
pub fn table_message(camera: &Camera) -> String {
    let view = camera.table();
    let now = SystemTime::now();
    let countdown_ms = view.deadline.map(|d| {
        d.duration_since(now)
            .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    });
    serde_json::json!({
        "type": "table",
        "camera": camera.name(),
        "phase": view.phase,
        "round_id": view.round_id,
        "countdown_ms": countdown_ms,
        "timecode": camera.timecode_at(now).to_string(),
        "utc": time::OffsetDateTime::from(now)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
    .to_string()
}

/// Sends the table message to every viewer with an open data channel.
pub(crate) fn broadcast_table(camera: &Camera) {
    let channels: Vec<gst_webrtc::WebRTCDataChannel> = camera
        .peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .filter_map(|p| {
            p.channel
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
        .collect();
    if channels.is_empty() {
        return;
    }
    let msg = table_message(camera);
    for ch in channels {
        if ch.ready_state() == gst_webrtc::WebRTCDataChannelState::Open {
            let _ = ch.send_string_full(Some(&msg));
        }
    }
}

/// A random session id.
fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Starts the WHIP push of a camera (reconnecting on failure) on its own thread.
pub(crate) fn start_whip(camera: &Arc<Camera>, whip: crate::video::WhipSettings) {
    let weak = Arc::downgrade(camera);
    let name = camera.name().to_owned();
    let spawned = std::thread::Builder::new()
        .name(format!("cam-{name}-whip"))
        .spawn(move || whip_loop(&weak, &whip));
    match spawned {
        Ok(handle) => camera.add_thread(handle),
        Err(e) => warn!(camera = %name, error = %e, "cannot start the WHIP push"),
    }
}

fn whip_loop(camera: &std::sync::Weak<Camera>, whip: &crate::video::WhipSettings) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(cam) = camera.upgrade() else { return };
        if cam.is_stopping() {
            return;
        }
        let began = Instant::now();
        let outcome = whip_session(&cam, whip);
        let stopping = cam.is_stopping();
        cam.set_whip_state(match &outcome {
            Ok(()) => "ended".to_owned(),
            Err(e) => format!("down: {e}"),
        });
        if stopping {
            return;
        }
        match outcome {
            Ok(()) => {
                info!(camera = %cam.name(), url = %whip.url, "WHIP session ended; pushing again")
            }
            Err(e) => {
                warn!(camera = %cam.name(), url = %whip.url, error = %e, retry_in_s = backoff.as_secs(), "WHIP push failed; retrying")
            }
        }
        if began.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        cam.sleep_unless_stopping(backoff);
        drop(cam);
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One WHIP session: offer, POST, answer, then hold it until it fails or the camera stops.
fn whip_session(camera: &Camera, whip: &crate::video::WhipSettings) -> Result<(), VideoError> {
    let id = format!("whip-{}", uuid_like());
    let peer = new_peer(camera, id.clone(), 96, "42e01f")?;
    let webrtc = peer.webrtc.clone();
    let connected = peer.connected.clone();
    camera
        .peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone(), peer);
    let whip_err = |reason: String| VideoError::Whip {
        url: whip.url.clone(),
        reason,
    };
    let mut location: Option<String> = None;
    let result = (|| {
        let reply = wait_promise("create-offer", |p| {
            webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &p]);
        })?;
        let offer = reply
            .as_ref()
            .and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("offer").ok())
            .ok_or_else(|| VideoError::Negotiation("webrtcbin made no offer".into()))?;
        wait_promise("set-local-description", |p| {
            webrtc.emit_by_name::<()>("set-local-description", &[&offer, &p]);
        })?;
        wait_gathering(&webrtc);
        let sdp = local_sdp(&webrtc)?;
        let auth = whip.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/sdp")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let response = crate::whip::request("POST", &whip.url, &headers, &sdp)
            .map_err(|e| whip_err(e.to_string()))?;
        if response.status != 201 {
            return Err(whip_err(
                crate::whip::WhipError::Refused {
                    status: response.status,
                    body: response.body.chars().take(200).collect(),
                }
                .to_string(),
            ));
        }
        location = response
            .header("location")
            .map(|l| crate::whip::resolve_location(&whip.url, l));
        let answer = gst_sdp::SDPMessage::parse_buffer(response.body.as_bytes())
            .map_err(|e| whip_err(format!("the answer is not SDP: {e}")))?;
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, answer);
        wait_promise("set-remote-description", |p| {
            webrtc.emit_by_name::<()>("set-remote-description", &[&answer, &p]);
        })?;
        info!(camera = %camera.name(), url = %whip.url, location = ?location, "WHIP offer accepted");
        camera.set_whip_state("connecting".into());
        // Held until the peer is removed (connection failed or closed) or the camera stops.
        let since = Instant::now();
        loop {
            if camera.is_stopping() {
                return Ok(());
            }
            let alive = camera
                .peers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&id);
            if !alive {
                return Err(whip_err("the connection failed".into()));
            }
            let is_connected = connected.load(std::sync::atomic::Ordering::Relaxed);
            if is_connected {
                camera.set_whip_state("connected".into());
            } else if since.elapsed() > Duration::from_secs(15) {
                return Err(whip_err("no connection within 15 s of the answer".into()));
            }
            camera.sleep_unless_stopping(Duration::from_millis(250));
        }
    })();
    remove_peer(camera, &id);
    if let Some(loc) = location {
        let auth = whip.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        if let Err(e) = crate::whip::request("DELETE", &loc, &headers, "") {
            debug!(error = %e, "WHIP DELETE failed (the server will time the session out)");
        }
    }
    result
}
