//! Supervision: every component runs as its own task, is restarted with backoff when it fails or
//! panics, reports its health, and stops within a deadline.
//!
//! A device that is unplugged makes its component fail; the supervisor marks it down, waits
//! (500 ms, 1 s, 2 s … up to the configured maximum, with jitter so a studio full of boxes does
//! not hammer a broker in step), and starts it again. The rest of the table keeps running.
//! On a config reload the supervisor restarts only the components whose config changed.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::health::{Health, HealthHandle, State};

/// What a component returns when it stops on its own: `Ok` is unexpected but not an error.
pub type ComponentResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type RunFn = Arc<
    dyn Fn(ComponentCtx) -> Pin<Box<dyn Future<Output = ComponentResult> + Send>> + Send + Sync,
>;

/// What a running component gets: its name, where to report health, and when to stop.
#[derive(Debug, Clone)]
pub struct ComponentCtx {
    pub health: HealthHandle,
    /// Cancelled on shutdown or when a reload replaces this component. Stop promptly, flushing
    /// what must be flushed.
    pub cancel: CancellationToken,
}

/// A component to run: how to start it and a fingerprint of its config, so a reload can tell
/// whether it changed.
pub struct ComponentSpec {
    pub name: String,
    pub kind: &'static str,
    pub fingerprint: String,
    run: RunFn,
}

impl std::fmt::Debug for ComponentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ComponentSpec {
    pub fn new<F, Fut>(
        name: impl Into<String>,
        kind: &'static str,
        fingerprint: impl Into<String>,
        run: F,
    ) -> Self
    where
        F: Fn(ComponentCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ComponentResult> + Send + 'static,
    {
        Self {
            name: name.into(),
            kind,
            fingerprint: fingerprint.into(),
            run: Arc::new(move |ctx| Box::pin(run(ctx))),
        }
    }
}

/// Restart delays: doubling from `min` to `max`, each with ±20 % jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before restart number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .min
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter).min(self.max)
    }
}

/// A component that has run this long without failing starts its backoff again from `min`.
const STABLE_AFTER: Duration = Duration::from_secs(30);

struct Running {
    fingerprint: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs the components and keeps them running.
pub struct Supervisor {
    health: Health,
    backoff: Backoff,
    /// How long one component may take to stop when it is replaced by a reload.
    stop_grace: Duration,
    running: BTreeMap<String, Running>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("components", &self.running.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub fn new(health: Health, backoff: Backoff, stop_grace: Duration) -> Self {
        Self {
            health,
            backoff,
            stop_grace,
            running: BTreeMap::new(),
        }
    }

    pub fn set_backoff(&mut self, backoff: Backoff, stop_grace: Duration) {
        self.backoff = backoff;
        self.stop_grace = stop_grace;
    }

    /// Makes the running set match `specs`: starts new components, restarts changed ones,
    /// stops removed ones, leaves unchanged ones alone. Returns the names it (re)started.
    pub async fn reconcile(&mut self, specs: Vec<ComponentSpec>) -> Vec<String> {
        let wanted: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|name| !wanted.contains(name))
            .cloned()
            .collect();
        for name in removed {
            info!(component = %name, "stopping component removed from the config");
            self.stop_one(&name).await;
            self.health.remove(&name);
        }
        let mut started = Vec::new();
        for spec in specs {
            if let Some(current) = self.running.get(&spec.name) {
                if current.fingerprint == spec.fingerprint && !current.task.is_finished() {
                    continue;
                }
                info!(component = %spec.name, "restarting component whose config changed");
                self.stop_one(&spec.name).await;
            }
            started.push(spec.name.clone());
            self.start(spec);
        }
        started
    }

    fn start(&mut self, spec: ComponentSpec) {
        let cancel = CancellationToken::new();
        let handle = self.health.register(&spec.name, spec.kind);
        let task = tokio::spawn(supervise(
            spec.run,
            handle,
            cancel.clone(),
            self.backoff,
            self.stop_grace,
        ));
        self.running.insert(
            spec.name,
            Running {
                fingerprint: spec.fingerprint,
                cancel,
                task,
            },
        );
    }

    async fn stop_one(&mut self, name: &str) {
        if let Some(r) = self.running.remove(name) {
            r.cancel.cancel();
            let mut task = r.task;
            if tokio::time::timeout(self.stop_grace + Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                warn!(component = %name, "component did not stop in time; abandoning it");
                task.abort();
            }
        }
    }

    /// Stops everything, waiting at most `deadline`. Returns the components that did not stop
    /// in time (they are aborted).
    pub async fn shutdown(mut self, deadline: Duration) -> Vec<String> {
        for r in self.running.values() {
            r.cancel.cancel();
        }
        let until = Instant::now() + deadline;
        let mut late = Vec::new();
        for (name, r) in std::mem::take(&mut self.running) {
            let mut task = r.task;
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                task.abort();
                late.push(name);
            }
        }
        late
    }
}

async fn supervise(
    run: RunFn,
    health: HealthHandle,
    cancel: CancellationToken,
    backoff: Backoff,
    stop_grace: Duration,
) {
    let name = health.name().to_owned();
    let mut attempt: u32 = 0;
    loop {
        if health.state() != Some(State::Down) {
            health.set(State::Starting, "starting");
        }
        let started = Instant::now();
        let ctx = ComponentCtx {
            health: health.clone(),
            cancel: cancel.child_token(),
        };
        // Its own task, so a panic inside is caught here as a JoinError, not lost with us.
        let mut task = tokio::spawn(run(ctx));
        let outcome = tokio::select! {
            outcome = &mut task => outcome,
            () = cancel.cancelled() => {
                let asked = Instant::now();
                match tokio::time::timeout(stop_grace, &mut task).await {
                    Ok(_) => tracing::debug!(component = %name, took_ms = asked.elapsed().as_millis() as u64, "component stopped"),
                    Err(_) => {
                        warn!(component = %name, grace = ?stop_grace, "component ignored the stop request; aborting it");
                        task.abort();
                    }
                }
                health.set(State::Stopped, "stopped");
                return;
            }
        };
        if cancel.is_cancelled() {
            health.set(State::Stopped, "stopped");
            return;
        }
        let reason = match outcome {
            Ok(Ok(())) => "stopped unexpectedly".to_owned(),
            Ok(Err(err)) => err.to_string(),
            Err(join) if join.is_panic() => format!("crashed (panic): {}", panic_message(join)),
            Err(join) => format!("was cancelled: {join}"),
        };
        if started.elapsed() >= STABLE_AFTER {
            attempt = 0;
        }
        let delay = backoff.delay(attempt);
        attempt = attempt.saturating_add(1);
        health.failed(&reason);
        warn!(component = %name, error = %reason, retry_in_ms = delay.as_millis() as u64, attempt, "component failed; restarting after backoff");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => {
                health.set(State::Stopped, "stopped");
                return;
            }
        }
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned()),
        Err(_) => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> Backoff {
        Backoff {
            min: Duration::from_millis(5),
            max: Duration::from_millis(20),
        }
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d0 = b.delay(0);
        assert!(d0 >= Duration::from_millis(80) && d0 <= Duration::from_millis(120));
        let d2 = b.delay(2);
        assert!(d2 >= Duration::from_millis(320) && d2 <= Duration::from_millis(480));
        assert!(b.delay(30) <= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn restarts_a_failing_and_a_panicking_component() {
        let health = Health::new();
        let mut sup = Supervisor::new(health.clone(), fast(), Duration::from_millis(100));
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        sup.reconcile(vec![ComponentSpec::new(
            "flaky",
            "device",
            "v1",
            move |ctx| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err("port vanished".into()),
                        1 => panic!("decoder bug"),
                        _ => {
                            ctx.health.set(State::Up, "ok");
                            ctx.cancel.cancelled().await;
                            Ok(())
                        }
                    }
                }
            },
        )])
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while health.snapshot()["flaky"].state != State::Up {
            assert!(Instant::now() < deadline, "component never came up");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let snap = &health.snapshot()["flaky"];
        assert_eq!(snap.restarts, 2);
        assert!(snap
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("decoder bug")));
        assert!(sup.shutdown(Duration::from_secs(1)).await.is_empty());
        assert_eq!(health.snapshot()["flaky"].state, State::Stopped);
    }

    #[tokio::test]
    async fn reload_restarts_only_changed_components() {
        let health = Health::new();
        let mut sup = Supervisor::new(health.clone(), fast(), Duration::from_millis(100));
        let spec = |name: &str, fp: &str| {
            ComponentSpec::new(name, "device", fp, |ctx: ComponentCtx| async move {
                ctx.cancel.cancelled().await;
                Ok(())
            })
        };
        let first = sup.reconcile(vec![spec("a", "1"), spec("b", "1")]).await;
        assert_eq!(first, vec!["a", "b"]);
        let second = sup
            .reconcile(vec![spec("a", "1"), spec("b", "2"), spec("c", "1")])
            .await;
        assert_eq!(second, vec!["b", "c"]);
        let third = sup.reconcile(vec![spec("c", "1")]).await;
        assert!(third.is_empty());
        assert_eq!(health.snapshot().keys().collect::<Vec<_>>(), vec!["c"]);
        assert!(sup.shutdown(Duration::from_secs(1)).await.is_empty());
    }

    #[tokio::test]
    async fn shutdown_abandons_a_component_that_ignores_cancel() {
        let health = Health::new();
        let mut sup = Supervisor::new(health, fast(), Duration::from_millis(50));
        sup.reconcile(vec![ComponentSpec::new(
            "stuck",
            "device",
            "1",
            |_ctx| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            },
        )])
        .await;
        let started = Instant::now();
        let late = sup.shutdown(Duration::from_millis(200)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        // The supervise loop itself aborts the stuck task after its grace, so it finishes in time.
        assert!(late.is_empty() || late == vec!["stuck".to_owned()]);
    }
}
