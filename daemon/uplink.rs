//! The MQTT uplink to the studio's orchestrator.
//!
//! - `croupier/v1/<studio>/<table>/events`: every event, QoS 1, in `seq` order, from the durable
//!   outbox: each event is in the fsync'd event log before it is published and counts as
//!   delivered only on the broker's PUBACK. After a reconnect or a restart everything not yet
//!   acknowledged is published again, in order (at-least-once; consumers deduplicate by
//!   `event_id`).
//! - `…/state`: retained snapshot of the round (phase, round, deadline, last result) and the
//!   devices, republished after every event.
//! - `…/status`: retained `online` on connect; the broker's last will sets `offline` if the box
//!   dies, and a clean stop sets `offline` itself.
//! - `…/telemetry`: component health, QoS 0, every `[mqtt] telemetry_interval`.
//!
//! While the broker is away the uplink is "buffering" (the table keeps running; the event log
//! is the buffer) and reconnects with jittered backoff. Each connection gets a fresh client, so
//! nothing the MQTT library kept in memory from an old connection is sent out of order.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use serde_json::json;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::clock::format_utc;
use crate::config::{Config, MqttConfig, TableConfig};
use crate::events::Envelope;
use crate::health::{Health, State};
use crate::outbox::{events_from, Acks};
use crate::supervisor::{Backoff, ComponentCtx, ComponentResult, ComponentSpec};
use crate::table::TableHandle;

/// Errors that stop the uplink (a broker outage is not one: that buffers).
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
}

/// How far the broker has acknowledged the event stream; read by the table for the outbox's
/// depth.
#[derive(Debug, Clone, Default)]
pub struct AckedSeq(Arc<AtomicU64>);

impl AckedSeq {
    /// Starts from the outbox pointer on disk, so the outbox's depth is right from the start.
    pub fn load(storage: &std::path::Path) -> Self {
        let acked = Self::default();
        acked.set(Acks::load(storage).acked());
        acked
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, seq: u64) {
        self.0.store(seq, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq)]
struct UplinkSettings {
    mqtt: MqttConfig,
    table: TableConfig,
    storage: PathBuf,
    boot_count: u64,
    backoff_min: Duration,
    backoff_max: Duration,
}

/// The supervised uplink component.
pub fn component(
    config: &Config,
    boot_count: u64,
    health: Health,
    table: TableHandle,
    acked: AckedSeq,
    commands: crate::commands::Commands,
) -> ComponentSpec {
    let settings = UplinkSettings {
        mqtt: config.mqtt.clone(),
        table: config.table.clone(),
        storage: config.storage.dir.clone(),
        boot_count,
        backoff_min: config.daemon.restart_backoff_min,
        backoff_max: config.daemon.restart_backoff_max,
    };
    let fingerprint = format!("{:?}{:?}", settings.mqtt, settings.table);
    ComponentSpec::new("uplink", "uplink", fingerprint, move |ctx| {
        run(
            settings.clone(),
            health.clone(),
            table.clone(),
            commands.clone(),
            acked.clone(),
            ctx,
        )
    })
}

pub fn status_payload(state: &str, reason: Option<&str>, boot_count: u64) -> String {
    json!({
        "state": state,
        "reason": reason,
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("CROUPIER_GIT_COMMIT"),
        "boot_count": boot_count,
        "utc": format_utc(std::time::SystemTime::now()),
    })
    .to_string()
}

fn options(s: &UplinkSettings) -> Result<MqttOptions, UplinkError> {
    let m = &s.mqtt;
    let prefix = MqttConfig::topic_prefix(&s.table);
    let mut opts = MqttOptions::new(&m.client_id, &m.host, m.port);
    opts.set_keep_alive(m.keep_alive);
    // The event log is the session: the broker need not keep one for us.
    opts.set_clean_start(true);
    opts.set_last_will(LastWill::new(
        format!("{prefix}/status"),
        status_payload("offline", Some("connection lost"), s.boot_count),
        QoS::AtLeastOnce,
        true,
        None,
    ));
    if let (Some(user), Some(file)) = (&m.username, &m.password_file) {
        let password = read_file("password_file", file)?;
        let password = String::from_utf8_lossy(&password).trim_end().to_owned();
        opts.set_credentials(user, password);
    } else if let Some(user) = &m.username {
        opts.set_credentials(user, "");
    }
    if m.tls {
        let ca = match &m.ca {
            Some(path) => read_file("ca", path)?,
            None => Vec::new(),
        };
        let client_auth = match (&m.cert, &m.key) {
            (Some(cert), Some(key)) => Some((read_file("cert", cert)?, read_file("key", key)?)),
            _ => None,
        };
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    Ok(opts)
}

fn read_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, UplinkError> {
    std::fs::read(path).map_err(|source| UplinkError::ReadFile {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// One QoS 1 publish handed to the MQTT client: which event it carries (None: status, state),
/// and its packet id once it went out.
#[derive(Debug)]
struct InFlight {
    seq: Option<u64>,
    pkid: Option<u16>,
}

/// The publishes of the current connection, in the order they were handed to the client
/// (which is the order they go out). Tagged with the connection's generation, so a publisher
/// that raced a reconnect cannot mix its old publishes into the new connection's list.
#[derive(Debug, Default)]
struct Flight {
    generation: u64,
    queue: VecDeque<InFlight>,
    /// Each event's input instant (CLOCK_MONOTONIC) by seq, until the broker acknowledges it:
    /// the input-to-publish latency.
    input_mono: std::collections::HashMap<u64, u64>,
}

type SharedFlight = Arc<Mutex<Flight>>;

fn lock(flight: &SharedFlight) -> std::sync::MutexGuard<'_, Flight> {
    flight.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands a QoS 1 publish to the client and records it, atomically with respect to reconnects.
/// Returns `false` when the connection is gone (generation changed or client closed).
async fn publish_qos1(
    client: &AsyncClient,
    flight: &SharedFlight,
    generation: u64,
    topic: &str,
    retain: bool,
    payload: Vec<u8>,
    seq: Option<u64>,
) -> bool {
    publish_qos1_with(
        client, flight, generation, topic, retain, payload, seq, None,
    )
    .await
}

/// [`publish_qos1`] with MQTT 5 properties (a command reply's correlation data).
#[allow(clippy::too_many_arguments)]
async fn publish_qos1_with(
    client: &AsyncClient,
    flight: &SharedFlight,
    generation: u64,
    topic: &str,
    retain: bool,
    payload: Vec<u8>,
    seq: Option<u64>,
    properties: Option<PublishProperties>,
) -> bool {
    loop {
        {
            let mut f = lock(flight);
            if f.generation != generation {
                return false;
            }
            let sent = match &properties {
                Some(p) => client.try_publish_with_properties(
                    topic,
                    QoS::AtLeastOnce,
                    retain,
                    payload.clone(),
                    p.clone(),
                ),
                None => client.try_publish(topic, QoS::AtLeastOnce, retain, payload.clone()),
            };
            match sent {
                Ok(()) => {
                    f.queue.push_back(InFlight { seq, pkid: None });
                    return true;
                }
                Err(rumqttc::v5::ClientError::TryRequest(_)) => {}
                Err(_) => return false,
            }
        }
        // The client's queue is full: the broker is slow. Wait without holding the lock.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(
    s: UplinkSettings,
    health: Health,
    table: TableHandle,
    commands: crate::commands::Commands,
    acked_seq: AckedSeq,
    ctx: ComponentCtx,
) -> ComponentResult {
    let prefix = MqttConfig::topic_prefix(&s.table);
    let broker = format!("{}:{}", s.mqtt.host, s.mqtt.port);
    ctx.health.fact("broker", s.mqtt.url.clone());
    ctx.health.fact("topic_prefix", prefix.clone());
    let mut acks = Acks::load(&s.storage);
    acked_seq.set(acks.acked());
    let flight: SharedFlight = Arc::default();
    // The publisher gets the current connection's client; None while disconnected.
    let (client_tx, client_rx) = watch::channel::<Option<(u64, AsyncClient)>>(None);
    let publisher = tokio::spawn(publish_events(
        prefix.clone(),
        s.storage.clone(),
        table.clone(),
        health.clone(),
        acked_seq.clone(),
        flight.clone(),
        client_rx,
    ));
    let backoff = Backoff {
        min: s.backoff_min,
        max: s.backoff_max,
    };
    let mut failures: u32 = 0;
    let mut generation = 0u64;
    ctx.health.set(
        State::Degraded,
        format!("buffering: connecting to {broker}"),
    );
    let result = loop {
        generation += 1;
        let (client, mut eventloop) = AsyncClient::new(options(&s)?, 1024);
        {
            let mut f = lock(&flight);
            f.generation = generation;
            f.queue.clear();
        }
        let outcome = connection(
            &s,
            &health,
            &ctx,
            &client,
            &mut eventloop,
            &flight,
            generation,
            &client_tx,
            &mut acks,
            &acked_seq,
            &prefix,
            &broker,
            &mut failures,
            &commands,
        )
        .await;
        let _ = client_tx.send(None);
        lock(&flight).generation = generation + 1;
        acks.save()?;
        match outcome {
            Ended::Cancelled { connected } => {
                if connected {
                    say_goodbye(&client, &mut eventloop, &prefix, s.boot_count).await;
                }
                break Ok(());
            }
            Ended::Lost(err) => {
                ctx.health.add("connection_errors", 1);
                let delay = backoff.delay(failures);
                failures = failures.saturating_add(1);
                let depth = table_depth(&table, &acked_seq);
                ctx.health.set(
                    State::Degraded,
                    format!(
                        "buffering {depth} event(s): {broker} unreachable ({err}); retry in {} ms",
                        delay.as_millis()
                    ),
                );
                warn!(%broker, error = %err, retry_in_ms = delay.as_millis() as u64, outbox = depth, "uplink disconnected; buffering");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = ctx.cancel.cancelled() => break Ok(()),
                }
            }
        }
    };
    publisher.abort();
    result
}

fn table_depth(table: &TableHandle, acked: &AckedSeq) -> u64 {
    table.last_seq().saturating_sub(acked.get())
}

enum Ended {
    Cancelled { connected: bool },
    Lost(String),
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    s: &UplinkSettings,
    health: &Health,
    ctx: &ComponentCtx,
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    flight: &SharedFlight,
    generation: u64,
    client_tx: &watch::Sender<Option<(u64, AsyncClient)>>,
    acks: &mut Acks,
    acked_seq: &AckedSeq,
    prefix: &str,
    broker: &str,
    failures: &mut u32,
    commands: &crate::commands::Commands,
) -> Ended {
    let cmd_topic = format!("{prefix}/cmd");
    let mut connected = false;
    let mut telemetry = tokio::time::interval(s.mqtt.telemetry_interval);
    telemetry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut save = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = ctx.cancel.cancelled() => return Ended::Cancelled { connected },
            _ = save.tick() => {
                if let Err(err) = acks.save() {
                    warn!(error = %err, "cannot save the outbox pointer");
                }
            }
            _ = telemetry.tick(), if connected => {
                let payload = serde_json::to_string(&health.snapshot()).unwrap_or_default();
                // QoS 0 telemetry is best effort; a full queue just skips a beat.
                let _ = client.try_publish(format!("{prefix}/telemetry"), QoS::AtMostOnce, false, payload);
            }
            polled = eventloop.poll() => match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    *failures = 0;
                    connected = true;
                    ctx.health.set(State::Up, format!("connected to {broker}"));
                    info!(%broker, acked = acks.acked(), "uplink connected");
                    let status = status_payload("online", None, s.boot_count).into_bytes();
                    if !publish_qos1(client, flight, generation, &format!("{prefix}/status"), true, status, None).await {
                        return Ended::Lost("client closed".into());
                    }
                    // Commands come in on …/cmd; replies go to each command's response topic.
                    if let Err(err) = client.try_subscribe(cmd_topic.clone(), QoS::AtLeastOnce) {
                        warn!(error = %err, "cannot subscribe to the command topic");
                    }
                    // Now the publisher may replay the outbox and follow new events.
                    let _ = client_tx.send(Some((generation, client.clone())));
                    telemetry.reset_immediately();
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    // Publishes leave in the order they were handed over; QoS 0 ones carry
                    // pkid 0 and are not in the list.
                    if pkid != 0 {
                        let mut f = lock(flight);
                        if let Some(entry) = f.queue.iter_mut().find(|e| e.pkid.is_none()) {
                            entry.pkid = Some(pkid);
                        }
                    }
                    ctx.health.add("published", 1);
                }
                Ok(Event::Incoming(Packet::Publish(message))) if message.topic.as_ref() == cmd_topic.as_bytes() => {
                    ctx.health.add("commands", 1);
                    let commands = commands.clone();
                    let client = client.clone();
                    let flight = flight.clone();
                    let response = message.properties.as_ref().and_then(|p| {
                        p.response_topic.clone().map(|topic| (topic, p.correlation_data.clone()))
                    });
                    tokio::spawn(async move {
                        let reply = commands.handle(&message.payload).await;
                        if let Some((topic, correlation)) = response {
                            let properties = PublishProperties {
                                correlation_data: correlation,
                                content_type: Some("application/json".into()),
                                ..PublishProperties::default()
                            };
                            let payload = reply.to_string().into_bytes();
                            publish_qos1_with(&client, &flight, generation, &topic, false, payload, None, Some(properties)).await;
                        }
                    });
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    let (seq, input_mono) = {
                        let mut f = lock(flight);
                        let at = f.queue.iter().position(|e| e.pkid == Some(ack.pkid));
                        let seq = at.and_then(|i| f.queue.remove(i)).and_then(|e| e.seq);
                        let input_mono = seq.and_then(|s| f.input_mono.remove(&s));
                        (seq, input_mono)
                    };
                    if let Some(input_mono) = input_mono {
                        let latency = crate::clock::monotonic_ns().saturating_sub(input_mono);
                        crate::metrics::observe("croupier_input_to_publish_seconds", &[], latency as f64 / 1e9);
                    }
                    if let Some(seq) = seq {
                        acks.ack(seq);
                        acked_seq.set(acks.acked());
                        ctx.health.add("acked", 1);
                        ctx.health.fact("acked_seq", acks.acked().to_string());
                    }
                }
                Ok(_) => {}
                Err(err) => return Ended::Lost(err.to_string()),
            }
        }
    }
}

/// Publishes the outbox, then follows the table's new events, in `seq` order, on the current
/// connection; starts again from the acknowledged point on every new connection.
async fn publish_events(
    prefix: String,
    storage: PathBuf,
    table: TableHandle,
    health: Health,
    acked: AckedSeq,
    flight: SharedFlight,
    mut client_rx: watch::Receiver<Option<(u64, AsyncClient)>>,
) {
    let topic = format!("{prefix}/events");
    let state_topic = format!("{prefix}/state");
    let mut live = table.events.subscribe();
    loop {
        let current = client_rx.borrow_and_update().clone();
        let Some((generation, client)) = current else {
            if client_rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        let mut next = acked.get() + 1;
        // Catch up from the log, then live; on a lag, read the log again.
        'connection: loop {
            let backlog = match events_from(&storage, next) {
                Ok(b) => b,
                Err(err) => {
                    warn!(error = %err, "cannot read the outbox");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for env in backlog {
                if !send(&client, &flight, generation, &topic, &env).await {
                    break 'connection;
                }
                next = env.seq + 1;
            }
            publish_state(&client, &flight, generation, &state_topic, &table, &health).await;
            loop {
                let env = tokio::select! {
                    received = live.recv() => received,
                    changed = client_rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break 'connection;
                    }
                };
                match env {
                    Ok(env) if env.seq < next => {}
                    Ok(env) if env.seq == next => {
                        if !send(&client, &flight, generation, &topic, &env).await {
                            break 'connection;
                        }
                        next = env.seq + 1;
                        publish_state(&client, &flight, generation, &state_topic, &table, &health)
                            .await;
                    }
                    // A gap (we lagged behind the broadcast): the log has them all.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue 'connection,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
        // The connection ended; wait for the next one.
        if client_rx.changed().await.is_err() {
            return;
        }
    }
}

async fn send(
    client: &AsyncClient,
    flight: &SharedFlight,
    generation: u64,
    topic: &str,
    env: &Envelope,
) -> bool {
    let payload = serde_json::to_vec(env).unwrap_or_default();
    {
        let mut f = lock(flight);
        // Bounded by the connection's in-flight window in practice; capped in any case.
        if f.input_mono.len() < 100_000 {
            f.input_mono.insert(env.seq, env.mono_ns);
        }
    }
    publish_qos1(
        client,
        flight,
        generation,
        topic,
        false,
        payload,
        Some(env.seq),
    )
    .await
}

/// The retained `state` (schemas/v1/state.schema.json): the engine's snapshot, flattened,
/// with every device's health, the time and the last event's seq.
pub fn state_message(table: &TableHandle, health: &Health) -> serde_json::Value {
    let mut state = table
        .snapshot()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| {
            json!({
                "phase": "idle", "round_id": null, "opened_utc": null, "deadline_utc": null,
                "deadline_mono_ns": null, "last_result": null, "pending_reason": null,
            })
        });
    let devices: serde_json::Map<String, serde_json::Value> = health
        .snapshot()
        .into_iter()
        .filter(|(_, c)| c.kind == "device")
        .map(|(name, c)| (name, json!(c.state.as_str())))
        .collect();
    if let Some(obj) = state.as_object_mut() {
        obj.insert("devices".into(), serde_json::Value::Object(devices));
        obj.insert(
            "utc".into(),
            json!(format_utc(std::time::SystemTime::now())),
        );
        obj.insert("last_seq".into(), json!(table.last_seq()));
        if let Some(journal) = table.journal() {
            // Published off the box, the head anchors the journal against cut or forged ends.
            let head = journal.head();
            obj.insert("journal".into(), json!({ "n": head.n, "hash": head.hash }));
        }
    }
    state
}

async fn publish_state(
    client: &AsyncClient,
    flight: &SharedFlight,
    generation: u64,
    topic: &str,
    table: &TableHandle,
    health: &Health,
) {
    let state = state_message(table, health);
    let _ = publish_qos1(
        client,
        flight,
        generation,
        topic,
        true,
        state.to_string().into_bytes(),
        None,
    )
    .await;
}

/// On a clean stop, publish `offline` ourselves (the last will only fires on a lost
/// connection), then disconnect, all within a couple of seconds.
async fn say_goodbye(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    prefix: &str,
    boot_count: u64,
) {
    let goodbye = async {
        client
            .publish(
                format!("{prefix}/status"),
                QoS::AtLeastOnce,
                true,
                status_payload("offline", Some("shutdown"), boot_count),
            )
            .await
            .ok()?;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    // Acks of earlier publishes may come first; wait until the queue drains.
                    if eventloop.state.inflight() == 0 {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        client.disconnect().await.ok()?;
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Some(())
    };
    if tokio::time::timeout(Duration::from_secs(2), goodbye)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        warn!("could not publish the offline status before stopping; the broker's last will covers it");
    } else {
        info!("uplink closed cleanly");
    }
}
