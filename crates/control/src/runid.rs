//! Run ids, ECS client tokens and tags: derived, bounded and safe, and bound to the request they run.
//!
//! A `request_id` makes CI's retries idempotent, but it is only a name the caller picks (CI's are predictable). So
//! a run id is derived from the request id *and* a digest of the whole canonical request: a retry of the same
//! request finds its run, and a different request under the same id can never be answered with it. The first 12
//! hex digits of the run id depend on the request id alone (the *claim*): that is how a second request under a
//! taken id is found and refused (`request_id_conflict`), for tasks through a tag and for rollouts through the
//! execution name, which Step Functions keeps unique.

use deploy_runner_gate::Request;
use sha2::{Digest, Sha256};

/// How a request's run is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// `run-` and 24 hex digits: the claim (12, from the request id) and the request (12, from id and digest).
    pub run_id: String,
    /// ECS's idempotency token (at most 64 characters).
    pub client_token: String,
    /// `run-` and the 12 claim digits, when the request has a `request_id` (every run id of that id starts so).
    pub claim: Option<String>,
    /// The digest of the canonical request (hex), recorded with the run.
    pub digest: String,
}

/// Length of `run-` plus the claim digits.
const CLAIM_LEN: usize = 16;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request as canonical JSON: the typed request re-encoded (so field order, spacing and escapes of what the
/// caller sent don't matter), without its `request_id`, with object keys sorted.
pub fn canonical_request(request: &Request) -> String {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let ordered: std::collections::BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(ordered.into_iter().collect())
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let mut json = request.to_json();
    if let Some(object) = json.as_object_mut() {
        object.remove("request_id");
    }
    // Keys are inserted in sorted order; serde_json keeps insertion order with or without `preserve_order`.
    sorted(json).to_string()
}

/// The run identity of `request`. Without a `request_id` it is unique per invocation (`nonce`).
pub fn run_identity(request: &Request, nonce: &[u8]) -> RunIdentity {
    let digest = hex(&Sha256::digest(canonical_request(request)));
    match &request.request_id {
        Some(id) => {
            let claim = hex(&Sha256::digest(format!("deploy-runner/request-id/{id}")));
            let bound = hex(&Sha256::digest(format!("deploy-runner/request/{id}\n{digest}")));
            RunIdentity {
                run_id: format!("run-{}{}", &claim[..12], &bound[..12]),
                client_token: format!("dr-{}", &bound[..61]),
                claim: Some(format!("run-{}", &claim[..12])),
                digest,
            }
        }
        None => {
            let unique = hex(&Sha256::digest([b"deploy-runner/nonce/".as_slice(), nonce].concat()));
            RunIdentity {
                run_id: format!("run-{}", &unique[..24]),
                client_token: format!("dr-{}", &unique[..61]),
                claim: None,
                digest,
            }
        }
    }
}

/// The claim part of a run id (`run-` and its first 12 hex digits), which every run of one request id shares.
pub fn claim_of(run_id: &str) -> &str {
    run_id.get(..CLAIM_LEN).unwrap_or(run_id)
}

/// ECS tag limits.
const TAG_VALUE_MAX: usize = 256;

/// A tag value within ECS limits: allowed characters only (others become `_`), at most 256 characters.
pub fn tag_value(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) { c } else { '_' })
        .take(TAG_VALUE_MAX)
        .collect()
}

/// The task id (the last segment of a task ARN).
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Request {
        Request::decode(body.as_bytes()).expect("request")
    }

    const PLAN: &str = r#"{"action":"plan","actor":"ci","request_id":"gh-1-1","repo":"r","ref":"main","path":"dev/x"}"#;
    const APPLY: &str =
        r#"{"action":"apply","actor":"ci","request_id":"gh-1-1","repo":"r","ref":"main","path":"dev/x"}"#;

    #[test]
    fn identities_are_bound_to_the_request() {
        let plan = run_identity(&request(PLAN), b"ignored");
        assert_eq!(run_identity(&request(PLAN), b"other"), plan, "a retry names the same run");
        let reordered =
            r#"{"path":"dev/x","ref":"main","repo":"r","request_id":"gh-1-1","actor":"ci","action":"plan"}"#;
        assert_eq!(run_identity(&request(reordered), b"").run_id, plan.run_id, "the canonical request, not the bytes");
        let apply = run_identity(&request(APPLY), b"");
        assert_ne!(apply.run_id, plan.run_id, "another request under the same id is another run");
        assert_ne!(apply.client_token, plan.client_token);
        assert_eq!(apply.claim, plan.claim, "but the same claim, so the conflict is found");
        assert_eq!(claim_of(&apply.run_id), plan.claim.as_deref().expect("claim"));
        assert!(plan.client_token.len() <= 64 && plan.run_id.len() == 28, "{plan:?}");
        let unnamed = request(r#"{"action":"plan","actor":"ci","repo":"r","ref":"main","path":"dev/x"}"#);
        assert_ne!(run_identity(&unnamed, b"a").run_id, run_identity(&unnamed, b"b").run_id);
        assert_eq!(run_identity(&unnamed, b"a").claim, None);
    }

    #[test]
    fn tags_are_sanitised_and_truncated() {
        assert_eq!(tag_value("https://github.com/acme/x.git"), "https://github.com/acme/x.git");
        assert_eq!(tag_value("a\nb;c$(d)"), "a_b_c__d_");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
        assert_eq!(task_id("arn:aws:ecs:us-east-1:1:task/cluster/abc123"), "abc123");
    }
}
