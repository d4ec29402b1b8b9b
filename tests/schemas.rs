//! The published JSON Schemas (`schemas/v1/`) against the messages the daemon really makes.
//!
//! - Every schema is a valid draft 2020-12 document with its `$id`, a title and a description,
//!   and every `$ref` points at something that exists.
//! - Real events: whole rounds of roulette, baccarat and blackjack (and four-eyes results,
//!   voids, recovery, device changes, alerts) driven through `croupier::engine` with made-up
//!   instants, stamped into envelopes by `croupier::events::Stamper` at every timecode rate,
//!   serialised with serde_json, and validated one by one, with the state snapshot after every
//!   input. A property test does the same for random input sequences.
//! - Status, telemetry and state samples built from the real structs; commands and replies.
//! - Wrong messages (seq 0, a bad timecode, an unknown source, a payload missing a field…) fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/schema.rs"]
mod schema;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use croupier::clock::format_utc;
use croupier::config::Game;
use croupier::engine::{
    blackjack, recovery, roulette, Approval, At, Command, CrossCheck, Engine, EngineConfig, Input,
    Output, Role, Source, Witness,
};
use croupier::events::{ClockStamp, Envelope, Stamper};
use croupier::health::{Health, State};
use croupier::signing::{self, Checked, CommandGuard, CommandKind, GuardConfig, KeyRing};
use croupier::timecode::TimecodeRate;
use croupier_drivers::model::{CardEvent, Observation};
use croupier_drivers::pedal::PedalEvent;
use croupier_drivers::wheel::{Direction, WarningFlags, WheelEvent, WheelState};
use serde_json::{json, Value};

use schema::{assert_valid, validate};

// ---- the schemas themselves ------------------------------------------------------------------

#[test]
fn every_schema_is_a_valid_draft_2020_12_document() {
    for name in schema::ALL {
        schema::meta_validate(name).unwrap_or_else(|e| panic!("{name}.schema.json: {e}"));
        let s = schema::load(name).expect("load");
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}: $schema"
        );
        assert_eq!(
            s["$id"],
            format!("{}{name}.schema.json", schema::BASE_URI),
            "{name}: $id"
        );
        for key in ["title", "description"] {
            assert!(
                s[key].as_str().is_some_and(|t| t.len() > 10),
                "{name}: {key} missing"
            );
        }
        schema::validator(name).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_folder_holds_exactly_the_listed_schemas() {
    let mut found: Vec<String> = std::fs::read_dir(schema::schema_dir())
        .expect("schemas/v1")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut listed: Vec<String> = schema::ALL
        .iter()
        .map(|n| format!("{n}.schema.json"))
        .collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "a schema file that no test validates, or a listed one missing"
    );
}

/// Every `$ref` names a schema of this folder and a JSON pointer that exists in it, so the
/// folder is self-contained for any validator (nothing to fetch).
#[test]
fn every_reference_resolves_inside_the_folder() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.push(x.as_str().expect("$ref is a string").to_owned());
                    } else {
                        refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut count = 0;
    for name in schema::ALL {
        let s = schema::load(name).expect("load");
        let mut found = Vec::new();
        refs(&s, &mut found);
        for r in found {
            let (file, pointer) = r.split_once('#').unwrap_or((&r, ""));
            let target = if file.is_empty() {
                s.clone()
            } else {
                let stem = file
                    .strip_suffix(".schema.json")
                    .unwrap_or_else(|| panic!("{name}: $ref {r} is not a sibling schema"));
                assert!(
                    schema::ALL.contains(&stem),
                    "{name}: $ref {r} names an unknown schema"
                );
                schema::load(stem).expect("load")
            };
            assert!(
                target.pointer(pointer).is_some(),
                "{name}: $ref {r} points at nothing"
            );
            count += 1;
        }
    }
    assert!(count > 20, "only {count} references found");
}

// ---- real events -----------------------------------------------------------------------------

const SEC: u64 = 1_000_000_000;
/// 2026-11-21T14:23:10Z.
const BASE_UTC_S: u64 = 1_795_270_990;

fn at(t: f64) -> At {
    let ns = (t * 1e9) as u64;
    At {
        utc: UNIX_EPOCH + Duration::from_secs(BASE_UTC_S) + Duration::from_nanos(ns),
        mono_ns: 5_000 * SEC + ns,
    }
}

fn config(game: Game) -> EngineConfig {
    EngineConfig {
        table_id: "rl-01".into(),
        game,
        bet_window: Duration::from_secs(15),
        early_close: true,
        wheel: roulette::WheelType::European,
        blackjack: blackjack::Rules::default(),
        crosscheck: CrossCheck::default(),
    }
}

fn pedal(t: f64) -> Input {
    Input::Device {
        device: "pedal".into(),
        source: Source::Pedal,
        at: at(t),
        observation: Observation::Pedal(PedalEvent::Press),
    }
}

fn wheel_flags(t: f64, state: WheelState, number: u8, flags: u8) -> Input {
    Input::Device {
        device: "wheel".into(),
        source: Source::Wheel,
        at: at(t),
        observation: Observation::Wheel(WheelEvent::Status {
            state,
            spin_count: 42,
            number,
            warnings: WarningFlags(flags),
            rotor_speed: 27,
            direction: Direction::Clockwise,
        }),
    }
}

fn wheel(t: f64, state: WheelState, number: u8) -> Input {
    wheel_flags(t, state, number, 0)
}

fn wheel_event(t: f64, event: WheelEvent) -> Input {
    Input::Device {
        device: "wheel".into(),
        source: Source::Wheel,
        at: at(t),
        observation: Observation::Wheel(event),
    }
}

fn shoe(t: f64, event: CardEvent) -> Input {
    Input::Device {
        device: "shoe".into(),
        source: Source::Shoe,
        at: at(t),
        observation: Observation::Card(event),
    }
}

fn card(t: f64, c: &str) -> Input {
    shoe(
        t,
        CardEvent::Drawn {
            card: c.parse().expect("card"),
            index: 0,
        },
    )
}

fn tick(t: f64) -> Input {
    Input::Tick { at: at(t) }
}

fn command(t: f64, command: Command) -> Input {
    Input::Command {
        source: Source::Command,
        at: at(t),
        command,
    }
}

fn approve(t: f64, person: &str, role: Role, result: Value) -> Input {
    command(
        t,
        Command::ManualResult(Approval {
            person: person.into(),
            role,
            result,
        }),
    )
}

fn decision(t: f64, box_no: u8, decision: blackjack::Decision) -> Input {
    command(t, Command::Decision { box_no, decision })
}

fn device_health(t: f64, device: &str, up: bool) -> Input {
    Input::DeviceHealth {
        device: device.into(),
        up,
        detail: if up {
            format!("reading /dev/croupier/{device}")
        } else {
            "read error: EIO; reopening".into()
        },
        at: at(t),
    }
}

fn pocket_seen(t: f64, number: u8) -> Input {
    Input::Witness {
        source: Source::Vision,
        at: at(t),
        witness: Witness::Pocket { number },
        detail: serde_json::json!({
            "confidence": 0.97, "timecode": "14:23:12:05", "capture_utc": "2026-11-21T14:23:12.200000Z",
            "camera": "wheel",
        }),
    }
}

fn calibration_loaded(t: f64) -> Input {
    Input::Calibration {
        at: at(t),
        detail: serde_json::json!({
            "camera": "cards", "path": "/etc/croupier/calibration/bc-01.json", "version": 3,
            "sha256": "ec7b52f785a39afa36240d26a3e070e52c6a48853cf13d80fd7475f36b42f3be",
            "updated_utc": "2026-11-21T10:00:00Z", "previous_sha256": null,
        }),
    }
}

fn card_seen(t: f64, c: &str) -> Input {
    Input::Witness {
        source: Source::Vision,
        at: at(t),
        witness: Witness::Card {
            card: c.parse().expect("card"),
            zone: Some("player".into()),
        },
        detail: serde_json::json!({
            "confidence": 0.991, "timecode": "14:23:12:05", "capture_utc": "2026-11-21T14:23:12.200000Z",
            "camera": "cards", "corners_px": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]],
        }),
    }
}

/// The retained `state` message as the uplink publishes it: the engine's snapshot plus every
/// device's health and the instant it was made.
fn state_message(engine: &Engine, devices: &[(&str, &str)], now: SystemTime) -> Value {
    let mut state = serde_json::to_value(engine.snapshot()).expect("snapshot");
    let devices: serde_json::Map<String, Value> = devices
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    state["devices"] = Value::Object(devices);
    state["utc"] = json!(format_utc(now));
    state
}

/// One simulated table: the engine, the stamper, the log of every event as published.
struct Table {
    engine: Engine,
    stamper: Stamper,
    clock: ClockStamp,
    next_seq: u64,
    history: Vec<Envelope>,
    published: Vec<Value>,
}

impl Table {
    fn new(cfg: EngineConfig, rate: TimecodeRate) -> Self {
        let table = cfg.table_id.clone();
        Self {
            engine: Engine::new(cfg),
            stamper: Stamper {
                studio: "riga-1".into(),
                table,
                rate,
            },
            clock: ClockStamp {
                synchronized: true,
                est_error_us: 120,
            },
            next_seq: 1,
            history: Vec::new(),
            published: Vec::new(),
        }
    }

    /// Stamps and validates what the engine said; returns the published events.
    fn publish(&mut self, outputs: Vec<Output>, now: At) -> Vec<Value> {
        let mut out = Vec::new();
        for output in outputs {
            let Output::Event(event) = output else {
                continue;
            };
            let env = self.stamper.envelope(self.next_seq, event, self.clock);
            self.next_seq += 1;
            // Through the text, as a subscriber gets it.
            let text = serde_json::to_string(&env).expect("serialise");
            let value: Value = serde_json::from_str(&text).expect("parse");
            assert_valid("event", &value);
            check_consistency(&value);
            self.history.push(env);
            out.push(value);
        }
        let state = state_message(
            &self.engine,
            &[("wheel", "up"), ("shoe", "degraded"), ("pedal", "down")],
            now.utc,
        );
        assert_valid("state", &state);
        self.published.extend(out.iter().cloned());
        out
    }

    fn feed(&mut self, inputs: Vec<Input>) -> Vec<Value> {
        let mut out = Vec::new();
        for input in inputs {
            let now = match &input {
                Input::Device { at, .. }
                | Input::DeviceHealth { at, .. }
                | Input::Witness { at, .. }
                | Input::Calibration { at, .. }
                | Input::Command { at, .. }
                | Input::Tick { at } => *at,
            };
            let outputs = self.engine.handle(input);
            out.extend(self.publish(outputs, now));
        }
        out
    }

    fn kinds(&self) -> BTreeSet<String> {
        self.published
            .iter()
            .map(|e| e["type"].as_str().expect("type").to_owned())
            .collect()
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

fn find<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} among {:?}", types(events)))
}

/// What a schema cannot say: fields that must agree with each other.
fn check_consistency(e: &Value) {
    let table = e["table"].as_str().expect("table");
    if let Some(id) = e["round_id"].as_str() {
        if e["type"] != "round.settled" {
            assert!(
                id.starts_with(&format!("{table}-")),
                "round id {id} of another table"
            );
        }
    }
    // The UUIDv7's time part is the event's own instant (milliseconds).
    let id_ms = u64::from_str_radix(
        &e["event_id"].as_str().expect("id").replace('-', "")[..12],
        16,
    )
    .expect("hex");
    let utc = time::OffsetDateTime::parse(
        e["utc"].as_str().expect("utc"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("utc parses");
    let utc_ms = u64::try_from(utc.unix_timestamp_nanos() / 1_000_000).expect("after 1970");
    assert_eq!(id_ms, utc_ms, "event_id time part vs utc: {e}");
    if e["type"] == "round.close" {
        assert_eq!(e["payload"]["closed_utc"], e["utc"], "{e}");
        assert_eq!(e["payload"]["closed_mono_ns"], e["mono_ns"], "{e}");
    }
}

#[test]
fn roulette_rounds_validate() {
    let mut t = Table::new(config(Game::Roulette), TimecodeRate::Fps25);
    let round = t.feed(vec![
        device_health(-5.0, "wheel", true),
        pedal(0.0),
        tick(15.003),
        wheel(16.0, WheelState::BallInRim, 0),
        wheel(20.0, WheelState::NoMoreBets, 0),
        wheel(26.0, WheelState::WinningNumber, 17),
    ]);
    assert_eq!(
        types(&round),
        [
            "device.up",
            "round.open",
            "round.close",
            "round.play",
            "wheel.result",
            "round.result"
        ]
    );
    assert_eq!(
        round[0]["round_id"],
        Value::Null,
        "a device change between rounds"
    );
    assert_eq!(
        find(&round, "round.result")["payload"]["result"]["colour"],
        "black"
    );
    let id = round[1]["round_id"].as_str().expect("id").to_owned();
    // Alerts: a second different number, then the settle acknowledgement and a bogus one.
    let more = t.feed(vec![
        wheel(27.0, WheelState::WinningNumber, 5),
        command(28.0, Command::Settled { round_id: id }),
        command(
            28.5,
            Command::Settled {
                round_id: "rl-01-20200101T000000Z-9999".into(),
            },
        ),
    ]);
    assert_eq!(
        types(&more),
        ["alert.second_result", "round.settled", "round.settled"]
    );
    assert_eq!(more[1]["payload"]["known_round"], true);
    assert_eq!(more[2]["payload"]["known_round"], false);
    // Zero, an early close by the pedal, a wheel warning and error, a number during betting.
    let zero = t.feed(vec![
        pedal(30.0),
        wheel(31.0, WheelState::WinningNumber, 3),
        pedal(35.0),
        wheel_event(
            36.0,
            WheelEvent::Warning {
                text: "ball removed".into(),
            },
        ),
        wheel_event(
            36.5,
            WheelEvent::Error {
                text: "sensor fault".into(),
            },
        ),
        wheel_flags(37.0, WheelState::BallInRim, 0, 1),
        wheel(45.0, WheelState::WinningNumber, 0),
    ]);
    let k = types(&zero);
    for kind in [
        "round.open",
        "alert.unexpected_result",
        "round.close",
        "alert.wheel_warning",
        "alert.wheel_error",
        "round.result",
    ] {
        assert!(k.contains(&kind), "{kind} missing from {k:?}");
    }
    assert_eq!(find(&zero, "round.close")["payload"]["early_ms"], 10_000);
    let result = &find(&zero, "round.result")["payload"]["result"];
    assert_eq!(result["colour"], "green");
    assert_eq!(result["dozen"], Value::Null);
    // A failed launch voids the round; a void with nothing to void alerts; so does a close.
    let void = t.feed(vec![
        pedal(50.0),
        tick(65.0),
        wheel_flags(66.0, WheelState::BallInRim, 0, 8),
        command(
            67.0,
            Command::Void {
                reason: "again".into(),
            },
        ),
        command(68.0, Command::Close),
        device_health(69.0, "wheel", false),
    ]);
    assert_eq!(
        types(&void),
        [
            "round.open",
            "round.close",
            "round.void",
            "alert.unexpected_void",
            "alert.unexpected_close",
            "device.down"
        ]
    );
    assert_eq!(void[2]["source"], "wheel");
}

#[test]
fn american_double_zero_validates() {
    let mut cfg = config(Game::Roulette);
    cfg.wheel = roulette::WheelType::American;
    let mut t = Table::new(cfg, TimecodeRate::Fps30);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        wheel(26.0, WheelState::WinningNumber, 37),
    ]);
    let result = &find(&out, "round.result")["payload"]["result"];
    assert_eq!(result["label"], "00");
    assert_eq!(find(&out, "wheel.result")["payload"]["number"], 37);
    // On a European wheel 37 is refused with an alert.
    let mut t = Table::new(config(Game::Roulette), TimecodeRate::Fps24);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        wheel(26.0, WheelState::WinningNumber, 37),
    ]);
    find(&out, "alert.invalid_result");
}

#[test]
fn baccarat_coups_validate_at_drop_frame_rates() {
    for rate in [TimecodeRate::Fps29_97Df, TimecodeRate::Fps59_94Df] {
        let mut t = Table::new(config(Game::Baccarat), rate);
        let out = t.feed(vec![
            card(2.0, "KH"),
            shoe(3.0, CardEvent::Burn { index: 1 }),
            pedal(4.0),
            card(5.0, "2C"),
            tick(19.0),
            card(20.0, "9H"),
            card(21.0, "KD"),
            card(22.0, "5C"),
            shoe(
                22.5,
                CardEvent::Unreadable {
                    text: "?? 7X".into(),
                },
            ),
            card(23.0, "3S"),
            card(24.0, "8D"),
            card(25.0, "2H"),
            pedal(26.0),
        ]);
        let k = types(&out);
        assert_eq!(k[0], "alert.unexpected_card", "{k:?}");
        assert_eq!(out[1]["type"], "card.burn");
        assert_eq!(out[1]["round_id"], Value::Null, "a burn between rounds");
        for kind in [
            "round.open",
            "round.close",
            "round.play",
            "card.dealt",
            "alert.unreadable_card",
            "round.result",
        ] {
            assert!(k.contains(&kind), "{kind} missing from {k:?}");
        }
        let result = &find(&out, "round.result")["payload"]["result"];
        assert_eq!(result["winner"], "banker");
        assert_eq!(result["player_cards"], json!(["9H", "5C", "8D"]));
        let dealt = find(&out, "card.dealt");
        assert_eq!(dealt["payload"]["side"], "player");
        assert!(
            dealt["timecode"]["smpte"]
                .as_str()
                .expect("smpte")
                .contains(';'),
            "drop-frame timecode: {dealt}"
        );
        assert_eq!(dealt["timecode"]["drop_frame"], true);
        assert_eq!(out.last().expect("last")["type"], "round.open");
    }
}

#[test]
fn blackjack_rounds_validate() {
    // European no-hole-card, one box: 16 stands, the dealer draws to 18.
    let mut cfg = config(Game::Blackjack);
    cfg.blackjack.boxes = 1;
    let mut t = Table::new(cfg, TimecodeRate::Fps23_976);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        card(16.0, "TH"),
        card(17.0, "6D"),
        card(18.0, "6C"),
        decision(19.0, 1, blackjack::Decision::Stand),
        card(20.0, "5S"),
        card(21.0, "7H"),
        decision(22.0, 1, blackjack::Decision::Hit),
    ]);
    let result = &find(&out, "round.result")["payload"]["result"];
    assert_eq!(result["dealer"]["value"]["total"], 18);
    assert_eq!(result["boxes"][0]["hands"][0]["result"], "lose");
    assert_eq!(find(&out, "round.decision")["payload"]["decision"], "stand");
    assert_eq!(
        out.last().expect("last")["type"],
        "alert.unexpected_decision"
    );

    // A hole-card game with two boxes, a split and a double.
    let mut cfg = config(Game::Blackjack);
    cfg.blackjack.boxes = 2;
    cfg.blackjack.hole_card = true;
    let mut t = Table::new(cfg, TimecodeRate::Fps50);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        card(16.0, "8H"), // box 1
        card(17.0, "9S"), // box 2
        card(18.0, "6D"), // dealer up
        card(19.0, "8S"), // box 1: a pair of eights
        card(20.0, "AS"), // box 2: soft 20
        card(21.0, "KD"), // dealer hole: 16
        decision(22.0, 1, blackjack::Decision::Split),
        card(23.0, "3C"), // box 1 hand 1: 11
        decision(24.0, 1, blackjack::Decision::Double),
        card(25.0, "TD"), // 21, doubled
        card(26.0, "9C"), // box 1 hand 2: 17
        decision(27.0, 1, blackjack::Decision::Stand),
        decision(28.0, 2, blackjack::Decision::Stand),
        card(29.0, "5H"), // dealer: 21
    ]);
    let dealt: Vec<&Value> = out.iter().filter(|e| e["type"] == "card.dealt").collect();
    let hole = dealt
        .iter()
        .find(|e| e["payload"]["hole"] == true)
        .unwrap_or_else(|| panic!("no hole card: {dealt:#?}"));
    assert_eq!(hole["payload"]["position"], json!({"zone": "dealer_hole"}));
    assert!(dealt
        .iter()
        .any(|e| e["payload"]["position"] == json!({"zone": "box", "box_no": 1, "hand": 2})));
    let result = &find(&out, "round.result")["payload"]["result"];
    assert_eq!(
        result["boxes"][0]["hands"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(result["boxes"][0]["hands"][0]["doubled"], true);
}

#[test]
fn four_eyes_results_and_mismatches_validate() {
    let mut cfg = config(Game::Roulette);
    cfg.crosscheck.wheel.insert(Source::Vision);
    let mut t = Table::new(cfg, TimecodeRate::Fps60);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        wheel(26.0, WheelState::WinningNumber, 17),
        pocket_seen(26.5, 34),
        pedal(27.0),
        approve(30.0, "dealer-7", Role::Dealer, json!({"number": 17})),
        approve(31.0, "dealer-7", Role::Supervisor, json!({"number": 17})),
        approve(31.5, "super-3", Role::Supervisor, json!({"number": 34})),
        approve(32.0, "super-2", Role::Supervisor, json!({"number": 17})),
        approve(33.0, "super-9", Role::Supervisor, json!({"number": 17})),
    ]);
    let k = types(&out);
    for kind in [
        "alert.mismatch",
        "alert.unexpected_pedal",
        "result.approval",
        "alert.duplicate_approval",
        "alert.approvals_disagree",
        "round.result",
        "alert.unexpected_manual_result",
    ] {
        assert!(k.contains(&kind), "{kind} missing from {k:?}");
    }
    let result = find(&out, "round.result");
    assert_eq!(result["source"], "manual");
    assert_eq!(
        result["payload"]["result"]["approved_by"],
        json!(["dealer-7", "super-2"])
    );
    let held = state_message(&t.engine, &[], at(40.0).utc);
    assert_eq!(held["last_result"]["result"]["manual"]["number"], 17);

    // A missing confirmation, then a void by command. Cards: a witness the shoe never dealt.
    let mut cfg = config(Game::Baccarat);
    cfg.crosscheck.cards.insert(Source::Vision);
    let mut t = Table::new(cfg, TimecodeRate::Fps25);
    let out = t.feed(vec![
        calibration_loaded(0.0),
        pedal(0.0),
        tick(15.0),
        card(16.0, "9H"),
        card(17.0, "KD"),
        card(18.0, "5C"),
        card(19.0, "3S"),
        card_seen(19.5, "9H"),
        card(20.0, "8D"),
        tick(24.0),
        command(
            40.0,
            Command::Void {
                reason: "camera fogged".into(),
            },
        ),
    ]);
    let mismatch = find(&out, "alert.mismatch");
    assert_eq!(mismatch["payload"]["reason"], "missing_confirmation");
    assert_eq!(
        find(&out, "round.void")["payload"]["phase"],
        "result_pending"
    );
    let mut t2 = Table::new(
        {
            let mut cfg = config(Game::Baccarat);
            cfg.crosscheck.cards.insert(Source::Vision);
            cfg
        },
        TimecodeRate::Fps25,
    );
    let out = t2.feed(vec![
        pedal(0.0),
        tick(15.0),
        card(16.0, "9H"),
        card_seen(16.5, "QS"),
        card(17.0, "KD"),
        card(18.0, "5C"),
        card(19.0, "3S"),
        card(20.0, "8D"),
    ]);
    assert_eq!(
        find(&out, "alert.mismatch")["payload"]["reason"],
        "mismatch"
    );
}

#[test]
fn recovery_events_validate() {
    // Killed during betting: the round is voided by rule.
    let mut t = Table::new(config(Game::Roulette), TimecodeRate::Fps25);
    t.feed(vec![pedal(0.0)]);
    let (mut engine, out) = recovery::recover(config(Game::Roulette), &t.history, at(100.0));
    std::mem::swap(&mut t.engine, &mut engine);
    let out = t.publish(out, at(100.0));
    assert_eq!(types(&out), ["round.void"]);
    assert_eq!(out[0]["source"], "system");

    // Killed mid-coup: the coup resumes.
    let mut t = Table::new(config(Game::Baccarat), TimecodeRate::Fps25);
    t.feed(vec![
        pedal(0.0),
        tick(15.0),
        card(16.0, "9H"),
        card(17.0, "KD"),
        card(18.0, "5C"),
    ]);
    let (mut engine, out) = recovery::recover(config(Game::Baccarat), &t.history, at(100.0));
    std::mem::swap(&mut t.engine, &mut engine);
    let out = t.publish(out, at(100.0));
    assert_eq!(types(&out), ["round.resumed"]);
    assert_eq!(out[0]["payload"]["cards_dealt"], 3);
    let rest = t.feed(vec![card(101.0, "3S"), card(102.0, "8D")]);
    find(&rest, "round.result");
}

/// Every documented event type came out of the scenarios above, each checked by its own
/// branch of the schema.
#[test]
fn the_scenarios_cover_every_event_type() {
    let schema = schema::load("event").expect("event schema");
    let documented: BTreeSet<String> = schema["properties"]["type"]["anyOf"][0]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|v| v.as_str().expect("str").to_owned())
        .collect();
    // Replay the scenarios' inputs in one table per game (cheap), collecting the types.
    let mut seen = BTreeSet::new();
    let mut cfg = config(Game::Roulette);
    cfg.crosscheck.wheel.insert(Source::Vision);
    let mut t = Table::new(cfg, TimecodeRate::Fps25);
    t.feed(vec![
        calibration_loaded(0.0),
        command(
            0.0,
            Command::Message {
                text: "Shuffle after this round".into(),
                level: "info".into(),
                ttl_s: 60,
            },
        ),
        device_health(0.0, "wheel", false),
        device_health(0.5, "wheel", true),
        card_seen(0.7, "AS"),
        pedal(1.0),
        tick(16.0),
        wheel(17.0, WheelState::BallInRim, 0),
        wheel(20.0, WheelState::WinningNumber, 17),
        pocket_seen(20.5, 17),
        command(
            21.0,
            Command::Settled {
                round_id: "rl-01-20261121T142311Z-0001".into(),
            },
        ),
        pedal(30.0),
        command(31.0, Command::Close),
        wheel(32.0, WheelState::WinningNumber, 8),
        pocket_seen(32.5, 9),
        approve(33.0, "d", Role::Dealer, json!({"number": 8})),
        approve(34.0, "s", Role::Supervisor, json!({"number": 8})),
        command(40.0, Command::Open),
        command(
            41.0,
            Command::Void {
                reason: "test".into(),
            },
        ),
    ]);
    seen.extend(t.kinds());
    let mut cfg = config(Game::Blackjack);
    cfg.blackjack.boxes = 1;
    let mut t = Table::new(cfg.clone(), TimecodeRate::Fps25);
    t.feed(vec![
        shoe(0.5, CardEvent::Burn { index: 1 }),
        pedal(1.0),
        tick(16.0),
        card(17.0, "TH"),
        card(18.0, "6D"),
        card(19.0, "6C"),
        decision(20.0, 1, blackjack::Decision::Hit),
    ]);
    seen.extend(t.kinds());
    let (_, out) = recovery::recover(cfg, &t.history, at(100.0));
    let out = t.publish(out, at(100.0));
    seen.extend(
        out.iter()
            .map(|e| e["type"].as_str().expect("type").to_owned()),
    );
    let missing: Vec<&String> = documented.difference(&seen).collect();
    assert!(missing.is_empty(), "never produced: {missing:?}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn make(kind: u8, value: u8, t: f64, last_round: Option<String>) -> Input {
        const CARDS: [&str; 13] = [
            "AS", "2H", "3D", "4C", "5S", "6H", "7D", "8C", "9S", "TH", "JD", "QC", "KS",
        ];
        let c = CARDS[usize::from(value) % CARDS.len()];
        let decisions = [
            blackjack::Decision::Hit,
            blackjack::Decision::Stand,
            blackjack::Decision::Double,
            blackjack::Decision::Split,
        ];
        match kind {
            0 | 1 => pedal(t),
            2 => tick(t),
            3 => wheel(t, WheelState::BallInRim, 0),
            4 => wheel(t, WheelState::WinningNumber, value % 40),
            5 => wheel_flags(t, WheelState::NoMoreBets, 0, value % 16),
            6..=8 => card(t, c),
            9 => shoe(t, CardEvent::Burn { index: 1 }),
            10 => shoe(
                t,
                CardEvent::Unreadable {
                    text: format!("garbage {value}"),
                },
            ),
            11 => command(
                t,
                Command::Void {
                    reason: "test".into(),
                },
            ),
            12 => command(t, Command::Close),
            13 => command(t, Command::Open),
            14 => pocket_seen(t, value % 37),
            15 => card_seen(t, c),
            16 => approve(
                t,
                &format!("p{}", value % 3),
                if value % 2 == 0 {
                    Role::Dealer
                } else {
                    Role::Supervisor
                },
                json!({ "number": value % 2 }),
            ),
            17 | 18 => decision(
                t,
                value % 9,
                decisions[usize::from(value) % decisions.len()],
            ),
            19 => device_health(t, "shoe", value % 2 == 0),
            20 => command(
                t,
                Command::Settled {
                    round_id: last_round.unwrap_or_else(|| "not-a-round".into()),
                },
            ),
            _ => wheel_event(
                t,
                WheelEvent::Warning {
                    text: format!("w{value}"),
                },
            ),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Whatever arrives, in whatever order, every event and every state is valid.
        #[test]
        fn every_event_of_any_input_sequence_validates(
            game in 0u8..3,
            vision in any::<bool>(),
            american in any::<bool>(),
            hole_card in any::<bool>(),
            inputs in prop::collection::vec((0u8..22, 0u8..60, 0u16..200), 1..150),
        ) {
            let game = [Game::Roulette, Game::Baccarat, Game::Blackjack][usize::from(game)];
            let mut cfg = config(game);
            if vision {
                cfg.crosscheck.wheel.insert(Source::Vision);
                cfg.crosscheck.cards.insert(Source::Vision);
            }
            if american {
                cfg.wheel = roulette::WheelType::American;
            }
            cfg.blackjack.hole_card = hole_card;
            cfg.blackjack.boxes = 2;
            let mut table = Table::new(cfg, TimecodeRate::Fps29_97Df);
            let mut t = 0.0f64;
            for (kind, value, dt) in inputs {
                t += f64::from(dt) / 10.0;
                let last = table.engine.snapshot().round_id;
                table.feed(vec![make(kind, value, t, last)]);
            }
            let seqs: Vec<u64> = table.published.iter().map(|e| e["seq"].as_u64().unwrap_or(0)).collect();
            prop_assert_eq!(seqs, (1..table.next_seq).collect::<Vec<_>>());
        }
    }
}

// ---- status, telemetry, state, commands ------------------------------------------------------

/// The `status` payload as `daemon/uplink.rs` builds it (`status_payload`).
fn status_message(state: &str, reason: Option<&str>, boot_count: u64) -> Value {
    json!({
        "state": state,
        "reason": reason,
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("CROUPIER_GIT_COMMIT").unwrap_or("unknown"),
        "boot_count": boot_count,
        "utc": format_utc(SystemTime::now()),
    })
}

#[test]
fn status_messages_validate() {
    assert_valid("status", &status_message("online", None, 1));
    assert_valid(
        "status",
        &status_message("offline", Some("connection lost"), 12),
    );
    assert_valid("status", &status_message("offline", Some("shutdown"), 12));
    assert!(validate("status", &status_message("online", Some("shutdown"), 1)).is_err());
    assert!(validate("status", &status_message("offline", None, 1)).is_err());
    assert!(validate("status", &status_message("away", None, 1)).is_err());
    assert!(validate("status", &status_message("online", None, 0)).is_err());
}

#[test]
fn telemetry_from_the_health_registry_validates() {
    let health = Health::new();
    assert_valid(
        "telemetry",
        &serde_json::to_value(health.snapshot()).expect("json"),
    );
    let wheel = health.register("wheel", "device");
    wheel.set(State::Up, "reading /dev/croupier/wheel at 9600 baud");
    wheel.add("bytes", 2310);
    wheel.add("frames", 105);
    wheel.fact("driver", "cammegh");
    wheel.fact("port", "/dev/croupier/wheel");
    let shoe = health.register("shoe", "device");
    shoe.failed("open /dev/croupier/shoe: no such file");
    health
        .register("uplink", "uplink")
        .set(State::Degraded, "buffering: broker unreachable");
    health.register("http", "http").set(State::Up, "listening");
    health.register("table", "table");
    let old = health.register("rfid", "device");
    old.set(State::Stopped, "removed by a reload");
    let telemetry = serde_json::to_value(health.snapshot()).expect("json");
    assert_valid("telemetry", &telemetry);
    assert!(telemetry["shoe"]["last_error"].is_string());

    let mut wrong = telemetry.clone();
    wrong["wheel"]["state"] = json!("sleeping");
    wrong["http"]["counters"]["x"] = json!(-1);
    let errors = validate("telemetry", &wrong).expect_err("wrong state");
    assert!(errors.contains("/wheel/state"), "{errors}");
    assert!(errors.contains("/http/counters/x"), "{errors}");
}

#[test]
fn state_snapshots_validate_in_every_phase() {
    let mut cfg = config(Game::Roulette);
    cfg.crosscheck.wheel.insert(Source::Vision);
    let mut engine = Engine::new(cfg);
    let mut phases = BTreeSet::new();
    let steps = vec![
        pedal(0.0),
        tick(15.0),
        wheel(16.0, WheelState::BallInRim, 0),
        wheel(26.0, WheelState::WinningNumber, 17),
        pocket_seen(26.5, 34),
        approve(30.0, "d", Role::Dealer, json!({"number": 17})),
        approve(31.0, "s", Role::Supervisor, json!({"number": 17})),
        command(
            32.0,
            Command::Settled {
                round_id: "rl-01-20261121T142310Z-0001".into(),
            },
        ),
    ];
    let state = state_message(&engine, &[], at(-1.0).utc);
    assert_valid("state", &state);
    phases.insert(state["phase"].as_str().expect("phase").to_owned());
    for input in steps {
        engine.handle(input);
        let state = state_message(
            &engine,
            &[("wheel", "up"), ("vision", "starting")],
            at(40.0).utc,
        );
        assert_valid("state", &state);
        phases.insert(state["phase"].as_str().expect("phase").to_owned());
    }
    assert_eq!(
        phases,
        [
            "closed",
            "idle",
            "open",
            "play",
            "result",
            "result_pending",
            "settled"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );

    // A deadline outside `open`, or a held round without a reason, is wrong.
    let mut wrong = state_message(&engine, &[], at(40.0).utc);
    wrong["deadline_mono_ns"] = json!(1);
    let errors = validate("state", &wrong).expect_err("deadline outside open");
    assert!(errors.contains("/deadline_mono_ns"), "{errors}");
    let mut wrong = state_message(&engine, &[("wheel", "on fire")], at(40.0).utc);
    wrong.as_object_mut().expect("object").remove("utc");
    let errors = validate("state", &wrong).expect_err("bad device state, no utc");
    assert!(errors.contains("/devices/wheel"), "{errors}");
    assert!(errors.contains("utc"), "{errors}");
}

/// The keys of the tests: `orch` (HMAC, the orchestrator), `dealer-7` (Ed25519), `super-2`
/// (HMAC), `table` (Ed25519, the table's event key).
fn ring() -> KeyRing {
    let mut ring = KeyRing::in_memory();
    ring.insert_hmac("orch", &[0x42; 32]).expect("hmac key");
    ring.insert_hmac("super-2", &[0x22; 32]).expect("hmac key");
    for (id, seed) in [("dealer-7", 7u8), ("table", 9u8)] {
        let pem = signing::ed25519_pem_from_seed(&[seed; 32]).expect("pem");
        ring.insert_ed25519_pem(id, &pem.private_pem)
            .expect("ed25519 key");
    }
    ring
}

const TABLE_ADDRESS: &str = "riga-1/rl-01";

/// A command exactly as an orchestrator tool built on `croupier::signing` sends it.
fn real_command(ring: &KeyRing, key: &str, kind: &str, body: Value, at: SystemTime) -> Value {
    let kind = CommandKind::from_name(kind).unwrap_or_else(|| panic!("{kind}"));
    let mut msg = signing::command_message(kind, TABLE_ADDRESS, body, at);
    signing::sign(ring, key, &mut msg).expect("sign");
    msg
}

#[test]
fn commands_the_guard_accepts_validate_and_its_replies_too() {
    let ring = ring();
    let now = SystemTime::now();
    let mut guard = CommandGuard::new(GuardConfig::new("riga-1", "rl-01"));
    let good = [
        real_command(&ring, "orch", "round.open", json!({}), now),
        real_command(&ring, "orch", "round.close", json!({}), now),
        real_command(
            &ring,
            "orch",
            "round.void",
            json!({"reason": "camera fogged"}),
            now,
        ),
        real_command(
            &ring,
            "dealer-7",
            "result.manual",
            json!({"round_id": "rl-01-20261121T142310Z-0007", "person": "dealer-7",
                   "role": "dealer", "result": {"number": 17}}),
            now,
        ),
        real_command(&ring, "orch", "state.get", json!({}), now),
        real_command(&ring, "orch", "health", json!({}), now),
        real_command(
            &ring,
            "orch",
            "round.settled",
            json!({"round_id": "rl-01-20261121T142310Z-0007"}),
            now,
        ),
        real_command(
            &ring,
            "orch",
            "blackjack.decision",
            json!({"box_no": 3, "decision": "double"}),
            now,
        ),
    ];
    for c in &good {
        assert_valid("command", c);
        let raw = serde_json::to_vec(c).expect("json");
        assert!(
            matches!(guard.check(&ring, &raw, now), Ok(Checked::Fresh(_))),
            "the guard refuses a command the schema accepts: {c}"
        );
    }

    // Malformed for the schema and for the guard alike.
    let mut refusals = Vec::new();
    type Breaker = Box<dyn Fn(&mut Value)>;
    let bad: [(&str, Breaker); 9] = [
        ("/body", Box::new(|c| c["body"] = json!({"bet_window": 10}))),
        ("/type", Box::new(|c| c["type"] = json!("table.explode"))),
        ("/nonce", Box::new(|c| c["nonce"] = json!("short"))),
        (
            "/issued_at",
            Box::new(|c| c["issued_at"] = json!("21/11/2026 14:23")),
        ),
        (
            "/issued_at",
            Box::new(|c| c["issued_at"] = json!("2026-11-21T15:23:12+01:00")),
        ),
        (
            "/command_id",
            Box::new(|c| c["command_id"] = json!("two words")),
        ),
        ("/", Box::new(|c| c["extra"] = json!(1))),
        (
            "/",
            Box::new(|c| {
                c.as_object_mut().expect("object").remove("table");
            }),
        ),
        (
            "/",
            Box::new(|c| {
                c.as_object_mut().expect("object").remove("sig");
            }),
        ),
    ];
    for (i, (path, breaks)) in bad.iter().enumerate() {
        let mut c = real_command(&ring, "orch", "round.open", json!({}), now);
        breaks(&mut c);
        if c.get("sig").is_some() {
            signing::sign(&ring, "orch", &mut c).expect("re-sign");
        }
        let errors = validate("command", &c).expect_err("a malformed command");
        assert!(
            errors.lines().any(|l| l.starts_with(path)),
            "case {i}: expected an error at {path}: {errors}"
        );
        let raw = serde_json::to_vec(&c).expect("json");
        let refusal = guard
            .check(&ring, &raw, now)
            .expect_err("the guard accepts a command the schema refuses");
        refusals.push(refusal.to_reply());
    }
    for (body, kind, path) in [
        (json!({}), "round.void", "/body"),
        (
            json!({"box_no": 0, "decision": "hit"}),
            "blackjack.decision",
            "/body/box_no",
        ),
        (
            json!({"box_no": 1, "decision": "fold"}),
            "blackjack.decision",
            "/body/decision",
        ),
        (
            json!({"round_id": "r", "person": "dealer-7", "role": "boss", "result": {}}),
            "result.manual",
            "/body/role",
        ),
        (
            json!({"round_id": "r", "person": "dealer-7", "role": "dealer", "result": 17}),
            "result.manual",
            "/body/result",
        ),
    ] {
        let key = if kind == "result.manual" {
            "dealer-7"
        } else {
            "orch"
        };
        let c = real_command(&ring, key, kind, body, now);
        let errors = validate("command", &c).expect_err("a malformed body");
        assert!(
            errors.lines().any(|l| l.starts_with(path)),
            "{kind}: expected an error at {path}: {errors}"
        );
        let raw = serde_json::to_vec(&c).expect("json");
        refusals.push(
            guard
                .check(&ring, &raw, now)
                .expect_err("the guard accepts a body the schema refuses")
                .to_reply(),
        );
    }
    // Refusals that are about trust, not shape: the schema cannot tell, the guard can.
    let replayed = serde_json::to_vec(&good[0]).expect("json");
    refusals.push(guard.check(&ring, &replayed, now).map_or_else(
        |r| r.to_reply(),
        |_| panic!("a repeat of a command still in progress was let through"),
    ));
    let mut forged = real_command(&ring, "orch", "round.open", json!({}), now);
    forged["body"] = json!({});
    forged["sig"]["value"] = json!(format!("{}=", "A".repeat(43)));
    assert_valid("command", &forged);
    let raw = serde_json::to_vec(&forged).expect("json");
    refusals.push(
        guard
            .check(&ring, &raw, now)
            .expect_err("forged")
            .to_reply(),
    );
    let late = real_command(
        &ring,
        "orch",
        "round.open",
        json!({}),
        now - Duration::from_secs(600),
    );
    assert_valid("command", &late);
    let raw = serde_json::to_vec(&late).expect("json");
    refusals.push(guard.check(&ring, &raw, now).expect_err("late").to_reply());
    refusals.push(
        guard
            .check(&ring, b"{not json", now)
            .expect_err("junk")
            .to_reply(),
    );

    // Every reply validates: the refusals, and the replies the table sends when it acts.
    for reply in &refusals {
        assert_valid("command-reply", reply);
        assert_eq!(reply["status"], "error");
    }
    let engine = Engine::new(config(Game::Roulette));
    let state = state_message(&engine, &[("wheel", "up")], SystemTime::now());
    let health = Health::new();
    health
        .register("uplink", "uplink")
        .set(State::Up, "connected");
    let telemetry = serde_json::to_value(health.snapshot()).expect("json");
    for reply in [
        signing::ok_reply(state),
        signing::ok_reply(telemetry),
        signing::ok_reply(Value::Null),
        signing::error_reply("no_round", "no round is open"),
    ] {
        assert_valid("command-reply", &reply);
    }
    for reply in [
        json!({"status": "error", "reason": null, "data": {"detail": "x"}}),
        json!({"status": "error", "reason": "malformed", "data": null}),
        json!({"status": "ok", "reason": "fine", "data": null}),
        json!({"status": "maybe", "reason": null, "data": null}),
        json!({"status": "ok", "reason": null}),
        json!({"status": "ok", "reason": null, "data": null, "extra": 1}),
    ] {
        assert!(
            validate("command-reply", &reply).is_err(),
            "accepted {reply}"
        );
    }
}

#[test]
fn signed_events_validate() {
    let ring = ring();
    let mut t = Table::new(config(Game::Roulette), TimecodeRate::Fps25);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        wheel(26.0, WheelState::WinningNumber, 5),
    ]);
    for (i, mut e) in out.into_iter().enumerate() {
        let key = if i % 2 == 0 { "table" } else { "orch" };
        signing::sign(&ring, key, &mut e).expect("sign");
        assert_valid("event", &e);
        assert_eq!(signing::verify(&ring, &e).expect("verifies"), key);
        let mut truncated = e.clone();
        truncated["sig"]["value"] = json!("c2lnbmVk");
        assert_invalid(&truncated, "/sig/value");
    }
}

// ---- wrong events must fail ------------------------------------------------------------------

/// A real, valid `round.close`, to break in one place at a time.
fn real_close() -> Value {
    let mut t = Table::new(config(Game::Roulette), TimecodeRate::Fps25);
    let out = t.feed(vec![pedal(0.0), tick(15.003)]);
    find(&out, "round.close").clone()
}

#[track_caller]
fn assert_invalid(event: &Value, path: &str) {
    match validate("event", event) {
        Ok(()) => panic!("accepted a wrong event: {event}"),
        Err(errors) => assert!(
            errors.lines().any(|l| l.starts_with(path)),
            "expected an error at {path}, got:\n{errors}"
        ),
    }
}

#[test]
fn wrong_events_fail_validation() {
    let good = real_close();
    assert_valid("event", &good);
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut e = good.clone();
        f(&mut e);
        e
    };
    assert_invalid(&broken(&|e| e["seq"] = json!(0)), "/seq");
    assert_invalid(&broken(&|e| e["seq"] = json!(1.5)), "/seq");
    assert_invalid(
        &broken(&|e| e["timecode"]["smpte"] = json!("14:23:25.00")),
        "/timecode/smpte",
    );
    assert_invalid(
        &broken(&|e| e["timecode"]["smpte"] = json!("24:00:00:00")),
        "/timecode/smpte",
    );
    // `;` belongs to drop-frame rates only, and drop-frame to 29.97 / 59.94.
    assert_invalid(
        &broken(&|e| e["timecode"]["smpte"] = json!("14:23:25;00")),
        "/timecode/smpte",
    );
    assert_invalid(
        &broken(&|e| e["timecode"]["drop_frame"] = json!(true)),
        "/timecode",
    );
    assert_invalid(
        &broken(&|e| e["timecode"]["rate"] = json!("25")),
        "/timecode/rate",
    );
    assert_invalid(&broken(&|e| e["source"] = json!("croupier")), "/source");
    // A source the type never has.
    assert_invalid(&broken(&|e| e["source"] = json!("shoe")), "/source");
    assert_invalid(
        &broken(&|e| {
            e["payload"]
                .as_object_mut()
                .expect("payload")
                .remove("late_us");
        }),
        "/payload",
    );
    assert_invalid(
        &broken(&|e| e["payload"]["late_us"] = json!(-3)),
        "/payload/late_us",
    );
    assert_invalid(
        &broken(&|e| e["payload"]["surprise"] = json!(1)),
        "/payload",
    );
    assert_invalid(&broken(&|e| e["extra"] = json!(1)), "/");
    assert_invalid(
        &broken(&|e| e["event_id"] = json!("4b1e9f0c-3d2a-4c5b-8e7f-1a2b3c4d5e6f")),
        "/event_id",
    );
    assert_invalid(
        &broken(&|e| e["utc"] = json!("2026-11-21T14:23:25Z")),
        "/utc",
    );
    assert_invalid(
        &broken(&|e| e["utc"] = json!("2026-11-21T14:23:25.000123+01:00")),
        "/utc",
    );
    assert_invalid(
        &broken(&|e| e["round_id"] = json!("round seven")),
        "/round_id",
    );
    assert_invalid(&broken(&|e| e["round_id"] = Value::Null), "/round_id");
    assert_invalid(&broken(&|e| e["type"] = json!("round.closed")), "/type");
    assert_invalid(&broken(&|e| e["table"] = json!("RL 01")), "/table");
    assert_invalid(&broken(&|e| e["mono_ns"] = json!(-1)), "/mono_ns");
    assert_invalid(
        &broken(&|e| e["clock"] = json!({"synchronized": "yes"})),
        "/clock",
    );
    assert_invalid(
        &broken(&|e| e["sig"] = json!({"alg": "rsa", "key_id": "k1", "value": "AAAA"})),
        "/sig/alg",
    );
    assert_invalid(
        &broken(&|e| {
            e.as_object_mut().expect("object").remove("payload");
        }),
        "/",
    );

    // Payloads of other types: a roulette result in a baccarat round, a card without its
    // placement, a position that is not one.
    let mut t = Table::new(config(Game::Baccarat), TimecodeRate::Fps25);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        card(16.0, "9H"),
        card(17.0, "KD"),
        card(18.0, "5C"),
        card(19.0, "3S"),
        card(20.0, "8D"),
    ]);
    let result = find(&out, "round.result").clone();
    let mut wrong = result.clone();
    wrong["payload"]["result"] = json!({"number": 17, "label": "17", "colour": "black", "dozen": 2, "column": 2, "parity": "odd", "range": "low"});
    assert_invalid(&wrong, "/payload/result");
    let mut wrong = result.clone();
    wrong["payload"]["result"]["winner"] = json!("house");
    assert_invalid(&wrong, "/payload/result/winner");
    let dealt = find(&out, "card.dealt").clone();
    let mut wrong = dealt.clone();
    wrong["payload"]
        .as_object_mut()
        .expect("payload")
        .remove("side");
    assert_invalid(&wrong, "/payload");
    let mut wrong = dealt.clone();
    wrong["payload"]["card"] = json!("10H");
    assert_invalid(&wrong, "/payload/card");
    let mut wrong = dealt;
    wrong["payload"]["position"] = json!({"zone": "dealer_hole"});
    wrong["payload"]["hole"] = json!(false);
    assert_invalid(&wrong, "/payload");
    // Roulette: 0 is green and in no dozen.
    let mut t = Table::new(config(Game::Roulette), TimecodeRate::Fps25);
    let out = t.feed(vec![
        pedal(0.0),
        tick(15.0),
        wheel(26.0, WheelState::WinningNumber, 0),
    ]);
    let mut wrong = find(&out, "round.result").clone();
    wrong["payload"]["result"]["dozen"] = json!(1);
    assert_invalid(&wrong, "/payload/result/dozen");
    // An alert's payload is free-form, but its typed fields are typed.
    let mut alert = find(&real_alerts(), "alert.unexpected_pedal").clone();
    assert_valid("event", &alert);
    alert["payload"]["phase"] = json!("lunch");
    assert_invalid(&alert, "/payload/phase");
}

fn real_alerts() -> Vec<Value> {
    let mut cfg = config(Game::Roulette);
    cfg.early_close = false;
    let mut t = Table::new(cfg, TimecodeRate::Fps25);
    t.feed(vec![pedal(0.0), pedal(1.0)])
}
