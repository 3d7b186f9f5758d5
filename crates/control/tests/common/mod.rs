//! What the invoker's test files share: one deployment's configuration.

use deploy_runner_control::InvokerConfig;
use serde_json::{json, Value};

/// The example policy, as JSON to adjust.
pub fn example_policy() -> Value {
    serde_json::from_str(include_str!("../../../../examples/policy.json")).expect("policy")
}

/// A configuration with `policy`, test runtime settings and, when given, the rollout state machine.
pub fn config(policy: Value, state_machine_arn: Option<&str>) -> InvokerConfig {
    let mut document = json!({
        "policy": policy,
        "runtime": {
            "cluster_arn": "arn:aws:ecs:us-east-1:123:cluster/deploy",
            "subnets": ["subnet-1"], "security_groups": ["sg-1"],
            "task_definitions": {"planner": "planner:1", "applier": "applier:1", "image-builder": "builder:1"},
            "log_group": "/deploy-runner/tasks", "log_stream_prefix": "deploy"
        }
    });
    if let Some(arn) = state_machine_arn {
        document["runtime"]["state_machine_arn"] = json!(arn);
    }
    InvokerConfig::from_json(&document.to_string()).expect("valid config")
}
