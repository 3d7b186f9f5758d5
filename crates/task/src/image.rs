//! Whether an image tag already exists in the registry, and which commit it was built from.
//!
//! A tag is never overwritten: a tag that exists is either the same build (the revision label names the same
//! commit, and `skip_existing` skips it) or a refusal. The registry's own tag immutability (which the infra
//! module requires) backs this up against races.

use crate::config::{without_secrets, ImageConfig};
use crate::process::run_captured;
use std::process::Command;

/// The OCI label kaniko writes with the commit an image was built from.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// What the registry holds at a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing (or no way to ask: `exists_command` is empty).
    Absent,
    /// An image built from this revision (`unknown` when it carries no revision label).
    BuiltFrom(String),
}

/// Asks the registry about `destination` with the configured commands. `Err` when the tag exists but its revision
/// can't be read: then it is not overwritten either.
pub fn existing_revision(config: &ImageConfig, destination: &str) -> Result<Existing, String> {
    let Some((program, args)) = config.exists_command.split_first() else { return Ok(Existing::Absent) };
    let mut exists = Command::new(program);
    without_secrets(exists.args(args).arg(destination));
    if !matches!(run_captured(exists), Ok((0, _))) {
        return Ok(Existing::Absent);
    }
    let Some((program, args)) = config.revision_command.split_first() else {
        return Err(format!("{destination} already exists and no revision_command is set to read its revision"));
    };
    let mut revision = Command::new(program);
    without_secrets(revision.args(args).arg(destination));
    match run_captured(revision) {
        Ok((0, output)) => Ok(Existing::BuiltFrom(revision_label(&output).unwrap_or_else(|| "unknown".to_owned()))),
        _ => Err(format!(
            "{destination} already exists and its revision can't be read; an existing tag is never \
                          overwritten"
        )),
    }
}

/// The revision label of an image config (`{"config": {"Labels": {...}}}`), as `crane config` prints it.
pub fn revision_label(config_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(config_json.trim()).ok()?;
    value["config"]["Labels"][REVISION_LABEL].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_revision_label() {
        let config = r#"{"architecture":"amd64","config":{"Labels":{"org.opencontainers.image.revision":"abc123"}}}"#;
        assert_eq!(revision_label(config).as_deref(), Some("abc123"));
        assert_eq!(revision_label(r#"{"config":{}}"#), None);
        assert_eq!(revision_label("not json"), None);
    }
}
