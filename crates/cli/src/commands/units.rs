//! `deploy-runner units`: the units of a checkout, optionally only those reading given files
//! (terragrunt's `--queue-include-units-reading`).

use crate::cli::{Format, UnitsArgs};
use crate::output::{print_json, resolve_format};
use anyhow::Context;
use deploy_runner_changes::worktree::snapshot_dir;
use deploy_runner_changes::{units_reading, UnitsQuery};
use std::process::ExitCode;
use std::sync::Arc;

/// Lists the matching units; warnings go to stderr so stdout stays one JSON document.
pub fn run(args: UnitsArgs) -> anyhow::Result<ExitCode> {
    if !args.repo.is_dir() {
        anyhow::bail!("{} is not a directory", args.repo.display());
    }
    let snapshot = snapshot_dir(&args.repo).with_context(|| format!("cannot read {}", args.repo.display()))?;
    let query = UnitsQuery {
        reading: args.reading,
        not_reading: args.not_reading,
        include_dirs: args.include_dir,
        exclude_dirs: args.exclude_dir,
    };
    let answer = units_reading(Arc::new(snapshot), &query)?;
    for warning in &answer.warnings {
        errln!("warning: {warning}");
    }
    match resolve_format(args.format) {
        Format::Json => {
            let mut json = serde_json::json!({ "units": answer.units });
            if !answer.stacks.is_empty() {
                // An addition: units a stack generates, with their stack file.
                json["stacks"] = serde_json::json!(answer.stacks);
            }
            print_json(&json)?
        }
        Format::Text => answer.units.iter().for_each(|u| outln!("{u}")),
    }
    Ok(ExitCode::SUCCESS)
}
