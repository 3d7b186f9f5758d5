//! Step Functions through the SDK: the invoker's rollout port.

use crate::port_error;
use aws_sdk_sfn as sfn;
use deploy_runner_control::ports::{ExecutionState, Executions, PortError};
use deploy_runner_rollout::execution::HistoryEvent;

/// At most this many history pages are read (1,000 events each): a rollout's history is far shorter, and a bound
/// keeps a runaway execution from stalling the invoker.
const MAX_HISTORY_PAGES: usize = 20;

/// Step Functions through the SDK.
#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: sfn::Client,
}

impl StepFunctions {
    /// Wraps a client (built once at init).
    pub fn new(client: sfn::Client) -> StepFunctions {
        StepFunctions { client }
    }

    /// Builds the client from shared configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> StepFunctions {
        StepFunctions::new(sfn::Client::new(config))
    }
}

fn event(e: &sfn::types::HistoryEvent) -> Option<HistoryEvent> {
    if let Some(d) = e.state_entered_event_details() {
        return Some(HistoryEvent::StateEntered {
            name: d.name().to_owned(),
            input: d.input().unwrap_or_default().to_owned(),
        });
    }
    if let Some(d) = e.task_scheduled_event_details() {
        return Some(HistoryEvent::TaskScheduled {
            resource_type: d.resource_type().to_owned(),
            parameters: d.parameters().to_owned(),
        });
    }
    // Submitted (runTask's answer) and succeeded (the .sync completion) both carry the task.
    let (resource_type, output) = match (e.task_submitted_event_details(), e.task_succeeded_event_details()) {
        (Some(d), _) => (d.resource_type(), d.output()),
        (None, Some(d)) => (d.resource_type(), d.output()),
        (None, None) => return None,
    };
    Some(HistoryEvent::TaskOutput {
        resource_type: resource_type.to_owned(),
        output: output.unwrap_or_default().to_owned(),
    })
}

impl Executions for StepFunctions {
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> Result<String, PortError> {
        let output = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(port_error)?;
        Ok(output.execution_arn().to_owned())
    }

    async fn describe(&self, execution_arn: &str) -> Result<Option<ExecutionState>, PortError> {
        match self.client.describe_execution().execution_arn(execution_arn).send().await {
            Ok(output) => Ok(Some(ExecutionState {
                status: output.status().as_str().to_owned(),
                input: output.input().unwrap_or_default().to_owned(),
                error: output.error().map(str::to_owned),
                cause: output.cause().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_does_not_exist()) => Ok(None),
            Err(e) => Err(port_error(e)),
        }
    }

    async fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, PortError> {
        let mut events = Vec::new();
        let mut pages =
            self.client.get_execution_history().execution_arn(execution_arn).max_results(1000).into_paginator().send();
        let mut read = 0;
        while let Some(page) = pages.next().await {
            events.extend(page.map_err(port_error)?.events().iter().filter_map(event));
            read += 1;
            if read == MAX_HISTORY_PAGES {
                break;
            }
        }
        Ok(events)
    }

    async fn send_task_success(&self, token: &str, output: &str) -> Result<(), PortError> {
        self.client.send_task_success().task_token(token).output(output).send().await.map_err(port_error)?;
        Ok(())
    }

    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), PortError> {
        self.client.send_task_failure().task_token(token).error(error).cause(cause).send().await.map_err(port_error)?;
        Ok(())
    }
}
