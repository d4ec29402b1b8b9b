//! The dealer's prompter and the technician's status page in Debian's headless Chromium
//! (playwright-core, tests/browser/pages.mjs), against the real daemon with its devices on
//! pseudo-terminals, and `/metrics` through Prometheus' own text parser.
//!
//! - The prompter counts down to the daemon's close of betting within ±100 ms, although the
//!   page's clock is seven seconds off (it corrects by the offset it measures on /time), and
//!   shows the hold alert, with what the dealer must do, when the cross-check fails.
//! - The status page marks the pedal down when its pseudo-terminal closes, and up again when it
//!   comes back.
//!
//! Screenshots go to `target/screenshots/` (docs/screenshots/ keeps copies from a run).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Runs tests/browser/pages.mjs; returns its stages' printed values.
fn page(args: &[&str]) -> Vec<Value> {
    let out = Command::new("node")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .arg("pages.mjs")
        .args(args)
        .output()
        .expect("node (make test installs it and tests/browser's packages)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stages: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        out.status.success(),
        "pages.mjs {args:?} failed ({:?}): {stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stages.into_iter().map(|s| s["value"].clone()).collect()
}

/// [`page`], with the table's events and log when it fails.
fn page_or_log(t: &Table, args: &[&str]) -> Vec<Value> {
    let result = std::panic::catch_unwind(|| page(args));
    result.unwrap_or_else(|e| {
        let events = std::fs::read_to_string(t.dir.path().join("state/events/events.jsonl"))
            .unwrap_or_default();
        panic!(
            "{}
events:
{events}
log (tail):
{}",
            e.downcast_ref::<String>().cloned().unwrap_or_default(),
            t.daemon
                .log_text()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn utc_ms(text: &str) -> f64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    t.unix_timestamp_nanos() as f64 / 1e6
}

struct Table {
    dir: tempfile::TempDir,
    http: u16,
    daemon: Daemon,
    _sims: Vec<Proc>,
}

/// A roulette table whose wheel result needs the camera's confirmation (there is no camera, so
/// every result is held), with the pedal and the wheel on pseudo-terminals.
fn table(pedal_script: &str, wheel_script: &str) -> Table {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sims = Vec::new();
    let mut devices = String::new();
    for (role, driver, script) in [
        ("pedal", "serial", pedal_script),
        ("wheel", "cammegh", wheel_script),
    ] {
        let path = dir.path().join(format!("{role}.txt"));
        std::fs::write(&path, script).expect("script");
        sims.push(simulator_with(
            role,
            &dir.path().join(role),
            &["--script", path.to_str().expect("utf-8")],
        ));
        devices.push_str(&format!(
            "\n[[device]]\nrole = \"{role}\"\ndriver = \"{driver}\"\nport = \"{}\"\n",
            dir.path().join(role).display()
        ));
    }
    let http = free_port();
    let text = config_with_devices(free_port(), http, &devices).replace(
        "[mqtt]",
        "[timing]\nbet_window = \"5s\"\n\n[crosscheck]\nwheel = [\"vision\"]\nwindow = \"1s\"\n\n[mqtt]",
    );
    let config = dir.path().join("table.toml");
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config, &[]);
    wait_for(Duration::from_secs(20), || {
        http_get(http, "/healthz").filter(|(code, _)| *code == 200)
    })
    .unwrap_or_else(|| panic!("daemon not serving:\n{}", daemon.log_text()));
    Table {
        dir,
        http,
        daemon,
        _sims: sims,
    }
}

#[test]
fn the_prompter_counts_down_to_the_daemons_close_and_shows_the_hold() {
    // Betting opens at 6 s (the page is up by then), closes 5 s later on the daemon's clock;
    // the wheel's number at 13 s has no camera to confirm it: held after the 1 s window.
    let t = table(
        "6s press\n120s press\n",
        "13s wheel 5 001 17\n120s wheel 6 001 0\n",
    );
    let url = format!("http://127.0.0.1:{}/prompter", t.http);
    let shot = screenshots().join("prompter.png");
    let stages = page_or_log(&t, &[
        &url,
        "--skew-ms",
        "7000",
        "--timeout",
        "40",
        "--until",
        "Object.keys(window.croupierPrompter.zeroAt).length > 0",
        "--print",
        "({zeroAt: window.croupierPrompter.zeroAt, offset: window.croupierPrompter.offset, phase: document.getElementById('phase').textContent})",
        "--then-until",
        "window.croupierPrompter.alerts.some((a) => a.startsWith('mismatch'))",
        "--then-print",
        "({phase: document.getElementById('phase').textContent, alerts: document.getElementById('alerts').innerText})",
        "--screenshot",
        shot.to_str().expect("utf-8"),
    ]);
    let events = read_events(&t.dir.path().join("state/events/events.jsonl"));
    let close = events
        .iter()
        .find(|e| e["type"] == "round.close")
        .unwrap_or_else(|| panic!("no close: {events:?}\n{}", t.daemon.log_text()));
    let round = close["round_id"].as_str().expect("round id");
    let closed_ms = utc_ms(close["payload"]["closed_utc"].as_str().expect("closed_utc"));
    let zero_ms = stages[0]["zeroAt"][round]
        .as_f64()
        .unwrap_or_else(|| panic!("the page never reached zero for {round}: {stages:?}"));
    // The page's clock was 7 s fast; it measured that, and counted down on the daemon's time.
    let offset = stages[0]["offset"].as_f64().unwrap_or(0.0);
    assert!((offset + 7000.0).abs() < 100.0, "offset {offset}");
    let error = zero_ms - closed_ms;
    assert!(
        error.abs() <= 100.0,
        "the countdown reached zero {error:.1} ms from the daemon's close"
    );
    // The hold, with what the dealer must do.
    assert_eq!(stages[1]["phase"], "RESULT ON HOLD", "{stages:?}");
    let alerts = stages[1]["alerts"].as_str().unwrap_or_default();
    assert!(alerts.contains("MISMATCH"), "{alerts}");
    assert!(alerts.contains("missing confirmation"), "{alerts}");
    assert!(alerts.contains("no confirmation from vision"), "{alerts}");
    assert!(
        alerts.contains("two approvals"),
        "the dealer is told what to do: {alerts}"
    );
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000));
}

#[test]
fn the_status_page_marks_the_pedal_down_and_up_again() {
    // The pedal's pseudo-terminal closes at 6 s and comes back 5 s later.
    let t = table("6s disconnect 5s\n120s press\n", "120s wheel 6 001 0\n");
    let url = format!("http://127.0.0.1:{}/status", t.http);
    let shot = screenshots().join("status.png");
    let row = "document.querySelector('tr[data-device=\"pedal\"]')";
    let stages = page(&[
        &url,
        "--timeout",
        "30",
        "--height",
        "900",
        "--until",
        &format!("{row} && {row}.dataset.state === 'down'"),
        "--print",
        &format!("{row}.innerText"),
        "--then-until",
        &format!("{row} && {row}.dataset.state === 'up'"),
        "--then-print",
        &format!("{row}.innerText"),
        "--screenshot",
        shot.to_str().expect("utf-8"),
    ]);
    let down = stages[0].as_str().unwrap_or_default();
    assert!(down.contains("down"), "{down}");
    let up = stages[1].as_str().unwrap_or_default();
    assert!(up.contains("up"), "{up}");
    // The reconnect is counted.
    let reconnects: u64 = up
        .split('\t')
        .nth(6)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(reconnects >= 1, "{up:?}");
}

#[test]
fn metrics_parse_with_prometheus_own_parser() {
    let t = table("2s press\n120s press\n", "120s wheel 6 001 0\n");
    // A round opens and closes, so the close-error histogram has an observation.
    wait_for(Duration::from_secs(20), || {
        read_events(&t.dir.path().join("state/events/events.jsonl"))
            .iter()
            .any(|e| e["type"] == "round.close")
            .then_some(())
    })
    .expect("a close");
    let (code, body) = http_get(t.http, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    let path = t.dir.path().join("metrics.txt");
    std::fs::write(&path, &body).expect("write");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
out = {name: {"type": f.type, "samples": len(f.samples)} for name, f in fams.items()}
close = fams["croupier_bet_close_error_seconds"]
out["close_count"] = [s.value for s in close.samples if s.name.endswith("_count")]
print(json.dumps(out))
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 (python3-prometheus-client)");
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("json");
    for (name, kind) in [
        ("croupier_device_frames", "counter"),
        ("croupier_device_errors", "counter"),
        ("croupier_device_reconnects", "counter"),
        ("croupier_input_to_publish_seconds", "histogram"),
        ("croupier_bet_close_error_seconds", "histogram"),
        ("croupier_outbox_depth", "gauge"),
        ("croupier_outbox_oldest_age_seconds", "gauge"),
        ("croupier_mqtt_connected", "gauge"),
        ("croupier_clock_synchronized", "gauge"),
        ("croupier_crosscheck_holds", "counter"),
    ] {
        assert_eq!(parsed[name]["type"], kind, "{name} in {parsed}");
    }
    assert_eq!(parsed["close_count"], serde_json::json!([1.0]), "{parsed}");
}

#[test]
fn the_prompter_reconnects_by_itself_when_the_daemon_comes_back() {
    let mut t = table("120s press\n", "120s wheel 6 001 0\n");
    let url = format!("http://127.0.0.1:{}/prompter", t.http);
    let node = std::process::Command::new("node")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .args([
            "pages.mjs",
            &url,
            "--timeout",
            "40",
            "--until",
            "window.croupierPrompter.hellos === 1 && window.croupierPrompter.link === 'live'",
            "--print",
            "window.croupierPrompter.hellos",
            "--then-until",
            "window.croupierPrompter.losses >= 1 && window.croupierPrompter.hellos >= 2 && window.croupierPrompter.link === 'live' && document.getElementById('phase').textContent === 'WAITING'",
            "--then-print",
            "({hellos: window.croupierPrompter.hellos, losses: window.croupierPrompter.losses, link: document.getElementById('link').textContent})",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    // Let the page connect, then stop the daemon under it and start it again.
    std::thread::sleep(Duration::from_secs(6));
    t.daemon.proc.signal(nix::sys::signal::Signal::SIGTERM);
    t.daemon
        .proc
        .wait_timeout(Duration::from_secs(10))
        .expect("the daemon stops");
    std::thread::sleep(Duration::from_secs(2));
    t.daemon = Daemon::start(&t.dir.path().join("table.toml"), &[]);
    let out = node.wait_with_output().expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("printed");
    assert!(
        last["value"]["hellos"].as_u64().unwrap_or(0) >= 2,
        "{stdout}"
    );
    assert!(
        last["value"]["link"]
            .as_str()
            .unwrap_or_default()
            .starts_with("live"),
        "{stdout}"
    );
}
