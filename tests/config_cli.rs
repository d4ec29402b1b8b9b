//! The config checks and the command line, run through the real binary as a technician would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::croupier;

fn validate(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("table.toml");
    std::fs::write(&path, text).expect("write config");
    let out = Command::new(croupier())
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("run validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_example_is_accepted() {
    let out = Command::new(croupier())
        .args(["validate", "--config", "examples/table.toml"])
        .output()
        .expect("run validate");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (table riga-1/rl-01"));
}

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let (code, stdout, stderr) =
        validate("[table]\nstudio = \"riga-1\"\nid = \"rl-01\"\ngame = \"baccarat\"\n");
    assert_eq!(code, 0, "{stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "[table]\nstudio = \"riga-1\"\nid = \"rl-01\"\ngame = \"baccarat\"\n",
    )
    .expect("write");
    let printed = Command::new(croupier())
        .args(["validate", "--print", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    let printed = String::from_utf8_lossy(&printed.stdout);
    for expected in [
        "bet_window: 15s",
        "Fps25",
        "url: \"mqtt://127.0.0.1:1883\"",
        "client_id: \"croupier-riga-1-rl-01\"",
        "\"/var/lib/croupier\"",
        "listen: 127.0.0.1:8080",
        "shutdown_timeout: 10s",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    assert!(stdout.contains("ok"));
}

/// A file with many independent mistakes: every one must be reported, with its key path, in
/// one run, and the exit status must be 78.
#[test]
fn every_problem_is_reported_at_once_with_its_key_path() {
    let bad = r#"
[table]
studio = "Riga 1"
game = "poker"

[timing]
bet_windw = "15s"
timecode_rate = "26"

[mqtt]
url = "http://broker"
keep_alive = 30
password = "hunter2"

[http]
listen = "localhost:8080"

[log]
filter = "info,,=x=y"

[daemon]
restart_backoff_min = "10s"
restart_backoff_max = "1s"

[[device]]
role = "wheel"
driver = "line"
port = "/dev/croupier/wheel"
baud = 9601

[[device]]
role = "pedal"
driver = "gpio"
port = "/dev/ttyUSB3"

[[device]]
role = "tray"
driver = "ascii"

[[camera]]
name = "overhead"
source = "usb0"

[[camera]]
name = "overhead"
source = "test"

[extras]
colour = "red"
"#;
    let (code, _stdout, stderr) = validate(bad);
    assert_eq!(code, 78, "{stderr}");
    let expected = [
        ("table.id", "required and missing"),
        ("table.studio (line 3", "cannot be used as a name"),
        ("table.game (line 4", "`poker`"),
        ("timing.bet_windw (line 7", "did you mean `bet_window`"),
        ("timing.timecode_rate (line 8", "26"),
        ("mqtt.url (line 11", "scheme `http`"),
        ("mqtt.keep_alive (line 12", "has no unit"),
        ("mqtt.password (line 13", "password_file"),
        ("http.listen (line 16", "localhost:8080"),
        ("log.filter (line 19", "not a log filter"),
        ("daemon.restart_backoff_min", "above restart_backoff_max"),
        ("device[0].driver", "cannot serve role `wheel`"),
        ("device[0].baud (line 29", "9601"),
        ("device[1].port", "has no port"),
        ("device[1].line", "needs its line"),
        ("device[2].role", "`tray`"),
        ("camera[0].source (line 42", "`usb0`"),
        ("extras (line 48", "unknown key `extras`"),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    for (path, words) in expected {
        let at = lines
            .iter()
            .position(|l| l.contains(&format!("error: {path}")))
            .unwrap_or_else(|| panic!("no error for {path} in:\n{stderr}"));
        // The problem and its fix line, read together.
        let issue = format!("{}\n{}", lines[at], lines.get(at + 1).unwrap_or(&""));
        assert!(
            issue.contains(words),
            "error for {path} should mention {words:?}: {issue}"
        );
        assert!(
            issue.contains("fix: "),
            "error for {path} has no fix: {issue}"
        );
    }
    let errors = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("error:"))
        .count();
    assert_eq!(
        errors,
        expected.len(),
        "unexpected extra or missing errors:\n{stderr}"
    );
    let fixes = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("fix:"))
        .count();
    assert!(fixes >= errors, "every error needs a fix line:\n{stderr}");
    assert!(stderr.contains(&format!("{} errors", expected.len())));
    assert!(stderr.contains("nothing was started"));
}

#[test]
fn duplicate_device_names_and_ports_are_refused() {
    let (code, _, stderr) = validate(
        r#"[table]
studio = "s"
id = "t"
game = "baccarat"

[[device]]
role = "shoe"
driver = "line"
port = "/dev/croupier/shoe"

[[device]]
role = "shoe"
driver = "evdev"
port = "/dev/croupier/shoe"
"#,
    );
    assert_eq!(code, 78);
    assert!(
        stderr.contains("error: device[1].name: device name `shoe` is already used by device[0]"),
        "{stderr}"
    );
    assert!(stderr.contains("error: device[1].port"), "{stderr}");
}

#[test]
fn a_syntax_error_names_its_line() {
    let (code, _, stderr) = validate("[table]\nstudio = riga\n");
    assert_eq!(code, 78);
    assert!(stderr.contains("(line 2"), "{stderr}");
    assert!(stderr.contains("not valid TOML"), "{stderr}");
}

#[test]
fn tls_files_must_exist_and_pair_up() {
    let (code, _, stderr) = validate(
        r#"[table]
studio = "s"
id = "t"
game = "roulette"

[mqtt]
url = "mqtts://broker.studio:8883"
ca = "/nonexistent/ca.pem"
cert = "client.pem"
"#,
    );
    assert_eq!(code, 78);
    assert!(stderr.contains("error: mqtt.ca (line 8"), "{stderr}");
    assert!(stderr.contains("error: mqtt.cert"), "{stderr}");
    assert!(stderr.contains("needs its key"), "{stderr}");
}

#[test]
fn a_missing_file_exits_78() {
    let out = Command::new(croupier())
        .args(["validate", "--config", "/nonexistent/table.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

/// `run` refuses a bad config with the same report, before binding any port.
#[test]
fn run_refuses_an_invalid_config_without_binding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let path = dir.path().join("table.toml");
    std::fs::write(
        &path,
        format!("[table]\nstudio = \"s\"\nid = \"t\"\ngame = \"craps\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .expect("write");
    let out = Command::new(croupier())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: table.game (line 4"), "{stderr}");
    assert!(!dir.path().join("state").exists());
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn exit_codes_of_the_command_line() {
    let code = |args: &[&str]| {
        Command::new(croupier())
            .args(args)
            .output()
            .expect("run")
            .status
            .code()
    };
    assert_eq!(code(&["--version"]), Some(0));
    assert_eq!(code(&["no-such-command"]), Some(2));
    assert_eq!(code(&["validate"]), Some(2), "validate needs --config");
    assert_eq!(code(&["simulate", "toaster"]), Some(2));
    assert_eq!(code(&["timecode", "--rate", "26"]), Some(2));
}

#[test]
fn version_names_the_commit() {
    let out = Command::new(croupier())
        .arg("--version")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("croupier {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

#[test]
fn every_subcommand_has_help() {
    for (sub, words) in [
        ("run", "Type=notify"),
        ("demo", "simulated table"),
        ("validate", "every problem"),
        ("simulate", "pseudo-terminal"),
        ("timecode", "--rate"),
    ] {
        let out = Command::new(croupier())
            .args([sub, "--help"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(words),
            "`{sub} --help` should mention {words:?}:\n{text}"
        );
    }
}

#[test]
fn timecode_prints_a_drop_frame_label() {
    let out = Command::new(croupier())
        .args(["timecode", "--rate", "29.97", "--frames", "115086"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("01:04:00;02"));
}

/// Every driver with its own keys, as docs/devices.md documents them, is accepted.
#[test]
fn every_driver_with_its_keys_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("barcodes.toml"),
        "[barcodes]\n\"0123456789012\" = \"KH\"\n",
    )
    .expect("barcodes");
    std::fs::copy(
        "calibration/tags.example.toml",
        dir.path().join("tags.toml"),
    )
    .expect("tags");
    let path = dir.path().join("table.toml");
    std::fs::write(
        &path,
        r#"[table]
studio = "s"
id = "t"
game = "baccarat"

[[device]]
role = "wheel"
driver = "cammegh"
port = "/dev/croupier/wheel"
layout = "single-zero"
mode = 5

[[device]]
role = "shoe"
driver = "line"
port = "/dev/croupier/shoe"
format = "regex"
pattern = '(?P<suit>[SHDC])-(?P<rank>10|[2-9AJQKT])'
burn = "BURN"

[[device]]
name = "shoe-barcode"
role = "shoe"
driver = "evdev"
port = "/dev/croupier/shoe-barcode"
format = "barcode"
barcodes = "barcodes.toml"
max_len = 32
max_key_gap = "300ms"

[[device]]
role = "rfid"
driver = "feig"
port = "/dev/croupier/rfid"
baud = 38400
parity = "even"
antennas = [1, 2, 3]
antenna_mode = "together"
poll_interval = "150ms"
absent_after = 3
registry = "tags.toml"

[[device]]
name = "rfid-simple"
role = "rfid"
driver = "ascii"
port = "/dev/croupier/rfid-simple"
absent_timeout = "2s"

[[device]]
role = "pedal"
driver = "serial"
port = "/dev/croupier/pedal"
modem_line = "cts"
debounce = "10ms"

[[device]]
name = "pedal-hid"
role = "pedal"
driver = "evdev"
port = "/dev/croupier/pedal-hid"
keys = ["KEY_B", "BTN_0"]

[[device]]
name = "pedal-gpio"
role = "pedal"
driver = "gpio"
line = "GPIO17"
bias = "pull-up"

[[device]]
name = "pedal-pi"
role = "pedal"
driver = "rpi"
pin = 27
kernel_debounce = "5ms"
"#,
    )
    .expect("write");
    let out = Command::new(croupier())
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("9 device(s)"));
}

/// Driver keys are checked like every other key: misplaced, malformed and missing ones are
/// all reported at once, and the card regex, barcode table and tag registry are loaded.
#[test]
fn driver_key_mistakes_are_all_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("barcodes.toml"),
        "[barcodes]\n\"1\" = \"KX\"\n",
    )
    .expect("barcodes");
    std::fs::write(
        dir.path().join("tags.toml"),
        "[tags]\n\"E004\" = { card = \"KH\" }\n",
    )
    .expect("tags");
    let (code, _, stderr) = validate(
        r#"[table]
studio = "s"
id = "t"
game = "roulette"

[[device]]
role = "wheel"
driver = "cammegh"
port = "/dev/croupier/wheel"
debounce = "20ms"

[[device]]
role = "shoe"
driver = "line"
port = "/dev/croupier/shoe"
format = "regex"
pattern = "(?P<rank>[AKQJ])"

[[device]]
name = "shoe-b"
role = "shoe"
driver = "line"
port = "/dev/croupier/shoe-b"
format = "barcode"
barcodes = "BARCODES"

[[device]]
role = "rfid"
driver = "ascii"
port = "/dev/croupier/rfid"
registry = "TAGS"
parity = "mark"

[[device]]
role = "pedal"
driver = "evdev"
port = "/dev/croupier/pedal"
keys = ["KEY_FOOT"]

[[device]]
name = "pedal-pi"
role = "pedal"
driver = "rpi"
pin = 99
"#
        .replace(
            "BARCODES",
            dir.path().join("barcodes.toml").to_str().expect("utf-8"),
        )
        .replace(
            "TAGS",
            dir.path().join("tags.toml").to_str().expect("utf-8"),
        )
        .as_str(),
    );
    assert_eq!(code, 78, "{stderr}");
    for (path, words) in [
        ("device[0].debounce", "does not apply to a wheel"),
        ("device[1].format", "suit"),
        ("device[2].format", "line"),
        ("device[3].registry", "E004"),
        ("device[3].parity", "`mark`"),
        ("device[4].keys", "KEY_FOOT"),
        ("device[5].pin", "99"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("error: {path}")))
            .unwrap_or_else(|| panic!("no error for {path} in:\n{stderr}"));
        let next = stderr
            .lines()
            .skip_while(|l| *l != line)
            .nth(1)
            .unwrap_or_default();
        assert!(
            line.contains(words) || next.contains(words),
            "{path} should mention {words:?}: {line}\n{next}"
        );
    }
}

#[test]
fn camera_and_video_mistakes_are_all_reported() {
    let text = r#"
[table]
studio = "s"
id = "t"
game = "roulette"

[video]
stun = "stun.example:3478"
turn = ["http://turn.example"]
recording_segment = "1s"

[[camera]]
name = "overhead"
source = "test"
encoder = "h265"
fps = "31"
bitrate_kbps = 10
width = 0
whip_url = "ftp://sfu.example/whip"
caps = "image/jpeg,width=(int)x"
"#;
    let (code, _, err) = validate(text);
    assert_eq!(code, 78, "{err}");
    for key in [
        "video.stun",
        "video.turn",
        "video.recording_segment",
        "camera[0].encoder",
        "camera[0].fps",
        "camera[0].bitrate_kbps",
        "camera[0].width",
        "camera[0].whip_url",
        "camera[0].caps",
    ] {
        assert!(err.contains(key), "{key} not reported:\n{err}");
    }
    assert!(err.contains("x264, v4l2h264, vaapi, nvh264"), "{err}");
}
