//! The local sequencer's overhead per wave, excluding the task itself: planning, the state file written after every
//! transition, the per-wave log file, spawning the task process with its output pumps, and reading its result.
//! The task binary is `true`, so what is measured is everything around a real task. Goal: under 50 ms per wave.
//!
//! Run: `make bench-rollout` (or `cargo bench -p deploy-runner-cli --bench wave_overhead`).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use deploy_runner_cli::local::{LocalApprover, LocalSequencer, LocalTask, LocalWaveRunner};
use deploy_runner_gate::{ChangeKind, Policy, Rollout, RolloutMode, RolloutUnit};
use deploy_runner_task::process::Echo;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

fn policy(accounts: usize) -> Policy {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/policy.json")).expect("policy");
    doc["accounts"] = (0..accounts)
        .map(|i| (format!("acct{i}"), serde_json::json!({"id": format!("{:012}", i), "deploy_order": i})))
        .collect::<serde_json::Map<_, _>>()
        .into();
    doc["approval_accounts"] = serde_json::json!([]);
    Policy::from_json(&doc.to_string()).expect("policy")
}

fn rollout(accounts: usize) -> Rollout {
    Rollout {
        repo: "https://github.com/acme/infrastructure-live.git".into(),
        git_ref: "main".into(),
        mode: RolloutMode::Apply,
        units: (0..accounts)
            .map(|i| RolloutUnit {
                path: format!("acct{i}/us-east-1/app"),
                change: ChangeKind::Modified,
                source_ref: None,
                depends_on: None,
            })
            .collect(),
        apply_ref: None,
        deployed_commit: None,
        ledger_bases: None,
        detected_from: None,
        parallelism: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("local_sequencer");
    group.sample_size(20);
    let waves = 10;
    let interrupt = Arc::new(AtomicBool::new(false));
    group.bench_function(BenchmarkId::new("rollout_of_waves", waves), |b| {
        b.iter_with_setup(tempfile::tempdir, |dir| {
            let dir = dir.expect("tempdir");
            let sequencer = LocalSequencer {
                policy: policy(waves),
                state_dir: dir.path().to_path_buf(),
                lock_wait: Duration::from_secs(1),
                interrupt: interrupt.clone(),
            };
            let task = LocalTask {
                binary: "true".into(),
                policy_json: String::new(),
                interrupt: interrupt.clone(),
                grace: Duration::from_secs(1),
                echo: Echo::Off,
                tf_state_dir: None,
            };
            let mut runner = LocalWaveRunner {
                task,
                state_dir: dir.path().to_path_buf(),
                actor: "bench".into(),
                events: Vec::new(),
                on_wave: Box::new(|_, _| {}),
            };
            let mut approver =
                LocalApprover::new(dir.path().to_path_buf(), vec![], Duration::from_secs(1), interrupt.clone(), false);
            let state = sequencer.start("bench-run", &rollout(waves), &mut runner, &mut approver).expect("run");
            assert_eq!(state.status, deploy_runner_rollout::RunStatus::Succeeded);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
