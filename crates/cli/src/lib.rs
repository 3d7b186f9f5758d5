//! The `deploy-runner` command line: parse flags, call the libraries, map results to exit codes. Exit codes are a
//! public contract: 0 success/allow, 1 a deployment failed (or waiting ran out), 3 denied, 2 the command could not
//! run. The local backend (gate in-process, tasks as local processes, the local sequencer) lives in [`local`]; the
//! AWS backend (the invoker Lambda) in [`remote`].

/// `println!` that never panics: see [`output::out`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::out(&format!($($arg)*)) };
}

/// `eprintln!` that never panics: see [`output::err`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::err(&format!($($arg)*)) };
}

pub mod cli;
mod commands;
pub mod ledger;
pub mod local;
mod output;
pub mod progress;
pub mod remote;

use clap::Parser;
use std::process::ExitCode;

/// Exit status when the command itself could not run: bad flags, unreadable files, invalid config.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when a deployment ran and failed, or was not finished in time.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of a denied request.
pub const EXIT_DENIED: u8 = 3;

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    // The local backend runs tools as the caller, and this process may hold the caller's git token: keep it out of
    // their reach (/proc/<pid>/environ and mem need ptrace access to a non-dumpable process).
    if let Err(e) = deploy_runner_task::harden::protect_process() {
        errln!("deploy-runner: warning: cannot make this process non-dumpable: {e}");
    }
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(error) => {
            errln!("deploy-runner: error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
