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
    /// Units changed between two commits, in deploy order.
    Changes(ChangesArgs),
    /// Units of a checkout, optionally only those reading given files.
    Units(UnitsArgs),
    /// The actions the gate knows: what each requires and which container runs it.
    Describe(DescribeArgs),
}

/// Flags of `deploy-runner describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// Flags of `deploy-runner changes`.
#[derive(Debug, clap::Args)]
pub struct ChangesArgs {
    /// The infrastructure-live git repository.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// The base revision (anything `git rev-parse` accepts).
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The head revision.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// Also select units that depend on selected units, transitively.
    #[arg(long)]
    pub with_dependents: bool,
    /// The accounts file (default: accounts.json at the repo root, at the head revision).
    #[arg(long, value_name = "FILE")]
    pub accounts: Option<PathBuf>,
    /// A unit-path regex that is never deployed; repeat for several. Replaces the default self-update guards.
    #[arg(long = "guard", value_name = "REGEX")]
    pub guards: Vec<String>,
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// Flags of `deploy-runner units`.
#[derive(Debug, clap::Args)]
pub struct UnitsArgs {
    /// The directory to look in (a checkout; need not be a git repository).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Keep units that read this file or glob (repo-relative); repeatable.
    #[arg(long, value_name = "PATH_OR_GLOB")]
    pub reading: Vec<String>,
    /// Keep only units that read none of these files or globs; repeatable.
    #[arg(long, value_name = "PATH_OR_GLOB")]
    pub not_reading: Vec<String>,
    /// Add the units in this directory (or glob); repeatable.
    #[arg(long, value_name = "DIR")]
    pub include_dir: Vec<String>,
    /// Remove the units in this directory (or glob) after everything else; repeatable.
    #[arg(long, value_name = "DIR")]
    pub exclude_dir: Vec<String>,
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
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
