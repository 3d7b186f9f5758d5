//! `update-variable`: set one entry of a unit's `inputs` with hcl-edit, keeping comments and formatting.

use deploy_runner_gate::VariableUpdate;
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::Body;
use hcl_edit::Decorate;
use std::path::{Path, PathBuf};

/// Why the edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The file is not valid HCL.
    #[error("{file} is not valid HCL: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// There is no top-level `inputs = { ... }` object.
    #[error("{0} has no top-level `inputs = {{ ... }}` object")]
    NoInputs(String),
    /// The variable is not set in `inputs`.
    #[error("{file}: `inputs` has no entry {variable:?}; add it by hand once, then it can be updated")]
    NoVariable {
        /// The file.
        file: String,
        /// The variable.
        variable: String,
    },
}

/// Markers that make CI systems skip a pipeline (GitHub, GitLab, CircleCI, Bitbucket, Azure, Travis), compared
/// case-insensitively. A commit of ours carrying one would never be applied.
const CI_DIRECTIVES: [&str; 6] = ["[skip", "skip]", "[ci skip", "[no ci", "***no_ci***", "skip-checks"];

/// The commit message of an `update-variable`. Every request field in it has a narrow charset (checked by the
/// gate); this also refuses, as a last line of defence, any message that a CI system would read as "skip me".
pub fn commit_message(update: &VariableUpdate, actor: &str) -> Result<String, String> {
    let message = format!(
        "deploy-runner: set {} = \"{}\" in {}\n\nRequested by {} through deploy-runner update-variable.",
        update.variable, update.value, update.path, actor
    );
    let lower = message.to_lowercase();
    match CI_DIRECTIVES.iter().find(|directive| lower.contains(*directive)) {
        Some(directive) => Err(format!(
            "the commit message would carry the CI directive {directive:?} (from the request's value or actor); \
             refusing, so the change can't skip the pipeline that applies it"
        )),
        None => Ok(message),
    }
}

/// `dir/name`, which must be a regular file (never a link: the write must land in the clone, in this file).
pub fn regular_file(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a regular file (a symlink?); refusing to write through it", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Replaces `path` with `text` atomically: a new file in the same folder renamed over it. A rename replaces the
/// directory entry itself, so even a link swapped in meanwhile is replaced, never written through.
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let permissions = std::fs::metadata(path)?.permissions();
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.as_file().set_permissions(permissions)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The result of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edited {
    /// The new text.
    Changed(String),
    /// The variable already has this value.
    Unchanged,
}

/// Sets `inputs.<variable> = "<value>"` in `text`, keeping everything else byte for byte.
pub fn set_input(file: &str, text: &str, variable: &str, value: &str) -> Result<Edited, UpdateError> {
    let mut body: Body = text
        .parse()
        .map_err(|e: hcl_edit::parser::Error| UpdateError::Parse { file: file.to_owned(), message: e.to_string() })?;
    let mut changed = false;
    {
        let Some(mut inputs) = body.get_attribute_mut("inputs") else {
            return Err(UpdateError::NoInputs(file.to_owned()));
        };
        let Expression::Object(object) = inputs.value_mut() else {
            return Err(UpdateError::NoInputs(file.to_owned()));
        };
        for (key, entry) in object.iter_mut() {
            let name = match key.get() {
                ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                ObjectKey::Expression(Expression::String(s)) => s.as_str().to_owned(),
                ObjectKey::Expression(_) => continue,
            };
            if name != variable {
                continue;
            }
            if matches!(entry.expr(), Expression::String(s) if s.as_str() == value) {
                return Ok(Edited::Unchanged);
            }
            let decor = entry.expr().decor().clone();
            let mut replacement = Expression::from(value);
            *replacement.decor_mut() = decor;
            *entry.expr_mut() = replacement;
            changed = true;
            break;
        }
    }
    if changed {
        return Ok(Edited::Changed(body.to_string()));
    }
    Err(UpdateError::NoVariable { file: file.to_owned(), variable: variable.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = r#"# The orders service in dev.
include "root" {
  path = find_in_parent_folders("root.hcl") # shared settings
}

inputs = {
  # Bumped by the app pipeline.
  image_version = "v1.0.0" # keep me
  replicas      = 2
  "quoted-key"  = "x"
}
"#;

    #[test]
    fn keeps_comments_and_layout() {
        let Edited::Changed(text) = set_input("t.hcl", UNIT, "image_version", "v1.1.0").expect("edit") else {
            panic!("expected a change")
        };
        assert_eq!(text, UNIT.replace("\"v1.0.0\"", "\"v1.1.0\""));
        assert_eq!(set_input("t.hcl", &text, "image_version", "v1.1.0").expect("edit"), Edited::Unchanged);
        let Edited::Changed(quoted) = set_input("t.hcl", UNIT, "quoted-key", "y").expect("edit") else { panic!() };
        assert!(quoted.contains("\"quoted-key\"  = \"y\""), "{quoted}");
    }

    #[test]
    fn commit_messages_carry_no_ci_directive() {
        let update = |value: &str| VariableUpdate {
            repo: "r".into(),
            git_ref: "main".into(),
            path: "dev/app".into(),
            variable: "image_version".into(),
            value: value.into(),
        };
        let ok = commit_message(&update("v1.2.3"), "dependabot[bot]").expect("a bot actor is fine");
        assert!(ok.starts_with("deploy-runner: set image_version = \"v1.2.3\" in dev/app\n\n"), "{ok}");
        for (value, actor) in [("skip-checks:true", "octocat"), ("v1", "x[skip ci]"), ("v1", "[CI SKIP]")] {
            let err = commit_message(&update(value), actor).expect_err(value);
            assert!(err.contains("CI directive"), "{err}");
        }
    }

    #[test]
    fn writes_never_go_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("target.hcl"), "x").expect("write");
        std::os::unix::fs::symlink("target.hcl", dir.path().join("terragrunt.hcl")).expect("symlink");
        assert!(regular_file(dir.path(), "terragrunt.hcl").is_err());
        let real = dir.path().join("real.hcl");
        std::fs::write(&real, "old").expect("write");
        let file = regular_file(dir.path(), "real.hcl").expect("regular");
        replace_file(&file, "new").expect("replace");
        assert_eq!(std::fs::read_to_string(&real).expect("read"), "new");
        assert_eq!(std::fs::read_to_string(dir.path().join("target.hcl")).expect("read"), "x");
    }

    #[test]
    fn clear_errors() {
        assert!(matches!(set_input("t.hcl", UNIT, "ami", "x"), Err(UpdateError::NoVariable { .. })));
        assert!(matches!(set_input("t.hcl", "locals {}", "ami", "x"), Err(UpdateError::NoInputs(_))));
        assert!(matches!(set_input("t.hcl", "inputs = merge({}, {})", "ami", "x"), Err(UpdateError::NoInputs(_))));
        assert!(matches!(set_input("t.hcl", "inputs = {", "ami", "x"), Err(UpdateError::Parse { .. })));
    }
}
