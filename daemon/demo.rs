//! `croupier demo`: a whole simulated table on this machine.
//!
//! A local mosquitto on a free loopback port, a simulator for each device on its own
//! pseudo-terminal (speaking the real framing), a config written for them, and the daemon
//! itself, run exactly as `croupier run` runs it. Everything is torn down on Ctrl-C.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use croupier_drivers::scenario::{Action, Timed};
use croupier_drivers::simulator::{Script, Simulator, SimulatorOptions, Source};
use croupier_drivers::wheel::{Direction, WarningFlags, WheelEvent, WheelState};
use croupier_drivers::DeviceRole;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::DemoArgs;
use crate::config;
use crate::daemon::{self, RunOptions};
use crate::logging;
use crate::sdnotify::Notifier;

/// Errors setting up the demo, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("mosquitto is not installed (looked in PATH, /usr/sbin and /sbin)\n  fix: run `make demo`, which installs it, or `sudo apt-get install mosquitto`")]
    NoBroker,
    #[error("cannot start mosquitto: {0}")]
    BrokerStart(#[source] std::io::Error),
    #[error("mosquitto did not accept connections on 127.0.0.1:{port} within 5 s; see {log}")]
    BrokerNotListening { port: u16, log: String },
    #[error("cannot prepare the demo directory {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the {role} simulator: {source}")]
    Simulator {
        role: DeviceRole,
        #[source]
        source: croupier_drivers::simulator::SimulatorError,
    },
    #[error("`{0}` is not an address and port; write it like 127.0.0.1:8080")]
    BadListen(String),
    #[error("the demo's own config was refused (a bug):\n{0}")]
    Config(#[source] config::ConfigError),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error(transparent)]
    Vision(#[from] crate::demo_table::DemoTableError),
}

pub async fn run(args: DemoArgs) -> ExitCode {
    let _ = logging::init_simple("info");
    match run_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("croupier demo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A directory that is removed on drop unless the user chose it.
struct DemoDir {
    path: PathBuf,
    remove: bool,
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn run_inner(args: DemoArgs) -> Result<(), DemoError> {
    let dir = match &args.dir {
        Some(d) => DemoDir {
            path: d.clone(),
            remove: false,
        },
        None => DemoDir {
            path: std::env::temp_dir().join(format!("croupier-demo-{}", std::process::id())),
            remove: true,
        },
    };
    let dir_err = |source| DemoError::Dir {
        path: dir.path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir.path.join("dev")).map_err(dir_err)?;
    let dir_path = std::fs::canonicalize(&dir.path).map_err(dir_err)?;

    let http = pick_http(&args.http)?;
    let (mut broker, broker_port) = start_broker(&dir_path).await?;

    let stop = CancellationToken::new();
    // The simulators outlive the daemon's stop, so the daemon never sees its devices vanish
    // while it shuts down.
    let sims_stop = CancellationToken::new();
    let mut sims = Vec::new();
    let mut links = Vec::new();
    for (i, role) in DeviceRole::ALL.into_iter().enumerate() {
        let opts = SimulatorOptions {
            link: Some(dir_path.join("dev").join(role.as_str())),
            pace: args.pace,
            seed: 1 + i as u64,
            // The RFID reader is a two-antenna FEIG reader, polled like the real one.
            feig_antennas: (role == DeviceRole::Rfid).then_some(2),
            ..SimulatorOptions::default()
        };
        let source = demo_source(&args.game, role, 1 + i as u64, args.pace);
        let opts = SimulatorOptions {
            // A demo script loops for ever; the built-in rounds do anyway.
            rounds: matches!(source, Source::Script(_)).then_some(u32::MAX),
            ..opts
        };
        let sim = Simulator::start_with(role, opts, source)
            .map_err(|source| DemoError::Simulator { role, source })?;
        links.push((
            role,
            sim.port_path().to_owned(),
            sim.slave_path().to_owned(),
        ));
        let token = sims_stop.child_token();
        sims.push(tokio::spawn(async move {
            if let Err(err) = sim.run(token).await {
                warn!(role = %role, error = %err, "simulator stopped with an error");
            }
        }));
    }

    // The card camera, the vision stage and the orchestrator that voids a held round.
    let vision = match (&args.vision_kit, args.game.as_str()) {
        (Some(kit), "baccarat") => {
            let (table, vision) = crate::demo_table::prepare(kit, &dir_path)?;
            write_demo_key(&dir_path).map_err(dir_err)?;
            Some((table, vision))
        }
        (Some(_), game) => {
            warn!(
                game,
                "the vision kit is used with --game baccarat only; playing without it"
            );
            None
        }
        (None, _) => None,
    };
    let config_path = dir_path.join("table.toml");
    let mut config_text = demo_config(&args.game, broker_port, http, args.pace);
    if let Some((_, v)) = &vision {
        config_text.push_str(&vision_config(v));
    }
    std::fs::write(&config_path, config_text).map_err(dir_err)?;
    let loaded = config::load(&config_path).map_err(DemoError::Config)?;
    if let Some((table, _)) = vision {
        let orchestrator = crate::demo_table::DemoOrchestrator {
            broker_port,
            topic: format!(
                "{}/cmd",
                config::MqttConfig::topic_prefix(&loaded.config.table)
            ),
            table: format!("{}/{}", loaded.config.table.studio, loaded.config.table.id),
            keys: dir_path.join("keys"),
            key_id: DEMO_KEY.into(),
        };
        tokio::spawn(crate::demo_table::follow(
            table,
            loaded.config.storage.dir.join("events/events.jsonl"),
            orchestrator,
            stop.clone(),
        ));
    }

    print_banner(&loaded.config, &config_path, broker_port, &links);

    if let Some(secs) = args.duration {
        let timer = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            info!(after_s = secs, "demo duration reached");
            timer.cancel();
        });
    }
    let result = daemon::run(
        loaded.config,
        RunOptions {
            config_path,
            notifier: Notifier::disabled(),
            stop: stop.clone(),
            log: None,
        },
    )
    .await;

    sims_stop.cancel();
    for sim in sims {
        let _ = tokio::time::timeout(Duration::from_secs(3), sim).await;
    }
    let _ = broker.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(3), broker.wait()).await;
    // stdout may be a closed pipe by now (`croupier demo | head`); that is no failure.
    let _ = writeln!(std::io::stdout(), "demo stopped");
    result.map_err(DemoError::from)
}

/// Length of one demo round: the pedal opens betting at its start.
const ROUND: Duration = Duration::from_secs(30);
/// Demo rounds scripted ahead (they loop).
const SCRIPTED_ROUNDS: u32 = 200;

/// The simulators of the game being played follow one timeline, so the demo plays whole
/// rounds: the pedal opens betting, the 15 s window closes on the daemon's clock, then the
/// ball drops (roulette) or the coup is dealt (baccarat). The other devices play their
/// built-in rounds.
fn demo_source(game: &str, role: DeviceRole, seed: u64, pace: f64) -> Source {
    let ms = Duration::from_millis;
    // The first round starts two real seconds in: the simulators start before the daemon opens
    // their pseudo-terminals, and a pedal press nobody reads would lose the first round.
    let lead = Duration::from_secs_f64(2.0 * pace.clamp(0.01, 100.0));
    let mut steps: Vec<Timed> = Vec::new();
    // Each step's delay is from the previous step; `at` tracks the absolute time in a round.
    let push = |steps: &mut Vec<Timed>, last: &mut Duration, at: Duration, bytes: Vec<u8>| {
        steps.push(Timed {
            delay: at.saturating_sub(*last),
            action: Action::Write(bytes),
        });
        *last = at;
    };
    match (game, role) {
        ("roulette" | "baccarat", DeviceRole::Pedal) => {
            let mut last = Duration::ZERO;
            for round in 0..SCRIPTED_ROUNDS {
                let start = lead + ROUND * round + ms(500);
                push(
                    &mut steps,
                    &mut last,
                    start,
                    croupier_drivers::simulator::PEDAL_PRESS.to_vec(),
                );
            }
        }
        ("roulette", DeviceRole::Wheel) => {
            let mut last = Duration::ZERO;
            let mut numbers = Script::new(DeviceRole::Wheel, seed);
            for round in 0..SCRIPTED_ROUNDS {
                let start = lead + ROUND * round + ms(500);
                // The built-in wheel script's own winning number for this spin.
                let number = numbers
                    .next_round()
                    .last()
                    .and_then(|s| {
                        std::str::from_utf8(&s.bytes)
                            .ok()
                            .and_then(|t| t.get(12..14))
                            .and_then(|n| n.parse::<u8>().ok())
                    })
                    .unwrap_or(0);
                let spin = u16::try_from(round % 1000).unwrap_or(0);
                let frame = |state, number| {
                    WheelEvent::Status {
                        state,
                        spin_count: spin,
                        number,
                        warnings: WarningFlags::default(),
                        rotor_speed: 27,
                        direction: if round % 2 == 0 {
                            Direction::Clockwise
                        } else {
                            Direction::CounterClockwise
                        },
                    }
                    .encode()
                };
                push(
                    &mut steps,
                    &mut last,
                    start + ms(200),
                    frame(WheelState::GameStart, 0),
                );
                for s in 1..=14u64 {
                    push(
                        &mut steps,
                        &mut last,
                        start + Duration::from_secs(s),
                        frame(WheelState::PlaceBets, 0),
                    );
                }
                push(
                    &mut steps,
                    &mut last,
                    start + ms(15_500),
                    frame(WheelState::BallInRim, 0),
                );
                push(
                    &mut steps,
                    &mut last,
                    start + ms(19_000),
                    frame(WheelState::NoMoreBets, 0),
                );
                push(
                    &mut steps,
                    &mut last,
                    start + ms(24_000),
                    frame(WheelState::WinningNumber, number),
                );
            }
        }
        ("baccarat", DeviceRole::Shoe) => {
            let mut last = Duration::ZERO;
            let mut coups = Script::new(DeviceRole::Shoe, seed);
            for round in 0..SCRIPTED_ROUNDS {
                let start = lead + ROUND * round + ms(500);
                for (i, card) in coups.next_round().into_iter().enumerate() {
                    push(
                        &mut steps,
                        &mut last,
                        start + ms(17_000) + Duration::from_secs(i as u64),
                        card.bytes,
                    );
                }
            }
        }
        _ => return Source::Builtin { faults: None },
    }
    Source::Script(steps)
}

/// Uses the asked-for address if it is free, else any free port on loopback, so a second demo
/// or a busy 8080 does not stop the table from starting.
fn pick_http(wanted: &str) -> Result<SocketAddr, DemoError> {
    let addr: SocketAddr = wanted
        .parse()
        .map_err(|_| DemoError::BadListen(wanted.to_owned()))?;
    if TcpListener::bind(addr).is_ok() {
        return Ok(addr);
    }
    let fallback = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or(addr);
    warn!(wanted = %addr, using = %fallback, "HTTP address busy; using another port");
    Ok(fallback)
}

fn find_mosquitto() -> Option<PathBuf> {
    find_program("mosquitto")
}

/// A program on the PATH, or in the system directories a user's PATH often lacks.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/sbin"),
            PathBuf::from("/usr/bin"),
        ])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// How the demo's broker is started so that it dies with the demo. A demo stopped with Ctrl-C
/// stops its broker itself; one killed outright (SIGKILL, a closed terminal's group) cannot,
/// so the kernel is asked to kill the broker when the demo goes: util-linux's `setpriv
/// --pdeathsig` (on every Debian) sets that and runs mosquitto. A change of user clears it,
/// and mosquitto started as root switches to its own user, so as root setpriv makes that
/// switch first (to the `mosquitto` user the Debian package creates). The signal follows the
/// thread that started the broker: a runtime worker, which lives as long as the demo. Without
/// setpriv (or, as root, without that user, or `as_its_user` false) the broker is started
/// plainly.
fn broker_command(mosquitto: &Path, as_its_user: bool) -> Command {
    let Some(setpriv) = find_program("setpriv") else {
        return Command::new(mosquitto);
    };
    let mut command = Command::new(setpriv);
    if nix::unistd::geteuid().is_root() {
        if !as_its_user {
            return Command::new(mosquitto);
        }
        match nix::unistd::User::from_name("mosquitto") {
            Ok(Some(user)) => {
                command
                    .arg(format!("--reuid={}", user.uid))
                    .arg(format!("--regid={}", user.gid))
                    .arg("--clear-groups");
            }
            _ => return Command::new(mosquitto),
        }
    }
    command.args(["--pdeathsig", "KILL", "--"]).arg(mosquitto);
    command
}

async fn start_broker(dir: &Path) -> Result<(Child, u16), DemoError> {
    let bin = find_mosquitto().ok_or(DemoError::NoBroker)?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(DemoError::BrokerStart)?;
    let conf = dir.join("mosquitto.conf");
    let log = dir.join("mosquitto.log");
    // The broker logs to its stderr, a file the demo opens: it may run as another user, who
    // could not create files in the demo's directory.
    let text = format!(
        "# Written by croupier demo: a throwaway broker on loopback.\n\
         listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
         log_dest stderr\n"
    );
    std::fs::write(&conf, text).map_err(DemoError::BrokerStart)?;
    let spawn = |as_its_user: bool| -> Result<Child, DemoError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(DemoError::BrokerStart)?;
        broker_command(&bin, as_its_user)
            .arg("-c")
            .arg(&conf)
            // Debian builds mosquitto with systemd support: it must not answer our
            // NOTIFY_SOCKET.
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(DemoError::BrokerStart)
    };
    let mut as_its_user = true;
    let mut child = spawn(as_its_user)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        // As its own user the broker cannot read a `--dir` it may not enter: then it runs
        // as the demo's user (and a demo killed outright may leave it behind).
        if as_its_user && matches!(child.try_wait(), Ok(Some(_))) {
            warn!(
                log = %log.display(),
                "the demo broker could not start as the mosquitto user; starting it as this one"
            );
            as_its_user = false;
            child = spawn(as_its_user)?;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DemoError::BrokerNotListening {
                port,
                log: log.display().to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    info!(port, "demo broker up");
    Ok((child, port))
}

fn demo_config(game: &str, broker_port: u16, http: SocketAddr, pace: f64) -> String {
    // The bet window runs on the daemon's own clock, which --pace does not speed up; shorten
    // it with the pace (within the 5–60 s the config allows) so a fast demo still plays whole
    // rounds.
    let bet_window_ms = (15_000.0 / pace.max(0.01)).clamp(5_000.0, 60_000.0) as u64;
    let table_id = match game {
        "baccarat" => "bc-demo",
        "blackjack" => "bj-demo",
        _ => "rl-demo",
    };
    format!(
        r#"# Written by `croupier demo`: a simulated table on this machine.
[table]
studio = "demo"
id = "{table_id}"
game = "{game}"
name = "Demo table"

[timing]
bet_window = "{bet_window_ms}ms"
timecode_rate = "25"

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keep_alive = "5s"

[storage]
dir = "state"

[http]
listen = "{http}"

[daemon]
shutdown_timeout = "5s"
ready_timeout = "5s"
restart_backoff_max = "5s"

[[device]]
role = "wheel"
driver = "cammegh"
port = "dev/wheel"
baud = 9600

[[device]]
role = "shoe"
driver = "line"
port = "dev/shoe"
burn = "BURN"

[[device]]
role = "rfid"
driver = "feig"
port = "dev/rfid"
baud = 38400
antennas = [1, 2]
antenna_mode = "together"

[[device]]
role = "pedal"
driver = "serial"
port = "dev/pedal"

[[camera]]
name = "overhead"
source = "test"
"#
    )
}

/// The key the demo's table signs events with and its orchestrator signs commands with.
const DEMO_KEY: &str = "demo";

fn write_demo_key(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    let path = keys.join(format!("{DEMO_KEY}.hmac"));
    if path.exists() {
        return Ok(());
    }
    let secret = crate::signing::generate_hmac_secret_hex();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")
}

/// The card camera (a rendered table), its vision stage, the cross-check, and signed commands.
fn vision_config(v: &crate::demo_table::DemoVision) -> String {
    format!(
        r#"
[crosscheck]
cards = ["vision"]
window = "3s"

[signing]
keys = "keys"
key_id = "{DEMO_KEY}"

[[camera]]
name = "cards"
source = "image://{}"
vision = "cards"
calibration = "{}"
vision_fps = 5
recording = false
"#,
        v.frame.display(),
        v.calibration.display()
    )
}

fn print_banner(
    config: &config::Config,
    config_path: &Path,
    broker_port: u16,
    links: &[(DeviceRole, PathBuf, PathBuf)],
) {
    let http = config.http.listen;
    let prefix = config::MqttConfig::topic_prefix(&config.table);
    println!();
    println!(
        "Croupier demo: table {}/{} ({}) is starting.",
        config.table.studio,
        config.table.id,
        config.table.game.as_str()
    );
    println!("  prompter: http://{http}/prompter   (the dealer's screen; chromium --kiosk)");
    println!("  status:   http://{http}/status     (the technician's page; JSON to scripts)");
    println!("  ready:    http://{http}/readyz");
    println!("  metrics:  http://{http}/metrics");
    for camera in &config.cameras {
        println!(
            "  video:    http://{http}/video/{}   (WebRTC, LL-HLS fallback: /hls/{}/index.m3u8)",
            camera.name, camera.name
        );
    }
    for camera in &config.cameras {
        if let (Some(kind), Some(cal)) = (camera.vision, &camera.calibration) {
            println!(
                "  vision:   camera {} reads the {} (calibration {}); every 4th coup shows it a wrong card",
                camera.name,
                kind.as_str(),
                cal.display()
            );
        }
    }
    println!("  broker:   mqtt://127.0.0.1:{broker_port}");
    println!("            mosquitto_sub -p {broker_port} -t '{prefix}/#' -v");
    println!("  devices:");
    for (role, link, pty) in links {
        println!(
            "    {:<6} {} -> {}",
            role.as_str(),
            link.display(),
            pty.display()
        );
    }
    println!("  config:   {}", config_path.display());
    println!(
        "  events:   {}",
        config.storage.dir.join("events/events.jsonl").display()
    );
    println!("Press Ctrl-C to stop.");
    println!();
}
