//! Roulette wheel controllers that speak the Cammegh SlingShot-style ASCII protocol.
//!
//! # What the technician needs to know
//!
//! The wheel controller talks RS-232 (usually through a USB-serial adapter) at **9600 baud, 8N1**,
//! no flow control. It sends one line per message, each ending in CR LF (a bare LF is accepted
//! too). You can watch it with `picocom -b 9600 /dev/croupier/wheel`; a healthy wheel sends a
//! status frame every second or so:
//!
//! ```text
//! *X;5;042;17;0;027;1
//!    │ │   │  │ │   └ rotor direction: 0 clockwise, 1 counter-clockwise
//!    │ │   │  │ └──── rotor speed, 3 digits (rpm)
//!    │ │   │  └────── warning flags, 1 hex digit (see below)
//!    │ │   └───────── winning number, 2 digits (the previous result until state 5)
//!    │ └───────────── spin count, 3 digits (wraps after 999)
//!    └─────────────── state: 1 game start, 2 place bets / rotor turning, 3 ball in rim,
//!                            4 no more bets, 5 winning number, 6 idle / table closed
//! ```
//!
//! Both `;` and `:` are accepted as the field separator (`*X:5:042:17:0:027:1`), because both are
//! seen in the field. Warning flags add up: 1 ball removed, 2 ball launched in the rotor's
//! direction, 4 in-rim sensor / motor / encoder fault, 8 void game / failed launch (so `A` is
//! 2 + 8). Other frames:
//!
//! | frame         | meaning                                     | reported as                    |
//! | ------------- | ------------------------------------------- | ------------------------------ |
//! | `17`          | bare winning number, alone on its line      | [`WheelEvent::WinningNumber`]  |
//! | `*P 1`        | power (`*P 0`, `*P 1`, `*P OK`)             | [`WheelEvent::Power`] + text   |
//! | `*F 11`       | error / fault code                          | [`WheelEvent::Error`] + text   |
//! | `*W …`        | warning                                     | [`WheelEvent::Warning`] + text |
//! | `*o 3`, `*M …` | any other `*` + letter (mode echo, statistics, bonus) | [`WheelEvent::Other`] + text |
//!
//! The driver reports what the wheel said, faithfully: mapping states to table phases (open
//! bets, no more bets, result) is the table engine's job.
//!
//! # What counts as garbage
//!
//! Nothing the wheel sends is ever guessed. A line that does not parse exactly (wrong field
//! count or width, a non-digit, state 0 or 7, a number above the layout's highest, a bad hex
//! digit, a direction other than 0/1) is skipped as [`Garbage::Malformed`]; bytes before a `*` are
//! [`Garbage::NoFrameStart`]; a frame with no line end within [`MAX_FRAME`] bytes is
//! [`Garbage::TooLong`]. After garbage the decoder picks up again at the next `*` or the next
//! line. A `*` inside a frame means the frame was cut (the wheel restarted, or bytes were lost):
//! the cut part is garbage and the new frame is read. A frame cut by end of file (cable pulled)
//! is garbage, never a frame.
//!
//! # Assumptions about the protocol (not from a manufacturer's document)
//!
//! * **Bare winning number**: a line holding just the number, 1 or 2 digits (`17\r\n`, `7\r\n`,
//!   `07\r\n`). Public integrations read the number either as a line of digits or as exactly two
//!   ASCII digits; no public document of the exact form was found. A bare number is only
//!   believed at a *known* line start, i.e. right after a line end the decoder has seen. The
//!   first line after the port is opened (or after an over-long frame) may be the tail of a frame
//!   whose start was missed (`…;027;1\r\n` cut to `1\r\n`, or `*F 11` cut to `11`), so digits there
//!   are garbage, not a number. The status frame of state 5 carries the same number, so nothing
//!   is lost.
//! * **Number 37** is accepted and passed on as-is: it is the code double-zero controllers are
//!   commonly taken to use for `00`. A codec built for a [`WheelLayout::SingleZero`] wheel
//!   (config `layout = "single-zero"`) rejects it. 38 and above are always garbage.
//! * **P / F / W text**: whatever follows the letter, minus one separator (space, `;` or `:`),
//!   printable ASCII only.
//! * **Mode command** `*o <sum>`: see [`mode_command`].

use std::fmt;
use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use crate::model::{Decoded, Garbage};

/// The longest frame accepted, `*` and CR LF included. A status frame is 21 bytes; text frames
/// (`*F`, `*W`) get room for a short message.
pub const MAX_FRAME: usize = 64;

/// The number the controller is assumed to send for `00` on a double-zero wheel.
pub const DOUBLE_ZERO: u8 = 37;

/// The wheel's game state, as the controller reports it in a status frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WheelState {
    /// 1: game start.
    GameStart,
    /// 2: place bets, rotor turning.
    PlaceBets,
    /// 3: ball in rim.
    BallInRim,
    /// 4: no more bets.
    NoMoreBets,
    /// 5: winning number.
    WinningNumber,
    /// 6: idle, table closed.
    Idle,
}

impl WheelState {
    /// Every state, in the order of their codes (1 to 6).
    pub const ALL: [WheelState; 6] = [
        WheelState::GameStart,
        WheelState::PlaceBets,
        WheelState::BallInRim,
        WheelState::NoMoreBets,
        WheelState::WinningNumber,
        WheelState::Idle,
    ];

    /// The state for the digit the wheel sends (1–6); `None` for any other code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(WheelState::GameStart),
            2 => Some(WheelState::PlaceBets),
            3 => Some(WheelState::BallInRim),
            4 => Some(WheelState::NoMoreBets),
            5 => Some(WheelState::WinningNumber),
            6 => Some(WheelState::Idle),
            _ => None,
        }
    }

    /// The digit the wheel sends for this state (1–6).
    pub fn code(self) -> u8 {
        match self {
            WheelState::GameStart => 1,
            WheelState::PlaceBets => 2,
            WheelState::BallInRim => 3,
            WheelState::NoMoreBets => 4,
            WheelState::WinningNumber => 5,
            WheelState::Idle => 6,
        }
    }
}

impl fmt::Display for WheelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WheelState::GameStart => "game start",
            WheelState::PlaceBets => "place bets",
            WheelState::BallInRim => "ball in rim",
            WheelState::NoMoreBets => "no more bets",
            WheelState::WinningNumber => "winning number",
            WheelState::Idle => "idle",
        })
    }
}

/// The controller's warning flags (one hex digit): bit 1 ball removed, 2 ball launched in the
/// rotor's direction, 4 in-rim sensor / motor / encoder fault, 8 void game / failed launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WarningFlags(pub u8);

impl WarningFlags {
    /// 1: the ball was removed from the wheel.
    pub const BALL_REMOVED: u8 = 0x1;
    /// 2: the ball was launched in the same direction as the rotor turns.
    pub const SAME_DIRECTION: u8 = 0x2;
    /// 4: an in-rim sensor, the motor or the encoder is faulty.
    pub const SENSOR_FAULT: u8 = 0x4;
    /// 8: the game is void, or the launch failed.
    pub const VOID_GAME: u8 = 0x8;

    /// No flag set.
    pub fn is_empty(self) -> bool {
        self.0 & 0x0F == 0
    }

    /// Flag 1: the ball was removed.
    pub fn ball_removed(self) -> bool {
        self.0 & Self::BALL_REMOVED != 0
    }

    /// Flag 2: the ball was launched in the rotor's direction.
    pub fn launched_with_rotor(self) -> bool {
        self.0 & Self::SAME_DIRECTION != 0
    }

    /// Flag 4: in-rim sensor, motor or encoder fault.
    pub fn sensor_fault(self) -> bool {
        self.0 & Self::SENSOR_FAULT != 0
    }

    /// Flag 8: void game or failed launch.
    pub fn void_game(self) -> bool {
        self.0 & Self::VOID_GAME != 0
    }
}

/// Which way the rotor turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Clockwise,
    CounterClockwise,
}

impl Direction {
    /// `0` clockwise, `1` counter-clockwise; `None` for anything else.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Direction::Clockwise),
            1 => Some(Direction::CounterClockwise),
            _ => None,
        }
    }

    /// The digit the wheel sends: 0 clockwise, 1 counter-clockwise.
    pub fn code(self) -> u8 {
        match self {
            Direction::Clockwise => 0,
            Direction::CounterClockwise => 1,
        }
    }
}

/// What the wheel said, faithfully; mapping states to table phases is the engine's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelEvent {
    /// A `*X` status frame.
    Status {
        state: WheelState,
        spin_count: u16,
        /// The number field as sent (0–36; on a double-zero wheel the controller's code for 00).
        number: u8,
        warnings: WarningFlags,
        rotor_speed: u16,
        direction: Direction,
    },
    /// A bare winning-number frame.
    WinningNumber { number: u8 },
    /// A `*P` power frame, with its text.
    Power { text: String },
    /// A `*F` error frame, with its text.
    Error { text: String },
    /// A `*W` warning frame, with its text.
    Warning { text: String },
    /// A well-formed `*` frame of another kind (`*o` mode echo, `*M` statistics, `*Y` bonus…):
    /// its letter and text, passed on so that it is logged rather than counted as garbage.
    Other { code: char, text: String },
}

impl WheelEvent {
    /// The frame on the wire, CR LF included, e.g. `*X;5;042;17;0;027;1\r\n`. The simulator
    /// and the tests both write frames with this, so they cannot drift from the decoder.
    ///
    /// Counters wider than their field wrap (spin count and rotor speed modulo 1000), as the
    /// wheel's own counters do. Text is made safe for one frame: anything but printable ASCII,
    /// and `*` (which would start a new frame), becomes `?`. A number above 99 is written in
    /// full and so makes a frame the decoder rejects, never one that reads as another number.
    pub fn encode(&self) -> Vec<u8> {
        let text_frame = |code: char, text: &str| format!("*{code} {}\r\n", wire_text(text));
        match self {
            WheelEvent::Status {
                state,
                spin_count,
                number,
                warnings,
                rotor_speed,
                direction,
            } => format!(
                "*X;{};{:03};{:02};{:X};{:03};{}\r\n",
                state.code(),
                spin_count % 1000,
                number,
                warnings.0 & 0x0F,
                rotor_speed % 1000,
                direction.code()
            ),
            WheelEvent::WinningNumber { number } => format!("{number:02}\r\n"),
            WheelEvent::Power { text } => text_frame('P', text),
            WheelEvent::Error { text } => text_frame('F', text),
            WheelEvent::Warning { text } => text_frame('W', text),
            WheelEvent::Other { code, text } => text_frame(*code, text),
        }
        .into_bytes()
    }
}

fn wire_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '*' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The operating-mode word sent with `*o <sum>`.
///
/// ASSUMPTION: no public description of `*o` was found. The wheel's flags elsewhere in this
/// protocol are values that add up (warning flags 1 + 2 + 4 + 8), so `<sum>` is taken to be the
/// sum of the option values the wheel's handbook lists for the wanted operating mode, written
/// in decimal. Check it against the handbook of the wheel on the table before relying on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WheelMode(pub u16);

/// The mode command for `mode`: `*o <sum>` and CR LF, e.g. `*o 5\r\n` (see [`WheelMode`] for
/// what the sum is taken to be).
pub fn mode_command(mode: WheelMode) -> Vec<u8> {
    format!("*o {}\r\n", mode.0).into_bytes()
}

/// Which numbers the wheel can show: decides whether [`DOUBLE_ZERO`] (37) is a number or garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WheelLayout {
    /// European / French wheel: 0–36. A 37 is garbage.
    SingleZero,
    /// American wheel, or unknown: 0–36 and 37 for `00`.
    #[default]
    DoubleZero,
}

impl WheelLayout {
    /// The highest number field accepted.
    pub fn max_number(self) -> u8 {
        match self {
            WheelLayout::SingleZero => 36,
            WheelLayout::DoubleZero => DOUBLE_ZERO,
        }
    }

    /// The name used in config files: `single-zero` or `double-zero`.
    pub fn as_str(self) -> &'static str {
        match self {
            WheelLayout::SingleZero => "single-zero",
            WheelLayout::DoubleZero => "double-zero",
        }
    }
}

impl fmt::Display for WheelLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be wrong in a wheel's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WheelError {
    /// The `layout` key names no known layout.
    #[error(
        "unknown wheel layout {given:?}: use \"single-zero\" (European, 0-36) or \"double-zero\" \
         (American, 00 sent as 37)"
    )]
    UnknownLayout {
        /// The text given.
        given: String,
    },
}

impl std::str::FromStr for WheelLayout {
    type Err = WheelError;

    /// `single-zero` (also `european`, `french`) or `double-zero` (also `american`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "single-zero" | "european" | "french" => Ok(WheelLayout::SingleZero),
            "double-zero" | "american" => Ok(WheelLayout::DoubleZero),
            _ => Err(WheelError::UnknownLayout {
                given: s.to_owned(),
            }),
        }
    }
}

/// Sans-IO decoder of the wheel's frames; see the module docs for the framing and what counts
/// as garbage. Feed it through `FramedRead`, or call `decode` on a `BytesMut` yourself.
#[derive(Debug, Clone, Default)]
pub struct WheelCodec {
    layout: WheelLayout,
    /// The next byte starts a line we have seen begin (a bare number is believed only there).
    line_start: bool,
    /// Skipping the rest of an over-long frame, up to the next `*` or line end.
    discarding: bool,
}

/// Where the end of the frame starting at `src[0]` is.
enum Scan {
    /// A line end at this index.
    LineEnd(usize),
    /// Another `*` at this index: the frame was cut.
    Cut(usize),
    /// No end within [`MAX_FRAME`].
    TooLong,
    /// Not all of it has arrived yet.
    Partial,
}

impl WheelCodec {
    /// A decoder for a wheel of the given layout.
    pub fn new(layout: WheelLayout) -> Self {
        Self {
            layout,
            ..Self::default()
        }
    }

    /// The layout this decoder checks numbers against.
    pub fn layout(&self) -> WheelLayout {
        self.layout
    }

    fn next_item(&mut self, src: &mut BytesMut) -> Option<Decoded<WheelEvent>> {
        loop {
            let first = *src.first()?;
            if self.discarding {
                let boundary = src.iter().position(|&b| b == b'*' || b == b'\n');
                let skipped = match boundary {
                    Some(i) if src.get(i) == Some(&b'\n') => {
                        self.discarding = false;
                        self.line_start = true;
                        i + 1
                    }
                    Some(i) => {
                        self.discarding = false;
                        self.line_start = false;
                        i
                    }
                    None => src.len(),
                };
                if skipped == 0 {
                    continue; // the `*` right here starts the next frame
                }
                src.advance(skipped);
                return Some(garbage(skipped, Garbage::TooLong));
            }
            if first == b'*' || (self.line_start && first.is_ascii_digit()) {
                return self.frame(src);
            }
            return Some(self.skip_to_frame_start(src));
        }
    }

    /// Skips bytes that cannot start a frame: up to the next `*`, or through the next line end
    /// (after which a line starts), or all of them.
    fn skip_to_frame_start(&mut self, src: &mut BytesMut) -> Decoded<WheelEvent> {
        let skipped = match src.iter().position(|&b| b == b'*' || b == b'\n') {
            Some(i) if src.get(i) == Some(&b'\n') => {
                self.line_start = true;
                i + 1
            }
            Some(i) => {
                self.line_start = false;
                i
            }
            None => {
                self.line_start = false;
                src.len()
            }
        };
        src.advance(skipped);
        garbage(skipped, Garbage::NoFrameStart)
    }

    /// A frame starting at `src[0]` (a `*`, or a digit at a known line start).
    fn frame(&mut self, src: &mut BytesMut) -> Option<Decoded<WheelEvent>> {
        match scan(src) {
            Scan::LineEnd(end) => {
                let wire_len = end + 1;
                let bytes = src.split_to(wire_len);
                self.line_start = true;
                Some(match parse_frame(&bytes, self.layout) {
                    Some(frame) => Decoded::Frame { frame, wire_len },
                    None => garbage(wire_len, Garbage::Malformed),
                })
            }
            Scan::Cut(at) => {
                src.advance(at);
                self.line_start = false;
                Some(garbage(at, Garbage::Malformed))
            }
            Scan::TooLong => {
                src.advance(MAX_FRAME);
                self.line_start = false;
                self.discarding = true;
                Some(garbage(MAX_FRAME, Garbage::TooLong))
            }
            Scan::Partial => {
                src.reserve(MAX_FRAME.saturating_sub(src.len()));
                None
            }
        }
    }

    fn reset(&mut self) {
        self.line_start = false;
        self.discarding = false;
    }
}

fn garbage(skipped: usize, reason: Garbage) -> Decoded<WheelEvent> {
    Decoded::Garbage { skipped, reason }
}

fn scan(src: &[u8]) -> Scan {
    let window = src.get(..MAX_FRAME).unwrap_or(src);
    let end = window
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, &b)| b == b'\n' || b == b'*');
    match end {
        Some((i, b'\n')) => Scan::LineEnd(i),
        Some((i, _)) => Scan::Cut(i),
        None if src.len() >= MAX_FRAME => Scan::TooLong,
        None => Scan::Partial,
    }
}

/// Parses one whole line (terminator included); `None` if it is not exactly a valid frame.
fn parse_frame(line: &[u8], layout: WheelLayout) -> Option<WheelEvent> {
    let body = line.strip_suffix(b"\n")?;
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let Some(star) = body.strip_prefix(b"*") else {
        return parse_bare_number(body, layout);
    };
    let (&code, rest) = star.split_first()?;
    match code {
        b'X' => parse_status(rest, layout),
        b'P' => Some(WheelEvent::Power {
            text: frame_text(rest)?,
        }),
        b'F' => Some(WheelEvent::Error {
            text: frame_text(rest)?,
        }),
        b'W' => Some(WheelEvent::Warning {
            text: frame_text(rest)?,
        }),
        c if c.is_ascii_alphabetic() => Some(WheelEvent::Other {
            code: char::from(c),
            text: frame_text(rest)?,
        }),
        _ => None,
    }
}

fn parse_bare_number(body: &[u8], layout: WheelLayout) -> Option<WheelEvent> {
    if !(1..=2).contains(&body.len()) {
        return None;
    }
    let number = u8::try_from(digits(body, body.len())?).ok()?;
    (number <= layout.max_number()).then_some(WheelEvent::WinningNumber { number })
}

fn is_separator(b: u8) -> bool {
    b == b';' || b == b':'
}

fn parse_status(rest: &[u8], layout: WheelLayout) -> Option<WheelEvent> {
    let (&sep, fields) = rest.split_first()?;
    if !is_separator(sep) {
        return None;
    }
    let mut fields = fields.split(|&b| is_separator(b));
    let mut field = || fields.next();
    let state = WheelState::from_code(u8::try_from(digits(field()?, 1)?).ok()?)?;
    let spin_count = digits(field()?, 3)?;
    let number = u8::try_from(digits(field()?, 2)?).ok()?;
    let warnings = match field()? {
        [h] => WarningFlags(u8::try_from(char::from(*h).to_digit(16)?).ok()?),
        _ => return None,
    };
    let rotor_speed = digits(field()?, 3)?;
    let direction = Direction::from_code(u8::try_from(digits(field()?, 1)?).ok()?)?;
    if field().is_some() || number > layout.max_number() {
        return None;
    }
    Some(WheelEvent::Status {
        state,
        spin_count,
        number,
        warnings,
        rotor_speed,
        direction,
    })
}

/// Exactly `width` ASCII digits, as a number.
fn digits(field: &[u8], width: usize) -> Option<u16> {
    if field.len() != width || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(field.iter().fold(0u16, |n, &d| {
        n.saturating_mul(10).saturating_add(u16::from(d - b'0'))
    }))
}

/// The text of a `*P`/`*F`/`*W` frame: after one optional separator, printable ASCII only.
fn frame_text(rest: &[u8]) -> Option<String> {
    let text = match rest.split_first() {
        Some((&b, tail)) if b == b' ' || is_separator(b) => tail,
        _ => rest,
    };
    if !text.iter().all(|&b| (b' '..=b'~').contains(&b)) {
        return None;
    }
    String::from_utf8(text.to_vec()).ok()
}

impl Decoder for WheelCodec {
    type Item = Decoded<WheelEvent>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.next_item(src))
    }

    /// At end of input a frame still waiting for its line end was cut (cable pulled, device
    /// reset): it is reported as garbage, never completed or guessed. The decoder then forgets
    /// where lines start, as the next bytes come from a new connection.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if let Some(item) = self.next_item(src) {
            return Ok(Some(item));
        }
        self.reset();
        if src.is_empty() {
            return Ok(None);
        }
        let skipped = src.len();
        src.clear();
        Ok(Some(garbage(skipped, Garbage::Malformed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Decoded<WheelEvent>> {
        let mut codec = WheelCodec::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(item) = codec.decode_eof(&mut buf).expect("never errs") {
            out.push(item);
        }
        out
    }

    #[test]
    fn the_documented_example() {
        let items = decode_all(b"*X;5;042;17;0;027;1\r\n");
        assert_eq!(
            items,
            vec![Decoded::Frame {
                frame: WheelEvent::Status {
                    state: WheelState::WinningNumber,
                    spin_count: 42,
                    number: 17,
                    warnings: WarningFlags(0),
                    rotor_speed: 27,
                    direction: Direction::CounterClockwise,
                },
                wire_len: 21,
            }]
        );
    }

    #[test]
    fn states_and_directions_round_trip_their_codes() {
        for (i, state) in WheelState::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(state.code()), i + 1);
            assert_eq!(WheelState::from_code(state.code()), Some(state));
        }
        assert_eq!(WheelState::from_code(0), None);
        assert_eq!(WheelState::from_code(7), None);
        for d in [Direction::Clockwise, Direction::CounterClockwise] {
            assert_eq!(Direction::from_code(d.code()), Some(d));
        }
        assert_eq!(Direction::from_code(2), None);
    }

    #[test]
    fn encode_wraps_counters_and_sanitises_text() {
        let status = WheelEvent::Status {
            state: WheelState::WinningNumber,
            spin_count: 1042,
            number: 3,
            warnings: WarningFlags(0xA),
            rotor_speed: 27,
            direction: Direction::CounterClockwise,
        };
        assert_eq!(status.encode(), b"*X;5;042;03;A;027;1\r\n");
        let warning = WheelEvent::Warning {
            text: "a*b\r\n".into(),
        };
        assert_eq!(warning.encode(), b"*W a?b??\r\n");
        assert_eq!(mode_command(WheelMode(5)), b"*o 5\r\n");
    }

    #[test]
    fn layouts_by_name() {
        for layout in [WheelLayout::SingleZero, WheelLayout::DoubleZero] {
            assert_eq!(layout.as_str().parse::<WheelLayout>(), Ok(layout));
        }
        assert_eq!(" European ".parse(), Ok(WheelLayout::SingleZero));
        assert_eq!("american".parse(), Ok(WheelLayout::DoubleZero));
        let err = "triple".parse::<WheelLayout>().expect_err("no such layout");
        assert!(err.to_string().contains("single-zero"), "{err}");
    }

    #[test]
    fn a_number_too_wide_is_never_read_as_another() {
        let bad = WheelEvent::WinningNumber { number: 123 }.encode();
        let mut codec = WheelCodec {
            line_start: true,
            ..WheelCodec::default()
        };
        let mut buf = BytesMut::from(&bad[..]);
        assert_eq!(
            codec.decode(&mut buf).expect("no error"),
            Some(Decoded::Garbage {
                skipped: 5,
                reason: Garbage::Malformed
            })
        );
    }
}
