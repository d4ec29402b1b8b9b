//! The event stream end to end: a simulated pedal on a pseudo-terminal, the daemon, a real
//! mosquitto and a subscriber — through broker restarts, a broker outage longer than the
//! keep-alive, and a SIGKILL of the daemon. After each, the subscriber must have every seq, in
//! order, with no gap, once deduplicated by event_id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/schema.rs"]
mod schema;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// A broker with persistence, so a restarted broker still holds the subscriber's session.
fn persistent_broker(dir: &Path, port: u16) -> Proc {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            // `user` keeps a broker started as root from dropping to the `mosquitto` user,
            // which could not write its database in the test's directory.
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\nuser {}\n",
            dir.display(),
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        ),
    )
    .expect("conf");
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("broker up");
    Proc {
        child,
        name: "mosquitto",
    }
}

/// `mosquitto_sub` with a persistent session (QoS 1), writing every event to a file.
fn subscriber(port: u16, out: &Path) -> Proc {
    let file = std::fs::File::create(out).expect("out");
    let child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-c",
            "-i",
            "orchestrator-test",
            "-t",
            "croupier/v1/test/t-01/events",
        ])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    Proc {
        child,
        name: "mosquitto_sub",
    }
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    config: PathBuf,
    received: PathBuf,
    _pedal: Proc,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let pedal = simulator("pedal", &dir.path().join("pedal"), 25.0);
    let config = dir.path().join("table.toml");
    let devices = format!(
        "[[device]]\nrole = \"pedal\"\ndriver = \"serial\"\nport = \"{}\"\n",
        dir.path().join("pedal").display()
    );
    let url = format!("url = \"mqtt://127.0.0.1:{port}\"\n");
    let text = config_with_devices(port, free_port(), &devices)
        .replace(&url, &format!("{url}keep_alive = \"5s\"\n"));
    std::fs::write(&config, text).expect("config");
    Setup {
        received: dir.path().join("received.jsonl"),
        dir,
        port,
        config,
        _pedal: pedal,
    }
}

fn log_seqs(setup: &Setup) -> u64 {
    std::fs::read_to_string(setup.dir.path().join("state/events/events.jsonl"))
        .unwrap_or_default()
        .lines()
        .count() as u64
}

/// Waits until the subscriber has every seq the daemon logged (at least `min`), then checks
/// order and gaps after dropping duplicates by event_id.
fn check_stream(setup: &Setup, min: u64, daemon: &Daemon) -> u64 {
    let mut last_report = String::new();
    let ok = wait_for(Duration::from_secs(40), || {
        let logged = log_seqs(setup);
        let text = std::fs::read_to_string(&setup.received).unwrap_or_default();
        let mut seen_ids = BTreeSet::new();
        let mut seqs = Vec::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if seen_ids.insert(v["event_id"].as_str().unwrap_or("").to_owned()) {
                seqs.push(v["seq"].as_u64().unwrap_or(0));
            }
        }
        last_report = format!(
            "logged {logged}, received {} unique: {:?}",
            seqs.len(),
            seqs
        );
        (logged >= min && seqs.len() as u64 >= logged).then_some(seqs)
    });
    let seqs = ok.unwrap_or_else(|| {
        panic!(
            "the subscriber never caught up: {last_report}\nlog:\n{}",
            daemon.log_text()
        )
    });
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq, in order, no gap (after dedupe)");
    seqs.len() as u64
}

#[test]
fn every_event_reaches_the_subscriber_in_order() {
    let s = setup();
    let _broker = persistent_broker(s.dir.path(), s.port);
    let _sub = subscriber(s.port, &s.received);
    std::thread::sleep(Duration::from_millis(300));
    let daemon = Daemon::start(&s.config, &[]);
    let n = check_stream(&s, 10, &daemon);
    assert!(n >= 10);
    // The retained state follows the stream.
    let state = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &s.port.to_string(),
            "-t",
            "croupier/v1/test/t-01/state",
            "-C",
            "1",
            "-W",
            "5",
        ])
        .output()
        .expect("state");
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state is JSON");
    assert!(
        state["last_seq"].as_u64().is_some_and(|s| s >= 1),
        "{state}"
    );
    assert_eq!(state["devices"]["pedal"], "up", "{state}");
    schema::validate("state", &state)
        .unwrap_or_else(|e| panic!("state against its schema: {e}\n{state}"));
    // Every event the subscriber got matches its schema.
    for line in std::fs::read_to_string(&s.received)
        .unwrap_or_default()
        .lines()
    {
        let event: serde_json::Value = serde_json::from_str(line).expect("event JSON");
        schema::validate("event", &event)
            .unwrap_or_else(|e| panic!("event against its schema: {e}\n{event}"));
    }
}

#[test]
fn broker_restarts_and_an_outage_longer_than_keep_alive_lose_nothing() {
    let s = setup();
    let mut broker = persistent_broker(s.dir.path(), s.port);
    let _sub = subscriber(s.port, &s.received);
    std::thread::sleep(Duration::from_millis(300));
    let daemon = Daemon::start(&s.config, &[]);
    check_stream(&s, 5, &daemon);
    for round in 0..3 {
        // Restarted mid-stream; the last outage is longer than the 5 s keep-alive.
        broker.signal(Signal::SIGTERM);
        broker
            .wait_timeout(Duration::from_secs(5))
            .expect("broker stopped");
        std::thread::sleep(Duration::from_millis(if round == 2 { 8000 } else { 800 }));
        broker = persistent_broker(s.dir.path(), s.port);
    }
    let before = log_seqs(&s);
    let n = check_stream(&s, before + 3, &daemon);
    assert!(n > before);
}

#[test]
fn a_sigkilled_daemon_replays_its_outbox() {
    let s = setup();
    let _broker = persistent_broker(s.dir.path(), s.port);
    let _sub = subscriber(s.port, &s.received);
    std::thread::sleep(Duration::from_millis(300));
    let mut daemon = Daemon::start(&s.config, &[]);
    check_stream(&s, 5, &daemon);
    daemon.proc.signal(Signal::SIGKILL);
    daemon
        .proc
        .wait_timeout(Duration::from_secs(5))
        .expect("killed");
    std::thread::sleep(Duration::from_millis(500));
    let restarted = Daemon::start(&s.config, &[]);
    let before = log_seqs(&s);
    let n = check_stream(&s, before + 3, &restarted);
    assert!(n > before);
}

/// With the broker away, the outbox fills: an alarm at 80 %, and at 100 % new rounds are
/// refused (`alert.outbox_full`) rather than any event being dropped.
#[test]
fn a_full_outbox_refuses_new_rounds_instead_of_dropping_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("pedal.txt");
    std::fs::write(&script, "100ms press\n".repeat(600)).expect("script");
    let _pedal = simulator_with(
        "pedal",
        &dir.path().join("pedal"),
        &["--script", script.to_str().expect("utf-8")],
    );
    // A fast wheel finishes rounds, so the pedal keeps trying to open new ones.
    let _wheel = simulator("wheel", &dir.path().join("wheel"), 25.0);
    let config = dir.path().join("table.toml");
    let devices = format!(
        "[[device]]\nrole = \"pedal\"\ndriver = \"serial\"\nport = \"{}\"\ndouble_press = \"0s\"\n\n[[device]]\nrole = \"wheel\"\ndriver = \"cammegh\"\nport = \"{}\"\n",
        dir.path().join("pedal").display(),
        dir.path().join("wheel").display()
    );
    let port = free_port(); // nobody listens: the broker is away for the whole test
    let url = format!("url = \"mqtt://127.0.0.1:{port}\"\n");
    let text = config_with_devices(port, free_port(), &devices)
        .replace(&url, &format!("{url}outbox_max_events = 100\n"));
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config, &[]);
    let log = dir.path().join("state/events/events.jsonl");
    let events = wait_for(Duration::from_secs(30), || {
        let events: Vec<serde_json::Value> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (events
            .iter()
            .filter(|e| e["type"] == "alert.outbox_full")
            .count()
            >= 3)
            .then_some(events)
    })
    .unwrap_or_else(|| panic!("the outbox never filled:\n{}", daemon.log_text()));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    let high = kinds
        .iter()
        .position(|k| *k == "alert.outbox_high")
        .expect("an alarm at high water");
    let full = kinds
        .iter()
        .position(|k| *k == "alert.outbox_full")
        .expect("refusals when full");
    assert!(high < full, "the alarm comes first: {kinds:?}");
    assert!(
        (80..=100).contains(&high),
        "alarm at 80 % of 100: at {high}"
    );
    assert!(
        !kinds[full..].contains(&"round.open"),
        "no round opened with a full outbox: {kinds:?}"
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "nothing dropped"
    );
}
