//! The invoker Lambda's handler: raw request bytes in, the invoker's JSON answer out, one audit line emitted.
//! `main.rs` builds the AWS clients once and runs it under `lambda_runtime`; tests call [`handle_event`] directly.

use deploy_runner_control::ports::{Executions, LedgerStore, Logs, Tasks};
use deploy_runner_control::{EntryPoint, Invoker};
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;

/// The variable that picks the entry point this function serves: `ci` (the default) or `approvals`.
pub const ENV_ENTRY_POINT: &str = "DEPLOY_RUNNER_ENTRY_POINT";

/// The entry point named by `DEPLOY_RUNNER_ENTRY_POINT` (unset: `ci`), or why it is not one.
pub fn entry_point_from(value: Option<&str>) -> Result<EntryPoint, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(EntryPoint::Ci),
        Some(name) => EntryPoint::from_name(name)
            .ok_or_else(|| format!("{ENV_ENTRY_POINT} must be ci or approvals, not {name:?}")),
    }
}

/// Handles one invocation. The payload stays raw so the gate's strict decoding (duplicate keys, size, depth)
/// sees exactly what CI sent; the answer is written as inert JSON (no raw separators or bidi controls), already
/// serialised so the runtime passes it on byte for byte.
pub async fn handle_event<T, L, E, D>(
    invoker: &Invoker<T, L, E, D>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Box<RawValue>, lambda_runtime::Error>
where
    T: Tasks + Sync,
    L: Logs + Sync,
    E: Executions + Sync,
    D: LedgerStore + Sync,
{
    let (payload, context) = event.into_parts();
    let (response, audit) = invoker.handle(payload.get().as_bytes(), context.request_id.as_bytes()).await;
    audit.emit();
    Ok(RawValue::from_string(deploy_runner_gate::text::to_json_string(&response)?)?)
}
