//! USB HID devices through the Linux input layer (evdev): barcode / keyboard-wedge card
//! readers and USB foot pedals.
//!
//! Both kinds of device pretend to be keyboards. Plugged into a studio box as they are, a
//! barcode reader would type `KH⏎` into whatever has the keyboard focus (a console login, the
//! prompter's kiosk browser), and a PCsensor pedal would type `b`. So Croupier opens the
//! device's `/dev/input/eventN` node (through a stable udev symlink such as
//! `/dev/croupier/shoe`) and **grabs it exclusively** (`EVIOCGRAB`): from then on its
//! keystrokes reach Croupier only.
//!
//! ## What the kernel sends
//!
//! Reading the node returns `struct input_event` records. On 64-bit Linux (x86-64, aarch64:
//! a Raspberry Pi 4/5 with 64-bit Raspberry Pi OS or Debian) each is 24 bytes, little-endian:
//!
//! | bytes  | field     | meaning                                                          |
//! | ------ | --------- | ---------------------------------------------------------------- |
//! | 0–7    | `tv_sec`  | seconds of the event time                                        |
//! | 8–15   | `tv_usec` | microseconds                                                     |
//! | 16–17  | `type`    | `EV_SYN` 0, `EV_KEY` 1, `EV_MSC` 4 (scan codes), …              |
//! | 18–19  | `code`    | which key (`KEY_B` 48, `KEY_ENTER` 28, …)                        |
//! | 20–23  | `value`   | for keys: 1 down, 0 up, 2 auto-repeat                            |
//!
//! A 32-bit userland (armhf) gets 16-byte records (32-bit `tv_sec`/`tv_usec`); see
//! [`RecordLayout`]. The event time is stamped by the kernel when the USB report arrived: by
//! default on CLOCK_REALTIME, which a clock step (NTP, chrony) would bend. The adapter
//! ([`EvdevDevice::open`]) switches the device to CLOCK_MONOTONIC (`EVIOCSCLOCKID`), so stamps
//! are monotonic nanoseconds like every other pedal and reader stamp in Croupier.
//!
//! ## What Croupier makes of it (sans-IO, tested from recorded streams)
//!
//! * [`InputEventCodec`]: records → [`InputEvent`]s.
//! * [`KeyLineAssembler`]: a barcode reader's keystrokes → text lines (US keyboard layout, the
//!   default of every reader; shift handled; auto-repeats and releases ignored; Enter ends a
//!   line; lines bounded). The lines then go through the card-line format like a serial
//!   reader's lines.
//! * [`KeyPedal`]: the configured keys of a USB pedal → pedal [`Edge`]s with the kernel's time.
//!
//! The thin async adapters are [`EvdevDevice`] (open, grab, monotonic clock, read),
//! [`EvdevLineReader`] and [`EvdevPedal`].

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use input_linux::EvdevHandle;
use tokio_util::codec::Decoder;

use crate::model::monotonic_ns;
use crate::pedal::{Edge, EdgeSource};

// Event types and codes from `linux/input-event-codes.h` that this module uses.
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_MSC: u16 = 0x04;
pub const SYN_REPORT: u16 = 0;
/// The kernel's buffer for this reader overflowed and events were lost.
pub const SYN_DROPPED: u16 = 3;
pub const MSC_SCAN: u16 = 4;

pub const KEY_TAB: u16 = 15;
pub const KEY_ENTER: u16 = 28;
pub const KEY_LEFTCTRL: u16 = 29;
pub const KEY_LEFTSHIFT: u16 = 42;
pub const KEY_RIGHTSHIFT: u16 = 54;
pub const KEY_LEFTALT: u16 = 56;
pub const KEY_CAPSLOCK: u16 = 58;
pub const KEY_NUMLOCK: u16 = 69;
pub const KEY_SCROLLLOCK: u16 = 70;
pub const KEY_KPENTER: u16 = 96;
pub const KEY_RIGHTCTRL: u16 = 97;
pub const KEY_RIGHTALT: u16 = 100;
pub const KEY_LEFTMETA: u16 = 125;
pub const KEY_RIGHTMETA: u16 = 126;
pub const KEY_B: u16 = 48;
pub const KEY_PAGEDOWN: u16 = 109;

/// The kind of an input event (`type` of `struct input_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `EV_SYN`: frame markers (`SYN_REPORT`) and overflow notices (`SYN_DROPPED`).
    Syn,
    /// `EV_KEY`: keys and buttons.
    Key,
    /// `EV_REL`: relative axes (mice).
    Rel,
    /// `EV_ABS`: absolute axes.
    Abs,
    /// `EV_MSC`: miscellany; `MSC_SCAN` carries the HID usage of the key that follows.
    Msc,
    /// `EV_LED`: keyboard LEDs.
    Led,
    /// `EV_REP`: auto-repeat settings.
    Rep,
    /// Anything else, by number.
    Other(u16),
}

impl EventKind {
    pub const fn from_raw(raw: u16) -> Self {
        match raw {
            0x00 => EventKind::Syn,
            0x01 => EventKind::Key,
            0x02 => EventKind::Rel,
            0x03 => EventKind::Abs,
            0x04 => EventKind::Msc,
            0x11 => EventKind::Led,
            0x14 => EventKind::Rep,
            other => EventKind::Other(other),
        }
    }

    pub const fn raw(self) -> u16 {
        match self {
            EventKind::Syn => 0x00,
            EventKind::Key => 0x01,
            EventKind::Rel => 0x02,
            EventKind::Abs => 0x03,
            EventKind::Msc => 0x04,
            EventKind::Led => 0x11,
            EventKind::Rep => 0x14,
            EventKind::Other(other) => other,
        }
    }
}

/// One `struct input_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    /// The kernel's stamp in nanoseconds, on the clock the device was set to: CLOCK_MONOTONIC
    /// once [`EvdevDevice::open`] has set it (the default of a fresh device is CLOCK_REALTIME,
    /// nanoseconds since 1970). Microsecond resolution.
    pub time_ns: u64,
    pub kind: EventKind,
    pub code: u16,
    pub value: i32,
}

/// Key values of `EV_KEY` events.
pub const KEY_VALUE_UP: i32 = 0;
pub const KEY_VALUE_DOWN: i32 = 1;
pub const KEY_VALUE_REPEAT: i32 = 2;

impl InputEvent {
    pub const fn new(time_ns: u64, kind: EventKind, code: u16, value: i32) -> Self {
        Self {
            time_ns,
            kind,
            code,
            value,
        }
    }

    /// A key event (`EV_KEY`).
    pub const fn key(time_ns: u64, code: u16, value: i32) -> Self {
        Self::new(time_ns, EventKind::Key, code, value)
    }

    /// Writes the record as the kernel would (for recordings, simulators and tests).
    pub fn encode(&self, layout: RecordLayout, out: &mut Vec<u8>) {
        let sec = self.time_ns / 1_000_000_000;
        let usec = (self.time_ns % 1_000_000_000) / 1_000;
        match layout {
            RecordLayout::Long64 => {
                out.extend_from_slice(&sec.to_le_bytes());
                out.extend_from_slice(&usec.to_le_bytes());
            }
            RecordLayout::Long32 => {
                out.extend_from_slice(&u32::try_from(sec).unwrap_or(u32::MAX).to_le_bytes());
                out.extend_from_slice(&u32::try_from(usec).unwrap_or(0).to_le_bytes());
            }
        }
        out.extend_from_slice(&self.kind.raw().to_le_bytes());
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.value.to_le_bytes());
    }
}

/// The size of `struct input_event`'s time fields, which follows the userland's `long`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordLayout {
    /// 64-bit `tv_sec` / `tv_usec`: 24-byte records (x86-64, aarch64).
    Long64,
    /// 32-bit `tv_sec` / `tv_usec`: 16-byte records (armhf, i386).
    Long32,
}

impl RecordLayout {
    /// The layout of the machine this was built for.
    pub const NATIVE: RecordLayout = if cfg!(target_pointer_width = "64") {
        RecordLayout::Long64
    } else {
        RecordLayout::Long32
    };

    pub const fn record_len(self) -> usize {
        match self {
            RecordLayout::Long64 => 24,
            RecordLayout::Long32 => 16,
        }
    }

    /// Parses one record; `None` if `bytes` is not exactly one record long. Every record of
    /// the right length parses (there is no invalid `input_event`); a negative time counts as
    /// zero.
    pub fn parse(self, bytes: &[u8]) -> Option<InputEvent> {
        if bytes.len() != self.record_len() {
            return None;
        }
        let (sec, usec, rest) = match self {
            RecordLayout::Long64 => (
                i64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?),
                i64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?),
                bytes.get(16..24)?,
            ),
            // The 32-bit kernel ABI stores these as unsigned longs.
            RecordLayout::Long32 => (
                i64::from(u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?)),
                i64::from(u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?)),
                bytes.get(8..16)?,
            ),
        };
        let kind = u16::from_le_bytes(rest.get(0..2)?.try_into().ok()?);
        let code = u16::from_le_bytes(rest.get(2..4)?.try_into().ok()?);
        let value = i32::from_le_bytes(rest.get(4..8)?.try_into().ok()?);
        let sec = u64::try_from(sec).unwrap_or(0);
        let usec = u64::try_from(usec).unwrap_or(0);
        Some(InputEvent {
            time_ns: sec
                .saturating_mul(1_000_000_000)
                .saturating_add(usec.saturating_mul(1_000)),
            kind: EventKind::from_raw(kind),
            code,
            value,
        })
    }
}

/// A `tokio_util` decoder of `input_event` records. A partial record waits for its rest
/// (the kernel only ever returns whole records, but a recording or a pipe may split them).
#[derive(Debug, Clone, Copy)]
pub struct InputEventCodec {
    layout: RecordLayout,
}

impl InputEventCodec {
    pub const fn new(layout: RecordLayout) -> Self {
        Self { layout }
    }
}

impl Default for InputEventCodec {
    fn default() -> Self {
        Self::new(RecordLayout::NATIVE)
    }
}

impl Decoder for InputEventCodec {
    type Item = InputEvent;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<InputEvent>, std::io::Error> {
        let len = self.layout.record_len();
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let event = self.layout.parse(src.get(..len).unwrap_or_default());
        src.advance(len);
        Ok(event)
    }
}

/// Parses a whole recording (a capture of `/dev/input/eventN`); a trailing partial record is
/// ignored.
pub fn parse_records(layout: RecordLayout, bytes: &[u8]) -> Vec<InputEvent> {
    bytes
        .chunks_exact(layout.record_len())
        .filter_map(|record| layout.parse(record))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Key names
// ---------------------------------------------------------------------------------------------

/// Linux key names (as `evtest` prints them) accepted in the config, with their codes.
const KEY_NAMES: &[(&str, u16)] = &[
    ("KEY_ESC", 1),
    ("KEY_1", 2),
    ("KEY_2", 3),
    ("KEY_3", 4),
    ("KEY_4", 5),
    ("KEY_5", 6),
    ("KEY_6", 7),
    ("KEY_7", 8),
    ("KEY_8", 9),
    ("KEY_9", 10),
    ("KEY_0", 11),
    ("KEY_MINUS", 12),
    ("KEY_EQUAL", 13),
    ("KEY_BACKSPACE", 14),
    ("KEY_TAB", 15),
    ("KEY_Q", 16),
    ("KEY_W", 17),
    ("KEY_E", 18),
    ("KEY_R", 19),
    ("KEY_T", 20),
    ("KEY_Y", 21),
    ("KEY_U", 22),
    ("KEY_I", 23),
    ("KEY_O", 24),
    ("KEY_P", 25),
    ("KEY_LEFTBRACE", 26),
    ("KEY_RIGHTBRACE", 27),
    ("KEY_ENTER", 28),
    ("KEY_LEFTCTRL", 29),
    ("KEY_A", 30),
    ("KEY_S", 31),
    ("KEY_D", 32),
    ("KEY_F", 33),
    ("KEY_G", 34),
    ("KEY_H", 35),
    ("KEY_J", 36),
    ("KEY_K", 37),
    ("KEY_L", 38),
    ("KEY_SEMICOLON", 39),
    ("KEY_APOSTROPHE", 40),
    ("KEY_GRAVE", 41),
    ("KEY_LEFTSHIFT", 42),
    ("KEY_BACKSLASH", 43),
    ("KEY_Z", 44),
    ("KEY_X", 45),
    ("KEY_C", 46),
    ("KEY_V", 47),
    ("KEY_B", 48),
    ("KEY_N", 49),
    ("KEY_M", 50),
    ("KEY_COMMA", 51),
    ("KEY_DOT", 52),
    ("KEY_SLASH", 53),
    ("KEY_RIGHTSHIFT", 54),
    ("KEY_KPASTERISK", 55),
    ("KEY_LEFTALT", 56),
    ("KEY_SPACE", 57),
    ("KEY_CAPSLOCK", 58),
    ("KEY_F1", 59),
    ("KEY_F2", 60),
    ("KEY_F3", 61),
    ("KEY_F4", 62),
    ("KEY_F5", 63),
    ("KEY_F6", 64),
    ("KEY_F7", 65),
    ("KEY_F8", 66),
    ("KEY_F9", 67),
    ("KEY_F10", 68),
    ("KEY_NUMLOCK", 69),
    ("KEY_SCROLLLOCK", 70),
    ("KEY_KP7", 71),
    ("KEY_KP8", 72),
    ("KEY_KP9", 73),
    ("KEY_KPMINUS", 74),
    ("KEY_KP4", 75),
    ("KEY_KP5", 76),
    ("KEY_KP6", 77),
    ("KEY_KPPLUS", 78),
    ("KEY_KP1", 79),
    ("KEY_KP2", 80),
    ("KEY_KP3", 81),
    ("KEY_KP0", 82),
    ("KEY_KPDOT", 83),
    ("KEY_F11", 87),
    ("KEY_F12", 88),
    ("KEY_KPENTER", 96),
    ("KEY_RIGHTCTRL", 97),
    ("KEY_KPSLASH", 98),
    ("KEY_RIGHTALT", 100),
    ("KEY_HOME", 102),
    ("KEY_UP", 103),
    ("KEY_PAGEUP", 104),
    ("KEY_LEFT", 105),
    ("KEY_RIGHT", 106),
    ("KEY_END", 107),
    ("KEY_DOWN", 108),
    ("KEY_PAGEDOWN", 109),
    ("KEY_INSERT", 110),
    ("KEY_DELETE", 111),
    ("KEY_MUTE", 113),
    ("KEY_VOLUMEDOWN", 114),
    ("KEY_VOLUMEUP", 115),
    ("KEY_LEFTMETA", 125),
    ("KEY_RIGHTMETA", 126),
    ("KEY_NEXTSONG", 163),
    ("KEY_PLAYPAUSE", 164),
    ("KEY_PREVIOUSSONG", 165),
    ("KEY_F13", 183),
    ("KEY_F14", 184),
    ("KEY_F15", 185),
    ("KEY_F16", 186),
    ("KEY_F17", 187),
    ("KEY_F18", 188),
    ("KEY_F19", 189),
    ("KEY_F20", 190),
    ("KEY_F21", 191),
    ("KEY_F22", 192),
    ("KEY_F23", 193),
    ("KEY_F24", 194),
    ("BTN_0", 0x100),
    ("BTN_1", 0x101),
    ("BTN_2", 0x102),
    ("BTN_3", 0x103),
    ("BTN_4", 0x104),
    ("BTN_5", 0x105),
    ("BTN_6", 0x106),
    ("BTN_7", 0x107),
    ("BTN_8", 0x108),
    ("BTN_9", 0x109),
    ("BTN_LEFT", 0x110),
    ("BTN_RIGHT", 0x111),
    ("BTN_MIDDLE", 0x112),
];

/// The highest key code the kernel defines (`KEY_MAX`).
pub const KEY_MAX: u16 = 0x2ff;

/// The code of a key given by its Linux name (`KEY_B`, `key_pagedown`, `BTN_0`) or by its
/// number (`48`).
pub fn key_code(name: &str) -> Option<u16> {
    let name = name.trim();
    if let Ok(code) = name.parse::<u16>() {
        return (code <= KEY_MAX).then_some(code);
    }
    KEY_NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|&(_, code)| code)
}

/// The Linux name of a key code, where this module knows it.
pub fn key_name(code: u16) -> Option<&'static str> {
    KEY_NAMES
        .iter()
        .find(|&&(_, known)| known == code)
        .map(|&(name, _)| name)
}

/// What a key types on a US keyboard layout, unshifted and shifted.
fn us_layout(code: u16) -> Option<(char, char)> {
    Some(match code {
        2 => ('1', '!'),
        3 => ('2', '@'),
        4 => ('3', '#'),
        5 => ('4', '$'),
        6 => ('5', '%'),
        7 => ('6', '^'),
        8 => ('7', '&'),
        9 => ('8', '*'),
        10 => ('9', '('),
        11 => ('0', ')'),
        12 => ('-', '_'),
        13 => ('=', '+'),
        16 => ('q', 'Q'),
        17 => ('w', 'W'),
        18 => ('e', 'E'),
        19 => ('r', 'R'),
        20 => ('t', 'T'),
        21 => ('y', 'Y'),
        22 => ('u', 'U'),
        23 => ('i', 'I'),
        24 => ('o', 'O'),
        25 => ('p', 'P'),
        26 => ('[', '{'),
        27 => (']', '}'),
        30 => ('a', 'A'),
        31 => ('s', 'S'),
        32 => ('d', 'D'),
        33 => ('f', 'F'),
        34 => ('g', 'G'),
        35 => ('h', 'H'),
        36 => ('j', 'J'),
        37 => ('k', 'K'),
        38 => ('l', 'L'),
        39 => (';', ':'),
        40 => ('\'', '"'),
        41 => ('`', '~'),
        43 => ('\\', '|'),
        44 => ('z', 'Z'),
        45 => ('x', 'X'),
        46 => ('c', 'C'),
        47 => ('v', 'V'),
        48 => ('b', 'B'),
        49 => ('n', 'N'),
        50 => ('m', 'M'),
        51 => (',', '<'),
        52 => ('.', '>'),
        53 => ('/', '?'),
        57 => (' ', ' '),
        // The keypad types the same with or without shift (num lock assumed on: readers
        // that use the keypad send digits).
        55 => ('*', '*'),
        71 => ('7', '7'),
        72 => ('8', '8'),
        73 => ('9', '9'),
        74 => ('-', '-'),
        75 => ('4', '4'),
        76 => ('5', '5'),
        77 => ('6', '6'),
        78 => ('+', '+'),
        79 => ('1', '1'),
        80 => ('2', '2'),
        81 => ('3', '3'),
        82 => ('0', '0'),
        83 => ('.', '.'),
        98 => ('/', '/'),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Barcode / keyboard-wedge readers: keys to lines
// ---------------------------------------------------------------------------------------------

/// Settings of a keyboard-wedge reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLineConfig {
    /// The longest line kept (characters). Longer lines are dropped whole, never cut: a cut
    /// barcode could be another valid code. 64 by default (a card barcode is 2–30).
    pub max_len: usize,
    /// The longest pause between two keys of one scan. A reader types a whole code within
    /// milliseconds; a partial line older than this was cut (reader unplugged, a stray key)
    /// and is dropped rather than glued to the next scan. 500 ms by default.
    pub max_key_gap: Duration,
    /// Tab ends a line too (readers configured with a Tab suffix). Off by default.
    pub end_on_tab: bool,
}

impl Default for KeyLineConfig {
    fn default() -> Self {
        Self {
            max_len: 64,
            max_key_gap: Duration::from_millis(500),
            end_on_tab: false,
        }
    }
}

/// A line a reader typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedLine {
    pub text: String,
    /// Kernel stamp of the line's first key (when the scan began).
    pub first_key_ns: u64,
    /// Kernel stamp of the Enter that ended it.
    pub end_ns: u64,
}

/// What the assembler made of a stretch of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLine {
    Line(ScannedLine),
    /// Keys that made no trustworthy line; reported (counted, logged), never guessed at.
    Dropped {
        reason: LineDrop,
        at_ns: u64,
    },
}

/// Why typed keys were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineDrop {
    /// Longer than [`KeyLineConfig::max_len`].
    TooLong { len: usize },
    /// A key with no US-layout character (or typed with Ctrl/Alt/Meta held): the reader is
    /// probably set to another keyboard layout or sends control codes.
    UnmappedKey { code: u16 },
    /// The kernel dropped events (`SYN_DROPPED`): the line may miss characters.
    EventsLost,
    /// A partial line with no key for longer than [`KeyLineConfig::max_key_gap`].
    Stale { partial: String },
}

// Modifier bits.
const LEFT_SHIFT: u8 = 1;
const RIGHT_SHIFT: u8 = 2;
const CTRL_ALT_META: u8 = 0b1111_1100;

fn modifier_bit(code: u16) -> Option<u8> {
    Some(match code {
        KEY_LEFTSHIFT => LEFT_SHIFT,
        KEY_RIGHTSHIFT => RIGHT_SHIFT,
        KEY_LEFTCTRL => 4,
        KEY_RIGHTCTRL => 8,
        KEY_LEFTALT => 16,
        KEY_RIGHTALT => 32,
        KEY_LEFTMETA => 64,
        KEY_RIGHTMETA => 128,
        _ => return None,
    })
}

/// Turns a keyboard-wedge reader's key events into lines. Sans-IO.
///
/// * Only key-down events type; releases and auto-repeats (value 2) are ignored. Shift is
///   tracked from its own down/up events (readers press shift around each capital).
/// * Lock keys (Caps, Num, Scroll Lock) are ignored: the device is grabbed, so they toggle
///   nothing, and readers send characters with shift.
/// * Enter (main or keypad) ends a line; an empty line is ignored.
#[derive(Debug, Clone)]
pub struct KeyLineAssembler {
    config: KeyLineConfig,
    max_gap_ns: u64,
    modifiers: u8,
    text: String,
    len: usize,
    first_ns: Option<u64>,
    last_ns: u64,
    unmapped: Option<u16>,
}

impl KeyLineAssembler {
    pub fn new(config: KeyLineConfig) -> Self {
        Self {
            config,
            max_gap_ns: u64::try_from(config.max_key_gap.as_nanos()).unwrap_or(u64::MAX),
            modifiers: 0,
            text: String::new(),
            len: 0,
            first_ns: None,
            last_ns: 0,
            unmapped: None,
        }
    }

    /// Forgets a partial line and the modifier state (after a reopen).
    pub fn reset(&mut self) {
        self.modifiers = 0;
        self.clear_line();
    }

    fn clear_line(&mut self) -> String {
        self.len = 0;
        self.first_ns = None;
        self.unmapped = None;
        std::mem::take(&mut self.text)
    }

    /// Feeds one event; returns a line (or a dropped one) when this event ends it.
    pub fn push(&mut self, event: &InputEvent) -> Option<KeyLine> {
        match event.kind {
            EventKind::Syn if event.code == SYN_DROPPED => {
                // Lost events may include a shift release: start from a clean state.
                let had_partial = self.first_ns.is_some();
                self.reset();
                had_partial.then_some(KeyLine::Dropped {
                    reason: LineDrop::EventsLost,
                    at_ns: event.time_ns,
                })
            }
            EventKind::Key => self.key(event.code, event.value, event.time_ns),
            _ => None,
        }
    }

    fn key(&mut self, code: u16, value: i32, at: u64) -> Option<KeyLine> {
        if let Some(bit) = modifier_bit(code) {
            match value {
                KEY_VALUE_DOWN => self.modifiers |= bit,
                KEY_VALUE_UP => self.modifiers &= !bit,
                _ => {}
            }
            return None;
        }
        if value != KEY_VALUE_DOWN || matches!(code, KEY_CAPSLOCK | KEY_NUMLOCK | KEY_SCROLLLOCK) {
            return None;
        }
        let stale = self
            .first_ns
            .filter(|_| at.saturating_sub(self.last_ns) > self.max_gap_ns)
            .map(|_| KeyLine::Dropped {
                reason: LineDrop::Stale {
                    partial: self.clear_line(),
                },
                at_ns: at,
            });
        let ends_line =
            code == KEY_ENTER || code == KEY_KPENTER || (code == KEY_TAB && self.config.end_on_tab);
        if ends_line {
            let line = self.finish(at);
            return stale.or(line);
        }
        self.first_ns.get_or_insert(at);
        self.last_ns = at;
        self.len = self.len.saturating_add(1);
        let shifted = self.modifiers & (LEFT_SHIFT | RIGHT_SHIFT) != 0;
        match us_layout(code) {
            Some(_) if self.modifiers & CTRL_ALT_META != 0 => {
                self.unmapped.get_or_insert(code);
            }
            Some((plain, shift)) => {
                // Bounded: past the limit the line is only counted.
                if self.len <= self.config.max_len {
                    self.text.push(if shifted { shift } else { plain });
                }
            }
            None => {
                self.unmapped.get_or_insert(code);
            }
        }
        stale
    }

    fn finish(&mut self, at: u64) -> Option<KeyLine> {
        let first_key_ns = self.first_ns?;
        let len = self.len;
        let unmapped = self.unmapped;
        let text = self.clear_line();
        let reason = match unmapped {
            Some(code) => LineDrop::UnmappedKey { code },
            None if len > self.config.max_len => LineDrop::TooLong { len },
            None => {
                return Some(KeyLine::Line(ScannedLine {
                    text,
                    first_key_ns,
                    end_ns: at,
                }))
            }
        };
        Some(KeyLine::Dropped { reason, at_ns: at })
    }
}

// ---------------------------------------------------------------------------------------------
// USB HID pedals: keys to edges
// ---------------------------------------------------------------------------------------------

/// A USB foot pedal that presents itself as a keyboard: the configured keys are the pedal.
///
/// Factory defaults: PCsensor / iKKEGOL single pedals (USB `0c45:7403`, `413d:2107`,
/// `1a86:e026`, `3553:b001`) type `b` (`KEY_B`; their three-pedal models type `a`, `b`, `c`),
/// and page-turner pedals send `KEY_PAGEDOWN`. VEC Infinity pedals send `BTN_0`–`BTN_2` and
/// need `keys = ["BTN_1"]` (the middle pedal). Find a pedal's keys with `evtest`.
///
/// With several keys configured, the pedal is down while any of them is down. Auto-repeat
/// (value 2) is ignored: the state machine times long presses itself.
#[derive(Debug, Clone)]
pub struct KeyPedal {
    codes: Vec<u16>,
    held: Vec<u16>,
}

impl Default for KeyPedal {
    fn default() -> Self {
        Self::new(Self::DEFAULT_KEYS.to_vec())
    }
}

impl KeyPedal {
    /// `KEY_B` and `KEY_PAGEDOWN`.
    pub const DEFAULT_KEYS: [u16; 2] = [KEY_B, KEY_PAGEDOWN];

    pub fn new(codes: Vec<u16>) -> Self {
        Self {
            codes,
            held: Vec::new(),
        }
    }

    /// From config names (`keys = ["KEY_B", "BTN_0", "48"]`).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, EvdevError> {
        if names.is_empty() {
            return Err(EvdevError::NoKeys);
        }
        names
            .iter()
            .map(|name| {
                key_code(name.as_ref()).ok_or_else(|| EvdevError::UnknownKey {
                    name: name.as_ref().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    pub fn codes(&self) -> &[u16] {
        &self.codes
    }

    pub fn is_pressed(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes the keys that were down when the device was opened (`EVIOCGKEY`).
    pub fn seed(&mut self, down: impl IntoIterator<Item = u16>) {
        self.held = down
            .into_iter()
            .filter(|code| self.codes.contains(code))
            .collect();
    }

    /// Feeds one event; returns an edge when the pedal's level changes.
    pub fn push(&mut self, event: &InputEvent) -> Option<Edge> {
        let at_ns = event.time_ns;
        match event.kind {
            EventKind::Syn if event.code == SYN_DROPPED && self.is_pressed() => {
                // The release may be among the lost events. Taking the pedal as up is the
                // safe side: a later real release is then a no-op, a press still counts.
                self.held.clear();
                Some(Edge::release(at_ns))
            }
            EventKind::Key if self.codes.contains(&event.code) => match event.value {
                KEY_VALUE_DOWN if !self.held.contains(&event.code) => {
                    let was_up = self.held.is_empty();
                    self.held.push(event.code);
                    was_up.then_some(Edge::press(at_ns))
                }
                KEY_VALUE_UP if self.held.contains(&event.code) => {
                    self.held.retain(|&held| held != event.code);
                    self.held.is_empty().then_some(Edge::release(at_ns))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The thin async adapter
// ---------------------------------------------------------------------------------------------

/// Why an input device could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EvdevError {
    #[error(
        "input device {path} does not exist: is the reader plugged in? check the udev \
         symlink with `ls -l /dev/croupier/` and `udevadm info {path}`; Croupier retries"
    )]
    NotFound { path: PathBuf },
    #[error(
        "no permission to open {path}: install Croupier's udev rule (it gives the device to \
         the croupier group) or add the croupier user to the `input` group, then replug"
    )]
    PermissionDenied { path: PathBuf },
    #[error(
        "{path} is grabbed by another process (another Croupier, a kiosk or a desktop \
         session): stop it; `fuser -v {path}` shows who holds it"
    )]
    Busy { path: PathBuf },
    #[error(
        "{path} is not an evdev input device ({source}): point the config at \
         /dev/input/eventN or its /dev/croupier/ symlink, not hidraw, mouse or js nodes"
    )]
    NotInputDevice {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot switch {path} to monotonic timestamps (EVIOCSCLOCKID, Linux 3.4+): {source}")]
    Clock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} went away (unplugged?): Croupier reopens it when it returns")]
    Gone { path: PathBuf },
    #[error("reading {path} failed: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown key name {name:?}: use a Linux key name such as KEY_B, KEY_PAGEDOWN or BTN_0 (as `evtest` prints them), or the key's number")]
    UnknownKey { name: String },
    #[error("no pedal keys configured: list at least one, e.g. keys = [\"KEY_B\"]")]
    NoKeys,
}

impl EvdevError {
    /// Maps an `open(2)` failure to what the technician should do.
    pub fn from_open(path: &Path, err: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match err.kind() {
            std::io::ErrorKind::NotFound => EvdevError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => EvdevError::PermissionDenied { path },
            _ if err.raw_os_error() == Some(nix::libc::ENODEV) => EvdevError::NotFound { path },
            _ => EvdevError::Open { path, source: err },
        }
    }

    /// Maps an `EVIOCGRAB` failure.
    pub fn from_grab(path: &Path, err: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match err.raw_os_error() {
            Some(nix::libc::EBUSY) => EvdevError::Busy { path },
            _ => EvdevError::NotInputDevice { path, source: err },
        }
    }

    /// Maps a `read(2)` failure: ENODEV is the kernel's word for "unplugged".
    pub fn from_read(path: &Path, err: std::io::Error) -> Self {
        let path = path.to_path_buf();
        match err.raw_os_error() {
            Some(nix::libc::ENODEV) => EvdevError::Gone { path },
            _ => EvdevError::Read { path, source: err },
        }
    }
}

/// An opened, grabbed input device with monotonic timestamps.
#[derive(Debug)]
pub struct EvdevDevice {
    // tokio's safe way to register a non-blocking descriptor we own with the reactor
    // (`AsyncFd`'s constructors are `unsafe` since tokio 1.54, and this crate forbids unsafe
    // code). Only `read` and readiness are used, which an evdev node supports like a pipe.
    fd: tokio::net::unix::pipe::Receiver,
    path: PathBuf,
    name: String,
    codec: InputEventCodec,
    buf: BytesMut,
}

impl EvdevDevice {
    /// Opens `path` (`/dev/input/eventN` or a udev symlink), switches its stamps to
    /// CLOCK_MONOTONIC and grabs it exclusively. Call from within a tokio runtime. The grab
    /// ends when this is dropped.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EvdevError> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| EvdevError::from_open(&path, e))?;
        let handle = EvdevHandle::new(file.as_fd());
        // EVIOCGVERSION answers only on evdev nodes: a clear error for a wrong path.
        handle
            .driver_version()
            .map_err(|source| EvdevError::NotInputDevice {
                path: path.clone(),
                source,
            })?;
        handle
            .set_clock_id(nix::libc::CLOCK_MONOTONIC)
            .map_err(|source| EvdevError::Clock {
                path: path.clone(),
                source,
            })?;
        handle
            .grab(true)
            .map_err(|e| EvdevError::from_grab(&path, e))?;
        let name = handle
            .device_name()
            .map(|raw| {
                String::from_utf8_lossy(&raw)
                    .trim_end_matches('\0')
                    .to_owned()
            })
            .unwrap_or_default();
        let fd = tokio::net::unix::pipe::Receiver::from_file_unchecked(file).map_err(|source| {
            EvdevError::Open {
                path: path.clone(),
                source,
            }
        })?;
        tracing::info!(path = %path.display(), %name, "input device opened and grabbed");
        Ok(Self {
            fd,
            path,
            name,
            codec: InputEventCodec::default(),
            buf: BytesMut::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device's name (`EVIOCGNAME`), e.g. "PCsensor FootSwitch Keyboard".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keys that are down now (`EVIOCGKEY`), if the kernel says.
    pub fn keys_down(&self) -> Option<Vec<u16>> {
        let mut bits = [0u8; (KEY_MAX as usize) / 8 + 1];
        EvdevHandle::new(self.fd.as_fd())
            .key_state(&mut bits)
            .ok()?;
        Some(
            (0..=KEY_MAX)
                .filter(|&code| {
                    bits.get(usize::from(code / 8))
                        .is_some_and(|byte| byte & (1 << (code % 8)) != 0)
                })
                .collect(),
        )
    }

    /// Waits for events and returns those of one read. Cancel-safe.
    pub async fn read_events(&mut self) -> Result<Vec<InputEvent>, EvdevError> {
        let mut chunk = [0u8; 64 * 24];
        loop {
            self.fd
                .readable()
                .await
                .map_err(|e| EvdevError::from_read(&self.path, e))?;
            match self.fd.try_read(&mut chunk) {
                Ok(0) => {
                    return Err(EvdevError::Gone {
                        path: self.path.clone(),
                    })
                }
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    let mut events = Vec::new();
                    while let Ok(Some(event)) = self.codec.decode(&mut self.buf) {
                        events.push(event);
                    }
                    if !events.is_empty() {
                        return Ok(events);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(EvdevError::from_read(&self.path, e)),
            }
        }
    }
}

/// A keyboard-wedge reader: lines from a grabbed input device.
#[derive(Debug)]
pub struct EvdevLineReader {
    device: EvdevDevice,
    lines: KeyLineAssembler,
    ready: VecDeque<KeyLine>,
}

impl EvdevLineReader {
    pub fn open(path: impl AsRef<Path>, config: KeyLineConfig) -> Result<Self, EvdevError> {
        Ok(Self {
            device: EvdevDevice::open(path)?,
            lines: KeyLineAssembler::new(config),
            ready: VecDeque::new(),
        })
    }

    pub fn device(&self) -> &EvdevDevice {
        &self.device
    }

    /// The next line (or dropped line). Cancel-safe.
    pub async fn next_line(&mut self) -> Result<KeyLine, EvdevError> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(line);
            }
            for event in self.device.read_events().await? {
                self.ready.extend(self.lines.push(&event));
            }
        }
    }
}

/// A USB HID pedal on a grabbed input device: a pedal [`EdgeSource`].
#[derive(Debug)]
pub struct EvdevPedal {
    device: EvdevDevice,
    keys: KeyPedal,
    opened: (bool, u64),
}

impl EvdevPedal {
    pub fn open(path: impl AsRef<Path>, mut keys: KeyPedal) -> Result<Self, EvdevError> {
        let device = EvdevDevice::open(path)?;
        let at = monotonic_ns();
        if let Some(down) = device.keys_down() {
            keys.seed(down);
        }
        Ok(Self {
            opened: (keys.is_pressed(), at),
            device,
            keys,
        })
    }

    pub fn device(&self) -> &EvdevDevice {
        &self.device
    }
}

impl EdgeSource for EvdevPedal {
    type Error = EvdevError;

    async fn next_edges(&mut self) -> Result<Vec<Edge>, EvdevError> {
        loop {
            let events = self.device.read_events().await?;
            let edges: Vec<Edge> = events.iter().filter_map(|e| self.keys.push(e)).collect();
            if !edges.is_empty() {
                return Ok(edges);
            }
        }
    }

    fn level_at_open(&self) -> Option<(bool, u64)> {
        Some(self.opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_match_the_kernel_header() {
        // Spot checks against linux/input-event-codes.h.
        assert_eq!(key_code("KEY_B"), Some(48));
        assert_eq!(key_code("key_pagedown"), Some(109));
        assert_eq!(key_code("BTN_0"), Some(0x100));
        assert_eq!(key_code("KEY_F24"), Some(194));
        assert_eq!(key_code("48"), Some(48));
        assert_eq!(key_code("KEY_NOPE"), None);
        assert_eq!(key_code("70000"), None);
        assert_eq!(key_name(28), Some("KEY_ENTER"));
        // Every name in the table is unique and round-trips.
        for &(name, code) in KEY_NAMES {
            assert_eq!(key_code(name), Some(code), "{name}");
            assert_eq!(key_name(code), Some(name), "{name}");
        }
    }

    #[test]
    fn records_round_trip_in_both_layouts() {
        let event = InputEvent::key(81_234_567_890_000, KEY_B, KEY_VALUE_DOWN);
        for layout in [RecordLayout::Long64, RecordLayout::Long32] {
            let mut bytes = Vec::new();
            event.encode(layout, &mut bytes);
            assert_eq!(bytes.len(), layout.record_len());
            assert_eq!(layout.parse(&bytes), Some(event));
            assert_eq!(layout.parse(&bytes[1..]), None);
        }
    }

    #[test]
    fn codec_waits_for_the_rest_of_a_record() {
        let mut bytes = Vec::new();
        InputEvent::key(1_000, KEY_ENTER, KEY_VALUE_DOWN).encode(RecordLayout::Long64, &mut bytes);
        let mut codec = InputEventCodec::new(RecordLayout::Long64);
        let mut buf = BytesMut::from(&bytes[..10]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&bytes[10..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(InputEvent::key(1_000, KEY_ENTER, KEY_VALUE_DOWN))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn errors_say_what_to_do() {
        let path = Path::new("/dev/croupier/shoe");
        let denied =
            EvdevError::from_open(path, std::io::Error::from_raw_os_error(nix::libc::EACCES));
        assert!(matches!(denied, EvdevError::PermissionDenied { .. }));
        assert!(denied.to_string().contains("udev rule"));
        let missing =
            EvdevError::from_open(path, std::io::Error::from_raw_os_error(nix::libc::ENOENT));
        assert!(missing.to_string().contains("plugged in"));
        let busy = EvdevError::from_grab(path, std::io::Error::from_raw_os_error(nix::libc::EBUSY));
        assert!(busy.to_string().contains("grabbed by another process"));
        let gone =
            EvdevError::from_read(path, std::io::Error::from_raw_os_error(nix::libc::ENODEV));
        assert!(matches!(gone, EvdevError::Gone { .. }));
        assert!(KeyPedal::from_names::<&str>(&[]).is_err());
        let unknown = KeyPedal::from_names(&["KEY_FOOT"]).unwrap_err();
        assert!(unknown.to_string().contains("evtest"));
    }

    #[test]
    fn opening_a_missing_device_is_a_clear_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let err = EvdevDevice::open("/nonexistent/croupier/event99").unwrap_err();
        assert!(matches!(err, EvdevError::NotFound { .. }), "{err}");
        // A file that is no input device.
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = EvdevDevice::open(file.path()).unwrap_err();
        assert!(matches!(err, EvdevError::NotInputDevice { .. }), "{err}");
    }
}
