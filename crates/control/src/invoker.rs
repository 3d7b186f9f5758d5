//! The invoker: the only door from CI into the deploy account. Every request goes through the gate; an allowed one
//! starts the privileged task; `status` and `logs` are answered from ECS and CloudWatch so CI needs neither.

use crate::audit::AuditRecord;
use crate::config::{InvokerConfig, RuntimeConfig};
use crate::ports::{
    Executions, LedgerStore, Logs, NoExecutions, NoLedgerStore, PortError, RunTaskRequest, TaskState, Tasks,
};
use crate::rollouts::RolloutView;
use crate::runid::{run_identity, tag_value, task_id, RunIdentity};
use deploy_runner_gate::{quote, Action, ActionRequest, Container, Gate, Request, RunQuery};
use serde::Serialize;
use std::time::Instant;

/// `startedBy` of every task the invoker starts.
pub const STARTED_BY: &str = "deploy-runner";
/// The container command prefix: the task binary and its subcommand.
pub use deploy_runner_rollout::execution::TASK_COMMAND;

/// The invoker's answer (the Lambda's response payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct InvokeResponse {
    /// The run this request started or looked at.
    pub run_id: Option<String>,
    /// `allow`, `deny` (the gate said no) or `error` (allowed, but AWS failed or the run is unknown).
    pub decision: String,
    /// A stable code: the gate's, or `request_id_conflict`, `entry_point_denied` (denials), `task_launch_failed`,
    /// `aws_error`, `run_not_found`, `not_supported`, `approval_not_waiting`, `nothing_to_resume`,
    /// `rollout_too_large`, `too_many_attempts`, `input_unreadable`, `account_unknown`, `apply_in_progress` (another
    /// apply rollout of the same repo and apply ref holds the lock: ask again when it stops), `ledger_moved` (an
    /// account deployed something else since the rollout's `ledger_bases`: detect again).
    pub reason: String,
    /// A human-readable explanation.
    pub message: String,
    /// The container that runs it.
    pub container: Option<Container>,
    /// The ECS task.
    pub task_arn: Option<String>,
    /// Where its logs go.
    pub log_group: Option<String>,
    /// Its log stream: `<prefix>/<container>/<task-id>`.
    pub log_stream: Option<String>,
    /// For `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// For `logs`: the lines of this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<String>>,
    /// For `logs`: pass back for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// For rollouts: the execution and each wave's progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutView>,
    /// For `ledger`, and with `apply_in_progress`: the scope's entries and lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<deploy_runner_rollout::LedgerView>,
}

/// Where a run is, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStatus {
    /// ECS's last status.
    pub last_status: String,
    /// The named container's exit code (never another container's).
    pub exit_code: Option<i32>,
    /// ECS's stop code.
    pub stop_code: Option<String>,
    /// ECS's (or the container's) reason.
    pub stopped_reason: Option<String>,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub outcome: &'static str,
}

impl RunStatus {
    /// Reads a task's state. STOPPED without an exit code (an image pull error, say) is a failure, never success.
    pub fn from_task(task: &TaskState, container_name: &str) -> RunStatus {
        let container = task.containers.iter().find(|c| c.name == container_name);
        let exit_code = container.and_then(|c| c.exit_code);
        let outcome = match (task.last_status.as_str(), exit_code) {
            ("STOPPED" | "DELETED" | "DEPROVISIONING", Some(0)) => "succeeded",
            ("STOPPED" | "DELETED" | "DEPROVISIONING", _) => "failed",
            ("RUNNING", _) => "running",
            _ => "pending",
        };
        let stopped_reason = task.stopped_reason.clone().or_else(|| container.and_then(|c| c.reason.clone()));
        RunStatus {
            last_status: task.last_status.clone(),
            exit_code,
            stop_code: task.stop_code.clone(),
            stopped_reason,
            outcome,
        }
    }
}

/// The door a request came through. CI's machine user can invoke only the CI entry point; approving and rejecting
/// happen only through the approvals entry point, a function of its own that only the approvers may invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryPoint {
    /// Everything CI asks: plans, applies, rollouts, status, logs, resume. Never approve or reject.
    #[default]
    Ci,
    /// Approve and reject only.
    Approvals,
}

impl EntryPoint {
    /// The name used in `DEPLOY_RUNNER_ENTRY_POINT` and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryPoint::Ci => "ci",
            EntryPoint::Approvals => "approvals",
        }
    }

    /// Parses `ci` or `approvals`.
    pub fn from_name(name: &str) -> Option<EntryPoint> {
        [EntryPoint::Ci, EntryPoint::Approvals].into_iter().find(|e| e.as_str() == name)
    }

    /// Why this entry point does not answer `action`, if it doesn't.
    fn refuses(self, action: Action) -> Option<&'static str> {
        let approval = matches!(action, Action::Approve | Action::Reject);
        match self {
            EntryPoint::Ci if approval => Some(
                "approve and reject are answered only by the approvals entry point, a function of its own that \
                 only the approvers may invoke (CI's credential can't)",
            ),
            EntryPoint::Approvals if !approval => Some("the approvals entry point answers approve and reject only"),
            _ => None,
        }
    }
}

/// The invoker, generic over its AWS ports so tests can call it directly.
pub struct Invoker<T, L, E = NoExecutions, D = NoLedgerStore> {
    pub(crate) gate: Gate,
    pub(crate) runtime: RuntimeConfig,
    pub(crate) tasks: T,
    pub(crate) logs: L,
    pub(crate) executions: E,
    pub(crate) ledger: D,
    pub(crate) entry_point: EntryPoint,
}

impl<T: Tasks + Sync, L: Logs + Sync> Invoker<T, L> {
    /// An invoker over a validated configuration and its ports (without rollouts until [`Invoker::with_executions`]),
    /// as the CI entry point (see [`Invoker::with_entry_point`]).
    pub fn new(config: InvokerConfig, tasks: T, logs: L) -> Invoker<T, L> {
        Invoker {
            gate: Gate::new(config.policy),
            runtime: config.runtime,
            tasks,
            logs,
            executions: NoExecutions,
            ledger: NoLedgerStore,
            entry_point: EntryPoint::Ci,
        }
    }
}

impl<T: Tasks + Sync, L: Logs + Sync, E: Executions + Sync, D: LedgerStore + Sync> Invoker<T, L, E, D> {
    /// The task port (for tests and diagnostics).
    pub fn tasks(&self) -> &T {
        &self.tasks
    }

    /// The Step Functions port (for tests and diagnostics).
    pub fn executions(&self) -> &E {
        &self.executions
    }

    /// The same invoker with the Step Functions port for rollouts.
    pub fn with_executions<X: Executions + Sync>(self, executions: X) -> Invoker<T, L, X, D> {
        Invoker {
            gate: self.gate,
            runtime: self.runtime,
            tasks: self.tasks,
            logs: self.logs,
            executions,
            ledger: self.ledger,
            entry_point: self.entry_point,
        }
    }

    /// The same invoker with the ledger table's port (used when `runtime.ledger_table` is set).
    pub fn with_ledger<X: LedgerStore + Sync>(self, ledger: X) -> Invoker<T, L, E, X> {
        Invoker {
            gate: self.gate,
            runtime: self.runtime,
            tasks: self.tasks,
            logs: self.logs,
            executions: self.executions,
            ledger,
            entry_point: self.entry_point,
        }
    }

    /// The ledger port (for tests and diagnostics).
    pub fn ledger(&self) -> &D {
        &self.ledger
    }

    /// The same invoker answering as `entry_point`.
    pub fn with_entry_point(mut self, entry_point: EntryPoint) -> Invoker<T, L, E, D> {
        self.entry_point = entry_point;
        self
    }

    /// Handles one raw request body. `nonce` makes the run id unique when there is no `request_id` (the Lambda
    /// request id). Returns the response and the audit record to emit.
    pub async fn handle(&self, body: &[u8], nonce: &[u8]) -> (InvokeResponse, AuditRecord) {
        let started = Instant::now();
        let outcome = self.gate.evaluate(body);
        let mut audit = AuditRecord::from_body(body, &outcome.decision);
        audit.entry_point = self.entry_point.as_str();
        let refused_here = outcome.admitted.as_ref().and_then(|a| self.entry_point.refuses(a.request.body.action()));
        let response = match (outcome.admitted, refused_here) {
            (None, _) => InvokeResponse {
                decision: "deny".into(),
                reason: outcome.decision.reason.to_string(),
                message: outcome.decision.message,
                ..InvokeResponse::default()
            },
            (Some(_), Some(why)) => deny("entry_point_denied", why.to_owned()),
            (Some(admitted), None) => match &admitted.request.body {
                ActionRequest::Status(query) => match self.find_rollout(&query.run_id).await {
                    Ok(Some(found)) => self.rollout_status(found),
                    Ok(None) => self.status(query).await,
                    Err(response) => response,
                },
                ActionRequest::Logs(query) => match self.find_rollout(&query.run_id).await {
                    Ok(Some(found)) => self.rollout_logs(query, found).await,
                    Ok(None) if query.account.is_some() => {
                        error(Some(query.run_id.clone()), "run_not_found", "no rollout is known for this run_id")
                    }
                    Ok(None) => self.logs(query).await,
                    Err(response) => response,
                },
                ActionRequest::Rollout(rollout) => self.start_rollout(&admitted.request, rollout, nonce).await,
                ActionRequest::Approve(answer) => self.answer_approval(&admitted.request.actor, answer, true).await,
                ActionRequest::Reject(answer) => self.answer_approval(&admitted.request.actor, answer, false).await,
                ActionRequest::Resume(query) => self.resume(&admitted.request.actor, &query.run_id).await,
                ActionRequest::Ledger(query) => self.read_ledger(query).await,
                _ => match admitted.container {
                    Some(container) => self.launch(&admitted.request, container, nonce).await,
                    None => error(None, "not_supported", "this action starts nothing"),
                },
            },
        };
        audit.complete(&response, started.elapsed());
        (response, audit)
    }

    /// Who holds a request id's claim already: a task (whose `run-id` starts with it: a single-unit run, or a
    /// rollout's wave) or a rollout's execution. `Ok(None)` when the id is free.
    pub(crate) async fn claim_holder(&self, claim: &str) -> Result<Option<Holder>, InvokeResponse> {
        match self.tasks.find_run(&self.runtime.cluster_arn, claim).await {
            Ok(Some(task)) => return Ok(Some(Holder::Task(task))),
            Ok(None) => {}
            Err(e) => return Err(aws_error(None, &e)),
        }
        Ok(self.rollout_holding(claim).await?.map(Holder::Rollout))
    }

    async fn launch(&self, request: &Request, container: Container, nonce: &[u8]) -> InvokeResponse {
        let RunIdentity { run_id, client_token, claim, .. } = run_identity(request, nonce);
        // A CI retry of the same request finds its run instead of starting a second task; another request under
        // the same request_id is refused, never answered with this one's run.
        if let Some(claim) = &claim {
            match self.claim_holder(claim).await {
                Ok(Some(Holder::Task(task))) if task.run_id.as_deref() == Some(run_id.as_str()) => {
                    let mut response = self.started(&run_id, container, &task.task_arn);
                    response.message = format!("already started for this request_id: {}", response.message);
                    return response;
                }
                Ok(Some(_)) => return request_id_conflict(request),
                Ok(None) => {}
                Err(response) => return response,
            }
        }
        let body = &request.body;
        let mut tags = vec![
            ("action".to_owned(), tag_value(body.action().as_str())),
            ("actor".to_owned(), tag_value(&request.actor)),
            ("run-id".to_owned(), tag_value(&run_id)),
        ];
        for (key, value) in [("repo", body.repo()), ("ref", body.git_ref()), ("path", body.unit_path().unwrap_or(""))] {
            if !value.is_empty() {
                tags.push((key.to_owned(), tag_value(value)));
            }
        }
        // The run's identity is the caller's request; the task gets what the ledger says on top.
        let for_task = match self.with_ledger_facts(request).await {
            Ok(for_task) => for_task,
            Err(response) => return response,
        };
        let command = deploy_runner_rollout::execution::task_command(&for_task);
        let run = RunTaskRequest {
            cluster: self.runtime.cluster_arn.clone(),
            task_definition: self.runtime.task_definitions.for_container(container).to_owned(),
            launch_type: self.runtime.launch_type,
            subnets: self.runtime.subnets.clone(),
            security_groups: self.runtime.security_groups.clone(),
            assign_public_ip: self.runtime.assign_public_ip,
            container: self.runtime.container_name.clone(),
            command,
            environment: vec![("DEPLOY_RUNNER_RUN_ID".to_owned(), run_id.clone())],
            started_by: STARTED_BY.to_owned(),
            tags,
            client_token,
        };
        match self.tasks.run_task(run).await {
            Ok(result) => match (result.task_arn, result.failures.is_empty()) {
                (Some(task_arn), true) => self.started(&run_id, container, &task_arn),
                (_, _) => {
                    let why = if result.failures.is_empty() {
                        "ECS returned no task".to_owned()
                    } else {
                        result.failures.join("; ")
                    };
                    error(Some(run_id), "task_launch_failed", &format!("ECS did not start the task: {why}"))
                }
            },
            Err(e) => aws_error(Some(run_id), &e),
        }
    }

    fn started(&self, run_id: &str, container: Container, task_arn: &str) -> InvokeResponse {
        InvokeResponse {
            run_id: Some(run_id.to_owned()),
            decision: "allow".into(),
            reason: "ok".into(),
            message: format!("started {} task {}", container.as_str(), task_id(task_arn)),
            container: Some(container),
            task_arn: Some(task_arn.to_owned()),
            log_group: Some(self.runtime.log_group.clone()),
            log_stream: Some(self.log_stream(task_arn)),
            ..InvokeResponse::default()
        }
    }

    pub(crate) fn log_stream(&self, task_arn: &str) -> String {
        format!("{}/{}/{}", self.runtime.log_stream_prefix, self.runtime.container_name, task_id(task_arn))
    }

    async fn find(&self, query: &RunQuery) -> Result<TaskState, InvokeResponse> {
        match self.tasks.find_run(&self.runtime.cluster_arn, &query.run_id).await {
            Ok(Some(task)) => Ok(task),
            Ok(None) => Err(error(Some(query.run_id.clone()), "run_not_found", "no task is known for this run_id")),
            Err(e) => Err(aws_error(Some(query.run_id.clone()), &e)),
        }
    }

    async fn status(&self, query: &RunQuery) -> InvokeResponse {
        let task = match self.find(query).await {
            Ok(task) => task,
            Err(response) => return response,
        };
        let status = RunStatus::from_task(&task, &self.runtime.container_name);
        InvokeResponse {
            run_id: Some(query.run_id.clone()),
            decision: "allow".into(),
            reason: "ok".into(),
            message: format!("run {} is {}", query.run_id, status.outcome),
            task_arn: Some(task.task_arn.clone()),
            log_group: Some(self.runtime.log_group.clone()),
            log_stream: Some(self.log_stream(&task.task_arn)),
            status: Some(status),
            ..InvokeResponse::default()
        }
    }

    async fn logs(&self, query: &RunQuery) -> InvokeResponse {
        let task = match self.find(query).await {
            Ok(task) => task,
            Err(response) => return response,
        };
        let stream = self.log_stream(&task.task_arn);
        match self.logs.read(&self.runtime.log_group, &stream, query.next_token.clone()).await {
            Ok(page) => InvokeResponse {
                run_id: Some(query.run_id.clone()),
                decision: "allow".into(),
                reason: "ok".into(),
                message: format!("{} line(s)", page.lines.len()),
                task_arn: Some(task.task_arn.clone()),
                log_group: Some(self.runtime.log_group.clone()),
                log_stream: Some(stream),
                lines: Some(page.lines),
                next_token: page.next_token,
                ..InvokeResponse::default()
            },
            Err(e) => aws_error(Some(query.run_id.clone()), &e),
        }
    }
}

/// What holds a request id's claim.
pub(crate) enum Holder {
    /// A task (a single-unit run, or one of a rollout's waves).
    Task(TaskState),
    /// A rollout's execution, with the run id in its input.
    Rollout(String),
}

/// The answer to a second, different request under a request id that is taken.
pub(crate) fn request_id_conflict(request: &Request) -> InvokeResponse {
    let id = request.request_id.as_deref().unwrap_or_default();
    deny(
        "request_id_conflict",
        format!(
            "request_id {} already names a different request; a request id is bound to the one request it was first \
             used for: send this one with a new request_id",
            quote(id)
        ),
    )
}

/// A denial decided by the invoker (after the gate allowed the request itself).
pub(crate) fn deny(reason: &str, message: String) -> InvokeResponse {
    InvokeResponse { decision: "deny".into(), reason: reason.into(), message, ..InvokeResponse::default() }
}

pub(crate) fn error(run_id: Option<String>, reason: &str, message: &str) -> InvokeResponse {
    InvokeResponse {
        run_id,
        decision: "error".into(),
        reason: reason.into(),
        message: message.into(),
        ..Default::default()
    }
}

pub(crate) fn aws_error(run_id: Option<String>, e: &PortError) -> InvokeResponse {
    error(run_id, "aws_error", &format!("AWS refused or failed: {e}"))
}
