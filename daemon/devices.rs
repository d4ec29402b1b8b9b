//! One supervised component per `[[device]]`: opens the port, reads it, and reports health.
//!
//! A read error or end-of-file (the reader was unplugged, the pseudo-terminal closed) ends the
//! component with an error; the supervisor marks the device down and reopens it with backoff,
//! and marks it up again once it opens. A port missing at start is retried the same way.
//! Frame counting here is deliberately protocol-light; the protocol decoders in `drivers/`
//! turn these bytes into observations.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio_serial::SerialPortBuilderExt;
use tracing::{debug, info};

use crate::clock::format_utc;
use crate::config::{DeviceConfig, Driver};
use crate::health::State;
use crate::supervisor::{ComponentCtx, ComponentResult, ComponentSpec};

/// Errors of one device component; each says what the technician can check.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot open {port}: {source} (check the cable, the udev symlink and that the croupier user is in the dialout/input group)")]
    Open {
        port: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read from {port} failed: {source} (device unplugged or reset?)")]
    Read {
        port: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{port} closed (device unplugged?)")]
    Closed { port: String },
    #[error("driver `{driver}` is not available in this build; the device stays down")]
    Unsupported { driver: &'static str },
}

/// The supervised component for one device.
pub fn component(device: &DeviceConfig) -> ComponentSpec {
    let cfg = device.clone();
    ComponentSpec::new(
        device.name.clone(),
        "device",
        format!("{device:?}"),
        move |ctx| run(cfg.clone(), ctx),
    )
}

async fn run(cfg: DeviceConfig, ctx: ComponentCtx) -> ComponentResult {
    ctx.health.fact("role", cfg.role.as_str());
    ctx.health.fact("driver", cfg.driver.as_str());
    match cfg.driver {
        Driver::Gpio => {
            let err = DeviceError::Unsupported { driver: "gpio" };
            ctx.health.set(State::Down, err.to_string());
            // Nothing to retry until a build with the driver is installed: wait for shutdown.
            ctx.cancel.cancelled().await;
            Ok(())
        }
        Driver::Evdev => {
            let port = port_of(&cfg);
            let file = tokio::fs::File::open(&port)
                .await
                .map_err(|source| DeviceError::Open {
                    port: port.clone(),
                    source,
                })?;
            read_loop(file, &cfg, &port, &ctx).await
        }
        _ => {
            let port = port_of(&cfg);
            let stream = tokio_serial::new(&port, cfg.baud)
                .timeout(Duration::from_secs(1))
                .open_native_async()
                .map_err(|e| DeviceError::Open {
                    port: port.clone(),
                    source: e.into(),
                })?;
            // Bytes queued while nobody read are stale: a frame from before a replug must not
            // be taken for a new one.
            let _ = tokio_serial::SerialPort::clear(&stream, tokio_serial::ClearBuffer::Input);
            read_loop(stream, &cfg, &port, &ctx).await
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

async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    cfg: &DeviceConfig,
    port: &str,
    ctx: &ComponentCtx,
) -> ComponentResult {
    ctx.health.fact("port", port);
    ctx.health
        .set(State::Up, format!("reading {port} at {} baud", cfg.baud));
    info!(device = %cfg.name, role = cfg.role.as_str(), %port, "device up");
    let mut frames = FrameCounter::for_driver(cfg.driver);
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::select! {
            read = reader.read(&mut buf) => read.map_err(|source| DeviceError::Read { port: port.to_owned(), source })?,
            () = ctx.cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            return Err(DeviceError::Closed {
                port: port.to_owned(),
            }
            .into());
        }
        ctx.health.add("bytes", n as u64);
        let chunk = buf.get(..n).unwrap_or_default();
        for frame in frames.push(chunk) {
            ctx.health.add("frames", 1);
            ctx.health.fact("last_frame", frame.clone());
            ctx.health
                .fact("last_frame_at", format_utc(SystemTime::now()));
            debug!(device = %cfg.name, frame = %frame, "frame");
        }
        let dropped = frames.take_dropped();
        if dropped > 0 {
            ctx.health.add("errors", dropped);
        }
    }
}

/// Splits a byte stream into frames well enough to count them and show the last one.
#[derive(Debug)]
struct FrameCounter {
    mode: FrameMode,
    pending: Vec<u8>,
    dropped: u64,
}

#[derive(Debug, Clone, Copy)]
enum FrameMode {
    /// CR/LF terminated text (wheel, line card readers, ASCII RFID).
    Lines,
    /// Fixed-size records: Linux `struct input_event` is 24 bytes on 64-bit.
    Records(usize),
    /// Every byte is an event (serial foot switches).
    Bytes,
    /// Binary frames with a length byte first (FEIG ISO-Host standard frame).
    LengthPrefixed,
}

/// A line longer than this is garbage, not a frame.
const MAX_FRAME: usize = 256;

impl FrameCounter {
    fn for_driver(driver: Driver) -> Self {
        let mode = match driver {
            Driver::Cammegh | Driver::Line | Driver::Ascii => FrameMode::Lines,
            Driver::Evdev => FrameMode::Records(24),
            Driver::Serial | Driver::Gpio => FrameMode::Bytes,
            Driver::Feig => FrameMode::LengthPrefixed,
        };
        Self {
            mode,
            pending: Vec::new(),
            dropped: 0,
        }
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        match self.mode {
            FrameMode::Bytes => {
                out.extend(bytes.iter().map(|b| format!("{b:02X}")));
            }
            FrameMode::Lines => {
                for &b in bytes {
                    if b == b'\n' || b == b'\r' {
                        if !self.pending.is_empty() {
                            out.push(String::from_utf8_lossy(&self.pending).into_owned());
                            self.pending.clear();
                        }
                    } else if self.pending.len() >= MAX_FRAME {
                        self.pending.clear();
                        self.dropped += 1;
                    } else {
                        self.pending.push(b);
                    }
                }
            }
            FrameMode::Records(size) => {
                self.pending.extend_from_slice(bytes);
                while self.pending.len() >= size {
                    let record: Vec<u8> = self.pending.drain(..size).collect();
                    out.push(hex(&record));
                }
            }
            FrameMode::LengthPrefixed => {
                self.pending.extend_from_slice(bytes);
                while let Some(&len) = self.pending.first() {
                    let len = usize::from(len);
                    if len < 4 {
                        self.pending.remove(0);
                        self.dropped += 1;
                        continue;
                    }
                    if self.pending.len() < len {
                        break;
                    }
                    let frame: Vec<u8> = self.pending.drain(..len).collect();
                    out.push(hex(&frame));
                }
            }
        }
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_any_split_and_drop_overlong_garbage() {
        let mut f = FrameCounter::for_driver(Driver::Cammegh);
        assert!(f.push(b"*X;5;04").is_empty());
        assert_eq!(f.push(b"2;17;0;027;1\r\n*X;6"), vec!["*X;5;042;17;0;027;1"]);
        assert_eq!(f.push(b";042;17;0;000;0\r\n"), vec!["*X;6;042;17;0;000;0"]);
        f.push(&[b'x'; MAX_FRAME + 10]);
        assert_eq!(f.take_dropped(), 1);
    }

    #[test]
    fn evdev_records_are_counted_whole() {
        let mut f = FrameCounter::for_driver(Driver::Evdev);
        assert!(f.push(&[0u8; 20]).is_empty());
        assert_eq!(f.push(&[0u8; 28]).len(), 2);
    }

    #[test]
    fn feig_frames_follow_their_length_byte() {
        let mut f = FrameCounter::for_driver(Driver::Feig);
        assert_eq!(f.push(&[0x02, 0x06, 0xFF, 0xB0, 0x01, 0x00, 0xAA]).len(), 1);
        assert_eq!(f.take_dropped(), 1);
    }
}
