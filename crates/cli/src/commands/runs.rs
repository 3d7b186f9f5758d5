//! `rollout`, `approve`, `reject`, `resume` and `status`: rollouts and the runs they make, on either backend.

use super::backend::{unix_seconds, Backend, RolloutReport};
use crate::cli::{ApprovalArgs, Format, LedgerArgs, RolloutArgs, RunArgs};
use crate::output::{print_json, resolve_format};
use anyhow::Context;
use deploy_runner_gate::{ActionRequest, Request};
use std::io::Read;
use std::process::ExitCode;

/// A unit's plan or apply counts from its wave summary entry, as `+add ~change -destroy`.
pub fn unit_counts(unit: &serde_json::Value) -> Option<String> {
    match (unit["add"].as_u64(), unit["change"].as_u64(), unit["destroy"].as_u64()) {
        (Some(a), Some(c), Some(d)) => Some(format!("+{a} ~{c} -{d}")),
        _ => None,
    }
}

/// A unit's duration as people read it: `0.4s`, `12.0s`, `3m07s`.
fn seconds(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Prints a rollout's summary table on stderr: one line per unit (or per wave without units).
pub fn print_summary(title: &str, report: &RolloutReport) {
    errln!("\n{title}: {} {}", report.outcome, report.run_id);
    if let Some(message) = &report.message {
        errln!("  {message}");
    }
    for wave in &report.waves {
        if wave.units.is_empty() {
            errln!("  {:<8} {:<12} -", wave.account, wave.status);
        }
        for unit in &wave.units {
            let counts = unit_counts(unit).unwrap_or_default();
            let took = unit["duration_ms"].as_u64().map(|ms| format!(" {:>6}", seconds(ms))).unwrap_or_default();
            errln!(
                "  {:<8} {:<12} {:<13} {:<10} {:<50} {counts:<11}{took}",
                wave.account,
                wave.status,
                unit["operation"].as_str().unwrap_or("?"),
                unit["status"].as_str().unwrap_or("?"),
                unit["path"].as_str().unwrap_or("?"),
            );
        }
    }
}

/// The exit status of a run summary, the same for `ci`, `rollout`, `resume` and `status`: 0 succeeded or superseded
/// (or, for `status`, still going), 1 failed, interrupted or timed out, 3 denied.
fn exit_for(report: &RolloutReport) -> ExitCode {
    match report.outcome.as_str() {
        "succeeded" | "superseded" => ExitCode::SUCCESS,
        "denied" => ExitCode::from(crate::EXIT_DENIED),
        _ => ExitCode::from(crate::EXIT_FAILED),
    }
}

/// Prints a rollout's report: the table on stderr, and on stdout one JSON document or one line.
fn print_report(title: &str, format: Option<Format>, report: &RolloutReport) -> anyhow::Result<ExitCode> {
    print_summary(title, report);
    if resolve_format(format) == Format::Json {
        print_json(report)?;
    } else {
        outln!("{title} {}: {}", report.run_id, report.outcome);
    }
    Ok(exit_for(report))
}

/// `deploy-runner rollout --request FILE`.
pub fn rollout(args: RolloutArgs) -> anyhow::Result<ExitCode> {
    let body = if args.request.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).context("cannot read the request from stdin")?;
        body
    } else {
        std::fs::read(&args.request).with_context(|| format!("cannot read {}", args.request.display()))?
    };
    let mut request = Request::decode(&body).map_err(|e| anyhow::anyhow!("{}: {}", e.reason, e.message))?;
    if let ActionRequest::Rollout(rollout) = &mut request.body {
        super::pin::pin_rollout(rollout)?;
    }
    let backend = Backend::from_args(&args.backend)?;
    let run_id = format!("rollout-{}-{}", unix_seconds(), std::process::id());
    let report = backend.rollout(&request, &run_id)?;
    print_report("rollout", args.format, &report)
}

/// `deploy-runner approve|reject`.
pub fn answer(args: ApprovalArgs, approve: bool) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_args(&args.backend)?;
    let code = backend.answer(&args.backend.actor, &args.run_id, &args.account, approve, args.comment)?;
    Ok(ExitCode::from(code))
}

/// `deploy-runner resume --run RUN`.
pub fn resume(args: RunArgs) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_args(&args.backend)?;
    let mut report = backend.resume(&args.backend.actor, &args.run_id)?;
    if report.run_id.is_empty() {
        // Refused before a new attempt was made: the run is still the one asked about.
        report.run_id.clone_from(&args.run_id);
    }
    print_report("resume", args.format, &report)
}

/// `deploy-runner status --run RUN`: the run's state as the backend keeps it (JSON), or one line per wave. Exit 0
/// while it runs or once it succeeded, 1 when it failed or was interrupted, 3 denied.
pub fn status(args: RunArgs) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_args(&args.backend)?;
    let status = backend.status(&args.backend.actor, &args.run_id)?;
    let (outcome, waves) = status_outcome(&status);
    if resolve_format(args.format) == Format::Json {
        print_json(&status)?;
    } else {
        outln!("status {}: {outcome}", args.run_id);
        for (account, wave_status) in waves {
            outln!("  {account:<8} {wave_status}");
        }
    }
    Ok(match outcome.as_str() {
        "denied" => ExitCode::from(crate::EXIT_DENIED),
        "failed" | "interrupted" | "timed_out" | "error" => ExitCode::from(crate::EXIT_FAILED),
        _ => ExitCode::SUCCESS,
    })
}

/// A status answer's outcome and waves, from either backend's shape (the local run state, or the invoker's answer
/// for a rollout or a single task).
fn status_outcome(status: &serde_json::Value) -> (String, Vec<(String, String)>) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let waves = |list: &serde_json::Value| -> Vec<(String, String)> {
        list.as_array().into_iter().flatten().map(|w| (text(&w["account"]), text(&w["status"]))).collect()
    };
    if status.get("decision").is_some() {
        let outcome = match status["decision"].as_str() {
            Some("deny") => "denied".to_owned(),
            Some("error") => "error".to_owned(),
            _ if status["rollout"].is_object() => text(&status["rollout"]["outcome"]),
            _ => text(&status["status"]["outcome"]),
        };
        return (outcome, waves(&status["rollout"]["waves"]));
    }
    // The local run state: `status` is running, succeeded, failed or interrupted.
    (text(&status["status"]), waves(&status["waves"]))
}

/// `deploy-runner ledger`: what each account last deployed from an apply ref, and who holds its lock.
pub fn ledger(args: LedgerArgs) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_args(&args.backend)?;
    let repo_url = match &args.repo_url {
        Some(url) => url.clone(),
        None => {
            let output = std::process::Command::new("git")
                .args(["remote", "get-url", "origin"])
                .output()
                .context("cannot run git")?;
            anyhow::ensure!(output.status.success(), "no --repo-url, and the working directory has no origin remote");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
    };
    let view = match backend.ledger(&args.backend.actor, &repo_url, args.apply_ref.as_deref())? {
        Ok(view) => view,
        Err(refusal) => {
            errln!("deploy-runner: no ledger: {refusal}");
            return Ok(ExitCode::from(if refusal.denied { crate::EXIT_DENIED } else { crate::EXIT_FAILED }));
        }
    };
    if resolve_format(args.format) == Format::Json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("ledger of {} at {}", view.repo, view.apply_ref);
    if view.accounts.is_empty() {
        outln!("  no deployment recorded yet");
    }
    for entry in &view.accounts {
        match (&entry.commit, &entry.baseline) {
            (Some(commit), _) => {
                outln!("  {:<8} {commit}  run {}  at {}", entry.account, entry.run_id, entry.recorded_at)
            }
            (None, Some(baseline)) => outln!(
                "  {:<8} nothing deployed yet; the next run detects from {baseline} (run {} at {})",
                entry.account,
                entry.run_id,
                entry.recorded_at
            ),
            (None, None) => outln!("  {:<8} nothing deployed yet", entry.account),
        }
    }
    match &view.lock {
        Some(lock) => outln!(
            "apply lock: held by rollout {} (commit {}, {}) since {}",
            lock.run_id,
            lock.commit,
            lock.holder,
            lock.acquired_at
        ),
        None => outln!("apply lock: free"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn durations_read_as_seconds_then_minutes() {
        assert_eq!(seconds(0), "0.0s");
        assert_eq!(seconds(420), "0.4s");
        assert_eq!(seconds(12_049), "12.0s");
        assert_eq!(seconds(59_999), "60.0s");
        assert_eq!(seconds(187_000), "3m07s");
    }
}
