//! The journal: Croupier's write-once, hash-chained record of everything the table saw and did.
//!
//! # For the technician
//!
//! The journal lives in `<storage>/journal/` (see [`default_dir`]) as JSON-lines files named
//! `journal-YYYYMMDD-NNNNNN.jsonl`: the UTC date of the file's first record and a file number
//! that goes up by one with every new file, so `ls` lists them in order. A new file starts when
//! the current one would grow past `max_file_bytes` (64 MiB by default) or when a record's UTC
//! date is a later day than the file's. Every record is on disk (`fsync`) before
//! [`Journal::append`] returns. Never edit, rename or delete a file in this directory: the chain
//! below turns any such change into a failed `croupier journal verify`. To free space, move whole
//! old files to the archive (verify then reports the beginning as missing; verify the archive
//! and the live directory together to show the whole chain).
//!
//! After a power loss the last line may be cut short. The next start cuts that line off (it was
//! never acknowledged to anyone) and writes a `note` record saying how many bytes were cut and
//! their SHA-256, so the cut itself is on the record.
//!
//! # For the compliance officer (disputes)
//!
//! Every raw device input (the bytes as read from the serial port, HID or GPIO), every command
//! received from the orchestrator (including refused ones) and every event the table published
//! is one record: `{"n", "utc", "mono_ns", "boot", "kind", "device", "round_id", "data", "prev",
//! "hash"}`. `n` counts records from 0 (the genesis record) without gaps across files. `hash` is
//! the SHA-256 of the record's canonical JSON without the `hash` key (keys sorted, no spaces;
//! see [`record_hash`]); `prev` is the `hash` of the record before it, and the genesis record's
//! `prev` is 64 zeros. Because `prev` is inside what `hash` covers, every record commits to the
//! entire history before it: editing any field breaks that record's hash; removing, reordering
//! or inserting records, or removing a whole file, breaks the next record's `prev` and the `n`
//! sequence. [`verify`] checks all of it and names the file and line of each problem.
//!
//! What a hash chain alone cannot show is records cut from the very end, or records appended
//! at the end by someone who recomputes the hashes: whoever can write the files can extend the
//! chain. The defence is an anchor: the chain head (`n` and `hash`, [`Journal::head`]) copied
//! somewhere else (the export header, the orchestrator's telemetry). [`verify_anchored`] checks
//! the journal against such anchors.
//!
//! [`export_round`] writes everything about one round (its records, plus the inputs, commands
//! and table-wide events in its time window) with each record's `n`, `prev` and `hash`, so the
//! export can be checked against the full journal.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the genesis record: there is nothing before it.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Written into the genesis record and the export header, so a reader knows which rules apply.
pub const FORMAT: &str = "croupier-journal/1";

/// The format of [`export_round`]'s output.
pub const EXPORT_FORMAT: &str = "croupier-journal-export/1";

/// The default size at which a file is closed and the next one started.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The note kinds the journal writes itself, in `data.note`.
const NOTE_GENESIS: &str = "genesis";
const NOTE_OPEN: &str = "journal_open";
const NOTE_TORN: &str = "torn_line_cut";

/// `<storage>/journal`, where the daemon keeps its journal.
pub fn default_dir(storage: &Path) -> PathBuf {
    storage.join("journal")
}

/// Errors of the journal. Appending errors stop the table: an input or event that cannot be
/// put on the record must not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "cannot read the journal at {path}: {source} (check [storage] dir and its permissions)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the journal file {path}: {source} (disk full or failing?)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal file {path} is damaged: {reason}; run `croupier journal verify {dir}`, keep the directory for the dispute record and move it aside to start a new journal", dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Damaged { path: PathBuf, reason: String },
    #[error("the journal at {path} refuses writes after an earlier failure ({reason}); restart the daemon so it re-reads the journal's end")]
    Failed { path: PathBuf, reason: String },
    #[error("cannot encode a journal record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("no record of round {round_id} in the journal at {dir}")]
    RoundNotFound { round_id: String, dir: PathBuf },
    #[error("cannot write the export to {path}: {source}")]
    Export {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not an anchor {text:?}: expected <n>:<64 hex digits of the record's hash>")]
    BadAnchor { text: String },
    #[error("the journal writer has stopped: {0}")]
    Stopped(String),
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Raw bytes or edges from a device, exactly as read.
    Input,
    /// A command from the orchestrator (or the CLI), accepted or refused.
    Command,
    /// An event the table published (the full envelope).
    Event,
    /// Something the journal or the daemon states about itself (genesis, restart, torn write).
    Note,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Input => "input",
            Kind::Command => "command",
            Kind::Event => "event",
            Kind::Note => "note",
        })
    }
}

/// What the caller hands to [`Journal::append`]; the journal adds `n`, `boot`, `prev`, `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    /// When it happened (for an input: when the bytes arrived, not when they were written).
    pub utc: SystemTime,
    /// CLOCK_MONOTONIC at the same instant; orders records within a boot even across clock steps.
    pub mono_ns: u64,
    pub device: Option<String>,
    pub round_id: Option<String>,
    pub data: Value,
}

impl Entry {
    /// An entry stamped now.
    pub fn now(kind: Kind, data: Value) -> Self {
        Self {
            kind,
            utc: SystemTime::now(),
            mono_ns: crate::clock::monotonic_ns(),
            device: None,
            round_id: None,
            data,
        }
    }

    /// Raw bytes from a device: `data` is `{"len", "hex"}`, plus `"text"` when the bytes are
    /// UTF-8, so a technician can read line protocols without decoding hex.
    pub fn input(device: &str, bytes: &[u8], utc: SystemTime, mono_ns: u64) -> Self {
        let mut data = json!({ "len": bytes.len(), "hex": to_hex(bytes) });
        if let (Ok(text), Some(map)) = (std::str::from_utf8(bytes), data.as_object_mut()) {
            map.insert("text".into(), Value::String(text.to_owned()));
        }
        Self {
            kind: Kind::Input,
            utc,
            mono_ns,
            device: Some(device.to_owned()),
            round_id: None,
            data,
        }
    }

    /// A command as received, before it is checked: `data.payload` is the JSON body, or
    /// `data.hex` when the body is not JSON (malformed commands are evidence too). Add the
    /// verdict with [`Entry::with`] (`"verdict": "ok" | "refused"`, `"reason"`).
    pub fn command(payload: &[u8], utc: SystemTime, mono_ns: u64) -> Self {
        let data = match serde_json::from_slice::<Value>(payload) {
            Ok(body) => json!({ "payload": body }),
            Err(_) => json!({ "len": payload.len(), "hex": to_hex(payload) }),
        };
        Self {
            kind: Kind::Command,
            utc,
            mono_ns,
            device: None,
            round_id: None,
            data,
        }
    }

    /// A published event: `data` is the whole envelope, `utc`, `mono_ns` and `round_id` are the
    /// event's own.
    pub fn event(envelope: &crate::events::Envelope) -> Result<Self, JournalError> {
        Ok(Self {
            kind: Kind::Event,
            utc: parse_utc(&envelope.utc).unwrap_or_else(SystemTime::now),
            mono_ns: envelope.mono_ns,
            device: None,
            round_id: envelope.round_id.clone(),
            data: serde_json::to_value(envelope)?,
        })
    }

    pub fn with_device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    pub fn with_round(mut self, round_id: Option<String>) -> Self {
        self.round_id = round_id;
        self
    }

    /// Adds one key to `data` (which becomes an object if it was not one).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        if !self.data.is_object() {
            let old = std::mem::take(&mut self.data);
            self.data = if old.is_null() {
                json!({})
            } else {
                json!({ "value": old })
            };
        }
        if let Some(map) = self.data.as_object_mut() {
            map.insert(key.to_owned(), value);
        }
        self
    }
}

/// One record as stored, one per line, keys in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub n: u64,
    /// RFC 3339 UTC with microseconds, `2026-11-21T14:23:12.000123Z`.
    pub utc: String,
    pub mono_ns: u64,
    /// The kernel's boot id: `mono_ns` values compare only within one boot.
    pub boot: Option<String>,
    pub kind: Kind,
    pub device: Option<String>,
    pub round_id: Option<String>,
    pub data: Value,
    pub prev: String,
    pub hash: String,
}

/// Where the chain ends (or one point of it, as an anchor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub n: u64,
    pub hash: String,
    /// The file holding that record.
    pub file: String,
}

/// A record number and the hash it must have, kept outside the journal (written down, sent
/// upstream) to detect records cut from or forged at the end. Parses from `<n>:<hash>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub n: u64,
    pub hash: String,
}

impl FromStr for Anchor {
    type Err = JournalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || JournalError::BadAnchor {
            text: text.to_owned(),
        };
        let (n, hash) = text.trim().split_once(':').ok_or_else(bad)?;
        let n = n.parse().map_err(|_| bad())?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { n, hash })
    }
}

impl From<&ChainHead> for Anchor {
    fn from(head: &ChainHead) -> Self {
        Self {
            n: head.n,
            hash: head.hash.clone(),
        }
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.n, self.hash)
    }
}

/// Settings of [`Journal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Start a new file before one grows past this (a single larger record still gets its file).
    pub max_file_bytes: u64,
    /// The boot id stamped on records; `None` reads the kernel's
    /// (`/proc/sys/kernel/random/boot_id`). Tests set it to simulate reboots.
    pub boot_id: Option<String>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            boot_id: None,
        }
    }
}

/// The open journal. One per storage directory: two writers would fork the chain.
///
/// Appends block on `fsync`; call them from a blocking thread (`spawn_blocking` or a dedicated
/// writer thread), not on the async reactor.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    config: JournalConfig,
    boot: Option<String>,
    file: File,
    file_path: PathBuf,
    file_name: String,
    file_seq: u64,
    file_date: u32,
    file_len: u64,
    next_n: u64,
    head_hash: String,
    /// Set when a write or fsync failed: after a failed fsync the page cache cannot be trusted,
    /// so nothing more is appended until the journal is reopened from what is on disk.
    failed: Option<String>,
}

impl Journal {
    /// Opens the journal in `dir` (created if missing) and continues its chain, or starts a new
    /// chain with a genesis record. A last line torn by a power loss is cut off and noted. Writes
    /// a `journal_open` note (boot id, version) so every restart is on the record.
    pub fn open(dir: &Path, config: JournalConfig) -> Result<Self, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let boot = config.boot_id.clone().or_else(kernel_boot_id);
        let listing = list_files(dir).map_err(|source| JournalError::Read {
            path: dir.to_owned(),
            source,
        })?;

        let mut torn = None;
        let mut head: Option<Record> = None;
        if let Some(last) = listing.files.last() {
            torn = cut_torn_tail(&last.path)?;
            for file in listing.files.iter().rev() {
                if let Some(record) = last_record(&file.path)? {
                    head = Some(record);
                    break;
                }
            }
        }

        let (file_path, file_seq, file_date) = match listing.files.last() {
            Some(last) => (last.path.clone(), last.seq, last.date),
            None => {
                let date = utc_date(SystemTime::now());
                (dir.join(file_name(date, 1)), 1, date)
            }
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file_path)
            .map_err(|source| JournalError::Write {
                path: file_path.clone(),
                source,
            })?;
        let file_len = file
            .metadata()
            .map_err(|source| JournalError::Read {
                path: file_path.clone(),
                source,
            })?
            .len();
        if listing.files.is_empty() {
            sync_dir(dir)?;
        }
        let (next_n, head_hash) = match &head {
            Some(record) => (record.n.saturating_add(1), record.hash.clone()),
            None => (0, GENESIS_PREV.to_owned()),
        };
        let mut journal = Self {
            dir: dir.to_owned(),
            config,
            boot,
            file,
            file_name: name_of(&file_path),
            file_path,
            file_seq,
            file_date,
            file_len,
            next_n,
            head_hash,
            failed: None,
        };

        let mut notes = Vec::new();
        if head.is_none() {
            notes.push(Entry::now(
                Kind::Note,
                json!({
                    "note": NOTE_GENESIS,
                    "format": FORMAT,
                    "journal_id": uuid::Uuid::now_v7().to_string(),
                    "version": env!("CARGO_PKG_VERSION"),
                }),
            ));
        }
        if let Some(torn) = torn {
            notes.push(Entry::now(Kind::Note, torn));
        }
        notes.push(Entry::now(
            Kind::Note,
            json!({
                "note": NOTE_OPEN,
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
            }),
        ));
        journal.append_batch(notes)?;
        Ok(journal)
    }

    /// Appends one record and fsyncs it; returns its `n`.
    pub fn append(&mut self, entry: Entry) -> Result<u64, JournalError> {
        let n = self.write_one(entry)?;
        self.sync()?;
        Ok(n)
    }

    /// Appends several records with one fsync at the end (for bursts of raw device chunks);
    /// returns their `n`s. None of them counts as recorded before this returns `Ok`.
    pub fn append_batch(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<Range<u64>, JournalError> {
        let start = self.next_n;
        for entry in entries {
            self.write_one(entry)?;
        }
        if self.next_n > start {
            self.sync()?;
        }
        Ok(start..self.next_n)
    }

    /// Makes everything appended so far durable. [`Journal::append`] already does; this is for
    /// callers that want a barrier (shutdown).
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.check_failed()?;
        self.sync()
    }

    /// The last record written: publish it upstream now and then as an [`Anchor`].
    pub fn head(&self) -> ChainHead {
        ChainHead {
            n: self.next_n.saturating_sub(1),
            hash: self.head_hash.clone(),
            file: self.file_name.clone(),
        }
    }

    /// The `n` the next record will get.
    pub fn next_n(&self) -> u64 {
        self.next_n
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file being written now.
    pub fn current_file(&self) -> &Path {
        &self.file_path
    }

    fn check_failed(&self) -> Result<(), JournalError> {
        match &self.failed {
            Some(reason) => Err(JournalError::Failed {
                path: self.file_path.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn write_one(&mut self, entry: Entry) -> Result<u64, JournalError> {
        self.check_failed()?;
        let date = utc_date(entry.utc);
        let n = self.next_n;
        let mut record = Record {
            n,
            utc: format_utc(entry.utc),
            mono_ns: entry.mono_ns,
            boot: self.boot.clone(),
            kind: entry.kind,
            device: entry.device,
            round_id: entry.round_id,
            data: entry.data,
            prev: self.head_hash.clone(),
            hash: String::new(),
        };
        record.hash = record_hash(&serde_json::to_value(&record)?)?;
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        let len = line.len() as u64;
        // Dates only move forward in file names, so a clock stepped back cannot make `ls`
        // list files out of order.
        if date > self.file_date
            || (self.file_len > 0 && self.file_len.saturating_add(len) > self.config.max_file_bytes)
        {
            self.rotate(date.max(self.file_date))?;
        }
        if let Err(source) = self.file.write_all(&line) {
            // Take a partial line back so the next record does not follow garbage; if even
            // that fails, refuse further writes until a reopen cuts it as a torn line.
            if self.file.set_len(self.file_len).is_err() {
                self.failed = Some(format!("a write failed: {source}"));
            }
            return Err(JournalError::Write {
                path: self.file_path.clone(),
                source,
            });
        }
        self.file_len += len;
        self.next_n = n.saturating_add(1);
        self.head_hash = record.hash;
        Ok(n)
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(|source| {
            self.failed = Some(format!("fsync failed: {source}"));
            JournalError::Write {
                path: self.file_path.clone(),
                source,
            }
        })
    }

    fn rotate(&mut self, date: u32) -> Result<(), JournalError> {
        self.sync()?;
        let seq = self.file_seq.saturating_add(1);
        let path = self.dir.join(file_name(date, seq));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Write {
                path: path.clone(),
                source,
            })?;
        // The new name must survive a power loss too, or the chain would lose its tail file.
        sync_dir(&self.dir)?;
        self.file = file;
        self.file_name = name_of(&path);
        self.file_path = path;
        self.file_seq = seq;
        self.file_date = date;
        self.file_len = 0;
        Ok(())
    }
}

/// The hash of a record: lowercase hex SHA-256 of its canonical JSON without the `hash` key.
///
/// Canonical JSON: object keys sorted by their UTF-8 bytes at every depth, no whitespace,
/// strings and numbers as `serde_json` writes them. Key order in the file does not matter,
/// so a reader can recompute it with any JSON library that sorts keys.
pub fn record_hash(record: &Value) -> Result<String, JournalError> {
    let mut bytes = Vec::new();
    canonical_into(record, Some("hash"), &mut bytes)?;
    Ok(to_hex(&Sha256::digest(&bytes)))
}

fn canonical_into(value: &Value, skip: Option<&str>, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| Some(k.as_str()) != skip).collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                if let Some(inner) = map.get(key) {
                    canonical_into(inner, None, out)?;
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_into(item, None, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

impl Journal {
    /// The `seq` of the last event journaled, searching back from the newest file. At start
    /// the daemon journals every event of its event log after this one: an event is written
    /// to the event log first, so a crash between the two writes leaves it only there.
    pub fn last_event_seq(&self) -> Result<Option<u64>, JournalError> {
        let listing = list_files(&self.dir).map_err(|source| JournalError::Read {
            path: self.dir.clone(),
            source,
        })?;
        for file in listing.files.iter().rev() {
            let mut last = None;
            for_each_record(file, |_, _, record| {
                if record.kind == Kind::Event {
                    if let Some(seq) = record.data.get("seq").and_then(Value::as_u64) {
                        last = Some(seq);
                    }
                }
            })?;
            if last.is_some() {
                return Ok(last);
            }
        }
        Ok(None)
    }

    /// Moves the journal onto its own thread (see [`JournalHandle`]). `capacity` bounds the
    /// queue: when it is full, [`JournalHandle::record`] waits rather than drop evidence.
    pub fn spawn(
        self,
        capacity: usize,
    ) -> Result<
        (
            JournalHandle,
            std::thread::JoinHandle<Result<(), JournalError>>,
        ),
        JournalError,
    > {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let (head_tx, head_rx) = tokio::sync::watch::channel(self.head());
        let path = self.dir.clone();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer_loop(self, rx, head_tx))
            .map_err(|source| JournalError::Write { path, source })?;
        Ok((JournalHandle { tx, head: head_rx }, thread))
    }
}

/// How async code writes to the journal: cheap to clone, one per device task, the uplink and
/// the engine loop. The thread behind it writes whatever is queued as one batch with one
/// fsync, so a burst of device chunks costs one disk flush, and no task waits on the disk
/// unless it asks to ([`JournalHandle::record_durable`]).
#[derive(Debug, Clone)]
pub struct JournalHandle {
    tx: tokio::sync::mpsc::Sender<Job>,
    head: tokio::sync::watch::Receiver<ChainHead>,
}

#[derive(Debug)]
enum Job {
    Record(Entry),
    Durable(Entry, tokio::sync::oneshot::Sender<Result<u64, String>>),
    Flush(tokio::sync::oneshot::Sender<Result<ChainHead, String>>),
}

impl JournalHandle {
    /// Queues an entry; it is on disk within one batch. Waits only while the queue is full.
    /// An error means the writer stopped (disk failure): the table must stop taking rounds.
    pub async fn record(&self, entry: Entry) -> Result<(), JournalError> {
        self.send(Job::Record(entry)).await
    }

    /// Queues an entry and waits until it is fsync'd; returns its `n`.
    pub async fn record_durable(&self, entry: Entry) -> Result<u64, JournalError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Job::Durable(entry, done)).await?;
        wait.await
            .map_err(|_| JournalError::Stopped("the writer thread has exited".into()))?
            .map_err(JournalError::Stopped)
    }

    /// Waits until everything queued before is on disk; returns the head then.
    pub async fn flush(&self) -> Result<ChainHead, JournalError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Job::Flush(done)).await?;
        wait.await
            .map_err(|_| JournalError::Stopped("the writer thread has exited".into()))?
            .map_err(JournalError::Stopped)
    }

    /// The last record on disk: publish it (telemetry, state) as the journal's anchor.
    pub fn head(&self) -> ChainHead {
        self.head.borrow().clone()
    }

    async fn send(&self, job: Job) -> Result<(), JournalError> {
        self.tx
            .send(job)
            .await
            .map_err(|_| JournalError::Stopped("the writer thread has exited".into()))
    }
}

/// The writer thread: takes what is queued (up to a bound, so waiters are answered steadily),
/// appends it with one fsync, answers the waiters. On a write error it answers everyone with
/// the error and exits, so later sends fail instead of queueing evidence that cannot be kept.
fn writer_loop(
    mut journal: Journal,
    mut rx: tokio::sync::mpsc::Receiver<Job>,
    head: tokio::sync::watch::Sender<ChainHead>,
) -> Result<(), JournalError> {
    const MAX_BATCH: usize = 512;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut entries = Vec::with_capacity(jobs.len());
        let mut durable = Vec::new();
        let mut flushes = Vec::new();
        for job in jobs {
            match job {
                Job::Record(entry) => entries.push(entry),
                Job::Durable(entry, done) => {
                    durable.push((entries.len() as u64, done));
                    entries.push(entry);
                }
                Job::Flush(done) => flushes.push(done),
            }
        }
        let result = if entries.is_empty() {
            journal.flush().map(|()| journal.next_n()..journal.next_n())
        } else {
            journal.append_batch(entries)
        };
        match result {
            Ok(range) => {
                let now = journal.head();
                head.send_replace(now.clone());
                for (offset, done) in durable {
                    let _ = done.send(Ok(range.start + offset));
                }
                for done in flushes {
                    let _ = done.send(Ok(now.clone()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "the journal cannot write; records are no longer kept");
                let reason = err.to_string();
                for (_, done) in durable {
                    let _ = done.send(Err(reason.clone()));
                }
                for done in flushes {
                    let _ = done.send(Err(reason.clone()));
                }
                return Err(err);
            }
        }
    }
    journal.flush()
}

// ---------------------------------------------------------------------------------------------
// Verification

/// What kind of problem [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A record's content does not match its `hash`: it was edited.
    BrokenHash,
    /// A record's `prev` is not the hash of the record before it.
    BrokenLink,
    /// `n` jumps forward: records are missing.
    Gap,
    /// `n` goes back or repeats: records were reordered or duplicated.
    OutOfOrder,
    /// A file number is missing between two files (or the first files are missing).
    MissingFile,
    /// The chain does not start at a genesis record.
    MissingGenesis,
    /// A line that is not a journal record.
    Unparsable,
    /// A line without its newline: a torn write or a truncated file.
    TornLine,
    /// A record differs from an anchor kept outside, or the journal ends before it.
    AnchorMismatch,
    /// A file named like a journal file but not in the journal's naming pattern.
    BadFileName,
    /// The directory or a file could not be read, or holds no journal.
    Unreadable,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The file name within the journal directory.
    pub file: Option<String>,
    /// 1-based line within that file.
    pub line: Option<u64>,
    /// The record's `n`, when it could be read.
    pub n: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub files: usize,
    /// Lines read as records (intact or not).
    pub records: u64,
    /// The last record read.
    pub head: Option<ChainHead>,
    pub problems: Vec<Problem>,
    /// Things on the record that are not tampering but that a reader should know about (a
    /// torn write cut off after a power loss).
    pub notices: Vec<String>,
}

impl VerifyReport {
    /// True when every record is intact and linked, from genesis to the end.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "journal {}: {} records checked in {} files",
            self.dir.display(),
            self.records,
            self.files
        )?;
        if let Some(head) = &self.head {
            writeln!(
                f,
                "chain head: n={} hash={} ({})",
                head.n, head.hash, head.file
            )?;
        }
        for notice in &self.notices {
            writeln!(f, "notice: {notice}")?;
        }
        if self.is_ok() {
            writeln!(
                f,
                "INTACT: every record matches its hash and links to the one before it, from genesis to the head."
            )?;
            writeln!(
                f,
                "(A chain cannot show records cut from its very end: compare the head with one kept elsewhere.)"
            )
        } else {
            writeln!(
                f,
                "TAMPERED OR DAMAGED: {} problem(s):",
                self.problems.len()
            )?;
            for problem in &self.problems {
                writeln!(f, "  {problem}")?;
            }
            Ok(())
        }
    }
}

/// Checks the whole journal in `dir`: every record's hash, every link, `n` without gaps, no
/// file missing, a genesis at the start. Lists every problem rather than stopping at the first.
pub fn verify(dir: &Path) -> VerifyReport {
    verify_anchored(dir, &[])
}

/// [`verify`], and also that each anchor's record is there with that hash: this catches
/// records cut from the end, or a tail rewritten with recomputed hashes, after the anchor.
pub fn verify_anchored(dir: &Path, anchors: &[Anchor]) -> VerifyReport {
    let mut report = VerifyReport {
        dir: dir.to_owned(),
        files: 0,
        records: 0,
        head: None,
        problems: Vec::new(),
        notices: Vec::new(),
    };
    let listing = match list_files(dir) {
        Ok(listing) => listing,
        Err(err) => {
            report.problems.push(Problem {
                kind: ProblemKind::Unreadable,
                file: None,
                line: None,
                n: None,
                message: format!("cannot read the journal directory {}: {err}", dir.display()),
            });
            return report;
        }
    };
    for name in &listing.bad_names {
        report.problems.push(Problem {
            kind: ProblemKind::BadFileName,
            file: Some(name.clone()),
            line: None,
            n: None,
            message: "named like a journal file but not journal-YYYYMMDD-NNNNNN.jsonl: renamed or planted?".into(),
        });
    }
    if listing.files.is_empty() {
        report.problems.push(Problem {
            kind: ProblemKind::Unreadable,
            file: None,
            line: None,
            n: None,
            message: format!("no journal files in {}", dir.display()),
        });
        return report;
    }
    check_file_sequence(&listing.files, &mut report.problems);

    let anchors: BTreeMap<u64, &str> = anchors.iter().map(|a| (a.n, a.hash.as_str())).collect();
    let mut checker = Checker::default();
    let count = listing.files.len();
    for (index, file) in listing.files.iter().enumerate() {
        report.files += 1;
        let is_last = index + 1 == count;
        let read = read_lines(&file.path, |line, bytes, complete| {
            checker.line(
                &file.name,
                line,
                bytes,
                complete,
                is_last,
                &anchors,
                &mut report,
            );
        });
        if let Err(err) = read {
            report.problems.push(Problem {
                kind: ProblemKind::Unreadable,
                file: Some(file.name.clone()),
                line: None,
                n: None,
                message: format!("cannot read: {err}"),
            });
            checker.state = LinkState::Unknown;
        }
    }
    // Read in journal order: files by number, then lines; directory-level problems first.
    let order: HashMap<&str, usize> = listing
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i + 1))
        .collect();
    report.problems.sort_by_key(|p| {
        (
            p.file
                .as_deref()
                .and_then(|f| order.get(f))
                .copied()
                .unwrap_or(0),
            p.line.unwrap_or(0),
        )
    });
    let last_n = report.head.as_ref().map(|h| h.n);
    for (n, hash) in anchors {
        if checker.anchors_seen.contains_key(&n) {
            continue;
        }
        let message = match last_n {
            Some(last) if n > last => format!(
                "the anchor n={n} hash={} is past the end of the journal (last record n={last}): records were cut from the end",
                short(hash)
            ),
            _ => format!(
                "the anchor n={n} hash={} matches no readable record",
                short(hash)
            ),
        };
        report.problems.push(Problem {
            kind: ProblemKind::AnchorMismatch,
            file: None,
            line: None,
            n: Some(n),
            message,
        });
    }
    report
}

fn check_file_sequence(files: &[JournalFile], problems: &mut Vec<Problem>) {
    if let Some(first) = files.first() {
        if first.seq > 1 {
            problems.push(Problem {
                kind: ProblemKind::MissingFile,
                file: Some(first.name.clone()),
                line: None,
                n: None,
                message: format!(
                    "the first file is number {}: files 1 to {} are missing (archived or deleted)",
                    first.seq,
                    first.seq - 1
                ),
            });
        }
    }
    for pair in files.windows(2) {
        let [a, b] = pair else { continue };
        if b.seq == a.seq {
            problems.push(Problem {
                kind: ProblemKind::OutOfOrder,
                file: Some(b.name.clone()),
                line: None,
                n: None,
                message: format!("has the same file number as {}", a.name),
            });
        } else if b.seq > a.seq + 1 {
            let missing = if b.seq == a.seq + 2 {
                format!("file number {:06} is", a.seq + 1)
            } else {
                format!("file numbers {:06} to {:06} are", a.seq + 1, b.seq - 1)
            };
            problems.push(Problem {
                kind: ProblemKind::MissingFile,
                file: Some(b.name.clone()),
                line: None,
                n: None,
                message: format!("{missing} missing between {} and {}", a.name, b.name),
            });
        }
        if b.date < a.date {
            problems.push(Problem {
                kind: ProblemKind::OutOfOrder,
                file: Some(b.name.clone()),
                line: None,
                n: None,
                message: format!("is dated before the file before it ({})", a.name),
            });
        }
    }
}

#[derive(Debug, Default)]
enum LinkState {
    /// Nothing read yet: the next record must be the genesis.
    #[default]
    Start,
    Known {
        n: u64,
        hash: String,
        at: String,
    },
    /// The line before could not be read: the next record starts a new stretch unchecked.
    Unknown,
}

#[derive(Debug, Default)]
struct Checker {
    state: LinkState,
    anchors_seen: BTreeMap<u64, ()>,
}

impl Checker {
    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        file: &str,
        line: u64,
        bytes: &[u8],
        complete: bool,
        is_last_file: bool,
        anchors: &BTreeMap<u64, &str>,
        report: &mut VerifyReport,
    ) {
        let at = |kind, n, message: String| Problem {
            kind,
            file: Some(file.to_owned()),
            line: Some(line),
            n,
            message,
        };
        let mut problem = |kind, n, message: String| report.problems.push(at(kind, n, message));
        if !complete {
            let message = if is_last_file {
                format!("the last line is incomplete ({} bytes, no newline): a write torn by a power loss, or the file was truncated; the daemon cuts it off and notes it when it next opens the journal", bytes.len())
            } else {
                format!("line is incomplete ({} bytes, no newline) and this is not the last file: the file was truncated", bytes.len())
            };
            problem(ProblemKind::TornLine, None, message);
            self.state = LinkState::Unknown;
            return;
        }
        report.records += 1;
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(value) => value,
            Err(err) => {
                problem(
                    ProblemKind::Unparsable,
                    None,
                    format!("not a JSON record ({err}): the line was damaged or inserted"),
                );
                self.state = LinkState::Unknown;
                return;
            }
        };
        let computed = record_hash(&value).ok();
        let record = match Record::deserialize(&value) {
            Ok(record) => record,
            Err(err) => {
                problem(
                    ProblemKind::Unparsable,
                    None,
                    format!("not a journal record ({err}): the line was damaged or inserted"),
                );
                self.state = LinkState::Unknown;
                return;
            }
        };
        let n = record.n;
        if computed.as_deref() != Some(record.hash.as_str()) {
            problem(
                ProblemKind::BrokenHash,
                Some(n),
                format!(
                    "record n={n}: its content does not match its hash {}: the record was edited after it was written",
                    short(&record.hash)
                ),
            );
        }
        match &self.state {
            LinkState::Start => {
                if n != 0 || record.prev != GENESIS_PREV {
                    problem(
                        ProblemKind::MissingGenesis,
                        Some(n),
                        format!("the journal starts at record n={n}, not at its genesis record n=0: the first records or files are missing"),
                    );
                }
            }
            LinkState::Known {
                n: prev_n,
                hash: prev_hash,
                at,
            } => {
                let expected = prev_n.saturating_add(1);
                if n > expected {
                    let missing = if n - 1 == expected {
                        format!("record n={expected} is missing")
                    } else {
                        format!("records n={expected} to n={} are missing", n - 1)
                    };
                    problem(
                        ProblemKind::Gap,
                        Some(n),
                        format!("record n={n} follows n={prev_n} ({at}): {missing}"),
                    );
                } else if n < expected {
                    problem(
                        ProblemKind::OutOfOrder,
                        Some(n),
                        format!("record n={n} follows n={prev_n} ({at}): records are out of order or repeated"),
                    );
                }
                if &record.prev != prev_hash {
                    problem(
                        ProblemKind::BrokenLink,
                        Some(n),
                        format!(
                            "record n={n} does not link to the record before it (n={prev_n}, {at}): its prev is {} but that record's hash is {}; a record between them was removed, inserted or reordered, or this record was forged",
                            short(&record.prev),
                            short(prev_hash)
                        ),
                    );
                }
            }
            LinkState::Unknown => {}
        }
        if let Some(anchored) = anchors.get(&n) {
            self.anchors_seen.insert(n, ());
            if *anchored != record.hash {
                problem(
                    ProblemKind::AnchorMismatch,
                    Some(n),
                    format!(
                        "record n={n} has hash {} but the anchor kept elsewhere says {}: the journal was rewritten from here",
                        short(&record.hash),
                        short(anchored)
                    ),
                );
            }
        }
        if record.kind == Kind::Note
            && record.data.get("note").and_then(Value::as_str) == Some(NOTE_TORN)
        {
            report.notices.push(format!(
                "{file}:{line}: record n={n}: on restart the journal cut off an incomplete last line of {} bytes in {} (a write torn by a power loss)",
                record.data.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                record.data.get("file").and_then(Value::as_str).unwrap_or("?"),
            ));
        }
        report.head = Some(ChainHead {
            n,
            hash: record.hash.clone(),
            file: file.to_owned(),
        });
        self.state = LinkState::Known {
            n,
            hash: record.hash,
            at: format!("{file}:{line}"),
        };
    }
}

// ---------------------------------------------------------------------------------------------
// Export

/// How wide the context of an exported round is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Widens the round's window on both sides (0 by default: exactly first to last record).
    pub margin: Duration,
    /// Include the round's video from the cameras' rolling recordings.
    pub video: Option<VideoExport>,
}

/// Where the recordings are, and where the round's files are copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoExport {
    /// `[video] recording_dir`: one directory per camera.
    pub recordings: PathBuf,
    /// Copy the files here (`<dir>/<camera>/<file>`); none: only list them.
    pub copy_to: Option<PathBuf>,
}

/// The recording files (per camera) that hold any video of `[from, to]`, copied when asked,
/// with their SHA-256 so the export can be checked against the copies.
fn round_video(
    video: &VideoExport,
    from: SystemTime,
    to: SystemTime,
) -> Result<Value, JournalError> {
    let mut clips = Vec::new();
    let mut cameras: Vec<PathBuf> = std::fs::read_dir(&video.recordings)
        .map_err(|source| JournalError::Read {
            path: video.recordings.clone(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cameras.sort();
    for cam_dir in cameras {
        let camera = cam_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in croupier_pipelines::recording::covering(&cam_dir, from, to) {
            let bytes = std::fs::read(&file.path).map_err(|source| JournalError::Read {
                path: file.path.clone(),
                source,
            })?;
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let copied = match &video.copy_to {
                Some(dest) => {
                    let dir = dest.join(&camera);
                    let target = dir.join(&name);
                    std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::write(&target, &bytes))
                        .map_err(|source| JournalError::Export {
                            path: target.clone(),
                            source,
                        })?;
                    Some(target.display().to_string())
                }
                None => None,
            };
            clips.push(json!({
                "camera": camera,
                "file": name,
                "source": file.path.display().to_string(),
                "started_utc": format_utc(file.started),
                "bytes": bytes.len(),
                "sha256": hex::encode(sha2::Sha256::digest(&bytes)),
                "copied_to": copied,
            }));
        }
    }
    Ok(Value::Array(clips))
}

/// What [`export_round`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub round_id: String,
    /// Records whose `round_id` is the round.
    pub round_records: u64,
    /// Inputs, commands and table-wide events and notes in the round's window.
    pub context_records: u64,
    pub first_n: u64,
    pub last_n: u64,
    /// The journal's head when exported.
    pub head: Option<ChainHead>,
    /// Whether the whole journal verified when exported.
    pub journal_intact: bool,
    pub problems: usize,
    /// Recording files listed (and copied), when video was asked for.
    pub video_files: Option<usize>,
}

/// Writes everything about one round for a dispute, as JSON lines (see `docs/journal.md`):
///
/// 1. a header: `{"export": "croupier-journal-export/1", "round_id", "exported_utc", "journal":
///    {"dir", "head", "records", "intact", "problems"}, "window", "selection", "counts",
///    "video"}`. `video` is null unless asked for ([`ExportOptions::video`]); then it lists the
///    recording files that cover the round's window, per camera, with their SHA-256.
/// 2. one line per record, in `n` order: `{"why": "round" | "context", "file", "line",
///    "record": {…the record exactly as stored…}}`.
///
/// "round" records carry the round's `round_id`. "context" records are inputs and commands
/// (any `round_id`), and events and notes without a `round_id`, inside the round's window: from
/// its first to its last record, by `mono_ns` for records of the same boot as a round record,
/// by `utc` otherwise.
pub fn export_round(
    dir: &Path,
    round_id: &str,
    out: &mut impl Write,
) -> Result<ExportSummary, JournalError> {
    export_round_with(dir, round_id, &ExportOptions::default(), out)
}

/// [`export_round`] with a wider window.
pub fn export_round_with(
    dir: &Path,
    round_id: &str,
    options: &ExportOptions,
    out: &mut impl Write,
) -> Result<ExportSummary, JournalError> {
    let listing = list_files(dir).map_err(|source| JournalError::Read {
        path: dir.to_owned(),
        source,
    })?;

    // Pass 1: the round's window.
    let mut window = Window::default();
    for file in &listing.files {
        for_each_record(file, |_, _, record| {
            if record.round_id.as_deref() == Some(round_id) {
                window.add(&record);
            }
        })?;
    }
    if window.count == 0 {
        return Err(JournalError::RoundNotFound {
            round_id: round_id.to_owned(),
            dir: dir.to_owned(),
        });
    }
    let margin = i128::try_from(options.margin.as_nanos()).unwrap_or(i128::MAX);
    let report = verify(dir);
    let video = match &options.video {
        None => Value::Null,
        Some(v) => {
            let at = |n: Option<i128>| {
                n.and_then(|n| u64::try_from(n).ok())
                    .map(|n| SystemTime::UNIX_EPOCH + Duration::from_nanos(n))
            };
            let from = at(window
                .utc_first
                .as_ref()
                .map(|(t, _)| t.saturating_sub(margin)));
            let to = at(window
                .utc_last
                .as_ref()
                .map(|(t, _)| t.saturating_add(margin)));
            match (from, to) {
                (Some(from), Some(to)) => round_video(v, from, to)?,
                _ => Value::Array(Vec::new()),
            }
        }
    };

    // Pass 2 counts first so the header can say how many lines follow.
    let mut counts = (0u64, 0u64);
    for file in &listing.files {
        for_each_record(file, |_, _, record| {
            match window.why(&record, round_id, margin) {
                Some(Why::Round) => counts.0 += 1,
                Some(Why::Context) => counts.1 += 1,
                None => {}
            }
        })?;
    }

    let export_err = |source| JournalError::Export {
        path: PathBuf::from("<output>"),
        source,
    };
    let header = json!({
        "export": EXPORT_FORMAT,
        "round_id": round_id,
        "exported_utc": format_utc(SystemTime::now()),
        "journal": {
            "dir": dir.display().to_string(),
            "format": FORMAT,
            "head": report.head,
            "records": report.records,
            "intact": report.is_ok(),
            // The first hundred are enough to show a dispute reader what is wrong; verify
            // lists them all.
            "problem_count": report.problems.len(),
            "problems": report.problems.iter().take(100).map(ToString::to_string).collect::<Vec<_>>(),
            "notices": report.notices,
        },
        "window": window.describe(margin),
        "selection": {
            "round": "every record whose round_id is the round",
            "context": "inputs and commands (any round_id), and events and notes without a round_id, \
                        from the round's first to its last record: by mono_ns for records of a boot \
                        that has round records, by utc otherwise, widened by margin_ns",
        },
        "counts": { "round": counts.0, "context": counts.1 },
        "video": video,
    });
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n").map_err(export_err)?;

    // Pass 3: the records, as stored.
    let mut written = Ok(());
    for file in &listing.files {
        for_each_record(file, |line, value, record| {
            if written.is_err() {
                return;
            }
            let why = match window.why(&record, round_id, margin) {
                Some(Why::Round) => "round",
                Some(Why::Context) => "context",
                None => return,
            };
            let item = json!({ "why": why, "file": file.name, "line": line, "record": value });
            written = serde_json::to_writer(&mut *out, &item)
                .map_err(JournalError::from)
                .and_then(|()| out.write_all(b"\n").map_err(export_err));
        })?;
    }
    written?;
    out.flush().map_err(export_err)?;

    Ok(ExportSummary {
        round_id: round_id.to_owned(),
        round_records: counts.0,
        context_records: counts.1,
        first_n: window.first_n,
        last_n: window.last_n,
        head: report.head.clone(),
        journal_intact: report.is_ok(),
        problems: report.problems.len(),
        video_files: video.as_array().map(Vec::len),
    })
}

enum Why {
    Round,
    Context,
}

#[derive(Debug, Default)]
struct Window {
    count: u64,
    first_n: u64,
    last_n: u64,
    /// (nanoseconds since the epoch, the record's own utc text)
    utc_first: Option<(i128, String)>,
    utc_last: Option<(i128, String)>,
    /// Per boot id: the first and last `mono_ns` of the round's records in that boot.
    mono: HashMap<String, (u64, u64)>,
}

impl Window {
    fn add(&mut self, record: &Record) {
        if self.count == 0 {
            self.first_n = record.n;
        }
        self.count += 1;
        self.first_n = self.first_n.min(record.n);
        self.last_n = self.last_n.max(record.n);
        if let Some(at) = utc_nanos(&record.utc) {
            if self.utc_first.as_ref().is_none_or(|(t, _)| at < *t) {
                self.utc_first = Some((at, record.utc.clone()));
            }
            if self.utc_last.as_ref().is_none_or(|(t, _)| at > *t) {
                self.utc_last = Some((at, record.utc.clone()));
            }
        }
        if let Some(boot) = &record.boot {
            let span = self
                .mono
                .entry(boot.clone())
                .or_insert((record.mono_ns, record.mono_ns));
            span.0 = span.0.min(record.mono_ns);
            span.1 = span.1.max(record.mono_ns);
        }
    }

    fn why(&self, record: &Record, round_id: &str, margin: i128) -> Option<Why> {
        if record.round_id.as_deref() == Some(round_id) {
            return Some(Why::Round);
        }
        let wanted = match record.kind {
            Kind::Input | Kind::Command => true,
            Kind::Event | Kind::Note => record.round_id.is_none(),
        };
        if !wanted {
            return None;
        }
        let inside = match record.boot.as_ref().and_then(|b| self.mono.get(b)) {
            // Same boot: the monotonic clock orders it, whatever the wall clock did.
            Some(&(lo, hi)) => {
                let at = i128::from(record.mono_ns);
                at >= i128::from(lo) - margin && at <= i128::from(hi) + margin
            }
            None => match (&self.utc_first, &self.utc_last, utc_nanos(&record.utc)) {
                (Some((lo, _)), Some((hi, _)), Some(at)) => {
                    at >= lo.saturating_sub(margin) && at <= hi.saturating_add(margin)
                }
                _ => false,
            },
        };
        inside.then_some(Why::Context)
    }

    fn describe(&self, margin: i128) -> Value {
        let mut boots: Vec<_> = self
            .mono
            .iter()
            .map(
                |(boot, (lo, hi))| json!({ "boot": boot, "mono_ns_first": lo, "mono_ns_last": hi }),
            )
            .collect();
        boots.sort_by_key(|b| b.get("mono_ns_first").and_then(Value::as_u64));
        json!({
            "first_n": self.first_n,
            "last_n": self.last_n,
            "utc_first": self.utc_first.as_ref().map(|(_, s)| s),
            "utc_last": self.utc_last.as_ref().map(|(_, s)| s),
            "boots": boots,
            "margin_ns": margin,
        })
    }
}

/// Calls `f(line, value, record)` for every complete line that parses as a record; damaged
/// lines are skipped here ([`verify`] reports them).
fn for_each_record(
    file: &JournalFile,
    mut f: impl FnMut(u64, &Value, Record),
) -> Result<(), JournalError> {
    read_lines(&file.path, |line, bytes, complete| {
        if !complete {
            return;
        }
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            if let Ok(record) = Record::deserialize(&value) {
                f(line, &value, record);
            }
        }
    })
    .map_err(|source| JournalError::Read {
        path: file.path.clone(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// CLI entry points

/// `croupier journal verify <dir>`: the report to print, and whether to exit 0 (intact) or 1.
pub fn cli_verify(dir: &Path) -> (String, bool) {
    let report = verify(dir);
    (report.to_string(), report.is_ok())
}

/// `croupier journal verify <dir> --anchor <n>:<hash> …`.
pub fn cli_verify_anchored(dir: &Path, anchors: &[Anchor]) -> (String, bool) {
    let report = verify_anchored(dir, anchors);
    (report.to_string(), report.is_ok())
}

/// `croupier journal export --round <id> [--dir D] [--out F]`: writes the export to `out_path`
/// (which must not exist yet: an export is evidence and is never overwritten) or, without one,
/// to stdout. Returns a summary for stderr.
pub fn cli_export(
    dir: &Path,
    round_id: &str,
    out_path: Option<&Path>,
    video: Option<VideoExport>,
) -> Result<String, JournalError> {
    let options = ExportOptions {
        margin: Duration::ZERO,
        video,
    };
    let summary = match out_path {
        Some(path) => {
            let export_err = |source| JournalError::Export {
                path: path.to_owned(),
                source,
            };
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(export_err)?;
            let mut out = std::io::BufWriter::new(file);
            let summary = export_round_with(dir, round_id, &options, &mut out)?;
            let file = out.into_inner().map_err(|e| export_err(e.into_error()))?;
            file.sync_all().map_err(export_err)?;
            summary
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            export_round_with(dir, round_id, &options, &mut out)?
        }
    };
    let to = out_path.map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let head = summary.head.as_ref().map_or_else(
        || "none".to_owned(),
        |h| format!("n={} hash={}", h.n, h.hash),
    );
    let state = if summary.journal_intact {
        "the journal verified intact".to_owned()
    } else {
        format!(
            "WARNING: the journal has {} problem(s); run `croupier journal verify {}`",
            summary.problems,
            dir.display()
        )
    };
    let video = match summary.video_files {
        None => String::new(),
        Some(n) => format!("; {n} video file(s)"),
    };
    Ok(format!(
        "exported round {}: {} round records and {} context records (n {} to {}){video} to {to}; journal head {head}; {state}",
        summary.round_id,
        summary.round_records,
        summary.context_records,
        summary.first_n,
        summary.last_n
    ))
}

// ---------------------------------------------------------------------------------------------
// Files

#[derive(Debug, Clone)]
struct JournalFile {
    path: PathBuf,
    name: String,
    date: u32,
    seq: u64,
}

#[derive(Debug, Default)]
struct Listing {
    /// In file-number order.
    files: Vec<JournalFile>,
    /// `journal-*.jsonl` names that do not follow the pattern.
    bad_names: Vec<String>,
}

fn file_name(date: u32, seq: u64) -> String {
    format!("journal-{date:08}-{seq:06}.jsonl")
}

fn parse_file_name(name: &str) -> Option<(u32, u64)> {
    let stem = name.strip_prefix("journal-")?.strip_suffix(".jsonl")?;
    let (date, seq) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if date.len() != 8 || !digits(date) || seq.len() < 6 || !digits(seq) {
        return None;
    }
    Some((date.parse().ok()?, seq.parse().ok()?))
}

fn list_files(dir: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("journal-") && name.ends_with(".jsonl")) {
            continue;
        }
        match parse_file_name(&name) {
            Some((date, seq)) => listing.files.push(JournalFile {
                path: entry.path(),
                name,
                date,
                seq,
            }),
            None => listing.bad_names.push(name),
        }
    }
    listing.files.sort_by_key(|f| (f.seq, f.date));
    listing.bad_names.sort();
    Ok(listing)
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Calls `f(line_number, line_without_newline, had_newline)` for each line.
fn read_lines(path: &Path, mut f: impl FnMut(u64, &[u8], bool)) -> std::io::Result<()> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line += 1;
        match buf.strip_suffix(b"\n") {
            Some(body) => f(line, body, true),
            None => f(line, &buf, false),
        }
    }
}

/// The end of a file: where its last complete line ends, that line, and what follows it.
#[derive(Debug)]
struct Tail {
    complete_end: u64,
    last_line: Option<Vec<u8>>,
    torn: Vec<u8>,
}

/// Reads backwards from the end only as far as needed, so opening a 64 MiB file stays cheap.
fn scan_tail(path: &Path) -> std::io::Result<Tail> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        (&mut file).take(len - start).read_to_end(&mut buf)?;
        let last_nl = buf.iter().rposition(|&b| b == b'\n');
        match last_nl {
            None if start > 0 => {}
            None => {
                return Ok(Tail {
                    complete_end: 0,
                    last_line: None,
                    torn: buf,
                })
            }
            Some(p) => {
                let torn = buf.get(p + 1..).unwrap_or_default().to_vec();
                let before = buf.get(..p).unwrap_or_default();
                match before.iter().rposition(|&b| b == b'\n') {
                    Some(q) => {
                        return Ok(Tail {
                            complete_end: start + p as u64 + 1,
                            last_line: Some(before.get(q + 1..).unwrap_or_default().to_vec()),
                            torn,
                        })
                    }
                    None if start == 0 => {
                        return Ok(Tail {
                            complete_end: p as u64 + 1,
                            last_line: Some(before.to_vec()),
                            torn,
                        })
                    }
                    None => {}
                }
            }
        }
        if start == 0 {
            // Unreachable in practice (start == 0 returns above); stop rather than loop.
            return Ok(Tail {
                complete_end: 0,
                last_line: None,
                torn: Vec::new(),
            });
        }
        window = window.saturating_mul(4);
    }
}

/// Cuts an incomplete last line off the last file; returns the note describing the cut.
fn cut_torn_tail(path: &Path) -> Result<Option<Value>, JournalError> {
    let tail = scan_tail(path).map_err(|source| JournalError::Read {
        path: path.to_owned(),
        source,
    })?;
    if tail.torn.is_empty() {
        return Ok(None);
    }
    let write_err = |source| JournalError::Write {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(write_err)?;
    file.set_len(tail.complete_end).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    tracing::warn!(
        path = %path.display(),
        bytes = tail.torn.len(),
        "cut off a journal line torn by a crash (never acknowledged); noted in the journal"
    );
    let text: String = String::from_utf8_lossy(&tail.torn)
        .chars()
        .take(4096)
        .collect();
    Ok(Some(json!({
        "note": NOTE_TORN,
        "file": name_of(path),
        "offset": tail.complete_end,
        "bytes": tail.torn.len(),
        "sha256": to_hex(&Sha256::digest(&tail.torn)),
        "text": text,
    })))
}

/// The last record of a file, checked against its own hash (the chain continues from it, so it
/// must be what it claims). `None` for an empty file.
fn last_record(path: &Path) -> Result<Option<Record>, JournalError> {
    let tail = scan_tail(path).map_err(|source| JournalError::Read {
        path: path.to_owned(),
        source,
    })?;
    let damaged = |reason: String| JournalError::Damaged {
        path: path.to_owned(),
        reason,
    };
    if !tail.torn.is_empty() {
        return Err(damaged(format!(
            "it ends in an incomplete line ({} bytes) but is not the last file",
            tail.torn.len()
        )));
    }
    let Some(line) = tail.last_line else {
        return Ok(None);
    };
    let value: Value = serde_json::from_slice(&line)
        .map_err(|e| damaged(format!("its last line is not JSON: {e}")))?;
    let record = Record::deserialize(&value)
        .map_err(|e| damaged(format!("its last line is not a journal record: {e}")))?;
    if record_hash(&value)? != record.hash {
        return Err(damaged(format!(
            "its last record (n={}) does not match its hash",
            record.n
        )));
    }
    Ok(Some(record))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| JournalError::Write {
            path: dir.to_owned(),
            source,
        })
}

fn kernel_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Time and hex

/// Nanoseconds since the epoch, 0 before it (a box whose clock is that wrong says so elsewhere).
fn unix_nanos(at: SystemTime) -> i128 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
        .unwrap_or(0)
}

fn datetime(at: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_nanos(at))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-21T14:23:12.000123Z`, the one way the project writes instants (as
/// `crate::clock::format_utc`), without its panic on years past 9999.
fn format_utc(at: SystemTime) -> String {
    let t = datetime(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// YYYYMMDD of the UTC date.
fn utc_date(at: SystemTime) -> u32 {
    let t = datetime(at);
    u32::try_from(t.year()).unwrap_or(0) * 10_000
        + u32::from(u8::from(t.month())) * 100
        + u32::from(t.day())
}

fn utc_nanos(text: &str) -> Option<i128> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

fn parse_utc(text: &str) -> Option<SystemTime> {
    let nanos = utc_nanos(text)?;
    let nanos = u64::try_from(nanos).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_does_not_depend_on_key_order() {
        let a: Value = serde_json::from_str(
            r#"{"n":1,"utc":"2026-11-21T14:23:12.000123Z","mono_ns":5,"boot":"b","kind":"input","device":"wheel","round_id":null,"data":{"z":1,"a":{"y":[1,{"q":2,"p":3}],"x":"é\n"}},"prev":"00","hash":"ignored"}"#,
        )
        .expect("json");
        let b: Value = serde_json::from_str(
            r#"{"hash":"other","prev":"00","data":{"a":{"x":"é\n","y":[1,{"p":3,"q":2}]},"z":1},"round_id":null,"device":"wheel","kind":"input","boot":"b","mono_ns":5,"utc":"2026-11-21T14:23:12.000123Z","n":1}"#,
        )
        .expect("json");
        assert_eq!(
            record_hash(&a).expect("hash"),
            record_hash(&b).expect("hash")
        );
        // ...but the hash does see content, including array order.
        let c: Value = serde_json::from_str(
            r#"{"hash":"other","prev":"00","data":{"a":{"x":"é\n","y":[{"p":3,"q":2},1]},"z":1},"round_id":null,"device":"wheel","kind":"input","boot":"b","mono_ns":5,"utc":"2026-11-21T14:23:12.000123Z","n":1}"#,
        )
        .expect("json");
        assert_ne!(
            record_hash(&a).expect("hash"),
            record_hash(&c).expect("hash")
        );
    }

    #[test]
    fn canonical_json_is_sorted_and_compact() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, 2.5, "x"], "a": {"d": null, "c": true}, "hash": "h" }"#,
        )
        .expect("json");
        let mut out = Vec::new();
        canonical_into(&v, Some("hash"), &mut out).expect("canonical");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"{"a":{"c":true,"d":null},"b":[1,2.5,"x"]}"#
        );
        // The known SHA-256 of "abc", so the hex and digest plumbing is the standard one.
        assert_eq!(
            to_hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn file_names_sort_and_parse() {
        assert_eq!(file_name(20261121, 1), "journal-20261121-000001.jsonl");
        assert_eq!(
            parse_file_name("journal-20261121-000042.jsonl"),
            Some((20261121, 42))
        );
        assert_eq!(parse_file_name("journal-2026112-000042.jsonl"), None);
        assert_eq!(parse_file_name("journal-20261121-42.jsonl"), None);
        assert_eq!(parse_file_name("journal-20261121-00004x.jsonl"), None);
    }

    #[test]
    fn utc_is_formatted_like_the_rest_of_the_project() {
        let at = UNIX_EPOCH + Duration::from_micros(1_795_270_992_000_123);
        assert_eq!(format_utc(at), crate::clock::format_utc(at));
        assert_eq!(utc_date(at), 20261121);
        assert_eq!(parse_utc(&format_utc(at)), Some(at));
    }

    #[test]
    fn anchors_parse() {
        let a: Anchor = format!("12:{}", "AB".repeat(32)).parse().expect("anchor");
        assert_eq!(a.n, 12);
        assert_eq!(a.hash, "ab".repeat(32));
        assert!("12".parse::<Anchor>().is_err());
        assert!("x:00".parse::<Anchor>().is_err());
    }
}
