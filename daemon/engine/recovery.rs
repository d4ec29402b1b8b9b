//! Crash recovery: the engine's state rebuilt from the durable event log.
//!
//! The engine acts only on events it has written, so replaying them gives back exactly the
//! state it had, whatever stopped it (SIGKILL, power loss). Then one rule per phase decides:
//!
//! | phase at the crash | after the restart |
//! | --- | --- |
//! | open (bets open) | **voided**: the daemon cannot prove the window closed on time while it was down |
//! | closed, play | **resumed**: dealt cards and the wheel's number are kept; the game goes on |
//! | result_pending | **still pending**: approvals so far are kept |
//! | idle, result, settled | nothing to do |
//!
//! Every restart that finds a round in progress says so with a `round.resumed` or
//! `round.void` event, so the record shows the gap. Round numbering continues.

use serde_json::{json, Value};

use super::*;
use crate::events::Envelope;

/// Rebuilds the engine from `history` and applies the recovery rule at `now`.
pub fn recover(cfg: EngineConfig, history: &[Envelope], now: At) -> (Engine, Vec<Output>) {
    let mut engine = Engine::new(cfg);
    for env in history {
        replay(&mut engine, env, now);
    }
    let mut out = Out::default();
    match engine.phase {
        Phase::Open => {
            let id = engine.round_id();
            out.event(
                "round.void",
                id,
                Source::System,
                now,
                json!({ "reason": "the daemon restarted while bets were open; the close of the bet window cannot be proven", "phase": "open" }),
            );
            engine.round = None;
            engine.phase = Phase::Idle;
        }
        Phase::Closed | Phase::Play | Phase::ResultPending => {
            let cards = engine.round.as_ref().map_or(0, |r| match &r.game {
                GameRound::Baccarat { cards, .. } | GameRound::Blackjack { cards, .. } => {
                    cards.len()
                }
                GameRound::Roulette { .. } => 0,
            });
            out.event(
                "round.resumed",
                engine.round_id(),
                Source::System,
                now,
                json!({ "phase": engine.phase.as_str(), "cards_dealt": cards }),
            );
            // A result waiting for its witnesses gets a fresh window.
            if engine.phase != Phase::ResultPending {
                let window = engine.cfg.crosscheck.window;
                if let Some(round) = engine.round.as_mut() {
                    if round.candidate.is_some() {
                        round.confirm_by = Some(now.plus(window));
                        out.timer(now.plus(window).mono_ns);
                    }
                }
            }
        }
        Phase::Idle | Phase::Result | Phase::Settled => {}
    }
    (engine, out.0)
}

fn replay(engine: &mut Engine, env: &Envelope, now: At) {
    if let Some(n) = env.round_id.as_deref().and_then(round_counter) {
        engine.counter = engine.counter.max(n);
    }
    let payload = &env.payload;
    match env.kind.as_str() {
        "round.open" => {
            let id = env.round_id.clone().unwrap_or_default();
            // Monotonic instants of a previous boot mean nothing now; only the phase matters.
            engine.round = Some(Round::new(id.clone(), now, now, &engine.cfg));
            engine.last_round_id = Some(id);
            engine.phase = Phase::Open;
        }
        "round.close" => engine.phase = Phase::Closed,
        "round.play" => engine.phase = Phase::Play,
        "card.dealt" => {
            let card = payload["card"]
                .as_str()
                .and_then(|c| c.parse::<Card>().ok());
            let zone = payload["position"].clone();
            if let (Some(card), Some(round)) = (card, engine.round.as_mut()) {
                match &mut round.game {
                    GameRound::Baccarat { coup, cards, .. } => {
                        let _ = coup.push(card);
                        cards.push(card);
                    }
                    GameRound::Blackjack {
                        round: bj, cards, ..
                    } => {
                        let zone = serde_json::from_value::<blackjack::Position>(zone)
                            .ok()
                            .and_then(|p| blackjack::Zone::of_position(&p));
                        let _ = bj.card(card, zone);
                        cards.push(card);
                    }
                    GameRound::Roulette { .. } => {}
                }
                let outcome = match &round.game {
                    GameRound::Baccarat { coup, .. } => coup
                        .outcome()
                        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null)),
                    GameRound::Blackjack { round: bj, .. } => bj
                        .outcome()
                        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null)),
                    GameRound::Roulette { .. } => None,
                };
                if outcome.is_some() {
                    round.candidate = outcome;
                }
            }
        }
        "round.decision" => {
            if let Some(Round {
                game: GameRound::Blackjack { round: bj, .. },
                ..
            }) = engine.round.as_mut()
            {
                let box_no = payload["box"].as_u64().and_then(|b| u8::try_from(b).ok());
                let decision =
                    serde_json::from_value::<blackjack::Decision>(payload["decision"].clone()).ok();
                if let (Some(box_no), Some(decision)) = (box_no, decision) {
                    let _ = bj.apply(box_no, decision);
                }
            }
        }
        // What the witnesses saw counts again after a restart, where they saw it, so a
        // confirmed card needs no second sighting and a card seen in the wrong hand before the
        // crash still holds the round.
        "card.seen" | "pocket.seen" => {
            if let Some(round) = engine.round.as_mut() {
                match &mut round.game {
                    GameRound::Roulette { witnessed, .. } => {
                        if let Some(n) = payload["number"]
                            .as_u64()
                            .and_then(|n| u8::try_from(n).ok())
                        {
                            witnessed.push((env.source, n));
                        }
                    }
                    GameRound::Baccarat { witnessed, .. }
                    | GameRound::Blackjack { witnessed, .. } => {
                        if let Some(card) = payload["card"]
                            .as_str()
                            .and_then(|c| c.parse::<Card>().ok())
                        {
                            // The zone, and what tells the card from another (the camera's
                            // corners, the RFID tag), as the live engine weighed them.
                            let zone = payload["zone"].as_str().map(str::to_owned);
                            witnessed.push(Sighting::from_seen(env.source, card, zone, payload));
                        }
                    }
                }
            }
        }
        "wheel.result" => {
            let number = payload["number"]
                .as_u64()
                .and_then(|n| u8::try_from(n).ok());
            let wheel = engine.cfg.wheel;
            if let (Some(number), Some(round)) = (number, engine.round.as_mut()) {
                if let GameRound::Roulette { number: n, .. } = &mut round.game {
                    *n = Some(number);
                }
                round.candidate = roulette::pocket(number, wheel)
                    .ok()
                    .map(|p| serde_json::to_value(p).unwrap_or(Value::Null));
            }
        }
        "alert.mismatch" => {
            if let Some(round) = engine.round.as_mut() {
                round.pending_reason = payload["reason"].as_str().map(str::to_owned);
            }
            engine.phase = Phase::ResultPending;
        }
        "result.approval" => {
            let approval = serde_json::from_value::<Approval>(json!({
                "person": payload["person"],
                "role": payload["role"],
                "result": payload["result"],
            }));
            if let (Ok(approval), Some(round)) = (approval, engine.round.as_mut()) {
                round.approvals.push(approval);
            }
        }
        "round.result" => {
            engine.phase = Phase::Result;
            engine.last_result =
                Some(json!({ "round_id": env.round_id, "result": payload["result"] }));
            if let Some(round) = engine.round.as_mut() {
                round.candidate = None;
                round.pending_reason = None;
            }
        }
        "round.settled"
            if engine.phase == Phase::Result && env.round_id == engine.last_round_id =>
        {
            engine.phase = Phase::Settled;
        }
        "round.void" => {
            engine.round = None;
            engine.phase = Phase::Idle;
        }
        _ => {}
    }
}

/// The counter at the end of a round id (`…-0007` → 7).
fn round_counter(id: &str) -> Option<u64> {
    id.rsplit('-').next()?.parse().ok()
}
