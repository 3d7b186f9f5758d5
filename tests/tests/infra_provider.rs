//! `infra/examples/complete` through the tools its users run: the real AWS provider (5.100.0, from the
//! filesystem mirror this machine image carries at /opt/tf-plugins, never the network), `terraform init`,
//! `validate`, `plan` and `apply` against moto, then what was created, read back through the AWS API.
//!
//! moto creates every resource but the state machine: provider 5.100.0 calls `ValidateStateMachineDefinition`
//! before creating one, which moto does not implement. The definition itself is run by moto's interpreter in
//! `rollout_scenarios.rs` and `ci_aws.rs`, and checked by `asl::check`.

mod common;

use common::moto::free_port;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Where the machine image keeps the provider, in `terraform providers mirror` layout.
const PROVIDER_MIRROR: &str = "/opt/tf-plugins";
const PROVIDER: &str = "registry.terraform.io/hashicorp/aws/5.100.0";

/// A plain moto server (no resources), stopped when dropped.
struct MotoServer {
    child: Child,
    endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    fn start() -> MotoServer {
        let port = free_port();
        let child = Command::new(workspace_root().join(".tools/venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (make tools installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed().as_secs() < 30, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        MotoServer { child, endpoint }
    }

    /// Runs `tests/helpers/aws_fixtures.py <command>` against this server and parses its JSON.
    fn helper(&self, command: &str) -> Value {
        let output = Command::new(workspace_root().join(".tools/venv/bin/python"))
            .arg(repo_file("tests/helpers/aws_fixtures.py"))
            .args([&self.endpoint, command])
            .output()
            .expect("run the AWS helper");
        assert!(output.status.success(), "aws_fixtures {command}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("the helper prints JSON")
    }
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Copies `from` into `to` (files only), skipping Terraform's working data.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let name = entry.file_name();
        if name == ".terraform" || name.to_string_lossy().starts_with("terraform.tfstate") {
            continue;
        }
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

/// A copy of `infra/` (so nothing is written into the checkout), the Lambda zips where the example expects them,
/// a provider override pointing at moto, and a CLI config that installs providers from the mirror only.
struct Workspace {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Workspace {
    fn new(endpoint: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&repo_file("infra"), &dir.path().join("infra"));
        for function in ["invoker", "notifier"] {
            let zip = dir.path().join(format!("target/lambda/deploy-runner-{function}/bootstrap.zip"));
            std::fs::create_dir_all(zip.parent().expect("parent")).expect("mkdir");
            let status = Command::new(workspace_root().join(".tools/venv/bin/python"))
                .args([
                    "-c",
                    "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('bootstrap', '#!/bin/sh\\n')",
                ])
                .arg(&zip)
                .status()
                .expect("python");
            assert!(status.success());
        }
        std::fs::write(
            dir.path().join("terraform.rc"),
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{PROVIDER_MIRROR}\"\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  direct {{\n    exclude = [\"*/*/*\"]\n  }}\n}}\n"
            ),
        )
        .expect("cli config");
        let example = dir.path().join("infra/examples/complete");
        // Terraform merges `*_override.tf` into the example's own provider block: moto's credentials, no checks that
        // need the real AWS; AWS_ENDPOINT_URL sends every service to moto.
        std::fs::write(
            example.join("moto_override.tf"),
            "provider \"aws\" {\n  access_key                  = \"test\"\n  secret_key                  = \"test\"\n  skip_credentials_validation = true\n  skip_metadata_api_check     = true\n  skip_region_validation      = true\n}\n",
        )
        .expect("override");
        Workspace { dir, endpoint: endpoint.to_owned() }
    }

    fn example(&self) -> PathBuf {
        self.dir.path().join("infra/examples/complete")
    }

    fn terraform(&self, args: &[&str]) -> Output {
        Command::new(terraform())
            .args(args)
            .current_dir(self.example())
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("terraform.rc"))
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("TF_IN_AUTOMATION", "1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run terraform")
    }

    fn must(&self, args: &[&str]) -> Output {
        let output = self.terraform(args);
        assert!(output.status.success(), "terraform {}:\n{}", args.join(" "), text(&output));
        output
    }
}

fn environment(container: &Value) -> std::collections::BTreeMap<String, String> {
    container["environment"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["name"].as_str().unwrap_or("").to_owned(), e["value"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn secret_names(container: &Value) -> Vec<String> {
    container["secrets"].as_array().into_iter().flatten().map(|s| s["name"].as_str().unwrap_or("").to_owned()).collect()
}

fn actions_of(policy: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    let strings = |v: &Value| match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => vec![],
    };
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (strings(&s["Action"]), strings(&s["Resource"])))
        .collect()
}

#[test]
fn the_complete_example_plans_and_applies_with_the_real_provider_against_moto() {
    if !Path::new(PROVIDER_MIRROR).join(PROVIDER).is_dir() {
        eprintln!("SKIPPED: the AWS provider mirror is absent ({PROVIDER_MIRROR}/{PROVIDER}); only the provider-less checks ran");
        return;
    }
    let moto = MotoServer::start();
    let fixtures = moto.helper("setup");
    let workspace = Workspace::new(&moto.endpoint);
    let mut vars = fixtures.clone();
    vars["runner_image"] =
        Value::from(format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/deploy-runner@sha256:{}", "a".repeat(64)));
    vars["image_builder_image"] = Value::from(format!(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/deploy-runner-image-builder@sha256:{}",
        "b".repeat(64)
    ));
    std::fs::write(workspace.example().join("moto.auto.tfvars.json"), vars.to_string()).expect("tfvars");

    let init = workspace.must(&["init", "-input=false", "-no-color"]);
    assert!(text(&init).contains("hashicorp/aws v5.100.0"), "the mirror's provider: {}", text(&init));
    workspace.must(&["validate", "-no-color"]);
    workspace.must(&["plan", "-input=false", "-no-color", "-out=plan.bin"]);
    let shown = workspace.must(&["show", "-json", "plan.bin"]);
    let plan: Value = serde_json::from_slice(&shown.stdout).expect("plan JSON");
    let managed: Vec<(String, String)> = plan["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|r| r["mode"] == "managed")
        .map(|r| (r["address"].as_str().unwrap_or("").to_owned(), r["type"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(managed.len() > 25, "the whole module is planned: {managed:?}");
    assert!(managed.iter().any(|(_, t)| t == "aws_sfn_state_machine"), "the state machine is planned");
    // Everything moto can create (see the module doc).
    let mut apply = vec!["apply".to_owned(), "-input=false".into(), "-no-color".into(), "-auto-approve".into()];
    apply.extend(managed.iter().filter(|(_, t)| t != "aws_sfn_state_machine").map(|(a, _)| format!("-target={a}")));
    let applied = workspace.must(&apply.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        text(&applied).contains(&format!("Apply complete! Resources: {} added", managed.len() - 1)),
        "{}",
        text(&applied)
    );

    // What AWS now holds.
    let deployed = moto.helper("inspect");
    let definitions = &deployed["task_definitions"];
    for (family, expected_secrets) in [
        ("deploy-runner-planner", vec!["GITHUB_READ_TOKEN"]),
        ("deploy-runner-image-builder", vec!["GITHUB_READ_TOKEN"]),
        ("deploy-runner-applier", vec!["GITHUB_READ_TOKEN", "GITHUB_TOKEN"]),
    ] {
        let definition = &definitions[family];
        let container = &definition["containerDefinitions"][0];
        assert_eq!(secret_names(container), expected_secrets, "{family}: credentials split by need");
        assert_eq!(container["linuxParameters"]["initProcessEnabled"], false, "{family}: the task is PID 1");
        assert_eq!(definition["requiresCompatibilities"], serde_json::json!(["FARGATE"]), "{family}");
        assert!(definition["taskRoleArn"].as_str().unwrap_or("").ends_with(&format!("role/{family}-task")), "{family}");
        let environment = environment(container);
        assert!(!environment.contains_key("GITHUB_TOKEN") && !environment.contains_key("GITHUB_READ_TOKEN"));
        deploy_runner_task::Environment::from_vars(|name| environment.get(name).cloned())
            .unwrap_or_else(|e| panic!("{family}: the task refuses what AWS holds: {e}"));
    }
    let roles = &deployed["roles"];
    let invoker_grants = actions_of(&roles["deploy-runner-invoker"]["policies"]["least-privilege"]);
    assert!(
        !invoker_grants.iter().any(|(a, _)| a.iter().any(|a| a.starts_with("states:SendTask"))),
        "CI's entry point can't approve"
    );
    let approver_grants = actions_of(&roles["deploy-runner-approver"]["policies"]["least-privilege"]);
    let answers = approver_grants
        .iter()
        .find(|(a, _)| a.contains(&"states:SendTaskSuccess".to_owned()))
        .expect("approver answers");
    assert_eq!(answers.1, ["*"], "task tokens have no resource type");
    let ci = actions_of(&deployed["users"]["deploy-runner-ci"]["invoke-deploy-runner-only"]);
    assert_eq!(ci.len(), 1);
    assert_eq!(ci[0].0, ["lambda:InvokeFunction"]);
    assert!(ci[0].1.iter().all(|r| r.ends_with(":function:deploy-runner-invoker")), "{ci:?}");
    let functions = &deployed["functions"];
    for name in ["deploy-runner-invoker", "deploy-runner-approver"] {
        let function = &functions[name];
        assert_eq!(function["Runtime"], "provided.al2023", "{name}");
        assert_eq!(function["Handler"], "bootstrap", "{name}");
        assert!(function["Role"].as_str().unwrap_or("").ends_with(&format!("role/{name}")), "{name}: its own role");
        let config = function["Environment"]["Variables"]["DEPLOY_RUNNER_CONFIG"].as_str().expect("config");
        deploy_runner_control::InvokerConfig::from_json(config)
            .unwrap_or_else(|e| panic!("{name}: the invoker refuses what AWS holds: {e}"));
    }
    assert_eq!(functions["deploy-runner-invoker"]["Environment"]["Variables"].get("DEPLOY_RUNNER_ENTRY_POINT"), None);
    assert_eq!(
        functions["deploy-runner-approver"]["Environment"]["Variables"]["DEPLOY_RUNNER_ENTRY_POINT"],
        "approvals"
    );
    for (group, retention) in deployed["log_groups"].as_object().expect("log groups") {
        assert!(retention.as_u64().is_some_and(|days| days >= 365), "{group}: an audit trail is kept a year");
    }
}
