//! What each subcommand does, and the exit status it ends with.

use std::process::ExitCode;

use croupier_drivers::scenario::{parse_interactive, parse_script, FaultPlan};
use croupier_drivers::simulator::{Simulator, SimulatorOptions, Source};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::cli::{Cli, Command, JournalCommand, RunArgs, SimulateArgs, ValidateArgs, VerifyArgs};
use crate::config::{self, ConfigError, EX_CONFIG};
use crate::daemon::{self, RunOptions};
use crate::logging;
use crate::sdnotify::Notifier;

/// Runs the parsed command line and returns the process's exit status.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Run(args) => run_daemon(&args),
        Command::Demo(args) => with_runtime(|| crate::demo::run(args)),
        Command::Simulate(args) => with_runtime(|| simulate(args)),
        Command::Verify(args) => verify_capture(&args),
        Command::Journal(JournalCommand::Verify { dir }) => {
            let (report, ok) = crate::journal::cli_verify(&dir);
            println!("{report}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Journal(JournalCommand::Export {
            round,
            dir,
            out,
            video,
            video_out,
        }) => {
            let video = video.map(|recordings| crate::journal::VideoExport {
                recordings,
                copy_to: video_out.or_else(|| {
                    out.as_ref().map(|o| {
                        let mut name = o.as_os_str().to_owned();
                        name.push(".video");
                        std::path::PathBuf::from(name)
                    })
                }),
            });
            match crate::journal::cli_export(&dir, &round, out.as_deref(), video) {
                Ok(summary) => {
                    eprintln!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("croupier journal export: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Calibrate(cmd) => crate::vision::calibrate(cmd),
        Command::Vision(cmd) => crate::vision::vision(cmd),
        Command::Timecode(args) => match crate::timecode::run(&args) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("croupier timecode: {err}");
                ExitCode::from(2)
            }
        },
    }
}

/// `croupier verify`: signatures, gaps and duplicates of a captured event stream.
fn verify_capture(args: &VerifyArgs) -> ExitCode {
    let ring = match crate::signing::KeyRing::load(&args.keys) {
        Ok(ring) => ring,
        Err(err) => {
            eprintln!("croupier verify: {err}");
            return ExitCode::from(2);
        }
    };
    let report = match args.file.as_deref() {
        None => crate::signing::verify_stream(&ring, std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => {
            crate::signing::verify_stream(&ring, std::io::stdin().lock())
        }
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => crate::signing::verify_stream(&ring, std::io::BufReader::new(f)),
            Err(err) => {
                eprintln!("croupier verify: cannot read {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    println!("{report}");
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn with_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let code = rt.block_on(f());
            // A blocking task still running here is stuck (a wedged GStreamer element while a
            // camera stops): the daemon's shutdown deadline has passed, so it must not hold
            // the process.
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            code
        }
        Err(err) => {
            eprintln!("croupier: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

fn validate(args: &ValidateArgs) -> ExitCode {
    match config::load(&args.config) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            println!(
                "{}: ok (table {}/{}, {} device(s), {} camera(s))",
                args.config.display(),
                loaded.config.table.studio,
                loaded.config.table.id,
                loaded.config.devices.len(),
                loaded.config.cameras.len()
            );
            if args.print {
                println!("{:#?}", loaded.config);
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            config_exit(&err)
        }
    }
}

fn config_exit(err: &ConfigError) -> ExitCode {
    match err {
        ConfigError::Invalid(_) | ConfigError::Read { .. } => exit(EX_CONFIG),
    }
}

fn run_daemon(args: &RunArgs) -> ExitCode {
    let loaded = match config::load(&args.config) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{err}");
            return config_exit(&err);
        }
    };
    let log = match logging::init(&loaded.config.log) {
        Ok(handle) => handle,
        Err(err) => {
            eprintln!("croupier: {err}");
            return exit(EX_CONFIG);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let notifier = match Notifier::from_env() {
        Ok(n) => n,
        Err(err) => {
            error!(error = %err, "NOTIFY_SOCKET is set but unusable; running without systemd notifications");
            Notifier::disabled()
        }
    };
    let config_path = args.config.clone();
    with_runtime(|| async move {
        let opts = RunOptions {
            config_path,
            notifier,
            stop: CancellationToken::new(),
            log: Some(log),
        };
        match daemon::run(loaded.config, opts).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                error!("{err}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Where the simulator's steps come from: a script, the terminal, or the built-in rounds with
/// any faults asked for.
fn simulator_source(args: &SimulateArgs) -> Result<Source, String> {
    if let Some(path) = &args.script {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read script {}: {e}", path.display()))?;
        return parse_script(&text, args.seed)
            .map(Source::Script)
            .map_err(|errors| {
                let lines: Vec<String> = errors
                    .iter()
                    .map(|e| format!("  {}: {e}", path.display()))
                    .collect();
                format!("the script has errors:\n{}", lines.join("\n"))
            });
    }
    if args.interactive {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let seed = args.seed;
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut n = 0u64;
            while let Ok(Some(line)) = lines.next_line().await {
                n += 1;
                match parse_interactive(&line, seed.wrapping_add(n)) {
                    Ok(Some(step)) => {
                        if tx.send(step).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(message) => eprintln!("{message}"),
                }
            }
        });
        return Ok(Source::Live(rx));
    }
    let faults = (!args.faults.is_empty()).then(|| FaultPlan {
        faults: args.faults.clone(),
        every: args.fault_every,
        disconnect_for: args.disconnect_for,
    });
    Ok(Source::Builtin { faults })
}

async fn simulate(args: SimulateArgs) -> ExitCode {
    let _ = logging::init_simple("info");
    let opts = SimulatorOptions {
        link: args.link.clone(),
        feig_antennas: args.feig.then_some(args.antennas),
        pace: args.pace,
        rounds: args.rounds,
        seed: args.seed,
        ..SimulatorOptions::default()
    };
    if args.feig && args.device != croupier_drivers::DeviceRole::Rfid {
        eprintln!(
            "croupier simulate {}: --feig only applies to the rfid simulator",
            args.device
        );
        return ExitCode::from(2);
    }
    let source = match simulator_source(&args) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("croupier simulate {}: {message}", args.device);
            return ExitCode::from(2);
        }
    };
    let sim = match Simulator::start_with(args.device, opts, source) {
        Ok(sim) => sim,
        Err(err) => {
            eprintln!("croupier simulate {}: {err}", args.device);
            return ExitCode::FAILURE;
        }
    };
    // Printed on stdout, one line, so scripts and tests can read where to connect.
    match sim.link_path() {
        Some(link) => println!(
            "{} simulator on {} (linked at {})",
            args.device,
            sim.slave_path().display(),
            link.display()
        ),
        None => println!(
            "{} simulator on {}",
            args.device,
            sim.slave_path().display()
        ),
    }
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        on_signal.cancel();
    });
    match sim.run(stop).await {
        Ok(summary) => {
            info!(
                rounds = summary.rounds,
                frames = summary.frames,
                dropped = summary.dropped,
                "simulator stopped"
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("croupier simulate {}: {err}", args.device);
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            // Without handlers the default action (terminate) applies; wait forever.
            std::future::pending::<()>().await;
        }
    }
}
