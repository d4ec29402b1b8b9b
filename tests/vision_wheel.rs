//! The roulette camera as a second witness, end to end: synthetic wheel frames from
//! `tests/vision/synth.py`, the wheel calibrated with `croupier calibrate wheel`, an `image://`
//! camera showing the frame of the moment, the real GStreamer tap and pocket reader, the wheel
//! and pedal on pseudo-terminals, and the engine's cross-check.
//!
//! Coup 1: the ball comes to rest in the pocket the wheel reports: `pocket.seen` with the
//! frame's timecode, then the result. Coup 2: the camera sees the ball in another pocket than
//! the wheel reports: the round is held with `alert.mismatch`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn croupier_out(args: &[&str]) -> (bool, String) {
    let out = Command::new(croupier())
        .args(args)
        .output()
        .expect("run croupier");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

/// Copies a frame into the camera's file by rename, as the `image://` source expects.
fn show(frame: &Path, camera: &Path) {
    let tmp = camera.with_extension("tmp.png");
    std::fs::copy(frame, &tmp).expect("copy frame");
    std::fs::rename(&tmp, camera).expect("rename frame");
}

#[test]
fn the_wheel_camera_confirms_the_number_and_a_different_pocket_holds_the_round() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    synth(
        3,
        &data,
        &[
            "--decks", "standard", "--tables", "1", "--scenes", "0", "--empty", "0", "--wheel",
            "36",
        ],
    );

    // One European camera (pose 0: frames 0, 6, 12, …).
    let pose = json_file(&data.join("wheel/pose_0.json"));
    let h: Vec<String> = pose["homography_wheel_to_px"]
        .as_array()
        .expect("homography")
        .iter()
        .flat_map(|row| row.as_array().expect("row").iter().map(|v| v.to_string()))
        .collect();
    let ring = format!(
        "{},{}",
        pose["pocket_ring_px"]["inner"], pose["pocket_ring_px"]["outer"]
    );
    let frames: Vec<(PathBuf, Option<String>)> = (0..36)
        .step_by(6)
        .map(|n| {
            let label = json_file(&data.join(format!("wheel/{n}.json")));
            (
                data.join(format!("wheel/{n}.png")),
                label["number"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let with_ball: Vec<&(PathBuf, Option<String>)> =
        frames.iter().filter(|(_, n)| n.is_some()).collect();
    let cal = tmp.path().join("wheel.json");
    let (ok, text) = croupier_out(&[
        "calibrate",
        "wheel",
        "--calibration",
        &cal.to_string_lossy(),
        "--image",
        &with_ball[0].0.to_string_lossy(),
        &format!("--homography={}", h.join(",")),
        "--ring",
        &ring,
        "--layout",
        "european",
    ]);
    assert!(ok, "calibrate wheel: {text}");

    // Frames the reader reads as labelled (its accuracy is BENCHMARKS.md's business), two
    // different numbers, and a frame without a ball at rest.
    let mut readable = Vec::new();
    for (path, number) in &with_ball {
        let (ok, text) = croupier_out(&[
            "vision",
            "pocket",
            "--calibration",
            &cal.to_string_lossy(),
            &path.to_string_lossy(),
        ]);
        assert!(ok, "{text}");
        let line: Value =
            serde_json::from_str(text.lines().next().unwrap_or("{}")).unwrap_or_default();
        if line["pocket"]["number"].as_str() == number.as_deref() {
            readable.push((path.clone(), number.clone().unwrap_or_default()));
        }
    }
    let first = readable.first().cloned().expect("a readable frame");
    let second = readable
        .iter()
        .find(|(_, n)| *n != first.1)
        .cloned()
        .unwrap_or_else(|| panic!("two readable frames with different numbers: {readable:?}"));
    // Before the ball comes to rest: a frame of this camera with the ball on the track or
    // absent when the set has one, else a plain grey picture (nothing to read at all).
    let empty = data.join("wheel/empty.png");
    match frames.iter().find(|(_, n)| n.is_none()) {
        Some((p, _)) => {
            std::fs::copy(p, &empty).expect("copy");
        }
        None => {
            let out = Command::new("/usr/bin/python3")
                .args([
                    "-c",
                    "import cv2, numpy, sys; cv2.imwrite(sys.argv[1], numpy.full((720, 1280, 3), 90, numpy.uint8))",
                ])
                .arg(&empty)
                .output()
                .expect("python3");
            assert!(out.status.success());
        }
    }

    let dir = tmp.path().join("table");
    std::fs::create_dir_all(&dir).expect("dir");
    let camera = dir.join("wheel-camera.png");
    show(&empty, &camera);
    let mut sims = Vec::new();
    let mut devices = String::new();
    let wheel_script = format!(
        "11s wheel 5 001 {}\n15s wheel 5 002 {}\n120s wheel 6 003 0\n",
        first.1, first.1
    );
    for (role, driver, script) in [
        (
            "pedal",
            "serial",
            "3s press\n15s press\n120s press\n".to_owned(),
        ),
        ("wheel", "cammegh", wheel_script),
    ] {
        let path = dir.join(format!("{role}.txt"));
        std::fs::write(&path, script).expect("script");
        sims.push(simulator_with(
            role,
            &dir.join(role),
            &["--script", path.to_str().expect("utf-8")],
        ));
        devices.push_str(&format!(
            "\n[[device]]\nrole = \"{role}\"\ndriver = \"{driver}\"\nport = \"{}\"\n",
            dir.join(role).display()
        ));
    }
    devices.push_str(&format!(
        "\n[[camera]]\nname = \"wheel\"\nsource = \"image://{}\"\nvision = \"wheel\"\ncalibration = \"{}\"\nvision_fps = 5\nrecording = false\n",
        camera.display(),
        cal.display()
    ));
    let http = free_port();
    let text = config_with_devices(free_port(), http, &devices).replace(
        "[mqtt]",
        "[timing]\nbet_window = \"5s\"\n\n[crosscheck]\nwheel = [\"vision\"]\nwindow = \"3s\"\n\n[mqtt]",
    );
    let config = dir.join("table.toml");
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config, &[]);
    let events_path = dir.join("state/events/events.jsonl");
    let wait = |what: &str, f: &dyn Fn(&[Value]) -> bool| {
        wait_for(Duration::from_secs(40), || {
            let events = read_events(&events_path);
            f(&events).then_some(events)
        })
        .unwrap_or_else(|| {
            panic!(
                "{what} never came:\n{}\nlog:\n{}",
                std::fs::read_to_string(&events_path).unwrap_or_default(),
                daemon.log_text()
            )
        })
    };
    let count = |events: &[Value], kind: &str| events.iter().filter(|e| e["type"] == kind).count();

    // Coup 1: after the close, the ball comes to rest where the wheel will say.
    wait("the first close", &|e| count(e, "round.close") == 1);
    show(&first.0, &camera);
    let events = wait("the first result", &|e| count(e, "round.result") == 1);
    let round1 = events
        .iter()
        .find(|e| e["type"] == "round.result")
        .and_then(|e| e["round_id"].as_str())
        .expect("round id")
        .to_owned();
    let seen: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "pocket.seen" && e["round_id"] == round1.as_str())
        .collect();
    assert_eq!(seen.len(), 1, "one sighting per ball at rest: {seen:?}");
    assert_eq!(seen[0]["source"], "vision");
    assert_eq!(
        seen[0]["payload"]["number"].as_u64().map(|n| n.to_string()),
        Some(first.1.clone())
    );
    let tc = seen[0]["payload"]["timecode"].as_str().unwrap_or_default();
    assert_eq!(seen[0]["timecode"]["smpte"].as_str(), Some(tc));

    // Coup 2: the wheel says the same number again, the camera sees the ball elsewhere.
    wait("the second open", &|e| count(e, "round.open") == 2);
    show(&empty, &camera);
    wait("the second close", &|e| count(e, "round.close") == 2);
    show(&second.0, &camera);
    let events = wait("the hold", &|e| count(e, "alert.mismatch") == 1);
    let hold = events
        .iter()
        .find(|e| e["type"] == "alert.mismatch")
        .expect("hold");
    assert_eq!(hold["payload"]["reason"], "mismatch", "{hold}");
    assert_eq!(
        count(&events, "round.result"),
        1,
        "no result for the held coup"
    );
    assert!(
        events.iter().any(|e| e["type"] == "pocket.seen"
            && e["payload"]["number"].as_u64().map(|n| n.to_string()) == Some(second.1.clone())),
        "the camera's number is on the record"
    );
    // The hold is on the dashboards, by witness.
    let (_, metrics) = http_get(http, "/metrics").expect("metrics");
    assert!(
        metrics.contains(
            "croupier_crosscheck_mismatches_total{reason=\"mismatch\",source=\"vision\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("croupier_vision_sightings_total{camera=\"wheel\"} "),
        "{metrics}"
    );
    drop(sims);
}
