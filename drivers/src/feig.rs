//! FEIG ISO-Host protocol (OBID i-scan / ID ISC HF readers): the binary request/response frames
//! a FEIG reader speaks on RS-232, RS-485 or its USB-serial port in "ISO-Host" mode.
//!
//! # For the studio technician
//!
//! A FEIG reader under the table does nothing by itself in ISO-Host mode: Croupier asks it
//! ("inventory: which tags are on antennas 1–4?") several times a second and the reader
//! answers with the UIDs it found. The serial settings are the reader's `CFG1` block; FEIG's
//! factory default is **38400 baud, 8 data bits, even parity, 1 stop bit (8E1)**, and the bus
//! address (`COM-ADR`) 0. Croupier sends to address 255 by default, which every FEIG reader
//! answers whatever its own address (fine on RS-232/USB; on an RS-485 bus with several readers
//! configure each reader's address and `com_adr` in the config).
//!
//! The reader must report *every* tag in the field on each inventory, not only new ones: in
//! the anticollision settings (`CFG5`, "ONT" bit, or "persistence reset time" on newer models)
//! switch the quiet/"only new tags" behaviour **off**, or chips would seem to leave the table a
//! moment after they were placed.
//!
//! # Frames
//!
//! Standard protocol frame (up to 255 bytes), from the FEIG system manuals, chapter
//! "Protocol frames" (e.g. ID ISC.LRU3000 manual H90202-7e p. 20, ID ISC.MU02 H90701-3e p. 17,
//! ID ISC.MR/PR101 H60301-3e p. 17):
//!
//! ```text
//! host → reader:  LEN  COM-ADR  CONTROL          DATA…  CRC16(LSB, MSB)
//! reader → host:  LEN  COM-ADR  CONTROL  STATUS  DATA…  CRC16(LSB, MSB)
//! ```
//!
//! `LEN` counts every byte of the frame, itself and the CRC included (6…255 for a response).
//! Advanced protocol frame, for frames longer than 255 bytes (same manuals): a reader answers a
//! standard request with an advanced frame when the answer does not fit, so a busy chip tray
//! (more than about 24 tags) arrives in this form:
//!
//! ```text
//! 0x02(STX)  ALENGTH(MSB, LSB)  COM-ADR  CONTROL  [STATUS]  DATA…  CRC16(LSB, MSB)
//! ```
//!
//! `ALENGTH` counts every byte, STX and CRC included (8…65535 for a response). The CRC is
//! CRC-16/CCITT reflected ("CRC-16/MCRF4XX": polynomial 0x8408, preset 0xFFFF, no final xor)
//! over every byte before it, sent least significant byte first. The manuals' C example is
//! [`crc16`]; its check value over `"123456789"` is 0x6F91.
//!
//! # Inventory (`[0xB0]` host command, ISO sub-command `[0x01]`)
//!
//! Request data: `0x01 MODE [ANT_SEL]`. MODE bit 7 is MORE (fetch the next part after status
//! 0x94), bit 4 is ANT (antenna selection follows: `ANT_SEL` bit 0 = antenna 1 … bit 7 =
//! antenna 8) (ID ISC.MU02 manual §10.1.1; FEIG SDK `FEDM_ISC_TMP_B0_MODE_MORE` = bit 7,
//! `FEDM_ISC_TMP_B0_MODE_ANT` = bit 4, `FEDM_ISC_TMP_B0_REQ_ANT_SEL`).
//!
//! Response data without ANT (ID ISC.MR/PR101 manual §6.1.1, ID ISC.MR200 §6.1.1):
//! `DATA-SETS`, then per data set `TR-TYPE DSFID UID(8)` for ISO 15693 tags (TR-TYPE 0x03).
//! With ANT (FEIG SDK `FEDM_ISOTabItem::SetSnr_with_Antenna`, Siemens RF290R manual §8.2, a
//! FEIG-built reader): per data set `FLAGS`; if FLAGS bit 0: `TR-TYPE DSFID UID_LEN UID`; if
//! FLAGS bit 4: `ANT_CNT` then per antenna `ANT_NR ANT_STATUS RSSI` and 4 reserved bytes.
//! UIDs are sent most significant byte first (`E0 04 …`), as [`TagUid`] prints them.
//!
//! # Resynchronisation, and its limits
//!
//! A standard frame starts with its length, which can be any byte, so a frame start cannot be
//! recognised by itself. In sync (at the start, and after every good frame) the decoder trusts
//! the first byte as a length and waits until that many bytes are there: a frame split across
//! reads is never second-guessed. If the length is impossible (< 6, an advanced length < 8 or
//! above the bound) or the CRC over that many bytes is wrong, the decoder slides forward one
//! byte at a time, to the next complete CRC-valid frame if one is already buffered, else to the
//! first byte that could still start one, and reports the skipped run as one [`Garbage`] item.
//! From then on, until a good frame, it prefers a complete valid frame further on over waiting
//! for a guessed start to complete: a corrupted answer's CONTROL byte `0xB0` would otherwise
//! look like a 176-byte frame and hold up the next answer.
//!
//! Limits: out of sync, a complete 16-bit CRC match inside noise is taken as a frame (about
//! one chance in 65536 per candidate position); and a stray byte can still make the decoder
//! wait for more input when nothing valid follows yet. Both are bounded because this is a
//! request/response protocol: the poller ([`crate::rfid::InventoryPoller`]) times out, checks
//! every answer's address and command, and the transport should drop what is buffered after a
//! timeout. The FEIG manuals give the reader's own rule: the characters of one frame follow
//! each other within 12 ms, so a longer silence inside a frame means it was cut.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use crate::model::{Decoded, Garbage, TagUid};

/// The `[0xB0]` control byte: ISO-Host commands (ISO 15693 mandatory and optional commands).
pub const CMD_ISO_HOST: u8 = 0xB0;
/// The `[0x01]` Inventory sub-command of `[0xB0]`.
pub const ISO_INVENTORY: u8 = 0x01;
/// Inventory MODE bit 7: "more data requested" (after status 0x94).
pub const MODE_MORE: u8 = 0x80;
/// Inventory MODE bit 4: an `ANT_SEL` byte follows and the answer carries antenna numbers.
pub const MODE_ANT: u8 = 0x10;
/// The bus address every FEIG reader answers, whatever its configured address.
pub const BROADCAST_ADR: u8 = 0xFF;
/// TR-TYPE of an ISO 15693 transponder.
pub const TR_TYPE_ISO15693: u8 = 0x03;

/// The first byte of an advanced protocol frame.
const STX: u8 = 0x02;
/// The longest standard frame: its length is one byte.
const MAX_STANDARD_LEN: usize = 255;
/// The longest advanced frame: its length is two bytes.
const MAX_ADVANCED_LEN: usize = 65_535;
/// Default bound on an advanced frame. 100 tags with antenna data are about 2 KiB, so a
/// longer "length" is far more likely noise than a frame, and waiting for it would stall.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;

/// FLAGS bit 0 of an inventory data set with antenna information: transponder data follow.
const FLAG_TAG: u8 = 0x01;
/// FLAGS bit 4: antenna records follow.
const FLAG_ANT: u8 = 0x10;
/// One antenna record: ANT_NR, ANT_STATUS, RSSI and 4 reserved bytes.
const ANT_RECORD_LEN: usize = 7;

/// CRC-16 of the FEIG protocol frame: CCITT polynomial reflected (0x8408), preset 0xFFFF, no
/// final xor (the catalogue's CRC-16/MCRF4XX). The frame carries it least significant byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Errors of this module: building a frame, or reading an inventory out of a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeigError {
    /// A frame would be longer than the protocol allows.
    #[error("a FEIG frame of {len} bytes is longer than the protocol allows ({max})")]
    FrameTooLong { len: usize, max: usize },
    /// The response is not an answer to an ISO-Host command.
    #[error("response to control byte {control:#04X}, not to an ISO-Host [0xB0] command")]
    NotIsoHost { control: u8 },
    /// The reader answered with a status that carries no inventory.
    #[error("the reader answered {0}")]
    ReaderStatus(Status),
    /// The inventory data ended in the middle of a data set.
    #[error("inventory data cut short at byte {at}")]
    Truncated { at: usize },
    /// Bytes left after the announced number of data sets.
    #[error("{count} bytes after the last inventory data set")]
    TrailingBytes { count: usize },
    /// A transponder type whose data-set layout is unknown, so the rest cannot be read.
    #[error("transponder type {tr_type:#04X} has an unknown data-set layout")]
    UnsupportedTransponder { tr_type: u8 },
}

/// Which protocol frame carries a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameKind {
    /// `LEN COM-ADR CONTROL …`, up to 255 bytes. Every FEIG reader of the i-scan family
    /// understands it.
    #[default]
    Standard,
    /// `0x02 ALENGTH(2) COM-ADR CONTROL …`, up to 65535 bytes. Some newer readers accept only
    /// this one (they answer a standard frame with status 0x80).
    Advanced,
}

/// A reader's STATUS byte (FEIG manuals, annex "Index of Status Bytes"; e.g. ID ISC.MR102
/// H01113-4e annex E, ID ISC.LR1002 annex D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0x00: the command was executed.
    Ok,
    /// 0x01: no transponder in the field (an empty inventory).
    NoTransponder,
    /// 0x02: CRC error in data received from the transponder.
    DataFalse,
    /// 0x03: write error.
    WriteError,
    /// 0x04: address outside the transponder's memory.
    AddressError,
    /// 0x05: the command does not apply to this transponder type.
    WrongTransponderType,
    /// 0x10: the reader's EEPROM failed.
    EepromFailure,
    /// 0x11: a parameter is out of range.
    ParameterRangeError,
    /// 0x13: the reader wants a login first.
    LoginRequest,
    /// 0x14: login failed.
    LoginError,
    /// 0x15: read protected (for example a reserved configuration block).
    ReadProtect,
    /// 0x16: write protected.
    WriteProtect,
    /// 0x80: unknown command (also the answer of readers that take only advanced frames).
    UnknownCommand,
    /// 0x81: the frame's length is wrong for the command.
    LengthError,
    /// 0x82: the command is not available (for example antenna selection on a reader without
    /// a multiplexer, or in scan / buffered-read mode).
    CommandNotAvailable,
    /// 0x83: RF communication error (antenna detuned, interference).
    RfCommunicationError,
    /// 0x84: RF warning (the reader found a problem with its RF part; data may follow).
    RfWarning,
    /// 0x90: no valid data.
    NoValidData,
    /// 0x93: the reader's data buffer overflowed (too many tags).
    DataBufferOverflow,
    /// 0x94: more data sets than fit; ask again with MORE set.
    MoreData,
    /// 0x95: the tag answered with an ISO 15693 error (an ISO-ERROR byte follows).
    TagError,
    /// 0xF1: hardware warning.
    HardwareWarning,
    /// Any other status byte.
    Other(u8),
}

impl Status {
    /// The status for a byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => Status::Ok,
            0x01 => Status::NoTransponder,
            0x02 => Status::DataFalse,
            0x03 => Status::WriteError,
            0x04 => Status::AddressError,
            0x05 => Status::WrongTransponderType,
            0x10 => Status::EepromFailure,
            0x11 => Status::ParameterRangeError,
            0x13 => Status::LoginRequest,
            0x14 => Status::LoginError,
            0x15 => Status::ReadProtect,
            0x16 => Status::WriteProtect,
            0x80 => Status::UnknownCommand,
            0x81 => Status::LengthError,
            0x82 => Status::CommandNotAvailable,
            0x83 => Status::RfCommunicationError,
            0x84 => Status::RfWarning,
            0x90 => Status::NoValidData,
            0x93 => Status::DataBufferOverflow,
            0x94 => Status::MoreData,
            0x95 => Status::TagError,
            0xF1 => Status::HardwareWarning,
            other => Status::Other(other),
        }
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Status::Ok => 0x00,
            Status::NoTransponder => 0x01,
            Status::DataFalse => 0x02,
            Status::WriteError => 0x03,
            Status::AddressError => 0x04,
            Status::WrongTransponderType => 0x05,
            Status::EepromFailure => 0x10,
            Status::ParameterRangeError => 0x11,
            Status::LoginRequest => 0x13,
            Status::LoginError => 0x14,
            Status::ReadProtect => 0x15,
            Status::WriteProtect => 0x16,
            Status::UnknownCommand => 0x80,
            Status::LengthError => 0x81,
            Status::CommandNotAvailable => 0x82,
            Status::RfCommunicationError => 0x83,
            Status::RfWarning => 0x84,
            Status::NoValidData => 0x90,
            Status::DataBufferOverflow => 0x93,
            Status::MoreData => 0x94,
            Status::TagError => 0x95,
            Status::HardwareWarning => 0xF1,
            Status::Other(byte) => byte,
        }
    }

    /// What the status means, in a technician's words.
    pub fn description(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NoTransponder => "no transponder in the field",
            Status::DataFalse => "CRC error in the transponder's answer",
            Status::WriteError => "write error",
            Status::AddressError => "address outside the transponder's memory",
            Status::WrongTransponderType => "command not applicable to this transponder type",
            Status::EepromFailure => "reader EEPROM failure",
            Status::ParameterRangeError => "parameter out of range",
            Status::LoginRequest => "the reader requires a login",
            Status::LoginError => "login failed",
            Status::ReadProtect => "read protected",
            Status::WriteProtect => "write protected",
            Status::UnknownCommand => {
                "unknown command (or the reader accepts only advanced protocol frames)"
            }
            Status::LengthError => "frame length wrong for the command",
            Status::CommandNotAvailable => {
                "command not available (antenna selection unsupported, or scan/buffered-read mode is on)"
            }
            Status::RfCommunicationError => "RF communication error (antenna or interference)",
            Status::RfWarning => "RF warning from the reader",
            Status::NoValidData => "no valid data",
            Status::DataBufferOverflow => "reader data buffer overflow (too many tags)",
            Status::MoreData => "more data sets follow",
            Status::TagError => "the tag answered with an ISO 15693 error",
            Status::HardwareWarning => "reader hardware warning",
            Status::Other(_) => "unknown status",
        }
    }

    /// Whether FEIG sends inventory data with this status (manuals: "Data is only transferred
    /// if STATUS = 0x00, 0x83, 0x84, 0x93, 0x94, 0x95"). 0x01 carries an empty inventory.
    pub fn carries_data(self) -> bool {
        matches!(
            self,
            Status::Ok
                | Status::NoTransponder
                | Status::RfCommunicationError
                | Status::RfWarning
                | Status::DataBufferOverflow
                | Status::MoreData
                | Status::TagError
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {:#04X} ({})", self.byte(), self.description())
    }
}

/// A host → reader frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub com_adr: u8,
    pub control: u8,
    pub data: Vec<u8>,
    pub kind: FrameKind,
}

/// A reader → host frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub com_adr: u8,
    pub control: u8,
    pub status: Status,
    pub data: Vec<u8>,
    pub kind: FrameKind,
}

/// Builds a frame of `kind` around `body` (STATUS and DATA for a response, DATA for a request).
fn encode_frame(
    kind: FrameKind,
    com_adr: u8,
    control: u8,
    status: Option<u8>,
    data: &[u8],
) -> Result<Vec<u8>, FeigError> {
    let body = data.len() + usize::from(status.is_some());
    let (len, max) = match kind {
        FrameKind::Standard => (1 + 2 + body + 2, MAX_STANDARD_LEN),
        FrameKind::Advanced => (3 + 2 + body + 2, MAX_ADVANCED_LEN),
    };
    if len > max {
        return Err(FeigError::FrameTooLong { len, max });
    }
    let mut out = Vec::with_capacity(len);
    match kind {
        // `len` fits the length field: checked against `max` above.
        FrameKind::Standard => out.push(u8::try_from(len).unwrap_or(u8::MAX)),
        FrameKind::Advanced => {
            out.push(STX);
            out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        }
    }
    out.push(com_adr);
    out.push(control);
    out.extend(status);
    out.extend_from_slice(data);
    let crc = crc16(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A host → reader frame: a standard frame when it fits in 255 bytes, an advanced one otherwise.
pub fn encode_request(com_adr: u8, control: u8, data: &[u8]) -> Result<Vec<u8>, FeigError> {
    encode_frame(FrameKind::Standard, com_adr, control, None, data)
        .or_else(|_| encode_frame(FrameKind::Advanced, com_adr, control, None, data))
}

/// A host → reader frame of the given kind.
pub fn encode_request_as(
    kind: FrameKind,
    com_adr: u8,
    control: u8,
    data: &[u8],
) -> Result<Vec<u8>, FeigError> {
    encode_frame(kind, com_adr, control, None, data)
}

/// A reader → host frame (used by [`SimulatedReader`] and tests): standard when it fits and
/// `kind` is standard, advanced otherwise, as a FEIG reader does.
pub fn encode_response(
    kind: FrameKind,
    com_adr: u8,
    control: u8,
    status: Status,
    data: &[u8],
) -> Result<Vec<u8>, FeigError> {
    let status = Some(status.byte());
    match kind {
        FrameKind::Standard => encode_frame(FrameKind::Standard, com_adr, control, status, data)
            .or_else(|_| encode_frame(FrameKind::Advanced, com_adr, control, status, data)),
        FrameKind::Advanced => encode_frame(FrameKind::Advanced, com_adr, control, status, data),
    }
}

/// An `[0xB0][0x01]` Inventory request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InventoryRequest {
    pub com_adr: u8,
    /// Antenna selection, bit 0 = antenna 1 … bit 7 = antenna 8. 0: no selection (the MODE ANT
    /// bit is clear and the reader reads its default antenna; answers carry no antenna numbers).
    pub antennas: u8,
    /// Ask for the rest of the previous inventory (after status 0x94).
    pub more: bool,
    pub kind: FrameKind,
}

impl InventoryRequest {
    /// The request data: `0x01 MODE [ANT_SEL]`.
    pub fn data(&self) -> Vec<u8> {
        let mut mode = 0u8;
        if self.more {
            mode |= MODE_MORE;
        }
        let mut data = vec![ISO_INVENTORY, mode];
        if self.antennas != 0 {
            if let Some(m) = data.get_mut(1) {
                *m |= MODE_ANT;
            }
            data.push(self.antennas);
        }
        data
    }

    /// The whole frame.
    pub fn encode(&self) -> Vec<u8> {
        // At most 3 data bytes: always fits either frame.
        encode_frame(self.kind, self.com_adr, CMD_ISO_HOST, None, &self.data()).unwrap_or_default()
    }
}

/// A standard-frame inventory request for the antennas in `antennas` (bit 0 = antenna 1; 0 for
/// the reader's default antenna without antenna numbers in the answer).
///
/// `inventory_request(0xFF, 0)` is `07 FF B0 01 00 1C 56`.
pub fn inventory_request(com_adr: u8, antennas: u8) -> Vec<u8> {
    InventoryRequest {
        com_adr,
        antennas,
        more: false,
        kind: FrameKind::Standard,
    }
    .encode()
}

/// What the byte at the start of a buffer turned out to be.
enum Candidate {
    /// Possibly a frame; `need` bytes from its start are needed to tell.
    Incomplete { need: usize },
    /// A whole frame of `len` bytes with a good CRC.
    Frame { len: usize, kind: FrameKind },
    /// Not a frame start.
    Bad(Garbage),
}

/// The length rules of one direction.
#[derive(Debug, Clone, Copy)]
struct Framing {
    /// Shortest standard frame (5 for a request, 6 with a STATUS byte).
    min_standard: usize,
    /// Shortest advanced frame (7, or 8 with a STATUS byte).
    min_advanced: usize,
    /// Longest advanced frame accepted.
    max_len: usize,
}

impl Framing {
    fn candidate(&self, buf: &[u8]) -> Candidate {
        let Some(&first) = buf.first() else {
            return Candidate::Incomplete { need: 1 };
        };
        let (len, kind) = if first == STX {
            // A standard frame cannot be 2 bytes long, so 0x02 always starts an advanced one.
            let (Some(&hi), Some(&lo)) = (buf.get(1), buf.get(2)) else {
                return Candidate::Incomplete { need: 3 };
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len < self.min_advanced {
                return Candidate::Bad(Garbage::Malformed);
            }
            if len > self.max_len {
                return Candidate::Bad(Garbage::TooLong);
            }
            (len, FrameKind::Advanced)
        } else {
            let len = usize::from(first);
            if len < self.min_standard {
                return Candidate::Bad(Garbage::Malformed);
            }
            (len, FrameKind::Standard)
        };
        let Some(frame) = buf.get(..len) else {
            return Candidate::Incomplete { need: len };
        };
        let body = frame.get(..len - 2).unwrap_or_default();
        let sent = frame
            .get(len - 2..)
            .and_then(|c| <[u8; 2]>::try_from(c).ok())
            .map(u16::from_le_bytes);
        if sent == Some(crc16(body)) {
            Candidate::Frame { len, kind }
        } else {
            Candidate::Bad(Garbage::BadChecksum)
        }
    }
}

/// What is known about the buffer while out of sync, so every position is CRC-checked at most
/// twice however small the reads are.
#[derive(Debug, Clone)]
struct Resync {
    /// Positions (from the buffer's start) below this have been classified.
    scanned: usize,
    /// Positions after 0 that could still start a frame, in order, each with the buffer length
    /// needed to tell.
    pending: Vec<(usize, usize)>,
}

impl Resync {
    fn new() -> Self {
        Self {
            scanned: 1,
            pending: Vec::new(),
        }
    }

    /// The first position after 0 where a complete, CRC-valid frame starts, if any yet.
    fn find_frame(&mut self, framing: &Framing, buf: &[u8]) -> Option<usize> {
        let n = buf.len();
        if self.scanned > n.max(1) {
            // The buffer was cleared behind our back: start over.
            *self = Self::new();
        }
        let classify = |k: usize| {
            buf.get(k..)
                .map_or(Candidate::Incomplete { need: 1 }, |rest| {
                    framing.candidate(rest)
                })
        };
        let mut found = None;
        let mut still = Vec::with_capacity(self.pending.len());
        for &(k, end) in &self.pending {
            if found.is_some() || end > n {
                still.push((k, end));
                continue;
            }
            match classify(k) {
                Candidate::Frame { .. } => {
                    found = Some(k);
                    still.push((k, end));
                }
                Candidate::Incomplete { need } => still.push((k, k + need)),
                Candidate::Bad(_) => {}
            }
        }
        self.pending = still;
        if found.is_some() {
            return found;
        }
        while self.scanned < n {
            let k = self.scanned;
            self.scanned += 1;
            match classify(k) {
                Candidate::Frame { len, .. } => {
                    self.pending.push((k, k + len));
                    return Some(k);
                }
                Candidate::Incomplete { need } => self.pending.push((k, k + need)),
                Candidate::Bad(_) => {}
            }
        }
        None
    }

    /// The first position after 0 that could still start a frame.
    fn first_possible(&self) -> Option<usize> {
        self.pending.first().map(|&(k, _)| k)
    }

    /// `skipped` bytes were removed from the buffer's start.
    fn shift(&mut self, skipped: usize) {
        self.scanned = self.scanned.saturating_sub(skipped).max(1);
        self.pending.retain(|&(k, _)| k > skipped);
        for (k, end) in &mut self.pending {
            *k -= skipped;
            *end -= skipped;
        }
    }
}

/// Frame boundaries, with the memory of whether the stream is in sync.
///
/// In sync (at the start, after a good frame, after EOF) the byte at the buffer's start is a
/// frame start and the decoder waits for the whole frame. After garbage it is only a guess, so a
/// complete valid frame further on is preferred over waiting for the guess to complete.
#[derive(Debug, Clone)]
struct Framer {
    framing: Framing,
    /// Out of sync since the last garbage: what is known about the buffer.
    resync: Option<Resync>,
}

impl Framer {
    fn new(framing: Framing) -> Self {
        Self {
            framing,
            resync: None,
        }
    }

    /// One step of decoding: a whole frame (removed from `buf` and built), garbage, or nothing
    /// yet.
    fn next<T>(
        &mut self,
        buf: &mut BytesMut,
        build: impl FnOnce(u8, u8, &[u8], FrameKind) -> Option<T>,
    ) -> Option<Decoded<T>> {
        match self.framing.candidate(buf) {
            Candidate::Incomplete { .. } => {
                let resync = self.resync.as_mut()?;
                let skipped = resync.find_frame(&self.framing, buf)?;
                resync.shift(skipped);
                buf.advance(skipped);
                Some(Decoded::Garbage {
                    skipped,
                    reason: Garbage::NoFrameStart,
                })
            }
            Candidate::Frame { len, kind } => {
                self.resync = None;
                let frame = buf.split_to(len);
                let built = split_frame(&frame, kind)
                    .and_then(|(com_adr, control, body)| build(com_adr, control, body, kind));
                Some(match built {
                    Some(frame) => Decoded::Frame {
                        frame,
                        wire_len: len,
                    },
                    None => Decoded::Garbage {
                        skipped: len,
                        reason: Garbage::Malformed,
                    },
                })
            }
            Candidate::Bad(reason) => {
                // Skip to the next complete valid frame if one is buffered, else to the first
                // position that could still start one; a run of noise is reported once.
                let resync = self.resync.get_or_insert_with(Resync::new);
                let skipped = resync
                    .find_frame(&self.framing, buf)
                    .or_else(|| resync.first_possible())
                    .unwrap_or(buf.len());
                resync.shift(skipped);
                buf.advance(skipped);
                Some(Decoded::Garbage { skipped, reason })
            }
        }
    }

    /// Whatever is left at the end of the input is a cut frame: garbage, never a frame.
    fn rest_at_eof<T>(&mut self, buf: &mut BytesMut) -> Option<Decoded<T>> {
        self.resync = None;
        if buf.is_empty() {
            return None;
        }
        let skipped = buf.len();
        buf.clear();
        Some(Decoded::Garbage {
            skipped,
            reason: Garbage::Malformed,
        })
    }
}

/// Splits a frame into COM-ADR, CONTROL and the bytes between CONTROL and the CRC.
fn split_frame(frame: &[u8], kind: FrameKind) -> Option<(u8, u8, &[u8])> {
    let header = match kind {
        FrameKind::Standard => 1,
        FrameKind::Advanced => 3,
    };
    let com_adr = *frame.get(header)?;
    let control = *frame.get(header + 1)?;
    let body = frame.get(header + 2..frame.len().checked_sub(2)?)?;
    Some((com_adr, control, body))
}

/// Decodes reader → host frames (standard and advanced) into [`Response`]s.
#[derive(Debug, Clone)]
pub struct ResponseCodec {
    framer: Framer,
}

impl Default for ResponseCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseCodec {
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// Accept advanced frames up to `max` bytes (at least 255, at most 65535).
    pub fn with_max_frame_len(max: usize) -> Self {
        Self {
            framer: Framer::new(Framing {
                min_standard: 6,
                min_advanced: 8,
                max_len: max.clamp(MAX_STANDARD_LEN, MAX_ADVANCED_LEN),
            }),
        }
    }
}

impl Decoder for ResponseCodec {
    type Item = Decoded<Response>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.framer.next(buf, |com_adr, control, body, kind| {
            // The minimum length guarantees the STATUS byte.
            let (status, data) = body.split_first()?;
            Some(Response {
                com_adr,
                control,
                status: Status::from_byte(*status),
                data: data.to_vec(),
                kind,
            })
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None => Ok(self.framer.rest_at_eof(buf)),
        }
    }
}

/// Decodes host → reader frames into [`Request`]s (for the simulated reader).
#[derive(Debug, Clone)]
pub struct RequestCodec {
    framer: Framer,
}

impl Default for RequestCodec {
    fn default() -> Self {
        Self {
            framer: Framer::new(Framing {
                min_standard: 5,
                min_advanced: 7,
                max_len: DEFAULT_MAX_FRAME_LEN,
            }),
        }
    }
}

impl RequestCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for RequestCodec {
    type Item = Decoded<Request>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.framer.next(buf, |com_adr, control, data, kind| {
            Some(Request {
                com_adr,
                control,
                data: data.to_vec(),
                kind,
            })
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None => Ok(self.framer.rest_at_eof(buf)),
        }
    }
}

/// Whether the inventory request asked for antenna numbers (MODE bit ANT): the answer's layout
/// depends on it and does not say so itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AntennaInfo {
    /// Data sets are `TR-TYPE DSFID UID`.
    NotRequested,
    /// Data sets are `FLAGS [TR-TYPE DSFID UID_LEN UID] [ANT_CNT (ANT_NR ANT_STATUS RSSI 4×res)…]`.
    Requested,
}

/// One antenna that saw a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AntennaRead {
    /// ANT_NR as the reader sent it (1 = first antenna).
    pub antenna: u8,
    /// ANT_STATUS: 0x00 OK, 0x83 RF communication error.
    pub status: u8,
    /// Received signal strength, reader units.
    pub rssi: u8,
}

/// One ISO 15693 tag in an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryTag {
    pub uid: TagUid,
    pub tr_type: u8,
    pub dsfid: u8,
    /// Empty when antenna information was not requested.
    pub antennas: Vec<AntennaRead>,
}

/// The tags of one inventory response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub status: Status,
    pub tags: Vec<InventoryTag>,
    /// Data sets of other transponder types, or with a UID that is not 8 bytes long, skipped.
    pub other_transponders: usize,
    /// Antenna records that came without a transponder (FLAGS bit 0 clear), skipped.
    pub antenna_only_records: usize,
}

impl Inventory {
    /// Whether this answer completes an inventory: status OK or "no transponder". After 0x94
    /// (more data) the rest follows in further answers; an RF error or warning may have missed
    /// tags, so such an answer shows presence but proves no absence.
    pub fn is_complete(&self) -> bool {
        matches!(self.status, Status::Ok | Status::NoTransponder)
    }

    /// UIDs per antenna; a tag without antenna records counts for `default_antenna`.
    pub fn per_antenna(&self, default_antenna: u8) -> BTreeMap<u8, Vec<TagUid>> {
        let mut out: BTreeMap<u8, BTreeSet<TagUid>> = BTreeMap::new();
        for tag in &self.tags {
            if tag.antennas.is_empty() {
                out.entry(default_antenna).or_default().insert(tag.uid);
            }
            for read in &tag.antennas {
                out.entry(read.antenna).or_default().insert(tag.uid);
            }
        }
        out.into_iter()
            .map(|(antenna, uids)| (antenna, uids.into_iter().collect()))
            .collect()
    }
}

/// A cursor over inventory data that never indexes out of bounds.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, FeigError> {
        let b = *self
            .data
            .get(self.at)
            .ok_or(FeigError::Truncated { at: self.at })?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FeigError> {
        let bytes = self
            .data
            .get(self.at..self.at + n)
            .ok_or(FeigError::Truncated { at: self.at })?;
        self.at += n;
        Ok(bytes)
    }
}

/// Reads one transponder's data (after TR-TYPE); returns `(dsfid, uid bytes)`.
fn transponder(
    c: &mut Cursor<'_>,
    tr_type: u8,
    info: AntennaInfo,
) -> Result<(u8, Option<TagUid>), FeigError> {
    match tr_type {
        // I-Code 1, Tag-it HF and ISO 15693: DSFID then the UID (FEIG SDK FEDM_ISOTabItem).
        0x00 | 0x01 | TR_TYPE_ISO15693 => {
            let dsfid = c.byte()?;
            let len = match info {
                AntennaInfo::NotRequested => 8,
                AntennaInfo::Requested => usize::from(c.byte()?),
            };
            let uid = c.take(len)?;
            let uid = <[u8; 8]>::try_from(uid).ok().map(TagUid);
            Ok((dsfid, uid))
        }
        // ISO 14443-A: TR-INFO, OPT-INFO, then a 10-byte or 7-byte UID (TR-INFO bit 2).
        0x04 => {
            let tr_info = c.byte()?;
            c.byte()?;
            c.take(if tr_info & 0x04 != 0 { 10 } else { 7 })?;
            Ok((0, None))
        }
        // ISO 14443-B: PROTO-INFO, then 8 bytes.
        0x05 => {
            c.byte()?;
            c.take(8)?;
            Ok((0, None))
        }
        // I-Code UID and EPC: with antenna information they carry DSFID and a length.
        0x06 | 0x07 if info == AntennaInfo::Requested => {
            c.byte()?;
            let len = usize::from(c.byte()?);
            c.take(len)?;
            Ok((0, None))
        }
        tr_type => Err(FeigError::UnsupportedTransponder { tr_type }),
    }
}

/// Reads the tags out of an `[0xB0][0x01]` Inventory response.
///
/// Status 0x01 gives an empty inventory. A status that carries no data (see
/// [`Status::carries_data`]) is an error, so an error is never mistaken for an empty field.
pub fn parse_inventory(response: &Response, info: AntennaInfo) -> Result<Inventory, FeigError> {
    if response.control != CMD_ISO_HOST {
        return Err(FeigError::NotIsoHost {
            control: response.control,
        });
    }
    if !response.status.carries_data() {
        return Err(FeigError::ReaderStatus(response.status));
    }
    let mut inventory = Inventory {
        status: response.status,
        tags: Vec::new(),
        other_transponders: 0,
        antenna_only_records: 0,
    };
    if response.data.is_empty() {
        return Ok(inventory);
    }
    let mut c = Cursor {
        data: &response.data,
        at: 0,
    };
    let sets = c.byte()?;
    for _ in 0..sets {
        match info {
            AntennaInfo::NotRequested => {
                let tr_type = c.byte()?;
                match transponder(&mut c, tr_type, info)? {
                    (dsfid, Some(uid)) => inventory.tags.push(InventoryTag {
                        uid,
                        tr_type,
                        dsfid,
                        antennas: Vec::new(),
                    }),
                    (_, None) => inventory.other_transponders += 1,
                }
            }
            AntennaInfo::Requested => {
                let flags = c.byte()?;
                if flags & FLAG_TAG == 0 {
                    // Antenna information without a transponder: one record, no count (FEIG
                    // SDK). It names no tag, so it cannot place one.
                    if flags & FLAG_ANT != 0 {
                        c.take(ANT_RECORD_LEN)?;
                        inventory.antenna_only_records += 1;
                    }
                    continue;
                }
                let tr_type = c.byte()?;
                let (dsfid, uid) = transponder(&mut c, tr_type, info)?;
                let mut antennas = Vec::new();
                if flags & FLAG_ANT != 0 {
                    let count = c.byte()?;
                    for _ in 0..count {
                        let record = c.take(ANT_RECORD_LEN)?;
                        if let [antenna, status, rssi, ..] = *record {
                            antennas.push(AntennaRead {
                                antenna,
                                status,
                                rssi,
                            });
                        }
                    }
                }
                match uid {
                    Some(uid) => inventory.tags.push(InventoryTag {
                        uid,
                        tr_type,
                        dsfid,
                        antennas,
                    }),
                    None => inventory.other_transponders += 1,
                }
            }
        }
    }
    let rest = response.data.len().saturating_sub(c.at);
    if rest > 0 {
        return Err(FeigError::TrailingBytes { count: rest });
    }
    Ok(inventory)
}

/// Encodes inventory data sets (the simulator's half of [`parse_inventory`]).
fn inventory_data_set(uid: &TagUid, antennas: &[u8], info: AntennaInfo) -> Vec<u8> {
    match info {
        AntennaInfo::NotRequested => {
            let mut set = vec![TR_TYPE_ISO15693, 0x00];
            set.extend_from_slice(&uid.0);
            set
        }
        AntennaInfo::Requested => {
            let mut set = vec![FLAG_TAG | FLAG_ANT, TR_TYPE_ISO15693, 0x00, 8];
            set.extend_from_slice(&uid.0);
            set.push(u8::try_from(antennas.len()).unwrap_or(u8::MAX));
            for &antenna in antennas.iter().take(usize::from(u8::MAX)) {
                // ANT_NR, ANT_STATUS OK, a plausible RSSI, 4 reserved bytes.
                set.extend_from_slice(&[antenna, 0x00, 0x40, 0, 0, 0, 0]);
            }
            set
        }
    }
}

/// A FEIG reader without the hardware: answers inventory requests from the tags placed on its
/// antennas, with real frames. Sans-IO: feed it request bytes, write back what it returns.
/// `croupier simulate rfid --feig` drives it on a pseudo-terminal.
#[derive(Debug, Clone)]
pub struct SimulatedReader {
    com_adr: u8,
    tags: BTreeMap<u8, BTreeSet<TagUid>>,
    max_data_sets: usize,
    /// The rest of an inventory after a 0x94 answer: (antenna info, data sets).
    pending: Option<(AntennaInfo, VecDeque<Vec<u8>>)>,
    injected: VecDeque<Status>,
}

impl SimulatedReader {
    /// A reader with bus address `com_adr` and no tags.
    pub fn new(com_adr: u8) -> Self {
        Self {
            com_adr,
            tags: BTreeMap::new(),
            max_data_sets: usize::from(u8::MAX),
            pending: None,
            injected: VecDeque::new(),
        }
    }

    /// At most `n` data sets per answer (at least 1); more are sent in parts with status 0x94,
    /// as a reader with a small buffer does.
    pub fn with_max_data_sets(mut self, n: u8) -> Self {
        self.max_data_sets = usize::from(n.max(1));
        self
    }

    pub fn com_adr(&self) -> u8 {
        self.com_adr
    }

    /// Puts a tag on antenna `antenna` (1–8).
    pub fn place(&mut self, antenna: u8, uid: TagUid) {
        self.tags.entry(antenna).or_default().insert(uid);
    }

    /// Takes a tag off antenna `antenna`.
    pub fn remove(&mut self, antenna: u8, uid: &TagUid) {
        if let Some(set) = self.tags.get_mut(&antenna) {
            set.remove(uid);
        }
    }

    /// Replaces the tags on antenna `antenna`.
    pub fn set_tags(&mut self, antenna: u8, uids: impl IntoIterator<Item = TagUid>) {
        self.tags.insert(antenna, uids.into_iter().collect());
    }

    /// The tags on each antenna.
    pub fn tags(&self) -> &BTreeMap<u8, BTreeSet<TagUid>> {
        &self.tags
    }

    /// The next answer carries `status` and no data (an RF error, say), whatever was asked.
    pub fn inject_status(&mut self, status: Status) {
        self.injected.push_back(status);
    }

    /// Answers one whole request frame. Empty when a real reader would stay silent: a bad CRC,
    /// or a frame for another bus address.
    pub fn respond(&mut self, request_bytes: &[u8]) -> Vec<u8> {
        let mut buf = BytesMut::from(request_bytes);
        match RequestCodec::new().decode(&mut buf) {
            Ok(Some(Decoded::Frame { frame, .. })) if buf.is_empty() => self.respond_to(&frame),
            _ => Vec::new(),
        }
    }

    /// Answers a decoded request.
    pub fn respond_to(&mut self, request: &Request) -> Vec<u8> {
        if request.com_adr != self.com_adr && request.com_adr != BROADCAST_ADR {
            return Vec::new();
        }
        let (status, data) = self.answer(request);
        encode_response(request.kind, self.com_adr, request.control, status, &data)
            .unwrap_or_default()
    }

    fn answer(&mut self, request: &Request) -> (Status, Vec<u8>) {
        if let Some(status) = self.injected.pop_front() {
            return (status, Vec::new());
        }
        if request.control != CMD_ISO_HOST {
            return (Status::UnknownCommand, Vec::new());
        }
        let [ISO_INVENTORY, mode, rest @ ..] = request.data.as_slice() else {
            return (Status::UnknownCommand, Vec::new());
        };
        let (info, selection) = if mode & MODE_ANT != 0 {
            match rest {
                [sel] => (AntennaInfo::Requested, *sel),
                _ => return (Status::LengthError, Vec::new()),
            }
        } else if rest.is_empty() {
            (AntennaInfo::NotRequested, 0)
        } else {
            return (Status::LengthError, Vec::new());
        };
        let more = mode & MODE_MORE != 0;
        let pending = match self.pending.take() {
            Some((pending_info, sets)) if more && pending_info == info => sets,
            _ => self.inventory(info, selection),
        };
        self.page(info, pending)
    }

    /// Every data set of a fresh inventory.
    fn inventory(&self, info: AntennaInfo, selection: u8) -> VecDeque<Vec<u8>> {
        // Which antennas saw each tag; without selection the reader reads all its antennas.
        let mut seen: BTreeMap<TagUid, Vec<u8>> = BTreeMap::new();
        for (&antenna, uids) in &self.tags {
            let selected = match info {
                AntennaInfo::NotRequested => true,
                AntennaInfo::Requested => {
                    (1..=8).contains(&antenna) && selection & (1 << (antenna - 1)) != 0
                }
            };
            if selected {
                for uid in uids {
                    seen.entry(*uid).or_default().push(antenna);
                }
            }
        }
        seen.iter()
            .map(|(uid, antennas)| inventory_data_set(uid, antennas, info))
            .collect()
    }

    /// One answer's worth of data sets; the rest waits for a MORE request.
    fn page(&mut self, info: AntennaInfo, mut sets: VecDeque<Vec<u8>>) -> (Status, Vec<u8>) {
        if sets.is_empty() {
            return (Status::NoTransponder, Vec::new());
        }
        let n = sets.len().min(self.max_data_sets);
        let mut data = vec![u8::try_from(n).unwrap_or(u8::MAX)];
        for set in sets.drain(..n) {
            data.extend_from_slice(&set);
        }
        if sets.is_empty() {
            (Status::Ok, data)
        } else {
            self.pending = Some((info, sets));
            (Status::MoreData, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x6F91);
    }

    #[test]
    fn status_bytes_round_trip() {
        for b in 0..=u8::MAX {
            assert_eq!(Status::from_byte(b).byte(), b);
        }
    }
}
