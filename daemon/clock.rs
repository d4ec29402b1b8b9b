//! Wall-clock formatting shared by health, status and MQTT payloads.
//!
//! The time model (UTC with sync quality, monotonic time, SMPTE timecode per event) grows here
//! with the engine; for now it formats instants the one way every payload writes them.

use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 UTC with microseconds, like `2026-11-21T14:23:12.000123Z`.
pub fn format_utc(at: SystemTime) -> String {
    let dt = OffsetDateTime::from(at);
    let micros = dt.microsecond();
    let whole = dt.replace_nanosecond(0).unwrap_or(dt);
    match whole.format(&Rfc3339) {
        Ok(s) => format!("{}.{micros:06}Z", s.trim_end_matches('Z')),
        Err(_) => String::from("1970-01-01T00:00:00.000000Z"),
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock a step of the wall clock cannot move, used for
/// deadlines and for systemd's `MONOTONIC_USEC`.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| (ts.tv_sec() as u64).saturating_mul(1_000_000_000) + ts.tv_nsec() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_with_microseconds() {
        let at = UNIX_EPOCH + Duration::from_micros(1_795_270_992_000_123);
        assert_eq!(format_utc(at), "2026-11-21T14:23:12.000123Z");
    }
}
