//! Local code a unit pulls in must come from the clone: its `terraform { source }` (evaluated statically, the way
//! change detection does) and the local `module` calls of its Terraform code, followed recursively.
//!
//! Everything is read from the commit's tree, so links are judged as git stores them, whatever a tool run left on
//! disk. A source that leaves the repository, or one that can't be worked out without running the repo's code, is
//! refused before any tool runs.

use deploy_runner_changes::git::GitRepo;
use deploy_runner_changes::modules::local_module_tree;
use deploy_runner_changes::Evaluator;
use deploy_runner_gate::ToolBinary;
use std::path::Path;
use std::sync::Arc;

/// Whether the stacks at `commit` generate the unit `path`.
pub fn stack_generates(clone: &Path, commit: &str, path: &str) -> Result<bool, String> {
    let git = GitRepo::open(clone).map_err(|e| e.to_string())?;
    let snapshot = Arc::new(git.snapshot(commit, false).map_err(|e| e.to_string())?);
    Ok(deploy_runner_changes::stacks::expand_stacks(&Evaluator::new(snapshot)).units.contains_key(path))
}

/// Checks that the stack at `commit` generates the unit `path`, with every local source inside the clone.
pub fn check_stack_unit(clone: &Path, commit: &str, path: &str) -> Result<(), String> {
    let git = GitRepo::open(clone).map_err(|e| e.to_string())?;
    let snapshot = Arc::new(git.snapshot(commit, false).map_err(|e| e.to_string())?);
    let expansion = deploy_runner_changes::stacks::expand_stacks(&Evaluator::new(snapshot));
    let Some(unit) = expansion.units.get(path) else {
        return Err(format!("no terragrunt stack at {commit} generates {path}; refusing to run it"));
    };
    let stack = &unit.stack_file;
    if let Some((_, why)) = expansion.failed.iter().find(|(file, _)| file == stack) {
        return Err(format!("{stack}: {why}; refusing to generate it"));
    }
    Ok(())
}

/// Checks the unit at `unit` (repo-relative) of the clone at `clone`, at `commit`. `Err` says why it is refused.
pub fn check_local_sources(clone: &Path, commit: &str, unit: &str, binary: ToolBinary) -> Result<(), String> {
    let git = GitRepo::open(clone).map_err(|e| e.to_string())?;
    let snapshot = Arc::new(git.snapshot(commit, false).map_err(|e| e.to_string())?);
    let mut start_dirs = vec![unit.to_owned()];
    if binary == ToolBinary::Terragrunt {
        let config = ["terragrunt.hcl", "terragrunt.hcl.json"]
            .iter()
            .map(|name| format!("{unit}/{name}"))
            .find(|path| snapshot.entry(path).is_some())
            .ok_or_else(|| format!("{unit} has no terragrunt.hcl at {commit}"))?;
        let reads = Evaluator::new(snapshot.clone()).evaluate_unit(unit, &config);
        if let Some(problem) = reads.all_source_problems().into_iter().next() {
            return Err(format!("{problem}; refusing to run a local source that can't be confined to the clone"));
        }
        for dir in reads.all_source_dirs() {
            let real = snapshot
                .resolve(&dir)
                .map_err(|e| format!("{unit}: terraform.source {dir:?}: {e}; refusing to run it"))?;
            // Terragrunt copies the whole tree before `//` and runs in a folder of it: every folder's calls count.
            let prefix = format!("{real}/");
            let mut folders: std::collections::BTreeSet<String> = snapshot
                .paths()
                .filter(|path| real.is_empty() || path.starts_with(&prefix))
                .filter_map(|path| path.rsplit_once('/').map(|(parent, _)| parent.to_owned()))
                .collect();
            folders.insert(real);
            start_dirs.extend(folders);
        }
    }
    let tree = local_module_tree(&snapshot, start_dirs.iter().map(String::as_str));
    if let Some(escape) = tree.escapes.first() {
        return Err(format!("{escape} leaves the repository; refusing to run a module from outside the clone"));
    }
    Ok(())
}
