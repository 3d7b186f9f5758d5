//! The notifier Lambda's handler. The state machine calls it on an approval gate, on success and on failure; it
//! posts the Slack Workflow message and always returns normally, because a failed notification must never fail a
//! rollout (it is logged, and retried inside [`deploy_runner_notify::post`]).
//!
//! The webhook URL is read from Secrets Manager once per container and kept in memory; it is never logged.

use deploy_runner_control::ports::Secrets;
use deploy_runner_notify::{post, RetryPolicy, RolloutEvent, SlackMessage};
use serde_json::{json, Value};
use std::sync::Mutex;

/// The handler, generic over where the webhook URL comes from.
pub struct Notifier<S> {
    secrets: S,
    secret_id: Option<String>,
    retry: RetryPolicy,
    url: Mutex<Option<String>>,
}

/// The webhook URL from a secret's value: the URL itself, or a JSON object with a `url` field.
fn webhook_url(secret: &str) -> Option<String> {
    let trimmed = secret.trim();
    if trimmed.starts_with('{') {
        return serde_json::from_str::<Value>(trimmed).ok()?["url"].as_str().map(str::to_owned);
    }
    Some(trimmed.to_owned()).filter(|s| !s.is_empty())
}

impl<S: Secrets + Sync> Notifier<S> {
    /// A notifier reading the webhook from `secret_id` (`None`: notifications are off, and each event says so).
    pub fn new(secrets: S, secret_id: Option<String>, retry: RetryPolicy) -> Notifier<S> {
        Notifier { secrets, secret_id, retry, url: Mutex::new(None) }
    }

    async fn url(&self) -> Result<String, String> {
        if let Some(url) = self.url.lock().map_err(|_| "poisoned".to_owned())?.clone() {
            return Ok(url);
        }
        let Some(secret_id) = &self.secret_id else {
            return Err("no webhook secret is configured (DEPLOY_RUNNER_SLACK_SECRET)".into());
        };
        let secret = self.secrets.secret_string(secret_id).await.map_err(|e| format!("reading the secret: {e}"))?;
        let url = webhook_url(&secret).ok_or("the secret holds no webhook URL")?;
        *self.url.lock().map_err(|_| "poisoned".to_owned())? = Some(url.clone());
        Ok(url)
    }

    /// Handles one event; the answer says whether Slack got it. Never an error.
    pub async fn handle(&self, payload: Value) -> Value {
        let event: RolloutEvent = match serde_json::from_value(payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(event = "notification_skipped", reason = "unreadable event", error = %e);
                return json!({"notified": false, "reason": "unreadable event"});
            }
        };
        let message = SlackMessage::from_rollout_event(&event);
        let url = match self.url().await {
            Ok(url) => url,
            Err(reason) => {
                tracing::error!(event = "notification_skipped", run_id = ?message.run_id, reason = %reason);
                return json!({"notified": false, "reason": reason});
            }
        };
        let retry = self.retry.clone();
        let sent = message.clone();
        let outcome = tokio::task::spawn_blocking(move || post(&url, &sent, &retry)).await;
        match outcome {
            Ok(Ok(attempts)) => {
                tracing::info!(event = "notified", run_id = ?message.run_id, status = %message.status, attempts);
                json!({"notified": true, "attempts": attempts})
            }
            Ok(Err(e)) => {
                tracing::error!(event = "notification_failed", run_id = ?message.run_id, error = %e);
                json!({"notified": false, "reason": e.to_string()})
            }
            Err(e) => {
                tracing::error!(event = "notification_failed", run_id = ?message.run_id, error = %e);
                json!({"notified": false, "reason": "the posting thread failed"})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::webhook_url;

    #[test]
    fn the_secret_is_the_url_or_holds_it() {
        assert_eq!(webhook_url(" https://hooks.slack.com/x \n").as_deref(), Some("https://hooks.slack.com/x"));
        assert_eq!(
            webhook_url(r#"{"url": "https://hooks.slack.com/y"}"#).as_deref(),
            Some("https://hooks.slack.com/y")
        );
        assert_eq!(webhook_url(r#"{"other": 1}"#), None);
        assert_eq!(webhook_url("  "), None);
    }
}
