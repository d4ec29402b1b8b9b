//! Every serial driver end to end: `croupier simulate` plays a script in the device's real
//! framing on a pseudo-terminal — with garbage, split frames, a bad checksum and an unplug in
//! the middle of a frame — and the daemon must report exactly the observations the script
//! means: nothing lost while connected, nothing invented from the garbage or the cut frame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// The daemon opens its ports well before this; the scripts start after it.
const SETTLE: &str = "2s";

struct Run {
    _dir: tempfile::TempDir,
    daemon: Daemon,
    http_port: u16,
    _sim: Proc,
}

fn start(role: &str, sim_args: &[&str], script: &str, device_block: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join(role);
    let script_path = dir.path().join("script.txt");
    std::fs::write(&script_path, script).expect("write script");
    let mut args: Vec<&str> = sim_args.to_vec();
    let script_arg = script_path.to_str().expect("utf-8").to_owned();
    args.extend(["--script", &script_arg]);
    let sim = simulator_with(role, &link, &args);
    let http_port = free_port();
    let config = dir.path().join("table.toml");
    let block = device_block.replace("PORT", link.to_str().expect("utf-8"));
    // No broker: the uplink buffers, which must not disturb the devices.
    std::fs::write(&config, config_with_devices(free_port(), http_port, &block)).expect("config");
    let daemon = Daemon::start(&config, &[]);
    Run {
        _dir: dir,
        daemon,
        http_port,
        _sim: sim,
    }
}

/// Waits until `device` has logged `n` observations (or more), then returns them all.
fn wait_observations(run: &Run, device: &str, n: usize) -> Vec<String> {
    wait_for(Duration::from_secs(25), || {
        let seen: Vec<String> = observations(&run.daemon.log_text())
            .into_iter()
            .filter(|(d, _)| d == device)
            .map(|(_, text)| text)
            .collect();
        (seen.len() >= n).then_some(seen)
    })
    .unwrap_or_else(|| {
        panic!(
            "{device} did not log {n} observations; log:\n{}",
            run.daemon.log_text()
        )
    })
}

fn counter(run: &Run, device: &str, name: &str) -> u64 {
    let (_, body) = http_get(run.http_port, "/status").expect("status");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    json["components"][device]["counters"][name]
        .as_u64()
        .unwrap_or(0)
}

fn restarts(run: &Run, device: &str) -> u64 {
    let (_, body) = http_get(run.http_port, "/status").expect("status");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    json["components"][device]["restarts"].as_u64().unwrap_or(0)
}

fn stop(mut run: Run) {
    run.daemon.proc.signal(Signal::SIGTERM);
    run.daemon.proc.wait_timeout(Duration::from_secs(5));
}

#[test]
fn wheel_frames_survive_garbage_splits_and_an_unplug() {
    let script = format!(
        "{SETTLE} wheel 1 042 17
100ms wheel 2 042 17 0 027 1
50ms  hex 00 FF 13 37 AA 0D 0A
50ms  split 3 *X:3:042:17:0:027:1
50ms  frame *W ball launched slow
50ms  hex 2A 58 3B 34 3B 30     # the cable is pulled in the middle of a frame…
20ms  disconnect 300ms
1500ms wheel 4 042 17           # …and plugged back in
100ms wheel 5 042 23 0 027 1
100ms number 23
"
    );
    let run = start(
        "wheel",
        &[],
        &script,
        "[[device]]\nrole = \"wheel\"\ndriver = \"cammegh\"\nport = \"PORT\"\n",
    );
    let seen = wait_observations(&run, "wheel", 6);
    let states: Vec<&str> = seen
        .iter()
        .map(|t| t.split(" (").next().unwrap_or_default())
        .collect();
    assert_eq!(
        states,
        vec![
            "wheel state 1",
            "wheel state 2",
            "wheel state 3",
            "wheel warning \"ball launched slow\"",
            "wheel state 4",
            "wheel state 5",
        ],
        "{seen:#?}"
    );
    assert!(
        seen[4].contains("number 17") && seen[5].contains("number 23"),
        "{seen:#?}"
    );
    // The bare number after state 5 is the seventh; nothing else came from the garbage.
    let seen = wait_observations(&run, "wheel", 7);
    assert_eq!(seen[6], "wheel winning number 23");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        observations(&run.daemon.log_text()).len(),
        7,
        "an invented observation"
    );
    assert!(
        counter(&run, "wheel", "errors") >= 2,
        "garbage and the cut frame are counted"
    );
    assert!(
        restarts(&run, "wheel") >= 1,
        "the unplug took the device down"
    );
    stop(run);
}

#[test]
fn shoe_cards_survive_garbage_splits_and_an_unplug() {
    let script = format!(
        "{SETTLE} card KH
100ms card 10D
50ms  hex 7E 7E 00 0D 0A         # a line of noise: reported as unreadable, never a card
50ms  split 1 9C
50ms  frame ZZ                  # no card: reported as unreadable, never guessed
50ms  frame BURN
50ms  hex 51                    # half of `QS`, then the cable is pulled
20ms  disconnect 300ms
1500ms card AS
"
    );
    let run = start(
        "shoe",
        &[],
        &script,
        "[[device]]\nrole = \"shoe\"\ndriver = \"line\"\nport = \"PORT\"\nburn = \"BURN\"\n",
    );
    let seen = wait_observations(&run, "shoe", 7);
    assert_eq!(
        seen,
        vec![
            "card KH #1",
            "card TD #2",
            "unreadable card line \"~~\\0\"",
            "card 9C #3",
            "unreadable card line \"ZZ\"",
            "burn card #4",
            "card AS #1",
        ]
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        observations(&run.daemon.log_text()).len(),
        7,
        "an invented card"
    );
    assert!(
        counter(&run, "shoe", "errors") >= 1,
        "the cut card is counted"
    );
    assert!(restarts(&run, "shoe") >= 1);
    stop(run);
}

#[test]
fn ascii_rfid_reports_arrivals_and_departures_across_an_unplug() {
    let script = format!(
        "{SETTLE} tag E00401501234A001
100ms tag E00401501234A001       # repeated while present: no second arrival
100ms tag E00401501234A002
50ms  frame E0040150ZZZZA003     # not a UID: garbage
100ms disconnect 300ms           # the reader is unplugged with both tags on it…
800ms tag E00401501234A001       # …and plugged back in: the tags are still there, no new arrival
0     tag E00401501234A002
5s    hex 00                     # quiet long enough for both tags to depart
"
    );
    let run = start(
        "rfid",
        &[],
        &script,
        "[[device]]\nrole = \"rfid\"\ndriver = \"ascii\"\nport = \"PORT\"\nabsent_timeout = \"2s\"\n",
    );
    let seen = wait_observations(&run, "rfid", 4);
    assert_eq!(
        seen,
        vec![
            "tag E00401501234A001 arrived at antenna 1",
            "tag E00401501234A002 arrived at antenna 1",
            "tag E00401501234A001 left antenna 1",
            "tag E00401501234A002 left antenna 1",
        ]
    );
    assert!(counter(&run, "rfid", "errors") >= 1);
    assert!(
        restarts(&run, "rfid") >= 1,
        "the unplug took the reader down"
    );
    assert!(
        counter(&run, "rfid", "frames") >= 5,
        "the UIDs after the replug were read (and did not arrive again)"
    );
    stop(run);
}

#[test]
fn feig_reader_is_polled_per_antenna_through_a_bad_crc_and_an_unplug() {
    let script = format!(
        "{SETTLE} tag E00401501234B001   # antenna 1
0     tag E00401501234B002             # antenna 2
500ms badcrc                           # one answer is corrupted: no tag may depart for it
600ms disconnect 300ms                 # the reader is unplugged; tags must not flap
2s    hex 00                           # end of the round: the table is cleared
"
    );
    let run = start(
        "rfid",
        &["--feig", "--antennas", "2", "--rounds", "1"],
        &script,
        "[[device]]\nrole = \"rfid\"\ndriver = \"feig\"\nport = \"PORT\"\nbaud = 38400\n\
         antennas = [1, 2]\nantenna_mode = \"together\"\npoll_interval = \"100ms\"\nabsent_after = 2\n",
    );
    let seen = wait_observations(&run, "rfid", 4);
    let mut arrivals = seen[..2].to_vec();
    arrivals.sort();
    assert_eq!(
        arrivals,
        vec![
            "tag E00401501234B001 arrived at antenna 1",
            "tag E00401501234B002 arrived at antenna 2",
        ],
        "{seen:#?}"
    );
    let mut departures = seen[2..4].to_vec();
    departures.sort();
    assert_eq!(
        departures,
        vec![
            "tag E00401501234B001 left antenna 1",
            "tag E00401501234B002 left antenna 2",
        ],
        "{seen:#?}"
    );
    assert_eq!(seen.len(), 4, "tags flapped: {seen:#?}");
    assert!(
        counter(&run, "rfid", "errors") >= 1,
        "the bad CRC is counted"
    );
    assert!(
        restarts(&run, "rfid") >= 1,
        "the unplug took the reader down"
    );
    stop(run);
}

#[test]
fn serial_pedal_presses_releases_and_double_presses() {
    let script = format!(
        "{SETTLE} press
500ms press
150ms press                      # within the double-press window of the release
600ms disconnect 300ms
1500ms press
"
    );
    let run = start(
        "pedal",
        &[],
        &script,
        "[[device]]\nrole = \"pedal\"\ndriver = \"serial\"\nport = \"PORT\"\n",
    );
    let seen = wait_observations(&run, "pedal", 9);
    assert_eq!(
        seen,
        vec![
            "pedal press",
            "pedal release",
            "pedal press",
            "pedal release",
            "pedal press",
            "pedal double_press",
            "pedal release",
            "pedal press",
            "pedal release",
        ]
    );
    assert!(restarts(&run, "pedal") >= 1);
    stop(run);
}

/// `croupier simulate --interactive`: steps typed on its terminal go out on the device's line;
/// a mistyped step is refused with a reason and the simulator keeps going.
#[test]
fn interactive_simulator_sends_typed_steps() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("shoe");
    let mut child = Command::new(croupier())
        .args(["simulate", "shoe", "--interactive", "--link"])
        .arg(&link)
        .env("CROUPIER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let stderr = child.stderr.take().expect("stderr");
    let sim = Proc {
        child,
        name: "simulator",
    };
    wait_for(Duration::from_secs(10), || {
        std::fs::symlink_metadata(&link).ok()
    })
    .expect("link");
    let mut port = std::fs::File::open(&link).expect("open the simulated shoe");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(n) = port.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    stdin
        .write_all(b"card KH\ncard ZZ\nfly away\ncard QS\n")
        .expect("type");
    stdin.flush().expect("flush");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 8 && std::time::Instant::now() < deadline {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
            got.extend(bytes);
        }
    }
    assert_eq!(got, b"KH\r\nQS\r\n", "{:?}", String::from_utf8_lossy(&got));
    drop(stdin);
    drop(sim);
    let mut errors = String::new();
    let mut stderr = stderr;
    let _ = stderr.read_to_string(&mut errors);
    assert!(
        errors.contains("ZZ") && errors.contains("unknown step `fly`"),
        "{errors}"
    );
}
