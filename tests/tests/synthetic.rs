//! The synthetic repo generator used by the benchmark, checked at small scale: the shape is what the
//! benchmark claims, and detection gives the answers the shape implies.

mod common;

use common::*;
use deploy_runner_e2e::SyntheticRepo;

#[test]
fn generated_repo_selects_what_its_shape_implies() {
    let shape = SyntheticRepo { units: 240, envcommon: 12, accounts: 2, regions: 2, envs: 3 };
    let repo = TestRepo::new();
    shape.write(repo.path()).expect("generate");
    repo.commit("base");
    repo.append("_envcommon/c5.hcl", "# edit\n");
    repo.commit("one envcommon");
    let output = deploy_runner()
        .args(["changes", "--format", "json", "--base", "HEAD~1", "--repo"])
        .arg(repo.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report = stdout_json(&output);
    let units = report["units"].as_array().expect("units");
    // Unit i includes _envcommon/c{i % 12}.hcl: 240 / 12 = 20 units read c5.
    assert_eq!(units.len(), 20, "{report}");
    assert!(units
        .iter()
        .all(|u| u["change"] == "affected" && u["reasons"] == serde_json::json!(["_envcommon/c5.hcl"])));
    let orders: Vec<u64> = units.iter().map(|u| u["deploy_order"].as_u64().expect("order")).collect();
    assert!(orders.windows(2).all(|w| w[0] <= w[1]), "{orders:?}");
    assert_eq!(report["warnings"], serde_json::json!([]));

    repo.append("acct1/region0/region.hcl", "# edit\n");
    repo.commit("one region");
    let report = stdout_json(
        &deploy_runner()
            .args(["changes", "--format", "json", "--base", "HEAD~1", "--repo"])
            .arg(repo.path())
            .output()
            .expect("run"),
    );
    // Units are spread evenly over 2 x 2 x 3 = 12 environments; acct1/region0 holds 3 of them.
    assert_eq!(report["units"].as_array().expect("units").len(), 60);
}
