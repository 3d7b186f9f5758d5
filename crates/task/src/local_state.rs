//! Terraform state that outlives the clone, for the local backend only: a task's clone is temporary, so a unit on
//! Terraform's default (local) backend would lose its state after every run, and the next run would plan to create
//! again what it created. With `DEPLOY_RUNNER_LOCAL_STATE_DIR` set (the CLI's local backend sets it; ECS never
//! does), a unit that configures no backend of its own gets one more file, [`BACKEND_FILE`], pointing the local
//! backend at `<dir>/<repo>/<unit path>/terraform.tfstate`, where `<repo>` is the first 16 hex digits of the
//! SHA-256 of the repo's canonical URL (`deploy_runner_gate::syntax::canonical_repo`). A unit with a `backend` or
//! `cloud` block keeps its own.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The file written into the unit's folder of the clone.
pub const BACKEND_FILE: &str = "deploy_runner_local_state.tf";

/// Where `unit` of `repo` keeps its state under `dir`.
pub fn state_path(dir: &Path, repo: &str, unit: &str) -> PathBuf {
    let digest = Sha256::digest(deploy_runner_gate::syntax::canonical_repo(repo).as_bytes());
    let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(key).join(unit).join("terraform.tfstate")
}

/// Whether a Terraform file of `unit_dir` declares `terraform { backend ... }` or `terraform { cloud ... }`. A file
/// that can't be parsed counts as declaring one: Terraform will refuse it anyway, and nothing is overridden.
fn declares_backend(unit_dir: &Path) -> Result<bool, String> {
    let entries = std::fs::read_dir(unit_dir).map_err(|e| format!("cannot list {}: {e}", unit_dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".tf.json") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            let blocks = match &value["terraform"] {
                serde_json::Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            if value.is_null() || blocks.iter().any(|b| b.get("backend").is_some() || b.get("cloud").is_some()) {
                return Ok(true);
            }
        } else if name.ends_with(".tf") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Ok(body) = deploy_runner_changes::parsed::parse_hcl(&text) else { return Ok(true) };
            let declares = body.blocks().filter(|b| b.identifier() == "terraform").any(|terraform| {
                terraform.body().blocks().any(|inner| matches!(inner.identifier(), "backend" | "cloud"))
            });
            if declares {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A string as an HCL quoted template that evaluates to exactly `text`.
fn hcl_string(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace("${", "$${").replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// Points `unit_dir`'s Terraform at `state` when it configures no backend; returns whether it did.
pub fn keep_state(unit_dir: &Path, state: &Path) -> Result<bool, String> {
    if declares_backend(unit_dir)? {
        return Ok(false);
    }
    let parent = state.parent().unwrap_or(state);
    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let text = format!(
        "# Written by deploy-runner's local backend: the state outlives the temporary clone.\nterraform {{\n  backend \"local\" {{\n    path = {}\n  }}\n}}\n",
        hcl_string(&state.to_string_lossy())
    );
    std::fs::write(unit_dir.join(BACKEND_FILE), text).map_err(|e| format!("cannot write {BACKEND_FILE}: {e}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_units_without_a_backend_get_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let unit = dir.path().join("unit");
        std::fs::create_dir_all(&unit).expect("mkdir");
        std::fs::write(unit.join("main.tf"), "resource \"terraform_data\" \"x\" {}\n").expect("write");
        let state = state_path(&dir.path().join("state"), "git@github.com:acme/live.git", "dev/app");
        assert_eq!(state, state_path(&dir.path().join("state"), "https://github.com/acme/live.git", "dev/app"));
        assert!(state.ends_with("dev/app/terraform.tfstate"));
        assert_eq!(keep_state(&unit, &state), Ok(true));
        let written = std::fs::read_to_string(unit.join(BACKEND_FILE)).expect("backend file");
        assert!(written.contains(&format!("path = \"{}\"", state.display())), "{written}");

        std::fs::remove_file(unit.join(BACKEND_FILE)).expect("rm");
        std::fs::write(unit.join("backend.tf"), "terraform {\n  backend \"s3\" {}\n}\n").expect("write");
        assert_eq!(keep_state(&unit, &state), Ok(false), "its own backend wins");
        assert!(!unit.join(BACKEND_FILE).exists());
    }

    #[test]
    fn paths_are_quoted_as_hcl_literals() {
        assert_eq!(hcl_string(r#"/a "b" ${c} %{d} \e"#), r#""/a \"b\" $${c} %%{d} \\e""#);
    }
}
