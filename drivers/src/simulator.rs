//! Device simulators: each one plays a table device on a pseudo-terminal, in that device's real
//! framing, so the daemon can be run and tested end to end without hardware.
//!
//! The bytes come from a [`Script`], a pure, seeded generator of [`Step`]s (`delay, bytes`), one
//! game round at a time. [`Simulator`] opens a [`PtyPair`], optionally links it to a stable path,
//! and then only sleeps and writes the script's steps until it is told to stop.
//!
//! | role    | framing (each line ends in `\r\n`)                                        | one round (at pace 1)                           |
//! | ------- | ------------------------------------------------------------------------- | ----------------------------------------------- |
//! | `wheel` | `*X;<state>;<spin count 000-999>;<number 00-36>;<warnings hex>;<rotor speed 000>;<direction 0 cw / 1 ccw>` | state 1, state 2 every second for 15 s, 3 (ball in rim), 4 (no more bets), 5 with the winning number |
//! | `shoe`  | rank `A 2-9 T J Q K` then suit `S H D C`, e.g. `KH`                       | a baccarat coup from a shuffled 8-deck shoe: 4–6 cards 1 s apart, third-card rules applied |
//! | `rfid`  | ISO 15693 UID as 16 uppercase hex digits, e.g. `E00401501234ABCD`         | 2–4 tags from a fixed pool of the table's tags   |
//! | `pedal` | one byte `P` per press, no line ending                                    | a press to open bets, a press 15 s later to close them |
//!
//! The wheel frames follow the Cammegh SlingShot style: the number field carries the previous
//! result until state 5 announces the new one, the spin count goes up by one at each game start
//! (wrapping after 999), the rotor turns at 25–30 rpm and changes direction every spin.
//!
//! Wheel and shoe frames are written with the drivers' own encoders ([`WheelEvent::encode`] and
//! [`card_line`]), the same ones the decoders are tested against, so a simulator and the daemon
//! reading it cannot disagree about the framing.
//!
//! # Use from the daemon
//!
//! ```no_run
//! # async fn demo() -> Result<(), croupier_drivers::simulator::SimulatorError> {
//! use croupier_drivers::{simulator::{Simulator, SimulatorOptions}, DeviceRole};
//! use tokio_util::sync::CancellationToken;
//!
//! let opts = SimulatorOptions { link: Some("/tmp/croupier/wheel".into()), ..Default::default() };
//! let sim = Simulator::start(DeviceRole::Wheel, opts)?; // the PTY exists from here on
//! println!("{sim}"); // wheel simulator on /dev/pts/7 (linked at /tmp/croupier/wheel)
//! let shutdown = CancellationToken::new();
//! let summary = sim.run(shutdown.clone()).await?; // until shutdown.cancel() or the last round
//! # Ok(()) }
//! ```
//!
//! Stopping is by a [`CancellationToken`]: cancel it (on Ctrl-C, or when the demo ends) and the
//! simulator stops at once (a write in progress is abandoned), closes the terminal and removes
//! its link. A reader that opens the port late may first get bytes queued while nobody read
//! (up to a few dozen KiB), just as a real port can hold stale bytes: readers should clear
//! their input buffer when they open a port.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cards::card_line;
use crate::model::{Card, Rank, Suit};
use std::collections::VecDeque;

use crate::pty::{PtyError, PtyMaster, PtyPair};
use crate::scenario::{Action, FaultPlan, Injector, Timed};
use crate::wheel::{Direction, WarningFlags, WheelEvent, WheelState};
use crate::DeviceRole;

/// Why a simulator could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// `pace` is not a usable speed factor.
    #[error("pace must be a number from {MIN_PACE} up (1 = real time, 10 = ten times faster), got {pace}")]
    InvalidPace {
        /// The pace given.
        pace: f64,
    },
    /// The pseudo-terminal could not be opened, linked or flushed.
    #[error(transparent)]
    Pty(#[from] PtyError),
    /// Writing to the pseudo-terminal failed for a reason other than a slow reader.
    #[error(
        "{role} simulator could not write to {} ({cause}); restart the simulator",
        path.display()
    )]
    Write {
        /// The simulated device.
        role: DeviceRole,
        /// The slave device.
        path: PathBuf,
        /// The system error.
        cause: io::Error,
    },
}

/// The slowest pace accepted (one hundred times slower than real time).
pub const MIN_PACE: f64 = 0.01;

/// How a simulator runs. `SimulatorOptions::default()` is real time, forever, seed 1, no link.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorOptions {
    /// Make this path a symbolic link to the simulator's terminal (see [`PtyPair::link`]).
    pub link: Option<PathBuf>,
    /// Speed factor: 1.0 is real time, 100.0 plays a 30 s round in 0.3 s. At least [`MIN_PACE`].
    pub pace: f64,
    /// Stop after this many rounds; `None` runs until shutdown.
    pub rounds: Option<u32>,
    /// Seed of the pseudo-random sequence: the same seed gives the same bytes.
    pub seed: u64,
    /// How long one write may wait for a reader to make room (real time, not paced). After
    /// that the unread bytes are discarded, as on a serial line nobody listens to.
    pub write_timeout: Duration,
    /// After the last of `rounds`, keep the terminal open this long (real time) so a reader
    /// can take the final bytes before the terminal closes.
    pub linger: Duration,
    /// For the RFID simulator: answer FEIG ISO-Host inventory requests with this many
    /// antennas instead of printing one UID per line. `None`: ASCII mode.
    pub feig_antennas: Option<u8>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            link: None,
            pace: 1.0,
            rounds: None,
            seed: 1,
            write_timeout: Duration::from_secs(2),
            linger: Duration::from_secs(1),
            feig_antennas: None,
        }
    }
}

/// What a finished simulator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSummary {
    /// Rounds played to the end.
    pub rounds: u32,
    /// Steps written in full.
    pub frames: u64,
    /// Steps given up on because nobody was reading (unread bytes were discarded).
    pub dropped: u64,
}

/// Opens the terminal for `role`, announces it in the log, and plays rounds until `shutdown` is
/// cancelled or `opts.rounds` are done. Use [`Simulator::start`] + [`Simulator::run`] instead
/// to learn the terminal's path before the first byte is written.
pub async fn run(
    role: DeviceRole,
    opts: SimulatorOptions,
    shutdown: CancellationToken,
) -> Result<RunSummary, SimulatorError> {
    let simulator = Simulator::start(role, opts)?;
    tracing::info!(
        role = %role,
        slave = %simulator.slave_path().display(),
        link = simulator.link_path().map(|p| p.display().to_string()),
        "simulator ready"
    );
    simulator.run(shutdown).await
}

/// Where a simulator's steps come from.
#[derive(Debug)]
pub enum Source {
    /// The built-in seeded rounds, with faults injected if a plan is given.
    Builtin { faults: Option<FaultPlan> },
    /// A script's steps, played `opts.rounds` times (once by default).
    Script(Vec<Timed>),
    /// Steps as they arrive (typed interactively); ends when the sender is dropped.
    Live(tokio::sync::mpsc::Receiver<Timed>),
}

/// A device simulator whose terminal is open and ready for a reader.
#[derive(Debug)]
pub struct Simulator {
    role: DeviceRole,
    opts: SimulatorOptions,
    /// `None` while a scripted disconnect has the device "unplugged".
    master: Option<PtyMaster>,
    slave_path: PathBuf,
    source: SourceState,
    /// The FEIG reader being played, in FEIG mode.
    feig: Option<FeigPlay>,
}

/// A FEIG reader on the terminal: it answers the host's inventory requests; the steps place
/// tags on its antennas (in turn) and each round clears them.
#[derive(Debug)]
struct FeigPlay {
    reader: crate::feig::SimulatedReader,
    codec: crate::feig::RequestCodec,
    pending: bytes::BytesMut,
    antennas: u8,
    placed: u64,
    corrupt_next: bool,
    split_next: bool,
    /// The built-in rounds leave the chips on the table until the next round's first tag.
    clear_before_next: bool,
}

#[derive(Debug)]
enum SourceState {
    Builtin {
        script: Script,
        injector: Option<Injector>,
        queue: VecDeque<Timed>,
    },
    Script {
        steps: Vec<Timed>,
        next: usize,
    },
    Live(tokio::sync::mpsc::Receiver<Timed>),
}

/// What the source says next.
enum Next {
    Step(Timed),
    /// A round (or one pass of a script) ended.
    RoundEnd,
    /// Nothing more will come.
    End,
}

impl Simulator {
    /// Validates `opts`, opens a pseudo-terminal in raw mode and links it if asked. Nothing is
    /// written yet. Must be called inside a Tokio runtime (with I/O and time enabled).
    pub fn start(role: DeviceRole, opts: SimulatorOptions) -> Result<Self, SimulatorError> {
        Self::start_with(role, opts, Source::Builtin { faults: None })
    }

    /// Like [`Simulator::start`], with the steps taken from `source`.
    pub fn start_with(
        role: DeviceRole,
        opts: SimulatorOptions,
        source: Source,
    ) -> Result<Self, SimulatorError> {
        if !(opts.pace.is_finite() && opts.pace >= MIN_PACE) {
            return Err(SimulatorError::InvalidPace { pace: opts.pace });
        }
        let master = open_master(opts.link.as_deref())?;
        let source = match source {
            Source::Builtin { faults } => SourceState::Builtin {
                script: Script::new(role, opts.seed),
                injector: faults.map(|plan| Injector::new(plan, opts.seed)),
                queue: VecDeque::new(),
            },
            Source::Script(steps) => SourceState::Script { steps, next: 0 },
            Source::Live(rx) => SourceState::Live(rx),
        };
        let feig = match (role, opts.feig_antennas) {
            (DeviceRole::Rfid, Some(antennas)) => Some(FeigPlay {
                reader: crate::feig::SimulatedReader::new(0),
                codec: crate::feig::RequestCodec::new(),
                pending: bytes::BytesMut::new(),
                antennas: antennas.clamp(1, 8),
                placed: 0,
                corrupt_next: false,
                split_next: false,
                clear_before_next: false,
            }),
            _ => None,
        };
        Ok(Self {
            role,
            slave_path: master.slave_path().to_owned(),
            opts,
            master: Some(master),
            source,
            feig,
        })
    }

    /// The simulated device.
    pub fn role(&self) -> DeviceRole {
        self.role
    }

    /// The terminal to open as the device's serial port, such as `/dev/pts/7`. After a
    /// scripted disconnect it is a new terminal.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The symbolic link to the terminal, if one was asked for.
    pub fn link_path(&self) -> Option<&Path> {
        self.opts.link.as_deref()
    }

    /// The path a config should name: the link if there is one, else the terminal itself.
    pub fn port_path(&self) -> &Path {
        self.link_path().unwrap_or_else(|| self.slave_path())
    }

    async fn next(&mut self, rounds_done: u32) -> Next {
        match &mut self.source {
            SourceState::Builtin {
                script,
                injector,
                queue,
            } => {
                if queue.is_empty() {
                    if script.rounds() > rounds_done {
                        return Next::RoundEnd;
                    }
                    for step in script.next_round() {
                        match injector {
                            Some(inj) => queue.extend(inj.step(step.delay, step.bytes)),
                            None => queue.push_back(Timed {
                                delay: step.delay,
                                action: Action::Write(step.bytes),
                            }),
                        }
                    }
                }
                queue.pop_front().map_or(Next::End, Next::Step)
            }
            SourceState::Script { steps, next } => {
                if steps.is_empty() {
                    return Next::End;
                }
                if *next == steps.len() {
                    *next = 0;
                    return Next::RoundEnd;
                }
                let step = steps[*next].clone();
                *next += 1;
                Next::Step(step)
            }
            SourceState::Live(rx) => rx.recv().await.map_or(Next::End, Next::Step),
        }
    }

    /// Plays its steps until `shutdown` is cancelled, `opts.rounds` are done or the source
    /// ends, then closes the terminal and removes the link. A reader that stalls never blocks
    /// this for longer than `opts.write_timeout`: its unread bytes are discarded and the
    /// simulator carries on.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<RunSummary, SimulatorError> {
        let role = self.role;
        let mut summary = RunSummary::default();
        let mut due = Instant::now();
        // A script is played once unless told otherwise; built-in rounds run until stopped.
        let rounds_limit = match (&self.source, self.opts.rounds) {
            (SourceState::Script { .. }, None) => Some(1),
            (_, limit) => limit,
        };
        loop {
            let step = match self.next(summary.rounds).await {
                Next::End => break,
                Next::RoundEnd => {
                    summary.rounds += 1;
                    if let Some(feig) = &mut self.feig {
                        // The dealer clears the table between rounds: at once when a script
                        // ends, and for built-in rounds when the next round begins, so the
                        // chips stay on the table (and in the inventories) in between.
                        if matches!(self.source, SourceState::Builtin { .. }) {
                            feig.clear_before_next = true;
                        } else {
                            feig.clear();
                        }
                    }
                    tracing::debug!(role = %role, round = summary.rounds, "round played");
                    if rounds_limit.is_some_and(|n| summary.rounds >= n) {
                        // Linger (a FEIG reader keeps answering) so the reader sees the end.
                        let until = Instant::now() + self.opts.linger;
                        self.wait_answering(until, &shutdown, &mut summary).await?;
                        break;
                    }
                    continue;
                }
                Next::Step(step) => step,
            };
            if matches!(self.source, SourceState::Live(_)) {
                // Typed steps run when they arrive, not on a schedule set before the wait.
                due = Instant::now();
            }
            due = add_or_far(due, paced(step.delay, self.opts.pace));
            if !self.wait_answering(due, &shutdown, &mut summary).await? {
                break;
            }
            let action = match self.feig.as_mut() {
                Some(feig) => match feig.take(step.action) {
                    Some(action) => action,
                    None => continue,
                },
                None => step.action,
            };
            let keep_going = match action {
                Action::Write(bytes) => self.write(&bytes, &mut summary, &shutdown).await?,
                Action::Split { bytes, piece, gap } => {
                    let mut go = true;
                    for (i, chunk) in bytes.chunks(piece.max(1)).enumerate() {
                        if i > 0 {
                            tokio::select! {
                                () = shutdown.cancelled() => { go = false; }
                                () = tokio::time::sleep(gap) => {}
                            }
                        }
                        if !go || !self.write(chunk, &mut summary, &shutdown).await? {
                            go = false;
                            break;
                        }
                    }
                    go
                }
                Action::Disconnect(pause) => {
                    // Unplug: closing both ends makes a reader's next read fail, as when a
                    // USB adapter is pulled. Then "plug in" a new terminal at the same link.
                    self.master = None;
                    tracing::info!(role = %role, pause_ms = pause.as_millis() as u64, "simulated disconnect");
                    let back = tokio::select! {
                        () = shutdown.cancelled() => false,
                        () = tokio::time::sleep(paced(pause, self.opts.pace)) => true,
                    };
                    if back {
                        let master = open_master(self.opts.link.as_deref())?;
                        self.slave_path = master.slave_path().to_owned();
                        tracing::info!(role = %role, slave = %self.slave_path.display(), "simulated reconnect");
                        self.master = Some(master);
                        due = Instant::now();
                    }
                    back
                }
                // Byte-stream devices carry no checksum; the FEIG responder honours this.
                Action::BadChecksum => true,
            };
            if !keep_going {
                break;
            }
        }
        let slave = self.slave_path.display().to_string();
        tracing::info!(role = %role, slave = %slave, rounds = summary.rounds, frames = summary.frames, dropped = summary.dropped, "simulator stopped");
        Ok(summary)
    }

    /// Waits until `due`; a FEIG reader answers requests meanwhile. Returns `false` on
    /// shutdown.
    async fn wait_answering(
        &mut self,
        due: Instant,
        shutdown: &CancellationToken,
        summary: &mut RunSummary,
    ) -> Result<bool, SimulatorError> {
        let mut buf = [0u8; 512];
        loop {
            let listening = self.feig.is_some() && self.master.is_some();
            let read = async {
                match self.master.as_mut() {
                    Some(master) if listening => {
                        use tokio::io::AsyncReadExt;
                        master.read(&mut buf).await
                    }
                    _ => std::future::pending().await,
                }
            };
            let n = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(false),
                () = tokio::time::sleep_until(due) => return Ok(true),
                n = read => n,
            };
            let Ok(n) = n else {
                // The host side closed; keep the schedule, answer again once it reopens.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let answers = match self.feig.as_mut() {
                Some(feig) => feig.answer(buf.get(..n).unwrap_or_default()),
                None => Vec::new(),
            };
            for (answer, split) in answers {
                let written = if split {
                    let half = answer.len() / 2;
                    let first = self
                        .write(answer.get(..half).unwrap_or_default(), summary, shutdown)
                        .await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    first
                        && self
                            .write(answer.get(half..).unwrap_or_default(), summary, shutdown)
                            .await?
                } else {
                    self.write(&answer, summary, shutdown).await?
                };
                if !written {
                    return Ok(false);
                }
            }
        }
    }

    /// Writes `bytes`; returns `false` when shutdown interrupted it.
    async fn write(
        &mut self,
        bytes: &[u8],
        summary: &mut RunSummary,
        shutdown: &CancellationToken,
    ) -> Result<bool, SimulatorError> {
        let role = self.role;
        let Some(master) = self.master.as_mut() else {
            return Ok(true);
        };
        let write = tokio::time::timeout(self.opts.write_timeout, master.write_all(bytes));
        let outcome = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(false),
            outcome = write => outcome,
        };
        match outcome {
            Ok(Ok(())) => summary.frames += 1,
            Ok(Err(cause)) => {
                return Err(SimulatorError::Write {
                    role,
                    path: master.slave_path().to_owned(),
                    cause,
                })
            }
            Err(_elapsed) => {
                // Nobody is reading and the kernel queue is full: drop what is queued, as a
                // serial line with nobody listening would, and carry on.
                master.discard_unread()?;
                summary.dropped += 1;
                if summary.dropped == 1 {
                    tracing::warn!(
                        role = %role,
                        slave = %master.slave_path().display(),
                        "nobody is reading the simulator's terminal, so its queue is full; \
                         discarding unread bytes (logged once, later drops at debug level)"
                    );
                } else {
                    tracing::debug!(role = %role, dropped = summary.dropped, "discarded unread bytes");
                }
            }
        }
        Ok(true)
    }
}

impl FeigPlay {
    /// Turns a step into what the FEIG reader does: a UID line places that tag on the next
    /// antenna; a bad checksum or a split applies to the next answer; other bytes go out raw
    /// (line noise). Returns the action still to perform on the line, if any.
    fn take(&mut self, action: Action) -> Option<Action> {
        let uid_of = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| t.trim().parse::<crate::model::TagUid>().ok())
        };
        match action {
            Action::Write(bytes) => match uid_of(&bytes) {
                Some(uid) => {
                    self.place(uid);
                    None
                }
                None => Some(Action::Write(bytes)),
            },
            Action::Split { bytes, piece, gap } => match uid_of(&bytes) {
                Some(uid) => {
                    self.place(uid);
                    self.split_next = true;
                    None
                }
                None => Some(Action::Split { bytes, piece, gap }),
            },
            Action::BadChecksum => {
                self.corrupt_next = true;
                None
            }
            Action::Disconnect(pause) => Some(Action::Disconnect(pause)),
        }
    }

    fn clear(&mut self) {
        for antenna in 1..=self.antennas {
            self.reader.set_tags(antenna, []);
        }
    }

    fn place(&mut self, uid: crate::model::TagUid) {
        if std::mem::take(&mut self.clear_before_next) {
            self.clear();
        }
        let antenna = (self.placed % u64::from(self.antennas)) as u8 + 1;
        self.placed += 1;
        self.reader.place(antenna, uid);
    }

    /// The answers to whatever whole requests `bytes` complete: (frame, write it split).
    fn answer(&mut self, bytes: &[u8]) -> Vec<(Vec<u8>, bool)> {
        use tokio_util::codec::Decoder;
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Ok(Some(decoded)) = self.codec.decode(&mut self.pending) {
            if let crate::model::Decoded::Frame { frame, .. } = decoded {
                let mut answer = self.reader.respond_to(&frame);
                if answer.is_empty() {
                    continue;
                }
                if std::mem::take(&mut self.corrupt_next) {
                    if let Some(last) = answer.last_mut() {
                        *last ^= 0x5A;
                    }
                }
                out.push((answer, std::mem::take(&mut self.split_next)));
            }
        }
        out
    }
}

fn open_master(link: Option<&Path>) -> Result<PtyMaster, SimulatorError> {
    let mut pair = PtyPair::open()?;
    if let Some(link) = link {
        pair.link(link)?;
    }
    Ok(pair.into_master()?)
}

impl fmt::Display for Simulator {
    /// `wheel simulator on /dev/pts/7 (linked at /tmp/croupier/wheel)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} simulator on {}",
            self.role,
            self.slave_path().display()
        )?;
        if let Some(link) = self.link_path() {
            write!(f, " (linked at {})", link.display())?;
        }
        Ok(())
    }
}

fn paced(delay: Duration, pace: f64) -> Duration {
    Duration::try_from_secs_f64(delay.as_secs_f64() / pace).unwrap_or(Duration::from_secs(86_400))
}

fn add_or_far(at: Instant, delay: Duration) -> Instant {
    at.checked_add(delay)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400))
}

// ---------------------------------------------------------------------------------------------
// Sans-IO: the scripts.

/// One thing a device sends: wait `delay` (real time, before pacing), then write `bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Time since the previous step (or since the start, for the first step).
    pub delay: Duration,
    /// The bytes to write, a whole frame.
    pub bytes: Vec<u8>,
}

impl Step {
    fn after(delay: Duration, bytes: Vec<u8>) -> Self {
        Self { delay, bytes }
    }
}

/// Delay before the very first step, so a reader that opens the port right away misses nothing.
pub const START_DELAY: Duration = Duration::from_millis(500);
/// How long bets stay open in a simulated round.
pub const BET_WINDOW: Duration = Duration::from_secs(15);

/// The seeded byte sequence of one simulated device, one round at a time. Pure: no clock, no I/O.
///
/// It is also an [`Iterator`] over every step of every round, endlessly.
#[derive(Debug, Clone)]
pub struct Script {
    role: DeviceRole,
    rng: XorShift,
    rounds: u32,
    device: DeviceState,
    pending: std::collections::VecDeque<Step>,
}

#[derive(Debug, Clone)]
enum DeviceState {
    Wheel {
        spin_count: u16,
        last_number: u8,
        ccw: bool,
    },
    Shoe {
        cards: Vec<Card>,
        next: usize,
    },
    Rfid {
        tags: Vec<u64>,
    },
    Pedal,
}

/// Cards left in the shoe at which it is replaced by a freshly shuffled one (the cut card).
const CUT_CARD: usize = 16;
/// Decks in a baccarat shoe.
pub const DECKS: usize = 8;
/// Tags in a simulated table's RFID pool.
const TAG_POOL: usize = 12;

impl Script {
    /// A script for `role` seeded with `seed`.
    pub fn new(role: DeviceRole, seed: u64) -> Self {
        let mut rng = XorShift::new(seed ^ (role as u64).wrapping_mul(0x9E37_79B9));
        let device = match role {
            DeviceRole::Wheel => DeviceState::Wheel {
                spin_count: 0,
                last_number: rng.below(37) as u8,
                ccw: rng.below(2) == 1,
            },
            DeviceRole::Shoe => DeviceState::Shoe {
                cards: shuffled_shoe(&mut rng),
                next: 0,
            },
            DeviceRole::Rfid => DeviceState::Rfid {
                tags: (0..TAG_POOL)
                    // E0 = ISO 15693, 04 = NXP, 01 = ICODE SLIX, then a 40-bit serial number.
                    .map(|_| 0xE004_0100_0000_0000 | (rng.next_u64() & 0xFF_FFFF_FFFF))
                    .collect(),
            },
            DeviceRole::Pedal => DeviceState::Pedal,
        };
        Self {
            role,
            rng,
            rounds: 0,
            device,
            pending: std::collections::VecDeque::new(),
        }
    }

    /// The simulated device.
    pub fn role(&self) -> DeviceRole {
        self.role
    }

    /// Rounds produced so far by [`Script::next_round`].
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The steps of the next round. The first step's delay is [`START_DELAY`] for the first
    /// round and the pause between rounds after that.
    pub fn next_round(&mut self) -> Vec<Step> {
        let first = self.rounds == 0;
        self.rounds += 1;
        let rng = &mut self.rng;
        let gap = |between: Duration| if first { START_DELAY } else { between };
        match &mut self.device {
            DeviceState::Wheel {
                spin_count,
                last_number,
                ccw,
            } => {
                *spin_count = (*spin_count + 1) % 1000;
                *ccw = !*ccw;
                let number = rng.below(37) as u8;
                let rotor_speed = 25 + rng.below(6) as u16;
                let direction = if *ccw {
                    Direction::CounterClockwise
                } else {
                    Direction::Clockwise
                };
                let status = |state, number| WheelEvent::Status {
                    state,
                    spin_count: *spin_count,
                    number,
                    warnings: WarningFlags::default(),
                    rotor_speed,
                    direction,
                };
                let mut steps = vec![Step::after(
                    gap(Duration::from_secs(4)),
                    status(WheelState::GameStart, *last_number).encode(),
                )];
                let second = Duration::from_secs(1);
                for _ in 0..BET_WINDOW.as_secs() {
                    steps.push(Step::after(
                        second,
                        status(WheelState::PlaceBets, *last_number).encode(),
                    ));
                }
                steps.push(Step::after(
                    second,
                    status(WheelState::BallInRim, *last_number).encode(),
                ));
                steps.push(Step::after(
                    Duration::from_secs(4),
                    status(WheelState::NoMoreBets, *last_number).encode(),
                ));
                steps.push(Step::after(
                    Duration::from_secs(6),
                    status(WheelState::WinningNumber, number).encode(),
                ));
                *last_number = number;
                steps
            }
            DeviceState::Shoe { cards, next } => {
                if cards.len() - *next < CUT_CARD {
                    *cards = shuffled_shoe(rng);
                    *next = 0;
                }
                let coup = baccarat_coup(&cards[*next..]);
                *next += coup.len();
                coup.iter()
                    .enumerate()
                    .map(|(i, card)| {
                        let delay = if i == 0 {
                            gap(BET_WINDOW)
                        } else {
                            Duration::from_secs(1)
                        };
                        Step::after(delay, card_line(*card))
                    })
                    .collect()
            }
            DeviceState::Rfid { tags } => {
                let count = 2 + rng.below(3) as usize;
                let mut picked: Vec<u64> = Vec::with_capacity(count);
                while picked.len() < count {
                    let tag = tags[rng.below(tags.len() as u32) as usize];
                    if !picked.contains(&tag) {
                        picked.push(tag);
                    }
                }
                picked
                    .into_iter()
                    .enumerate()
                    .map(|(i, tag)| {
                        let delay = if i == 0 {
                            gap(Duration::from_secs(10))
                        } else {
                            Duration::from_millis(300 + u64::from(rng.below(700)))
                        };
                        Step::after(delay, tag_frame(tag))
                    })
                    .collect()
            }
            DeviceState::Pedal => vec![
                Step::after(gap(Duration::from_secs(8)), PEDAL_PRESS.to_vec()),
                Step::after(BET_WINDOW, PEDAL_PRESS.to_vec()),
            ],
        }
    }
}

impl Iterator for Script {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.pending.is_empty() {
            let round = self.next_round();
            self.pending.extend(round);
        }
        self.pending.pop_front()
    }
}

// ---------------------------------------------------------------------------------------------
// Frames.

/// Baccarat points: ace 1, two to nine at face value, ten and faces 0.
fn baccarat_value(card: Card) -> u8 {
    match card.rank.number() {
        n @ 1..=9 => n,
        _ => 0,
    }
}

/// The line an RFID reader sends for a tag UID, e.g. `E00401501234ABCD\r\n`.
pub fn tag_frame(uid: u64) -> Vec<u8> {
    format!("{uid:016X}\r\n").into_bytes()
}

/// What the pedal sends per press.
pub const PEDAL_PRESS: &[u8] = b"P";

fn shuffled_shoe(rng: &mut XorShift) -> Vec<Card> {
    let mut cards: Vec<Card> = (0..DECKS)
        .flat_map(|_| {
            Suit::ALL
                .into_iter()
                .flat_map(|suit| Rank::ALL.into_iter().map(move |rank| Card { rank, suit }))
        })
        .collect();
    // Fisher–Yates.
    for i in (1..cards.len()).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        cards.swap(i, j);
    }
    cards
}

/// The cards of one baccarat coup dealt from the top of `shoe`, in dealing order: player,
/// banker, player, banker, then the player's and the banker's third cards as the tableau says.
/// `shoe` must hold at least 6 cards.
fn baccarat_coup(shoe: &[Card]) -> Vec<Card> {
    let total = |cards: &[Card]| cards.iter().map(|&c| baccarat_value(c)).sum::<u8>() % 10;
    let mut dealt: Vec<Card> = shoe.iter().take(4).copied().collect();
    let player = total(&[dealt[0], dealt[2]]);
    let banker = total(&[dealt[1], dealt[3]]);
    if player >= 8 || banker >= 8 {
        return dealt; // a natural: nobody draws
    }
    let mut next = shoe.iter().skip(4).copied();
    let player_third = if player <= 5 { next.next() } else { None };
    if let Some(card) = player_third {
        dealt.push(card);
    }
    if banker_draws(banker, player_third.map(baccarat_value)) {
        dealt.extend(next.next());
    }
    dealt
}

/// The banker's third-card rule; `player_third` is the value of the player's third card, if any.
fn banker_draws(banker: u8, player_third: Option<u8>) -> bool {
    match player_third {
        None => banker <= 5,
        Some(third) => match banker {
            0..=2 => true,
            3 => third != 8,
            4 => (2..=7).contains(&third),
            5 => (4..=7).contains(&third),
            6 => (6..=7).contains(&third),
            _ => false,
        },
    }
}

/// xorshift64, seeded through splitmix64 so that any seed (0 included) gives a good state.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u32) -> u32 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test-only parser of a wheel frame: (state, spin, number, warnings, speed, direction).
    fn parse_wheel(frame: &[u8]) -> (u8, u16, u8, u8, u16, u8) {
        let text = std::str::from_utf8(frame).expect("ASCII");
        let body = text.strip_suffix("\r\n").expect("CR LF");
        let fields: Vec<&str> = body.split(';').collect();
        assert_eq!(fields.len(), 7, "{text:?}");
        assert_eq!(fields[0], "*X");
        let widths = [1, 3, 2, 1, 3, 1];
        for (field, width) in fields[1..].iter().zip(widths) {
            assert_eq!(field.len(), width, "{text:?}");
        }
        (
            fields[1].parse().expect("state"),
            fields[2].parse().expect("spin"),
            fields[3].parse().expect("number"),
            u8::from_str_radix(fields[4], 16).expect("warnings"),
            fields[5].parse().expect("speed"),
            fields[6].parse().expect("direction"),
        )
    }

    fn parse_card(frame: &[u8]) -> Card {
        assert_eq!(frame.len(), 4, "{frame:?}");
        assert_eq!(&frame[2..], b"\r\n");
        std::str::from_utf8(&frame[..2])
            .expect("ASCII")
            .parse()
            .expect("card")
    }

    #[test]
    fn wheel_frame_matches_the_example() {
        let status = |spin_count, number, warnings| WheelEvent::Status {
            state: WheelState::WinningNumber,
            spin_count,
            number,
            warnings: WarningFlags(warnings),
            rotor_speed: 27,
            direction: Direction::CounterClockwise,
        };
        assert_eq!(status(42, 17, 0).encode(), b"*X;5;042;17;0;027;1\r\n");
        assert_eq!(status(1042, 3, 0xA).encode(), b"*X;5;042;03;A;027;1\r\n");
    }

    #[test]
    fn wheel_rounds_walk_the_states_in_order() {
        let mut script = Script::new(DeviceRole::Wheel, 7);
        let mut previous: Option<(u16, u8, u8)> = None; // spin, number, direction
        for round in 0..1200 {
            let steps = script.next_round();
            let frames: Vec<_> = steps.iter().map(|s| parse_wheel(&s.bytes)).collect();
            let states: Vec<u8> = frames.iter().map(|f| f.0).collect();
            let mut expected = vec![1];
            expected.extend([2; 15]);
            expected.extend([3, 4, 5]);
            assert_eq!(states, expected, "round {round}");

            let spin = frames[0].1;
            let carried = frames[0].2;
            let direction = frames[0].5;
            for f in &frames {
                assert_eq!(f.1, spin, "one spin count per round");
                assert!(f.2 <= 36, "European wheel: {}", f.2);
                assert_eq!(f.3, 0);
                assert!((25..=30).contains(&f.4), "rotor speed {}", f.4);
                assert_eq!(f.5, direction, "direction is fixed within a spin");
            }
            for f in &frames[..frames.len() - 1] {
                assert_eq!(f.2, carried, "the previous result is carried until state 5");
            }
            if let Some((prev_spin, prev_number, prev_direction)) = previous {
                assert_eq!(spin, (prev_spin + 1) % 1000);
                assert_eq!(carried, prev_number);
                assert_ne!(direction, prev_direction, "direction alternates per spin");
            } else {
                assert_eq!(spin, 1);
                assert_eq!(steps[0].delay, START_DELAY);
            }
            let result = frames[frames.len() - 1].2;
            previous = Some((spin, result, direction));

            let total: Duration = steps.iter().map(|s| s.delay).sum();
            assert!(total >= Duration::from_secs(20) && total <= Duration::from_secs(40));
        }
        // 1200 rounds wrapped the 3-digit counter.
        assert_eq!(previous.map(|p| p.0), Some(200));
    }

    #[test]
    fn wheel_numbers_cover_the_whole_wheel() {
        let mut script = Script::new(DeviceRole::Wheel, 99);
        let mut seen = [false; 37];
        for _ in 0..2000 {
            let steps = script.next_round();
            let last = steps.last().expect("a result");
            seen[usize::from(parse_wheel(&last.bytes).2)] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn shoe_deals_valid_baccarat_coups_from_eight_decks() {
        let mut script = Script::new(DeviceRole::Shoe, 3);
        let mut counts = std::collections::HashMap::<Card, usize>::new();
        let mut dealt = 0;
        let mut sizes = [0usize; 7];
        for round in 0..60 {
            let steps = script.next_round();
            assert!(
                (4..=6).contains(&steps.len()),
                "round {round}: {} cards",
                steps.len()
            );
            sizes[steps.len()] += 1;
            let cards: Vec<Card> = steps.iter().map(|s| parse_card(&s.bytes)).collect();
            for (i, step) in steps.iter().enumerate().skip(1) {
                assert_eq!(step.delay, Duration::from_secs(1), "card {i}");
            }
            // Re-check the tableau from the cards alone.
            let v = |i: usize| baccarat_value(cards[i]);
            let player = (v(0) + v(2)) % 10;
            let banker = (v(1) + v(3)) % 10;
            if player >= 8 || banker >= 8 {
                assert_eq!(cards.len(), 4);
            } else if player <= 5 {
                let third = v(4);
                assert_eq!(cards.len() == 6, banker_draws(banker, Some(third)));
            } else {
                assert_eq!(cards.len(), if banker <= 5 { 5 } else { 4 });
            }
            for card in cards {
                *counts.entry(card).or_default() += 1;
            }
            dealt += steps.len();
        }
        // 60 coups fit in one shoe (416 - 16 cards), so no card can appear more than 8 times.
        assert!(dealt <= 52 * DECKS - CUT_CARD);
        assert!(counts.values().all(|&n| n <= DECKS), "{counts:?}");
        assert!(sizes[4] > 0 && sizes[5] > 0 && sizes[6] > 0, "{sizes:?}");
    }

    #[test]
    fn shoe_is_a_full_eight_deck_shoe_and_is_replaced_at_the_cut_card() {
        let mut rng = XorShift::new(5);
        let shoe = shuffled_shoe(&mut rng);
        assert_eq!(shoe.len(), 416);
        let mut counts = std::collections::HashMap::<Card, usize>::new();
        for card in &shoe {
            *counts.entry(*card).or_default() += 1;
        }
        assert_eq!(counts.len(), 52);
        assert!(counts.values().all(|&n| n == DECKS));

        let mut script = Script::new(DeviceRole::Shoe, 5);
        let cards: usize = (0..300).map(|_| script.next_round().len()).sum();
        assert!(cards > 416, "several shoes were dealt");
    }

    #[test]
    fn card_text() {
        let card = |rank, suit| Card { rank, suit };
        let king = card(Rank::King, Suit::Hearts);
        assert_eq!(card_line(king), b"KH\r\n");
        assert_eq!(king.to_string(), "KH");
        assert_eq!(card_line(card(Rank::Ten, Suit::Diamonds)), b"TD\r\n");
        assert_eq!(baccarat_value(card(Rank::Ace, Suit::Spades)), 1);
        assert_eq!(baccarat_value(card(Rank::Nine, Suit::Clubs)), 9);
        for rank in [Rank::Ten, Rank::Jack, Rank::Queen, Rank::King] {
            assert_eq!(baccarat_value(card(rank, Suit::Hearts)), 0);
        }
    }

    /// The simulator writes with the codecs' own encoders; this proves the decoders read every
    /// frame it writes back as exactly what it meant.
    #[test]
    fn the_drivers_decode_every_wheel_and_shoe_frame() {
        use crate::model::{CardEvent, Decoded};
        use tokio_util::codec::Decoder;

        let mut wheel = crate::wheel::WheelCodec::default();
        let mut buf = bytes::BytesMut::new();
        for step in Script::new(DeviceRole::Wheel, 21).take(500) {
            buf.extend_from_slice(&step.bytes);
            match wheel.decode(&mut buf).expect("never errs") {
                Some(Decoded::Frame { frame, wire_len }) => {
                    assert_eq!(wire_len, step.bytes.len());
                    assert_eq!(frame.encode(), step.bytes);
                }
                other => panic!("{other:?} for {:?}", step.bytes),
            }
        }

        let mut shoe = crate::cards::CardLineCodec::new(crate::cards::CardFormat::Default, None);
        for (i, step) in Script::new(DeviceRole::Shoe, 21).take(500).enumerate() {
            buf.extend_from_slice(&step.bytes);
            match shoe.decode(&mut buf).expect("never errs") {
                Some(Decoded::Frame {
                    frame: CardEvent::Drawn { card, index },
                    wire_len: 4,
                }) => {
                    assert_eq!(card, parse_card(&step.bytes));
                    assert_eq!(index, i as u64 + 1);
                }
                other => panic!("{other:?} for {:?}", step.bytes),
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn rfid_sends_a_few_iso15693_uids_per_round() {
        assert_eq!(tag_frame(0xE004_0150_1234_ABCD), b"E00401501234ABCD\r\n");
        let mut script = Script::new(DeviceRole::Rfid, 11);
        let mut all = std::collections::HashSet::new();
        for _ in 0..50 {
            let steps = script.next_round();
            assert!((2..=4).contains(&steps.len()));
            let mut round = std::collections::HashSet::new();
            for step in &steps {
                let text = std::str::from_utf8(&step.bytes).expect("ASCII");
                let uid = text.strip_suffix("\r\n").expect("CR LF");
                assert_eq!(uid.len(), 16);
                assert!(uid
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
                assert!(uid.starts_with("E004"), "ISO 15693, NXP: {uid}");
                assert!(round.insert(uid.to_owned()), "a tag once per round");
                all.insert(uid.to_owned());
            }
        }
        assert!(all.len() <= TAG_POOL);
    }

    #[test]
    fn pedal_presses_twice_per_round_a_bet_window_apart() {
        let mut script = Script::new(DeviceRole::Pedal, 0);
        for _ in 0..3 {
            let steps = script.next_round();
            assert_eq!(steps.len(), 2);
            assert!(steps.iter().all(|s| s.bytes == b"P"));
            assert_eq!(steps[1].delay, BET_WINDOW);
        }
    }

    #[test]
    fn scripts_are_deterministic_per_seed() {
        for role in DeviceRole::ALL {
            let a: Vec<Step> = Script::new(role, 42).take(200).collect();
            let b: Vec<Step> = Script::new(role, 42).take(200).collect();
            assert_eq!(a, b, "{role}");
            if role != DeviceRole::Pedal {
                let c: Vec<Step> = Script::new(role, 43).take(200).collect();
                assert_ne!(a, c, "{role}");
            }
        }
    }

    #[test]
    fn xorshift_is_uniform_enough_and_never_stuck() {
        let mut rng = XorShift::new(0);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[rng.below(10) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn bad_pace_is_refused_before_anything_is_opened() {
        for pace in [0.0, -1.0, f64::NAN, f64::INFINITY, 0.001] {
            let opts = SimulatorOptions {
                pace,
                ..Default::default()
            };
            // No runtime here: start must fail on the pace before touching Tokio.
            let err = Simulator::start(DeviceRole::Wheel, opts).expect_err("bad pace");
            assert!(matches!(err, SimulatorError::InvalidPace { .. }), "{err}");
        }
    }

    #[test]
    fn pacing_never_panics() {
        assert_eq!(paced(Duration::from_secs(10), 10.0), Duration::from_secs(1));
        assert_eq!(
            paced(Duration::from_secs(10), MIN_PACE),
            Duration::from_secs(1000)
        );
        assert!(paced(Duration::from_secs(10), 1e12) < Duration::from_micros(1));
    }
}
