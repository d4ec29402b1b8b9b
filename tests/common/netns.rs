//! A throw-away network namespace joined to the root namespace by a veth pair, for running the
//! headless Chromium viewer against the daemon over a real interface.
//!
//! Why not loopback: libnice (the daemon's ICE agent) gathers no loopback candidates, and
//! Chromium without camera permission gathers host candidates only on the interface that carries
//! its default route. So the viewer runs inside the namespace, whose default route points at the
//! host end of the veth, and the daemon (in the root namespace) must listen on `host_ip()` or on
//! `0.0.0.0`, not on 127.0.0.1.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and `ip` from iproute2. Std only, on purpose:
//! shelling out to `ip` is what a technician would type, and it keeps the test crate free of
//! netlink dependencies.
//!
//! Drop order matters: processes started with `command()` keep the namespace alive after `ip
//! netns del`, so declare the `NetNs` before the guards of those processes (locals drop in
//! reverse order) and the processes die first.

use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Per-process counter: cargo runs tests of one binary as threads, and each needs its own names.
static COUNTER: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
}

impl NetNs {
    /// Creates the namespace, the veth pair, the /30 addresses and the default route inside.
    /// On any failure, whatever was already made is removed again before the error returns.
    pub fn create() -> io::Result<NetNs> {
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("crp-{pid}-{n}");
        // Interface names are capped at 15 bytes (IFNAMSIZ); pids go up to 2^22, i.e. 6 hex digits.
        let host_if = format!("crh{pid:x}x{n}");
        let ns_if = format!("crn{pid:x}x{n}");
        if host_if.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {host_if} is longer than 15 bytes"),
            ));
        }
        let [a, b] = subnet_octets(pid, n)?;
        let host_ip = Ipv4Addr::new(10, a, b, 1);
        let ns_ip = Ipv4Addr::new(10, a, b, 2);

        ip(&["netns", "add", &name])?;
        // From here on, Drop undoes the work if a later step fails.
        let ns = NetNs {
            name,
            host_if,
            host_ip,
            ns_ip,
        };
        // Creating the peer directly inside the namespace avoids a window in which both ends
        // live in the root namespace (and a name clash with a concurrent test there).
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
            "netns",
            &ns.name,
        ])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        let inside = |args: &[&str]| {
            let mut full = vec!["netns", "exec", ns.name.as_str(), "ip"];
            full.extend_from_slice(args);
            ip(&full)
        };
        inside(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        inside(&["link", "set", &ns_if, "up"])?;
        // Chromium and GStreamer expect a working loopback even when they do not use it for media.
        inside(&["link", "set", "lo", "up"])?;
        inside(&["route", "add", "default", "via", &host_ip.to_string()])?;
        Ok(ns)
    }

    /// Address of the veth end in the root namespace; the daemon is reachable here.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// Address of the veth end inside the namespace; the viewer's ICE host candidate.
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec <name> <program>`);
    /// add its arguments with `.arg()` / `.args()` as usual.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end of a veth deletes both. Done before the namespace goes, because a
        // process still running inside would keep the namespace (and so the pair) alive.
        let _ = run_ip(&["link", "del", &self.host_if]);
        let _ = run_ip(&["netns", "del", &self.name]);
    }
}

/// Picks 10.<a>.<b>.0/30 for this pid and counter, skipping subnets already on an interface of
/// the root namespace (another test process, or the machine's own 10/8 network).
fn subnet_octets(pid: u32, n: u32) -> io::Result<[u8; 2]> {
    let used = String::from_utf8_lossy(&run_ip(&["-o", "-4", "addr", "show"])?.stdout).into_owned();
    for attempt in 0..64u64 {
        let h = mix((u64::from(pid) << 32) | (u64::from(n) << 8) | attempt);
        // Keep <a> away from 10.0.x.x and 10.255.x.x, the ranges most often taken by LANs and VPNs.
        let a = 16 + (h % 224) as u8;
        let b = (h >> 8) as u8;
        let prefix = format!(" 10.{a}.{b}.");
        if !used.contains(&prefix) {
            return Ok([a, b]);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free 10.x.y.0/30 subnet found",
    ))
}

/// splitmix64's finaliser: neighbouring pids and counters land on unrelated subnets.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn run_ip(args: &[&str]) -> io::Result<Output> {
    Command::new("ip").args(args).stdin(Stdio::null()).output()
}

/// Runs `ip`, turning a non-zero exit into an error that names the command and its stderr, so
/// a test failure says e.g. "Operation not permitted" instead of a bare status code.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = run_ip(args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
