//! `make demo`'s scripts, run as the README's first command runs them: they must keep working end to end.

mod common;

use common::*;
use std::process::Command;

#[test]
fn demo_runs_ci_locally_then_fails_in_stage_and_the_next_push_catches_up() {
    ensure_binaries_built();
    assert!(workspace_root().join(".tools/bin/terraform").exists(), "run `make tools` (make test does)");
    let output =
        Command::new("bash").arg(repo_file("scripts/demo-changes.sh")).arg(bin_dir()).output().expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let order = [
        "dev      deleted    dev/us-east-1/dev/queue",
        "skipped             shared/us-east-1/mgmt/ecs-deploy-runner            self-update-guard",
        "dev      succeeded    plan-destroy  succeeded  dev/us-east-1/dev/queue",
        "apply: succeeded ci-apply-",
        "dev      succeeded    apply         succeeded  dev/us-east-1/dev/network                          +1 ~0 -0",
        "dev      succeeded    destroy       succeeded  dev/us-east-1/dev/queue",
        "stage    succeeded    apply         succeeded  stage/us-east-1/stage/app",
        "prod     succeeded    apply         succeeded  prod/us-east-1/prod/app",
        "ci main: succeeded",
        // The failure: stage fails, prod never runs.
        "stage    failed       apply         failed     stage/us-east-1/stage/app",
        "prod     skipped      -",
        "ci main: FAILED",
        "per-wave logs: 01-dev.log 02-stage.log",
        // The next push touches only dev, and stage and prod still get what they missed (from the ledger).
        "stage    from ",
        " (last deployed)",
        "dev      modified   dev/us-east-1/dev/network",
        "stage    modified   stage/us-east-1/stage/app",
        "prod     affected   prod/us-east-1/prod/app",
        "stage    succeeded    apply         succeeded  stage/us-east-1/stage/app",
        "prod     succeeded    apply         succeeded  prod/us-east-1/prod/app",
        "ci main: succeeded",
        // The ledger, then the old failed run refused: resuming it would roll stage back.
        "ledger of file://",
        "apply lock: free",
        "ledger_moved: ",
        "resume ci-apply-",
        ": denied",
    ];
    // Each line must come after the previous one.
    let mut from = 0;
    for needle in order {
        let found = stdout[from..].find(needle).unwrap_or_else(|| panic!("{needle:?} missing after {from}:\n{stdout}"));
        from += found + needle.len();
    }
    assert!(!stdout.contains("ecs-deploy-runner] "), "the guarded runner never runs");

    let gate = Command::new("bash")
        .arg(repo_file("scripts/demo-check.sh"))
        .arg(bin_dir().join("deploy-runner"))
        .output()
        .expect("run");
    assert!(gate.status.success());
    assert!(String::from_utf8_lossy(&gate.stdout).contains("8 allowed, 14 denied."));
}
