//! The live feed the prompter and the status page run on: `GET /live` (Server-Sent Events) and
//! `GET /time` (the daemon's clock, for a page to measure its own clock's offset).
//!
//! A page that connects gets `hello` (the table, the engine's snapshot, the recent events and
//! every component's health), then each durable event as `event` the moment it is journaled,
//! and a `tick` every second (the snapshot, the health, the clock's sync state and the current
//! timecode). The browser's `EventSource` reconnects by itself; each connection starts with a
//! fresh `hello`, so nothing has to be replayed. The daemon's clock is the truth: pages show
//! countdowns against `server_ms` corrected by the offset they measure with `/time`.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::events::Envelope;
use crate::http::HttpState;
use crate::timecode::Timecode;

/// Milliseconds since the epoch, with sub-millisecond precision.
pub fn unix_ms(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// `GET /time`: the daemon's clock, read as late as possible before the answer leaves.
pub async fn time() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "server_ms": unix_ms(SystemTime::now()) })),
    )
        .into_response()
}

/// What a page needs besides the events: the snapshot, the health, the clock.
fn tick(state: &HttpState) -> Value {
    let now = SystemTime::now();
    let clock = crate::events::clock_now();
    json!({
        "server_ms": unix_ms(now),
        "round": state.engine.snapshot(),
        "ready": state.ready.load(std::sync::atomic::Ordering::Relaxed),
        "components": state.health.snapshot(),
        "clock": clock,
        "timecode": Timecode::at_utc(OffsetDateTime::from(now), state.timecode_rate).to_string(),
    })
}

fn hello(state: &HttpState) -> Value {
    let mut v = tick(state);
    v["table"] = json!({
        "studio": state.table.studio,
        "id": state.table.id,
        "game": state.table.game.as_str(),
        "name": state.table.name,
    });
    v["events"] = json!(state.engine.recent_events());
    v
}

fn sse(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

enum Step {
    Hello,
    Live,
}

/// `GET /live`.
pub async fn live(
    AxumState(state): AxumState<HttpState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.engine.events.subscribe();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = stream::unfold(
        (Step::Hello, rx, every, state),
        |(step, mut rx, mut every, state)| async move {
            if let Step::Hello = step {
                // The first tick of an interval is immediate; take it now so the next is 1 s on.
                every.tick().await;
                let ev = sse("hello", &hello(&state));
                return Some((Ok(ev), (Step::Live, rx, every, state)));
            }
            let ev = tokio::select! {
                received = rx.recv() => match received {
                    Ok(env) => event_message(&env),
                    // A page that fell behind starts again from a fresh picture.
                    Err(broadcast::error::RecvError::Lagged(_)) => sse("hello", &hello(&state)),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = every.tick() => sse("tick", &tick(&state)),
            };
            Some((Ok(ev), (Step::Live, rx, every, state)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn event_message(env: &Envelope) -> Event {
    sse("event", &serde_json::to_value(env).unwrap_or(Value::Null))
}
