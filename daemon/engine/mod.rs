//! The table engine: a pure state machine that turns observations, commands and clock readings
//! into the table's events. No I/O: the same inputs always give the same events, so every rule
//! is tested without devices, and a restart rebuilds the state by replaying what was written.
//!
//! ```text
//!            pedal / command                 timer / pedal(early) / command / wheel
//!   idle ────────────────────────► open ──────────────────────────────────────► closed
//!    ▲ ▲                                                                          │ first card / ball in rim
//!    │ │ pedal / command (next round)                                             ▼
//!    │ └──────────── settled ◄── settle ack ── result ◄── result (+ cross-check) ── play
//!    │                                          ▲  │ mismatch / missing confirmation
//!    │                                          │  ▼
//!    │                         four-eyes manual result_pending
//!    └──────────────────── void (from any phase, with a reason) ◄───────────────────┘
//! ```
//!
//! `docs/engine.md` has the rules; `docs/events.md` every event's payload.

pub mod baccarat;
pub mod blackjack;
mod crosscheck;
pub mod recovery;
pub mod roulette;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use croupier_drivers::model::{Card, CardEvent, Observation};
use croupier_drivers::pedal::PedalEvent;
use croupier_drivers::wheel::{WheelEvent, WheelState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::format_utc;
use crate::config::Game;
use crosscheck::{Hand, Sighting};

/// An instant on both clocks: wall (UTC) and CLOCK_MONOTONIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub utc: SystemTime,
    pub mono_ns: u64,
}

impl At {
    /// This instant, on both clocks.
    pub fn now() -> At {
        let stamp = croupier_drivers::model::Stamp::now();
        At {
            utc: stamp.utc,
            mono_ns: stamp.mono_ns,
        }
    }

    pub fn plus(self, by: Duration) -> At {
        At {
            utc: self.utc + by,
            mono_ns: self
                .mono_ns
                .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX)),
        }
    }
}

/// What triggered a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Pedal,
    Timer,
    Wheel,
    Shoe,
    Rfid,
    Vision,
    Command,
    Manual,
    /// Device health and recovery decisions.
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Pedal => "pedal",
            Source::Timer => "timer",
            Source::Wheel => "wheel",
            Source::Shoe => "shoe",
            Source::Rfid => "rfid",
            Source::Vision => "vision",
            Source::Command => "command",
            Source::Manual => "manual",
            Source::System => "system",
        }
    }
}

/// Who approves a manual result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Dealer,
    Supervisor,
}

/// One person's signed approval of a manual result (the signature is checked at the uplink).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub person: String,
    pub role: Role,
    /// The result as the person states it: `{"number": 17}` for roulette, the cards for card
    /// games (`{"player": ["9H","KD"], "banker": ["8S","QC"]}`).
    pub result: Value,
}

/// Orders from the orchestrator (authenticated by the uplink) or from the table's staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Open,
    Close,
    Void {
        reason: String,
    },
    ManualResult(Approval),
    /// The orchestrator has settled this round.
    Settled {
        round_id: String,
    },
    /// Blackjack: a player's decision for a box.
    Decision {
        box_no: u8,
        decision: blackjack::Decision,
    },
    /// A line for the dealer's prompter (journaled and published as `prompter.message`).
    Message {
        text: String,
        level: String,
        ttl_s: u64,
    },
}

/// A second witness for a card or a number (vision, RFID), already mapped to the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witness {
    Card { card: Card, zone: Option<String> },
    Pocket { number: u8 },
}

/// Everything the engine reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Device {
        device: String,
        source: Source,
        at: At,
        observation: Observation,
    },
    DeviceHealth {
        device: String,
        up: bool,
        detail: String,
        at: At,
    },
    Witness {
        source: Source,
        at: At,
        witness: Witness,
        /// What the witness adds to its `card.seen` / `pocket.seen` event: vision's
        /// `confidence` and the frame's `timecode`, an RFID reader's antenna. An object, or null.
        detail: Value,
    },
    /// A camera's vision calibration was loaded or changed: journaled as `vision.calibration`.
    Calibration {
        at: At,
        /// `{camera, path, version, sha256, …}`.
        detail: Value,
    },
    Command {
        source: Source,
        at: At,
        command: Command,
    },
    Tick {
        at: At,
    },
}

/// An event as the engine decides it; the edge adds seq, id, timecode and clock quality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    /// `round.open`, `round.close`, `alert.mismatch`, …
    pub kind: String,
    pub round_id: Option<String>,
    pub source: Source,
    pub at: At,
    pub payload: Value,
}

/// What the engine asks of the edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Event(EngineEvent),
    /// Call [`Engine::handle`] with a tick at (or soon after) this CLOCK_MONOTONIC instant.
    Timer {
        at_mono_ns: u64,
    },
}

/// Which sources must confirm a result, and within what window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossCheck {
    pub window: Duration,
    /// Sources that must confirm the wheel's number (e.g. vision).
    pub wheel: BTreeSet<Source>,
    /// Sources that must confirm each card from the shoe (vision, rfid).
    pub cards: BTreeSet<Source>,
}

impl Default for CrossCheck {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3),
            wheel: BTreeSet::new(),
            cards: BTreeSet::new(),
        }
    }
}

/// The engine's settings, from the table's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub table_id: String,
    pub game: Game,
    pub bet_window: Duration,
    /// The pedal may close betting before the deadline.
    pub early_close: bool,
    pub wheel: roulette::WheelType,
    pub blackjack: blackjack::Rules,
    pub crosscheck: CrossCheck,
}

/// The table's phase, as the prompter and the orchestrator see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Open,
    Closed,
    Play,
    ResultPending,
    Result,
    Settled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Open => "open",
            Phase::Closed => "closed",
            Phase::Play => "play",
            Phase::ResultPending => "result_pending",
            Phase::Result => "result",
            Phase::Settled => "settled",
        }
    }
}

/// The game being played in the current round.
#[derive(Debug, Clone)]
enum GameRound {
    Roulette {
        /// The wheel's number, once it came, waiting for confirmation.
        number: Option<u8>,
        /// Numbers the witnesses reported, with their source.
        witnessed: Vec<(Source, u8)>,
    },
    Baccarat {
        coup: baccarat::Coup,
        cards: Vec<Card>,
        witnessed: Vec<Sighting>,
    },
    Blackjack {
        round: blackjack::Round,
        cards: Vec<Card>,
        witnessed: Vec<Sighting>,
    },
}

#[derive(Debug, Clone)]
struct Round {
    id: String,
    opened: At,
    deadline: At,
    closed: Option<At>,
    game: GameRound,
    /// When the primary result came and the witnesses' window ends.
    confirm_by: Option<At>,
    /// The result awaiting confirmation (roulette number or card outcome as JSON).
    candidate: Option<Value>,
    approvals: Vec<Approval>,
    pending_reason: Option<String>,
}

impl Round {
    /// A new round of the configured game, opened at `opened`, betting until `deadline`.
    fn new(id: String, opened: At, deadline: At, cfg: &EngineConfig) -> Self {
        let game = match cfg.game {
            Game::Roulette => GameRound::Roulette {
                number: None,
                witnessed: Vec::new(),
            },
            Game::Baccarat => GameRound::Baccarat {
                coup: baccarat::Coup::new(),
                cards: Vec::new(),
                witnessed: Vec::new(),
            },
            Game::Blackjack => GameRound::Blackjack {
                round: blackjack::Round::new(cfg.blackjack.clone()),
                cards: Vec::new(),
                witnessed: Vec::new(),
            },
        };
        Round {
            id,
            opened,
            deadline,
            closed: None,
            game,
            confirm_by: None,
            candidate: None,
            approvals: Vec::new(),
            pending_reason: None,
        }
    }
}

/// The snapshot published as the retained `state` and shown on the prompter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub phase: Phase,
    pub round_id: Option<String>,
    pub opened_utc: Option<String>,
    pub deadline_utc: Option<String>,
    pub deadline_mono_ns: Option<u64>,
    pub last_result: Option<Value>,
    pub pending_reason: Option<String>,
}

/// The table engine.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    phase: Phase,
    round: Option<Round>,
    /// Rounds opened so far (the last part of round ids), continued across restarts.
    counter: u64,
    last_result: Option<Value>,
    last_round_id: Option<String>,
    /// The uplink's outbox is full: no new round may open (its events could not be kept).
    outbox_full: bool,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            cfg,
            phase: Phase::Idle,
            round: None,
            counter: 0,
            last_result: None,
            last_round_id: None,
            outbox_full: false,
        }
    }

    /// Tells the engine whether the outbox is full. While it is, opening a round is refused
    /// with `alert.outbox_full`; a round in progress plays on (its events are few).
    pub fn set_outbox_full(&mut self, full: bool) {
        self.outbox_full = full;
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: self.phase,
            round_id: self
                .round
                .as_ref()
                .map(|r| r.id.clone())
                .or_else(|| self.last_round_id.clone()),
            opened_utc: self.round.as_ref().map(|r| format_utc(r.opened.utc)),
            deadline_utc: self
                .round
                .as_ref()
                .filter(|_| self.phase == Phase::Open)
                .map(|r| format_utc(r.deadline.utc)),
            deadline_mono_ns: self
                .round
                .as_ref()
                .filter(|_| self.phase == Phase::Open)
                .map(|r| r.deadline.mono_ns),
            last_result: self.last_result.clone(),
            pending_reason: self.round.as_ref().and_then(|r| r.pending_reason.clone()),
        }
    }

    /// The one entry point: an input in, events and timer requests out.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Out::default();
        match input {
            Input::Tick { at } => self.tick(at, &mut out),
            Input::DeviceHealth {
                device,
                up,
                detail,
                at,
            } => {
                let kind = if up { "device.up" } else { "device.down" };
                out.event(
                    kind,
                    self.round_id(),
                    Source::System,
                    at,
                    json!({ "device": device, "detail": detail }),
                );
            }
            Input::Command {
                source,
                at,
                command,
            } => self.command(source, at, command, &mut out),
            Input::Device {
                device,
                source,
                at,
                observation,
            } => {
                // A timer that should already have fired closes betting before anything else is
                // judged, so no observation can land in a window that has ended.
                self.tick(at, &mut out);
                self.observation(&device, source, at, observation, &mut out);
            }
            Input::Witness {
                source,
                at,
                witness,
                detail,
            } => {
                self.tick(at, &mut out);
                self.witness(source, at, witness, detail, &mut out);
            }
            Input::Calibration { at, detail } => {
                self.tick(at, &mut out);
                out.event("vision.calibration", None, Source::Vision, at, detail);
            }
        }
        out.0
    }

    fn round_id(&self) -> Option<String> {
        self.round.as_ref().map(|r| r.id.clone())
    }

    fn alert(&self, out: &mut Out, kind: &str, source: Source, at: At, payload: Value) {
        out.event(
            &format!("alert.{kind}"),
            self.round_id(),
            source,
            at,
            payload,
        );
    }

    // ---- opening and closing ------------------------------------------------------------

    fn open(&mut self, source: Source, at: At, out: &mut Out) {
        if self.outbox_full {
            self.alert(out, "outbox_full", source, at, json!({
                "reason": "the uplink's outbox is full: the broker has not acknowledged events for too long",
                "action": "no new round until the orchestrator's broker is reachable again; call the technician",
            }));
            return;
        }
        match self.phase {
            Phase::Idle | Phase::Result | Phase::Settled => {}
            other => {
                self.alert(out, "unexpected_open", source, at, json!({ "phase": other.as_str(), "reason": "a round is in progress; finish or void it first" }));
                return;
            }
        }
        self.counter += 1;
        let id = round_id(&self.cfg.table_id, at.utc, self.counter);
        let deadline = at.plus(self.cfg.bet_window);
        self.round = Some(Round::new(id.clone(), at, deadline, &self.cfg));
        self.last_round_id = Some(id.clone());
        self.phase = Phase::Open;
        out.event(
            "round.open",
            Some(id),
            source,
            at,
            json!({
                "game": self.cfg.game.as_str(),
                "bet_window_ms": self.cfg.bet_window.as_millis() as u64,
                "deadline_utc": format_utc(deadline.utc),
                "deadline_mono_ns": deadline.mono_ns,
            }),
        );
        out.timer(deadline.mono_ns);
    }

    fn close(&mut self, source: Source, at: At, out: &mut Out) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        // A close by the timer is stamped at the deadline itself if the tick came late: the
        // window ended then, whatever the scheduler did. The actual instant is kept too.
        let stamp = if source == Source::Timer && at.mono_ns > round.deadline.mono_ns {
            round.deadline
        } else {
            at
        };
        round.closed = Some(stamp);
        self.phase = Phase::Closed;
        let late_us = at.mono_ns.saturating_sub(round.deadline.mono_ns) / 1000;
        let early_ms = round.deadline.mono_ns.saturating_sub(at.mono_ns) / 1_000_000;
        let payload = json!({
            "deadline_utc": format_utc(round.deadline.utc),
            "deadline_mono_ns": round.deadline.mono_ns,
            "closed_utc": format_utc(stamp.utc),
            "closed_mono_ns": stamp.mono_ns,
            "processed_mono_ns": at.mono_ns,
            "late_us": late_us,
            "early_ms": early_ms,
        });
        let id = round.id.clone();
        out.event("round.close", Some(id), source, stamp, payload);
    }

    fn play(&mut self, source: Source, at: At, out: &mut Out) {
        if self.phase == Phase::Closed {
            self.phase = Phase::Play;
            out.event("round.play", self.round_id(), source, at, json!({}));
        }
    }

    fn tick(&mut self, at: At, out: &mut Out) {
        if self.phase == Phase::Open {
            if let Some(deadline) = self.round.as_ref().map(|r| r.deadline) {
                if at.mono_ns >= deadline.mono_ns {
                    self.close(Source::Timer, at, out);
                }
            }
        }
        let confirm_due = self
            .round
            .as_ref()
            .and_then(|r| r.confirm_by)
            .is_some_and(|by| at.mono_ns >= by.mono_ns);
        if confirm_due && matches!(self.phase, Phase::Play | Phase::Closed) {
            self.settle_candidate(at, true, out);
        }
    }

    // ---- commands -------------------------------------------------------------------------

    fn command(&mut self, source: Source, at: At, command: Command, out: &mut Out) {
        match command {
            Command::Open => {
                self.tick(at, out);
                self.open(source, at, out);
            }
            Command::Close => {
                self.tick(at, out);
                if self.phase == Phase::Open {
                    self.close(source, at, out);
                } else {
                    self.alert(
                        out,
                        "unexpected_close",
                        source,
                        at,
                        json!({ "phase": self.phase.as_str() }),
                    );
                }
            }
            Command::Void { reason } => self.void(source, at, &reason, out),
            Command::Message { text, level, ttl_s } => out.event(
                "prompter.message",
                self.round_id(),
                source,
                at,
                json!({ "text": text, "level": level, "ttl_s": ttl_s }),
            ),
            Command::ManualResult(approval) => self.approve(source, at, approval, out),
            Command::Settled { round_id } => {
                let known = self.last_round_id.as_deref() == Some(round_id.as_str());
                out.event(
                    "round.settled",
                    Some(round_id),
                    source,
                    at,
                    json!({ "known_round": known }),
                );
                if known && self.phase == Phase::Result {
                    self.phase = Phase::Settled;
                }
            }
            Command::Decision { box_no, decision } => {
                let phase = self.phase;
                let Some(Round {
                    game: GameRound::Blackjack { round, .. },
                    ..
                }) = self.round.as_mut()
                else {
                    self.alert(
                        out,
                        "unexpected_decision",
                        source,
                        at,
                        json!({ "box": box_no, "reason": "no blackjack round in play" }),
                    );
                    return;
                };
                if !matches!(phase, Phase::Closed | Phase::Play) {
                    self.alert(
                        out,
                        "unexpected_decision",
                        source,
                        at,
                        json!({ "box": box_no, "phase": phase.as_str() }),
                    );
                    return;
                }
                match round.apply(box_no, decision) {
                    Ok(_) => out.event(
                        "round.decision",
                        self.round_id(),
                        source,
                        at,
                        json!({ "box": box_no, "decision": decision }),
                    ),
                    Err(err) => self.alert(
                        out,
                        "unexpected_decision",
                        source,
                        at,
                        json!({ "box": box_no, "reason": err.to_string() }),
                    ),
                }
                self.maybe_finish_cards(at, out);
            }
        }
    }

    fn void(&mut self, source: Source, at: At, reason: &str, out: &mut Out) {
        if self.round.is_none()
            || matches!(self.phase, Phase::Idle | Phase::Result | Phase::Settled)
        {
            self.alert(
                out,
                "unexpected_void",
                source,
                at,
                json!({ "phase": self.phase.as_str(), "reason": "no round in progress" }),
            );
            return;
        }
        out.event(
            "round.void",
            self.round_id(),
            source,
            at,
            json!({ "reason": reason, "phase": self.phase.as_str() }),
        );
        self.round = None;
        self.phase = Phase::Idle;
    }

    /// Four-eyes: a manual result takes two approvals of the same result by two distinct
    /// people, one dealer and one supervisor.
    fn approve(&mut self, source: Source, at: At, approval: Approval, out: &mut Out) {
        if self.phase != Phase::ResultPending {
            self.alert(out, "unexpected_manual_result", source, at, json!({ "phase": self.phase.as_str(), "reason": "only a round held in result_pending takes a manual result" }));
            return;
        }
        let Some(round) = self.round.as_mut() else {
            return;
        };
        if round.approvals.iter().any(|a| a.person == approval.person) {
            let person = approval.person.clone();
            self.alert(out, "duplicate_approval", source, at, json!({ "person": person, "reason": "the second approval must come from another person" }));
            return;
        }
        round.approvals.push(approval.clone());
        out.event(
            "result.approval",
            Some(round.id.clone()),
            source,
            at,
            json!({ "person": approval.person, "role": approval.role, "result": approval.result }),
        );
        let agreeing: Vec<&Approval> = round
            .approvals
            .iter()
            .filter(|a| a.result == approval.result)
            .collect();
        let dealer = agreeing.iter().any(|a| a.role == Role::Dealer);
        let supervisor = agreeing.iter().any(|a| a.role == Role::Supervisor);
        if dealer && supervisor {
            let people: Vec<&str> = agreeing.iter().map(|a| a.person.as_str()).collect();
            let result = json!({ "manual": approval.result, "approved_by": people });
            self.publish_result(Source::Manual, at, result, out);
        } else if round.approvals.len() >= 2
            && !agreeing.iter().any(|a| a.person != approval.person)
        {
            let approvals = round.approvals.clone();
            self.alert(
                out,
                "approvals_disagree",
                source,
                at,
                json!({ "approvals": approvals }),
            );
        }
    }

    // ---- observations ---------------------------------------------------------------------

    fn observation(
        &mut self,
        device: &str,
        source: Source,
        at: At,
        observation: Observation,
        out: &mut Out,
    ) {
        match observation {
            Observation::Pedal(PedalEvent::Press) => self.pedal(at, out),
            Observation::Pedal(_) => {}
            Observation::Wheel(event) => self.wheel(at, event, out),
            Observation::Card(CardEvent::Drawn { card, .. }) => {
                self.card(source, at, card, None, out)
            }
            Observation::Card(CardEvent::Burn { .. }) => {
                out.event(
                    "card.burn",
                    self.round_id(),
                    source,
                    at,
                    json!({ "device": device }),
                );
            }
            Observation::Card(CardEvent::Unreadable { text }) => {
                self.alert(out, "unreadable_card", source, at, json!({ "device": device, "text": text, "action": "reinsert the card or confirm it manually" }));
            }
            // RFID arrive/leave events are mapped to witnesses by the edge (tag registry).
            Observation::Rfid(_) => {}
        }
    }

    fn pedal(&mut self, at: At, out: &mut Out) {
        match self.phase {
            Phase::Idle | Phase::Result | Phase::Settled => self.open(Source::Pedal, at, out),
            Phase::Open if self.cfg.early_close => self.close(Source::Pedal, at, out),
            phase => self.alert(
                out,
                "unexpected_pedal",
                Source::Pedal,
                at,
                json!({ "phase": phase.as_str() }),
            ),
        }
    }

    fn wheel(&mut self, at: At, event: WheelEvent, out: &mut Out) {
        if self.cfg.game != Game::Roulette {
            return;
        }
        match event {
            WheelEvent::Status {
                state,
                number,
                warnings,
                ..
            } => {
                if warnings.void_game() && matches!(self.phase, Phase::Closed | Phase::Play) {
                    self.void(
                        Source::Wheel,
                        at,
                        "the wheel reported a void game / failed launch",
                        out,
                    );
                    return;
                }
                if warnings.0 != 0 {
                    self.alert(out, "wheel_warning", Source::Wheel, at, json!({ "flags": warnings.0, "ball_removed": warnings.ball_removed(), "sensor_fault": warnings.sensor_fault() }));
                }
                match state {
                    WheelState::BallInRim | WheelState::NoMoreBets => {
                        if self.phase == Phase::Open {
                            self.close(Source::Wheel, at, out);
                        }
                        self.play(Source::Wheel, at, out);
                    }
                    WheelState::WinningNumber => self.wheel_number(at, number, out),
                    _ => {}
                }
            }
            WheelEvent::WinningNumber { number } => self.wheel_number(at, number, out),
            WheelEvent::Error { text } => self.alert(
                out,
                "wheel_error",
                Source::Wheel,
                at,
                json!({ "text": text }),
            ),
            WheelEvent::Warning { text } => self.alert(
                out,
                "wheel_warning",
                Source::Wheel,
                at,
                json!({ "text": text }),
            ),
            WheelEvent::Power { .. } | WheelEvent::Other { .. } => {}
        }
    }

    fn wheel_number(&mut self, at: At, number: u8, out: &mut Out) {
        match self.phase {
            Phase::Closed | Phase::Play => {}
            // The bare number repeats the state-5 frame's number: only a different one alerts.
            Phase::Result | Phase::Settled | Phase::ResultPending => {
                let same = self.round.as_ref().and_then(|r| match &r.game {
                    GameRound::Roulette { number: n, .. } => *n,
                    _ => None,
                }) == Some(number);
                if !same && self.phase != Phase::Settled {
                    self.alert(
                        out,
                        "second_result",
                        Source::Wheel,
                        at,
                        json!({ "number": number }),
                    );
                }
                return;
            }
            Phase::Open => {
                self.alert(
                    out,
                    "unexpected_result",
                    Source::Wheel,
                    at,
                    json!({ "number": number, "reason": "a number during betting" }),
                );
                return;
            }
            Phase::Idle => return,
        }
        let pocket = match roulette::pocket(number, self.cfg.wheel) {
            Ok(p) => p,
            Err(err) => {
                self.alert(
                    out,
                    "invalid_result",
                    Source::Wheel,
                    at,
                    json!({ "number": number, "reason": err.to_string() }),
                );
                return;
            }
        };
        self.play(Source::Wheel, at, out);
        let window = self.cfg.crosscheck.window;
        let Some(round) = self.round.as_mut() else {
            return;
        };
        if let GameRound::Roulette { number: n, .. } = &mut round.game {
            if n.is_some() {
                return;
            }
            *n = Some(number);
        }
        out.event(
            "wheel.result",
            Some(round.id.clone()),
            Source::Wheel,
            at,
            json!({ "number": number, "label": pocket.label }),
        );
        round.candidate = Some(serde_json::to_value(&pocket).unwrap_or(Value::Null));
        round.confirm_by = Some(at.plus(window));
        out.timer(at.plus(window).mono_ns);
        self.settle_candidate(at, false, out);
    }

    fn card(&mut self, source: Source, at: At, card: Card, zone: Option<String>, out: &mut Out) {
        if self.cfg.game == Game::Roulette {
            return;
        }
        match self.phase {
            Phase::Closed | Phase::Play => {}
            phase => {
                self.alert(out, "unexpected_card", source, at, json!({ "card": card.to_string(), "phase": phase.as_str(), "action": "take the card back; it is not part of a round" }));
                return;
            }
        }
        self.play(source, at, out);
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let id = round.id.clone();
        let placed = match &mut round.game {
            GameRound::Baccarat { coup, cards, .. } => {
                let side = coup.expected_next();
                match coup.push(card) {
                    Ok(_) => {
                        cards.push(card);
                        Ok(json!({ "card": card.to_string(), "side": side, "index": cards.len() }))
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            GameRound::Blackjack {
                round: bj, cards, ..
            } => {
                let zone_parsed = zone.as_deref().and_then(blackjack::Zone::parse);
                match bj.card(card, zone_parsed) {
                    Ok(position) => {
                        cards.push(card);
                        // The hole card is recorded (the record must be complete) but marked,
                        // so displays keep it face down until the dealer turns it.
                        let hole = position == blackjack::Position::DealerHole;
                        Ok(json!({
                            "card": card.to_string(),
                            "position": position,
                            "index": cards.len(),
                            "hole": hole,
                        }))
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            GameRound::Roulette { .. } => return,
        };
        match placed {
            Ok(payload) => out.event("card.dealt", Some(id), source, at, payload),
            Err(reason) => {
                self.alert(out, "unexpected_card", source, at, json!({ "card": card.to_string(), "reason": reason, "action": "take the card back and call the supervisor" }));
                return;
            }
        }
        self.maybe_finish_cards(at, out);
    }

    /// When a card game's hand is complete, the outcome becomes the candidate result.
    fn maybe_finish_cards(&mut self, at: At, out: &mut Out) {
        let window = self.cfg.crosscheck.window;
        let Some(round) = self.round.as_mut() else {
            return;
        };
        if round.candidate.is_some() {
            return;
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
        let Some(outcome) = outcome else {
            return;
        };
        round.candidate = Some(outcome);
        round.confirm_by = Some(at.plus(window));
        out.timer(at.plus(window).mono_ns);
        self.settle_candidate(at, false, out);
    }

    fn witness(&mut self, source: Source, at: At, witness: Witness, detail: Value, out: &mut Out) {
        // Every sighting is journaled, in a round or not: the record shows what each witness
        // saw, and the orchestrator can audit the cross-check.
        let (kind, mut payload) = match &witness {
            Witness::Card { card, zone } => (
                "card.seen",
                json!({ "card": card.to_string(), "zone": zone }),
            ),
            Witness::Pocket { number } => ("pocket.seen", json!({ "number": number })),
        };
        if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), detail) {
            for (k, v) in extra {
                payload.entry(k).or_insert(v);
            }
        }
        // Weighed from the event's payload, as a replay after a restart weighs it.
        let sighting = match &witness {
            Witness::Card { card, zone } => {
                Some(Sighting::from_seen(source, *card, zone.clone(), &payload))
            }
            Witness::Pocket { .. } => None,
        };
        out.event(kind, self.round_id(), source, at, payload);
        let Some(round) = self.round.as_mut() else {
            return;
        };
        match (&mut round.game, witness, sighting) {
            (GameRound::Roulette { witnessed, .. }, Witness::Pocket { number }, _) => {
                witnessed.push((source, number))
            }
            (
                GameRound::Baccarat { witnessed, .. } | GameRound::Blackjack { witnessed, .. },
                Witness::Card { .. },
                Some(sighting),
            ) => witnessed.push(sighting),
            _ => return,
        }
        if matches!(self.phase, Phase::Closed | Phase::Play) {
            self.settle_candidate(at, false, out);
        }
    }

    /// Publishes the candidate result if every required witness agrees; holds the round in
    /// `result_pending` on a disagreement, or (once the window is over) a missing witness.
    fn settle_candidate(&mut self, at: At, window_over: bool, out: &mut Out) {
        let crosscheck = self.cfg.crosscheck.clone();
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let Some(candidate) = round.candidate.clone() else {
            return;
        };
        let verdict = match &round.game {
            GameRound::Roulette { number, witnessed } => {
                let number = number.unwrap_or(u8::MAX);
                check_witnesses(
                    &crosscheck.wheel,
                    witnessed.iter().map(|(s, n)| (*s, *n == number, json!(n))),
                )
            }
            GameRound::Baccarat {
                coup,
                cards,
                witnessed,
            } => crosscheck::check_cards(&crosscheck.cards, cards, witnessed, |zone| {
                baccarat_hand(coup, zone)
            }),
            GameRound::Blackjack {
                round: bj,
                cards,
                witnessed,
            } => crosscheck::check_cards(&crosscheck.cards, cards, witnessed, |zone| {
                blackjack_hand(bj, zone)
            }),
        };
        match verdict {
            Verdict::Agree => {
                self.publish_result(primary_source(self.cfg.game), at, candidate, out)
            }
            Verdict::Disagree(detail) => self.hold(at, "mismatch", detail, out),
            Verdict::Waiting if window_over => {
                let detail = missing_detail(&crosscheck, &round.game);
                self.hold(at, "missing_confirmation", detail, out);
            }
            Verdict::Waiting => {}
        }
    }

    fn hold(&mut self, at: At, why: &str, detail: Value, out: &mut Out) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        round.pending_reason = Some(why.to_owned());
        round.confirm_by = None;
        let candidate = round.candidate.clone();
        self.phase = Phase::ResultPending;
        self.alert(out, "mismatch", Source::System, at, json!({
            "reason": why,
            "detail": detail,
            "candidate": candidate,
            "action": "stop the game; a dealer and a supervisor confirm the result (two approvals) or void the round",
        }));
    }

    fn publish_result(&mut self, source: Source, at: At, result: Value, out: &mut Out) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        round.confirm_by = None;
        round.pending_reason = None;
        let id = round.id.clone();
        self.phase = Phase::Result;
        self.last_result = Some(json!({ "round_id": id, "result": result }));
        out.event(
            "round.result",
            Some(id),
            source,
            at,
            json!({ "game": self.cfg.game.as_str(), "result": result }),
        );
    }
}

fn primary_source(game: Game) -> Source {
    match game {
        Game::Roulette => Source::Wheel,
        Game::Baccarat | Game::Blackjack => Source::Shoe,
    }
}

enum Verdict {
    Agree,
    Disagree(Value),
    Waiting,
}

/// Each required source must have reported, and agreed; any report that disagrees is a
/// mismatch at once.
fn check_witnesses(
    required: &BTreeSet<Source>,
    reports: impl Iterator<Item = (Source, bool, Value)>,
) -> Verdict {
    let mut agreed = BTreeSet::new();
    for (source, agrees, value) in reports {
        if !agrees {
            return Verdict::Disagree(json!({ "source": source, "reported": value }));
        }
        agreed.insert(source);
    }
    if required.iter().all(|s| agreed.contains(s)) {
        Verdict::Agree
    } else {
        Verdict::Waiting
    }
}

/// What a round held for a missing confirmation still lacks: for cards `unconfirmed`, per
/// required source, the dealt cards it has not seen at all, and `missing`, the sources named
/// there (the wheel: the sources that reported nothing). When none can be named (every card
/// seen, but a second copy not told apart: two RFID tags for a card dealt twice), `missing`
/// lists every required source, as it did before it was precise.
fn missing_detail(crosscheck: &CrossCheck, game: &GameRound) -> Value {
    let (required, unconfirmed): (&BTreeSet<Source>, Vec<(Source, Vec<String>)>) = match game {
        GameRound::Roulette { witnessed, .. } => (
            &crosscheck.wheel,
            crosscheck
                .wheel
                .iter()
                .filter(|s| !witnessed.iter().any(|(w, _)| w == *s))
                .map(|s| (*s, Vec::new()))
                .collect(),
        ),
        GameRound::Baccarat {
            cards, witnessed, ..
        }
        | GameRound::Blackjack {
            cards, witnessed, ..
        } => (
            &crosscheck.cards,
            crosscheck
                .cards
                .iter()
                .map(|s| {
                    let mut unseen: Vec<String> = Vec::new();
                    for c in cards {
                        let seen = witnessed.iter().any(|w| w.source == *s && w.card == *c);
                        if !seen && !unseen.contains(&c.to_string()) {
                            unseen.push(c.to_string());
                        }
                    }
                    (*s, unseen)
                })
                .filter(|(_, unseen)| !unseen.is_empty())
                .collect(),
        ),
    };
    let missing: Vec<Source> = if unconfirmed.is_empty() {
        required.iter().copied().collect()
    } else {
        unconfirmed.iter().map(|(s, _)| *s).collect()
    };
    let mut detail = json!({ "missing": missing });
    if matches!(
        game,
        GameRound::Baccarat { .. } | GameRound::Blackjack { .. }
    ) {
        detail["unconfirmed"] = unconfirmed
            .iter()
            .map(|(s, cards)| json!({ "source": s, "cards": cards }))
            .collect();
    }
    detail
}

/// The baccarat hand a witness's zone names (`player`, `banker`, any case), with its cards.
fn baccarat_hand(coup: &baccarat::Coup, zone: &str) -> Option<Hand> {
    let (player, banker) = coup.cards();
    let zone = zone.trim();
    [("player", player), ("banker", banker)]
        .into_iter()
        .find(|(name, _)| zone.eq_ignore_ascii_case(name))
        .map(|(name, cards)| Hand {
            name: name.to_owned(),
            cards: cards.to_vec(),
        })
}

/// The blackjack hand a witness's zone names (`dealer`, `box3`, `box 3`, …), with its cards:
/// every hand of a box after a split; a box not in play is a hand with no cards.
fn blackjack_hand(round: &blackjack::Round, zone: &str) -> Option<Hand> {
    let zone = blackjack::Zone::parse(zone)?;
    Some(Hand {
        name: zone.to_string(),
        cards: round.zone_cards(zone),
    })
}

/// `rl-01-20261121T142310Z-0007`: table, UTC of the opening, a counter that survives restarts.
pub fn round_id(table: &str, at: SystemTime, counter: u64) -> String {
    let dt = time::OffsetDateTime::from(at);
    format!(
        "{table}-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{counter:04}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests;

/// Collects outputs.
#[derive(Default)]
struct Out(Vec<Output>);

impl Out {
    fn event(
        &mut self,
        kind: &str,
        round_id: Option<String>,
        source: Source,
        at: At,
        payload: Value,
    ) {
        self.0.push(Output::Event(EngineEvent {
            kind: kind.to_owned(),
            round_id,
            source,
            at,
            payload,
        }));
    }

    fn timer(&mut self, at_mono_ns: u64) {
        self.0.push(Output::Timer { at_mono_ns });
    }
}
