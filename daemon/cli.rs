//! The `croupier` command line. Subcommand names and flags are a contract (see `docs/cli.md`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use croupier_drivers::DeviceRole;

use crate::timecode::TimecodeArgs;

/// `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CROUPIER_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "croupier",
    version = VERSION,
    about = "Table-side daemon of a live-dealer casino studio",
    long_about = "Croupier runs under one table: it reads the wheel, the card shoe, the RFID readers and \
the dealer's pedal, watches the cameras, stamps every game phase against UTC and the video's \
SMPTE timecode, and publishes every event over MQTT to the studio's orchestrator.\n\n\
Start with `croupier demo` for a whole simulated table on this machine, or \
`croupier validate --config /etc/croupier/table.toml` before running a real one.",
    after_help = "Exit status: 0 success, 2 bad command line, 78 config refused, 1 any other failure.\nDocs: docs/cli.md, docs/config.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the table daemon (what the systemd unit starts).
    #[command(
        long_about = "Run the table daemon with the given config.\n\n\
The config is checked first; if anything is wrong every problem is printed and the daemon \
exits 78 without opening a device or a port. Under systemd (Type=notify) it reports READY once \
the devices are open and the uplink is connected or buffering, pings the watchdog, reloads the \
config on SIGHUP (refusing a bad one and keeping the old), and on SIGTERM or SIGINT stops \
within [daemon] shutdown_timeout.",
        after_help = "Example: croupier run --config /etc/croupier/table.toml\nLog filter: CROUPIER_LOG=debug croupier run --config …"
    )]
    Run(RunArgs),

    /// Run a whole simulated table on this machine: simulated devices on pseudo-terminals,
    /// a local MQTT broker and the daemon.
    #[command(long_about = "Run a whole simulated table on this machine.\n\n\
Starts a local mosquitto broker on a free loopback port, a simulator for the wheel, the card \
shoe, the RFID reader and the dealer's pedal, each on its own pseudo-terminal speaking the real \
framing, writes a config for them and runs the daemon against it. It prints where to look \
(status page, metrics, the MQTT topics) and runs until Ctrl-C.")]
    Demo(DemoArgs),

    /// Check a config file and print every problem; opens no device and binds no port.
    #[command(
        long_about = "Check a config file and print every problem at once, each with its key path, \
line, what is wrong and how to fix it.\n\n\
Opens no device and binds no port, so it is safe to run next to a running daemon (the systemd \
unit runs it as ExecStartPre). Exits 0 when the file is accepted (warnings may still be \
printed) and 78 (EX_CONFIG) when it is refused.",
        after_help = "Example: croupier validate --config /etc/croupier/table.toml"
    )]
    Validate(ValidateArgs),

    /// Run a device simulator on a pseudo-terminal, speaking the device's real framing.
    #[command(
        long_about = "Run a device simulator on a new pseudo-terminal, speaking the device's real \
framing: the wheel (Cammegh-style ASCII status frames), the shoe (one card per line), the RFID \
reader (one tag UID per line) or the pedal (one byte per press).\n\n\
It prints the pseudo-terminal's path; with --link it also makes a symlink there, so a config \
can name a stable path. Point a `[[device]] port` at it.",
        after_help = "Examples:\n  croupier simulate wheel --link /tmp/table/wheel --pace 4\n  croupier simulate shoe --link /tmp/table/shoe --fault garbage --fault disconnect --fault-every 5\n  croupier simulate wheel --link /tmp/table/wheel --script spin.txt\n  croupier simulate shoe --link /tmp/table/shoe --interactive"
    )]
    Simulate(SimulateArgs),

    // No doc comment here: it would replace the about/long_about written on TimecodeArgs.
    Timecode(TimecodeArgs),

    /// Verify the signatures, seq gaps and duplicates of a captured event stream.
    #[command(
        long_about = "Verify a capture of a table's events (JSON lines, as the events topic or \
the event log carries them): every signature against the key directory, `seq` rising by one \
per table with no gap, and no two different events with one `event_id` (redelivered copies \
are fine). Exits 0 when clean, 1 when anything is wrong (each problem is printed with its \
line).",
        after_help = "Example: mosquitto_sub -t 'croupier/v1/riga-1/rl-01/events' > capture.jsonl; croupier verify --keys /etc/croupier/keys capture.jsonl"
    )]
    Verify(VerifyArgs),

    /// Check or export the append-only, hash-chained journal (dispute evidence).
    #[command(subcommand)]
    Journal(JournalCommand),

    /// Calibrate a table for vision: the deck's templates, the table plane and zones, the wheel.
    #[command(subcommand)]
    Calibrate(CalibrateCommand),

    /// Run the recognisers on still images: to check a table, or to evaluate them.
    #[command(subcommand)]
    Vision(VisionCommand),
}

#[derive(Debug, Subcommand)]
pub enum CalibrateCommand {
    /// Build a deck's templates from single-card face images named by card (AS.png, TD.png, 9H.png…).
    #[command(
        after_help = "Writes (or updates, bumping its version) the calibration file F with the deck, and F's report image (F with .deck.png) showing every template.
Example: croupier calibrate deck --cards photos/ --out calibration/rl-01.json"
    )]
    Deck {
        /// Folder of the 52 face images, one card each, named by card.
        #[arg(long, value_name = "DIR")]
        cards: PathBuf,
        /// The calibration file to write or update.
        #[arg(long, value_name = "F")]
        out: PathBuf,
        /// The deck's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Set the table plane (four reference corners in the image) and the zones, and draw the
    /// report image on a live frame.
    #[command(
        after_help = "The corners are where the table plane's (0,0), (W,0), (W,H), (0,H) millimetres appear in the image, in that order.
Example: croupier calibrate table --calibration calibration/rl-01.json --image frame.png \\\n  --corners 102,80:1180,95:1250,690:40,660 --table-mm 1000x600 --zones zones.json"
    )]
    Table {
        #[arg(long, value_name = "F")]
        calibration: PathBuf,
        /// A frame from the table's camera (PNG or JPEG).
        #[arg(long, value_name = "IMAGE")]
        image: PathBuf,
        /// Four image points `x,y:x,y:x,y:x,y`.
        #[arg(long)]
        corners: String,
        /// Size of the calibrated plane, `WxH` in millimetres.
        #[arg(long, default_value = "1000x600")]
        table_mm: String,
        /// A JSON file `[{"name": "player", "polygon_mm": [[x,y], …]}, …]` (default: keep the file's zones).
        #[arg(long, value_name = "FILE")]
        zones: Option<PathBuf>,
    },
    /// Set a wheel camera's geometry: where the wheel's plane is in the image (a circle around
    /// its centre, four clicked marks of the bowl, or a homography) and the pocket ring's radii.
    #[command(
        after_help = "Give exactly one of --centre, --marks, --homography (docs/vision.md).
Examples:
  croupier calibrate wheel --calibration F --image frame.png --centre 640,360 --ring 147,188
  croupier calibrate wheel --calibration F --image frame.png --marks-radius 250 --ring 147,188 --marks 700,120:860,400:590,560:420,300"
    )]
    Wheel {
        #[arg(long, value_name = "F")]
        calibration: PathBuf,
        /// A frame from the wheel camera with the ball in a pocket (for the report image).
        #[arg(long, value_name = "IMAGE")]
        image: PathBuf,
        /// `x,y` in pixels: the wheel's centre, for a camera (nearly) straight above the wheel;
        /// the ring is then a circle and its radii are pixels.
        #[arg(long)]
        centre: Option<String>,
        /// `x,y:x,y:x,y:x,y`: where four marks of the bowl a quarter turn apart (e.g. four
        /// deflectors), clockwise, appear in the image; the first sets the wheel's "up".
        #[arg(long)]
        marks: Option<String>,
        /// The marks' distance from the wheel's centre, in the unit of `--ring` (e.g. mm).
        #[arg(long)]
        marks_radius: Option<f64>,
        /// Nine numbers, row-major: the wheel plane (unit of `--ring`, origin at its centre,
        /// y negative towards "up") to image pixels, from any planar calibration tool.
        #[arg(long, allow_hyphen_values = true)]
        homography: Option<String>,
        /// `inner,outer` radii of the pocket ring: pixels with --centre, else the wheel plane's
        /// unit.
        #[arg(long)]
        ring: String,
        /// `european`, `american` or `auto`.
        #[arg(long, default_value = "auto")]
        layout: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum VisionCommand {
    /// Print one JSON line per image: the cards found, with card, zone, confidence and corners.
    #[command(
        after_help = "Rejects rather than guesses: a card whose index does not match one card of the deck clearly is counted in `rejected`, not printed.
Example: croupier vision recognize --calibration calibration/rl-01.json frame-*.png"
    )]
    Recognize {
        #[arg(long, value_name = "F")]
        calibration: PathBuf,
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
        /// Also write each image with the zones and the reads drawn, into this folder.
        #[arg(long, value_name = "DIR")]
        draw: Option<PathBuf>,
    },
    /// Print one JSON line per wheel image: the pocket the ball rests in, if any.
    Pocket {
        #[arg(long, value_name = "F")]
        calibration: PathBuf,
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
    },
    /// Accuracy, rejects, wrong reads, false positives and latency on a synthetic set
    /// (tests/vision/synth.py), per deck and overall, as a Markdown table.
    #[command(
        after_help = "Example: /usr/bin/python3 tests/vision/synth.py --seed 7 --out target/vision-data && \\\n  croupier vision bench --data target/vision-data   (or: make vision-bench)"
    )]
    Bench {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Only these decks (comma-separated).
        #[arg(long)]
        decks: Option<String>,
        /// Print the figures as JSON too.
        #[arg(long)]
        json: bool,
        /// Override the calibration's card_min_score (for tuning).
        #[arg(long)]
        min_score: Option<f64>,
        /// Override the calibration's card_min_margin (for tuning).
        #[arg(long)]
        min_margin: Option<f64>,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Directory of keys (`<id>.hmac`, `<id>.ed25519.pub`): docs/signing.md.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,

    /// The capture to check (`-` or nothing: standard input).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check the whole hash chain: detects any edited, removed or reordered record or file.
    #[command(
        after_help = "Exit status: 0 intact, 1 tampered or damaged (every problem is printed).\nExample: croupier journal verify /var/lib/croupier/journal"
    )]
    Verify {
        /// The journal directory (`<storage>/journal`).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write everything about one round (records, device inputs and commands around it) for a
    /// dispute.
    #[command(
        after_help = "Example: croupier journal export --round rl-01-20261121T142310Z-0007 --out dispute-0007.jsonl \\\n           --video /var/lib/croupier/recordings   (copies the round's clips to dispute-0007.jsonl.video/)"
    )]
    Export {
        /// The round id, as in the events (`<table>-<UTC>-<counter>`).
        #[arg(long, value_name = "ROUND_ID")]
        round: String,
        /// The journal directory.
        #[arg(long, value_name = "DIR", default_value = "/var/lib/croupier/journal")]
        dir: PathBuf,
        /// Where to write the export (must not exist; default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Include the round's video: the cameras' recording directory (`[video] recording_dir`,
        /// by default `<storage>/recordings`). The covering files are listed in the header with
        /// their SHA-256.
        #[arg(long, value_name = "DIR")]
        video: Option<PathBuf>,
        /// Where to copy the round's video files (default: `<out>.video/` with --out; without
        /// --out, the files are only listed).
        #[arg(long, value_name = "DIR", requires = "video")]
        video_out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The table's TOML config file.
    #[arg(long, short, value_name = "FILE", env = "CROUPIER_CONFIG")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The TOML config file to check.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,

    /// Also print the whole effective config (defaults filled in) when it is accepted.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its config, device links and state (default: a new temp directory,
    /// removed on exit).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The HTTP listener for the status page and metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub http: String,

    /// Game to simulate.
    #[arg(long, default_value = "roulette", value_parser = ["roulette", "baccarat", "blackjack"])]
    pub game: String,

    /// With `--game baccarat`: a vision kit made by `tests/vision/synth.py` (`make demo` makes
    /// one). The demo then adds a card camera showing a rendered table with the dealt cards,
    /// reads it with the vision stage, and cross-checks every card with the shoe.
    #[arg(long, value_name = "DIR")]
    pub vision_kit: Option<PathBuf>,

    /// Speed factor for the simulators (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    pub pace: f64,

    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Which device to simulate.
    #[arg(value_parser = parse_role, value_name = "DEVICE", help = "wheel, shoe, rfid or pedal")]
    pub device: DeviceRole,

    /// Make a symlink at this path pointing to the pseudo-terminal (replaced if it is a stale link).
    #[arg(long, value_name = "PATH")]
    pub link: Option<PathBuf>,

    /// Speed factor (1 = real time, 10 = ten times faster).
    #[arg(long, default_value_t = 1.0)]
    pub pace: f64,

    /// Stop after this many rounds (default: run until Ctrl-C).
    #[arg(long)]
    pub rounds: Option<u32>,

    /// Seed of the pseudo-random sequence (cards, numbers, faults), for repeatable runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Play the steps of a script file instead of the built-in rounds (format: docs/devices.md).
    #[arg(long, value_name = "FILE", conflicts_with = "interactive")]
    pub script: Option<PathBuf>,

    /// Read steps typed on the terminal (`card KH`, `wheel 5 042 17`, `garbage 8`,
    /// `disconnect 2s`, …), one per line, until end of input.
    #[arg(long)]
    pub interactive: bool,

    /// RFID only: play a FEIG ISO-Host reader that answers inventory requests, instead of a
    /// simple reader printing one UID per line.
    #[arg(long)]
    pub feig: bool,

    /// With --feig: how many antennas (zones) the reader has; tags are placed on them in turn.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub antennas: u8,

    /// Inject a fault into the built-in rounds: garbage, split, badcrc or disconnect
    /// (repeat the flag for several; they take turns).
    #[arg(long = "fault", value_name = "FAULT", value_parser = parse_fault)]
    pub faults: Vec<croupier_drivers::scenario::Fault>,

    /// Inject the next fault every N steps.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub fault_every: u32,

    /// How long an injected disconnect keeps the device away.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration_arg)]
    pub disconnect_for: std::time::Duration,
}

fn parse_fault(s: &str) -> Result<croupier_drivers::scenario::Fault, String> {
    s.parse()
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s)
}

fn parse_role(s: &str) -> Result<DeviceRole, String> {
    s.parse::<DeviceRole>()
        .map_err(|_| format!("`{s}` is not a device; use wheel, shoe, rfid or pedal"))
}
