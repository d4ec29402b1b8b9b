//! Signatures of events and commands: canonical bytes, the key ring, and the guard in front of
//! the orchestrator's commands. `docs/signing.md` is the full contract; this is the summary.
//!
//! # For an orchestrator developer
//!
//! - Every event carries `"sig": {"alg": "hmac-sha256" | "ed25519", "key_id": "…", "value":
//!   "<base64>"}`. The signature covers [`canonical_json`] of the message **without** its `sig`
//!   member (RFC 8785, JCS). [`verify`] checks one message; [`verify_stream`] checks a whole
//!   JSON-lines capture (signatures, `seq` gaps, duplicate `event_id`s) and backs
//!   `croupier verify --keys DIR [FILE|-]`.
//! - Commands sent to the table's `…/cmd` topic are JSON objects:
//!   `{"command_id", "type", "table", "issued_at", "nonce", "body", "sig"}` (see
//!   [`CommandGuard::check`] and `docs/signing.md`). The table refuses them with a reason
//!   ([`RefusalReason`]) when the signature, the table, the time (±300 s), the nonce or the body
//!   is wrong, and answers a repeated `command_id` with the reply it gave the first time.
//! - A manual result (`result.manual`) is one approval by one person, signed with that person's
//!   own key: the key id must equal `body.person`. The four-eyes rule needs two such commands
//!   from two distinct people.
//!
//! # For a studio technician
//!
//! Keys live in one directory (`/etc/croupier/keys` by convention), one file per key, named
//! after the key id: `k1.hmac` (a shared secret, hex or base64, at least 32 bytes),
//! `k2.ed25519` (a private key from `openssl genpkey -algorithm ed25519`), `k2.ed25519.pub`
//! (a public key, enough to verify). Files starting with `.` are ignored. To rotate a key, add
//! the new file; the daemon picks it up without a restart ([`KeyRing::reload_if_changed`]),
//! and keeps the old one as long as its file stays, so older signatures still verify. A broken
//! new file never replaces a working ring: the daemon keeps the old keys and reports the file.
//!
//! Nothing here logs or prints key material; [`KeyRing`]'s `Debug` shows key ids only.
//!
//! Everything below is sans-IO except [`KeyRing::load`] / [`KeyRing::reload_if_changed`] (which
//! read the key directory) and [`verify_stream`] (which reads what it is given).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::pkcs8::{
    spki::der::pem::LineEnding, DecodePrivateKey, DecodePublicKey, EncodePrivateKey,
    EncodePublicKey,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{json, Map, Number, Value};
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// The smallest HMAC secret accepted, in bytes (the output size of SHA-256: a shorter secret
/// weakens the MAC below its design strength).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// Key files larger than this are refused unread: a key is a few hundred bytes, so a bigger
/// file is a mistake (a log, a certificate bundle) and reading it would only waste memory.
pub const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// The member that holds a message's signature; it is left out of the signed bytes.
pub const SIG_FIELD: &str = "sig";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong with keys or signing. The messages name the file and what to do about it;
/// none of them contains key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(
        "cannot read the key directory {path}: {source}; check that it exists and that the \
         croupier user may list and read it"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} bad key file(s) in {dir}:{}", problems.len(), list_problems(problems))]
    BadKeyFiles {
        dir: PathBuf,
        problems: Vec<KeyFileProblem>,
    },
    #[error(
        "no keys in {dir}; add <key_id>.hmac (`openssl rand -hex 32 > {dir}/k1.hmac`) or \
         <key_id>.ed25519 (`openssl genpkey -algorithm ed25519 -out {dir}/k1.ed25519`)"
    )]
    NoKeys { dir: PathBuf },
    #[error("no key with id {key_id:?} in the key ring (known: {known}); check the configured key id or add {key_id}.hmac / {key_id}.ed25519 to the key directory")]
    UnknownKey { key_id: String, known: String },
    #[error("key {key_id:?} is only a public key ({key_id}.ed25519.pub); signing needs the private key file {key_id}.ed25519")]
    VerifyOnlyKey { key_id: String },
    #[error("only a JSON object can be signed")]
    NotAnObject,
    #[error("invalid key: {0}")]
    InvalidKey(String),
}

fn list_problems(problems: &[KeyFileProblem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// One bad file in the key directory, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileProblem {
    pub path: PathBuf,
    pub problem: String,
}

impl fmt::Display for KeyFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// Why a signature does not verify. [`VerifyError::reason`] gives a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the message is not a JSON object")]
    NotAnObject,
    #[error("the message has no `sig` member (unsigned)")]
    NoSignature,
    #[error("the `sig` member is malformed: {0}")]
    MalformedSignature(String),
    #[error("signed with key {key_id:?}, which this key ring does not hold; add its key file (or the `.ed25519.pub` of an Ed25519 key) to the key directory")]
    UnknownKey { key_id: String },
    #[error("sig.alg is {claimed:?} but key {key_id:?} is {actual}")]
    WrongAlgorithm {
        key_id: String,
        claimed: String,
        actual: &'static str,
    },
    #[error("sig.value is not standard base64 (RFC 4648 with padding): {0}")]
    BadBase64(String),
    #[error("the signature does not match the message (key {key_id:?}): the message was changed after signing, or signed with another key of the same id")]
    Mismatch { key_id: String },
}

impl VerifyError {
    /// A stable, machine-readable code: `not_an_object`, `no_signature`, `malformed_signature`,
    /// `unknown_key`, `wrong_algorithm`, `bad_base64`, `mismatch`.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::NotAnObject => "not_an_object",
            VerifyError::NoSignature => "no_signature",
            VerifyError::MalformedSignature(_) => "malformed_signature",
            VerifyError::UnknownKey { .. } => "unknown_key",
            VerifyError::WrongAlgorithm { .. } => "wrong_algorithm",
            VerifyError::BadBase64(_) => "bad_base64",
            VerifyError::Mismatch { .. } => "mismatch",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical bytes (RFC 8785, JCS)
// ---------------------------------------------------------------------------------------------

/// The canonical bytes of a JSON value, after RFC 8785 (JCS): object members sorted by the
/// UTF-16 code units of their names, no whitespace, strings with only the escapes JSON requires
/// (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`; everything
/// else, non-ASCII included, as raw UTF-8).
///
/// Numbers: integers are written as their exact digits (JCS would route integers above 2^53
/// through an IEEE double; our integers stay below that in practice, and exact digits are what
/// Python and most JSON libraries write). Other numbers follow ECMAScript's `Number.toString`
/// (shortest round-trip digits; exponent form below 1e-6 and from 1e21; `-0` as `0`), which is
/// what JCS specifies. Croupier's own messages carry no floats.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(&mut out, value, None);
    out
}

/// The bytes a signature covers: [`canonical_json`] of `msg` without its top-level `sig`
/// member. `msg` is not copied.
pub fn signing_input(msg: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(&mut out, msg, Some(SIG_FIELD));
    out
}

fn write_canonical(out: &mut Vec<u8>, value: &Value, skip_member: Option<&str>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item, None);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's map orders by UTF-8 bytes; JCS orders by UTF-16 code units. They
            // differ for names mixing characters above U+FFFF with U+E000..U+FFFF, so sort here.
            let mut members: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != skip_member)
                .collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                write_canonical(out, v, None);
            }
            out.push(b'}');
        }
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        // Multi-byte UTF-8 sequences never contain bytes below 0x80, so a byte-wise scan
        // copies non-ASCII characters through untouched.
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(ecmascript_number(f).as_bytes());
    } else {
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// ECMAScript `Number::toString(x)` (ECMA-262 §6.1.6.1.20), which JCS uses for numbers.
fn ecmascript_number(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        // -0 prints as 0; serde_json holds no NaN or infinity.
        return String::from("0");
    }
    // Rust's `{:e}` without a precision prints the shortest digits that round-trip, as
    // ECMAScript requires: "d.ddde-x". Split it into the digits and the decimal exponent.
    let sci = format!("{:e}", f.abs());
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return f.to_string();
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return f.to_string();
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exp + 1; // value = 0.digits × 10^n
    let mut s = String::with_capacity(32);
    if f < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n(
            '0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0).min(digits.len()));
        s.push_str(int);
        s.push('.');
        s.push_str(frac);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        s.push_str(&digits);
    } else {
        let e = n - 1;
        let (first, rest) = digits.split_at(1.min(digits.len()));
        s.push_str(first);
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('e');
        s.push(if e < 0 { '-' } else { '+' });
        s.push_str(&e.unsigned_abs().to_string());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Strict parsing of untrusted JSON
// ---------------------------------------------------------------------------------------------

/// Parses untrusted JSON: at most `max_depth` nested arrays/objects, no duplicate member names
/// (two parsers reading different values of one name is how signed messages get forged), no
/// trailing bytes. Returns a short description of the first problem.
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed {
        depth: 0,
        max_depth,
    }
    .deserialize(&mut de)
    .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct StrictSeed {
    depth: usize,
    max_depth: usize,
}

impl StrictSeed {
    fn enter<E: de::Error>(self) -> Result<StrictSeed, E> {
        if self.depth >= self.max_depth {
            Err(E::custom(format_args!(
                "nested deeper than {} levels",
                self.max_depth
            )))
        } else {
            Ok(StrictSeed {
                depth: self.depth + 1,
                ..self
            })
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member {:?}",
                    clip(&name, 64)
                )));
            }
            let value = map.next_value_seed(inner)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// At most `max` characters of `s` (for echoing untrusted text into logs and replies).
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", s.get(..at).unwrap_or_default()),
        None => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// A signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HmacSha256,
    Ed25519,
}

impl Algorithm {
    /// The name in `sig.alg`: `hmac-sha256` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum Key {
    /// The keyed MAC state, not the raw secret: the secret itself is wiped once this is built.
    Hmac(Box<HmacSha256>),
    Ed25519 {
        /// `None` when only the `.ed25519.pub` file is present (verify only).
        signing: Option<Box<SigningKey>>,
        verifying: VerifyingKey,
    },
}

impl Key {
    fn algorithm(&self) -> Algorithm {
        match self {
            Key::Hmac(_) => Algorithm::HmacSha256,
            Key::Ed25519 { .. } => Algorithm::Ed25519,
        }
    }
}

/// Name, size, modification time and inode of one file of the key directory: enough to notice
/// a rotation (new file, rewritten file, atomically replaced file) without reading any key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    name: OsString,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    is_dir: bool,
}

/// The keys of one directory (or built in memory for tests). Cheap to query; reload with
/// [`KeyRing::reload_if_changed`] from a timer (every few seconds is fine: it only stats files
/// unless something changed).
///
/// `Clone` copies the keys (for handing a snapshot to another task, e.g. behind an `Arc`).
#[derive(Clone)]
pub struct KeyRing {
    dir: Option<PathBuf>,
    keys: BTreeMap<String, Key>,
    stamps: Vec<FileStamp>,
    /// The directory state that last failed to load and why, so a broken directory is read
    /// and reported once, not on every poll.
    failed: Option<Failed>,
}

#[derive(Clone)]
struct Failed {
    /// `None` when the directory itself could not be listed.
    stamps: Option<Vec<FileStamp>>,
    why: String,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids and algorithms only: never key material.
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(id, key)| match key {
                Key::Ed25519 { signing: None, .. } => format!("{id} (ed25519, verify only)"),
                other => format!("{id} ({})", other.algorithm()),
            })
            .collect();
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .field("keys", &keys)
            .field("stale_reason", &self.stale_reason())
            .finish()
    }
}

/// Whether `id` is a valid key id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn is_valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Hmac,
    Ed25519Private,
    Ed25519Public,
}

impl KeyRing {
    /// An empty ring with no directory, for tests and tools; add keys with
    /// [`KeyRing::insert_hmac`] / [`KeyRing::insert_ed25519_pem`].
    pub fn in_memory() -> Self {
        KeyRing {
            dir: None,
            keys: BTreeMap::new(),
            stamps: Vec::new(),
            failed: None,
        }
    }

    /// Loads every key file of `dir`. Every bad file is reported at once (one
    /// [`SigningError::BadKeyFiles`]); an empty directory is [`SigningError::NoKeys`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, SigningError> {
        let dir = dir.as_ref();
        let stamps = scan_dir(dir)?;
        let keys = read_keys(dir, &stamps)?;
        Ok(KeyRing {
            dir: Some(dir.to_path_buf()),
            keys,
            stamps,
            failed: None,
        })
    }

    /// Reloads the directory if any file in it was added, removed, rewritten or replaced.
    /// `Ok(true)`: the ring now holds the new keys. `Ok(false)`: nothing changed (or the
    /// change is the same broken state already reported). `Err`: the new state is broken; the
    /// ring keeps its old keys, and [`KeyRing::stale_reason`] says why until the directory is
    /// fixed. A ring built [`KeyRing::in_memory`] never changes.
    pub fn reload_if_changed(&mut self) -> Result<bool, SigningError> {
        let Some(dir) = self.dir.clone() else {
            return Ok(false);
        };
        let stamps = match scan_dir(&dir) {
            Ok(stamps) => stamps,
            Err(e) => {
                let why = e.to_string();
                if matches!(&self.failed, Some(f) if f.stamps.is_none() && f.why == why) {
                    return Ok(false);
                }
                self.failed = Some(Failed { stamps: None, why });
                return Err(e);
            }
        };
        if stamps == self.stamps {
            self.failed = None;
            return Ok(false);
        }
        if matches!(&self.failed, Some(f) if f.stamps.as_ref() == Some(&stamps)) {
            return Ok(false);
        }
        match read_keys(&dir, &stamps) {
            Ok(keys) => {
                self.keys = keys;
                self.stamps = stamps;
                self.failed = None;
                Ok(true)
            }
            Err(e) => {
                self.failed = Some(Failed {
                    stamps: Some(stamps),
                    why: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// Why the ring is older than its directory (the last reload failed), for the status page;
    /// `None` when the ring matches the directory.
    pub fn stale_reason(&self) -> Option<&str> {
        self.failed.as_ref().map(|f| f.why.as_str())
    }

    /// The directory the ring was loaded from.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The key ids, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.keys().map(String::as_str).collect()
    }

    /// The algorithm of a key, if the ring holds it.
    pub fn algorithm(&self, key_id: &str) -> Option<Algorithm> {
        self.keys.get(key_id).map(Key::algorithm)
    }

    /// Whether the ring can sign with this key (HMAC, or Ed25519 with its private key).
    pub fn can_sign(&self, key_id: &str) -> bool {
        matches!(
            self.keys.get(key_id),
            Some(
                Key::Hmac(_)
                    | Key::Ed25519 {
                        signing: Some(_),
                        ..
                    }
            )
        )
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds (or replaces) an HMAC-SHA256 key from its raw secret (at least 32 bytes).
    pub fn insert_hmac(&mut self, key_id: &str, secret: &[u8]) -> Result<(), SigningError> {
        check_key_id(key_id)?;
        let mac = hmac_from_secret(secret).map_err(SigningError::InvalidKey)?;
        self.keys.insert(key_id.to_owned(), Key::Hmac(mac));
        Ok(())
    }

    /// Adds (or replaces) an Ed25519 key from PEM text: a PKCS#8 private key (`BEGIN PRIVATE
    /// KEY`, signs and verifies) or an SPKI public key (`BEGIN PUBLIC KEY`, verifies only).
    pub fn insert_ed25519_pem(&mut self, key_id: &str, pem: &str) -> Result<(), SigningError> {
        check_key_id(key_id)?;
        let key = if pem.contains("PUBLIC KEY") {
            Key::Ed25519 {
                signing: None,
                verifying: parse_ed25519_public(pem).map_err(SigningError::InvalidKey)?,
            }
        } else {
            let signing = parse_ed25519_private(pem).map_err(SigningError::InvalidKey)?;
            Key::Ed25519 {
                verifying: signing.verifying_key(),
                signing: Some(signing),
            }
        };
        self.keys.insert(key_id.to_owned(), key);
        Ok(())
    }
}

fn check_key_id(key_id: &str) -> Result<(), SigningError> {
    if is_valid_key_id(key_id) {
        Ok(())
    } else {
        Err(SigningError::InvalidKey(format!(
            "key id {:?} is not 1 to 64 of A-Z a-z 0-9 . _ -",
            clip(key_id, 80)
        )))
    }
}

fn scan_dir(dir: &Path) -> Result<Vec<FileStamp>, SigningError> {
    let io_err = |source| SigningError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut stamps = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        // Dot files are editors' and deploy tools' temporaries (and Kubernetes' `..data`):
        // never keys, and often half-written.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        // Follow symlinks (secret mounts are symlink farms), so a retargeted link counts as a
        // change. A dangling link is reported when the keys are read.
        let meta = std::fs::metadata(entry.path()).ok();
        stamps.push(FileStamp {
            name,
            len: meta.as_ref().map_or(0, std::fs::Metadata::len),
            modified: meta.as_ref().and_then(|m| m.modified().ok()),
            inode: meta.as_ref().map_or(0, inode_of),
            is_dir: meta.as_ref().is_some_and(std::fs::Metadata::is_dir),
        });
    }
    stamps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stamps)
}

#[cfg(unix)]
fn inode_of(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode_of(_meta: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "secret key file is readable by other users; chmod 0640 (owner root, group croupier) or 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _meta: &std::fs::Metadata) {}

const NAMING_HINT: &str = "key files are named <key_id>.hmac, <key_id>.ed25519 or \
                           <key_id>.ed25519.pub (files starting with '.' are ignored); \
                           rename or remove it";

fn classify(name: &str) -> Option<(&str, FileKind)> {
    if let Some(stem) = name.strip_suffix(".ed25519.pub") {
        Some((stem, FileKind::Ed25519Public))
    } else if let Some(stem) = name.strip_suffix(".ed25519") {
        Some((stem, FileKind::Ed25519Private))
    } else {
        name.strip_suffix(".hmac")
            .map(|stem| (stem, FileKind::Hmac))
    }
}

#[derive(Default)]
struct Parts {
    hmac: Option<(PathBuf, Box<HmacSha256>)>,
    private: Option<(PathBuf, Box<SigningKey>)>,
    public: Option<(PathBuf, VerifyingKey)>,
}

fn read_keys(dir: &Path, stamps: &[FileStamp]) -> Result<BTreeMap<String, Key>, SigningError> {
    let mut problems = Vec::new();
    let mut parts: BTreeMap<String, Parts> = BTreeMap::new();
    for stamp in stamps.iter().filter(|s| !s.is_dir) {
        let path = dir.join(&stamp.name);
        let mut bad = |problem: String| {
            problems.push(KeyFileProblem {
                path: path.clone(),
                problem,
            })
        };
        let Some(name) = stamp.name.to_str() else {
            bad(format!("the file name is not UTF-8; {NAMING_HINT}"));
            continue;
        };
        let Some((key_id, kind)) = classify(name) else {
            bad(format!("unexpected file; {NAMING_HINT}"));
            continue;
        };
        if !is_valid_key_id(key_id) {
            bad(format!(
                "key id {key_id:?} (the file name before the extension) must be 1 to 64 of \
                 A-Z a-z 0-9 . _ -; rename the file"
            ));
            continue;
        }
        let text = match read_key_file(&path, kind) {
            Ok(text) => text,
            Err(problem) => {
                bad(problem);
                continue;
            }
        };
        let entry = parts.entry(key_id.to_owned()).or_default();
        match kind {
            FileKind::Hmac => match parse_hmac_file(&text) {
                Ok(mac) => entry.hmac = Some((path.clone(), mac)),
                Err(problem) => bad(problem),
            },
            FileKind::Ed25519Private => match parse_ed25519_private(&text) {
                Ok(key) => entry.private = Some((path.clone(), key)),
                Err(problem) => bad(problem),
            },
            FileKind::Ed25519Public => match parse_ed25519_public(&text) {
                Ok(key) => entry.public = Some((path.clone(), key)),
                Err(problem) => bad(problem),
            },
        }
    }

    let mut keys = BTreeMap::new();
    for (key_id, part) in parts {
        match part {
            Parts {
                hmac: Some((path, _)),
                private: Some(_),
                ..
            }
            | Parts {
                hmac: Some((path, _)),
                public: Some(_),
                ..
            } => problems.push(KeyFileProblem {
                path,
                problem: format!(
                    "key id {key_id:?} has both an HMAC and an Ed25519 key file; a key id names \
                     one key, so rename one of them"
                ),
            }),
            Parts {
                hmac: Some((_, mac)),
                ..
            } => {
                keys.insert(key_id, Key::Hmac(mac));
            }
            Parts {
                private: Some((path, signing)),
                public,
                ..
            } => {
                let verifying = signing.verifying_key();
                if public.as_ref().is_some_and(|(_, p)| *p != verifying) {
                    problems.push(KeyFileProblem {
                        path,
                        problem: format!(
                            "{key_id}.ed25519.pub is not the public key of {key_id}.ed25519; \
                             regenerate it with `openssl pkey -in {key_id}.ed25519 -pubout -out \
                             {key_id}.ed25519.pub`, or remove it"
                        ),
                    });
                } else {
                    keys.insert(
                        key_id,
                        Key::Ed25519 {
                            signing: Some(signing),
                            verifying,
                        },
                    );
                }
            }
            Parts {
                public: Some((_, verifying)),
                ..
            } => {
                keys.insert(
                    key_id,
                    Key::Ed25519 {
                        signing: None,
                        verifying,
                    },
                );
            }
            // Only files that failed to parse: already reported.
            Parts { .. } => {}
        }
    }

    if !problems.is_empty() {
        return Err(SigningError::BadKeyFiles {
            dir: dir.to_path_buf(),
            problems,
        });
    }
    if keys.is_empty() {
        return Err(SigningError::NoKeys {
            dir: dir.to_path_buf(),
        });
    }
    Ok(keys)
}

fn read_key_file(path: &Path, kind: FileKind) -> Result<Zeroizing<String>, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("cannot read it: {e}; check that it exists (a dangling link?) and that the croupier user may read it")
    })?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "{} bytes is too large for a key file (at most {MAX_KEY_FILE_BYTES}); is this the right file?",
            meta.len()
        ));
    }
    if kind != FileKind::Ed25519Public {
        warn_if_readable_by_others(path, &meta);
    }
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| {
            format!("cannot read it: {e}; check that the croupier user may read it")
        })?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(String::from(
            "not text; a key file holds hex or base64 (.hmac) or PEM (.ed25519, .ed25519.pub)",
        )),
    }
}

fn hmac_from_secret(secret: &[u8]) -> Result<Box<HmacSha256>, String> {
    if secret.len() < MIN_HMAC_SECRET_BYTES {
        return Err(format!(
            "the secret is {} bytes; at least {MIN_HMAC_SECRET_BYTES} are needed (make one with `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    HmacSha256::new_from_slice(secret)
        .map(Box::new)
        .map_err(|_| String::from("the secret has a length HMAC-SHA256 cannot use"))
}

/// Reads an `.hmac` file: hex or base64 (standard or URL-safe, padded or not), whitespace and
/// line breaks ignored, optionally prefixed `hex:` or `base64:`. Without a prefix, text made
/// only of hex digits is read as hex.
fn parse_hmac_file(text: &str) -> Result<Box<HmacSha256>, String> {
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    let decode_hex = |s: &str| {
        hex::decode(s)
            .map(Zeroizing::new)
            .map_err(|e| format!("not valid hex ({e})"))
    };
    let decode_b64 = |s: &str| {
        [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(s).ok())
            .map(Zeroizing::new)
            .ok_or_else(|| String::from("not valid base64"))
    };
    let secret = if let Some(h) = compact.strip_prefix("hex:") {
        decode_hex(h)?
    } else if let Some(b) = compact.strip_prefix("base64:") {
        decode_b64(b)?
    } else if compact.is_empty() {
        return Err(String::from(
            "the file is empty; write a secret into it (`openssl rand -hex 32`)",
        ));
    } else if compact.len() % 2 == 0 && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex(&compact)?
    } else {
        decode_b64(&compact).map_err(|_| {
            String::from(
                "neither hex nor base64; write the secret as hex (`openssl rand -hex 32`) or \
                 base64 (`openssl rand -base64 32`)",
            )
        })?
    };
    hmac_from_secret(&secret)
}

fn parse_ed25519_private(text: &str) -> Result<Box<SigningKey>, String> {
    if text.contains("BEGIN PUBLIC KEY") {
        return Err(String::from(
            "this is a public key; name it <key_id>.ed25519.pub (the .ed25519 file holds the private key)",
        ));
    }
    if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        return Err(String::from(
            "this is an OpenSSH key; use a PKCS#8 PEM key: `openssl genpkey -algorithm ed25519 -out <key_id>.ed25519`",
        ));
    }
    SigningKey::from_pkcs8_pem(text.trim()).map(Box::new).map_err(|e| {
        format!(
            "not an Ed25519 private key in PKCS#8 PEM ({e}); make one with `openssl genpkey -algorithm ed25519 -out <key_id>.ed25519`"
        )
    })
}

fn parse_ed25519_public(text: &str) -> Result<VerifyingKey, String> {
    if text.contains("PRIVATE KEY") {
        return Err(String::from(
            "this file holds a PRIVATE key; a .ed25519.pub file must hold only the public key (`openssl pkey -in <key_id>.ed25519 -pubout`). Move the private key out of it now",
        ));
    }
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
        format!(
            "not an Ed25519 public key in SPKI PEM ({e}); make one with `openssl pkey -in <key_id>.ed25519 -pubout -out <key_id>.ed25519.pub`"
        )
    })
}

/// PEM text of an Ed25519 key pair: what `openssl genpkey -algorithm ed25519` and
/// `openssl pkey -pubout` would write. `Debug` hides the private key.
pub struct Ed25519Pem {
    /// PKCS#8 `BEGIN PRIVATE KEY` text, for `<key_id>.ed25519`; wiped from memory on drop.
    pub private_pem: Zeroizing<String>,
    /// SPKI `BEGIN PUBLIC KEY` text, for `<key_id>.ed25519.pub`.
    pub public_pem: String,
}

impl fmt::Debug for Ed25519Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Pem")
            .field("private_pem", &"<hidden>")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

/// The PEM key pair of a given 32-byte Ed25519 seed (tests and reproducible fixtures).
pub fn ed25519_pem_from_seed(seed: &[u8; 32]) -> Result<Ed25519Pem, SigningError> {
    let signing = SigningKey::from_bytes(seed);
    let private_pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SigningError::InvalidKey(format!("cannot encode the private key: {e}")))?;
    let public_pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| SigningError::InvalidKey(format!("cannot encode the public key: {e}")))?;
    Ok(Ed25519Pem {
        private_pem: Zeroizing::new(private_pem.as_str().to_owned()),
        public_pem,
    })
}

/// A fresh random Ed25519 key pair as PEM text.
pub fn generate_ed25519_pem() -> Result<Ed25519Pem, SigningError> {
    let seed = Zeroizing::new(rand::random::<[u8; 32]>());
    ed25519_pem_from_seed(&seed)
}

/// A fresh random 32-byte HMAC secret as hex text, for a `<key_id>.hmac` file.
pub fn generate_hmac_secret_hex() -> Zeroizing<String> {
    let secret = Zeroizing::new(rand::random::<[u8; 32]>());
    Zeroizing::new(hex::encode(*secret))
}

// ---------------------------------------------------------------------------------------------
// Sign and verify
// ---------------------------------------------------------------------------------------------

/// Signs `msg` (a JSON object) with the key `key_id`: sets `msg.sig` to
/// `{"alg", "key_id", "value"}` over [`signing_input`]. An existing `sig` is replaced.
pub fn sign(ring: &KeyRing, key_id: &str, msg: &mut Value) -> Result<(), SigningError> {
    let key = ring
        .keys
        .get(key_id)
        .ok_or_else(|| SigningError::UnknownKey {
            key_id: key_id.to_owned(),
            known: ring.key_ids().join(", "),
        })?;
    if !msg.is_object() {
        return Err(SigningError::NotAnObject);
    }
    let bytes = signing_input(msg);
    let (alg, value) = match key {
        Key::Hmac(mac) => {
            let mut mac = mac.as_ref().clone();
            mac.update(&bytes);
            (
                Algorithm::HmacSha256,
                STANDARD.encode(mac.finalize().into_bytes()),
            )
        }
        Key::Ed25519 {
            signing: Some(signing),
            ..
        } => (
            Algorithm::Ed25519,
            STANDARD.encode(signing.sign(&bytes).to_bytes()),
        ),
        Key::Ed25519 { signing: None, .. } => {
            return Err(SigningError::VerifyOnlyKey {
                key_id: key_id.to_owned(),
            })
        }
    };
    if let Some(obj) = msg.as_object_mut() {
        obj.insert(
            SIG_FIELD.to_owned(),
            json!({"alg": alg.as_str(), "key_id": key_id, "value": value}),
        );
    }
    Ok(())
}

/// Verifies the `sig` of `msg` and returns the key id that signed it.
pub fn verify(ring: &KeyRing, msg: &Value) -> Result<String, VerifyError> {
    let obj = msg.as_object().ok_or(VerifyError::NotAnObject)?;
    let sig = obj.get(SIG_FIELD).ok_or(VerifyError::NoSignature)?;
    let sig = sig
        .as_object()
        .ok_or_else(|| VerifyError::MalformedSignature(String::from("not an object")))?;
    // Members of `sig` are not covered by the signature: refuse any we do not know rather
    // than let a reader think they were signed.
    if let Some(extra) = sig
        .keys()
        .find(|k| !matches!(k.as_str(), "alg" | "key_id" | "value"))
    {
        return Err(VerifyError::MalformedSignature(format!(
            "unknown member {:?} (only alg, key_id, value)",
            clip(extra, 64)
        )));
    }
    let field = |name: &str| {
        sig.get(name).and_then(Value::as_str).ok_or_else(|| {
            VerifyError::MalformedSignature(format!("sig.{name} is missing or not a string"))
        })
    };
    let alg = field("alg")?;
    let key_id = field("key_id")?;
    let value = field("value")?;
    let key = ring
        .keys
        .get(key_id)
        .ok_or_else(|| VerifyError::UnknownKey {
            key_id: clip(key_id, 80),
        })?;
    if alg != key.algorithm().as_str() {
        return Err(VerifyError::WrongAlgorithm {
            key_id: key_id.to_owned(),
            claimed: clip(alg, 32),
            actual: key.algorithm().as_str(),
        });
    }
    let raw = STANDARD
        .decode(value)
        .map_err(|e| VerifyError::BadBase64(e.to_string()))?;
    let bytes = signing_input(msg);
    let mismatch = || VerifyError::Mismatch {
        key_id: key_id.to_owned(),
    };
    match key {
        Key::Hmac(mac) => {
            let mut mac = mac.as_ref().clone();
            mac.update(&bytes);
            // verify_slice compares in constant time.
            mac.verify_slice(&raw).map_err(|_| mismatch())?;
        }
        Key::Ed25519 { verifying, .. } => {
            let signature = Signature::from_slice(&raw).map_err(|_| mismatch())?;
            // verify_strict also refuses malleable signatures and weak public keys.
            verifying
                .verify_strict(&bytes, &signature)
                .map_err(|_| mismatch())?;
        }
    }
    Ok(key_id.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// The command types the table accepts on `…/cmd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// `round.open`, body `{}`.
    RoundOpen,
    /// `round.close` (no more bets), body `{}`.
    RoundClose,
    /// `round.void`, body `{"reason": "…"}`.
    RoundVoid,
    /// `result.manual`, one person's approval: `{"round_id", "person", "role", "result"}`.
    ResultManual,
    /// `state.get`, body `{}`: reply with the table's state.
    StateGet,
    /// `health`, body `{}`: reply with component health.
    Health,
    /// `round.settled`, body `{"round_id": "…"}`: the orchestrator has settled the round.
    RoundSettled,
    /// `blackjack.decision`, body `{"box_no": 1..=255, "decision": "hit"|"stand"|"double"|"split"}`.
    BlackjackDecision,
    /// `prompter.message`, body `{"text": "…", "level"?: "info"|"warning", "ttl_s"?: 1..=3600}`:
    /// a line for the dealer's prompter.
    PrompterMessage,
}

impl CommandKind {
    pub const ALL: [CommandKind; 9] = [
        CommandKind::RoundOpen,
        CommandKind::RoundClose,
        CommandKind::RoundVoid,
        CommandKind::ResultManual,
        CommandKind::StateGet,
        CommandKind::Health,
        CommandKind::RoundSettled,
        CommandKind::BlackjackDecision,
        CommandKind::PrompterMessage,
    ];

    /// The `type` of the command message.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::RoundOpen => "round.open",
            CommandKind::RoundClose => "round.close",
            CommandKind::RoundVoid => "round.void",
            CommandKind::ResultManual => "result.manual",
            CommandKind::StateGet => "state.get",
            CommandKind::Health => "health",
            CommandKind::RoundSettled => "round.settled",
            CommandKind::BlackjackDecision => "blackjack.decision",
            CommandKind::PrompterMessage => "prompter.message",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        CommandKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the command only reads (`state.get`, `health`).
    pub fn is_read_only(self) -> bool {
        matches!(self, CommandKind::StateGet | CommandKind::Health)
    }

    fn body_members(self) -> &'static [&'static str] {
        match self {
            CommandKind::RoundOpen
            | CommandKind::RoundClose
            | CommandKind::StateGet
            | CommandKind::Health => &[],
            CommandKind::RoundVoid => &["reason"],
            CommandKind::ResultManual => &["round_id", "person", "role", "result"],
            CommandKind::RoundSettled => &["round_id"],
            CommandKind::BlackjackDecision => &["box_no", "decision"],
            CommandKind::PrompterMessage => &["text", "level", "ttl_s"],
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that passed every check: authentic, for this table, fresh, never seen, well formed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCommand {
    pub command_id: String,
    pub kind: CommandKind,
    /// Validated against the type's body shape (see [`CommandKind`]); for `result.manual`,
    /// `body.person` equals `key_id`.
    pub body: Value,
    /// The key that signed the command (for `result.manual`: the approving person).
    pub key_id: String,
    pub issued_at: SystemTime,
    pub nonce: String,
}

/// What [`CommandGuard::check`] lets through.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// A new command: execute it, then call [`CommandGuard::remember_reply`] with the reply.
    Fresh(VerifiedCommand),
    /// A command id already executed, with the same type and body: send this reply again and
    /// do not execute anything.
    Repeat { command_id: String, reply: Value },
}

/// Why a command is refused; `as_str` is the `reason` of the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Larger than the guard's size limit (64 KiB by default).
    TooLarge,
    /// Not JSON, too deeply nested, duplicate members, or a missing/ill-typed field, in the
    /// envelope or the body.
    Malformed,
    /// Unsigned, or the signature is malformed, of the wrong algorithm, or does not match.
    BadSignature,
    /// Signed with a key id the table does not hold.
    UnknownKey,
    /// Meant for another table (`table` is not this table's `<studio>/<table>`).
    WrongTable,
    /// `issued_at` is more than the allowed skew in the past (or older than what the replay
    /// memory can vouch for).
    StaleTimestamp,
    /// `issued_at` is more than the allowed skew in the future.
    FutureTimestamp,
    /// `type` is not a command this table knows.
    UnknownType,
    /// `result.manual` signed by a key other than `body.person`.
    SignerMismatch,
    /// The `nonce` was already used by another command.
    ReplayedNonce,
    /// The `command_id` was already used for a command with another type or body.
    CommandIdReused,
    /// The same command is still being executed; its reply comes once it is done.
    InProgress,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 12] = [
        RefusalReason::TooLarge,
        RefusalReason::Malformed,
        RefusalReason::BadSignature,
        RefusalReason::UnknownKey,
        RefusalReason::WrongTable,
        RefusalReason::StaleTimestamp,
        RefusalReason::FutureTimestamp,
        RefusalReason::UnknownType,
        RefusalReason::SignerMismatch,
        RefusalReason::ReplayedNonce,
        RefusalReason::CommandIdReused,
        RefusalReason::InProgress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::TooLarge => "too_large",
            RefusalReason::Malformed => "malformed",
            RefusalReason::BadSignature => "bad_signature",
            RefusalReason::UnknownKey => "unknown_key",
            RefusalReason::WrongTable => "wrong_table",
            RefusalReason::StaleTimestamp => "stale_timestamp",
            RefusalReason::FutureTimestamp => "future_timestamp",
            RefusalReason::UnknownType => "unknown_type",
            RefusalReason::SignerMismatch => "signer_mismatch",
            RefusalReason::ReplayedNonce => "replayed_nonce",
            RefusalReason::CommandIdReused => "command_id_reused",
            RefusalReason::InProgress => "in_progress",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command. Send [`Refusal::to_reply`] back on the response topic; nothing of the
/// command was executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command refused ({reason}): {detail}")]
pub struct Refusal {
    pub reason: RefusalReason,
    /// For the sender's developer: what exactly is wrong.
    pub detail: String,
    /// The command's id, when it could be read.
    pub command_id: Option<String>,
    /// The table's clock when it refused (helps diagnose skew).
    pub table_utc: Option<String>,
}

impl Refusal {
    fn new(reason: RefusalReason, detail: impl Into<String>) -> Self {
        Refusal {
            reason,
            detail: clip(&detail.into(), 300),
            command_id: None,
            table_utc: None,
        }
    }

    /// `{"status": "error", "reason": "<reason>", "data": {"detail", "command_id", "table_utc"}}`.
    pub fn to_reply(&self) -> Value {
        json!({
            "status": "error",
            "reason": self.reason.as_str(),
            "data": {
                "detail": self.detail,
                "command_id": self.command_id,
                "table_utc": self.table_utc,
            },
        })
    }
}

impl Serialize for Refusal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_reply().serialize(s)
    }
}

/// The reply to a command that was executed: `{"status": "ok", "reason": null, "data": data}`.
pub fn ok_reply(data: Value) -> Value {
    json!({"status": "ok", "reason": null, "data": data})
}

/// The reply to an authentic command the table could not carry out (the engine refused it:
/// no round open, …): `{"status": "error", "reason": reason, "data": {"detail": detail}}`.
/// Remember it like any reply: a retry gets the same answer.
pub fn error_reply(reason: &str, detail: &str) -> Value {
    json!({"status": "error", "reason": reason, "data": {"detail": detail}})
}

/// Settings of a [`CommandGuard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// This table's address, `<studio>/<table>`; commands name it in `table`.
    pub table: String,
    /// How far `issued_at` may be from the table's clock, either way (inclusive).
    pub max_skew: Duration,
    /// How many nonces and command ids are remembered at most (each kept for 2 × `max_skew`).
    pub memory_capacity: usize,
    /// The largest command accepted, in bytes.
    pub max_bytes: usize,
    /// The deepest nesting of arrays/objects accepted (the envelope counts as 1).
    pub max_depth: usize,
}

impl GuardConfig {
    /// Defaults: ±300 s, 1024 remembered commands (with their replies), 64 KiB, depth 16.
    pub fn new(studio: &str, table: &str) -> Self {
        GuardConfig {
            table: format!("{studio}/{table}"),
            max_skew: Duration::from_secs(300),
            // Commands come a few per round; 1024 in 10 minutes is far above any real rate
            // and bounds the remembered replies to a few MB.
            memory_capacity: 1024,
            max_bytes: 64 * 1024,
            max_depth: 16,
        }
    }
}

struct Remembered {
    /// SHA-256 of the canonical `{type, table, body}`: what "the same command" means.
    digest: [u8; 32],
    reply: Option<Value>,
}

/// The gate in front of the orchestrator's commands: signature, table, time window, replay,
/// idempotency, and shape. Sans-IO: bytes and the current time in, a verdict out.
///
/// Memory is bounded: nonces and command ids are kept for twice the skew window (older ones
/// fail the time check anyway) and at most `memory_capacity` of each. When full, the oldest
/// are forgotten and the guard from then on refuses commands issued at or before the newest
/// forgotten one (`stale_timestamp`), so a forgotten nonce can never be replayed.
pub struct CommandGuard {
    config: GuardConfig,
    nonces: HashSet<String>,
    nonce_order: BTreeSet<(i128, String)>,
    commands: HashMap<String, Remembered>,
    command_order: BTreeSet<(i128, String)>,
    /// Commands issued at or before this instant (ns since the epoch) are refused: the memory
    /// that would catch their replay was given up.
    floor_ns: Option<i128>,
}

impl fmt::Debug for CommandGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandGuard")
            .field("config", &self.config)
            .field("nonces", &self.nonces.len())
            .field("commands", &self.commands.len())
            .field("floor_ns", &self.floor_ns)
            .finish()
    }
}

const ENVELOPE_MEMBERS: [&str; 7] = [
    "command_id",
    "type",
    "table",
    "issued_at",
    "nonce",
    "body",
    SIG_FIELD,
];

impl CommandGuard {
    pub fn new(config: GuardConfig) -> Self {
        CommandGuard {
            config,
            nonces: HashSet::new(),
            nonce_order: BTreeSet::new(),
            commands: HashMap::new(),
            command_order: BTreeSet::new(),
            floor_ns: None,
        }
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Checks one raw command. In order: size, JSON (depth, duplicates), envelope fields,
    /// signature, table, time window, type, body, signer (`result.manual`), command id
    /// (repeat → [`Checked::Repeat`]), nonce. A [`Checked::Fresh`] command's nonce and id are
    /// remembered at once, so a duplicate arriving while it runs is refused (`in_progress`).
    pub fn check(
        &mut self,
        ring: &KeyRing,
        raw: &[u8],
        now: SystemTime,
    ) -> Result<Checked, Refusal> {
        let now_ns = epoch_ns(now);
        let mut command_id = None;
        let result = self.check_inner(ring, raw, now_ns, &mut command_id);
        result.map_err(|mut refusal| {
            refusal.command_id = command_id;
            refusal.table_utc = format_rfc3339(now_ns);
            refusal
        })
    }

    fn check_inner(
        &mut self,
        ring: &KeyRing,
        raw: &[u8],
        now_ns: i128,
        command_id_out: &mut Option<String>,
    ) -> Result<Checked, Refusal> {
        use RefusalReason as R;
        let cfg = &self.config;
        if raw.len() > cfg.max_bytes {
            return Err(Refusal::new(
                R::TooLarge,
                format!(
                    "{} bytes; a command may have at most {}",
                    raw.len(),
                    cfg.max_bytes
                ),
            ));
        }
        let msg = parse_strict(raw, cfg.max_depth)
            .map_err(|e| Refusal::new(R::Malformed, format!("not acceptable JSON: {e}")))?;
        let obj = msg
            .as_object()
            .ok_or_else(|| Refusal::new(R::Malformed, "a command is a JSON object"))?;

        // The id first, so that every later refusal can name the command it refuses.
        let command_id = envelope_str(obj, "command_id", 1, 128)?;
        *command_id_out = Some(command_id.to_owned());
        if let Some(extra) = obj.keys().find(|k| !ENVELOPE_MEMBERS.contains(&k.as_str())) {
            return Err(Refusal::new(
                R::Malformed,
                format!(
                    "unknown member {:?}; a command has exactly command_id, type, table, issued_at, nonce, body, sig",
                    clip(extra, 64)
                ),
            ));
        }
        let type_name = envelope_str(obj, "type", 1, 64)?;
        let table = envelope_str(obj, "table", 1, 256)?;
        let issued_text = envelope_str(obj, "issued_at", 1, 64)?;
        let nonce = envelope_str(obj, "nonce", 16, 128)?;
        let body = match obj.get("body") {
            Some(Value::Object(body)) => body,
            Some(_) => return Err(Refusal::new(R::Malformed, "body must be a JSON object")),
            None => return Err(Refusal::new(R::Malformed, "body is missing")),
        };
        let issued_ns = parse_issued_at(issued_text)?;

        let key_id = verify(ring, &msg).map_err(|e| match e {
            VerifyError::UnknownKey { .. } => Refusal::new(R::UnknownKey, e.to_string()),
            other => Refusal::new(R::BadSignature, format!("{} ({})", other, other.reason())),
        })?;

        if table != cfg.table {
            return Err(Refusal::new(
                R::WrongTable,
                format!(
                    "this is table {:?}, the command is for {:?}",
                    cfg.table,
                    clip(table, 64)
                ),
            ));
        }

        let skew_ns = i128::try_from(cfg.max_skew.as_nanos()).unwrap_or(i128::MAX);
        let ahead_ns = issued_ns.saturating_sub(now_ns);
        if ahead_ns > skew_ns {
            return Err(Refusal::new(
                R::FutureTimestamp,
                format!(
                    "issued_at is {} s ahead of the table's clock (at most {} s); check the sender's clock (NTP)",
                    ahead_ns / 1_000_000_000,
                    cfg.max_skew.as_secs()
                ),
            ));
        }
        if -ahead_ns > skew_ns {
            return Err(Refusal::new(
                R::StaleTimestamp,
                format!(
                    "issued_at is {} s behind the table's clock (at most {} s); send a fresh command, and check the sender's clock (NTP)",
                    -ahead_ns / 1_000_000_000,
                    cfg.max_skew.as_secs()
                ),
            ));
        }
        if self.floor_ns.is_some_and(|floor| issued_ns <= floor) {
            return Err(Refusal::new(
                R::StaleTimestamp,
                "the table's replay memory is full and cannot prove this command is new; send it again with a fresh issued_at and nonce",
            ));
        }

        let kind = CommandKind::from_name(type_name).ok_or_else(|| {
            Refusal::new(
                R::UnknownType,
                format!(
                    "type {:?} is not one of {}",
                    clip(type_name, 64),
                    CommandKind::ALL.map(CommandKind::as_str).join(", ")
                ),
            )
        })?;
        check_body(kind, body).map_err(|e| Refusal::new(R::Malformed, e))?;
        if kind == CommandKind::ResultManual {
            let person = body
                .get("person")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if person != key_id {
                return Err(Refusal::new(
                    R::SignerMismatch,
                    format!(
                        "result.manual for person {:?} is signed with key {key_id:?}; each approval must be signed with the approving person's own key (key id = person)",
                        clip(person, 64)
                    ),
                ));
            }
        }

        let digest = command_digest(kind, table, body);
        if let Some(seen) = self.commands.get(command_id) {
            if seen.digest != digest {
                return Err(Refusal::new(
                    R::CommandIdReused,
                    "this command_id was already used for a different command; every command needs a new id",
                ));
            }
            let Some(reply) = &seen.reply else {
                return Err(Refusal::new(
                    R::InProgress,
                    "the command with this id is still being executed; its reply follows",
                ));
            };
            let reply = reply.clone();
            // A retry re-signed with a fresh nonce burns that nonce too.
            self.remember_nonce(nonce, issued_ns);
            self.forget_old(now_ns);
            return Ok(Checked::Repeat {
                command_id: command_id.to_owned(),
                reply,
            });
        }
        if self.nonces.contains(nonce) {
            return Err(Refusal::new(
                R::ReplayedNonce,
                "this nonce was already used; every command needs a new random nonce",
            ));
        }

        self.remember_nonce(nonce, issued_ns);
        self.commands.insert(
            command_id.to_owned(),
            Remembered {
                digest,
                reply: None,
            },
        );
        self.command_order
            .insert((issued_ns, command_id.to_owned()));
        self.forget_old(now_ns);

        Ok(Checked::Fresh(VerifiedCommand {
            command_id: command_id.to_owned(),
            kind,
            body: Value::Object(body.clone()),
            key_id,
            issued_at: ns_to_system_time(issued_ns),
            nonce: nonce.to_owned(),
        }))
    }

    /// Records the reply sent for a command, so a retry with the same id gets it again.
    /// Returns false if the id is not (or no longer) remembered.
    pub fn remember_reply(&mut self, command_id: &str, reply: Value) -> bool {
        match self.commands.get_mut(command_id) {
            Some(seen) => {
                seen.reply = Some(reply);
                true
            }
            None => false,
        }
    }

    /// Forgets a command that was accepted but could not be carried out at all (the engine
    /// was gone, the daemon is stopping), so that a retry with the same id is executed rather
    /// than answered `in_progress`. Its nonce stays used. Returns false if the id is unknown
    /// or already has a reply (a reply is final).
    pub fn abandon(&mut self, command_id: &str) -> bool {
        if !matches!(self.commands.get(command_id), Some(seen) if seen.reply.is_none()) {
            return false;
        }
        self.commands.remove(command_id);
        self.command_order.retain(|(_, id)| id != command_id);
        true
    }

    fn remember_nonce(&mut self, nonce: &str, issued_ns: i128) {
        if self.nonces.insert(nonce.to_owned()) {
            self.nonce_order.insert((issued_ns, nonce.to_owned()));
        }
    }

    /// Forgets what is older than twice the window, then the oldest beyond capacity (raising
    /// the floor so that nothing forgotten can be replayed).
    fn forget_old(&mut self, now_ns: i128) {
        let skew_ns = i128::try_from(self.config.max_skew.as_nanos()).unwrap_or(i128::MAX);
        let horizon = now_ns.saturating_sub(skew_ns.saturating_mul(2));
        let capacity = self.config.memory_capacity.max(1);
        while let Some((issued, nonce)) = self.nonce_order.first().cloned() {
            let over = self.nonce_order.len() > capacity;
            if issued >= horizon && !over {
                break;
            }
            if over && issued >= horizon {
                self.floor_ns = Some(self.floor_ns.map_or(issued, |f| f.max(issued)));
            }
            self.nonce_order.pop_first();
            self.nonces.remove(&nonce);
        }
        while let Some((issued, id)) = self.command_order.first().cloned() {
            let over = self.command_order.len() > capacity;
            if issued >= horizon && !over {
                break;
            }
            if over && issued >= horizon {
                self.floor_ns = Some(self.floor_ns.map_or(issued, |f| f.max(issued)));
            }
            self.command_order.pop_first();
            self.commands.remove(&id);
        }
    }
}

fn envelope_str<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<&'a str, Refusal> {
    let value = match obj.get(name) {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(Refusal::new(
                RefusalReason::Malformed,
                format!("{name} must be a string"),
            ))
        }
        None => {
            return Err(Refusal::new(
                RefusalReason::Malformed,
                format!("{name} is missing"),
            ))
        }
    };
    // Printable ASCII only: these fields end up in logs, journal records and replies.
    if !(min..=max).contains(&value.len()) || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Refusal::new(
            RefusalReason::Malformed,
            format!("{name} must be {min} to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(value)
}

fn parse_issued_at(text: &str) -> Result<i128, Refusal> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        Refusal::new(
            RefusalReason::Malformed,
            format!("issued_at is not an RFC 3339 time ({e}); write e.g. 2026-11-21T14:23:12.5Z"),
        )
    })?;
    if !at.offset().is_utc() {
        return Err(Refusal::new(
            RefusalReason::Malformed,
            "issued_at must be in UTC (ending in Z)",
        ));
    }
    Ok(at.unix_timestamp_nanos())
}

fn check_body(kind: CommandKind, body: &Map<String, Value>) -> Result<(), String> {
    let allowed = kind.body_members();
    if let Some(extra) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "body.{} is not part of a {kind} body (members: {})",
            clip(extra, 64),
            if allowed.is_empty() {
                String::from("none")
            } else {
                allowed.join(", ")
            }
        ));
    }
    let text = |name: &str, max: usize| -> Result<&str, String> {
        match body.get(name) {
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(s),
            Some(_) => Err(format!(
                "body.{name} must be a string of 1 to {max} characters"
            )),
            None => Err(format!("body.{name} is missing")),
        }
    };
    match kind {
        CommandKind::RoundOpen
        | CommandKind::RoundClose
        | CommandKind::StateGet
        | CommandKind::Health => {}
        CommandKind::RoundVoid => {
            text("reason", 256)?;
        }
        CommandKind::RoundSettled => {
            text("round_id", 128)?;
        }
        CommandKind::ResultManual => {
            text("round_id", 128)?;
            let person = text("person", 64)?;
            if !is_valid_key_id(person) {
                return Err(String::from(
                    "body.person must be a key id (1 to 64 of A-Z a-z 0-9 . _ -): the person's own signing key",
                ));
            }
            if !matches!(text("role", 16)?, "dealer" | "supervisor") {
                return Err(String::from(
                    "body.role must be \"dealer\" or \"supervisor\"",
                ));
            }
            if !body.get("result").is_some_and(Value::is_object) {
                return Err(String::from(
                    "body.result must be an object (the result as the person states it)",
                ));
            }
        }
        CommandKind::PrompterMessage => {
            text("text", 280)?;
            if let Some(level) = body.get("level") {
                if !matches!(level.as_str(), Some("info" | "warning")) {
                    return Err(String::from("body.level must be \"info\" or \"warning\""));
                }
            }
            if let Some(ttl) = body.get("ttl_s") {
                if !ttl.as_u64().is_some_and(|t| (1..=3600).contains(&t)) {
                    return Err(String::from(
                        "body.ttl_s must be an integer from 1 to 3600 (seconds on screen)",
                    ));
                }
            }
        }
        CommandKind::BlackjackDecision => {
            if !body
                .get("box_no")
                .and_then(Value::as_u64)
                .is_some_and(|n| (1..=255).contains(&n))
            {
                return Err(String::from("body.box_no must be an integer from 1 to 255"));
            }
            if !matches!(text("decision", 16)?, "hit" | "stand" | "double" | "split") {
                return Err(String::from(
                    "body.decision must be \"hit\", \"stand\", \"double\" or \"split\"",
                ));
            }
        }
    }
    Ok(())
}

fn command_digest(kind: CommandKind, table: &str, body: &Map<String, Value>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(table.as_bytes());
    hasher.update([0]);
    let mut bytes = Vec::new();
    for (i, (k, v)) in sorted_members(body).into_iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        write_string(&mut bytes, k);
        bytes.push(b':');
        write_canonical(&mut bytes, v, None);
    }
    hasher.update(&bytes);
    hasher.finalize().into()
}

fn sorted_members(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    members
}

fn epoch_ns(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

fn ns_to_system_time(ns: i128) -> SystemTime {
    let magnitude = ns.unsigned_abs();
    let d = Duration::new(
        u64::try_from(magnitude / 1_000_000_000).unwrap_or(u64::MAX),
        u32::try_from(magnitude % 1_000_000_000).unwrap_or(0),
    );
    let t = if ns >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

fn format_rfc3339(ns: i128) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(ns)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// `issued_at` text for a command: RFC 3339 in UTC with a `Z`.
pub fn format_issued_at(at: SystemTime) -> String {
    format_rfc3339(epoch_ns(at)).unwrap_or_else(|| String::from("1970-01-01T00:00:00Z"))
}

/// An unsigned command message for this table, with a fresh UUIDv7 `command_id` and a random
/// 128-bit `nonce`; sign it with [`sign`]. For tools and tests on the orchestrator's side.
pub fn command_message(
    kind: CommandKind,
    table: &str,
    body: Value,
    issued_at: SystemTime,
) -> Value {
    json!({
        "command_id": uuid::Uuid::now_v7().to_string(),
        "type": kind.as_str(),
        "table": table,
        "issued_at": format_issued_at(issued_at),
        "nonce": hex::encode(rand::random::<[u8; 16]>()),
        "body": body,
    })
}

// ---------------------------------------------------------------------------------------------
// Stream verification (the `croupier verify` subcommand)
// ---------------------------------------------------------------------------------------------

/// How [`verify_stream_with`] reads a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Count a line that repeats an earlier event exactly (same `event_id`, same signed bytes)
    /// as a redelivery rather than a problem: MQTT QoS 1 is at-least-once, so a subscriber's
    /// capture may hold such repeats. Off: every repeated `event_id` is a problem (right for
    /// the table's own `events.jsonl`).
    pub allow_redelivery: bool,
    /// Check signatures; off to check only order and uniqueness of unsigned logs.
    pub require_signatures: bool,
    /// Lines longer than this are reported and skipped, never held in memory whole.
    pub max_line_bytes: usize,
    /// At most this many problems are kept in the report (all are counted).
    pub max_problems: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            allow_redelivery: false,
            require_signatures: true,
            max_line_bytes: 1024 * 1024,
            max_problems: 1000,
        }
    }
}

/// What is wrong with one line of a capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamProblem {
    #[error("cannot read the input: {0}")]
    Read(String),
    #[error("line longer than {limit} bytes, skipped")]
    TooLong { limit: usize },
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("missing or ill-typed `{0}`")]
    MissingField(&'static str),
    #[error("signature: {0}")]
    Signature(VerifyError),
    #[error("gap in {stream}: expected seq {expected}, found {found} ({} missing)", found - expected)]
    Gap {
        stream: String,
        expected: u64,
        found: u64,
    },
    #[error("out of order in {stream}: seq {found} after {previous}")]
    OutOfOrder {
        stream: String,
        previous: u64,
        found: u64,
    },
    #[error("event_id already seen on line {first_line}")]
    DuplicateEventId { first_line: u64 },
    #[error("event_id already seen on line {first_line} with different content")]
    ConflictingDuplicate { first_line: u64 },
}

/// One problem, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: u64,
    pub event_id: Option<String>,
    pub seq: Option<u64>,
    pub problem: StreamProblem,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The seq range seen for one table (`<studio>/<table>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub first: u64,
    pub last: u64,
    pub events: u64,
}

/// The result of [`verify_stream`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Events (JSON objects) read.
    pub events: u64,
    /// Events whose signature verified.
    pub verified: u64,
    /// Exact repeats counted as redeliveries ([`StreamOptions::allow_redelivery`]).
    pub redelivered: u64,
    /// Per table, the seq range seen.
    pub streams: BTreeMap<String, SeqRange>,
    /// Problems, in line order, at most [`StreamOptions::max_problems`].
    pub problems: Vec<LineProblem>,
    /// All problems found, kept or not.
    pub problem_count: u64,
}

impl VerifyReport {
    /// No problem at all: every signature verified, no gap, no duplicate.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        if self.problem_count > self.problems.len() as u64 {
            writeln!(
                f,
                "… and {} more problems",
                self.problem_count - self.problems.len() as u64
            )?;
        }
        for (stream, range) in &self.streams {
            writeln!(
                f,
                "{stream}: seq {}..={} ({} events)",
                range.first, range.last, range.events
            )?;
        }
        write!(
            f,
            "{} lines, {} events, {} signatures verified, {} redelivered, {} problems: {}",
            self.lines,
            self.events,
            self.verified,
            self.redelivered,
            self.problem_count,
            if self.is_clean() { "OK" } else { "FAILED" }
        )
    }
}

/// Verifies a JSON-lines capture of events with the default (strict) [`StreamOptions`].
pub fn verify_stream(ring: &KeyRing, reader: impl BufRead) -> VerifyReport {
    verify_stream_with(ring, reader, &StreamOptions::default())
}

/// Verifies a JSON-lines capture of events: each line's signature, per table (`studio`,
/// `table`) that `seq` rises by exactly one from the first seq seen, and that `event_id`s are
/// unique. Blank lines are skipped. Reading stops at the first I/O error (reported).
pub fn verify_stream_with(
    ring: &KeyRing,
    mut reader: impl BufRead,
    options: &StreamOptions,
) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut seen: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let mut buf = Vec::new();
    let add = |report: &mut VerifyReport, problem: LineProblem| {
        report.problem_count += 1;
        if report.problems.len() < options.max_problems {
            report.problems.push(problem);
        }
    };
    loop {
        let line_no = report.lines + 1;
        let problem = |problem, event_id: Option<&str>, seq| LineProblem {
            line: line_no,
            event_id: event_id.map(str::to_owned),
            seq,
            problem,
        };
        let too_long = match read_bounded_line(&mut reader, &mut buf, options.max_line_bytes) {
            Ok(None) => break,
            Ok(Some(too_long)) => too_long,
            Err(e) => {
                add(
                    &mut report,
                    problem(StreamProblem::Read(e.to_string()), None, None),
                );
                break;
            }
        };
        report.lines += 1;
        if too_long {
            add(
                &mut report,
                problem(
                    StreamProblem::TooLong {
                        limit: options.max_line_bytes,
                    },
                    None,
                    None,
                ),
            );
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let msg = match parse_strict(&buf, 64) {
            Ok(msg @ Value::Object(_)) => msg,
            Ok(_) => {
                add(
                    &mut report,
                    problem(
                        StreamProblem::NotJson(String::from("not an object")),
                        None,
                        None,
                    ),
                );
                continue;
            }
            Err(e) => {
                add(&mut report, problem(StreamProblem::NotJson(e), None, None));
                continue;
            }
        };
        report.events += 1;
        let event_id = msg.get("event_id").and_then(Value::as_str);
        let seq = msg.get("seq").and_then(Value::as_u64);
        let stream = format!(
            "{}/{}",
            msg.get("studio").and_then(Value::as_str).unwrap_or("?"),
            msg.get("table").and_then(Value::as_str).unwrap_or("?")
        );

        if options.require_signatures {
            match verify(ring, &msg) {
                Ok(_) => report.verified += 1,
                Err(e) => add(
                    &mut report,
                    problem(StreamProblem::Signature(e), event_id, seq),
                ),
            }
        }
        let Some(event_id) = event_id else {
            add(
                &mut report,
                problem(StreamProblem::MissingField("event_id"), None, seq),
            );
            continue;
        };
        let digest: [u8; 32] = Sha256::digest(signing_input(&msg)).into();
        if let Some(&(first_line, first_digest)) = seen.get(event_id) {
            if first_digest != digest {
                add(
                    &mut report,
                    problem(
                        StreamProblem::ConflictingDuplicate { first_line },
                        Some(event_id),
                        seq,
                    ),
                );
            } else if options.allow_redelivery {
                report.redelivered += 1;
            } else {
                add(
                    &mut report,
                    problem(
                        StreamProblem::DuplicateEventId { first_line },
                        Some(event_id),
                        seq,
                    ),
                );
            }
            // A repeat says nothing new about the order.
            continue;
        }
        seen.insert(event_id.to_owned(), (line_no, digest));
        let Some(seq) = seq else {
            add(
                &mut report,
                problem(StreamProblem::MissingField("seq"), Some(event_id), None),
            );
            continue;
        };
        match last_seq.get(&stream).copied() {
            None => {
                last_seq.insert(stream.clone(), seq);
            }
            Some(previous) if seq == previous.saturating_add(1) => {
                last_seq.insert(stream.clone(), seq);
            }
            Some(previous) if seq > previous => {
                add(
                    &mut report,
                    problem(
                        StreamProblem::Gap {
                            stream: stream.clone(),
                            expected: previous + 1,
                            found: seq,
                        },
                        Some(event_id),
                        Some(seq),
                    ),
                );
                last_seq.insert(stream.clone(), seq);
            }
            Some(previous) => {
                add(
                    &mut report,
                    problem(
                        StreamProblem::OutOfOrder {
                            stream: stream.clone(),
                            previous,
                            found: seq,
                        },
                        Some(event_id),
                        Some(seq),
                    ),
                );
            }
        }
        let range = report.streams.entry(stream).or_insert(SeqRange {
            first: seq,
            last: seq,
            events: 0,
        });
        range.first = range.first.min(seq);
        range.last = range.last.max(seq);
        range.events += 1;
    }
    report
}

/// Reads one line into `buf` (without the `\n` or a trailing `\r`), holding at most `max`
/// bytes: a longer line is consumed and reported as `Some(true)` with `buf` empty. `None` at
/// the end of the input.
fn read_bounded_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => {
                let (chunk, _) = available.split_at(at);
                (chunk, at + 1, true)
            }
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(too_long))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test JSON");
        String::from_utf8(canonical_json(&value)).expect("UTF-8")
    }

    #[test]
    fn rfc8785_example() {
        // RFC 8785 §3.2.2 and its expected output (§3.2.3).
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_sorting_by_utf16() {
        // RFC 8785 §3.2.3: U+1F600 (a surrogate pair in UTF-16) sorts before U+FB33.
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let out = canon(input);
        let order: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small",
            "Euro Sign",
            "Emoji",
            "Hebrew",
        ]
        .into_iter()
        .collect();
        let positions: Vec<usize> = order
            .iter()
            .map(|s| out.find(s).expect("present"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{out}");
    }

    #[test]
    fn ecmascript_numbers() {
        for (f, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1, "0.1"),
            (12.375, "12.375"),
        ] {
            assert_eq!(ecmascript_number(f), s, "{f:e}");
        }
    }

    #[test]
    fn canonical_integers_and_escapes() {
        assert_eq!(
            canon(r#"{"b":[1,-2,18446744073709551615],"a":{"y":"\t\u0001\u007f/é","x":null}}"#),
            "{\"a\":{\"x\":null,\"y\":\"\\t\\u0001\u{7f}/é\"},\"b\":[1,-2,18446744073709551615]}"
        );
    }

    #[test]
    fn signing_input_leaves_out_only_top_level_sig() {
        let msg = json!({"b": 1, "sig": {"x": 1}, "a": {"sig": 2}});
        assert_eq!(signing_input(&msg), br#"{"a":{"sig":2},"b":1}"#.to_vec());
    }

    #[test]
    fn strict_parser_refuses_duplicates_depth_and_trailing() {
        assert!(parse_strict(br#"{"a":1,"a":2}"#, 8)
            .expect_err("dup")
            .contains("duplicate"));
        let deep = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert!(parse_strict(deep.as_bytes(), 16)
            .expect_err("deep")
            .contains("nested"));
        assert!(parse_strict(deep.as_bytes(), 20).is_ok());
        assert!(parse_strict(b"{} x", 8).is_err());
        // Far beyond serde_json's own recursion limit: still an error, not a stack overflow.
        let very_deep = "[".repeat(100_000);
        assert!(parse_strict(very_deep.as_bytes(), 16).is_err());
    }

    #[test]
    fn hmac_file_formats() {
        let hex32 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert!(parse_hmac_file(hex32).is_ok());
        assert!(parse_hmac_file(&format!("hex:{hex32}\n")).is_ok());
        let b64 = STANDARD.encode([7u8; 48]);
        assert!(parse_hmac_file(&b64).is_ok());
        assert!(parse_hmac_file(&format!("base64:{}", URL_SAFE_NO_PAD.encode([7u8; 40]))).is_ok());
        assert!(parse_hmac_file("abcd")
            .err()
            .is_some_and(|e| e.contains("at least 32")));
        assert!(parse_hmac_file("").is_err());
        assert!(parse_hmac_file("not a key!").is_err());
    }

    #[test]
    fn hmac_same_key_same_mac_through_all_encodings() {
        let secret = [9u8; 32];
        let mut a = KeyRing::in_memory();
        a.insert_hmac("k", &secret).expect("insert");
        let mut msg = json!({"x": 1});
        sign(&a, "k", &mut msg).expect("sign");
        let mut b = KeyRing::in_memory();
        b.keys.insert(
            String::from("k"),
            Key::Hmac(parse_hmac_file(&STANDARD.encode(secret)).expect("b64")),
        );
        assert_eq!(verify(&b, &msg).as_deref(), Ok("k"));
    }

    #[test]
    fn ed25519_dalek_pkcs8_keys_round_trip() {
        let signing = SigningKey::from_bytes(&[5u8; 32]);
        let private = signing.to_pkcs8_pem(LineEnding::LF).expect("pem");
        let public = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let mut ring = KeyRing::in_memory();
        ring.insert_ed25519_pem("signer", &private)
            .expect("private");
        ring.insert_ed25519_pem("checker", &public).expect("public");
        assert!(ring.can_sign("signer"));
        assert!(!ring.can_sign("checker"));
        let mut msg = json!({"seq": 1});
        sign(&ring, "signer", &mut msg).expect("sign");
        // Same key material under another id: rename the key id in sig and verify with the
        // public-only entry.
        msg["sig"]["key_id"] = json!("checker");
        assert_eq!(verify(&ring, &msg).as_deref(), Ok("checker"));
        assert!(matches!(
            sign(&ring, "checker", &mut msg),
            Err(SigningError::VerifyOnlyKey { .. })
        ));
    }

    #[test]
    fn openssl_generated_keys_load_when_openssl_is_installed() {
        let openssl = Path::new("/usr/bin/openssl");
        if !openssl.exists() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let private = dir.path().join("k9.ed25519");
        let public = dir.path().join("k9.ed25519.pub");
        let ok = std::process::Command::new(openssl)
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&private)
            .status()
            .expect("openssl")
            .success()
            && std::process::Command::new(openssl)
                .args(["pkey", "-pubout", "-in"])
                .arg(&private)
                .arg("-out")
                .arg(&public)
                .status()
                .expect("openssl")
                .success();
        assert!(ok);
        let ring = KeyRing::load(dir.path()).expect("load");
        assert_eq!(ring.algorithm("k9"), Some(Algorithm::Ed25519));
        assert!(ring.can_sign("k9"));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let secret = [0xabu8; 32];
        let mut ring = KeyRing::in_memory();
        ring.insert_hmac("k1", &secret).expect("insert");
        let pem = ed25519_pem_from_seed(&[3u8; 32]).expect("pem");
        ring.insert_ed25519_pem("k2", &pem.private_pem)
            .expect("insert");
        let debug = format!("{ring:?} {pem:?}");
        assert!(debug.contains("k1 (hmac-sha256)") && debug.contains("k2 (ed25519)"));
        assert!(!debug.contains("abab"), "{debug}");
        assert!(!debug.contains(pem.private_pem.lines().nth(1).unwrap_or("x")));
    }

    #[test]
    fn bounded_line_reader() {
        let input = b"short\r\nthis line is far too long\nok\nlast";
        let mut reader = io::BufReader::with_capacity(4, &input[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Some(too_long) = read_bounded_line(&mut reader, &mut buf, 10).expect("read") {
            lines.push((String::from_utf8(buf.clone()).expect("utf8"), too_long));
        }
        assert_eq!(
            lines,
            vec![
                (String::from("short"), false),
                (String::new(), true),
                (String::from("ok"), false),
                (String::from("last"), false)
            ]
        );
    }

    #[test]
    fn memory_is_bounded_and_never_forgets_unsafely() {
        let mut ring = KeyRing::in_memory();
        ring.insert_hmac("k", &[1u8; 32]).expect("insert");
        let mut config = GuardConfig::new("s", "t");
        config.memory_capacity = 3;
        let mut guard = CommandGuard::new(config);
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut sent = Vec::new();
        for i in 0..5u64 {
            let at = start + Duration::from_secs(i);
            let mut cmd = command_message(CommandKind::Health, "s/t", json!({}), at);
            sign(&ring, "k", &mut cmd).expect("sign");
            let raw = serde_json::to_vec(&cmd).expect("json");
            assert!(matches!(
                guard.check(&ring, &raw, at),
                Ok(Checked::Fresh(_))
            ));
            sent.push(raw);
        }
        assert!(guard.nonces.len() <= 3 && guard.commands.len() <= 3);
        // The first command was forgotten; its replay is still refused (by the floor).
        let replay = guard
            .check(&ring, &sent[0], start + Duration::from_secs(6))
            .expect_err("replay");
        assert_eq!(replay.reason, RefusalReason::StaleTimestamp);
        // Everything is forgotten after twice the window.
        let later = start + Duration::from_secs(2000);
        let mut cmd = command_message(CommandKind::Health, "s/t", json!({}), later);
        sign(&ring, "k", &mut cmd).expect("sign");
        let raw = serde_json::to_vec(&cmd).expect("json");
        assert!(guard.check(&ring, &raw, later).is_ok());
        assert_eq!(guard.nonces.len(), 1);
    }
}
