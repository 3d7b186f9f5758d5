//! The invoker end to end through the real Lambda runtime loop: `cargo lambda watch` serves the Runtime API,
//! the function talks to moto through `AWS_ENDPOINT_URL`, and an invoke goes over HTTP as `lambda:Invoke` would.

mod common;

use common::moto::{free_port, invoker_config_json, start_moto, CANARY};
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// POSTs `body` to the function's invoke URL; `None` until the emulator answers.
fn invoke(port: u16, body: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(300))).ok()?;
    write!(
        stream,
        "POST /2015-03-31/functions/deploy-runner-invoker/invocations HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, payload) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| payload.to_owned())
}

#[test]
fn invoke_through_the_lambda_runtime_loop() {
    let cargo_lambda = workspace_root().join(".tools/venv/bin/cargo-lambda");
    assert!(cargo_lambda.exists(), "cargo-lambda is missing: run `make tools` (make test does)");
    let moto = start_moto();
    let port = free_port();
    let log = tempfile::NamedTempFile::new().expect("log file");
    let path =
        format!("{}:{}", workspace_root().join(".tools/venv/bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut watch = Command::new(env!("CARGO"))
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .arg("--manifest-path")
        .arg(repo_file("crates/invoker/Cargo.toml"))
        .env("PATH", path)
        .env("DEPLOY_RUNNER_CONFIG", invoker_config_json(&moto))
        .env("AWS_ENDPOINT_URL", moto.setup["endpoint"].as_str().expect("endpoint"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::from(log.reopen().expect("log")))
        .stderr(Stdio::from(log.reopen().expect("log")))
        .spawn()
        .expect("start cargo lambda watch");
    let request = r#"{"action": "plan", "actor": "octocat", "request_id": "watch-1",
        "repo": "https://github.com/acme/infrastructure-live.git", "ref": "feature/x", "path": "dev/us-east-1/dev/vpc"}"#;
    let started = Instant::now();
    let answer = loop {
        if let Some(answer) = invoke(port, request) {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the function never answered");
        std::thread::sleep(Duration::from_millis(500));
    };
    let denied = invoke(port, &request.replace("feature/x", "feature/x\\nmain")).expect("second invoke");
    let _ = Command::new("kill").arg(watch.id().to_string()).status();
    let _ = watch.wait();

    let response: serde_json::Value = serde_json::from_str(&answer).expect("json answer");
    assert_eq!(response["decision"], "allow", "{response}");
    assert_eq!(response["container"], "planner");
    assert!(response["task_arn"].as_str().is_some_and(|arn| arn.contains(":task/")), "{response}");
    let denied: serde_json::Value = serde_json::from_str(&denied).expect("json");
    assert_eq!((denied["decision"].as_str(), denied["reason"].as_str()), (Some("deny"), Some("ref_invalid")));

    let output = std::fs::read_to_string(log.path()).expect("read log");
    let audit: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "decision")
        .collect();
    assert_eq!(audit.len(), 2, "one audit line per invocation:\n{output}");
    assert_eq!(audit[0]["decision"], "allow");
    assert_eq!(audit[0]["action"], "plan");
    assert_eq!(audit[0]["actor"], "octocat");
    assert_eq!(audit[0]["request_id"], "watch-1");
    assert_eq!(audit[0]["run_id"], response["run_id"]);
    assert_eq!(audit[0]["task_arn"], response["task_arn"]);
    assert!(audit[0]["duration_ms"].is_u64());
    assert_eq!((audit[1]["decision"].as_str(), audit[1]["reason"].as_str()), (Some("deny"), Some("ref_invalid")));
    assert_eq!(audit[1]["ref"], "feature/x\\nmain", "control characters are escaped in the audit line");
    assert!(!output.contains(CANARY), "the canary leaked");
}
