//! The deployment ledger and the apply lock, judged by effect: one scenario table of pushes and `deploy-runner ci`
//! runs, against both backends.
//!
//! - Local: the real CLI, deploy task and terraform. Each unit's apply appends `<unit> <version>` to a record file
//!   outside the clone (a `local-exec` that reruns whenever the unit's version changes).
//! - AWS: the real CLI against the real invoker (`cargo lambda watch`) and the generated state machine in moto,
//!   which runs no containers: what a wave applied is its RunTask command (commit and units), read from the
//!   execution histories, for each wave that succeeded; the version applied is the unit's config at that commit.
//!
//! After each scenario, every unit's last applied version equals its config at the newest commit, and per unit the
//! applied versions never go backwards.

mod common;

use common::lambda_watch::InvokerWatch;
use common::moto::{enable_step_functions, invoker_config_json, scripted_rollouts, sdk_config, start_moto, Moto};
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

const UNITS: [&str; 4] = ["dev/a", "dev/b", "prod/a", "prod/b"];

/// One step of a scenario.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A push to main setting these units to version `v<n>` (n: the push's number, from 1).
    Push(&'static [&'static str]),
    /// `ci` for push n (its base: push n-1's commit), with this account's applies failing.
    Ci(usize, Option<&'static str>),
    /// `ci` for two pushes at the same time.
    Concurrent(usize, usize),
}

struct Scenario {
    name: &'static str,
    steps: &'static [Step],
}

const SCENARIOS: [Scenario; 5] = [
    // The third push's run is cancelled (GitHub's concurrency group drops a pending run): the next run covers it.
    Scenario {
        name: "five-pushes-middle-cancelled",
        steps: &[
            Step::Push(&["dev/a", "prod/a"]),
            Step::Ci(1, None),
            Step::Push(&["dev/b", "prod/b"]),
            Step::Ci(2, None),
            Step::Push(&["dev/a", "prod/a"]),
            Step::Push(&["dev/b", "prod/b"]),
            Step::Ci(4, None),
            Step::Push(&["dev/a"]),
            Step::Ci(5, None),
        ],
    },
    // prod fails; the next push touches other units, and prod still gets what it missed.
    Scenario {
        name: "failed-wave-then-new-push",
        steps: &[
            Step::Push(&["dev/a", "prod/a"]),
            Step::Ci(1, Some("prod")),
            Step::Push(&["dev/b", "prod/b"]),
            Step::Ci(2, None),
        ],
    },
    // Two pushes in quick succession: never two applies at once, never the older after the newer.
    Scenario {
        name: "two-concurrent-pushes",
        steps: &[Step::Push(&["dev/a", "prod/a"]), Step::Push(&["dev/a", "prod/b"]), Step::Concurrent(1, 2)],
    },
    // The first deployment, where the newer push's run lands first: it measured its changes from the older push's
    // commit (no ledger yet), assuming that one deployed; the older push's run then applies its own changes at the
    // newer commit instead of being superseded.
    Scenario {
        name: "first-deployment-newer-push-first",
        steps: &[
            Step::Push(&["dev/a", "prod/a"]),
            Step::Push(&["dev/a", "prod/b"]),
            Step::Ci(2, None),
            Step::Ci(1, None),
        ],
    },
    // An old job re-run after a newer push deployed: nothing is rolled back.
    Scenario {
        name: "push-of-an-older-commit",
        steps: &[
            Step::Push(&["dev/a", "prod/a"]),
            Step::Ci(1, None),
            Step::Push(&["dev/a", "prod/a"]),
            Step::Ci(2, None),
            Step::Ci(1, None),
        ],
    },
];

/// A unit's Terraform: its version, and an apply that records it (or fails while `SCENARIO_FAIL` names its
/// account).
fn unit_tf(unit: &str, version: &str) -> String {
    let account = unit.split('/').next().unwrap_or_default();
    format!(
        r#"locals {{
  version = "{version}"
}}

resource "terraform_data" "applied" {{
  triggers_replace = local.version
  provisioner "local-exec" {{
    command = "test \"$SCENARIO_FAIL\" != \"{account}\" && echo \"{unit} ${{local.version}}\" >> \"$SCENARIO_RECORD\""
  }}
}}
"#
    )
}

/// The version of `unit` at `commit`.
fn version_at(repo: &TestRepo, commit: &str, unit: &str) -> u32 {
    let text = repo.git(&["show", &format!("{commit}:{unit}/main.tf")]);
    let version = text.split("version = \"v").nth(1).and_then(|rest| rest.split('"').next()).expect("a version");
    version.parse().expect("numeric version")
}

fn scenario_repo() -> (TestRepo, String) {
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"deploy_order": 1}, "prod": {"deploy_order": 2}}"#);
    for unit in UNITS {
        repo.write(&format!("{unit}/terragrunt.hcl"), "# a terraform unit\n");
        repo.write(&format!("{unit}/main.tf"), &unit_tf(unit, "v0"));
    }
    let base = repo.commit("base");
    (repo, base)
}

/// How `ci` reaches a backend, and what the backend applied.
trait Engine {
    /// Starts `ci` for a push of `head` over `base`, with `failing`'s applies failing.
    fn ci(&self, repo: &TestRepo, scenario: &str, base: &str, head: &str, failing: Option<&str>) -> Command;
    /// Called before and after a step that makes an account fail (the AWS engine re-scripts its state machine).
    fn script_failure(&self, _failing: Option<&str>) {}
    /// Every (unit, version) applied, in order.
    fn applied(&self, repo: &TestRepo, scenario: &str) -> Vec<(String, u32)>;
}

fn ci_args(base: &str, head: &str) -> Vec<String> {
    ["ci", "--event", "push", "--branch", "main", "--base", base, "--head", head, "--format", "json"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--max-wait".to_owned(), "300s".to_owned()])
        .collect()
}

/// Runs one scenario on `engine` and checks its effect.
fn run_scenario(engine: &dyn Engine, scenario: &Scenario) {
    let (repo, base) = scenario_repo();
    let mut pushes: Vec<String> = vec![base];
    let before = |pushes: &[String], n: usize| (pushes[n - 1].clone(), pushes[n].clone());
    let mut log = String::new();
    let run = |command: &mut Command, log: &mut String| -> Output {
        let output = command.output().expect("run ci");
        log.push_str(&String::from_utf8_lossy(&output.stderr));
        output
    };
    for step in scenario.steps {
        match *step {
            Step::Push(units) => {
                let n = pushes.len();
                for unit in units {
                    repo.write(&format!("{unit}/main.tf"), &unit_tf(unit, &format!("v{n}")));
                }
                pushes.push(repo.commit(&format!("push {n}")));
            }
            Step::Ci(n, failing) => {
                let (base, head) = before(&pushes, n);
                engine.script_failure(failing);
                let output = run(&mut engine.ci(&repo, scenario.name, &base, &head, failing), &mut log);
                engine.script_failure(None);
                let summary = String::from_utf8_lossy(&output.stdout);
                let expected = if failing.is_some() { 1 } else { 0 };
                assert_eq!(output.status.code(), Some(expected), "{}: ci {n}: {summary}\n{log}", scenario.name);
            }
            Step::Concurrent(first, second) => {
                let spawn = |n: usize| {
                    let (base, head) = before(&pushes, n);
                    let mut command = engine.ci(&repo, scenario.name, &base, &head, None);
                    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
                    command.spawn().expect("spawn ci")
                };
                let children = [spawn(first), spawn(second)];
                for (n, child) in [first, second].into_iter().zip(children) {
                    let output = child.wait_with_output().expect("wait");
                    log.push_str(&String::from_utf8_lossy(&output.stderr));
                    let summary = String::from_utf8_lossy(&output.stdout);
                    assert_eq!(output.status.code(), Some(0), "{}: ci {n}: {summary}\n{log}", scenario.name);
                }
            }
        }
    }
    let newest = pushes.last().expect("pushes").clone();
    let applied = engine.applied(&repo, scenario.name);
    let mut last: BTreeMap<&str, u32> = UNITS.iter().map(|u| (*u, 0)).collect();
    for (unit, version) in &applied {
        let previous = last.get_mut(unit.as_str()).expect("a known unit");
        assert!(
            *version >= *previous,
            "{}: {unit} went back from v{previous} to v{version}: {applied:?}\n{log}",
            scenario.name
        );
        *previous = *version;
    }
    for unit in UNITS {
        assert_eq!(last[unit], version_at(&repo, &newest, unit), "{}: {unit}: {applied:?}\n{log}", scenario.name);
    }
}

/// The local backend: one state directory and record file per scenario.
struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn scenario_dir(&self, scenario: &str) -> PathBuf {
        let dir = self.dir.path().join(scenario);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn policy(&self, repo: &TestRepo, scenario: &str) -> PathBuf {
        let mut policy: Value = serde_json::from_str(include_str!("../../examples/policy.json")).expect("policy");
        policy["repos"]["infrastructure_live"]["exact"] = json!([format!("file://{}", repo.path().display())]);
        policy["binary"] = json!("terraform");
        policy["approval_accounts"] = json!([]);
        let path = self.scenario_dir(scenario).join("policy.json");
        std::fs::write(&path, policy.to_string()).expect("write policy");
        path
    }
}

impl Engine for Local {
    fn ci(&self, repo: &TestRepo, scenario: &str, base: &str, head: &str, failing: Option<&str>) -> Command {
        let dir = self.scenario_dir(scenario);
        let mut command = deploy_runner();
        command
            .args(ci_args(base, head))
            .args(["--local", "--actor", "tester", "--repo-url"])
            .arg(format!("file://{}", repo.path().display()))
            .arg("--repo")
            .arg(repo.path())
            .arg("--config")
            .arg(self.policy(repo, scenario))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": terraform()}).to_string())
            .env("SCENARIO_RECORD", dir.join("applied.txt"))
            .env("SCENARIO_FAIL", failing.unwrap_or(""))
            .env_remove("GITHUB_EVENT_PATH")
            .env_remove("GITHUB_RUN_ID")
            .env_remove("SLACK_WEBHOOK_URL");
        command
    }

    fn applied(&self, _repo: &TestRepo, scenario: &str) -> Vec<(String, u32)> {
        let text = std::fs::read_to_string(self.scenario_dir(scenario).join("applied.txt")).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once(" v"))
            .map(|(unit, version)| (unit.to_owned(), version.parse().expect("version")))
            .collect()
    }
}

#[test]
fn the_local_backend_never_skips_and_never_reorders_an_apply() {
    let local = Local { dir: tempfile::tempdir().expect("tempdir") };
    for scenario in &SCENARIOS {
        run_scenario(&local, scenario);
    }
}

/// A single-unit `apply` is judged by the same ledger: after a newer push deployed, applying a unit at an older
/// commit is refused by the task (`stale_commit`) and applies nothing; at the deployed commit it runs.
#[test]
fn a_single_unit_apply_never_rolls_an_account_back_locally() {
    let local = Local { dir: tempfile::tempdir().expect("tempdir") };
    let scenario = "single-unit-apply";
    let (repo, base) = scenario_repo();
    repo.write("dev/a/main.tf", &unit_tf("dev/a", "v1"));
    let older = repo.commit("push 1");
    repo.write("dev/a/main.tf", &unit_tf("dev/a", "v2"));
    let newer = repo.commit("push 2");
    let output = local.ci(&repo, scenario, &base, &newer, None).output().expect("ci");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(local.applied(&repo, scenario), [("dev/a".to_owned(), 2)]);

    let dir = local.scenario_dir(scenario);
    let apply = |commit: &str| {
        deploy_runner()
            .args(["apply", "--local", "--actor", "tester", "--path", "dev/a", "--ref", commit, "--repo-url"])
            .arg(format!("file://{}", repo.path().display()))
            .arg("--config")
            .arg(local.policy(&repo, scenario))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": terraform()}).to_string())
            .env("SCENARIO_RECORD", dir.join("applied.txt"))
            .output()
            .expect("apply")
    };
    let refused = apply(&older);
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    let log = String::from_utf8_lossy(&refused.stderr)
        .split("(log: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|path| std::fs::read_to_string(path).expect("task log"))
        .expect("the task's log is named");
    assert!(log.contains(&format!("stale_commit: the account already has {newer}")), "{log}");
    assert_eq!(local.applied(&repo, scenario), [("dev/a".to_owned(), 2)], "nothing rolled back");

    let again = apply(&newer);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
}

/// The AWS backend: the invoker behind `cargo lambda watch`, moto's state machine scripted to fail an account's
/// applies on demand. Each scenario has its own repo URL, so its own ledger and lock.
struct Aws<'m> {
    moto: &'m Moto,
    watch: InvokerWatch,
    machine: String,
    runtime: tokio::runtime::Runtime,
    sfn: aws_sdk_sfn::Client,
}

fn aws_repo_url(scenario: &str) -> String {
    format!("https://github.com/acme/live-{scenario}.git")
}

impl Engine for Aws<'_> {
    fn ci(&self, repo: &TestRepo, scenario: &str, base: &str, head: &str, _failing: Option<&str>) -> Command {
        let mut command = deploy_runner();
        command
            .args(ci_args(base, head))
            .args(["--function-name", "deploy-runner-invoker", "--actor", "tester", "--repo-url"])
            .arg(aws_repo_url(scenario))
            .arg("--repo")
            .arg(repo.path())
            .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://127.0.0.1:{}", self.watch.port))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env_remove("GITHUB_EVENT_PATH")
            .env_remove("GITHUB_RUN_ID")
            .env_remove("SLACK_WEBHOOK_URL");
        command
    }

    fn script_failure(&self, failing: Option<&str>) {
        let definition = scripted_rollouts(self.moto, failing);
        let update = self.sfn.update_state_machine().state_machine_arn(&self.machine).definition(definition).send();
        self.runtime.block_on(update).expect("update state machine");
    }

    fn applied(&self, repo: &TestRepo, scenario: &str) -> Vec<(String, u32)> {
        let list = self.sfn.list_executions().state_machine_arn(&self.machine).max_results(1000).send();
        let mut executions: Vec<_> = self.runtime.block_on(list).expect("list").executions().to_vec();
        executions.sort_by_key(|e| e.start_date().as_nanos());
        let mut applied = Vec::new();
        for execution in executions {
            let arn = execution.execution_arn();
            let described = self.runtime.block_on(self.sfn.describe_execution().execution_arn(arn).send());
            let input: Value =
                serde_json::from_str(described.expect("describe").input().unwrap_or("{}")).expect("json");
            if input["rollout"]["repo"] != aws_repo_url(scenario).as_str() || input["rollout"]["mode"] != "apply" {
                continue;
            }
            let history = self.sfn.get_execution_history().execution_arn(arn).max_results(1000).send();
            for event in self.runtime.block_on(history).expect("history").events() {
                let Some(entered) = event.state_entered_event_details() else { continue };
                if entered.name() != "WaveSucceeded" {
                    continue;
                }
                let state: Value = serde_json::from_str(entered.input().unwrap_or("{}")).expect("json");
                let request: Value =
                    serde_json::from_str(state["wave"]["command"][3].as_str().expect("the wave's request"))
                        .expect("json");
                let commit = request["ref"].as_str().expect("ref");
                for unit in request["units"].as_array().expect("units") {
                    let path = unit["path"].as_str().expect("path");
                    applied.push((path.to_owned(), version_at(repo, commit, path)));
                }
            }
        }
        applied
    }
}

#[test]
fn the_aws_backend_never_skips_and_never_reorders_an_apply() {
    let moto = start_moto();
    enable_step_functions(&moto);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let sfn = aws_sdk_sfn::Client::new(&runtime.block_on(sdk_config(&moto)));
    let create = sfn
        .create_state_machine()
        .name("deploy-runner-rollouts")
        .role_arn("arn:aws:iam::123456789012:role/deploy-runner-state-machine")
        .definition(scripted_rollouts(&moto, None))
        .send();
    let machine = runtime.block_on(create).expect("create state machine").state_machine_arn().to_owned();
    let mut config: Value = serde_json::from_str(&invoker_config_json(&moto)).expect("config");
    config["runtime"]["state_machine_arn"] = json!(machine);
    config["policy"]["approval_accounts"] = json!([]);
    config["policy"]["repos"]["infrastructure_live"]["regex"] = json!(["https://github\\.com/acme/live-[a-z-]+\\.git"]);
    let watch = InvokerWatch::start(&moto, &config.to_string());
    let aws = Aws { moto: &moto, watch, machine, runtime, sfn };
    for scenario in &SCENARIOS {
        run_scenario(&aws, scenario);
    }
}
