//! The message schema, and how a rollout event becomes a message.

use deploy_runner_rollout::execution::ExecutionInput;
use serde::{Deserialize, Serialize};

/// The Slack Workflow webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackMessage {
    /// The branch (or ref) deployed.
    pub branch: String,
    /// What happened: `plan succeeded`, `apply failed`, `approval needed for prod`, ...
    pub status: String,
    /// Where to look: the CI run, or the rollout's execution in the console.
    pub url: String,
    /// The repo.
    pub repo: String,
    /// Who triggered it.
    pub actor: String,
    /// The account concerned, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The rollout's run id, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// A short summary: plan counts per unit, the failure's cause, or the command that answers an approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// Which point of a rollout the state machine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutEventKind {
    /// A wave waits for an approval.
    Approval,
    /// Every wave succeeded.
    Succeeded,
    /// A wave failed, was rejected or timed out.
    Failed,
}

/// The notifier Lambda's payload, as the state machine definition builds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RolloutEvent {
    /// What happened.
    pub kind: RolloutEventKind,
    /// The execution (`$$.Execution.Id`).
    pub execution_arn: String,
    /// The execution input (`$$.Execution.Input`).
    pub input: serde_json::Value,
    /// For approvals: the account waiting.
    #[serde(default)]
    pub account: Option<String>,
    /// For approvals: the task token (never put in the message; the invoker finds it in the history).
    #[serde(default)]
    pub task_token: Option<String>,
    /// For failures: the error the Map state caught (`{"Error", "Cause"}`).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

/// The console page of an execution.
pub fn execution_console_url(execution_arn: &str) -> String {
    let region = execution_arn.split(':').nth(3).unwrap_or("us-east-1");
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
}

/// Keeps a summary short enough for a Slack message, on a character boundary.
fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let cut: String = text.chars().take(limit).collect();
    format!("{cut}...")
}

impl SlackMessage {
    /// The message for a rollout event.
    pub fn from_rollout_event(event: &RolloutEvent) -> SlackMessage {
        let input: Option<ExecutionInput> = serde_json::from_value(event.input.clone()).ok();
        let field = |get: fn(&ExecutionInput) -> &str| input.as_ref().map_or("unknown", get).to_owned();
        let run_id = input.as_ref().map(|i| i.run_id.clone());
        let mode = input.as_ref().map_or("rollout", |i| i.rollout.mode.as_str());
        let (status, summary) = match event.kind {
            RolloutEventKind::Approval => {
                let account = event.account.as_deref().unwrap_or("?");
                (
                    format!("{mode} waiting for approval: {account}"),
                    Some(format!(
                        "deploy-runner approve --run {} --account {account}   (or: deploy-runner reject ...)",
                        run_id.as_deref().unwrap_or("?")
                    )),
                )
            }
            RolloutEventKind::Succeeded => (format!("{mode} succeeded"), None),
            RolloutEventKind::Failed => {
                let cause = event.error.as_ref().and_then(|e| e["Cause"].as_str().or(e["Error"].as_str()));
                let resume = format!("resume with: deploy-runner resume --run {}", run_id.as_deref().unwrap_or("?"));
                let summary = match cause {
                    Some(cause) => format!("{}; {resume}", shorten(cause, 500)),
                    None => resume,
                };
                (format!("{mode} failed"), Some(summary))
            }
        };
        SlackMessage {
            branch: field(|i| &i.rollout.git_ref),
            status,
            url: execution_console_url(&event.execution_arn),
            repo: field(|i| &i.rollout.repo),
            actor: field(|i| &i.rollout.actor),
            account: event.account.clone(),
            run_id,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> serde_json::Value {
        json!({"run_id": "run-1", "attempt": 1, "completed": [],
               "rollout": {"actor": "octocat", "repo": "https://github.com/acme/live.git", "ref": "main", "mode": "apply"},
               "waves": []})
    }

    #[test]
    fn the_five_variables_are_always_strings() {
        for kind in ["approval", "succeeded", "failed"] {
            for input in [input(), json!({"unexpected": true})] {
                let event: RolloutEvent = serde_json::from_value(json!({
                    "kind": kind, "execution_arn": "arn:aws:states:eu-west-1:1:execution:m:run-1", "input": input,
                    "account": "prod", "task_token": "SECRET-TOKEN", "error": {"Error": "States.TaskFailed", "Cause": "exit 2"}
                }))
                .expect("event");
                let message = serde_json::to_value(SlackMessage::from_rollout_event(&event)).expect("json");
                for key in ["branch", "status", "url", "repo", "actor"] {
                    assert!(message[key].is_string(), "{kind}: {key} in {message}");
                }
                assert!(!message.to_string().contains("SECRET-TOKEN"), "the task token never reaches Slack");
            }
        }
    }

    #[test]
    fn each_kind_says_what_happened_and_what_to_do() {
        let event = |kind: &str| -> RolloutEvent {
            serde_json::from_value(
                json!({"kind": kind, "execution_arn": "arn:aws:states:eu-west-1:1:execution:m:run-1",
                "input": input(), "account": "prod", "error": {"Error": "WaveFailed", "Cause": "exit 2"}}),
            )
            .expect("event")
        };
        let approval = SlackMessage::from_rollout_event(&event("approval"));
        assert_eq!(approval.status, "apply waiting for approval: prod");
        assert_eq!(approval.branch, "main");
        assert_eq!(approval.actor, "octocat");
        assert!(approval
            .summary
            .as_deref()
            .is_some_and(|s| s.contains("deploy-runner approve --run run-1 --account prod")));
        assert!(approval.url.starts_with("https://eu-west-1.console.aws.amazon.com/states/"));
        let failed = SlackMessage::from_rollout_event(&event("failed"));
        assert_eq!(failed.status, "apply failed");
        assert_eq!(failed.summary.as_deref(), Some("exit 2; resume with: deploy-runner resume --run run-1"));
        assert_eq!(SlackMessage::from_rollout_event(&event("succeeded")).status, "apply succeeded");
        assert_eq!(shorten("ééé", 2), "éé...");
    }
}
