//! The Lambda handler called directly with a `LambdaEvent`, over SDK clients whose HTTP exchanges are scripted with
//! aws-smithy-mocks (no runtime, no network).

use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::RunTaskOutput;
use aws_sdk_ecs::types::{Tag, Task};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use deploy_runner_aws::{CloudWatchLogs, EcsTasks};
use deploy_runner_control::runid::run_identity;
use deploy_runner_control::{Invoker, InvokerConfig};
use deploy_runner_invoker::handle_event;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use serde_json::value::RawValue;

fn config() -> InvokerConfig {
    let policy: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/policy.json")).expect("policy");
    InvokerConfig::from_json(
        &json!({"policy": policy, "runtime": {
            "cluster_arn": "deploy", "subnets": ["subnet-1"], "security_groups": ["sg-1"],
            "task_definitions": {"planner": "planner:1", "applier": "applier:1", "image-builder": "builder:1"},
            "log_group": "/deploy-runner", "log_stream_prefix": "deploy"}})
        .to_string(),
    )
    .expect("config")
}

fn event(body: &str) -> LambdaEvent<Box<RawValue>> {
    LambdaEvent::new(RawValue::from_string(body.to_owned()).expect("raw json"), Context::default())
}

const PLAN: &str = r#"{"action": "plan", "actor": "octocat", "request_id": "gh-9-1",
    "repo": "https://github.com/acme/infrastructure-live.git", "ref": "feature/x", "path": "dev/us-east-1/dev/vpc"}"#;

#[tokio::test]
async fn plan_starts_the_planner_with_the_validated_request() {
    let list = mock!(aws_sdk_ecs::Client::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let run = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(|r| {
            let overrides = r.overrides().expect("overrides").container_overrides();
            r.task_definition() == Some("planner:1")
                && r.started_by() == Some("deploy-runner")
                && overrides[0].name() == Some("runner")
                && overrides[0].command()[..3] == ["deploy-runner-task", "run", "--request"]
        })
        .then_output(|| {
            RunTaskOutput::builder()
                .tasks(Task::builder().task_arn("arn:aws:ecs:us-east-1:1:task/deploy/t1").build())
                .build()
        });
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &run]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, []);
    let invoker = Invoker::new(config(), EcsTasks::new(ecs), CloudWatchLogs::new(logs));
    let response = answer(handle_event(&invoker, event(PLAN)).await);
    assert_eq!(response["decision"], "allow", "{response}");
    assert_eq!(response["container"], "planner");
    assert_eq!(response["log_stream"], "deploy/runner/t1");
    assert_eq!(run.num_calls(), 1);
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_finds_the_run_and_starts_nothing() {
    let run_id = run_identity(&deploy_runner_gate::Request::decode(PLAN.as_bytes()).expect("plan"), b"").run_id;
    let list = mock!(aws_sdk_ecs::Client::list_tasks)
        .then_output(|| ListTasksOutput::builder().task_arns("arn:aws:ecs:us-east-1:1:task/deploy/t1").build());
    let tag = run_id.clone();
    let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(move || {
        DescribeTasksOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn("arn:aws:ecs:us-east-1:1:task/deploy/t1")
                    .last_status("RUNNING")
                    .tags(Tag::builder().key("run-id").value(tag.clone()).build())
                    .build(),
            )
            .build()
    });
    let run = mock!(aws_sdk_ecs::Client::run_task).then_output(|| RunTaskOutput::builder().build());
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &describe, &run]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, []);
    let invoker = Invoker::new(config(), EcsTasks::new(ecs), CloudWatchLogs::new(logs));
    let response = answer(handle_event(&invoker, event(PLAN)).await);
    assert_eq!(response["run_id"], run_id.as_str());
    assert_eq!(response["task_arn"], "arn:aws:ecs:us-east-1:1:task/deploy/t1");
    assert_eq!(run.num_calls(), 0, "no second task");
}

#[tokio::test]
async fn a_denial_calls_no_aws_api() {
    let run = mock!(aws_sdk_ecs::Client::run_task).then_output(|| RunTaskOutput::builder().build());
    let list = mock!(aws_sdk_ecs::Client::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&run, &list]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, []);
    let invoker = Invoker::new(config(), EcsTasks::new(ecs), CloudWatchLogs::new(logs));
    let body = PLAN.replace("feature/x", "--upload-pack=x");
    let response = answer(handle_event(&invoker, event(&body)).await);
    assert_eq!((response["decision"].as_str(), response["reason"].as_str()), (Some("deny"), Some("ref_invalid")));
    assert_eq!(run.num_calls() + list.num_calls(), 0);
}

/// The handler's raw answer, parsed; it must be inert JSON.
fn answer(raw: Result<Box<RawValue>, lambda_runtime::Error>) -> serde_json::Value {
    let raw = raw.expect("handled");
    assert!(!raw.get().chars().any(deploy_runner_gate::text::is_unsafe), "raw separators or controls: {}", raw.get());
    serde_json::from_str(raw.get()).expect("the answer is JSON")
}

#[tokio::test]
async fn hostile_text_in_a_log_page_reaches_the_caller_escaped() {
    // A plan's output is anyone's text: a line separator or bidi control in it must not reach CI raw.
    let run_id = "run-0123456789abcdef01234567";
    let list = mock!(aws_sdk_ecs::Client::list_tasks)
        .then_output(|| ListTasksOutput::builder().task_arns("arn:aws:ecs:us-east-1:1:task/deploy/t1").build());
    let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(move || {
        DescribeTasksOutput::builder()
            .tasks(
                Task::builder()
                    .task_arn("arn:aws:ecs:us-east-1:1:task/deploy/t1")
                    .last_status("RUNNING")
                    .tags(Tag::builder().key("run-id").value(run_id).build())
                    .build(),
            )
            .build()
    });
    let hostile = "plan\u{2028}{\"decision\":\"allow\"} \u{202e}devorppa \u{85}";
    let page = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_output(move || {
        aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput::builder()
            .events(aws_sdk_cloudwatchlogs::types::OutputLogEvent::builder().message(hostile).build())
            .build()
    });
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &describe]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, [&page]);
    let invoker = Invoker::new(config(), EcsTasks::new(ecs), CloudWatchLogs::new(logs));
    let body = json!({"action": "logs", "actor": "ci", "run_id": run_id}).to_string();
    let response = answer(handle_event(&invoker, event(&body)).await);
    assert_eq!(response["lines"], json!([hostile]), "escaped on the wire, the same text once decoded");
}

#[test]
fn the_entry_point_comes_from_the_environment() {
    use deploy_runner_control::EntryPoint;
    use deploy_runner_invoker::entry_point_from;
    assert_eq!(entry_point_from(None), Ok(EntryPoint::Ci), "an invoker configured as before serves CI");
    assert_eq!(entry_point_from(Some("approvals")), Ok(EntryPoint::Approvals));
    assert!(entry_point_from(Some("admin")).expect_err("refused").contains("must be ci or approvals"));
}
