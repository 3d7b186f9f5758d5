//! A wave's units run as their dependencies allow: the real deploy task, real git and real terraform. Every claim
//! is proved by effect, not by timing: units that must run at once wait for each other's marker (run one after
//! the other, the first would give up), and a dependent checks that what it waits for has finished.

mod common;

use common::remote::Remote;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

/// A unit whose apply runs `script` (POSIX sh; `$WAVE_MARKERS` is a folder the test reads).
fn unit_tf(script: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    format!("resource \"terraform_data\" \"run\" {{\n  provisioner \"local-exec\" {{\n    command = \"{script}\"\n  }}\n}}\n")
}

/// Marks `name` started, waits up to ten seconds for `partner` to start, then marks `name` done.
fn meets(name: &str, partner: &str) -> String {
    unit_tf(&format!(
        "touch \"$WAVE_MARKERS/{name}.started\"; i=0; while [ ! -e \"$WAVE_MARKERS/{partner}.started\" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e \"$WAVE_MARKERS/{partner}.started\" ] && touch \"$WAVE_MARKERS/{name}.done\""
    ))
}

fn run_wave(remote: &Remote, markers: &Path, units: Value, mode: &str) -> (Output, Value) {
    let head = remote.work.git(&["rev-parse", "HEAD"]);
    let request = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head, "mode": mode, "units": units});
    let output = Command::new(binary("deploy-runner-task"))
        .env("DEPLOY_RUNNER_POLICY", remote.policy())
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": terraform()}).to_string())
        .env("WAVE_MARKERS", markers)
        .args(["run", "--request", &request.to_string()])
        .output()
        .expect("run deploy-runner-task");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with("{\"")).unwrap_or_else(|| {
        panic!("no summary:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    });
    let summary = serde_json::from_str(line).expect("summary is JSON");
    (output, summary)
}

fn statuses(summary: &Value) -> Vec<(String, String)> {
    summary["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| (u["path"].as_str().expect("path").to_owned(), u["status"].as_str().expect("status").to_owned()))
        .collect()
}

fn pair(path: &str, status: &str) -> (String, String) {
    (path.to_owned(), status.to_owned())
}

const A: &str = "dev/us-east-1/dev/a";
const B: &str = "dev/us-east-1/dev/b";
const C: &str = "dev/us-east-1/dev/c";
const D: &str = "dev/us-east-1/dev/d";

#[test]
fn independent_units_run_at_once_and_a_dependent_waits_for_both() {
    let remote = Remote::new();
    remote.work.write(&format!("{A}/main.tf"), &meets("a", "b"));
    remote.work.write(&format!("{B}/main.tf"), &meets("b", "a"));
    remote.work.write(
        &format!("{C}/main.tf"),
        &unit_tf(
            "test -e \"$WAVE_MARKERS/a.done\" && test -e \"$WAVE_MARKERS/b.done\" && touch \"$WAVE_MARKERS/c.done\"",
        ),
    );
    remote.push("three units", "main");
    let markers = tempfile::tempdir().expect("tempdir");
    let units = json!([
        {"path": C, "change": "modified", "depends_on": [A, B]},
        {"path": A, "change": "modified", "depends_on": []},
        {"path": B, "change": "modified", "depends_on": []},
    ]);
    let (output, summary) = run_wave(&remote, markers.path(), units.clone(), "apply");
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert_eq!(statuses(&summary), [pair(C, "succeeded"), pair(A, "succeeded"), pair(B, "succeeded")], "{summary}");
    assert!(markers.path().join("c.done").exists(), "c ran after a and b had both finished");
    // Each output line is whole and names its unit, even with two tools writing at once.
    for line in all.lines().filter(|l| l.starts_with('[')) {
        assert!([A, B, C].iter().any(|u| line.starts_with(&format!("[{u}] "))), "{line:?}");
    }

    // Asked to run one at a time, a waits for b, which can't start until a ends: a gives up and the wave fails,
    // which is how the test above knows they ran at once.
    let markers = tempfile::tempdir().expect("tempdir");
    let head = remote.work.git(&["rev-parse", "HEAD"]);
    let request = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head, "mode": "apply",
                         "units": units, "parallelism": 1});
    let output = Command::new(binary("deploy-runner-task"))
        .env("DEPLOY_RUNNER_POLICY", remote.policy())
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": terraform()}).to_string())
        .env("WAVE_MARKERS", markers.path())
        .args(["run", "--request", &request.to_string()])
        .output()
        .expect("run");
    assert_ne!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!markers.path().join("b.started").exists(), "b never started beside a");
}

#[test]
fn an_apply_failure_starts_nothing_new_lets_running_units_finish_and_skips_its_dependents() {
    let remote = Remote::new();
    // a fails once b has started; b finishes after a failed; c waits for a (skipped); d waits for b, which ends
    // after the failure (skipped: nothing new starts).
    remote.work.write(
        &format!("{A}/main.tf"),
        &unit_tf("while [ ! -e \"$WAVE_MARKERS/b.started\" ]; do sleep 0.1; done; echo a fails; exit 1"),
    );
    remote.work.write(
        &format!("{B}/main.tf"),
        &unit_tf("touch \"$WAVE_MARKERS/b.started\"; sleep 2; touch \"$WAVE_MARKERS/b.done\""),
    );
    remote.work.write(&format!("{C}/main.tf"), &unit_tf("touch \"$WAVE_MARKERS/c.ran\""));
    remote.work.write(&format!("{D}/main.tf"), &unit_tf("touch \"$WAVE_MARKERS/d.ran\""));
    remote.push("a failing graph", "main");
    let markers = tempfile::tempdir().expect("tempdir");
    let units = json!([
        {"path": A, "change": "modified", "depends_on": []},
        {"path": B, "change": "modified", "depends_on": []},
        {"path": C, "change": "modified", "depends_on": [A]},
        {"path": D, "change": "modified", "depends_on": [B]},
    ]);
    let (output, summary) = run_wave(&remote, markers.path(), units.clone(), "apply");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(summary["succeeded"], false);
    assert_eq!(
        statuses(&summary),
        [pair(A, "failed"), pair(B, "succeeded"), pair(C, "skipped"), pair(D, "skipped")],
        "{summary}"
    );
    assert!(markers.path().join("b.done").exists(), "b, running when a failed, finished");
    assert!(!markers.path().join("c.ran").exists() && !markers.path().join("d.ran").exists(), "nothing new started");

    // A plan runs everything it can: every unit, whatever failed before it.
    remote.work.write(&format!("{A}/broken.tf"), "output \"x\" {\n  value = var.missing\n}\n");
    remote.push("a breaks", "main");
    let (output, summary) = run_wave(&remote, markers.path(), units, "plan");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        statuses(&summary),
        [pair(A, "failed"), pair(B, "succeeded"), pair(C, "succeeded"), pair(D, "succeeded")],
        "{summary}"
    );
}

#[test]
fn sigterm_stops_every_running_tool_and_leaves_no_process() {
    let remote = Remote::new();
    let marker = 5000 + std::process::id() % 1000;
    for (unit, seconds) in [(A, marker), (B, marker + 1)] {
        remote.work.write(&format!("{unit}/main.tf"), &unit_tf(&format!("sleep {seconds}")));
    }
    remote.push("two slow units", "main");
    let head = remote.work.git(&["rev-parse", "HEAD"]);
    let units = json!([{"path": A, "change": "modified", "depends_on": []},
                       {"path": B, "change": "modified", "depends_on": []}]);
    let request = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head, "mode": "apply", "units": units});
    let child = Command::new(binary("deploy-runner-task"))
        .env("DEPLOY_RUNNER_POLICY", remote.policy())
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": terraform(), "grace_period_secs": 2}).to_string())
        .args(["run", "--request", &request.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let sleeping = |seconds: u32| {
        Command::new("pgrep").args(["-f", &format!("sleep {seconds}")]).output().expect("pgrep").status.success()
    };
    let started = std::time::Instant::now();
    while !(sleeping(marker) && sleeping(marker + 1)) {
        assert!(started.elapsed().as_secs() < 90, "both tools never ran at once");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(143), "{}", String::from_utf8_lossy(&output.stderr));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!sleeping(marker) && !sleeping(marker + 1), "no tool left behind");
}

/// A unit whose destroy runs `script` (and whose apply does nothing).
fn on_destroy(script: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "resource \"terraform_data\" \"run\" {{\n  provisioner \"local-exec\" {{\n    when    = destroy\n    command = \"{script}\"\n  }}\n}}\n"
    )
}

/// Deleted units go after the applied ones, one at a time, in the order given (detection's reverse dependency
/// order): a chain is destroyed from its end, never from under a unit that still uses it.
#[test]
fn a_deleted_chain_is_destroyed_after_the_rest_from_its_end() {
    let remote = Remote::new();
    let markers = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let wave = |units: Value| {
        let head = remote.work.git(&["rev-parse", "HEAD"]);
        let request = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head,
                             "mode": "apply", "units": units});
        let output = Command::new(binary("deploy-runner-task"))
            .env("DEPLOY_RUNNER_POLICY", remote.policy())
            .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": terraform()}).to_string())
            // The state outlives each run's clone, so the second run has something to destroy.
            .env("DEPLOY_RUNNER_LOCAL_STATE_DIR", state.path())
            .env("WAVE_MARKERS", markers.path())
            .args(["run", "--request", &request.to_string()])
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    // The chain: b uses a. Destroying a first would pull it from under b.
    remote.work.write(
        &format!("{A}/main.tf"),
        &on_destroy("test -e \"$WAVE_MARKERS/b.destroyed\" && test -e \"$WAVE_MARKERS/c.applied\" && touch \"$WAVE_MARKERS/a.destroyed\""),
    );
    remote.work.write(
        &format!("{B}/main.tf"),
        &on_destroy("test ! -e \"$WAVE_MARKERS/a.destroyed\" && test -e \"$WAVE_MARKERS/c.applied\" && touch \"$WAVE_MARKERS/b.destroyed\""),
    );
    let created = remote.push("a and b", "main");
    wave(json!([{"path": A, "change": "added", "depends_on": []},
                {"path": B, "change": "added", "depends_on": [A]}]));

    // Both go, and c arrives: c is applied first, then b, then a.
    remote.work.git(&["rm", "-rq", A, B]);
    remote.work.write(&format!("{C}/main.tf"), &unit_tf("touch \"$WAVE_MARKERS/c.applied\""));
    remote.push("a and b go, c arrives", "main");
    wave(json!([{"path": C, "change": "added", "depends_on": []},
                {"path": B, "change": "deleted", "source_ref": created},
                {"path": A, "change": "deleted", "source_ref": created}]));
    for marker in ["c.applied", "b.destroyed", "a.destroyed"] {
        assert!(markers.path().join(marker).exists(), "{marker}");
    }
}

/// One provider cache per task: the AWS provider (from the filesystem mirror this machine image carries, never the
/// network) is installed once for three units planned side by side, and every other init takes it from the cache.
#[test]
fn each_provider_is_installed_once_per_task() {
    let mirror = Path::new("/opt/tf-plugins/registry.terraform.io/hashicorp/aws/5.100.0");
    assert!(mirror.exists(), "the AWS provider mirror is part of this machine image (docs/deploying.md)");
    let remote = Remote::new();
    let needs_aws =
        "terraform {\n  required_providers {\n    aws = {\n      source  = \"hashicorp/aws\"\n      version = \"5.100.0\"\n    }\n  }\n}\n";
    for unit in [A, B, C] {
        remote.work.write(&format!("{unit}/main.tf"), needs_aws);
    }
    remote.push("three units on the AWS provider", "main");
    let config = tempfile::tempdir().expect("tempdir");
    let rc = config.path().join("terraform.rc");
    std::fs::write(
        &rc,
        "provider_installation {\n  filesystem_mirror {\n    path    = \"/opt/tf-plugins\"\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }\n  direct {\n    exclude = [\"*/*/*\"]\n  }\n}\n",
    )
    .expect("cli config");
    let head = remote.work.git(&["rev-parse", "HEAD"]);
    let units = json!([{"path": A, "change": "modified", "depends_on": []},
                       {"path": B, "change": "modified", "depends_on": []},
                       {"path": C, "change": "modified", "depends_on": []}]);
    let plan = |provider_cache: bool| {
        let request = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head,
                             "mode": "plan", "units": units});
        let output = Command::new(binary("deploy-runner-task"))
            .env("DEPLOY_RUNNER_POLICY", remote.policy())
            .env(
                "DEPLOY_RUNNER_TASK_CONFIG",
                json!({"tool_path": terraform(), "provider_cache": provider_cache}).to_string(),
            )
            .env("TF_CLI_CONFIG_FILE", &rc)
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .args(["run", "--request", &request.to_string()])
            .output()
            .expect("run");
        let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{all}");
        all
    };
    let installed = |all: &str| all.matches("Installing hashicorp/aws v5.100.0").count();
    let cached = |all: &str| all.matches("Using hashicorp/aws v5.100.0 from the shared cache directory").count();
    let shared = plan(true);
    assert_eq!((installed(&shared), cached(&shared)), (1, 2), "{shared}");
    // The negative twin: without the cache, every unit installs its own copy.
    let separate = plan(false);
    assert_eq!((installed(&separate), cached(&separate)), (3, 0), "{separate}");
}
