//! One module per subcommand; `run` dispatches.

mod check;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

/// Runs the parsed command line and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(args),
    }
}
