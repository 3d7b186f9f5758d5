//! `deploy-runner ci` on the local backend with real git and terraform: the events' base rules and the JSON summary.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

/// `deploy-runner ci --local` on `repo`, with a clean CI environment plus `env`.
fn ci_command(dir: &Path, repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = deploy_runner();
    command
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
        );
    for name in ["GITHUB_EVENT_PATH", "GITHUB_RUN_ID", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "SLACK_WEBHOOK_URL"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command
}

fn run_ci(dir: &Path, repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let output = ci_command(dir, repo, args, env).output().expect("run ci");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (output.status.code(), summary, stderr)
}

fn ci(dir: &Path, repo: &TestRepo, args: &[&str]) -> (Option<i32>, Value) {
    let (code, summary, _) = run_ci(dir, repo, args, &[]);
    (code, summary)
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

/// `--parallelism` reaches the rollout, where the gate holds it to the policy's `max_parallel_units`, and each unit
/// ran says how long it took.
#[test]
fn parallelism_is_asked_for_and_held_to_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    repo.write("dev/app/main.tf", &UNIT.replace("v1", "v2"));
    repo.write("dev/db/main.tf", &UNIT.replace("v1", "v2"));
    repo.commit("change both");
    let (code, summary) = ci(dir.path(), &repo, &["--event", "push", "--branch", "main", "--parallelism", "9"]);
    assert_eq!(code, Some(3), "{summary}");
    assert!(summary["plan"]["message"].as_str().is_some_and(|m| m.contains("max_parallel_units (8)")), "{summary}");
    let (code, summary) = ci(dir.path(), &repo, &["--event", "push", "--branch", "main", "--parallelism", "2"]);
    assert_eq!(code, Some(0), "{summary}");
    let units = summary["apply"]["waves"][0]["units"].as_array().expect("units");
    assert_eq!(units.len(), 2, "{summary}");
    assert!(units.iter().all(|u| u["status"] == "succeeded" && u["duration_ms"].is_u64()), "{summary}");
}

const WEBHOOK_CANARY: &str = "T0CANARY/B0CANARY/ciWebhookS3cr3t";

#[test]
fn slack_gets_the_five_fields_after_plan_and_apply_and_a_webhook_error_does_not_fail_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    repo.write("dev/app/main.tf", &UNIT.replace("v1", "v2"));
    repo.commit("change app");
    // The plan's post succeeds; the apply's gets a 404 (not retried), which must only warn.
    let (port, posts) = common::slack::slack(vec![200, 404]);
    let webhook = format!("http://127.0.0.1:{port}/workflows/{WEBHOOK_CANARY}");
    let env = [
        ("SLACK_WEBHOOK_URL", webhook.as_str()),
        ("GITHUB_SERVER_URL", "https://github.example"),
        ("GITHUB_REPOSITORY", "acme/infrastructure-live"),
        ("GITHUB_RUN_ID", "77"),
        ("GITHUB_ACTOR", "octocat"),
    ];
    let (code, summary, stderr) = run_ci(dir.path(), &repo, &["--event", "push", "--branch", "main"], &env);
    assert_eq!(code, Some(0), "a failed notification never fails the pipeline: {summary}\n{stderr}");
    assert_eq!(summary["applied"], true);
    let mut received = Vec::new();
    while let Ok(post) = posts.recv_timeout(Duration::from_secs(10)) {
        received.push(post);
        if received.len() == 2 {
            break;
        }
    }
    assert_eq!(received.len(), 2, "one post after plan, one after apply");
    for ((request_line, body), stage) in received.iter().zip(["plan", "apply"]) {
        assert!(request_line.starts_with(&format!("POST /workflows/{WEBHOOK_CANARY} ")), "{request_line}");
        let fields: BTreeSet<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(fields, BTreeSet::from(["actor", "branch", "repo", "run_id", "status", "summary", "url"]), "{body}");
        assert_eq!(body["branch"], "main");
        assert_eq!(body["status"], format!("{stage} succeeded"));
        assert_eq!(body["url"], "https://github.example/acme/infrastructure-live/actions/runs/77");
        assert_eq!(body["repo"], "acme/infrastructure-live");
        assert_eq!(body["actor"], "octocat");
        // Nothing was applied before this run, so both the plan and the apply add the unit's one resource.
        assert_eq!(body["summary"], "dev/app succeeded +1 ~0 -0", "{body}");
        assert!(body["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    }
    assert!(stderr.contains("the Slack notification failed"), "the 404 is reported: {stderr}");
    let everything = format!("{summary}{stderr}");
    assert!(!everything.contains("ciWebhookS3cr3t"), "the webhook URL is a secret: {everything}");
}

#[test]
fn a_terminal_gets_a_spinner_and_ci_gets_plain_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    repo.write("dev/app/main.tf", &UNIT.replace("v1", "v2"));
    repo.commit("change app");
    let args = ["--event", "push", "--branch", "feature"];
    let (code, _, plain) = run_ci(dir.path(), &repo, &args, &[]);
    assert_eq!(code, Some(0));
    assert!(plain.contains("dev | "), "task lines are streamed, prefixed by account: {plain}");
    assert!(!plain.contains('\u{1b}'), "no terminal control sequences in CI logs: {plain}");

    // The same run on a pseudo-terminal (util-linux `script`), with CI unset: the spinner names the running wave
    // and redraws below each streamed line.
    let command = ci_command(dir.path(), &repo, &args, &[]);
    let shell_words: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', r"'\''")))
        .collect();
    let transcript = dir.path().join("terminal.out");
    let mut on_terminal = Command::new("script");
    on_terminal.arg("-qec").arg(shell_words.join(" ")).arg(&transcript).env_remove("CI").env("TERM", "xterm");
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => on_terminal.env(name, value),
            None => on_terminal.env_remove(name),
        };
    }
    let status = on_terminal.output().expect("script (util-linux) runs a command on a pseudo-terminal").status;
    assert!(status.success(), "{status:?}");
    let seen = std::fs::read_to_string(&transcript).expect("transcript");
    assert!(seen.contains("dev wave: 1 unit(s)"), "the spinner says what runs: {seen}");
    assert!(seen.contains("\r\u{1b}[2K"), "the spinner is cleared before each line: {seen}");
    assert!(seen.contains("dev | "), "{seen}");
}
