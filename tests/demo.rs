//! `croupier demo` as a newcomer runs it: it must bring up a whole simulated table (broker,
//! four simulated devices, the daemon), say where to look, and tidy up after itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn demo_runs_a_whole_simulated_table_and_cleans_up() {
    let http_port = free_port();
    let mut demo = spawn_demo(
        ["--pace", "10", "--http", &format!("127.0.0.1:{http_port}")],
        Stdio::piped(),
    );
    let stdout = demo.child.stdout.take().expect("stdout");

    let mut banner = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("read banner");
        let done = line.starts_with("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    // Keep draining stdout, as a terminal would, so the demo's last lines have somewhere to go.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let banner = banner.join("\n");
    assert!(
        banner.contains(&format!("status:   http://127.0.0.1:{http_port}/status")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("prompter: http://127.0.0.1:{http_port}/prompter")),
        "{banner}"
    );
    assert!(banner.contains("mosquitto_sub -p "), "{banner}");
    let video_url = format!("http://127.0.0.1:{http_port}/video/overhead");
    assert!(
        banner.contains(&format!("video:    {video_url}")),
        "{banner}"
    );
    for role in ["wheel", "shoe", "rfid", "pedal"] {
        assert!(
            banner.contains(&format!("    {role:<6} /")),
            "{role} missing:\n{banner}"
        );
    }
    let config_line = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("config:"))
        .expect("config path printed")
        .trim()
        .to_owned();
    let demo_dir = std::path::Path::new(&config_line)
        .parent()
        .expect("dir")
        .to_owned();

    // Every device up and frames flowing from every simulator.
    let mut last = String::new();
    let status = wait_for(Duration::from_secs(20), || {
        let (_, body) = http_get(http_port, "/status")?;
        last = body.clone();
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let all_reading = ["wheel", "shoe", "rfid", "pedal"].iter().all(|d| {
            json["components"][d]["state"] == "up"
                && json["components"][d]["counters"]["observations"]
                    .as_u64()
                    .unwrap_or(0)
                    > 0
        });
        (all_reading && json["components"]["uplink"]["state"] == "up").then_some(json)
    })
    .unwrap_or_else(|| {
        panic!("the demo table never had every device reading and the uplink connected:\n{last}")
    });
    assert_eq!(status["ready"], true);
    // The prompter the banner names is served, with its script.
    let (code, page) = http_get(http_port, "/prompter").expect("prompter");
    assert_eq!(code, 200);
    assert!(page.contains("/web/prompter.js"), "{page}");
    // The simulators play whole roulette rounds: a result comes within a round (3 s at pace 10).
    let result = wait_for(Duration::from_secs(20), || {
        let (_, body) = http_get(http_port, "/status")?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = json["round"]["last_result"]["result"].clone();
        (!result.is_null()).then_some(result)
    })
    .expect("the demo never produced a round result");
    assert!(
        result["number"].as_u64().is_some_and(|n| n <= 36),
        "{result}"
    );
    // The test camera plays in a stock browser at the printed URL (WebRTC, or the LL-HLS
    // fallback where this machine gives WebRTC no usable interface).
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/view.mjs"
        ))
        .args(["--url", &video_url, "--mode", "auto", "--seconds", "6"])
        .output()
        .expect("node (make test installs it)");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "viewer harness {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let page = &report["pages"][0];
    assert!(
        page["mode"] == "whep" || page["mode"] == "hls",
        "the demo camera did not play: {page}"
    );
    assert!(
        page["framesDecoded"].as_u64().unwrap_or(0) >= 50,
        "the demo camera barely played: {page}"
    );
    // Each simulator's real framing was decoded into observations.
    for (device, prefix) in [
        ("wheel", "wheel state "),
        ("shoe", "card "),
        ("rfid", "tag "),
        ("pedal", "pedal "),
    ] {
        let last = status["components"][device]["facts"]["last_observation"]
            .as_str()
            .unwrap_or_default();
        assert!(last.starts_with(prefix), "{device}: {last:?}");
    }

    demo.signal(Signal::SIGINT);
    let mut demo = demo;
    let exit = demo
        .wait_timeout(Duration::from_secs(10))
        .expect("demo stops on Ctrl-C");
    assert!(exit.success(), "{exit:?}");
    assert!(rest
        .join()
        .expect("stdout")
        .iter()
        .any(|l| l == "demo stopped"));
    assert!(
        !demo_dir.exists(),
        "demo left {} behind",
        demo_dir.display()
    );
    assert!(std::net::TcpListener::bind(("127.0.0.1", http_port)).is_ok());
}

/// `croupier demo --game baccarat`: the shoe simulator deals whole coups after the pedal opened
/// betting and the window closed on the daemon's clock.
#[test]
fn baccarat_demo_plays_coups() {
    let http_port = free_port();
    let _demo = spawn_demo(
        [
            "--game",
            "baccarat",
            "--pace",
            "3",
            "--http",
            &format!("127.0.0.1:{http_port}"),
        ],
        Stdio::null(),
    );
    let mut last = String::new();
    let result = wait_for(Duration::from_secs(40), || {
        let (_, body) = http_get(http_port, "/status")?;
        last = body.clone();
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = json["round"]["last_result"]["result"].clone();
        (!result.is_null()).then_some(result)
    })
    .unwrap_or_else(|| panic!("no coup result; last status:\n{last}"));
    assert!(
        ["player", "banker", "tie"].contains(&result["winner"].as_str().unwrap_or("")),
        "{result}"
    );
    let cards = result["player_cards"].as_array().map_or(0, Vec::len)
        + result["banker_cards"].as_array().map_or(0, Vec::len);
    assert!((4..=6).contains(&cards), "{result}");
}

/// The processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

#[test]
fn a_demo_killed_outright_takes_its_broker_with_it() {
    let http_port = free_port();
    let mut demo = spawn_demo(
        ["--pace", "10", "--http", &format!("127.0.0.1:{http_port}")],
        Stdio::piped(),
    );
    let stdout = demo.child.stdout.take().expect("stdout");
    let mut config = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(path) = line.trim().strip_prefix("config:") {
            config = Some(path.trim().to_owned());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let config = config.expect("the banner names the config");
    let dir = std::path::Path::new(&config)
        .parent()
        .expect("demo dir")
        .to_owned();
    let broker_conf = dir.join("mosquitto.conf").display().to_string();
    // Whatever happens below, no broker of this demo outlives the test.
    struct Sweep(String);
    impl Drop for Sweep {
        fn drop(&mut self) {
            for pid in processes_mentioning(&self.0) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    let _sweep = Sweep(broker_conf.clone());
    assert!(
        !processes_mentioning(&broker_conf).is_empty(),
        "the demo's broker ({broker_conf}) is not running"
    );
    // SIGKILL: the demo gets no chance to stop its broker itself.
    demo.signal(Signal::SIGKILL);
    assert!(demo.wait_timeout(Duration::from_secs(5)).is_some());
    let gone = wait_for(Duration::from_secs(5), || {
        processes_mentioning(&broker_conf).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "the broker outlived its demo: {:?}",
        processes_mentioning(&broker_conf)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
