//! `DEPLOY_RUNNER_CONFIG`: `{"policy": <gate policy>, "runtime": {...}}`, rendered by Terraform.

use crate::ports::LaunchType;
use deploy_runner_gate::{Container, Policy, PolicyDocument, PolicyError};
use serde::{Deserialize, Serialize};

/// Where and how tasks run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The ECS cluster ARN.
    pub cluster_arn: String,
    /// Subnets for awsvpc.
    pub subnets: Vec<String>,
    /// Security groups for awsvpc.
    pub security_groups: Vec<String>,
    /// Assign a public IP (only for public subnets without NAT).
    #[serde(default)]
    pub assign_public_ip: bool,
    /// FARGATE (default) or EC2.
    #[serde(default)]
    pub launch_type: LaunchType,
    /// One task definition per container.
    pub task_definitions: TaskDefinitions,
    /// The container name inside each task definition whose command is overridden and whose exit code counts.
    #[serde(default = "default_container_name")]
    pub container_name: String,
    /// The CloudWatch log group the awslogs driver writes to.
    pub log_group: String,
    /// The awslogs stream prefix (streams are `<prefix>/<container>/<task-id>`).
    pub log_stream_prefix: String,
    /// The rollout state machine, once rollouts are deployed.
    #[serde(default)]
    pub state_machine_arn: Option<String>,
    /// The DynamoDB table of the deployment ledger and the apply locks. Without it (deployments older than the
    /// ledger), apply rollouts are neither serialised nor recorded, and `ledger` is not supported.
    #[serde(default)]
    pub ledger_table: Option<String>,
}

fn default_container_name() -> String {
    "runner".to_owned()
}

/// Task definitions by container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TaskDefinitions {
    /// Read-only planner.
    pub planner: String,
    /// Applier with deploy credentials.
    pub applier: String,
    /// Image builder.
    pub image_builder: String,
}

impl TaskDefinitions {
    /// The task definition for a container.
    pub fn for_container(&self, container: Container) -> &str {
        match container {
            Container::Planner => &self.planner,
            Container::Applier => &self.applier,
            Container::ImageBuilder => &self.image_builder,
        }
    }
}

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokerConfigDocument {
    /// The gate policy.
    pub policy: PolicyDocument,
    /// Runtime settings.
    pub runtime: RuntimeConfig,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct InvokerConfig {
    /// The compiled policy.
    pub policy: Policy,
    /// Runtime settings.
    pub runtime: RuntimeConfig,
}

/// Why the configuration was refused (the Lambda fails its init with this message).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not valid JSON for the schema.
    #[error("DEPLOY_RUNNER_CONFIG is not valid: {0}")]
    Schema(#[from] serde_json::Error),
    /// The policy is invalid.
    #[error("DEPLOY_RUNNER_CONFIG policy: {0}")]
    Policy(#[from] PolicyError),
    /// A runtime value is unusable.
    #[error("DEPLOY_RUNNER_CONFIG runtime.{0}")]
    Runtime(String),
}

impl InvokerConfig {
    /// Parses and validates the document.
    pub fn from_json(text: &str) -> Result<InvokerConfig, ConfigError> {
        let document: InvokerConfigDocument = serde_json::from_str(text)?;
        let runtime = document.runtime;
        let require = |value: &str, field: &str| {
            if value.trim().is_empty() {
                Err(ConfigError::Runtime(format!("{field} must not be empty")))
            } else {
                Ok(())
            }
        };
        require(&runtime.cluster_arn, "cluster_arn")?;
        require(&runtime.log_group, "log_group")?;
        require(&runtime.log_stream_prefix, "log_stream_prefix")?;
        require(&runtime.container_name, "container_name")?;
        for (field, value) in [
            ("task_definitions.planner", &runtime.task_definitions.planner),
            ("task_definitions.applier", &runtime.task_definitions.applier),
            ("task_definitions.image-builder", &runtime.task_definitions.image_builder),
        ] {
            require(value, field)?;
        }
        if runtime.launch_type == LaunchType::Fargate && runtime.subnets.is_empty() {
            return Err(ConfigError::Runtime("subnets: Fargate (awsvpc) needs at least one subnet".into()));
        }
        Ok(InvokerConfig { policy: Policy::from_document(document.policy)?, runtime })
    }
}
