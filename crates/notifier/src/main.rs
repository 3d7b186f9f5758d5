//! `deploy-runner-notifier`: the Lambda. Builds the Secrets Manager client once, then serves the state machine's
//! events. `DEPLOY_RUNNER_SLACK_SECRET` names the secret holding the webhook URL.

use deploy_runner_aws::{load_config, SecretsManager};
use deploy_runner_notifier::Notifier;
use deploy_runner_notify::RetryPolicy;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
    let aws = load_config().await;
    let secret = std::env::var("DEPLOY_RUNNER_SLACK_SECRET").ok().filter(|s| !s.is_empty());
    let notifier = Notifier::new(SecretsManager::from_config(&aws), secret, RetryPolicy::default());
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(notifier.handle(event.payload).await)
    }))
    .await
}
