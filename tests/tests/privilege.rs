//! The privilege boundary, attacked the way a branch author or the holder of CI's credential would (issue 12).
//!
//! Real git remotes, real terraform (and real kernels: the task runs as it does on Fargate, as the container's
//! first process and a non-root user, when the test runs as root), and canary secrets that must never be read,
//! printed or left on disk. Each attack has a control that proves the probe itself works.

mod common;

use common::remote::Remote;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const READ_CANARY: &str = "ghr_READCANARY0d3pl0yrunn3r";
const PUSH_CANARY: &str = "ghp_PUSHCANARY0d3pl0yrunn3r";
const KEY_CANARY: &str = "KEYCANARY0d3pl0yrunn3rb3BlbnNzaC1rZXk";
const CONTROL_CANARY: &str = "CONTROLCANARY0d3pl0yrunn3r";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The command as ECS runs the container: the program is the first process of its own PID namespace (no ECS
/// init), and it and everything it starts share one uid without `CAP_SYS_PTRACE` (a container's user, root or
/// not, has none). Here that is uid 0 with every capability dropped, which also keeps the machine's toolchain (under
/// /root) reachable. Setting it up needs root; a test run without root is unprivileged already and runs the
/// command as it is (non-dumpability protects the task either way).
fn as_deployed(program: &Path, args: &[&str]) -> Command {
    if !is_root() {
        let mut command = Command::new(program);
        command.args(args);
        return command;
    }
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(program)
        .args(args);
    command
}

/// A scratch folder (the task's work dir, TMPDIR or HOME).
fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Every canary a run must never expose, raw or base64-encoded.
fn assert_no_secret(out: &str, where_: &str) {
    for canary in [READ_CANARY, PUSH_CANARY, KEY_CANARY] {
        assert!(!out.contains(canary), "{canary} leaked into {where_}");
    }
}

/// The base64 strings quoted in terraform's plan output, decoded.
fn decoded_strings(out: &str) -> Vec<String> {
    let quoted = regex::Regex::new(r#""([A-Za-z0-9+/]{16,}={0,2})""#).expect("regex");
    quoted.captures_iter(out).filter_map(|c| decode_base64(&c[1])).collect()
}

fn decode_base64(text: &str) -> Option<String> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = alphabet.iter().position(|a| *a == byte)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Terraform code any branch author could push: no provider, no data source, no local-exec. It reads the
/// environment of its ancestors and of PID 1 through `file()`, every file under the scratch folders, and a control
/// process that holds a secret the way the task used to, and prints it all base64-encoded in its outputs.
const PROBE: &str = r#"
variable "control_pid" {
  default = "0"
}

variable "scratch_dirs" {
  type    = list(string)
  default = []
}

locals {
  parent            = split(" ", file("/proc/self/stat"))[3]
  grandparent       = try(split(" ", file("/proc/${local.parent}/stat"))[3], "0")
  great_grandparent = try(split(" ", file("/proc/${local.grandparent}/stat"))[3], "0")
  pids = {
    parent            = local.parent
    grandparent       = local.grandparent
    great_grandparent = local.great_grandparent
    init              = "1"
    control           = var.control_pid
  }
  environ = { for name, pid in local.pids : name => try(base64encode(file("/proc/${pid}/environ")), "DENIED") }
  files = merge([for dir in var.scratch_dirs : {
    for f in fileset(dir, "**") : "${dir}/${f}" => try(base64encode(file("${dir}/${f}")), "DENIED")
    if !strcontains(f, ".git/") && !strcontains(f, ".terraform/")
  }]...)
}

output "environ" {
  value = local.environ
}

output "files" {
  value = local.files
}
"#;

/// The tool as the probe sees it: a wrapper that starts a control process holding a secret (same uid, dumpable,
/// like the task used to be), checks from the shell whether the task's environment and memory can be opened, then
/// runs real terraform.
fn probe_wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("tool");
    executable(
        &path,
        &format!(
            r#"#!/bin/sh
CONTROL_SECRET={CONTROL_CANARY} sleep 60 &
control=$!
export TF_VAR_control_pid=$control
for who in task:$PPID control:$control; do
  name=${{who%%:*}} pid=${{who#*:}}
  if cat /proc/$pid/environ >/dev/null 2>&1; then echo "PROBE $name environ=readable"; else echo "PROBE $name environ=denied"; fi
  if ( exec 3</proc/$pid/mem ) 2>/dev/null; then echo "PROBE $name mem=open"; else echo "PROBE $name mem=denied"; fi
done
'{terraform}' "$@"
rc=$?
kill $control 2>/dev/null
exit $rc
"#,
            terraform = terraform().display()
        ),
    );
    path
}

/// A plan request for the probe unit, on a branch.
fn probe_remote() -> (Remote, Value) {
    let remote = Remote::new();
    remote.work.git(&["checkout", "-q", "-b", "feature/probe"]);
    remote.work.write("dev/us-east-1/dev/probe/main.tf", PROBE);
    remote.push("a branch nobody reviewed", "feature/probe");
    let request = json!({"action": "plan", "actor": "octocat", "repo": remote.url(), "ref": "feature/probe",
                         "path": "dev/us-east-1/dev/probe"});
    (remote, request)
}

/// Checks what the probe saw: the control's secret (so the probe works), and none of ours.
fn assert_probe_saw_nothing(output: &Output, scratch: &[&Path]) {
    let out = text(output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("Changes to Outputs"), "the probe ran: {out}");
    for line in ["PROBE task environ=denied", "PROBE task mem=denied", "PROBE control environ=readable"] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    assert!(out.contains("PROBE control mem=open"), "the mem probe can succeed:\n{out}");
    assert_no_secret(&out, "the output");
    let decoded = decoded_strings(&out);
    assert!(
        decoded.iter().any(|d| d.contains(CONTROL_CANARY)),
        "the probe read the control process's environment (it works):\n{out}"
    );
    for value in &decoded {
        assert_no_secret(value, "a base64 output of the plan");
    }
    assert!(out.contains("= \"DENIED\""), "reads of the task's environment were refused:\n{out}");
    for dir in scratch {
        let grep = Command::new("grep")
            .args(["-r", "-l", "-e", READ_CANARY, "-e", PUSH_CANARY, "-e", KEY_CANARY])
            .arg(dir)
            .output()
            .expect("grep");
        assert!(grep.stdout.is_empty(), "a secret was left on disk: {}", String::from_utf8_lossy(&grep.stdout));
    }
}

#[test]
fn plan_code_cannot_read_any_secret_of_the_task_as_deployed() {
    let (remote, request) = probe_remote();
    let (work, tmp, home, tools) = (scratch_dir(), scratch_dir(), scratch_dir(), scratch_dir());
    let wrapper = probe_wrapper(tools.path());
    let scratch = json!([work.path(), tmp.path(), home.path()]).to_string();
    let task = binary("deploy-runner-task");
    let request = request.to_string();
    let output = as_deployed(&task, &["run", "--request", &request])
        .env("DEPLOY_RUNNER_POLICY", remote.policy())
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": wrapper, "workdir": work.path()}).to_string())
        .env("GITHUB_TOKEN", PUSH_CANARY)
        .env("GITHUB_READ_TOKEN", READ_CANARY)
        .env(
            "DEPLOY_SSH_READ_KEY",
            format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_CANARY}\n-----END OPENSSH PRIVATE KEY-----"),
        )
        .env(
            "DEPLOY_SSH_KNOWN_HOSTS",
            "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        )
        .env("TMPDIR", tmp.path())
        .env("HOME", home.path())
        .env("TF_VAR_scratch_dirs", &scratch)
        .output()
        .expect("run the task");
    assert_probe_saw_nothing(&output, &[work.path(), tmp.path(), home.path()]);
    if is_root() {
        // As the first process, the task is what /proc/1 shows: the ECS-init hole is closed by not having one.
        assert!(text(&output).contains("+ init              = \"DENIED\""), "{}", text(&output));
    }
}

#[test]
fn plan_code_cannot_read_the_callers_token_through_the_local_backend() {
    let (remote, _) = probe_remote();
    let (work, tmp, home, tools) = (scratch_dir(), scratch_dir(), scratch_dir(), scratch_dir());
    let wrapper = probe_wrapper(tools.path());
    let policy = tools.path().join("policy.json");
    std::fs::write(&policy, remote.policy()).expect("policy");
    let scratch = json!([work.path(), tmp.path(), home.path()]).to_string();
    let cli = binary("deploy-runner");
    let url = remote.url();
    let state = work.path().join("state");
    let args = [
        "plan",
        "--local",
        "--config",
        policy.to_str().expect("utf-8"),
        "--state-dir",
        state.to_str().expect("utf-8"),
        "--repo-url",
        &url,
        "--ref",
        "feature/probe",
        "--path",
        "dev/us-east-1/dev/probe",
    ];
    // The caller's token sits in the CLI's environment, two ancestors above the tool.
    let output = as_deployed(&cli, &args)
        .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": wrapper, "workdir": work.path()}).to_string())
        .env("DEPLOY_RUNNER_TASK_BIN", binary("deploy-runner-task"))
        .env("GITHUB_TOKEN", PUSH_CANARY)
        .env("TMPDIR", tmp.path())
        .env("HOME", home.path())
        .env("TF_VAR_scratch_dirs", &scratch)
        .env_remove("GITHUB_ACTOR")
        .output()
        .expect("run the CLI");
    assert_probe_saw_nothing(&output, &[work.path(), tmp.path(), home.path()]);
    assert!(text(&output).contains("+ great_grandparent = \"DENIED\""), "{}", text(&output));
}

/// A task run against `remote` with a canary token, as the other end-to-end tests run it.
fn run_task(remote: &Remote, request: &Value, config: Value) -> Output {
    let mut config = config;
    if config.get("tool_path").is_none() {
        config["tool_path"] = json!(terraform());
    }
    let output = Command::new(binary("deploy-runner-task"))
        .args(["run", "--request", &request.to_string()])
        .env("DEPLOY_RUNNER_POLICY", remote.policy())
        .env("DEPLOY_RUNNER_TASK_CONFIG", config.to_string())
        .env("GITHUB_TOKEN", PUSH_CANARY)
        .env("GITHUB_READ_TOKEN", READ_CANARY)
        .output()
        .expect("run deploy-runner-task");
    assert_no_secret(&text(&output), "the task's output");
    output
}

fn unit_request(remote: &Remote, action: &str, git_ref: &str, path: &str) -> Value {
    json!({"action": action, "actor": "octocat", "repo": remote.url(), "ref": git_ref, "path": path})
}

/// Asserts a refusal before any tool ran: exit 2, the reason in the output, no line from the tool.
fn assert_refused(output: &Output, needle: &str) {
    let out = text(output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    assert!(!out.contains("terraform init"), "no tool ran:\n{out}");
}

#[test]
fn destroy_only_what_is_gone() {
    let remote = Remote::new();
    let head = remote.work.git(&["rev-parse", "HEAD"]);
    let live = "dev/us-east-1/dev/queue";
    // source_ref = ref: the ancestry check passes, but the unit is alive at ref.
    for action in ["destroy", "plan-destroy"] {
        let mut request = unit_request(&remote, action, &head, live);
        request["source_ref"] = json!(head);
        assert_refused(&run_task(&remote, &request, json!({})), "is still a unit at");
    }
    // A unit that never existed at source_ref: nothing to destroy.
    let mut request = unit_request(&remote, "destroy", &head, "dev/us-east-1/dev/never");
    request["source_ref"] = json!(head);
    assert_refused(&run_task(&remote, &request, json!({})), "is not a unit at source_ref");
    // A rollout unit marked deleted that is still there: that unit fails before any tool runs, nothing else does.
    let rollout = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head, "mode": "apply",
        "units": [{"path": live, "change": "deleted", "source_ref": head},
                  {"path": "dev/us-east-1/dev/network", "change": "modified"}]});
    let output = run_task(&remote, &rollout, json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("is still a unit at"), "{out}");
    assert!(!out.contains(&format!("[{live}]")), "no destroy ran: {out}");
    assert!(!out.contains("Destroy complete"), "{out}");
    // A real deletion still works.
    remote.work.remove(live);
    let deleted_at = remote.push("delete the queue", "main");
    let mut request = unit_request(&remote, "destroy", &deleted_at, live);
    request["source_ref"] = json!(head);
    let output = run_task(&remote, &request, json!({}));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("Destroy complete!"), "{}", text(&output));
}

#[test]
fn links_never_lead_a_request_to_another_unit_or_outside_the_clone() {
    let remote = Remote::new();
    let link = |path: &str, target: &str| {
        let full = remote.work.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, full).expect("symlink");
    };
    // A dev unit that is a link to a prod unit; a folder above a unit that is a link into prod; a config file that
    // is a link to prod's; the runner's own config behind an allowed path.
    link("dev/us-east-1/dev/alias", "../../../prod/us-east-1/prod/app");
    link("dev/us-east-1/mirror", "../../prod/us-east-1/prod");
    remote.work.write("dev/us-east-1/dev/linked/README.md", "a unit whose code is prod's\n");
    link("dev/us-east-1/dev/linked/main.tf", "../../../../prod/us-east-1/prod/app/main.tf");
    remote.work.write("dev/us-east-1/dev/tagged/README.md", "x\n");
    link("dev/us-east-1/dev/tagged/terragrunt.hcl", "../../../../_envcommon/mgmt/ecs-deploy-runner.hcl");
    // A module call out of the clone, directly and through a link; and one that stays inside (the control).
    remote.work.write(
        "dev/us-east-1/dev/escape/main.tf",
        "module \"x\" {\n  source = \"../../../../../../../../../tmp\"\n}\n",
    );
    link("dev/us-east-1/dev/via-link/outside", "/tmp");
    remote.work.write("dev/us-east-1/dev/via-link/main.tf", "module \"x\" {\n  source = \"./outside\"\n}\n");
    remote.work.write("modules/ok/main.tf", "output \"ok\" {\n  value = \"inside\"\n}\n");
    remote
        .work
        .write("dev/us-east-1/dev/inside/main.tf", "module \"ok\" {\n  source = \"../../../../modules/ok\"\n}\n");
    let head = remote.push("links", "main");

    let cases = [
        ("apply", "dev/us-east-1/dev/alias", "dev/us-east-1/dev/alias is a symlink"),
        ("apply", "dev/us-east-1/mirror/app", "dev/us-east-1/mirror is a symlink"),
        ("apply", "dev/us-east-1/dev/linked", "dev/us-east-1/dev/linked/main.tf is a symlink"),
        ("plan", "dev/us-east-1/dev/escape", "leaves the repository"),
        ("plan", "dev/us-east-1/dev/via-link", "leaves the repository"),
    ];
    for (action, path, needle) in cases {
        assert_refused(&run_task(&remote, &unit_request(&remote, action, &head, path), json!({})), needle);
    }
    let output = run_task(&remote, &unit_request(&remote, "plan", &head, "dev/us-east-1/dev/inside"), json!({}));
    assert_eq!(output.status.code(), Some(0), "a module inside the clone is fine: {}", text(&output));

    // update-variable never writes through a link: nothing is committed or pushed.
    let before = remote.work.git(&["ls-remote", &remote.url(), "refs/heads/main"]);
    let mut update = unit_request(&remote, "update-variable", "main", "dev/us-east-1/dev/tagged");
    update["variable"] = json!("image_version");
    update["value"] = json!("v9");
    let output = run_task(&remote, &update, json!({}));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("dev/us-east-1/dev/tagged/terragrunt.hcl is a symlink"), "{}", text(&output));
    assert_eq!(remote.work.git(&["ls-remote", &remote.url(), "refs/heads/main"]), before, "nothing was pushed");

    // A dev wave can't apply a prod unit through a link (skipping prod's approval and the deploy order).
    let wave = json!({"action": "rollout", "actor": "octocat", "repo": remote.url(), "ref": head, "mode": "apply",
        "units": [{"path": "dev/us-east-1/dev/alias", "change": "modified"}]});
    let output = run_task(&remote, &wave, json!({}));
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("is a symlink") && !out.contains("Apply complete"), "{out}");
}

#[test]
fn terragrunt_sources_must_stay_in_the_clone() {
    let remote = Remote::new();
    let tools = tempfile::tempdir().expect("tempdir");
    let fake = tools.path().join("terragrunt");
    executable(&fake, "#!/bin/sh\necho \"TERRAGRUNT RAN $*\"\n");
    let mut policy: Value = serde_json::from_str(&remote.policy()).expect("policy");
    policy["binary"] = json!("terragrunt");
    let unit = |source: &str| format!("terraform {{\n  source = {source}\n}}\n");
    remote.work.write("dev/us-east-1/dev/out/terragrunt.hcl", &unit("\"../../../../../../../../etc//x\""));
    remote.work.write("dev/us-east-1/dev/dynamic/terragrunt.hcl", &unit("run_cmd(\"sh\", \"-c\", \"echo /tmp\")"));
    remote.work.write("escaping/vpc/main.tf", "module \"up\" {\n  source = \"../../../../../..\"\n}\n");
    remote.work.write("dev/us-east-1/dev/nested/terragrunt.hcl", &unit("\"${get_repo_root()}/escaping//vpc\""));
    remote.work.write("modules/ok/main.tf", "output \"ok\" {\n  value = 1\n}\n");
    remote.work.write("dev/us-east-1/dev/fine/terragrunt.hcl", &unit("\"../../../../modules//ok\""));
    let head = remote.push("sources", "main");
    let run = |path: &str| {
        Command::new(binary("deploy-runner-task"))
            .args(["run", "--request", &unit_request(&remote, "plan", &head, path).to_string()])
            .env("DEPLOY_RUNNER_POLICY", policy.to_string())
            .env("DEPLOY_RUNNER_TASK_CONFIG", json!({"tool_path": fake}).to_string())
            .output()
            .expect("run")
    };
    for (path, needle) in [
        ("dev/us-east-1/dev/out", "leaves the repository"),
        ("dev/us-east-1/dev/dynamic", "can't be worked out statically"),
        ("dev/us-east-1/dev/nested", "leaves the repository"),
    ] {
        let output = run(path);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(2), "{path}: {out}");
        assert!(out.contains(needle), "{path}: {needle:?} missing: {out}");
        assert!(!out.contains("TERRAGRUNT RAN"), "{path}: {out}");
    }
    let output = run("dev/us-east-1/dev/fine");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("TERRAGRUNT RAN plan"), "{}", text(&output));
}

#[test]
fn builds_are_tagged_by_commit_and_kaniko_and_packer_get_no_credential() {
    let remote = Remote::new();
    remote.work.write("services/api/Dockerfile", "FROM scratch\n");
    remote.work.write("packer/app.pkr.hcl", "# template\n");
    let first = remote.push("api", "main");
    remote.work.append("services/api/Dockerfile", "# next\n");
    let second = remote.push("next", "main");
    remote.work.git(&["tag", "v1.2.3", &first]);
    remote.work.git(&["push", "-q", "origin", "refs/tags/v1.2.3"]);
    let tools = tempfile::tempdir().expect("tempdir");
    let env_log = tools.path().join("env.log");
    let argv_log = tools.path().join("argv.log");
    for name in ["executor", "packer"] {
        executable(
            &tools.path().join(name),
            &format!(
                "#!/bin/sh\nenv >> '{env}'\necho \"$@\" >> '{argv}'\necho '1,app,artifact,0,id,us-east-1:ami-0123456789abcdef0'\n",
                env = env_log.display(),
                argv = argv_log.display()
            ),
        );
    }
    let config = json!({"image": {"executor_path": tools.path().join("executor"), "registry_repo": "r.example/acme/api",
                                  "exists_command": []},
                        "packer_path": tools.path().join("packer")});
    let build = |git_ref: &str, tag: &str| {
        json!({"action": "build-image", "actor": "ci", "repo": remote.url(), "ref": git_ref,
               "context_path": "services/api", "tag": tag})
    };
    // A tag that names another commit than the one built: refused before kaniko runs.
    let output = run_task(&remote, &build("main", &first[..10]), config.clone());
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("is not the built commit"), "{}", text(&output));
    assert!(!argv_log.exists(), "kaniko never ran");
    // `latest` and other free names are refused by the gate (exit 3).
    let output = run_task(&remote, &build("main", "latest"), config.clone());
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("tag_not_allowed"), "{}", text(&output));
    // The head commit by its SHA, then the release tag at exactly its commit.
    assert_eq!(run_task(&remote, &build("main", &second[..7]), config.clone()).status.code(), Some(0));
    let output = run_task(&remote, &build("v1.2.3", "v1.2.3"), config.clone());
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let argv = std::fs::read_to_string(&argv_log).expect("argv");
    assert!(argv.contains(&format!("r.example/acme/api:{} ", &second[..7])), "{argv}");
    assert!(argv.contains("--destination=r.example/acme/api:v1.2.3"), "{argv}");
    assert!(argv.contains(&format!("--label=org.opencontainers.image.revision={first}")), "the tag's commit: {argv}");
    // An AMI build knows its commit and version, and packer gets no credential either.
    let ami = json!({"action": "build-ami", "actor": "ci", "repo": remote.url(), "ref": "v1.2.3",
                     "template_path": "packer/app.pkr.hcl"});
    let output = run_task(&remote, &ami, config);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let env = std::fs::read_to_string(&env_log).expect("env");
    assert!(env.contains(&format!("PKR_VAR_deploy_runner_commit={first}")), "{env}");
    assert!(env.contains("PKR_VAR_deploy_runner_version=v1.2.3"), "{env}");
    assert_no_secret(&env, "kaniko's or packer's environment");
    assert!(!env.contains("GITHUB_TOKEN") && !env.contains("DEPLOY_RUNNER_GIT_TOKEN"), "{env}");
}
