//! The narrow ports the invoker needs from AWS. `deploy-runner-aws` implements them for ECS and CloudWatch Logs;
//! tests implement them in memory.

use deploy_runner_rollout::{ApplyLock, LedgerScope, LedgerView};
use std::future::Future;

/// How an AWS call failed, as far as the invoker cares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct PortError {
    /// The class of failure.
    pub kind: PortErrorKind,
    /// AWS's message.
    pub message: String,
}

/// Classes of failure (the SDK has already retried throttling and 5xx by the time one reaches us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// The invoker's role lacks a permission.
    AccessDenied,
    /// Still throttled after the SDK's retries.
    Throttled,
    /// Anything else.
    Other,
}

/// ECS launch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum LaunchType {
    /// Fargate with awsvpc networking (the default).
    #[default]
    Fargate,
    /// EC2 container instances.
    Ec2,
}

/// Everything `ecs:RunTask` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTaskRequest {
    /// Cluster ARN.
    pub cluster: String,
    /// Task definition (family:revision or ARN).
    pub task_definition: String,
    /// Fargate or EC2.
    pub launch_type: LaunchType,
    /// awsvpc subnets.
    pub subnets: Vec<String>,
    /// awsvpc security groups.
    pub security_groups: Vec<String>,
    /// Whether to assign a public IP (Fargate in public subnets).
    pub assign_public_ip: bool,
    /// The container whose command is overridden.
    pub container: String,
    /// The command override.
    pub command: Vec<String>,
    /// Environment overrides.
    pub environment: Vec<(String, String)>,
    /// `startedBy`.
    pub started_by: String,
    /// Resource tags.
    pub tags: Vec<(String, String)>,
    /// ECS idempotency token.
    pub client_token: String,
}

/// What `ecs:RunTask` answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunTaskResponse {
    /// The started task, if any.
    pub task_arn: Option<String>,
    /// ECS's `failures[]`, as `arn: reason (detail)`.
    pub failures: Vec<String>,
}

/// One container of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// Its exit code, once it has one.
    pub exit_code: Option<i32>,
    /// Why it stopped, if ECS says.
    pub reason: Option<String>,
}

/// What `ecs:DescribeTasks` says about a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Task ARN.
    pub task_arn: String,
    /// `PROVISIONING`, `PENDING`, `RUNNING`, `STOPPED`, ...
    pub last_status: String,
    /// `EssentialContainerExited`, `TaskFailedToStart`, ...
    pub stop_code: Option<String>,
    /// Free text.
    pub stopped_reason: Option<String>,
    /// Its containers.
    pub containers: Vec<ContainerState>,
    /// Its `run-id` tag.
    pub run_id: Option<String>,
}

/// ECS, as the invoker uses it.
pub trait Tasks {
    /// Starts a task.
    fn run_task(&self, request: RunTaskRequest) -> impl Future<Output = Result<RunTaskResponse, PortError>> + Send;
    /// A task whose `run-id` tag starts with `run_id` (a whole run id, or the claim every run of one request id
    /// shares), among tasks `startedBy` deploy-runner, if any. Run ids all have one length, so a whole run id
    /// matches only itself.
    fn find_run(
        &self,
        cluster: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<TaskState>, PortError>> + Send;
}

/// A page of log events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// Pass back to get the next page.
    pub next_token: Option<String>,
}

/// CloudWatch Logs, as the invoker uses it.
pub trait Logs {
    /// A page of `stream` in `group`, from the start or from `next_token`.
    fn read(
        &self,
        group: &str,
        stream: &str,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<LogPage, PortError>> + Send;
}

/// What `states:DescribeExecution` says about an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionState {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, `PENDING_REDRIVE`.
    pub status: String,
    /// The execution's input (JSON).
    pub input: String,
    /// The error it failed with, if it did.
    pub error: Option<String>,
    /// The cause it failed with, if it did.
    pub cause: Option<String>,
}

/// Step Functions, as the invoker uses it for rollouts.
pub trait Executions {
    /// Starts an execution named `name` of `state_machine_arn`; returns its ARN. Starting the same name with the
    /// same input again returns the same execution (Step Functions' idempotency), so CI retries are safe.
    fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
    /// The execution, or `None` when it does not exist.
    fn describe(&self, execution_arn: &str) -> impl Future<Output = Result<Option<ExecutionState>, PortError>> + Send;
    /// The execution's history, oldest first (every page).
    fn history(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<Vec<deploy_runner_rollout::execution::HistoryEvent>, PortError>> + Send;
    /// Answers a `.waitForTaskToken` task with success.
    fn send_task_success(&self, token: &str, output: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Answers a `.waitForTaskToken` task with failure.
    fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// For deployments without the rollout state machine: every call fails, and the invoker never makes one because
/// `runtime.state_machine_arn` is unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExecutions;

fn no_state_machine<T>() -> Result<T, PortError> {
    Err(PortError { kind: PortErrorKind::Other, message: "this deployment has no rollout state machine".into() })
}

impl Executions for NoExecutions {
    async fn start(&self, _: &str, _: &str, _: &str) -> Result<String, PortError> {
        no_state_machine()
    }
    async fn describe(&self, _: &str) -> Result<Option<ExecutionState>, PortError> {
        no_state_machine()
    }
    async fn history(&self, _: &str) -> Result<Vec<deploy_runner_rollout::execution::HistoryEvent>, PortError> {
        no_state_machine()
    }
    async fn send_task_success(&self, _: &str, _: &str) -> Result<(), PortError> {
        no_state_machine()
    }
    async fn send_task_failure(&self, _: &str, _: &str, _: &str) -> Result<(), PortError> {
        no_state_machine()
    }
}

/// Secrets Manager, as the notifier uses it.
pub trait Secrets {
    /// The current `SecretString` of `secret_id` (name or ARN).
    fn secret_string(&self, secret_id: &str) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// The deployment ledger and the apply locks (a DynamoDB table), as the invoker uses them. The state machine writes
/// ledger entries and releases locks itself; the invoker reads, takes and (when a start fails) gives back.
pub trait LedgerStore {
    /// A scope's entries and lock (a strongly consistent read).
    fn read(&self, scope: &LedgerScope) -> impl Future<Output = Result<LedgerView, PortError>> + Send;
    /// Takes the scope's lock for `lock`, when it is free or still held by exactly `replacing` (a holder that has
    /// ended). `Ok(None)`: taken; `Ok(Some(holder))`: someone else holds it.
    fn acquire(
        &self,
        scope: &LedgerScope,
        lock: &ApplyLock,
        replacing: Option<&ApplyLock>,
    ) -> impl Future<Output = Result<Option<ApplyLock>, PortError>> + Send;
    /// Records `base` as `account`'s baseline (by `run_id`, at `at`), unless the account has an entry already.
    fn set_baseline(
        &self,
        scope: &LedgerScope,
        account: &str,
        base: &str,
        run_id: &str,
        at: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Gives the lock back, if `run_id` holds it.
    fn release(&self, scope: &LedgerScope, run_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// For deployments without a ledger table: every call fails, and the invoker makes none because
/// `runtime.ledger_table` is unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLedgerStore;

fn no_ledger<T>() -> Result<T, PortError> {
    Err(PortError { kind: PortErrorKind::Other, message: "this deployment has no ledger table".into() })
}

impl LedgerStore for NoLedgerStore {
    async fn read(&self, _: &LedgerScope) -> Result<LedgerView, PortError> {
        no_ledger()
    }
    async fn acquire(
        &self,
        _: &LedgerScope,
        _: &ApplyLock,
        _: Option<&ApplyLock>,
    ) -> Result<Option<ApplyLock>, PortError> {
        no_ledger()
    }
    async fn set_baseline(&self, _: &LedgerScope, _: &str, _: &str, _: &str, _: &str) -> Result<(), PortError> {
        no_ledger()
    }
    async fn release(&self, _: &LedgerScope, _: &str) -> Result<(), PortError> {
        no_ledger()
    }
}
