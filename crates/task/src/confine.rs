//! Path confinement: a request's path names exactly one place inside the clone.
//!
//! The gate checks a path's *text* (syntax, guards, account). That check only means something if the text is the
//! place the tool runs in, so no component of the path may be a symlink: not the unit folder, not any folder
//! above it inside the repo, and not the unit's config file. A link could otherwise turn an allowed `dev/...` path
//! into a guarded unit, another account's unit, or a folder outside the clone. Refusing links (rather than
//! resolving them and checking again) keeps one rule for every action and nothing to re-derive.

use deploy_runner_gate::ToolBinary;
use std::path::{Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The path does not exist at the checked-out commit.
    #[error("{0} does not exist at this commit")]
    Missing(String),
    /// The path resolves outside the clone (`..`, or a symlink).
    #[error("{0} resolves outside the repository (through a symlink or '..'); refusing to run anything")]
    Escapes(String),
    /// A component of the path, or the unit's config file, is a symlink.
    #[error("{path}: {link} is a symlink; a request's path must name the real folder and file, so links are refused")]
    Symlink {
        /// The requested path.
        path: String,
        /// The component that is a link.
        link: String,
    },
    /// The path holds no unit config.
    #[error("{path} is not a unit: it holds no {expected}")]
    NotAUnit {
        /// The path.
        path: String,
        /// What was looked for.
        expected: &'static str,
    },
}

/// Walks `relative` under `root` one component at a time and refuses a link anywhere on the way. With `unit_for`,
/// also checks it is a unit for that tool: a regular `terragrunt.hcl` (or `.hcl.json`) for terragrunt, regular
/// `*.tf`/`*.tf.json`/`*.tofu` files (and no linked ones) for terraform. Returns the canonical folder (or file).
pub fn confine(root: &Path, relative: &str, unit_for: Option<ToolBinary>) -> Result<PathBuf, ConfineError> {
    let root = root.canonicalize().map_err(|_| ConfineError::Missing(".".into()))?;
    let mut current = root.clone();
    let mut walked = String::new();
    for component in relative.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if component == ".." {
            return Err(ConfineError::Escapes(relative.into()));
        }
        current.push(component);
        walked = if walked.is_empty() { component.to_owned() } else { format!("{walked}/{component}") };
        let metadata = std::fs::symlink_metadata(&current).map_err(|_| ConfineError::Missing(relative.into()))?;
        if metadata.file_type().is_symlink() {
            return Err(ConfineError::Symlink { path: relative.into(), link: walked });
        }
    }
    // No component is a link, so this is `current` itself; canonicalising proves it once more.
    let resolved = current.canonicalize().map_err(|_| ConfineError::Missing(relative.into()))?;
    if !resolved.starts_with(&root) {
        return Err(ConfineError::Escapes(relative.into()));
    }
    let Some(tool) = unit_for else { return Ok(resolved) };
    let config_files = unit_config_files(&resolved, tool);
    if let Some(link) = config_files.iter().find(|(_, is_link)| *is_link) {
        return Err(ConfineError::Symlink { path: relative.into(), link: format!("{relative}/{}", link.0) });
    }
    if config_files.is_empty() {
        let expected = if tool.is_terraform_like() { "*.tf file" } else { "terragrunt.hcl" };
        return Err(ConfineError::NotAUnit { path: relative.into(), expected });
    }
    Ok(resolved)
}

/// The unit config files directly in `dir` for `tool`, each with whether it is a symlink.
fn unit_config_files(dir: &Path, tool: ToolBinary) -> Vec<(String, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_config = tool.is_unit_config(&name);
            let kind = entry.file_type().ok()?;
            (is_config && (kind.is_file() || kind.is_symlink())).then(|| (name, kind.is_symlink()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_link_on_the_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("dev/vpc")).expect("mkdir");
        std::fs::create_dir_all(root.join("prod/db")).expect("mkdir");
        std::fs::create_dir_all(root.join("dev/linked-config")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("dev/vpc/terragrunt.hcl"), "").expect("write");
        std::fs::write(root.join("dev/vpc/main.tf"), "").expect("write");
        std::fs::write(root.join("prod/db/terragrunt.hcl"), "").expect("write");
        std::fs::write(outside.join("terragrunt.hcl"), "").expect("write");
        std::os::unix::fs::symlink(&outside, root.join("dev/evil")).expect("symlink");
        std::os::unix::fs::symlink("vpc", root.join("dev/alias")).expect("symlink");
        std::os::unix::fs::symlink("../prod", root.join("dev/other-account")).expect("symlink");
        std::os::unix::fs::symlink("../../prod/db/terragrunt.hcl", root.join("dev/linked-config/terragrunt.hcl"))
            .expect("symlink");
        std::fs::create_dir_all(root.join("dev/empty")).expect("mkdir");

        assert!(confine(&root, "dev/vpc", Some(ToolBinary::Terragrunt)).is_ok());
        assert!(confine(&root, "dev/vpc", Some(ToolBinary::Terraform)).is_ok());
        for (path, link) in [
            ("dev/evil", "dev/evil"),
            ("dev/alias", "dev/alias"),
            ("dev/other-account/db", "dev/other-account"),
            ("dev/linked-config", "dev/linked-config/terragrunt.hcl"),
        ] {
            match confine(&root, path, Some(ToolBinary::Terragrunt)) {
                Err(ConfineError::Symlink { link: found, .. }) => assert_eq!(found, link, "{path}"),
                other => panic!("{path}: expected a symlink refusal, got {other:?}"),
            }
        }
        assert!(matches!(confine(&root, "../outside", None), Err(ConfineError::Escapes(_))));
        assert!(matches!(confine(&root, "dev/nope", None), Err(ConfineError::Missing(_))));
        assert!(matches!(
            confine(&root, "dev/empty", Some(ToolBinary::Terragrunt)),
            Err(ConfineError::NotAUnit { .. })
        ));
        assert!(confine(&root, "dev/empty", None).is_ok());
        assert!(confine(&root, ".", None).is_ok(), "the repo root itself (a build context)");
    }

    #[test]
    fn a_linked_parent_of_the_repo_itself_is_fine() {
        // The clone may live under a linked folder (/tmp on some systems); only links inside the repo count.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("real/repo/dev/vpc")).expect("mkdir");
        std::fs::write(dir.path().join("real/repo/dev/vpc/terragrunt.hcl"), "").expect("write");
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).expect("symlink");
        assert!(confine(&dir.path().join("link/repo"), "dev/vpc", Some(ToolBinary::Terragrunt)).is_ok());
    }
}
