//! The local sequencer end to end, through the CLI with the real deploy task and terraform: an approval answered
//! from a second process, Ctrl-C recording the run as interrupted without orphans, and resume finishing it.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A repo with one terraform unit in dev and one in prod; dev's apply sleeps for `$SLOW_APPLY` seconds.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    let unit = r#"resource "terraform_data" "this" { input = "x" }
resource "terraform_data" "slow" {
  provisioner "local-exec" { command = "sleep $${SLOW_APPLY:-0}" }
}
"#;
    repo.write("dev/app/main.tf", unit);
    repo.write("prod/app/main.tf", r#"resource "terraform_data" "this" { input = "x" }"#);
    repo.commit("base");
    repo
}

fn policy(dir: &Path, repo: &TestRepo) -> PathBuf {
    let mut policy: Value = serde_json::from_str(include_str!("../../examples/policy.json")).expect("policy");
    policy["repos"]["infrastructure_live"]["exact"] = json!([format!("file://{}", repo.path().display())]);
    policy["binary"] = json!("terraform");
    policy["approval_accounts"] = json!(["prod"]);
    let path = dir.join("policy.json");
    std::fs::write(&path, policy.to_string()).expect("write policy");
    path
}

fn rollout_request(dir: &Path, repo: &TestRepo) -> PathBuf {
    let request = json!({"action": "rollout", "actor": "tester", "repo": format!("file://{}", repo.path().display()),
        "ref": "main", "mode": "apply", "units": [{"path": "prod/app", "change": "modified"},
                                                   {"path": "dev/app", "change": "modified"}]});
    let path = dir.join("request.json");
    std::fs::write(&path, request.to_string()).expect("write request");
    path
}

fn cli(dir: &Path, policy: &Path, args: &[&str]) -> Command {
    let mut command = deploy_runner();
    command
        .args(args)
        .args(["--local", "--config"])
        .arg(policy)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env(
            "DEPLOY_RUNNER_TASK_CONFIG",
            json!({"tool_path": workspace_root().join(".tools/bin/terraform")}).to_string(),
        )
        .env_remove("GITHUB_ACTOR");
    command
}

/// The one run's id and state under the state dir.
fn run_state(dir: &Path) -> Option<(String, Value)> {
    let runs = std::fs::read_dir(dir.join("state/runs")).ok()?;
    for entry in runs.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".json") {
            let state = serde_json::from_str(&std::fs::read_to_string(entry.path()).ok()?).ok()?;
            return Some((id.to_owned(), state));
        }
    }
    None
}

fn wait_for(dir: &Path, what: &str, done: impl Fn(&Value) -> bool) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((id, state)) = run_state(dir) {
            if done(&state) {
                return (id, state);
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", run_state(dir));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn statuses(state: &Value) -> Vec<(String, String)> {
    state["waves"]
        .as_array()
        .expect("waves")
        .iter()
        .map(|w| (w["account"].as_str().expect("a").to_owned(), w["status"].as_str().expect("s").to_owned()))
        .collect()
}

fn finish(child: Child) -> std::process::Output {
    child.wait_with_output().expect("wait")
}

#[test]
fn an_approval_from_another_process_lets_the_prod_wave_run() {
    assert!(workspace_root().join(".tools/bin/terraform").exists(), "run `make tools` (make test does)");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    let policy = policy(dir.path(), &repo);
    let request = rollout_request(dir.path(), &repo);
    let child = cli(dir.path(), &policy, &["rollout", "--request", request.to_str().expect("utf-8")])
        .args(["--approval-timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the rollout");
    let (run_id, state) = wait_for(dir.path(), "the prod approval", |s| s["waves"][1]["status"] == "awaiting_approval");
    assert_eq!(statuses(&state)[0], ("dev".to_owned(), "succeeded".to_owned()), "dev runs first, without approval");
    // Approving an account that is not waiting is refused; the waiting one is accepted.
    let wrong = cli(dir.path(), &policy, &["approve", "--run", &run_id, "--account", "dev"]).output().expect("approve");
    assert_eq!(wrong.status.code(), Some(3), "dev needs no approval: the gate denies");
    let approve = cli(dir.path(), &policy, &["approve", "--run", &run_id, "--account", "prod", "--actor", "lead"])
        .output()
        .expect("approve");
    assert!(approve.status.success(), "{}", String::from_utf8_lossy(&approve.stderr));
    let output = finish(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let (_, state) = run_state(dir.path()).expect("state");
    assert_eq!(state["status"], "succeeded");
    assert_eq!(state["waves"][1]["detail"], "approved by lead");
    for log in ["01-dev.log", "02-prod.log"] {
        let text = std::fs::read_to_string(dir.path().join("state/runs").join(&run_id).join(log)).expect(log);
        assert!(text.contains("Apply complete"), "{log}: {text}");
    }
    assert!(stderr.contains("dev | ") && stderr.contains("prod | "), "output is prefixed by account: {stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is exactly the JSON answer");
    assert_eq!(answer["outcome"], "succeeded");
}

#[test]
fn ctrl_c_interrupts_the_running_wave_and_resume_finishes_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo();
    let policy = policy(dir.path(), &repo);
    let request = rollout_request(dir.path(), &repo);
    let child = cli(dir.path(), &policy, &["rollout", "--request", request.to_str().expect("utf-8")])
        .env("SLOW_APPLY", "41.5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the rollout");
    let (run_id, _) = wait_for(dir.path(), "the dev wave", |s| s["waves"][0]["status"] == "running");
    // Wait until terraform runs the slow provisioner, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Command::new("pgrep").args(["-f", "sleep 41.5"]).status().expect("pgrep").success() {
        assert!(Instant::now() < deadline, "the slow apply never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let output = finish(child);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let (_, state) = run_state(dir.path()).expect("state");
    assert_eq!(state["status"], "interrupted");
    assert_eq!(
        statuses(&state),
        [("dev".to_owned(), "interrupted".to_owned()), ("prod".to_owned(), "skipped".to_owned())]
    );
    assert!(
        !Command::new("pgrep").args(["-f", "sleep 41.5"]).status().expect("pgrep").success(),
        "the task's process group is gone"
    );
    let resume = cli(dir.path(), &policy, &["resume", "--run", &run_id, "--approve", "prod"])
        .stdin(Stdio::null())
        .output()
        .expect("resume");
    assert!(resume.status.success(), "{}", String::from_utf8_lossy(&resume.stderr));
    let (_, state) = run_state(dir.path()).expect("state");
    assert_eq!(state["status"], "succeeded");
    let again = cli(dir.path(), &policy, &["resume", "--run", &run_id]).output().expect("resume");
    assert_eq!(again.status.code(), Some(2), "nothing left to resume");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already succeeded"));
}
