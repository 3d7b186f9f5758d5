//! The invoker against a real AWS API emulator (moto 5.2.5, started on a free loopback port by
//! `tests/helpers/moto_server.py`): the exact RunTask overrides, denials starting nothing, idempotent retries,
//! status from real DescribeTasks answers, logs from CloudWatch, and a canary secret that never leaks.

mod common;

use common::moto::{invoker_config, sdk_config, set_task, start_moto, CANARY};
use deploy_runner_aws::{CloudWatchLogs, EcsTasks};
use deploy_runner_control::{InvokeResponse, Invoker};
use serde_json::{json, Value};

const LIVE: &str = "https://github.com/acme/infrastructure-live.git";

fn plan(request_id: &str) -> Value {
    json!({"action": "plan", "actor": "octocat", "request_id": request_id, "repo": LIVE, "ref": "feature/x",
           "path": "dev/us-east-1/dev/vpc"})
}

async fn call(invoker: &Invoker<EcsTasks, CloudWatchLogs>, body: &Value, seen: &mut Vec<String>) -> InvokeResponse {
    let (response, audit) = invoker.handle(body.to_string().as_bytes(), b"moto").await;
    seen.push(serde_json::to_string(&response).expect("json"));
    seen.push(serde_json::to_string(&audit).expect("json"));
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn invoker_against_moto() {
    let moto = start_moto();
    let aws = sdk_config(&moto).await;
    let invoker = Invoker::new(invoker_config(&moto), EcsTasks::from_config(&aws), CloudWatchLogs::from_config(&aws));
    let ecs = aws_sdk_ecs::Client::new(&aws);
    let cluster = moto.setup["cluster_arn"].as_str().expect("cluster");
    let count = || async { ecs.list_tasks().cluster(cluster).send().await.expect("list").task_arns().len() };
    let mut seen = Vec::new();

    // A denial starts nothing.
    let mut denied = plan("gh-1-1");
    denied["repo"] = json!("https://github.com/acme/infrastructure-live.git.evil.com");
    let response = call(&invoker, &denied, &mut seen).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("deny", "repo_not_allowed"));
    assert_eq!(count().await, 0);

    // An allowed plan starts the planner with exactly the validated request.
    let response = call(&invoker, &plan("gh-2-1"), &mut seen).await;
    assert_eq!(response.decision, "allow", "{response:?}");
    let task_arn = response.task_arn.clone().expect("task");
    let run_id = response.run_id.clone().expect("run");
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(&task_arn)
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .expect("describe");
    let task = &described.tasks()[0];
    assert_eq!(task.started_by(), Some("deploy-runner"));
    assert_eq!(task.task_definition_arn(), moto.setup["task_definitions"]["planner"].as_str());
    let overrides = &task.overrides().expect("overrides").container_overrides()[0];
    assert_eq!(overrides.name(), Some("runner"));
    let command = overrides.command();
    assert_eq!(&command[..3], ["deploy-runner-task", "run", "--request"]);
    assert_eq!(serde_json::from_str::<Value>(&command[3]).expect("json"), plan("gh-2-1"));
    assert_eq!(command.len(), 4);
    let env: Vec<(&str, &str)> =
        overrides.environment().iter().map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or(""))).collect();
    assert_eq!(env, [("DEPLOY_RUNNER_RUN_ID", run_id.as_str())]);
    let tags: std::collections::BTreeMap<&str, &str> =
        task.tags().iter().map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))).collect();
    assert_eq!(tags.get("run-id"), Some(&run_id.as_str()));
    assert_eq!(tags.get("action"), Some(&"plan"));
    assert_eq!(tags.get("repo"), Some(&LIVE));
    assert_eq!(tags.get("path"), Some(&"dev/us-east-1/dev/vpc"));
    assert_eq!(count().await, 1);

    // The same request_id again: the same run, no second task.
    let again = call(&invoker, &plan("gh-2-1"), &mut seen).await;
    assert_eq!((again.run_id.as_deref(), again.task_arn.as_deref()), (Some(run_id.as_str()), Some(task_arn.as_str())));
    assert_eq!(count().await, 1);

    // The same request_id with another request (the plan claimed the id CI uses for its apply): refused, never
    // answered with the plan's task, no applier started; the audit line says so and names no task.
    let mut apply = plan("gh-2-1");
    apply["action"] = json!("apply");
    apply["ref"] = json!("main");
    let (claimed, audit) = invoker.handle(apply.to_string().as_bytes(), b"moto").await;
    assert_eq!((claimed.decision.as_str(), claimed.reason.as_str()), ("deny", "request_id_conflict"), "{claimed:?}");
    assert_eq!((claimed.task_arn, claimed.run_id), (None, None));
    assert_eq!(
        (audit.decision.as_str(), audit.reason.as_str(), audit.task_arn.as_str()),
        ("deny", "request_id_conflict", "")
    );
    assert_eq!(audit.action, "apply");
    assert_eq!(count().await, 1, "no applier task");

    // Status, from what ECS says: exit 0, exit 1, and STOPPED with no exit code (a failure).
    let status = json!({"action": "status", "actor": "ci", "run_id": run_id});
    for (exit, outcome) in [(json!(0), "succeeded"), (json!(1), "failed"), (Value::Null, "failed")] {
        set_task(&moto, &task_arn, exit.clone());
        let response = call(&invoker, &status, &mut seen).await;
        let got = response.status.expect("status");
        assert_eq!((got.last_status.as_str(), got.outcome), ("STOPPED", outcome), "exit {exit}");
        assert_eq!(got.exit_code, exit.as_i64().map(|e| e as i32));
        assert_eq!(got.stop_code.as_deref(), Some("EssentialContainerExited"));
    }

    // Logs: the run's own stream, paged.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    let stream = response.log_stream.clone().expect("stream");
    assert_eq!(stream, format!("deploy/runner/{}", task_arn.rsplit('/').next().expect("id")));
    logs.create_log_stream()
        .log_group_name("/deploy-runner/tasks")
        .log_stream_name(&stream)
        .send()
        .await
        .expect("stream");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64;
    let mut put = logs.put_log_events().log_group_name("/deploy-runner/tasks").log_stream_name(&stream);
    for (i, line) in ["[dev/us-east-1/dev/vpc] Plan: 1 to add, 0 to change, 0 to destroy.", "done"].iter().enumerate() {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(*line)
                .build()
                .expect("event"),
        );
    }
    put.send().await.expect("put");
    let page = call(&invoker, &json!({"action": "logs", "actor": "ci", "run_id": run_id}), &mut seen).await;
    assert_eq!(page.lines.as_deref().map(|l| l.len()), Some(2), "{page:?}");
    assert!(page.lines.expect("lines")[0].contains("Plan: 1 to add"));
    assert!(page.next_token.is_some());

    // An unknown run.
    let missing = call(&invoker, &json!({"action": "status", "actor": "ci", "run_id": "run-unknown"}), &mut seen).await;
    assert_eq!(missing.reason, "run_not_found");

    // The secret's value reached no response and no audit record.
    assert!(seen.iter().all(|s| !s.contains(CANARY)), "the canary leaked");
}
