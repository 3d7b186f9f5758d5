//! Command-line flags. Parsing only: turning flags into settings and running them lives in `commands`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// deploy-runner: CI asks, the control plane decides.
#[derive(Debug, Parser)]
#[command(name = "deploy-runner", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a request against a policy and print the gate's decision (exit 0 allow, 3 deny).
    Check(CheckArgs),
}

/// Flags of `deploy-runner check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The policy JSON file.
    #[arg(long, value_name = "POLICY.json")]
    pub config: PathBuf,
    /// The request JSON file, or `-` for stdin.
    #[arg(long, value_name = "REQUEST.json")]
    pub request: PathBuf,
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}
