//! The invoker's logic against in-memory ports (a real fake, as the memory store of serverless-rust-demo): every
//! decision, the exact RunTask input, idempotency, status interpretation and the audit record.

mod common;

use deploy_runner_control::ports::{
    ContainerState, LogPage, Logs, PortError, PortErrorKind, RunTaskRequest, RunTaskResponse, TaskState, Tasks,
};
use deploy_runner_control::{InvokeResponse, Invoker, InvokerConfig};
use serde_json::json;
use std::sync::Mutex;

const LIVE: &str = "https://github.com/acme/infrastructure-live.git";

#[derive(Default)]
struct MemoryTasks {
    started: Mutex<Vec<(RunTaskRequest, TaskState)>>,
    fail_with: Mutex<Option<Result<RunTaskResponse, PortError>>>,
}

impl Tasks for MemoryTasks {
    async fn run_task(&self, request: RunTaskRequest) -> Result<RunTaskResponse, PortError> {
        if let Some(scripted) = self.fail_with.lock().expect("lock").clone() {
            return scripted;
        }
        let mut started = self.started.lock().expect("lock");
        let arn = format!("arn:aws:ecs:us-east-1:123:task/deploy/task{}", started.len());
        let run_id = request.tags.iter().find(|(k, _)| k == "run-id").map(|(_, v)| v.clone());
        let state = TaskState {
            task_arn: arn.clone(),
            last_status: "PROVISIONING".into(),
            stop_code: None,
            stopped_reason: None,
            containers: vec![],
            run_id,
        };
        started.push((request, state));
        Ok(RunTaskResponse { task_arn: Some(arn), failures: vec![] })
    }

    async fn find_run(&self, _cluster: &str, run_id: &str) -> Result<Option<TaskState>, PortError> {
        let started = self.started.lock().expect("lock");
        Ok(started
            .iter()
            .find(|(r, _)| r.tags.iter().any(|(k, v)| k == "run-id" && v.starts_with(run_id)))
            .map(|(_, state)| state.clone()))
    }
}

struct MemoryLogs;

impl Logs for MemoryLogs {
    async fn read(&self, group: &str, stream: &str, next_token: Option<String>) -> Result<LogPage, PortError> {
        Ok(LogPage {
            lines: vec![format!("{group} {stream} from {}", next_token.as_deref().unwrap_or("start"))],
            next_token: Some("next-1".into()),
        })
    }
}

fn config() -> InvokerConfig {
    common::config(common::example_policy(), None)
}

fn invoker() -> Invoker<MemoryTasks, MemoryLogs> {
    Invoker::new(config(), MemoryTasks::default(), MemoryLogs)
}

async fn call(invoker: &Invoker<MemoryTasks, MemoryLogs>, body: serde_json::Value) -> InvokeResponse {
    invoker.handle(body.to_string().as_bytes(), b"nonce").await.0
}

fn apply(request_id: &str) -> serde_json::Value {
    json!({"action": "apply", "actor": "octocat", "request_id": request_id, "repo": LIVE, "ref": "main",
           "path": "dev/us-east-1/dev/vpc"})
}

#[tokio::test]
async fn an_allowed_request_starts_exactly_the_validated_task() {
    let invoker = invoker();
    let response = call(&invoker, apply("gh-42-1")).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("allow", "ok"), "{response:?}");
    let run_id = response.run_id.clone().expect("run id");
    assert_eq!(response.log_stream.as_deref(), Some("deploy/runner/task0"));
    let started = invoker_tasks(&invoker);
    assert_eq!(started.len(), 1);
    let run = &started[0];
    assert_eq!(run.task_definition, "applier:1");
    assert_eq!(run.started_by, "deploy-runner");
    assert_eq!(run.container, "runner");
    assert_eq!(&run.command[..3], ["deploy-runner-task", "run", "--request"]);
    let passed: serde_json::Value = serde_json::from_str(&run.command[3]).expect("json");
    assert_eq!(passed, apply("gh-42-1"), "the typed request, re-encoded, and nothing else");
    assert_eq!(run.environment, [("DEPLOY_RUNNER_RUN_ID".to_owned(), run_id.clone())]);
    let tags: std::collections::BTreeMap<_, _> = run.tags.iter().cloned().collect();
    assert_eq!(tags["action"], "apply");
    assert_eq!(tags["repo"], LIVE);
    assert_eq!(tags["ref"], "main");
    assert_eq!(tags["path"], "dev/us-east-1/dev/vpc");
    assert_eq!(tags["actor"], "octocat");
    assert_eq!(tags["run-id"], run_id);
    assert!(run.client_token.len() <= 64);
}

fn invoker_tasks(invoker: &Invoker<MemoryTasks, MemoryLogs>) -> Vec<RunTaskRequest> {
    invoker_ports(invoker).started.lock().expect("lock").iter().map(|(r, _)| r.clone()).collect()
}

fn invoker_ports(invoker: &Invoker<MemoryTasks, MemoryLogs>) -> &MemoryTasks {
    invoker.tasks()
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_starts_nothing_new() {
    let invoker = invoker();
    let first = call(&invoker, apply("gh-42-1")).await;
    let second = call(&invoker, apply("gh-42-1")).await;
    assert_eq!(first.run_id, second.run_id);
    assert_eq!(first.task_arn, second.task_arn);
    assert!(second.message.starts_with("already started"), "{}", second.message);
    assert_eq!(invoker_tasks(&invoker).len(), 1);
    let third = call(&invoker, apply("gh-42-2")).await;
    assert_ne!(third.run_id, first.run_id);
    assert_eq!(invoker_tasks(&invoker).len(), 2);
}

#[tokio::test]
async fn a_request_id_is_bound_to_its_request() {
    let invoker = invoker();
    // Someone holding CI's credential claims the id CI will use for the apply, with a plan.
    let mut claim = apply("gh-99-1");
    claim["action"] = json!("plan");
    let (planned, _) = invoker.handle(claim.to_string().as_bytes(), b"n").await;
    assert_eq!(planned.decision, "allow");
    let (real, audit) = invoker.handle(apply("gh-99-1").to_string().as_bytes(), b"n").await;
    assert_eq!((real.decision.as_str(), real.reason.as_str()), ("deny", "request_id_conflict"), "{real:?}");
    assert!(real.task_arn.is_none() && real.run_id.is_none(), "never answered with the plan's run: {real:?}");
    assert_eq!(
        (audit.decision.as_str(), audit.reason.as_str(), audit.task_arn.as_str()),
        ("deny", "request_id_conflict", "")
    );
    assert_eq!(invoker_tasks(&invoker).len(), 1, "no second task, and the plan's is not passed off as the apply");
    // The same request again is a retry: the audit line names the task it found.
    let (again, audit) = invoker.handle(claim.to_string().as_bytes(), b"n").await;
    assert_eq!((again.run_id.clone(), again.task_arn.clone()), (planned.run_id.clone(), planned.task_arn.clone()));
    assert_eq!(audit.task_arn, planned.task_arn.expect("arn"));
    // Another actor is another request too.
    claim["actor"] = json!("mallory");
    assert_eq!(call(&invoker, claim).await.reason, "request_id_conflict");
}

#[tokio::test]
async fn denials_and_malformed_requests_start_nothing_and_are_audited() {
    let invoker = invoker();
    let mut guarded = apply("gh-1");
    guarded["path"] = json!("dev/us-east-1/mgmt/ecs-deploy-runner");
    let (response, audit) = invoker.handle(guarded.to_string().as_bytes(), b"n").await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("deny", "path_guarded"));
    assert_eq!(audit.decision, "deny");
    assert_eq!(audit.path, "dev/us-east-1/mgmt/ecs-deploy-runner");
    assert_eq!(audit.actor, "octocat");
    let (response, audit) = invoker.handle(b"{\"action\": ", b"n").await;
    assert_eq!(response.reason, "malformed_request");
    assert_eq!(
        (audit.event, audit.decision.as_str(), audit.reason.as_str()),
        ("decision", "deny", "malformed_request")
    );
    assert!(invoker_tasks(&invoker).is_empty());
}

#[tokio::test]
async fn launch_failures_are_reported_with_ecs_reason() {
    let invoker = invoker();
    *invoker_ports(&invoker).fail_with.lock().expect("lock") =
        Some(Ok(RunTaskResponse { task_arn: None, failures: vec!["arn:x: RESOURCE:MEMORY".into()] }));
    let response = call(&invoker, apply("a")).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("error", "task_launch_failed"));
    assert!(response.message.contains("RESOURCE:MEMORY"));
    *invoker_ports(&invoker).fail_with.lock().expect("lock") = Some(Err(PortError {
        kind: PortErrorKind::AccessDenied,
        message: "not authorized to perform ecs:RunTask".into(),
    }));
    let response = call(&invoker, apply("b")).await;
    assert_eq!(response.reason, "aws_error");
    assert!(response.message.contains("ecs:RunTask"));
}

#[tokio::test]
async fn status_reads_the_named_container_and_a_missing_exit_code_is_failure() {
    let invoker = invoker();
    let run_id = call(&invoker, apply("s")).await.run_id.expect("run");
    let set = |status: &str, containers: Vec<ContainerState>| {
        let mut started = invoker_ports(&invoker).started.lock().expect("lock");
        started[0].1.last_status = status.into();
        started[0].1.containers = containers;
    };
    let container = |name: &str, exit: Option<i32>| ContainerState { name: name.into(), exit_code: exit, reason: None };
    let cases = [
        ("RUNNING", vec![container("runner", None)], "running", None),
        ("STOPPED", vec![container("sidecar", Some(0)), container("runner", Some(0))], "succeeded", Some(0)),
        ("STOPPED", vec![container("sidecar", Some(0)), container("runner", Some(1))], "failed", Some(1)),
        ("STOPPED", vec![container("sidecar", Some(0)), container("runner", None)], "failed", None),
        ("STOPPED", vec![], "failed", None),
        ("PROVISIONING", vec![], "pending", None),
    ];
    for (last, containers, outcome, exit) in cases {
        set(last, containers);
        let response = call(&invoker, json!({"action": "status", "actor": "ci", "run_id": run_id})).await;
        let status = response.status.expect("status");
        assert_eq!((status.outcome, status.exit_code), (outcome, exit), "{last}");
    }
    let missing = call(&invoker, json!({"action": "status", "actor": "ci", "run_id": "run-nope"})).await;
    assert_eq!((missing.decision.as_str(), missing.reason.as_str()), ("error", "run_not_found"));
}

#[tokio::test]
async fn logs_page_through_the_runs_stream() {
    let invoker = invoker();
    let run_id = call(&invoker, apply("l")).await.run_id.expect("run");
    let page = call(&invoker, json!({"action": "logs", "actor": "ci", "run_id": run_id, "next_token": "t-0"})).await;
    assert_eq!(page.lines, Some(vec!["/deploy-runner/tasks deploy/runner/task0 from t-0".to_owned()]));
    assert_eq!(page.next_token.as_deref(), Some("next-1"));
}

#[test]
fn bad_configuration_fails_with_a_clear_message() {
    let good: serde_json::Value = serde_json::from_str(
        &json!({"policy": serde_json::from_str::<serde_json::Value>(include_str!("../../../examples/policy.json")).expect("p"),
                "runtime": {"cluster_arn": "c", "subnets": ["s"], "security_groups": [], "log_group": "g",
                            "log_stream_prefix": "p",
                            "task_definitions": {"planner": "a", "applier": "b", "image-builder": "c"}}})
        .to_string(),
    )
    .expect("json");
    assert!(InvokerConfig::from_json(&good.to_string()).is_ok());
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let mutations: Vec<(&str, Mutation, &str)> = vec![
        ("no subnets", Box::new(|v| v["runtime"]["subnets"] = json!([])), "needs at least one subnet"),
        ("unknown field", Box::new(|v| v["runtime"]["extra"] = json!(1)), "unknown field `extra`"),
        ("bad policy", Box::new(|v| v["policy"]["path_guards"] = json!(["("])), "path_guards[0]"),
        ("empty cluster", Box::new(|v| v["runtime"]["cluster_arn"] = json!("")), "cluster_arn must not be empty"),
    ];
    for (name, mutate, needle) in mutations {
        let mut doc = good.clone();
        mutate(&mut doc);
        let err = InvokerConfig::from_json(&doc.to_string()).expect_err(name).to_string();
        assert!(err.contains(needle), "{name}: {err}");
    }
}

/// A ledger that says dev deployed `DEPLOYED` from main; nothing else is asked of it by a single-unit apply.
struct OneEntryLedger;

const DEPLOYED: &str = "0123456789abcdef0123456789abcdef01234567";

impl deploy_runner_control::ports::LedgerStore for OneEntryLedger {
    async fn read(
        &self,
        scope: &deploy_runner_rollout::LedgerScope,
    ) -> Result<deploy_runner_rollout::LedgerView, PortError> {
        let mut view = deploy_runner_rollout::LedgerView::empty(scope);
        if scope.apply_ref == "main" {
            view.accounts.push(deploy_runner_rollout::ledger::LedgerEntry {
                account: "dev".into(),
                commit: Some(DEPLOYED.into()),
                run_id: "run-1".into(),
                recorded_at: "2026-11-29T00:00:00Z".into(),
                baseline: None,
            });
        }
        Ok(view)
    }
    async fn acquire(
        &self,
        _: &deploy_runner_rollout::LedgerScope,
        _: &deploy_runner_rollout::ApplyLock,
        _: Option<&deploy_runner_rollout::ApplyLock>,
    ) -> Result<Option<deploy_runner_rollout::ApplyLock>, PortError> {
        unreachable!("a single-unit apply takes no lock")
    }
    async fn set_baseline(
        &self,
        _: &deploy_runner_rollout::LedgerScope,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), PortError> {
        unreachable!("a single-unit apply records nothing")
    }
    async fn release(&self, _: &deploy_runner_rollout::LedgerScope, _: &str) -> Result<(), PortError> {
        unreachable!("a single-unit apply takes no lock")
    }
}

/// A single-unit apply reaches the task with what its account deployed, read from the ledger, so the task can
/// refuse to roll the account back; a caller's own `deployed_commit` never gets through, and plans carry none.
#[tokio::test]
async fn a_single_apply_carries_what_its_account_deployed_from_the_ledger() {
    let mut document = common::example_policy();
    document["apply_refs"] = json!(["main", "release"]);
    let mut stage = document["accounts"]["dev"].clone();
    stage["id"] = json!("333333333333");
    document["accounts"]["stage"] = stage;
    let mut config = common::config(document, None);
    config.runtime.ledger_table = Some("deploy-runner-ledger".into());
    let invoker = Invoker::new(config, MemoryTasks::default(), MemoryLogs).with_ledger(OneEntryLedger);
    let passed = |n: usize| -> serde_json::Value {
        let started = invoker.tasks().started.lock().expect("lock");
        serde_json::from_str(&started[n].0.command[3]).expect("json")
    };
    let ask = |body: serde_json::Value| {
        let invoker = &invoker;
        async move { invoker.handle(body.to_string().as_bytes(), b"nonce").await.0 }
    };

    let mut forged = apply("gh-1-1");
    forged["deployed_commit"] = json!("ffffffffffffffffffffffffffffffffffffffff");
    let response = ask(forged).await;
    assert_eq!(response.decision, "allow", "{response:?}");
    assert_eq!(passed(0)["deployed_commit"], DEPLOYED, "the ledger's commit, not the caller's");

    // Under another apply ref, whose ledger has nothing for dev: no deployed commit.
    let mut release = apply("gh-2-1");
    release["ref"] = json!("release");
    assert_eq!(ask(release).await.decision, "allow");
    assert_eq!(passed(1).get("deployed_commit"), None);

    // Another account (the unit's first path segment) has nothing deployed either.
    let mut stage = apply("gh-3-1");
    stage["path"] = json!("stage/us-east-1/stage/vpc");
    assert_eq!(ask(stage).await.decision, "allow");
    assert_eq!(passed(2).get("deployed_commit"), None);

    let mut plan = apply("gh-4-1");
    plan["action"] = json!("plan");
    plan["deployed_commit"] = json!(DEPLOYED);
    let response = ask(plan).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("deny", "field_invalid"), "{response:?}");
}
