//! The Step Functions definition (Amazon States Language), generated from Rust so there is one source of truth:
//! the infra module renders [`terraform_template`] (generated from [`definition`] and checked in under `infra/`),
//! and the tests load [`definition`] itself (no second hand-written copy).
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
    /// The AWS partition (`aws`, `aws-us-gov`, `aws-cn`): the service integrations' ARNs live in it.
    pub partition: String,
    /// ECS cluster ARN.
    pub cluster_arn: String,
    /// The container whose command is overridden and whose exit code decides the wave (waves carry their task
    /// definition in the execution input).
    pub container_name: String,
    /// Subnets for awsvpc.
    pub subnets: Vec<String>,
    /// Security groups for awsvpc.
    pub security_groups: Vec<String>,
    /// Give wave tasks a public IP (public subnets without NAT), as the invoker's own tasks get.
    pub assign_public_ip: bool,
    /// The notifier Lambda's ARN.
    pub notifier_arn: String,
    /// How long an approval may wait, in seconds.
    pub approval_timeout_secs: u64,
    /// The DynamoDB table of the deployment ledger and the apply locks.
    pub ledger_table: String,
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
        "Resource": format!("arn:{}:states:::lambda:invoke", settings.partition),
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

/// DynamoDB's transient errors, retried before a ledger write counts as failed.
const DYNAMODB_TRANSIENT: [&str; 4] = [
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.RequestLimitExceeded",
];

/// Moves the wave's account in the ledger to the wave's commit, only from the commit the wave started from (or
/// already there, or from nothing deployed yet: an entry may hold just a baseline): a ledger that moved meanwhile
/// fails the wave rather than being overwritten.
fn record_ledger(settings: &MachineSettings) -> Value {
    json!({
        "Type": "Task",
        "Resource": format!("arn:{}:states:::dynamodb:updateItem", settings.partition),
        "Parameters": {
            "TableName": settings.ledger_table,
            "Key": {"pk": {"S.$": "$.wave.ledger_key"}, "sk": {"S.$": "$.wave.ledger_account"}},
            "UpdateExpression": "SET #commit = :commit, #run = :run, #at = :at",
            "ConditionExpression": "attribute_not_exists(#commit) OR #commit = :deployed OR #commit = :commit",
            "ExpressionAttributeNames": {"#commit": "commit", "#run": "run_id", "#at": "recorded_at"},
            "ExpressionAttributeValues": {
                ":commit": {"S.$": "$.wave.commit"},
                ":deployed": {"S.$": "$.wave.deployed_commit"},
                ":run": {"S.$": "$.run_id"},
                ":at": {"S.$": "$$.State.EnteredTime"}
            }
        },
        "ResultPath": null,
        "Retry": [{"ErrorEquals": DYNAMODB_TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "WaveFailed"}],
        "Next": "WaveSucceeded"
    })
}

/// Releases the rollout's apply lock (only if this run still holds it), then goes on to `next`. A release that
/// fails leaves a lock whose execution has ended, which the next apply reclaims: it never fails the rollout.
fn release_lock(settings: &MachineSettings, next: &str) -> Value {
    json!({
        "Type": "Task",
        "Resource": format!("arn:{}:states:::dynamodb:deleteItem", settings.partition),
        "Parameters": {
            "TableName": settings.ledger_table,
            "Key": {"pk": {"S.$": "$.ledger_key"}, "sk": {"S": crate::execution::LOCK_SORT_KEY}},
            "ConditionExpression": "#run = :run",
            "ExpressionAttributeNames": {"#run": "run_id"},
            "ExpressionAttributeValues": {":run": {"S.$": "$.run_id"}}
        },
        "ResultPath": null,
        "Retry": [{"ErrorEquals": DYNAMODB_TRANSIENT, "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": next}],
        "Next": next
    })
}

/// Whether the execution holds its scope's apply lock (apply rollouts of a deployment with a ledger).
fn holds_lock(release: &str, next: &str) -> Value {
    json!({
        "Type": "Choice",
        "Choices": [{"Variable": "$.holds_lock", "BooleanEquals": true, "Next": release}],
        "Default": next
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
                "Resource": format!("arn:{}:states:::lambda:invoke.waitForTaskToken", settings.partition),
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
                "Resource": format!("arn:{}:states:::ecs:runTask.sync", settings.partition),
                "Parameters": {
                    "Cluster": settings.cluster_arn,
                    "TaskDefinition.$": "$.wave.task_definition",
                    "LaunchType": "FARGATE",
                    "StartedBy": "deploy-runner",
                    "NetworkConfiguration": {"AwsvpcConfiguration": {
                        "Subnets": settings.subnets, "SecurityGroups": settings.security_groups,
                        "AssignPublicIp": if settings.assign_public_ip { "ENABLED" } else { "DISABLED" }}},
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
                ], "Next": "RecordsLedger"}],
                "Default": "WaveFailed"
            },
            "RecordsLedger": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.wave.records_ledger", "BooleanEquals": true, "Next": "RecordLedger"}],
                "Default": "WaveSucceeded"
            },
            "RecordLedger": record_ledger(settings),
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
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "HoldsLockAfterFailure"}],
                "Next": "HoldsLockAfterSuccess"
            },
            // The lock is given back as soon as the waves stop, before the (slower, retried) notifications.
            "HoldsLockAfterSuccess": holds_lock("ReleaseLockAfterSuccess", "NotifySuccess"),
            "ReleaseLockAfterSuccess": release_lock(settings, "NotifySuccess"),
            "HoldsLockAfterFailure": holds_lock("ReleaseLockAfterFailure", "NotifyFailure"),
            "ReleaseLockAfterFailure": release_lock(settings, "NotifyFailure"),
            "NotifySuccess": notify("succeeded", settings, "Done"),
            "NotifyFailure": notify("failed", settings, "RolloutFailed"),
            "Done": {"Type": "Succeed"},
            "RolloutFailed": {"Type": "Fail", "Error": "RolloutFailed", "Cause": "a wave did not succeed; later waves did not run"}
        }
    })
}

/// Where the Terraform template lives, relative to the workspace root.
pub const TERRAFORM_TEMPLATE_PATH: &str = "infra/modules/deploy-runner/render/state-machine.asl.json.tftpl";

/// Sentinels that stand in for the deployment's values while the template is generated; each becomes a Terraform
/// template interpolation of the same-named `templatefile` variable.
const TEMPLATE_STRINGS: [(&str, &str); 6] = [
    ("__cluster_arn__", "cluster_arn"),
    ("__assign_public_ip__", "assign_public_ip"),
    ("__notifier_arn__", "notifier_arn"),
    ("__container_name__", "container_name"),
    ("__partition__", "partition"),
    ("__ledger_table__", "ledger_table"),
];
const TEMPLATE_SUBNETS: &str = "__subnets__";
const TEMPLATE_SECURITY_GROUPS: &str = "__security_groups__";
const TEMPLATE_TIMEOUT: &str = "__approval_timeout_secs__";
/// A timeout no deployment uses, so its one occurrence can be swapped for the sentinel.
const TEMPLATE_TIMEOUT_VALUE: u64 = 987_654_321;

/// The definition as a Terraform `templatefile` template: the infra module renders it with `partition`, `cluster_arn`,
/// `assign_public_ip` (`"ENABLED"`/`"DISABLED"`), `notifier_arn`, `container_name`, `subnets`, `security_groups`,
/// `approval_timeout_secs` and `ledger_table`, so the deployed
/// definition is this crate's, not a second copy. `make infra-template` writes it to [`TERRAFORM_TEMPLATE_PATH`];
/// a test fails when the file is stale.
pub fn terraform_template() -> String {
    let settings = MachineSettings {
        partition: TEMPLATE_STRINGS[4].0.to_owned(),
        cluster_arn: TEMPLATE_STRINGS[0].0.to_owned(),
        notifier_arn: TEMPLATE_STRINGS[2].0.to_owned(),
        container_name: TEMPLATE_STRINGS[3].0.to_owned(),
        subnets: vec![TEMPLATE_SUBNETS.to_owned()],
        security_groups: vec![TEMPLATE_SECURITY_GROUPS.to_owned()],
        assign_public_ip: false,
        approval_timeout_secs: TEMPLATE_TIMEOUT_VALUE,
        ledger_table: TEMPLATE_STRINGS[5].0.to_owned(),
    };
    let mut value = definition(&settings);
    // A bool setting: the module passes the rendered "ENABLED"/"DISABLED" instead.
    value["States"]["Waves"]["ItemProcessor"]["States"][TASK_STATE]["Parameters"]["NetworkConfiguration"]
        ["AwsvpcConfiguration"]["AssignPublicIp"] = Value::from(TEMPLATE_STRINGS[1].0);
    replace_placeholders(&mut value);
    let mut text = serde_json::to_string_pretty(&SortedKeys(&value)).expect("a JSON value always serializes");
    // Whole JSON values become `${jsonencode(var)}`, which also quotes and escapes strings.
    for (sentinel, variable) in TEMPLATE_STRINGS
        .iter()
        .copied()
        .chain([(TEMPLATE_SUBNETS, "subnets"), (TEMPLATE_SECURITY_GROUPS, "security_groups")])
        .chain([(TEMPLATE_TIMEOUT, "approval_timeout_secs")])
    {
        text = text.replace(&format!("\"{sentinel}\""), &format!("${{jsonencode({variable})}}"));
    }
    // What is left sits inside a longer string (the container name in the exit-code JSONPath); the module
    // restricts container names to characters that need no escaping there.
    for (sentinel, variable) in TEMPLATE_STRINGS {
        text = text.replace(sentinel, &format!("${{{variable}}}"));
    }
    text.push('\n');
    text
}

/// Serializes a value with every object's keys sorted. serde_json's own key order depends on whether some crate in
/// the build turned on its `preserve_order` feature, and the checked-in template must not change with the build.
struct SortedKeys<'a>(&'a Value);

impl serde::Serialize for SortedKeys<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by_key(|(key, _)| *key);
                let mut object = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    object.serialize_entry(key, &SortedKeys(value))?;
                }
                object.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(SortedKeys)),
            scalar => scalar.serialize(serializer),
        }
    }
}

/// Swaps the list and number stand-ins for string sentinels, so each renders as one whole JSON value.
fn replace_placeholders(value: &mut Value) {
    match value {
        Value::Array(items)
            if items.len() == 1 && (items[0] == TEMPLATE_SUBNETS || items[0] == TEMPLATE_SECURITY_GROUPS) =>
        {
            *value = items[0].clone();
        }
        Value::Number(n) if n.as_u64() == Some(TEMPLATE_TIMEOUT_VALUE) => *value = Value::from(TEMPLATE_TIMEOUT),
        Value::Array(items) => items.iter_mut().for_each(replace_placeholders),
        Value::Object(map) => map.values_mut().for_each(replace_placeholders),
        _ => {}
    }
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
            partition: "aws".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:1:cluster/deploy".into(),
            container_name: "runner".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: false,
            notifier_arn: "arn:aws:lambda:us-east-1:1:function:notifier".into(),
            approval_timeout_secs: 3600,
            ledger_table: "deploy-runner-ledger".into(),
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
        let gov = super::definition(&MachineSettings { partition: "aws-us-gov".into(), ..settings() });
        let text = gov.to_string();
        assert!(
            text.contains("arn:aws-us-gov:states:::ecs:runTask.sync") && !text.contains("arn:aws:states"),
            "{text}"
        );
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

    #[test]
    fn the_checked_in_terraform_template_is_the_generated_one() {
        let checked_in = include_str!("../../../infra/modules/deploy-runner/render/state-machine.asl.json.tftpl");
        assert!(
            checked_in == terraform_template(),
            "{TERRAFORM_TEMPLATE_PATH} is stale: run `make infra-template` and commit the result"
        );
    }

    #[test]
    fn the_template_interpolates_every_setting_and_nothing_else() {
        let template = terraform_template();
        for expected in [
            "${jsonencode(cluster_arn)}",
            "${jsonencode(assign_public_ip)}",
            "${jsonencode(notifier_arn)}",
            "${jsonencode(container_name)}",
            "${jsonencode(subnets)}",
            "${jsonencode(security_groups)}",
            "${jsonencode(approval_timeout_secs)}",
            "${jsonencode(ledger_table)}",
            "@.Name == '${container_name}'",
            "\"arn:${partition}:states:::ecs:runTask.sync\"",
        ] {
            assert!(template.contains(expected), "missing {expected}");
        }
        assert!(!template.contains("__"), "a sentinel was left behind");
        assert!(!template.contains("%{"), "ASL text must not look like a template directive");
        let interpolations = template.matches("${").count();
        // Two notify states and the approval each name the notifier; they, the wave and the three ledger states
        // each name the partition; the ledger states name the table.
        assert_eq!(interpolations, 20, "{template}");
    }
}
