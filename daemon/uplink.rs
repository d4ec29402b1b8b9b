//! The MQTT uplink to the studio's orchestrator.
//!
//! Today it keeps the connection (keep-alive, reconnect with jittered backoff), announces the
//! table on `croupier/v1/<studio>/<table>/status` (retained `online`; the broker's last will
//! sets it `offline` if the box dies; a clean stop sets `offline` itself) and publishes health
//! on `…/telemetry` (QoS 0). While the broker is away the uplink is "buffering": the table keeps
//! running. The event stream and its durable outbox build on this connection.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use serde_json::json;
use tracing::{info, warn};

use crate::clock::format_utc;
use crate::config::{Config, MqttConfig, TableConfig};
use crate::health::{Health, State};
use crate::supervisor::{Backoff, ComponentCtx, ComponentResult, ComponentSpec};

/// Errors of the uplink that stop it (connection failures are not among them: those buffer).
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The inputs the uplink needs, cloned into its component.
#[derive(Debug, Clone, PartialEq)]
struct UplinkSettings {
    mqtt: MqttConfig,
    table: TableConfig,
    boot_count: u64,
    backoff_min: Duration,
    backoff_max: Duration,
}

/// The supervised uplink component.
pub fn component(config: &Config, boot_count: u64, health: Health) -> ComponentSpec {
    let settings = UplinkSettings {
        mqtt: config.mqtt.clone(),
        table: config.table.clone(),
        boot_count,
        backoff_min: config.daemon.restart_backoff_min,
        backoff_max: config.daemon.restart_backoff_max,
    };
    let fingerprint = format!("{:?}{:?}", settings.mqtt, settings.table);
    ComponentSpec::new("uplink", "uplink", fingerprint, move |ctx| {
        run(settings.clone(), health.clone(), ctx)
    })
}

fn status_payload(state: &str, reason: Option<&str>, boot_count: u64) -> String {
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
    opts.set_clean_start(false);
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

async fn run(s: UplinkSettings, health: Health, ctx: ComponentCtx) -> ComponentResult {
    let prefix = MqttConfig::topic_prefix(&s.table);
    let broker = format!("{}:{}", s.mqtt.host, s.mqtt.port);
    ctx.health.fact("broker", s.mqtt.url.clone());
    ctx.health.fact("topic_prefix", prefix.clone());
    let (client, mut eventloop) = AsyncClient::new(options(&s)?, 64);
    let backoff = Backoff {
        min: s.backoff_min,
        max: s.backoff_max,
    };
    let mut failures: u32 = 0;
    let mut connected = false;
    let mut telemetry = tokio::time::interval(s.mqtt.telemetry_interval);
    telemetry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ctx.health.set(
        State::Degraded,
        format!("buffering: connecting to {broker}"),
    );
    loop {
        tokio::select! {
            () = ctx.cancel.cancelled() => break,
            _ = telemetry.tick(), if connected => {
                let payload = serde_json::to_string(&health.snapshot()).unwrap_or_default();
                // QoS 0 telemetry is best effort; a full request queue just skips a beat.
                let _ = client.try_publish(format!("{prefix}/telemetry"), QoS::AtMostOnce, false, payload);
            }
            polled = eventloop.poll() => match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failures = 0;
                    connected = true;
                    ctx.health.set(State::Up, format!("connected to {broker}"));
                    info!(%broker, "uplink connected");
                    client
                        .publish(format!("{prefix}/status"), QoS::AtLeastOnce, true, status_payload("online", None, s.boot_count))
                        .await?;
                    telemetry.reset_immediately();
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => ctx.health.add("acked", 1),
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => ctx.health.add("published", 1),
                Ok(_) => {}
                Err(err) => {
                    connected = false;
                    ctx.health.add("connection_errors", 1);
                    let delay = backoff.delay(failures);
                    failures = failures.saturating_add(1);
                    ctx.health.set(State::Degraded, format!("buffering: {broker} unreachable ({err}); retry in {} ms", delay.as_millis()));
                    warn!(%broker, error = %err, retry_in_ms = delay.as_millis() as u64, "uplink disconnected; buffering");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
            }
        }
    }
    if connected {
        say_goodbye(&client, &mut eventloop, &prefix, s.boot_count).await;
    }
    Ok(())
}

/// On a clean stop, publish `offline` ourselves (the last will only fires on a lost
/// connection), then disconnect, all within a couple of seconds.
async fn say_goodbye(
    client: &AsyncClient,
    eventloop: &mut rumqttc::v5::EventLoop,
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
        // Drive the event loop until the broker acknowledges the status, then disconnect.
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => break,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        client.disconnect().await.ok()?;
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
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
