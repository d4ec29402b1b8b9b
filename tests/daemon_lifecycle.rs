//! The daemon as systemd runs it: real mosquitto, device simulators on real pseudo-terminals,
//! a unix datagram socket standing in for NOTIFY_SOCKET, and real signals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/schema.rs"]
mod schema;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

struct Table {
    dir: tempfile::TempDir,
    broker: Broker,
    http_port: u16,
    config: std::path::PathBuf,
    sims: Vec<Proc>,
}

/// A table with a wheel and a pedal, each a `croupier simulate` on its own pseudo-terminal.
fn table() -> Table {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start();
    let http_port = free_port();
    let wheel = dir.path().join("wheel");
    let pedal = dir.path().join("pedal");
    let sims = vec![
        simulator("wheel", &wheel, 20.0),
        simulator("pedal", &pedal, 20.0),
    ];
    let config = dir.path().join("table.toml");
    std::fs::write(
        &config,
        table_config(
            broker.port,
            http_port,
            &[("wheel", "cammegh", &wheel), ("pedal", "serial", &pedal)],
        ),
    )
    .expect("write config");
    Table {
        dir,
        broker,
        http_port,
        config,
        sims,
    }
}

fn notify_env<'a>(socket: &'a Path, watchdog_usec: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("NOTIFY_SOCKET", socket.to_str().expect("utf-8 path")),
        ("WATCHDOG_USEC", watchdog_usec),
    ]
}

#[test]
fn notify_protocol_ready_watchdog_and_stopping() {
    let t = table();
    let mut notify = NotifySocket::bind(t.dir.path());
    // A 1 s watchdog: the daemon must ping every 500 ms (half of WATCHDOG_USEC).
    let mut daemon = Daemon::start(&t.config, &notify_env(&notify.path, "1000000"));

    let ready = notify
        .read_until(Duration::from_secs(20), |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1; log:\n{}", daemon.log_text()));
    // READY only once the devices are open and the uplink is connected or buffering.
    assert!(ready.contains("STATUS=2/2 devices up, uplink"), "{ready}");
    assert_eq!(component_state(t.http_port, "wheel").as_deref(), Some("up"));
    assert_eq!(component_state(t.http_port, "pedal").as_deref(), Some("up"));
    let (status, _) = http_get(t.http_port, "/readyz").expect("readyz");
    assert_eq!(status, 200);

    // Watch the watchdog for three seconds.
    let start = Instant::now();
    notify.read_until(Duration::from_secs(3), |_| false);
    let pings: Vec<Instant> = notify
        .received
        .iter()
        .filter(|(at, m)| *at >= start && m == "WATCHDOG=1")
        .map(|(at, _)| *at)
        .collect();
    assert!(
        (4..=8).contains(&pings.len()),
        "expected ~6 pings in 3 s at 500 ms, got {}",
        pings.len()
    );
    let mut gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(
        median >= Duration::from_millis(400) && median <= Duration::from_millis(650),
        "median watchdog gap {median:?}, expected ~500 ms"
    );
    // systemd would kill the service at a gap of WATCHDOG_USEC.
    assert!(
        *gaps.last().expect("gaps") < Duration::from_secs(1),
        "a gap reached WATCHDOG_USEC: {gaps:?}"
    );

    daemon.proc.signal(Signal::SIGTERM);
    notify
        .read_until(Duration::from_secs(5), |m| m.contains("STOPPING=1"))
        .expect("STOPPING=1 after SIGTERM");
    let status = daemon
        .proc
        .wait_timeout(Duration::from_secs(5))
        .expect("exit after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_stops_cleanly_within_the_deadline_and_says_offline() {
    let t = table();
    let mut daemon = Daemon::start(&t.config, &[]);
    wait_for(Duration::from_secs(20), || {
        (component_state(t.http_port, "uplink").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("uplink never connected; log:\n{}", daemon.log_text()));
    let online = t
        .broker
        .retained("croupier/v1/test/t-01/status")
        .expect("retained status");
    assert!(online.contains("\"state\":\"online\""), "{online}");

    let telemetry = t
        .broker
        .next_message("croupier/v1/test/t-01/telemetry", 5)
        .expect("telemetry within 5 s at a 1 s interval");
    let telemetry: serde_json::Value = serde_json::from_str(&telemetry).expect("telemetry is JSON");
    assert_eq!(telemetry["wheel"]["kind"], "device", "{telemetry}");
    assert_eq!(telemetry["uplink"]["state"], "up", "{telemetry}");
    schema::validate("telemetry", &telemetry).unwrap_or_else(|e| panic!("telemetry schema: {e}"));
    let online_json: serde_json::Value = serde_json::from_str(&online).expect("status JSON");
    schema::validate("status", &online_json).unwrap_or_else(|e| panic!("status schema: {e}"));

    let sent = Instant::now();
    daemon.proc.signal(Signal::SIGTERM);
    let status = daemon
        .proc
        .wait_timeout(Duration::from_secs(4))
        .unwrap_or_else(|| {
            panic!(
                "still running 4 s after SIGTERM (deadline 3 s); log:\n{}",
                daemon.log_text()
            )
        });
    assert!(status.success(), "{status:?}");
    assert!(
        // The deadline is 3 s; a clean stop takes milliseconds (BENCHMARKS.md), so anything
        // near a second means something waited when it should not have.
        sent.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        sent.elapsed()
    );
    let log = daemon.log_text();
    assert!(log.contains("croupier stopped cleanly"), "{log}");
    let offline = t
        .broker
        .retained("croupier/v1/test/t-01/status")
        .expect("retained status");
    assert!(
        offline.contains("\"state\":\"offline\"") && offline.contains("shutdown"),
        "{offline}"
    );
    let offline: serde_json::Value = serde_json::from_str(&offline).expect("status JSON");
    schema::validate("status", &offline).unwrap_or_else(|e| panic!("status schema: {e}"));
}

#[test]
fn sighup_with_a_bad_file_keeps_running_on_the_old_config() {
    let t = table();
    let mut notify = NotifySocket::bind(t.dir.path());
    let mut daemon = Daemon::start(&t.config, &notify_env(&notify.path, "0"));
    notify
        .read_until(Duration::from_secs(20), |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1; log:\n{}", daemon.log_text()));

    let good = std::fs::read_to_string(&t.config).expect("read config");
    std::fs::write(
        &t.config,
        good.replace("game = \"roulette\"", "game = \"craps\""),
    )
    .expect("break config");
    daemon.proc.signal(Signal::SIGHUP);
    let reply = notify
        .read_until(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1 ends the reload");
    assert!(reply.contains("reload refused"), "{reply}");
    assert!(notify
        .received
        .iter()
        .any(|(_, m)| m.starts_with("RELOADING=1")));
    std::thread::sleep(Duration::from_millis(300));
    assert!(daemon.proc.is_running(), "daemon died on a bad reload");
    assert_eq!(http_get(t.http_port, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(component_state(t.http_port, "wheel").as_deref(), Some("up"));
    let log = daemon.log_text();
    assert!(
        log.contains("config reload refused") && log.contains("table.game"),
        "{log}"
    );

    // A good file with one device removed is applied: the pedal goes away, the wheel stays.
    let pedal_removed = good
        .split("\n[[device]]")
        .filter(|block| !block.contains("role = \"pedal\""))
        .collect::<Vec<_>>()
        .join("\n[[device]]");
    std::fs::write(&t.config, pedal_removed).expect("write config");
    daemon.proc.signal(Signal::SIGHUP);
    let reply = notify
        .read_until(Duration::from_secs(5), |m| m.contains("READY=1"))
        .expect("READY=1 ends the reload");
    assert!(reply.contains("config reloaded"), "{reply}");
    assert_eq!(component_state(t.http_port, "pedal"), None);
    assert_eq!(component_state(t.http_port, "wheel").as_deref(), Some("up"));
    assert_eq!(
        daemon.log_text().matches("device up device=wheel").count(),
        1,
        "the unchanged wheel must not be reopened"
    );

    daemon.proc.signal(Signal::SIGTERM);
    assert!(daemon
        .proc
        .wait_timeout(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
}

#[test]
fn an_unplugged_device_goes_down_and_comes_back_without_a_restart() {
    let mut t = table();
    let mut daemon = Daemon::start(&t.config, &[]);
    wait_for(Duration::from_secs(20), || {
        (component_state(t.http_port, "wheel").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("wheel never came up; log:\n{}", daemon.log_text()));

    // Unplug: the wheel simulator and its pseudo-terminal go away.
    let wheel_link = t.dir.path().join("wheel");
    drop(t.sims.remove(0));
    let _ = std::fs::remove_file(&wheel_link);
    wait_for(Duration::from_secs(10), || {
        (component_state(t.http_port, "wheel").as_deref() == Some("down")).then_some(())
    })
    .expect("wheel not reported down");
    assert_eq!(component_state(t.http_port, "pedal").as_deref(), Some("up"));

    // Replug: a new pseudo-terminal at the same link.
    t.sims.push(simulator("wheel", &wheel_link, 20.0));
    wait_for(Duration::from_secs(10), || {
        (component_state(t.http_port, "wheel").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("wheel not back up; log:\n{}", daemon.log_text()));
    let (_, metrics) = http_get(t.http_port, "/metrics").expect("metrics");
    let restarts = metrics
        .lines()
        .find(|l| l.starts_with("croupier_component_restarts_total{component=\"wheel\""))
        .expect("restart metric");
    assert!(!restarts.ends_with(" 0"), "{restarts}");
    assert!(daemon.proc.is_running());
}

#[test]
fn a_missing_device_gives_a_degraded_ready_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start();
    let http_port = free_port();
    let config = dir.path().join("table.toml");
    let missing = dir.path().join("no-such-wheel");
    std::fs::write(
        &config,
        table_config(broker.port, http_port, &[("wheel", "cammegh", &missing)])
            .replace("ready_timeout = \"20s\"", "ready_timeout = \"1s\""),
    )
    .expect("write");
    let mut notify = NotifySocket::bind(dir.path());
    let daemon = Daemon::start(&config, &notify_env(&notify.path, "0"));
    let started = Instant::now();
    let ready = notify
        .read_until(Duration::from_secs(10), |m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1; log:\n{}", daemon.log_text()));
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "READY came before the timeout"
    );
    assert!(
        ready.contains("degraded") && ready.contains("wheel down"),
        "{ready}"
    );
    let (_, status) = http_get(http_port, "/status").expect("status");
    assert!(status.contains("cannot open"), "{status}");
}

#[test]
fn runs_unchanged_outside_systemd() {
    let t = table();
    let mut daemon = Daemon::start(&t.config, &[]);
    wait_for(Duration::from_secs(20), || {
        http_get(t.http_port, "/readyz").filter(|(code, _)| *code == 200)
    })
    .unwrap_or_else(|| panic!("never ready; log:\n{}", daemon.log_text()));
    daemon.proc.signal(Signal::SIGINT);
    assert!(daemon
        .proc
        .wait_timeout(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
}

/// `[log] filter` and `format` apply, and `CROUPIER_LOG` in the environment wins over them.
#[test]
fn log_filter_comes_from_config_and_the_environment_wins() {
    let t = table();
    let base = std::fs::read_to_string(&t.config).expect("read config");
    std::fs::write(
        &t.config,
        format!("{base}\n[log]\nfilter = \"warn,croupier::devices=info\"\nformat = \"json\"\n"),
    )
    .expect("write config");

    let run = |env: &[(&str, &str)]| {
        let mut daemon = Daemon::start(&t.config, env);
        wait_for(Duration::from_secs(20), || {
            http_get(t.http_port, "/readyz").filter(|(code, _)| *code == 200)
        })
        .unwrap_or_else(|| panic!("never ready; log:\n{}", daemon.log_text()));
        std::thread::sleep(Duration::from_millis(300));
        daemon.proc.signal(Signal::SIGTERM);
        daemon
            .proc
            .wait_timeout(Duration::from_secs(5))
            .expect("exit");
        daemon.log_text()
    };

    // The config's filter: device info lines, no other info lines, every line JSON.
    let from_config = run(&[("CROUPIER_LOG", "")]);
    let lines: Vec<serde_json::Value> = from_config
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "device up"),
        "{from_config}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["fields"]["message"] == "croupier starting"),
        "{from_config}"
    );
    assert!(!from_config.contains("\"DEBUG\""), "{from_config}");

    // The environment's filter wins: debug lines (every frame) appear.
    let from_env = run(&[("CROUPIER_LOG", "debug")]);
    assert!(from_env.contains("croupier starting"), "{from_env}");
    assert!(from_env.contains("\"level\":\"DEBUG\""), "{from_env}");
}

/// Under systemd, stderr is the journal stream named by JOURNAL_STREAM (`dev:inode`), and the
/// daemon switches to journald's native protocol; a JOURNAL_STREAM that names something else
/// (inherited from a parent) must not.
#[test]
fn journald_is_used_only_when_stderr_is_the_journal_stream() {
    use std::os::unix::fs::MetadataExt;
    let t = table();
    let journald_here = Path::new("/run/systemd/journal/socket").exists();

    let run = |stream: Option<&str>| {
        let log = t.config.with_extension("log");
        // Daemon::start creates the log file; make it first so its inode is known.
        std::fs::write(&log, "").expect("log file");
        let meta = std::fs::metadata(&log).expect("stat");
        let matching = format!("{}:{}", meta.dev(), meta.ino());
        let value = stream.unwrap_or(&matching).to_owned();
        let mut daemon = Daemon::start(&t.config, &[("JOURNAL_STREAM", value.as_str())]);
        wait_for(Duration::from_secs(20), || {
            http_get(t.http_port, "/readyz").filter(|(code, _)| *code == 200)
        })
        .unwrap_or_else(|| panic!("never ready; log:\n{}", daemon.log_text()));
        daemon.proc.signal(Signal::SIGTERM);
        daemon
            .proc
            .wait_timeout(Duration::from_secs(5))
            .expect("exit");
        daemon.log_text()
    };

    let as_journal = run(None);
    if journald_here {
        assert!(
            !as_journal.contains("croupier starting"),
            "logs went to stderr, not journald:\n{as_journal}"
        );
    } else {
        assert!(
            as_journal.contains("journald is not reachable; logging to stderr instead"),
            "{as_journal}"
        );
        assert!(as_journal.contains("croupier starting"), "{as_journal}");
    }

    let not_journal = run(Some("1:1"));
    assert!(!not_journal.contains("journald"), "{not_journal}");
    assert!(not_journal.contains("croupier starting"), "{not_journal}");
}
