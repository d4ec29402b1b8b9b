//! RFID at the table: which tagged cards and chips lie on which antenna (zone), and what they
//! are.
//!
//! # For the studio technician
//!
//! Two kinds of readers are supported:
//!
//! * **FEIG ISO-Host readers** (`driver = "feig"`, see [`crate::feig`]): Croupier polls the
//!   reader with an inventory request every `poll_interval` (200 ms by default) and turns the
//!   answers into arrivals and departures per antenna with [`InventoryPoller`]. A tag departs
//!   only after it was missing from `absent_after` complete inventories in a row (2 by
//!   default), so one missed read does not make a chip flicker off the table. An answer that
//!   does not come within `response_timeout` (300 ms) is *not* an empty table: nothing departs
//!   until the reader answers again. Neither does an answer with an RF error: it can add tags
//!   but never removes one.
//! * **Simple ASCII readers** (`driver = "ascii"`): the reader prints one UID per line while a
//!   tag is in its field. [`AsciiUidCodec`] reads the lines, [`PresenceTracker`] turns them into
//!   arrivals and departures on antenna 1: a tag departs when the reader has not repeated it
//!   for `absent_after` (1 s by default).
//!
//! What each tag *is* (the king of hearts, a 100 EUR chip) comes from the tag registry,
//! `calibration/tags.toml` ([`TagRegistry`]); `calibration/tags.example.toml` shows the format.
//! `croupier validate` reports every bad line of it at once.
//!
//! Everything here is sans-IO: time comes in as CLOCK_MONOTONIC nanoseconds, bytes in and out
//! as slices, so it is tested without a reader and driven by the async runner in production.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use crate::feig::{
    parse_inventory, AntennaInfo, FrameKind, InventoryRequest, Response, Status, BROADCAST_ADR,
    CMD_ISO_HOST,
};
use crate::model::{Card, Decoded, Garbage, RfidEvent, TagUid};

/// Errors of this module: a poller configuration that cannot work, or a tag registry that
/// cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RfidError {
    /// An antenna number outside 1–8 (FEIG antenna selection is one byte, one bit an antenna).
    #[error("antenna {0} does not exist: FEIG readers number their antennas 1 to 8")]
    AntennaOutOfRange(u8),
    /// The same antenna twice.
    #[error("antenna {0} is listed twice")]
    DuplicateAntenna(u8),
    /// Antenna selection without antennas.
    #[error("no antennas configured: list at least one, e.g. `antennas = [1]`")]
    NoAntennas,
    /// `absent_after` of 0: a tag would depart before it could be missed.
    #[error("absent_after must be at least 1 inventory")]
    ZeroAbsentAfter,
    /// A zero interval or timeout.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The registry file could not be read.
    #[error("cannot read the tag registry {path}: {source}; check the path and that the croupier user may read it")]
    RegistryRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The registry file has problems; every one is listed with its line.
    #[error("the tag registry {path} has {} problem(s):\n{issues}", issues.0.len())]
    Registry {
        path: PathBuf,
        issues: RegistryIssues,
    },
}

// ---------------------------------------------------------------------------------------------
// Inventory polling (FEIG)
// ---------------------------------------------------------------------------------------------

/// Which antennas to inventory, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Antennas {
    /// No antenna selection (MODE ANT clear): the reader reads its own antenna(s) and the
    /// answer carries no antenna numbers; every tag is reported on this antenna number. For
    /// single-antenna readers and readers without the ANT option.
    Default(u8),
    /// One request selects all these antennas; the reader says which antenna saw each tag.
    Together(Vec<u8>),
    /// One request per antenna, in turn; the tags of an answer belong to the antenna asked.
    /// Slower per antenna, but needs no antenna numbers in the answer.
    InTurn(Vec<u8>),
}

/// How the [`InventoryPoller`] polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerConfig {
    /// The reader's bus address; 255 (the default) is answered by any FEIG reader.
    pub com_adr: u8,
    pub antennas: Antennas,
    /// Time from one request to the next (default 200 ms).
    pub poll_interval: Duration,
    /// How long to wait for an answer (default 300 ms).
    pub response_timeout: Duration,
    /// Complete inventories a tag must be missing from before it departs (default 2).
    pub absent_after: u32,
    /// Standard frames (default), or advanced frames for readers that take only those.
    pub frame: FrameKind,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            com_adr: BROADCAST_ADR,
            antennas: Antennas::Default(1),
            poll_interval: Duration::from_millis(200),
            response_timeout: Duration::from_millis(300),
            absent_after: 2,
            frame: FrameKind::Standard,
        }
    }
}

/// Counters for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollerStats {
    pub requests: u64,
    /// Answers that completed an inventory (or one part of it).
    pub responses: u64,
    pub timeouts: u64,
    /// Answers with an error status or unreadable data.
    pub failures: u64,
    /// Answers with an RF error or warning that still carried tags (presence only).
    pub partial: u64,
    /// Frames that were no answer to the request in flight (another address or command, or
    /// late after a timeout).
    pub ignored: u64,
    /// Timeouts and failures since the last good answer: the device is unwell when this grows.
    pub consecutive_failures: u32,
}

/// One inventory in progress: what it covers and what its parts so far have shown.
#[derive(Debug, Clone)]
struct Inventorying {
    /// The antennas this inventory covers.
    covered: Vec<u8>,
    /// The antenna selection sent (0: none, so the answer has no antenna numbers).
    selection: u8,
    /// Tags seen so far, per antenna.
    seen: BTreeMap<u8, BTreeSet<TagUid>>,
    /// Some part could not prove absence (an RF warning, a tag without an antenna number).
    partial: bool,
}

/// Polls a FEIG reader for inventories and reports tags arriving at and departing from each
/// antenna. Sans-IO: the caller writes the bytes [`InventoryPoller::poll_due`] returns, feeds
/// every decoded [`Response`] to [`InventoryPoller::on_response`], and calls `poll_due` again
/// at [`InventoryPoller::next_wakeup`] (CLOCK_MONOTONIC nanoseconds).
///
/// One request is in flight at a time. An answer with status 0x94 (more data) is followed at
/// once by a MORE request, and the parts make one inventory. Limits: a late answer to a
/// timed-out request that arrives while the next request is in flight is taken as that one's
/// answer (it is an inventory a moment older); the transport should drop buffered bytes after
/// a timeout so this stays rare.
#[derive(Debug, Clone)]
pub struct InventoryPoller {
    config: PollerConfig,
    antennas: Vec<u8>,
    /// For [`Antennas::InTurn`]: the index of the next antenna to ask.
    turn: usize,
    /// The request in flight: when it was sent, and its inventory.
    in_flight: Option<(u64, Inventorying)>,
    /// After a 0x94 answer: the inventory to continue with a MORE request, at once.
    continuation: Option<Inventorying>,
    last_sent_ns: Option<u64>,
    /// Tags present per antenna, with the complete inventories each has since been missing from.
    present: BTreeMap<u8, BTreeMap<TagUid, u32>>,
    stats: PollerStats,
    last_status: Option<Status>,
    /// With `com_adr` 255: the address the reader answered with first. Later answers must come
    /// from it, which keeps a frame made up by line noise from being taken for an answer.
    learned_adr: Option<u8>,
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The ANT_SEL bit of an antenna (1–8); 0 for any other number.
fn antenna_bit(antenna: u8) -> u8 {
    antenna
        .checked_sub(1)
        .and_then(|shift| 1u8.checked_shl(u32::from(shift)))
        .unwrap_or(0)
}

impl InventoryPoller {
    /// Checks the configuration: antennas 1–8, each once; non-zero durations and count.
    pub fn new(config: PollerConfig) -> Result<Self, RfidError> {
        if config.absent_after == 0 {
            return Err(RfidError::ZeroAbsentAfter);
        }
        if config.poll_interval.is_zero() {
            return Err(RfidError::ZeroDuration("poll_interval"));
        }
        if config.response_timeout.is_zero() {
            return Err(RfidError::ZeroDuration("response_timeout"));
        }
        let antennas = match &config.antennas {
            Antennas::Default(a) => vec![*a],
            Antennas::Together(list) | Antennas::InTurn(list) => {
                if list.is_empty() {
                    return Err(RfidError::NoAntennas);
                }
                let mut seen = BTreeSet::new();
                for &a in list {
                    if !(1..=8).contains(&a) {
                        return Err(RfidError::AntennaOutOfRange(a));
                    }
                    if !seen.insert(a) {
                        return Err(RfidError::DuplicateAntenna(a));
                    }
                }
                list.clone()
            }
        };
        Ok(Self {
            config,
            antennas,
            turn: 0,
            in_flight: None,
            continuation: None,
            last_sent_ns: None,
            present: BTreeMap::new(),
            stats: PollerStats::default(),
            last_status: None,
            learned_adr: None,
        })
    }

    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    pub fn stats(&self) -> PollerStats {
        self.stats
    }

    /// The status of the last answer (for the status page: an RF error, a login request…).
    pub fn last_status(&self) -> Option<Status> {
        self.last_status
    }

    /// Tags present now, per antenna.
    pub fn present(&self) -> BTreeMap<u8, BTreeSet<TagUid>> {
        self.present
            .iter()
            .filter(|(_, tags)| !tags.is_empty())
            .map(|(a, tags)| (*a, tags.keys().copied().collect()))
            .collect()
    }

    /// Whether a request is waiting for its answer.
    pub fn awaiting_response(&self) -> bool {
        self.in_flight.is_some()
    }

    /// When to call [`InventoryPoller::poll_due`] next: the answer's deadline while a request
    /// is in flight, else when the next request is due (0: now).
    pub fn next_wakeup(&self) -> u64 {
        if let Some((sent, _)) = &self.in_flight {
            return sent.saturating_add(duration_ns(self.config.response_timeout));
        }
        if self.continuation.is_some() {
            return 0;
        }
        self.last_sent_ns.map_or(0, |t| {
            t.saturating_add(duration_ns(self.config.poll_interval))
        })
    }

    /// The request to write now, if one is due at `now_ns`.
    ///
    /// A request in flight past its timeout is given up first: counted, and nothing departs
    /// (a silent reader is not an empty table). The caller should then drop half-received
    /// bytes.
    pub fn poll_due(&mut self, now_ns: u64) -> Option<Vec<u8>> {
        if let Some((sent, _)) = &self.in_flight {
            if now_ns < sent.saturating_add(duration_ns(self.config.response_timeout)) {
                return None;
            }
            // An inventory cut by a timeout is dropped whole: its parts so far prove nothing
            // about absence, and their tags will be in the next complete inventory.
            self.in_flight = None;
            self.continuation = None;
            self.stats.timeouts += 1;
            self.stats.consecutive_failures = self.stats.consecutive_failures.saturating_add(1);
        }
        if now_ns < self.next_wakeup() {
            return None;
        }
        let (more, inventory) = match self.continuation.take() {
            Some(inventory) => (true, inventory),
            None => (false, self.next_inventory()),
        };
        let request = InventoryRequest {
            com_adr: self.config.com_adr,
            antennas: inventory.selection,
            more,
            kind: self.config.frame,
        };
        self.in_flight = Some((now_ns, inventory));
        self.last_sent_ns = Some(now_ns);
        self.stats.requests += 1;
        Some(request.encode())
    }

    /// A fresh inventory of the antennas whose turn it is.
    fn next_inventory(&mut self) -> Inventorying {
        let (covered, selection) = match &self.config.antennas {
            Antennas::Default(a) => (vec![*a], 0),
            Antennas::Together(_) => (
                self.antennas.clone(),
                self.antennas.iter().fold(0, |m, &a| m | antenna_bit(a)),
            ),
            Antennas::InTurn(_) => {
                let i = self.turn % self.antennas.len().max(1);
                self.turn = i + 1;
                let a = self.antennas.get(i).copied().unwrap_or(1);
                (vec![a], antenna_bit(a))
            }
        };
        Inventorying {
            covered,
            selection,
            seen: BTreeMap::new(),
            partial: false,
        }
    }

    /// The reader's connection was lost or reopened: forget the request in flight (no events;
    /// presence is kept and settled by the next complete inventories).
    pub fn on_disconnect(&mut self) {
        self.in_flight = None;
        self.continuation = None;
        // The reader may have been swapped for one with another address.
        self.learned_adr = None;
    }

    /// An answer from the reader. Returns the departures, then the arrivals, each in order of
    /// antenna and UID.
    pub fn on_response(&mut self, response: &Response) -> Vec<RfidEvent> {
        let wanted_adr = match (self.config.com_adr, self.learned_adr) {
            (BROADCAST_ADR, None) => true,
            (BROADCAST_ADR, Some(learned)) => response.com_adr == learned,
            (configured, _) => response.com_adr == configured,
        };
        if self.in_flight.is_none() || response.control != CMD_ISO_HOST || !wanted_adr {
            self.stats.ignored += 1;
            return Vec::new();
        }
        let Some((_, mut inventory)) = self.in_flight.take() else {
            return Vec::new();
        };
        self.last_status = Some(response.status);
        let info = if inventory.selection == 0 {
            AntennaInfo::NotRequested
        } else {
            AntennaInfo::Requested
        };
        let parsed = match parse_inventory(response, info) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::debug!(error = %err, "FEIG inventory answer not usable");
                self.stats.failures += 1;
                self.stats.consecutive_failures = self.stats.consecutive_failures.saturating_add(1);
                return Vec::new();
            }
        };
        for tag in &parsed.tags {
            match inventory.covered.as_slice() {
                // One antenna asked: the tags are on it, whatever numbering the reader uses.
                [only] => {
                    inventory.seen.entry(*only).or_default().insert(tag.uid);
                }
                covered => {
                    if tag.antennas.is_empty() {
                        // Seen, but where? It cannot be placed, so this inventory proves no
                        // absence on any antenna.
                        inventory.partial = true;
                    }
                    for read in &tag.antennas {
                        if covered.contains(&read.antenna) {
                            inventory
                                .seen
                                .entry(read.antenna)
                                .or_default()
                                .insert(tag.uid);
                        }
                    }
                }
            }
        }
        self.stats.responses += 1;
        self.learned_adr.get_or_insert(response.com_adr);
        if parsed.status == Status::MoreData {
            self.continuation = Some(inventory);
            return Vec::new();
        }
        let complete = parsed.is_complete() && !inventory.partial;
        if complete {
            self.stats.consecutive_failures = 0;
        } else {
            self.stats.partial += 1;
        }
        self.apply(&inventory, complete)
    }

    /// Settles one inventory: arrivals for new tags; for a complete one, a miss for every
    /// present tag not seen, and a departure at `absent_after` misses.
    fn apply(&mut self, inventory: &Inventorying, complete: bool) -> Vec<RfidEvent> {
        let mut departed = Vec::new();
        let mut arrived = Vec::new();
        let none = BTreeSet::new();
        for &antenna in &inventory.covered {
            let seen = inventory.seen.get(&antenna).unwrap_or(&none);
            let present = self.present.entry(antenna).or_default();
            for uid in seen {
                if present.insert(*uid, 0).is_none() {
                    arrived.push(RfidEvent::Arrived { antenna, uid: *uid });
                }
            }
            if complete {
                let mut gone = Vec::new();
                for (uid, misses) in present.iter_mut() {
                    if !seen.contains(uid) {
                        *misses = misses.saturating_add(1);
                        if *misses >= self.config.absent_after {
                            gone.push(*uid);
                        }
                    }
                }
                for uid in gone {
                    present.remove(&uid);
                    departed.push(RfidEvent::Departed { antenna, uid });
                }
            }
        }
        departed.extend(arrived);
        departed
    }
}

// ---------------------------------------------------------------------------------------------
// Simple ASCII readers
// ---------------------------------------------------------------------------------------------

/// The longest line kept; a longer one is noise (a UID line is 16 to 20 bytes).
pub const MAX_ASCII_LINE: usize = 64;

/// In which byte order a reader prints UIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UidOrder {
    /// `E004…`: most significant byte first, as ISO 15693 UIDs are usually written (they begin
    /// with E0).
    #[default]
    MsbFirst,
    /// `…04E0`: the order the bytes travel over the air; some readers print it. The codec
    /// reverses it, so the registry always uses MSB-first UIDs.
    LsbFirst,
}

/// Reads one UID per line from a simple reader.
///
/// A line is 16 hex digits, upper or lower case, optionally prefixed `0x` (seen on some
/// readers' test output), with spaces or tabs around it ignored, ended by CR LF, LF or a lone
/// CR (some readers send no LF). Empty lines are skipped silently; any other line is reported
/// as [`Garbage::Malformed`] and never guessed at; a line over [`MAX_ASCII_LINE`] bytes is
/// [`Garbage::TooLong`] up to its end. A frame's `wire_len` runs to the first end-of-line
/// byte (the LF of a CR LF is consumed silently with the next line).
#[derive(Debug, Clone, Default)]
pub struct AsciiUidCodec {
    order: UidOrder,
    /// Inside an over-long line: drop bytes up to its end.
    discarding: bool,
}

fn is_eol(b: &u8) -> bool {
    *b == b'\r' || *b == b'\n'
}

impl AsciiUidCodec {
    pub fn new(order: UidOrder) -> Self {
        Self {
            order,
            discarding: false,
        }
    }

    fn parse(&self, line: &[u8]) -> Option<TagUid> {
        let text = std::str::from_utf8(line).ok()?.trim_matches([' ', '\t']);
        let hex = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        let mut uid: TagUid = hex.parse().ok()?;
        if self.order == UidOrder::LsbFirst {
            uid.0.reverse();
        }
        Some(uid)
    }
}

impl Decoder for AsciiUidCodec {
    type Item = Decoded<TagUid>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if self.discarding {
            if buf.is_empty() {
                return Ok(None);
            }
            let skipped = match buf.iter().position(is_eol) {
                Some(i) => {
                    self.discarding = false;
                    i + 1
                }
                None => buf.len(),
            };
            buf.advance(skipped);
            return Ok(Some(Decoded::Garbage {
                skipped,
                reason: Garbage::TooLong,
            }));
        }
        let blank = buf.iter().take_while(|b| is_eol(b)).count();
        buf.advance(blank);
        let Some(end) = buf.iter().position(is_eol) else {
            if buf.len() > MAX_ASCII_LINE {
                let skipped = buf.len();
                buf.clear();
                self.discarding = true;
                return Ok(Some(Decoded::Garbage {
                    skipped,
                    reason: Garbage::TooLong,
                }));
            }
            return Ok(None);
        };
        let line = buf.split_to(end + 1);
        let wire_len = line.len();
        if end > MAX_ASCII_LINE {
            return Ok(Some(Decoded::Garbage {
                skipped: wire_len,
                reason: Garbage::TooLong,
            }));
        }
        Ok(Some(
            match self.parse(line.get(..end).unwrap_or_default()) {
                Some(uid) => Decoded::Frame {
                    frame: uid,
                    wire_len,
                },
                None => Decoded::Garbage {
                    skipped: wire_len,
                    reason: Garbage::Malformed,
                },
            },
        ))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        // A line without its end is cut: garbage, never a UID.
        let reason = if self.discarding {
            Garbage::TooLong
        } else {
            Garbage::Malformed
        };
        self.discarding = false;
        if buf.is_empty() {
            return Ok(None);
        }
        let skipped = buf.len();
        buf.clear();
        Ok(Some(Decoded::Garbage { skipped, reason }))
    }
}

/// Turns "the reader printed this UID at this time" into arrivals and departures for one zone.
///
/// A simple reader repeats a tag's UID while the tag stays in its field, so a tag departs when
/// it has not been repeated for `absent_after`. While the reader is down nothing can be seen:
/// do not call [`PresenceTracker::expire`] then, and call [`PresenceTracker::hold`] when it
/// comes back, so the outage is not taken for every tag leaving.
#[derive(Debug, Clone)]
pub struct PresenceTracker {
    antenna: u8,
    absent_after_ns: u64,
    last_seen: BTreeMap<TagUid, u64>,
}

impl PresenceTracker {
    /// Default absence timeout: 1 s, several repeats of a typical simple reader.
    pub const DEFAULT_ABSENT_AFTER: Duration = Duration::from_secs(1);

    /// A tracker for antenna 1.
    pub fn new(absent_after: Duration) -> Self {
        Self {
            antenna: 1,
            absent_after_ns: duration_ns(absent_after).max(1),
            last_seen: BTreeMap::new(),
        }
    }

    /// Report events on antenna (zone) `antenna` instead of 1.
    pub fn with_antenna(mut self, antenna: u8) -> Self {
        self.antenna = antenna;
        self
    }

    /// The reader reported `uid` at `now_ns`: an arrival if it was not present.
    pub fn seen(&mut self, uid: TagUid, now_ns: u64) -> Option<RfidEvent> {
        match self.last_seen.insert(uid, now_ns) {
            None => Some(RfidEvent::Arrived {
                antenna: self.antenna,
                uid,
            }),
            Some(_) => None,
        }
    }

    /// Departures of every tag not repeated for `absent_after` by `now_ns`, in UID order.
    pub fn expire(&mut self, now_ns: u64) -> Vec<RfidEvent> {
        let limit = self.absent_after_ns;
        let gone: Vec<TagUid> = self
            .last_seen
            .iter()
            .filter(|(_, &t)| now_ns.saturating_sub(t) >= limit)
            .map(|(uid, _)| *uid)
            .collect();
        gone.into_iter()
            .map(|uid| {
                self.last_seen.remove(&uid);
                RfidEvent::Departed {
                    antenna: self.antenna,
                    uid,
                }
            })
            .collect()
    }

    /// Counts every present tag as seen at `now_ns` (after the reader was down).
    pub fn hold(&mut self, now_ns: u64) {
        for t in self.last_seen.values_mut() {
            *t = now_ns;
        }
    }

    /// When the next tag would depart, if any is present.
    pub fn next_deadline(&self) -> Option<u64> {
        self.last_seen
            .values()
            .min()
            .map(|t| t.saturating_add(self.absent_after_ns))
    }

    /// Tags present now.
    pub fn present(&self) -> impl Iterator<Item = &TagUid> {
        self.last_seen.keys()
    }
}

// ---------------------------------------------------------------------------------------------
// The tag registry
// ---------------------------------------------------------------------------------------------

/// An ISO 4217 currency code, three capital letters (`EUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Reads three capital ASCII letters.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes = <[u8; 3]>::try_from(s.as_bytes()).ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_uppercase)
            .then_some(Currency(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chip's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chip {
    /// In hundredths of the currency unit (cents): `chip = 2.5` is 250.
    pub value_cents: u64,
    pub currency: Currency,
}

impl fmt::Display for Chip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.value_cents / 100,
            self.value_cents % 100,
            self.currency
        )
    }
}

/// What a tag is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagMeaning {
    /// A playing card with a tag in it.
    Card(Card),
    /// A gaming chip.
    Chip(Chip),
    /// Any other tagged object the table knows by name (a dealer button, a lammer).
    Marker(String),
}

/// One problem in the registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryIssue {
    /// 1-based line in the file.
    pub line: usize,
    pub message: String,
}

/// Every problem found in a registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryIssues(pub Vec<RegistryIssue>);

impl fmt::Display for RegistryIssues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  line {}: {}", issue.line, issue.message)?;
        }
        Ok(())
    }
}

/// Tag UID → card, chip or marker, from `calibration/tags.toml`.
///
/// ```toml
/// version = 1            # optional; the format's version
/// currency = "EUR"       # optional; the currency of chips that name none
///
/// [tags]
/// "E00401501234ABCD" = { card = "KH" }                  # king of hearts
/// "E00401501234ABCE" = { chip = 100 }                   # a 100 EUR chip
/// "E00401501234ABCF" = { chip = 2.5, currency = "USD" } # 2.50 USD
/// "E00401501234AB00" = { marker = "dealer-button" }
/// ```
///
/// UIDs are 16 hex digits, most significant byte first (as FEIG readers and [`TagUid`] write
/// them), any case. Cards are written as everywhere in Croupier (`KH`, `TD`, `10D`, `as`).
/// Chip values are positive, with at most two decimals. Unknown keys are errors, so a typo is
/// never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagRegistry {
    tags: BTreeMap<TagUid, TagMeaning>,
}

/// The registry format's version.
const REGISTRY_VERSION: i64 = 1;

fn line_of(text: &str, span: Option<Range<usize>>) -> usize {
    let offset = span.map_or(0, |s| s.start);
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

fn item_span(item: &toml_edit::Item) -> Option<Range<usize>> {
    match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        toml_edit::Item::ArrayOfTables(a) => a.span(),
    }
}

/// Reads a chip value: a positive integer, or a decimal with at most two places.
fn chip_cents(item: &toml_edit::Item) -> Result<u64, String> {
    const HINT: &str =
        "write the chip's value as a positive number, e.g. `chip = 100` or `chip = 2.5`";
    if let Some(i) = item.as_integer() {
        return u64::try_from(i)
            .ok()
            .filter(|&v| v > 0)
            .and_then(|v| v.checked_mul(100))
            .ok_or_else(|| format!("chip value {i} is not a positive amount; {HINT}"));
    }
    if let Some(x) = item.as_float() {
        let cents = (x * 100.0).round();
        if !(x > 0.0 && (1.0..1e15).contains(&cents)) {
            return Err(format!("chip value {x} is not a positive amount; {HINT}"));
        }
        if (x * 100.0 - cents).abs() > 1e-6 {
            return Err(format!("chip value {x} has more than two decimals; {HINT}"));
        }
        // In range: checked above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok(cents as u64);
    }
    Err(format!("`chip` must be a number; {HINT}"))
}

impl TagRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and checks `path`; every problem is reported with its line.
    pub fn load(path: &Path) -> Result<Self, RfidError> {
        let text = std::fs::read_to_string(path).map_err(|source| RfidError::RegistryRead {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|issues| RfidError::Registry {
            path: path.to_owned(),
            issues,
        })
    }

    /// Checks a registry's text; returns every problem at once.
    pub fn parse(text: &str) -> Result<Self, RegistryIssues> {
        let mut issues = Vec::new();
        let mut issue = |span: Option<Range<usize>>, message: String| {
            issues.push(RegistryIssue {
                line: line_of(text, span),
                message,
            });
        };
        let doc = match toml_edit::Document::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                issue(
                    err.span(),
                    format!(
                        "not valid TOML: {}; every entry is `\"UID\" = {{ card = \"KH\" }}`",
                        err.message().trim()
                    ),
                );
                return Err(RegistryIssues(issues));
            }
        };
        let root = doc.as_table();
        let key_span = |t: &dyn toml_edit::TableLike, key: &str| {
            t.get_key_value(key).and_then(|(k, _)| k.span())
        };
        let mut default_currency = None;
        for (key, item) in root.iter() {
            match key {
                "version" => {
                    if item.as_integer() != Some(REGISTRY_VERSION) {
                        issue(
                            item_span(item),
                            format!("`version` must be {REGISTRY_VERSION}, the only format this Croupier reads"),
                        );
                    }
                }
                "currency" => match item.as_str().and_then(Currency::parse) {
                    Some(c) => default_currency = Some(c),
                    None => issue(
                        item_span(item),
                        "`currency` must be an ISO 4217 code in capitals, e.g. \"EUR\"".to_owned(),
                    ),
                },
                "tags" => {}
                other => issue(
                    key_span(root, other),
                    format!(
                        "unknown key `{other}`: the file has `version`, `currency` and `[tags]`"
                    ),
                ),
            }
        }
        let mut tags: BTreeMap<TagUid, (TagMeaning, usize)> = BTreeMap::new();
        match root.get("tags") {
            None => {}
            Some(item) => match item.as_table_like() {
                None => issue(
                    item_span(item),
                    "`tags` must be a table: a `[tags]` line, then one `\"UID\" = { … }` per tag"
                        .to_owned(),
                ),
                Some(table) => {
                    for (key, entry) in table.iter() {
                        let span = key_span(table, key).or_else(|| item_span(entry));
                        let line = line_of(text, span.clone());
                        let uid: TagUid = match key.parse() {
                            Ok(uid) => uid,
                            Err(_) => {
                                issue(
                                    span,
                                    format!("`{key}` is not a tag UID: write 16 hex digits, most significant byte first, e.g. \"E00401501234ABCD\""),
                                );
                                continue;
                            }
                        };
                        let meaning = match Self::entry(entry, default_currency) {
                            Ok(meaning) => meaning,
                            Err(message) => {
                                issue(span, format!("tag {uid}: {message}"));
                                continue;
                            }
                        };
                        if let Some((_, first)) = tags.get(&uid) {
                            issue(
                                span,
                                format!(
                                    "tag {uid} is listed twice (also on line {first}); keep one"
                                ),
                            );
                            continue;
                        }
                        tags.insert(uid, (meaning, line));
                    }
                }
            },
        }
        if issues.is_empty() {
            Ok(Self {
                tags: tags.into_iter().map(|(uid, (m, _))| (uid, m)).collect(),
            })
        } else {
            issues.sort_by_key(|i| i.line);
            Err(RegistryIssues(issues))
        }
    }

    /// One `{ card = … }` / `{ chip = …, currency = … }` / `{ marker = … }` entry.
    fn entry(
        item: &toml_edit::Item,
        default_currency: Option<Currency>,
    ) -> Result<TagMeaning, String> {
        let table = item.as_table_like().ok_or_else(|| {
            "write `{ card = \"KH\" }`, `{ chip = 100 }` or `{ marker = \"name\" }`".to_owned()
        })?;
        for (key, _) in table.iter() {
            if !matches!(key, "card" | "chip" | "currency" | "marker") {
                return Err(format!(
                    "unknown key `{key}`: an entry has `card`, `chip` (with `currency`) or `marker`"
                ));
            }
        }
        let card = table.get("card");
        let chip = table.get("chip");
        let marker = table.get("marker");
        let currency = table.get("currency");
        if [card, chip, marker].iter().filter(|x| x.is_some()).count() != 1 {
            return Err("give exactly one of `card`, `chip` or `marker`".to_owned());
        }
        if currency.is_some() && chip.is_none() {
            return Err("`currency` belongs to a chip".to_owned());
        }
        if let Some(card) = card {
            let text = card
                .as_str()
                .ok_or_else(|| "`card` must be a string like \"KH\"".to_owned())?;
            return text.parse::<Card>().map(TagMeaning::Card);
        }
        if let Some(chip) = chip {
            let value_cents = chip_cents(chip)?;
            let currency = match currency {
                Some(c) => c.as_str().and_then(Currency::parse).ok_or_else(|| {
                    "`currency` must be an ISO 4217 code in capitals, e.g. \"EUR\"".to_owned()
                })?,
                None => default_currency.ok_or_else(|| {
                    "a chip needs a currency: add `currency = \"EUR\"` to it or at the top of the file"
                        .to_owned()
                })?,
            };
            return Ok(TagMeaning::Chip(Chip {
                value_cents,
                currency,
            }));
        }
        let name = marker
            .and_then(|m| m.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| "`marker` must be a non-empty name".to_owned())?;
        Ok(TagMeaning::Marker(name.to_owned()))
    }

    /// What `uid` is, if the registry knows it.
    pub fn get(&self, uid: &TagUid) -> Option<&TagMeaning> {
        self.tags.get(uid)
    }

    /// The card `uid` is in, if it is a card.
    pub fn card(&self, uid: &TagUid) -> Option<Card> {
        match self.get(uid) {
            Some(TagMeaning::Card(card)) => Some(*card),
            _ => None,
        }
    }

    /// The chip `uid` is, if it is a chip.
    pub fn chip(&self, uid: &TagUid) -> Option<Chip> {
        match self.get(uid) {
            Some(TagMeaning::Chip(chip)) => Some(*chip),
            _ => None,
        }
    }

    /// Adds or replaces an entry (tests, tools).
    pub fn insert(&mut self, uid: TagUid, meaning: TagMeaning) {
        self.tags.insert(uid, meaning);
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Every entry, in UID order.
    pub fn iter(&self) -> impl Iterator<Item = (&TagUid, &TagMeaning)> {
        self.tags.iter()
    }
}
