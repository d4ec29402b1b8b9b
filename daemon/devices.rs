//! One supervised component per `[[device]]`: opens the device, runs its protocol driver, and
//! turns what it reads into stamped observations for the table engine.
//!
//! A read error or end-of-file (the reader was unplugged, the pseudo-terminal closed) ends the
//! component with an error; the supervisor marks the device down and reopens it with backoff,
//! and marks it up again once it opens. A port missing at start is retried the same way.
//! Garbled input is counted (`errors` on `/status` and in metrics), logged and skipped; the
//! reader keeps going. A frame cut by a disconnect never becomes an observation.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use croupier_drivers::cards::{CardFormat, CardLineCodec, Shoe};
use croupier_drivers::evdev::{EvdevLineReader, EvdevPedal, KeyLine, KeyPedal};
use croupier_drivers::feig::ResponseCodec;
use croupier_drivers::gpio::{CdevPedal, RpiPedal, RpiPedalConfig};
use croupier_drivers::model::{monotonic_ns, Observation, RfidEvent, Stamp};
use croupier_drivers::pedal::{self, EdgeSource, ModemLineSource, PedalTiming, SerialByteSource};
use croupier_drivers::rfid::{AsciiUidCodec, InventoryPoller, PresenceTracker, TagRegistry};
use croupier_drivers::runner::{read_frames, Output, Stamper};
use croupier_drivers::wheel::{mode_command, WheelCodec, WheelMode};
use croupier_drivers::DeviceRole;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use tracing::{debug, info, warn};

use crate::clock::format_utc;
use crate::config::{CardSettings, DeviceConfig, DriverSettings, Parity};
use crate::health::{HealthHandle, State};
use crate::supervisor::{ComponentCtx, ComponentResult, ComponentSpec};

/// An observation with where and when it happened: what the table engine consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub device: String,
    pub role: DeviceRole,
    pub stamp: Stamp,
    pub observation: Observation,
}

/// Where observations go. Receivers subscribe; with none, observations are only logged.
pub type ObservationBus = broadcast::Sender<Observed>;

/// A bus with room for a burst of observations.
pub fn observation_bus() -> ObservationBus {
    broadcast::channel(1024).0
}

/// Errors of one device component; each says what the technician can check.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot open {port}: {source} (check the cable, the udev symlink and that the croupier user is in the dialout/input group)")]
    Open {
        port: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{port}: {source}")]
    Read {
        port: String,
        #[source]
        source: croupier_drivers::runner::ReadError,
    },
    #[error("write to {port} failed: {source} (device unplugged?)")]
    Write {
        port: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{port} closed (device unplugged?)")]
    Closed { port: String },
    #[error("{0}")]
    Driver(String),
}

/// State that must survive a reconnect: which RFID tags are present (so a replug does not
/// report every tag as newly arrived).
#[derive(Debug, Default)]
struct Kept {
    presence: Option<PresenceTracker>,
    poller: Option<InventoryPoller>,
}

/// The supervised component for one device. With a journal, every byte read from the device
/// is recorded there, as read, before it is decoded.
pub fn component(
    device: &DeviceConfig,
    bus: ObservationBus,
    journal: Option<crate::journal::JournalHandle>,
) -> ComponentSpec {
    let cfg = device.clone();
    let kept = Arc::new(Mutex::new(Kept::default()));
    ComponentSpec::new(
        device.name.clone(),
        "device",
        format!("{device:?}"),
        move |ctx| run(cfg.clone(), ctx, bus.clone(), kept.clone(), journal.clone()),
    )
}

/// Passes a device's bytes through, sending a copy of every read to the journal in order.
struct Tee<S> {
    inner: S,
    device: String,
    to_journal: tokio::sync::mpsc::UnboundedSender<crate::journal::Entry>,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tee<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let new = buf.filled().get(before..).unwrap_or_default();
            if !new.is_empty() {
                let stamp = Stamp::now();
                let entry =
                    crate::journal::Entry::input(&self.device, new, stamp.utc, stamp.mono_ns);
                let _ = self.to_journal.send(entry);
            }
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tee<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A tee into the journal for `serial`, and the task that writes its copies in order.
fn tee<S>(serial: S, device: &str, journal: Option<&crate::journal::JournalHandle>) -> Tee<S> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(journal) = journal.cloned() {
        tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                if let Err(err) = journal.record(entry).await {
                    tracing::error!(error = %err, "cannot journal device input");
                    break;
                }
            }
        });
    }
    Tee {
        inner: serial,
        device: device.to_owned(),
        to_journal: tx,
    }
}

/// Reports observations: health, log, bus.
#[derive(Clone)]
struct Reporter {
    device: String,
    role: DeviceRole,
    health: HealthHandle,
    bus: ObservationBus,
    registry: Option<Arc<TagRegistry>>,
    /// For devices without a byte stream (evdev, GPIO, modem lines): each observation is their
    /// raw input, recorded in the journal in order.
    journal_inputs: Option<tokio::sync::mpsc::UnboundedSender<crate::journal::Entry>>,
}

impl Reporter {
    fn observe(&self, stamp: Stamp, observation: Observation) {
        let mut text = observation.to_string();
        if let (
            Some(registry),
            Observation::Rfid(RfidEvent::Arrived { uid, .. } | RfidEvent::Departed { uid, .. }),
        ) = (&self.registry, &observation)
        {
            match registry.get(uid) {
                Some(meaning) => text.push_str(&format!(" ({meaning:?})")),
                None => text.push_str(" (not in the tag registry)"),
            }
        }
        self.health.add("observations", 1);
        self.health.fact("last_observation", text.clone());
        self.health
            .fact("last_observation_at", format_utc(stamp.utc));
        info!(device = %self.device, role = self.role.as_str(), observation = %text, mono_ns = stamp.mono_ns, "observation");
        if let Some(journal) = &self.journal_inputs {
            let entry = crate::journal::Entry::now(
                crate::journal::Kind::Input,
                json!({ "observation": text, "mono_ns": stamp.mono_ns }),
            )
            .with_device(self.device.clone());
            let _ = journal.send(entry);
        }
        let _ = self.bus.send(Observed {
            device: self.device.clone(),
            role: self.role,
            stamp,
            observation,
        });
    }

    fn garbage(&self, skipped: usize, reason: impl std::fmt::Display) {
        self.health.add("errors", 1);
        self.health.add("garbage_bytes", skipped as u64);
        warn!(device = %self.device, skipped, reason = %reason, "garbled input skipped");
    }

    fn frame(&self) {
        self.health.add("frames", 1);
        self.health
            .fact("last_frame_at", format_utc(SystemTime::now()));
    }
}

async fn run(
    cfg: DeviceConfig,
    ctx: ComponentCtx,
    bus: ObservationBus,
    kept: Arc<Mutex<Kept>>,
    journal: Option<crate::journal::JournalHandle>,
) -> ComponentResult {
    ctx.health.fact("role", cfg.role.as_str());
    ctx.health.fact("driver", cfg.driver.as_str());
    let port = port_of(&cfg);
    let registry = match &cfg.settings {
        DriverSettings::RfidAscii {
            registry: Some(path),
            ..
        }
        | DriverSettings::RfidFeig {
            registry: Some(path),
            ..
        } => Some(Arc::new(
            TagRegistry::load(path).map_err(|e| DeviceError::Driver(e.to_string()))?,
        )),
        _ => None,
    };
    // Serial devices journal their raw bytes (the tee); the others journal what they saw.
    let raw_bytes = matches!(
        &cfg.settings,
        DriverSettings::Wheel { .. }
            | DriverSettings::CardLines { .. }
            | DriverSettings::RfidAscii { .. }
            | DriverSettings::RfidFeig { .. }
            | DriverSettings::PedalSerial {
                modem_line: None,
                ..
            }
    );
    let journal_inputs = journal.as_ref().filter(|_| !raw_bytes).map(|journal| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::journal::Entry>();
        let journal = journal.clone();
        tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                if journal.record(entry).await.is_err() {
                    break;
                }
            }
        });
        tx
    });
    let reporter = Reporter {
        device: cfg.name.clone(),
        role: cfg.role,
        health: ctx.health.clone(),
        bus,
        registry,
        journal_inputs,
    };
    match &cfg.settings {
        DriverSettings::Wheel { layout, mode } => {
            let mut serial = tee(open_serial(&cfg, &port)?, &cfg.name, journal.as_ref());
            if let Some(mode) = mode {
                serial
                    .write_all(&mode_command(WheelMode(*mode)))
                    .await
                    .map_err(|source| DeviceError::Write {
                        port: port.clone(),
                        source,
                    })?;
            }
            up(&ctx, &cfg, &port);
            read_serial(
                serial,
                WheelCodec::new(*layout),
                &cfg,
                &port,
                &ctx,
                Observation::Wheel,
                &reporter,
            )
            .await
        }
        DriverSettings::CardLines { cards } => {
            let codec = card_codec(cards)?;
            let serial = tee(open_serial(&cfg, &port)?, &cfg.name, journal.as_ref());
            up(&ctx, &cfg, &port);
            read_serial(
                serial,
                codec,
                &cfg,
                &port,
                &ctx,
                Observation::Card,
                &reporter,
            )
            .await
        }
        DriverSettings::CardKeys { cards, keys } => {
            let format = CardFormat::from_config(
                &cards.format,
                cards.pattern.as_deref(),
                cards.barcodes.as_deref(),
            )
            .map_err(|e| DeviceError::Driver(e.to_string()))?;
            let mut shoe = Shoe::new(format, cards.burn.as_deref());
            let mut reader = EvdevLineReader::open(&port, *keys)
                .map_err(|e| DeviceError::Driver(e.to_string()))?;
            up(&ctx, &cfg, &port);
            loop {
                let line = tokio::select! {
                    line = reader.next_line() => line.map_err(|e| DeviceError::Driver(e.to_string()))?,
                    () = ctx.cancel.cancelled() => return Ok(()),
                };
                match line {
                    KeyLine::Line(scan) => {
                        reporter.frame();
                        if let Some(event) = shoe.read_line(&scan.text) {
                            reporter.observe(
                                pedal::stamp_of_monotonic(scan.first_key_ns),
                                Observation::Card(event),
                            );
                        }
                    }
                    KeyLine::Dropped { reason, .. } => reporter.garbage(0, format!("{reason:?}")),
                }
            }
        }
        DriverSettings::RfidAscii {
            order,
            absent_timeout,
            ..
        } => {
            let serial = tee(open_serial(&cfg, &port)?, &cfg.name, journal.as_ref());
            up(&ctx, &cfg, &port);
            let mut keep = KeepGuard::take(&kept);
            let tracker = keep
                .presence
                .get_or_insert_with(|| PresenceTracker::new(*absent_timeout).with_antenna(1));
            // Tags seen before the reader went away are given a fresh absence window.
            tracker.hold(monotonic_ns());
            read_ascii_rfid(
                serial,
                AsciiUidCodec::new(*order),
                tracker,
                &cfg,
                &port,
                &ctx,
                &reporter,
            )
            .await
        }
        DriverSettings::RfidFeig { poller, .. } => {
            let serial = tee(open_serial(&cfg, &port)?, &cfg.name, journal.as_ref());
            up(&ctx, &cfg, &port);
            let mut keep = KeepGuard::take(&kept);
            if keep.poller.is_none() {
                keep.poller = Some(
                    InventoryPoller::new(poller.clone())
                        .map_err(|e| DeviceError::Driver(e.to_string()))?,
                );
            }
            let Some(poller) = keep.poller.as_mut() else {
                return Ok(());
            };
            poller.on_disconnect();
            run_feig(serial, poller, &cfg, &port, &ctx, &reporter).await
        }
        DriverSettings::PedalSerial {
            timing,
            modem_line: None,
            ..
        } => {
            let serial = tee(open_serial(&cfg, &port)?, &cfg.name, journal.as_ref());
            up(&ctx, &cfg, &port);
            let mut source = SerialByteSource::new(serial, timing, cfg.baud);
            drive_pedal(&mut source, *timing, &ctx, &reporter).await
        }
        DriverSettings::PedalSerial {
            timing,
            modem_line: Some(line),
            active_low,
        } => {
            let serial = open_serial(&cfg, &port)?;
            let mut source =
                ModemLineSource::new(serial, *line, *active_low, pedal::DEFAULT_MODEM_POLL)
                    .map_err(|e| DeviceError::Driver(e.to_string()))?;
            up(&ctx, &cfg, &port);
            drive_pedal(&mut source, *timing, &ctx, &reporter).await
        }
        DriverSettings::PedalKeys { timing, keys } => {
            let keys =
                KeyPedal::from_names(keys).map_err(|e| DeviceError::Driver(e.to_string()))?;
            let mut source =
                EvdevPedal::open(&port, keys).map_err(|e| DeviceError::Driver(e.to_string()))?;
            up(&ctx, &cfg, &port);
            drive_pedal(&mut source, *timing, &ctx, &reporter).await
        }
        DriverSettings::PedalGpio { timing, gpio } => {
            let mut source =
                CdevPedal::open(gpio).map_err(|e| DeviceError::Driver(e.to_string()))?;
            let at = format!("{} line {:?}", gpio.chip.display(), gpio.line);
            up(&ctx, &cfg, &at);
            drive_pedal(&mut source, *timing, &ctx, &reporter).await
        }
        DriverSettings::PedalRpi {
            timing,
            pin,
            active_low,
            bias,
            kernel_debounce,
        } => {
            let config = RpiPedalConfig {
                pin: *pin,
                active_low: *active_low,
                bias: *bias,
                kernel_debounce: *kernel_debounce,
            };
            let mut source =
                RpiPedal::open(&config).map_err(|e| DeviceError::Driver(e.to_string()))?;
            up(&ctx, &cfg, &format!("BCM GPIO {pin}"));
            drive_pedal(&mut source, *timing, &ctx, &reporter).await
        }
    }
}

fn port_of(cfg: &DeviceConfig) -> String {
    cfg.port
        .as_deref()
        .unwrap_or_else(|| Path::new(""))
        .display()
        .to_string()
}

fn up(ctx: &ComponentCtx, cfg: &DeviceConfig, port: &str) {
    ctx.health.fact("port", port);
    let how = if cfg.driver.is_serial() {
        format!("reading {port} at {} baud", cfg.baud)
    } else {
        format!("reading {port}")
    };
    ctx.health.set(State::Up, how);
    info!(device = %cfg.name, role = cfg.role.as_str(), driver = cfg.driver.as_str(), %port, "device up");
}

fn open_serial(cfg: &DeviceConfig, port: &str) -> Result<SerialStream, DeviceError> {
    let parity = match cfg.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    let stream = tokio_serial::new(port, cfg.baud)
        .parity(parity)
        .data_bits(tokio_serial::DataBits::Eight)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .timeout(Duration::from_secs(1))
        .open_native_async()
        .map_err(|e| DeviceError::Open {
            port: port.to_owned(),
            source: e.into(),
        })?;
    // Bytes queued while nobody read are stale: a frame from before a replug must not be
    // taken for a new one.
    let _ = tokio_serial::SerialPort::clear(&stream, tokio_serial::ClearBuffer::Input);
    Ok(stream)
}

fn bits_per_byte(cfg: &DeviceConfig) -> u32 {
    match cfg.parity {
        Parity::None => 10,
        Parity::Even | Parity::Odd => 11,
    }
}

fn card_codec(cards: &CardSettings) -> Result<CardLineCodec, DeviceError> {
    CardLineCodec::from_config(
        &cards.format,
        cards.pattern.as_deref(),
        cards.barcodes.as_deref(),
        cards.burn.as_deref(),
    )
    .map_err(|e| DeviceError::Driver(e.to_string()))
}

/// A byte-stream protocol: decode, stamp, report. Any `AsyncRead` drives it: a serial port,
/// a pseudo-terminal, an in-memory duplex in tests.
async fn read_serial<R, D, T>(
    serial: R,
    decoder: D,
    cfg: &DeviceConfig,
    port: &str,
    ctx: &ComponentCtx,
    to_observation: impl Fn(T) -> Observation,
    reporter: &Reporter,
) -> ComponentResult
where
    R: tokio::io::AsyncRead + Unpin,
    D: tokio_util::codec::Decoder<
        Item = croupier_drivers::model::Decoded<T>,
        Error = std::io::Error,
    >,
{
    let mut stamper = Stamper::with_bits_per_byte(decoder, cfg.baud, bits_per_byte(cfg));
    let mut last_bytes = 0;
    let result = read_frames(serial, &mut stamper, &ctx.cancel, |out, stats| {
        ctx.health.add("bytes", stats.bytes - last_bytes);
        last_bytes = stats.bytes;
        match out {
            Output::Frame { frame, stamp } => {
                reporter.frame();
                reporter.observe(stamp, to_observation(frame));
            }
            Output::Garbage { skipped, reason } => reporter.garbage(skipped, reason),
        }
    })
    .await;
    result.map_err(|source| {
        DeviceError::Read {
            port: port.to_owned(),
            source,
        }
        .into()
    })
}

async fn read_ascii_rfid<R: tokio::io::AsyncRead + Unpin>(
    mut serial: R,
    codec: AsciiUidCodec,
    tracker: &mut PresenceTracker,
    cfg: &DeviceConfig,
    port: &str,
    ctx: &ComponentCtx,
    reporter: &Reporter,
) -> ComponentResult {
    let mut stamper = Stamper::with_bits_per_byte(codec, cfg.baud, bits_per_byte(cfg));
    let mut buf = vec![0u8; 1024];
    loop {
        let deadline = tracker.next_deadline();
        let read = tokio::select! {
            read = serial.read(&mut buf) => Some(read),
            () = sleep_until_mono(deadline) => None,
            () = ctx.cancel.cancelled() => return Ok(()),
        };
        let now = monotonic_ns();
        for event in tracker.expire(now) {
            reporter.observe(Stamp::now(), Observation::Rfid(event));
        }
        let Some(read) = read else { continue };
        let n = bytes_read(read, &mut stamper, reporter, port)?;
        ctx.health.add("bytes", n as u64);
        for out in stamper.push(buf.get(..n).unwrap_or_default(), Stamp::now()) {
            match out {
                Output::Frame { frame: uid, stamp } => {
                    reporter.frame();
                    if let Some(event) = tracker.seen(uid, stamp.mono_ns) {
                        reporter.observe(stamp, Observation::Rfid(event));
                    }
                }
                Output::Garbage { skipped, reason } => reporter.garbage(skipped, reason),
            }
        }
    }
}

/// Polls a FEIG reader over any duplex byte stream (serial port, pseudo-terminal, in-memory).
async fn run_feig<S: tokio::io::AsyncRead + tokio::io::AsyncWrite>(
    serial: S,
    poller: &mut InventoryPoller,
    cfg: &DeviceConfig,
    port: &str,
    ctx: &ComponentCtx,
    reporter: &Reporter,
) -> ComponentResult {
    let mut stamper =
        Stamper::with_bits_per_byte(ResponseCodec::new(), cfg.baud, bits_per_byte(cfg));
    let (mut rd, mut wr) = tokio::io::split(serial);
    let mut buf = vec![0u8; 1024];
    let mut timeouts = poller.stats().timeouts;
    loop {
        let now = monotonic_ns();
        if let Some(request) = poller.poll_due(now) {
            if poller.stats().timeouts > timeouts {
                timeouts = poller.stats().timeouts;
                ctx.health.add("timeouts", 1);
                let dropped = stamper.discard_buffered();
                debug!(device = %cfg.name, dropped, "inventory answer timed out");
            }
            wr.write_all(&request)
                .await
                .map_err(|source| DeviceError::Write {
                    port: port.to_owned(),
                    source,
                })?;
        }
        let wake = poller.next_wakeup();
        let read = tokio::select! {
            read = rd.read(&mut buf) => read,
            () = sleep_until_mono(Some(wake)) => continue,
            () = ctx.cancel.cancelled() => return Ok(()),
        };
        let n = bytes_read(read, &mut stamper, reporter, port)?;
        ctx.health.add("bytes", n as u64);
        for out in stamper.push(buf.get(..n).unwrap_or_default(), Stamp::now()) {
            match out {
                Output::Frame { frame, stamp } => {
                    reporter.frame();
                    for event in poller.on_response(&frame) {
                        reporter.observe(stamp, Observation::Rfid(event));
                    }
                }
                Output::Garbage { skipped, reason } => reporter.garbage(skipped, reason),
            }
        }
    }
}

/// What one read returned: the number of bytes to decode, or why the device is gone. A frame
/// cut off by the end is counted as garbage first.
fn bytes_read<D, T>(
    read: std::io::Result<usize>,
    stamper: &mut Stamper<D>,
    reporter: &Reporter,
    port: &str,
) -> Result<usize, DeviceError>
where
    D: tokio_util::codec::Decoder<
        Item = croupier_drivers::model::Decoded<T>,
        Error = std::io::Error,
    >,
{
    let gone = match read {
        Ok(0) => DeviceError::Closed {
            port: port.to_owned(),
        },
        Ok(n) => return Ok(n),
        Err(source) => DeviceError::Read {
            port: port.to_owned(),
            source: source.into(),
        },
    };
    for out in stamper.finish(Stamp::now()) {
        if let Output::Garbage { skipped, reason } = out {
            reporter.garbage(skipped, reason);
        }
    }
    Err(gone)
}

async fn drive_pedal<S>(
    source: &mut S,
    timing: PedalTiming,
    ctx: &ComponentCtx,
    reporter: &Reporter,
) -> ComponentResult
where
    S: EdgeSource,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let forward = async {
        while let Some((stamp, event)) = rx.recv().await {
            reporter.frame();
            reporter.observe(stamp, Observation::Pedal(event));
        }
    };
    tokio::select! {
        result = pedal::drive(source, timing, &tx) => result.map_err(|e| e.into()),
        () = forward => Ok(()),
        () = ctx.cancel.cancelled() => Ok(()),
    }
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns`, or forever without one.
async fn sleep_until_mono(deadline_ns: Option<u64>) {
    match deadline_ns {
        Some(at) => {
            let wait = at.saturating_sub(monotonic_ns());
            tokio::time::sleep(Duration::from_nanos(wait)).await;
        }
        None => std::future::pending().await,
    }
}

/// Takes the kept state out of its mutex for one run and puts it back on every exit path,
/// so no lock is held across an await.
struct KeepGuard<'a> {
    home: &'a Mutex<Kept>,
    kept: Kept,
}

impl<'a> KeepGuard<'a> {
    fn take(home: &'a Mutex<Kept>) -> Self {
        let kept = std::mem::take(&mut *home.lock().unwrap_or_else(PoisonError::into_inner));
        Self { home, kept }
    }
}

impl std::ops::Deref for KeepGuard<'_> {
    type Target = Kept;
    fn deref(&self) -> &Kept {
        &self.kept
    }
}

impl std::ops::DerefMut for KeepGuard<'_> {
    fn deref_mut(&mut self) -> &mut Kept {
        &mut self.kept
    }
}

impl Drop for KeepGuard<'_> {
    fn drop(&mut self) {
        *self.home.lock().unwrap_or_else(PoisonError::into_inner) = std::mem::take(&mut self.kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use croupier_drivers::feig::{RequestCodec, SimulatedReader};
    use croupier_drivers::model::{Decoded, TagUid};
    use croupier_drivers::rfid::{Antennas, PollerConfig};
    use tokio_util::codec::Decoder;
    use tokio_util::sync::CancellationToken;

    fn feig_device() -> DeviceConfig {
        DeviceConfig {
            name: "rfid".into(),
            role: DeviceRole::Rfid,
            driver: crate::config::Driver::Feig,
            port: None,
            baud: 38400,
            parity: Parity::Even,
            enabled: true,
            settings: DriverSettings::RfidFeig {
                poller: PollerConfig::default(),
                registry: None,
            },
        }
    }

    /// The FEIG polling loop the daemon runs on a serial port, driven here by an in-memory
    /// duplex with a simulated reader at the other end.
    #[tokio::test]
    async fn feig_loop_runs_over_an_in_memory_duplex() {
        let (host, mut reader_end) = tokio::io::duplex(4096);
        let cfg = feig_device();
        let health = Health::new();
        let handle = health.register("rfid", "device");
        let cancel = CancellationToken::new();
        let ctx = ComponentCtx {
            health: handle.clone(),
            cancel: cancel.clone(),
        };
        let bus = observation_bus();
        let mut rx = bus.subscribe();
        let reporter = Reporter {
            device: "rfid".into(),
            role: DeviceRole::Rfid,
            health: handle,
            bus,
            registry: None,
            journal_inputs: None,
        };
        let reader_task = tokio::spawn(async move {
            let mut reader = SimulatedReader::new(0);
            reader.place(1, TagUid([0xE0, 0x04, 0x01, 0x50, 0x12, 0x34, 0xAB, 0xCD]));
            let mut codec = RequestCodec::new();
            let mut buf = tokio_util::bytes::BytesMut::new();
            let mut chunk = [0u8; 256];
            loop {
                let n = match reader_end.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some(Decoded::Frame { frame, .. })) = codec.decode(&mut buf) {
                    let answer = reader.respond_to(&frame);
                    if reader_end.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut poller = InventoryPoller::new(PollerConfig {
            antennas: Antennas::Default(1),
            ..PollerConfig::default()
        })
        .expect("poller");
        let run = run_feig(host, &mut poller, &cfg, "memory", &ctx, &reporter);
        let observed = async {
            let seen = rx.recv().await.expect("an observation");
            cancel.cancel();
            seen
        };
        let (result, seen) = tokio::join!(run, observed);
        assert!(result.is_ok());
        assert_eq!(
            seen.observation,
            Observation::Rfid(RfidEvent::Arrived {
                antenna: 1,
                uid: "E00401501234ABCD".parse().expect("uid"),
            })
        );
        reader_task.abort();
    }
}
