//! One JSON line per invocation, for CloudWatch: who asked for what, what was decided, what started.

use crate::invoker::InvokeResponse;
use deploy_runner_gate::{Decision, Request};
use serde::Serialize;
use std::time::Duration;

/// Longest value kept in an audit field; longer ones are cut (the full request is never logged).
const FIELD_MAX: usize = 256;

/// The audit record of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct AuditRecord {
    /// Always `decision`.
    pub event: &'static str,
    /// The door the request came through: `ci` or `approvals`.
    pub entry_point: &'static str,
    /// `allow`, `deny` or `error`.
    pub decision: String,
    /// The reason code.
    pub reason: String,
    /// The action, when recognised.
    pub action: String,
    /// The repo, when the body could be decoded.
    pub repo: String,
    /// The ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The unit path.
    pub path: String,
    /// Who asked.
    pub actor: String,
    /// The idempotency key.
    pub request_id: String,
    /// The run id.
    pub run_id: String,
    /// The task started or found.
    pub task_arn: String,
    /// The rollout execution started or found.
    pub execution_arn: String,
    /// How long the invocation took.
    pub duration_ms: u64,
}

/// Cuts a value to [`FIELD_MAX`] characters and escapes every control, format, separator, private-use and
/// unassigned character (`deploy_runner_gate::text`), so a field can't forge, hide or reorder a line.
pub fn clean(value: &str) -> String {
    let cut: String = value.chars().take(FIELD_MAX).collect();
    let mut out = deploy_runner_gate::text::inert(&cut).into_owned();
    if value.chars().nth(FIELD_MAX).is_some() {
        out.push_str("...");
    }
    out
}

impl AuditRecord {
    /// Starts a record from the raw body (decoded if possible, so denials are attributable) and the decision.
    pub fn from_body(body: &[u8], decision: &Decision) -> AuditRecord {
        let mut record = AuditRecord { event: "decision", ..AuditRecord::default() };
        record.action = clean(decision.action.map_or("", |a| a.as_str()));
        if let Ok(request) = Request::decode(body) {
            record.repo = clean(request.body.repo());
            record.git_ref = clean(request.body.git_ref());
            record.path = clean(request.body.unit_path().unwrap_or(""));
            record.actor = clean(&request.actor);
            record.request_id = clean(request.request_id.as_deref().unwrap_or(""));
        }
        record
    }

    /// Fills in the outcome.
    pub fn complete(&mut self, response: &InvokeResponse, elapsed: Duration) {
        self.decision = response.decision.clone();
        self.reason = response.reason.clone();
        self.run_id = response.run_id.clone().unwrap_or_default();
        self.task_arn = response.task_arn.clone().unwrap_or_default();
        self.execution_arn = response.rollout.as_ref().map(|r| r.execution_arn.clone()).unwrap_or_default();
        self.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    }

    /// Emits the record as one `tracing` event (the Lambda's JSON formatter makes it one line on stdout).
    pub fn emit(&self) {
        tracing::info!(
            target: "audit",
            event = self.event,
            entry_point = self.entry_point,
            decision = %self.decision,
            reason = %self.reason,
            action = %self.action,
            repo = %self.repo,
            r#ref = %self.git_ref,
            path = %self.path,
            actor = %self.actor,
            request_id = %self.request_id,
            run_id = %self.run_id,
            task_arn = %self.task_arn,
            execution_arn = %self.execution_arn,
            duration_ms = self.duration_ms,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_cuts_and_escapes() {
        assert_eq!(clean("a\nb\u{1b}"), "a\\u{000a}b\\u{001b}");
        assert_eq!(clean("bob\u{2028}\u{85}\u{202e}"), "bob\\u{2028}\\u{0085}\\u{202e}");
        assert_eq!(clean(&"x".repeat(300)), format!("{}...", "x".repeat(256)));
    }
}
