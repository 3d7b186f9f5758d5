//! Pinning an apply rollout to one commit before it is sent: the gate refuses an apply rollout at a branch name
//! (`ref_not_pinned`), since every wave and every resume would resolve the branch again. Users may still type a
//! branch; it is resolved here, once, with the caller's own git access.

use anyhow::Context;
use deploy_runner_gate::{syntax, Rollout, RolloutMode};
use std::process::Command;

/// Replaces the branch names of an apply rollout (its `ref` and deleted units' `source_ref`) with the commits they
/// point at now. Plans keep their branch: nothing is applied from them.
pub fn pin_rollout(rollout: &mut Rollout) -> anyhow::Result<()> {
    if rollout.mode != RolloutMode::Apply {
        return Ok(());
    }
    let repo = rollout.repo.clone();
    let pin = |git_ref: &mut String| -> anyhow::Result<()> {
        if syntax::is_full_commit_sha(git_ref) {
            return Ok(());
        }
        let commit = resolve_branch(&repo, git_ref)?;
        errln!("deploy-runner: pinned {git_ref} to {commit}: every wave and every resume runs this commit");
        *git_ref = commit;
        Ok(())
    };
    pin(&mut rollout.git_ref)?;
    for unit in &mut rollout.units {
        if let Some(source_ref) = unit.source_ref.as_mut() {
            pin(source_ref)?;
        }
    }
    Ok(())
}

/// The commit `branch` points at in `repo` (`git ls-remote`).
fn resolve_branch(repo: &str, branch: &str) -> anyhow::Result<String> {
    // Nothing option-like or remote-helper-like reaches git: the gate's own shape rules, checked first.
    syntax::check_repo_shape(repo).map_err(|why| anyhow::anyhow!("repo {repo:?} {why}"))?;
    syntax::check_branch_ref(branch).map_err(|why| anyhow::anyhow!("ref {branch:?} {why}"))?;
    let output = Command::new("git")
        .args(["-c", "protocol.ext.allow=never", "ls-remote", "--refs", repo, &format!("refs/heads/{branch}")])
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git ls-remote")?;
    if !output.status.success() {
        anyhow::bail!(
            "cannot resolve {branch} in {}: {}",
            syntax::redact_repo_userinfo(repo),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(_, name)| *name == format!("refs/heads/{branch}"))
        .map(|(sha, _)| sha.to_owned())
        .filter(|sha| syntax::is_full_commit_sha(sha))
        .ok_or_else(|| anyhow::anyhow!("{branch} is not a branch of {}", syntax::redact_repo_userinfo(repo)))
}
