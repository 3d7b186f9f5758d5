//! The notifier Lambda's handler against real components: the webhook URL from Secrets Manager in moto, posted to a
//! real HTTP server on 127.0.0.1. The URL carries a canary; it must reach the server and nothing else (not the
//! logs, not the answer).

mod common;

use common::moto::{sdk_config, start_moto};
use common::slack::slack;
use deploy_runner_aws::SecretsManager;
use deploy_runner_notifier::Notifier;
use deploy_runner_notify::RetryPolicy;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WEBHOOK_CANARY: &str = "T0CANARY/B0CANARY/webhookS3cr3t";

/// Captures everything the handler logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn event(kind: &str) -> Value {
    json!({"kind": kind, "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:deploy-runner:run-42",
           "account": "prod", "task_token": "TASK-TOKEN-CANARY",
           "error": {"Error": "WaveFailed", "Cause": "the wave's task failed"},
           "input": {"run_id": "run-42", "attempt": 1, "completed": [], "waves": [],
                     "rollout": {"actor": "octocat", "repo": "https://github.com/acme/infrastructure-live.git",
                                 "ref": "0123456789abcdef0123456789abcdef01234567", "mode": "apply"}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_notifier_posts_from_the_secret_retries_and_never_logs_the_url() {
    let moto = start_moto();
    let aws = sdk_config(&moto).await;
    let (port, posts) = slack(vec![500, 200, 200, 404]);
    let url = format!("http://127.0.0.1:{port}/services/{WEBHOOK_CANARY}");
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name("deploy-runner/slack-webhook")
        .secret_string(json!({"url": url}).to_string())
        .send()
        .await
        .expect("secret");
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let retry = RetryPolicy { attempts: 3, first_delay: Duration::from_millis(20), timeout: Duration::from_secs(5) };
    let notifier =
        Notifier::new(SecretsManager::from_config(&aws), Some("deploy-runner/slack-webhook".into()), retry.clone());

    let approval = notifier.handle(event("approval")).await;
    assert_eq!(approval, json!({"notified": true, "attempts": 2}), "a 500 is retried");
    let (line, body) = posts.recv().expect("first post");
    assert!(line.contains(WEBHOOK_CANARY), "the server is reached at the secret's URL");
    for key in ["branch", "status", "url", "repo", "actor"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert_eq!(body["status"], "apply waiting for approval: prod");
    assert_eq!(body["account"], "prod");
    assert_eq!(body["run_id"], "run-42");
    let _ = posts.recv().expect("the retry");
    assert_eq!(notifier.handle(event("succeeded")).await["notified"], true);
    // Slack refuses: the answer says so, and the handler still returns normally (the rollout goes on).
    let refused = notifier.handle(event("failed")).await;
    assert_eq!(refused, json!({"notified": false, "reason": "the webhook refused the message with HTTP 404"}));
    assert_eq!(notifier.handle(json!({"kind": "bogus"})).await["notified"], false);

    // No secret configured, or a secret that does not exist: logged, never an error.
    let off = Notifier::new(SecretsManager::from_config(&aws), None, retry.clone());
    assert_eq!(off.handle(event("succeeded")).await["notified"], false);
    let missing = Notifier::new(SecretsManager::from_config(&aws), Some("nope".into()), retry);
    let answer = missing.handle(event("succeeded")).await;
    assert_eq!(answer["notified"], false);
    assert!(answer["reason"].as_str().is_some_and(|r| r.contains("ResourceNotFound")), "{answer}");

    let logged = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logged.contains("notified") && logged.contains("notification_failed"), "{logged}");
    for secret in [WEBHOOK_CANARY, "TASK-TOKEN-CANARY"] {
        assert!(!logged.contains(secret), "{secret} leaked into the logs");
    }
}
