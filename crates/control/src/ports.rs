//! The narrow ports the invoker needs from AWS. `deploy-runner-aws` implements them for ECS and CloudWatch Logs;
//! tests implement them in memory.

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
}

/// ECS, as the invoker uses it.
pub trait Tasks {
    /// Starts a task.
    fn run_task(&self, request: RunTaskRequest) -> impl Future<Output = Result<RunTaskResponse, PortError>> + Send;
    /// The task started for `run_id` (found by its `run-id` tag among tasks `startedBy` deploy-runner), if any.
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
