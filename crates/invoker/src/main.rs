//! `deploy-runner-invoker`: the Lambda. Reads `DEPLOY_RUNNER_CONFIG` and `DEPLOY_RUNNER_ENTRY_POINT` once (a bad
//! config fails init with a clear log line), builds the AWS clients once, then serves invocations. The same code
//! runs as CI's entry point and as the approvers' (a second function).

use deploy_runner_aws::{load_config, CloudWatchLogs, DynamoLedger, EcsTasks, StepFunctions};
use deploy_runner_control::{Invoker, InvokerConfig};
use deploy_runner_invoker::{entry_point_from, ENV_ENTRY_POINT};
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
    let entry_point = match entry_point_from(std::env::var(ENV_ENTRY_POINT).ok().as_deref()) {
        Ok(entry_point) => entry_point,
        Err(error) => {
            tracing::error!(event = "init_failed", error = %error);
            return Err(error.into());
        }
    };
    let aws = load_config().await;
    // Without runtime.ledger_table (a deployment older than the ledger) the invoker never calls the ledger port.
    let table = config.runtime.ledger_table.clone().unwrap_or_default();
    let invoker = Invoker::new(config, EcsTasks::from_config(&aws), CloudWatchLogs::from_config(&aws))
        .with_executions(StepFunctions::from_config(&aws))
        .with_ledger(DynamoLedger::from_config(&aws, &table))
        .with_entry_point(entry_point);
    let invoker = &invoker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        deploy_runner_invoker::handle_event(invoker, event).await
    }))
    .await
}
