//! The daemon's one HTTP listener (`[http] listen`).
//!
//! - `/healthz`: 200 while the daemon's main loop runs (for a liveness probe).
//! - `/readyz`: 200 once every device is up and the uplink is connected or buffering, else 503.
//! - `/status`: the health of every component as JSON, for the technician.
//! - `/metrics`: Prometheus text exposition.
//!
//! The prompter, the status page's HTML and WebRTC/HLS endpoints join this listener later.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
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

async fn status(AxumState(state): AxumState<HttpState>) -> Response {
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
        "# HELP croupier_mqtt_connected 1 while the uplink is connected to the broker."
    );
    let _ = writeln!(out, "# TYPE croupier_mqtt_connected gauge");
    let connected = snap.get("uplink").is_some_and(|c| c.state == State::Up);
    let _ = writeln!(out, "croupier_mqtt_connected {}", u8::from(connected));
    out
}
