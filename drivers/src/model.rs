//! The common model every driver speaks: what a device saw (an [`Observation`]), when the input
//! happened (a [`Stamp`]), and how a decoder reports a stretch of input ([`Decoded`]).
//!
//! Decoders are sans-IO `tokio_util::codec::Decoder`s whose item is [`Decoded`]: a whole frame
//! with its length on the wire, or a count of bytes skipped as garbage. Garbage is never an
//! `Err` (an error ends a `FramedRead`); the reader counts it, logs it and keeps going.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// When an input happened: the wall clock (UTC) and the monotonic clock at that instant.
///
/// For serial input this is the read time minus the frame's transmission time at the baud
/// rate; for GPIO the kernel's edge timestamp; for evdev the kernel's event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub utc: SystemTime,
    /// CLOCK_MONOTONIC in nanoseconds.
    pub mono_ns: u64,
}

impl Stamp {
    /// Both clocks, read now.
    pub fn now() -> Self {
        Self {
            utc: SystemTime::now(),
            mono_ns: monotonic_ns(),
        }
    }

    /// The same instant moved `by` into the past (transmission time of a frame, say).
    #[must_use]
    pub fn earlier(self, by: Duration) -> Self {
        Self {
            utc: self.utc.checked_sub(by).unwrap_or(self.utc),
            mono_ns: self
                .mono_ns
                .saturating_sub(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX)),
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| {
            u64::try_from(ts.tv_sec())
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::try_from(ts.tv_nsec()).unwrap_or(0))
        })
        .unwrap_or(0)
}

/// How long `bytes` take on a serial line at `baud`, 8N1 (10 bits a byte: start, 8 data, stop).
pub fn transmission_time(bytes: usize, baud: u32) -> Duration {
    if baud == 0 {
        return Duration::ZERO;
    }
    let bits = (bytes as u64).saturating_mul(10);
    Duration::from_nanos(bits.saturating_mul(1_000_000_000) / u64::from(baud))
}

/// What a decoder made of the bytes it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole, valid frame, and how many bytes it took on the wire (for its timestamp).
    Frame { frame: T, wire_len: usize },
    /// Bytes skipped because they were not a valid frame; decoding resumes at the next frame
    /// start.
    Garbage { skipped: usize, reason: Garbage },
}

/// Why bytes were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// Bytes before a frame start.
    NoFrameStart,
    /// A frame longer than the codec's bound.
    TooLong,
    /// A frame whose fields do not parse.
    Malformed,
    /// A frame whose checksum or CRC is wrong.
    BadChecksum,
}

impl fmt::Display for Garbage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Garbage::NoFrameStart => "bytes before a frame start",
            Garbage::TooLong => "frame longer than the limit",
            Garbage::Malformed => "malformed frame",
            Garbage::BadChecksum => "bad checksum",
        })
    }
}

/// Card rank, `A 2-9 T J Q K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rank {
    Ace,
    Two,
    Three,
    Four,
    Five,
    Six,
    Seven,
    Eight,
    Nine,
    Ten,
    Jack,
    Queen,
    King,
}

impl Rank {
    pub const ALL: [Rank; 13] = [
        Rank::Ace,
        Rank::Two,
        Rank::Three,
        Rank::Four,
        Rank::Five,
        Rank::Six,
        Rank::Seven,
        Rank::Eight,
        Rank::Nine,
        Rank::Ten,
        Rank::Jack,
        Rank::Queen,
        Rank::King,
    ];

    /// 1 for the ace up to 13 for the king.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn symbol(self) -> char {
        b"A23456789TJQK"[self as usize] as char
    }

    /// Reads `A`, `2`–`9`, `T` or `10`, `J`, `Q`, `K` (case-insensitive).
    pub fn parse(s: &str) -> Option<Rank> {
        let s = s.trim();
        if s == "10" {
            return Some(Rank::Ten);
        }
        let mut chars = s.chars();
        let c = chars.next()?.to_ascii_uppercase();
        if chars.next().is_some() {
            return None;
        }
        "A23456789TJQK"
            .find(c)
            .and_then(|i| Rank::ALL.get(i).copied())
    }
}

/// Card suit, `S H D C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suit {
    Spades,
    Hearts,
    Diamonds,
    Clubs,
}

impl Suit {
    pub const ALL: [Suit; 4] = [Suit::Spades, Suit::Hearts, Suit::Diamonds, Suit::Clubs];

    pub fn symbol(self) -> char {
        b"SHDC"[self as usize] as char
    }

    pub fn parse(s: &str) -> Option<Suit> {
        let s = s.trim();
        let mut chars = s.chars();
        let c = chars.next()?.to_ascii_uppercase();
        if chars.next().is_some() {
            return None;
        }
        "SHDC".find(c).and_then(|i| Suit::ALL.get(i).copied())
    }
}

/// A playing card, written `KH`, `TD`, `AS` (rank then suit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Card {
    pub rank: Rank,
    pub suit: Suit,
}

impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.rank.symbol(), self.suit.symbol())
    }
}

impl FromStr for Card {
    type Err = String;

    /// `KH`, `TD`, `10D`, `as` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s
            .char_indices()
            .last()
            .map(|(i, _)| i)
            .ok_or_else(|| "empty card".to_owned())?;
        let (rank, suit) = s.split_at(split);
        match (Rank::parse(rank), Suit::parse(suit)) {
            (Some(rank), Some(suit)) => Ok(Card { rank, suit }),
            _ => Err(format!(
                "`{s}` is not a card (rank A 2-9 T J Q K, then suit S H D C)"
            )),
        }
    }
}

/// What a device observed, in the driver's words; the table engine decides what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Wheel(crate::wheel::WheelEvent),
    Card(CardEvent),
    Rfid(RfidEvent),
    Pedal(crate::pedal::PedalEvent),
}

impl fmt::Display for Observation {
    /// One line for logs and the status page: `wheel state 5 spin 042 number 17 …`,
    /// `card KH #3`, `tag E004… arrived at antenna 1`, `pedal press`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::wheel::{Direction, WheelEvent};
        match self {
            Observation::Wheel(WheelEvent::Status {
                state,
                spin_count,
                number,
                warnings,
                rotor_speed,
                direction,
            }) => write!(
                f,
                "wheel state {} ({state}) spin {spin_count:03} number {number} flags {:X} rotor {rotor_speed} {}",
                state.code(),
                warnings.0,
                match direction {
                    Direction::Clockwise => "cw",
                    Direction::CounterClockwise => "ccw",
                }
            ),
            Observation::Wheel(WheelEvent::WinningNumber { number }) => {
                write!(f, "wheel winning number {number}")
            }
            Observation::Wheel(WheelEvent::Power { text }) => write!(f, "wheel power {text:?}"),
            Observation::Wheel(WheelEvent::Error { text }) => write!(f, "wheel error {text:?}"),
            Observation::Wheel(WheelEvent::Warning { text }) => {
                write!(f, "wheel warning {text:?}")
            }
            Observation::Wheel(WheelEvent::Other { code, text }) => {
                write!(f, "wheel *{code} {text:?}")
            }
            Observation::Card(CardEvent::Drawn { card, index }) => write!(f, "card {card} #{index}"),
            Observation::Card(CardEvent::Burn { index }) => write!(f, "burn card #{index}"),
            Observation::Card(CardEvent::Unreadable { text }) => {
                write!(f, "unreadable card line {text:?}")
            }
            Observation::Rfid(RfidEvent::Arrived { antenna, uid }) => {
                write!(f, "tag {uid} arrived at antenna {antenna}")
            }
            Observation::Rfid(RfidEvent::Departed { antenna, uid }) => {
                write!(f, "tag {uid} left antenna {antenna}")
            }
            Observation::Pedal(event) => write!(f, "pedal {event}"),
        }
    }
}

/// A card reader or shoe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// A card was drawn / read. `index` counts cards from this reader since it was opened
    /// (1-based), so the order of the shoe is kept even if events are reordered downstream.
    Drawn { card: Card, index: u64 },
    /// A burn card (the configured marker was read).
    Burn { index: u64 },
    /// A line that is no card under the configured format: reported, never guessed.
    Unreadable { text: String },
}

/// An RFID event. Antenna numbers are the reader's (1-based); each antenna is a table zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RfidEvent {
    /// A tag came into an antenna's field.
    Arrived { antenna: u8, uid: TagUid },
    /// A tag left an antenna's field.
    Departed { antenna: u8, uid: TagUid },
}

/// An ISO 15693 tag UID (8 bytes), written as 16 uppercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagUid(pub [u8; 8]);

impl fmt::Display for TagUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl FromStr for TagUid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{s}` is not a tag UID (16 hex digits)"));
        }
        let mut out = [0u8; 8];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("00"), 16)
                .map_err(|e| e.to_string())?;
        }
        Ok(TagUid(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmission_time_at_9600_8n1() {
        // 10 bits per byte: a 22-byte wheel frame takes 22.9 ms at 9600 baud.
        assert_eq!(
            transmission_time(22, 9600),
            Duration::from_nanos(22_916_666)
        );
        assert_eq!(transmission_time(1, 0), Duration::ZERO);
    }

    #[test]
    fn cards_read_and_write() {
        for (text, shown) in [
            ("KH", "KH"),
            ("td", "TD"),
            ("10D", "TD"),
            ("AS", "AS"),
            ("9c", "9C"),
        ] {
            let card: Card = text.parse().expect(text);
            assert_eq!(card.to_string(), shown);
        }
        for bad in ["", "K", "1H", "KX", "11D", "KHH"] {
            assert!(bad.parse::<Card>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_uids_round_trip() {
        let uid: TagUid = "E00401501234ABCD".parse().expect("uid");
        assert_eq!(uid.to_string(), "E00401501234ABCD");
        assert!("E0040150".parse::<TagUid>().is_err());
        assert!("E00401501234ABCG".parse::<TagUid>().is_err());
    }

    #[test]
    fn stamps_move_back() {
        let s = Stamp::now();
        let e = s.earlier(Duration::from_millis(5));
        assert_eq!(s.mono_ns - e.mono_ns, 5_000_000);
    }
}
