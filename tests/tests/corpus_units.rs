//! Acceptance: every `reading` case from terragrunt's own integration tests (../shared/corpus/terragrunt-cases.json)
//! through `deploy-runner units`.

mod common;

use common::*;
use serde_json::Value;

fn strings(case: &Value, key: &str) -> Vec<String> {
    case[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

#[test]
fn every_reading_case_passes() {
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(corpus().join("terragrunt-cases.json")).expect("cases")).expect("json");
    let reading_cases: Vec<&Value> = cases.iter().filter(|c| c["kind"] == "reading").collect();
    assert!(reading_cases.len() >= 26, "the corpus has {} reading cases", reading_cases.len());
    let mut failures = Vec::new();
    for case in &reading_cases {
        let root = corpus().join(case["root"].as_str().expect("root"));
        let flag = if case["negate"] == true { "--not-reading" } else { "--reading" };
        let mut command = deploy_runner();
        command.args(["units", "--format", "json", "--repo"]).arg(&root);
        for file in strings(case, "reading") {
            command.arg(flag).arg(file);
        }
        for dir in strings(case, "include_dirs") {
            command.arg("--include-dir").arg(dir);
        }
        for dir in strings(case, "exclude_dirs") {
            command.arg("--exclude-dir").arg(dir);
        }
        let output = command.output().expect("run units");
        let label = format!("{} {} {:?}", case["root"], flag, strings(case, "reading"));
        if case["expect_error"] == true {
            if output.status.code() != Some(2) {
                failures.push(format!("{label}: expected exit 2, got {:?}", output.status.code()));
            }
            continue;
        }
        if output.status.code() != Some(0) {
            failures.push(format!(
                "{label}: exit {:?}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let got: Vec<String> = stdout_json(&output)["units"]
            .as_array()
            .expect("units")
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect();
        let mut expected = strings(case, "expected");
        expected.sort();
        if got != expected {
            failures.push(format!("{label}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        reading_cases.len(),
        failures.join("\n")
    );
}
