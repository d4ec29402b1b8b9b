//! systemd's notify protocol: READY, STATUS, WATCHDOG, RELOADING and STOPPING datagrams.
//!
//! Under `Type=notify` systemd waits for READY=1 before it calls the service started, kills it
//! if WATCHDOG=1 stops arriving, and shows STATUS= in `systemctl status`. Outside systemd
//! `NOTIFY_SOCKET` is unset and every call here does nothing, so the daemon runs unchanged.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to systemd's notify socket, or nothing when not under systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> io::Result<Self> {
        let target = match std::env::var_os("NOTIFY_SOCKET") {
            None => None,
            Some(path) => {
                let path = path.to_string_lossy().into_owned();
                // A leading '@' names a socket in the abstract namespace.
                let addr = match path.strip_prefix('@') {
                    Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
                    None => SocketAddr::from_pathname(&path)?,
                };
                Some((UnixDatagram::unbound()?, addr))
            }
        };
        Ok(Self {
            target,
            watchdog: watchdog_interval_from_env(),
        })
    }

    /// A notifier that sends nothing (tests, `croupier demo` without systemd).
    pub fn disabled() -> Self {
        Self {
            target: None,
            watchdog: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send WATCHDOG=1: half of `WATCHDOG_USEC`, as sd_watchdog_enabled advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (several `KEY=value` lines joined by newlines).
    pub fn notify(&self, state: &str) -> io::Result<()> {
        match &self.target {
            None => Ok(()),
            Some((socket, addr)) => socket.send_to_addr(state.as_bytes(), addr).map(|_| ()),
        }
    }

    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    pub fn status(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("STATUS={}", one_line(status)))
    }

    pub fn watchdog(&self) -> io::Result<()> {
        self.notify("WATCHDOG=1")
    }

    pub fn reloading(&self) -> io::Result<()> {
        let now = crate::clock::monotonic_ns() / 1_000;
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={now}"))
    }

    pub fn stopping(&self) -> io::Result<()> {
        self.notify("STOPPING=1\nSTATUS=stopping")
    }
}

fn watchdog_interval_from_env() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    // WATCHDOG_PID says which process the watchdog is meant for; a child that inherited the
    // environment must not answer for its parent.
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// STATUS= is one line; newlines would start a new assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_bound_socket() {
        let dir = std::env::temp_dir().join(format!("croupier-sdn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            target: Some((
                UnixDatagram::unbound().expect("socket"),
                SocketAddr::from_pathname(&path).expect("addr"),
            )),
            watchdog: None,
        };
        n.ready("3 devices up\nuplink connected").expect("send");
        let mut buf = [0u8; 256];
        let len = listener.recv(&mut buf).expect("recv");
        assert_eq!(
            std::str::from_utf8(&buf[..len]).expect("utf8"),
            "READY=1\nSTATUS=3 devices up uplink connected"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn disabled_sends_nothing() {
        assert!(Notifier::disabled().ready("x").is_ok());
        assert!(!Notifier::disabled().is_enabled());
    }
}
