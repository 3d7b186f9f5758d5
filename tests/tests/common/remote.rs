//! A bare git remote holding the example infrastructure-live, with a work tree to make commits with: what the
//! deploy task clones in its end-to-end and attack tests.

use super::{copy_dir, repo_file, TestRepo};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// A bare remote holding the example infrastructure-live, plus a work tree to make commits with.
pub struct Remote {
    /// The work tree commits are made in.
    pub work: TestRepo,
    /// Holds the bare repository (`live.git`).
    pub bare: tempfile::TempDir,
}

impl Remote {
    /// The example repo, committed once and pushed to `main`.
    pub fn new() -> Remote {
        let work = TestRepo::new();
        copy_dir(&repo_file("examples/infrastructure-live"), work.path());
        work.commit("base");
        let bare = tempfile::tempdir().expect("tempdir");
        let status = Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(work.path())
            .arg(bare.path().join("live.git"))
            .status()
            .expect("clone");
        assert!(status.success());
        work.git(&["remote", "add", "origin", &url_of(&bare.path().join("live.git"))]);
        work.git(&["fetch", "-q", "origin"]);
        Remote { work, bare }
    }

    /// The remote's `file://` URL.
    pub fn url(&self) -> String {
        url_of(&self.bare.path().join("live.git"))
    }

    /// Commits in the work tree and pushes to `branch` of the remote.
    pub fn push(&self, message: &str, branch: &str) -> String {
        let sha = self.work.commit(message);
        self.work.git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
        sha
    }

    /// The example policy for this remote: its URL allowed, a stage and a shared account, plain terraform.
    pub fn policy(&self) -> String {
        let mut policy: Value =
            serde_json::from_str(&std::fs::read_to_string(repo_file("examples/policy.json")).expect("policy"))
                .expect("json");
        policy["repos"]["infrastructure_live"]["exact"] = json!([self.url()]);
        policy["repos"]["app"]["exact"] = json!([self.url()]);
        policy["accounts"]["stage"] = json!({"id": "222222222222", "deploy_order": 2});
        policy["accounts"]["shared"] = json!({"id": "000000000000", "deploy_order": 0});
        policy["binary"] = json!("terraform");
        policy.to_string()
    }
}

/// A `file://` URL of a local path.
pub fn url_of(path: &Path) -> String {
    format!("file://{}", path.display())
}
