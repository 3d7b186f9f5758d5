//! A wave at the speed of its dependency graph: 16 independent units and a chain of 4, with a stand-in tool that
//! takes one second per apply (as a real one mostly waits on the network). With the default settings, the wall
//! time should be close to the critical path (4 s), against the sum (20 s) when units run one at a time, as every
//! wave did before. It also checks from the tool's own log that no unit started before its dependency ended.
//!
//! Run: `make bench-wave` (or `cargo bench -p deploy-runner-task --bench wave_parallel`).
#![allow(missing_docs)]

use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const INDEPENDENT: usize = 16;
const CHAIN: usize = 4;
const SECONDS_PER_UNIT: u64 = 1;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The stand-in tool: `init` is instant; anything else logs its start and end around a sleep.
fn stand_in(dir: &Path, log: &Path) -> std::path::PathBuf {
    let path = dir.join("tool.sh");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = init ] && exit 0\nunit=$(basename \"$PWD\")\necho \"$unit start $(date +%s%N)\" >> '{log}'\nsleep {SECONDS_PER_UNIT}\necho \"$unit end $(date +%s%N)\" >> '{log}'\n",
        log = log.display()
    );
    std::fs::write(&path, script).expect("write tool");
    Command::new("chmod").arg("+x").arg(&path).status().expect("chmod");
    path
}

/// Runs the wave once; returns its wall time and the tool's log.
fn run(task: &Path, remote: &Path, head: &str, parallelism: Option<u32>, scratch: &Path) -> (Duration, String) {
    let log = scratch.join(format!("log-{}", parallelism.unwrap_or(0)));
    let _ = std::fs::remove_file(&log);
    let tool = stand_in(scratch, &log);
    let mut units = Vec::new();
    for i in 0..CHAIN {
        let waits: Vec<String> = if i == 0 { vec![] } else { vec![format!("dev/chain{}", i - 1)] };
        units.push(json!({"path": format!("dev/chain{i}"), "change": "modified", "depends_on": waits}));
    }
    for i in 0..INDEPENDENT {
        units.push(json!({"path": format!("dev/unit{i}"), "change": "modified", "depends_on": []}));
    }
    let mut request = json!({"action": "rollout", "actor": "bench", "repo": format!("file://{}", remote.display()),
                             "ref": head, "mode": "apply", "units": units});
    if let Some(p) = parallelism {
        request["parallelism"] = json!(p);
    }
    let mut policy: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/policy.json")).expect("policy");
    policy["repos"]["infrastructure_live"]["exact"] = json!([format!("file://{}", remote.display())]);
    policy["binary"] = json!("terraform");
    let started = Instant::now();
    let output = Command::new(task)
        .env("DEPLOY_RUNNER_POLICY", policy.to_string())
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": tool, "provider_cache": false}).to_string())
        .args(["run", "--request", &request.to_string()])
        .output()
        .expect("run the task");
    let took = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (took, std::fs::read_to_string(&log).expect("tool log"))
}

/// Every chain unit started after the one before it ended.
fn check_order(log: &str) {
    let time = |unit: &str, what: &str| -> u128 {
        log.lines()
            .find_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some(unit) && parts.next() == Some(what)).then(|| parts.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("{unit} {what} missing from the log"))
    };
    for i in 1..CHAIN {
        let (before, after) = (format!("chain{}", i - 1), format!("chain{i}"));
        assert!(time(&after, "start") >= time(&before, "end"), "{after} started before {before} ended");
    }
}

fn main() {
    let task = Path::new(env!("CARGO_BIN_EXE_deploy-runner-task"));
    let scratch = tempfile::tempdir().expect("tempdir");
    let remote = scratch.path().join("live");
    std::fs::create_dir_all(&remote).expect("mkdir");
    git(&remote, &["init", "-q", "-b", "main"]);
    for name in (0..CHAIN).map(|i| format!("chain{i}")).chain((0..INDEPENDENT).map(|i| format!("unit{i}"))) {
        let dir = remote.join("dev").join(&name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("main.tf"), "# a unit\n").expect("write");
    }
    git(&remote, &["add", "-A"]);
    git(&remote, &["commit", "-q", "-m", "units"]);
    let head = git(&remote, &["rev-parse", "HEAD"]);

    let critical_path = Duration::from_secs(CHAIN as u64 * SECONDS_PER_UNIT);
    let sum = Duration::from_secs((CHAIN + INDEPENDENT) as u64 * SECONDS_PER_UNIT);
    println!("wave: {INDEPENDENT} independent units and a chain of {CHAIN}, {SECONDS_PER_UNIT} s each");
    println!("  critical path {:.1} s, sum {:.1} s", critical_path.as_secs_f64(), sum.as_secs_f64());
    for (label, parallelism) in [("default (policy: 8)", None), ("one at a time (as before)", Some(1))] {
        let (took, log) = run(task, &remote, &head, parallelism, scratch.path());
        check_order(&log);
        println!(
            "  {label:<28} {:>6.1} s  ({:.2}x the critical path)",
            took.as_secs_f64(),
            took.as_secs_f64() / critical_path.as_secs_f64()
        );
    }
}
