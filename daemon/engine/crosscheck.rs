//! The card cross-check: what the second witnesses (vision, RFID) saw, against what the shoe
//! dealt and where it dealt it. Pure: sightings and dealt cards in, a verdict out.
//!
//! For each source that `[crosscheck] cards` requires, in this order (`docs/engine.md`):
//!
//! 1. **Dealt at all.** A card seen that the shoe did not deal in this coup: mismatch.
//! 2. **In its hand.** A sighting whose zone names a hand of the game (baccarat `player`,
//!    `banker`; blackjack `dealer`, `box1` … `box7`, also written `box 3`, `box-3`; any case)
//!    must be of a card the shoe dealt to that hand: otherwise mismatch (a misread equal to a
//!    card of the other hand, or a card laid in the wrong place). A box with no cards this
//!    round is a hand with no cards. A zone that names no hand (no zone, an RFID antenna such
//!    as `antenna-2`, baccarat's `dealer` strip, any other name) is checked against the whole
//!    coup only, as before.
//! 3. **Not more cards than dealt.** Sightings of one card are grouped by where they were made
//!    (the hand its zone names, else the zone as named, else "no zone"); the fewest physical
//!    cards that can explain a group must not exceed the copies the shoe dealt there (to that
//!    hand, or in the whole coup for the other groups): otherwise mismatch. Counted so that a
//!    witness reporting the same card again never counts twice ([`distinct_cards`]):
//!    * RFID (`uid` in the detail): one tag, one card, whatever antenna or reader saw it (a
//!      tag that leaves and comes back is one card); distinct tags of a card are also counted
//!      over the whole coup, against every copy the shoe dealt;
//!    * vision (`corners_px`, `camera`): two sightings by the same camera are two cards only
//!      when their centres lie more than half a card's width apart (the card's short side,
//!      measured on the sightings' own corners, the larger of the two). The tracker re-reports
//!      a card hidden for a while (a dealer's hand over it) where it was; a nudge while
//!      squaring it moves it by less than that; two cards lying closer overlap by more than
//!      half and are not both read;
//!    * sightings by different cameras, or without a position or a tag, may be any of the
//!      others: they never raise the count.
//!
//!    Positions in different groups are never added up: a card read where it was turned over
//!    and then read again in its hand is one card.
//! 4. **Every dealt card confirmed.** Each card the shoe dealt must have been seen. Where
//!    every sighting of it carries an RFID tag, a card dealt twice (8-deck shoes) needs two
//!    distinct tags; otherwise one sighting confirms every copy (vision cannot tell two
//!    identical cards overlapping in a blackjack box from one card reported twice, and
//!    requiring two would hold such rounds for a confirmation the camera did give).
//!
//! Checks 1 to 3 answer at once (`Disagree`); check 4 waits for the cross-check window.

use std::collections::{BTreeMap, BTreeSet};

use croupier_drivers::model::Card;
use serde_json::{json, Value};

use super::{Source, Verdict};

/// One report of a card by a second witness, as the cross-check weighs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sighting {
    pub source: Source,
    pub card: Card,
    /// The zone as the witness named it (a calibrated zone, an RFID antenna), if any.
    pub zone: Option<String>,
    pub mark: Mark,
}

/// What tells one physical card from another.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Mark {
    /// Nothing: the sighting may be of the same card as any other.
    Unknown,
    /// An RFID tag's uid: one tag, one card.
    Tag(String),
    /// Where a camera saw the card, in that camera's pixels: the centre of its corners, and
    /// its width (the card's short side).
    Place {
        camera: String,
        centre: [f64; 2],
        width: f64,
    },
}

impl Sighting {
    /// Reads a `card.seen` payload (the zone, with the witness's detail merged in), so a
    /// sighting weighs the same live and when the event log is replayed after a restart.
    pub fn from_seen(source: Source, card: Card, zone: Option<String>, payload: &Value) -> Self {
        Sighting {
            source,
            card,
            zone,
            mark: Mark::of(payload),
        }
    }
}

impl Mark {
    fn of(payload: &Value) -> Mark {
        if let Some(uid) = payload["uid"]
            .as_str()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            return Mark::Tag(uid.to_ascii_uppercase());
        }
        match quad(&payload["corners_px"]) {
            Some((centre, width)) => Mark::Place {
                camera: payload["camera"].as_str().unwrap_or_default().to_owned(),
                centre,
                width,
            },
            None => Mark::Unknown,
        }
    }
}

/// The centre and the short side of a card's four corners (in order around the card), or
/// None where they are not four finite points enclosing an area.
fn quad(corners: &Value) -> Option<([f64; 2], f64)> {
    let points: Vec<[f64; 2]> = corners
        .as_array()?
        .iter()
        .map(|p| Some([p.get(0)?.as_f64()?, p.get(1)?.as_f64()?]))
        .collect::<Option<_>>()?;
    let [a, b, c, d] = <[[f64; 2]; 4]>::try_from(points).ok()?;
    let len = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]);
    let width = ((len(a, b) + len(c, d)) / 2.0).min((len(b, c) + len(d, a)) / 2.0);
    let cross = |p: [f64; 2], q: [f64; 2]| p[0] * q[1] - p[1] * q[0];
    let area = (cross(a, b) + cross(b, c) + cross(c, d) + cross(d, a)).abs() / 2.0;
    let centre = [
        (a[0] + b[0] + c[0] + d[0]) / 4.0,
        (a[1] + b[1] + c[1] + d[1]) / 4.0,
    ];
    let finite = width.is_finite() && area.is_finite() && centre.iter().all(|v| v.is_finite());
    // A card is far wider than a pixel; less is a degenerate outline, not a place.
    (finite && width >= 1.0 && area >= 1.0).then_some((centre, width))
}

/// A hand of the game that a zone names, and the cards the shoe dealt to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hand {
    /// `player`, `banker`, `dealer`, `box3`.
    pub name: String,
    pub cards: Vec<Card>,
}

/// Where sightings of a card are counted together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Area {
    Hand(String),
    Zone(String),
    Nowhere,
}

fn names(cards: &[Card]) -> Vec<String> {
    cards.iter().map(Card::to_string).collect()
}

fn copies(cards: &[Card], card: Card) -> usize {
    cards.iter().filter(|c| **c == card).count()
}

/// The verdict on the cards of a coup (the module docs give the rules). `hand_of` says which
/// hand of the game a zone names, if any.
pub(super) fn check_cards(
    required: &BTreeSet<Source>,
    dealt: &[Card],
    witnessed: &[Sighting],
    hand_of: impl Fn(&str) -> Option<Hand>,
) -> Verdict {
    type Group<'a> = (Vec<&'a Sighting>, Option<Hand>);
    let mut groups: BTreeMap<(Source, Card, Area), Group> = BTreeMap::new();
    for seen in witnessed.iter().filter(|s| required.contains(&s.source)) {
        let card = seen.card.to_string();
        if !dealt.contains(&seen.card) {
            return Verdict::Disagree(json!({
                "source": seen.source,
                "card": card,
                "zone": seen.zone,
                "rule": "not_dealt",
                "dealt": names(dealt),
                "text": format!("{} saw {card}, a card the shoe did not deal in this coup", seen.source.as_str()),
            }));
        }
        let hand = seen.zone.as_deref().and_then(&hand_of);
        if let Some(hand) = &hand {
            if !hand.cards.contains(&seen.card) {
                return Verdict::Disagree(json!({
                    "source": seen.source,
                    "card": card,
                    "zone": seen.zone,
                    "rule": "other_hand",
                    "hand": hand.name,
                    "hand_cards": names(&hand.cards),
                    "dealt": names(dealt),
                    "text": format!(
                        "{} saw {card} in the {} zone, where the shoe dealt {}",
                        seen.source.as_str(),
                        hand.name,
                        if hand.cards.is_empty() { "nothing".to_owned() } else { names(&hand.cards).join(" ") },
                    ),
                }));
            }
        }
        let area = match (&hand, &seen.zone) {
            (Some(hand), _) => Area::Hand(hand.name.clone()),
            (None, Some(zone)) => Area::Zone(zone.clone()),
            (None, None) => Area::Nowhere,
        };
        groups
            .entry((seen.source, seen.card, area))
            .or_insert_with(|| (Vec::new(), hand))
            .0
            .push(seen);
    }
    for ((source, card, area), (sightings, hand)) in &groups {
        let seen = distinct_cards(sightings);
        let allowed = match hand {
            Some(hand) => copies(&hand.cards, *card),
            None => copies(dealt, *card),
        };
        if seen > allowed {
            let (zone, hand_name, hand_cards) = match (area, hand) {
                (_, Some(hand)) => (
                    sightings.first().and_then(|s| s.zone.clone()),
                    Some(hand.name.clone()),
                    Some(names(&hand.cards)),
                ),
                (Area::Zone(zone), None) => (Some(zone.clone()), None, None),
                _ => (None, None, None),
            };
            let place = match &hand_name {
                Some(name) => format!("in the {name} zone, where the shoe dealt {allowed}"),
                None => format!("where the shoe dealt {allowed} in the whole coup"),
            };
            return Verdict::Disagree(json!({
                "source": source,
                "card": card.to_string(),
                "zone": zone,
                "rule": "more_than_dealt",
                "seen": seen,
                "hand": hand_name,
                "hand_cards": hand_cards,
                "dealt": names(dealt),
                "text": format!("{} saw {seen} distinct {card} {place}", source.as_str()),
            }));
        }
    }
    // Tags name cards wherever they were read: more distinct tags of a card over the coup than
    // the shoe dealt copies of it is a mismatch, whichever antennas saw them.
    let mut tags: BTreeMap<(Source, Card), BTreeSet<&str>> = BTreeMap::new();
    for seen in witnessed.iter().filter(|s| required.contains(&s.source)) {
        if let Mark::Tag(tag) = &seen.mark {
            tags.entry((seen.source, seen.card))
                .or_default()
                .insert(tag.as_str());
        }
    }
    for ((source, card), tags) in &tags {
        let allowed = copies(dealt, *card);
        if tags.len() > allowed {
            return Verdict::Disagree(json!({
                "source": source,
                "card": card.to_string(),
                "zone": null,
                "rule": "more_than_dealt",
                "seen": tags.len(),
                "dealt": names(dealt),
                "text": format!("{} read {} distinct tags of {card} where the shoe dealt {allowed} in the whole coup", source.as_str(), tags.len()),
            }));
        }
    }
    let confirmed = |source: Source, card: Card| {
        let sightings: Vec<&Sighting> = witnessed
            .iter()
            .filter(|s| s.source == source && s.card == card)
            .collect();
        let tags: BTreeSet<&str> = sightings
            .iter()
            .filter_map(|s| match &s.mark {
                Mark::Tag(tag) => Some(tag.as_str()),
                _ => None,
            })
            .collect();
        let all_tagged = sightings.iter().all(|s| matches!(s.mark, Mark::Tag(_)));
        if all_tagged {
            !sightings.is_empty() && tags.len() >= copies(dealt, card)
        } else {
            true
        }
    };
    let all_seen = required
        .iter()
        .all(|source| dealt.iter().all(|card| confirmed(*source, *card)));
    if all_seen {
        Verdict::Agree
    } else {
        Verdict::Waiting
    }
}

/// The fewest physical cards that can explain these sightings of one card: never more than
/// there were, so a card reported again never counts twice. Distinct tags are distinct cards;
/// a camera's sightings are as many cards as the groups of places within half a card's width
/// of each other (chained); different cameras, and sightings without a place or a tag, may be
/// the same cards as the others.
fn distinct_cards(sightings: &[&Sighting]) -> usize {
    if sightings.is_empty() {
        return 0;
    }
    let mut tags = BTreeSet::new();
    let mut places: BTreeMap<&str, Vec<([f64; 2], f64)>> = BTreeMap::new();
    for seen in sightings {
        match &seen.mark {
            Mark::Tag(tag) => {
                tags.insert(tag.as_str());
            }
            Mark::Place {
                camera,
                centre,
                width,
            } => places
                .entry(camera.as_str())
                .or_default()
                .push((*centre, *width)),
            Mark::Unknown => {}
        }
    }
    let per_camera = places.values().map(|p| places_apart(p)).max().unwrap_or(0);
    1.max(tags.len()).max(per_camera)
}

/// How many groups these places form, two places being one card when their centres are at
/// most half a card's width apart (and chained: a card nudged twice stays one card).
fn places_apart(places: &[([f64; 2], f64)]) -> usize {
    let mut group: Vec<usize> = (0..places.len()).collect();
    for (i, (a, wa)) in places.iter().enumerate() {
        for (j, (b, wb)) in places.iter().enumerate().skip(i + 1) {
            let near = (a[0] - b[0]).hypot(a[1] - b[1]) <= wa.max(*wb) / 2.0;
            if near {
                // Merge j's group into i's.
                let (from, to) = (group.get(j).copied(), group.get(i).copied());
                if let (Some(from), Some(to)) = (from, to) {
                    for g in group.iter_mut().filter(|g| **g == from) {
                        *g = to;
                    }
                }
            }
        }
    }
    group.iter().collect::<BTreeSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(camera: &str, x: f64, y: f64) -> Sighting {
        Sighting::from_seen(
            Source::Vision,
            "QS".parse().expect("card"),
            None,
            &json!({ "camera": camera, "corners_px": [[x - 30.0, y - 45.0], [x + 30.0, y - 45.0], [x + 30.0, y + 45.0], [x - 30.0, y + 45.0]] }),
        )
    }

    #[test]
    fn a_card_is_as_wide_as_its_short_side_and_degenerate_corners_are_no_place() {
        assert_eq!(
            place("cards", 100.0, 200.0).mark,
            Mark::Place {
                camera: "cards".into(),
                centre: [100.0, 200.0],
                width: 60.0
            }
        );
        for corners in [
            json!([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]),
            json!([[0.0, 0.0], [60.0, 0.0], [60.0, 90.0]]),
            json!([[0.0, 0.0], [60.0, 0.0], [60.0, "x"], [0.0, 90.0]]),
            json!("0,0 60,0 60,90 0,90"),
        ] {
            assert_eq!(Mark::of(&json!({ "corners_px": corners })), Mark::Unknown);
        }
        assert_eq!(
            Mark::of(&json!({ "uid": " e004a1 ", "corners_px": [] })),
            Mark::Tag("E004A1".into())
        );
    }

    #[test]
    fn distinct_cards_never_count_a_card_twice() {
        let count = |sightings: &[Sighting]| distinct_cards(&sightings.iter().collect::<Vec<_>>());
        // Half a card's width (30 px) apart or less: one card, chained over nudges.
        assert_eq!(
            count(&[place("cards", 100.0, 200.0), place("cards", 130.0, 200.0)]),
            1
        );
        assert_eq!(
            count(&[
                place("cards", 100.0, 200.0),
                place("cards", 125.0, 200.0),
                place("cards", 150.0, 200.0)
            ]),
            1
        );
        assert_eq!(
            count(&[place("cards", 100.0, 200.0), place("cards", 131.0, 200.0)]),
            2
        );
        // Another camera's places may be the same cards: the larger count wins, none is added.
        assert_eq!(
            count(&[
                place("cards", 100.0, 200.0),
                place("cards", 300.0, 200.0),
                place("top", 100.0, 200.0),
                place("top", 300.0, 200.0),
                place("top", 500.0, 200.0),
            ]),
            3
        );
        // A sighting without a place may be any of them.
        let unknown = Sighting::from_seen(
            Source::Vision,
            "QS".parse().expect("card"),
            None,
            &Value::Null,
        );
        assert_eq!(count(&[unknown.clone(), unknown.clone()]), 1);
        assert_eq!(count(&[unknown, place("cards", 100.0, 200.0)]), 1);
        assert_eq!(count(&[]), 0);
    }
}
