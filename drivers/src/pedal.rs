//! The dealer's foot pedal.
//!
//! Whatever the pedal is wired to, Croupier turns it into the same four events: [`Press`],
//! [`Release`], [`LongPress`] and [`DoublePress`]. One sans-IO state machine,
//! [`PedalMachine`], does that for every kind of pedal. Each backend only reports *edges*: the
//! raw level of the contact and the instant it changed ([`Edge`]), contact bounce included.
//!
//! | backend                        | where                   | what it feeds the machine                        |
//! | ------------------------------ | ----------------------- | ------------------------------------------------ |
//! | GPIO character device / rppal  | [`crate::gpio`]         | the kernel's edge events, with the kernel's time |
//! | USB HID pedal (a "keyboard")   | [`crate::evdev`]        | key down / key up of the configured keys         |
//! | USB-serial, one byte per press | [`SerialBytePedal`]     | a press and a release for each byte received     |
//! | USB-serial, modem-status line  | [`ModemLinePedal`]      | the polled level of CTS, DSR, DCD or RI          |
//!
//! ## What the dealer gets
//!
//! * **Debounce.** A mechanical contact chatters for a few milliseconds when it closes and
//!   opens. A new level counts only once it has held, untouched, for `debounce` (20 ms by
//!   default); shorter blips (a knock on the table, a bounce) are ignored and counted.
//! * **Press / Release.** Each is stamped with the *first* edge of the transition, the moment
//!   the foot actually hit (or left) the switch, not the moment the bouncing stopped. That is
//!   the instant a "no more bets" is tied to.
//! * **LongPress.** Once per press, when the pedal has been held for `long_press` (800 ms by
//!   default), stamped with the instant the hold crossed that threshold. It comes *in addition
//!   to* the Press, which was sent when the foot went down.
//! * **DoublePress.** When a press starts within `double_press` (350 ms by default) of the
//!   release of a previous *short* press. The second press still yields its own `Press` first,
//!   with the same stamp, and `DoublePress` right after it: the engine can act on every press
//!   at once, and never waits out the double-press window. A press after a long press, and a
//!   third press after a double, do not make a double.
//!
//! ## Rules for odd input
//!
//! * An edge with the same level as the previous one is no change and is ignored (counted).
//! * An edge stamped *before* the latest time the machine has seen (edges and ticks) is
//!   treated as happening at that latest time: the level it reports is kept (dropping it could
//!   leave the pedal stuck "down"), and it is counted in [`PedalStats::reordered`]. Time in the
//!   machine never runs backwards, so its events come out with non-decreasing stamps.
//! * Edges with equal stamps are applied in the order given; a press and a release at the same
//!   instant are a blip and are ignored.
//! * A pedal that is already held down when its device is opened (or re-plugged) produces
//!   nothing until it is let go: [`PedalMachine::starting`]. A stuck pedal must not open a round.
//!
//! The machine never reads a clock: time comes only from edges and from [`PedalMachine::tick`].
//! [`PedalMachine::next_deadline`] tells the async side when the next timer (a debounce period
//! or the long-press threshold) falls due; [`drive`] is that async side, shared by every
//! backend through the [`EdgeSource`] trait.
//!
//! [`Press`]: PedalEvent::Press
//! [`Release`]: PedalEvent::Release
//! [`LongPress`]: PedalEvent::LongPress
//! [`DoublePress`]: PedalEvent::DoublePress

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::model::{monotonic_ns, transmission_time, Stamp};

/// What the dealer did with the pedal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PedalEvent {
    /// The pedal went down (debounced). Sent at once, whatever follows.
    Press,
    /// The pedal came back up (debounced).
    Release,
    /// The pedal has been held for the long-press time; at most once per press.
    LongPress,
    /// This press started soon enough after a short press to make a double press. Always
    /// directly after that press's own [`PedalEvent::Press`], with the same stamp.
    DoublePress,
}

impl PedalEvent {
    /// The lowercase name used in logs and event payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            PedalEvent::Press => "press",
            PedalEvent::Release => "release",
            PedalEvent::LongPress => "long_press",
            PedalEvent::DoublePress => "double_press",
        }
    }
}

impl fmt::Display for PedalEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A raw level change of the pedal's contact, as a backend saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// When the level changed, CLOCK_MONOTONIC in nanoseconds (a kernel edge or event stamp
    /// where the hardware gives one).
    pub at_ns: u64,
    /// The level after the change: `true` while the contact says "pressed".
    pub pressed: bool,
}

impl Edge {
    pub const fn press(at_ns: u64) -> Self {
        Self {
            at_ns,
            pressed: true,
        }
    }

    pub const fn release(at_ns: u64) -> Self {
        Self {
            at_ns,
            pressed: false,
        }
    }
}

/// The pedal's timings (`[[device]] role = "pedal"`: `debounce`, `long_press`, `double_press`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PedalTiming {
    /// How long a new level must hold before it counts. 20 ms by default: enough for the
    /// bounce of common micro-switch pedals (typically 1–10 ms), well under a deliberate tap.
    /// Zero takes every edge as it comes (for pedals that debounce in their own firmware).
    pub debounce: Duration,
    /// How long a hold makes a long press. 800 ms by default. Zero turns long presses off.
    pub long_press: Duration,
    /// The longest gap between a short press's release and the next press that makes a
    /// double press. 350 ms by default. Zero turns double presses off.
    pub double_press: Duration,
}

impl Default for PedalTiming {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(20),
            long_press: Duration::from_millis(800),
            double_press: Duration::from_millis(350),
        }
    }
}

impl PedalTiming {
    /// Checks that the timings make sense together. The machine copes with any values, but
    /// these mistakes make pedals behave in ways a dealer cannot work with.
    pub fn validate(&self) -> Result<(), PedalError> {
        if !self.long_press.is_zero() && self.long_press <= self.debounce {
            return Err(PedalError::LongPressTooShort {
                long_press: self.long_press,
                debounce: self.debounce,
            });
        }
        if !self.double_press.is_zero() && self.double_press <= self.debounce {
            return Err(PedalError::DoublePressTooShort {
                double_press: self.double_press,
                debounce: self.debounce,
            });
        }
        Ok(())
    }
}

/// A pedal event and when it happened (CLOCK_MONOTONIC, nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedPedalEvent {
    pub at_ns: u64,
    pub event: PedalEvent,
}

/// Running totals, for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PedalStats {
    /// Edges fed in.
    pub edges: u64,
    /// Edges that repeated the current level (no change).
    pub repeated: u64,
    /// Edges stamped before a time the machine had already seen.
    pub reordered: u64,
    /// Level changes that did not hold for the debounce time (bounces, knocks).
    pub glitches: u64,
}

/// The sans-IO pedal state machine: edges and clock ticks in, [`TimedPedalEvent`]s out.
///
/// See the [module documentation](self) for the rules.
#[derive(Debug, Clone)]
pub struct PedalMachine {
    timing: PedalTiming,
    debounce_ns: u64,
    long_ns: u64,
    double_ns: u64,
    /// The latest instant seen (edges and ticks); never goes back.
    now: u64,
    /// The contact's level as last reported, and since when.
    raw: bool,
    raw_at: u64,
    /// The debounced level.
    stable: bool,
    /// The first edge away from `stable` in the current unsettled stretch, if any: the stamp
    /// a confirmed transition gets.
    pending_from: Option<u64>,
    /// Stamp of the current (or last) confirmed press.
    press_at: u64,
    long_fired: bool,
    /// The current press was the second half of a double press.
    press_was_double: bool,
    /// The pedal was down when the machine started; its release is swallowed.
    held_at_start: bool,
    /// The release stamp of the last short press, which a quick next press makes a double.
    last_tap_release: Option<u64>,
    stats: PedalStats,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl PedalMachine {
    /// A machine for a pedal that is up.
    pub fn new(timing: PedalTiming) -> Self {
        Self::starting(timing, false, 0)
    }

    /// A machine for a pedal whose level at `at_ns` is `pressed` (read when the device was
    /// opened). A pedal that is already down yields nothing until it has been let go.
    pub fn starting(timing: PedalTiming, pressed: bool, at_ns: u64) -> Self {
        Self {
            timing,
            debounce_ns: nanos(timing.debounce),
            long_ns: nanos(timing.long_press),
            double_ns: nanos(timing.double_press),
            now: at_ns,
            raw: pressed,
            raw_at: at_ns,
            stable: pressed,
            pending_from: None,
            press_at: at_ns,
            long_fired: false,
            press_was_double: false,
            held_at_start: pressed,
            last_tap_release: None,
            stats: PedalStats::default(),
        }
    }

    pub fn timing(&self) -> PedalTiming {
        self.timing
    }

    /// The debounced level (`true` while the pedal is down).
    pub fn is_pressed(&self) -> bool {
        self.stable
    }

    pub fn stats(&self) -> PedalStats {
        self.stats
    }

    /// Feeds one raw edge. Returns the events it (and any timer that fell due before it)
    /// caused, in order.
    pub fn edge(&mut self, edge: Edge) -> Vec<TimedPedalEvent> {
        let mut out = Vec::new();
        self.stats.edges += 1;
        let at = if edge.at_ns < self.now {
            self.stats.reordered += 1;
            self.now
        } else {
            edge.at_ns
        };
        // Timers that fell due before this edge are decided on the level before it.
        self.settle(at, &mut out);
        if edge.pressed == self.raw {
            self.stats.repeated += 1;
        } else {
            self.raw = edge.pressed;
            self.raw_at = at;
            if self.raw != self.stable && self.pending_from.is_none() {
                self.pending_from = Some(at);
            }
        }
        // With a zero debounce the edge counts at once.
        self.settle(at, &mut out);
        out
    }

    /// Advances the clock to `now_ns` and returns the events whose timers fell due. A time
    /// earlier than one already seen changes nothing.
    pub fn tick(&mut self, now_ns: u64) -> Vec<TimedPedalEvent> {
        let mut out = Vec::new();
        self.settle(now_ns, &mut out);
        out
    }

    /// When [`tick`](Self::tick) next has something to decide, if ever: the end of a debounce
    /// period or the long-press threshold. Always later than every time already seen, so a
    /// loop that sleeps until it and ticks never spins.
    pub fn next_deadline(&self) -> Option<u64> {
        match (self.debounce_deadline(), self.long_press_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn debounce_deadline(&self) -> Option<u64> {
        self.pending_from
            .map(|_| self.raw_at.saturating_add(self.debounce_ns))
    }

    /// The long-press threshold of the current press, unless it is off, already sent, or
    /// undecidable yet: a release that started before the threshold and is still bouncing
    /// decides it (a confirmed release means the hold was shorter).
    fn long_press_deadline(&self) -> Option<u64> {
        if !self.stable || self.long_fired || self.held_at_start || self.long_ns == 0 {
            return None;
        }
        let due = self.press_at.saturating_add(self.long_ns);
        match self.pending_from {
            Some(release_from) if release_from < due => None,
            _ => Some(due),
        }
    }

    /// Decides every timer that fell due up to `now`, earliest first.
    fn settle(&mut self, now: u64, out: &mut Vec<TimedPedalEvent>) {
        self.now = self.now.max(now);
        loop {
            let debounce_due = self.debounce_deadline().filter(|&t| t <= self.now);
            let long_due = self.long_press_deadline().filter(|&t| t <= self.now);
            match (debounce_due, long_due) {
                // On a tie the hold did reach the threshold before the release began.
                (Some(d), Some(l)) if l <= d => self.fire_long_press(l, out),
                (None, Some(l)) => self.fire_long_press(l, out),
                (Some(_), _) => self.settle_debounce(out),
                (None, None) => break,
            }
        }
    }

    fn fire_long_press(&mut self, at: u64, out: &mut Vec<TimedPedalEvent>) {
        self.long_fired = true;
        out.push(TimedPedalEvent {
            at_ns: at,
            event: PedalEvent::LongPress,
        });
    }

    /// The raw level has held for the debounce time: a transition, or a blip that is over.
    fn settle_debounce(&mut self, out: &mut Vec<TimedPedalEvent>) {
        let Some(first_edge) = self.pending_from.take() else {
            return;
        };
        if self.raw == self.stable {
            self.stats.glitches += 1;
            return;
        }
        self.stable = self.raw;
        if self.stable {
            self.on_press(first_edge, out);
        } else {
            self.on_release(first_edge, out);
        }
    }

    fn on_press(&mut self, at: u64, out: &mut Vec<TimedPedalEvent>) {
        self.press_at = at;
        self.long_fired = false;
        out.push(TimedPedalEvent {
            at_ns: at,
            event: PedalEvent::Press,
        });
        let double = self.double_ns > 0
            && self
                .last_tap_release
                .is_some_and(|released| at.saturating_sub(released) <= self.double_ns);
        self.last_tap_release = None;
        self.press_was_double = double;
        if double {
            out.push(TimedPedalEvent {
                at_ns: at,
                event: PedalEvent::DoublePress,
            });
        }
    }

    fn on_release(&mut self, at: u64, out: &mut Vec<TimedPedalEvent>) {
        if self.held_at_start {
            // Its press was never reported, so neither is its release.
            self.held_at_start = false;
            return;
        }
        out.push(TimedPedalEvent {
            at_ns: at,
            event: PedalEvent::Release,
        });
        // Only a short, single press can be the first half of a double press.
        self.last_tap_release = (!self.long_fired && !self.press_was_double).then_some(at);
    }
}

/// Why a pedal could not be set up or stopped working.
#[derive(Debug, thiserror::Error)]
pub enum PedalError {
    #[error(
        "long_press ({long_press:?}) must be longer than debounce ({debounce:?}): \
         raise long_press (800ms is usual) or lower debounce (20ms is usual)"
    )]
    LongPressTooShort {
        long_press: Duration,
        debounce: Duration,
    },
    #[error(
        "double_press ({double_press:?}) must be longer than debounce ({debounce:?}): \
         raise double_press (350ms is usual) or set it to 0 to turn double presses off"
    )]
    DoublePressTooShort {
        double_press: Duration,
        debounce: Duration,
    },
    #[error("unknown modem-status line {given:?}: use one of cts, dsr, dcd, ri")]
    UnknownLine { given: String },
    #[error(
        "the pedal's serial port closed (USB-serial adapter unplugged?): \
         check the cable; Croupier reopens the port when it returns"
    )]
    Closed,
    #[error("reading the pedal's serial port failed ({0}): check the cable and the adapter")]
    Io(#[from] std::io::Error),
    #[error(
        "cannot read the {line} line of the pedal's serial adapter ({source}): \
         the adapter may not wire the modem-status lines (many cheap CH340/PL2303 cables \
         only carry RX/TX); use an FTDI-based adapter, or a pedal that sends a byte per press"
    )]
    ModemLine {
        line: ModemLine,
        #[source]
        source: tokio_serial::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Serial pedal, one byte per press
// ---------------------------------------------------------------------------------------------

/// The simplest USB-serial foot switches send one byte (often `P`) per press and nothing on
/// release. This turns each byte into a press and a release the state machine accepts.
///
/// * Each byte is stamped when it was on the wire: the read time minus the transmission time
///   of it and of every byte after it in the same read (8N1 at the port's baud rate).
/// * The synthetic press lasts exactly `debounce`, so it counts; the Press is reported as soon
///   as the byte is read and the Release one debounce period later.
/// * CR and LF are not presses: pedals that end their byte with a line ending would otherwise
///   make every press a triple press.
/// * A byte less than two debounce periods after the previous press belongs to that press
///   (pedals that repeat their byte, or send two bytes per press).
#[derive(Debug, Clone)]
pub struct SerialBytePedal {
    hold_ns: u64,
    /// No new press before this instant (the previous synthetic press is still settling).
    busy_until: u64,
}

impl SerialBytePedal {
    pub fn new(timing: &PedalTiming) -> Self {
        Self {
            hold_ns: nanos(timing.debounce),
            busy_until: 0,
        }
    }

    /// The edges for the bytes of one read that returned at `read_at_ns`, each byte taking
    /// `byte_ns` on the wire (see [`transmission_time`]).
    pub fn bytes(&mut self, bytes: &[u8], read_at_ns: u64, byte_ns: u64) -> Vec<Edge> {
        let mut edges = Vec::new();
        let count = bytes.len() as u64;
        for (index, &byte) in (0u64..).zip(bytes) {
            if byte == b'\r' || byte == b'\n' {
                continue;
            }
            let after = count - index;
            let at = read_at_ns.saturating_sub(after.saturating_mul(byte_ns));
            if at < self.busy_until {
                continue;
            }
            let released = at.saturating_add(self.hold_ns);
            edges.push(Edge::press(at));
            edges.push(Edge::release(released));
            self.busy_until = released.saturating_add(self.hold_ns);
        }
        edges
    }
}

// ---------------------------------------------------------------------------------------------
// Serial pedal on a modem-status line
// ---------------------------------------------------------------------------------------------

/// A modem-status input of a serial port that a pedal's contact can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModemLine {
    /// Clear To Send.
    Cts,
    /// Data Set Ready.
    Dsr,
    /// Data Carrier Detect.
    Dcd,
    /// Ring Indicator.
    Ri,
}

impl ModemLine {
    /// The lowercase name used in the config (`line = "cts"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ModemLine::Cts => "cts",
            ModemLine::Dsr => "dsr",
            ModemLine::Dcd => "dcd",
            ModemLine::Ri => "ri",
        }
    }
}

impl fmt::Display for ModemLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModemLine {
    type Err = PedalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        [
            ModemLine::Cts,
            ModemLine::Dsr,
            ModemLine::Dcd,
            ModemLine::Ri,
        ]
        .into_iter()
        .find(|line| line.as_str().eq_ignore_ascii_case(wanted))
        .ok_or_else(|| PedalError::UnknownLine {
            given: s.to_owned(),
        })
    }
}

/// A pedal contact on a modem-status line, read by polling. Sans-IO: it gets each polled
/// level with the instant it was read and reports the changes as edges.
///
/// Polling cannot see *when* between two polls the level changed, so an edge is stamped
/// midway between the poll that saw the old level and the poll that saw the new one: with a
/// poll every `p`, the stamp is off by at most `p / 2` either way (±2.5 ms at the default
/// 5 ms). Bounces shorter than the poll interval may be missed entirely, which only helps.
#[derive(Debug, Clone)]
pub struct ModemLinePedal {
    active_low: bool,
    last: Option<(bool, u64)>,
}

impl ModemLinePedal {
    /// `active_low`: the line is *deasserted* while the pedal is down (a normally-closed
    /// switch, or a contact that pulls the line to the inactive level).
    pub fn new(active_low: bool) -> Self {
        Self {
            active_low,
            last: None,
        }
    }

    /// The pedal's level at the last poll, if there was one.
    pub fn level(&self) -> Option<bool> {
        self.last.map(|(pressed, _)| pressed)
    }

    /// Feeds one polled level (`asserted`: the line reads as set) read at `at_ns`. The first
    /// poll only records the level (start the machine with [`PedalMachine::starting`]).
    pub fn poll(&mut self, asserted: bool, at_ns: u64) -> Option<Edge> {
        let pressed = asserted != self.active_low;
        let previous = self.last.replace((pressed, at_ns));
        match previous {
            Some((was, polled_at)) if was != pressed => {
                let midway = polled_at.saturating_add(at_ns.saturating_sub(polled_at) / 2);
                Some(Edge {
                    at_ns: midway.min(at_ns),
                    pressed,
                })
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The async side, shared by every backend
// ---------------------------------------------------------------------------------------------

/// A backend that reports pedal edges: a GPIO line, an evdev device, a serial port.
pub trait EdgeSource: Send {
    type Error: std::error::Error + Send + 'static;

    /// Waits for the next raw edges. It must be cancel-safe (dropping the future loses no
    /// edge), because [`drive`] drops it when a timer falls due.
    fn next_edges(&mut self) -> impl Future<Output = Result<Vec<Edge>, Self::Error>> + Send;

    /// The pedal's level when the source was opened, and when it was read, if the backend
    /// can tell (GPIO, modem lines). A pedal that is down then is ignored until let go.
    fn level_at_open(&self) -> Option<(bool, u64)> {
        None
    }

    /// How much later than the instant it happened an edge can reach [`next_edges`]
    /// (kernel-to-user latency, a polling interval). Timers are decided only once this has
    /// passed, so a late edge is never overtaken by a timer it should have cancelled.
    ///
    /// [`next_edges`]: EdgeSource::next_edges
    fn latency(&self) -> Duration {
        Duration::from_millis(5)
    }
}

/// Converts a CLOCK_MONOTONIC instant into a full [`Stamp`], taking the wall-clock time from
/// the current offset between the two clocks.
pub fn stamp_of_monotonic(mono_ns: u64) -> Stamp {
    let now = Stamp::now();
    Stamp {
        mono_ns,
        ..now.earlier(Duration::from_nanos(now.mono_ns.saturating_sub(mono_ns)))
    }
}

fn tokio_instant_at(mono_ns: u64) -> tokio::time::Instant {
    // tokio's clock is CLOCK_MONOTONIC too; only the origin differs.
    tokio::time::Instant::now() + Duration::from_nanos(mono_ns.saturating_sub(monotonic_ns()))
}

/// Runs a pedal: reads `source`'s edges through a [`PedalMachine`] with `timing`, sleeps
/// until its timers fall due, and sends every event, stamped, to `out`.
///
/// Returns `Ok(())` when `out`'s receiver is gone (shutdown), and the source's error when the
/// device fails (unplugged): the caller reports the device down and retries with backoff.
pub async fn drive<S: EdgeSource>(
    source: &mut S,
    timing: PedalTiming,
    out: &mpsc::Sender<(Stamp, PedalEvent)>,
) -> Result<(), S::Error> {
    let mut machine = match source.level_at_open() {
        Some((pressed, at_ns)) => PedalMachine::starting(timing, pressed, at_ns),
        None => PedalMachine::new(timing),
    };
    let latency = nanos(source.latency());
    loop {
        let edges = match machine.next_deadline() {
            Some(due) => {
                let wake = tokio_instant_at(due.saturating_add(latency));
                match tokio::time::timeout_at(wake, source.next_edges()).await {
                    Ok(edges) => edges?,
                    Err(_elapsed) => Vec::new(),
                }
            }
            None => source.next_edges().await?,
        };
        let mut events = Vec::new();
        for edge in edges {
            events.extend(machine.edge(edge));
        }
        events.extend(machine.tick(monotonic_ns().saturating_sub(latency)));
        for TimedPedalEvent { at_ns, event } in events {
            tracing::debug!(%event, at_ns, "pedal");
            if out.send((stamp_of_monotonic(at_ns), event)).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// A byte-per-press pedal on any `AsyncRead` (a serial port, a pseudo-terminal).
#[derive(Debug)]
pub struct SerialByteSource<R> {
    reader: R,
    pedal: SerialBytePedal,
    byte_ns: u64,
}

impl<R: AsyncRead + Unpin + Send> SerialByteSource<R> {
    /// `baud` stamps each byte with its transmission time (0: not a serial line).
    pub fn new(reader: R, timing: &PedalTiming, baud: u32) -> Self {
        Self {
            reader,
            pedal: SerialBytePedal::new(timing),
            byte_ns: nanos(transmission_time(1, baud)),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> EdgeSource for SerialByteSource<R> {
    type Error = PedalError;

    async fn next_edges(&mut self) -> Result<Vec<Edge>, PedalError> {
        let mut buf = [0u8; 64];
        loop {
            // `read` is cancel-safe: bytes are either returned or left in the port.
            let n = self.reader.read(&mut buf).await?;
            let read_at = monotonic_ns();
            let Some(bytes) = buf.get(..n).filter(|b| !b.is_empty()) else {
                return Err(PedalError::Closed);
            };
            let edges = self.pedal.bytes(bytes, read_at, self.byte_ns);
            if !edges.is_empty() {
                return Ok(edges);
            }
        }
    }

    fn latency(&self) -> Duration {
        // The synthetic release is stamped ahead of the read; nothing arrives late.
        Duration::ZERO
    }
}

/// The default modem-line polling interval: 5 ms keeps the stamp within ±2.5 ms and costs
/// one `TIOCMGET` ioctl per poll (negligible).
pub const DEFAULT_MODEM_POLL: Duration = Duration::from_millis(5);

/// A pedal contact on a serial adapter's modem-status line, polled.
#[derive(Debug)]
pub struct ModemLineSource<P> {
    port: P,
    line: ModemLine,
    pedal: ModemLinePedal,
    every: Duration,
    interval: tokio::time::Interval,
    opened: (bool, u64),
}

impl<P: tokio_serial::SerialPort> ModemLineSource<P> {
    /// Raises DTR and RTS (they power the contact: wire DTR → switch → CTS, say) and reads the
    /// pedal's level once. `every` is the polling interval (see [`DEFAULT_MODEM_POLL`]).
    pub fn new(
        mut port: P,
        line: ModemLine,
        active_low: bool,
        every: Duration,
    ) -> Result<Self, PedalError> {
        let lines_err = |source| PedalError::ModemLine { line, source };
        port.write_data_terminal_ready(true).map_err(lines_err)?;
        port.write_request_to_send(true).map_err(lines_err)?;
        let mut pedal = ModemLinePedal::new(active_low);
        let at = monotonic_ns();
        pedal.poll(read_modem_line(&mut port, line)?, at);
        let every = every.max(Duration::from_millis(1));
        let mut interval = tokio::time::interval(every);
        // After a stall, poll again at once rather than in a burst.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            port,
            line,
            opened: (pedal.level().unwrap_or(false), at),
            pedal,
            every,
            interval,
        })
    }
}

fn read_modem_line<P: tokio_serial::SerialPort>(
    port: &mut P,
    line: ModemLine,
) -> Result<bool, PedalError> {
    let level = match line {
        ModemLine::Cts => port.read_clear_to_send(),
        ModemLine::Dsr => port.read_data_set_ready(),
        ModemLine::Dcd => port.read_carrier_detect(),
        ModemLine::Ri => port.read_ring_indicator(),
    };
    level.map_err(|source| PedalError::ModemLine { line, source })
}

impl<P: tokio_serial::SerialPort> EdgeSource for ModemLineSource<P> {
    type Error = PedalError;

    async fn next_edges(&mut self) -> Result<Vec<Edge>, PedalError> {
        loop {
            // The only await: cancel-safe.
            self.interval.tick().await;
            let asserted = read_modem_line(&mut self.port, self.line)?;
            if let Some(edge) = self.pedal.poll(asserted, monotonic_ns()) {
                return Ok(vec![edge]);
            }
        }
    }

    fn level_at_open(&self) -> Option<(bool, u64)> {
        Some(self.opened)
    }

    fn latency(&self) -> Duration {
        self.every + Duration::from_millis(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn defaults_are_valid() {
        assert!(PedalTiming::default().validate().is_ok());
        let bad = PedalTiming {
            long_press: Duration::from_millis(10),
            ..PedalTiming::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("raise long_press"));
        let off = PedalTiming {
            long_press: Duration::ZERO,
            double_press: Duration::ZERO,
            ..PedalTiming::default()
        };
        assert!(off.validate().is_ok());
    }

    #[test]
    fn serial_bytes_become_presses_stamped_on_the_wire() {
        let mut pedal = SerialBytePedal::new(&PedalTiming::default());
        // One `P` read at 100 ms, 1.04 ms a byte at 9600 baud.
        let byte = nanos(transmission_time(1, 9600));
        let edges = pedal.bytes(b"P", 100 * MS, byte);
        assert_eq!(
            edges,
            vec![Edge::press(100 * MS - byte), Edge::release(120 * MS - byte)]
        );
        // A repeated byte and a line ending right after belong to the same press.
        assert!(pedal.bytes(b"P\r\n", 101 * MS, byte).is_empty());
        // A press 200 ms later is a new press.
        assert_eq!(pedal.bytes(b"P", 300 * MS, 0).len(), 2);
    }

    #[test]
    fn modem_line_edges_are_stamped_between_polls() {
        let mut pedal = ModemLinePedal::new(false);
        assert_eq!(pedal.poll(false, 0), None);
        assert_eq!(pedal.poll(false, 5 * MS), None);
        assert_eq!(pedal.poll(true, 10 * MS), Some(Edge::press(7_500_000)));
        assert_eq!(pedal.poll(true, 15 * MS), None);
        let mut inverted = ModemLinePedal::new(true);
        assert_eq!(inverted.poll(true, 0), None);
        assert_eq!(inverted.level(), Some(false));
        assert_eq!(inverted.poll(false, 4 * MS), Some(Edge::press(2 * MS)));
    }

    #[test]
    fn modem_line_names() {
        assert_eq!("CTS".parse::<ModemLine>().unwrap(), ModemLine::Cts);
        assert_eq!(" dcd ".parse::<ModemLine>().unwrap(), ModemLine::Dcd);
        let err = "rts".parse::<ModemLine>().unwrap_err();
        assert!(err.to_string().contains("cts, dsr, dcd, ri"));
    }

    #[test]
    fn monotonic_stamps_keep_their_instant() {
        let now = monotonic_ns();
        let stamp = stamp_of_monotonic(now.saturating_sub(3 * MS));
        assert_eq!(stamp.mono_ns, now.saturating_sub(3 * MS));
    }

    #[tokio::test]
    async fn drive_reports_a_serial_press_and_its_release() {
        let (mut device, port) = tokio::io::duplex(64);
        let timing = PedalTiming::default();
        let mut source = SerialByteSource::new(port, &timing, 9600);
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(async move { drive(&mut source, timing, &tx).await });
        tokio::io::AsyncWriteExt::write_all(&mut device, b"P")
            .await
            .unwrap();
        let (press_stamp, press) = rx.recv().await.unwrap();
        assert_eq!(press, PedalEvent::Press);
        let (release_stamp, release) = rx.recv().await.unwrap();
        assert_eq!(release, PedalEvent::Release);
        assert_eq!(release_stamp.mono_ns - press_stamp.mono_ns, 20 * MS);
        drop(device);
        let ended = task.await.unwrap();
        assert!(matches!(ended, Err(PedalError::Closed)));
    }
}
