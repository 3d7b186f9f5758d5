//! `deploy-runner-invoker`: the Lambda. Reads `DEPLOY_RUNNER_CONFIG` once (a bad config fails init with a clear
//! log line), builds the AWS clients once, then serves invocations.

use deploy_runner_aws::{load_config, CloudWatchLogs, EcsTasks, StepFunctions};
use deploy_runner_control::{Invoker, InvokerConfig};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // One JSON object per line on stdout: CloudWatch collects them; the audit lines are among them.
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
    let config = match std::env::var("DEPLOY_RUNNER_CONFIG") {
        Ok(text) => InvokerConfig::from_json(&text),
        Err(_) => {
            tracing::error!(event = "init_failed", error = "DEPLOY_RUNNER_CONFIG is not set");
            return Err("DEPLOY_RUNNER_CONFIG is not set".into());
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(event = "init_failed", error = %error);
            return Err(error.into());
        }
    };
    let aws = load_config().await;
    let invoker = Invoker::new(config, EcsTasks::from_config(&aws), CloudWatchLogs::from_config(&aws))
        .with_executions(StepFunctions::from_config(&aws));
    let invoker = &invoker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        deploy_runner_invoker::handle_event(invoker, event).await
    }))
    .await
}
