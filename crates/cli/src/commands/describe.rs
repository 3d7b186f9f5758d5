//! `deploy-runner describe`: every action, what it requires and which container runs it (the successor of
//! `infrastructure-deployer --describe-containers`).

use crate::cli::{DescribeArgs, Format};
use crate::output::{print_json, resolve_format};
use deploy_runner_gate::Action;
use std::process::ExitCode;

/// Prints the action table.
pub fn run(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let actions: Vec<serde_json::Value> = Action::ALL
        .iter()
        .map(|a| {
            serde_json::json!({
                "action": a.as_str(),
                "summary": a.summary(),
                "fields": a.fields(),
                "containers": a.containers().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    match resolve_format(args.format) {
        Format::Json => {
            print_json(&serde_json::json!({ "common_fields": ["actor", "request_id (optional)"], "actions": actions }))?
        }
        Format::Text => {
            outln!(
                "Every request has `action` and `actor` (a login: ^[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}$, optionally \
                 followed by [bot]), and an optional `request_id`.\n"
            );
            outln!("{:<16} {:<22} {:<48} WHAT IT DOES", "ACTION", "CONTAINER", "FIELDS");
            for a in Action::ALL {
                let containers: Vec<&str> = a.containers().iter().map(|c| c.as_str()).collect();
                let containers = if containers.is_empty() { "- (invoker)".to_owned() } else { containers.join(" or ") };
                outln!("{:<16} {:<22} {:<48} {}", a.as_str(), containers, a.fields().join(", "), a.summary());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
