//! The invoker Lambda's handler: raw request bytes in, the invoker's JSON answer out, one audit line emitted.
//! `main.rs` builds the AWS clients once and runs it under `lambda_runtime`; tests call [`handle_event`] directly.

use deploy_runner_control::ports::{Executions, Logs, Tasks};
use deploy_runner_control::Invoker;
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;

/// Handles one invocation. The payload stays raw so the gate's strict decoding (duplicate keys, size, depth)
/// sees exactly what CI sent.
pub async fn handle_event<T, L, E>(
    invoker: &Invoker<T, L, E>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<serde_json::Value, lambda_runtime::Error>
where
    T: Tasks + Sync,
    L: Logs + Sync,
    E: Executions + Sync,
{
    let (payload, context) = event.into_parts();
    let (response, audit) = invoker.handle(payload.get().as_bytes(), context.request_id.as_bytes()).await;
    audit.emit();
    Ok(serde_json::to_value(response)?)
}
