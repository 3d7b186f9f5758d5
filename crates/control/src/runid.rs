//! Run ids, ECS client tokens and tags: derived, bounded and safe.

use sha2::{Digest, Sha256};

/// The run id and ECS `clientToken` of a request. With a `request_id` both are a hash of it, so a CI retry
/// names the same run; without one they are unique per invocation (`nonce`).
pub fn run_identity(request_id: Option<&str>, nonce: &[u8]) -> (String, String) {
    let digest = match request_id {
        Some(id) => Sha256::digest(format!("deploy-runner/request-id/{id}")),
        None => Sha256::digest([b"deploy-runner/nonce/".as_slice(), nonce].concat()),
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (format!("run-{}", &hex[..24]), format!("dr-{}", &hex[..61]))
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

    #[test]
    fn identities_are_stable_bounded_and_distinct() {
        let (run, token) = run_identity(Some("gh-1-1"), b"ignored");
        assert_eq!(run_identity(Some("gh-1-1"), b"other"), (run.clone(), token.clone()));
        assert_ne!(run_identity(Some("gh-1-2"), b""), (run.clone(), token.clone()));
        assert!(token.len() <= 64 && run.len() <= 80, "{run} {token}");
        assert_ne!(run_identity(None, b"a").0, run_identity(None, b"b").0);
    }

    #[test]
    fn tags_are_sanitised_and_truncated() {
        assert_eq!(tag_value("https://github.com/acme/x.git"), "https://github.com/acme/x.git");
        assert_eq!(tag_value("a\nb;c$(d)"), "a_b_c__d_");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
        assert_eq!(task_id("arn:aws:ecs:us-east-1:1:task/cluster/abc123"), "abc123");
    }
}
