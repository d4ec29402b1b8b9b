//! The table's configuration: one TOML file, checked completely before anything starts.
//!
//! `croupier validate --config F` and `croupier run --config F` both go through [`load`]. Every
//! problem in the file is reported at once, each with its key path, its line, what is wrong and
//! how to fix it; unknown keys are refused (a misspelt key silently falling back to a default is
//! how a table ends up with the wrong bet window). Every key is documented in `docs/config.md`.

mod duration;
mod schema;
mod tree;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use croupier_drivers::DeviceRole;
use croupier_pipelines::CameraSource;

pub use duration::{format_duration, parse_duration};

use crate::timecode::TimecodeRate;

/// The exit status of `validate` (and of `run`) when the config is refused: sysexits' EX_CONFIG.
pub const EX_CONFIG: i32 = 78;

/// A whole, checked configuration. Only [`load`] and [`parse`] make one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub table: TableConfig,
    pub timing: TimingConfig,
    pub mqtt: MqttConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub daemon: DaemonConfig,
    pub devices: Vec<DeviceConfig>,
    pub cameras: Vec<CameraConfig>,
    pub video: VideoConfig,
    /// Which sources must confirm a result ([crosscheck]).
    pub crosscheck: crate::engine::CrossCheck,
    /// Blackjack house rules ([blackjack]).
    pub blackjack: crate::engine::blackjack::Rules,
    /// Event signatures and command keys ([signing]); none: events unsigned, commands refused.
    pub signing: Option<SigningConfig>,
}

/// `[signing]`: where the keys are and which one signs this table's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    pub keys: PathBuf,
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub studio: String,
    pub id: String,
    pub game: Game,
    pub name: Option<String>,
    /// Roulette: single-zero (European) or double-zero (American) wheel.
    pub wheel: crate::engine::roulette::WheelType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Game {
    Roulette,
    Baccarat,
    Blackjack,
}

impl Game {
    pub const NAMES: &'static [&'static str] = &["roulette", "baccarat", "blackjack"];

    pub fn as_str(self) -> &'static str {
        match self {
            Game::Roulette => "roulette",
            Game::Baccarat => "baccarat",
            Game::Blackjack => "blackjack",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "roulette" => Some(Game::Roulette),
            "baccarat" => Some(Game::Baccarat),
            "blackjack" => Some(Game::Blackjack),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimingConfig {
    pub bet_window: Duration,
    pub timecode_rate: TimecodeRate,
    /// The pedal may close betting before the deadline.
    pub early_close: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub url: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub keep_alive: Duration,
    /// How often component health goes out on `…/telemetry`.
    pub telemetry_interval: Duration,
    /// Unacknowledged events the outbox may hold before new rounds are refused.
    pub outbox_max_events: u64,
}

impl MqttConfig {
    /// `croupier/v1/<studio>/<table>`: the prefix of every topic this table uses.
    pub fn topic_prefix(table: &TableConfig) -> String {
        format!("croupier/v1/{}/{}", table.studio, table.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// journald's native protocol under systemd, readable lines on a terminal.
    Auto,
    Text,
    Json,
    Journald,
}

impl LogFormat {
    pub const NAMES: &'static [&'static str] = &["auto", "text", "json", "journald"];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// How long SIGTERM waits for components to flush before the daemon exits anyway.
    pub shutdown_timeout: Duration,
    /// How long start-up waits for every device before declaring READY in a degraded state.
    pub ready_timeout: Duration,
    pub restart_backoff_min: Duration,
    pub restart_backoff_max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Unique per table; defaults to the role. Names the device in logs, metrics and /status.
    pub name: String,
    pub role: DeviceRole,
    pub driver: Driver,
    /// The device node (serial drivers and evdev).
    pub port: Option<PathBuf>,
    pub baud: u32,
    pub parity: Parity,
    pub enabled: bool,
    /// What the driver needs beyond the port.
    pub settings: DriverSettings,
}

/// Serial parity. Data bits are 8 and stop bits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// How a card reader's lines become cards (see `docs/devices.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSettings {
    /// `default`, `regex` or `barcode`.
    pub format: String,
    pub pattern: Option<String>,
    pub barcodes: Option<PathBuf>,
    pub burn: Option<String>,
}

/// The driver-specific settings of a device, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSettings {
    Wheel {
        layout: croupier_drivers::wheel::WheelLayout,
        /// `*o <mode>` sent on connect, when set.
        mode: Option<u16>,
    },
    /// A serial card reader, one card per line.
    CardLines { cards: CardSettings },
    /// A USB HID (keyboard-wedge) card reader.
    CardKeys {
        cards: CardSettings,
        keys: croupier_drivers::evdev::KeyLineConfig,
    },
    /// A simple RFID reader sending one UID per line.
    RfidAscii {
        order: croupier_drivers::rfid::UidOrder,
        absent_timeout: Duration,
        registry: Option<PathBuf>,
    },
    /// A FEIG ISO-Host reader, polled for inventories.
    RfidFeig {
        poller: croupier_drivers::rfid::PollerConfig,
        registry: Option<PathBuf>,
    },
    /// A USB-serial pedal: one byte per press, or a contact on a modem-status line.
    PedalSerial {
        timing: croupier_drivers::pedal::PedalTiming,
        modem_line: Option<croupier_drivers::pedal::ModemLine>,
        active_low: bool,
    },
    /// A USB HID pedal.
    PedalKeys {
        timing: croupier_drivers::pedal::PedalTiming,
        keys: Vec<String>,
    },
    /// A pedal on a GPIO line (character device).
    PedalGpio {
        timing: croupier_drivers::pedal::PedalTiming,
        gpio: croupier_drivers::gpio::GpioPedalConfig,
    },
    /// A pedal on a Raspberry Pi header pin (rppal).
    PedalRpi {
        timing: croupier_drivers::pedal::PedalTiming,
        pin: u8,
        active_low: bool,
        bias: croupier_drivers::gpio::Bias,
        kernel_debounce: Option<Duration>,
    },
}

/// The protocol a device speaks. Which drivers fit which role is in `docs/config.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Cammegh SlingShot-style wheel controller (ASCII, serial).
    Cammegh,
    /// One card per line from a serial card reader or shoe.
    Line,
    /// FEIG ISO-Host RFID reader (binary frames, serial).
    Feig,
    /// One tag UID per line from a simple RFID reader.
    Ascii,
    /// A USB HID device read through evdev (barcode readers, foot pedals).
    Evdev,
    /// A contact on a GPIO line (Linux GPIO character device).
    Gpio,
    /// A contact on a Raspberry Pi header pin (rppal).
    Rpi,
    /// A USB-serial foot switch: one byte per press, or a modem-status line.
    Serial,
}

impl Driver {
    pub const NAMES: &'static [&'static str] = &[
        "cammegh", "line", "feig", "ascii", "evdev", "gpio", "rpi", "serial",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Cammegh => "cammegh",
            Driver::Line => "line",
            Driver::Feig => "feig",
            Driver::Ascii => "ascii",
            Driver::Evdev => "evdev",
            Driver::Gpio => "gpio",
            Driver::Rpi => "rpi",
            Driver::Serial => "serial",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "cammegh" => Driver::Cammegh,
            "line" => Driver::Line,
            "feig" => Driver::Feig,
            "ascii" => Driver::Ascii,
            "evdev" => Driver::Evdev,
            "gpio" => Driver::Gpio,
            "rpi" => Driver::Rpi,
            "serial" => Driver::Serial,
            _ => return None,
        })
    }

    /// Whether the device is a serial port (and so has a baud rate).
    pub fn is_serial(self) -> bool {
        matches!(
            self,
            Driver::Cammegh | Driver::Line | Driver::Feig | Driver::Ascii | Driver::Serial
        )
    }

    /// The drivers that can serve a role.
    pub fn for_role(role: DeviceRole) -> &'static [Driver] {
        match role {
            DeviceRole::Wheel => &[Driver::Cammegh],
            DeviceRole::Shoe => &[Driver::Line, Driver::Evdev],
            DeviceRole::Rfid => &[Driver::Feig, Driver::Ascii],
            DeviceRole::Pedal => &[Driver::Serial, Driver::Evdev, Driver::Gpio, Driver::Rpi],
        }
    }
}

/// `[[camera]]`: one table camera (docs/video.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraConfig {
    pub name: String,
    pub source: CameraSource,
    pub width: u32,
    pub height: u32,
    /// The camera's frame rate; the timecode rate unless set.
    pub fps: Option<TimecodeRate>,
    /// The format asked of a V4L2 camera (GStreamer caps).
    pub caps: Option<String>,
    pub encoder: croupier_pipelines::video::EncoderKind,
    pub bitrate_kbps: u32,
    /// Burn the timecode, phase and countdown into the picture.
    pub overlay: bool,
    /// Burn a QR code with each frame's capture time (for latency measurements).
    pub qr_timestamp: bool,
    pub max_viewers: usize,
    /// Keep a rolling recording of this camera ([video] recording_*).
    pub recording: bool,
    /// Push the camera to a media server with WHIP.
    pub whip_url: Option<String>,
    /// File holding the WHIP bearer token.
    pub whip_token_file: Option<PathBuf>,
    /// What this camera's frames are read for: cards on the layout, or the wheel's pocket.
    pub vision: Option<VisionKind>,
    /// The table's calibration file (`croupier calibrate …`), required with `vision`.
    pub calibration: Option<PathBuf>,
    /// Frames a second the vision stage reads (later frames are dropped, never queued).
    pub vision_fps: u32,
}

/// `[[camera]] vision`: which reader runs on the camera's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisionKind {
    Cards,
    Wheel,
}

impl VisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VisionKind::Cards => "cards",
            VisionKind::Wheel => "wheel",
        }
    }
}

/// `[video]`: what every camera shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// `stun://host:port`; none by default.
    pub stun: Option<String>,
    /// `turn://user:pass@host:port` URLs; none by default.
    pub turn: Vec<String>,
    /// Where recordings go: `<recording_dir>/<camera>/…` (default `<storage.dir>/recordings`).
    pub recording_dir: PathBuf,
    pub recording_segment: Duration,
    pub recording_retention: Duration,
}

/// How serious a reported problem is. Warnings are printed but do not refuse the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub severity: Severity,
    /// Key path as written in TOML: `timing.bet_window`, `device[1].baud`.
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.path)?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, " (line {line}, column {col})")?;
        }
        write!(f, ": {}", self.problem)?;
        if !self.fix.is_empty() {
            write!(f, "\n    fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Everything wrong with one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigReport {
    pub file: PathBuf,
    pub issues: Vec<ConfigIssue>,
}

impl ConfigReport {
    pub fn errors(&self) -> impl Iterator<Item = &ConfigIssue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &ConfigIssue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
    }
}

impl fmt::Display for ConfigReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        write!(f, "{}: ", self.file.display())?;
        match errors {
            0 => write!(f, "no errors")?,
            1 => write!(f, "1 error")?,
            n => write!(f, "{n} errors")?,
        }
        match warnings {
            0 => {}
            1 => write!(f, ", 1 warning")?,
            n => write!(f, ", {n} warnings")?,
        }
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}\n  fix: check the path given to --config and that this user may read it", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}\nthe config was refused; nothing was started")]
    Invalid(ConfigReport),
}

/// A config that passed, with the warnings worth printing.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigIssue>,
}

/// Reads and checks a config file. Opens no device and binds no port.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, path, &base_dir)
}

/// Checks config text. `file` names it in the report; relative paths in it resolve against
/// `base_dir` (the config file's directory), so a config means the same whatever the cwd.
pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<Loaded, ConfigError> {
    let (config, issues) = schema::check(text, base_dir);
    match config {
        Some(config) if !issues.iter().any(|i| i.severity == Severity::Error) => Ok(Loaded {
            config,
            warnings: issues,
        }),
        _ => Err(ConfigError::Invalid(ConfigReport {
            file: file.to_owned(),
            issues,
        })),
    }
}
