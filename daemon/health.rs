//! The health of every component (each device, the uplink, the HTTP listener), in one place.
//!
//! Components write their state and counters here; `/status`, `/metrics`, `/readyz`, the MQTT
//! telemetry and systemd's `STATUS=` line all read the same snapshot, so a technician sees the
//! same truth wherever they look.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

use crate::clock::format_utc;

/// Where a component stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being started (or restarted after a failure).
    Starting,
    /// Working.
    Up,
    /// Working with a limitation (the uplink buffering while the broker is away).
    Degraded,
    /// Not working; the supervisor retries it with backoff.
    Down,
    /// Stopped on purpose (shutdown or removed by a reload).
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Stopped => "stopped",
        }
    }
}

/// One component's health, as shown on `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    /// `device`, `uplink`, `http`.
    pub kind: &'static str,
    pub state: State,
    /// Why it is in this state, in words for the technician.
    pub detail: String,
    /// When the state last changed (UTC, RFC 3339).
    pub since: String,
    /// How many times the supervisor restarted it (for a device: reconnects).
    pub restarts: u64,
    pub last_error: Option<String>,
    /// Counters such as `frames`, `bytes`, `errors`.
    pub counters: BTreeMap<&'static str, u64>,
    /// Free-form facts: the port, the last frame seen, the broker address.
    pub facts: BTreeMap<&'static str, String>,
}

#[derive(Debug, Default)]
struct Inner {
    components: BTreeMap<String, ComponentHealth>,
}

/// The shared health registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
    changed: watch::Sender<u64>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            inner: Arc::default(),
            changed,
        }
    }

    /// Registers a component (or resets it if it exists) and returns the handle it reports with.
    pub fn register(&self, name: &str, kind: &'static str) -> HealthHandle {
        self.update(|inner| {
            let entry =
                inner
                    .components
                    .entry(name.to_owned())
                    .or_insert_with(|| ComponentHealth {
                        kind,
                        state: State::Starting,
                        detail: "starting".into(),
                        since: format_utc(SystemTime::now()),
                        restarts: 0,
                        last_error: None,
                        counters: BTreeMap::new(),
                        facts: BTreeMap::new(),
                    });
            entry.kind = kind;
        });
        HealthHandle {
            name: name.to_owned(),
            health: self.clone(),
        }
    }

    pub fn remove(&self, name: &str) {
        self.update(|inner| {
            inner.components.remove(name);
        });
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentHealth> {
        self.lock().components.clone()
    }

    /// Wakes when anything changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Inner)) {
        {
            let mut inner = self.lock();
            f(&mut inner);
        }
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// What one component uses to report itself.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    name: String,
    health: Health,
}

impl HealthHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn set(&self, state: State, detail: impl Into<String>) {
        let detail = detail.into();
        self.with(|c| {
            if c.state != state {
                c.since = format_utc(SystemTime::now());
            }
            c.state = state;
            c.detail = detail;
        });
    }

    /// Records a failure: state down, the error kept for `/status`, one more restart counted.
    pub fn failed(&self, error: &str) {
        self.with(|c| {
            if c.state != State::Down {
                c.since = format_utc(SystemTime::now());
            }
            c.state = State::Down;
            c.detail = error.to_owned();
            c.last_error = Some(error.to_owned());
            c.restarts += 1;
        });
    }

    pub fn add(&self, counter: &'static str, n: u64) {
        self.with(|c| *c.counters.entry(counter).or_default() += n);
    }

    pub fn fact(&self, key: &'static str, value: impl Into<String>) {
        let value = value.into();
        self.with(|c| {
            c.facts.insert(key, value);
        });
    }

    pub fn state(&self) -> Option<State> {
        self.health
            .lock()
            .components
            .get(&self.name)
            .map(|c| c.state)
    }

    fn with(&self, f: impl FnOnce(&mut ComponentHealth)) {
        self.health.update(|inner| {
            if let Some(c) = inner.components.get_mut(&self.name) {
                f(c);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_restarts_and_keep_the_error() {
        let health = Health::new();
        let h = health.register("wheel", "device");
        h.set(State::Up, "reading /dev/croupier/wheel");
        h.failed("read error: EIO");
        h.failed("open: no such file");
        let snap = health.snapshot();
        let wheel = &snap["wheel"];
        assert_eq!(wheel.state, State::Down);
        assert_eq!(wheel.restarts, 2);
        assert_eq!(wheel.last_error.as_deref(), Some("open: no such file"));
    }

    #[test]
    fn subscribers_wake_on_change() {
        let health = Health::new();
        let mut rx = health.subscribe();
        let h = health.register("uplink", "uplink");
        assert!(rx.has_changed().unwrap_or(false));
        rx.mark_unchanged();
        h.add("published", 1);
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(health.snapshot()["uplink"].counters["published"], 1);
    }
}
