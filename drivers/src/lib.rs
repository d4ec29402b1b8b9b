//! # croupier-drivers
//!
//! The device side of Croupier: everything that talks to the hardware under a table.
//!
//! A live-dealer table has up to four kinds of serial devices, each with a [`DeviceRole`]:
//!
//! | role    | device                                   | what it sends                                   |
//! | ------- | ---------------------------------------- | ----------------------------------------------- |
//! | `wheel` | roulette wheel controller (Cammegh-style) | `*X;5;042;17;0;027;1\r\n` status frames, 9600 8N1 |
//! | `shoe`  | card shoe / card barcode reader           | one card per line: `KH\r\n`, `TD\r\n`            |
//! | `rfid`  | ISO 15693 RFID reader in ASCII mode       | one tag UID per line: `E00401501234ABCD\r\n`     |
//! | `pedal` | dealer foot pedal (USB-serial switch)     | one byte `P` per press                           |
//!
//! This crate holds:
//!
//! * [`pty`]: pseudo-terminal pairs. A simulator writes into the *master* side; the daemon opens
//!   the *slave* side (for example `/dev/pts/7`) exactly like a real serial port such as
//!   `/dev/ttyUSB0`, so the daemon's serial code is exercised for real, not mocked.
//! * [`simulator`]: device simulators that speak each device's real framing on a PTY. A
//!   technician can run one (`croupier simulate wheel --link /tmp/croupier/wheel`) and point a
//!   table's config at the link, or watch it with `picocom -b 9600 /tmp/croupier/wheel`, to check
//!   the daemon, the prompter and the uplink without a wheel on the bench.
//!
//! The byte sequences the simulators send are produced by a pure [`simulator::Script`] (no I/O),
//! so they are unit-tested without any terminal; the async part only sleeps and writes.

#![forbid(unsafe_code)]

pub mod cards;
pub mod evdev;
pub mod feig;
pub mod gpio;
pub mod model;
pub mod pedal;
pub mod pty;
pub mod rfid;
pub mod runner;
pub mod scenario;
pub mod simulator;
pub mod wheel;

use std::fmt;
use std::str::FromStr;

/// What a serial device does at the table. The lowercase names (`"wheel"`, `"shoe"`, `"rfid"`,
/// `"pedal"`) are the contract used by the config file (`[[device]] role = "wheel"`) and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceRole {
    /// Roulette wheel controller: game state, winning number, rotor speed and direction.
    Wheel,
    /// Card shoe or card reader: one card per line as it is dealt.
    Shoe,
    /// RFID reader: tag UIDs of cards, chips or zones.
    Rfid,
    /// Dealer foot pedal: one byte per press.
    Pedal,
}

impl DeviceRole {
    /// Every role, in a stable order (wheel, shoe, rfid, pedal).
    pub const ALL: [DeviceRole; 4] = [
        DeviceRole::Wheel,
        DeviceRole::Shoe,
        DeviceRole::Rfid,
        DeviceRole::Pedal,
    ];

    /// The lowercase name used in config files, on the command line and in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Wheel => "wheel",
            DeviceRole::Shoe => "shoe",
            DeviceRole::Rfid => "rfid",
            DeviceRole::Pedal => "pedal",
        }
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device role name that is not one of `wheel`, `shoe`, `rfid`, `pedal`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device role {given:?}: use one of wheel, shoe, rfid, pedal")]
pub struct UnknownRole {
    /// The text that was given.
    pub given: String,
}

impl FromStr for DeviceRole {
    type Err = UnknownRole;

    /// Parses a role name. Surrounding whitespace and ASCII case are ignored (`"Wheel"` is
    /// `wheel`); [`fmt::Display`] always writes the lowercase name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        DeviceRole::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownRole {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in DeviceRole::ALL {
            assert_eq!(role.to_string(), role.as_str());
            assert_eq!(role.as_str().parse::<DeviceRole>(), Ok(role));
        }
        assert_eq!(" Wheel ".parse::<DeviceRole>(), Ok(DeviceRole::Wheel));
        assert_eq!("RFID".parse::<DeviceRole>(), Ok(DeviceRole::Rfid));
    }

    #[test]
    fn unknown_role_names_the_choices() {
        let err = "roulette"
            .parse::<DeviceRole>()
            .expect_err("roulette is not a role");
        assert_eq!(err.given, "roulette");
        assert!(err.to_string().contains("wheel, shoe, rfid, pedal"));
    }
}
