//! `rollout`, `approve`, `reject`, `resume` and `status`: rollouts and the runs they make, on either backend.

use super::backend::{unix_seconds, Backend, RolloutReport};
use crate::cli::{ApprovalArgs, RolloutArgs, RunArgs};
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
            errln!(
                "  {:<8} {:<12} {:<13} {:<10} {:<50} {counts}",
                wave.account,
                wave.status,
                unit["operation"].as_str().unwrap_or("?"),
                unit["status"].as_str().unwrap_or("?"),
                unit["path"].as_str().unwrap_or("?"),
            );
        }
    }
}

fn exit_for(report: &RolloutReport) -> ExitCode {
    match report.outcome.as_str() {
        "succeeded" => ExitCode::SUCCESS,
        "denied" => ExitCode::from(crate::EXIT_DENIED),
        _ => ExitCode::from(crate::EXIT_FAILED),
    }
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
    print_summary("rollout", &report);
    outln!("{}", deploy_runner_gate::text::to_json_string(&report)?);
    Ok(exit_for(&report))
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
    let report = backend.resume(&args.backend.actor, &args.run_id)?;
    print_summary("resume", &report);
    outln!("{}", deploy_runner_gate::text::to_json_string(&report)?);
    Ok(exit_for(&report))
}

/// `deploy-runner status --run RUN`.
pub fn status(args: RunArgs) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_args(&args.backend)?;
    outln!("{}", deploy_runner_gate::text::to_json_string_pretty(&backend.status(&args.backend.actor, &args.run_id)?)?);
    Ok(ExitCode::SUCCESS)
}
