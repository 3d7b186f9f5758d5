//! `deploy-runner ci` on the AWS backend, end to end: the CLI calls `lambda:Invoke` with the standard credential
//! chain, `cargo lambda watch` runs the real invoker behind the Invoke API, and the invoker starts and reads
//! executions of the generated state machine in moto. moto's Step Functions can't run ECS tasks, so only the task
//! state is swapped for a script of exit codes, per account and container; everything else is the real path.

mod common;

use common::lambda_watch::InvokerWatch;
use common::moto::{enable_step_functions, invoker_config_json, scripted_rollouts, sdk_config, start_moto};
use common::*;
use deploy_runner_control::runid::claim_of;
use serde_json::{json, Value};

const REPO_URL: &str = "https://github.com/acme/infrastructure-live.git";

/// An infrastructure-live checkout with one unit in dev and one in prod. Its accounts.json puts prod first, against
/// the policy (dev 1, prod 3): the server's order must win, with a warning.
fn live_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "accounts.json",
        r#"{"dev": {"id": "111111111111", "deploy_order": 2}, "prod": {"id": "333333333333", "deploy_order": 1}}"#,
    );
    for unit in ["dev/us-east-1/app", "prod/us-east-1/app"] {
        repo.write(&format!("{unit}/terragrunt.hcl"), "inputs = { image_version = \"v1\" }\n");
    }
    repo.commit("base");
    repo
}

fn bump(repo: &TestRepo, version: &str) -> String {
    for unit in ["prod/us-east-1/app", "dev/us-east-1/app"] {
        repo.write(&format!("{unit}/terragrunt.hcl"), &format!("inputs = {{ image_version = \"{version}\" }}\n"));
    }
    repo.commit(&format!("bump to {version}")).trim().to_owned()
}

/// Runs the CLI against the invoker behind `watch`, as CI's machine user would.
fn deploy_runner_on_aws(watch: &InvokerWatch, repo: &TestRepo, args: &[&str]) -> (Option<i32>, Value, String) {
    let output = deploy_runner()
        .args(args)
        .args(["--function-name", "deploy-runner-invoker"])
        .current_dir(repo.path())
        .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://127.0.0.1:{}", watch.port))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("GITHUB_ACTOR", "octocat")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("SLACK_WEBHOOK_URL")
        .output()
        .expect("run deploy-runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (output.status.code(), summary, stderr)
}

fn wave_statuses(report: &Value) -> Vec<(String, String)> {
    report["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| (w["account"].as_str().unwrap_or("?").to_owned(), w["status"].as_str().unwrap_or("?").to_owned()))
        .collect()
}

fn pair(account: &str, status: &str) -> (String, String) {
    (account.to_owned(), status.to_owned())
}

#[test]
fn ci_on_aws_plans_applies_in_deploy_order_halts_on_a_failed_account_and_resumes() {
    let moto = start_moto();
    enable_step_functions(&moto);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let sfn = aws_sdk_sfn::Client::new(&runtime.block_on(sdk_config(&moto)));
    let machine = runtime
        .block_on(
            sfn.create_state_machine()
                .name("deploy-runner-rollouts")
                .role_arn("arn:aws:iam::123456789012:role/deploy-runner-state-machine")
                .definition(scripted_rollouts(&moto, None))
                .send(),
        )
        .expect("create state machine")
        .state_machine_arn()
        .to_owned();
    let set_script = |failing: Option<&str>| {
        runtime
            .block_on(
                sfn.update_state_machine()
                    .state_machine_arn(&machine)
                    .definition(scripted_rollouts(&moto, failing))
                    .send(),
            )
            .expect("update state machine");
    };
    let mut config: Value = serde_json::from_str(&invoker_config_json(&moto)).expect("config");
    config["runtime"]["state_machine_arn"] = json!(machine);
    // Approvals need the notifier, which is not here; the rollout tests cover them.
    config["policy"]["approval_accounts"] = json!([]);
    // The server applies from main and release (each has its own ledger and lock); ci asks only where told.
    config["policy"]["apply_refs"] = json!(["main", "release"]);
    let execution_input = |name: &str| -> Value {
        let arn = format!("{}:{name}", machine.replace(":stateMachine:", ":execution:"));
        let described = runtime.block_on(sfn.describe_execution().execution_arn(arn).send()).expect("describe");
        serde_json::from_str(described.input().unwrap_or("null")).expect("the execution input is JSON")
    };
    let watch = InvokerWatch::start(&moto, &config.to_string());
    let repo = live_repo();
    let ci = ["ci", "--event", "push", "--branch", "main", "--repo-url", REPO_URL, "--format", "json"];

    // 1. A push to main: plan every changed unit as a rollout, then apply the same commit, dev before prod.
    let head = bump(&repo, "v2");
    let (code, summary, stderr) = deploy_runner_on_aws(&watch, &repo, &ci);
    assert_eq!(code, Some(0), "{summary}\n{stderr}");
    assert_eq!(summary["head"], head.as_str());
    assert_eq!(summary["plan"]["outcome"], "succeeded", "{summary}");
    assert_eq!(wave_statuses(&summary["plan"]), [pair("dev", "succeeded"), pair("prod", "succeeded")]);
    assert_eq!(summary["apply"]["outcome"], "succeeded", "{summary}");
    assert_eq!(wave_statuses(&summary["apply"]), [pair("dev", "succeeded"), pair("prod", "succeeded")]);
    assert_eq!(summary["applied"], true);
    assert!(
        stderr.contains("accounts.json orders the accounts prod -> dev but the policy deploys dev -> prod"),
        "{stderr}"
    );

    // What reached AWS: two rollouts at the head SHA, a planner one and an applier one, both by octocat.
    let audit = watch.audit();
    let rollouts: Vec<&Value> = audit.iter().filter(|a| a["action"] == "rollout").collect();
    assert_eq!(rollouts.len(), 2, "{audit:?}");
    assert!(rollouts.iter().all(|a| a["decision"] == "allow" && a["actor"] == "octocat" && a["ref"] == head.as_str()));
    let definitions = &moto.setup["task_definitions"];
    for (audit_line, (mode, task_definition)) in rollouts.iter().zip([("plan", "planner"), ("apply", "applier")]) {
        let input = execution_input(claim_of(audit_line["run_id"].as_str().expect("run id")));
        assert_eq!(input["rollout"]["mode"], mode);
        assert_eq!(input["rollout"]["ref"], head.as_str(), "the apply runs at the planned commit");
        let waves = input["waves"].as_array().expect("waves");
        assert_eq!(waves.iter().map(|w| w["account"].as_str()).collect::<Vec<_>>(), [Some("dev"), Some("prod")]);
        assert!(waves.iter().all(|w| w["task_definition"] == definitions[task_definition]), "{input}");
    }
    assert!(audit.iter().any(|a| a["action"] == "status"), "the CLI followed through the invoker's status");

    // 2. prod's apply fails: the plan still passes, dev is applied, prod fails, and the job fails.
    set_script(Some("prod"));
    bump(&repo, "v3");
    let (code, summary, stderr) = deploy_runner_on_aws(&watch, &repo, &ci);
    assert_eq!(code, Some(1), "{summary}\n{stderr}");
    assert_eq!(summary["plan"]["outcome"], "succeeded");
    assert_eq!(summary["apply"]["outcome"], "failed", "{summary}");
    assert_eq!(wave_statuses(&summary["apply"]), [pair("dev", "succeeded"), pair("prod", "failed")]);
    let run_id = summary["apply"]["run_id"].as_str().expect("the failed rollout's run id").to_owned();

    // 3. The outage is over: resume runs only prod, as a new execution of the same run.
    set_script(None);
    let (code, resumed, stderr) = deploy_runner_on_aws(&watch, &repo, &["resume", "--run", &run_id]);
    assert_eq!(code, Some(0), "{resumed}\n{stderr}");
    assert_eq!(resumed["outcome"], "succeeded", "{resumed}");
    let executions = runtime
        .block_on(sfn.list_executions().state_machine_arn(&machine).send())
        .expect("list executions")
        .executions()
        .iter()
        .map(|e| e.name().to_owned())
        .collect::<Vec<_>>();
    let claim = claim_of(&run_id);
    assert!(executions.contains(&format!("{claim}-r2")), "resume is a second attempt: {executions:?}");
    let resumed_input = execution_input(&format!("{claim}-r2"));
    assert_eq!(resumed_input["completed"], json!(["dev"]), "dev is never applied twice");
    assert_eq!(resumed_input["waves"].as_array().map(Vec::len), Some(1));

    // The apply refs live in the server's policy; --apply-ref tells ci which branches to apply on.
    bump(&repo, "v4");
    let release = ["ci", "--event", "push", "--branch", "release", "--repo-url", REPO_URL, "--format", "json"];
    let (code, summary, stderr) = deploy_runner_on_aws(&watch, &repo, &release);
    assert_eq!((code, &summary["applied"], &summary["apply"]), (Some(0), &json!(false), &Value::Null), "{stderr}");
    let with_flag = [&release[..], &["--apply-ref", "main,release"]].concat();
    let (code, summary, stderr) = deploy_runner_on_aws(&watch, &repo, &with_flag);
    assert_eq!((code, &summary["applied"]), (Some(0), &json!(true)), "{summary}\n{stderr}");

    // A request the gate refuses is refused for the CLI too, with exit 3.
    let (code, denied, _) = deploy_runner_on_aws(
        &watch,
        &repo,
        &[&ci[..5], &["--repo-url", "https://github.com/evil/live.git", "--format", "json"]].concat(),
    );
    assert_eq!(code, Some(3), "{denied}");
}
