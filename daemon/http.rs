//! The daemon's one HTTP listener (`[http] listen`).
//!
//! - `/healthz`: 200 while the daemon's main loop runs (for a liveness probe).
//! - `/readyz`: 200 once every device is up and the uplink is connected or buffering, else 503.
//! - `/status`: the health of every component as JSON (the technician's page to a browser).
//! - `/metrics`: Prometheus text exposition.
//!
//! - `/whep/<camera>`: WebRTC viewers (WHEP): `POST` an SDP offer, `PATCH`/`DELETE` the session.
//! - `/hls/<camera>/index.m3u8` and its parts: the LL-HLS fallback, with blocking reload.
//! - `/video/<camera>`: a viewer page (WebRTC, falling back to LL-HLS), for the technician.
//!
//! - `/prompter`: the dealer's full-screen prompter; `/status` in a browser: the technician's
//!   page. Both run on `/live` (Server-Sent Events) and `/time` ([`crate::live`]); every asset
//!   is embedded in the binary (no CDN: the studio LAN may have no internet).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::extract::{Path as AxumPath, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use croupier_pipelines::hls::HlsRequestError;
use croupier_pipelines::video::VideoError;
use serde_json::json;
use tracing::info;

use crate::config::TableConfig;
use crate::health::{Health, State};
use crate::supervisor::{ComponentCtx, ComponentResult, ComponentSpec};

/// Errors of the HTTP component.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source} (is another croupier or service using the port? change [http] listen)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub health: Health,
    pub ready: Arc<AtomicBool>,
    pub table: TableConfig,
    /// The engine's phase, round and last result.
    pub engine: crate::table::TableHandle,
    /// The running cameras.
    pub video: crate::video::VideoHandle,
    /// `[timing] timecode_rate`, for the pages' timecode.
    pub timecode_rate: crate::timecode::TimecodeRate,
    /// The cameras' config (their vision calibration, for `/vision/<camera>`).
    pub cameras: Vec<crate::config::CameraConfig>,
}

/// The supervised HTTP component.
pub fn component(listen: SocketAddr, state: HttpState) -> ComponentSpec {
    ComponentSpec::new(
        "http",
        "http",
        format!("{listen}{:?}", state.table),
        move |ctx| serve(listen, state.clone(), ctx),
    )
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/whep/{camera}", post(whep_offer))
        .route(
            "/whep/{camera}/{session}",
            patch(whep_patch).delete(whep_delete),
        )
        .route("/hls/{camera}/{file}", get(hls_file))
        .route("/video/{camera}", get(viewer_page))
        .route("/web/{file}", get(web_asset))
        .route("/live", get(crate::live::live))
        .route("/time", get(crate::live::time))
        .route("/prompter", get(prompter_page))
        .route("/vision/{camera}", get(vision_geometry))
        .with_state(state)
}

async fn serve(listen: SocketAddr, state: HttpState, ctx: ComponentCtx) -> ComponentResult {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| HttpError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    ctx.health.fact("listen", local.to_string());
    ctx.health
        .set(State::Up, format!("serving http://{local}/status"));
    info!(listen = %local, "http listener up");
    let cancel = ctx.cancel.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
        .map_err(HttpError::Serve)?;
    Ok(())
}

async fn readyz(AxumState(state): AxumState<HttpState>) -> Response {
    let ready = state.ready.load(Ordering::Relaxed);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({ "ready": ready, "components": state.health.snapshot() })),
    )
        .into_response()
}

/// `/status`: the page for a browser (one that asks for HTML), the JSON for everything else.
async fn status(
    AxumState(state): AxumState<HttpState>,
    headers: axum::http::HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && query.get("format").map(String::as_str) != Some("json") {
        return html(STATUS_HTML);
    }
    Json(json!({
        "table": {
            "studio": state.table.studio,
            "id": state.table.id,
            "game": state.table.game.as_str(),
            "name": state.table.name,
        },
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("CROUPIER_GIT_COMMIT"),
        "ready": state.ready.load(Ordering::Relaxed),
        "round": state.engine.snapshot(),
        "components": state.health.snapshot(),
    }))
    .into_response()
}

async fn metrics(AxumState(state): AxumState<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&state),
    )
        .into_response()
}

/// Prometheus text exposition of the health registry.
pub fn render_metrics(state: &HttpState) -> String {
    let snap = state.health.snapshot();
    let mut out = String::new();
    let label = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let _ = writeln!(
        out,
        "# HELP croupier_build_info Version and commit of the running daemon."
    );
    let _ = writeln!(out, "# TYPE croupier_build_info gauge");
    let _ = writeln!(
        out,
        "croupier_build_info{{version=\"{}\",commit=\"{}\",studio=\"{}\",table=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        env!("CROUPIER_GIT_COMMIT"),
        label(&state.table.studio),
        label(&state.table.id)
    );
    let _ = writeln!(
        out,
        "# HELP croupier_ready 1 once devices are open and the uplink is connected or buffering."
    );
    let _ = writeln!(out, "# TYPE croupier_ready gauge");
    let _ = writeln!(
        out,
        "croupier_ready {}",
        u8::from(state.ready.load(Ordering::Relaxed))
    );
    let _ = writeln!(
        out,
        "# HELP croupier_component_up 1 when the component is up (degraded counts as up)."
    );
    let _ = writeln!(out, "# TYPE croupier_component_up gauge");
    for (name, c) in &snap {
        let up = matches!(c.state, State::Up | State::Degraded);
        let _ = writeln!(
            out,
            "croupier_component_up{{component=\"{}\",kind=\"{}\",state=\"{}\"}} {}",
            label(name),
            c.kind,
            c.state.as_str(),
            u8::from(up)
        );
    }
    let _ = writeln!(out, "# HELP croupier_component_restarts_total Restarts by the supervisor (reconnects, for a device).");
    let _ = writeln!(out, "# TYPE croupier_component_restarts_total counter");
    for (name, c) in &snap {
        let _ = writeln!(
            out,
            "croupier_component_restarts_total{{component=\"{}\",kind=\"{}\"}} {}",
            label(name),
            c.kind,
            c.restarts
        );
    }
    let counters: &[(&str, &str, &str)] = &[
        (
            "frames",
            "croupier_device_frames_total",
            "Frames read from the device.",
        ),
        (
            "bytes",
            "croupier_device_bytes_total",
            "Bytes read from the device.",
        ),
        (
            "errors",
            "croupier_device_errors_total",
            "Garbled or overlong frames skipped.",
        ),
    ];
    for (key, metric, help) in counters {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} counter");
        for (name, c) in snap.iter().filter(|(_, c)| c.kind == "device") {
            let _ = writeln!(
                out,
                "{metric}{{device=\"{}\",role=\"{}\"}} {}",
                label(name),
                label(c.facts.get("role").map_or("", String::as_str)),
                c.counters.get(key).copied().unwrap_or(0)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP croupier_device_reconnects_total Times the device was reopened after it went away."
    );
    let _ = writeln!(out, "# TYPE croupier_device_reconnects_total counter");
    for (name, c) in snap.iter().filter(|(_, c)| c.kind == "device") {
        let _ = writeln!(
            out,
            "croupier_device_reconnects_total{{device=\"{}\",role=\"{}\"}} {}",
            label(name),
            label(c.facts.get("role").map_or("", String::as_str)),
            c.restarts
        );
    }
    let table = snap.get("table");
    let table_fact = |key: &str| table.and_then(|t| t.facts.get(key)).cloned();
    let depth = table_fact("outbox_depth")
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "# HELP croupier_outbox_depth Events written but not yet acknowledged by the broker."
    );
    let _ = writeln!(out, "# TYPE croupier_outbox_depth gauge");
    let _ = writeln!(out, "croupier_outbox_depth {depth}");
    let oldest_age = table_fact("outbox_oldest_utc")
        .filter(|u| !u.is_empty())
        .and_then(|u| {
            time::OffsetDateTime::parse(&u, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| {
            (time::OffsetDateTime::now_utc() - t)
                .as_seconds_f64()
                .max(0.0)
        })
        .unwrap_or(0.0);
    let _ = writeln!(out, "# HELP croupier_outbox_oldest_age_seconds Age of the oldest event the broker has not acknowledged (0 when none).");
    let _ = writeln!(out, "# TYPE croupier_outbox_oldest_age_seconds gauge");
    let _ = writeln!(out, "croupier_outbox_oldest_age_seconds {oldest_age:.3}");
    let _ = writeln!(out, "# HELP croupier_crosscheck_holds_total Rounds held because a second witness disagreed or did not confirm (alert.mismatch).");
    let _ = writeln!(out, "# TYPE croupier_crosscheck_holds_total counter");
    let _ = writeln!(
        out,
        "croupier_crosscheck_holds_total {}",
        table
            .and_then(|t| t.counters.get("holds"))
            .copied()
            .unwrap_or(0)
    );
    let clock = crate::events::clock_now();
    let _ = writeln!(out, "# HELP croupier_clock_synchronized 1 when the kernel reports the clock synchronised (NTP/PTP).");
    let _ = writeln!(out, "# TYPE croupier_clock_synchronized gauge");
    let _ = writeln!(
        out,
        "croupier_clock_synchronized {}",
        u8::from(clock.synchronized)
    );
    let _ = writeln!(
        out,
        "# HELP croupier_clock_error_seconds The kernel's estimated clock error."
    );
    let _ = writeln!(out, "# TYPE croupier_clock_error_seconds gauge");
    let _ = writeln!(
        out,
        "croupier_clock_error_seconds {}",
        clock.est_error_us as f64 / 1e6
    );
    let camera_gauges: &[(&str, &str, &str)] = &[
        (
            "fps",
            "croupier_camera_fps",
            "Frames a second into the camera's encoder (camera and camera-lost picture).",
        ),
        (
            "fps_target",
            "croupier_camera_fps_target",
            "The camera's configured frame rate.",
        ),
        (
            "bitrate_kbps",
            "croupier_camera_bitrate_kbps",
            "Encoded bitrate of the camera.",
        ),
        (
            "viewers",
            "croupier_camera_viewers",
            "WebRTC viewers of the camera.",
        ),
    ];
    for (fact, metric, help) in camera_gauges {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (name, c) in snap.iter().filter(|(_, c)| c.kind == "camera") {
            let value = c
                .facts
                .get(fact)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            let _ = writeln!(
                out,
                "{metric}{{camera=\"{}\"}} {value}",
                label(name.trim_start_matches("camera:"))
            );
        }
    }
    let counter_families: &[(&str, &str, &str, &str)] = &[
        (
            "camera",
            "dropped",
            "croupier_camera_dropped_frames_total",
            "Camera frames dropped because the encoder was behind.",
        ),
        (
            "camera",
            "reconnects",
            "croupier_camera_reconnects_total",
            "Times the camera's source was rebuilt after a loss.",
        ),
        (
            "vision",
            "frames",
            "croupier_vision_frames_total",
            "Frames the vision stage read.",
        ),
        (
            "vision",
            "rejected",
            "croupier_vision_rejects_total",
            "Card-shaped things the reader refused to name (low confidence).",
        ),
        (
            "vision",
            "sightings",
            "croupier_vision_sightings_total",
            "card.seen / pocket.seen reported to the engine.",
        ),
        (
            "vision",
            "errors",
            "croupier_vision_errors_total",
            "Frames the reader failed on.",
        ),
    ];
    for (kind, key, metric, help) in counter_families {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} counter");
        for (name, c) in snap.iter().filter(|(_, c)| c.kind == *kind) {
            let camera = name.split_once(':').map_or(name.as_str(), |(_, n)| n);
            let _ = writeln!(
                out,
                "{metric}{{camera=\"{}\"}} {}",
                label(camera),
                c.counters.get(key).copied().unwrap_or(0)
            );
        }
    }
    let _ = writeln!(out, "# HELP croupier_encoder_latency_seconds Time frames spend in the camera's encoder (input to output, matched by timestamp): rate(_sum)/rate(_count) is the mean.");
    let _ = writeln!(out, "# TYPE croupier_encoder_latency_seconds summary");
    for (name, c) in snap.iter().filter(|(_, c)| c.kind == "camera") {
        let fact = |k: &str| {
            c.facts
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let camera = label(name.trim_start_matches("camera:"));
        let _ = writeln!(
            out,
            "croupier_encoder_latency_seconds_sum{{camera=\"{camera}\"}} {}",
            fact("encoder_latency_us_sum") as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "croupier_encoder_latency_seconds_count{{camera=\"{camera}\"}} {}",
            fact("encoder_latency_frames")
        );
    }
    crate::metrics::render(&mut out);
    let _ = writeln!(
        out,
        "# HELP croupier_mqtt_connected 1 while the uplink is connected to the broker."
    );
    let _ = writeln!(out, "# TYPE croupier_mqtt_connected gauge");
    let connected = snap.get("uplink").is_some_and(|c| c.state == State::Up);
    let _ = writeln!(out, "croupier_mqtt_connected {}", u8::from(connected));
    out
}

/// A video error as an HTTP answer: the status a WHEP client expects, and the reason in words.
fn video_error(err: &VideoError) -> Response {
    let code = match err {
        VideoError::UnknownCamera(_) | VideoError::UnknownSession(_) => StatusCode::NOT_FOUND,
        VideoError::BadOffer(_) => StatusCode::BAD_REQUEST,
        VideoError::TooManyViewers { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, format!("{err}\n")).into_response()
}

fn camera_of(
    state: &HttpState,
    name: &str,
) -> Result<std::sync::Arc<croupier_pipelines::camera::Camera>, Box<Response>> {
    state
        .video
        .get(name)
        .ok_or_else(|| Box::new(video_error(&VideoError::UnknownCamera(name.to_owned()))))
}

fn content_type(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
}

async fn whep_offer(
    AxumState(state): AxumState<HttpState>,
    AxumPath(camera): AxumPath<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let cam = match camera_of(&state, &camera) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if !content_type(&headers).eq_ignore_ascii_case("application/sdp") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the SDP offer with Content-Type: application/sdp\n",
        )
            .into_response();
    }
    let answer = tokio::task::spawn_blocking(move || cam.whep_offer(&body)).await;
    match answer {
        Ok(Ok(answer)) => (
            StatusCode::CREATED,
            [
                (header::CONTENT_TYPE, "application/sdp".to_owned()),
                (
                    header::LOCATION,
                    format!("/whep/{camera}/{}", answer.session),
                ),
            ],
            answer.sdp,
        )
            .into_response(),
        Ok(Err(e)) => video_error(&e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn whep_patch(
    AxumState(state): AxumState<HttpState>,
    AxumPath((camera, session)): AxumPath<(String, String)>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let cam = match camera_of(&state, &camera) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if !content_type(&headers).eq_ignore_ascii_case("application/trickle-ice-sdpfrag") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send candidates with Content-Type: application/trickle-ice-sdpfrag\n",
        )
            .into_response();
    }
    match cam.whep_patch(&session, &body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => video_error(&e),
    }
}

async fn whep_delete(
    AxumState(state): AxumState<HttpState>,
    AxumPath((camera, session)): AxumPath<(String, String)>,
) -> Response {
    let cam = match camera_of(&state, &camera) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match tokio::task::spawn_blocking(move || cam.whep_delete(&session)).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => video_error(&e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn hls_file(
    AxumState(state): AxumState<HttpState>,
    AxumPath((camera, file)): AxumPath<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let cam = match camera_of(&state, &camera) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if file == "index.m3u8" {
        let number = |key: &str| -> Result<Option<u64>, String> {
            match query.get(key) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{key}={v} is not a number\n")),
            }
        };
        let (msn, part) = match (number("_HLS_msn"), number("_HLS_part")) {
            (Ok(m), Ok(p)) => (m, p.map(|p| u32::try_from(p).unwrap_or(u32::MAX))),
            (Err(why), _) | (_, Err(why)) => return (StatusCode::BAD_REQUEST, why).into_response(),
        };
        return match cam.hls().playlist(msn, part).await {
            Ok(text) => (
                [
                    (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                text,
            )
                .into_response(),
            Err(e @ HlsRequestError::BadRequest(_)) => {
                (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                format!("{e}\n"),
            )
                .into_response(),
        };
    }
    match cam.hls().file(&file) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "video/mp4"),
                // A part's bytes never change under its name.
                (header::CACHE_CONTROL, "max-age=60"),
            ],
            bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("{file} is not (or no longer) in the playlist of {camera}\n"),
        )
            .into_response(),
    }
}

const VIEWER_HTML: &str = include_str!("web/viewer.html");
const VIEWER_JS: &str = include_str!("web/viewer.js");
const VIEWER_CSS: &str = include_str!("web/viewer.css");

async fn viewer_page(
    AxumState(state): AxumState<HttpState>,
    AxumPath(camera): AxumPath<String>,
) -> Response {
    if let Err(r) = camera_of(&state, &camera) {
        return *r;
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        VIEWER_HTML,
    )
        .into_response()
}

/// `/vision/<camera>`: the camera's calibrated zones (and wheel ring) in image pixels, for the
/// status page to draw over the preview. Read from the file each time: it is what the vision
/// stage reads after its next check.
async fn vision_geometry(
    AxumState(state): AxumState<HttpState>,
    AxumPath(camera): AxumPath<String>,
) -> Response {
    let Some(cam) = state.cameras.iter().find(|c| c.name == camera) else {
        return (StatusCode::NOT_FOUND, format!("no camera {camera}\n")).into_response();
    };
    let (Some(kind), Some(path)) = (cam.vision, cam.calibration.clone()) else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "camera {camera} has no vision (set vision and calibration in its [[camera]])\n"
            ),
        )
            .into_response();
    };
    let loaded =
        tokio::task::spawn_blocking(move || croupier_vision::calibration::Calibration::load(&path))
            .await;
    let cal = match loaded {
        Ok(Ok(cal)) => cal,
        Ok(Err(e)) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let mut zones = Vec::new();
    let mut image = json!({ "width": cam.width, "height": cam.height });
    if let Some(table) = &cal.table {
        image = json!({ "width": table.image.width, "height": table.image.height });
        if let Ok(to_px) = table.image_from_table() {
            for z in &table.zones {
                let px: Vec<[f64; 2]> = z
                    .polygon_mm
                    .iter()
                    .map(|p| {
                        let q = to_px.apply(croupier_vision::geometry::Pt::new(p[0], p[1]));
                        [q.x, q.y]
                    })
                    .collect();
                zones.push(json!({ "name": z.name, "polygon_px": px }));
            }
        }
    }
    let wheel = cal.wheel.as_ref().map(|w| {
        json!({ "centre_px": w.centre_px, "inner": w.pocket_ring_px.inner, "outer": w.pocket_ring_px.outer, "layout": w.layout })
    });
    Json(json!({
        "camera": camera,
        "reads": kind.as_str(),
        "version": cal.version,
        "image": image,
        "zones": zones,
        "wheel": wheel,
    }))
    .into_response()
}

const PROMPTER_HTML: &str = include_str!("web/prompter.html");
const PROMPTER_JS: &str = include_str!("web/prompter.js");
const PROMPTER_CSS: &str = include_str!("web/prompter.css");
const STATUS_HTML: &str = include_str!("web/status.html");
const STATUS_JS: &str = include_str!("web/status.js");
const STATUS_CSS: &str = include_str!("web/status.css");

fn html(page: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

async fn prompter_page() -> Response {
    html(PROMPTER_HTML)
}

async fn web_asset(AxumPath(file): AxumPath<String>) -> Response {
    let js = "text/javascript; charset=utf-8";
    let css = "text/css; charset=utf-8";
    let asset = |kind: &'static str, body: &'static str| {
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response()
    };
    match file.as_str() {
        "prompter.js" => return asset(js, PROMPTER_JS),
        "prompter.css" => return asset(css, PROMPTER_CSS),
        "status.js" => return asset(js, STATUS_JS),
        "status.css" => return asset(css, STATUS_CSS),
        _ => {}
    }
    match file.as_str() {
        "viewer.js" => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            VIEWER_JS,
        )
            .into_response(),
        "viewer.css" => (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            VIEWER_CSS,
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
