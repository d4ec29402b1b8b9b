//! The durable outbox: which events the broker has acknowledged.
//!
//! Every event is already in the fsync'd event log (`events/events.jsonl`, see
//! [`crate::events`]) before it is published. The outbox adds one number: the highest `seq` up to
//! which every event has been acknowledged by the broker (PUBACK), kept in `events/acked`.
//! After a reconnect or a restart the uplink publishes again everything after it, in `seq`
//! order. An event counts as delivered only on its PUBACK; a crash between PUBACK and saving
//! the pointer republishes a few events, which consumers drop by `event_id` (at-least-once).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::events::Envelope;

/// Errors saving or reading the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot write the outbox pointer {path}: {source} (disk full or failing?)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the event log {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Acknowledgements, in any order, folded into the contiguous acknowledged prefix.
#[derive(Debug)]
pub struct Acks {
    path: PathBuf,
    /// Every seq up to this one is acknowledged.
    acked: u64,
    /// Acknowledged seqs above a gap (a PUBACK that overtook an earlier one).
    ahead: BTreeSet<u64>,
    /// The value last written to disk.
    saved: u64,
}

impl Acks {
    /// Loads `<dir>/events/acked` (0 if absent).
    pub fn load(storage_dir: &Path) -> Self {
        let path = storage_dir.join("events").join("acked");
        let acked = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        Self {
            path,
            acked,
            ahead: BTreeSet::new(),
            saved: acked,
        }
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Records the broker's acknowledgement of `seq`.
    pub fn ack(&mut self, seq: u64) {
        if seq <= self.acked {
            return;
        }
        self.ahead.insert(seq);
        while self.ahead.remove(&(self.acked + 1)) {
            self.acked += 1;
        }
    }

    /// Writes the pointer if it moved (write, fsync, rename: never a torn number).
    pub fn save(&mut self) -> Result<(), OutboxError> {
        if self.acked == self.saved {
            return Ok(());
        }
        let err = |source| OutboxError::Write {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            writeln!(f, "{}", self.acked).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        self.saved = self.acked;
        Ok(())
    }
}

/// The events of the log with `seq >= from`, in order.
pub fn events_from(storage_dir: &Path, from: u64) -> Result<Vec<Envelope>, OutboxError> {
    let path = storage_dir.join("events").join("events.jsonl");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(OutboxError::Read { path, source }),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| OutboxError::Read {
            path: path.clone(),
            source,
        })?;
        // A torn last line is the event log's to cut; it was never acknowledged to anyone.
        let Ok(env) = serde_json::from_str::<Envelope>(&line) else {
            break;
        };
        if env.seq >= from {
            out.push(env);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_acks_fold_into_the_contiguous_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("events")).expect("dir");
        let mut acks = Acks::load(dir.path());
        assert_eq!(acks.acked(), 0);
        acks.ack(2);
        assert_eq!(acks.acked(), 0, "1 is not acknowledged yet");
        acks.ack(1);
        acks.ack(3);
        assert_eq!(acks.acked(), 3);
        acks.ack(2);
        acks.save().expect("save");
        assert_eq!(Acks::load(dir.path()).acked(), 3);
    }
}
