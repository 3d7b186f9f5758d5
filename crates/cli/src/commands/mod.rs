//! One module per subcommand; `run` dispatches.

mod changes;
mod check;
mod describe;
mod units;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

/// Runs the parsed command line and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Changes(args) => changes::run(args),
        Command::Units(args) => units::run(args),
        Command::Describe(args) => describe::run(args),
    }
}
