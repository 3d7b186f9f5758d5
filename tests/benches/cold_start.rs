//! Cold init of the invoker Lambda: from process spawn to its first `GET /runtime/invocation/next` against a tiny
//! fake Runtime API, compared in the same run with the floor of any Python invoker (importing boto3 and creating
//! an ECS client). Goal: at least 20x faster. Run: `make bench-cold-start` (builds the release binary first).
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Spawns the invoker against a fake Runtime API; returns (time to first poll, peak RSS KiB).
fn invoker_once(binary: &Path, config: &str) -> (Duration, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let _ = tx.send((Instant::now(), line));
            std::thread::sleep(Duration::from_millis(200)); // hold the long poll open while we read RSS
        }
    });
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "deploy-runner-invoker")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env("DEPLOY_RUNNER_CONFIG", config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn invoker");
    let (at, line) = rx.recv_timeout(Duration::from_secs(10)).expect("the invoker never polled");
    assert!(line.starts_with("GET /2018-06-01/runtime/invocation/next"), "{line}");
    let rss = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    (at - start, rss)
}

/// `import boto3; boto3.client("ecs")`: spawn to the moment the client exists (the script says so), and peak RSS.
fn python_once(python: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = Command::new(python)
        .args(["-c", "import boto3, sys; boto3.client('ecs', region_name='us-east-1'); print('ready', flush=True); sys.stdin.read()"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    let elapsed = start.elapsed();
    assert_eq!(line.trim(), "ready");
    let rss = peak_rss_kib(child.id());
    drop(child.stdin.take());
    let _ = child.wait();
    (elapsed, rss)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let release = args.iter().any(|a| a == "--bench");
    // The smoke run builds what the tests build (no feature-set churn); the figures build the invoker in release.
    let build: &[&str] = if release {
        &["build", "--quiet", "--release", "-p", "deploy-runner-invoker"]
    } else {
        &["build", "--quiet", "--workspace", "--bins"]
    };
    assert!(Command::new(env!("CARGO")).args(build).current_dir(root()).status().expect("cargo").success());
    let exe = std::env::current_exe().expect("exe");
    let binary = exe.parent().and_then(Path::parent).expect("profile dir").join("deploy-runner-invoker");
    let policy = std::fs::read_to_string(root().join("examples/policy.json")).expect("policy");
    let config = format!(
        r#"{{"policy": {policy}, "runtime": {{"cluster_arn": "arn:aws:ecs:us-east-1:1:cluster/c", "subnets": ["s"],
        "security_groups": [], "task_definitions": {{"planner": "p", "applier": "a", "image-builder": "b"}},
        "log_group": "g", "log_stream_prefix": "deploy"}}}}"#
    );
    let runs = if release { RUNS } else { 2 };
    let (ours, rss): (Vec<Duration>, Vec<u64>) = (0..runs).map(|_| invoker_once(&binary, &config)).unzip();
    let python = root().join(".tools/venv/bin/python");
    let (theirs, py_rss): (Vec<Duration>, Vec<u64>) = (0..runs).map(|_| python_once(&python)).unzip();
    let (ours, theirs) = (median(ours), median(theirs));
    let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
    println!("cold init, median of {runs} ({} build)", if release { "release" } else { "debug smoke" });
    println!("| what | time | peak RSS |\n|---|---|---|");
    println!(
        "| deploy-runner-invoker: spawn to first /invocation/next | {:.1} ms | {} MiB |",
        ours.as_secs_f64() * 1e3,
        rss.iter().max().unwrap_or(&0) / 1024
    );
    println!(
        "| python3: import boto3 + boto3.client(\"ecs\") | {:.1} ms | {} MiB |",
        theirs.as_secs_f64() * 1e3,
        py_rss.iter().max().unwrap_or(&0) / 1024
    );
    println!("ratio: {ratio:.1}x (goal: at least 20x)");
}
