//! Logging: structured `tracing` events, written to journald's native protocol under systemd
//! and as readable lines on a terminal.
//!
//! The filter comes from `CROUPIER_LOG` (or `RUST_LOG`) when set, else from `[log] filter`.
//! The environment wins so a technician can turn on `debug` for one run without editing the
//! table's config. A config reload re-applies `[log] filter` unless the environment set it.

use std::os::unix::fs::MetadataExt;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat};

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("log filter `{filter}` from {origin} is invalid: {reason}\n  fix: use a level (error, warn, info, debug, trace) or directives like \"info,croupier=debug\"")]
    Filter {
        filter: String,
        origin: &'static str,
        reason: String,
    },
    #[error("a logger is already installed in this process")]
    AlreadyInstalled,
}

/// Lets the daemon change the filter on reload.
#[derive(Debug, Clone)]
pub struct LogHandle {
    reload: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

impl LogHandle {
    /// Applies a reloaded `[log] filter`, unless the environment fixed the filter at start.
    pub fn apply(&self, config: &LogConfig) {
        if self.from_env {
            return;
        }
        if let Ok(filter) = EnvFilter::builder().parse(&config.filter) {
            if let Err(err) = self.reload.modify(|f| *f = filter) {
                tracing::warn!(error = %err, "could not apply the reloaded log filter");
            }
        }
    }
}

fn env_filter(config_filter: &str) -> Result<(EnvFilter, bool), LoggingError> {
    for var in ["CROUPIER_LOG", "RUST_LOG"] {
        if let Ok(value) = std::env::var(var) {
            if !value.trim().is_empty() {
                let origin = if var == "CROUPIER_LOG" {
                    "the CROUPIER_LOG environment variable"
                } else {
                    "the RUST_LOG environment variable"
                };
                return EnvFilter::builder()
                    .parse(&value)
                    .map(|f| (f, true))
                    .map_err(|e| LoggingError::Filter {
                        filter: value,
                        origin,
                        reason: e.to_string(),
                    });
            }
        }
    }
    EnvFilter::builder()
        .parse(config_filter)
        .map(|f| (f, false))
        .map_err(|e| LoggingError::Filter {
            filter: config_filter.to_owned(),
            origin: "[log] filter",
            reason: e.to_string(),
        })
}

/// Whether stderr is the journal stream systemd set up for this service.
///
/// `JOURNAL_STREAM` is `device:inode` of that stream; it is inherited by children, so compare
/// it with what stderr actually is rather than trusting its presence.
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Installs the process-wide logger.
pub fn init(config: &LogConfig) -> Result<LogHandle, LoggingError> {
    let (filter, from_env) = env_filter(&config.filter)?;
    let (filter_layer, reload) = reload::Layer::new(filter);
    let use_journald = match config.format {
        LogFormat::Journald => true,
        LogFormat::Auto => stderr_is_journal(),
        LogFormat::Text | LogFormat::Json => false,
    };
    type Output = Box<
        dyn Layer<tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>>
            + Send
            + Sync,
    >;
    let mut journald_failed = None;
    let output: Output = if use_journald {
        match tracing_journald::layer() {
            Ok(layer) => Box::new(layer.with_syslog_identifier("croupier".to_owned())),
            Err(err) => {
                journald_failed = Some(err);
                Box::new(text_layer())
            }
        }
    } else if config.format == LogFormat::Json {
        Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr),
        )
    } else {
        Box::new(text_layer())
    };
    tracing_subscriber::registry()
        .with(filter_layer)
        .with(output)
        .try_init()
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    if let Some(err) = journald_failed {
        tracing::warn!(error = %err, "journald is not reachable; logging to stderr instead");
    }
    Ok(LogHandle { reload, from_env })
}

fn text_layer<S>() -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
}

/// Logging for the short-lived subcommands (`simulate`, `demo` before its config exists).
pub fn init_simple(default_filter: &str) -> Result<LogHandle, LoggingError> {
    init(&LogConfig {
        filter: default_filter.to_owned(),
        format: LogFormat::Auto,
    })
}
