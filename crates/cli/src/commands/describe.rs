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
            println!(
                "Every request has `action` and `actor` (1-128 printable characters), and an optional `request_id`.\n"
            );
            println!("{:<16} {:<22} {:<48} WHAT IT DOES", "ACTION", "CONTAINER", "FIELDS");
            for a in Action::ALL {
                let containers: Vec<&str> = a.containers().iter().map(|c| c.as_str()).collect();
                let containers = if containers.is_empty() { "- (invoker)".to_owned() } else { containers.join(" or ") };
                println!("{:<16} {:<22} {:<48} {}", a.as_str(), containers, a.fields().join(", "), a.summary());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
