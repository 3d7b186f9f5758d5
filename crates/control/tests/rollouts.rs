//! The invoker's rollout actions against an in-memory Step Functions (executions by name, scripted history):
//! the execution input, approvals answered through the waiting task token, and resume under today's policy.

mod common;

use deploy_runner_control::ports::{
    ExecutionState, Executions, LogPage, Logs, PortError, PortErrorKind, RunTaskRequest, RunTaskResponse, TaskState,
    Tasks,
};
use deploy_runner_control::{EntryPoint, InvokeResponse, Invoker, InvokerConfig};
use deploy_runner_rollout::asl::TASK_STATE;
use deploy_runner_rollout::execution::{ExecutionInput, HistoryEvent};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const LIVE: &str = "https://github.com/acme/infrastructure-live.git";
const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:deploy-runner";

struct NoTasks;
impl Tasks for NoTasks {
    async fn run_task(&self, _: RunTaskRequest) -> Result<RunTaskResponse, PortError> {
        panic!("a rollout never starts an ECS task itself")
    }
    async fn find_run(&self, _: &str, _: &str) -> Result<Option<TaskState>, PortError> {
        Ok(None)
    }
}

struct EchoLogs;
impl Logs for EchoLogs {
    async fn read(&self, group: &str, stream: &str, _: Option<String>) -> Result<LogPage, PortError> {
        Ok(LogPage { lines: vec![format!("{group} {stream}")], next_token: None })
    }
}

/// Executions by ARN, with the history each one has so far and the answers sent to task tokens. Clones share them
/// (two entry points of one deployment see the same Step Functions).
#[derive(Default, Clone)]
struct MemoryExecutions(Arc<Recorded>);

#[derive(Default)]
struct Recorded {
    executions: Mutex<BTreeMap<String, (ExecutionState, Vec<HistoryEvent>)>>,
    answers: Mutex<Vec<String>>,
}

impl std::ops::Deref for MemoryExecutions {
    type Target = Recorded;
    fn deref(&self) -> &Recorded {
        &self.0
    }
}

/// The ARN of a run's first execution: executions are named after the run id's claim (its request id's part).
fn execution_of(run_id: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:deploy-runner:{}", &run_id[..16])
}

impl MemoryExecutions {
    fn script(&self, arn: &str, status: &str, events: Vec<HistoryEvent>) {
        let mut executions = self.executions.lock().expect("lock");
        let entry = executions.get_mut(arn).expect("started");
        entry.0.status = status.into();
        entry.1 = events;
    }
}

impl Executions for MemoryExecutions {
    async fn start(&self, machine: &str, name: &str, input: &str) -> Result<String, PortError> {
        let arn = format!("{}:{name}", machine.replace(":stateMachine:", ":execution:"));
        let mut executions = self.executions.lock().expect("lock");
        if let Some((existing, _)) = executions.get(&arn) {
            // Step Functions: the same name and input is idempotent only while the execution runs.
            if existing.input != input || existing.status != "RUNNING" {
                return Err(PortError { kind: PortErrorKind::Other, message: "ExecutionAlreadyExists: x".into() });
            }
            return Ok(arn);
        }
        let state = ExecutionState { status: "RUNNING".into(), input: input.into(), error: None, cause: None };
        executions.insert(arn.clone(), (state, vec![]));
        Ok(arn)
    }
    async fn describe(&self, arn: &str) -> Result<Option<ExecutionState>, PortError> {
        Ok(self.executions.lock().expect("lock").get(arn).map(|(s, _)| s.clone()))
    }
    async fn history(&self, arn: &str) -> Result<Vec<HistoryEvent>, PortError> {
        Ok(self.executions.lock().expect("lock").get(arn).map(|(_, h)| h.clone()).unwrap_or_default())
    }
    async fn send_task_success(&self, token: &str, output: &str) -> Result<(), PortError> {
        self.answers.lock().expect("lock").push(format!("success {token} {output}"));
        Ok(())
    }
    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), PortError> {
        self.answers.lock().expect("lock").push(format!("failure {token} {error} {cause}"));
        Ok(())
    }
}

fn policy(approvals: &[&str]) -> Value {
    let mut policy = common::example_policy();
    policy["accounts"]["stage"] = json!({"id": "222222222222", "deploy_order": 2});
    policy["approval_accounts"] = json!(approvals);
    policy
}

fn config(policy: Value) -> InvokerConfig {
    common::config(policy, Some(MACHINE))
}

type RolloutInvoker = Invoker<NoTasks, EchoLogs, MemoryExecutions>;

fn invoker(policy: Value) -> RolloutInvoker {
    Invoker::new(config(policy), NoTasks, EchoLogs).with_executions(MemoryExecutions::default())
}

async fn call(invoker: &RolloutInvoker, body: Value) -> InvokeResponse {
    invoker.handle(body.to_string().as_bytes(), b"nonce").await.0
}

/// The commit every apply rollout is pinned to.
const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";

fn rollout() -> Value {
    let unit = |p: &str| json!({"path": p, "change": "affected"});
    json!({"action": "rollout", "actor": "octocat", "request_id": "gh-7-1", "repo": LIVE, "ref": HEAD,
           "mode": "apply", "units": [unit("prod/app"), unit("dev/app"), unit("stage/app")]})
}

fn entered(name: &str, account: &str) -> HistoryEvent {
    HistoryEvent::StateEntered { name: name.into(), input: json!({"wave": {"account": account}}).to_string() }
}

fn wave_ran(account: &str, succeeded: bool) -> Vec<HistoryEvent> {
    vec![
        entered(TASK_STATE, account),
        HistoryEvent::TaskOutput {
            resource_type: "ecs".into(),
            output: json!({"Tasks": [{"TaskArn": format!("arn:aws:ecs:us-east-1:1:task/deploy/{account}-task")}]})
                .to_string(),
        },
        entered(if succeeded { "WaveSucceeded" } else { "WaveFailed" }, account),
    ]
}

fn statuses(response: &InvokeResponse) -> Vec<(String, String)> {
    let view = response.rollout.as_ref().expect("a rollout view");
    view.waves.iter().map(|w| (w.account.clone(), serde_json::to_value(w.status).expect("s").to_string())).collect()
}

#[tokio::test]
async fn a_rollout_starts_one_execution_named_by_the_run_with_waves_in_policy_order() {
    let invoker = invoker(policy(&["prod"]));
    let response = call(&invoker, rollout()).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("allow", "ok"), "{response:?}");
    let run_id = response.run_id.clone().expect("run id");
    let view = response.rollout.expect("view");
    assert_eq!(view.execution_arn, execution_of(&run_id));
    let executions = invoker.executions_for_test();
    let input = ExecutionInput::from_json(&executions[0].1).expect("input");
    let accounts: Vec<(&str, bool, &str)> =
        input.waves.iter().map(|w| (w.account.as_str(), w.needs_approval, w.task_definition.as_str())).collect();
    assert_eq!(accounts, [("dev", false, "applier:1"), ("stage", false, "applier:1"), ("prod", true, "applier:1")]);
    assert_eq!(input.rollout.actor, "octocat");
    // A CI retry with the same request_id lands on the same execution.
    let again = call(&invoker, rollout()).await;
    assert_eq!(again.run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(invoker.executions_for_test().len(), 1);
    // Plans run on the planner.
    let mut plan = rollout();
    plan["mode"] = json!("plan");
    plan["request_id"] = json!("gh-7-2");
    call(&invoker, plan).await;
    let executions = invoker.executions_for_test();
    let planned = executions.iter().map(|(_, i)| ExecutionInput::from_json(i).expect("input"));
    assert!(planned.clone().any(|i| i.waves.iter().all(|w| w.task_definition == "planner:1")));
}

#[tokio::test]
async fn a_rollouts_request_id_is_bound_to_its_request() {
    let invoker = invoker(policy(&[]));
    // A plan rollout claims the id first: the apply under the same id is refused, not answered with the plan.
    let mut plan = rollout();
    plan["mode"] = json!("plan");
    let planned = call(&invoker, plan.clone()).await;
    assert_eq!(planned.decision, "allow", "{planned:?}");
    let apply = call(&invoker, rollout()).await;
    assert_eq!((apply.decision.as_str(), apply.reason.as_str()), ("deny", "request_id_conflict"), "{apply:?}");
    assert!(apply.rollout.is_none() && apply.run_id.is_none(), "{apply:?}");
    assert_eq!(invoker.executions_for_test().len(), 1);
    // The plan again is a retry, even after its execution ended (Step Functions refuses the name then).
    invoker.executions_ref().script(&execution_of(planned.run_id.as_deref().expect("run")), "SUCCEEDED", vec![]);
    let again = call(&invoker, plan).await;
    assert_eq!((again.decision.as_str(), again.run_id.clone()), ("allow", planned.run_id.clone()), "{again:?}");
    assert!(again.message.starts_with("already started"), "{}", again.message);
    // The apply's would-be run id is nobody's run: status doesn't answer with the plan's.
    let (_, audit) = invoker.handle(rollout().to_string().as_bytes(), b"n").await;
    assert_eq!(audit.execution_arn, "", "a denial names no execution");
    let (_, audit) = invoker
        .handle(json!({"action": "status", "actor": "ci", "run_id": planned.run_id}).to_string().as_bytes(), b"n")
        .await;
    assert_eq!(
        audit.execution_arn,
        execution_of(planned.run_id.as_deref().expect("run")),
        "the audit names the execution found"
    );
}

#[tokio::test]
async fn a_rollout_the_gate_admits_but_step_functions_could_not_hold_gets_its_own_reason() {
    let invoker = invoker(policy(&[]));
    // As many units as fit under the gate's body limit: their re-encoded commands (quotes escaped) do not fit in
    // Step Functions' 256 KiB input.
    let mut request = rollout();
    let unit = |i: usize| json!({"path": format!("dev/{}/unit-{i:04}", "a".repeat(100)), "change": "affected"});
    let room = deploy_runner_gate::strict_json::MAX_BODY_BYTES - 400 - request.to_string().len();
    request["units"] = json!((0..room / (unit(0).to_string().len() + 1)).map(unit).collect::<Vec<_>>());
    assert!(request.to_string().len() < deploy_runner_gate::strict_json::MAX_BODY_BYTES);
    let response = call(&invoker, request).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("error", "rollout_too_large"), "{response:?}");
    assert!(response.message.contains("256 KiB"), "{}", response.message);
    assert!(invoker.executions_for_test().is_empty(), "nothing started");
}

#[tokio::test]
async fn approvals_answer_the_waiting_token_and_only_a_waiting_one() {
    let invoker = invoker(policy(&["prod"]));
    let run_id = call(&invoker, rollout()).await.run_id.expect("run");
    let arn = execution_of(&run_id);
    // The approvers' own entry point, over the same Step Functions; CI's entry point can't answer an approval.
    let approvals = Invoker::new(config(policy(&["prod"])), NoTasks, EchoLogs)
        .with_executions(invoker.executions_ref().clone())
        .with_entry_point(EntryPoint::Approvals);
    let approve = json!({"action": "approve", "actor": "lead", "run_id": run_id, "account": "prod", "comment": "go"});
    let by_ci = call(&invoker, approve.clone()).await;
    assert_eq!((by_ci.decision.as_str(), by_ci.reason.as_str()), ("deny", "entry_point_denied"), "{by_ci:?}");
    let (_, audit) = approvals.handle(approve.to_string().as_bytes(), b"n").await;
    assert_eq!(audit.entry_point, "approvals");
    let early = call(&approvals, approve.clone()).await;
    assert_eq!((early.decision.as_str(), early.reason.as_str()), ("error", "approval_not_waiting"), "{early:?}");
    let mut history = [wave_ran("dev", true), wave_ran("stage", true)].concat();
    history.push(entered("Approval", "prod"));
    history.push(HistoryEvent::TaskScheduled {
        resource_type: "lambda".into(),
        parameters: json!({"Payload": {"kind": "approval", "task_token": "TOKEN-1"}}).to_string(),
    });
    invoker.executions_ref().script(&arn, "RUNNING", history);
    let status = call(&invoker, json!({"action": "status", "actor": "ci", "run_id": run_id})).await;
    assert_eq!(status.rollout.as_ref().expect("view").outcome, "awaiting_approval");
    assert_eq!(status.rollout.as_ref().expect("view").waves[1].log_stream.as_deref(), Some("deploy/runner/stage-task"));
    assert!(!serde_json::to_string(&status).expect("json").contains("TOKEN-1"), "tokens are never shown");
    let approved = call(&approvals, approve).await;
    assert_eq!(approved.decision, "allow", "{approved:?}");
    let reject = json!({"action": "reject", "actor": "lead", "run_id": run_id, "account": "prod"});
    assert_eq!(call(&invoker, reject.clone()).await.reason, "entry_point_denied");
    call(&approvals, reject).await;
    let plan_at_approvals = call(&approvals, json!({"action": "status", "actor": "ci", "run_id": run_id})).await;
    assert_eq!(plan_at_approvals.reason, "entry_point_denied", "the approvals entry point answers nothing else");
    let answers = invoker.executions_ref().answers.lock().expect("lock").clone();
    assert_eq!(answers[0], r#"success TOKEN-1 {"approved_by":"lead","comment":"go"}"#);
    assert_eq!(answers[1], "failure TOKEN-1 Rejected rejected by lead");
    let logs = call(&invoker, json!({"action": "logs", "actor": "ci", "run_id": run_id, "account": "stage"})).await;
    assert_eq!(logs.lines, Some(vec!["/deploy-runner/tasks deploy/runner/stage-task".to_owned()]));
    let none = call(&invoker, json!({"action": "logs", "actor": "ci", "run_id": run_id, "account": "prod"})).await;
    assert_eq!(none.reason, "run_not_found");
}

#[tokio::test]
async fn resume_starts_a_new_attempt_with_only_the_waves_that_did_not_succeed() {
    let invoker = invoker(policy(&[]));
    let run_id = call(&invoker, rollout()).await.run_id.expect("run");
    let arn = execution_of(&run_id);
    let resume = json!({"action": "resume", "actor": "fixer", "run_id": run_id});
    let running = call(&invoker, resume.clone()).await;
    assert_eq!(running.reason, "nothing_to_resume");
    invoker.executions_ref().script(&arn, "FAILED", [wave_ran("dev", true), wave_ran("stage", false)].concat());
    let resumed = call(&invoker, resume.clone()).await;
    assert_eq!(resumed.decision, "allow", "{resumed:?}");
    let view = resumed.rollout.as_ref().expect("view");
    assert_eq!(view.attempt, 2);
    assert_eq!(view.execution_arn, format!("{arn}-r2"));
    let executions = invoker.executions_for_test();
    let second =
        ExecutionInput::from_json(&executions.iter().find(|(a, _)| a.ends_with("-r2")).expect("r2").1).expect("input");
    assert_eq!(second.completed, ["dev"]);
    assert_eq!(second.waves.iter().map(|w| w.account.as_str()).collect::<Vec<_>>(), ["stage", "prod"]);
    assert_eq!(second.rollout.actor, "fixer");
    // status follows the latest attempt and still reports dev as done.
    let status = call(&invoker, json!({"action": "status", "actor": "ci", "run_id": run_id})).await;
    assert_eq!(
        statuses(&status),
        [("dev", "\"succeeded\""), ("stage", "\"pending\""), ("prod", "\"pending\"")]
            .map(|(a, s)| (a.to_owned(), s.to_owned()))
    );
}

#[tokio::test]
async fn resume_goes_through_todays_policy() {
    let invoker = invoker(policy(&[]));
    let run_id = call(&invoker, rollout()).await.run_id.expect("run");
    let arn = execution_of(&run_id);
    invoker.executions_ref().script(&arn, "FAILED", wave_ran("dev", false));
    // The same executions, but the invoker now runs with a policy that guards prod.
    let mut tightened = policy(&[]);
    tightened["path_guards"] = json!(["^prod/.*$"]);
    let strict = Invoker::new(config(tightened), NoTasks, EchoLogs).with_executions(invoker.executions_ref().clone());
    let resumed = call(&strict, json!({"action": "resume", "actor": "fixer", "run_id": run_id})).await;
    assert_eq!((resumed.decision.as_str(), resumed.reason.as_str()), ("deny", "path_guarded"));
    let unknown = call(&strict, json!({"action": "resume", "actor": "fixer", "run_id": "run-nope"})).await;
    assert_eq!(unknown.reason, "run_not_found");
}

/// Test access to the fake behind the invoker.
trait ExecutionsAccess {
    fn executions_ref(&self) -> &MemoryExecutions;
    fn executions_for_test(&self) -> Vec<(String, String)>;
}

impl ExecutionsAccess for RolloutInvoker {
    fn executions_ref(&self) -> &MemoryExecutions {
        self.executions()
    }
    fn executions_for_test(&self) -> Vec<(String, String)> {
        self.executions()
            .executions
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, (s, _))| (k.clone(), s.input.clone()))
            .collect()
    }
}

/// Without a ledger, nothing says what an account has: a caller's `deployed_commit` never reaches a wave's task.
#[tokio::test]
async fn a_callers_deployed_commit_never_reaches_a_wave() {
    let invoker = invoker(policy(&[]));
    let mut forged = rollout();
    forged["deployed_commit"] = json!("ffffffffffffffffffffffffffffffffffffffff");
    let response = call(&invoker, forged).await;
    assert_eq!((response.decision.as_str(), response.reason.as_str()), ("allow", "ok"), "{response:?}");
    let executions = invoker.executions_for_test();
    let input = ExecutionInput::from_json(&executions[0].1).expect("input");
    for wave in &input.waves {
        let request: Value = serde_json::from_str(&wave.command[3]).expect("the wave's request");
        assert_eq!(request.get("deployed_commit"), None, "{}: {request}", wave.account);
        assert_eq!(request["ref"], HEAD);
    }
}
