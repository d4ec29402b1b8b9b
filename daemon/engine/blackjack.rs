//! Blackjack as a live-dealer studio deals it: hand values, the dealer's drawing rule, and a
//! [`Round`] that follows every card of one round and knows where the next one belongs.
//!
//! Pure game rules: no I/O, no clock. The table engine feeds a [`Round`] the cards the shoe,
//! the RFID antennas or vision report, and the players' decisions the orchestrator sends; the
//! round answers where each card went, what it waits for next, and, once complete, the
//! [`Outcome`] the orchestrator settles bets against.
//!
//! # The table
//!
//! One dealer hand and up to seven player *boxes* (seats), numbered 1 to [`MAX_BOXES`] in the
//! order the dealer serves them (box 1 is dealt first, at the dealer's left). A round plays only
//! the boxes that have a bet ([`Round::with_boxes`]); [`Round::new`] plays every box of the table.
//!
//! The table's rules are [`Rules`]: whether the dealer hits soft 17, whether a hole card is dealt
//! and whether the dealer peeks at it. The defaults are what most live studios deal: the dealer
//! stands on soft 17 and deals no hole card (European no-hole-card, "ENHC").
//!
//! # The order of the cards
//!
//! 1. **First deal**: one card to each box in play (box 1 first), the dealer's up-card, a second
//!    card to each box, then, where [`Rules::hole_card`] is set, the dealer's face-down hole card.
//! 2. **Peek** (hole-card games only): when [`Rules::peek`] covers the up-card and the dealer has
//!    blackjack, the round is complete at once. Players with blackjack push; everyone else loses.
//! 3. **Players**: each box in turn, hand by hand. A hand waits for a decision
//!    ([`Decision::Hit`], [`Decision::Stand`], [`Decision::Double`], [`Decision::Split`]); a hit
//!    or a double is answered by one card. A hand that reaches 21 or busts is finished without
//!    a decision; a blackjack never plays.
//! 4. **Dealer**: in a no-hole-card game the dealer's second card, then the dealer draws while
//!    [`dealer_should_hit`] says so.
//!
//! # Where a card goes
//!
//! A card may come with the [`Zone`] it was seen in (an RFID antenna or a vision zone, mapped by
//! the table's config). The zone wins over the expected order, so readers that report the cards
//! of the first deal out of order, or a dealer who serves box 3 before box 2, are followed. A
//! card without a zone goes where [`Round::expected_next`] says.
//!
//! During the players' turns a card in the zone of a *later* box means the dealer has moved on:
//! the hands in between that were waiting for a decision are stood (a player whose decision time
//! ran out stands). A card is never placed where no card can be: the dealer's zone before the
//! players are done, a box that has finished, a box with no bet, or past a hand that is still
//! owed the card of a hit, a double or a split. Such a card is refused with
//! [`BlackjackError::UnexpectedCard`] and **the round is left exactly as it was**: the engine
//! raises an alert and the supervisor sorts out the table. The same holds for a decision that
//! does not fit ([`BlackjackError::UnexpectedDecision`]).
//!
//! # Rules fixed here (the orchestrator's betting rules decide the rest)
//!
//! * One split per box, of any two cards of the same value (two tens of different rank too).
//! * Split aces take one card each and then stand; an ace and a ten after a split is 21, not
//!   blackjack, and pays even money.
//! * Double on any two-card hand, after a split too: exactly one more card.
//! * A hand reaching 21 stands by itself.
//! * The dealer plays only when a hand depends on it: when every hand is bust the dealer draws
//!   nothing; when only blackjacks are left, a no-hole-card dealer takes the second card only if
//!   the up-card is an ace or a ten-value card (it can still make blackjack and push).
//! * A dealer blackjack beats every hand but a player blackjack, doubled and split hands
//!   included. Whether the extra stake of a double or a split is returned in that case (the
//!   "original bets only" rule of some no-hole-card tables) is the orchestrator's settlement
//!   rule; [`HandResult::doubled`] and the hands of each box tell it what it needs.
//! * Insurance, even money and surrender are side bets and bet actions, not card flows: the
//!   orchestrator handles them; this module never waits for them.
//!
//! # The hole card is a secret
//!
//! The round needs the hole card when it is dealt (a reading shoe gives it), to peek. The
//! position [`Position::DealerHole`] tells the engine that this card must not reach players
//! until the dealer turns it over; [`Round::snapshot`] leaves it out until then.

use std::fmt;
use std::str::FromStr;

use croupier_drivers::model::{Card, Rank};
use serde::{Deserialize, Serialize};

/// The most player boxes a blackjack table has (the classic seven-seat layout).
pub const MAX_BOXES: u8 = 7;

/// Points of one card, counting an ace as 1: the soft ace is decided for the whole hand.
fn points(rank: Rank) -> u8 {
    // Rank numbers run 1 (ace) to 13 (king); the court cards count 10.
    rank.number().min(10)
}

/// A ten, jack, queen or king: the cards that make blackjack with an ace.
fn is_ten_value(rank: Rank) -> bool {
    points(rank) == 10
}

/// An ace or a ten-value card: an up-card that can still become a dealer blackjack.
fn can_make_blackjack(rank: Rank) -> bool {
    rank == Rank::Ace || is_ten_value(rank)
}

/// The value of a hand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct HandValue {
    /// The best total: one ace counts 11 where that does not bust the hand, every other ace 1.
    pub total: u8,
    /// An ace counts 11 in `total` (so one more card cannot bust the hand).
    pub soft: bool,
    /// Exactly two cards making 21, not from a split: pays 3:2.
    pub blackjack: bool,
    /// Over 21.
    pub bust: bool,
}

impl HandValue {
    /// The value of the dealer's hand, or of a player hand that was not split.
    pub fn of(cards: &[Card]) -> Self {
        Self::of_hand(cards, false)
    }

    /// The value of a player hand; an ace and a ten on a hand `from_split` is 21, not blackjack.
    pub fn of_hand(cards: &[Card], from_split: bool) -> Self {
        // u32 so that no slice, however long, overflows the sum.
        let hard = cards
            .iter()
            .fold(0u32, |sum, card| sum.saturating_add(u32::from(points(card.rank))));
        // Two aces at 11 would be 22, so at most one ace is ever soft: add its extra 10 once.
        let soft = cards.iter().any(|card| card.rank == Rank::Ace) && hard <= 11;
        let total = if soft { hard + 10 } else { hard };
        let total = u8::try_from(total).unwrap_or(u8::MAX);
        Self {
            total,
            soft,
            blackjack: !from_split && cards.len() == 2 && total == 21,
            bust: total > 21,
        }
    }
}

/// Whether the dealer peeks for blackjack before the players act (hole-card games only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peek {
    /// No peek: a dealer blackjack shows only after the players have played.
    #[default]
    None,
    /// The dealer peeks with an ace up.
    AceOnly,
    /// The dealer peeks with an ace or a ten-value card up (the US hole-card game).
    AceOrTen,
}

impl Peek {
    /// Whether the dealer peeks with `up` as up-card.
    pub fn applies_to(self, up: Rank) -> bool {
        match self {
            Peek::None => false,
            Peek::AceOnly => up == Rank::Ace,
            Peek::AceOrTen => can_make_blackjack(up),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Peek::None => "none",
            Peek::AceOnly => "ace_only",
            Peek::AceOrTen => "ace_or_ten",
        }
    }
}

impl fmt::Display for Peek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A table's blackjack rules, from its config. The field names are the config keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default, deny_unknown_fields)]
pub struct Rules {
    /// H17: the dealer hits soft 17. Default `false` (S17, the dealer stands on all 17s).
    pub dealer_hits_soft_17: bool,
    /// Whether the dealer checks the hole card for blackjack before the players act. Needs
    /// `hole_card`. Default `none`.
    pub peek: Peek,
    /// The dealer's second card is dealt face down in the first deal (the US hole-card game).
    /// Default `false`: European no-hole-card, the second card comes after the players act.
    pub hole_card: bool,
    /// Player boxes on the table, 1 to 7. Default 7.
    pub boxes: u8,
}

impl Default for Rules {
    /// What most live studios deal: S17, no hole card, no peek, seven boxes.
    fn default() -> Self {
        Self {
            dealer_hits_soft_17: false,
            peek: Peek::None,
            hole_card: false,
            boxes: MAX_BOXES,
        }
    }
}

impl Rules {
    /// The first thing wrong with these rules, if any.
    pub fn validate(&self) -> Result<(), BlackjackError> {
        match self.errors().into_iter().next() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Everything wrong with these rules, for `croupier validate`, which reports every error at
    /// once.
    pub fn errors(&self) -> Vec<BlackjackError> {
        let mut errors = Vec::new();
        if !(1..=MAX_BOXES).contains(&self.boxes) {
            errors.push(BlackjackError::BoxesOutOfRange { boxes: self.boxes });
        }
        if self.peek != Peek::None && !self.hole_card {
            errors.push(BlackjackError::PeekWithoutHoleCard { peek: self.peek });
        }
        errors
    }
}

/// Whether the dealer draws another card to `cards`: below 17 always, on soft 17 only where the
/// table's rules say H17. A blackjack or a bust hand never draws.
pub fn dealer_should_hit(cards: &[Card], rules: &Rules) -> bool {
    let value = HandValue::of(cards);
    value.total < 17 || (value.total == 17 && value.soft && rules.dealer_hits_soft_17)
}

/// How a player hand fares against the dealer's, both complete.
pub fn verdict(player: &HandValue, dealer: &HandValue) -> Verdict {
    if player.bust {
        // The player busts first, so the hand is lost even if the dealer busts later.
        Verdict::Lose
    } else if player.blackjack {
        if dealer.blackjack {
            Verdict::Push
        } else {
            Verdict::Blackjack
        }
    } else if dealer.blackjack {
        // A two-card 21 beats any other 21, a split 21 or a three-card 21 included.
        Verdict::Lose
    } else if dealer.bust || player.total > dealer.total {
        Verdict::Win
    } else if player.total == dealer.total {
        Verdict::Push
    } else {
        Verdict::Lose
    }
}

/// Where the table saw a card: the dealer's spot or a player box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Dealer,
    /// A player box, 1 to 7.
    Box(u8),
}

impl Zone {
    /// Reads `dealer`, or `box3`, `box 3`, `box-3`, `box_3`, `box:3` (case-insensitive). Other
    /// names (an RFID antenna such as `antenna-2`) are mapped to zones by the table's config,
    /// not guessed here.
    pub fn parse(s: &str) -> Option<Zone> {
        let s = s.trim().to_ascii_lowercase();
        if s == "dealer" {
            return Some(Zone::Dealer);
        }
        let number = s
            .strip_prefix("box")?
            .trim_start_matches([' ', '-', '_', ':']);
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        number.parse().ok().map(Zone::Box)
    }

    /// The zone a placed card lies in (to replay recorded cards exactly where they went).
    pub fn of_position(position: &Position) -> Option<Zone> {
        Some(match position {
            Position::Box { box_no, .. } => Zone::Box(*box_no),
            Position::Dealer | Position::DealerHole => Zone::Dealer,
        })
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::parse(s).ok_or_else(|| format!("`{s}` is not a zone (`dealer` or `box1` to `box7`)"))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Dealer => f.write_str("dealer"),
            Zone::Box(box_no) => write!(f, "box{box_no}"),
        }
    }
}

/// A player's decision for the hand whose turn it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// One more card, then decide again.
    Hit,
    /// No more cards.
    Stand,
    /// Double the stake on a two-card hand and take exactly one more card.
    Double,
    /// Split a pair into two hands, each dealt a second card and played in turn.
    Split,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Hit => "hit",
            Decision::Stand => "stand",
            Decision::Double => "double",
            Decision::Split => "split",
        })
    }
}

/// A place a card can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "zone", rename_all = "snake_case")]
pub enum Position {
    /// A player hand: `hand` is 1, or 2 for the second hand of a split box.
    Box { box_no: u8, hand: u8 },
    /// The dealer's hand, face up: the up-card, and every card after the players acted.
    Dealer,
    /// The dealer's face-down hole card (hole-card games): keep it from players until it is
    /// turned over.
    DealerHole,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Box { box_no, hand: 1 } => write!(f, "box {box_no}"),
            Position::Box { box_no, hand } => write!(f, "box {box_no} hand {hand}"),
            Position::Dealer => f.write_str("the dealer"),
            Position::DealerHole => f.write_str("the dealer's hole card"),
        }
    }
}

/// Where a round stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The first deal: two cards to each box, the dealer's up-card (and hole card).
    Dealing,
    /// The boxes play in turn.
    Players,
    /// The dealer draws.
    Dealer,
    /// Every card is dealt; [`Round::outcome`] has the result.
    Complete,
}

/// What the round waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "awaiting", content = "position", rename_all = "snake_case")]
pub enum Awaiting {
    /// A card for this position.
    Card(Position),
    /// A decision for this hand (a card there without a decision counts as a hit).
    Decision(Position),
    /// Nothing: the round is complete.
    Nothing,
}

/// How a finished hand ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Blackjack,
    Bust,
    /// 21 stands by itself.
    TwentyOne,
    /// Doubled and dealt its one card.
    Doubled,
    /// A split ace dealt its one card.
    SplitAces,
    Stood,
}

impl fmt::Display for Finish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Finish::Blackjack => "has blackjack",
            Finish::Bust => "is bust",
            Finish::TwentyOne => "has 21",
            Finish::Doubled => "has doubled",
            Finish::SplitAces => "holds split aces",
            Finish::Stood => "has stood",
        })
    }
}

/// Why a card or a decision does not fit the round. Serialised into `alert.*` payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The round is over; this belongs to the next one.
    RoundComplete,
    /// The box is not on the table, or has no bet this round.
    NotInPlay { box_no: u8 },
    /// The box already has both cards of the first deal.
    BoxAlreadyDealt { box_no: u8 },
    /// The dealer already has the cards of the first deal.
    DealerAlreadyDealt,
    /// Decisions come after the first deal.
    DealingNotFinished { next: Position },
    /// The dealer draws only after every box has played.
    PlayersNotFinished { turn: Position },
    /// Every hand of the box is finished.
    BoxFinished { box_no: u8, finish: Finish },
    /// Another hand plays now.
    NotYourTurn { turn: Position },
    /// The hand is owed a card (a hit, a double, or the second card of a split hand) before it
    /// can decide.
    AwaitingCard { position: Position },
    /// A card for a later box while this hand is still owed a card: the dealer cannot have
    /// moved on.
    SkipsOwedCard { position: Position },
    /// Double needs a two-card hand.
    DoubleNeedsTwoCards { cards: u8 },
    /// Split needs two cards of the same value.
    NotAPair,
    /// One split per box.
    AlreadySplit,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::RoundComplete => f.write_str("the round is complete"),
            Refusal::NotInPlay { box_no } => {
                write!(f, "box {box_no} is not in play this round")
            }
            Refusal::BoxAlreadyDealt { box_no } => {
                write!(f, "box {box_no} already has its two cards of the first deal")
            }
            Refusal::DealerAlreadyDealt => {
                f.write_str("the dealer already has the cards of the first deal")
            }
            Refusal::DealingNotFinished { next } => {
                write!(f, "the first deal is not finished: next card to {next}")
            }
            Refusal::PlayersNotFinished { turn } => {
                write!(f, "the players have not finished: {turn} plays now")
            }
            Refusal::BoxFinished { box_no, finish } => {
                write!(f, "box {box_no} has finished ({finish})")
            }
            Refusal::NotYourTurn { turn } => write!(f, "{turn} plays now"),
            Refusal::AwaitingCard { position } => write!(f, "{position} is owed a card first"),
            Refusal::SkipsOwedCard { position } => {
                write!(f, "{position} is still owed a card")
            }
            Refusal::DoubleNeedsTwoCards { cards } => {
                write!(f, "double needs a two-card hand, this one has {cards}")
            }
            Refusal::NotAPair => f.write_str("split needs two cards of the same value"),
            Refusal::AlreadySplit => f.write_str("the box has already split once"),
        }
    }
}

/// Everything that can go wrong in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlackjackError {
    #[error("blackjack rules: `boxes = {boxes}`, but a table has 1 to 7 player boxes")]
    BoxesOutOfRange { boxes: u8 },
    #[error(
        "blackjack rules: `peek = \"{peek}\"` needs `hole_card = true` (the dealer can only \
         check a card that was dealt); no-hole-card tables use `peek = \"none\"`"
    )]
    PeekWithoutHoleCard { peek: Peek },
    #[error("box {box_no} cannot be in play: this table has boxes 1 to {boxes}")]
    BoxNotOnTable { box_no: u8, boxes: u8 },
    #[error("box {box_no} is listed twice among the boxes in play")]
    DuplicateBox { box_no: u8 },
    #[error("a round needs at least one box in play")]
    NoBoxesInPlay,
    /// The card was not placed; the round is unchanged.
    #[error("card {card} does not fit the round: {reason}")]
    UnexpectedCard { card: Card, reason: Refusal },
    /// The decision was not applied; the round is unchanged.
    #[error("decision `{decision}` for box {box_no} does not fit the round: {reason}")]
    UnexpectedDecision {
        box_no: u8,
        decision: Decision,
        reason: Refusal,
    },
}

/// A hand's cards and value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct HandSummary {
    /// Cards in the order dealt, written `KH`, `TD`, `AS`.
    pub cards: Vec<String>,
    pub value: HandValue,
}

/// How one player hand ends: the `result` the orchestrator pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Pays 1:1 (on the doubled stake where doubled).
    Win,
    Lose,
    /// The stake is returned.
    Push,
    /// A natural against a dealer without one: pays 3:2.
    Blackjack,
}

/// One player hand at the end of the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct HandResult {
    pub cards: Vec<String>,
    pub value: HandValue,
    /// The stake was doubled.
    pub doubled: bool,
    pub result: Verdict,
}

/// One box at the end of the round: one hand, or two after a split (in the order played).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct BoxResult {
    pub box_no: u8,
    pub hands: Vec<HandResult>,
}

/// The result of a complete round, settled against by the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Outcome {
    pub dealer: HandSummary,
    /// The boxes in play, in box order.
    pub boxes: Vec<BoxResult>,
}

/// A player hand during the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct HandSnapshot {
    pub cards: Vec<String>,
    pub value: HandValue,
    pub doubled: bool,
    pub from_split: bool,
    /// How the hand ended, or `null` while it plays.
    pub finish: Option<Finish>,
}

/// A box during the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct BoxSnapshot {
    pub box_no: u8,
    pub hands: Vec<HandSnapshot>,
}

/// The round as players may see it, for the prompter and the retained `state` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Snapshot {
    pub phase: Phase,
    pub awaiting: Awaiting,
    /// The dealer's face-up cards only.
    pub dealer: HandSummary,
    /// A hole card lies face down and is left out of `dealer`.
    pub hole_card_down: bool,
    pub boxes: Vec<BoxSnapshot>,
}

fn names(cards: &[Card]) -> Vec<String> {
    cards.iter().map(Card::to_string).collect()
}

/// A player hand as the round tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hand {
    cards: Vec<Card>,
    from_split: bool,
    doubled: bool,
    stood: bool,
    /// A hit or a double was called and its card has not come yet.
    owed: bool,
}

impl Hand {
    fn new(cards: Vec<Card>, from_split: bool) -> Self {
        Self {
            cards,
            from_split,
            doubled: false,
            stood: false,
            owed: false,
        }
    }

    fn value(&self) -> HandValue {
        HandValue::of_hand(&self.cards, self.from_split)
    }

    /// Waiting for a card rather than a decision.
    fn awaits_card(&self) -> bool {
        self.cards.len() < 2 || self.owed
    }

    fn finish(&self) -> Option<Finish> {
        if self.awaits_card() {
            return None;
        }
        let value = self.value();
        if value.blackjack {
            Some(Finish::Blackjack)
        } else if value.bust {
            Some(Finish::Bust)
        } else if value.total == 21 {
            Some(Finish::TwentyOne)
        } else if self.doubled {
            Some(Finish::Doubled)
        } else if self.from_split && self.cards.first().is_some_and(|c| c.rank == Rank::Ace) {
            Some(Finish::SplitAces)
        } else if self.stood {
            Some(Finish::Stood)
        } else {
            None
        }
    }

    fn snapshot(&self) -> HandSnapshot {
        HandSnapshot {
            cards: names(&self.cards),
            value: self.value(),
            doubled: self.doubled,
            from_split: self.from_split,
            finish: self.finish(),
        }
    }
}

/// A box in play.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seat {
    box_no: u8,
    /// One hand, or two after a split.
    hands: Vec<Hand>,
}

impl Seat {
    fn card_count(&self) -> usize {
        self.hands.iter().map(|hand| hand.cards.len()).sum()
    }

    /// How the box ended, for refusals: the last hand's finish (the one played last).
    fn finish(&self) -> Option<Finish> {
        if self.hands.iter().all(|hand| hand.finish().is_some()) {
            self.hands.last().and_then(Hand::finish)
        } else {
            None
        }
    }
}

fn box_position(box_no: u8, hand_index: usize) -> Position {
    Position::Box {
        box_no,
        // At most two hands per box, so the number always fits.
        hand: u8::try_from(hand_index + 1).unwrap_or(u8::MAX),
    }
}

/// The hand whose turn it is during the players' turns.
#[derive(Debug, Clone, Copy)]
struct Turn {
    seat: usize,
    position: Position,
    awaits_card: bool,
}

/// What the dealer still has to do once the players are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DealerPlan {
    /// A hand stands against the dealer's total: draw to the rule.
    PlayOut,
    /// Only blackjacks are left and the up-card can still make blackjack: one card decides.
    SecondCardOnly,
    /// Nothing depends on the dealer's hand.
    Nothing,
}

/// One round of blackjack, sans-IO: cards and decisions in, where they went and the outcome
/// out. An input that does not fit is refused and leaves the round unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    rules: Rules,
    seats: Vec<Seat>,
    dealer: Vec<Card>,
}

impl Round {
    /// A round on every box of the table.
    ///
    /// Never fails, because the table engine opens rounds from a config that `croupier
    /// validate` already checked; rules that would not pass [`Rules::validate`] are made safe
    /// instead: `boxes` is clamped to 1..=7, and a peek without a hole card never happens
    /// (there is no card to peek at).
    pub fn new(rules: Rules) -> Self {
        let boxes = rules.boxes.clamp(1, MAX_BOXES);
        Self::on_seats(Rules { boxes, ..rules }, (1..=boxes).collect())
    }

    /// A round on the boxes that have a bet, in any order (they are played in box order).
    pub fn with_boxes(rules: Rules, boxes: &[u8]) -> Result<Self, BlackjackError> {
        rules.validate()?;
        if boxes.is_empty() {
            return Err(BlackjackError::NoBoxesInPlay);
        }
        if let Some(&box_no) = boxes.iter().find(|&&b| b == 0 || b > rules.boxes) {
            return Err(BlackjackError::BoxNotOnTable {
                box_no,
                boxes: rules.boxes,
            });
        }
        let mut sorted = boxes.to_vec();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|pair| pair.first() == pair.last()) {
            return Err(BlackjackError::DuplicateBox {
                box_no: pair.first().copied().unwrap_or_default(),
            });
        }
        Ok(Self::on_seats(rules, sorted))
    }

    fn on_seats(rules: Rules, boxes: Vec<u8>) -> Self {
        Self {
            rules,
            seats: boxes
                .into_iter()
                .map(|box_no| Seat {
                    box_no,
                    hands: vec![Hand::new(Vec::new(), false)],
                })
                .collect(),
            dealer: Vec::new(),
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The boxes in play, in box order.
    pub fn boxes(&self) -> Vec<u8> {
        self.seats.iter().map(|seat| seat.box_no).collect()
    }

    /// Every dealer card so far, the hole card included: keep that one from players until the
    /// dealer turns it over (see [`Round::snapshot`]).
    pub fn dealer_cards(&self) -> &[Card] {
        &self.dealer
    }

    /// Takes a card, seen in `zone` where the table knows it, and says where it went.
    ///
    /// With a zone the card goes to that zone's box or the dealer (see the module docs); without
    /// one, to [`Round::expected_next`]. A card that fits nowhere is refused with
    /// [`BlackjackError::UnexpectedCard`] and changes nothing.
    pub fn card(&mut self, card: Card, zone: Option<Zone>) -> Result<Position, BlackjackError> {
        // Work on a copy and keep it only on success: a refused card can never leave half an
        // update behind (a round is a few dozen bytes; cards come at the dealer's pace).
        let mut draft = self.clone();
        let position = draft
            .place(card, zone)
            .map_err(|reason| BlackjackError::UnexpectedCard { card, reason })?;
        *self = draft;
        Ok(position)
    }

    /// Applies a player's decision for `box_no`, whose turn it must be, and says what the round
    /// waits for now. A decision that does not fit is refused with
    /// [`BlackjackError::UnexpectedDecision`] and changes nothing.
    pub fn apply(&mut self, box_no: u8, decision: Decision) -> Result<Awaiting, BlackjackError> {
        let mut draft = self.clone();
        draft
            .decide(box_no, decision)
            .map_err(|reason| BlackjackError::UnexpectedDecision {
                box_no,
                decision,
                reason,
            })?;
        *self = draft;
        Ok(self.awaiting())
    }

    /// Where the next card should go: the next card of the deal, the hand whose turn it is (a
    /// card there without a decision counts as a hit), or the dealer. `None` once complete.
    pub fn expected_next(&self) -> Option<Position> {
        match self.awaiting() {
            Awaiting::Card(position) | Awaiting::Decision(position) => Some(position),
            Awaiting::Nothing => None,
        }
    }

    /// What the round waits for: a card for a position, a decision for a hand, or nothing.
    pub fn awaiting(&self) -> Awaiting {
        if let Some(position) = self.next_deal_position() {
            return Awaiting::Card(position);
        }
        if self.peeked_blackjack() {
            return Awaiting::Nothing;
        }
        if let Some(turn) = self.turn() {
            return if turn.awaits_card {
                Awaiting::Card(turn.position)
            } else {
                Awaiting::Decision(turn.position)
            };
        }
        if self.dealer_owes_card() {
            Awaiting::Card(Position::Dealer)
        } else {
            Awaiting::Nothing
        }
    }

    pub fn phase(&self) -> Phase {
        if self.next_deal_position().is_some() {
            Phase::Dealing
        } else if self.peeked_blackjack() {
            Phase::Complete
        } else if self.turn().is_some() {
            Phase::Players
        } else if self.dealer_owes_card() {
            Phase::Dealer
        } else {
            Phase::Complete
        }
    }

    pub fn is_complete(&self) -> bool {
        self.phase() == Phase::Complete
    }

    /// The result, once the round is complete.
    pub fn outcome(&self) -> Option<Outcome> {
        if !self.is_complete() {
            return None;
        }
        let dealer = HandValue::of(&self.dealer);
        Some(Outcome {
            dealer: HandSummary {
                cards: names(&self.dealer),
                value: dealer,
            },
            boxes: self
                .seats
                .iter()
                .map(|seat| BoxResult {
                    box_no: seat.box_no,
                    hands: seat
                        .hands
                        .iter()
                        .map(|hand| {
                            let value = hand.value();
                            HandResult {
                                cards: names(&hand.cards),
                                value,
                                doubled: hand.doubled,
                                result: verdict(&value, &dealer),
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The round as players may see it: the hole card stays out until the players are done.
    pub fn snapshot(&self) -> Snapshot {
        let phase = self.phase();
        let hole_card_down = self.rules.hole_card
            && self.dealer.len() >= 2
            && matches!(phase, Phase::Dealing | Phase::Players);
        let visible = if hole_card_down {
            self.dealer.get(..1).unwrap_or_default()
        } else {
            &self.dealer
        };
        Snapshot {
            phase,
            awaiting: self.awaiting(),
            dealer: HandSummary {
                cards: names(visible),
                value: HandValue::of(visible),
            },
            hole_card_down,
            boxes: self
                .seats
                .iter()
                .map(|seat| BoxSnapshot {
                    box_no: seat.box_no,
                    hands: seat.hands.iter().map(Hand::snapshot).collect(),
                })
                .collect(),
        }
    }

    /// Cards the dealer takes in the first deal: the up-card, and the hole card where dealt.
    fn first_deal_dealer_cards(&self) -> usize {
        if self.rules.hole_card {
            2
        } else {
            1
        }
    }

    /// The next missing card of the first deal in dealing order, or `None` once it is dealt.
    /// Counting what each place holds (rather than keeping a cursor) lets cards placed out of
    /// order by their zone fill their own slots.
    fn next_deal_position(&self) -> Option<Position> {
        let missing = |round: usize| {
            self.seats
                .iter()
                .find(|seat| seat.card_count() < round)
                .map(|seat| box_position(seat.box_no, 0))
        };
        if let Some(position) = missing(1) {
            return Some(position);
        }
        if self.dealer.is_empty() {
            return Some(Position::Dealer);
        }
        if let Some(position) = missing(2) {
            return Some(position);
        }
        if self.dealer.len() < self.first_deal_dealer_cards() {
            return Some(Position::DealerHole);
        }
        None
    }

    /// The dealer peeked and has blackjack: nobody plays.
    fn peeked_blackjack(&self) -> bool {
        self.rules.hole_card
            && self
                .dealer
                .first()
                .is_some_and(|up| self.rules.peek.applies_to(up.rank))
            && HandValue::of(&self.dealer).blackjack
    }

    /// The first hand, in playing order, that has not finished.
    fn turn(&self) -> Option<Turn> {
        self.seats.iter().enumerate().find_map(|(index, seat)| {
            seat.hands
                .iter()
                .enumerate()
                .find(|(_, hand)| hand.finish().is_none())
                .map(|(hand_index, hand)| Turn {
                    seat: index,
                    position: box_position(seat.box_no, hand_index),
                    awaits_card: hand.awaits_card(),
                })
        })
    }

    fn dealer_plan(&self) -> DealerPlan {
        let hands = self.seats.iter().flat_map(|seat| seat.hands.iter());
        let (mut live, mut blackjack) = (false, false);
        for value in hands.map(Hand::value) {
            if value.blackjack {
                blackjack = true;
            } else if !value.bust {
                live = true;
            }
        }
        let up_can_make_blackjack = self
            .dealer
            .first()
            .is_some_and(|up| can_make_blackjack(up.rank));
        if live {
            DealerPlan::PlayOut
        } else if blackjack && up_can_make_blackjack {
            DealerPlan::SecondCardOnly
        } else {
            DealerPlan::Nothing
        }
    }

    /// Once the players are done: whether the dealer takes another card.
    fn dealer_owes_card(&self) -> bool {
        match self.dealer_plan() {
            DealerPlan::PlayOut => dealer_should_hit(&self.dealer, &self.rules),
            DealerPlan::SecondCardOnly => self.dealer.len() < 2,
            DealerPlan::Nothing => false,
        }
    }

    fn seat_index(&self, box_no: u8) -> Result<usize, Refusal> {
        self.seats
            .iter()
            .position(|seat| seat.box_no == box_no)
            .ok_or(Refusal::NotInPlay { box_no })
    }

    fn box_finished(&self, index: usize) -> Option<Refusal> {
        let seat = self.seats.get(index)?;
        seat.finish().map(|finish| Refusal::BoxFinished {
            box_no: seat.box_no,
            finish,
        })
    }

    /// Places the card on this (draft) round. May leave the draft half-changed on error; the
    /// caller throws the draft away then.
    fn place(&mut self, card: Card, zone: Option<Zone>) -> Result<Position, Refusal> {
        let phase = self.phase();
        if phase == Phase::Complete {
            return Err(Refusal::RoundComplete);
        }
        if let Some(Zone::Box(box_no)) = zone {
            self.seat_index(box_no)?;
        }
        match phase {
            Phase::Dealing => self.place_first_deal(card, zone),
            Phase::Players => self.place_players(card, zone),
            Phase::Dealer | Phase::Complete => match zone {
                None | Some(Zone::Dealer) => {
                    self.dealer.push(card);
                    Ok(Position::Dealer)
                }
                Some(Zone::Box(box_no)) => {
                    let index = self.seat_index(box_no)?;
                    Err(self.box_finished(index).unwrap_or(Refusal::RoundComplete))
                }
            },
        }
    }

    fn place_first_deal(&mut self, card: Card, zone: Option<Zone>) -> Result<Position, Refusal> {
        let position = match zone {
            None => self.next_deal_position().ok_or(Refusal::RoundComplete)?,
            Some(Zone::Dealer) => match self.dealer.len() {
                0 => Position::Dealer,
                1 if self.rules.hole_card => Position::DealerHole,
                _ => return Err(Refusal::DealerAlreadyDealt),
            },
            Some(Zone::Box(box_no)) => box_position(box_no, 0),
        };
        match position {
            Position::Dealer | Position::DealerHole => self.dealer.push(card),
            Position::Box { box_no, .. } => {
                let index = self.seat_index(box_no)?;
                let hand = self
                    .seats
                    .get_mut(index)
                    .and_then(|seat| seat.hands.first_mut())
                    .ok_or(Refusal::NotInPlay { box_no })?;
                if hand.cards.len() >= 2 {
                    return Err(Refusal::BoxAlreadyDealt { box_no });
                }
                hand.cards.push(card);
            }
        }
        Ok(position)
    }

    fn place_players(&mut self, card: Card, zone: Option<Zone>) -> Result<Position, Refusal> {
        let turn = self.turn().ok_or(Refusal::RoundComplete)?;
        let target = match zone {
            None => turn.seat,
            Some(Zone::Dealer) => {
                return Err(Refusal::PlayersNotFinished {
                    turn: turn.position,
                })
            }
            Some(Zone::Box(box_no)) => self.seat_index(box_no)?,
        };
        if target < turn.seat {
            // Earlier boxes have all finished, or the turn would be theirs.
            return Err(self
                .box_finished(target)
                .unwrap_or(Refusal::NotYourTurn {
                    turn: turn.position,
                }));
        }
        // The dealer served a later box: the boxes passed over are done. Only a hand waiting
        // for a decision can be stood that way; one owed a card means the zone is wrong.
        for seat in self.seats.iter_mut().take(target).skip(turn.seat) {
            let box_no = seat.box_no;
            for (hand_index, hand) in seat.hands.iter_mut().enumerate() {
                if hand.finish().is_some() {
                    continue;
                }
                if hand.awaits_card() {
                    return Err(Refusal::SkipsOwedCard {
                        position: box_position(box_no, hand_index),
                    });
                }
                hand.stood = true;
            }
        }
        let finished = self.box_finished(target);
        let seat = self.seats.get_mut(target).ok_or(Refusal::RoundComplete)?;
        let box_no = seat.box_no;
        let (hand_index, hand) = seat
            .hands
            .iter_mut()
            .enumerate()
            .find(|(_, hand)| hand.finish().is_none())
            .ok_or(finished.unwrap_or(Refusal::RoundComplete))?;
        // A card to a hand waiting for a decision is a hit the orchestrator did not relay.
        hand.cards.push(card);
        hand.owed = false;
        Ok(box_position(box_no, hand_index))
    }

    /// Applies the decision on this (draft) round; on error the caller throws the draft away.
    fn decide(&mut self, box_no: u8, decision: Decision) -> Result<(), Refusal> {
        if let Some(next) = self.next_deal_position() {
            return Err(Refusal::DealingNotFinished { next });
        }
        if self.is_complete() {
            return Err(Refusal::RoundComplete);
        }
        let index = self.seat_index(box_no)?;
        if let Some(finished) = self.box_finished(index) {
            return Err(finished);
        }
        let turn = self.turn().ok_or(Refusal::RoundComplete)?;
        if turn.seat != index {
            return Err(Refusal::NotYourTurn {
                turn: turn.position,
            });
        }
        if turn.awaits_card {
            return Err(Refusal::AwaitingCard {
                position: turn.position,
            });
        }
        let seat = self
            .seats
            .get_mut(index)
            .ok_or(Refusal::NotInPlay { box_no })?;
        if decision == Decision::Split {
            return split(seat);
        }
        let hand = seat
            .hands
            .iter_mut()
            .find(|hand| hand.finish().is_none())
            .ok_or(Refusal::RoundComplete)?;
        match decision {
            Decision::Hit => hand.owed = true,
            Decision::Stand => hand.stood = true,
            Decision::Double => {
                if hand.cards.len() != 2 {
                    return Err(Refusal::DoubleNeedsTwoCards {
                        cards: u8::try_from(hand.cards.len()).unwrap_or(u8::MAX),
                    });
                }
                hand.doubled = true;
                hand.owed = true;
            }
            Decision::Split => {}
        }
        Ok(())
    }
}

/// Splits the box's only hand into two hands of one card each, played in turn.
fn split(seat: &mut Seat) -> Result<(), Refusal> {
    let [hand] = seat.hands.as_slice() else {
        return Err(Refusal::AlreadySplit);
    };
    let &[first, second] = hand.cards.as_slice() else {
        return Err(Refusal::NotAPair);
    };
    if points(first.rank) != points(second.rank) {
        return Err(Refusal::NotAPair);
    }
    seat.hands = vec![Hand::new(vec![first], true), Hand::new(vec![second], true)];
    Ok(())
}
