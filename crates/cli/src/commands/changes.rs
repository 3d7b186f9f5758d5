//! `deploy-runner changes`: which units a commit range touches, in deploy order.

use crate::cli::{ChangesArgs, Format};
use crate::output::{print_json, resolve_format};
use anyhow::Context;
use deploy_runner_changes::git::GitRepo;
use deploy_runner_changes::{detect_changes, AccountOrder, ChangeReport, DetectOptions};
use regex::Regex;
use std::process::ExitCode;

/// Runs change detection and prints the report.
pub fn run(args: ChangesArgs) -> anyhow::Result<ExitCode> {
    let repo = GitRepo::open(&args.repo)?;
    let mut options = DetectOptions { with_dependents: args.with_dependents, ..DetectOptions::default() };
    if !args.guards.is_empty() {
        options.guards = args
            .guards
            .iter()
            .map(|g| Regex::new(g).with_context(|| format!("--guard {g:?} is not a valid regex")))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(path) = &args.accounts {
        let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        options.accounts = Some(AccountOrder::parse(&text, &path.display().to_string())?);
    }
    let report = detect_changes(&repo, &args.base, &args.head, &options)?;
    match resolve_format(args.format) {
        Format::Json => print_json(&report)?,
        Format::Text => print_text(&report),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(report: &ChangeReport) {
    outln!("changes {}..{}", short(&report.base), short(&report.head));
    if report.units.is_empty() {
        outln!("\nno units selected");
    }
    let mut current_account = None;
    for unit in &report.units {
        if current_account != Some(&unit.account) {
            outln!("\n{} (deploy order {})", unit.account, unit.deploy_order);
            current_account = Some(&unit.account);
        }
        outln!("  {:<10} {:<50} {}", unit.change.as_str(), unit.path, unit.reasons.join(", "));
    }
    if !report.skipped.is_empty() {
        outln!("\nskipped");
        for skipped in &report.skipped {
            outln!("  {:<61} {}", skipped.path, skipped.reason);
        }
    }
    for warning in &report.warnings {
        errln!("warning: {warning}");
    }
}

/// A SHA shortened for display (12 characters, as git does in large repos).
pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
