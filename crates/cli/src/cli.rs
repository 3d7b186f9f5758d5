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
    /// The whole pipeline for one CI event: detect, plan, notify, and on a push to an apply ref apply in deploy order.
    Ci(CiArgs),
    /// Run a rollout request (plan or apply in account waves, in deploy order).
    Rollout(RolloutArgs),
    /// Approve the waiting approval of one account in a rollout.
    Approve(ApprovalArgs),
    /// Reject the waiting approval of one account in a rollout (the rollout stops).
    Reject(ApprovalArgs),
    /// Continue a stopped rollout from its first wave that did not succeed.
    Resume(RunArgs),
    /// Where a run is, and each wave's status.
    Status(RunArgs),
    /// What each account last deployed from an apply ref, and which apply rollout holds its lock.
    Ledger(LedgerArgs),
    /// Plan one unit.
    Plan(UnitArgs),
    /// Apply one unit (at an apply ref, or a SHA on one).
    Apply(UnitArgs),
    /// Destroy one deleted unit from its source ref.
    Destroy(DestroyArgs),
    /// Build and push an app image with kaniko.
    BuildImage(BuildImageArgs),
    /// Set an app's image tag in infrastructure-live (update-variable), which triggers the infrastructure pipeline.
    DeployImage(DeployImageArgs),
}

/// Where requests go: the local backend (the default) or the invoker Lambda.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Run locally: the gate in-process against --config, tasks as local processes (the default without
    /// --function-name).
    #[arg(long, conflicts_with = "function_name")]
    pub local: bool,
    /// The policy JSON for the local backend.
    #[arg(long, value_name = "POLICY.json")]
    pub config: Option<PathBuf>,
    /// The invoker Lambda (name or ARN): use AWS, with the standard credential chain.
    #[arg(long, value_name = "FUNCTION", env = "DEPLOY_RUNNER_FUNCTION")]
    pub function_name: Option<String>,
    /// Local run state and per-wave logs.
    #[arg(long, value_name = "DIR", default_value = ".deploy-runner")]
    pub state_dir: PathBuf,
    /// Approve this account's wave up front (local backend); repeatable.
    #[arg(long = "approve", value_name = "ACCOUNT")]
    pub pre_approve: Vec<String>,
    /// Seconds a local approval waits before it times out.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub approval_timeout: u64,
    /// How long to follow an AWS run, or to wait while another apply rollout of the same repo and apply ref holds
    /// the lock, before giving up (exit 1, with how to keep following).
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_duration)]
    pub max_wait: std::time::Duration,
    /// Who asks (recorded in the audit trail).
    #[arg(long, env = "GITHUB_ACTOR", default_value = "local")]
    pub actor: String,
}

/// `30s`, `15m`, `2h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 90s, 15m or 2h"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// Flags of `deploy-runner ci`.
#[derive(Debug, clap::Args)]
pub struct CiArgs {
    /// The CI event.
    #[arg(long, value_enum)]
    pub event: CiEvent,
    /// The branch pushed, or the pull request's head branch.
    #[arg(long)]
    pub branch: String,
    /// The base revision (default: the push's `before` from GITHUB_EVENT_PATH, else HEAD^; for a pull request the
    /// merge-base with origin/<apply ref>). On a push to an apply ref, accounts with a deployment in the ledger
    /// are diffed from that instead.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The head revision.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// The infrastructure-live repo URL the tasks clone (default: the checkout's origin).
    #[arg(long, value_name = "URL")]
    pub repo_url: Option<String>,
    /// The checkout to detect changes in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Also select units that depend on selected units.
    #[arg(long)]
    pub with_dependents: bool,
    /// On a push to an apply ref, deploy every unit of the accounts that have nothing to diff from: no deployment
    /// recorded in the ledger, and no usable push base (a new branch, or a `before` missing from the checkout).
    #[arg(long)]
    pub all: bool,
    /// How many units of a wave run at once, as their dependencies allow (default and most: the policy's
    /// `max_parallel_units`).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<u32>,
    /// Summary format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// A branch whose pushes apply, on AWS, where the policy lives server-side (default: main; repeatable or
    /// comma-separated). The local backend reads apply_refs from --config. This only decides when ci asks: the
    /// control plane refuses to apply a commit that is not on one of the policy's apply refs regardless.
    #[arg(long = "apply-ref", value_name = "BRANCH", env = "DEPLOY_RUNNER_APPLY_REFS", value_delimiter = ',')]
    pub apply_refs: Vec<String>,
    /// Where to send requests.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// CI events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiEvent {
    /// A push to a branch: plan, and apply when the branch is an apply ref.
    Push,
    /// A pull request: plan only.
    #[value(name = "pull_request")]
    PullRequest,
}

/// Flags of `deploy-runner ledger`.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// The infrastructure-live repo URL (default: the origin of the checkout in the working directory).
    #[arg(long, value_name = "URL")]
    pub repo_url: Option<String>,
    /// The apply ref (default: the policy's first).
    #[arg(long, value_name = "BRANCH")]
    pub apply_ref: Option<String>,
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where the ledger is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `deploy-runner rollout`.
#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    /// The rollout request JSON file, or `-` for stdin.
    #[arg(long, value_name = "REQUEST.json")]
    pub request: PathBuf,
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where to send it.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `approve` and `reject`.
#[derive(Debug, clap::Args)]
pub struct ApprovalArgs {
    /// The rollout's run id.
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run_id: String,
    /// The account whose wave waits.
    #[arg(long)]
    pub account: String,
    /// Why (recorded and notified).
    #[arg(long)]
    pub comment: Option<String>,
    /// Where the rollout runs.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of commands about one run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The run id.
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run_id: String,
    /// Output format (default: text on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where the run is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of the single-unit shortcuts.
#[derive(Debug, clap::Args)]
pub struct UnitArgs {
    /// The unit path (account first).
    #[arg(long)]
    pub path: String,
    /// The repo URL.
    #[arg(long = "repo-url", value_name = "URL")]
    pub repo_url: String,
    /// The ref (branch or SHA).
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    pub git_ref: String,
    /// Where to send it.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `deploy-runner destroy`.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// The unit.
    #[command(flatten)]
    pub unit: UnitArgs,
    /// A commit where the unit still exists (an ancestor of --ref).
    #[arg(long, value_name = "SHA")]
    pub source_ref: String,
}

/// Flags of `deploy-runner build-image`.
#[derive(Debug, clap::Args)]
pub struct BuildImageArgs {
    /// The app repo URL.
    #[arg(long = "repo", value_name = "URL")]
    pub repo_url: String,
    /// The commit to build.
    #[arg(long = "ref", value_name = "SHA")]
    pub git_ref: String,
    /// The Docker build context inside the repo.
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub context_path: String,
    /// The image tag.
    #[arg(long)]
    pub tag: String,
    /// Where to send it.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Flags of `deploy-runner deploy-image`.
#[derive(Debug, clap::Args)]
pub struct DeployImageArgs {
    /// The unit whose variable holds the image tag, its repo and the branch to commit to (an apply ref).
    #[command(flatten)]
    pub unit: UnitArgs,
    /// The variable.
    #[arg(long, default_value = "image_version")]
    pub variable: String,
    /// The new value (the image tag).
    #[arg(long)]
    pub value: String,
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
