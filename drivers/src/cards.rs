//! Card shoes and card readers that send one card per line over a serial port.
//!
//! # What the technician needs to know
//!
//! A card shoe or a barcode reader on a USB-serial adapter sends one line per card it reads,
//! usually at **9600 baud, 8N1**, each line ending in CR LF (a bare LF is accepted too). Watch it
//! with `picocom -b 9600 /dev/croupier/shoe` while drawing a card. What a line holds depends on
//! the reader, so the format is configurable per shoe:
//!
//! | `format`    | a line is                                       | e.g.                       |
//! | ----------- | ----------------------------------------------- | -------------------------- |
//! | `default`   | rank `A 2-9 T J Q K` (or `10`), then suit `S H D C` | `KH`, `TD`, `10D`, `as` |
//! | `regex`     | whatever the `pattern` with named groups `rank` and `suit` matches, whole line | `pattern = '(?P<suit>[SHDC])-(?P<rank>10\|[2-9AJQK])'` reads `H-10` |
//! | `barcode`   | a barcode looked up in the `barcodes` table file | `0123456789012`           |
//!
//! A `burn` marker (a text such as `BURN`, or the barcode of the burn card) makes the shoe
//! report a burn card instead. A line that is no card under the format is reported as
//! unreadable, with its text: the driver never guesses a card.
//!
//! # The barcode table
//!
//! Casino decks are barcoded; the table maps each barcode to its card. It is a TOML file, one
//! entry per line, under `[barcodes]` (keep it under `calibration/`, e.g.
//! `calibration/barcodes.toml`):
//!
//! ```toml
//! # deck 1 of the blue shoe
//! [barcodes]
//! "0123456789012" = "KH"
//! "0123456789029" = "10D"
//! ```
//!
//! Loading it reports every bad entry at once, each with its line number (a value that is no
//! card, a barcode given twice, a key outside `[barcodes]`, a line that is not TOML).
//!
//! # How the pieces fit
//!
//! * [`LineCodec`] splits bytes into lines (bounded length, CR LF or LF, resynchronising at the
//!   next line after an over-long one).
//! * [`CardFormat`] turns a line's text into a [`Card`], or not.
//! * [`Shoe`] turns lines into [`CardEvent`]s, in order, numbering cards from 1 since the reader
//!   was opened. It is sans-IO, so USB keyboard-wedge readers (evdev) feed it lines too.
//! * [`CardLineCodec`] is all three as one `tokio_util` decoder for a serial port, built from the
//!   config keys with [`CardLineCodec::from_config`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use bytes::{Buf, BytesMut};
use regex::Regex;
use tokio_util::codec::Decoder;

use crate::model::{Card, CardEvent, Decoded, Garbage, Rank, Suit};

/// Default bound on a line, line end included: room for long barcodes and a little noise.
pub const DEFAULT_MAX_LINE: usize = 128;

/// What went wrong setting up a card reader. Every message says what to fix in the config or
/// the barcode table.
#[derive(Debug, thiserror::Error)]
pub enum CardsError {
    /// The `format` key names no known format.
    #[error("unknown card format {given:?}: use \"default\", \"regex\" or \"barcode\"")]
    UnknownFormat {
        /// The text given.
        given: String,
    },
    /// The format needs a key that is missing.
    #[error("card format \"{format}\" needs the `{key}` key")]
    MissingKey {
        format: &'static str,
        key: &'static str,
    },
    /// A key was given that the chosen format does not use.
    #[error(
        "the `{key}` key is only used with format = \"{used_by}\"; remove it or set the format"
    )]
    UnusedKey {
        key: &'static str,
        used_by: &'static str,
    },
    /// The regex does not compile.
    #[error("card pattern {pattern:?} is not a valid regular expression: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// The regex lacks a named group the format needs.
    #[error(
        "card pattern {pattern:?} has no group named `{group}`: name the part that holds the \
         {group} with (?P<{group}>…)"
    )]
    MissingGroup {
        pattern: String,
        group: &'static str,
    },
    /// The barcode table could not be read.
    #[error(
        "cannot read the barcode table {}: {source}; check the shoe's `barcodes` path and that \
         the croupier user may read the file",
        path.display()
    )]
    BarcodeFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The barcode table has bad entries; all of them are listed.
    #[error("barcode table {} has {} problem(s):\n{}", path.display(), problems.len(), BarcodeProblems(problems))]
    BarcodeTable {
        path: PathBuf,
        problems: Vec<BarcodeProblem>,
    },
}

/// One bad line of a barcode table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarcodeProblem {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong, and what to write instead.
    pub message: String,
}

impl fmt::Display for BarcodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

struct BarcodeProblems<'a>(&'a [BarcodeProblem]);

impl fmt::Display for BarcodeProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {problem}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Lines.

/// Sans-IO line splitter: a line ends at LF, a CR before it is dropped, and a line longer than
/// `max_len` bytes (line end included) is skipped as [`Garbage::TooLong`] up to and including
/// the next LF. A line that is not UTF-8 is [`Garbage::Malformed`].
#[derive(Debug, Clone)]
pub struct LineCodec {
    max_len: usize,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

impl Default for LineCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl LineCodec {
    /// A splitter for lines of at most `max_len` bytes, line end included (at least 2).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.max(2),
            discarding: false,
        }
    }

    /// The bound on a line, line end included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl Decoder for LineCodec {
    type Item = Decoded<String>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if src.is_empty() {
            return Ok(None);
        }
        if self.discarding {
            let skipped = match src.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.discarding = false;
                    i + 1
                }
                None => src.len(),
            };
            src.advance(skipped);
            return Ok(Some(Decoded::Garbage {
                skipped,
                reason: Garbage::TooLong,
            }));
        }
        let window = src.get(..self.max_len).unwrap_or(src);
        match window.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let wire_len = end + 1;
                let line = src.split_to(wire_len);
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                Ok(Some(match std::str::from_utf8(text) {
                    Ok(text) => Decoded::Frame {
                        frame: text.to_owned(),
                        wire_len,
                    },
                    Err(_) => Decoded::Garbage {
                        skipped: wire_len,
                        reason: Garbage::Malformed,
                    },
                }))
            }
            None if src.len() >= self.max_len => {
                src.advance(self.max_len);
                self.discarding = true;
                Ok(Some(Decoded::Garbage {
                    skipped: self.max_len,
                    reason: Garbage::TooLong,
                }))
            }
            None => {
                src.reserve(self.max_len.saturating_sub(src.len()));
                Ok(None)
            }
        }
    }

    /// A line without its line end at end of input was cut (cable pulled): garbage, never a
    /// line, because its last characters may be missing (`1` of `10H`).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        self.discarding = false;
        if src.is_empty() {
            return Ok(None);
        }
        let skipped = src.len();
        src.clear();
        Ok(Some(Decoded::Garbage {
            skipped,
            reason: Garbage::Malformed,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Formats.

/// How a reader writes a card on its line.
#[derive(Debug, Clone)]
pub enum CardFormat {
    /// Rank then suit: `KH`, `TD`, `10D` (case-insensitive), see [`Card`]'s `FromStr`.
    Default,
    /// A regular expression with named groups `rank` and `suit`, matched against the whole line.
    Regex(CardPattern),
    /// A barcode → card table.
    Barcodes(BarcodeTable),
}

/// A validated card pattern: it compiles and has the groups `rank` and `suit`.
#[derive(Debug, Clone)]
pub struct CardPattern {
    pattern: String,
    /// The pattern anchored at both ends, so that a card is never picked out of a longer line.
    whole_line: Regex,
}

impl CardPattern {
    /// Compiles `pattern` and checks it names both groups `rank` and `suit`.
    pub fn new(pattern: &str) -> Result<Self, CardsError> {
        let bad = |source| CardsError::BadPattern {
            pattern: pattern.to_owned(),
            source,
        };
        let plain = Regex::new(pattern).map_err(bad)?;
        for group in ["rank", "suit"] {
            if !plain.capture_names().flatten().any(|name| name == group) {
                return Err(CardsError::MissingGroup {
                    pattern: pattern.to_owned(),
                    group,
                });
            }
        }
        let whole_line = Regex::new(&format!("^(?:{pattern})$")).map_err(bad)?;
        Ok(Self {
            pattern: pattern.to_owned(),
            whole_line,
        })
    }

    /// The pattern as configured.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The card on `line`, if the whole line matches and both groups read as a rank and a suit.
    pub fn card(&self, line: &str) -> Option<Card> {
        let caps = self.whole_line.captures(line)?;
        let rank = Rank::parse(caps.name("rank")?.as_str())?;
        let suit = Suit::parse(caps.name("suit")?.as_str())?;
        Some(Card { rank, suit })
    }
}

/// A barcode → card table, loaded from the TOML format described in the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BarcodeTable {
    cards: HashMap<String, Card>,
}

impl BarcodeTable {
    /// A table from pairs already checked elsewhere.
    pub fn from_map(cards: HashMap<String, Card>) -> Self {
        Self { cards }
    }

    /// Reads and checks the table file at `path`.
    pub fn load(path: &Path) -> Result<Self, CardsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CardsError::BarcodeFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|problems| CardsError::BarcodeTable {
            path: path.to_owned(),
            problems,
        })
    }

    /// Parses the table's text; on failure, every problem found, in line order.
    pub fn parse(text: &str) -> Result<Self, Vec<BarcodeProblem>> {
        let mut problems = Vec::new();
        let mut cards = HashMap::new();
        match toml_edit::Document::parse(text) {
            Ok(doc) => {
                for (key, item) in doc.iter() {
                    let line = line_of(text, item.span());
                    if key != "barcodes" {
                        problems.push(BarcodeProblem {
                            line,
                            message: format!(
                                "`{key}` is not read; put every barcode under [barcodes]"
                            ),
                        });
                        continue;
                    }
                    let Some(table) = item.as_table_like() else {
                        problems.push(BarcodeProblem {
                            line,
                            message: "`barcodes` must be a table: write [barcodes] on its own line"
                                .into(),
                        });
                        continue;
                    };
                    for (barcode, value) in table.iter() {
                        let line = line_of(text, value.span());
                        match entry(barcode, value.as_str()) {
                            Ok(card) => {
                                cards.insert(barcode.to_owned(), card);
                            }
                            Err(message) => problems.push(BarcodeProblem { line, message }),
                        }
                    }
                }
            }
            Err(whole) => {
                problems = line_by_line(text);
                if problems.is_empty() {
                    // Only a construct spanning lines can fail as a whole and line by line not.
                    problems.push(BarcodeProblem {
                        line: line_of(text, whole.span()),
                        message: format!("not valid TOML: {}", whole.message()),
                    });
                }
            }
        }
        problems.sort_by_key(|p| p.line);
        if problems.is_empty() {
            Ok(Self { cards })
        } else {
            Err(problems)
        }
    }

    /// The card for a barcode, if the table has it.
    pub fn get(&self, barcode: &str) -> Option<Card> {
        self.cards.get(barcode).copied()
    }

    /// Barcodes in the table.
    pub fn len(&self) -> usize {
        self.cards.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }
}

/// Checks one entry: a non-blank barcode without surrounding spaces, and a card.
fn entry(barcode: &str, value: Option<&str>) -> Result<Card, String> {
    if barcode.trim().is_empty() || barcode.trim() != barcode {
        return Err(format!(
            "barcode {barcode:?} is blank or has spaces around it; readers send no spaces"
        ));
    }
    let value = value.ok_or_else(|| {
        format!("the card for {barcode:?} must be a quoted string such as \"KH\" or \"10D\"")
    })?;
    value.parse::<Card>()
}

/// The 1-based line of a byte offset (the first line when unknown).
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    let at = span.map_or(0, |s| s.start);
    text.get(..at)
        .map_or(0, |before| before.bytes().filter(|&b| b == b'\n').count())
        + 1
}

/// When the file as a whole is not TOML: checks each line alone, so every bad line is named,
/// not only the first (a barcode table is one entry per line).
fn line_by_line(text: &str) -> Vec<BarcodeProblem> {
    let mut problems = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut in_barcodes = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let doc = match toml_edit::Document::parse(raw) {
            Ok(doc) => doc,
            Err(err) => {
                problems.push(BarcodeProblem {
                    line,
                    message: format!(
                        "not valid TOML ({}); write an entry as \"<barcode>\" = \"<card>\"",
                        err.message().trim()
                    ),
                });
                continue;
            }
        };
        if trimmed.starts_with('[') {
            in_barcodes = doc.iter().any(|(key, _)| key == "barcodes");
            if !in_barcodes {
                problems.push(BarcodeProblem {
                    line,
                    message: format!("{trimmed} is not read; put every barcode under [barcodes]"),
                });
            }
            continue;
        }
        for (key, item) in doc.iter() {
            if !in_barcodes {
                problems.push(BarcodeProblem {
                    line,
                    message: format!("`{key}` is outside [barcodes]; put it under [barcodes]"),
                });
                continue;
            }
            if let Err(message) = entry(key, item.as_str()) {
                problems.push(BarcodeProblem { line, message });
            }
            match seen.get(key) {
                Some(first) => problems.push(BarcodeProblem {
                    line,
                    message: format!("barcode {key:?} is already given on line {first}"),
                }),
                None => {
                    seen.insert(key.to_owned(), line);
                }
            }
        }
    }
    problems
}

impl CardFormat {
    /// The card a line stands for under this format, if any. `line` is trimmed first (keyboard
    /// wedges and some shoes pad with spaces).
    pub fn card(&self, line: &str) -> Option<Card> {
        let line = line.trim();
        match self {
            CardFormat::Default => line.parse().ok(),
            CardFormat::Regex(pattern) => pattern.card(line),
            CardFormat::Barcodes(table) => table.get(line),
        }
    }

    /// A format from the shoe's config keys: `format` is `"default"`, `"regex"` (needs
    /// `pattern`) or `"barcode"` (needs `barcodes`, the table's path). A key the format does not
    /// use is an error, so a typo in `format` is not silently ignored.
    pub fn from_config(
        format: &str,
        pattern: Option<&str>,
        barcodes: Option<&Path>,
    ) -> Result<Self, CardsError> {
        let unused = |key, used_by| Err(CardsError::UnusedKey { key, used_by });
        match format.trim().to_ascii_lowercase().as_str() {
            "default" => match (pattern, barcodes) {
                (Some(_), _) => unused("pattern", "regex"),
                (_, Some(_)) => unused("barcodes", "barcode"),
                (None, None) => Ok(CardFormat::Default),
            },
            "regex" => match (pattern, barcodes) {
                (_, Some(_)) => unused("barcodes", "barcode"),
                (None, _) => Err(CardsError::MissingKey {
                    format: "regex",
                    key: "pattern",
                }),
                (Some(pattern), None) => Ok(CardFormat::Regex(CardPattern::new(pattern)?)),
            },
            "barcode" => match (pattern, barcodes) {
                (Some(_), _) => unused("pattern", "regex"),
                (None, None) => Err(CardsError::MissingKey {
                    format: "barcode",
                    key: "barcodes",
                }),
                (None, Some(path)) => Ok(CardFormat::Barcodes(BarcodeTable::load(path)?)),
            },
            _ => Err(CardsError::UnknownFormat {
                given: format.to_owned(),
            }),
        }
    }
}

/// The line a shoe in the default format sends for `card`, e.g. `KH\r\n`. The simulator and the
/// tests write cards with this.
pub fn card_line(card: Card) -> Vec<u8> {
    format!("{card}\r\n").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The shoe.

/// Sans-IO shoe: turns the reader's lines into card events, in order.
///
/// Cards and burn cards are numbered together from 1 since the shoe was made (the reader
/// opened), so the order of the shoe survives downstream reordering. An unreadable line gets no
/// number: it may be line noise rather than a card, and the engine decides what it means.
#[derive(Debug, Clone)]
pub struct Shoe {
    format: CardFormat,
    burn: Option<String>,
    count: u64,
}

impl Shoe {
    /// A shoe reading `format`; `burn` is the burn-card marker (matched against the whole
    /// trimmed line, ignoring ASCII case). A blank marker means none.
    pub fn new(format: CardFormat, burn: Option<&str>) -> Self {
        let burn = burn
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned);
        Self {
            format,
            burn,
            count: 0,
        }
    }

    /// The event for one line (without its line end). `None` for a blank line, which is no
    /// card and no reading either.
    pub fn read_line(&mut self, line: &str) -> Option<CardEvent> {
        let text = line.trim();
        if text.is_empty() {
            return None;
        }
        if self
            .burn
            .as_deref()
            .is_some_and(|marker| marker.eq_ignore_ascii_case(text))
        {
            self.count += 1;
            return Some(CardEvent::Burn { index: self.count });
        }
        Some(match self.format.card(text) {
            Some(card) => {
                self.count += 1;
                CardEvent::Drawn {
                    card,
                    index: self.count,
                }
            }
            None => CardEvent::Unreadable {
                text: line.to_owned(),
            },
        })
    }

    /// Cards (burn cards included) read since the shoe was made.
    pub fn cards_read(&self) -> u64 {
        self.count
    }

    /// The format lines are read in.
    pub fn format(&self) -> &CardFormat {
        &self.format
    }

    /// The burn-card marker, if one is set.
    pub fn burn_marker(&self) -> Option<&str> {
        self.burn.as_deref()
    }
}

/// A serial card reader as one decoder: lines → shoe → card events.
///
/// A blank line (some readers send CR LF LF, or a bare CR LF as keep-alive) is no card; its
/// bytes are reported as [`Garbage::NoFrameStart`] so every byte stays accounted for.
#[derive(Debug, Clone)]
pub struct CardLineCodec {
    lines: LineCodec,
    shoe: Shoe,
}

impl CardLineCodec {
    /// A reader in `format` with an optional burn marker, lines up to [`DEFAULT_MAX_LINE`].
    pub fn new(format: CardFormat, burn: Option<&str>) -> Self {
        Self {
            lines: LineCodec::default(),
            shoe: Shoe::new(format, burn),
        }
    }

    /// The same reader with another bound on a line, line end included.
    #[must_use]
    pub fn with_max_line(mut self, max_len: usize) -> Self {
        self.lines = LineCodec::new(max_len);
        self
    }

    /// A reader from the shoe's config keys (see [`CardFormat::from_config`]).
    pub fn from_config(
        format: &str,
        pattern: Option<&str>,
        barcodes: Option<&Path>,
        burn: Option<&str>,
    ) -> Result<Self, CardsError> {
        Ok(Self::new(
            CardFormat::from_config(format, pattern, barcodes)?,
            burn,
        ))
    }

    /// The shoe behind the decoder (cards read so far, format, burn marker).
    pub fn shoe(&self) -> &Shoe {
        &self.shoe
    }

    fn on_line(&mut self, line: Option<Decoded<String>>) -> Option<Decoded<CardEvent>> {
        Some(match line? {
            Decoded::Frame { frame, wire_len } => match self.shoe.read_line(&frame) {
                Some(event) => Decoded::Frame {
                    frame: event,
                    wire_len,
                },
                None => Decoded::Garbage {
                    skipped: wire_len,
                    reason: Garbage::NoFrameStart,
                },
            },
            Decoded::Garbage { skipped, reason } => Decoded::Garbage { skipped, reason },
        })
    }
}

impl Decoder for CardLineCodec {
    type Item = Decoded<CardEvent>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let line = self.lines.decode(src)?;
        Ok(self.on_line(line))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let line = self.lines.decode_eof(src)?;
        Ok(self.on_line(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_lines_are_the_default_format() {
        let card: Card = "10D".parse().expect("card");
        assert_eq!(card_line(card), b"TD\r\n");
        assert_eq!(CardFormat::Default.card(" kh "), "KH".parse().ok());
    }

    #[test]
    fn line_numbers_count_from_one() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, Some(0..1)), 1);
        assert_eq!(line_of(text, Some(2..3)), 2);
        assert_eq!(line_of(text, Some(4..5)), 3);
        assert_eq!(line_of(text, None), 1);
        assert_eq!(line_of(text, Some(99..100)), 1);
    }

    #[test]
    fn blank_burn_marker_is_none() {
        assert_eq!(
            Shoe::new(CardFormat::Default, Some("  ")).burn_marker(),
            None
        );
        assert_eq!(
            Shoe::new(CardFormat::Default, Some(" BURN ")).burn_marker(),
            Some("BURN")
        );
    }
}
