//! Signed events and guarded commands, through the public API of `croupier::signing` only:
//! canonical bytes, key directories and rotation, sign/verify with both algorithms, every
//! refusal of the command guard, and interoperability with a Python verifier.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use croupier::signing::*;
use serde_json::{json, Value};

const TABLE: &str = "riga-1/rl-01";
const HMAC_HEX: &str = "4f1c2b9e0d7a63e85b21c4f0a9d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a29180";

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_000_000)
}

fn pem(seed: u8) -> Ed25519Pem {
    ed25519_pem_from_seed(&[seed; 32]).unwrap()
}

/// `orch` (HMAC, the orchestrator), `dealer-7` (Ed25519), `super-2` (HMAC).
fn ring() -> KeyRing {
    let mut ring = KeyRing::in_memory();
    ring.insert_hmac("orch", &hex_bytes(HMAC_HEX)).unwrap();
    ring.insert_ed25519_pem("dealer-7", &pem(7).private_pem)
        .unwrap();
    ring.insert_hmac("super-2", &[0x22; 32]).unwrap();
    ring
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn event(seq: u64) -> Value {
    json!({
        "event_id": format!("019aa6b1-1c2e-7ac3-a281-{seq:012x}"), "seq": seq,
        "type": "round.close", "studio": "riga-1", "table": "rl-01",
        "round_id": "rl-01-20261121T142310Z-0007", "source": "timer",
        "utc": "2026-11-21T14:23:25.000123Z", "mono_ns": 81_234_567_890u64,
        "timecode": {"smpte": "14:23:25:00", "rate": "25/1", "drop_frame": false},
        "clock": {"synchronized": true, "est_error_us": 120},
        "payload": {"deadline_utc": "2026-11-21T14:23:25Z", "late_us": 1277, "early_ms": null}
    })
}

fn guard() -> CommandGuard {
    CommandGuard::new(GuardConfig::new("riga-1", "rl-01"))
}

fn command(kind: CommandKind, body: Value, at: SystemTime) -> Value {
    command_message(kind, TABLE, body, at)
}

fn signed(ring: &KeyRing, key_id: &str, mut msg: Value) -> Vec<u8> {
    sign(ring, key_id, &mut msg).unwrap();
    serde_json::to_vec(&msg).unwrap()
}

fn refusal(guard: &mut CommandGuard, ring: &KeyRing, raw: &[u8], now: SystemTime) -> Refusal {
    match guard.check(ring, raw, now) {
        Err(refusal) => refusal,
        Ok(ok) => panic!("expected a refusal, got {ok:?}"),
    }
}

fn fresh(guard: &mut CommandGuard, ring: &KeyRing, raw: &[u8], now: SystemTime) -> VerifiedCommand {
    match guard.check(ring, raw, now) {
        Ok(Checked::Fresh(cmd)) => cmd,
        other => panic!("expected a fresh command, got {other:?}"),
    }
}

// ----- canonical bytes -----------------------------------------------------------------------

#[test]
fn canonical_bytes_known_vectors() {
    let cases = [
        (
            json!({"b": 2, "a": 1, "c": {"z": [3, {"y": 1, "x": 2}], "a": null}}),
            r#"{"a":1,"b":2,"c":{"a":null,"z":[3,{"x":2,"y":1}]}}"#,
        ),
        (
            json!({"s": "line\nbreak \"quoted\" back\\slash \u{1} tab\t"}),
            r#"{"s":"line\nbreak \"quoted\" back\\slash \u0001 tab\t"}"#,
        ),
        (
            json!({"é": "ü", "e": "€ 😀"}),
            "{\"e\":\"€ 😀\",\"é\":\"ü\"}",
        ),
        (
            json!([true, false, null, -7, 0, 18_446_744_073_709_551_615u64]),
            "[true,false,null,-7,0,18446744073709551615]",
        ),
        (
            json!({"\u{fb33}": 1, "\u{1f600}": 2}),
            "{\"\u{1f600}\":2,\"\u{fb33}\":1}",
        ),
        (
            json!({"f": [1.0, 0.5, 1e21, 1e-7, -0.0]}),
            r#"{"f":[1,0.5,1e+21,1e-7,0]}"#,
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(String::from_utf8(canonical_json(&value)).unwrap(), expected);
    }
}

#[test]
fn signing_input_is_canonical_without_sig() {
    let mut msg = event(1);
    let before = canonical_json(&msg);
    sign(&ring(), "orch", &mut msg).unwrap();
    assert_eq!(signing_input(&msg), before);
    assert_ne!(canonical_json(&msg), before);
}

// ----- sign / verify -------------------------------------------------------------------------

#[test]
fn round_trip_both_algorithms() {
    let ring = ring();
    for (key, alg) in [("orch", "hmac-sha256"), ("dealer-7", "ed25519")] {
        let mut msg = event(42);
        sign(&ring, key, &mut msg).unwrap();
        assert_eq!(msg["sig"]["alg"], alg);
        assert_eq!(msg["sig"]["key_id"], key);
        assert_eq!(verify(&ring, &msg).unwrap(), key);
        // Member order on the wire does not matter: re-serialised text verifies too.
        let text = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            verify(&ring, &serde_json::from_str(&text).unwrap()).unwrap(),
            key
        );
    }
}

#[test]
fn ed25519_verifies_with_only_the_public_key_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dealer-7.ed25519.pub"), &pem(7).public_pem).unwrap();
    let public_only = KeyRing::load(dir.path()).unwrap();
    assert!(!public_only.can_sign("dealer-7"));
    let mut msg = event(3);
    sign(&ring(), "dealer-7", &mut msg).unwrap();
    assert_eq!(verify(&public_only, &msg).unwrap(), "dealer-7");
    let err = sign(&public_only, "dealer-7", &mut event(4)).unwrap_err();
    assert!(matches!(err, SigningError::VerifyOnlyKey { .. }), "{err}");
    assert!(err.to_string().contains("dealer-7.ed25519"));
}

#[test]
fn tampering_any_field_breaks_verification() {
    let ring = ring();
    for key in ["orch", "dealer-7"] {
        let mut original = event(9);
        sign(&ring, key, &mut original).unwrap();
        let mut tampered_versions = Vec::new();
        for field in original.as_object().unwrap().keys().filter(|k| *k != "sig") {
            let mut t = original.clone();
            t[field] = match &original[field] {
                Value::String(s) => json!(format!("{s}x")),
                Value::Number(n) => json!(n.as_u64().unwrap() + 1),
                Value::Object(_) => json!({}),
                other => panic!("unexpected {other}"),
            };
            tampered_versions.push(t);
            let mut removed = original.clone();
            removed.as_object_mut().unwrap().remove(field);
            tampered_versions.push(removed);
        }
        let mut nested = original.clone();
        nested["payload"]["late_us"] = json!(1278);
        tampered_versions.push(nested);
        let mut added = original.clone();
        added["extra"] = json!(true);
        tampered_versions.push(added);
        let mut null_to_false = original.clone();
        null_to_false["payload"]["early_ms"] = json!(false);
        tampered_versions.push(null_to_false);
        for t in tampered_versions {
            assert!(
                matches!(verify(&ring, &t), Err(VerifyError::Mismatch { .. })),
                "{key}: {t}"
            );
        }
    }
}

#[test]
fn verify_errors_are_distinct() {
    let ring = ring();
    let mut msg = event(1);
    sign(&ring, "orch", &mut msg).unwrap();
    let with_sig = |sig: Value| {
        let mut m = msg.clone();
        m["sig"] = sig;
        verify(&ring, &m).unwrap_err()
    };
    let value = msg["sig"]["value"].clone();
    let cases = [
        (verify(&ring, &event(1)).unwrap_err(), "no_signature"),
        (verify(&ring, &json!([1])).unwrap_err(), "not_an_object"),
        (with_sig(json!("abc")), "malformed_signature"),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "orch"})),
            "malformed_signature",
        ),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "orch", "value": value, "note": 1})),
            "malformed_signature",
        ),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "nobody", "value": value})),
            "unknown_key",
        ),
        (
            with_sig(json!({"alg": "ed25519", "key_id": "orch", "value": value})),
            "wrong_algorithm",
        ),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "dealer-7", "value": value})),
            "wrong_algorithm",
        ),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "orch", "value": "%%%"})),
            "bad_base64",
        ),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "orch", "value": "AAAA"})),
            "mismatch",
        ),
        (
            with_sig(json!({"alg": "hmac-sha256", "key_id": "super-2", "value": value})),
            "mismatch",
        ),
        (
            with_sig(json!({"alg": "ed25519", "key_id": "dealer-7", "value": value})),
            "mismatch",
        ),
    ];
    for (err, reason) in cases {
        assert_eq!(err.reason(), reason, "{err}");
    }
}

// ----- key directory -------------------------------------------------------------------------

#[test]
fn load_reads_every_kind_of_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("k1.hmac"), format!("{HMAC_HEX}\n")).unwrap();
    std::fs::write(
        d.join("k2.hmac"),
        "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj\n",
    )
    .unwrap();
    std::fs::write(d.join("ed.key-1.ed25519"), &*pem(1).private_pem).unwrap();
    std::fs::write(d.join("ed.key-1.ed25519.pub"), &pem(1).public_pem).unwrap();
    std::fs::write(d.join("peer_2.ed25519.pub"), &pem(2).public_pem).unwrap();
    std::fs::write(d.join(".k3.hmac.tmp"), "half-written").unwrap();
    std::fs::create_dir(d.join("old")).unwrap();
    let ring = KeyRing::load(d).unwrap();
    assert_eq!(ring.key_ids(), ["ed.key-1", "k1", "k2", "peer_2"]);
    assert_eq!(ring.algorithm("k1"), Some(Algorithm::HmacSha256));
    assert_eq!(ring.algorithm("peer_2"), Some(Algorithm::Ed25519));
    assert!(ring.can_sign("ed.key-1") && !ring.can_sign("peer_2"));
    let debug = format!("{ring:?}");
    assert!(!debug.contains(&HMAC_HEX[..8]), "{debug}");
}

#[test]
fn load_reports_every_bad_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("good.hmac"), HMAC_HEX).unwrap();
    std::fs::write(d.join("short.hmac"), "00112233").unwrap();
    std::fs::write(d.join("bad id!.hmac"), HMAC_HEX).unwrap();
    std::fs::write(d.join("notes.txt"), "hello").unwrap();
    std::fs::write(d.join("pub.ed25519"), &pem(1).public_pem).unwrap();
    std::fs::write(d.join("priv.ed25519.pub"), &*pem(1).private_pem).unwrap();
    std::fs::write(
        d.join("garbage.ed25519"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(d.join("pair.ed25519"), &*pem(3).private_pem).unwrap();
    std::fs::write(d.join("pair.ed25519.pub"), &pem(4).public_pem).unwrap();
    std::fs::write(d.join("both.hmac"), HMAC_HEX).unwrap();
    std::fs::write(d.join("both.ed25519.pub"), &pem(5).public_pem).unwrap();
    let err = KeyRing::load(d).unwrap_err();
    let SigningError::BadKeyFiles { problems, .. } = &err else {
        panic!("{err}");
    };
    let text = err.to_string();
    assert_eq!(problems.len(), 8, "{text}");
    for needle in [
        "short.hmac: the secret is 4 bytes; at least 32",
        "bad id!.hmac: key id",
        "notes.txt: unexpected file",
        "pub.ed25519: this is a public key",
        "priv.ed25519.pub: this file holds a PRIVATE key",
        "garbage.ed25519: not an Ed25519 private key",
        "pair.ed25519.pub is not the public key of pair.ed25519",
        "\"both\" has both an HMAC and an Ed25519 key",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert!(!text.contains(HMAC_HEX), "key material in an error");

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        KeyRing::load(empty.path()),
        Err(SigningError::NoKeys { .. })
    ));
    let missing = KeyRing::load(empty.path().join("nope")).unwrap_err();
    assert!(
        matches!(missing, SigningError::Io { .. }) && missing.to_string().contains("croupier user")
    );
}

#[test]
fn rotation_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("k1.hmac"), HMAC_HEX).unwrap();
    let mut ring = KeyRing::load(d).unwrap();
    assert!(!ring.reload_if_changed().unwrap(), "nothing changed yet");

    let mut old = event(1);
    sign(&ring, "k1", &mut old).unwrap();

    // Rotate: add k2 (written as a dot file, then renamed: the way to install a key atomically).
    std::fs::write(d.join(".k2.tmp"), &*generate_hmac_secret_hex()).unwrap();
    std::fs::rename(d.join(".k2.tmp"), d.join("k2.hmac")).unwrap();
    std::fs::write(d.join("k3.ed25519"), &*pem(3).private_pem).unwrap();
    assert!(ring.reload_if_changed().unwrap());
    assert_eq!(ring.key_ids(), ["k1", "k2", "k3"]);
    let mut new = event(2);
    sign(&ring, "k2", &mut new).unwrap();
    let mut new_ed = event(3);
    sign(&ring, "k3", &mut new_ed).unwrap();
    for msg in [&old, &new, &new_ed] {
        assert!(
            verify(&ring, msg).is_ok(),
            "old and new signatures verify while both files remain"
        );
    }
    assert!(!ring.reload_if_changed().unwrap());

    // A broken new file keeps the old ring and says why, once.
    std::fs::write(d.join("k4.hmac"), "too short").unwrap();
    let err = ring.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("k4.hmac"), "{err}");
    assert!(ring.stale_reason().is_some_and(|r| r.contains("k4.hmac")));
    assert!(
        !ring.reload_if_changed().unwrap(),
        "the same broken state is not re-reported"
    );
    assert!(verify(&ring, &new).is_ok() && ring.can_sign("k2"));
    std::fs::remove_file(d.join("k4.hmac")).unwrap();
    assert!(
        !ring.reload_if_changed().unwrap(),
        "back to the loaded state"
    );
    assert_eq!(ring.stale_reason(), None);

    // Retire k1: its signatures stop verifying once its file is gone.
    std::fs::remove_file(d.join("k1.hmac")).unwrap();
    assert!(ring.reload_if_changed().unwrap());
    assert!(matches!(
        verify(&ring, &old),
        Err(VerifyError::UnknownKey { .. })
    ));
    assert!(verify(&ring, &new).is_ok());

    // Replacing a key's file atomically with another secret is noticed too.
    std::fs::write(d.join(".k2.tmp"), &*generate_hmac_secret_hex()).unwrap();
    std::fs::rename(d.join(".k2.tmp"), d.join("k2.hmac")).unwrap();
    assert!(ring.reload_if_changed().unwrap());
    assert!(matches!(
        verify(&ring, &new),
        Err(VerifyError::Mismatch { .. })
    ));

    // The directory vanishing (an unmounted volume) is reported once; the keys stay.
    let keys_before = ring.key_ids().len();
    std::fs::remove_dir_all(d).unwrap();
    assert!(matches!(
        ring.reload_if_changed(),
        Err(SigningError::Io { .. })
    ));
    assert!(!ring.reload_if_changed().unwrap());
    assert!(ring.stale_reason().is_some());
    assert_eq!(ring.key_ids().len(), keys_before);
}

// ----- commands ------------------------------------------------------------------------------

#[test]
fn a_good_command_passes_and_carries_what_the_daemon_needs() {
    let ring = ring();
    let mut g = guard();
    let msg = command(
        CommandKind::RoundVoid,
        json!({"reason": "wheel jammed"}),
        t0(),
    );
    let id = msg["command_id"].as_str().unwrap().to_owned();
    let cmd = fresh(
        &mut g,
        &ring,
        &signed(&ring, "orch", msg),
        t0() + Duration::from_secs(2),
    );
    assert_eq!(cmd.command_id, id);
    assert_eq!(cmd.kind, CommandKind::RoundVoid);
    assert_eq!(cmd.body, json!({"reason": "wheel jammed"}));
    assert_eq!(cmd.key_id, "orch");
    assert_eq!(cmd.issued_at, t0());
    assert!(g.remember_reply(&id, ok_reply(json!({"voided": true}))));
}

#[test]
fn every_command_type_is_accepted_with_its_body() {
    let ring = ring();
    let mut g = guard();
    let bodies = [
        (CommandKind::RoundOpen, json!({})),
        (CommandKind::RoundClose, json!({})),
        (CommandKind::RoundVoid, json!({"reason": "dealer error"})),
        (CommandKind::StateGet, json!({})),
        (CommandKind::Health, json!({})),
        (
            CommandKind::RoundSettled,
            json!({"round_id": "rl-01-20261121T142310Z-0007"}),
        ),
        (
            CommandKind::BlackjackDecision,
            json!({"box_no": 3, "decision": "double"}),
        ),
    ];
    for (kind, body) in bodies {
        let cmd = fresh(
            &mut g,
            &ring,
            &signed(&ring, "orch", command(kind, body, t0())),
            t0(),
        );
        assert_eq!(cmd.kind, kind);
    }
    let body =
        json!({"round_id": "r1", "person": "dealer-7", "role": "dealer", "result": {"number": 17}});
    let cmd = fresh(
        &mut g,
        &ring,
        &signed(
            &ring,
            "dealer-7",
            command(CommandKind::ResultManual, body, t0()),
        ),
        t0(),
    );
    assert_eq!(cmd.key_id, "dealer-7");
}

#[test]
fn every_refusal_reason() {
    let ring = ring();
    let now = t0();
    let ok_msg = || command(CommandKind::RoundOpen, json!({}), now);
    let mut g = guard();
    let expect = |g: &mut CommandGuard, raw: Vec<u8>, reason: RefusalReason, needle: &str| {
        let r = refusal(g, &ring, &raw, now);
        assert_eq!(r.reason, reason, "{r}");
        assert!(
            r.detail.contains(needle),
            "{needle:?} not in {:?}",
            r.detail
        );
        let reply = r.to_reply();
        assert_eq!(reply["status"], "error");
        assert_eq!(reply["reason"], reason.as_str());
        assert!(reply["data"]["detail"].is_string() && reply["data"]["table_utc"].is_string());
        // The Serialize impl is the same reply.
        assert_eq!(serde_json::to_value(&r).unwrap(), reply);
    };

    // too_large
    let mut big = ok_msg();
    big["body"] = json!({"pad": "x".repeat(70_000)});
    expect(
        &mut g,
        signed(&ring, "orch", big),
        RefusalReason::TooLarge,
        "at most 65536",
    );
    // malformed: not JSON, not an object, missing or ill-typed fields, extra members
    expect(
        &mut g,
        b"{\"command_id\":".to_vec(),
        RefusalReason::Malformed,
        "JSON",
    );
    expect(
        &mut g,
        b"[1,2]".to_vec(),
        RefusalReason::Malformed,
        "object",
    );
    expect(
        &mut g,
        b"\xff\xfe".to_vec(),
        RefusalReason::Malformed,
        "JSON",
    );
    for field in ["command_id", "type", "table", "issued_at", "nonce", "body"] {
        let mut m = ok_msg();
        m.as_object_mut().unwrap().remove(field);
        expect(
            &mut g,
            signed(&ring, "orch", m),
            RefusalReason::Malformed,
            field,
        );
    }
    let mut m = ok_msg();
    m["nonce"] = json!("short");
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::Malformed,
        "nonce must be 16 to 128",
    );
    let mut m = ok_msg();
    m["command_id"] = json!("x".repeat(129));
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::Malformed,
        "command_id",
    );
    let mut m = ok_msg();
    m["issued_at"] = json!("yesterday");
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::Malformed,
        "RFC 3339",
    );
    let mut m = ok_msg();
    m["issued_at"] = json!(format_issued_at(now).replace('Z', "+02:00"));
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::Malformed,
        "UTC",
    );
    let mut m = ok_msg();
    m["priority"] = json!(1);
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::Malformed,
        "unknown member",
    );
    let mut m = ok_msg();
    m["body"] = json!([]);
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::Malformed,
        "body must be a JSON object",
    );
    // malformed bodies
    for (kind, body, needle) in [
        (
            CommandKind::RoundOpen,
            json!({"x": 1}),
            "body.x is not part",
        ),
        (CommandKind::RoundVoid, json!({}), "body.reason is missing"),
        (
            CommandKind::RoundVoid,
            json!({"reason": 5}),
            "body.reason must be",
        ),
        (
            CommandKind::RoundSettled,
            json!({"round_id": ""}),
            "body.round_id",
        ),
        (
            CommandKind::BlackjackDecision,
            json!({"box_no": 0, "decision": "hit"}),
            "box_no",
        ),
        (
            CommandKind::BlackjackDecision,
            json!({"box_no": 2, "decision": "surrender"}),
            "decision",
        ),
        (
            CommandKind::ResultManual,
            json!({"round_id": "r", "person": "orch", "role": "boss", "result": {}}),
            "role",
        ),
        (
            CommandKind::ResultManual,
            json!({"round_id": "r", "person": "orch", "role": "dealer", "result": 17}),
            "result",
        ),
    ] {
        expect(
            &mut g,
            signed(&ring, "orch", command(kind, body, now)),
            RefusalReason::Malformed,
            needle,
        );
    }
    // duplicate members (two parsers could read two different commands)
    let raw = signed(&ring, "orch", ok_msg());
    let mut dup = b"{\"type\":\"round.void\",".to_vec();
    dup.extend_from_slice(&raw[1..]);
    expect(&mut g, dup, RefusalReason::Malformed, "duplicate member");

    // bad_signature: unsigned, tampered, wrong algorithm, bad base64
    expect(
        &mut g,
        serde_json::to_vec(&ok_msg()).unwrap(),
        RefusalReason::BadSignature,
        "no_signature",
    );
    let mut m: Value = serde_json::from_slice(&signed(&ring, "orch", ok_msg())).unwrap();
    m["type"] = json!("round.close");
    expect(
        &mut g,
        serde_json::to_vec(&m).unwrap(),
        RefusalReason::BadSignature,
        "mismatch",
    );
    let mut m: Value = serde_json::from_slice(&signed(&ring, "orch", ok_msg())).unwrap();
    m["sig"]["alg"] = json!("ed25519");
    expect(
        &mut g,
        serde_json::to_vec(&m).unwrap(),
        RefusalReason::BadSignature,
        "wrong_algorithm",
    );
    let mut m: Value = serde_json::from_slice(&signed(&ring, "orch", ok_msg())).unwrap();
    m["sig"]["value"] = json!("not base64!");
    expect(
        &mut g,
        serde_json::to_vec(&m).unwrap(),
        RefusalReason::BadSignature,
        "bad_base64",
    );
    // unknown_key: a key the table does not hold
    let mut stranger = KeyRing::in_memory();
    stranger.insert_hmac("intruder", &[9; 32]).unwrap();
    expect(
        &mut g,
        signed(&stranger, "intruder", ok_msg()),
        RefusalReason::UnknownKey,
        "intruder",
    );
    // a key of the same id but other material is a bad signature, not an unknown key
    let mut forger = KeyRing::in_memory();
    forger.insert_hmac("orch", &[9; 32]).unwrap();
    expect(
        &mut g,
        signed(&forger, "orch", ok_msg()),
        RefusalReason::BadSignature,
        "mismatch",
    );
    // wrong_table
    let m = command_message(CommandKind::RoundOpen, "riga-1/rl-02", json!({}), now);
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::WrongTable,
        "rl-02",
    );
    // stale / future
    let m = command(
        CommandKind::RoundOpen,
        json!({}),
        now - Duration::from_secs(301),
    );
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::StaleTimestamp,
        "301 s behind",
    );
    let m = command(
        CommandKind::RoundOpen,
        json!({}),
        now + Duration::from_secs(301),
    );
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::FutureTimestamp,
        "301 s ahead",
    );
    // unknown_type
    let mut m = ok_msg();
    m["type"] = json!("table.shutdown");
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::UnknownType,
        "table.shutdown",
    );
    // signer_mismatch: the orchestrator's key cannot approve on behalf of a dealer
    let body =
        json!({"round_id": "r1", "person": "dealer-7", "role": "dealer", "result": {"number": 17}});
    let m = command(CommandKind::ResultManual, body, now);
    expect(
        &mut g,
        signed(&ring, "orch", m),
        RefusalReason::SignerMismatch,
        "own key",
    );

    // replayed_nonce, command_id_reused, in_progress need a command accepted first.
    let first = ok_msg();
    let first_raw = signed(&ring, "orch", first.clone());
    fresh(&mut g, &ring, &first_raw, now);
    let mut same_nonce = ok_msg();
    same_nonce["nonce"] = first["nonce"].clone();
    expect(
        &mut g,
        signed(&ring, "orch", same_nonce),
        RefusalReason::ReplayedNonce,
        "nonce",
    );
    expect(
        &mut g,
        first_raw.clone(),
        RefusalReason::InProgress,
        "still being executed",
    );
    let mut reused = command(CommandKind::RoundClose, json!({}), now);
    reused["command_id"] = first["command_id"].clone();
    expect(
        &mut g,
        signed(&ring, "orch", reused),
        RefusalReason::CommandIdReused,
        "different command",
    );

    assert_eq!(RefusalReason::ALL.len(), 12);
}

#[test]
fn idempotent_by_command_id() {
    let ring = ring();
    let mut g = guard();
    let msg = command(CommandKind::RoundClose, json!({}), t0());
    let id = msg["command_id"].as_str().unwrap().to_owned();
    let raw = signed(&ring, "orch", msg.clone());
    fresh(&mut g, &ring, &raw, t0());
    let reply = ok_reply(json!({"round_id": "r1", "closed_utc": "…"}));
    assert!(g.remember_reply(&id, reply.clone()));

    // The very same bytes again (a retry): the remembered reply, nothing executed.
    let later = t0() + Duration::from_secs(10);
    assert_eq!(
        g.check(&ring, &raw, later).unwrap(),
        Checked::Repeat {
            command_id: id.clone(),
            reply: reply.clone()
        }
    );
    // A retry re-signed with a fresh nonce and time but the same body: the same.
    let mut resent = command(CommandKind::RoundClose, json!({}), later);
    resent["command_id"] = json!(id);
    let resent_raw = signed(&ring, "orch", resent);
    assert!(matches!(
        g.check(&ring, &resent_raw, later),
        Ok(Checked::Repeat { .. })
    ));
    // ... and its nonce is burnt like any other.
    assert!(matches!(
        g.check(&ring, &resent_raw, later),
        Ok(Checked::Repeat { .. })
    ));
    // Same id, another body: refused.
    let mut other = command(CommandKind::RoundVoid, json!({"reason": "x"}), later);
    other["command_id"] = json!(id);
    let r = refusal(&mut g, &ring, &signed(&ring, "orch", other), later);
    assert_eq!(r.reason, RefusalReason::CommandIdReused);
    assert_eq!(r.command_id.as_deref(), Some(id.as_str()));
    // Error replies are remembered like ok ones.
    let msg = command(CommandKind::RoundOpen, json!({}), later);
    let id2 = msg["command_id"].as_str().unwrap().to_owned();
    let raw2 = signed(&ring, "orch", msg);
    fresh(&mut g, &ring, &raw2, later);
    g.remember_reply(
        &id2,
        error_reply("round_in_progress", "a round is already open"),
    );
    match g.check(&ring, &raw2, later).unwrap() {
        Checked::Repeat { reply, .. } => assert_eq!(reply["reason"], "round_in_progress"),
        other => panic!("{other:?}"),
    }
    assert!(!g.remember_reply("never-seen", ok_reply(json!(null))));

    // A command that could not be carried out at all can be abandoned: a retry then runs.
    let msg = command(CommandKind::RoundOpen, json!({}), later);
    let id3 = msg["command_id"].as_str().unwrap().to_owned();
    fresh(&mut g, &ring, &signed(&ring, "orch", msg.clone()), later);
    assert!(g.abandon(&id3));
    let mut retry = command(CommandKind::RoundOpen, json!({}), later);
    retry["command_id"] = json!(id3);
    fresh(&mut g, &ring, &signed(&ring, "orch", retry), later);
    // The first attempt's bytes, arriving now, meet the retry still running.
    let r = refusal(&mut g, &ring, &signed(&ring, "orch", msg), later);
    assert_eq!(r.reason, RefusalReason::InProgress);
    // A command with a reply cannot be abandoned: its reply is final.
    assert!(!g.abandon(&id2));
}

#[test]
fn nonce_replay_after_the_command_id_changes() {
    let ring = ring();
    let mut g = guard();
    let first = command(CommandKind::Health, json!({}), t0());
    fresh(&mut g, &ring, &signed(&ring, "orch", first.clone()), t0());
    let mut second = command(CommandKind::Health, json!({}), t0());
    second["nonce"] = first["nonce"].clone();
    let r = refusal(&mut g, &ring, &signed(&ring, "orch", second), t0());
    assert_eq!(r.reason, RefusalReason::ReplayedNonce);
    // A captured command replayed by an attacker later, within the window: never executed.
    let captured = signed(
        &ring,
        "orch",
        command(CommandKind::RoundOpen, json!({}), t0()),
    );
    let cmd = fresh(&mut g, &ring, &captured, t0());
    g.remember_reply(&cmd.command_id, ok_reply(json!({})));
    assert!(matches!(
        g.check(&ring, &captured, t0() + Duration::from_secs(200)),
        Ok(Checked::Repeat { .. })
    ));
    // ... and refused outright once outside it.
    let r = refusal(&mut g, &ring, &captured, t0() + Duration::from_secs(301));
    assert_eq!(r.reason, RefusalReason::StaleTimestamp);
}

#[test]
fn skew_boundaries_are_inclusive_at_300_seconds() {
    let ring = ring();
    let mut g = guard();
    let at = t0();
    let cases = [
        (Duration::from_secs(300), true, None),
        (
            Duration::from_millis(300_001),
            false,
            Some(RefusalReason::StaleTimestamp),
        ),
    ];
    for (age, ok, reason) in cases {
        let raw = signed(&ring, "orch", command(CommandKind::Health, json!({}), at));
        let result = g.check(&ring, &raw, at + age);
        assert_eq!(result.is_ok(), ok, "{age:?}: {result:?}");
        if let Some(reason) = reason {
            assert_eq!(result.unwrap_err().reason, reason);
        }
        let raw = signed(
            &ring,
            "orch",
            command(CommandKind::Health, json!({}), at + age),
        );
        let result = g.check(&ring, &raw, at);
        assert_eq!(result.is_ok(), ok, "-{age:?}: {result:?}");
        if reason.is_some() {
            assert_eq!(result.unwrap_err().reason, RefusalReason::FutureTimestamp);
        }
    }
    // The skew is configurable.
    let mut config = GuardConfig::new("riga-1", "rl-01");
    config.max_skew = Duration::from_secs(30);
    let mut tight = CommandGuard::new(config);
    let raw = signed(&ring, "orch", command(CommandKind::Health, json!({}), at));
    assert_eq!(
        tight
            .check(&ring, &raw, at + Duration::from_secs(31))
            .unwrap_err()
            .reason,
        RefusalReason::StaleTimestamp
    );
}

#[test]
fn four_eyes_needs_two_people_each_signing_with_their_own_key() {
    let ring = ring();
    let mut g = guard();
    let approval = |person: &str, role: &str| {
        command(
            CommandKind::ResultManual,
            json!({"round_id": "r1", "person": person, "role": role, "result": {"number": 17}}),
            t0(),
        )
    };
    let dealer = fresh(
        &mut g,
        &ring,
        &signed(&ring, "dealer-7", approval("dealer-7", "dealer")),
        t0(),
    );
    let supervisor = fresh(
        &mut g,
        &ring,
        &signed(&ring, "super-2", approval("super-2", "supervisor")),
        t0(),
    );
    assert_ne!(dealer.key_id, supervisor.key_id);
    assert_eq!(supervisor.body["person"], "super-2");
    // The dealer cannot sign the supervisor's approval.
    let r = refusal(
        &mut g,
        &ring,
        &signed(&ring, "dealer-7", approval("super-2", "supervisor")),
        t0(),
    );
    assert_eq!(r.reason, RefusalReason::SignerMismatch);
}

#[test]
fn hostile_input_is_refused_without_panic() {
    let ring = ring();
    let mut g = guard();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = refusal(&mut g, &ring, deep.as_bytes(), t0());
    assert_eq!(r.reason, RefusalReason::Malformed);
    assert!(r.detail.contains("nested deeper"), "{}", r.detail);
    let deep_body = format!(
        r#"{{"command_id":"c1","type":"round.open","table":"{TABLE}","issued_at":"2026-11-21T14:00:00Z","nonce":"0123456789abcdef","body":{}{}}}"#,
        "{\"a\":".repeat(40),
        "1".to_owned() + &"}".repeat(40)
    );
    assert_eq!(
        refusal(&mut g, &ring, deep_body.as_bytes(), t0()).reason,
        RefusalReason::Malformed
    );
    let huge = vec![b' '; 10 * 1024 * 1024];
    assert_eq!(
        refusal(&mut g, &ring, &huge, t0()).reason,
        RefusalReason::TooLarge
    );
    for raw in [
        &b""[..],
        b"null",
        b"\"round.open\"",
        b"{}",
        b"{\"command_id\":null}",
        b"{\"command_id\":\"\xe2\x80\xae\"}",
        b"{\"command_id\":\"a\",\"issued_at\":\"9999-12-31T23:59:60Z\"}",
        b"{\"n\":1e999}",
        b"{\"s\":\"\\ud800\"}",
    ] {
        assert!(g.check(&ring, raw, t0()).is_err());
    }
    // A far-future or far-past issued_at is a timestamp refusal, not an overflow.
    for at in ["9999-12-31T23:59:59.999999999Z", "0000-01-01T00:00:00Z"] {
        let mut m = command(CommandKind::Health, json!({}), t0());
        m["issued_at"] = json!(at);
        let r = refusal(&mut g, &ring, &signed(&ring, "orch", m), t0());
        assert!(
            matches!(
                r.reason,
                RefusalReason::FutureTimestamp | RefusalReason::StaleTimestamp
            ),
            "{r}"
        );
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_pass(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let ring = ring();
            let mut g = guard();
            prop_assert!(g.check(&ring, &raw, t0()).is_err());
        }

        #[test]
        fn any_changed_byte_of_a_signed_command_is_refused(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let ring = ring();
            let mut g = guard();
            let mut raw = signed(&ring, "orch", command(CommandKind::RoundVoid, json!({"reason": "wheel jammed"}), t0()));
            let i = at.index(raw.len());
            prop_assume!(raw[i] != byte);
            raw[i] = byte;
            prop_assert!(g.check(&ring, &raw, t0()).is_err());
        }
    }
}

// ----- the stream verifier -------------------------------------------------------------------

fn jsonl(ring: &KeyRing, seqs: &[u64]) -> Vec<String> {
    seqs.iter()
        .map(|&seq| {
            let mut e = event(seq);
            sign(ring, "orch", &mut e).unwrap();
            serde_json::to_string(&e).unwrap()
        })
        .collect()
}

#[test]
fn verify_stream_clean_capture() {
    let ring = ring();
    let mut lines = jsonl(&ring, &[5, 6, 7, 8]);
    lines.insert(2, String::new());
    let report = verify_stream(&ring, lines.join("\n").as_bytes());
    assert!(report.is_clean(), "{report}");
    assert_eq!((report.lines, report.events, report.verified), (5, 4, 4));
    assert_eq!(
        report.streams.get("riga-1/rl-01"),
        Some(&SeqRange {
            first: 5,
            last: 8,
            events: 4
        })
    );
    assert!(report.to_string().ends_with("OK"));
}

#[test]
fn verify_stream_finds_every_problem_with_its_line() {
    let ring = ring();
    let mut lines = jsonl(&ring, &[1, 2, 4, 3]);
    lines.push(lines[0].clone()); // line 5: a redelivered duplicate
    let mut forged: Value = serde_json::from_str(&jsonl(&ring, &[5])[0]).unwrap();
    forged["payload"]["late_us"] = json!(0);
    lines.push(forged.to_string()); // line 6: tampered
    lines.push("{not json".into()); // line 7
    let mut unsigned = event(6);
    unsigned["event_id"] = json!("unsigned-6");
    lines.push(unsigned.to_string()); // line 8
    let mut conflicting = event(7);
    conflicting["event_id"] = event(1)["event_id"].clone();
    sign(&ring, "orch", &mut conflicting).unwrap();
    lines.push(conflicting.to_string()); // line 9: same event_id as line 1, other content
    let report = verify_stream(&ring, lines.join("\n").as_bytes());
    let found: Vec<(u64, String)> = report
        .problems
        .iter()
        .map(|p| (p.line, p.problem.to_string()))
        .collect();
    let expect = [
        (3, "gap in riga-1/rl-01: expected seq 3, found 4"),
        (4, "out of order in riga-1/rl-01: seq 3 after 4"),
        (5, "event_id already seen on line 1"),
        (6, "signature: the signature does not match"),
        (7, "not a JSON object"),
        (8, "signature: the message has no `sig`"),
        (9, "event_id already seen on line 1 with different content"),
    ];
    assert_eq!(found.len(), expect.len(), "{report}");
    for ((line, text), (want_line, want)) in found.iter().zip(expect) {
        assert_eq!(*line, want_line, "{text}");
        assert!(
            text.starts_with(want),
            "line {line}: {text:?} should start with {want:?}"
        );
    }
    assert!(!report.is_clean());
    assert!(report.to_string().ends_with("FAILED"));

    // A subscriber's capture may repeat events (QoS 1): allowed when asked for.
    let mut capture = jsonl(&ring, &[1, 2, 3]);
    capture.insert(2, capture[1].clone());
    let options = StreamOptions {
        allow_redelivery: true,
        ..StreamOptions::default()
    };
    let report = verify_stream_with(&ring, capture.join("\n").as_bytes(), &options);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.redelivered, 1);
}

#[test]
fn verify_stream_tracks_tables_separately_and_bounds_lines() {
    let ring = ring();
    let mut lines = Vec::new();
    for seq in 1..=3u64 {
        for table in ["rl-01", "bj-02"] {
            let mut e = event(seq);
            e["table"] = json!(table);
            e["event_id"] = json!(format!("{table}-{seq}"));
            sign(&ring, "dealer-7", &mut e).unwrap();
            lines.push(e.to_string());
        }
    }
    lines.push("x".repeat(5000));
    let options = StreamOptions {
        max_line_bytes: 4096,
        ..StreamOptions::default()
    };
    let report = verify_stream_with(&ring, lines.join("\r\n").as_bytes(), &options);
    assert_eq!(report.streams.len(), 2);
    assert_eq!(report.problem_count, 1, "{report}");
    assert_eq!(
        report.problems[0].problem,
        StreamProblem::TooLong { limit: 4096 }
    );
}

// ----- interoperability with Python ----------------------------------------------------------

const PYTHON: &str = "/usr/bin/python3";

fn python(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(PYTHON)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn python_hmac_matches_on_an_ascii_message() {
    if !Path::new(PYTHON).exists() {
        eprintln!("skipped: no {PYTHON}");
        return;
    }
    let ring = ring();
    let mut msg = event(42);
    sign(&ring, "orch", &mut msg).unwrap();
    let script = r#"
import base64, hashlib, hmac, json, sys
secret = bytes.fromhex(sys.argv[1])
msg = json.loads(sys.stdin.read())
sig = msg.pop("sig")
data = json.dumps(msg, sort_keys=True, separators=(",", ":")).encode()
print(base64.b64encode(hmac.new(secret, data, hashlib.sha256).digest()).decode())
"#;
    let out = python(&["-c", script, HMAC_HEX], &msg.to_string());
    assert_eq!(out.trim(), msg["sig"]["value"].as_str().unwrap());
}

/// The snippet in docs/signing.md, run as documented, on ASCII and non-ASCII events.
#[test]
fn documented_python_verifier_works() {
    if !Path::new(PYTHON).exists() {
        eprintln!("skipped: no {PYTHON}");
        return;
    }
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/signing.md"))
            .unwrap();
    let start = doc
        .find("```python\n")
        .expect("a python block in docs/signing.md")
        + "```python\n".len();
    let snippet = &doc[start..start + doc[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("verify_hmac.py"), snippet).unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("orch.hmac"), format!("{HMAC_HEX}\n")).unwrap();
    std::fs::write(
        keys.join("k2.hmac"),
        "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj\n",
    )
    .unwrap();
    let ring = KeyRing::load(&keys).unwrap();

    let mut ascii = event(1);
    sign(&ring, "orch", &mut ascii).unwrap();
    let mut unicode = event(2);
    unicode["payload"]["dealer"] = json!("Zoë Ødegård — €5 😀");
    unicode["payload"]["note"] = json!("tab\there \"quoted\" \u{1}");
    sign(&ring, "k2", &mut unicode).unwrap();
    let mut tampered = event(3);
    sign(&ring, "orch", &mut tampered).unwrap();
    tampered["seq"] = json!(4);
    let input = format!("{ascii}\n{unicode}\n\n{tampered}\n");
    let out = python(
        &[
            dir.path().join("verify_hmac.py").to_str().unwrap(),
            keys.to_str().unwrap(),
        ],
        &input,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["1 ok", "2 ok", "4 BAD SIGNATURE"], "{out}");
}
