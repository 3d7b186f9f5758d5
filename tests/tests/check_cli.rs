//! `deploy-runner check`: the CLI contract (JSON shape, exit codes 0/3/2, stdin) over the bundled examples.

mod common;

use common::*;
use std::path::Path;

fn check(request: &Path) -> std::process::Output {
    deploy_runner()
        .args(["check", "--format", "json", "--config"])
        .arg(repo_file("examples/policy.json"))
        .arg("--request")
        .arg(request)
        .output()
        .expect("run deploy-runner check")
}

#[test]
fn bundled_examples_get_their_documented_decisions() {
    let expected = [
        ("01-plan-feature-branch", "allow", "ok", Some("planner")),
        ("02-apply-main", "allow", "ok", Some("applier")),
        ("03-apply-feature-branch", "deny", "ref_not_allowed_for_apply", None),
        ("04-destroy-deleted-unit", "allow", "ok", Some("applier")),
        ("05-update-image-version", "allow", "ok", Some("applier")),
        ("06-build-image", "allow", "ok", Some("image-builder")),
        ("07-rollout-envcommon", "allow", "ok", Some("applier")),
        ("08-self-update-guard", "deny", "path_guarded", None),
        ("09-lookalike-repo", "deny", "repo_not_allowed", None),
        ("10-credentials-in-url", "deny", "repo_not_allowed", None),
        ("11-path-traversal", "deny", "path_invalid", None),
        ("12-option-injection-ref", "deny", "ref_invalid", None),
        ("13-unknown-account", "deny", "unknown_account", None),
        ("14-variable-not-allowed", "deny", "variable_not_allowed", None),
        ("15-duplicate-key-smuggling", "deny", "malformed_request", None),
        ("16-unknown-action", "deny", "unknown_action", None),
        ("17-approve-prod", "allow", "ok", None),
        ("18-resume-rollout", "allow", "ok", None),
        ("19-apply-prod-without-approval", "deny", "approval_required", None),
        ("20-rollout-unpinned", "deny", "ref_not_pinned", None),
        ("21-image-tag-squatting", "deny", "tag_not_allowed", None),
        ("22-actor-ci-directive", "deny", "field_invalid", None),
    ];
    let on_disk = std::fs::read_dir(repo_file("examples/requests")).expect("examples").count();
    assert_eq!(on_disk, expected.len(), "every bundled example has an expectation here");
    for (name, decision, reason, container) in expected {
        let output = check(&repo_file(&format!("examples/requests/{name}.json")));
        let json = stdout_json(&output);
        assert_eq!(json["decision"], decision, "{name}: {json}");
        assert_eq!(json["reason"], reason, "{name}: {json}");
        assert_eq!(json["container"].as_str(), container, "{name}");
        let keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
        for key in ["decision", "reason", "message", "action", "container", "account"] {
            assert!(keys.iter().any(|k| k == key), "{name}: missing {key} in {json}");
        }
        let code = if decision == "allow" { 0 } else { 3 };
        assert_eq!(output.status.code(), Some(code), "{name}");
    }
}

#[test]
fn request_from_stdin_and_malformed_input_is_a_denial_not_an_error() {
    for (body, code, reason) in [
        (&br#"{"action":"validate","actor":"a","repo":"https://github.com/acme/infrastructure-live.git","ref":"main","path":"dev/x"}"#[..], 0, "ok"),
        (b"", 3, "malformed_request"),
        (b"\xff\xfe", 3, "malformed_request"),
        (b"{not json", 3, "malformed_request"),
    ] {
        let mut command = deploy_runner();
        command.args(["check", "--format", "json", "--request", "-", "--config"]).arg(repo_file("examples/policy.json"));
        let output = run_with_stdin(command, body);
        assert_eq!(output.status.code(), Some(code), "{body:?}");
        assert_eq!(stdout_json(&output)["reason"], reason);
    }
}

#[test]
fn cannot_run_is_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_policy = dir.path().join("policy.json");
    std::fs::write(&bad_policy, r#"{"repos": {}}"#).expect("write");
    let bad_regex = dir.path().join("regex.json");
    let text = std::fs::read_to_string(repo_file("examples/policy.json")).expect("read");
    std::fs::write(&bad_regex, text.replace("^.+/ecs-deploy-runner(/.+)?$", "(unclosed")).expect("write");
    let request = repo_file("examples/requests/01-plan-feature-branch.json");
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["check".into(), "--config".into(), bad_policy.into(), "--request".into(), request.clone().into()],
            "invalid policy",
        ),
        (
            vec!["check".into(), "--config".into(), bad_regex.into(), "--request".into(), request.clone().into()],
            "path_guards[0] is not a valid regex",
        ),
        (
            vec![
                "check".into(),
                "--config".into(),
                dir.path().join("missing.json").into(),
                "--request".into(),
                request.clone().into(),
            ],
            "cannot read policy",
        ),
        (
            vec![
                "check".into(),
                "--config".into(),
                repo_file("examples/policy.json").into(),
                "--request".into(),
                dir.path().join("nope.json").into(),
            ],
            "cannot read request",
        ),
        (vec!["check".into(), "--request".into(), request.into()], "--config"),
        (vec!["check".into(), "--bogus".into()], "--bogus"),
    ];
    for (args, needle) in cases {
        let output = deploy_runner().args(&args).output().expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr:?} should mention {needle:?}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn text_format_is_one_readable_line() {
    let output = deploy_runner()
        .args(["check", "--format", "text", "--config"])
        .arg(repo_file("examples/policy.json"))
        .arg("--request")
        .arg(repo_file("examples/requests/08-self-update-guard.json"))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("DENY (path_guarded): "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn describe_lists_every_action_with_its_fields_and_container() {
    let output = deploy_runner().args(["describe", "--format", "json"]).output().expect("run");
    assert_eq!(output.status.code(), Some(0));
    let json = stdout_json(&output);
    let actions = json["actions"].as_array().expect("actions");
    let find = |name: &str| actions.iter().find(|a| a["action"] == name).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(actions.len(), 15);
    assert_eq!(find("ledger")["fields"], serde_json::json!(["repo", "apply_ref (optional)"]));
    assert_eq!(find("ledger")["containers"], serde_json::json!([]));
    assert_eq!(find("approve")["fields"], serde_json::json!(["run_id", "account", "comment (optional)"]));
    assert_eq!(find("resume")["containers"], serde_json::json!([]));
    assert_eq!(find("apply")["containers"], serde_json::json!(["applier"]));
    assert_eq!(find("plan-destroy")["fields"], serde_json::json!(["repo", "ref", "path", "source_ref"]));
    assert_eq!(find("build-image")["containers"], serde_json::json!(["image-builder"]));
    assert_eq!(find("rollout")["containers"], serde_json::json!(["planner", "applier"]));
    assert_eq!(find("status")["containers"], serde_json::json!([]));
    let text = deploy_runner().args(["describe", "--format", "text"]).output().expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("update-variable") && l.contains("applier") && l.contains("variable, value")),
        "{text}"
    );
}

#[test]
fn output_errors_end_with_exit_2_and_one_line_never_a_panic() {
    // A full disk: exit 2 and one clear line.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let output = deploy_runner()
        .args(["check", "--format", "json", "--config"])
        .arg(repo_file("examples/policy.json"))
        .arg("--request")
        .arg(repo_file("examples/requests/01-plan-feature-branch.json"))
        .stdout(full)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot write to stdout: No space left on device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A reader that went away (`| head`): quiet, exit 2.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = deploy_runner().args(["describe", "--format", "text"]).stdout(writer).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "a closed pipe ends quietly");
}
