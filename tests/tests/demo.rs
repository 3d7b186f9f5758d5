//! `make demo`'s scripts, run as the README's first command runs them: they must keep working end to end.

mod common;

use common::*;
use std::process::Command;

#[test]
fn demo_detects_plans_and_applies_waves_in_deploy_order() {
    ensure_binaries_built();
    assert!(workspace_root().join(".tools/bin/terraform").exists(), "run `make tools` (make test does)");
    let output =
        Command::new("bash").arg(repo_file("scripts/demo-changes.sh")).arg(bin_dir()).output().expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let position = |needle: &str| stdout.find(needle).unwrap_or_else(|| panic!("{needle:?} missing from:\n{stdout}"));
    let order = [
        "deleted    dev/us-east-1/dev/queue",
        "shared/us-east-1/mgmt/ecs-deploy-runner                       self-update-guard",
        "dev    plan-destroy dev/us-east-1/dev/queue",
        "wave 1 dev    ok     network apply succeeded (+1 ~0 -0), app apply succeeded (+1 ~0 -0), queue destroy succeeded (+0 ~0 -0)",
        "wave 2 stage  ok",
        "wave 3 prod   ok",
        "All waves applied.",
    ];
    let positions: Vec<usize> = order.iter().map(|n| position(n)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "out of order: {positions:?}\n{stdout}");
    assert!(!stdout.contains("shared/us-east-1/mgmt/ecs-deploy-runner] "), "the guarded runner never runs");

    let gate = Command::new("bash")
        .arg(repo_file("scripts/demo-check.sh"))
        .arg(bin_dir().join("deploy-runner"))
        .output()
        .expect("run");
    assert!(gate.status.success());
    assert!(String::from_utf8_lossy(&gate.stdout).contains("6 allowed, 10 denied."));
}
