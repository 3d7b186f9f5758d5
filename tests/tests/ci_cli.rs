//! `deploy-runner ci` on the local backend with real git and terraform: the events' base rules and the JSON summary.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

const UNIT: &str = r#"resource "terraform_data" "this" { input = "v1" }"#;

fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"id": "111111111111", "deploy_order": 1}}"#);
    repo.write("dev/app/terragrunt.hcl", "");
    repo.write("dev/app/main.tf", UNIT);
    repo.write("dev/db/terragrunt.hcl", "");
    repo.write("dev/db/main.tf", UNIT);
    repo.commit("base");
    repo
}

fn policy(dir: &Path, repo: &TestRepo) -> std::path::PathBuf {
    let mut policy: Value = serde_json::from_str(include_str!("../../examples/policy.json")).expect("policy");
    policy["repos"]["infrastructure_live"]["exact"] = json!([format!("file://{}", repo.path().display())]);
    policy["binary"] = json!("terraform");
    let path = dir.join("policy.json");
    std::fs::write(&path, policy.to_string()).expect("write");
    path
}

fn ci(dir: &Path, repo: &TestRepo, args: &[&str]) -> (Option<i32>, Value) {
    let output = deploy_runner()
        .args(["ci", "--local", "--config"])
        .arg(policy(dir, repo))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--repo")
        .arg(repo.path())
        .args(["--repo-url", &format!("file://{}", repo.path().display()), "--format", "json"])
        .args(args)
        .env(
            "DEPLOY_RUNNER_TASK_CONFIG",
            json!({"tool_path": workspace_root().join(".tools/bin/terraform")}).to_string(),
        )
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_RUN_ID")
        .env_remove("SLACK_WEBHOOK_URL")
        .output()
        .expect("run ci");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), summary)
}

#[test]
fn a_pull_request_plans_from_the_merge_base_and_never_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.git(&["update-ref", "refs/remotes/origin/main", &base]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("dev/app/main.tf", &UNIT.replace("v1", "v2"));
    repo.commit("one");
    repo.write("dev/db/main.tf", &UNIT.replace("v1", "v2"));
    let head = repo.commit("two");
    let (code, summary) = ci(dir.path(), &repo, &["--event", "pull_request", "--branch", "feature"]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["event"], "pull_request");
    assert_eq!(summary["base"], base.as_str(), "the merge-base with origin/main covers both commits");
    assert_eq!(summary["head"], head.trim());
    let units: Vec<&str> =
        summary["changes"]["units"].as_array().expect("units").iter().filter_map(|u| u["path"].as_str()).collect();
    assert_eq!(units.len(), 2, "{units:?}");
    assert_eq!(summary["plan"]["outcome"], "succeeded");
    assert_eq!(summary["apply"], Value::Null, "a pull request never applies");
    assert_eq!(summary["applied"], false);
}

#[test]
fn a_push_to_main_applies_the_planned_commit_and_a_push_elsewhere_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    repo.write("dev/app/main.tf", &UNIT.replace("v1", "v2"));
    let head = repo.commit("change app");
    let (code, summary) = ci(dir.path(), &repo, &["--event", "push", "--branch", "main"]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["event"], "push");
    assert_eq!(summary["head"], head.trim());
    assert_eq!(summary["apply"]["outcome"], "succeeded");
    assert_eq!(summary["apply"]["waves"][0]["units"][0]["operation"], "apply");
    assert_eq!(summary["applied"], true);
    let (code, summary) = ci(dir.path(), &repo, &["--event", "push", "--branch", "feature"]);
    assert_eq!(code, Some(0));
    assert_eq!(summary["plan"]["outcome"], "succeeded");
    assert_eq!(summary["apply"], Value::Null, "only an apply ref applies");
}
