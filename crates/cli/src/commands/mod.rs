//! One module per subcommand; `run` dispatches.

mod backend;
mod bases;
mod changes;
pub(crate) mod check;
mod ci;
mod describe;
mod pin;
mod runs;
mod single;
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
        Command::Ci(args) => ci::run(args),
        Command::Rollout(args) => runs::rollout(args),
        Command::Approve(args) => runs::answer(args, true),
        Command::Reject(args) => runs::answer(args, false),
        Command::Resume(args) => runs::resume(args),
        Command::Status(args) => runs::status(args),
        Command::Ledger(args) => runs::ledger(args),
        Command::Plan(args) => single::plan(args),
        Command::Apply(args) => single::apply(args),
        Command::Destroy(args) => single::destroy(args),
        Command::BuildImage(args) => single::build_image(args),
        Command::DeployImage(args) => single::deploy_image(args),
    }
}
