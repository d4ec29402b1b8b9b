//! The `croupier` binary. Everything lives in the library; see `croupier --help`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    croupier::app::main(croupier::cli::Cli::parse())
}
