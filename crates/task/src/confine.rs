//! Path confinement: a request's path must stay inside the clone, through symlinks too.

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
    /// The path holds no unit config.
    #[error("{path} is not a unit: it holds no {expected}")]
    NotAUnit {
        /// The path.
        path: String,
        /// What was looked for.
        expected: &'static str,
    },
}

/// Canonicalises `relative` under `root` and checks it stays inside. With `unit_for`, also checks it is a unit
/// for that tool: a `terragrunt.hcl` (or `.hcl.json`) for terragrunt, `*.tf`/`*.tf.json`/`*.tofu` for terraform.
pub fn confine(root: &Path, relative: &str, unit_for: Option<ToolBinary>) -> Result<PathBuf, ConfineError> {
    let root = root.canonicalize().map_err(|_| ConfineError::Missing(".".into()))?;
    let candidate = root.join(relative);
    let resolved = candidate.canonicalize().map_err(|_| ConfineError::Missing(relative.into()))?;
    if !resolved.starts_with(&root) {
        return Err(ConfineError::Escapes(relative.into()));
    }
    let Some(tool) = unit_for else { return Ok(resolved) };
    let is_unit = match tool {
        ToolBinary::Terragrunt => ["terragrunt.hcl", "terragrunt.hcl.json"].iter().any(|f| resolved.join(f).is_file()),
        ToolBinary::Terraform => std::fs::read_dir(&resolved).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                [".tf", ".tf.json", ".tofu"].iter().any(|ext| name.ends_with(ext)) && e.path().is_file()
            })
        }),
    };
    if !is_unit {
        let expected = match tool {
            ToolBinary::Terragrunt => "terragrunt.hcl",
            ToolBinary::Terraform => "*.tf file",
        };
        return Err(ConfineError::NotAUnit { path: relative.into(), expected });
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside_through_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("dev/vpc")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("dev/vpc/terragrunt.hcl"), "").expect("write");
        std::fs::write(root.join("dev/vpc/main.tf"), "").expect("write");
        std::fs::write(outside.join("terragrunt.hcl"), "").expect("write");
        std::os::unix::fs::symlink(&outside, root.join("dev/evil")).expect("symlink");
        std::os::unix::fs::symlink("vpc", root.join("dev/alias")).expect("symlink");
        std::fs::create_dir_all(root.join("dev/empty")).expect("mkdir");

        assert!(confine(&root, "dev/vpc", Some(ToolBinary::Terragrunt)).is_ok());
        assert!(confine(&root, "dev/vpc", Some(ToolBinary::Terraform)).is_ok());
        assert!(confine(&root, "dev/alias", Some(ToolBinary::Terragrunt)).is_ok(), "a symlink inside stays inside");
        assert!(matches!(confine(&root, "dev/evil", Some(ToolBinary::Terragrunt)), Err(ConfineError::Escapes(_))));
        assert!(matches!(confine(&root, "../outside", None), Err(ConfineError::Escapes(_))));
        assert!(matches!(confine(&root, "dev/nope", None), Err(ConfineError::Missing(_))));
        assert!(matches!(
            confine(&root, "dev/empty", Some(ToolBinary::Terragrunt)),
            Err(ConfineError::NotAUnit { .. })
        ));
        assert!(confine(&root, "dev/empty", None).is_ok());
    }
}
