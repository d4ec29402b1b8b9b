//! The daemon's main loop: start the supervised components, tell systemd how things stand,
//! ping the watchdog, reload on SIGHUP and stop within a deadline on SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{self, Config, ConfigError};
use crate::devices::{self, ObservationBus};
use crate::health::{ComponentHealth, Health, State};
use crate::http::{self, HttpState};
use crate::logging::LogHandle;
use crate::sdnotify::Notifier;
use crate::supervisor::{Backoff, ComponentSpec, Supervisor};
use crate::table::{self, TableHandle};
use crate::uplink;

/// Failures that stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot prepare the storage directory {path}: {source}\n  fix: create it and give the croupier user write access (the systemd unit's StateDirectory does this), or change [storage] dir")]
    Storage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("the journal cannot be opened: {0}")]
    Journal(#[source] crate::journal::JournalError),
}

/// How `run` is driven: by signals (the real daemon) and/or by a token (the demo, tests).
#[derive(Debug)]
pub struct RunOptions {
    pub config_path: PathBuf,
    pub notifier: Notifier,
    pub stop: CancellationToken,
    pub log: Option<LogHandle>,
}

/// Runs the daemon until a stop signal or `opts.stop`.
pub async fn run(config: Config, opts: RunOptions) -> Result<(), DaemonError> {
    let RunOptions {
        config_path,
        notifier,
        stop,
        log,
    } = opts;
    let boot_count = next_boot_count(&config.storage.dir)?;
    info!(
        studio = %config.table.studio,
        table = %config.table.id,
        game = config.table.game.as_str(),
        boot_count,
        version = crate::cli::VERSION,
        "croupier starting"
    );
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let health = Health::new();
    let ready = Arc::new(AtomicBool::new(false));
    // Observations from every device; the table engine subscribes to it.
    let bus = devices::observation_bus();
    // The journal runs on its own thread; every event (and later every input and command) is
    // recorded in its hash chain.
    let journal_dir = crate::journal::default_dir(&config.storage.dir);
    let (journal, journal_thread) =
        crate::journal::Journal::open(&journal_dir, crate::journal::JournalConfig::default())
            .and_then(|mut j| {
                // A crash between the event log's write and the journal's leaves events only
                // in the log: copy them over before anything new happens.
                let from = j.last_event_seq()?.map_or(1, |seq| seq + 1);
                let missing =
                    crate::outbox::events_from(&config.storage.dir, from).unwrap_or_default();
                for env in &missing {
                    j.append(crate::journal::Entry::event(env)?)?;
                }
                if !missing.is_empty() {
                    info!(
                        events = missing.len(),
                        "journal caught up with the event log"
                    );
                }
                j.spawn(4096)
            })
            .map_err(DaemonError::Journal)?;
    let table_handle = TableHandle::with_journal(journal.clone());
    let acked = uplink::AckedSeq::load(&config.storage.dir);
    // Commands keep their nonce memory and replies across reconnects and config reloads.
    let command_keys = match &config.signing {
        Some(sc) => match crate::signing::KeyRing::load(&sc.keys) {
            Ok(ring) => Some(ring),
            Err(err) => {
                warn!(error = %err, "command keys unusable; commands will be refused");
                None
            }
        },
        None => None,
    };
    let commands = crate::commands::Commands::new(
        crate::signing::CommandGuard::new(crate::signing::GuardConfig::new(
            &config.table.studio,
            &config.table.id,
        )),
        command_keys,
        table_handle.clone(),
        health.clone(),
    );
    let mut supervisor = Supervisor::new(
        health.clone(),
        backoff_of(&config),
        config.daemon.shutdown_timeout,
    );
    let shared = Shared {
        health: health.clone(),
        ready: ready.clone(),
        bus,
        table: table_handle.clone(),
        acked,
        commands,
        video: crate::video::VideoHandle::default(),
    };
    supervisor
        .reconcile(component_specs(&config, boot_count, &shared))
        .await;

    let mut health_rx = health.subscribe();
    let mut watchdog = notifier.watchdog_interval().map(|every| {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let ready_deadline = tokio::time::sleep(config.daemon.ready_timeout);
    tokio::pin!(ready_deadline);
    let mut sent_ready = false;
    let mut last_status = String::new();
    let mut config = config;

    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!(signal = "SIGTERM", "stopping"); break; }
            _ = sigint.recv() => { info!(signal = "SIGINT", "stopping"); break; }
            () = stop.cancelled() => { info!("stop requested"); break; }
            _ = sighup.recv() => {
                info!(signal = "SIGHUP", config = %config_path.display(), "reloading config");
                let _ = notifier.reloading();
                match reload(&config_path, &config) {
                    Ok(new) => {
                        if let Some(log) = &log {
                            log.apply(&new.log);
                        }
                        supervisor.set_backoff(backoff_of(&new), new.daemon.shutdown_timeout);
                        let restarted = supervisor
                            .reconcile(component_specs(&new, boot_count, &shared))
                            .await;
                        info!(restarted = ?restarted, "config reloaded");
                        config = new;
                        last_status = format!("config reloaded; {}", status_line(&health.snapshot()));
                    }
                    Err(err) => {
                        error!("config reload refused; still running on the previous config:\n{err}");
                        last_status = format!("reload refused ({}); running on the previous config", short_reason(&err));
                    }
                }
                // READY=1 ends the reload for systemd, whether or not the new file was taken.
                let _ = notifier.ready(&last_status);
            }
            _ = tick(&mut watchdog) => {
                let _ = notifier.watchdog();
            }
            () = &mut ready_deadline, if !sent_ready => {
                sent_ready = true;
                ready.store(true, Ordering::Relaxed);
                let snap = health.snapshot();
                last_status = format!("degraded: {}", status_line(&snap));
                warn!(waiting_for = ?not_ready(&snap), "not every device is up after [daemon] ready_timeout; reporting READY degraded");
                let _ = notifier.ready(&last_status);
            }
            changed = health_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                let snap = health.snapshot();
                if !sent_ready && not_ready(&snap).is_empty() {
                    sent_ready = true;
                    ready.store(true, Ordering::Relaxed);
                    last_status = status_line(&snap);
                    info!(status = %last_status, "ready");
                    let _ = notifier.ready(&last_status);
                } else {
                    let line = status_line(&snap);
                    if line != last_status {
                        let _ = notifier.status(&line);
                        last_status = line;
                    }
                }
            }
        }
    }

    let _ = notifier.stopping();
    ready.store(false, Ordering::Relaxed);
    let deadline = config.daemon.shutdown_timeout;
    let started = tokio::time::Instant::now();
    let late = supervisor.shutdown(deadline).await;
    // Everything queued reaches the disk before the process ends.
    if let Err(err) = journal.flush().await {
        warn!(error = %err, "the journal could not be flushed at shutdown");
    }
    // Every handle must go for the journal's thread to end.
    drop(journal);
    drop(shared);
    drop(table_handle);
    // Flushed already; the thread ends when the last handle is gone. Never wait long for it.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::task::spawn_blocking(move || journal_thread.join()),
    )
    .await;
    if late.is_empty() {
        info!(
            took_ms = started.elapsed().as_millis() as u64,
            "croupier stopped cleanly"
        );
    } else {
        warn!(components = ?late, deadline_ms = deadline.as_millis() as u64, "shutdown deadline passed; exiting without them");
    }
    Ok(())
}

async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn backoff_of(config: &Config) -> Backoff {
    Backoff {
        min: config.daemon.restart_backoff_min,
        max: config.daemon.restart_backoff_max,
    }
}

fn reload(path: &Path, current: &Config) -> Result<Config, ConfigError> {
    let loaded = config::load(path)?;
    for w in &loaded.warnings {
        warn!("{w}");
    }
    let mut new = loaded.config;
    if new.storage.dir != current.storage.dir {
        warn!(
            current = %current.storage.dir.display(),
            new = %new.storage.dir.display(),
            "[storage] dir changes only on restart; keeping the current directory"
        );
        new.storage.dir = current.storage.dir.clone();
    }
    Ok(new)
}

fn short_reason(err: &ConfigError) -> String {
    match err {
        ConfigError::Read { source, .. } => format!("cannot read the file: {source}"),
        ConfigError::Invalid(report) => {
            let n = report.errors().count();
            format!("{n} error{} in the file", if n == 1 { "" } else { "s" })
        }
    }
}

/// What the components share, built once per daemon and kept across reloads.
struct Shared {
    health: Health,
    ready: Arc<AtomicBool>,
    bus: ObservationBus,
    table: TableHandle,
    acked: uplink::AckedSeq,
    commands: crate::commands::Commands,
    video: crate::video::VideoHandle,
}

/// Every component the config asks for.
fn component_specs(config: &Config, boot_count: u64, shared: &Shared) -> Vec<ComponentSpec> {
    let Shared {
        health,
        ready,
        bus,
        table,
        acked,
        commands,
        video,
    } = shared;
    let mut specs: Vec<ComponentSpec> = config
        .devices
        .iter()
        .filter(|d| d.enabled)
        .map(|d| devices::component(d, bus.clone(), table.journal().cloned()))
        .collect();
    specs.push(table::component(
        config,
        bus.clone(),
        health.clone(),
        table.clone(),
        acked.clone(),
    ));
    specs.push(uplink::component(
        config,
        boot_count,
        health.clone(),
        table.clone(),
        acked.clone(),
        commands.clone(),
    ));
    specs.push(http::component(
        config.http.listen,
        HttpState {
            health: health.clone(),
            ready: ready.clone(),
            table: config.table.clone(),
            engine: table.clone(),
            video: video.clone(),
            timecode_rate: config.timing.timecode_rate,
            cameras: config.cameras.clone(),
        },
    ));
    specs.extend(crate::video::components(config, table, video));
    specs.extend(crate::vision_stage::components(config, table, video));
    specs
}

/// The components that keep the daemon from being ready: devices not up, an uplink that has
/// neither connected nor started buffering, an HTTP listener not bound.
fn not_ready(snap: &std::collections::BTreeMap<String, ComponentHealth>) -> Vec<String> {
    snap.iter()
        .filter(|(_, c)| match c.kind {
            "uplink" => !matches!(c.state, State::Up | State::Degraded),
            // The engine plays from its sensors; a lost camera shows on /status, not here.
            "camera" | "vision" => false,
            _ => c.state != State::Up,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// One line for `systemctl status`: how many devices are up, the uplink, and what is down.
fn status_line(snap: &std::collections::BTreeMap<String, ComponentHealth>) -> String {
    let devices: Vec<_> = snap.iter().filter(|(_, c)| c.kind == "device").collect();
    let up = devices.iter().filter(|(_, c)| c.state == State::Up).count();
    let uplink = snap
        .get("uplink")
        .map_or("absent".to_owned(), |c| match c.state {
            State::Up => "connected".to_owned(),
            State::Degraded => "buffering".to_owned(),
            other => other.as_str().to_owned(),
        });
    let mut line = format!("{up}/{} devices up, uplink {uplink}", devices.len());
    let down: Vec<_> = devices
        .iter()
        .filter(|(_, c)| c.state != State::Up)
        .map(|(n, c)| format!("{n} {}", c.state.as_str()))
        .collect();
    if !down.is_empty() {
        line.push_str(&format!(" ({})", down.join(", ")));
    }
    line
}

/// Counts boots in `<storage>/boot_count`, so the `online` status tells a restart loop apart.
fn next_boot_count(dir: &Path) -> Result<u64, DaemonError> {
    let storage = |source| DaemonError::Storage {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(storage)?;
    let path = dir.join("boot_count");
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let next = previous + 1;
    let tmp = dir.join("boot_count.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(storage)?;
        writeln!(f, "{next}").map_err(storage)?;
        f.sync_all().map_err(storage)?;
    }
    std::fs::rename(&tmp, &path).map_err(storage)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;

    #[test]
    fn status_line_names_what_is_down() {
        let health = Health::new();
        health.register("wheel", "device").set(State::Up, "ok");
        health.register("shoe", "device").failed("cannot open");
        health
            .register("uplink", "uplink")
            .set(State::Degraded, "buffering");
        health.register("http", "http").set(State::Up, "ok");
        let snap = health.snapshot();
        assert_eq!(
            status_line(&snap),
            "1/2 devices up, uplink buffering (shoe down)"
        );
        assert_eq!(not_ready(&snap), vec!["shoe"]);
    }

    #[test]
    fn boot_count_survives_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(next_boot_count(dir.path()).expect("first"), 1);
        assert_eq!(next_boot_count(dir.path()).expect("second"), 2);
    }
}
