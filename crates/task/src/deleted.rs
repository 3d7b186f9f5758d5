//! Is a unit there at a commit? Read from the commit's tree, so a destroy can require "gone at `ref`, there at
//! `source_ref`" before anything is checked out or run.

use crate::git::{GitError, Repo};
use deploy_runner_gate::ToolBinary;

/// What a commit holds at a unit path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitAt {
    /// No unit config there (the folder may be gone, or hold other files).
    Absent,
    /// A unit: its config file is a regular file in a real folder.
    Present,
    /// The path, a folder above it, or its config file is a symlink (named here); never treated as either.
    Linked(String),
}

/// Whether `path` is a unit at `commit` for `binary`: `terragrunt.hcl` (or `.hcl.json`) for terragrunt, any
/// `*.tf`/`*.tf.json`/`*.tofu` file for terraform.
pub fn unit_at(repo: &Repo, commit: &str, path: &str, binary: ToolBinary) -> Result<UnitAt, GitError> {
    if deploy_runner_changes::stacks::is_generated_path(path) {
        // A unit a stack generates is present at a commit when that commit's stacks generate it.
        let generated = crate::sources::stack_generates(repo.dir(), commit, path)
            .map_err(|e| GitError { operation: format!("stack at {commit}"), output: e })?;
        return Ok(if generated { UnitAt::Present } else { UnitAt::Absent });
    }
    let segments: Vec<&str> = path.split('/').collect();
    let prefixes: Vec<String> = (1..=segments.len()).map(|n| segments[..n].join("/")).collect();
    let entries = repo.tree_entries(commit, path)?;
    for prefix in &prefixes {
        match entries.iter().find(|e| &e.path == prefix) {
            Some(entry) if entry.is_symlink() => return Ok(UnitAt::Linked(prefix.clone())),
            Some(entry) if entry.is_dir() => {}
            // Missing, or a file where a folder would be: no unit.
            _ => return Ok(UnitAt::Absent),
        }
    }
    let inside = format!("{path}/");
    let mut present = false;
    for entry in entries.iter().filter(|e| e.path.strip_prefix(&inside).is_some_and(|name| !name.contains('/'))) {
        let name = &entry.path[inside.len()..];
        if !binary.is_unit_config(name) {
            continue;
        }
        if entry.is_symlink() {
            return Ok(UnitAt::Linked(entry.path.clone()));
        }
        present |= entry.is_file();
    }
    Ok(if present { UnitAt::Present } else { UnitAt::Absent })
}
