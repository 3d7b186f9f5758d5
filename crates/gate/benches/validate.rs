//! Criterion benchmark: decode + validate one request. Goal: under 50 µs per request.
#![allow(missing_docs)] // criterion's macros generate undocumented items
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use deploy_runner_gate::{Gate, Policy};

fn rollout_body(units: usize) -> Vec<u8> {
    let units: Vec<_> = (0..units)
        .map(|i| serde_json::json!({"path": format!("dev/us-east-1/dev/unit-{i}"), "change": "modified"}))
        .collect();
    serde_json::to_vec(&serde_json::json!({"action": "rollout", "actor": "octocat", "request_id": "bench-1",
        "repo": "https://github.com/acme/infrastructure-live.git", "ref": "main", "mode": "apply", "units": units}))
    .expect("serialise")
}

fn bench(c: &mut Criterion) {
    let policy = Policy::from_json(include_str!("../../../examples/policy.json")).expect("example policy");
    let gate = Gate::new(policy);
    let apply = br#"{"action":"apply","actor":"octocat","request_id":"gh-123-1","repo":"https://github.com/acme/infrastructure-live.git","ref":"main","path":"dev/us-east-1/dev/services/api"}"#;
    let build = br#"{"action":"build-image","actor":"octocat","repo":"https://github.com/acme/svc-orders.git","ref":"0123456789abcdef0123456789abcdef01234567","context_path":".","tag":"0123456789abcdef0123456789abcdef01234567"}"#;
    let guarded = br#"{"action":"plan","actor":"octocat","repo":"https://github.com/acme/infrastructure-live.git","ref":"main","path":"dev/us-east-1/mgmt/ecs-deploy-runner"}"#;
    let rollout_50 = rollout_body(50);
    c.bench_function("apply (allow)", |b| b.iter(|| gate.evaluate(black_box(apply))));
    c.bench_function("build-image regex repo (allow)", |b| b.iter(|| gate.evaluate(black_box(build))));
    c.bench_function("plan guarded (deny)", |b| b.iter(|| gate.evaluate(black_box(guarded))));
    c.bench_function("malformed (deny)", |b| {
        b.iter(|| gate.evaluate(black_box(b"{\"action\":\"plan\",\"action\":1}")))
    });
    c.bench_function("rollout 50 units (allow)", |b| b.iter(|| gate.evaluate(black_box(&rollout_50))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
