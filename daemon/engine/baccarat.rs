//! Baccarat (punto banco) rules: which card goes where, when the coup is over, and who won.
//!
//! # What this module is for
//!
//! In punto banco nobody decides anything once the bets are closed: the tableau (the drawing
//! rules printed on the layout) fixes whether the player's hand and the banker's hand take a
//! third card. The shoe therefore tells Croupier everything: the n-th card out of the shoe goes
//! to a side fixed by the rules and by the cards before it. [`Coup`] follows that, card by card,
//! so the table engine knows at every moment
//!
//! * which side the next card belongs to ([`Coup::expected_next`]), shown on the prompter so the
//!   dealer sees "banker's third card" before drawing it;
//! * when the coup is complete ([`Progress::Complete`]), which is what lets the engine publish
//!   the result without waiting for the dealer to press anything;
//! * that a card is **missing** ([`Coup::missing`]), when the round has to be closed (a timeout,
//!   the orchestrator or the supervisor asks for the result) but the rules still want a card,
//!   usually one the shoe did not read. The engine decides what follows (an alert, then a
//!   manual entry or a void); this module only names the side that is short;
//! * that a card is **extra** ([`BaccaratError::ExtraCard`]): a card drawn after the coup was
//!   complete, typically a double read or a misdeal. It is refused and the coup is left exactly
//!   as it was, so one bad read can never change a settled result.
//!
//! Nothing here does I/O or keeps time; the engine feeds cards in and decides what to publish.
//! Feed it the dealt cards only (the shoe's `CardEvent::Drawn`), never burn cards: a burned card
//! belongs to no hand.
//!
//! # The rules implemented
//!
//! * Card points: ace 1, two to nine their face value, ten and the court cards (J, Q, K) 0. A
//!   hand's total is the sum of its points modulo 10 (7 + 8 is 5).
//! * Dealing order: player, banker, player, banker; then possibly the player's third card; then
//!   possibly the banker's third card.
//! * Naturals: if either hand totals 8 or 9 on its first two cards, both hands stand and the coup
//!   is over.
//! * Player: draws a third card on 0–5, stands on 6 or 7.
//! * Banker, when the player stood on two cards: draws on 0–5, stands on 6 or 7. (So a banker on
//!   3, 4 or 5 draws whenever the player stood.)
//! * Banker, when the player drew a third card worth P points:
//!
//!   | banker total | draws when P is   | stands when P is |
//!   |--------------|-------------------|------------------|
//!   | 0, 1, 2      | anything          | —                |
//!   | 3            | anything but 8    | 8                |
//!   | 4            | 2–7               | 0, 1, 8, 9       |
//!   | 5            | 4–7               | 0–3, 8, 9        |
//!   | 6            | 6, 7              | 0–5, 8, 9        |
//!   | 7            | —                 | anything         |
//!
//! * The higher total wins; equal totals are a tie.
//! * Pairs (the "player pair" / "banker pair" side bets): a hand's first two cards have the same
//!   **rank**. K-K is a pair, K-Q is not, although both are worth 0. A third card never makes a
//!   pair.
//!
//! These drawing rules are shared by the common punto banco variants; commission rules (5 % on banker wins,
//! "no commission" banker 6) are settlement matters for the orchestrator, which has the totals
//! and the cards it needs for them in [`Outcome`].
//!
//! # The result payload
//!
//! [`Outcome`] serialises as the baccarat part of the result payload, for example:
//!
//! ```json
//! {"winner": "banker", "player_total": 5, "banker_total": 7,
//!  "player_natural": false, "banker_natural": false,
//!  "player_pair": false, "banker_pair": false,
//!  "player_cards": ["4H", "TC", "AS"], "banker_cards": ["3D", "KS", "4C"]}
//! ```
//!
//! Cards are written rank then suit (`T` for ten), in the order they were dealt to that hand.

use std::fmt;

use croupier_drivers::model::{Card, Rank};
use serde::Serialize;

/// One of the two hands on the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Player,
    Banker,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Player => "player",
            Side::Banker => "banker",
        })
    }
}

/// Who won the coup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    Player,
    Banker,
    Tie,
}

/// The result of a complete coup. Serialised into the result payload; the field names are part of
/// the event contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Outcome {
    pub winner: Winner,
    /// 0–9.
    pub player_total: u8,
    /// 0–9.
    pub banker_total: u8,
    /// The player's first two cards total 8 or 9.
    pub player_natural: bool,
    /// The banker's first two cards total 8 or 9.
    pub banker_natural: bool,
    /// The player's first two cards have the same rank.
    pub player_pair: bool,
    /// The banker's first two cards have the same rank.
    pub banker_pair: bool,
    /// The player's cards in dealing order, written `KH`, `TD`, `AS`.
    pub player_cards: Vec<String>,
    /// The banker's cards in dealing order.
    pub banker_cards: Vec<String>,
}

/// Where a coup stands after a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// The coup goes on; the next card out of the shoe belongs to this side.
    Next(Side),
    /// That card completed the coup.
    Complete(Outcome),
}

/// A card the rules do not allow. In both cases the card is left out and the coup is unchanged;
/// the engine raises an alert and the supervisor decides (usually: a misdeal or a double read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaccaratError {
    /// A card after the coup was complete.
    #[error(
        "card {card} came after the coup was complete and was left out of it; \
         look for a double read by the shoe or a misdeal"
    )]
    ExtraCard { card: Card },
    /// A card placed on one side when the rules give the next card to the other (only reported
    /// by [`Coup::push_to`], where a card zone says where the card landed).
    #[error(
        "card {card} was placed on the {side} side, but the next card belongs to the \
         {expected}; it was left out of the coup: the dealer must correct the deal"
    )]
    WrongSide {
        card: Card,
        expected: Side,
        side: Side,
    },
}

/// A card's points: ace 1, two to nine face value, ten and court cards 0.
pub fn points(card: Card) -> u8 {
    match card.rank {
        Rank::Ten | Rank::Jack | Rank::Queen | Rank::King => 0,
        rank => rank.number(),
    }
}

/// A hand's total: the sum of its points modulo 10.
pub fn hand_total(cards: &[Card]) -> u8 {
    cards.iter().fold(0, |sum, &card| (sum + points(card)) % 10)
}

/// The player's rule: a third card on a two-card total of 0–5.
pub fn player_draws(player_total: u8) -> bool {
    player_total <= 5
}

/// The banker's rule, for a banker two-card total of 0–7 (8 and 9 are naturals and never get
/// here: they stand). `player_third` is the points (0–9) of the player's third card, or `None`
/// when the player stood on two cards.
pub fn banker_draws(banker_total: u8, player_third: Option<u8>) -> bool {
    match (banker_total, player_third) {
        (0..=2, _) => true,
        (3..=5, None) => true,
        (3, Some(p)) => p != 8,
        (4, Some(p)) => (2..=7).contains(&p),
        (5, Some(p)) => (4..=7).contains(&p),
        (6, Some(p)) => (6..=7).contains(&p),
        _ => false,
    }
}

/// A natural: 8 or 9 on two cards.
fn is_natural(two_card_total: u8) -> bool {
    two_card_total >= 8
}

/// The first two cards of a hand have the same rank.
fn is_pair(cards: &[Card]) -> bool {
    matches!((cards.first(), cards.get(1)), (Some(a), Some(b)) if a.rank == b.rank)
}

/// One coup, built card by card in the order the cards leave the shoe.
///
/// Shoe order `4H 3D TC KS AS 4C`: the first four cards alternate (player 4H and TC: 4; banker
/// 3D and KS: 3). The player draws on 4 and gets AS (5). A banker on 3 draws against any third
/// card but an 8, and gets 4C (7). Banker wins 7 to 5; a seventh card would be extra.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coup {
    player: Vec<Card>,
    banker: Vec<Card>,
}

impl Coup {
    /// A coup with no cards yet: the first card is the player's.
    pub fn new() -> Self {
        Self::default()
    }

    /// The coup made of these cards in shoe order, e.g. when rebuilding a round from the journal
    /// after a restart.
    ///
    /// # Errors
    ///
    /// [`BaccaratError::ExtraCard`] for the first card after the coup was complete.
    pub fn from_cards(cards: impl IntoIterator<Item = Card>) -> Result<Self, BaccaratError> {
        let mut coup = Self::new();
        for card in cards {
            coup.push(card)?;
        }
        Ok(coup)
    }

    /// The next card out of the shoe: it goes to the side the rules give it to.
    ///
    /// # Errors
    ///
    /// [`BaccaratError::ExtraCard`] when the coup is already complete; the coup is unchanged.
    pub fn push(&mut self, card: Card) -> Result<Progress, BaccaratError> {
        let side = self
            .expected_next()
            .ok_or(BaccaratError::ExtraCard { card })?;
        Ok(self.deal(side, card))
    }

    /// A card seen landing on `side` (by a card-zone reader or vision), checked against the
    /// rules.
    ///
    /// # Errors
    ///
    /// [`BaccaratError::ExtraCard`] when the coup is already complete,
    /// [`BaccaratError::WrongSide`] when the rules give the card to the other side. Either way
    /// the coup is unchanged.
    pub fn push_to(&mut self, side: Side, card: Card) -> Result<Progress, BaccaratError> {
        let expected = self
            .expected_next()
            .ok_or(BaccaratError::ExtraCard { card })?;
        if expected != side {
            return Err(BaccaratError::WrongSide {
                card,
                expected,
                side,
            });
        }
        Ok(self.deal(side, card))
    }

    fn deal(&mut self, side: Side, card: Card) -> Progress {
        match side {
            Side::Player => self.player.push(card),
            Side::Banker => self.banker.push(card),
        }
        match self.expected_next() {
            Some(next) => Progress::Next(next),
            None => Progress::Complete(self.settle()),
        }
    }

    /// Which side the next card belongs to, or `None` when the coup is complete.
    pub fn expected_next(&self) -> Option<Side> {
        match (self.player.as_slice(), self.banker.len()) {
            // The four initial cards alternate, player first.
            ([], 0) | ([_], 1) => Some(Side::Player),
            ([_], 0) | ([_, _], 1) => Some(Side::Banker),
            ([_, _], 2) => {
                let player = hand_total(&self.player);
                let banker = hand_total(&self.banker);
                if is_natural(player) || is_natural(banker) {
                    None
                } else if player_draws(player) {
                    Some(Side::Player)
                } else if banker_draws(banker, None) {
                    Some(Side::Banker)
                } else {
                    None
                }
            }
            ([_, _, third], 2) => {
                banker_draws(hand_total(&self.banker), Some(points(*third))).then_some(Side::Banker)
            }
            // Player stood and banker drew, or both drew: nothing more is dealt. (No other
            // shape can be built through `push`.)
            _ => None,
        }
    }

    /// The side whose card is missing if the coup has to end now (the engine asks when a round
    /// is closed by a timeout or a result request), or `None` when the coup is complete. The
    /// same answer as [`Coup::expected_next`], named for that question.
    pub fn missing(&self) -> Option<Side> {
        self.expected_next()
    }

    /// All the cards the rules call for have been dealt.
    pub fn is_complete(&self) -> bool {
        self.expected_next().is_none()
    }

    /// The cards dealt so far: (player's, banker's), each in dealing order.
    pub fn cards(&self) -> (&[Card], &[Card]) {
        (&self.player, &self.banker)
    }

    /// The running totals (player, banker), for the prompter while the coup is dealt.
    pub fn totals(&self) -> (u8, u8) {
        (hand_total(&self.player), hand_total(&self.banker))
    }

    /// The result, once the coup is complete.
    pub fn outcome(&self) -> Option<Outcome> {
        self.is_complete().then(|| self.settle())
    }

    /// The result of the cards as they are; only meaningful once the coup is complete.
    fn settle(&self) -> Outcome {
        let (player_total, banker_total) = self.totals();
        let two_card = |cards: &[Card]| hand_total(cards.get(..2).unwrap_or(cards));
        Outcome {
            winner: match player_total.cmp(&banker_total) {
                std::cmp::Ordering::Greater => Winner::Player,
                std::cmp::Ordering::Less => Winner::Banker,
                std::cmp::Ordering::Equal => Winner::Tie,
            },
            player_total,
            banker_total,
            player_natural: is_natural(two_card(&self.player)),
            banker_natural: is_natural(two_card(&self.banker)),
            player_pair: is_pair(&self.player),
            banker_pair: is_pair(&self.banker),
            player_cards: self.player.iter().map(ToString::to_string).collect(),
            banker_cards: self.banker.iter().map(ToString::to_string).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_drivers::model::Suit;

    fn c(text: &str) -> Card {
        text.parse().unwrap()
    }

    /// A card worth `value` points (0–9); `variant` picks among the ranks worth 0 (T J Q K) and
    /// the suit, so tests do not depend on one particular card.
    fn worth(value: u8, variant: usize) -> Card {
        let rank = match value {
            0 => [Rank::Ten, Rank::Jack, Rank::Queen, Rank::King][variant % 4],
            v => Rank::ALL[usize::from(v) - 1],
        };
        Card {
            rank,
            suit: Suit::ALL[variant % 4],
        }
    }

    fn cards(texts: &[&str]) -> Vec<Card> {
        texts.iter().map(|t| c(t)).collect()
    }

    /// Deals `texts` and returns the coup; every card must be accepted.
    fn deal(texts: &[&str]) -> Coup {
        Coup::from_cards(cards(texts)).unwrap()
    }

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    /// The banker's drawing table as it is printed on the layout card, kept as text so that it
    /// shares nothing with `banker_draws`: rows are the banker's two-card total 0–7, columns the
    /// points of the player's third card 0–9; `D` draws, `S` stands.
    const BANKER_TABLE: [&str; 8] = [
        "DDDDDDDDDD", // 0
        "DDDDDDDDDD", // 1
        "DDDDDDDDDD", // 2
        "DDDDDDDDSD", // 3: stands only on a player's 8
        "SSDDDDDDSS", // 4: draws on 2–7
        "SSSSDDDDSS", // 5: draws on 4–7
        "SSSSSSDDSS", // 6: draws on 6–7
        "SSSSSSSSSS", // 7
    ];

    fn table_says_draw(banker: u8, third: u8) -> bool {
        BANKER_TABLE[usize::from(banker)].as_bytes()[usize::from(third)] == b'D'
    }

    /// All ordered pairs of card values with this two-card total.
    fn pairs_totalling(total: u8) -> impl Iterator<Item = (u8, u8)> {
        (0..10u8).map(move |a| (a, (total + 10 - a) % 10))
    }

    #[test]
    fn points_of_every_rank() {
        let expected = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0];
        for (rank, want) in Rank::ALL.into_iter().zip(expected) {
            for suit in Suit::ALL {
                assert_eq!(points(Card { rank, suit }), want, "{rank:?}");
            }
        }
    }

    #[test]
    fn totals_are_modulo_ten() {
        assert_eq!(hand_total(&[]), 0);
        assert_eq!(hand_total(&cards(&["7H", "8S"])), 5);
        assert_eq!(hand_total(&cards(&["KH", "QS"])), 0);
        assert_eq!(hand_total(&cards(&["9H", "9S", "9D"])), 7);
        assert_eq!(hand_total(&cards(&["AH", "TS", "JD"])), 1);
        assert_eq!(hand_total(&cards(&["5H", "5S"])), 0);
    }

    #[test]
    fn the_first_four_cards_alternate_player_first() {
        let mut coup = Coup::new();
        assert_eq!(coup.expected_next(), Some(Side::Player));
        assert_eq!(coup.push(c("2H")), Ok(Progress::Next(Side::Banker)));
        assert_eq!(coup.push(c("3H")), Ok(Progress::Next(Side::Player)));
        assert_eq!(coup.push(c("KH")), Ok(Progress::Next(Side::Banker)));
        // Player 2 draws.
        assert_eq!(coup.push(c("KD")), Ok(Progress::Next(Side::Player)));
        assert_eq!(
            coup.cards(),
            (&cards(&["2H", "KH"])[..], &cards(&["3H", "KD"])[..])
        );
        // Player third 5; banker 3 draws on anything but 8.
        assert_eq!(coup.push(c("5S")), Ok(Progress::Next(Side::Banker)));
        let Ok(Progress::Complete(outcome)) = coup.push(c("4C")) else {
            panic!("the banker's third card completes the coup")
        };
        assert_eq!(
            outcome,
            Outcome {
                winner: Winner::Tie,
                player_total: 7,
                banker_total: 7,
                player_natural: false,
                banker_natural: false,
                player_pair: false,
                banker_pair: false,
                player_cards: strings(&["2H", "KH", "5S"]),
                banker_cards: strings(&["3H", "KD", "4C"]),
            }
        );
        assert!(coup.is_complete());
        assert_eq!(coup.expected_next(), None);
    }

    #[test]
    fn the_player_draws_on_0_to_5_and_stands_on_6_and_7() {
        for player in 0..=7u8 {
            for (a, b) in pairs_totalling(player) {
                for banker in 0..=7u8 {
                    let coup =
                        Coup::from_cards([worth(a, 0), worth(banker, 1), worth(b, 2), worth(0, 3)])
                            .unwrap();
                    let next = coup.expected_next();
                    if player <= 5 {
                        assert_eq!(next, Some(Side::Player), "player {player} banker {banker}");
                    } else {
                        // Player stood: the banker draws on 0–5.
                        let want = (banker <= 5).then_some(Side::Banker);
                        assert_eq!(next, want, "player {player} banker {banker}");
                    }
                }
            }
        }
        assert!((0..=5).all(player_draws));
        assert!(!(6..=9).any(player_draws));
    }

    /// The whole banker drawing table: every banker two-card total 0–7 (made every possible way)
    /// × every player third card 0–9 (each zero-point rank) × every player two-card total that
    /// draws (0–5, made every possible way).
    #[test]
    fn banker_drawing_table_when_the_player_drew() {
        let mut checked = 0;
        for banker in 0..=7u8 {
            for (b1, b2) in pairs_totalling(banker) {
                for player in 0..=5u8 {
                    for (p1, p2) in pairs_totalling(player) {
                        for third in 0..=9u8 {
                            for variant in 0..4 {
                                let mut coup = Coup::new();
                                let dealt = [
                                    worth(p1, variant),
                                    worth(b1, variant + 1),
                                    worth(p2, variant + 2),
                                    worth(b2, variant + 3),
                                ];
                                for card in dealt {
                                    assert!(matches!(coup.push(card), Ok(Progress::Next(_))));
                                }
                                assert_eq!(coup.expected_next(), Some(Side::Player));
                                let draws = table_says_draw(banker, third);
                                let progress = coup.push(worth(third, variant)).unwrap();
                                let case = format!(
                                    "banker {banker} ({b1}+{b2}), player {player} ({p1}+{p2}) \
                                     drew {third}"
                                );
                                assert_eq!(banker_draws(banker, Some(third)), draws, "{case}");
                                if draws {
                                    assert_eq!(progress, Progress::Next(Side::Banker), "{case}");
                                    assert_eq!(coup.missing(), Some(Side::Banker), "{case}");
                                    let last = worth(7, variant);
                                    let Ok(Progress::Complete(outcome)) = coup.push(last) else {
                                        panic!("{case}: banker's third card must complete")
                                    };
                                    assert_eq!(outcome.banker_cards.len(), 3, "{case}");
                                    assert_eq!(outcome.banker_total, (banker + 7) % 10);
                                } else {
                                    let Progress::Complete(outcome) = progress else {
                                        panic!("{case}: banker must stand")
                                    };
                                    assert_eq!(outcome.banker_cards.len(), 2, "{case}");
                                    assert_eq!(outcome.banker_total, banker);
                                }
                                assert_eq!(coup.outcome().unwrap().player_cards.len(), 3);
                                assert_eq!(
                                    coup.outcome().unwrap().player_total,
                                    (player + third) % 10
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 10 * 6 * 10 * 10 * 4);
    }

    /// "Player stood" column of the table: player 6 or 7 on two cards, banker 0–7. In particular
    /// a banker on 3, 4 or 5 draws when the player stood.
    #[test]
    fn banker_rule_when_the_player_stood() {
        for player in [6u8, 7] {
            for (p1, p2) in pairs_totalling(player) {
                for banker in 0..=7u8 {
                    for (b1, b2) in pairs_totalling(banker) {
                        let coup = Coup::from_cards([
                            worth(p1, 0),
                            worth(b1, 1),
                            worth(p2, 2),
                            worth(b2, 3),
                        ])
                        .unwrap();
                        let draws = banker <= 5;
                        assert_eq!(banker_draws(banker, None), draws);
                        assert_eq!(
                            coup.expected_next(),
                            draws.then_some(Side::Banker),
                            "player {player} stood, banker {banker}"
                        );
                        assert_eq!(coup.is_complete(), !draws);
                    }
                }
            }
        }
        // Spelled out: player stands on 6, banker 3, 4, 5 draw; banker 6, 7 stand.
        for (banker, draws) in [
            ("3C", true),
            ("4C", true),
            ("5C", true),
            ("6C", false),
            ("7C", false),
        ] {
            let coup = deal(&["6H", banker, "KS", "KD"]);
            assert_eq!(
                coup.expected_next() == Some(Side::Banker),
                draws,
                "{banker}"
            );
        }
        // Banker 4 stands against a player's third 8 but draws when the player stood on 7.
        assert!(deal(&["4H", "4D", "KS", "KD", "8C"]).is_complete());
        assert!(!deal(&["7H", "4D", "KS", "KD"]).is_complete());
        let coup = deal(&["7H", "4D", "KS", "KD", "3C"]);
        assert_eq!(coup.cards().1.len(), 3);
        assert_eq!(coup.outcome().unwrap().winner, Winner::Tie);
    }

    #[test]
    fn banker_rule_for_every_total_and_third_card() {
        // The function against the printed table, including the stands on 8 and 9 (naturals).
        for banker in 0..=9u8 {
            for third in 0..=9u8 {
                let want = banker <= 7 && table_says_draw(banker, third);
                assert_eq!(
                    banker_draws(banker, Some(third)),
                    want,
                    "{banker} vs {third}"
                );
            }
            assert_eq!(banker_draws(banker, None), banker <= 5, "{banker} stood");
        }
    }

    #[test]
    fn naturals_end_the_coup_on_four_cards() {
        // Player 9 against banker 8: both naturals, player wins.
        let coup = deal(&["9H", "8D", "KS", "TD"]);
        let outcome = coup.outcome().unwrap();
        assert_eq!(
            outcome,
            Outcome {
                winner: Winner::Player,
                player_total: 9,
                banker_total: 8,
                player_natural: true,
                banker_natural: true,
                player_pair: false,
                banker_pair: false,
                player_cards: strings(&["9H", "KS"]),
                banker_cards: strings(&["8D", "TD"]),
            }
        );
        // Banker 9 against player 8.
        let outcome = deal(&["4H", "5D", "4S", "4C"]).outcome().unwrap();
        assert_eq!(
            (
                outcome.winner,
                outcome.player_natural,
                outcome.banker_natural
            ),
            (Winner::Banker, true, true)
        );
        assert_eq!((outcome.player_pair, outcome.banker_pair), (true, false));
        // Tie of naturals.
        let outcome = deal(&["8H", "8D", "KS", "QC"]).outcome().unwrap();
        assert_eq!(outcome.winner, Winner::Tie);
        assert!(outcome.player_natural && outcome.banker_natural);
        let outcome = deal(&["9H", "5D", "QS", "4C"]).outcome().unwrap();
        assert_eq!((outcome.winner, outcome.player_total), (Winner::Tie, 9));
        // A banker natural stops a player who would otherwise draw on 0.
        let coup = deal(&["KH", "9D", "QS", "KC"]);
        assert!(coup.is_complete());
        let outcome = coup.outcome().unwrap();
        assert_eq!(
            (
                outcome.winner,
                outcome.player_natural,
                outcome.banker_natural
            ),
            (Winner::Banker, false, true)
        );
        // A player natural stops a banker who would otherwise draw on 0.
        let outcome = deal(&["8H", "KD", "KS", "KC"]).outcome().unwrap();
        assert_eq!(
            (
                outcome.winner,
                outcome.player_natural,
                outcome.banker_natural
            ),
            (Winner::Player, true, false)
        );
        assert!(outcome.banker_pair);
        // Eight or nine reached with a third card is not a natural.
        let outcome = deal(&["2H", "6D", "3S", "KC", "4C"]).outcome().unwrap();
        assert_eq!((outcome.player_total, outcome.banker_total), (9, 6));
        assert!(!outcome.player_natural && !outcome.banker_natural);
        assert_eq!(outcome.winner, Winner::Player);
    }

    #[test]
    fn pairs_are_by_rank_on_the_first_two_cards() {
        let outcome = deal(&["KH", "5D", "KS", "5C", "3H", "2S"])
            .outcome()
            .unwrap();
        assert!(outcome.player_pair && outcome.banker_pair);
        // K and Q are both worth 0 but are not a pair.
        let outcome = deal(&["KH", "QD", "QS", "KC", "AH", "AS"])
            .outcome()
            .unwrap();
        assert!(!outcome.player_pair && !outcome.banker_pair);
        // A third card matching one of the first two does not make a pair.
        let outcome = deal(&["2H", "TD", "3S", "JC", "2C", "3D"])
            .outcome()
            .unwrap();
        assert!(!outcome.player_pair && !outcome.banker_pair);
        // Suits do not matter; naturals can be pairs too (4-4).
        let outcome = deal(&["4H", "4D", "4S", "4C"]).outcome().unwrap();
        assert!(outcome.player_pair && outcome.banker_pair && outcome.player_natural);

        // Every rank combination of the first four cards: the pair flags follow the ranks.
        for &r1 in &Rank::ALL {
            for &r2 in &Rank::ALL {
                for &r3 in &Rank::ALL {
                    for &r4 in &Rank::ALL {
                        let card = |rank| Card {
                            rank,
                            suit: Suit::Hearts,
                        };
                        let mut coup =
                            Coup::from_cards([card(r1), card(r2), card(r3), card(r4)]).unwrap();
                        while coup.push(card(Rank::Ace)).is_ok() {}
                        let outcome = coup.outcome().unwrap();
                        assert_eq!(outcome.player_pair, r1 == r3);
                        assert_eq!(outcome.banker_pair, r2 == r4);
                    }
                }
            }
        }
    }

    #[test]
    fn ties_on_drawn_hands() {
        // Player 3 draws 4 → 7; banker 3 draws on 4 → 7 with a 4.
        let outcome = deal(&["AH", "2D", "2S", "AC", "4H", "4D"])
            .outcome()
            .unwrap();
        assert_eq!(
            (outcome.winner, outcome.player_total, outcome.banker_total),
            (Winner::Tie, 7, 7)
        );
        // Both on 0 after all six cards.
        let outcome = deal(&["KH", "KD", "KS", "KC", "QH", "QD"])
            .outcome()
            .unwrap();
        assert_eq!((outcome.winner, outcome.player_total), (Winner::Tie, 0));
        // Player stands on 6, banker stands on 6.
        let outcome = deal(&["6H", "6D", "KS", "KC"]).outcome().unwrap();
        assert_eq!(outcome.winner, Winner::Tie);
    }

    #[test]
    fn an_extra_card_is_refused_and_changes_nothing() {
        for texts in [
            &["9H", "8D", "KS", "TD"][..],             // naturals
            &["6H", "6D", "KS", "KC"][..],             // both stand
            &["6H", "3D", "KS", "KC", "9S"][..],       // player stood, banker drew
            &["2H", "7D", "KS", "KC", "5S"][..],       // player drew, banker stood
            &["2H", "3D", "KS", "KC", "5S", "4C"][..], // both drew
        ] {
            let mut coup = deal(texts);
            assert!(coup.is_complete(), "{texts:?}");
            let before = coup.clone();
            let outcome = coup.outcome();
            for extra in ["AS", "9C", "KD"] {
                assert_eq!(
                    coup.push(c(extra)),
                    Err(BaccaratError::ExtraCard { card: c(extra) })
                );
                for side in [Side::Player, Side::Banker] {
                    assert_eq!(
                        coup.push_to(side, c(extra)),
                        Err(BaccaratError::ExtraCard { card: c(extra) })
                    );
                }
            }
            assert_eq!(coup, before);
            assert_eq!(coup.outcome(), outcome);
            assert_eq!(coup.missing(), None);
            // Replaying the same cards plus one is the same error.
            let mut with_extra = cards(texts);
            with_extra.push(c("5H"));
            assert_eq!(
                Coup::from_cards(with_extra),
                Err(BaccaratError::ExtraCard { card: c("5H") })
            );
        }
        let msg = BaccaratError::ExtraCard { card: c("TD") }.to_string();
        assert!(
            msg.starts_with("card TD came after the coup was complete"),
            "{msg}"
        );
    }

    #[test]
    fn a_card_on_the_wrong_side_is_refused() {
        let mut coup = Coup::new();
        assert_eq!(
            coup.push_to(Side::Banker, c("5H")),
            Err(BaccaratError::WrongSide {
                card: c("5H"),
                expected: Side::Player,
                side: Side::Banker
            })
        );
        assert_eq!(coup, Coup::new());
        assert_eq!(
            coup.push_to(Side::Player, c("5H")),
            Ok(Progress::Next(Side::Banker))
        );
        assert_eq!(
            coup.push_to(Side::Banker, c("6H")),
            Ok(Progress::Next(Side::Player))
        );
        assert_eq!(
            coup.push_to(Side::Player, c("KH")),
            Ok(Progress::Next(Side::Banker))
        );
        assert_eq!(
            coup.push_to(Side::Banker, c("KD")),
            Ok(Progress::Next(Side::Player))
        );
        // Player 5 must draw before the banker.
        let err = coup.push_to(Side::Banker, c("2C")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "card 2C was placed on the banker side, but the next card belongs to the player; \
             it was left out of the coup: the dealer must correct the deal"
        );
        // Banker 6 draws only on a player's third 6 or 7: against an ace the coup is complete.
        assert!(matches!(
            coup.push_to(Side::Player, c("AC")),
            Ok(Progress::Complete(_))
        ));
        assert!(coup.is_complete());
    }

    #[test]
    fn missing_cards_are_named_at_every_stage() {
        let mut coup = Coup::new();
        let texts = ["2H", "3D", "KS", "KC", "5S", "4C"];
        let expected = [
            Some(Side::Player),
            Some(Side::Banker),
            Some(Side::Player),
            Some(Side::Banker),
            Some(Side::Player),
            Some(Side::Banker),
        ];
        for (text, want) in texts.iter().zip(expected) {
            assert_eq!(coup.missing(), want, "before {text}");
            assert!(!coup.is_complete());
            assert_eq!(coup.outcome(), None);
            coup.push(c(text)).unwrap();
        }
        assert_eq!(coup.missing(), None);
        assert!(coup.is_complete());
        assert_eq!(coup.totals(), (7, 7));
    }

    #[test]
    fn running_totals_for_the_prompter() {
        let mut coup = Coup::new();
        assert_eq!(coup.totals(), (0, 0));
        coup.push(c("7H")).unwrap();
        coup.push(c("9D")).unwrap();
        assert_eq!(coup.totals(), (7, 9));
        coup.push(c("8S")).unwrap();
        assert_eq!(coup.totals(), (5, 9));
    }

    #[test]
    fn payload_field_names_are_stable() {
        let outcome = deal(&["4H", "3D", "TC", "KS", "AS", "4C"])
            .outcome()
            .unwrap();
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            serde_json::json!({
                "winner": "banker", "player_total": 5, "banker_total": 7,
                "player_natural": false, "banker_natural": false,
                "player_pair": false, "banker_pair": false,
                "player_cards": ["4H", "TC", "AS"], "banker_cards": ["3D", "KS", "4C"]
            })
        );
        assert_eq!(
            serde_json::to_value(Progress::Next(Side::Banker)).unwrap(),
            serde_json::json!({"next": "banker"})
        );
        assert_eq!(
            serde_json::to_value(Winner::Tie).unwrap(),
            serde_json::json!("tie")
        );
    }

    /// A reference punto banco dealer written from the printed tableau, sharing no code with the
    /// module: given the values of the next six cards in the shoe, how many cards each side
    /// takes.
    fn reference_deal(values: [u8; 6]) -> (usize, usize) {
        let [p1, b1, p2, b2, c5, _] = values;
        let player = (p1 + p2) % 10;
        let banker = (b1 + b2) % 10;
        if player >= 8 || banker >= 8 {
            return (2, 2);
        }
        if player >= 6 {
            return if banker <= 5 { (2, 3) } else { (2, 2) };
        }
        if table_says_draw(banker, c5) {
            (3, 3)
        } else {
            (3, 2)
        }
    }

    /// Every sequence of six card values (10^6 coups): the builder never fails before the coup is
    /// complete, deals each side as the reference dealer does, and its totals are the mod-10 sums
    /// of the cards it dealt.
    #[test]
    fn every_six_card_value_sequence() {
        let mut completions = [0usize; 7];
        for n in 0..1_000_000u32 {
            let mut values = [0u8; 6];
            let mut rest = n;
            for v in values.iter_mut() {
                *v = u8::try_from(rest % 10).unwrap();
                rest /= 10;
            }
            let shoe: Vec<Card> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| worth(v, i + n as usize))
                .collect();

            let mut coup = Coup::new();
            let mut used = 0;
            let mut outcome = None;
            for &card in &shoe {
                let before = coup.expected_next();
                match coup.push(card) {
                    Ok(Progress::Next(side)) => {
                        assert!(before.is_some());
                        assert_eq!(coup.expected_next(), Some(side));
                        used += 1;
                    }
                    Ok(Progress::Complete(done)) => {
                        used += 1;
                        outcome = Some(done);
                    }
                    Err(BaccaratError::ExtraCard { card: extra }) => {
                        assert_eq!(extra, card);
                        assert!(outcome.is_some(), "{values:?}: refused before completion");
                        break;
                    }
                    Err(other) => panic!("{values:?}: {other}"),
                }
                if outcome.is_some() {
                    // One more card must be refused, and change nothing.
                    let snapshot = coup.clone();
                    assert!(coup.push(card).is_err());
                    assert_eq!(coup, snapshot);
                    break;
                }
            }
            let outcome = outcome.unwrap_or_else(|| panic!("{values:?}: never completed"));
            assert!((4..=6).contains(&used), "{values:?}");
            completions[used] += 1;

            let (player, banker) = coup.cards();
            assert_eq!(
                (player.len(), banker.len()),
                reference_deal(values),
                "{values:?}"
            );
            assert_eq!(player.len() + banker.len(), used);
            let sum = |cs: &[Card]| cs.iter().map(|&c| u32::from(points(c))).sum::<u32>() % 10;
            assert_eq!(u32::from(outcome.player_total), sum(player), "{values:?}");
            assert_eq!(u32::from(outcome.banker_total), sum(banker), "{values:?}");
            // The cards went out in shoe order: P B P B, then the third cards.
            assert_eq!(player.first(), shoe.first());
            assert_eq!(banker.first(), shoe.get(1));
            assert_eq!(player.get(1), shoe.get(2));
            assert_eq!(banker.get(1), shoe.get(3));
            let winner = match outcome.player_total.cmp(&outcome.banker_total) {
                std::cmp::Ordering::Greater => Winner::Player,
                std::cmp::Ordering::Less => Winner::Banker,
                std::cmp::Ordering::Equal => Winner::Tie,
            };
            assert_eq!(outcome.winner, winner);
            assert_eq!(outcome.player_cards.len(), player.len());
            assert_eq!(Some(outcome), coup.outcome());
        }
        // Every length of coup occurs.
        assert!(completions[4] > 0 && completions[5] > 0 && completions[6] > 0);
        assert_eq!(completions.iter().sum::<usize>(), 1_000_000);
    }
}
