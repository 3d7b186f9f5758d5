//! Table-driven tests: every gate rule, with allow cases, deny cases and hostile inputs.

use deploy_runner_gate::{Container, Gate, Policy, Reason, Verdict};
use serde_json::{json, Value};

const POLICY: &str = include_str!("../../../examples/policy.json");
const LIVE: &str = "https://github.com/acme/infrastructure-live.git";
const APP: &str = "https://github.com/acme/svc-orders.git";
const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";

fn gate() -> Gate {
    Gate::new(Policy::from_json(POLICY).expect("example policy is valid"))
}

/// A valid request of each action, to be mutated by the cases.
fn base(action: &str) -> Value {
    let mut v = match action {
        "plan" | "validate" | "apply" => {
            json!({"repo": LIVE, "ref": "main", "path": "dev/us-east-1/dev/vpc"})
        }
        "plan-destroy" | "destroy" => {
            json!({"repo": LIVE, "ref": "main", "path": "dev/us-east-1/dev/old", "source_ref": SHA1})
        }
        "update-variable" => json!({"repo": LIVE, "ref": "main", "path": "dev/us-east-1/dev/api",
                                    "variable": "image_version", "value": "v1.2.3"}),
        "build-image" => json!({"repo": APP, "ref": SHA1, "context_path": ".", "tag": SHA1}),
        "build-ami" => json!({"repo": APP, "ref": SHA1, "template_path": "packer/app.pkr.hcl"}),
        "rollout" => json!({"repo": LIVE, "ref": SHA1, "mode": "apply", "units": [
            {"path": "dev/us-east-1/dev/vpc", "change": "affected"},
            {"path": "prod/us-east-1/prod/old", "change": "deleted", "source_ref": SHA1}]}),
        other => panic!("no base for {other}"),
    };
    v["action"] = json!(action);
    v["actor"] = json!("octocat");
    v
}

fn with(action: &str, field: &str, value: Value) -> Value {
    let mut v = base(action);
    v[field] = value;
    v
}

fn without(action: &str, field: &str) -> Value {
    let mut v = base(action);
    v.as_object_mut().expect("object").remove(field);
    v
}

fn check(gate: &Gate, body: &[u8]) -> deploy_runner_gate::Decision {
    gate.evaluate(body).decision
}

#[test]
fn every_action_has_an_allowed_base_request_with_the_right_container() {
    let gate = gate();
    let expected = [
        ("plan", Container::Planner, Some("dev")),
        ("validate", Container::Planner, Some("dev")),
        ("plan-destroy", Container::Planner, Some("dev")),
        ("apply", Container::Applier, Some("dev")),
        ("destroy", Container::Applier, Some("dev")),
        ("update-variable", Container::Applier, Some("dev")),
        ("build-image", Container::ImageBuilder, None),
        ("build-ami", Container::ImageBuilder, None),
        ("rollout", Container::Applier, None),
    ];
    for (action, container, account) in expected {
        let d = check(&gate, base(action).to_string().as_bytes());
        assert_eq!((d.decision, d.reason), (Verdict::Allow, Reason::Ok), "{action}: {}", d.message);
        assert_eq!(d.container, Some(container), "{action}");
        assert_eq!(d.account.as_deref(), account, "{action}");
        assert_eq!(d.action.map(|a| a.as_str()), Some(action));
    }
    let mut plan_rollout = base("rollout");
    plan_rollout["mode"] = json!("plan");
    plan_rollout["ref"] = json!("feature/x");
    let d = check(&gate, plan_rollout.to_string().as_bytes());
    assert_eq!((d.reason, d.container), (Reason::Ok, Some(Container::Planner)), "{}", d.message);
}

#[test]
fn the_rule_table() {
    let gate = gate();
    let long_path = vec!["a"; 33].join("/");
    let too_many_units: Vec<Value> =
        (0..2001).map(|i| json!({"path": format!("dev/u{i}"), "change": "modified"})).collect();
    let max_units: Vec<Value> = (0..2000).map(|i| json!({"path": format!("dev/u{i}"), "change": "modified"})).collect();
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, Reason)> = vec![
        // --- action ---
        ("unknown action", with("plan", "action", json!("plan_all")), Reason::UnknownAction),
        ("action is case-sensitive", with("plan", "action", json!("PLAN")), Reason::UnknownAction),
        ("action with trailing space", with("plan", "action", json!("plan ")), Reason::UnknownAction),
        ("action wrong type", with("plan", "action", json!(["plan"])), Reason::MalformedRequest),
        ("action missing", without("plan", "action"), Reason::MalformedRequest),
        // --- common fields ---
        ("actor missing", without("plan", "actor"), Reason::MalformedRequest),
        ("actor empty", with("plan", "actor", json!("")), Reason::FieldInvalid),
        ("actor 64 chars", with("plan", "actor", json!("x".repeat(64))), Reason::Ok),
        ("actor 65 chars", with("plan", "actor", json!("x".repeat(65))), Reason::FieldInvalid),
        ("actor bot", with("plan", "actor", json!("dependabot[bot]")), Reason::Ok),
        ("actor CI directive", with("apply", "actor", json!("octocat [skip ci]")), Reason::FieldInvalid),
        ("actor CI directive, no space", with("apply", "actor", json!("octocat[skip-ci]")), Reason::FieldInvalid),
        ("actor line separator", with("plan", "actor", json!("bob\u{2028}decision: allow")), Reason::FieldInvalid),
        ("actor NEL (C1)", with("plan", "actor", json!("bob\u{85}x")), Reason::FieldInvalid),
        ("actor zero-width", with("plan", "actor", json!("bo\u{200b}b")), Reason::FieldInvalid),
        ("actor fullwidth lookalike", with("plan", "actor", json!("ｏctocat")), Reason::FieldInvalid),
        ("actor with a space", with("plan", "actor", json!("Jane Doe")), Reason::FieldInvalid),
        ("actor newline (log forging)", with("plan", "actor", json!("bob\n{\"decision\":\"allow\"}")), Reason::FieldInvalid),
        ("actor escape sequence", with("plan", "actor", json!("\u{1b}[2Jbob")), Reason::FieldInvalid),
        ("actor DEL", with("plan", "actor", json!("bob\u{7f}")), Reason::FieldInvalid),
        ("actor bidi override", with("plan", "actor", json!("bob\u{202e}")), Reason::FieldInvalid),
        ("actor number", with("plan", "actor", json!(7)), Reason::MalformedRequest),
        ("request_id ok", with("plan", "request_id", json!("gh-123_4")), Reason::Ok),
        ("request_id 80", with("plan", "request_id", json!("a".repeat(80))), Reason::Ok),
        ("request_id 81", with("plan", "request_id", json!("a".repeat(81))), Reason::FieldInvalid),
        ("request_id slash", with("plan", "request_id", json!("a/b")), Reason::FieldInvalid),
        ("request_id empty", with("plan", "request_id", json!("")), Reason::FieldInvalid),
        ("unknown field", with("plan", "timeout", json!(5)), Reason::MalformedRequest),
        ("field of another action", with("plan", "source_ref", json!("main")), Reason::MalformedRequest),
        ("wrong type path", with("plan", "path", json!(null)), Reason::MalformedRequest),
        ("ref bidi override", with("plan", "ref", json!("feature/\u{202e}niam")), Reason::RefInvalid),
        ("ref line separator", with("plan", "ref", json!("feature/a\u{2028}b")), Reason::RefInvalid),
        ("ref NEL (C1)", with("plan", "ref", json!("feature/a\u{85}b")), Reason::RefInvalid),
        ("ref private use", with("plan", "ref", json!("feature/\u{e000}")), Reason::RefInvalid),
        ("ref unassigned", with("plan", "ref", json!("feature/\u{378}")), Reason::RefInvalid),
        ("ref zero-width joiner", with("plan", "ref", json!("ma\u{200d}in")), Reason::RefInvalid),
        ("ref non-ASCII letters", with("plan", "ref", json!("feature/héllo")), Reason::Ok),
        // --- repo: SSH forms name their https repository, lookalikes don't ---
        ("repo scp-like ssh", with("plan", "repo", json!("git@github.com:acme/infrastructure-live.git")), Reason::Ok),
        ("repo ssh url", with("plan", "repo", json!("ssh://git@github.com/acme/infrastructure-live.git")), Reason::Ok),
        ("app repo scp-like by regex", with("build-image", "repo", json!("git@github.com:acme/svc-orders.git")), Reason::Ok),
        ("repo scp-like host suffix", with("plan", "repo", json!("git@github.com.evil.com:acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo scp-like host in path", with("plan", "repo", json!("git@evil.com:github.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo scp-like other user", with("plan", "repo", json!("deploy@github.com:acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo scp-like absolute path", with("plan", "repo", json!("git@github.com:/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo scp-like case", with("plan", "repo", json!("git@GitHub.com:acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo scp-like no .git", with("plan", "repo", json!("git@github.com:acme/infrastructure-live")), Reason::RepoNotAllowed),
        ("repo scp-like traversal", with("plan", "repo", json!("git@github.com:acme/../acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo ssh url with a port", with("plan", "repo", json!("ssh://git@github.com:22/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo ssh url with a password", with("plan", "repo", json!("ssh://git:pw@github.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo ssh url other user", with("plan", "repo", json!("ssh://root@github.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo ssh url double slash", with("plan", "repo", json!("ssh://git@github.com//acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo https traversal", with("plan", "repo", json!("https://github.com/acme/../acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo https git user", with("plan", "repo", json!("https://git@github.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        // --- repo ---
        ("repo exact", base("plan"), Reason::Ok),
        ("repo case differs", with("plan", "repo", json!("https://github.com/Acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo without .git", with("plan", "repo", json!("https://github.com/acme/infrastructure-live")), Reason::RepoNotAllowed),
        ("repo lookalike host", with("plan", "repo", json!("https://github.co/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo suffix host", with("plan", "repo", json!("https://github.com.evil.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo .git.evil.com", with("plan", "repo", json!("https://github.com/acme/infrastructure-live.git.evil.com")), Reason::RepoNotAllowed),
        ("repo embedded credentials", with("plan", "repo", json!("https://x:ghp_secret@github.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo userinfo host swap", with("plan", "repo", json!("https://github.com@evil.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo newline joined", with("plan", "repo", json!(format!("{LIVE}\nhttps://evil.com/x.git"))), Reason::RepoNotAllowed),
        ("repo trailing newline", with("plan", "repo", json!(format!("{LIVE}\n"))), Reason::RepoNotAllowed),
        ("repo NUL", with("plan", "repo", json!(format!("{LIVE}\u{0}"))), Reason::RepoNotAllowed),
        ("repo unicode lookalike", with("plan", "repo", json!("https://gіthub.com/acme/infrastructure-live.git")), Reason::RepoNotAllowed),
        ("repo fullwidth", with("plan", "repo", json!("https://github.com/acme/infrastructure-live．git")), Reason::RepoNotAllowed),
        ("repo ext::", with("plan", "repo", json!("ext::sh -c touch% /tmp/pwned")), Reason::RepoNotAllowed),
        ("repo file://", with("plan", "repo", json!("file:///etc/passwd")), Reason::RepoNotAllowed),
        ("repo --upload-pack", with("plan", "repo", json!("--upload-pack=touch /tmp/pwned")), Reason::RepoNotAllowed),
        ("repo query", with("plan", "repo", json!(format!("{LIVE}?ref=x"))), Reason::RepoNotAllowed),
        ("repo fragment", with("plan", "repo", json!(format!("{LIVE}#x"))), Reason::RepoNotAllowed),
        ("repo empty", with("plan", "repo", json!("")), Reason::RepoNotAllowed),
        ("repo too long", with("plan", "repo", json!(format!("{LIVE}{}", "a".repeat(600)))), Reason::RepoNotAllowed),
        ("app repo for plan", with("plan", "repo", json!(APP)), Reason::RepoNotAllowed),
        ("live repo for build-image", with("build-image", "repo", json!(LIVE)), Reason::RepoNotAllowed),
        ("app regex match", with("build-image", "repo", json!("https://github.com/acme/svc-a-1.git")), Reason::Ok),
        ("app regex is anchored at end", with("build-image", "repo", json!("https://github.com/acme/svc-a.git.evil.com")), Reason::RepoNotAllowed),
        ("app regex is anchored at start", with("build-image", "repo", json!("ssh://x/https://github.com/acme/svc-a.git")), Reason::RepoNotAllowed),
        ("app regex dot is literal", with("build-image", "repo", json!("https://githubXcom/acme/svc-a.git")), Reason::RepoNotAllowed),
        ("app regex case", with("build-image", "repo", json!("https://github.com/acme/svc-A.git")), Reason::RepoNotAllowed),
        ("app regex path traversal", with("build-image", "repo", json!("https://github.com/acme/svc-a.git/../../evil/x.git")), Reason::RepoNotAllowed),
        // --- ref ---
        ("ref branch", with("plan", "ref", json!("feature/new-vpc")), Reason::Ok),
        ("ref short sha for plan", with("plan", "ref", json!("0123abc")), Reason::Ok),
        ("ref empty", with("plan", "ref", json!("")), Reason::RefInvalid),
        ("ref option-like", with("plan", "ref", json!("--upload-pack=x")), Reason::RefInvalid),
        ("ref dash", with("plan", "ref", json!("-b")), Reason::RefInvalid),
        ("ref traversal", with("plan", "ref", json!("refs/heads/main/../x")), Reason::RefInvalid),
        ("ref @{", with("plan", "ref", json!("main@{1}")), Reason::RefInvalid),
        ("ref lone @", with("plan", "ref", json!("@")), Reason::RefInvalid),
        ("ref double slash", with("plan", "ref", json!("a//b")), Reason::RefInvalid),
        ("ref leading slash", with("plan", "ref", json!("/main")), Reason::RefInvalid),
        ("ref trailing slash", with("plan", "ref", json!("main/")), Reason::RefInvalid),
        ("ref trailing dot", with("plan", "ref", json!("main.")), Reason::RefInvalid),
        ("ref .lock", with("plan", "ref", json!("main.lock")), Reason::RefInvalid),
        ("ref component .lock", with("plan", "ref", json!("a.lock/b")), Reason::RefInvalid),
        ("ref component dot", with("plan", "ref", json!("a/.b")), Reason::RefInvalid),
        ("ref space", with("plan", "ref", json!("a b")), Reason::RefInvalid),
        ("ref tilde", with("plan", "ref", json!("HEAD~1")), Reason::RefInvalid),
        ("ref caret", with("plan", "ref", json!("HEAD^")), Reason::RefInvalid),
        ("ref colon", with("plan", "ref", json!("a:b")), Reason::RefInvalid),
        ("ref glob", with("plan", "ref", json!("ma*")), Reason::RefInvalid),
        ("ref bracket", with("plan", "ref", json!("ma[in")), Reason::RefInvalid),
        ("ref question", with("plan", "ref", json!("ma?n")), Reason::RefInvalid),
        ("ref backslash", with("plan", "ref", json!("a\\b")), Reason::RefInvalid),
        ("ref DEL", with("plan", "ref", json!("a\u{7f}")), Reason::RefInvalid),
        ("ref newline", with("plan", "ref", json!("main\n")), Reason::RefInvalid),
        ("ref shell", with("plan", "ref", json!("$(id)")), Reason::Ok), // a legal branch name; never reaches a shell
        ("ref 255 bytes", with("plan", "ref", json!("a".repeat(255))), Reason::Ok),
        ("ref 256 bytes", with("plan", "ref", json!("a".repeat(256))), Reason::RefInvalid),
        // --- apply refs ---
        ("apply main", base("apply"), Reason::Ok),
        ("apply sha1", with("apply", "ref", json!(SHA1)), Reason::Ok),
        ("apply sha256", with("apply", "ref", json!("a".repeat(64))), Reason::Ok),
        ("apply short sha", with("apply", "ref", json!("0123abc")), Reason::RefNotAllowedForApply),
        ("apply 39 hex", with("apply", "ref", json!(&SHA1[..39])), Reason::RefNotAllowedForApply),
        ("apply uppercase sha", with("apply", "ref", json!(SHA1.to_uppercase())), Reason::RefNotAllowedForApply),
        ("apply MAIN", with("apply", "ref", json!("MAIN")), Reason::RefNotAllowedForApply),
        ("apply main2", with("apply", "ref", json!("main2")), Reason::RefNotAllowedForApply),
        ("apply refs/heads/main", with("apply", "ref", json!("refs/heads/main")), Reason::RefNotAllowedForApply),
        ("apply main/../x", with("apply", "ref", json!("refs/heads/main/../x")), Reason::RefInvalid),
        ("apply feature", with("apply", "ref", json!("feature/x")), Reason::RefNotAllowedForApply),
        ("destroy feature", with("destroy", "ref", json!("feature/x")), Reason::RefNotAllowedForApply),
        ("destroy missing source_ref", without("destroy", "source_ref"), Reason::MalformedRequest),
        ("destroy bad source_ref", with("destroy", "source_ref", json!("--x")), Reason::RefInvalid),
        ("plan-destroy on branch", with("plan-destroy", "ref", json!("feature/x")), Reason::Ok),
        ("plan-destroy bad source_ref", with("plan-destroy", "source_ref", json!("a..b")), Reason::RefInvalid),
        ("update-variable on branch", with("update-variable", "ref", json!("feature/x")), Reason::RefNotAllowedForApply),
        ("rollout apply on branch", with("rollout", "ref", json!("feature/x")), Reason::RefNotAllowedForApply),
        // --- paths ---
        ("path absolute", with("plan", "path", json!("/dev/vpc")), Reason::PathInvalid),
        ("path traversal", with("plan", "path", json!("dev/../../etc")), Reason::PathInvalid),
        ("path dot segment", with("plan", "path", json!("dev/./vpc")), Reason::PathInvalid),
        ("path dotdot only", with("plan", "path", json!("..")), Reason::PathInvalid),
        ("path hidden", with("plan", "path", json!("dev/.git")), Reason::PathInvalid),
        ("path option-like", with("plan", "path", json!("-chdir=/")), Reason::PathInvalid),
        ("path option-like segment", with("plan", "path", json!("dev/--destroy")), Reason::PathInvalid),
        ("path trailing slash", with("plan", "path", json!("dev/vpc/")), Reason::PathInvalid),
        ("path double slash", with("plan", "path", json!("dev//vpc")), Reason::PathInvalid),
        ("path backslash", with("plan", "path", json!("dev\\vpc")), Reason::PathInvalid),
        ("path shell metachar", with("plan", "path", json!("dev/vpc;rm -rf /")), Reason::PathInvalid),
        ("path command substitution", with("plan", "path", json!("dev/$(id)")), Reason::PathInvalid),
        ("path backtick", with("plan", "path", json!("dev/`id`")), Reason::PathInvalid),
        ("path glob", with("plan", "path", json!("dev/*")), Reason::PathInvalid),
        ("path newline", with("plan", "path", json!("dev/vpc\nprod/vpc")), Reason::PathInvalid),
        ("path unicode", with("plan", "path", json!("dev/vрc")), Reason::PathInvalid),
        ("path empty", with("plan", "path", json!("")), Reason::PathInvalid),
        ("path 33 segments", with("plan", "path", json!(long_path)), Reason::PathInvalid),
        ("path 513 bytes", with("plan", "path", json!(format!("dev/{}", "a".repeat(509)))), Reason::PathInvalid),
        ("path 32 segments", with("plan", "path", json!(format!("dev/{}", vec!["a"; 31].join("/")))), Reason::Ok),
        // --- guards (before accounts) ---
        ("guarded runner", with("plan", "path", json!("dev/us-east-1/mgmt/ecs-deploy-runner")), Reason::PathGuarded),
        ("guarded runner child", with("apply", "path", json!("prod/us-east-1/mgmt/ecs-deploy-runner/x")), Reason::PathGuarded),
        ("guard fires before account", with("plan", "path", json!("nope/mgmt/ecs-deploy-runner")), Reason::PathGuarded),
        ("guarded envcommon", with("plan", "path", json!("_envcommon/mgmt/ecs-deploy-runner.hcl")), Reason::PathGuarded),
        ("guard is a full match", with("plan", "path", json!("dev/ecs-deploy-runner-docs")), Reason::Ok),
        ("guard needs a parent", with("plan", "path", json!("ecs-deploy-runner")), Reason::UnknownAccount),
        // --- accounts ---
        ("unknown account", with("plan", "path", json!("stage/us-east-1/vpc")), Reason::UnknownAccount),
        ("account case", with("plan", "path", json!("Dev/vpc")), Reason::UnknownAccount),
        ("account only", with("plan", "path", json!("dev")), Reason::Ok),
        // --- update-variable ---
        ("variable not allowed", with("update-variable", "variable", json!("instance_type")), Reason::VariableNotAllowed),
        ("variable case", with("update-variable", "variable", json!("Image_Version")), Reason::VariableNotAllowed),
        ("value ok", with("update-variable", "value", json!("sha256:abc/1.2@x+y-z")), Reason::Ok),
        ("value shell", with("update-variable", "value", json!("$(curl evil)")), Reason::FieldInvalid),
        ("value quote", with("update-variable", "value", json!("v1\" ; x = \"")), Reason::FieldInvalid),
        ("value newline", with("update-variable", "value", json!("v1\nx")), Reason::FieldInvalid),
        ("value interpolation", with("update-variable", "value", json!("${file(\"/etc/passwd\")}")), Reason::FieldInvalid),
        ("value empty", with("update-variable", "value", json!("")), Reason::FieldInvalid),
        ("value 257", with("update-variable", "value", json!("a".repeat(257))), Reason::FieldInvalid),
        ("variable guarded path", with("update-variable", "path", json!("dev/mgmt/ecs-deploy-runner")), Reason::PathGuarded),
        // --- build-image ---
        ("context subdir", with("build-image", "context_path", json!("services/api")), Reason::Ok),
        ("context traversal", with("build-image", "context_path", json!("../other")), Reason::PathInvalid),
        ("context absolute", with("build-image", "context_path", json!("/")), Reason::PathInvalid),
        ("context ./x", with("build-image", "context_path", json!("./x")), Reason::PathInvalid),
        ("context not an account", with("build-image", "context_path", json!("docker/app")), Reason::Ok),
        ("context guard not applied", with("build-image", "context_path", json!("x/ecs-deploy-runner")), Reason::Ok),
        ("tag leading dot", with("build-image", "tag", json!(".x")), Reason::FieldInvalid),
        ("tag colon", with("build-image", "tag", json!("a:b")), Reason::FieldInvalid),
        ("tag 129", with("build-image", "tag", json!("a".repeat(129))), Reason::FieldInvalid),
        ("tag option", with("build-image", "tag", json!("-x")), Reason::FieldInvalid),
        ("build-image branch ref", with("build-image", "ref", json!("main")), Reason::Ok),
        ("tag latest (squatting)", with("build-image", "tag", json!("latest")), Reason::TagNotAllowed),
        ("tag short sha", with("build-image", "tag", json!("0123456")), Reason::Ok),
        ("tag too short a sha", with("build-image", "tag", json!("012345")), Reason::TagNotAllowed),
        ("tag uppercase sha", with("build-image", "tag", json!("0123ABC")), Reason::TagNotAllowed),
        ("tag release at its tag", json!({"action": "build-image", "actor": "ci", "repo": APP, "ref": "v1.2.3", "context_path": ".", "tag": "v1.2.3"}), Reason::Ok),
        ("tag release from a branch", json!({"action": "build-image", "actor": "ci", "repo": APP, "ref": "main", "context_path": ".", "tag": "v1.2.3"}), Reason::TagNotAllowed),
        ("tag release from another tag", json!({"action": "build-image", "actor": "ci", "repo": APP, "ref": "v1.2.4", "context_path": ".", "tag": "v1.2.3"}), Reason::TagNotAllowed),
        ("tag not a release pattern", json!({"action": "build-image", "actor": "ci", "repo": APP, "ref": "v1.2.3-rc1", "context_path": ".", "tag": "v1.2.3-rc1"}), Reason::TagNotAllowed),
        // --- read-only actions ---
        ("status", json!({"action": "status", "actor": "ci", "run_id": "run-0123abcd"}), Reason::Ok),
        ("logs", json!({"action": "logs", "actor": "ci", "run_id": "run-1", "next_token": "f/3829/s"}), Reason::Ok),
        ("status bad run id", json!({"action": "status", "actor": "ci", "run_id": "../x"}), Reason::FieldInvalid),
        ("status with next_token", json!({"action": "status", "actor": "ci", "run_id": "r", "next_token": "x"}), Reason::MalformedRequest),
        ("status with repo", json!({"action": "status", "actor": "ci", "run_id": "r", "repo": LIVE}), Reason::MalformedRequest),
        ("logs bad token", json!({"action": "logs", "actor": "ci", "run_id": "r", "next_token": "a b"}), Reason::FieldInvalid),
        ("logs no run", json!({"action": "logs", "actor": "ci"}), Reason::MalformedRequest),
        ("logs of a wave", json!({"action": "logs", "actor": "ci", "run_id": "r", "account": "prod"}), Reason::Ok),
        ("logs of an unknown account", json!({"action": "logs", "actor": "ci", "run_id": "r", "account": "qa"}), Reason::UnknownAccount),
        ("approve prod", json!({"action": "approve", "actor": "lead", "run_id": "run-1", "account": "prod"}), Reason::Ok),
        ("reject prod with comment", json!({"action": "reject", "actor": "lead", "run_id": "run-1", "account": "prod", "comment": "freeze"}), Reason::Ok),
        ("approve an account without approvals", json!({"action": "approve", "actor": "lead", "run_id": "run-1", "account": "dev"}), Reason::FieldInvalid),
        ("approve an unknown account", json!({"action": "approve", "actor": "lead", "run_id": "run-1", "account": "qa"}), Reason::UnknownAccount),
        ("approve a bad run id", json!({"action": "approve", "actor": "lead", "run_id": "run 1", "account": "prod"}), Reason::FieldInvalid),
        ("approve without account", json!({"action": "approve", "actor": "lead", "run_id": "run-1"}), Reason::MalformedRequest),
        ("reject with control characters", json!({"action": "reject", "actor": "lead", "run_id": "run-1", "account": "prod", "comment": "a\u{1b}[2Jb"}), Reason::FieldInvalid),
        ("reject with a bidi override", json!({"action": "reject", "actor": "lead", "run_id": "run-1", "account": "prod", "comment": "ok \u{202e}devorppa"}), Reason::FieldInvalid),
        ("reject with a line separator", json!({"action": "reject", "actor": "lead", "run_id": "run-1", "account": "prod", "comment": "a\u{2029}b"}), Reason::FieldInvalid),
        ("reject with unicode text", json!({"action": "reject", "actor": "lead", "run_id": "run-1", "account": "prod", "comment": "stage ist rot: Fehlerquote ↑"}), Reason::Ok),
        ("reject with a long comment", json!({"action": "reject", "actor": "lead", "run_id": "run-1", "account": "prod", "comment": "x".repeat(201)}), Reason::FieldInvalid),
        ("resume", json!({"action": "resume", "actor": "ci", "run_id": "run-1"}), Reason::Ok),
        ("resume with an account", json!({"action": "resume", "actor": "ci", "run_id": "run-1", "account": "prod"}), Reason::MalformedRequest),
        ("resume bad run id", json!({"action": "resume", "actor": "ci", "run_id": ""}), Reason::FieldInvalid),
        // --- build-ami ---
        ("ami var file", with("build-ami", "var_file", json!("packer/prod.pkrvars.hcl")), Reason::Ok),
        ("ami live repo", with("build-ami", "repo", json!(LIVE)), Reason::RepoNotAllowed),
        ("ami template traversal", with("build-ami", "template_path", json!("../x.pkr.hcl")), Reason::PathInvalid),
        ("ami template absolute", with("build-ami", "template_path", json!("/etc/x")), Reason::PathInvalid),
        ("ami var file option", with("build-ami", "var_file", json!("-var=x")), Reason::PathInvalid),
        ("ami missing template", without("build-ami", "template_path"), Reason::MalformedRequest),
        // --- rollout ---
        ("rollout no units", with("rollout", "units", json!([])), Reason::FieldInvalid),
        // The ledger fields: named apply refs, full SHAs, known accounts; plans carry none.
        ("rollout apply_ref", with("rollout", "apply_ref", json!("main")), Reason::Ok),
        ("rollout apply_ref not an apply ref", with("rollout", "apply_ref", json!("dev")), Reason::RefNotAllowedForApply),
        ("rollout apply_ref a SHA", with("rollout", "apply_ref", json!(SHA1)), Reason::RefNotAllowedForApply),
        ("rollout deployed_commit short", with("rollout", "deployed_commit", json!("0123abc")), Reason::FieldInvalid),
        ("rollout ledger_bases none", with("rollout", "ledger_bases", json!({"dev": "none"})), Reason::Ok),
        ("rollout ledger_bases junk", with("rollout", "ledger_bases", json!({"dev": "HEAD~1"})), Reason::FieldInvalid),
        ("rollout ledger_bases unknown account", with("rollout", "ledger_bases", json!({"qa": SHA1})), Reason::UnknownAccount),
        ("rollout detected_from none", with("rollout", "detected_from", json!({"dev": "none"})), Reason::FieldInvalid),
        ("apply deployed_commit", with("apply", "deployed_commit", json!(SHA1)), Reason::Ok),
        ("apply deployed_commit a branch", with("apply", "deployed_commit", json!("main")), Reason::FieldInvalid),
        ("apply apply_ref elsewhere", with("apply", "apply_ref", json!("feature/x")), Reason::RefNotAllowedForApply),
        ("plan deployed_commit", with("plan", "deployed_commit", json!(SHA1)), Reason::FieldInvalid),
        ("validate apply_ref", with("validate", "apply_ref", json!("main")), Reason::FieldInvalid),
        // Waits inside a wave: other applied units of the same account, once, without a cycle; a bounded width.
        ("rollout waits", with("rollout", "units", json!([
            {"path": "dev/vpc", "change": "affected", "depends_on": []},
            {"path": "dev/app", "change": "affected", "depends_on": ["dev/vpc"]}])), Reason::Ok),
        ("rollout waits for itself", with("rollout", "units", json!([
            {"path": "dev/vpc", "change": "affected", "depends_on": ["dev/vpc"]}])), Reason::FieldInvalid),
        ("rollout waits for a unit not in it", with("rollout", "units", json!([
            {"path": "dev/app", "change": "affected", "depends_on": ["dev/vpc"]}])), Reason::FieldInvalid),
        ("rollout waits across accounts", with("rollout", "units", json!([
            {"path": "dev/vpc", "change": "affected"},
            {"path": "prod/app", "change": "affected", "depends_on": ["dev/vpc"]}])), Reason::FieldInvalid),
        ("rollout waits twice", with("rollout", "units", json!([
            {"path": "dev/vpc", "change": "affected"},
            {"path": "dev/app", "change": "affected", "depends_on": ["dev/vpc", "dev/vpc"]}])), Reason::FieldInvalid),
        ("rollout waits in a cycle", with("rollout", "units", json!([
            {"path": "dev/vpc", "change": "affected", "depends_on": ["dev/app"]},
            {"path": "dev/app", "change": "affected", "depends_on": ["dev/vpc"]}])), Reason::FieldInvalid),
        ("rollout waits for a deleted unit", with("rollout", "units", json!([
            {"path": "dev/old", "change": "deleted", "source_ref": SHA1},
            {"path": "dev/app", "change": "affected", "depends_on": ["dev/old"]}])), Reason::FieldInvalid),
        ("rollout deleted unit waits", with("rollout", "units", json!([
            {"path": "dev/vpc", "change": "affected"},
            {"path": "dev/old", "change": "deleted", "source_ref": SHA1, "depends_on": ["dev/vpc"]}])), Reason::FieldInvalid),
        ("rollout parallelism 1", with("rollout", "parallelism", json!(1)), Reason::Ok),
        ("rollout parallelism at the policy's most", with("rollout", "parallelism", json!(8)), Reason::Ok),
        ("rollout parallelism 0", with("rollout", "parallelism", json!(0)), Reason::FieldInvalid),
        ("rollout parallelism past the policy", with("rollout", "parallelism", json!(9)), Reason::FieldInvalid),
        ("rollout 2000 units", with("rollout", "units", json!(max_units)), Reason::Ok),
        ("rollout 2001 units", with("rollout", "units", json!(too_many_units)), Reason::TooManyUnits),
        ("rollout one guarded unit", with("rollout", "units", json!([{"path": "dev/vpc", "change": "modified"},
            {"path": "dev/mgmt/ecs-deploy-runner", "change": "affected"}])), Reason::PathGuarded),
        ("rollout guard beats unknown account", with("rollout", "units", json!([{"path": "nope/vpc", "change": "modified"},
            {"path": "dev/mgmt/ecs-deploy-runner", "change": "affected"}])), Reason::PathGuarded),
        ("rollout unknown account", with("rollout", "units", json!([{"path": "dev/vpc", "change": "modified"},
            {"path": "qa/vpc", "change": "modified"}])), Reason::UnknownAccount),
        ("rollout bad path", with("rollout", "units", json!([{"path": "dev/../prod", "change": "modified"}])), Reason::PathInvalid),
        ("rollout deleted without source_ref", with("rollout", "units", json!([{"path": "dev/x", "change": "deleted"}])), Reason::FieldInvalid),
        ("rollout source_ref on modified", with("rollout", "units", json!([{"path": "dev/x", "change": "modified", "source_ref": "main"}])), Reason::FieldInvalid),
        ("rollout bad source_ref", with("rollout", "units", json!([{"path": "dev/x", "change": "deleted", "source_ref": "a b"}])), Reason::RefInvalid),
        ("rollout duplicate unit", with("rollout", "units", json!([{"path": "dev/x", "change": "modified"}, {"path": "dev/x", "change": "affected"}])), Reason::FieldInvalid),
        ("rollout unknown change", with("rollout", "units", json!([{"path": "dev/x", "change": "renamed"}])), Reason::MalformedRequest),
        ("rollout unit extra field", with("rollout", "units", json!([{"path": "dev/x", "change": "modified", "cmd": "x"}])), Reason::MalformedRequest),
        ("rollout bad mode", with("rollout", "mode", json!("destroy")), Reason::MalformedRequest),
        ("rollout apply at a branch (unpinned)", with("rollout", "ref", json!("main")), Reason::RefNotPinned),
        ("rollout apply at a feature branch", with("rollout", "ref", json!("feature/x")), Reason::RefNotAllowedForApply),
        ("rollout apply at a short sha", with("rollout", "ref", json!("0123456")), Reason::RefNotAllowedForApply),
        ("rollout apply deleted unit at a branch", with("rollout", "units", json!([{"path": "dev/x", "change": "deleted", "source_ref": "main"}])), Reason::RefNotPinned),
        ("rollout plan at a branch", {
            let mut v = with("rollout", "ref", json!("feature/x"));
            v["mode"] = json!("plan");
            v["units"] = json!([{"path": "dev/x", "change": "deleted", "source_ref": "main"}]);
            v
        }, Reason::Ok),
        ("rollout units not a list", with("rollout", "units", json!("dev/x")), Reason::MalformedRequest),
    ];
    let mut failures = Vec::new();
    for (name, request, expected) in &cases {
        let decision = check(&gate, request.to_string().as_bytes());
        let expected_verdict = if *expected == Reason::Ok { Verdict::Allow } else { Verdict::Deny };
        if decision.reason != *expected || decision.decision != expected_verdict {
            failures.push(format!("{name}: expected {expected}, got {} ({})", decision.reason, decision.message));
        }
        if decision.decision == Verdict::Deny {
            assert!(decision.container.is_none(), "{name}: a denial names no container");
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn raw_malformed_bodies() {
    let gate = gate();
    let nested = format!("{{\"action\":\"plan\",\"actor\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    let huge = format!("{{\"action\":\"plan\",\"actor\":\"{}\"}}", "a".repeat(300 * 1024));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("whitespace", b" \n\t".to_vec()),
        ("not utf-8", b"{\"action\":\"plan\xff\"}".to_vec()),
        ("latin-1", b"\xe9".to_vec()),
        ("not json", b"action=plan".to_vec()),
        ("array", b"[]".to_vec()),
        ("string", b"\"plan\"".to_vec()),
        ("null", b"null".to_vec()),
        ("truncated", br#"{"action":"plan","actor":"a""#.to_vec()),
        ("trailing document", format!("{}{{}}", base("plan")).into_bytes()),
        ("duplicate action", br#"{"action":"plan","action":"apply","actor":"a"}"#.to_vec()),
        ("duplicate path smuggling", {
            let s = base("plan").to_string();
            s.replacen('{', r#"{"path":"prod/vpc","#, 1).into_bytes()
        }),
        ("too deep", nested.into_bytes()),
        ("too large", huge.into_bytes()),
        ("comment", b"{/*x*/\"action\":\"plan\"}".to_vec()),
        ("NaN", b"{\"action\":\"plan\",\"actor\":NaN}".to_vec()),
    ];
    for (name, body) in bodies {
        let d = check(&gate, &body);
        assert_eq!((d.decision, d.reason), (Verdict::Deny, Reason::MalformedRequest), "{name}: {}", d.message);
        assert!(!d.message.is_empty(), "{name}: explains itself");
    }
}

#[test]
fn denial_messages_quote_hostile_input_escaped_and_truncated() {
    let gate = gate();
    let hostile = format!("{}\n\u{1b}[31m{}", "a".repeat(50), "b".repeat(500));
    let d = check(&gate, with("plan", "path", json!(hostile)).to_string().as_bytes());
    assert_eq!(d.reason, Reason::PathInvalid);
    assert!(!d.message.contains('\n') && !d.message.contains('\u{1b}'), "{:?}", d.message);
    assert!(d.message.len() < 300, "{}", d.message.len());
}

#[test]
fn credentials_in_a_repo_url_never_reach_the_message() {
    let gate = gate();
    for repo in
        ["https://x:ghp_CANARY123@github.com/acme/infrastructure-live.git", "https://ghp_CANARY123@evil.com/x.git"]
    {
        let d = check(&gate, with("plan", "repo", json!(repo)).to_string().as_bytes());
        assert_eq!(d.reason, Reason::RepoNotAllowed);
        assert!(!d.message.contains("CANARY"), "{}", d.message);
    }
}

#[test]
fn decision_json_has_the_contract_fields() {
    let gate = gate();
    let d = check(&gate, base("apply").to_string().as_bytes());
    let v = serde_json::to_value(&d).expect("serialise");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["action"], "apply");
    assert_eq!(v["container"], "applier");
    assert_eq!(v["account"], "dev");
    assert!(v["message"].is_string());
    let denied = serde_json::to_value(check(&gate, b"{}")).expect("serialise");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["reason"], "malformed_request");
    assert_eq!(denied["container"], Value::Null);
    assert_eq!(denied["action"], Value::Null);
}

#[test]
fn single_unit_changes_in_an_approval_account_need_a_rollout() {
    let gate = gate();
    let mut exempting: Value = serde_json::from_str(POLICY).expect("json");
    exempting["approval_exempt_actions"] = json!(["update-variable"]);
    let lenient = Gate::new(Policy::from_json(&exempting.to_string()).expect("valid"));
    let prod = |action: &str| with(action, "path", json!("prod/us-east-1/prod/app"));
    for action in ["apply", "destroy", "update-variable"] {
        let d = check(&gate, prod(action).to_string().as_bytes());
        assert_eq!((d.decision, d.reason), (Verdict::Deny, Reason::ApprovalRequired), "{action}: {}", d.message);
        assert!(d.message.contains("send it as a rollout"), "{}", d.message);
    }
    // Plans never need approval, dev never does, and a rollout reaches prod through its approval.
    for (request, name) in [(prod("plan"), "plan prod"), (base("apply"), "apply dev"), (base("rollout"), "rollout")] {
        let d = check(&gate, request.to_string().as_bytes());
        assert_eq!(d.reason, Reason::Ok, "{name}: {}", d.message);
    }
    // An explicit exemption allows exactly the named action.
    assert_eq!(check(&lenient, prod("update-variable").to_string().as_bytes()).reason, Reason::Ok);
    assert_eq!(check(&lenient, prod("apply").to_string().as_bytes()).reason, Reason::ApprovalRequired);
}
