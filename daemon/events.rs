//! The event envelope and the table's durable event log.
//!
//! Every engine event becomes an [`Envelope`]: a UUIDv7 `event_id`, a per-table `seq` that is
//! gap-free and continues across restarts, the UTC and monotonic instants, the SMPTE timecode
//! of the video frame on screen at that instant, and the clock's sync quality. Each envelope
//! is appended to `<storage>/events/events.jsonl` and fsync'd before anything else sees it, so a
//! crash or power loss never loses an event the table acted on; a restart replays the file to
//! rebuild the engine. (The uplink's outbox and the hash-chained journal build on this log.)

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::format_utc;
use crate::engine::{EngineEvent, Source};
use crate::timecode::{Timecode, TimecodeRate};

/// The timecode of the frame on screen when the event happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimecodeStamp {
    /// `14:23:12:00`, or `10:11:00;02` at drop-frame rates.
    pub smpte: String,
    /// `25/1`, `30000/1001`.
    pub rate: String,
    pub drop_frame: bool,
}

/// How far the box's clock can be trusted at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStamp {
    pub synchronized: bool,
    pub est_error_us: u64,
}

/// One event as it is stored and published (`docs/events.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub studio: String,
    pub table: String,
    pub round_id: Option<String>,
    pub source: Source,
    pub utc: String,
    pub mono_ns: u64,
    pub timecode: TimecodeStamp,
    pub clock: ClockStamp,
    pub payload: Value,
    /// The signature over the canonical bytes of everything else (docs/signing.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<Value>,
}

impl Envelope {
    /// Signs the envelope with `key_id` from `ring`.
    pub fn sign(
        &mut self,
        ring: &crate::signing::KeyRing,
        key_id: &str,
    ) -> Result<(), crate::signing::SigningError> {
        self.sig = None;
        let mut value = serde_json::to_value(&*self).unwrap_or(Value::Null);
        crate::signing::sign(ring, key_id, &mut value)?;
        self.sig = value.get("sig").cloned();
        Ok(())
    }
}

/// Where an event's timecode comes from. Today the synchronised system clock, as GStreamer's
/// timecodestamper derives it; an LTC reader would implement this too.
pub trait TimecodeSource: std::fmt::Debug + Send + Sync {
    /// The label of the frame on screen at `utc`.
    fn timecode_at(&self, utc: std::time::SystemTime) -> Timecode;
    fn rate(&self) -> TimecodeRate;
}

/// Time-of-day timecode from the system clock.
#[derive(Debug, Clone, Copy)]
pub struct ClockTimecode(pub TimecodeRate);

impl TimecodeSource for ClockTimecode {
    fn timecode_at(&self, utc: std::time::SystemTime) -> Timecode {
        Timecode::at_utc(time::OffsetDateTime::from(utc), self.0)
    }

    fn rate(&self) -> TimecodeRate {
        self.0
    }
}

/// Turns engine events into envelopes.
#[derive(Debug, Clone)]
pub struct Stamper {
    pub studio: String,
    pub table: String,
    pub rate: TimecodeRate,
}

impl Stamper {
    pub fn envelope(&self, seq: u64, event: EngineEvent, clock: ClockStamp) -> Envelope {
        self.envelope_from(&ClockTimecode(self.rate), seq, event, clock)
    }

    /// Like [`Stamper::envelope`], with the timecode from `source`.
    pub fn envelope_from(
        &self,
        source: &dyn TimecodeSource,
        seq: u64,
        event: EngineEvent,
        clock: ClockStamp,
    ) -> Envelope {
        let tc = source.timecode_at(event.at.utc);
        let rate = source.rate();
        let (num, den) = rate.fraction();
        Envelope {
            event_id: uuid_v7(event.at.utc),
            seq,
            kind: event.kind,
            studio: self.studio.clone(),
            table: self.table.clone(),
            round_id: event.round_id,
            source: event.source,
            utc: format_utc(event.at.utc),
            mono_ns: event.at.mono_ns,
            timecode: TimecodeStamp {
                smpte: tc.to_string(),
                rate: format!("{num}/{den}"),
                drop_frame: rate.is_drop_frame(),
            },
            clock,
            payload: event.payload,
            sig: None,
        }
    }
}

/// A UUIDv7 whose time part is the event's own instant, so ids sort like events.
fn uuid_v7(at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, since.as_secs(), since.subsec_nanos());
    uuid::Uuid::new_v7(ts).to_string()
}

/// The clock quality now, from the kernel.
pub fn clock_now() -> ClockStamp {
    match croupier_sys::clock_sync() {
        Some(s) => ClockStamp {
            synchronized: s.synchronized,
            est_error_us: s.est_error_us,
        },
        None => ClockStamp {
            synchronized: false,
            est_error_us: 0,
        },
    }
}

/// Errors of the event log: each one stops the table, because an event that cannot be made
/// durable must not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error(
        "cannot open the event log {path}: {source} (check [storage] dir and its permissions)"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the event log {path}: {source} (disk full or failing?)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the event log {path} is damaged at line {line}: {reason}; keep the file for the dispute record and move it aside to start a new log")]
    Damaged {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The append-only, fsync'd event log.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
}

impl EventLog {
    /// Opens (or creates) the log under `dir` and reads every event in it.
    ///
    /// A last line cut short by a power loss (no newline, not JSON) was never acknowledged to
    /// anyone: it is cut off and the log continues. Anything else that does not parse, or a
    /// gap in `seq`, is damage and refuses to start.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Envelope>), EventLogError> {
        let dir = dir.join("events");
        let path = dir.join("events.jsonl");
        let open_err = |source| EventLogError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(open_err)?;
        let mut events = Vec::new();
        let mut good_len: u64 = 0;
        if let Ok(file) = File::open(&path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            let mut number = 0;
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(open_err)?;
                if n == 0 {
                    break;
                }
                number += 1;
                let complete = line.ends_with('\n');
                match serde_json::from_str::<Envelope>(line.trim_end()) {
                    Ok(env) if complete => {
                        let expected = events.last().map_or(env.seq, |e: &Envelope| e.seq + 1);
                        if env.seq != expected {
                            return Err(EventLogError::Damaged {
                                path: path.clone(),
                                line: number,
                                reason: format!(
                                    "seq {} follows {}",
                                    env.seq,
                                    expected.saturating_sub(1)
                                ),
                            });
                        }
                        good_len += n as u64;
                        events.push(env);
                    }
                    _ if !complete => {
                        tracing::warn!(path = %path.display(), line = number, "cutting off an event torn by a crash (never published)");
                        break;
                    }
                    Err(err) => {
                        return Err(EventLogError::Damaged {
                            path: path.clone(),
                            line: number,
                            reason: err.to_string(),
                        })
                    }
                    Ok(_) => break,
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(open_err)?;
        file.set_len(good_len).map_err(open_err)?;
        let next_seq = events.last().map_or(1, |e| e.seq + 1);
        Ok((
            Self {
                path,
                file,
                next_seq,
            },
            events,
        ))
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and fsyncs one event. Its `seq` must be the next one.
    pub fn append(&mut self, env: &Envelope) -> Result<(), EventLogError> {
        let write_err = |source| EventLogError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(env).map_err(|e| write_err(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(write_err)?;
        self.file.sync_data().map_err(write_err)?;
        self.next_seq = env.seq + 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::At;
    use serde_json::json;

    fn event(kind: &str) -> EngineEvent {
        EngineEvent {
            kind: kind.into(),
            round_id: Some("t-20261121T142310Z-0001".into()),
            source: Source::Pedal,
            at: At {
                utc: std::time::UNIX_EPOCH
                    + std::time::Duration::from_micros(1_795_270_992_000_123),
                mono_ns: 42,
            },
            payload: json!({}),
        }
    }

    #[test]
    fn envelopes_carry_the_frame_timecode_and_a_v7_id() {
        let stamper = Stamper {
            studio: "riga-1".into(),
            table: "rl-01".into(),
            rate: TimecodeRate::Fps25,
        };
        let env = stamper.envelope(
            7,
            event("round.open"),
            ClockStamp {
                synchronized: true,
                est_error_us: 120,
            },
        );
        assert_eq!(env.utc, "2026-11-21T14:23:12.000123Z");
        assert_eq!(env.timecode.smpte, "14:23:12:00");
        assert_eq!(env.timecode.rate, "25/1");
        assert_eq!(
            &env.event_id[14..15],
            "7",
            "UUID version 7: {}",
            env.event_id
        );
        let json = serde_json::to_value(&env).expect("json");
        assert_eq!(json["type"], "round.open");
        assert_eq!(json["source"], "pedal");
    }

    #[test]
    fn the_log_survives_reopening_and_cuts_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stamper = Stamper {
            studio: "s".into(),
            table: "t".into(),
            rate: TimecodeRate::Fps25,
        };
        let clock = ClockStamp {
            synchronized: false,
            est_error_us: 0,
        };
        {
            let (mut log, events) = EventLog::open(dir.path()).expect("open");
            assert!(events.is_empty());
            for kind in ["round.open", "round.close"] {
                let env = stamper.envelope(log.next_seq(), event(kind), clock);
                log.append(&env).expect("append");
            }
        }
        // A crash in the middle of the third write.
        let path = dir.path().join("events/events.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"event_id\":\"0193").expect("torn write");
        drop(f);
        let (log, events) = EventLog::open(dir.path()).expect("reopen");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(log.next_seq(), 3);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with("}\n"), "the torn line is cut off");
    }

    #[test]
    fn a_gap_in_seq_is_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stamper = Stamper {
            studio: "s".into(),
            table: "t".into(),
            rate: TimecodeRate::Fps25,
        };
        let clock = ClockStamp {
            synchronized: false,
            est_error_us: 0,
        };
        let (mut log, _) = EventLog::open(dir.path()).expect("open");
        log.append(&stamper.envelope(1, event("round.open"), clock))
            .expect("append");
        log.append(&stamper.envelope(3, event("round.close"), clock))
            .expect("append");
        drop(log);
        assert!(matches!(
            EventLog::open(dir.path()),
            Err(EventLogError::Damaged { line: 2, .. })
        ));
    }
}
