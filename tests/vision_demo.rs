//! The vision stage end to end, as `make demo` runs it: a kit rendered by
//! `tests/vision/synth.py`, the table calibrated by the technician's commands, the shoe on a
//! pseudo-terminal, a still-image camera showing the dealt cards, the real GStreamer tap, the
//! OpenCV card reader, the engine's cross-check, mosquitto, and the demo's orchestrator voiding a
//! held round with a signed command.
//!
//! Checked in the table's event log: the calibration is journaled; in a normal coup every card
//! the shoe dealt is seen by the camera once, in its side's zone, with the frame's timecode,
//! and the result is published; in the coup where the demo shows the camera a wrong card, the
//! engine holds the round with `alert.mismatch` naming that card, and the round is voided.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn make_kit(dir: &std::path::Path) {
    synth(
        1,
        dir,
        &[
            "--decks", "standard", "--tables", "1", "--scenes", "0", "--empty", "1", "--wheel", "0",
        ],
    );
}

#[test]
fn the_card_camera_witnesses_every_card_and_a_wrong_card_holds_the_round() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let kit = tmp.path().join("kit");
    make_kit(&kit);
    let dir = tmp.path().join("demo");
    let http_port = free_port();
    let mut demo = spawn_demo(
        [
            std::ffi::OsString::from("--game"),
            "baccarat".into(),
            "--pace".into(),
            "2".into(),
            "--duration".into(),
            "40".into(),
            "--vision-kit".into(),
            kit.clone().into(),
            "--dir".into(),
            dir.clone().into(),
            "--http".into(),
            format!("127.0.0.1:{http_port}").into(),
        ],
        Stdio::piped(),
    );
    let stdout = demo.child.stdout.take().expect("stdout");
    // Mid-run, a technician re-runs the table step: the stage reloads the file and the new
    // version is journaled.
    let recalibrate = {
        let pose: Value = serde_json::from_str(
            &std::fs::read_to_string(kit.join("tables/0.json")).expect("pose"),
        )
        .expect("pose json");
        let corners = pose["corners_px"]
            .as_array()
            .expect("corners")
            .iter()
            .map(|p| format!("{},{}", p[0], p[1]))
            .collect::<Vec<_>>()
            .join(":");
        let table_mm = format!(
            "{}x{}",
            pose["table_mm"]["width"], pose["table_mm"]["height"]
        );
        let cal = dir.join("calibration/table.json");
        let image = kit.join("empty/0.png");
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(12));
            Command::new(croupier())
                .args(["calibrate", "table", "--calibration"])
                .arg(&cal)
                .arg("--image")
                .arg(&image)
                .arg(format!("--corners={corners}"))
                .arg(format!("--table-mm={table_mm}"))
                .output()
                .expect("run calibrate table")
        })
    };
    // Both pages while the demo plays, for docs/screenshots/ (kept in target/screenshots/).
    let shots = {
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(8));
            let run = |path: &str, until: &str, file: &str, height: &str| {
                Command::new("node")
                    .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
                    .args(["pages.mjs", &format!("http://127.0.0.1:{http_port}{path}")])
                    .args(["--until", until, "--timeout", "20", "--height", height])
                    .arg("--screenshot")
                    .arg(shots.join(file))
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            };
            let prompter = run(
                "/prompter",
                "document.querySelectorAll('.card').length >= 4",
                "prompter-demo.png",
                "720",
            );
            // With the cards on the table, both previews playing and the zones drawn.
            let status = run(
                "/status",
                "document.querySelectorAll('.camera svg polygon').length > 0 && [...document.querySelectorAll('.camera iframe')].every((f) => { const v = f.contentDocument && f.contentDocument.querySelector('video'); return v && v.currentTime > 0.5; })",
                "status-demo.png",
                "1100",
            );
            (status, prompter)
        })
    };
    // "demo: coup 2: the camera is shown JS where the shoe dealt JC; expect alert.mismatch"
    let mut swapped: Option<(String, String)> = None;
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("demo: coup ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(shown), Some(dealt)) = (words.get(5), words.get(10)) {
                swapped = Some((shown.to_string(), dealt.trim_end_matches(';').to_string()));
            }
        }
        printed.push(line);
    }
    drop(demo);
    let (status_shot, prompter_shot) = shots.join().expect("screenshot thread");
    assert!(
        status_shot,
        "the status page showed the card camera's zones"
    );
    assert!(prompter_shot, "the prompter showed the dealt cards");
    let recalibrated = recalibrate.join().expect("recalibrate thread");
    assert!(
        recalibrated.status.success(),
        "{}",
        String::from_utf8_lossy(&recalibrated.stderr)
    );

    let log = std::fs::read_to_string(dir.join("state/events/events.jsonl")).expect("event log");
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect();
    let kinds = |round: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["round_id"] == round)
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    // The calibration the stage read, journaled.
    let cal = events
        .iter()
        .find(|e| e["type"] == "vision.calibration")
        .unwrap_or_else(|| panic!("no vision.calibration in\n{log}"));
    assert_eq!(cal["payload"]["camera"], "cards");
    assert!(
        cal["payload"]["version"].as_u64().unwrap_or(0) >= 2,
        "{cal}"
    );
    assert_eq!(cal["payload"]["sha256"].as_str().map(str::len), Some(64));
    let changes: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "vision.calibration")
        .collect();
    assert_eq!(changes.len(), 2, "loaded, then changed: {changes:?}");
    assert_eq!(
        changes[1]["payload"]["version"].as_u64(),
        cal["payload"]["version"].as_u64().map(|v| v + 1)
    );
    assert_eq!(
        changes[1]["payload"]["previous_sha256"],
        cal["payload"]["sha256"]
    );

    let mut rounds: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        if let Some(id) = e["round_id"].as_str() {
            rounds.entry(id.to_owned()).or_default().push(e);
        }
    }
    let ids: Vec<&String> = rounds.keys().collect();
    assert!(
        ids.len() >= 2,
        "two coups in 40 s: {ids:?}\n{}",
        printed.join("\n")
    );
    let (first, second) = (ids[0].clone(), ids[1].clone());

    // Coup 1: every card dealt is seen once, where the shoe put it, and the result is paid.
    let dealt: Vec<(String, String)> = rounds[&first]
        .iter()
        .filter(|e| e["type"] == "card.dealt")
        .map(|e| {
            (
                e["payload"]["card"].as_str().unwrap_or_default().to_owned(),
                e["payload"]["side"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(dealt.len() >= 4, "{:?}", kinds(&first));
    let seen: Vec<&&Value> = rounds[&first]
        .iter()
        .filter(|e| e["type"] == "card.seen")
        .collect();
    for (card, side) in &dealt {
        let sightings: Vec<&&&Value> = seen
            .iter()
            .filter(|e| e["payload"]["card"] == card.as_str())
            .collect();
        assert_eq!(
            sightings.len(),
            1,
            "{card} seen {} times: {:?}",
            sightings.len(),
            kinds(&first)
        );
        let s = sightings[0];
        assert_eq!(s["source"], "vision");
        assert_eq!(s["payload"]["zone"], side.as_str(), "{s}");
        assert_eq!(s["payload"]["camera"], "cards");
        let conf = s["payload"]["confidence"].as_f64().unwrap_or(0.0);
        assert!(conf > 0.0 && conf <= 1.0, "{s}");
        // The frame's own label, and the envelope's label for the frame's capture instant.
        let tc = s["payload"]["timecode"].as_str().unwrap_or_default();
        assert_eq!(tc.len(), 11, "{s}");
        assert_eq!(s["timecode"]["smpte"].as_str(), Some(tc), "{s}");
    }
    assert_eq!(seen.len(), dealt.len(), "nothing else seen: {seen:?}");
    assert!(
        kinds(&first).contains(&"round.result".to_owned()),
        "coup 1 confirmed by the camera and paid: {:?}",
        kinds(&first)
    );

    // Coup 2: the camera is shown another card; the round is held, then voided.
    let (shown, dealt_card) =
        swapped.unwrap_or_else(|| panic!("the demo swapped no card:\n{}", printed.join("\n")));
    assert_ne!(shown, dealt_card);
    let mismatch = rounds[&second]
        .iter()
        .find(|e| e["type"] == "alert.mismatch")
        .unwrap_or_else(|| panic!("coup 2 not held: {:?}", kinds(&second)));
    assert_eq!(mismatch["payload"]["reason"], "mismatch", "{mismatch}");
    assert_eq!(
        mismatch["payload"]["detail"]["card"],
        shown.as_str(),
        "{mismatch}"
    );
    assert_eq!(
        mismatch["payload"]["detail"]["source"], "vision",
        "{mismatch}"
    );
    assert!(!kinds(&second).contains(&"round.result".to_owned()));
    let void = rounds[&second]
        .iter()
        .find(|e| e["type"] == "round.void")
        .unwrap_or_else(|| panic!("held coup not voided: {:?}", kinds(&second)));
    assert_eq!(void["source"], "command");

    // No other coup saw a card the shoe did not deal.
    for (id, evs) in &rounds {
        if *id == second {
            continue;
        }
        for e in evs {
            if e["type"] == "alert.mismatch" {
                assert_ne!(
                    e["payload"]["reason"], "mismatch",
                    "a wrong read in {id}: {e}"
                );
            }
        }
    }
}
