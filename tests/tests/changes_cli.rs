//! `deploy-runner changes` on real git histories of the example infrastructure-live repos, and on bad input.

mod common;

use common::*;
use serde_json::Value;

const LIVE_EXAMPLE: &str = "terragrunt-infrastructure-live-example";
const LIVE_ACCOUNTS: &str = r#"{"non-prod": {"id": "111111111111", "deploy_order": 1, "root_user_email": "a@example.com"},
                                "prod": {"id": "333333333333", "deploy_order": 2}}"#;
const BLOG_EXAMPLE: &str = "terraform-blog-terragrunt/terragrunt";
const BLOG_ACCOUNTS: &str = r#"{"dev": {"deploy_order": 1}, "qa": {"deploy_order": 2}, "prod": {"deploy_order": 3}}"#;

fn live_repo() -> TestRepo {
    TestRepo::from_corpus(LIVE_EXAMPLE, &[("accounts.json", LIVE_ACCOUNTS), ("README.md", "# live\n")])
}

fn blog_repo() -> TestRepo {
    TestRepo::from_corpus(BLOG_EXAMPLE, &[("accounts.json", BLOG_ACCOUNTS)])
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(p, c)| ((*p).to_owned(), (*c).to_owned())).collect()
}

#[test]
fn envcommon_edit_affects_only_its_readers_in_deploy_order() {
    let repo = live_repo();
    repo.append("_envcommon/mysql.hcl", "\n# bigger disks\n");
    let head = repo.commit("mysql common");
    let report = changes(&repo, &[]);
    assert_eq!(report["head"], head);
    assert_eq!(report["base"].as_str().map(str::len), Some(40));
    assert_eq!(
        selected(&report),
        pairs(&[
            ("non-prod/us-east-1/qa/mysql", "affected"),
            ("non-prod/us-east-1/stage/mysql", "affected"),
            ("prod/us-east-1/prod/mysql", "affected"),
        ])
    );
    let first = &report["units"][0];
    assert_eq!(first["account"], "non-prod");
    assert_eq!(first["deploy_order"], 1);
    assert_eq!(first["reasons"], serde_json::json!(["_envcommon/mysql.hcl"]));
    assert_eq!(report["units"][2]["deploy_order"], 2);
}

#[test]
fn root_hcl_edit_affects_every_unit() {
    let repo = live_repo();
    repo.append("root.hcl", "\n# tweak\n");
    repo.commit("root");
    let units: Vec<String> = selected(&changes(&repo, &[])).into_iter().map(|(p, _)| p).collect();
    assert_eq!(units.len(), 6, "{units:?}");
    assert!(units[..4].iter().all(|u| u.starts_with("non-prod/")) && units[4..].iter().all(|u| u.starts_with("prod/")));
}

#[test]
fn account_region_and_env_edits_reach_the_units_below_them() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "non-prod/account.hcl",
            &[
                "non-prod/us-east-1/qa/mysql",
                "non-prod/us-east-1/qa/webserver-cluster",
                "non-prod/us-east-1/stage/mysql",
                "non-prod/us-east-1/stage/webserver-cluster",
            ],
        ),
        ("prod/us-east-1/region.hcl", &["prod/us-east-1/prod/mysql", "prod/us-east-1/prod/webserver-cluster"]),
        ("non-prod/us-east-1/qa/env.hcl", &["non-prod/us-east-1/qa/mysql", "non-prod/us-east-1/qa/webserver-cluster"]),
    ];
    for (file, expected) in cases {
        let repo = live_repo();
        repo.append(file, "\n# edit\n");
        repo.commit(file);
        let report = changes(&repo, &[]);
        let got: Vec<String> = selected(&report).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, expected, "{file}");
        assert!(report["units"]
            .as_array()
            .expect("units")
            .iter()
            .all(|u| u["change"] == "affected" && u["reasons"][0] == file));
    }
}

#[test]
fn added_modified_and_deleted_units_and_their_strongest_change() {
    let repo = live_repo();
    repo.write(
        "prod/us-east-1/prod/redis/terragrunt.hcl",
        "include \"root\" {\n  path = find_in_parent_folders(\"root.hcl\")\n}\n",
    );
    repo.append("prod/us-east-1/prod/mysql/terragrunt.hcl", "\n# bigger\n");
    repo.remove("non-prod/us-east-1/qa/webserver-cluster");
    repo.commit("add, modify, delete");
    assert_eq!(
        selected(&changes(&repo, &[])),
        pairs(&[
            ("non-prod/us-east-1/qa/webserver-cluster", "deleted"),
            ("prod/us-east-1/prod/mysql", "modified"),
            ("prod/us-east-1/prod/redis", "added"),
        ])
    );
}

#[test]
fn guarded_runner_is_skipped_and_never_listed() {
    let repo = live_repo();
    repo.write(
        "prod/us-east-1/mgmt/ecs-deploy-runner/terragrunt.hcl",
        "include \"root\" {\n  path = find_in_parent_folders(\"root.hcl\")\n}\n",
    );
    repo.write("_envcommon/mgmt/ecs-deploy-runner.hcl", "locals {}\n");
    repo.commit("runner");
    let report = changes(&repo, &[]);
    assert!(selected(&report).is_empty(), "{report}");
    assert_eq!(
        report["skipped"],
        serde_json::json!([{"path": "prod/us-east-1/mgmt/ecs-deploy-runner", "reason": "self-update-guard"}])
    );

    // Reached only through a shared file it reads: still skipped.
    repo.append("root.hcl", "\n# touch\n");
    repo.commit("root");
    let report = changes(&repo, &[]);
    assert_eq!(selected(&report).len(), 6);
    assert_eq!(report["skipped"][0]["path"], "prod/us-east-1/mgmt/ecs-deploy-runner");
}

#[test]
fn readme_and_ci_changes_select_nothing() {
    let repo = live_repo();
    repo.append("README.md", "more docs\n");
    repo.write(".github/workflows/pipelines.yml", "on: push\n");
    repo.write("_ci/scripts/deploy.sh", "echo hi\n");
    repo.commit("docs and ci");
    let report = changes(&repo, &[]);
    assert_eq!(report["units"], serde_json::json!([]));
    assert_eq!(report["skipped"], serde_json::json!([]));
}

#[test]
fn blog_repo_shared_files_and_dependents() {
    let repo = blog_repo();
    repo.append("_envcommon/common.hcl", "\n# shared\n");
    repo.commit("common");
    let units = selected(&changes(&repo, &[]));
    assert_eq!(units.len(), 12, "root terragrunt.hcl reads _envcommon/common.hcl for every unit: {units:?}");
    assert!(units[..4].iter().all(|(p, _)| p.starts_with("dev/")));
    assert!(units[8..].iter().all(|(p, _)| p.starts_with("prod/")));

    let repo = blog_repo();
    repo.append("qa/env.hcl", "\n# qa\n");
    repo.commit("qa env");
    let units: Vec<String> = selected(&changes(&repo, &[])).into_iter().map(|(p, _)| p).collect();
    // iam depends on s3 (through get_original_terragrunt_dir() in _envcommon), app-main on vpc and iam.
    assert_eq!(units, ["qa/s3", "qa/vpc", "qa/iam", "qa/app-main"]);

    let repo = blog_repo();
    repo.append("_envcommon/vpc.hcl", "\n# vpc\n");
    repo.commit("vpc");
    let units: Vec<String> = selected(&changes(&repo, &[])).into_iter().map(|(p, _)| p).collect();
    assert_eq!(units, ["dev/vpc", "qa/vpc", "prod/vpc"]);
}

#[test]
fn dependency_order_and_with_dependents() {
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"deploy_order": 1}}"#);
    repo.write("dev/vpc/terragrunt.hcl", "# vpc\n");
    repo.write("dev/db/terragrunt.hcl", "dependency \"vpc\" {\n  config_path = \"../vpc\"\n}\n");
    repo.write("dev/app/terragrunt.hcl", "dependencies {\n  paths = [\"../db\"]\n}\n");
    repo.write("dev/aaa/terragrunt.hcl", "# unrelated\n");
    repo.commit("base");
    for unit in ["dev/vpc", "dev/db", "dev/app", "dev/aaa"] {
        repo.append(&format!("{unit}/terragrunt.hcl"), "# change\n");
    }
    repo.commit("touch all");
    let order: Vec<String> = selected(&changes(&repo, &[])).into_iter().map(|(p, _)| p).collect();
    assert_eq!(order, ["dev/aaa", "dev/vpc", "dev/db", "dev/app"], "dependencies first, ties by path");

    repo.append("dev/vpc/terragrunt.hcl", "# again\n");
    repo.commit("vpc only");
    assert_eq!(selected(&changes(&repo, &[])), pairs(&[("dev/vpc", "modified")]));
    assert_eq!(
        selected(&changes(&repo, &["--with-dependents"])),
        pairs(&[("dev/vpc", "modified"), ("dev/db", "dependent"), ("dev/app", "dependent")])
    );

    repo.remove("dev/db");
    repo.remove("dev/app");
    repo.commit("delete db and app");
    assert_eq!(
        selected(&changes(&repo, &[])),
        pairs(&[("dev/app", "deleted"), ("dev/db", "deleted")]),
        "deleted units destroy in reverse dependency order"
    );
}

fn changes_error(repo_dir: &std::path::Path, base: &str, head: &str) -> String {
    let output = deploy_runner()
        .args(["changes", "--format", "json", &format!("--base={base}"), &format!("--head={head}"), "--repo"])
        .arg(repo_dir)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&output.stdout));
    assert!(output.stdout.is_empty());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn errors_exit_2_with_a_clear_message() {
    let not_repo = tempfile::tempdir().expect("tempdir");
    assert!(changes_error(not_repo.path(), "HEAD~1", "HEAD").contains("not a git repository"));

    let repo = live_repo();
    let err = changes_error(repo.path(), "no-such-branch", "HEAD");
    assert!(err.contains("unknown revision \"no-such-branch\""), "{err}");
    let err = changes_error(repo.path(), "--output=/tmp/x", "HEAD");
    assert!(err.contains("unknown revision"), "{err}");

    // A unit in an account missing from accounts.json is named.
    repo.write("sandbox/us-east-1/x/terragrunt.hcl", "# new\n");
    repo.commit("sandbox");
    let err = changes_error(repo.path(), "HEAD~1", "HEAD");
    assert!(err.contains("sandbox/us-east-1/x") && err.contains("accounts.json"), "{err}");

    // A dependency cycle is an error naming the cycle.
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"deploy_order": 1}}"#);
    repo.write("dev/a/terragrunt.hcl", "dependency \"b\" {\n  config_path = \"../b\"\n}\n");
    repo.write("dev/b/terragrunt.hcl", "dependency \"a\" {\n  config_path = \"../a\"\n}\n");
    repo.commit("base");
    repo.append("dev/a/terragrunt.hcl", "# x\n");
    repo.commit("touch");
    let err = changes_error(repo.path(), "HEAD~1", "HEAD");
    assert!(err.contains("dependency cycle") && err.contains("dev/a -> dev/b -> dev/a"), "{err}");
}

#[test]
fn shallow_clone_missing_the_base_says_so() {
    let origin = live_repo();
    origin.append("root.hcl", "# 2\n");
    origin.commit("second");
    let clone = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", origin.path().display());
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(clone.path().join("c"))
        .status()
        .expect("clone");
    assert!(status.success());
    let err = changes_error(&clone.path().join("c"), "HEAD~1", "HEAD");
    assert!(err.contains("shallow clone"), "{err}");
}

#[test]
fn hostile_and_broken_configs_fail_closed_with_warnings() {
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"deploy_order": 1}}"#);
    repo.write("dev/env.hcl", "locals { env = \"dev\" }\n");
    repo.write("_envcommon/app.hcl", "locals { x = 1 }\n");
    repo.write(
        "dev/ok/terragrunt.hcl",
        "locals { env = read_terragrunt_config(find_in_parent_folders(\"env.hcl\")) }\n",
    );
    // Syntax error: can't tell what it reads, so any change outside other units selects it.
    repo.write("dev/broken/terragrunt.hcl", "locals {\n  x = \n");
    // run_cmd feeding a path: never executed; the known prefix limits the blast radius.
    repo.write(
        "dev/cmd/terragrunt.hcl",
        "locals {\n  f = run_cmd(\"sh\", \"-c\", \"touch /tmp/deploy-runner-pwned; echo x\")\n  y = file(\"data/${local.f}\")\n}\n",
    );
    // A path escaping the repo is never read.
    repo.write("dev/escape/terragrunt.hcl", "locals { p = file(\"../../../../etc/passwd\") }\n");
    // Non-UTF-8 and huge files.
    std::fs::create_dir_all(repo.path().join("dev/latin1")).expect("mkdir");
    std::fs::write(repo.path().join("dev/latin1/terragrunt.hcl"), b"locals { x = \"caf\xe9\" }\n").expect("write");
    repo.write("dev/big/terragrunt.hcl", "locals { data = file(\"huge.txt\") }\n");
    repo.write("dev/big/huge.txt", &"x".repeat(5 * 1024 * 1024));
    // Symlink loop.
    std::os::unix::fs::symlink("loop-b", repo.path().join("dev/loop-a")).expect("symlink");
    std::os::unix::fs::symlink("loop-a", repo.path().join("dev/loop-b")).expect("symlink");
    repo.write("dev/looper/terragrunt.hcl", "locals { x = file(\"../loop-a\") }\n");
    repo.commit("base");

    repo.append("_envcommon/app.hcl", "# shared change\n");
    repo.write("dev/cmd/data/x", "new\n");
    repo.commit("change");
    let report = changes(&repo, &[]);
    assert!(!std::path::Path::new("/tmp/deploy-runner-pwned").exists(), "run_cmd must never run");
    let units = selected(&report);
    assert!(units.contains(&("dev/broken".to_owned(), "affected".to_owned())), "{units:?}");
    assert!(units.contains(&("dev/latin1".to_owned(), "affected".to_owned())), "{units:?}");
    assert!(units.contains(&("dev/cmd".to_owned(), "modified".to_owned())), "{units:?}");
    assert!(!units.iter().any(|(p, _)| p == "dev/ok" || p == "dev/escape" || p == "dev/big"), "{units:?}");
    let broken = report["units"].as_array().expect("units").iter().find(|u| u["path"] == "dev/broken").expect("broken");
    assert!(broken["reasons"].as_array().expect("reasons").contains(&Value::from("unresolved")));
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("dev/broken/terragrunt.hcl: cannot be parsed"), "{warnings}");
    assert!(warnings.contains("not valid UTF-8"), "{warnings}");
    assert!(
        warnings.contains(r#"dev/escape: path \"../../../../etc/passwd\" points outside the repository"#),
        "{warnings}"
    );
    assert!(warnings.contains("too many levels of symbolic links"), "{warnings}");
    assert!(warnings.contains("dev/big/huge.txt is 5242880 bytes"), "{warnings}");
}

#[test]
fn unresolved_prefix_limits_what_can_select_a_unit() {
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"deploy_order": 1}}"#);
    repo.write(
        "dev/app/terragrunt.hcl",
        "locals {\n  files = split(\"\\n\", run_cmd(\"ls\", \"../../shared\"))\n  marked = [for f in local.files : mark_as_read(\"../../shared/${f}\")]\n}\n",
    );
    repo.write("shared/a.txt", "a\n");
    repo.write("other/b.txt", "b\n");
    repo.commit("base");
    repo.append("other/b.txt", "more\n");
    repo.commit("other");
    assert!(selected(&changes(&repo, &[])).is_empty(), "other/ is outside the known prefix shared/");
    repo.append("shared/a.txt", "more\n");
    repo.commit("shared");
    let report = changes(&repo, &[]);
    assert_eq!(selected(&report), pairs(&[("dev/app", "affected")]));
    assert_eq!(report["units"][0]["reasons"], serde_json::json!(["shared/a.txt", "unresolved"]));
    assert!(report["warnings"].to_string().contains("dev/app"));
}

#[test]
fn text_format_groups_by_account() {
    let repo = live_repo();
    repo.append("_envcommon/mysql.hcl", "\n# x\n");
    repo.commit("mysql");
    let output = deploy_runner()
        .args(["changes", "--format", "text", "--base", "HEAD~1", "--repo"])
        .arg(repo.path())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("non-prod (deploy order 1)") && text.contains("prod (deploy order 2)"), "{text}");
    assert!(text.contains("affected   non-prod/us-east-1/qa/mysql"), "{text}");
}

#[test]
fn sibling_units_sharing_an_include_keep_their_own_reads() {
    // Included files are evaluated once per directory and reused by sibling units, unless the evaluation looked
    // at the unit's own directory: here it does, so each unit must keep its own read.
    let repo = TestRepo::new();
    repo.write("accounts.json", r#"{"dev": {"deploy_order": 1}}"#);
    repo.write(
        "_envcommon/app.hcl",
        "locals {\n  settings = file(\"${get_terragrunt_dir()}/../${basename(get_terragrunt_dir())}.txt\")\n  region = read_terragrunt_config(find_in_parent_folders(\"region.hcl\"))\n}\n",
    );
    repo.write("dev/region.hcl", "locals { r = 1 }\n");
    for unit in ["a", "b", "c"] {
        repo.write(&format!("dev/{unit}.txt"), "x\n");
        repo.write(
            &format!("dev/{unit}/terragrunt.hcl"),
            "include \"app\" {\n  path = \"${get_repo_root()}/_envcommon/app.hcl\"\n}\n",
        );
    }
    repo.commit("base");
    repo.append("dev/b.txt", "y\n");
    repo.commit("b settings");
    assert_eq!(selected(&changes(&repo, &[])), pairs(&[("dev/b", "affected")]));
    repo.append("dev/region.hcl", "# r\n");
    repo.commit("region");
    assert_eq!(selected(&changes(&repo, &[])).len(), 3);
}

#[test]
fn demo_scenario_on_the_example_repo() {
    // The same head commit as scripts/demo-changes.sh (the demo shows this in text form).
    let repo = TestRepo::new();
    copy_dir(&repo_file("examples/infrastructure-live"), repo.path());
    repo.commit("base");
    let edit = |path: &str, from: &str, to: &str| {
        let full = repo.path().join(path);
        let text = std::fs::read_to_string(&full).expect("read");
        assert!(text.contains(from), "{path} holds {from:?}");
        std::fs::write(full, text.replace(from, to)).expect("write");
    };
    edit("_envcommon/app.hcl", "v1.4.0", "v1.5.0");
    edit("dev/us-east-1/dev/network/main.tf", "default = {}", "default = { tier = \"standard\" }");
    repo.remove("dev/us-east-1/dev/queue");
    edit("_envcommon/mgmt/ecs-deploy-runner.hcl", "v0.1.0", "v0.2.0");
    repo.append("shared/us-east-1/mgmt/ecs-deploy-runner/main.tf", "# touched\n");
    repo.commit("head");
    let report = changes(&repo, &[]);
    assert_eq!(
        selected(&report),
        pairs(&[
            ("dev/us-east-1/dev/network", "modified"),
            ("dev/us-east-1/dev/app", "affected"),
            ("dev/us-east-1/dev/queue", "deleted"),
            ("stage/us-east-1/stage/app", "affected"),
            ("prod/us-east-1/prod/app", "affected"),
        ])
    );
    assert_eq!(
        report["skipped"],
        serde_json::json!([{"path": "shared/us-east-1/mgmt/ecs-deploy-runner", "reason": "self-update-guard"}])
    );
    assert_eq!(report["warnings"], serde_json::json!([]));
    let orders: Vec<u64> =
        report["units"].as_array().expect("units").iter().map(|u| u["deploy_order"].as_u64().expect("n")).collect();
    assert_eq!(orders, [1, 1, 1, 2, 3]);
}
