//! The clock's synchronisation state, as the kernel's NTP discipline knows it (`adjtimex`).
//!
//! Every Croupier event says whether the box's clock was synchronised (by chrony or
//! systemd-timesyncd) and how far off it may be. The kernel keeps both: `adjtimex` with no
//! modes set only reads them, needs no privilege, and is what `chronyc`, `timedatectl` and
//! `ntptime` read too. No safe Rust crate wraps it, so this crate holds the workspace's only
//! `unsafe` block: one read-only system call on a zeroed struct. Everything else in Croupier
//! forbids unsafe code.

#![deny(unsafe_code)]

/// What the kernel says about the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    /// The clock is disciplined by a time source (not `TIME_ERROR`, `STA_UNSYNC` clear).
    pub synchronized: bool,
    /// The kernel's estimated error, microseconds.
    pub est_error_us: u64,
    /// The kernel's maximum error, microseconds.
    pub max_error_us: u64,
}

/// Reads the clock's synchronisation state. `None` if the call fails (it does not on Linux).
pub fn clock_sync() -> Option<ClockSync> {
    // SAFETY: `timex` is a plain C struct for which all-zero bytes are valid, and with
    // `modes == 0` adjtimex only fills it in; the pointer is to a live local value.
    #[allow(unsafe_code)]
    let (state, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&mut tx);
        (state, tx)
    };
    if state < 0 {
        return None;
    }
    let unsync = tx.status & libc::STA_UNSYNC != 0;
    Some(ClockSync {
        synchronized: state != libc::TIME_ERROR && !unsync,
        est_error_us: u64::try_from(tx.esterror).unwrap_or(0),
        max_error_us: u64::try_from(tx.maxerror).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_clock_state() {
        let sync = clock_sync().expect("adjtimex works on Linux");
        // Either state is fine on a test machine; the reading must be consistent.
        if sync.synchronized {
            assert!(sync.max_error_us < 16_000_000);
        }
    }
}
