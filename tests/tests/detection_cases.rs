//! Detection matching Terragrunt and Terraform on real repository shapes (issue 15): each case is a git history,
//! with its negative twin (an unrelated edit selects nothing).

mod common;

use common::*;
use serde_json::Value;

const ACCOUNTS: &str = r#"{"dev": {"deploy_order": 1}, "prod": {"deploy_order": 2}}"#;

/// A repo with `files` committed as the base, then `edit` applied and committed as the head.
fn history(files: &[(&str, &str)], edit: impl FnOnce(&TestRepo)) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("accounts.json", ACCOUNTS);
    for (path, text) in files {
        repo.write(path, text);
    }
    repo.commit("base");
    edit(&repo);
    repo.commit("head");
    repo
}

fn paths(report: &Value) -> Vec<String> {
    selected(report).into_iter().map(|(p, _)| p).collect()
}

fn units_reading(repo: &TestRepo, file: &str) -> Vec<String> {
    let output = deploy_runner()
        .args(["units", "--format", "json", "--repo"])
        .arg(repo.path())
        .args(["--reading", file])
        .output()
        .expect("run units");
    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let json = stdout_json(&output);
    json["units"].as_array().expect("units").iter().map(|u| u.as_str().unwrap_or("").to_owned()).collect()
}

const UNIT_WITH_MODULE: &str = "module \"app\" {\n  source = \"../../modules/app\"\n}\n";

fn module_repo(edit: impl FnOnce(&TestRepo)) -> TestRepo {
    history(
        &[
            ("dev/app/terragrunt.hcl", "# plain terraform in the unit\n"),
            ("dev/app/main.tf", UNIT_WITH_MODULE),
            ("modules/app/main.tf", "module \"db\" {\n  source = \"../db\"\n}\n"),
            ("modules/db/main.tf", "resource \"terraform_data\" \"db\" {}\n"),
            ("modules/unused/main.tf", "resource \"terraform_data\" \"x\" {}\n"),
            ("dev/sourced/terragrunt.hcl", "terraform {\n  source = \"../../stacks//web\"\n}\n"),
            ("stacks/web/main.tf", "module \"db\" {\n  source = \"../../modules/db\"\n}\n"),
            ("dev/other/terragrunt.hcl", "terraform {\n  source = \"git::https://example.com/x.git\"\n}\n"),
        ],
        edit,
    )
}

#[test]
fn module_calls_in_terraform_code_are_followed_recursively() {
    // A module the unit calls, and the module that module calls: both select the unit (and the unit whose
    // terragrunt source's code calls it too).
    let report = changes(&module_repo(|r| r.append("modules/db/main.tf", "# resized\n")), &[]);
    assert_eq!(
        selected(&report),
        [("dev/app".into(), "affected".into()), ("dev/sourced".into(), "affected".into())],
        "{report}"
    );
    assert_eq!(paths(&changes(&module_repo(|r| r.append("modules/app/main.tf", "# x\n")), &[])), ["dev/app"]);
    // The negative twin: a module nobody calls.
    assert!(paths(&changes(&module_repo(|r| r.append("modules/unused/main.tf", "# x\n")), &[])).is_empty());
    assert_eq!(units_reading(&module_repo(|_| {}), "modules/db/main.tf"), ["dev/app", "dev/sourced"]);
}

#[test]
fn find_in_parent_folders_finds_folders() {
    let files = [
        ("dev/parent/terragrunt.hcl", "inputs = {\n  shared = true\n}\n"),
        ("dev/parent/child/app/terragrunt.hcl", "include {\n  path = \"${find_in_parent_folders(\"parent\")}/terragrunt.hcl\"\n}\n\nterraform {\n  source = \"git::https://example.com/x.git\"\n}\n"),
        ("dev/lone/terragrunt.hcl", "terraform {\n  source = \"git::https://example.com/x.git\"\n}\n"),
    ];
    let report = changes(&history(&files, |r| r.append("dev/parent/terragrunt.hcl", "# x\n")), &[]);
    // The parent folder's config is only included (no Terraform of its own): its includer is what changes.
    assert_eq!(selected(&report), [("dev/parent/child/app".into(), "affected".into())], "{report}");
    assert!(paths(&changes(&history(&files, |r| r.append("dev/lone/terragrunt.hcl", "# x\n")), &[])) == ["dev/lone"]);
}

#[test]
fn var_files_are_read_whether_or_not_they_exist() {
    let unit = "terraform {\n  source = \"git::https://example.com/x.git\"\n  extra_arguments \"vars\" {\n    commands = [\"plan\", \"apply\"]\n    required_var_files = [\"${get_terragrunt_dir()}/../common.tfvars\"]\n    optional_var_files = [\"${get_terragrunt_dir()}/extra.tfvars\", \"${find_in_parent_folders(\"account.tfvars\", \"ignore\")}\"]\n  }\n}\n";
    let files = [
        ("dev/common.tfvars", "size = 1\n"),
        ("dev/app/terragrunt.hcl", unit),
        ("dev/other/terragrunt.hcl", "# nothing\n"),
    ];
    for (name, edit) in [
        (
            "edit a required file",
            Box::new(|r: &TestRepo| r.append("dev/common.tfvars", "x = 2\n")) as Box<dyn FnOnce(&TestRepo)>,
        ),
        ("add an optional file", Box::new(|r: &TestRepo| r.write("dev/app/extra.tfvars", "y = 1\n"))),
        ("delete the required file", Box::new(|r: &TestRepo| r.remove("dev/common.tfvars"))),
    ] {
        let report = changes(&history(&files, edit), &[]);
        assert_eq!(paths(&report), ["dev/app"], "{name}: {report}");
    }
    // units --reading lists the unit for a var file that doesn't exist yet.
    assert_eq!(units_reading(&history(&files, |_| {}), "dev/app/extra.tfvars"), ["dev/app"]);
    assert!(paths(&changes(&history(&files, |r| r.write("dev/notes.tfvars", "z = 1\n")), &[])).is_empty());
}

#[test]
fn duplicate_object_keys_parse_as_hcl_does() {
    let unit = "locals {\n  tags = { team = \"a\", team = \"b\" }\n}\n\ninputs = {\n  config = file(\"config.yaml\")\n  name   = \"x\"\n  name   = \"y\"\n}\n";
    let files =
        [("dev/app/terragrunt.hcl", unit), ("dev/app/config.yaml", "a: 1\n"), ("dev/other/terragrunt.hcl", "# x\n")];
    let report = changes(&history(&files, |r| r.append("dev/app/config.yaml", "b: 2\n")), &[]);
    assert_eq!(selected(&report), [("dev/app".into(), "modified".into())]);
    assert!(report["warnings"].as_array().expect("warnings").is_empty(), "parsed, no warning: {report}");
    // The unit is understood (its reads known): an unrelated edit elsewhere doesn't select it as unresolved.
    let report = changes(&history(&files, |r| r.write("docs/readme.txt", "x\n")), &[]);
    assert!(paths(&report).is_empty(), "{report}");
}

#[test]
fn a_unit_that_cannot_be_evaluated_is_never_ordered_before_its_dependencies() {
    let broken_literal = "dependency \"vpc\" {\n  config_path = \"../vpc\"\n}\n\ninputs = {\n  broken = \n";
    let broken_opaque =
        "locals {\n  x = \"../vpc\"\n}\ndependency \"vpc\" {\n  config_path = local.x\n}\n\ninputs = {\n  broken = \n";
    let vpc = "terraform {\n  source = \"git::https://example.com/vpc.git\"\n}\n";
    for (name, broken) in [("literal", broken_literal), ("opaque", broken_opaque)] {
        // zz-... sorts last by path, aa-... first: the order must come from dependencies, not names.
        let files = [
            ("dev/zz-vpc/terragrunt.hcl", vpc),
            ("dev/aa-app/terragrunt.hcl", &broken.replace("../vpc", "../zz-vpc")[..]),
        ];
        let report = changes(
            &history(&files, |r| {
                r.append("dev/zz-vpc/terragrunt.hcl", "# x\n");
                r.append("dev/aa-app/terragrunt.hcl", "# x\n");
            }),
            &[],
        );
        assert_eq!(paths(&report), ["dev/zz-vpc", "dev/aa-app"], "{name}: applied after its dependency: {report}");
        // Deleted together: destroyed before its dependency.
        let report = changes(
            &history(&files, |r| {
                r.remove("dev/zz-vpc");
                r.remove("dev/aa-app");
            }),
            &[],
        );
        assert_eq!(paths(&report), ["dev/aa-app", "dev/zz-vpc"], "{name}: destroyed before its dependency: {report}");
        if name == "opaque" {
            let warnings = report["warnings"].to_string();
            assert!(warnings.contains("its dependencies can't all be worked out"), "{warnings}");
        }
    }
}

#[test]
fn included_parents_are_configuration_not_units() {
    // A legacy root terragrunt.hcl included by every unit, with no Terraform of its own.
    let files = [
        ("dev/terragrunt.hcl", "remote_state {\n  backend = \"s3\"\n}\n"),
        ("dev/app/terragrunt.hcl", "include {\n  path = find_in_parent_folders()\n}\n\nterraform {\n  source = \"git::https://example.com/x.git\"\n}\n"),
        ("dev/db/terragrunt.hcl", "include {\n  path = find_in_parent_folders()\n}\n\nterraform {\n  source = \"git::https://example.com/y.git\"\n}\n"),
        ("prod/standalone/terragrunt.hcl", "terraform {\n  source = \"git::https://example.com/z.git\"\n}\n"),
    ];
    let report = changes(&history(&files, |r| r.append("dev/terragrunt.hcl", "# x\n")), &[]);
    assert_eq!(
        selected(&report),
        [("dev/app".into(), "affected".into()), ("dev/db".into(), "affected".into())],
        "{report}"
    );
    let all = deploy_runner()
        .args(["units", "--format", "json", "--repo"])
        .arg(history(&files, |_| {}).path())
        .output()
        .expect("units");
    let listed = stdout_json(&all)["units"].to_string();
    assert!(
        !listed.contains("\"dev\"") && listed.contains("prod/standalone"),
        "a config nobody includes stays a unit: {listed}"
    );
    // Deleting the parent together with its includers destroys the units, never the parent.
    let report = changes(&history(&files, |r| r.remove("dev")), &[]);
    assert_eq!(paths(&report), ["dev/app", "dev/db"], "{report}");
}

#[test]
fn tool_version_pins_apply_to_every_unit_below() {
    let unit = "terraform {\n  source = \"git::https://example.com/x.git\"\n}\n";
    let files = [("dev/a/terragrunt.hcl", unit), ("dev/b/terragrunt.hcl", unit), ("prod/c/terragrunt.hcl", unit)];
    for pin in [".terraform-version", ".terragrunt-version", ".opentofu-version", ".tool-versions"] {
        let report = changes(&history(&files, |r| r.write(&format!("dev/{pin}"), "1.9.0\n")), &[]);
        assert_eq!(paths(&report), ["dev/a", "dev/b"], "{pin}: {report}");
    }
    let report = changes(&history(&files, |r| r.write(".terraform-version", "1.9.0\n")), &[]);
    assert_eq!(paths(&report), ["dev/a", "dev/b", "prod/c"]);
    assert_eq!(units_reading(&history(&files, |_| {}), "prod/.tool-versions"), ["prod/c"]);
    assert!(paths(&changes(&history(&files, |r| r.write("dev/.editorconfig", "x\n")), &[])).is_empty());
}

#[test]
fn dependencies_declared_in_included_files_count() {
    let envcommon = "dependency \"vpc\" {\n  config_path = \"../vpc\"\n}\n";
    let app = "include \"envcommon\" {\n  path = \"${get_repo_root()}/_envcommon/app.hcl\"\n}\n\nterraform {\n  source = \"git::https://example.com/app.git\"\n}\n";
    let vpc = "terraform {\n  source = \"git::https://example.com/vpc.git\"\n}\n";
    let files = [
        ("_envcommon/app.hcl", envcommon),
        ("dev/app/terragrunt.hcl", app),
        ("dev/vpc/terragrunt.hcl", vpc),
        ("dev/other/terragrunt.hcl", vpc),
    ];
    let report = changes(&history(&files, |r| r.append("dev/vpc/terragrunt.hcl", "# x\n")), &["--with-dependents"]);
    assert_eq!(selected(&report), [("dev/vpc".into(), "modified".into()), ("dev/app".into(), "dependent".into())]);
    let report = changes(&history(&files, |r| r.append("dev/other/terragrunt.hcl", "# x\n")), &["--with-dependents"]);
    assert_eq!(paths(&report), ["dev/other"], "the negative twin");
    // What each unit waits for in its wave: app for vpc (declared in the included file); vpc and other for nothing.
    let report = changes(
        &history(&files, |r| {
            r.append("dev/vpc/terragrunt.hcl", "# x\n");
            r.append("dev/other/terragrunt.hcl", "# x\n");
        }),
        &["--with-dependents"],
    );
    let waits: Vec<(String, Value)> = report["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| (u["path"].as_str().expect("path").to_owned(), u.get("depends_on").cloned().unwrap_or(Value::Null)))
        .collect();
    assert_eq!(
        waits,
        [
            ("dev/other".to_owned(), Value::Null),
            ("dev/vpc".to_owned(), Value::Null),
            ("dev/app".to_owned(), serde_json::json!(["dev/vpc"])),
        ],
        "{report}"
    );
}

const STACK: &str = "unit \"db\" {\n  source = \"../../units/db\"\n  path   = \"db\"\n}\n\nunit \"svc\" {\n  source = \"../../units/svc\"\n  path   = \"svc\"\n  values = {\n    db_path = \"../db\"\n  }\n}\n";

fn stack_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("root.hcl", "locals {}\n"),
        ("units/db/terragrunt.hcl", "include \"root\" {\n  path = find_in_parent_folders(\"root.hcl\")\n}\n\nterraform {\n  source = \"git::https://example.com/db.git\"\n}\n"),
        ("units/svc/terragrunt.hcl", "dependency \"db\" {\n  config_path = values.db_path\n}\n\nterraform {\n  source = \"git::https://example.com/svc.git\"\n}\n"),
        ("dev/app/terragrunt.stack.hcl", STACK),
        ("prod/app/terragrunt.stack.hcl", STACK),
        ("dev/plain/terragrunt.hcl", "terraform {\n  source = \"git::https://example.com/x.git\"\n}\n"),
    ]
}

#[test]
fn stacks_list_the_units_they_generate() {
    let files = stack_files();
    // The stack file: its units, in dependency order (db before the service that depends on it).
    let report = changes(&history(&files, |r| r.append("dev/app/terragrunt.stack.hcl", "# x\n")), &[]);
    assert_eq!(
        selected(&report),
        [
            ("dev/app/.terragrunt-stack/db".into(), "affected".into()),
            ("dev/app/.terragrunt-stack/svc".into(), "affected".into()),
        ],
        "{report}"
    );
    assert_eq!(report["units"][0]["stack"], "dev/app/terragrunt.stack.hcl");
    // A catalog unit's config: every stack unit made from it, in every account, in deploy order.
    let report = changes(&history(&files, |r| r.append("units/db/terragrunt.hcl", "# x\n")), &[]);
    assert_eq!(paths(&report), ["dev/app/.terragrunt-stack/db", "prod/app/.terragrunt-stack/db"], "{report}");
    // A file the generated unit reads where it is generated (root.hcl, found from .terragrunt-stack/db).
    let report = changes(&history(&files, |r| r.append("root.hcl", "# x\n")), &[]);
    assert_eq!(paths(&report), ["dev/app/.terragrunt-stack/db", "prod/app/.terragrunt-stack/db"], "{report}");
    // A unit block added, and one removed.
    let report = changes(
        &history(&files, |r| {
            r.append(
                "dev/app/terragrunt.stack.hcl",
                "unit \"extra\" {\n  source = \"../../units/db\"\n  path   = \"extra\"\n}\n",
            );
            r.write(
                "prod/app/terragrunt.stack.hcl",
                "unit \"db\" {\n  source = \"../../units/db\"\n  path   = \"db\"\n}\n",
            );
        }),
        &[],
    );
    let got = selected(&report);
    assert!(got.contains(&("dev/app/.terragrunt-stack/extra".into(), "added".into())), "{report}");
    assert!(got.contains(&("prod/app/.terragrunt-stack/svc".into(), "deleted".into())), "{report}");
    // The negative twin, and the catalog folders are not units of their own.
    assert!(paths(&changes(&history(&files, |r| r.write("docs/x.md", "x\n")), &[])).is_empty());
    let listed = units_reading(&history(&files, |_| {}), "units/svc/terragrunt.hcl");
    assert_eq!(listed, ["dev/app/.terragrunt-stack/svc", "prod/app/.terragrunt-stack/svc"]);
}

#[test]
fn a_stack_that_cannot_be_evaluated_is_reported_not_guessed() {
    let mut files = stack_files();
    files.push((
        "dev/broken/terragrunt.stack.hcl",
        "unit \"x\" {\n  source = \"../../units/db\"\n  path   = local.nope\n}\n",
    ));
    let repo = history(&files, |r| r.append("dev/broken/terragrunt.stack.hcl", "# x\n"));
    let output = deploy_runner()
        .args(["changes", "--format", "json", "--base", "HEAD~1", "--head", "HEAD", "--repo"])
        .arg(repo.path())
        .output()
        .expect("run changes");
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stderr).contains("dev/broken/terragrunt.stack.hcl"));
}

#[test]
fn the_stacks_example_repository() {
    // gruntwork's terragrunt-infrastructure-live-stacks-example: stacks of units from a remote catalog.
    let accounts = r#"{"non-prod": {"deploy_order": 1}, "prod": {"deploy_order": 2}}"#;
    let repo = TestRepo::from_corpus("terragrunt-infrastructure-live-stacks-example", &[("accounts.json", accounts)]);
    repo.append("non-prod/us-east-1/stateful-lambda-service/terragrunt.stack.hcl", "\n# bigger\n");
    repo.commit("non-prod stack");
    let report = changes(&repo, &[]);
    let units = report["units"].as_array().expect("units");
    let stack = "non-prod/us-east-1/stateful-lambda-service/terragrunt.stack.hcl";
    // The stack's own three units read the edited stack file (their `values` come from it).
    let direct: Vec<&str> = units
        .iter()
        .filter(|u| u["reasons"].as_array().is_some_and(|r| r.len() == 1 && r[0] == stack))
        .filter_map(|u| u["path"].as_str())
        .collect();
    assert_eq!(direct.len(), 3, "{report}");
    assert!(direct.iter().all(|u| u.starts_with("non-prod/us-east-1/stateful-lambda-service/.terragrunt-stack/")));
    // The catalog's units are remote: what their terragrunt.hcl reads is unknown, so prod's copies fail closed
    // (selected, after non-prod, saying why) rather than being silently left out.
    assert_eq!(units.len(), 6, "{report}");
    for unit in &units[3..] {
        assert_eq!(unit["account"], "prod", "{report}");
        assert!(unit["reasons"].to_string().contains("unresolved"), "{report}");
    }
    assert!(report["warnings"].to_string().contains("remote source"), "said why it fails closed: {report}");
    // Shared configuration reaches both accounts' stacks, non-prod first.
    repo.append("root.hcl", "\n# tweak\n");
    repo.commit("root");
    let units = paths(&changes(&repo, &[]));
    assert_eq!(units.len(), 6, "{units:?}");
    assert!(units[..3].iter().all(|u| u.starts_with("non-prod/")) && units[3..].iter().all(|u| u.starts_with("prod/")));
}
