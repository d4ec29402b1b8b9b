//! Whole rounds through the real daemon: simulated devices on pseudo-terminals, the engine,
//! the durable event log — and a SIGKILL in the middle of a coup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

fn wait_events(
    path: &Path,
    daemon: &Daemon,
    until: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    wait_for(Duration::from_secs(40), || {
        let events = read_events(path);
        until(&events).then_some(events)
    })
    .unwrap_or_else(|| {
        panic!(
            "events never got there:\n{}\nlog:\n{}",
            std::fs::read_to_string(path).unwrap_or_default(),
            daemon.log_text()
        )
    })
}

fn daemon_log_hint(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["seq"], e["type"], e["source"], e["payload"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(events: &[serde_json::Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

struct Table {
    dir: tempfile::TempDir,
    config: PathBuf,
    events: PathBuf,
    _sims: Vec<Proc>,
}

fn baccarat_table(pedal_script: &str, shoe_script: &str) -> Table {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sims = Vec::new();
    for (role, script) in [("pedal", pedal_script), ("shoe", shoe_script)] {
        let path = dir.path().join(format!("{role}.txt"));
        std::fs::write(&path, script).expect("script");
        sims.push(simulator_with(
            role,
            &dir.path().join(role),
            &["--script", path.to_str().expect("utf-8")],
        ));
    }
    let config = dir.path().join("table.toml");
    let devices = format!(
        "[[device]]\nrole = \"pedal\"\ndriver = \"serial\"\nport = \"{}\"\n\n[[device]]\nrole = \"shoe\"\ndriver = \"line\"\nport = \"{}\"\n",
        dir.path().join("pedal").display(),
        dir.path().join("shoe").display()
    );
    let text = config_with_devices(free_port(), free_port(), &devices)
        .replace("game = \"roulette\"", "game = \"baccarat\"")
        .replace("[mqtt]", "[timing]\nbet_window = \"5s\"\n\n[mqtt]");
    std::fs::write(&config, text).expect("config");
    let events = dir.path().join("state/events/events.jsonl");
    Table {
        dir,
        config,
        events,
        _sims: sims,
    }
}

#[test]
fn a_baccarat_coup_survives_a_sigkill_mid_deal() {
    // The pedal opens betting at 2 s; the 5 s window closes on the daemon's clock; three cards
    // come, then a pause in which the daemon is killed and restarted, then the last two.
    let t = baccarat_table(
        "2s press\n60s press\n",
        "8s card 9H\n300ms card KD\n300ms card 5C\n7s card 3S\n300ms card 8D\n",
    );
    let mut daemon = Daemon::start(&t.config, &[]);
    wait_events(&t.events, &daemon, |e| count(e, "card.dealt") == 3);
    daemon.proc.signal(Signal::SIGKILL);
    daemon
        .proc
        .wait_timeout(Duration::from_secs(5))
        .expect("killed");

    let restarted = Daemon::start(&t.config, &[]);
    let events = wait_events(&t.events, &restarted, |e| count(e, "round.result") == 1);
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free seq across the kill"
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        vec![
            "round.open",
            "round.close",
            "round.play",
            "card.dealt",
            "card.dealt",
            "card.dealt",
            "round.resumed",
            "card.dealt",
            "card.dealt",
            "round.result",
        ],
        "{}",
        daemon_log_hint(&events)
    );
    let round = events[0]["round_id"].as_str().expect("round id");
    assert!(
        events.iter().all(|e| e["round_id"] == round),
        "one round, not a new one"
    );
    let close = &events[1];
    assert_eq!(close["source"], "timer");
    let result = &events[9]["payload"]["result"];
    assert_eq!(result["winner"], "banker");
    assert_eq!(
        result["player_cards"],
        serde_json::json!(["9H", "5C", "8D"])
    );
    assert_eq!(result["banker_cards"], serde_json::json!(["KD", "3S"]));
    // Every event carries the time model.
    for e in &events {
        assert!(e["event_id"].as_str().is_some_and(|id| id.len() == 36));
        assert!(e["timecode"]["smpte"]
            .as_str()
            .is_some_and(|tc| tc.len() == 11));
        assert_eq!(e["timecode"]["rate"], "25/1");
        assert!(e["clock"]["synchronized"].is_boolean());
        assert!(e["mono_ns"].as_u64().is_some());
    }
    // The journal holds the same events in its hash chain, across the kill.
    let journal = t.dir.path().join("state/journal");
    let verify = std::process::Command::new(croupier())
        .args(["journal", "verify"])
        .arg(&journal)
        .output()
        .expect("journal verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let export = t.dir.path().join("dispute.jsonl");
    let out = std::process::Command::new(croupier())
        .args(["journal", "export", "--round", round, "--dir"])
        .arg(&journal)
        .arg("--out")
        .arg(&export)
        .output()
        .expect("journal export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = std::fs::read_to_string(&export).expect("export");
    assert!(
        exported.contains("round.result") && exported.contains("card.dealt"),
        "{exported}"
    );
    // Editing one recorded event breaks the chain, and verify says so.
    drop(restarted);
    let file = std::fs::read_dir(&journal)
        .expect("journal dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a journal file");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replacen("\"9H\"", "\"9D\"", 1)).expect("tamper");
    let verify = std::process::Command::new(croupier())
        .args(["journal", "verify"])
        .arg(&journal)
        .output()
        .expect("journal verify");
    assert_eq!(
        verify.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    drop(t.dir);
}

#[test]
fn a_kill_during_betting_voids_the_round_and_numbering_goes_on() {
    let t = baccarat_table("2s press\n6s press\n", "60s card KH\n");
    let mut daemon = Daemon::start(&t.config, &[]);
    wait_events(&t.events, &daemon, |e| count(e, "round.open") == 1);
    daemon.proc.signal(Signal::SIGKILL);
    daemon
        .proc
        .wait_timeout(Duration::from_secs(5))
        .expect("killed");
    let restarted = Daemon::start(&t.config, &[]);
    // The restart voids the interrupted round; the pedal's next press opens round 2.
    let events = wait_events(&t.events, &restarted, |e| count(e, "round.open") == 2);
    let void = events
        .iter()
        .find(|e| e["type"] == "round.void")
        .expect("void");
    assert_eq!(void["source"], "system");
    assert!(void["payload"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("restarted")));
    let ids: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "round.open")
        .map(|e| e["round_id"].as_str().unwrap_or(""))
        .collect();
    assert!(
        ids[0].ends_with("-0001") && ids[1].ends_with("-0002"),
        "{ids:?}"
    );
}
