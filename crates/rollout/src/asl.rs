//! The Step Functions definition (Amazon States Language), generated from Rust so there is one source of truth:
//! the infra module is to render it from here, and the tests load it from here (no second hand-written copy).
//!
//! One execution is one attempt of a rollout; the first is named by the run id, resumes by `<run_id>-r<n>` (see
//! [`crate::execution`], which also builds the input). A `Map` state walks the waves one at a time
//! (`MaxConcurrency: 1`): an optional approval (`.waitForTaskToken` through the notifier), then one ECS task for the
//! wave (`ecs:runTask.sync`), then an explicit check of the *named* container's exit code (a missing one fails).
//! Any error is caught, the failure is notified, and the execution ends in `Fail`, so later waves never run.
//! Notifications retry and never fail the rollout.

use serde_json::{json, Value};

/// What the definition needs to know about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSettings {
    /// ECS cluster ARN.
    pub cluster_arn: String,
    /// The container whose command is overridden and whose exit code decides the wave (waves carry their task
    /// definition in the execution input).
    pub container_name: String,
    /// Subnets for awsvpc.
    pub subnets: Vec<String>,
    /// Security groups for awsvpc.
    pub security_groups: Vec<String>,
    /// The notifier Lambda's ARN.
    pub notifier_arn: String,
    /// How long an approval may wait, in seconds.
    pub approval_timeout_secs: u64,
}

/// The states that run a task (swapped for scripted Pass states when moto, which can't run ECS tasks, executes
/// the control flow in tests).
pub const TASK_STATE: &str = "RunWave";

fn notify(kind: &str, settings: &MachineSettings, next: &str) -> Value {
    let mut payload = json!({"kind": kind, "execution_arn.$": "$$.Execution.Id", "input.$": "$$.Execution.Input"});
    if kind == "failed" {
        // The Map's Catch put the failed wave's error here.
        payload["error.$"] = json!("$.error");
    }
    json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": settings.notifier_arn,
            "Payload": payload

        },
        "ResultPath": null,
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}],
        // A failed notification is logged by the notifier and never fails the rollout.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": next}],
        "Next": next
    })
}

/// The whole definition.
pub fn definition(settings: &MachineSettings) -> Value {
    let wave = json!({
        "StartAt": "NeedsApproval",
        "States": {
            "NeedsApproval": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.wave.needs_approval", "BooleanEquals": true, "Next": "Approval"}],
                "Default": TASK_STATE
            },
            "Approval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": settings.notifier_arn,
                    "Payload": {"kind": "approval", "account.$": "$.wave.account", "task_token.$": "$$.Task.Token",
                                "execution_arn.$": "$$.Execution.Id", "input.$": "$$.Execution.Input"}
                },
                "TimeoutSeconds": settings.approval_timeout_secs,
                "ResultPath": null,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "WaveFailed"}],
                "Next": TASK_STATE
            },
            TASK_STATE: {
                "Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Parameters": {
                    "Cluster": settings.cluster_arn,
                    "TaskDefinition.$": "$.wave.task_definition",
                    "LaunchType": "FARGATE",
                    "StartedBy": "deploy-runner",
                    "NetworkConfiguration": {"AwsvpcConfiguration": {
                        "Subnets": settings.subnets, "SecurityGroups": settings.security_groups,
                        "AssignPublicIp": "DISABLED"}},
                    "Overrides": {"ContainerOverrides": [{
                        "Name": settings.container_name,
                        "Command.$": "$.wave.command",
                        "Environment": [{"Name": "DEPLOY_RUNNER_RUN_ID", "Value.$": "$.run_id"}]
                    }]},
                    "Tags": [{"Key": "run-id", "Value.$": "$.run_id"}, {"Key": "account", "Value.$": "$.wave.account"}]
                },
                // The named container's exit code, never containers[0]; a filter keeps it explicit.
                "ResultSelector": {"exit_codes.$": format!("$.Containers[?(@.Name == '{}')].ExitCode", settings.container_name)},
                "ResultPath": "$.result",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "WaveFailed"}],
                "Next": "CheckExitCode"
            },
            "CheckExitCode": {
                "Type": "Choice",
                "Choices": [{"And": [
                    {"Variable": "$.result.exit_codes", "IsPresent": true},
                    {"Variable": "$.result.exit_codes[0]", "IsPresent": true},
                    {"Variable": "$.result.exit_codes[0]", "NumericEquals": 0}
                ], "Next": "WaveSucceeded"}],
                "Default": "WaveFailed"
            },
            "WaveSucceeded": {"Type": "Succeed"},
            "WaveFailed": {"Type": "Fail", "Error": "WaveFailed", "Cause": "the wave's task failed, was rejected or timed out"}
        }
    });
    json!({
        "Comment": "deploy-runner rollout: one wave per account in deploy order; halt on the first failure",
        "StartAt": "Waves",
        "States": {
            "Waves": {
                "Type": "Map",
                "ItemsPath": "$.waves",
                "MaxConcurrency": 1,
                // The run id comes from the input, not the execution name: a resumed run is a new execution of the same run.
                "ItemSelector": {"wave.$": "$$.Map.Item.Value", "run_id.$": "$.run_id"},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": wave["StartAt"], "States": wave["States"]},
                "ResultPath": null,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyFailure"}],
                "Next": "NotifySuccess"
            },
            "NotifySuccess": notify("succeeded", settings, "Done"),
            "NotifyFailure": notify("failed", settings, "RolloutFailed"),
            "Done": {"Type": "Succeed"},
            "RolloutFailed": {"Type": "Fail", "Error": "RolloutFailed", "Cause": "a wave did not succeed; later waves did not run"}
        }
    })
}

/// Static checks of a definition: every `Next`/`Default` target exists in its scope, every Task has a Catch, and
/// no JSONPath has the `$.a[0].b` shape (moto mis-evaluates it). Returns the problems found.
pub fn check(definition: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_scope(definition, "", &mut problems);
    problems
}

fn check_scope(scope: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(states) = scope["States"].as_object() else {
        problems.push(format!("{at}: no States"));
        return;
    };
    if let Some(start) = scope["StartAt"].as_str() {
        if !states.contains_key(start) {
            problems.push(format!("{at}: StartAt {start} does not exist"));
        }
    }
    for (name, state) in states {
        let here = format!("{at}/{name}");
        let mut targets: Vec<&str> = Vec::new();
        targets.extend(state["Next"].as_str());
        targets.extend(state["Default"].as_str());
        for list in ["Choices", "Catch"] {
            for item in state[list].as_array().into_iter().flatten() {
                targets.extend(item["Next"].as_str());
            }
        }
        for target in targets {
            if !states.contains_key(target) {
                problems.push(format!("{here}: target {target} does not exist"));
            }
        }
        if state["Type"] == "Task" && state["Catch"].as_array().is_none_or(|c| c.is_empty()) {
            problems.push(format!("{here}: Task without a Catch"));
        }
        if let Some(processor) = state.get("ItemProcessor") {
            check_scope(processor, &here, problems);
        }
        check_paths(state, &here, problems);
    }
}

/// Finds JSONPath strings of the `$.a[0].b` shape anywhere under `value`.
fn check_paths(value: &Value, at: &str, problems: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with('$') => {
            let bytes = s.as_bytes();
            for (i, window) in bytes.windows(2).enumerate() {
                if window == b"]."
                    && s[..i].rfind('[').is_some_and(|open| s[open + 1..i].bytes().all(|b| b.is_ascii_digit()))
                {
                    problems.push(format!("{at}: JSONPath {s:?} indexes then reads a field ($.a[0].b)"));
                    break;
                }
            }
        }
        Value::Object(map) => {
            map.iter().filter(|(k, _)| *k != "States").for_each(|(_, v)| check_paths(v, at, problems))
        }
        Value::Array(items) => items.iter().for_each(|v| check_paths(v, at, problems)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MachineSettings {
        MachineSettings {
            cluster_arn: "arn:aws:ecs:us-east-1:1:cluster/deploy".into(),
            container_name: "runner".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            notifier_arn: "arn:aws:lambda:us-east-1:1:function:notifier".into(),
            approval_timeout_secs: 3600,
        }
    }

    #[test]
    fn the_generated_definition_passes_its_checks() {
        let definition = definition(&settings());
        assert_eq!(check(&definition), Vec::<String>::new());
        let wave = &definition["States"]["Waves"];
        assert_eq!(wave["MaxConcurrency"], 1, "waves run one at a time");
        let task = &wave["ItemProcessor"]["States"][TASK_STATE];
        assert_eq!(task["Resource"], "arn:aws:states:::ecs:runTask.sync");
        assert_eq!(task["ResultSelector"]["exit_codes.$"], "$.Containers[?(@.Name == 'runner')].ExitCode");
        assert_eq!(wave["ItemProcessor"]["States"]["Approval"]["TimeoutSeconds"], 3600);
    }

    #[test]
    fn the_checks_catch_each_kind_of_mistake() {
        let mut broken = definition(&settings());
        broken["States"]["Waves"]["Next"] = json!("Nowhere");
        broken["States"]["Waves"]["ItemProcessor"]["States"][TASK_STATE]
            .as_object_mut()
            .expect("object")
            .remove("Catch");
        broken["States"]["Waves"]["ItemProcessor"]["States"]["CheckExitCode"]["Choices"][0]["And"][2]["Variable"] =
            json!("$.Containers[0].ExitCode");
        let problems = check(&broken).join("\n");
        assert!(problems.contains("/Waves: target Nowhere does not exist"), "{problems}");
        assert!(problems.contains("/Waves/RunWave: Task without a Catch"), "{problems}");
        assert!(problems.contains("indexes then reads a field"), "{problems}");
    }
}
