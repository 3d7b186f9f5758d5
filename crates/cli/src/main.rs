//! `deploy-runner`: the command CI runs. A thin composition root: parse flags, call the libraries, map results to
//! exit codes. Exit codes are a public contract: 0 success/allow, 3 denied, 2 the command could not run.

mod cli;
mod commands;
mod output;

use clap::Parser;
use std::process::ExitCode;

/// Exit status when the command itself could not run: bad flags, unreadable files, invalid config.
pub const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("deploy-runner: error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
