//! Fault paths the emulator can't produce, with aws-smithy-mocks: the real client code runs (retries, error
//! mapping), only the HTTP exchange is scripted.

use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::{RunTaskError, RunTaskOutput};
use aws_sdk_ecs::types::{Container, Failure, Tag, Task};
use aws_sdk_ecs::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use deploy_runner_aws::EcsTasks;
use deploy_runner_control::ports::{LaunchType, PortErrorKind, RunTaskRequest, Tasks};
use deploy_runner_control::RunStatus;

fn request() -> RunTaskRequest {
    RunTaskRequest {
        cluster: "deploy".into(),
        task_definition: "applier:1".into(),
        launch_type: LaunchType::Fargate,
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        assign_public_ip: false,
        container: "runner".into(),
        command: vec!["deploy-runner-task".into()],
        environment: vec![("DEPLOY_RUNNER_RUN_ID".into(), "run-1".into())],
        started_by: "deploy-runner".into(),
        tags: vec![("run-id".into(), "run-1".into())],
        client_token: "dr-1".into(),
    }
}

fn task(status: &str, exit: Option<i32>, run_id: &str) -> Task {
    Task::builder()
        .task_arn(format!("arn:aws:ecs:us-east-1:1:task/deploy/{run_id}"))
        .last_status(status)
        .containers(Container::builder().name("sidecar").exit_code(0).build())
        .containers(Container::builder().name("runner").set_exit_code(exit).build())
        .tags(Tag::builder().key("run-id").value(run_id).build())
        .build()
}

fn throttled() -> aws_smithy_runtime_api::http::Response {
    aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("status"),
        aws_smithy_types::body::SdkBody::from(r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#),
    )
}

#[tokio::test]
async fn throttling_then_success_is_retried_by_the_sdk() {
    let rule = mock!(Client::run_task)
        .sequence()
        .http_response(throttled)
        .times(2)
        .output(|| RunTaskOutput::builder().tasks(task("PROVISIONING", None, "run-1")).build())
        .build();
    let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule]);
    let response = EcsTasks::new(client).run_task(request()).await.expect("retried into success");
    assert_eq!(response.task_arn.as_deref(), Some("arn:aws:ecs:us-east-1:1:task/deploy/run-1"));
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn failures_are_returned_with_ecs_reason() {
    let rule = mock!(Client::run_task).then_output(|| {
        RunTaskOutput::builder()
            .failures(Failure::builder().arn("arn:x").reason("RESOURCE:MEMORY").detail("no capacity").build())
            .build()
    });
    let client = mock_client!(aws_sdk_ecs, [&rule]);
    let response = EcsTasks::new(client).run_task(request()).await.expect("answered");
    assert_eq!(response.task_arn, None);
    assert_eq!(response.failures, ["arn:x: RESOURCE:MEMORY (no capacity)"]);
}

#[tokio::test]
async fn access_denied_is_classified() {
    let rule = mock!(Client::run_task).then_error(|| {
        RunTaskError::AccessDeniedException(
            aws_sdk_ecs::types::error::AccessDeniedException::builder()
                .message("User is not authorized to perform: ecs:RunTask")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_ecs, [&rule]);
    let error = EcsTasks::new(client).run_task(request()).await.expect_err("denied");
    assert_eq!(error.kind, PortErrorKind::AccessDenied);
    assert!(error.message.contains("ecs:RunTask"), "{}", error.message);
}

#[tokio::test]
async fn stopped_tasks_read_the_named_container() {
    for (exit, outcome) in [(Some(0), "succeeded"), (Some(1), "failed"), (None, "failed")] {
        let list = mock!(Client::list_tasks)
            .then_output(|| ListTasksOutput::builder().task_arns("arn:aws:ecs:us-east-1:1:task/deploy/run-7").build());
        let describe = mock!(Client::describe_tasks)
            .then_output(move || DescribeTasksOutput::builder().tasks(task("STOPPED", exit, "run-7")).build());
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &describe]);
        let found = EcsTasks::new(client).find_run("deploy", "run-7").await.expect("ok").expect("found");
        let status = RunStatus::from_task(&found, "runner");
        assert_eq!((status.exit_code, status.outcome), (exit, outcome));
    }
}

#[tokio::test]
async fn an_unknown_run_is_none() {
    let list = mock!(Client::list_tasks).then_output(|| ListTasksOutput::builder().build());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list]);
    assert_eq!(EcsTasks::new(client).find_run("deploy", "run-x").await.expect("ok"), None);
}
