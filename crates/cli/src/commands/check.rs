//! `deploy-runner check`: the gate, offline, for one request.

use crate::cli::{CheckArgs, Format};
use crate::output::{print_json, resolve_format};
use anyhow::Context;
use deploy_runner_gate::{Gate, Policy};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

/// Reads the policy and request, evaluates, prints the decision.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args.config)?;
    let body = read_request(&args.request)?;
    let decision = Gate::new(policy).evaluate(&body).decision;
    match resolve_format(args.format) {
        Format::Json => print_json(&decision)?,
        Format::Text => {
            let verdict = if decision.is_allowed() { "ALLOW" } else { "DENY" };
            outln!("{verdict} ({}): {}", decision.reason, decision.message);
        }
    }
    Ok(if decision.is_allowed() { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_DENIED) })
}

/// Loads and validates a policy file; any problem is an error (exit 2), never a silent allow.
pub fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    read_policy(path).map(|(_, policy)| policy)
}

/// Loads and validates a policy file, keeping its text too (the local backend hands it to the task).
pub fn read_policy(path: &Path) -> anyhow::Result<(String, Policy)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read policy {}", path.display()))?;
    let policy = Policy::from_json(&text).with_context(|| format!("invalid policy {}", path.display()))?;
    Ok((text, policy))
}

/// Reads the raw request bytes from a file or, for `-`, stdin. Decoding is the gate's job, so bytes stay raw.
fn read_request(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).context("cannot read the request from stdin")?;
        return Ok(body);
    }
    std::fs::read(path).with_context(|| format!("cannot read request {}", path.display()))
}
