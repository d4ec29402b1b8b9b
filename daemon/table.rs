//! The table: the component that runs the engine against the real world.
//!
//! It feeds the engine every observation from the devices (RFID tags mapped to cards through
//! the tag registry), device up/down changes and ticks from the monotonic clock; stamps each
//! event with its seq, id, timecode and clock quality; appends it to the durable event log
//! (fsync) before anyone else sees it; and publishes it to the rest of the daemon. At start it
//! replays the log: an interrupted round resumes, or is voided by rule with a reason.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use croupier_drivers::model::{monotonic_ns, Observation, RfidEvent};
use croupier_drivers::rfid::{TagMeaning, TagRegistry};
use tokio::sync::{broadcast, mpsc};
use tracing::{error, info};

use crate::config::{Config, DriverSettings};
use crate::devices::{ObservationBus, Observed};
use crate::engine::{
    self, At, Command, Engine, EngineConfig, Input, Output, Snapshot, Source, Witness,
};
use crate::events::{clock_now, Envelope, EventLog, EventLogError, Stamper};
use crate::health::{Health, State};
use crate::supervisor::{ComponentCtx, ComponentResult, ComponentSpec};

/// A command for the engine, and where to say which events it produced (seq, type).
pub type CommandRequest = (
    Source,
    Command,
    Option<tokio::sync::oneshot::Sender<Vec<(u64, String)>>>,
);

/// The engine's command queue, handed from one run of the component to the next.
type CommandQueue = Arc<Mutex<Option<mpsc::Receiver<CommandRequest>>>>;

/// Events kept for pages that connect: a whole round and the alerts around it.
pub const RECENT_EVENTS: usize = 200;

/// What the rest of the daemon sees of the table.
#[derive(Debug, Clone)]
pub struct TableHandle {
    /// Every event, after it is durable.
    pub events: broadcast::Sender<Envelope>,
    /// Commands into the engine (orchestrator, staff).
    pub commands: mpsc::Sender<CommandRequest>,
    commands_rx: CommandQueue,
    /// The last events, for a page that (re)connects: the prompter rebuilds the round from them.
    recent: Arc<Mutex<std::collections::VecDeque<Envelope>>>,
    /// What the cameras' vision stages saw (`Input::Witness`, `Input::Calibration`).
    pub vision: mpsc::Sender<Input>,
    vision_rx: Arc<Mutex<Option<mpsc::Receiver<Input>>>>,
    snapshot: Arc<Mutex<Option<Snapshot>>>,
    /// The seq of the last durable event.
    last_seq: Arc<std::sync::atomic::AtomicU64>,
    /// The hash-chained journal every event is also recorded in (none in unit tests).
    journal: Option<crate::journal::JournalHandle>,
}

impl Default for TableHandle {
    fn default() -> Self {
        let (commands, rx) = mpsc::channel(64);
        let (vision, vision_rx) = mpsc::channel(256);
        Self {
            events: broadcast::channel(4096).0,
            commands,
            commands_rx: Arc::new(Mutex::new(Some(rx))),
            vision,
            vision_rx: Arc::new(Mutex::new(Some(vision_rx))),
            recent: Arc::default(),
            snapshot: Arc::default(),
            last_seq: Arc::default(),
            journal: None,
        }
    }
}

impl TableHandle {
    /// A handle that also records every event in `journal`.
    pub fn with_journal(journal: crate::journal::JournalHandle) -> Self {
        Self {
            journal: Some(journal),
            ..Self::default()
        }
    }

    /// The journal, if the daemon keeps one.
    pub fn journal(&self) -> Option<&crate::journal::JournalHandle> {
        self.journal.as_ref()
    }

    /// The seq of the last event written to the log (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last [`RECENT_EVENTS`] durable events, oldest first.
    pub fn recent_events(&self) -> Vec<Envelope> {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn remember(&self, env: &Envelope) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() >= RECENT_EVENTS {
            recent.pop_front();
        }
        recent.push_back(env.clone());
    }

    /// The engine's phase, round, deadline and last result.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Which sources a device speaks for.
fn source_of(role: croupier_drivers::DeviceRole) -> Source {
    match role {
        croupier_drivers::DeviceRole::Wheel => Source::Wheel,
        croupier_drivers::DeviceRole::Shoe => Source::Shoe,
        croupier_drivers::DeviceRole::Rfid => Source::Rfid,
        croupier_drivers::DeviceRole::Pedal => Source::Pedal,
    }
}

/// The engine's settings from the config.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        table_id: config.table.id.clone(),
        game: config.table.game,
        bet_window: config.timing.bet_window,
        early_close: config.timing.early_close,
        wheel: config.table.wheel,
        blackjack: config.blackjack.clone(),
        crosscheck: config.crosscheck.clone(),
    }
}

/// The supervised table component.
pub fn component(
    config: &Config,
    bus: ObservationBus,
    health: Health,
    handle: TableHandle,
    acked: crate::uplink::AckedSeq,
) -> ComponentSpec {
    let cfg = config.clone();
    let fingerprint = format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}{}",
        engine_config(config),
        config.storage,
        config.timing,
        config.table,
        registries(config).keys().collect::<Vec<_>>(),
        config.signing,
        config.mqtt.outbox_max_events
    );
    ComponentSpec::new("table", "table", fingerprint, move |ctx| {
        run(
            cfg.clone(),
            bus.clone(),
            health.clone(),
            handle.clone(),
            acked.clone(),
            ctx,
        )
    })
}

/// The tag registries of the RFID devices, by device name.
fn registries(config: &Config) -> BTreeMap<String, Arc<TagRegistry>> {
    config
        .devices
        .iter()
        .filter_map(|d| match &d.settings {
            DriverSettings::RfidAscii {
                registry: Some(p), ..
            }
            | DriverSettings::RfidFeig {
                registry: Some(p), ..
            } => TagRegistry::load(p)
                .ok()
                .map(|r| (d.name.clone(), Arc::new(r))),
            _ => None,
        })
        .collect()
}

async fn run(
    config: Config,
    bus: ObservationBus,
    health: Health,
    handle: TableHandle,
    acked: crate::uplink::AckedSeq,
    ctx: ComponentCtx,
) -> ComponentResult {
    let mut observations = bus.subscribe();
    let Some(mut commands) = handle
        .commands_rx
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        return Err("the table's command channel is already in use".into());
    };
    let Some(mut vision) = handle
        .vision_rx
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        *handle
            .commands_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(commands);
        return Err("the table's vision channel is already in use".into());
    };
    let result = run_table(
        &config,
        &mut observations,
        (&mut commands, &mut vision),
        &health,
        &handle,
        &acked,
        &ctx,
    )
    .await;
    // Give the channels back for the next run after a restart.
    *handle
        .commands_rx
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(commands);
    *handle
        .vision_rx
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(vision);
    result
}

async fn run_table(
    config: &Config,
    observations: &mut broadcast::Receiver<Observed>,
    // The orchestrator's and staff's commands, and the vision stages' sightings.
    (commands, vision): (
        &mut mpsc::Receiver<CommandRequest>,
        &mut mpsc::Receiver<Input>,
    ),
    health: &Health,
    handle: &TableHandle,
    acked: &crate::uplink::AckedSeq,
    ctx: &ComponentCtx,
) -> ComponentResult {
    let (mut log, history) = EventLog::open(&config.storage.dir)?;
    let mut outbox = OutboxWatch::new(config.mqtt.outbox_max_events);
    let stamper = Stamper {
        studio: config.table.studio.clone(),
        table: config.table.id.clone(),
        rate: config.timing.timecode_rate,
    };
    let registries = registries(config);
    // The key ring is re-read when its files change, so keys rotate without a restart.
    let mut signer = match &config.signing {
        Some(sc) => Some((crate::signing::KeyRing::load(&sc.keys)?, sc.key_id.clone())),
        None => None,
    };
    let mut key_check = tokio::time::interval(Duration::from_secs(5));
    let mut outbox_tick = tokio::time::interval(Duration::from_secs(1));
    outbox_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let now = now();
    let (mut engine, recovered) = engine::recovery::recover(engine_config(config), &history, now);
    // The history was only needed to rebuild the engine; do not keep it for the table's life.
    let replayed = history.len();
    drop(history);
    let mut timers = Timers::default();
    ctx.health
        .fact("event_log", log.path().display().to_string());
    let written = emit(
        &mut log,
        &stamper,
        handle,
        &ctx.health,
        recovered,
        &mut timers,
        signer.as_ref(),
    )?;
    journal_events(handle, written).await?;
    publish_snapshot(handle, &engine);
    ctx.health.set(
        State::Up,
        format!(
            "{} game, phase {}",
            config.table.game.as_str(),
            engine.phase().as_str()
        ),
    );
    info!(
        phase = engine.phase().as_str(),
        events = replayed,
        next_seq = log.next_seq(),
        "table engine up"
    );

    let mut device_states: BTreeMap<String, State> = BTreeMap::new();
    let mut command_reply: Option<tokio::sync::oneshot::Sender<Vec<(u64, String)>>> = None;
    let mut health_rx = health.subscribe();
    loop {
        let next_timer = timers.next();
        let input = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return Ok(()),
            _ = outbox_tick.tick() => {
                // The depth and the oldest unacknowledged event move with the broker's acks
                // too, not only with the table's own inputs.
                let outputs = outbox.check(&mut engine, log.next_seq().saturating_sub(1), acked.get(), &ctx.health, handle);
                if !outputs.is_empty() {
                    let written = emit(&mut log, &stamper, handle, &ctx.health, outputs, &mut timers, signer.as_ref())?;
                    journal_events(handle, written).await?;
                    publish_snapshot(handle, &engine);
                }
                None
            }
            _ = key_check.tick(), if signer.is_some() => {
                if let Some((ring, _)) = signer.as_mut() {
                    match ring.reload_if_changed() {
                        Ok(true) => info!(keys = ?ring.key_ids(), "signing keys reloaded"),
                        Ok(false) => {}
                        Err(err) => tracing::warn!(error = %err, "new signing keys refused; keeping the previous ones"),
                    }
                }
                None
            }
            () = sleep_until_mono(next_timer) => {
                timers.pop_due(monotonic_ns());
                Some(Input::Tick { at: now_at() })
            }
            received = observations.recv() => match received {
                Ok(observed) => observed_input(observed, &registries),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    error!(missed = n, "the table fell behind the devices and missed observations");
                    ctx.health.add("missed_observations", n);
                    None
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            Some(input) = vision.recv() => Some(input),
            Some((source, command, reply)) = commands.recv() => {
                command_reply = reply;
                Some(Input::Command { source, at: now_at(), command })
            }
            changed = health_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                let inputs = device_changes(health, &mut device_states);
                let mut outputs = Vec::new();
                for input in inputs {
                    outputs.extend(engine.handle(input));
                }
                let written = emit(&mut log, &stamper, handle, &ctx.health, outputs, &mut timers, signer.as_ref())?;
                journal_events(handle, written).await?;
                publish_snapshot(handle, &engine);
                continue;
            }
        };
        let Some(input) = input else { continue };
        let mut outputs = outbox.check(
            &mut engine,
            log.next_seq().saturating_sub(1),
            acked.get(),
            &ctx.health,
            handle,
        );
        outputs.extend(engine.handle(input));
        let written = emit(
            &mut log,
            &stamper,
            handle,
            &ctx.health,
            outputs,
            &mut timers,
            signer.as_ref(),
        )?;
        if let Some(reply) = command_reply.take() {
            let _ = reply.send(written.iter().map(|e| (e.seq, e.kind.clone())).collect());
        }
        journal_events(handle, written).await?;
        publish_snapshot(handle, &engine);
        ctx.health.set(
            State::Up,
            format!(
                "{} game, phase {}",
                config.table.game.as_str(),
                engine.phase().as_str()
            ),
        );
    }
}

fn now() -> At {
    now_at()
}

fn now_at() -> At {
    let stamp = croupier_drivers::model::Stamp::now();
    At {
        utc: stamp.utc,
        mono_ns: stamp.mono_ns,
    }
}

fn observed_input(
    observed: Observed,
    registries: &BTreeMap<String, Arc<TagRegistry>>,
) -> Option<Input> {
    let at = At {
        utc: observed.stamp.utc,
        mono_ns: observed.stamp.mono_ns,
    };
    let source = source_of(observed.role);
    if let Observation::Rfid(RfidEvent::Arrived { uid, antenna }) = &observed.observation {
        // A tag that is a card in the registry witnesses that card.
        let card = registries
            .get(&observed.device)
            .and_then(|r| match r.get(uid) {
                Some(TagMeaning::Card(card)) => Some(*card),
                _ => None,
            })?;
        return Some(Input::Witness {
            source,
            at,
            witness: Witness::Card {
                card,
                zone: Some(format!("antenna-{antenna}")),
            },
            detail: serde_json::json!({ "device": observed.device, "uid": uid.to_string() }),
        });
    }
    Some(Input::Device {
        device: observed.device,
        source,
        at,
        observation: observed.observation,
    })
}

/// Device up/down transitions since the last look, as engine inputs.
fn device_changes(health: &Health, known: &mut BTreeMap<String, State>) -> Vec<Input> {
    let mut inputs = Vec::new();
    for (name, c) in health.snapshot() {
        if c.kind != "device" {
            continue;
        }
        let up = c.state == State::Up;
        let was_up = known.get(&name).map(|s| *s == State::Up);
        let settled = matches!(c.state, State::Up | State::Down);
        if settled && was_up != Some(up) {
            // The first sighting of a device that is up is no news; a first "down" is.
            if was_up.is_some() || !up {
                inputs.push(Input::DeviceHealth {
                    device: name.clone(),
                    up,
                    detail: c.detail.clone(),
                    at: now_at(),
                });
            }
            known.insert(name, c.state);
        }
    }
    inputs
}

/// Stamps, stores (fsync) and publishes events; arms the timers the engine asked for.
fn emit(
    log: &mut EventLog,
    stamper: &Stamper,
    handle: &TableHandle,
    health: &crate::health::HealthHandle,
    outputs: Vec<Output>,
    timers: &mut Timers,
    signer: Option<&(crate::signing::KeyRing, String)>,
) -> Result<Vec<Envelope>, EventLogError> {
    let mut written = Vec::new();
    for output in outputs {
        match output {
            Output::Timer { at_mono_ns } => timers.arm(at_mono_ns),
            Output::Event(event) => {
                let mut env = stamper.envelope(log.next_seq(), event, clock_now());
                if let Some((ring, key_id)) = signer {
                    // An event that cannot be signed still goes out (the record comes first);
                    // the missing signature is visible to every verifier.
                    if let Err(err) = env.sign(ring, key_id) {
                        tracing::error!(error = %err, seq = env.seq, "cannot sign the event");
                        health.add("unsigned_events", 1);
                    }
                }
                log.append(&env)?;
                handle
                    .last_seq
                    .store(env.seq, std::sync::atomic::Ordering::Relaxed);
                health.add("events", 1);
                health.fact(
                    "last_event",
                    format!(
                        "{} #{} {}",
                        env.kind,
                        env.seq,
                        env.round_id.as_deref().unwrap_or("")
                    ),
                );
                info!(seq = env.seq, kind = %env.kind, round_id = env.round_id.as_deref().unwrap_or(""), source = env.source.as_str(), timecode = %env.timecode.smpte, "event");
                match env.kind.as_str() {
                    "round.close" => {
                        let late_us = env.payload["late_us"].as_u64().unwrap_or(0);
                        crate::metrics::observe(
                            "croupier_bet_close_error_seconds",
                            &[],
                            late_us as f64 / 1e6,
                        );
                    }
                    "alert.mismatch" => {
                        health.add("holds", 1);
                        // Which witness disagreed (or was missing), for the dashboards.
                        let reason = env.payload["reason"].as_str().unwrap_or("unknown");
                        let source = env.payload["detail"]["source"]
                            .as_str()
                            .map(str::to_owned)
                            .or_else(|| {
                                env.payload["detail"]["missing"].as_array().map(|m| {
                                    m.iter()
                                        .filter_map(|v| v.as_str())
                                        .collect::<Vec<_>>()
                                        .join(",")
                                })
                            })
                            .unwrap_or_default();
                        crate::metrics::count(
                            "croupier_crosscheck_mismatches_total",
                            &[("reason", reason), ("source", &source)],
                            1,
                        );
                    }
                    _ => {}
                }
                handle.remember(&env);
                let _ = handle.events.send(env.clone());
                written.push(env);
            }
        }
    }
    Ok(written)
}

/// Records events in the journal (queued; the journal's thread fsyncs them in batches).
async fn journal_events(handle: &TableHandle, events: Vec<Envelope>) -> ComponentResult {
    if let Some(journal) = &handle.journal {
        for env in &events {
            journal.record(crate::journal::Entry::event(env)?).await?;
        }
    }
    Ok(())
}

fn publish_snapshot(handle: &TableHandle, engine: &Engine) {
    *handle
        .snapshot
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(engine.snapshot());
}

/// Watches the outbox's depth (events not yet acknowledged by the broker): an alarm at 80 %,
/// and no new round at 100 %, so events are never dropped for lack of room.
#[derive(Debug)]
struct OutboxWatch {
    max: u64,
    alarmed: bool,
}

impl OutboxWatch {
    fn new(max: u64) -> Self {
        Self {
            max: max.max(1),
            alarmed: false,
        }
    }

    fn check(
        &mut self,
        engine: &mut Engine,
        last_seq: u64,
        acked: u64,
        health: &crate::health::HealthHandle,
        handle: &TableHandle,
    ) -> Vec<Output> {
        let depth = last_seq.saturating_sub(acked);
        health.fact("outbox_depth", depth.to_string());
        // The oldest event the broker has not acknowledged (or, past the recent ones kept in
        // memory, the oldest of those: the age is then at least that).
        let oldest = if depth == 0 {
            String::new()
        } else {
            let recent = handle.recent_events();
            recent
                .iter()
                .find(|e| e.seq > acked)
                .map(|e| e.utc.clone())
                .unwrap_or_default()
        };
        health.fact("outbox_oldest_utc", oldest);
        engine.set_outbox_full(depth >= self.max);
        let high = depth.saturating_mul(10) >= self.max.saturating_mul(8);
        let mut out = Vec::new();
        if high && !self.alarmed {
            self.alarmed = true;
            tracing::error!(
                depth,
                max = self.max,
                "outbox above 80 %: the broker has not acknowledged events for a long time"
            );
            out.push(Output::Event(engine::EngineEvent {
                kind: "alert.outbox_high".into(),
                round_id: engine.snapshot().round_id,
                source: Source::System,
                at: now_at(),
                payload: serde_json::json!({ "depth": depth, "max": self.max, "action": "check the link to the studio broker; at 100 % no new round opens" }),
            }));
        } else if depth.saturating_mul(2) < self.max {
            self.alarmed = false;
        }
        out
    }
}

/// Deadlines on CLOCK_MONOTONIC, earliest first.
#[derive(Debug, Default)]
pub struct Timers(BinaryHeap<Reverse<u64>>);

impl Timers {
    pub fn arm(&mut self, at_mono_ns: u64) {
        self.0.push(Reverse(at_mono_ns));
    }

    pub fn next(&self) -> Option<u64> {
        self.0.peek().map(|Reverse(at)| *at)
    }

    /// Drops every deadline at or before `now`.
    pub fn pop_due(&mut self, now: u64) {
        while self.0.peek().is_some_and(|Reverse(at)| *at <= now) {
            self.0.pop();
        }
    }
}

/// Sleeps until CLOCK_MONOTONIC reaches `at`. Tokio's timer runs on the monotonic clock, so a
/// step of the wall clock (NTP, a technician) cannot move a bet window's close.
pub async fn sleep_until_mono(at: Option<u64>) {
    match at {
        Some(at) => {
            let wait = at.saturating_sub(monotonic_ns());
            tokio::time::sleep(Duration::from_nanos(wait)).await;
        }
        None => std::future::pending().await,
    }
}
