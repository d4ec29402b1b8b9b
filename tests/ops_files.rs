//! The operations files in the repo work with the daemon as it is: Prometheus' `promtool`
//! checks the alert rules and runs their unit tests, and every metric the Grafana dashboard and
//! the rules query is one a running daemon (with a camera) exposes on `/metrics`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const RULES: &str = "ops/prometheus/croupier-alerts.yml";
const RULE_TESTS: &str = "ops/prometheus/croupier-alerts.test.yml";
const DASHBOARD: &str = "ops/grafana/croupier-dashboard.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .current_dir(root())
        .args(args)
        .output()
        .expect("promtool (make test installs Debian's prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", RULES]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Metric names a query mentions (`croupier_…`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("croupier_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.insert(text[start..end].to_owned());
        i = end;
    }
    names
}

#[test]
fn the_dashboard_and_the_rules_query_metrics_the_daemon_exposes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = free_port();
    let text = config_with_devices(
        free_port(),
        http,
        "\n[[camera]]\nname = \"overhead\"\nsource = \"test\"\nwidth = 320\nheight = 180\nrecording = false\n",
    );
    let config = dir.path().join("table.toml");
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config, &[]);
    // The camera's gauges appear after its first second.
    let body = wait_for(Duration::from_secs(30), || {
        http_get(http, "/metrics")
            .map(|(_, b)| b)
            .filter(|b| b.contains("croupier_webrtc_viewers{"))
    })
    .unwrap_or_else(|| panic!("no camera metrics:\n{}", daemon.log_text()));
    let mut exposed = BTreeSet::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        exposed.insert(name.to_owned());
        if kind == "summary" {
            for suffix in ["_sum", "_count"] {
                exposed.insert(format!("{name}{suffix}"));
            }
        }
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                exposed.insert(format!("{name}{suffix}"));
            }
        }
    }

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DASHBOARD)).expect("dashboard"))
            .expect("the dashboard is JSON");
    let mut queried = BTreeSet::new();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            panels += 1;
            queried.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }
    assert!(panels >= 20, "{panels} queries");
    let rules = std::fs::read_to_string(root().join(RULES)).expect("rules");
    queried.extend(metric_names(&rules));
    let missing: Vec<&String> = queried.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "queried but not on /metrics: {missing:?}\nexposed: {exposed:?}"
    );
    // The SLOs the issue names each have a rule.
    for alert in [
        "CroupierBetCloseLate",
        "CroupierDeviceDown",
        "CroupierOutboxBacklog",
        "CroupierClockUnsynchronised",
        "CroupierCameraFpsDrop",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}
