//! The only crate that talks to AWS. It implements `deploy-runner-control`'s ports for ECS, CloudWatch Logs,
//! Step Functions, DynamoDB (the ledger) and Secrets Manager (and Lambda, for the CLI), and builds SDK clients once, with retries for throttling and 5xx,
//! honouring `AWS_ENDPOINT_URL` (the tests point it at an emulator).

use aws_sdk_cloudwatchlogs as logs;
use aws_sdk_ecs as ecs;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use deploy_runner_control::ports::{
    ContainerState, LaunchType, LogPage, Logs, PortError, PortErrorKind, RunTaskRequest, RunTaskResponse, TaskState,
    Tasks,
};
use std::fmt::Display;

mod dynamodb;
mod lambda;
mod secrets;
mod sfn;
pub use dynamodb::DynamoLedger;
pub use lambda::LambdaInvoker;
pub use secrets::SecretsManager;
pub use sfn::StepFunctions;

/// How many attempts the SDK makes for throttled and 5xx calls before giving up.
pub const MAX_ATTEMPTS: u32 = 5;

/// Loads the shared AWS configuration from the environment (credentials chain, region, `AWS_ENDPOINT_URL`) with
/// standard retries.
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}

/// Classifies an AWS error code for the invoker.
fn classify(code: &str, message: &str) -> PortErrorKind {
    if code.starts_with("AccessDenied") || message.contains("not authorized to perform") {
        PortErrorKind::AccessDenied
    } else if matches!(code, "ThrottlingException" | "Throttling" | "TooManyRequestsException") {
        PortErrorKind::Throttled
    } else {
        PortErrorKind::Other
    }
}

/// Converts an SDK error (after the SDK's own retries) into the invoker's error, keeping AWS's code and message.
pub(crate) fn port_error<E, R>(error: ecs::error::SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + Display + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().unwrap_or_default().to_owned();
    let message = match error.message() {
        Some(message) => message.to_owned(),
        None => ecs::error::DisplayErrorContext(&error).to_string(),
    };
    let kind = classify(&code, &message);
    PortError { kind, message: if code.is_empty() { message } else { format!("{code}: {message}") } }
}

/// ECS through the SDK.
#[derive(Debug, Clone)]
pub struct EcsTasks {
    client: ecs::Client,
}

impl EcsTasks {
    /// Wraps a client (built once at init).
    pub fn new(client: ecs::Client) -> EcsTasks {
        EcsTasks { client }
    }

    /// Builds the client from shared configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> EcsTasks {
        EcsTasks::new(ecs::Client::new(config))
    }
}

fn task_state(task: &ecs::types::Task) -> TaskState {
    TaskState {
        task_arn: task.task_arn().unwrap_or_default().to_owned(),
        last_status: task.last_status().unwrap_or_default().to_owned(),
        stop_code: task.stop_code().map(|c| c.as_str().to_owned()),
        stopped_reason: task.stopped_reason().map(str::to_owned),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerState {
                name: c.name().unwrap_or_default().to_owned(),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_owned),
            })
            .collect(),
        run_id: task.tags().iter().find(|t| t.key() == Some("run-id")).and_then(|t| t.value()).map(str::to_owned),
    }
}

impl Tasks for EcsTasks {
    async fn run_task(&self, request: RunTaskRequest) -> Result<RunTaskResponse, PortError> {
        use ecs::types::{
            AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, NetworkConfiguration, Tag,
            TaskOverride,
        };
        let mut call = self
            .client
            .run_task()
            .cluster(&request.cluster)
            .task_definition(&request.task_definition)
            .started_by(&request.started_by)
            .client_token(&request.client_token)
            .count(1)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(&request.container)
                            .set_command(Some(request.command.clone()))
                            .set_environment(Some(
                                request
                                    .environment
                                    .iter()
                                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                                    .collect(),
                            ))
                            .build(),
                    )
                    .build(),
            )
            .set_tags(Some(request.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()));
        call = match request.launch_type {
            LaunchType::Fargate => {
                let vpc = AwsVpcConfiguration::builder()
                    .set_subnets(Some(request.subnets.clone()))
                    .set_security_groups(Some(request.security_groups.clone()))
                    .assign_public_ip(if request.assign_public_ip {
                        AssignPublicIp::Enabled
                    } else {
                        AssignPublicIp::Disabled
                    })
                    .build()
                    .map_err(|e| PortError { kind: PortErrorKind::Other, message: e.to_string() })?;
                call.launch_type(ecs::types::LaunchType::Fargate)
                    .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
            }
            LaunchType::Ec2 => call.launch_type(ecs::types::LaunchType::Ec2),
        };
        let output = call.send().await.map_err(port_error)?;
        let failures = output
            .failures()
            .iter()
            .map(|f| {
                let detail = f.detail().map(|d| format!(" ({d})")).unwrap_or_default();
                format!("{}: {}{detail}", f.arn().unwrap_or("-"), f.reason().unwrap_or("unknown"))
            })
            .collect();
        Ok(RunTaskResponse { task_arn: output.tasks().first().and_then(|t| t.task_arn()).map(str::to_owned), failures })
    }

    async fn find_run(&self, cluster: &str, run_id: &str) -> Result<Option<TaskState>, PortError> {
        // Tasks started by deploy-runner, running or recently stopped; the run id is a tag on each.
        for status in [ecs::types::DesiredStatus::Running, ecs::types::DesiredStatus::Stopped] {
            let mut pages = self
                .client
                .list_tasks()
                .cluster(cluster)
                .started_by(deploy_runner_control::invoker::STARTED_BY)
                .desired_status(status)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(port_error)?;
                let arns = page.task_arns();
                for chunk in arns.chunks(100) {
                    let described = self
                        .client
                        .describe_tasks()
                        .cluster(cluster)
                        .set_tasks(Some(chunk.to_vec()))
                        .include(ecs::types::TaskField::Tags)
                        .send()
                        .await
                        .map_err(port_error)?;
                    let found = described.tasks().iter().find(|t| {
                        t.tags().iter().any(|tag| {
                            tag.key() == Some("run-id") && tag.value().is_some_and(|v| v.starts_with(run_id))
                        })
                    });
                    if let Some(task) = found {
                        return Ok(Some(task_state(task)));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// CloudWatch Logs through the SDK.
#[derive(Debug, Clone)]
pub struct CloudWatchLogs {
    client: logs::Client,
}

impl CloudWatchLogs {
    /// Wraps a client (built once at init).
    pub fn new(client: logs::Client) -> CloudWatchLogs {
        CloudWatchLogs { client }
    }

    /// Builds the client from shared configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> CloudWatchLogs {
        CloudWatchLogs::new(logs::Client::new(config))
    }
}

impl Logs for CloudWatchLogs {
    async fn read(&self, group: &str, stream: &str, next_token: Option<String>) -> Result<LogPage, PortError> {
        let result = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(next_token.clone())
            .limit(1000)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            // The stream appears only once the container has written something.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                return Ok(LogPage { lines: vec![], next_token });
            }
            Err(e) => return Err(port_error(e)),
        };
        let lines: Vec<String> = output.events().iter().filter_map(|e| e.message().map(str::to_owned)).collect();
        // GetLogEvents returns the same forward token at the end of the stream; keep it so callers can poll.
        Ok(LogPage { lines, next_token: output.next_forward_token().map(str::to_owned).or(next_token) })
    }
}
