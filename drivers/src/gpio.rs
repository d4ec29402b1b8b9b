//! A foot pedal wired straight to a GPIO pin.
//!
//! The usual wiring is a normally-open foot switch between a GPIO pin and ground, with the
//! pin's internal pull-up enabled: the pin reads high while the pedal is up and low while it
//! is down ("active low"). Two backends turn the pin into pedal [`Edge`]s for the shared
//! pedal state machine ([`crate::pedal`]):
//!
//! * [`CdevPedal`]: the Linux GPIO character device (`/dev/gpiochipN`, uAPI v2, Linux 5.10+),
//!   on any board: Raspberry Pi, an x86 mini-PC's GPIO header, a USB GPIO expander. The line
//!   is requested as an input with edge detection on both edges, the bias and active-low
//!   setting from the config, and edge stamps on CLOCK_MONOTONIC. Each edge carries the
//!   **kernel's timestamp**, taken in the interrupt handler: the time the foot hit the switch,
//!   not the time Croupier got round to reading it.
//! * [`RpiPedal`]: a Raspberry Pi header pin by its BCM number, through `rppal`. rppal's
//!   interrupts also read the character device underneath and hand over the kernel's edge
//!   timestamp ("time since boot", CLOCK_MONOTONIC), so the stamps are as good as
//!   [`CdevPedal`]'s. rppal cannot invert a pin, so active-low is applied here.
//!
//! ## Debouncing: in Croupier, not in the kernel (by default)
//!
//! The kernel can debounce a line (`kernel_debounce`), in hardware where the chip can, in
//! software otherwise. But a kernel-debounced edge is reported, and stamped, only when the
//! debounce period has passed: the stamp is late by that period, and the first edge of the
//! transition is lost. The pedal state machine debounces while keeping the first edge's
//! stamp, so Croupier asks for raw edges unless `kernel_debounce` is set (useful only for a
//! very noisy line, such as a long unshielded cable next to a dealer's lamp dimmer).
//!
//! Neither backend can run on a machine without a GPIO chip; the settings they request and
//! the error messages are unit-tested, the rest is a thin layer over the kernel interface.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use gpiocdev::line::{EdgeDetection, EdgeKind, EventClock, Value};
use std::os::fd::AsFd;

use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::model::monotonic_ns;
use crate::pedal::{Edge, EdgeSource};

/// The consumer label the line carries while Croupier holds it (`gpioinfo` shows it).
pub const CONSUMER: &str = "croupier-pedal";

/// Which line of the chip: its offset, or its name from the device tree (`gpioinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineId {
    /// Offset on the chip (on a Raspberry Pi the offset equals the BCM GPIO number).
    Offset(u32),
    /// A line name such as `GPIO17`, looked up on every chip.
    Name(String),
}

impl FromStr for LineId {
    type Err = std::convert::Infallible;

    /// Digits are an offset; anything else is a line name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s.parse::<u32>() {
            Ok(offset) => LineId::Offset(offset),
            Err(_) => LineId::Name(s.to_owned()),
        })
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineId::Offset(offset) => write!(f, "{offset}"),
            LineId::Name(name) => write!(f, "{name:?}"),
        }
    }
}

/// The pin's internal bias resistor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    /// Pull-up: for a switch to ground (the usual wiring).
    PullUp,
    /// Pull-down: for a switch to 3.3 V.
    PullDown,
    /// None: the board has an external resistor.
    Disabled,
}

impl FromStr for Bias {
    type Err = GpioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pull-up" | "pull_up" | "up" => Ok(Bias::PullUp),
            "pull-down" | "pull_down" | "down" => Ok(Bias::PullDown),
            "none" | "disabled" | "off" => Ok(Bias::Disabled),
            _ => Err(GpioError::UnknownBias {
                given: s.to_owned(),
            }),
        }
    }
}

/// A GPIO pedal's settings (`[[device]] role = "pedal"`, `driver = "gpio"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioPedalConfig {
    /// The chip, `/dev/gpiochip0` by default (`gpiodetect` lists them). Ignored when the
    /// line is given by name.
    pub chip: PathBuf,
    pub line: LineId,
    /// The pin is low while the pedal is down. True by default (switch to ground).
    pub active_low: bool,
    /// Pull-up by default.
    pub bias: Bias,
    /// Kernel debounce; off by default (see the module documentation).
    pub kernel_debounce: Option<Duration>,
}

impl GpioPedalConfig {
    /// The usual wiring: a switch from `line` to ground, internal pull-up, active low.
    pub fn new(chip: impl Into<PathBuf>, line: LineId) -> Self {
        Self {
            chip: chip.into(),
            line,
            active_low: true,
            bias: Bias::PullUp,
            kernel_debounce: None,
        }
    }

    /// The line request this config makes for `offset` on `chip`: input, both edges,
    /// monotonic edge stamps, bias, active-low, optional kernel debounce.
    pub fn request_builder(&self, chip: &Path, offset: u32) -> gpiocdev::request::Builder {
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(chip)
            .with_consumer(CONSUMER)
            .with_line(offset)
            .as_input()
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_event_clock(EventClock::Monotonic)
            .with_bias(match self.bias {
                Bias::PullUp => gpiocdev::line::Bias::PullUp,
                Bias::PullDown => gpiocdev::line::Bias::PullDown,
                Bias::Disabled => gpiocdev::line::Bias::Disabled,
            });
        if self.active_low {
            builder.as_active_low();
        }
        if let Some(period) = self.kernel_debounce {
            builder.with_debounce_period(period);
        }
        builder
    }
}

/// Why a GPIO pedal could not be used. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error(
        "no permission to use {path}: add the croupier user to the gpio group \
         (`usermod -aG gpio croupier`) or install Croupier's udev rule, then restart Croupier"
    )]
    PermissionDenied { path: PathBuf },
    #[error(
        "GPIO chip {path} does not exist: list the chips with `gpiodetect` and set `chip`; \
         enable the board's GPIO overlay if it needs one"
    )]
    ChipNotFound { path: PathBuf },
    #[error("{path} is not a GPIO chip: set `chip` to a /dev/gpiochipN that `gpiodetect` lists")]
    NotAChip { path: PathBuf },
    #[error("no GPIO line is named {name:?}: `gpioinfo` lists the names; or give the offset")]
    LineNotFound { name: String },
    #[error("{path} has no line {offset}: `gpioinfo {path}` lists its lines")]
    NoSuchLine { path: PathBuf, offset: u32 },
    #[error(
        "line {offset} of {path} is in use by another process or a kernel driver: \
         `gpioinfo {path}` shows the consumer; stop that process or remove the dtoverlay \
         (gpio-key, w1-gpio, …) that claims the pin"
    )]
    LineBusy { path: PathBuf, offset: u32 },
    #[error(
        "{path} refused the line settings for line {offset} ({detail}): the chip may not \
         support the bias or the debounce; set bias = \"none\" with an external pull-up \
         resistor, or remove kernel_debounce"
    )]
    Unsupported {
        path: PathBuf,
        offset: u32,
        detail: String,
    },
    #[error(
        "this kernel lacks the GPIO character device uAPI v2 (Linux 5.10 or later is needed): \
         update the kernel, or use the rpi driver on a Raspberry Pi"
    )]
    NoUapiV2,
    #[error("GPIO chip {path} went away (a USB GPIO adapter unplugged?): Croupier retries")]
    Gone { path: PathBuf },
    #[error("GPIO error on {path}: {detail}")]
    Other { path: PathBuf, detail: String },
    #[error("unknown bias {given:?}: use pull-up, pull-down or none")]
    UnknownBias { given: String },
    #[error(
        "this is not a Raspberry Pi, or a model rppal does not know: \
         use driver = \"gpio\" with chip and line instead of driver = \"rpi\""
    )]
    NotARaspberryPi,
    #[error(
        "BCM pin {pin} does not exist on this Raspberry Pi: pins are BCM GPIO numbers, not \
         header positions (GPIO17 is header pin 11)"
    )]
    NoSuchPin { pin: u8 },
    #[error(
        "BCM pin {pin} is already in use by Croupier: two devices share one pin in the config"
    )]
    PinInUse { pin: u8 },
    #[error("the Raspberry Pi's interrupt thread for BCM pin {pin} stopped: Croupier retries")]
    InterruptThreadStopped { pin: u8 },
}

/// Which step failed, for mapping an errno to advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Opening the chip.
    OpenChip,
    /// Requesting the line.
    RequestLine,
    /// Reading events or values.
    Read,
}

impl GpioError {
    /// Maps an errno from `step` on `path` / `offset` to what the technician should do.
    pub fn from_errno(errno: i32, step: Step, path: &Path, offset: u32) -> Self {
        use nix::libc;
        let path = path.to_path_buf();
        match (errno, step) {
            (libc::EACCES | libc::EPERM, _) => GpioError::PermissionDenied { path },
            (libc::ENOENT, Step::OpenChip) => GpioError::ChipNotFound { path },
            (libc::ENOTTY, Step::OpenChip) => GpioError::NotAChip { path },
            (libc::EBUSY, _) => GpioError::LineBusy { path, offset },
            (libc::EINVAL, Step::RequestLine) => GpioError::Unsupported {
                path,
                offset,
                detail: std::io::Error::from_raw_os_error(errno).to_string(),
            },
            (libc::ENODEV | libc::ENXIO, _) => GpioError::Gone { path },
            _ => GpioError::Other {
                path,
                detail: std::io::Error::from_raw_os_error(errno).to_string(),
            },
        }
    }

    /// Maps a `gpiocdev` error.
    pub fn from_cdev(err: &gpiocdev::Error, step: Step, path: &Path, offset: u32) -> Self {
        match err {
            gpiocdev::Error::Os(errno) => Self::from_errno(errno.0, step, path, offset),
            gpiocdev::Error::Uapi(_, gpiocdev_uapi::Error::Os(errno)) => {
                Self::from_errno(errno.0, step, path, offset)
            }
            gpiocdev::Error::GpioChip(chip, _) => GpioError::NotAChip { path: chip.clone() },
            gpiocdev::Error::NoAbiSupport() | gpiocdev::Error::UnsupportedAbi(..) => {
                GpioError::NoUapiV2
            }
            other => GpioError::Other {
                path: path.to_path_buf(),
                detail: other.to_string(),
            },
        }
    }

    /// Maps an rppal error for BCM `pin`.
    pub fn from_rppal(err: rppal::gpio::Error, pin: u8) -> Self {
        match err {
            rppal::gpio::Error::UnknownModel => GpioError::NotARaspberryPi,
            rppal::gpio::Error::PinUsed(pin) => GpioError::PinInUse { pin },
            rppal::gpio::Error::PinNotAvailable(pin) => GpioError::NoSuchPin { pin },
            rppal::gpio::Error::PermissionDenied(path) => GpioError::PermissionDenied {
                path: PathBuf::from(path),
            },
            rppal::gpio::Error::Io(e) => Self::from_errno(
                e.raw_os_error().unwrap_or(0),
                Step::RequestLine,
                Path::new("/dev/gpiochip0"),
                u32::from(pin),
            ),
            rppal::gpio::Error::ThreadPanic => GpioError::InterruptThreadStopped { pin },
        }
    }
}

/// An edge from a kernel edge event: with the request's active-low setting, a rising edge is
/// the pedal going down.
pub fn edge_from_cdev(kind: EdgeKind, timestamp_ns: u64) -> Edge {
    Edge {
        at_ns: timestamp_ns,
        pressed: kind == EdgeKind::Rising,
    }
}

/// A pedal on a GPIO character device line.
#[derive(Debug)]
pub struct CdevPedal {
    request: gpiocdev::Request,
    // A duplicate of the request's descriptor, registered with tokio only to learn when
    // edge events are queued: tokio's safe registration of a descriptor we own (`AsyncFd`'s
    // constructors are `unsafe` since tokio 1.54, and this crate forbids unsafe code).
    ready: pipe::Receiver,
    chip: PathBuf,
    offset: u32,
    opened: (bool, u64),
}

impl CdevPedal {
    /// Requests the line and reads its level. Call from within a tokio runtime.
    pub fn open(config: &GpioPedalConfig) -> Result<Self, GpioError> {
        let (chip, offset) = match &config.line {
            LineId::Offset(offset) => (config.chip.clone(), *offset),
            LineId::Name(name) => {
                let found = gpiocdev::find_named_line(name)
                    .ok_or_else(|| GpioError::LineNotFound { name: name.clone() })?;
                (found.chip, found.info.offset)
            }
        };
        let step = if chip.exists() {
            Step::RequestLine
        } else {
            Step::OpenChip
        };
        let request = config
            .request_builder(&chip, offset)
            .request()
            .map_err(|e| GpioError::from_cdev(&e, step, &chip, offset))?;
        let at = monotonic_ns();
        let pressed = request
            .value(offset)
            .map_err(|e| GpioError::from_cdev(&e, Step::Read, &chip, offset))?
            == Value::Active;
        let ready = request
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Receiver::from_owned_fd_unchecked)
            .map_err(|e| GpioError::Other {
                path: chip.clone(),
                detail: e.to_string(),
            })?;
        tracing::info!(chip = %chip.display(), offset, pressed, "GPIO pedal line requested");
        Ok(Self {
            request,
            ready,
            chip,
            offset,
            opened: (pressed, at),
        })
    }

    fn error(&self, err: &gpiocdev::Error) -> GpioError {
        GpioError::from_cdev(err, Step::Read, &self.chip, self.offset)
    }
}

impl EdgeSource for CdevPedal {
    type Error = GpioError;

    async fn next_edges(&mut self) -> Result<Vec<Edge>, GpioError> {
        loop {
            self.ready.readable().await.map_err(|e| {
                GpioError::from_errno(
                    e.raw_os_error().unwrap_or(0),
                    Step::Read,
                    &self.chip,
                    self.offset,
                )
            })?;
            let request = &self.request;
            // Drain what the kernel has queued. "Nothing queued" is reported as WouldBlock,
            // which makes tokio wait for the next readiness.
            let drained = self.ready.try_io(|| {
                let mut edges = Vec::new();
                loop {
                    match request.has_edge_event() {
                        Ok(true) => match request.read_edge_event() {
                            Ok(event) => edges.push(edge_from_cdev(event.kind, event.timestamp_ns)),
                            Err(e) => return Ok(Err(e)),
                        },
                        Ok(false) if edges.is_empty() => {
                            return Err(std::io::ErrorKind::WouldBlock.into())
                        }
                        Ok(false) => return Ok(Ok(edges)),
                        Err(e) => return Ok(Err(e)),
                    }
                }
            });
            match drained {
                Ok(Ok(edges)) => return Ok(edges),
                Ok(Err(e)) => return Err(self.error(&e)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    return Err(GpioError::from_errno(
                        e.raw_os_error().unwrap_or(0),
                        Step::Read,
                        &self.chip,
                        self.offset,
                    ))
                }
            }
        }
    }

    fn level_at_open(&self) -> Option<(bool, u64)> {
        Some(self.opened)
    }
}

/// A Raspberry Pi header pin's settings (`driver = "rpi"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpiPedalConfig {
    /// BCM GPIO number (GPIO17 is header pin 11).
    pub pin: u8,
    pub active_low: bool,
    pub bias: Bias,
    pub kernel_debounce: Option<Duration>,
}

impl RpiPedalConfig {
    /// The usual wiring: a switch from `pin` to ground, internal pull-up, active low.
    pub fn new(pin: u8) -> Self {
        Self {
            pin,
            active_low: true,
            bias: Bias::PullUp,
            kernel_debounce: None,
        }
    }
}

/// An edge from an rppal interrupt: the physical level after the edge, inverted for an
/// active-low pin.
pub fn edge_from_rppal(rising: bool, timestamp: Duration, active_low: bool) -> Edge {
    Edge {
        at_ns: u64::try_from(timestamp.as_nanos()).unwrap_or(u64::MAX),
        pressed: rising != active_low,
    }
}

/// A pedal on a Raspberry Pi header pin, through rppal.
///
/// rppal delivers interrupts on a thread of its own; they are forwarded here over a channel.
#[derive(Debug)]
pub struct RpiPedal {
    // Held for its interrupt thread; dropping it releases the pin.
    _pin: rppal::gpio::InputPin,
    pin: u8,
    events: mpsc::UnboundedReceiver<Edge>,
    opened: (bool, u64),
}

impl RpiPedal {
    pub fn open(config: &RpiPedalConfig) -> Result<Self, GpioError> {
        let pin_number = config.pin;
        let gpio = rppal::gpio::Gpio::new().map_err(|e| GpioError::from_rppal(e, pin_number))?;
        let pin = gpio
            .get(pin_number)
            .map_err(|e| GpioError::from_rppal(e, pin_number))?;
        let mut input = match config.bias {
            Bias::PullUp => pin.into_input_pullup(),
            Bias::PullDown => pin.into_input_pulldown(),
            Bias::Disabled => pin.into_input(),
        };
        let at = monotonic_ns();
        let pressed = input.is_high() != config.active_low;
        let (tx, events) = mpsc::unbounded_channel();
        let active_low = config.active_low;
        input
            .set_async_interrupt(
                rppal::gpio::Trigger::Both,
                config.kernel_debounce,
                move |event: rppal::gpio::Event| {
                    let rising = event.trigger == rppal::gpio::Trigger::RisingEdge;
                    // A closed channel means the pedal is being dropped; nothing to do.
                    let _ = tx.send(edge_from_rppal(rising, event.timestamp, active_low));
                },
            )
            .map_err(|e| GpioError::from_rppal(e, pin_number))?;
        tracing::info!(pin = pin_number, pressed, "Raspberry Pi pedal pin set up");
        Ok(Self {
            _pin: input,
            pin: pin_number,
            events,
            opened: (pressed, at),
        })
    }
}

impl EdgeSource for RpiPedal {
    type Error = GpioError;

    async fn next_edges(&mut self) -> Result<Vec<Edge>, GpioError> {
        // `recv` is cancel-safe.
        let first = self
            .events
            .recv()
            .await
            .ok_or(GpioError::InterruptThreadStopped { pin: self.pin })?;
        let mut edges = vec![first];
        while let Ok(edge) = self.events.try_recv() {
            edges.push(edge);
        }
        Ok(edges)
    }

    fn level_at_open(&self) -> Option<(bool, u64)> {
        Some(self.opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpiocdev::line::{Bias as CdevBias, Direction};

    #[test]
    fn the_usual_wiring_requests_a_pulled_up_active_low_input_on_both_edges() {
        let config = GpioPedalConfig::new("/dev/gpiochip0", LineId::Offset(17));
        let request = config
            .request_builder(Path::new("/dev/gpiochip0"), 17)
            .config();
        assert_eq!(request.chip(), Path::new("/dev/gpiochip0"));
        assert_eq!(request.lines().as_slice(), &[17]);
        let line = request.line_config(17).unwrap();
        assert_eq!(line.direction, Some(Direction::Input));
        assert!(line.active_low);
        assert_eq!(line.bias, Some(CdevBias::PullUp));
        assert_eq!(line.edge_detection, Some(EdgeDetection::BothEdges));
        assert_eq!(line.event_clock, Some(EventClock::Monotonic));
        assert_eq!(line.debounce_period, None);
    }

    #[test]
    fn other_wirings() {
        let config = GpioPedalConfig {
            active_low: false,
            bias: Bias::Disabled,
            kernel_debounce: Some(Duration::from_millis(5)),
            ..GpioPedalConfig::new("/dev/gpiochip4", LineId::Offset(4))
        };
        let request = config
            .request_builder(Path::new("/dev/gpiochip4"), 4)
            .config();
        let line = request.line_config(4).unwrap();
        assert!(!line.active_low);
        assert_eq!(line.bias, Some(CdevBias::Disabled));
        assert_eq!(line.debounce_period, Some(Duration::from_millis(5)));
    }

    #[test]
    fn config_words() {
        assert_eq!("17".parse::<LineId>().unwrap(), LineId::Offset(17));
        assert_eq!(
            "GPIO17".parse::<LineId>().unwrap(),
            LineId::Name("GPIO17".into())
        );
        assert_eq!("pull-up".parse::<Bias>().unwrap(), Bias::PullUp);
        assert_eq!("None".parse::<Bias>().unwrap(), Bias::Disabled);
        assert!("strong"
            .parse::<Bias>()
            .unwrap_err()
            .to_string()
            .contains("pull-up"));
    }

    #[test]
    fn edges_follow_the_logical_level() {
        assert_eq!(edge_from_cdev(EdgeKind::Rising, 42), Edge::press(42));
        assert_eq!(edge_from_cdev(EdgeKind::Falling, 43), Edge::release(43));
        // Switch to ground with pull-up: falling is the foot going down.
        assert_eq!(
            edge_from_rppal(false, Duration::from_micros(5), true),
            Edge::press(5_000)
        );
        assert_eq!(
            edge_from_rppal(true, Duration::from_micros(6), true),
            Edge::release(6_000)
        );
        assert_eq!(
            edge_from_rppal(true, Duration::from_micros(7), false),
            Edge::press(7_000)
        );
    }

    #[test]
    fn errors_tell_the_technician_what_to_do() {
        use nix::libc;
        let chip = Path::new("/dev/gpiochip0");
        let cases = [
            (libc::EACCES, Step::OpenChip, "gpio group"),
            (libc::ENOENT, Step::OpenChip, "gpiodetect"),
            (libc::EBUSY, Step::RequestLine, "in use by another process"),
            (libc::EINVAL, Step::RequestLine, "external pull-up"),
            (libc::ENODEV, Step::Read, "went away"),
        ];
        for (errno, step, advice) in cases {
            let err = GpioError::from_errno(errno, step, chip, 17);
            assert!(err.to_string().contains(advice), "{errno}: {err}");
        }
        // Through gpiocdev's own error type.
        let err = GpioError::from_cdev(
            &gpiocdev::Error::Uapi(
                gpiocdev::UapiCall::GetLine,
                gpiocdev_uapi::Error::Os(gpiocdev_uapi::Errno(libc::EBUSY)),
            ),
            Step::RequestLine,
            chip,
            17,
        );
        assert!(matches!(err, GpioError::LineBusy { offset: 17, .. }));
        let err = GpioError::from_cdev(
            &gpiocdev::Error::Os(gpiocdev_uapi::Errno(libc::EACCES)),
            Step::OpenChip,
            chip,
            17,
        );
        assert!(matches!(err, GpioError::PermissionDenied { .. }));
        // rppal's.
        let err = GpioError::from_rppal(rppal::gpio::Error::UnknownModel, 17);
        assert!(err.to_string().contains("driver = \"gpio\""));
        let err = GpioError::from_rppal(
            rppal::gpio::Error::PermissionDenied("/dev/gpiomem".into()),
            17,
        );
        assert!(err.to_string().contains("gpio group"));
        let err = GpioError::from_rppal(rppal::gpio::Error::PinNotAvailable(99), 99);
        assert!(err.to_string().contains("BCM"));
    }

    #[test]
    fn rppal_off_a_raspberry_pi_points_at_the_gpio_driver() {
        let model = std::fs::read_to_string("/proc/device-tree/model").unwrap_or_default();
        if model.contains("Raspberry Pi") {
            return; // This check is for the machines without one.
        }
        let err = RpiPedal::open(&RpiPedalConfig::new(17)).unwrap_err();
        assert!(matches!(err, GpioError::NotARaspberryPi), "{err:?}");
    }

    #[test]
    fn opening_a_missing_chip_is_a_clear_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let config = GpioPedalConfig::new("/dev/gpiochip-croupier-none", LineId::Offset(17));
        let err = CdevPedal::open(&config).unwrap_err();
        assert!(
            matches!(err, GpioError::ChipNotFound { .. }),
            "{err:?}: {err}"
        );
    }
}
