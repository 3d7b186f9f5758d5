//! The AWS API emulator for integration tests: moto 5.2.5 in-process, started on free loopback ports by
//! `tests/helpers/moto_server.py`, with a control endpoint for task states moto can't produce.
#![allow(dead_code)]

use super::{repo_file, workspace_root};
use deploy_runner_control::InvokerConfig;
use deploy_runner_rollout::asl::{definition, MachineSettings, TASK_STATE};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// The secret value planted in Secrets Manager; it must never appear in any output.
pub const CANARY: &str = "ghp_CANARY_moto_s3cr3t_value";

/// A running emulator, stopped when dropped.
pub struct Moto {
    child: Child,
    /// What the helper created (endpoint, cluster, task definitions, ...).
    pub setup: Value,
    control: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts moto and creates a deployed control plane's resources.
pub fn start_moto() -> Moto {
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(python.exists(), "the project venv is missing: run `make tools` (make test does)");
    let (port, control) = (free_port(), free_port());
    let mut child = Command::new(python)
        .arg(repo_file("tests/helpers/moto_server.py"))
        .args([port.to_string(), control.to_string(), CANARY.to_owned()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("setup line");
    let setup: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("moto helper said {line:?}: {e}"));
    Moto { child, setup, control }
}

/// An SDK configuration pointing at the emulator.
pub async fn sdk_config(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.setup["endpoint"].as_str().expect("endpoint"))
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// `DEPLOY_RUNNER_CONFIG` for the emulator's resources.
pub fn invoker_config_json(moto: &Moto) -> String {
    let policy: Value = serde_json::from_str(include_str!("../../../examples/policy.json")).expect("policy");
    let defs = &moto.setup["task_definitions"];
    json!({"policy": policy, "runtime": {
        "cluster_arn": moto.setup["cluster_arn"], "subnets": [moto.setup["subnet"]],
        "security_groups": [moto.setup["security_group"]],
        "task_definitions": {"planner": defs["planner"], "applier": defs["applier"], "image-builder": defs["image-builder"]},
        "log_group": moto.setup["log_group"], "log_stream_prefix": "deploy",
        "ledger_table": moto.setup["ledger_table"]}})
    .to_string()
}

/// The invoker configuration for the emulator's resources.
pub fn invoker_config(moto: &Moto) -> InvokerConfig {
    InvokerConfig::from_json(&invoker_config_json(moto)).expect("config")
}

/// Stops a task in moto with the given exit code (a number or null).
pub fn set_task(moto: &Moto, task_arn: &str, exit_code: Value) {
    let body = json!({"task_arn": task_arn, "last_status": "STOPPED", "exit_code": exit_code,
                      "stop_code": "EssentialContainerExited", "stopped_reason": "Essential container in task exited"})
    .to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", moto.control)).expect("control");
    use std::io::{Read, Write};
    write!(stream, "POST / HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.0 204"), "{answer}");
}

/// Makes moto's Step Functions run the control flow of executions (off by default).
pub fn enable_step_functions(moto: &Moto) {
    let endpoint = moto.setup["endpoint"].as_str().expect("endpoint");
    let address = endpoint.trim_start_matches("http://");
    let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
    let mut stream = std::net::TcpStream::connect(address).expect("moto");
    use std::io::{Read, Write};
    write!(stream, "POST /moto-api/config HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    assert!(status.starts_with('2'), "moto refused the Step Functions config: {answer}");
}

/// The generated rollout definition, with the wave task scripted (moto's Step Functions can't run ECS tasks): each wave exits 0, except an apply (the applier's task
/// definition) in `failing_apply_account`, which exits 1. Notifications become Pass states (no notifier here).
pub fn scripted_rollouts(moto: &Moto, failing_apply_account: Option<&str>) -> String {
    let mut machine = definition(&MachineSettings {
        partition: "aws".into(),
        cluster_arn: moto.setup["cluster_arn"].as_str().expect("cluster").to_owned(),
        container_name: "runner".into(),
        subnets: vec![moto.setup["subnet"].as_str().expect("subnet").to_owned()],
        security_groups: vec![moto.setup["security_group"].as_str().expect("sg").to_owned()],
        assign_public_ip: false,
        notifier_arn: "arn:aws:lambda:us-east-1:123456789012:function:deploy-runner-notifier".into(),
        approval_timeout_secs: 3600,
        ledger_table: moto.setup["ledger_table"].as_str().unwrap_or("deploy-runner-ledger").to_owned(),
    });
    let states = &mut machine["States"]["Waves"]["ItemProcessor"]["States"];
    let exit = |code: i64| json!({"Type": "Pass", "Result": {"exit_codes": [code]}, "ResultPath": "$.result", "Next": "CheckExitCode"});
    states["ExitsZero"] = exit(0);
    states["ExitsOne"] = exit(1);
    let choices: Vec<Value> = failing_apply_account
        .map(|account| {
            json!({"And": [
                {"Variable": "$.wave.account", "StringEquals": account},
                {"Variable": "$.wave.task_definition", "StringEquals": moto.setup["task_definitions"]["applier"]},
            ], "Next": "ExitsOne"})
        })
        .into_iter()
        .collect();
    states[TASK_STATE] = if choices.is_empty() {
        json!({"Type": "Pass", "Next": "ExitsZero"})
    } else {
        json!({"Type": "Choice", "Choices": choices, "Default": "ExitsZero"})
    };
    for notify in ["NotifySuccess", "NotifyFailure"] {
        let next = machine["States"][notify]["Next"].clone();
        machine["States"][notify] = json!({"Type": "Pass", "Next": next});
    }
    machine.to_string()
}
