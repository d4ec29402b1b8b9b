//! Test harness for the end-to-end tests: a real mosquitto on a loopback port, device
//! simulators on real pseudo-terminals (`croupier simulate`), and the daemon binary itself.
//! Every process is killed when its guard drops, so a failing test cleans up too.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
pub mod netns;

pub fn croupier() -> &'static str {
    env!("CARGO_BIN_EXE_croupier")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("send signal");
    }

    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(timeout, || self.child.try_wait().ok().flatten())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    /// SIGTERM first, so a daemon or a demo can stop what it started (a demo's broker), then
    /// SIGKILL if it is still there after a few seconds.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(self.pid(), Signal::SIGTERM);
            if self.wait_timeout(Duration::from_secs(3)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// A real mosquitto on 127.0.0.1:<port>.
pub struct Broker {
    pub port: u16,
    pub proc: Proc,
    _dir: tempfile::TempDir,
}

fn mosquitto_bin() -> PathBuf {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("mosquitto is not installed; `make test` installs it (scripts/install-deps.sh)")
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let broker = Broker {
            port,
            proc: Proc {
                child,
                name: "mosquitto",
            },
            _dir: dir,
        };
        wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("mosquitto did not start listening");
        broker
    }

    /// Waits for the next message on `topic` with mosquitto_sub.
    pub fn next_message(&self, topic: &str, timeout_s: u32) -> Option<String> {
        self.subscribe_once(topic, timeout_s, false)
    }

    /// Reads the retained message of `topic` with mosquitto_sub.
    pub fn retained(&self, topic: &str) -> Option<String> {
        self.subscribe_once(topic, 3, true)
    }

    fn subscribe_once(&self, topic: &str, timeout_s: u32, retained_only: bool) -> Option<String> {
        let port = self.port.to_string();
        let timeout = timeout_s.to_string();
        let mut args = vec![
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            &timeout,
        ];
        if retained_only {
            args.push("--retained-only");
        }
        let out = Command::new("mosquitto_sub").args(&args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

/// `croupier simulate <role> --link <path>` on a real pseudo-terminal.
pub fn simulator(role: &str, link: &Path, pace: f64) -> Proc {
    simulator_with(role, link, &["--pace", &pace.to_string()])
}

/// `croupier simulate <role> --link <path> <args…>`.
pub fn simulator_with(role: &str, link: &Path, args: &[&str]) -> Proc {
    let child = Command::new(croupier())
        .args(["simulate", role])
        .args(args)
        .arg("--link")
        .arg(link)
        .env("CROUPIER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn simulator");
    let proc = Proc {
        child,
        name: "simulator",
    };
    wait_for(Duration::from_secs(10), || {
        std::fs::symlink_metadata(link).ok()
    })
    .expect("simulator did not create its link");
    proc
}

/// A daemon under test, its stderr going to a file the test can read.
pub struct Daemon {
    pub proc: Proc,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let log = config.with_extension("log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(croupier());
        cmd.args(["run", "--config"])
            .arg(config)
            // A test may override it; an empty value leaves the config's [log] filter in force.
            .env("CROUPIER_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon {
            proc: Proc {
                child: cmd.spawn().expect("spawn croupier run"),
                name: "croupier",
            },
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A config for a test table: the given devices (role, driver, port) on a real broker.
pub fn table_config(broker_port: u16, http_port: u16, devices: &[(&str, &str, &Path)]) -> String {
    let mut text = format!(
        r#"[table]
studio = "test"
id = "t-01"
game = "roulette"

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keep_alive = "5s"
telemetry_interval = "1s"

[storage]
dir = "state"

[http]
listen = "127.0.0.1:{http_port}"

[daemon]
shutdown_timeout = "3s"
ready_timeout = "20s"
restart_backoff_min = "50ms"
restart_backoff_max = "500ms"
"#
    );
    for (role, driver, port) in devices {
        text.push_str(&format!(
            "\n[[device]]\nrole = \"{role}\"\ndriver = \"{driver}\"\nport = \"{}\"\n",
            port.display()
        ));
    }
    text
}

/// A plain HTTP/1.0 GET; returns (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// The state of one component on /status (`up`, `down`, …).
pub fn component_state(http_port: u16, name: &str) -> Option<String> {
    let (_, body) = http_get(http_port, "/status")?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["components"][name]["state"]
        .as_str()
        .map(str::to_owned)
}

/// A unix datagram socket standing in for systemd's NOTIFY_SOCKET; records what arrives.
pub struct NotifySocket {
    pub path: PathBuf,
    socket: UnixDatagram,
    pub received: Vec<(Instant, String)>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        NotifySocket {
            path,
            socket,
            received: Vec::new(),
        }
    }

    /// Reads datagrams until `until` returns true for one or `timeout` passes.
    pub fn read_until(
        &mut self,
        timeout: Duration,
        until: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.received.push((Instant::now(), msg.clone()));
                if until(&msg) {
                    return Some(msg);
                }
            }
        }
        None
    }
}

/// The observations a daemon logged (with `[log] format = "json"`), as (device, text), in order.
pub fn observations(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "observation")
        .map(|v| {
            (
                v["fields"]["device"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["fields"]["observation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// A table config with raw `[[device]]` blocks, JSON logs and fast reconnects.
pub fn config_with_devices(broker_port: u16, http_port: u16, devices: &str) -> String {
    format!(
        r#"[table]
studio = "test"
id = "t-01"
game = "roulette"

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"

[storage]
dir = "state"

[http]
listen = "127.0.0.1:{http_port}"

[log]
format = "json"

[daemon]
shutdown_timeout = "3s"
ready_timeout = "20s"
restart_backoff_min = "50ms"
restart_backoff_max = "300ms"
{devices}"#
    )
}

/// The events of a table's event log (`state/events/events.jsonl`), skipping a line being
/// written.
pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Renders a synthetic vision set with `tests/vision/synth.py` (seeded, so the same every
/// run) into `out`; `args` are synth.py's other options (`--decks`, `--scenes`, …).
pub fn synth(seed: u64, out: &Path, args: &[&str]) {
    let run = Command::new("/usr/bin/python3")
        .args([
            "tests/vision/synth.py",
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(out)
        .args(args)
        .output()
        .expect("run synth.py (python3-opencv, librsvg2-bin, kdegames-card-data-kf5)");
    assert!(
        run.status.success(),
        "synth.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `croupier demo ARGS` as a terminal starts it, logging warnings only (stderr dropped), its
/// stdout (the banner) where `stdout` says.
pub fn spawn_demo<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
    stdout: Stdio,
) -> Proc {
    let child = Command::new(croupier())
        .arg("demo")
        .args(args)
        .env("CROUPIER_LOG", "warn")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    Proc {
        child,
        name: "demo",
    }
}
