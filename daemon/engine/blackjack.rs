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
        let hard = cards.iter().fold(0u32, |sum, card| {
            sum.saturating_add(u32::from(points(card.rank)))
        });
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
                write!(
                    f,
                    "box {box_no} already has its two cards of the first deal"
                )
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

    /// The cards dealt so far to what lies in `zone`: the dealer's (the hole card included), or
    /// every hand of a box (both hands after a split); nothing for a box not in play. The
    /// engine's cross-check compares what a witness saw in that zone with it.
    pub fn zone_cards(&self, zone: Zone) -> Vec<Card> {
        match zone {
            Zone::Dealer => self.dealer.clone(),
            Zone::Box(box_no) => self
                .seats
                .iter()
                .filter(|seat| seat.box_no == box_no)
                .flat_map(|seat| {
                    seat.hands
                        .iter()
                        .flat_map(|hand| hand.cards.iter().copied())
                })
                .collect(),
        }
    }

    /// Takes a card, seen in `zone` where the table knows it, and says where it went.
    ///
    /// With a zone the card goes to that zone's box or the dealer (see the module docs); without
    /// one, to [`Round::expected_next`]. A card that fits nowhere is refused with
    /// [`BlackjackError::UnexpectedCard`] and changes nothing.
    pub fn card(&mut self, card: Card, zone: Option<Zone>) -> Result<Position, BlackjackError> {
        // Work on a copy and keep it only on success: a refused card can never leave half an
        // update behind (a round is a few short vectors; cards come at the dealer's pace).
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
            return Err(self.box_finished(target).unwrap_or(Refusal::NotYourTurn {
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

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_drivers::model::Suit;

    fn c(s: &str) -> Card {
        s.parse().unwrap()
    }

    fn cs(s: &str) -> Vec<Card> {
        s.split_whitespace().map(c).collect()
    }

    fn enhc(boxes: u8) -> Rules {
        Rules {
            boxes,
            ..Rules::default()
        }
    }

    fn holecard(peek: Peek) -> Rules {
        Rules {
            hole_card: true,
            peek,
            ..Rules::default()
        }
    }

    fn pos(box_no: u8, hand: u8) -> Position {
        Position::Box { box_no, hand }
    }

    fn round(rules: Rules, boxes: &[u8]) -> Round {
        Round::with_boxes(rules, boxes).unwrap()
    }

    /// Deals cards without zones, each where the round expects it.
    fn deal(round: &mut Round, cards: &str) {
        for card in cs(cards) {
            if let Err(e) = round.card(card, None) {
                panic!("{card}: {e}\n{round:#?}");
            }
        }
    }

    fn decide(round: &mut Round, box_no: u8, decision: Decision) {
        if let Err(e) = round.apply(box_no, decision) {
            panic!("{decision} box {box_no}: {e}\n{round:#?}");
        }
    }

    /// A refused card: returns why, after checking that the round did not change.
    fn refused_card(round: &mut Round, card: &str, zone: Option<Zone>) -> Refusal {
        let before = round.clone();
        let card = c(card);
        let error = round.card(card, zone).unwrap_err();
        assert_eq!(*round, before, "refused card {card} changed the round");
        match error {
            BlackjackError::UnexpectedCard { card: got, reason } => {
                assert_eq!(got, card);
                reason
            }
            other => panic!("{other:?}"),
        }
    }

    fn refused_decision(round: &mut Round, box_no: u8, decision: Decision) -> Refusal {
        let before = round.clone();
        let error = round.apply(box_no, decision).unwrap_err();
        assert_eq!(*round, before, "refused {decision} changed the round");
        match error {
            BlackjackError::UnexpectedDecision {
                box_no: b,
                decision: d,
                reason,
            } => {
                assert_eq!((b, d), (box_no, decision));
                reason
            }
            other => panic!("{other:?}"),
        }
    }

    /// Every hand's result, box by box.
    fn results(round: &Round) -> Vec<Vec<Verdict>> {
        round
            .outcome()
            .expect("complete")
            .boxes
            .iter()
            .map(|b| b.hands.iter().map(|h| h.result).collect())
            .collect()
    }

    fn value(total: u8, soft: bool, blackjack: bool, bust: bool) -> HandValue {
        HandValue {
            total,
            soft,
            blackjack,
            bust,
        }
    }

    // ---------------------------------------------------------------- hand values

    #[test]
    fn hand_values() {
        let f = false;
        let t = true;
        for (cards, expected) in [
            ("", value(0, f, f, f)),
            ("AS", value(11, t, f, f)),
            ("TS", value(10, f, f, f)),
            ("2S 3H", value(5, f, f, f)),
            ("KS QH", value(20, f, f, f)),
            ("JS 5H", value(15, f, f, f)),
            ("AS KH", value(21, t, t, f)),
            ("KH AS", value(21, t, t, f)),
            ("AS TH", value(21, t, t, f)),
            ("QD AC", value(21, t, t, f)),
            ("AS 6H", value(17, t, f, f)),
            ("AS 6H KD", value(17, f, f, f)),
            ("AS AH", value(12, t, f, f)),
            ("AS AH AD", value(13, t, f, f)),
            ("AS AH AD AC", value(14, t, f, f)),
            ("AS AH 9D", value(21, t, f, f)),
            ("AS AH 9D 5C", value(16, f, f, f)),
            ("AS 5H 5D", value(21, t, f, f)),
            ("5S 5H AD", value(21, t, f, f)),
            ("7S 7H 7D", value(21, f, f, f)),
            ("AS 9H AD", value(21, t, f, f)),
            ("AS 9H AD AC", value(12, f, f, f)),
            ("KS QH 2D", value(22, f, f, t)),
            ("KS QH KD", value(30, f, f, t)),
            ("TS 6H AD 5C", value(22, f, f, t)),
            ("AS AH AD AC AS AH AD AC AS AH AD", value(21, t, f, f)),
            ("AS AH AD AC AS AH AD AC AS AH AD AC", value(12, f, f, f)),
        ] {
            assert_eq!(HandValue::of(&cs(cards)), expected, "{cards:?}");
        }
    }

    #[test]
    fn blackjack_needs_two_cards_not_from_a_split() {
        assert!(HandValue::of(&cs("AS KH")).blackjack);
        assert!(HandValue::of_hand(&cs("AS KH"), false).blackjack);
        let split = HandValue::of_hand(&cs("AS KH"), true);
        assert_eq!(split, value(21, true, false, false));
        assert!(!HandValue::of(&cs("AS 5H 5D")).blackjack);
        assert!(!HandValue::of(&cs("7S 7H 7D")).blackjack);
    }

    #[test]
    fn a_long_slice_does_not_overflow() {
        let cards = vec![c("KS"); 1000];
        let v = HandValue::of(&cards);
        assert_eq!(v.total, u8::MAX);
        assert!(v.bust);
    }

    // ---------------------------------------------------------------- rules

    #[test]
    fn default_rules_are_what_most_studios_deal() {
        let rules = Rules::default();
        assert!(!rules.dealer_hits_soft_17);
        assert_eq!(rules.peek, Peek::None);
        assert!(!rules.hole_card);
        assert_eq!(rules.boxes, 7);
        assert_eq!(rules.validate(), Ok(()));
        assert!(rules.errors().is_empty());
    }

    #[test]
    fn rules_validate_every_error() {
        for boxes in 1..=7 {
            assert_eq!(enhc(boxes).validate(), Ok(()));
        }
        for boxes in [0, 8, 255] {
            assert_eq!(
                enhc(boxes).validate(),
                Err(BlackjackError::BoxesOutOfRange { boxes })
            );
        }
        for peek in [Peek::AceOnly, Peek::AceOrTen] {
            assert_eq!(holecard(peek).validate(), Ok(()));
            let enhc_peek = Rules {
                peek,
                ..Rules::default()
            };
            assert_eq!(
                enhc_peek.validate(),
                Err(BlackjackError::PeekWithoutHoleCard { peek })
            );
        }
        assert_eq!(holecard(Peek::None).validate(), Ok(()));
        let both = Rules {
            boxes: 0,
            peek: Peek::AceOrTen,
            ..Rules::default()
        };
        assert_eq!(
            both.errors(),
            vec![
                BlackjackError::BoxesOutOfRange { boxes: 0 },
                BlackjackError::PeekWithoutHoleCard {
                    peek: Peek::AceOrTen
                }
            ]
        );
        let message = both.errors()[1].to_string();
        assert!(message.contains("peek = \"ace_or_ten\""), "{message}");
        assert!(message.contains("hole_card = true"), "{message}");
    }

    #[test]
    fn rules_read_from_config_keys() {
        let rules: Rules = serde_json::from_str("{}").unwrap();
        assert_eq!(rules, Rules::default());
        let rules: Rules = serde_json::from_str(
            r#"{"dealer_hits_soft_17": true, "peek": "ace_or_ten", "hole_card": true, "boxes": 5}"#,
        )
        .unwrap();
        assert_eq!(
            rules,
            Rules {
                dealer_hits_soft_17: true,
                peek: Peek::AceOrTen,
                hole_card: true,
                boxes: 5
            }
        );
        let rules: Rules = serde_json::from_str(r#"{"peek": "ace_only"}"#).unwrap();
        assert_eq!(rules.peek, Peek::AceOnly);
        assert!(serde_json::from_str::<Rules>(r#"{"surrender": true}"#).is_err());
        assert!(serde_json::from_str::<Rules>(r#"{"peek": "always"}"#).is_err());
        assert_eq!(
            serde_json::to_value(Rules::default()).unwrap(),
            serde_json::json!({"dealer_hits_soft_17": false, "peek": "none", "hole_card": false, "boxes": 7})
        );
    }

    #[test]
    fn peek_applies_to_up_cards() {
        for rank in Rank::ALL {
            assert!(!Peek::None.applies_to(rank));
            assert_eq!(Peek::AceOnly.applies_to(rank), rank == Rank::Ace);
            assert_eq!(
                Peek::AceOrTen.applies_to(rank),
                matches!(
                    rank,
                    Rank::Ace | Rank::Ten | Rank::Jack | Rank::Queen | Rank::King
                )
            );
        }
    }

    #[test]
    fn rounds_on_the_boxes_with_bets() {
        let r = round(enhc(7), &[5, 2, 7]);
        assert_eq!(r.boxes(), vec![2, 5, 7]);
        assert_eq!(r.expected_next(), Some(pos(2, 1)));
        assert_eq!(
            Round::with_boxes(enhc(7), &[]),
            Err(BlackjackError::NoBoxesInPlay)
        );
        assert_eq!(
            Round::with_boxes(enhc(5), &[1, 6]),
            Err(BlackjackError::BoxNotOnTable {
                box_no: 6,
                boxes: 5
            })
        );
        assert_eq!(
            Round::with_boxes(enhc(7), &[0]),
            Err(BlackjackError::BoxNotOnTable {
                box_no: 0,
                boxes: 7
            })
        );
        assert_eq!(
            Round::with_boxes(enhc(7), &[3, 1, 3]),
            Err(BlackjackError::DuplicateBox { box_no: 3 })
        );
        assert_eq!(
            Round::with_boxes(enhc(9), &[1]),
            Err(BlackjackError::BoxesOutOfRange { boxes: 9 })
        );
        assert_eq!(Round::new(enhc(3)).boxes(), vec![1, 2, 3]);
        assert_eq!(
            Round::new(Rules::default()).boxes(),
            (1..=7).collect::<Vec<_>>()
        );
    }

    #[test]
    fn new_makes_unvalidated_rules_safe() {
        assert_eq!(Round::new(enhc(0)).boxes(), vec![1]);
        assert_eq!(Round::new(enhc(200)).boxes().len(), 7);
        // A peek with no hole card cannot happen: the dealer has one card until the players
        // are done, and the round plays as ENHC.
        let mut r = Round::new(Rules {
            peek: Peek::AceOrTen,
            boxes: 1,
            ..Rules::default()
        });
        deal(&mut r, "9S AD 8H");
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(1, 1)));
        decide(&mut r, 1, Decision::Stand);
        deal(&mut r, "KD");
        assert_eq!(results(&r), vec![vec![Verdict::Lose]]);
    }

    // ---------------------------------------------------------------- the dealer's rule

    /// Points written out again, independently of `points`.
    fn oracle_points(rank: Rank) -> u32 {
        match rank {
            Rank::Ace => 1,
            Rank::Two => 2,
            Rank::Three => 3,
            Rank::Four => 4,
            Rank::Five => 5,
            Rank::Six => 6,
            Rank::Seven => 7,
            Rank::Eight => 8,
            Rank::Nine => 9,
            Rank::Ten | Rank::Jack | Rank::Queen | Rank::King => 10,
        }
    }

    /// The best total by trying every way of counting the aces 1 or 11: the highest total not
    /// over 21 (soft if an ace counts 11 in it), else the lowest.
    fn oracle_value(ranks: &[Rank]) -> (u32, bool) {
        let aces = ranks.iter().filter(|&&r| r == Rank::Ace).count() as u32;
        let others: u32 = ranks
            .iter()
            .filter(|&&r| r != Rank::Ace)
            .map(|&r| oracle_points(r))
            .sum();
        (0..=aces)
            .map(|elevens| (others + elevens * 11 + (aces - elevens), elevens > 0))
            .filter(|&(total, _)| total <= 21)
            .max_by_key(|&(total, _)| total)
            .unwrap_or((others + aces, false))
    }

    fn for_each_hand(max_len: usize, hand: &mut Vec<Rank>, f: &mut impl FnMut(&[Rank])) {
        if hand.len() >= 2 {
            f(hand);
        }
        if hand.len() == max_len {
            return;
        }
        for rank in Rank::ALL {
            hand.push(rank);
            for_each_hand(max_len, hand, f);
            hand.pop();
        }
    }

    #[test]
    fn dealer_rule_over_every_two_to_five_card_hand() {
        let s17 = enhc(7);
        let h17 = Rules {
            dealer_hits_soft_17: true,
            ..enhc(7)
        };
        let (mut hands, mut soft_17s, mut differ) = (0u32, 0u32, 0u32);
        for_each_hand(5, &mut Vec::new(), &mut |ranks| {
            let (total, soft) = oracle_value(ranks);
            let cards: Vec<Card> = ranks
                .iter()
                .map(|&rank| Card {
                    rank,
                    suit: Suit::Clubs,
                })
                .collect();
            let v = HandValue::of(&cards);
            assert_eq!(
                (u32::from(v.total), v.soft, v.bust),
                (total, soft, total > 21),
                "{ranks:?}"
            );
            if total > 21 {
                assert!(!dealer_should_hit(&cards, &s17) && !dealer_should_hit(&cards, &h17));
                return;
            }
            hands += 1;
            let stands_on = |h17: bool| total > 17 || (total == 17 && !(soft && h17));
            assert_eq!(
                dealer_should_hit(&cards, &s17),
                !stands_on(false),
                "{ranks:?}"
            );
            assert_eq!(
                dealer_should_hit(&cards, &h17),
                !stands_on(true),
                "{ranks:?}"
            );
            if total == 17 && soft {
                soft_17s += 1;
            }
            if dealer_should_hit(&cards, &s17) != dealer_should_hit(&cards, &h17) {
                differ += 1;
            }
        });
        // S17 and H17 differ on soft 17 and nowhere else.
        assert_eq!(differ, soft_17s);
        assert!(soft_17s > 0 && hands > 30_000, "{soft_17s} of {hands}");
    }

    #[test]
    fn dealer_rule_examples() {
        let s17 = enhc(7);
        let h17 = Rules {
            dealer_hits_soft_17: true,
            ..enhc(7)
        };
        for (cards, s, h) in [
            ("AS", true, true),
            ("TS", true, true),
            ("TS 6H", true, true),
            ("TS 7H", false, false),
            ("AS 6H", false, true),
            ("AS AH 5D", false, true),
            ("AS 6H TD", false, false),
            ("AS 7H", false, false),
            ("AS KH", false, false),
            ("TS 6H 9D", false, false),
        ] {
            assert_eq!(dealer_should_hit(&cs(cards), &s17), s, "S17 {cards}");
            assert_eq!(dealer_should_hit(&cs(cards), &h17), h, "H17 {cards}");
        }
    }

    #[test]
    fn the_round_draws_to_the_rule_on_soft_17() {
        for (h17, dealer, total) in [(false, "6D AC", 17), (true, "6D AC 3H", 20)] {
            let rules = Rules {
                dealer_hits_soft_17: h17,
                ..enhc(1)
            };
            let mut r = round(rules, &[1]);
            deal(&mut r, "TS 6D 8H");
            decide(&mut r, 1, Decision::Stand);
            for card in cs(dealer).into_iter().skip(1) {
                assert_eq!(r.awaiting(), Awaiting::Card(Position::Dealer));
                assert_eq!(r.card(card, None), Ok(Position::Dealer));
            }
            assert!(r.is_complete(), "H17 {h17}");
            let outcome = r.outcome().unwrap();
            assert_eq!(outcome.dealer.value.total, total);
        }
    }

    // ---------------------------------------------------------------- results

    #[test]
    fn verdicts() {
        let bj = HandValue::of(&cs("AS KH"));
        let split_21 = HandValue::of_hand(&cs("AS KH"), true);
        let three_21 = HandValue::of(&cs("7S 7H 7D"));
        let v = |cards: &str| HandValue::of(&cs(cards));
        for (player, dealer, expected) in [
            (bj, bj, Verdict::Push),
            (bj, three_21, Verdict::Blackjack),
            (bj, v("TS 9H"), Verdict::Blackjack),
            (bj, v("TS 6H 8D"), Verdict::Blackjack),
            (three_21, bj, Verdict::Lose),
            (split_21, bj, Verdict::Lose),
            (split_21, three_21, Verdict::Push),
            (three_21, three_21, Verdict::Push),
            (v("TS 8H"), v("TS 6H 8D"), Verdict::Win),
            (v("TS 6H 8D"), v("TS 6H 8D"), Verdict::Lose),
            (v("TS 6H 8D"), v("TS 8H"), Verdict::Lose),
            (v("TS 6H"), v("TS 6H 8D"), Verdict::Win),
            (v("TS 9H"), v("TS 9H"), Verdict::Push),
            (v("TS 8H"), v("TS 9H"), Verdict::Lose),
            (v("TS 9H"), v("TS 8H"), Verdict::Win),
            (v("AS 6H"), v("TS 7H"), Verdict::Push),
            (v("TS 2H"), v("TS 7H"), Verdict::Lose),
        ] {
            assert_eq!(
                verdict(&player, &dealer),
                expected,
                "{player:?} v {dealer:?}"
            );
        }
    }

    /// Plays one box: `player` is its first two cards, `hits` the cards it hits (a card counts
    /// as a hit without a decision), then it stands; `dealer` is every dealer card, which the
    /// round must take to the last and then be complete.
    fn single(rules: Rules, player: &str, hits: &str, dealer: &str) -> (Round, Verdict) {
        let (p, d) = (cs(player), cs(dealer));
        let mut r = round(rules.clone(), &[1]);
        let mut first_deal = vec![p[0], d[0], p[1]];
        let dealer_rest = if rules.hole_card {
            first_deal.push(d[1]);
            &d[2..]
        } else {
            &d[1..]
        };
        for card in first_deal {
            r.card(card, None).unwrap();
        }
        for (i, card) in cs(hits).into_iter().enumerate() {
            if i % 2 == 0 {
                decide(&mut r, 1, Decision::Hit);
            }
            assert_eq!(r.card(card, None), Ok(pos(1, 1)));
        }
        if let Awaiting::Decision(_) = r.awaiting() {
            decide(&mut r, 1, Decision::Stand);
        }
        for &card in dealer_rest {
            assert_eq!(r.awaiting(), Awaiting::Card(Position::Dealer), "{dealer}");
            r.card(card, None).unwrap();
        }
        assert_eq!(
            r.awaiting(),
            Awaiting::Nothing,
            "{player} {hits} v {dealer}"
        );
        let verdict = results(&r)[0][0];
        (r, verdict)
    }

    #[test]
    fn every_result_against_the_dealer() {
        let e = enhc(1);
        let us = holecard(Peek::AceOrTen);
        let no_peek = holecard(Peek::None);
        for (rules, player, hits, dealer, expected) in [
            // Blackjack against blackjack pushes; the ENHC dealer takes only the card that
            // decides it.
            (&e, "AS KH", "", "AD KD", Verdict::Push),
            (&e, "AS KH", "", "KD AD", Verdict::Push),
            (&e, "AS KH", "", "AD 5D", Verdict::Blackjack),
            (&e, "AS KH", "", "TD 9D", Verdict::Blackjack),
            // An up-card that cannot make blackjack: the natural is paid without a dealer card.
            (&e, "AS KH", "", "9D", Verdict::Blackjack),
            (&us, "AS KH", "", "AD KD", Verdict::Push),
            (&us, "AS KH", "", "9D 8D", Verdict::Blackjack),
            // 21 in three cards loses to a dealer blackjack, wins against a dealer 20.
            (&e, "TS 5H", "6S", "AD KD", Verdict::Lose),
            (&e, "TS 5H", "6S", "TD KD", Verdict::Win),
            (&no_peek, "TS 5H", "6S", "TD AD", Verdict::Lose),
            (&e, "7S 7H", "7D", "TD 5C 6D", Verdict::Push),
            // Dealer bust.
            (&e, "TS 8H", "", "6D TD 8C", Verdict::Win),
            (&e, "TS 2H", "", "6D TD 8C", Verdict::Win),
            (&us, "TS 2H", "", "6D TD 8C", Verdict::Win),
            // Player bust: the dealer draws nothing.
            (&e, "TS 6H", "9C", "6D", Verdict::Lose),
            (&us, "TS 6H", "9C", "6D TD", Verdict::Lose),
            // Totals.
            (&e, "TS 9H", "", "TD 9C", Verdict::Push),
            (&e, "TS 8H", "", "TD 9C", Verdict::Lose),
            (&e, "TS 9H", "", "TD 8C", Verdict::Win),
            (&e, "AS 6H", "", "TD 7C", Verdict::Push),
            (&e, "2S 3H", "4C 5D", "TD 7C", Verdict::Lose),
            (&e, "2S 3H", "4C 5D 4D", "TD 7C", Verdict::Win),
            (&e, "2S 3H", "AC", "TD 7C", Verdict::Lose),
            (&e, "2S 3H", "AC 2D", "TD 7C", Verdict::Win),
            // 2 + 3 + ace + 5 is a soft 21 and stands by itself.
            (&e, "2S 3H", "AC 5D", "TD 7C", Verdict::Win),
        ] {
            let (_, verdict) = single(rules.clone(), player, hits, dealer);
            assert_eq!(
                verdict, expected,
                "{player} + {hits} v {dealer} ({rules:?})"
            );
        }
    }

    #[test]
    fn a_bust_hand_loses_even_when_the_dealer_busts() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "TS 9S 6D 6H 8H");
        deal(&mut r, "KC"); // box 1 hits to 26 without a decision
        decide(&mut r, 2, Decision::Stand);
        deal(&mut r, "TD 8D");
        let outcome = r.outcome().unwrap();
        assert!(outcome.dealer.value.bust);
        assert_eq!(results(&r), vec![vec![Verdict::Lose], vec![Verdict::Win]]);
    }

    #[test]
    fn a_full_table_in_json() {
        let mut r = Round::new(Rules::default());
        // First cards of boxes 1-7, the dealer's up-card, second cards.
        deal(&mut r, "AS TS 5S 8S 9S TC 2C  9D  KH 6H 6C 8H 9H 4C 2D");
        assert_eq!(r.phase(), Phase::Players);
        // Box 1 has blackjack and does not play.
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(2, 1)));
        decide(&mut r, 2, Decision::Hit);
        deal(&mut r, "7D"); // box 2: 23
        decide(&mut r, 3, Decision::Double);
        deal(&mut r, "TH"); // box 3: 21, doubled
        decide(&mut r, 4, Decision::Split);
        deal(&mut r, "3D"); // box 4 hand 1: 11
        decide(&mut r, 4, Decision::Double);
        deal(&mut r, "9C"); // 20
        deal(&mut r, "KD"); // box 4 hand 2: 18
        decide(&mut r, 4, Decision::Stand);
        decide(&mut r, 5, Decision::Stand); // 18
        decide(&mut r, 6, Decision::Stand); // 14
        decide(&mut r, 7, Decision::Hit);
        deal(&mut r, "5H"); // box 7: 9
        decide(&mut r, 7, Decision::Hit);
        deal(&mut r, "QC"); // 19
        decide(&mut r, 7, Decision::Stand);
        assert_eq!(r.phase(), Phase::Dealer);
        deal(&mut r, "9D"); // dealer 18
        assert!(r.is_complete());
        let json = serde_json::to_value(r.outcome().unwrap()).unwrap();
        let hand = |cards: &[&str],
                    total: u8,
                    soft: bool,
                    bj: bool,
                    bust: bool,
                    doubled: bool,
                    result: &str| {
            serde_json::json!({
                "cards": cards,
                "value": {"total": total, "soft": soft, "blackjack": bj, "bust": bust},
                "doubled": doubled,
                "result": result,
            })
        };
        assert_eq!(
            json,
            serde_json::json!({
                "dealer": {
                    "cards": ["9D", "9D"],
                    "value": {"total": 18, "soft": false, "blackjack": false, "bust": false}
                },
                "boxes": [
                    {"box_no": 1, "hands": [hand(&["AS", "KH"], 21, true, true, false, false, "blackjack")]},
                    {"box_no": 2, "hands": [hand(&["TS", "6H", "7D"], 23, false, false, true, false, "lose")]},
                    {"box_no": 3, "hands": [hand(&["5S", "6C", "TH"], 21, false, false, false, true, "win")]},
                    {"box_no": 4, "hands": [
                        hand(&["8S", "3D", "9C"], 20, false, false, false, true, "win"),
                        hand(&["8H", "KD"], 18, false, false, false, false, "push"),
                    ]},
                    {"box_no": 5, "hands": [hand(&["9S", "9H"], 18, false, false, false, false, "push")]},
                    {"box_no": 6, "hands": [hand(&["TC", "4C"], 14, false, false, false, false, "lose")]},
                    {"box_no": 7, "hands": [hand(&["2C", "2D", "5H", "QC"], 19, false, false, false, false, "win")]},
                ]
            })
        );
    }

    // ---------------------------------------------------------------- deal order, peek, ENHC

    #[test]
    fn first_deal_order_without_hole_card() {
        let mut r = round(enhc(7), &[1, 3, 4]);
        let expected = [
            pos(1, 1),
            pos(3, 1),
            pos(4, 1),
            Position::Dealer,
            pos(1, 1),
            pos(3, 1),
            pos(4, 1),
        ];
        for (card, position) in cs("9S 9H 9D TC TS TH TD").into_iter().zip(expected) {
            assert_eq!(r.phase(), Phase::Dealing);
            assert_eq!(r.awaiting(), Awaiting::Card(position));
            assert_eq!(r.expected_next(), Some(position));
            assert_eq!(r.card(card, None), Ok(position));
        }
        assert_eq!(r.phase(), Phase::Players);
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(1, 1)));
        assert_eq!(r.dealer_cards(), &cs("TC")[..]);
        // The dealer's second card comes after the players.
        assert_eq!(
            refused_card(&mut r, "AS", Some(Zone::Dealer)),
            Refusal::PlayersNotFinished { turn: pos(1, 1) }
        );
        for b in [1, 3, 4] {
            decide(&mut r, b, Decision::Stand);
        }
        assert_eq!(r.phase(), Phase::Dealer);
        assert_eq!(r.card(c("7S"), Some(Zone::Dealer)), Ok(Position::Dealer));
        assert_eq!(r.dealer_cards(), &cs("TC 7S")[..]);
        assert!(r.is_complete());
        assert_eq!(results(&r), vec![vec![Verdict::Win]; 3]);
    }

    #[test]
    fn first_deal_order_with_hole_card() {
        let mut r = round(holecard(Peek::None), &[2, 6]);
        let expected = [
            pos(2, 1),
            pos(6, 1),
            Position::Dealer,
            pos(2, 1),
            pos(6, 1),
            Position::DealerHole,
        ];
        for (card, position) in cs("9S 9H TC TS TH 7C").into_iter().zip(expected) {
            assert_eq!(r.expected_next(), Some(position));
            assert_eq!(r.card(card, None), Ok(position));
        }
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(2, 1)));
        decide(&mut r, 2, Decision::Stand);
        decide(&mut r, 6, Decision::Stand);
        // Dealer 17 stands at once.
        assert!(r.is_complete());
        assert_eq!(results(&r), vec![vec![Verdict::Win]; 2]);
    }

    #[test]
    fn peek_finds_blackjack_and_completes_at_once() {
        for (peek, up, hole) in [
            (Peek::AceOrTen, "AD", "KD"),
            (Peek::AceOrTen, "KD", "AD"),
            (Peek::AceOnly, "AD", "QD"),
        ] {
            let mut r = round(holecard(peek), &[1, 2]);
            deal(&mut r, &format!("TS AH {up} 9S KH"));
            assert_eq!(r.awaiting(), Awaiting::Card(Position::DealerHole));
            assert_eq!(r.card(c(hole), None), Ok(Position::DealerHole));
            assert_eq!(r.phase(), Phase::Complete, "{peek:?} {up} {hole}");
            assert_eq!(r.expected_next(), None);
            assert_eq!(results(&r), vec![vec![Verdict::Lose], vec![Verdict::Push]]);
            assert_eq!(refused_card(&mut r, "5C", None), Refusal::RoundComplete);
            assert_eq!(
                refused_decision(&mut r, 1, Decision::Hit),
                Refusal::RoundComplete
            );
        }
    }

    #[test]
    fn peek_without_blackjack_lets_the_players_play() {
        let mut r = round(holecard(Peek::AceOrTen), &[1]);
        deal(&mut r, "TS AD 7S 5D");
        assert_eq!(r.phase(), Phase::Players);
        decide(&mut r, 1, Decision::Stand);
        // Dealer soft 16 draws.
        assert_eq!(r.awaiting(), Awaiting::Card(Position::Dealer));
        deal(&mut r, "3C");
        assert_eq!(results(&r), vec![vec![Verdict::Lose]]);
    }

    #[test]
    fn no_peek_finds_blackjack_after_the_players() {
        // AceOnly does not peek under a ten; Peek::None never does.
        for rules in [holecard(Peek::AceOnly), holecard(Peek::None)] {
            let mut r = round(rules.clone(), &[1, 2]);
            deal(&mut r, "5S AH KD 6S KH AD");
            assert_eq!(r.phase(), Phase::Players, "{rules:?}");
            decide(&mut r, 1, Decision::Double);
            deal(&mut r, "TC");
            // Box 2 has blackjack and does not play; the dealer's 21 draws nothing.
            assert!(r.is_complete());
            let outcome = r.outcome().unwrap();
            assert!(outcome.dealer.value.blackjack);
            assert!(outcome.boxes[0].hands[0].doubled);
            assert_eq!(results(&r), vec![vec![Verdict::Lose], vec![Verdict::Push]]);
        }
    }

    #[test]
    fn enhc_dealer_blackjack_beats_doubles_and_splits() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "5S 8H AD 6S 8D");
        decide(&mut r, 1, Decision::Double);
        deal(&mut r, "TC");
        decide(&mut r, 2, Decision::Split);
        deal(&mut r, "3C");
        decide(&mut r, 2, Decision::Stand);
        deal(&mut r, "TD");
        decide(&mut r, 2, Decision::Stand);
        assert_eq!(r.awaiting(), Awaiting::Card(Position::Dealer));
        deal(&mut r, "KD");
        assert!(r.is_complete());
        assert_eq!(
            results(&r),
            vec![vec![Verdict::Lose], vec![Verdict::Lose, Verdict::Lose]]
        );
    }

    #[test]
    fn the_dealer_draws_nothing_when_every_hand_is_bust() {
        for rules in [enhc(2), holecard(Peek::AceOrTen), holecard(Peek::None)] {
            let mut r = round(rules.clone(), &[1, 2]);
            deal(&mut r, "TS TH 6D 6S 5H");
            if rules.hole_card {
                deal(&mut r, "7C");
            }
            deal(&mut r, "KS");
            decide(&mut r, 2, Decision::Double);
            deal(&mut r, "9H");
            assert!(r.is_complete(), "{rules:?}");
            assert_eq!(r.dealer_cards().len(), if rules.hole_card { 2 } else { 1 });
            assert_eq!(results(&r), vec![vec![Verdict::Lose]; 2]);
        }
    }

    #[test]
    fn only_blackjacks_and_busts_left() {
        // Up-card 9: the blackjack is paid without the dealer's second card.
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "AS TS 9D KH 6H");
        deal(&mut r, "8C"); // box 2 hits to 24
        assert!(r.is_complete());
        assert_eq!(
            results(&r),
            vec![vec![Verdict::Blackjack], vec![Verdict::Lose]]
        );
        // Up-card ace: one card decides; no draw to 17 after it.
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "AS TS AD KH 6H 8C");
        assert_eq!(r.awaiting(), Awaiting::Card(Position::Dealer));
        deal(&mut r, "5D");
        assert!(r.is_complete());
        assert_eq!(
            r.outcome().unwrap().dealer.value,
            value(16, true, false, false)
        );
        assert_eq!(
            results(&r),
            vec![vec![Verdict::Blackjack], vec![Verdict::Lose]]
        );
    }

    // ---------------------------------------------------------------- double and split

    #[test]
    fn double_takes_exactly_one_card() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "5S 9S 7D 6H 9H");
        assert_eq!(r.apply(1, Decision::Double), Ok(Awaiting::Card(pos(1, 1))));
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Stand),
            Refusal::AwaitingCard {
                position: pos(1, 1)
            }
        );
        assert_eq!(
            refused_decision(&mut r, 2, Decision::Stand),
            Refusal::NotYourTurn { turn: pos(1, 1) }
        );
        assert_eq!(r.card(c("2C"), None), Ok(pos(1, 1)));
        // 13 doubled: finished, box 2's turn.
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(2, 1)));
        assert_eq!(
            refused_card(&mut r, "4C", Some(Zone::Box(1))),
            Refusal::BoxFinished {
                box_no: 1,
                finish: Finish::Doubled
            }
        );
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Hit),
            Refusal::BoxFinished {
                box_no: 1,
                finish: Finish::Doubled
            }
        );
        decide(&mut r, 2, Decision::Hit);
        deal(&mut r, "2D");
        assert_eq!(
            refused_decision(&mut r, 2, Decision::Double),
            Refusal::DoubleNeedsTwoCards { cards: 3 }
        );
        decide(&mut r, 2, Decision::Stand);
        deal(&mut r, "TD");
        let outcome = r.outcome().unwrap();
        assert!(outcome.boxes[0].hands[0].doubled);
        assert!(!outcome.boxes[1].hands[0].doubled);
        assert_eq!(results(&r), vec![vec![Verdict::Lose], vec![Verdict::Win]]);
    }

    #[test]
    fn soft_double() {
        let (r, verdict) = single(enhc(1), "AS 6H", "", "5D TD 3C");
        assert_eq!(verdict, Verdict::Lose);
        drop(r);
        let mut r = round(enhc(1), &[1]);
        deal(&mut r, "AS 5D 6H");
        decide(&mut r, 1, Decision::Double);
        deal(&mut r, "2C");
        assert_eq!(
            r.snapshot().boxes[0].hands[0].value,
            value(19, true, false, false)
        );
        assert_eq!(r.snapshot().boxes[0].hands[0].finish, Some(Finish::Doubled));
        assert_eq!(r.phase(), Phase::Dealer);
    }

    #[test]
    fn split_plays_two_hands_in_turn() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "8S 9S 6D 8H 9H");
        assert_eq!(r.apply(1, Decision::Split), Ok(Awaiting::Card(pos(1, 1))));
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Stand),
            Refusal::AwaitingCard {
                position: pos(1, 1)
            }
        );
        assert_eq!(r.card(c("3C"), None), Ok(pos(1, 1)));
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(1, 1)));
        decide(&mut r, 1, Decision::Double); // double after split
        assert_eq!(r.card(c("TC"), Some(Zone::Box(1))), Ok(pos(1, 1)));
        assert_eq!(r.awaiting(), Awaiting::Card(pos(1, 2)));
        assert_eq!(r.card(c("8D"), Some(Zone::Box(1))), Ok(pos(1, 2)));
        // One split per box.
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Split),
            Refusal::AlreadySplit
        );
        decide(&mut r, 1, Decision::Hit);
        assert_eq!(r.card(c("5C"), None), Ok(pos(1, 2)));
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(2, 1)));
        decide(&mut r, 2, Decision::Stand);
        deal(&mut r, "TD 2D");
        let outcome = r.outcome().unwrap();
        let hands = &outcome.boxes[0].hands;
        assert_eq!(hands[0].cards, ["8S", "3C", "TC"]);
        assert!(hands[0].doubled);
        assert_eq!(hands[1].cards, ["8H", "8D", "5C"]);
        assert!(!hands[1].doubled);
        // Dealer 18.
        assert_eq!(
            results(&r),
            vec![vec![Verdict::Win, Verdict::Win], vec![Verdict::Push]]
        );
    }

    #[test]
    fn split_needs_a_pair_of_the_same_value() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "8S KS 6D 9H QH");
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Split),
            Refusal::NotAPair
        );
        decide(&mut r, 1, Decision::Hit);
        deal(&mut r, "2C");
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Split),
            Refusal::NotAPair
        );
        decide(&mut r, 1, Decision::Stand);
        // King and queen are a pair of tens.
        decide(&mut r, 2, Decision::Split);
        assert_eq!(r.awaiting(), Awaiting::Card(pos(2, 1)));
    }

    #[test]
    fn split_aces_take_one_card_and_21_is_not_blackjack() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "AS 9S 9D AH 9H");
        decide(&mut r, 1, Decision::Split);
        assert_eq!(r.card(c("KC"), None), Ok(pos(1, 1)));
        // 21 after a split: no decision, and not blackjack.
        assert_eq!(r.awaiting(), Awaiting::Card(pos(1, 2)));
        assert_eq!(r.card(c("5C"), None), Ok(pos(1, 2)));
        // Split aces stand on one card, soft 16 or not.
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(2, 1)));
        let snapshot = r.snapshot();
        let hands = &snapshot.boxes[0].hands;
        assert_eq!(hands[0].value, value(21, true, false, false));
        assert_eq!(hands[0].finish, Some(Finish::TwentyOne));
        assert!(hands[0].from_split);
        assert_eq!(hands[1].value, value(16, true, false, false));
        assert_eq!(hands[1].finish, Some(Finish::SplitAces));
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Hit),
            Refusal::BoxFinished {
                box_no: 1,
                finish: Finish::SplitAces
            }
        );
        decide(&mut r, 2, Decision::Split);
        deal(&mut r, "AC"); // 9 + A = soft 20
        decide(&mut r, 2, Decision::Stand);
        deal(&mut r, "KD"); // 19
        decide(&mut r, 2, Decision::Stand);
        deal(&mut r, "KS"); // dealer 19
        assert_eq!(
            results(&r),
            vec![
                vec![Verdict::Win, Verdict::Lose],
                vec![Verdict::Win, Verdict::Push]
            ]
        );
        // An ace and a ten after a split lose to a dealer blackjack.
        let mut r = round(enhc(1), &[1]);
        deal(&mut r, "AS AD AH");
        decide(&mut r, 1, Decision::Split);
        deal(&mut r, "KC QC KD");
        assert_eq!(results(&r), vec![vec![Verdict::Lose, Verdict::Lose]]);
        assert!(r.outcome().unwrap().dealer.value.blackjack);
    }

    #[test]
    fn twenty_one_stands_by_itself() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "TS TH 7D 5S 9H");
        assert_eq!(r.card(c("6C"), None), Ok(pos(1, 1))); // implicit hit to 21
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(2, 1)));
        assert_eq!(
            r.snapshot().boxes[0].hands[0].finish,
            Some(Finish::TwentyOne)
        );
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Hit),
            Refusal::BoxFinished {
                box_no: 1,
                finish: Finish::TwentyOne
            }
        );
    }

    // ---------------------------------------------------------------- zones

    #[test]
    fn zones_place_the_first_deal_in_any_order() {
        let cards = "2S 3S 4S KD 5S 6S 7S 8D";
        let mut ordered = round(holecard(Peek::None), &[1, 2, 3]);
        deal(&mut ordered, cards);
        let mut zoned = round(holecard(Peek::None), &[1, 2, 3]);
        let b = Zone::Box;
        for (card, zone, expected) in [
            ("7S", b(3), pos(3, 1)),
            ("4S", b(3), pos(3, 1)),
            ("KD", Zone::Dealer, Position::Dealer),
            ("8D", Zone::Dealer, Position::DealerHole),
            ("6S", b(2), pos(2, 1)),
            ("3S", b(2), pos(2, 1)),
            ("5S", b(1), pos(1, 1)),
        ] {
            assert_eq!(zoned.card(c(card), Some(zone)), Ok(expected), "{card}");
        }
        assert_eq!(
            refused_card(&mut zoned, "9C", Some(b(3))),
            Refusal::BoxAlreadyDealt { box_no: 3 }
        );
        assert_eq!(
            refused_card(&mut zoned, "9C", Some(Zone::Dealer)),
            Refusal::DealerAlreadyDealt
        );
        // The one slot left is the first box's second card, whatever the deal order says.
        assert_eq!(zoned.expected_next(), Some(pos(1, 1)));
        assert_eq!(zoned.card(c("2S"), None), Ok(pos(1, 1)));
        assert_eq!(zoned.phase(), Phase::Players);
        // Same cards in the same places (box order within a box differs: the zone order).
        for (z, o) in zoned
            .snapshot()
            .boxes
            .iter()
            .zip(ordered.snapshot().boxes.iter())
        {
            let (mut zc, mut oc) = (z.hands[0].cards.clone(), o.hands[0].cards.clone());
            zc.sort();
            oc.sort();
            assert_eq!(zc, oc);
        }
        assert_eq!(zoned.dealer_cards(), ordered.dealer_cards());
    }

    #[test]
    fn without_a_hole_card_the_dealer_zone_takes_one_card_in_the_first_deal() {
        let mut r = round(enhc(1), &[1]);
        assert_eq!(r.card(c("KD"), Some(Zone::Dealer)), Ok(Position::Dealer));
        assert_eq!(
            refused_card(&mut r, "9D", Some(Zone::Dealer)),
            Refusal::DealerAlreadyDealt
        );
        // Without a zone the card goes to the box.
        assert_eq!(r.card(c("9D"), None), Ok(pos(1, 1)));
    }

    #[test]
    fn a_card_in_a_later_box_stands_the_boxes_passed_over() {
        let mut r = round(enhc(4), &[1, 2, 3, 4]);
        deal(&mut r, "TS TH TD TC 6D 7S 8H 3D 5C");
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(1, 1)));
        assert_eq!(r.card(c("2S"), Some(Zone::Box(3))), Ok(pos(3, 1)));
        let snapshot = r.snapshot();
        let finishes: Vec<_> = snapshot.boxes.iter().map(|b| b.hands[0].finish).collect();
        assert_eq!(
            finishes,
            vec![Some(Finish::Stood), Some(Finish::Stood), None, None]
        );
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(3, 1)));
        // A late "stand" from the orchestrator for a box the dealer has passed is refused
        // (and harmless).
        assert_eq!(
            refused_decision(&mut r, 1, Decision::Stand),
            Refusal::BoxFinished {
                box_no: 1,
                finish: Finish::Stood
            }
        );
        // A card to a box already passed.
        assert_eq!(
            refused_card(&mut r, "2H", Some(Zone::Box(2))),
            Refusal::BoxFinished {
                box_no: 2,
                finish: Finish::Stood
            }
        );
        assert_eq!(r.card(c("2H"), Some(Zone::Box(3))), Ok(pos(3, 1)));
        decide(&mut r, 3, Decision::Stand);
        decide(&mut r, 4, Decision::Stand);
        deal(&mut r, "AD"); // dealer soft 17 stands
        assert_eq!(
            results(&r),
            vec![
                vec![Verdict::Push],
                vec![Verdict::Win],
                vec![Verdict::Push],
                vec![Verdict::Lose]
            ]
        );
    }

    #[test]
    fn a_card_in_a_later_box_cannot_skip_an_owed_card() {
        let mut r = round(enhc(3), &[1, 2, 3]);
        deal(&mut r, "TS 8S 8D 6D 4H 8H 9D");
        decide(&mut r, 1, Decision::Hit);
        assert_eq!(
            refused_card(&mut r, "2S", Some(Zone::Box(3))),
            Refusal::SkipsOwedCard {
                position: pos(1, 1)
            }
        );
        deal(&mut r, "2S");
        decide(&mut r, 1, Decision::Stand);
        decide(&mut r, 2, Decision::Split);
        // Box 2's first split hand is owed its second card.
        assert_eq!(
            refused_card(&mut r, "2H", Some(Zone::Box(3))),
            Refusal::SkipsOwedCard {
                position: pos(2, 1)
            }
        );
        deal(&mut r, "3C");
        // Hand 2 is owed its second card: a later box cannot be served yet.
        decide(&mut r, 2, Decision::Stand);
        assert_eq!(
            refused_card(&mut r, "2H", Some(Zone::Box(3))),
            Refusal::SkipsOwedCard {
                position: pos(2, 2)
            }
        );
    }

    #[test]
    fn a_card_in_a_later_box_cannot_land_on_a_blackjack() {
        let mut r = round(enhc(2), &[1, 2]);
        deal(&mut r, "9S AS 7D 8S KH");
        assert_eq!(
            refused_card(&mut r, "2S", Some(Zone::Box(2))),
            Refusal::BoxFinished {
                box_no: 2,
                finish: Finish::Blackjack
            }
        );
    }

    #[test]
    fn a_card_without_a_decision_is_a_hit() {
        let mut r = round(enhc(1), &[1]);
        deal(&mut r, "2S 7D 3S");
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(1, 1)));
        assert_eq!(r.expected_next(), Some(pos(1, 1)));
        assert_eq!(r.card(c("4S"), None), Ok(pos(1, 1)));
        assert_eq!(r.card(c("5S"), Some(Zone::Box(1))), Ok(pos(1, 1)));
        assert_eq!(r.awaiting(), Awaiting::Decision(pos(1, 1)));
        assert_eq!(r.snapshot().boxes[0].hands[0].value.total, 14);
    }

    #[test]
    fn cards_that_make_no_sense_are_refused_and_change_nothing() {
        let mut r = round(enhc(7), &[2, 5]);
        // Boxes with no bet, and boxes that are not on the table.
        for b in [0, 1, 3, 7, 8, 255] {
            assert_eq!(
                refused_card(&mut r, "2S", Some(Zone::Box(b))),
                Refusal::NotInPlay { box_no: b }
            );
            assert_eq!(
                refused_decision(&mut r, b, Decision::Hit),
                Refusal::DealingNotFinished { next: pos(2, 1) }
            );
        }
        deal(&mut r, "TS 6S 7D");
        assert_eq!(
            refused_decision(&mut r, 2, Decision::Stand),
            Refusal::DealingNotFinished { next: pos(2, 1) }
        );
        deal(&mut r, "6H 5H");
        for b in [1, 3, 7, 8] {
            assert_eq!(
                refused_card(&mut r, "2S", Some(Zone::Box(b))),
                Refusal::NotInPlay { box_no: b }
            );
            assert_eq!(
                refused_decision(&mut r, b, Decision::Stand),
                Refusal::NotInPlay { box_no: b }
            );
        }
        // The dealer before the players.
        assert_eq!(
            refused_card(&mut r, "2S", Some(Zone::Dealer)),
            Refusal::PlayersNotFinished { turn: pos(2, 1) }
        );
        // A bust box.
        deal(&mut r, "KC");
        assert_eq!(
            refused_card(&mut r, "2S", Some(Zone::Box(2))),
            Refusal::BoxFinished {
                box_no: 2,
                finish: Finish::Bust
            }
        );
        decide(&mut r, 5, Decision::Stand);
        // A stood box while the dealer draws.
        assert_eq!(r.phase(), Phase::Dealer);
        assert_eq!(
            refused_card(&mut r, "2S", Some(Zone::Box(5))),
            Refusal::BoxFinished {
                box_no: 5,
                finish: Finish::Stood
            }
        );
        assert_eq!(
            refused_decision(&mut r, 5, Decision::Hit),
            Refusal::BoxFinished {
                box_no: 5,
                finish: Finish::Stood
            }
        );
        deal(&mut r, "TD");
        // After the round.
        assert!(r.is_complete());
        for zone in [
            None,
            Some(Zone::Dealer),
            Some(Zone::Box(5)),
            Some(Zone::Box(3)),
        ] {
            assert_eq!(refused_card(&mut r, "2S", zone), Refusal::RoundComplete);
        }
        assert_eq!(
            refused_decision(&mut r, 5, Decision::Stand),
            Refusal::RoundComplete
        );
    }

    #[test]
    fn errors_read_well() {
        let e = BlackjackError::UnexpectedCard {
            card: c("KH"),
            reason: Refusal::PlayersNotFinished { turn: pos(3, 2) },
        };
        assert_eq!(
            e.to_string(),
            "card KH does not fit the round: the players have not finished: box 3 hand 2 plays now"
        );
        let e = BlackjackError::UnexpectedDecision {
            box_no: 4,
            decision: Decision::Double,
            reason: Refusal::DoubleNeedsTwoCards { cards: 3 },
        };
        assert_eq!(
            e.to_string(),
            "decision `double` for box 4 does not fit the round: double needs a two-card hand, this one has 3"
        );
    }

    // ---------------------------------------------------------------- wire formats

    #[test]
    fn zones_parse() {
        for (text, zone) in [
            ("dealer", Some(Zone::Dealer)),
            (" Dealer ", Some(Zone::Dealer)),
            ("box3", Some(Zone::Box(3))),
            ("BOX 7", Some(Zone::Box(7))),
            ("box-1", Some(Zone::Box(1))),
            ("box_2", Some(Zone::Box(2))),
            ("box:4", Some(Zone::Box(4))),
            ("box12", Some(Zone::Box(12))),
            ("box", None),
            ("box-", None),
            ("box-x", None),
            ("box 300", None),
            ("box +3", None),
            ("3", None),
            ("antenna-3", None),
            ("", None),
        ] {
            assert_eq!(Zone::parse(text), zone, "{text:?}");
        }
        assert_eq!(Zone::Box(3).to_string(), "box3");
        assert_eq!("box3".parse::<Zone>(), Ok(Zone::Box(3)));
        assert!("x".parse::<Zone>().is_err());
        for zone in [Zone::Dealer, Zone::Box(5)] {
            assert_eq!(Zone::parse(&zone.to_string()), Some(zone));
        }
        assert_eq!(Zone::of_position(&pos(4, 2)), Some(Zone::Box(4)));
        assert_eq!(Zone::of_position(&Position::DealerHole), Some(Zone::Dealer));
    }

    #[test]
    fn positions_and_refusals_in_json() {
        for (position, json) in [
            (
                pos(3, 2),
                serde_json::json!({"zone": "box", "box_no": 3, "hand": 2}),
            ),
            (Position::Dealer, serde_json::json!({"zone": "dealer"})),
            (
                Position::DealerHole,
                serde_json::json!({"zone": "dealer_hole"}),
            ),
        ] {
            assert_eq!(serde_json::to_value(position).unwrap(), json);
            assert_eq!(serde_json::from_value::<Position>(json).unwrap(), position);
        }
        assert_eq!(
            serde_json::to_value(Awaiting::Decision(pos(1, 1))).unwrap(),
            serde_json::json!({"awaiting": "decision", "position": {"zone": "box", "box_no": 1, "hand": 1}})
        );
        assert_eq!(
            serde_json::to_value(Awaiting::Nothing).unwrap(),
            serde_json::json!({"awaiting": "nothing"})
        );
        assert_eq!(
            serde_json::to_value(Refusal::BoxFinished {
                box_no: 2,
                finish: Finish::TwentyOne
            })
            .unwrap(),
            serde_json::json!({"reason": "box_finished", "box_no": 2, "finish": "twenty_one"})
        );
        assert_eq!(
            serde_json::to_value(Refusal::PlayersNotFinished { turn: pos(1, 1) }).unwrap(),
            serde_json::json!({"reason": "players_not_finished", "turn": {"zone": "box", "box_no": 1, "hand": 1}})
        );
        for d in [
            Decision::Hit,
            Decision::Stand,
            Decision::Double,
            Decision::Split,
        ] {
            let json = serde_json::to_value(d).unwrap();
            assert_eq!(json, serde_json::Value::String(d.to_string()));
            assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);
        }
        assert_eq!(
            serde_json::to_value(Zone::Box(3)).unwrap(),
            serde_json::json!({"box": 3})
        );
    }

    #[test]
    fn the_snapshot_keeps_the_hole_card_down() {
        let mut r = round(holecard(Peek::AceOrTen), &[1]);
        deal(&mut r, "TS 9D 8S");
        assert!(!r.snapshot().hole_card_down);
        deal(&mut r, "AD");
        let s = r.snapshot();
        assert!(s.hole_card_down);
        assert_eq!(s.dealer.cards, ["9D"]);
        assert_eq!(s.dealer.value.total, 9);
        assert_eq!(s.phase, Phase::Players);
        decide(&mut r, 1, Decision::Stand);
        let s = r.snapshot();
        assert!(!s.hole_card_down);
        assert_eq!(s.dealer.cards, ["9D", "AD"]);
        assert_eq!(s.phase, Phase::Complete);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["awaiting"], serde_json::json!({"awaiting": "nothing"}));
        assert_eq!(json["boxes"][0]["hands"][0]["finish"], "stood");
    }

    // ---------------------------------------------------------------- random play

    /// xorshift64*: reproducible without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        fn card(&mut self) -> Card {
            Card {
                rank: Rank::ALL[self.below(13)],
                suit: Suit::ALL[self.below(4)],
            }
        }

        fn rules(&mut self) -> Rules {
            let hole_card = self.chance(50);
            Rules {
                dealer_hits_soft_17: self.chance(50),
                peek: if hole_card {
                    [Peek::None, Peek::AceOnly, Peek::AceOrTen][self.below(3)]
                } else {
                    Peek::None
                },
                hole_card,
                boxes: 1 + self.below(7) as u8,
            }
        }

        fn boxes(&mut self, rules: &Rules) -> Vec<u8> {
            let mut boxes: Vec<u8> = (1..=rules.boxes).filter(|_| self.chance(60)).collect();
            if boxes.is_empty() {
                boxes.push(1 + self.below(usize::from(rules.boxes)) as u8);
            }
            boxes
        }
    }

    const DECISIONS: [Decision; 4] = [
        Decision::Hit,
        Decision::Stand,
        Decision::Double,
        Decision::Split,
    ];

    fn total_cards(r: &Round) -> usize {
        r.dealer_cards().len()
            + r.seats
                .iter()
                .flat_map(|seat| seat.hands.iter())
                .map(|hand| hand.cards.len())
                .sum::<usize>()
    }

    /// What holds after every step, whatever came in.
    fn check_invariants(r: &Round) {
        let phase = r.phase();
        let awaiting = r.awaiting();
        match (phase, awaiting) {
            (Phase::Dealing, Awaiting::Card(_))
            | (
                Phase::Players,
                Awaiting::Card(Position::Box { .. }) | Awaiting::Decision(Position::Box { .. }),
            )
            | (Phase::Dealer, Awaiting::Card(Position::Dealer))
            | (Phase::Complete, Awaiting::Nothing) => {}
            other => panic!("{other:?}\n{r:#?}"),
        }
        assert_eq!(r.is_complete(), r.outcome().is_some());
        assert_eq!(r.is_complete(), r.expected_next().is_none());
        for seat in &r.seats {
            assert!(!seat.hands.is_empty() && seat.hands.len() <= 2);
            for hand in &seat.hands {
                assert_eq!(hand.from_split, seat.hands.len() == 2);
                // Nothing is ever dealt to a finished hand: no card after 21 or a bust.
                let before_last = &hand.cards[..hand.cards.len().saturating_sub(1)];
                assert!(
                    HandValue::of(before_last).total < 21 || hand.cards.len() <= 2,
                    "{hand:?}"
                );
            }
        }
        if let Some(outcome) = r.outcome() {
            for hand in outcome.boxes.iter().flat_map(|b| b.hands.iter()) {
                if hand.value.bust {
                    assert_eq!(hand.result, Verdict::Lose);
                }
                if hand.result == Verdict::Blackjack {
                    assert!(hand.value.blackjack && hand.cards.len() == 2);
                }
            }
        }
    }

    #[test]
    fn random_cards_and_decisions_never_panic_nor_corrupt() {
        let mut rng = Rng(0x5EED_CAFE_F00D_0001);
        let mut completed = 0;
        for _ in 0..2_000 {
            let rules = rng.rules();
            let boxes = rng.boxes(&rules);
            let mut r = Round::with_boxes(rules, &boxes).unwrap();
            for _ in 0..60 {
                let before = r.clone();
                let cards_before = total_cards(&r);
                if rng.chance(70) {
                    let zone = match rng.below(4) {
                        0 | 1 => None,
                        2 => Some(Zone::Dealer),
                        _ => Some(Zone::Box(rng.below(10) as u8)),
                    };
                    let card = rng.card();
                    match r.card(card, zone) {
                        Ok(position) => {
                            assert_eq!(total_cards(&r), cards_before + 1);
                            match position {
                                Position::Dealer | Position::DealerHole => {
                                    assert_eq!(r.dealer_cards().last(), Some(&card));
                                }
                                Position::Box { box_no, hand } => {
                                    let s = r.snapshot();
                                    let b = s.boxes.iter().find(|b| b.box_no == box_no).unwrap();
                                    let h = &b.hands[usize::from(hand) - 1];
                                    assert_eq!(h.cards.last(), Some(&card.to_string()));
                                    if let Some(Zone::Box(z)) = zone {
                                        assert_eq!(z, box_no);
                                    }
                                }
                            }
                            if zone == Some(Zone::Dealer) {
                                assert!(matches!(
                                    position,
                                    Position::Dealer | Position::DealerHole
                                ));
                            }
                        }
                        Err(e) => {
                            assert!(matches!(e, BlackjackError::UnexpectedCard { .. }));
                            assert_eq!(r, before);
                        }
                    }
                } else {
                    let box_no = rng.below(10) as u8;
                    let decision = DECISIONS[rng.below(4)];
                    if r.apply(box_no, decision).is_err() {
                        assert_eq!(r, before);
                    }
                }
                check_invariants(&r);
            }
            // The payloads always serialise.
            serde_json::to_string(&r.snapshot()).unwrap();
            if let Some(outcome) = r.outcome() {
                serde_json::to_string(&outcome).unwrap();
                completed += 1;
            }
        }
        assert!(completed > 500, "{completed}");
    }

    /// A dealer who follows the round: random cards, random decisions the round accepts,
    /// zones some of the time. Every round completes, the dealer draws exactly to the rule,
    /// and replaying the recorded positions as zones rebuilds the same round (what crash
    /// recovery does with the journal).
    #[test]
    fn well_played_rounds_complete_and_replay() {
        #[derive(Debug)]
        enum Step {
            Card(Card, Position),
            Decision(u8, Decision),
        }
        let mut rng = Rng(0xB1AC_4AC4_0000_0007);
        for _ in 0..5_000 {
            let rules = rng.rules();
            let boxes = rng.boxes(&rules);
            let mut r = Round::with_boxes(rules.clone(), &boxes).unwrap();
            let mut steps = Vec::new();
            let mut guard = 0;
            while !r.is_complete() {
                guard += 1;
                assert!(guard < 200, "{r:#?}");
                match r.awaiting() {
                    Awaiting::Decision(Position::Box { box_no, .. }) if rng.chance(60) => {
                        let decision = DECISIONS[rng.below(4)];
                        let decision = if r.apply(box_no, decision).is_ok() {
                            decision
                        } else {
                            // Stand always fits a hand waiting for a decision.
                            r.apply(box_no, Decision::Stand).unwrap();
                            Decision::Stand
                        };
                        steps.push(Step::Decision(box_no, decision));
                    }
                    Awaiting::Card(expected) | Awaiting::Decision(expected) => {
                        let card = rng.card();
                        let zone = if rng.chance(30) {
                            Zone::of_position(&expected)
                        } else {
                            None
                        };
                        let position = r.card(card, zone).unwrap();
                        assert_eq!(position, expected);
                        steps.push(Step::Card(card, position));
                    }
                    Awaiting::Nothing => unreachable!(),
                }
                check_invariants(&r);
            }
            // The dealer drew exactly to the rule when the hands needed it.
            let outcome = r.outcome().unwrap();
            let dealer = r.dealer_cards();
            let first_deal = if rules.hole_card { 2 } else { 1 };
            let live = outcome
                .boxes
                .iter()
                .flat_map(|b| b.hands.iter())
                .any(|h| !h.value.bust && !h.value.blackjack);
            let peeked = rules.hole_card
                && rules.peek.applies_to(dealer[0].rank)
                && outcome.dealer.value.blackjack;
            if live && !peeked {
                assert!(!dealer_should_hit(dealer, &rules), "{dealer:?}");
                for k in first_deal..dealer.len() {
                    assert!(dealer_should_hit(&dealer[..k], &rules), "{dealer:?}");
                }
            } else {
                assert!(dealer.len() <= 2, "{dealer:?}");
            }
            if !peeked {
                for hand in r.snapshot().boxes.iter().flat_map(|b| b.hands.iter()) {
                    assert!(hand.finish.is_some(), "{hand:?}");
                }
            }
            // Replay with zones only.
            let mut replay = Round::with_boxes(rules, &boxes).unwrap();
            for step in &steps {
                match *step {
                    Step::Card(card, position) => {
                        assert_eq!(
                            replay.card(card, Zone::of_position(&position)),
                            Ok(position)
                        );
                    }
                    Step::Decision(box_no, decision) => {
                        replay.apply(box_no, decision).unwrap();
                    }
                }
            }
            assert_eq!(replay, r);
        }
    }
}
