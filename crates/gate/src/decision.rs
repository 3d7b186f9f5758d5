//! The gate's answer: allow or deny, a stable reason code, and which container would run the request.

use crate::request::Action;
use serde::{Deserialize, Serialize};

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The request may run.
    Allow,
    /// The request must not run.
    Deny,
}

/// A stable, machine-readable reason code. The wire names are a public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Allowed.
    Ok,
    /// The body could not be decoded: not JSON, wrong shape, unknown or duplicate fields, too large or deep.
    MalformedRequest,
    /// The `action` is not one the gate knows.
    UnknownAction,
    /// The repo is not on the allow-list for this action (or is shaped like an attack).
    RepoNotAllowed,
    /// A ref is neither a valid branch name nor a full commit SHA.
    RefInvalid,
    /// The action applies changes and the ref is neither an apply ref nor a full commit SHA.
    RefNotAllowedForApply,
    /// A path breaks the path syntax rules.
    PathInvalid,
    /// A path matches a path guard (the pipeline never deploys itself).
    PathGuarded,
    /// A unit path's first segment is not a known account.
    UnknownAccount,
    /// `update-variable` names a variable outside the allow-list.
    VariableNotAllowed,
    /// Some other field breaks its rule (actor, request id, value, tag, rollout units).
    FieldInvalid,
    /// A rollout names more units than the gate accepts.
    TooManyUnits,
    /// An apply-mode rollout (or a deleted unit's `source_ref` in one) names a branch instead of a full commit SHA,
    /// so its waves could run at different commits.
    RefNotPinned,
    /// An image tag is neither the built commit's SHA nor a release tag built at that tag.
    TagNotAllowed,
    /// A mutating single-unit action in an account whose changes need an approved rollout wave.
    ApprovalRequired,
}

impl Reason {
    /// The wire code, e.g. `repo_not_allowed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::MalformedRequest => "malformed_request",
            Reason::UnknownAction => "unknown_action",
            Reason::RepoNotAllowed => "repo_not_allowed",
            Reason::RefInvalid => "ref_invalid",
            Reason::RefNotAllowedForApply => "ref_not_allowed_for_apply",
            Reason::PathInvalid => "path_invalid",
            Reason::PathGuarded => "path_guarded",
            Reason::UnknownAccount => "unknown_account",
            Reason::VariableNotAllowed => "variable_not_allowed",
            Reason::FieldInvalid => "field_invalid",
            Reason::TooManyUnits => "too_many_units",
            Reason::RefNotPinned => "ref_not_pinned",
            Reason::TagNotAllowed => "tag_not_allowed",
            Reason::ApprovalRequired => "approval_required",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ECS container (task definition) that runs an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    /// Read-only credentials: plan, validate, plan-destroy, plan rollouts.
    Planner,
    /// Deploy credentials: apply, destroy, update-variable, apply rollouts.
    Applier,
    /// Registry push credentials: build-image.
    ImageBuilder,
}

impl Container {
    /// The wire name, e.g. `image-builder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Planner => "planner",
            Container::Applier => "applier",
            Container::ImageBuilder => "image-builder",
        }
    }
}

/// The gate's full answer, as printed by `deploy-runner check --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow or deny.
    pub decision: Verdict,
    /// The reason code.
    pub reason: Reason,
    /// A human-readable explanation.
    pub message: String,
    /// The action, when it was recognised.
    pub action: Option<Action>,
    /// The container that runs the action, when allowed.
    pub container: Option<Container>,
    /// The account of a single-unit action, when allowed.
    pub account: Option<String>,
}

impl Decision {
    /// A denial.
    pub fn deny(reason: Reason, message: impl Into<String>, action: Option<Action>) -> Decision {
        Decision { decision: Verdict::Deny, reason, message: message.into(), action, container: None, account: None }
    }

    /// True when the request may run.
    pub fn is_allowed(&self) -> bool {
        self.decision == Verdict::Allow
    }
}

/// Quotes an untrusted value for a message: quotes and backslashes escaped, every control, format, separator,
/// private-use or unassigned character written as an escape (see [`crate::text`]), and cut to 80 characters.
pub fn quote(value: &str) -> String {
    const LIMIT: usize = 80;
    let mut shown = String::with_capacity(value.len().min(LIMIT * 4) + 2);
    shown.push('"');
    for c in value.chars().take(LIMIT) {
        match c {
            '"' => shown.push_str("\\\""),
            '\\' => shown.push_str("\\\\"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            c if crate::text::is_unsafe(c) => shown.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => shown.push(c),
        }
    }
    if value.chars().nth(LIMIT).is_some() {
        shown.push_str("...");
    }
    shown.push('"');
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("a\nb\"c"), r#""a\nb\"c""#);
        assert_eq!(quote(&"x".repeat(100)), format!("\"{}...\"", "x".repeat(80)));
        assert_eq!(quote("\u{202e}"), r#""\u{202e}""#);
        assert_eq!(quote("a\u{2028}b\u{85}\u{e000}"), r#""a\u{2028}b\u{0085}\u{e000}""#);
        assert_eq!(quote("a\\b"), r#""a\\b""#);
    }

    #[test]
    fn wire_names_match_serde() {
        for reason in [
            Reason::Ok,
            Reason::RefNotAllowedForApply,
            Reason::TooManyUnits,
            Reason::RefNotPinned,
            Reason::TagNotAllowed,
            Reason::ApprovalRequired,
        ] {
            assert_eq!(serde_json::to_value(reason).expect("ser"), reason.as_str());
        }
        assert_eq!(serde_json::to_value(Container::ImageBuilder).expect("ser"), "image-builder");
    }
}
