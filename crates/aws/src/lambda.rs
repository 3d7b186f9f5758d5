//! Lambda through the SDK: how the CLI calls the invoker with CI's machine-user credentials.

use crate::port_error;
use aws_sdk_lambda as lambda;
use deploy_runner_control::ports::{PortError, PortErrorKind};

/// Invokes a function synchronously.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: lambda::Client,
}

impl LambdaInvoker {
    /// Builds the client from shared configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> LambdaInvoker {
        LambdaInvoker { client: lambda::Client::new(config) }
    }

    /// Calls `function` with `payload` and returns its JSON answer. A function error (the handler failed) is an
    /// error carrying the function's message.
    pub async fn invoke(&self, function: &str, payload: &[u8]) -> Result<serde_json::Value, PortError> {
        let output = self
            .client
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map_err(port_error)?;
        let body = output.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        if let Some(kind) = output.function_error() {
            let text = String::from_utf8_lossy(&body);
            return Err(PortError {
                kind: PortErrorKind::Other,
                message: format!("the function failed ({kind}): {text}"),
            });
        }
        serde_json::from_slice(&body).map_err(|e| PortError {
            kind: PortErrorKind::Other,
            message: format!("the function's answer is not JSON: {e}"),
        })
    }
}
