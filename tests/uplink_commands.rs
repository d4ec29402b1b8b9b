//! Commands over MQTT 5 against a real mosquitto: signed commands take effect and are
//! answered on their response topic with their correlation data; forged, replayed, late and
//! malformed ones are refused with a reason and change nothing. The events the table publishes
//! are signed, and `croupier verify` accepts the captured stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/schema.rs"]
mod schema;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use croupier::signing::{command_message, sign, CommandKind, KeyRing};
use serde_json::{json, Value};

const PREFIX: &str = "croupier/v1/test/t-01";

fn keys(dir: &Path) -> KeyRing {
    std::fs::create_dir_all(dir).expect("keys dir");
    for (id, byte) in [("k1", 1u8), ("orch", 2), ("dealer-7", 3), ("super-2", 4)] {
        std::fs::write(dir.join(format!("{id}.hmac")), hex(&[byte; 32])).expect("key");
    }
    KeyRing::load(dir).expect("ring")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Publishes `payload` on the command topic with a response topic, and returns the reply.
fn send(port: u16, payload: &str, tag: &str) -> Value {
    let reply_topic = format!("replies/{tag}");
    let mut sub = Command::new("mosquitto_sub")
        .args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            &reply_topic,
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%D %p",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("mosquitto_pub")
        .args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            &format!("{PREFIX}/cmd"),
        ])
        .args(["-D", "publish", "response-topic", &reply_topic])
        .args(["-D", "publish", "correlation-data", tag])
        .args(["-m", payload])
        .status()
        .expect("mosquitto_pub");
    assert!(status.success());
    let out = {
        use std::io::Read;
        let mut s = String::new();
        sub.stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut s)
            .expect("read");
        let _ = sub.wait();
        s
    };
    let (correlation, body) = out
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("no reply to {tag}: {out:?}"));
    assert_eq!(
        correlation, tag,
        "the reply carries the command's correlation data"
    );
    let reply: Value = serde_json::from_str(body).expect("reply JSON");
    schema::validate("command-reply", &reply)
        .unwrap_or_else(|e| panic!("reply schema: {e}\n{reply}"));
    reply
}

fn signed(ring: &KeyRing, key: &str, kind: CommandKind, body: Value, at: SystemTime) -> Value {
    let mut msg = command_message(kind, "test/t-01", body, at);
    sign(ring, key, &mut msg).expect("sign");
    schema::validate("command", &msg).unwrap_or_else(|e| panic!("command schema: {e}\n{msg}"));
    msg
}

#[test]
fn signed_commands_work_and_forged_replayed_late_malformed_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = keys(&dir.path().join("keys"));
    let broker = Broker::start();
    let http_port = free_port();
    let config = dir.path().join("table.toml");
    let text = config_with_devices(broker.port, http_port, "")
        + &format!(
            "\n[signing]\nkeys = \"{}\"\nkey_id = \"k1\"\n",
            dir.path().join("keys").display()
        );
    std::fs::write(&config, text).expect("config");
    let capture = dir.path().join("events.jsonl");
    let _events = Proc {
        child: Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-q",
                "1",
                "-t",
                &format!("{PREFIX}/events"),
            ])
            .stdout(std::fs::File::create(&capture).expect("capture"))
            .stderr(Stdio::null())
            .spawn()
            .expect("events subscriber"),
        name: "events",
    };
    let daemon = Daemon::start(&config, &[]);
    wait_for(Duration::from_secs(20), || {
        (component_state(http_port, "uplink").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("uplink never up:\n{}", daemon.log_text()));
    std::thread::sleep(Duration::from_millis(300));
    let now = SystemTime::now();

    // A signed round.open opens betting.
    let open = signed(&ring, "orch", CommandKind::RoundOpen, json!({}), now);
    let reply = send(broker.port, &open.to_string(), "open-1");
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(reply["data"]["events"][0]["type"], "round.open", "{reply}");

    // The same command again (a retry) gets the same reply and is not executed twice.
    let again = send(broker.port, &open.to_string(), "open-1-retry");
    assert_eq!(again["data"], reply["data"], "{again}");

    // A second, new round.open is refused by the table's rules (a round is open).
    let second = signed(&ring, "orch", CommandKind::RoundOpen, json!({}), now);
    let refused = send(broker.port, &second.to_string(), "open-2");
    assert_eq!(refused["status"], "error");
    assert_eq!(refused["reason"], "refused_by_table", "{refused}");

    // Forged: the body changed after signing.
    let mut forged = signed(
        &ring,
        "orch",
        CommandKind::RoundVoid,
        json!({ "reason": "x" }),
        now,
    );
    forged["body"]["reason"] = json!("a forged reason");
    assert_eq!(
        send(broker.port, &forged.to_string(), "forged")["reason"],
        "bad_signature"
    );

    // Replayed: the same nonce under a new command id.
    let mut replayed = signed(
        &ring,
        "orch",
        CommandKind::RoundVoid,
        json!({ "reason": "y" }),
        now,
    );
    let nonce = replayed["nonce"].clone();
    let first = send(broker.port, &replayed.to_string(), "void-1");
    assert_eq!(first["status"], "ok", "{first}");
    replayed["command_id"] = json!("another-id");
    replayed["nonce"] = nonce;
    replayed.as_object_mut().expect("object").remove("sig");
    sign(&ring, "orch", &mut replayed).expect("sign");
    assert_eq!(
        send(broker.port, &replayed.to_string(), "replay")["reason"],
        "replayed_nonce"
    );

    // Late: issued 10 minutes ago.
    let late = signed(
        &ring,
        "orch",
        CommandKind::RoundOpen,
        json!({}),
        now - Duration::from_secs(600),
    );
    assert_eq!(
        send(broker.port, &late.to_string(), "late")["reason"],
        "stale_timestamp"
    );

    // Malformed.
    assert_eq!(
        send(broker.port, "{\"command_id\": 3", "garbage")["reason"],
        "malformed"
    );

    // state.get answers with the table's state: the void left it idle.
    let state = send(
        broker.port,
        &signed(&ring, "orch", CommandKind::StateGet, json!({}), now).to_string(),
        "state",
    );
    assert_eq!(state["data"]["phase"], "idle", "{state}");

    // The events so far are signed, and the verifier accepts the capture.
    std::thread::sleep(Duration::from_millis(500));
    let captured = std::fs::read_to_string(&capture).expect("capture");
    assert!(captured.lines().count() >= 3, "{captured}");
    let verify = Command::new(croupier())
        .args(["verify", "--keys"])
        .arg(dir.path().join("keys"))
        .arg(&capture)
        .output()
        .expect("croupier verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // A tampered capture is caught.
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, captured.replacen("round.open", "round.close", 1)).expect("write");
    let verify = Command::new(croupier())
        .args(["verify", "--keys"])
        .arg(dir.path().join("keys"))
        .arg(&tampered)
        .output()
        .expect("croupier verify");
    assert_eq!(verify.status.code(), Some(1));
}

/// Four-eyes over MQTT: a result the second witness did not confirm holds the round; only two
/// approvals of the same result, each signed by its own person's key (a dealer and a
/// supervisor), release it.
#[test]
fn a_held_round_is_released_by_two_signed_approvals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = keys(&dir.path().join("keys"));
    let broker = Broker::start();
    let http_port = free_port();
    let wheel_script = dir.path().join("wheel.txt");
    // Betting is opened by command at about 1 s; the ball drops at 4 s, the number at 4.5 s.
    std::fs::write(
        &wheel_script,
        "4s wheel 3 001 00\n500ms wheel 5 001 17\n60s wheel 6 001 17\n",
    )
    .expect("script");
    let _wheel = simulator_with(
        "wheel",
        &dir.path().join("wheel"),
        &["--script", wheel_script.to_str().expect("utf-8")],
    );
    let config = dir.path().join("table.toml");
    let devices = format!(
        "[[device]]\nrole = \"wheel\"\ndriver = \"cammegh\"\nport = \"{}\"\n",
        dir.path().join("wheel").display()
    );
    let text = config_with_devices(broker.port, http_port, &devices)
        + &format!(
            "\n[signing]\nkeys = \"{}\"\nkey_id = \"k1\"\n\n[crosscheck]\nwindow = \"1s\"\nwheel = [\"vision\"]\n",
            dir.path().join("keys").display()
        );
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config, &[]);
    wait_for(Duration::from_secs(20), || {
        (component_state(http_port, "uplink").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("uplink never up:\n{}", daemon.log_text()));
    let open = signed(
        &ring,
        "orch",
        CommandKind::RoundOpen,
        json!({}),
        SystemTime::now(),
    );
    assert_eq!(send(broker.port, &open.to_string(), "open")["status"], "ok");
    // No vision on this table: after the wheel's number and the 1 s window, the round is held.
    let round_id = wait_for(Duration::from_secs(15), || {
        let (_, body) = http_get(http_port, "/status")?;
        let status: Value = serde_json::from_str(&body).ok()?;
        (status["round"]["phase"] == "result_pending").then(|| {
            status["round"]["round_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
    })
    .unwrap_or_else(|| panic!("the round was never held:\n{}", daemon.log_text()));

    let approval = |key: &str, person: &str, role: &str| {
        signed(
            &ring,
            key,
            CommandKind::ResultManual,
            json!({ "round_id": round_id, "person": person, "role": role, "result": { "number": 17 } }),
            SystemTime::now(),
        )
    };
    // Someone else's key cannot approve in a person's name.
    let impostor = send(
        broker.port,
        &approval("orch", "dealer-7", "dealer").to_string(),
        "impostor",
    );
    assert_eq!(impostor["reason"], "signer_mismatch", "{impostor}");
    let dealer = send(
        broker.port,
        &approval("dealer-7", "dealer-7", "dealer").to_string(),
        "dealer",
    );
    assert_eq!(dealer["status"], "ok", "{dealer}");
    assert_eq!(dealer["data"]["events"][0]["type"], "result.approval");
    let supervisor = send(
        broker.port,
        &approval("super-2", "super-2", "supervisor").to_string(),
        "supervisor",
    );
    let kinds: Vec<&str> = supervisor["data"]["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds,
        vec!["result.approval", "round.result"],
        "{supervisor}"
    );
    let (_, body) = http_get(http_port, "/status").expect("status");
    let status: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(status["round"]["phase"], "result", "{status}");
    assert_eq!(
        status["round"]["last_result"]["result"]["approved_by"],
        json!(["dealer-7", "super-2"])
    );
}

/// The orchestrator's line for the dealer: a signed `prompter.message` is journaled as the
/// event of the same name and shown on the prompter (in Chromium); a malformed one is refused.
#[test]
fn a_prompter_message_reaches_the_dealers_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ring = keys(&dir.path().join("keys"));
    let broker = Broker::start();
    let http_port = free_port();
    let config = dir.path().join("table.toml");
    let text = config_with_devices(broker.port, http_port, "")
        + &format!(
            "\n[signing]\nkeys = \"{}\"\nkey_id = \"k1\"\n",
            dir.path().join("keys").display()
        );
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config, &[]);
    wait_for(Duration::from_secs(20), || {
        (component_state(http_port, "uplink").as_deref() == Some("up")).then_some(())
    })
    .unwrap_or_else(|| panic!("uplink never up:\n{}", daemon.log_text()));
    std::thread::sleep(Duration::from_millis(300));
    let now = SystemTime::now();

    // Signed, but not a valid body (the schema would refuse it too).
    let mut bad = command_message(
        CommandKind::PrompterMessage,
        "test/t-01",
        json!({ "text": "x", "level": "shout" }),
        now,
    );
    sign(&ring, "orch", &mut bad).expect("sign");
    let refused = send(broker.port, &bad.to_string(), "msg-bad");
    assert_eq!(refused["reason"], "malformed", "{refused}");

    let msg = signed(
        &ring,
        "orch",
        CommandKind::PrompterMessage,
        json!({ "text": "Change the shoe after this coup", "level": "warning", "ttl_s": 120 }),
        now,
    );
    let reply = send(broker.port, &msg.to_string(), "msg-1");
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(
        reply["data"]["events"][0]["type"], "prompter.message",
        "{reply}"
    );

    let out = Command::new("node")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .args([
            "pages.mjs",
            &format!("http://127.0.0.1:{http_port}/prompter"),
            "--until",
            "document.querySelector('#messages .message.warning')",
            "--print",
            "document.getElementById('messages').innerText",
            "--timeout",
            "15",
        ])
        .output()
        .expect("node");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("Change the shoe after this coup"),
        "{printed}"
    );
}
