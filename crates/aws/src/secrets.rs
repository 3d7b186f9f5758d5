//! Secrets Manager through the SDK: the notifier's webhook URL.

use crate::port_error;
use aws_sdk_secretsmanager as secretsmanager;
use deploy_runner_control::ports::{PortError, PortErrorKind, Secrets};

/// Secrets Manager through the SDK.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: secretsmanager::Client,
}

impl SecretsManager {
    /// Wraps a client (built once at init).
    pub fn new(client: secretsmanager::Client) -> SecretsManager {
        SecretsManager { client }
    }

    /// Builds the client from shared configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> SecretsManager {
        SecretsManager::new(secretsmanager::Client::new(config))
    }
}

impl Secrets for SecretsManager {
    async fn secret_string(&self, secret_id: &str) -> Result<String, PortError> {
        let output = self.client.get_secret_value().secret_id(secret_id).send().await.map_err(port_error)?;
        output
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| PortError { kind: PortErrorKind::Other, message: "the secret has no SecretString".into() })
    }
}
