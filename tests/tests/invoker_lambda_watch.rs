//! The invoker end to end through the real Lambda runtime loop: `cargo lambda watch` serves the Runtime API,
//! the function talks to moto through `AWS_ENDPOINT_URL`, and an invoke goes over HTTP as `lambda:Invoke` would.

mod common;

use common::lambda_watch::InvokerWatch;
use common::moto::{invoker_config_json, start_moto, CANARY};

#[test]
fn invoke_through_the_lambda_runtime_loop() {
    let moto = start_moto();
    let watch = InvokerWatch::start(&moto, &invoker_config_json(&moto));
    let request = r#"{"action": "plan", "actor": "octocat", "request_id": "watch-1",
        "repo": "https://github.com/acme/infrastructure-live.git", "ref": "feature/x", "path": "dev/us-east-1/dev/vpc"}"#;
    let answer = watch.invoke(request).expect("first invoke");
    let denied = watch.invoke(&request.replace("feature/x", "feature/x\\nmain")).expect("second invoke");
    let output = watch.log();
    let audit = watch.audit();
    drop(watch);

    let response: serde_json::Value = serde_json::from_str(&answer).expect("json answer");
    assert_eq!(response["decision"], "allow", "{response}");
    assert_eq!(response["container"], "planner");
    assert!(response["task_arn"].as_str().is_some_and(|arn| arn.contains(":task/")), "{response}");
    let denied: serde_json::Value = serde_json::from_str(&denied).expect("json");
    assert_eq!((denied["decision"].as_str(), denied["reason"].as_str()), (Some("deny"), Some("ref_invalid")));

    assert_eq!(audit.len(), 2, "one audit line per invocation:\n{output}");
    assert_eq!(audit[0]["decision"], "allow");
    assert_eq!(audit[0]["action"], "plan");
    assert_eq!(audit[0]["actor"], "octocat");
    assert_eq!(audit[0]["request_id"], "watch-1");
    assert_eq!(audit[0]["run_id"], response["run_id"]);
    assert_eq!(audit[0]["task_arn"], response["task_arn"]);
    assert!(audit[0]["duration_ms"].is_u64());
    assert_eq!((audit[1]["decision"].as_str(), audit[1]["reason"].as_str()), (Some("deny"), Some("ref_invalid")));
    assert_eq!(audit[1]["ref"], "feature/x\\u{000a}main", "control characters are escaped in the audit line");
    assert!(!output.contains(CANARY), "the canary leaked");
}
