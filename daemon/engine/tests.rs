//! Engine rules, with an injectable clock: every instant is made up by the test.

use std::time::{Duration, UNIX_EPOCH};

use croupier_drivers::model::{CardEvent, Observation};
use croupier_drivers::pedal::PedalEvent;
use croupier_drivers::wheel::{Direction, WarningFlags, WheelEvent, WheelState};
use serde_json::json;

use super::*;

const SEC: u64 = 1_000_000_000;

fn at(secs_f: f64) -> At {
    let ns = (secs_f * 1e9) as u64;
    At {
        utc: UNIX_EPOCH + Duration::from_secs(1_795_270_990) + Duration::from_nanos(ns),
        mono_ns: 1_000 * SEC + ns,
    }
}

fn config(game: Game) -> EngineConfig {
    EngineConfig {
        table_id: "t1".into(),
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

fn wheel(t: f64, state: WheelState, number: u8) -> Input {
    wheel_flags(t, state, number, 0)
}

fn wheel_flags(t: f64, state: WheelState, number: u8, flags: u8) -> Input {
    Input::Device {
        device: "wheel".into(),
        source: Source::Wheel,
        at: at(t),
        observation: Observation::Wheel(WheelEvent::Status {
            state,
            spin_count: 1,
            number,
            warnings: WarningFlags(flags),
            rotor_speed: 27,
            direction: Direction::Clockwise,
        }),
    }
}

fn card(t: f64, c: &str) -> Input {
    Input::Device {
        device: "shoe".into(),
        source: Source::Shoe,
        at: at(t),
        observation: Observation::Card(CardEvent::Drawn {
            card: c.parse().expect("card"),
            index: 0,
        }),
    }
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

fn events(outputs: &[Output]) -> Vec<&EngineEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            Output::Timer { .. } => None,
        })
        .collect()
}

fn kinds(outputs: &[Output]) -> Vec<String> {
    events(outputs).iter().map(|e| e.kind.clone()).collect()
}

/// Feeds every input and returns all event kinds in order.
fn run(engine: &mut Engine, inputs: Vec<Input>) -> Vec<EngineEvent> {
    inputs
        .into_iter()
        .flat_map(|i| engine.handle(i))
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            Output::Timer { .. } => None,
        })
        .collect()
}

#[test]
fn roulette_round_from_pedal_timer_and_wheel() {
    let mut e = Engine::new(config(Game::Roulette));
    let open = e.handle(pedal(0.0));
    assert_eq!(kinds(&open), vec!["round.open"]);
    assert!(
        open.contains(&Output::Timer {
            at_mono_ns: at(15.0).mono_ns
        }),
        "a timer at the deadline"
    );
    let opened = events(&open)[0];
    assert_eq!(opened.source, Source::Pedal);
    assert_eq!(opened.round_id.as_deref(), Some("t1-20261121T142310Z-0001"));
    assert_eq!(e.phase(), Phase::Open);

    // The tick comes 3 ms late: the close is stamped at the deadline, the lateness recorded.
    let close = e.handle(tick(15.003));
    let closed = events(&close)[0];
    assert_eq!(closed.kind, "round.close");
    assert_eq!(closed.source, Source::Timer);
    assert_eq!(closed.at, at(15.0));
    assert_eq!(closed.payload["late_us"], 3000);
    assert_eq!(closed.payload["closed_mono_ns"], at(15.0).mono_ns);

    let rest = run(
        &mut e,
        vec![
            wheel(16.0, WheelState::BallInRim, 0),
            wheel(20.0, WheelState::NoMoreBets, 0),
            wheel(26.0, WheelState::WinningNumber, 17),
        ],
    );
    let k: Vec<&str> = rest.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(k, vec!["round.play", "wheel.result", "round.result"]);
    let result = &rest[2].payload["result"];
    assert_eq!(result["number"], 17);
    assert_eq!(result["colour"], "black");
    assert_eq!(result["dozen"], 2);
    assert_eq!(result["column"], 2);
    assert_eq!(result["parity"], "odd");
    assert_eq!(result["range"], "low");
    assert_eq!(e.phase(), Phase::Result);
}

#[test]
fn ball_in_rim_closes_betting_before_the_deadline() {
    let mut e = Engine::new(config(Game::Roulette));
    e.handle(pedal(0.0));
    let out = run(&mut e, vec![wheel(9.0, WheelState::BallInRim, 0)]);
    assert_eq!(out[0].kind, "round.close");
    assert_eq!(out[0].source, Source::Wheel);
    assert_eq!(out[0].payload["early_ms"], 6000);
    assert_eq!(out[1].kind, "round.play");
}

#[test]
fn a_late_observation_cannot_land_in_an_ended_window() {
    // The timer's tick is lost (a busy CPU); the next input still closes betting first, and
    // the close is stamped at the deadline.
    let mut e = Engine::new(config(Game::Baccarat));
    e.handle(pedal(0.0));
    let out = run(&mut e, vec![card(17.0, "KH")]);
    let k: Vec<&str> = out.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(k, vec!["round.close", "round.play", "card.dealt"]);
    assert_eq!(out[0].at, at(15.0));
}

#[test]
fn a_full_outbox_refuses_new_rounds_but_lets_one_finish() {
    let mut e = Engine::new(config(Game::Roulette));
    e.handle(pedal(0.0));
    e.set_outbox_full(true);
    // The round in progress plays on.
    let out = run(
        &mut e,
        vec![tick(15.0), wheel(26.0, WheelState::WinningNumber, 3)],
    );
    assert!(out.iter().any(|e| e.kind == "round.result"));
    // The next one does not open.
    let out = run(&mut e, vec![pedal(30.0)]);
    assert_eq!(
        out.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["alert.outbox_full"]
    );
    e.set_outbox_full(false);
    assert_eq!(run(&mut e, vec![pedal(31.0)])[0].kind, "round.open");
}

#[test]
fn early_close_by_pedal_only_where_configured() {
    let mut e = Engine::new(config(Game::Roulette));
    e.handle(pedal(0.0));
    let out = run(&mut e, vec![pedal(5.0)]);
    assert_eq!(out[0].kind, "round.close");
    assert_eq!(out[0].source, Source::Pedal);

    let mut cfg = config(Game::Roulette);
    cfg.early_close = false;
    let mut e = Engine::new(cfg);
    e.handle(pedal(0.0));
    let out = run(&mut e, vec![pedal(5.0)]);
    assert_eq!(out[0].kind, "alert.unexpected_pedal");
    assert_eq!(e.phase(), Phase::Open);
}

#[test]
fn inputs_that_make_no_sense_alert_and_change_nothing() {
    let mut e = Engine::new(config(Game::Baccarat));
    e.handle(pedal(0.0));
    // A card during betting.
    let out = run(&mut e, vec![card(2.0, "KH")]);
    assert_eq!(
        out.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["alert.unexpected_card"]
    );
    assert_eq!(e.phase(), Phase::Open);
    // A pedal press during play.
    e.handle(tick(15.0));
    e.handle(card(16.0, "9H"));
    let out = run(&mut e, vec![pedal(16.5)]);
    assert_eq!(out[0].kind, "alert.unexpected_pedal");
    assert_eq!(e.phase(), Phase::Play);
    // A second open.
    let out = run(&mut e, vec![command(16.6, Command::Open)]);
    assert_eq!(out[0].kind, "alert.unexpected_open");
}

#[test]
fn a_second_different_result_alerts() {
    let mut e = Engine::new(config(Game::Roulette));
    run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 17),
        ],
    );
    assert_eq!(e.phase(), Phase::Result);
    // The bare number repeating the same result is fine; a different one is an alert.
    let same = run(
        &mut e,
        vec![Input::Device {
            device: "wheel".into(),
            source: Source::Wheel,
            at: at(26.1),
            observation: Observation::Wheel(WheelEvent::WinningNumber { number: 17 }),
        }],
    );
    assert!(same.is_empty());
    let other = run(&mut e, vec![wheel(27.0, WheelState::WinningNumber, 5)]);
    assert_eq!(other[0].kind, "alert.second_result");
    assert_eq!(
        e.snapshot().last_result.expect("result")["result"]["number"],
        17
    );
}

#[test]
fn american_wheel_double_zero_and_european_refusal() {
    let mut cfg = config(Game::Roulette);
    cfg.wheel = roulette::WheelType::American;
    let mut e = Engine::new(cfg);
    let out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 37),
        ],
    );
    let result = out
        .iter()
        .find(|e| e.kind == "round.result")
        .expect("result");
    assert_eq!(result.payload["result"]["label"], "00");
    assert_eq!(result.payload["result"]["colour"], "green");

    let mut e = Engine::new(config(Game::Roulette));
    let out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 37),
        ],
    );
    assert!(out.iter().any(|e| e.kind == "alert.invalid_result"));
    assert_eq!(e.phase(), Phase::Closed);
}

#[test]
fn the_wheel_voids_a_failed_launch() {
    let mut e = Engine::new(config(Game::Roulette));
    let out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel_flags(16.0, WheelState::BallInRim, 0, 8),
        ],
    );
    let void = out.iter().find(|e| e.kind == "round.void").expect("void");
    assert_eq!(void.source, Source::Wheel);
    assert_eq!(e.phase(), Phase::Idle);
}

#[test]
fn baccarat_coup_from_the_shoe() {
    let mut e = Engine::new(config(Game::Baccarat));
    // Player 9H 5C = 4 draws; banker KD 3S = 3; player third 8D (8): banker stands on 3.
    let out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            card(16.0, "9H"),
            card(17.0, "KD"),
            card(18.0, "5C"),
            card(19.0, "3S"),
            card(20.0, "8D"),
        ],
    );
    let dealt: Vec<String> = out
        .iter()
        .filter(|e| e.kind == "card.dealt")
        .map(|e| {
            format!(
                "{}:{}",
                e.payload["card"].as_str().unwrap_or(""),
                e.payload["side"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        dealt,
        vec![
            "9H:player",
            "KD:banker",
            "5C:player",
            "3S:banker",
            "8D:player"
        ]
    );
    let result = out
        .iter()
        .find(|e| e.kind == "round.result")
        .expect("result");
    assert_eq!(result.payload["result"]["player_total"], 2);
    assert_eq!(result.payload["result"]["banker_total"], 3);
    assert_eq!(result.payload["result"]["winner"], "banker", "{result:?}");
    // Extra card after the coup.
    let extra = run(&mut e, vec![card(21.0, "2H")]);
    assert_eq!(extra[0].kind, "alert.unexpected_card");
}

#[test]
fn blackjack_round_by_order_and_decisions() {
    let mut cfg = config(Game::Blackjack);
    cfg.blackjack.boxes = 1;
    let mut e = Engine::new(cfg);
    let mut out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            card(16.0, "TH"),
            card(17.0, "6D"),
            card(18.0, "9C"),
        ],
    );
    out.extend(run(
        &mut e,
        vec![command(
            19.0,
            Command::Decision {
                box_no: 1,
                decision: blackjack::Decision::Stand,
            },
        )],
    ));
    // The dealer's second card, then draws to 17.
    out.extend(run(&mut e, vec![card(20.0, "5S"), card(21.0, "7H")]));
    let result = out
        .iter()
        .find(|e| e.kind == "round.result")
        .unwrap_or_else(|| panic!("no result: {out:#?}"));
    assert_eq!(result.payload["result"]["dealer"]["value"]["total"], 18);
}

fn vision_config() -> EngineConfig {
    let mut cfg = config(Game::Roulette);
    cfg.crosscheck.wheel.insert(Source::Vision);
    cfg
}

fn pocket_seen(t: f64, number: u8) -> Input {
    Input::Witness {
        source: Source::Vision,
        at: at(t),
        witness: Witness::Pocket { number },
        detail: serde_json::json!({ "confidence": 0.99, "timecode": "10:00:00:00" }),
    }
}

fn card_seen(t: f64, c: &str, zone: &str) -> Input {
    Input::Witness {
        source: Source::Vision,
        at: at(t),
        witness: Witness::Card {
            card: c.parse().expect("card"),
            zone: Some(zone.into()),
        },
        detail: serde_json::json!({ "confidence": 0.98, "timecode": "10:00:01:00" }),
    }
}

fn baccarat_vision_config() -> EngineConfig {
    let mut cfg = config(Game::Baccarat);
    cfg.crosscheck.cards.insert(Source::Vision);
    cfg
}

#[test]
fn baccarat_waits_for_the_camera_and_pays_when_every_card_is_seen() {
    let mut e = Engine::new(baccarat_vision_config());
    let coup = ["9H", "8S", "KD", "QC"];
    let mut inputs = vec![pedal(0.0), tick(15.0)];
    for (i, c) in coup.iter().enumerate() {
        inputs.push(card(16.0 + i as f64, c));
    }
    let out = run(&mut e, inputs);
    assert!(
        !out.iter().any(|e| e.kind == "round.result"),
        "waits for vision: {out:#?}"
    );
    let zones = ["player", "banker", "player", "banker"];
    let mut seen = Vec::new();
    for (i, c) in coup.iter().enumerate() {
        seen.extend(run(
            &mut e,
            vec![card_seen(20.0 + i as f64 * 0.2, c, zones[i])],
        ));
    }
    let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "card.seen",
            "card.seen",
            "card.seen",
            "card.seen",
            "round.result"
        ]
    );
    assert_eq!(seen[0].payload["card"], "9H");
    assert_eq!(seen[0].payload["zone"], "player");
    assert_eq!(seen[0].payload["confidence"], 0.98);
    assert_eq!(seen[0].source, Source::Vision);
}

#[test]
fn baccarat_holds_the_round_when_the_camera_sees_another_card() {
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = vec![pedal(0.0), tick(15.0)];
    for (i, c) in ["9H", "8S", "KD", "QC"].iter().enumerate() {
        inputs.push(card(16.0 + i as f64, c));
    }
    inputs.push(card_seen(20.0, "9H", "player"));
    // The shoe said KD; the camera sees KS in the player's zone.
    inputs.push(card_seen(20.2, "KS", "player"));
    let out = run(&mut e, inputs);
    let mismatch = out
        .iter()
        .find(|e| e.kind == "alert.mismatch")
        .unwrap_or_else(|| panic!("no mismatch: {out:#?}"));
    assert_eq!(mismatch.payload["detail"]["card"], "KS");
    assert_eq!(mismatch.payload["detail"]["source"], "vision");
    assert!(!out.iter().any(|e| e.kind == "round.result"));
    assert_eq!(e.phase(), Phase::ResultPending);
}

#[test]
fn baccarat_holds_the_round_when_the_camera_never_sees_a_card() {
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = vec![pedal(0.0), tick(15.0)];
    for (i, c) in ["9H", "8S", "KD", "QC"].iter().enumerate() {
        inputs.push(card(16.0 + i as f64, c));
    }
    inputs.push(card_seen(20.0, "9H", "player"));
    // The cross-check window (3 s) ends with three cards unseen.
    inputs.push(tick(30.0));
    let out = run(&mut e, inputs);
    let hold = out
        .iter()
        .find(|e| e.kind == "alert.mismatch")
        .unwrap_or_else(|| panic!("no hold: {out:#?}"));
    assert_eq!(hold.payload["reason"], "missing_confirmation");
    // The hold names the source that fell short and the cards it never saw.
    let detail = &hold.payload["detail"];
    assert_eq!(detail["missing"], json!(["vision"]), "{detail}");
    assert_eq!(
        detail["unconfirmed"],
        json!([{ "source": "vision", "cards": ["8S", "KD", "QC"] }])
    );
    assert_eq!(e.phase(), Phase::ResultPending);
}

#[test]
fn the_wheel_and_vision_agree() {
    let mut e = Engine::new(vision_config());
    let out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 17),
        ],
    );
    assert!(
        !out.iter().any(|e| e.kind == "round.result"),
        "waits for vision"
    );
    let out = run(&mut e, vec![pocket_seen(26.5, 17)]);
    assert_eq!(out[0].kind, "pocket.seen");
    assert_eq!(out[0].payload["number"], 17);
    assert_eq!(out[0].payload["confidence"], 0.99);
    assert_eq!(out[0].payload["timecode"], "10:00:00:00");
    assert_eq!(out[1].kind, "round.result");
}

#[test]
fn a_mismatch_holds_the_round_until_four_eyes_confirm() {
    let mut e = Engine::new(vision_config());
    run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 17),
        ],
    );
    let out = run(&mut e, vec![pocket_seen(26.5, 34)]);
    assert_eq!(out[0].kind, "pocket.seen");
    assert_eq!(out[1].kind, "alert.mismatch");
    assert_eq!(e.phase(), Phase::ResultPending);
    // The pedal cannot open a new round now.
    assert_eq!(
        run(&mut e, vec![pedal(27.0)])[0].kind,
        "alert.unexpected_pedal"
    );

    let approve = |t, person: &str, role, number: u8| {
        command(
            t,
            Command::ManualResult(Approval {
                person: person.into(),
                role,
                result: json!({ "number": number }),
            }),
        )
    };
    // One approval is not enough; the same person twice never is.
    let out = run(&mut e, vec![approve(30.0, "dealer-7", Role::Dealer, 17)]);
    assert_eq!(out[0].kind, "result.approval");
    let out = run(
        &mut e,
        vec![approve(31.0, "dealer-7", Role::Supervisor, 17)],
    );
    assert_eq!(out[0].kind, "alert.duplicate_approval");
    assert_eq!(e.phase(), Phase::ResultPending);
    // A supervisor agreeing on the same number releases it.
    let out = run(&mut e, vec![approve(32.0, "super-2", Role::Supervisor, 17)]);
    let result = out
        .iter()
        .find(|e| e.kind == "round.result")
        .expect("released");
    assert_eq!(result.source, Source::Manual);
    assert_eq!(
        result.payload["result"]["approved_by"],
        json!(["dealer-7", "super-2"])
    );
    assert_eq!(e.phase(), Phase::Result);
}

#[test]
fn a_missing_confirmation_holds_the_round_after_the_window() {
    let mut e = Engine::new(vision_config());
    let out = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 17),
        ],
    );
    assert!(out.iter().all(|e| e.kind != "alert.mismatch"));
    let out = run(&mut e, vec![tick(29.1)]);
    assert_eq!(out[0].kind, "alert.mismatch");
    assert_eq!(out[0].payload["reason"], "missing_confirmation");
    // Void releases it too, with a reason.
    let out = run(
        &mut e,
        vec![command(
            40.0,
            Command::Void {
                reason: "camera fogged".into(),
            },
        )],
    );
    assert_eq!(out[0].kind, "round.void");
    assert_eq!(out[0].payload["reason"], "camera fogged");
    assert_eq!(e.phase(), Phase::Idle);
}

#[test]
fn settle_acknowledgement_is_recorded_but_never_blocks() {
    let mut e = Engine::new(config(Game::Roulette));
    run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 3),
        ],
    );
    let id = e.snapshot().round_id.expect("round id");
    // The next round opens without any settle ack.
    let out = run(&mut e, vec![pedal(30.0)]);
    assert_eq!(out[0].kind, "round.open");
    assert_eq!(out[0].round_id.as_deref(), Some("t1-20261121T142340Z-0002"));
    // A late ack for the previous round is still recorded.
    let out = run(
        &mut e,
        vec![command(
            31.0,
            Command::Settled {
                round_id: id.clone(),
            },
        )],
    );
    assert_eq!(out[0].kind, "round.settled");
    assert_eq!(out[0].round_id.as_deref(), Some(id.as_str()));
}

fn stamp_all(outputs: Vec<EngineEvent>, from_seq: u64) -> Vec<crate::events::Envelope> {
    let stamper = crate::events::Stamper {
        studio: "s".into(),
        table: "t1".into(),
        rate: crate::timecode::TimecodeRate::Fps25,
    };
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            stamper.envelope(
                from_seq + i as u64,
                e,
                crate::events::ClockStamp {
                    synchronized: true,
                    est_error_us: 1,
                },
            )
        })
        .collect()
}

#[test]
fn recovery_voids_a_round_interrupted_during_betting() {
    let mut e = Engine::new(config(Game::Roulette));
    let history = stamp_all(run(&mut e, vec![pedal(0.0)]), 1);
    let (recovered, out) = recovery::recover(config(Game::Roulette), &history, at(100.0));
    assert_eq!(kinds(&out), vec!["round.void"]);
    assert_eq!(recovered.phase(), Phase::Idle);
    // Numbering continues.
    let mut recovered = recovered;
    let next = recovered.handle(pedal(101.0));
    assert!(events(&next)[0]
        .round_id
        .as_deref()
        .is_some_and(|id| id.ends_with("-0002")));
}

#[test]
fn recovery_resumes_a_coup_mid_deal() {
    let mut e = Engine::new(config(Game::Baccarat));
    let before = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            card(16.0, "9H"),
            card(17.0, "KD"),
            card(18.0, "5C"),
        ],
    );
    let history = stamp_all(before, 1);
    let (mut recovered, out) = recovery::recover(config(Game::Baccarat), &history, at(100.0));
    assert_eq!(kinds(&out), vec!["round.resumed"]);
    assert_eq!(events(&out)[0].payload["cards_dealt"], 3);
    assert_eq!(recovered.phase(), Phase::Play);
    let after = run(&mut recovered, vec![card(101.0, "3S"), card(102.0, "8D")]);
    let result = after
        .iter()
        .find(|e| e.kind == "round.result")
        .expect("the coup completes");
    assert_eq!(result.payload["result"]["player_total"], 2);
    assert_eq!(
        after.iter().filter(|e| e.kind == "card.dealt").count(),
        2,
        "no card dealt twice"
    );
}

#[test]
fn recovery_keeps_a_pending_result_pending() {
    let mut e = Engine::new(vision_config());
    let before = run(
        &mut e,
        vec![
            pedal(0.0),
            tick(15.0),
            wheel(26.0, WheelState::WinningNumber, 17),
            pocket_seen(26.5, 34),
        ],
    );
    let history = stamp_all(before, 1);
    let (recovered, out) = recovery::recover(vision_config(), &history, at(100.0));
    assert_eq!(kinds(&out), vec!["round.resumed"]);
    assert_eq!(recovered.phase(), Phase::ResultPending);
}

// ---- the card cross-check: zones and counts (crosscheck.rs) ---------------------------------

/// A card the camera saw, centred at `(x, y)` in the camera's pixels, 60 px wide (90 high).
fn seen_at(t: f64, c: &str, zone: Option<&str>, (x, y): (f64, f64)) -> Input {
    let (w, h) = (30.0, 45.0);
    Input::Witness {
        source: Source::Vision,
        at: at(t),
        witness: Witness::Card {
            card: c.parse().expect("card"),
            zone: zone.map(str::to_owned),
        },
        detail: json!({
            "confidence": 0.97, "timecode": "10:00:01:00", "camera": "cards",
            "corners_px": [[x - w, y - h], [x + w, y - h], [x + w, y + h], [x - w, y + h]],
        }),
    }
}

/// A card an RFID reader saw: its tag's uid, on an antenna (a zone that names no hand).
fn tag_seen(t: f64, c: &str, uid: &str) -> Input {
    Input::Witness {
        source: Source::Rfid,
        at: at(t),
        witness: Witness::Card {
            card: c.parse().expect("card"),
            zone: Some("antenna-1".into()),
        },
        detail: json!({ "device": "rfid", "uid": uid }),
    }
}

/// Opens a round, closes betting and deals `cards` from the shoe, one a second from 16 s.
fn deal(cards: &[&str]) -> Vec<Input> {
    let mut inputs = vec![pedal(0.0), tick(15.0)];
    for (i, c) in cards.iter().enumerate() {
        inputs.push(card(16.0 + i as f64, c));
    }
    inputs
}

fn held(out: &[EngineEvent]) -> &EngineEvent {
    out.iter()
        .find(|e| e.kind == "alert.mismatch")
        .unwrap_or_else(|| panic!("not held: {out:#?}"))
}

fn paid(out: &[EngineEvent]) -> bool {
    out.iter().any(|e| e.kind == "round.result") && !out.iter().any(|e| e.kind == "alert.mismatch")
}

// Player 5C KH (5) draws 5S (0); banker 5S TD (5) draws on the player's 5: 2H (7). An 8-deck
// shoe: 5S twice.
const DEMO_COUP: [&str; 6] = ["5C", "5S", "KH", "TD", "5S", "2H"];
// Where each card lies in the camera's picture: the hands' first two side by side, the thirds
// above.
const P1: (f64, f64) = (100.0, 300.0);
const P2: (f64, f64) = (170.0, 300.0);
const P3: (f64, f64) = (135.0, 150.0);
const B1: (f64, f64) = (400.0, 300.0);
const B2: (f64, f64) = (470.0, 300.0);
const B3: (f64, f64) = (435.0, 150.0);

#[test]
fn the_demos_misread_equal_to_a_card_of_the_other_hand_holds() {
    // The camera saw the banker's first card (5S) as 5C, the player's first card: as sets,
    // {5C, 5C, KH, TD, 5S, 2H} is the coup, and the round used to pay.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&DEMO_COUP);
    for (i, (c, zone, place)) in [
        ("5C", "player", P1),
        ("5C", "banker", B1),
        ("KH", "player", P2),
        ("TD", "banker", B2),
        ("5S", "player", P3),
        ("2H", "banker", B3),
    ]
    .into_iter()
    .enumerate()
    {
        inputs.push(seen_at(23.0 + i as f64 * 0.2, c, Some(zone), place));
    }
    let out = run(&mut e, inputs);
    let hold = held(&out);
    assert_eq!(hold.payload["reason"], "mismatch");
    let detail = &hold.payload["detail"];
    assert_eq!(detail["source"], "vision");
    assert_eq!(detail["card"], "5C");
    assert_eq!(detail["zone"], "banker");
    assert_eq!(detail["rule"], "other_hand");
    assert_eq!(detail["hand_cards"], json!(["5S", "TD", "2H"]));
    assert!(!out.iter().any(|e| e.kind == "round.result"));
    assert_eq!(e.phase(), Phase::ResultPending);
}

#[test]
fn without_zones_a_card_seen_in_two_places_but_dealt_once_holds() {
    // The same misread by a camera whose calibration has no zones: two 5C at two places.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&DEMO_COUP);
    for (i, (c, place)) in [
        ("5C", P1),
        ("5C", B1),
        ("KH", P2),
        ("TD", B2),
        ("5S", P3),
        ("2H", B3),
    ]
    .into_iter()
    .enumerate()
    {
        inputs.push(seen_at(23.0 + i as f64 * 0.2, c, None, place));
    }
    let out = run(&mut e, inputs);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "5C");
    assert_eq!(detail["rule"], "more_than_dealt");
    assert_eq!(detail["seen"], 2);
    assert!(!out.iter().any(|e| e.kind == "round.result"));
}

#[test]
fn a_card_seen_in_the_other_hands_zone_holds() {
    // Player 9H KD (9), banker 8S QC (8): the dealer laid KD in the banker's box. Every card
    // is seen once; only its place is wrong.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&["9H", "8S", "KD", "QC"]);
    inputs.push(seen_at(20.0, "9H", Some("player"), P1));
    inputs.push(seen_at(20.2, "8S", Some("banker"), B1));
    inputs.push(seen_at(20.4, "KD", Some("Banker"), B3));
    inputs.push(seen_at(20.6, "QC", Some("banker"), B2));
    let out = run(&mut e, inputs);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "KD");
    assert_eq!(detail["zone"], "Banker");
    assert_eq!(detail["hand"], "banker");
    assert_eq!(detail["hand_cards"], json!(["8S", "QC"]));
    assert_eq!(detail["rule"], "other_hand");
}

#[test]
fn a_card_seen_twice_in_its_hand_where_the_shoe_dealt_it_once_holds() {
    // Player 4H 4D (8, natural), banker 2C 3D: the camera reads the 4D as 4H. Seen at two
    // places of the player's box, 4H is two cards; the shoe dealt one.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&["4H", "2C", "4D", "3D"]);
    inputs.push(seen_at(20.0, "4H", Some("player"), P1));
    inputs.push(seen_at(20.2, "2C", Some("banker"), B1));
    inputs.push(seen_at(20.4, "4H", Some("player"), P2));
    inputs.push(seen_at(20.6, "3D", Some("banker"), B2));
    let out = run(&mut e, inputs);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "4H");
    assert_eq!(detail["rule"], "more_than_dealt");
    assert_eq!(detail["hand"], "player");
    assert_eq!(detail["seen"], 2);
}

#[test]
fn a_card_reported_again_where_it_lies_is_one_card() {
    // The tracker reports 9H again after a dealer's hand hid it; the camera's corners moved by
    // a few pixels (a nudge). The reader reports the RFID tag of 8S twice (it left and came
    // back). Neither holds the round.
    let mut cfg = baccarat_vision_config();
    cfg.crosscheck.cards.insert(Source::Rfid);
    let mut e = Engine::new(cfg);
    let mut inputs = deal(&["9H", "8S", "KD", "QC"]);
    inputs.push(seen_at(20.0, "9H", Some("player"), P1));
    inputs.push(seen_at(20.2, "8S", Some("banker"), B1));
    inputs.push(seen_at(20.4, "KD", Some("player"), P2));
    inputs.push(seen_at(
        21.4,
        "9H",
        Some("player"),
        (P1.0 + 6.0, P1.1 - 4.0),
    ));
    for (t, c, uid) in [
        (20.1, "9H", "E0040100A1"),
        (20.3, "8S", "E0040100B2"),
        (20.5, "KD", "E0040100C3"),
        (21.0, "8S", "e0040100b2"),
        (21.5, "QC", "E0040100D4"),
    ] {
        inputs.push(tag_seen(t, c, uid));
    }
    inputs.push(seen_at(21.8, "QC", Some("banker"), B2));
    let out = run(&mut e, inputs);
    assert!(paid(&out), "{out:#?}");
}

#[test]
fn two_identical_cards_of_an_eight_deck_shoe_in_one_hand_agree() {
    // Player 4H 4H (8, natural), banker 2C 3D: two 4H, side by side in the player's box.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&["4H", "2C", "4H", "3D"]);
    inputs.push(seen_at(20.0, "4H", Some("player"), P1));
    inputs.push(seen_at(20.2, "2C", Some("banker"), B1));
    inputs.push(seen_at(20.4, "4H", Some("player"), P2));
    inputs.push(seen_at(20.6, "3D", Some("banker"), B2));
    let out = run(&mut e, inputs);
    assert!(paid(&out), "{out:#?}");
}

#[test]
fn sightings_without_a_zone_or_a_place_keep_the_whole_coup_check() {
    // No zone, no corners (a camera outside every zone, an older stage), or a zone that names
    // no hand (baccarat's dealer strip): each confirms its card wherever it was dealt, and a
    // card reported twice is one card.
    let plain = |t: f64, c: &str, zone: Option<&str>| Input::Witness {
        source: Source::Vision,
        at: at(t),
        witness: Witness::Card {
            card: c.parse().expect("card"),
            zone: zone.map(str::to_owned),
        },
        detail: json!({ "confidence": 0.9 }),
    };
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&["9H", "8S", "KD", "QC"]);
    inputs.push(plain(20.0, "9H", None));
    inputs.push(plain(20.2, "8S", Some("dealer")));
    inputs.push(plain(20.4, "KD", None));
    inputs.push(plain(20.5, "KD", None));
    inputs.push(plain(20.6, "QC", Some("dealer")));
    inputs.push(plain(20.7, "QC", Some("dealer")));
    let out = run(&mut e, inputs);
    assert!(paid(&out), "{out:#?}");

    // A card the shoe did not deal, seen in no hand, still holds.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&["9H", "8S", "KD", "QC"]);
    inputs.push(plain(20.0, "9H", Some("dealer")));
    inputs.push(plain(20.2, "7S", Some("dealer")));
    let out = run(&mut e, inputs);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "7S");
    assert_eq!(detail["rule"], "not_dealt");
    assert_eq!(detail["source"], "vision");
}

fn blackjack_vision_config() -> EngineConfig {
    let mut cfg = config(Game::Blackjack);
    cfg.blackjack.boxes = 1;
    cfg.crosscheck.cards.insert(Source::Vision);
    cfg
}

/// Box 1 TH 9C stands on 19; the dealer 6D 5S 7H makes 18.
fn blackjack_round(seen: &[(&str, &str)]) -> Vec<EngineEvent> {
    let mut e = Engine::new(blackjack_vision_config());
    let mut out = run(&mut e, deal(&["TH", "6D", "9C"]));
    out.extend(run(
        &mut e,
        vec![command(
            19.0,
            Command::Decision {
                box_no: 1,
                decision: blackjack::Decision::Stand,
            },
        )],
    ));
    out.extend(run(&mut e, vec![card(20.0, "5S"), card(21.0, "7H")]));
    for (i, (c, zone)) in seen.iter().enumerate() {
        out.extend(run(
            &mut e,
            vec![seen_at(
                22.0 + i as f64 * 0.1,
                c,
                Some(zone),
                (100.0 * i as f64, 100.0),
            )],
        ));
    }
    out
}

#[test]
fn blackjack_compares_each_cards_zone_with_the_hand_it_was_dealt_to() {
    let right = [
        ("TH", "box 1"),
        ("6D", "dealer"),
        ("9C", "box1"),
        ("5S", "dealer"),
        ("7H", "Dealer"),
    ];
    assert!(paid(&blackjack_round(&right)));

    // The box's 9C seen on the dealer's side.
    let mut wrong = right;
    wrong[2] = ("9C", "dealer");
    let out = blackjack_round(&wrong);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "9C");
    assert_eq!(detail["hand"], "dealer");
    assert_eq!(detail["hand_cards"], json!(["6D", "5S", "7H"]));

    // A card in a box that plays no hand this round (the table plays box 1 only).
    let mut wrong = right;
    wrong[0] = ("TH", "box 2");
    let out = blackjack_round(&wrong);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "TH");
    assert_eq!(detail["hand"], "box2");
    assert_eq!(detail["hand_cards"], json!([]));
}

#[test]
fn rfid_tags_tell_identical_cards_apart() {
    let rfid = || {
        let mut cfg = config(Game::Baccarat);
        cfg.crosscheck.cards.insert(Source::Rfid);
        cfg
    };
    // Two 4H dealt (an 8-deck shoe), one tag read twice: the second 4H is not confirmed.
    let mut e = Engine::new(rfid());
    let mut inputs = deal(&["4H", "2C", "4H", "3D"]);
    inputs.push(tag_seen(20.0, "4H", "A1"));
    inputs.push(tag_seen(20.2, "2C", "C3"));
    inputs.push(tag_seen(20.4, "4H", "A1"));
    inputs.push(tag_seen(20.6, "3D", "D4"));
    let out = run(&mut e, inputs);
    assert!(!out.iter().any(|e| e.kind == "round.result"), "{out:#?}");
    let out = run(&mut e, vec![tick(30.0)]);
    assert_eq!(held(&out).payload["reason"], "missing_confirmation");
    // RFID saw a 4H, just not a second one: it is the source named, with no card unseen.
    assert_eq!(held(&out).payload["detail"]["missing"], json!(["rfid"]));
    assert_eq!(held(&out).payload["detail"]["unconfirmed"], json!([]));

    // Two tags: two 4H.
    let mut e = Engine::new(rfid());
    let mut inputs = deal(&["4H", "2C", "4H", "3D"]);
    inputs.push(tag_seen(20.0, "4H", "A1"));
    inputs.push(tag_seen(20.2, "2C", "C3"));
    inputs.push(tag_seen(20.4, "4H", "B2"));
    inputs.push(tag_seen(20.6, "3D", "D4"));
    assert!(paid(&run(&mut e, inputs)));

    // Two tags of 9H where the shoe dealt one (whatever antennas read them).
    let mut e = Engine::new(rfid());
    let mut inputs = deal(&["9H", "8S", "KD", "QC"]);
    inputs.push(tag_seen(20.0, "9H", "A1"));
    inputs.push(Input::Witness {
        source: Source::Rfid,
        at: at(20.1),
        witness: Witness::Card {
            card: "9H".parse().expect("card"),
            zone: Some("antenna-2".into()),
        },
        detail: json!({ "device": "rfid", "uid": "B2" }),
    });
    let out = run(&mut e, inputs);
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "9H");
    assert_eq!(detail["rule"], "more_than_dealt");
    assert_eq!(detail["source"], "rfid");
}

#[test]
fn recovery_keeps_where_the_witnesses_saw_the_cards() {
    // Before the crash: four cards dealt, the camera saw the banker's 5S as 5C in the
    // banker's box. After it: the thirds, and the cross-check still knows where 5C lay.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&DEMO_COUP[..4]);
    inputs.push(seen_at(20.0, "5C", Some("player"), P1));
    inputs.push(seen_at(20.2, "5C", Some("banker"), B1));
    inputs.push(seen_at(20.4, "KH", Some("player"), P2));
    inputs.push(seen_at(20.6, "TD", Some("banker"), B2));
    let history = stamp_all(run(&mut e, inputs), 1);
    let (mut recovered, _) = recovery::recover(baccarat_vision_config(), &history, at(100.0));
    let out = run(
        &mut recovered,
        vec![
            card(101.0, "5S"),
            card(102.0, "2H"),
            seen_at(102.5, "5S", Some("player"), P3),
            seen_at(102.7, "2H", Some("banker"), B3),
        ],
    );
    let detail = &held(&out).payload["detail"];
    assert_eq!(detail["card"], "5C");
    assert_eq!(detail["zone"], "banker");

    // A card reported again after the restart, where it lay before: one card.
    let mut e = Engine::new(baccarat_vision_config());
    let mut inputs = deal(&["4H", "2C", "4D"]);
    inputs.push(seen_at(19.0, "4H", Some("player"), P1));
    inputs.push(seen_at(19.2, "2C", Some("banker"), B1));
    inputs.push(seen_at(19.4, "4D", Some("player"), P2));
    let history = stamp_all(run(&mut e, inputs), 1);
    let (mut recovered, _) = recovery::recover(baccarat_vision_config(), &history, at(100.0));
    let out = run(
        &mut recovered,
        vec![
            card(101.0, "3D"),
            seen_at(101.5, "4H", Some("player"), (P1.0 + 2.0, P1.1)),
            seen_at(101.7, "3D", Some("banker"), B2),
        ],
    );
    assert!(paid(&out), "{out:#?}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn arbitrary_input() -> impl Strategy<Value = (u8, u8, u16)> {
        (0u8..13, 0u8..40, 0u16..400)
    }

    fn make(kind: u8, value: u8, t: f64) -> Input {
        let cards = [
            "AS", "2H", "3D", "4C", "5S", "6H", "7D", "8C", "9S", "TH", "JD", "QC", "KS",
        ];
        match kind {
            0 | 1 => pedal(t),
            2 => tick(t),
            3 => wheel(t, WheelState::BallInRim, 0),
            4 => wheel(t, WheelState::WinningNumber, value % 38),
            5..=7 => card(t, cards[usize::from(value) % cards.len()]),
            8 => command(
                t,
                Command::Void {
                    reason: "test".into(),
                },
            ),
            9 => command(t, Command::Close),
            10 => pocket_seen(t, value % 37),
            12 => card_seen(t, cards[usize::from(value) % cards.len()], "player"),
            _ => command(
                t,
                Command::ManualResult(Approval {
                    person: format!("p{}", value % 3),
                    role: if value % 2 == 0 {
                        Role::Dealer
                    } else {
                        Role::Supervisor
                    },
                    result: json!({ "number": value % 2 }),
                }),
            ),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever arrives, in whatever order: at most one result per round, nothing after a
        /// void but the next round, and no close after its deadline.
        #[test]
        fn invariants_hold_for_any_input_sequence(
            game in 0u8..3,
            vision in any::<bool>(),
            inputs in prop::collection::vec(arbitrary_input(), 1..120),
        ) {
            let game = [Game::Roulette, Game::Baccarat, Game::Blackjack][usize::from(game)];
            let mut cfg = config(game);
            if vision {
                cfg.crosscheck.wheel.insert(Source::Vision);
                cfg.crosscheck.cards.insert(Source::Vision);
            }
            let mut e = Engine::new(cfg);
            let mut t = 0.0f64;
            let mut results: BTreeMap<String, u32> = BTreeMap::new();
            let mut voided: Vec<String> = Vec::new();
            let mut deadlines: BTreeMap<String, u64> = BTreeMap::new();
            for (kind, value, dt) in inputs {
                t += f64::from(dt) / 10.0;
                for out in e.handle(make(kind, value, t)) {
                    let Output::Event(ev) = out else { continue };
                    let id = ev.round_id.clone().unwrap_or_default();
                    if voided.contains(&id) && ev.kind != "round.settled" {
                        prop_assert!(false, "{} after the void of {}", ev.kind, id);
                    }
                    match ev.kind.as_str() {
                        "round.open" => {
                            deadlines.insert(id.clone(), ev.payload["deadline_mono_ns"].as_u64().unwrap_or(0));
                        }
                        "round.result" => *results.entry(id.clone()).or_default() += 1,
                        "round.void" => voided.push(id.clone()),
                        "round.close" => {
                            let deadline = deadlines.get(&id).copied().unwrap_or(u64::MAX);
                            prop_assert!(ev.at.mono_ns <= deadline, "close at {} after deadline {}", ev.at.mono_ns, deadline);
                        }
                        _ => {}
                    }
                }
            }
            for (id, n) in results {
                prop_assert!(n <= 1, "{n} results for {id}");
            }
        }
    }
}
