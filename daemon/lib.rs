//! Croupier: the table-side edge daemon of a live-dealer casino studio.
//!
//! One box under each table runs this. It reads the table's devices (wheel, shoe, RFID, pedal),
//! watches the cameras, keeps the truth about when each game phase happened, and pushes it to
//! the studio's orchestrator over MQTT. `README.md` has the picture; `docs/` has the contracts.
//!
//! Layout of this crate (the `croupier` binary's library):
//! - [`cli`], [`app`]: the command line and what each subcommand does.
//! - [`config`]: the TOML config, checked completely before anything starts.
//! - [`daemon`], [`supervisor`], [`health`]: the supervised main loop.
//! - [`sdnotify`], [`logging`]: systemd integration and structured logs.
//! - [`engine`]: the pure table engine (round phases, games, cross-check, recovery).
//! - [`table`], [`events`]: the engine's component, the event envelope and the durable log.
//! - [`devices`], [`uplink`], [`http`]: the components at the edges.
//! - [`timecode`], [`clock`]: the time model.
//! - [`demo`]: a whole simulated table on one machine.

#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod demo_table;
pub mod devices;
pub mod engine;
pub mod events;
pub mod health;
pub mod http;
pub mod journal;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod sdnotify;
pub mod signing;
pub mod supervisor;
pub mod table;
pub mod timecode;
pub mod uplink;
pub mod video;
pub mod vision;
pub mod vision_bench;
pub mod vision_stage;
