//! Property tests: no generated request outside the policy is ever allowed, and no input panics the gate.
//!
//! The oracle below restates the policy independently, with plain regexes written from the issue's rules, so a
//! bug in the gate's hand-written checks can't hide behind the same bug in the test.

use deploy_runner_gate::{Gate, Policy, Verdict};
use proptest::prelude::*;
use regex::Regex;
use serde_json::{json, Value};
use std::sync::OnceLock;

const POLICY: &str = include_str!("../../../examples/policy.json");
const LIVE: &str = "https://github.com/acme/infrastructure-live.git";

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate::new(Policy::from_json(POLICY).expect("valid policy")))
}

/// The policy, restated: what an allowed request must satisfy.
struct Oracle {
    app_repo: Regex,
    path: Regex,
    guards: Vec<Regex>,
    full_sha: Regex,
    release_tag: Regex,
}

fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| Oracle {
        // The SSH spellings of the same host and path are the same repository (the one normalisation).
        app_repo: Regex::new(
            r"^(https://github\.com/|git@github\.com:|ssh://git@github\.com/)acme/svc-[a-z0-9-]+\.git$",
        )
        .expect("re"),
        path: Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*){0,31}$").expect("re"),
        guards: vec![
            Regex::new(r"^.+/ecs-deploy-runner(/.+)?$").expect("re"),
            Regex::new(r"^_envcommon/mgmt/ecs-deploy-runner\.hcl$").expect("re"),
        ],
        full_sha: Regex::new(r"^([0-9a-f]{40}|[0-9a-f]{64})$").expect("re"),
        release_tag: Regex::new(r"^v[0-9]+\.[0-9]+\.[0-9]+$").expect("re"),
    })
}

impl Oracle {
    fn unit_path_inside(&self, path: &str) -> bool {
        path.len() <= 512
            && self.path.is_match(path)
            && !path.split('/').any(|s| s == "." || s == "..")
            && !self.guards.iter().any(|g| g.is_match(path))
            && matches!(path.split('/').next(), Some("dev" | "prod"))
    }

    fn apply_ref_inside(&self, r: &str) -> bool {
        r == "main" || self.full_sha.is_match(r)
    }

    /// True when the request is inside the policy as far as the allow-lists go.
    fn inside(&self, req: &Value) -> bool {
        let s = |k: &str| req[k].as_str().unwrap_or("\u{0}invalid");
        let action = s("action");
        let repo_ok = match action {
            "build-image" => self.app_repo.is_match(s("repo")),
            _ => [
                LIVE,
                "git@github.com:acme/infrastructure-live.git",
                "ssh://git@github.com/acme/infrastructure-live.git",
            ]
            .contains(&s("repo")),
        };
        let apply_class =
            matches!(action, "apply" | "destroy" | "update-variable") || (action == "rollout" && s("mode") == "apply");
        let ref_ok = if action == "rollout" && s("mode") == "apply" {
            // Apply rollouts are pinned: every wave runs the same commit.
            self.full_sha.is_match(s("ref"))
        } else {
            !apply_class || self.apply_ref_inside(s("ref"))
        };
        let target_ok = match action {
            "build-image" => {
                let tag = s("tag");
                let commit_tag = (7..=64).contains(&tag.len()) && tag.bytes().all(|b| b"0123456789abcdef".contains(&b));
                let release_tag = tag == s("ref") && self.release_tag.is_match(tag);
                (s("context_path") == "." || self.path.is_match(s("context_path"))) && (commit_tag || release_tag)
            }
            "rollout" => req["units"].as_array().is_some_and(|units| {
                !units.is_empty() && units.iter().all(|u| self.unit_path_inside(u["path"].as_str().unwrap_or("")))
            }),
            "update-variable" => {
                self.unit_path_inside(s("path"))
                    && ["image_version", "version", "ami_version_tag", "ami"].contains(&s("variable"))
            }
            _ => self.unit_path_inside(s("path")),
        };
        repo_ok && ref_ok && target_ok
    }
}

/// Strings near the policy's edges: allowed values, near misses and hostile shapes. `pool[0]` is allowed and
/// drawn often, so that enough generated requests pass every other check to test the one that varies.
fn edge_string(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(pool[0].to_owned()),
        4 => proptest::sample::select(pool).prop_map(str::to_owned),
        2 => (proptest::sample::select(pool), "[ -~]{0,4}", "[\\PC]{0,3}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        1 => "\\PC{0,40}",
        1 => any::<String>(),
    ]
}

const REPOS: &[&str] = &[
    LIVE,
    "https://github.com/acme/infrastructure-live",
    "https://github.com/acme/infrastructure-live.git.evil.com",
    "https://github.com/acme/svc-orders.git",
    "https://github.com/acme/svc-.git",
    "https://github.com/acme/svc-a.git/x",
    "https://x@github.com/acme/infrastructure-live.git",
    "git@github.com:acme/infrastructure-live.git",
    "ssh://git@github.com/acme/infrastructure-live.git",
    "git@github.com.evil.com:acme/infrastructure-live.git",
    "ssh://root@github.com/acme/infrastructure-live.git",
    "git@github.com:acme/svc-orders.git",
    "ext::sh -c id",
    "file:///etc",
    "--upload-pack=id",
    "",
];
const REFS: &[&str] = &[
    "main",
    "MAIN",
    "main2",
    "refs/heads/main",
    "feature/x",
    "0123456789abcdef0123456789abcdef01234567",
    "0123456789ABCDEF0123456789ABCDEF01234567",
    "0123abc",
    "v1.2.3",
    "-x",
    "a..b",
    "@",
    "main.lock",
    "",
];
const PATHS: &[&str] = &[
    "dev/vpc",
    "prod/us-east-1/app",
    "stage/vpc",
    "dev",
    "dev/mgmt/ecs-deploy-runner",
    "dev/ecs-deploy-runner/x",
    "_envcommon/mgmt/ecs-deploy-runner.hcl",
    "dev/../prod",
    "/dev",
    "dev/",
    "dev//x",
    ".git",
    "-x",
    "dev/.x",
    "",
];
const ACTIONS: &[&str] =
    &["plan", "validate", "plan-destroy", "apply", "destroy", "update-variable", "build-image", "rollout"];
const VARIABLES: &[&str] = &["image_version", "version", "ami", "ami_version_tag", "instance_type", "Version", ""];

fn request() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(ACTIONS),
        edge_string(REPOS),
        edge_string(REFS),
        edge_string(PATHS),
        edge_string(VARIABLES),
        proptest::collection::vec(edge_string(PATHS), 0..4),
        prop_oneof![Just("plan"), Just("apply")],
    )
        .prop_map(|(action, repo, git_ref, path, variable, unit_paths, mode)| {
            // The tag is drawn from the ref's own shapes: a SHA prefix, the ref itself, or squatting attempts.
            let tag = match path.len() % 4 {
                0 => git_ref.chars().take(12).collect::<String>(),
                1 => git_ref.clone(),
                2 => "latest".to_owned(),
                _ => "v1.2.3".to_owned(),
            };
            let mut v = json!({"action": action, "actor": "octocat", "repo": repo, "ref": git_ref});
            match action {
                "build-image" => {
                    v["context_path"] = json!(path);
                    v["tag"] = json!(tag);
                }
                "rollout" => {
                    v["mode"] = json!(mode);
                    v["units"] = unit_paths.iter().map(|p| json!({"path": p, "change": "modified"})).collect();
                }
                _ => {
                    v["path"] = json!(path);
                    if matches!(action, "plan-destroy" | "destroy") {
                        v["source_ref"] = json!("0123456789abcdef0123456789abcdef01234567");
                    }
                    if action == "update-variable" {
                        v["variable"] = json!(variable);
                        v["value"] = json!("v1");
                    }
                }
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn nothing_outside_the_policy_is_allowed(req in request()) {
        let decision = gate().evaluate(req.to_string().as_bytes()).decision;
        if decision.decision == Verdict::Allow {
            prop_assert!(oracle().inside(&req), "allowed outside the policy: {req}\n{}", decision.message);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_allow(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let decision = gate().evaluate(&body).decision;
        prop_assert_eq!(decision.decision, Verdict::Deny);
    }

    #[test]
    fn mutated_valid_requests_never_panic(req in request(), cut in 0usize..400, byte in any::<u8>()) {
        let mut body = req.to_string().into_bytes();
        let at = cut.min(body.len().saturating_sub(1));
        if !body.is_empty() {
            body[at] = byte;
        }
        let decision = gate().evaluate(&body).decision;
        if decision.decision == Verdict::Allow {
            let parsed: Value = serde_json::from_slice(&body).expect("allowed bodies are JSON");
            prop_assert!(oracle().inside(&parsed), "allowed outside the policy: {parsed}");
        }
    }
}

#[test]
fn generator_reaches_allowed_requests_too() {
    // A property over a generator that never produces an allowed request proves nothing; make sure it does.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = request();
    let allowed = (0..2000)
        .filter(|_| {
            let req = strategy.new_tree(&mut runner).expect("tree").current();
            gate().evaluate(req.to_string().as_bytes()).decision.is_allowed()
        })
        .count();
    assert!(allowed > 20, "only {allowed} of 2000 generated requests were allowed");
}
