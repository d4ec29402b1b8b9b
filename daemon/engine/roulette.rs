//! Roulette rules: what a winning number means for the bets on the layout.
//!
//! # What this module is for
//!
//! The wheel controller (or the vision stage) reports one thing: the number of the pocket the ball
//! came to rest in. The orchestrator settles every outside bet (red/black, odd/even, low/high,
//! dozens, columns) against the `wheel.result` and `round.result` events, so Croupier spells out
//! what the number means in [`Pocket`] instead of leaving each consumer to re-derive it. Deriving
//! it once, here, from one tested table means the prompter, the status page and the orchestrator
//! can never disagree about whether 10 is red (it is black).
//!
//! Nothing here does I/O; the table engine calls [`pocket`] with the number it trusts.
//!
//! # Layouts and the `00` code
//!
//! * [`WheelType::European`] (also French): 37 pockets, `0` to `36`, one green zero.
//! * [`WheelType::American`]: 38 pockets, the same plus a second green pocket `00`. Wheel
//!   controllers send numbers, not labels, and code `00` as **37** ([`DOUBLE_ZERO`], the same
//!   constant the wheel driver uses). Croupier keeps that code in `number` and puts the text
//!   `"00"` in `label`, so a consumer that only shows the result uses `label` and one that
//!   settles uses `number`.
//!
//! A 37 from a European wheel is an error, never read as `00`: it means the wheel controller and
//! the table's config disagree about the wheel fitted, and a technician must fix one of them.
//!
//! # The result payload
//!
//! [`Pocket`] serialises as the roulette part of the result payload, for example 17:
//!
//! ```json
//! {"number": 17, "label": "17", "colour": "black", "dozen": 2, "column": 2,
//!  "parity": "odd", "range": "low"}
//! ```
//!
//! and `0` or `00` (both lose every outside bet, so those fields are `null`):
//!
//! ```json
//! {"number": 37, "label": "00", "colour": "green", "dozen": null, "column": null,
//!  "parity": null, "range": null}
//! ```
//!
//! * `dozen`: 1 for 1–12, 2 for 13–24, 3 for 25–36.
//! * `column`: the column of the betting layout; column 1 holds 1, 4, 7 … 34, column 2 holds
//!   2, 5, 8 … 35, column 3 holds 3, 6, 9 … 36.
//! * `range`: `low` for 1–18 ("manque"), `high` for 19–36 ("passe").
//!
//! # Pocket order on the rotor
//!
//! [`wheel_order`] lists the pockets in the order they sit around the rotor, starting at `0`,
//! clockwise as seen from above (the order published for standard casino wheels). The vision
//! stage uses it to turn "the ball is in the pocket at angle θ from the zero" into a number, and
//! to tell how far a vision reading is from the controller's ("one pocket off" is a calibration
//! problem; "half the wheel off" is a wrong reading).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The number wheel controllers send for the `00` pocket of an American wheel (37). Taken from
/// the wheel driver so the codec and the rules can never disagree about it.
pub const DOUBLE_ZERO: u8 = croupier_drivers::wheel::DOUBLE_ZERO;

/// Red numbers on every standard wheel; every other number from 1 to 36 is black.
const RED: [u8; 18] = [
    1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36,
];

/// The European (single-zero) rotor, clockwise from 0.
const EUROPEAN_ORDER: [u8; 37] = [
    0, 32, 15, 19, 4, 21, 2, 25, 17, 34, 6, 27, 13, 36, 11, 30, 8, 23, 10, 5, 24, 16, 33, 1, 20,
    14, 31, 9, 22, 18, 29, 7, 28, 12, 35, 3, 26,
];

/// The American (double-zero) rotor, clockwise from 0; `00` is written as [`DOUBLE_ZERO`] (37).
const AMERICAN_ORDER: [u8; 38] = [
    0,
    28,
    9,
    26,
    30,
    11,
    7,
    20,
    32,
    17,
    5,
    22,
    34,
    15,
    3,
    24,
    36,
    13,
    1,
    DOUBLE_ZERO,
    27,
    10,
    25,
    29,
    12,
    8,
    19,
    31,
    18,
    6,
    21,
    33,
    16,
    4,
    23,
    35,
    14,
    2,
];

/// Which wheel is fitted to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WheelType {
    /// Single zero: pockets 0–36 (37 pockets). Also used for French roulette.
    European,
    /// Double zero: pockets 0–36 and `00`, sent as 37 (38 pockets).
    American,
}

impl WheelType {
    /// The highest number the wheel can show: 36, or 37 (`00`) on an American wheel.
    pub fn max_number(self) -> u8 {
        match self {
            WheelType::European => 36,
            WheelType::American => DOUBLE_ZERO,
        }
    }

    /// How many pockets the rotor has: 37 or 38.
    pub fn pocket_count(self) -> usize {
        wheel_order(self).len()
    }
}

impl fmt::Display for WheelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WheelType::European => "European single-zero",
            WheelType::American => "American double-zero",
        })
    }
}

/// The wheel driver's name for the same choice: its codec accepts 37 only on a double-zero wheel.
impl From<croupier_drivers::wheel::WheelLayout> for WheelType {
    fn from(layout: croupier_drivers::wheel::WheelLayout) -> Self {
        match layout {
            croupier_drivers::wheel::WheelLayout::SingleZero => WheelType::European,
            croupier_drivers::wheel::WheelLayout::DoubleZero => WheelType::American,
        }
    }
}

/// Colour of a pocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Red,
    Black,
    /// `0` and `00`.
    Green,
}

/// Odd or even; `0` and `00` are neither (even-money bets lose on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    Odd,
    Even,
}

/// Low (1–18) or high (19–36); `0` and `00` are neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Range {
    Low,
    High,
}

/// Everything the layout says about one winning number. Serialised into the result payload; the
/// field names are part of the event contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Pocket {
    /// The number as the wheel controller codes it: 0–36, and 37 for `00`.
    pub number: u8,
    /// The number as printed on the wheel: `"0"`, `"00"`, `"17"`.
    pub label: String,
    pub colour: Colour,
    /// 1, 2 or 3; `None` for `0` and `00`.
    pub dozen: Option<u8>,
    /// 1, 2 or 3 (column 1 holds 1, 4, 7 … 34); `None` for `0` and `00`.
    pub column: Option<u8>,
    /// `None` for `0` and `00`.
    pub parity: Option<Parity>,
    /// `None` for `0` and `00`.
    pub range: Option<Range>,
}

/// Why a number is not a pocket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouletteError {
    /// The number is not on this wheel. 37 on a European wheel means the wheel controller is set
    /// up for a double-zero wheel (or the config names the wrong wheel); anything above 37 is a
    /// corrupt reading.
    #[error(
        "number {number} is not a pocket on the {wheel} wheel (0 to {max}{zz}); \
         check that the table's config names the wheel actually fitted and that the wheel \
         controller is set up for it",
        max = wheel.max_number(),
        zz = if *wheel == WheelType::American { ", 37 for 00" } else { "" }
    )]
    NotOnWheel { number: u8, wheel: WheelType },
}

/// What the layout says about `number` on `wheel`.
///
/// # Errors
///
/// [`RouletteError::NotOnWheel`] for 37 on a European wheel and for anything above 37.
pub fn pocket(number: u8, wheel: WheelType) -> Result<Pocket, RouletteError> {
    if number > wheel.max_number() {
        return Err(RouletteError::NotOnWheel { number, wheel });
    }
    if number == 0 || number == DOUBLE_ZERO {
        return Ok(Pocket {
            number,
            label: label(number).to_owned(),
            colour: Colour::Green,
            dozen: None,
            column: None,
            parity: None,
            range: None,
        });
    }
    Ok(Pocket {
        number,
        label: number.to_string(),
        colour: if RED.contains(&number) {
            Colour::Red
        } else {
            Colour::Black
        },
        dozen: Some((number - 1) / 12 + 1),
        column: Some((number - 1) % 3 + 1),
        parity: Some(if number % 2 == 1 {
            Parity::Odd
        } else {
            Parity::Even
        }),
        range: Some(if number <= 18 {
            Range::Low
        } else {
            Range::High
        }),
    })
}

/// The zeros' labels; other numbers are written as themselves.
fn label(number: u8) -> &'static str {
    if number == DOUBLE_ZERO {
        "00"
    } else {
        "0"
    }
}

/// The pockets in their order around the rotor, clockwise from `0` as seen from above; `00` is
/// [`DOUBLE_ZERO`] (37). Every pocket of the wheel appears exactly once.
pub fn wheel_order(wheel: WheelType) -> &'static [u8] {
    match wheel {
        WheelType::European => &EUROPEAN_ORDER,
        WheelType::American => &AMERICAN_ORDER,
    }
}

/// Where `number` sits on the rotor: its index in [`wheel_order`] (0 is the zero pocket), or
/// `None` when the wheel has no such pocket.
pub fn rotor_position(number: u8, wheel: WheelType) -> Option<usize> {
    wheel_order(wheel).iter().position(|&n| n == number)
}

/// How many pockets apart two numbers are on the rotor, the short way round (0 when equal).
/// `None` when either number is not on the wheel. Vision uses it to tell "one pocket off"
/// (calibration) from a wrong reading.
pub fn rotor_distance(a: u8, b: u8, wheel: WheelType) -> Option<usize> {
    let (pa, pb) = (rotor_position(a, wheel)?, rotor_position(b, wheel)?);
    let d = pa.abs_diff(pb);
    Some(d.min(wheel.pocket_count() - d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const BOTH: [WheelType; 2] = [WheelType::European, WheelType::American];

    fn all_pockets(wheel: WheelType) -> Vec<Pocket> {
        (0..=wheel.max_number())
            .map(|n| pocket(n, wheel).unwrap())
            .collect()
    }

    #[test]
    fn every_number_on_both_layouts() {
        for wheel in BOTH {
            let pockets = all_pockets(wheel);
            assert_eq!(pockets.len(), wheel.pocket_count());
            let count = |f: &dyn Fn(&Pocket) -> bool| pockets.iter().filter(|p| f(p)).count();

            assert_eq!(count(&|p| p.colour == Colour::Red), 18, "{wheel}");
            assert_eq!(count(&|p| p.colour == Colour::Black), 18, "{wheel}");
            let zeros = if wheel == WheelType::American { 2 } else { 1 };
            assert_eq!(count(&|p| p.colour == Colour::Green), zeros, "{wheel}");
            for k in 1..=3 {
                assert_eq!(count(&|p| p.dozen == Some(k)), 12, "{wheel} dozen {k}");
                assert_eq!(count(&|p| p.column == Some(k)), 12, "{wheel} column {k}");
            }
            assert_eq!(count(&|p| p.parity == Some(Parity::Odd)), 18);
            assert_eq!(count(&|p| p.parity == Some(Parity::Even)), 18);
            assert_eq!(count(&|p| p.range == Some(Range::Low)), 18);
            assert_eq!(count(&|p| p.range == Some(Range::High)), 18);
            // Colour and parity are not independent: ten red numbers are odd, eight even (and
            // the reverse for black). Colour and range are: nine of each.
            for (colour, parity, expected) in [
                (Colour::Red, Parity::Odd, 10),
                (Colour::Red, Parity::Even, 8),
                (Colour::Black, Parity::Odd, 8),
                (Colour::Black, Parity::Even, 10),
            ] {
                assert_eq!(
                    count(&|p| p.colour == colour && p.parity == Some(parity)),
                    expected,
                    "{colour:?} {parity:?}"
                );
            }
            for colour in [Colour::Red, Colour::Black] {
                for range in [Range::Low, Range::High] {
                    assert_eq!(
                        count(&|p| p.colour == colour && p.range == Some(range)),
                        9,
                        "{colour:?} {range:?}"
                    );
                }
            }

            for p in &pockets {
                let n = p.number;
                let green = n == 0 || n == DOUBLE_ZERO;
                assert_eq!(p.colour == Colour::Green, green, "{n}");
                assert_eq!(p.dozen.is_none(), green, "{n}");
                assert_eq!(p.column.is_none(), green, "{n}");
                assert_eq!(p.parity.is_none(), green, "{n}");
                assert_eq!(p.range.is_none(), green, "{n}");
                if green {
                    continue;
                }
                // Independent restatement of the layout: dozen by band, column by row of 3.
                let dozen = match n {
                    1..=12 => 1,
                    13..=24 => 2,
                    _ => 3,
                };
                assert_eq!(p.dozen, Some(dozen), "{n}");
                let column = match n % 3 {
                    1 => 1,
                    2 => 2,
                    _ => 3,
                };
                assert_eq!(p.column, Some(column), "{n}");
                assert_eq!(p.label, n.to_string());
                assert_eq!(
                    p.parity,
                    Some(if n % 2 == 0 {
                        Parity::Even
                    } else {
                        Parity::Odd
                    })
                );
                assert_eq!(p.range, Some(if n < 19 { Range::Low } else { Range::High }));
            }
        }
    }

    #[test]
    fn colours_follow_the_classic_pattern() {
        // 1–10 and 19–28: odd is red; 11–18 and 29–36: even is red. A restatement of RED that
        // shares no data with it.
        for n in 1..=36u8 {
            let odd_is_red = matches!(n, 1..=10 | 19..=28);
            let red = (n % 2 == 1) == odd_is_red;
            let expected = if red { Colour::Red } else { Colour::Black };
            assert_eq!(
                pocket(n, WheelType::European).unwrap().colour,
                expected,
                "{n}"
            );
        }
    }

    #[test]
    fn layouts_agree_on_common_numbers() {
        for n in 0..=36 {
            assert_eq!(
                pocket(n, WheelType::European),
                pocket(n, WheelType::American)
            );
        }
    }

    #[test]
    fn known_pockets() {
        let p17 = pocket(17, WheelType::European).unwrap();
        assert_eq!(
            p17,
            Pocket {
                number: 17,
                label: "17".into(),
                colour: Colour::Black,
                dozen: Some(2),
                column: Some(2),
                parity: Some(Parity::Odd),
                range: Some(Range::Low),
            }
        );
        let p36 = pocket(36, WheelType::American).unwrap();
        assert_eq!(
            (p36.colour, p36.dozen, p36.column, p36.parity, p36.range),
            (
                Colour::Red,
                Some(3),
                Some(3),
                Some(Parity::Even),
                Some(Range::High)
            )
        );
        let p1 = pocket(1, WheelType::European).unwrap();
        assert_eq!(
            (p1.colour, p1.dozen, p1.column),
            (Colour::Red, Some(1), Some(1))
        );
        // The classic trap: 10 and 28 are black, 19 is red.
        assert_eq!(
            pocket(10, WheelType::European).unwrap().colour,
            Colour::Black
        );
        assert_eq!(
            pocket(28, WheelType::European).unwrap().colour,
            Colour::Black
        );
        assert_eq!(pocket(19, WheelType::European).unwrap().colour, Colour::Red);
        assert_eq!(
            pocket(18, WheelType::European).unwrap().range,
            Some(Range::Low)
        );
        assert_eq!(
            pocket(19, WheelType::European).unwrap().range,
            Some(Range::High)
        );
        assert_eq!(pocket(12, WheelType::European).unwrap().dozen, Some(1));
        assert_eq!(pocket(13, WheelType::European).unwrap().dozen, Some(2));
        assert_eq!(pocket(25, WheelType::European).unwrap().dozen, Some(3));
    }

    #[test]
    fn zeros() {
        assert_eq!(DOUBLE_ZERO, 37);
        for wheel in BOTH {
            let zero = pocket(0, wheel).unwrap();
            assert_eq!(zero.label, "0");
            assert_eq!(zero.colour, Colour::Green);
        }
        let dz = pocket(DOUBLE_ZERO, WheelType::American).unwrap();
        assert_eq!(
            dz,
            Pocket {
                number: 37,
                label: "00".into(),
                colour: Colour::Green,
                dozen: None,
                column: None,
                parity: None,
                range: None,
            }
        );
    }

    #[test]
    fn numbers_off_the_wheel_are_errors() {
        assert_eq!(
            pocket(37, WheelType::European),
            Err(RouletteError::NotOnWheel {
                number: 37,
                wheel: WheelType::European
            })
        );
        for wheel in BOTH {
            for n in 38..=u8::MAX {
                assert_eq!(
                    pocket(n, wheel),
                    Err(RouletteError::NotOnWheel { number: n, wheel })
                );
            }
        }
        let msg = pocket(37, WheelType::European).unwrap_err().to_string();
        assert!(msg.contains("European single-zero"), "{msg}");
        assert!(msg.contains("0 to 36"), "{msg}");
        let msg = pocket(40, WheelType::American).unwrap_err().to_string();
        assert!(msg.contains("0 to 37, 37 for 00"), "{msg}");
    }

    #[test]
    fn wheel_orders_hold_every_pocket_once() {
        for wheel in BOTH {
            let order = wheel_order(wheel);
            assert_eq!(order.len(), wheel.pocket_count());
            assert_eq!(order.first(), Some(&0));
            let set: BTreeSet<u8> = order.iter().copied().collect();
            let expected: BTreeSet<u8> = (0..=wheel.max_number()).collect();
            assert_eq!(set, expected, "{wheel}");
        }
        assert_eq!(WheelType::European.pocket_count(), 37);
        assert_eq!(WheelType::American.pocket_count(), 38);
    }

    #[test]
    fn wheel_orders_alternate_colours() {
        // On both rotors red and black alternate all the way round, broken only by the zeros.
        for wheel in BOTH {
            let order = wheel_order(wheel);
            let n = order.len();
            for i in 0..n {
                let a = pocket(order[i], wheel).unwrap().colour;
                let b = pocket(order[(i + 1) % n], wheel).unwrap().colour;
                if a != Colour::Green && b != Colour::Green {
                    assert_ne!(a, b, "{wheel}: {} then {}", order[i], order[(i + 1) % n]);
                }
            }
        }
    }

    #[test]
    fn wheel_order_landmarks() {
        let eu = wheel_order(WheelType::European);
        // Zero sits between 26 and 32.
        assert_eq!((eu[36], eu[0], eu[1]), (26, 0, 32));
        // American: 00 is directly opposite 0, between 1 and 27; 0 sits between 2 and 28.
        let us = wheel_order(WheelType::American);
        assert_eq!(rotor_position(DOUBLE_ZERO, WheelType::American), Some(19));
        assert_eq!((us[18], us[19], us[20]), (1, DOUBLE_ZERO, 27));
        assert_eq!((us[37], us[0], us[1]), (2, 0, 28));
        // The American rotor pairs each number with its successor directly opposite.
        for (i, &n) in us.iter().enumerate() {
            if n != 0 && n != DOUBLE_ZERO && n % 2 == 1 {
                let opposite = us[(i + 19) % 38];
                assert_eq!(opposite, n + 1, "opposite {n}");
            }
        }
    }

    #[test]
    fn rotor_geometry() {
        assert_eq!(rotor_position(0, WheelType::European), Some(0));
        assert_eq!(rotor_position(26, WheelType::European), Some(36));
        assert_eq!(rotor_position(DOUBLE_ZERO, WheelType::European), None);
        assert_eq!(rotor_distance(0, 26, WheelType::European), Some(1));
        assert_eq!(rotor_distance(0, 32, WheelType::European), Some(1));
        assert_eq!(rotor_distance(17, 17, WheelType::European), Some(0));
        assert_eq!(
            rotor_distance(0, DOUBLE_ZERO, WheelType::American),
            Some(19)
        );
        assert_eq!(rotor_distance(0, DOUBLE_ZERO, WheelType::European), None);
        for wheel in BOTH {
            let half = wheel.pocket_count() / 2;
            for a in 0..=wheel.max_number() {
                for b in 0..=wheel.max_number() {
                    let d = rotor_distance(a, b, wheel).unwrap();
                    assert!(d <= half);
                    assert_eq!(Some(d), rotor_distance(b, a, wheel));
                    assert_eq!(d == 0, a == b);
                }
            }
        }
    }

    #[test]
    fn payload_field_names_are_stable() {
        let json = serde_json::to_value(pocket(17, WheelType::European).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"number": 17, "label": "17", "colour": "black", "dozen": 2,
                "column": 2, "parity": "odd", "range": "low"})
        );
        let json = serde_json::to_value(pocket(37, WheelType::American).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"number": 37, "label": "00", "colour": "green", "dozen": null,
                "column": null, "parity": null, "range": null})
        );
        assert_eq!(
            serde_json::to_value(WheelType::American).unwrap(),
            serde_json::json!("american")
        );
        assert_eq!(
            serde_json::from_str::<WheelType>("\"european\"").unwrap(),
            WheelType::European
        );
    }

    #[test]
    fn driver_layouts_map_to_wheel_types() {
        use croupier_drivers::wheel::WheelLayout;
        assert_eq!(
            WheelType::from(WheelLayout::SingleZero),
            WheelType::European
        );
        assert_eq!(
            WheelType::from(WheelLayout::DoubleZero),
            WheelType::American
        );
        for layout in [WheelLayout::SingleZero, WheelLayout::DoubleZero] {
            assert_eq!(WheelType::from(layout).max_number(), layout.max_number());
        }
    }
}
