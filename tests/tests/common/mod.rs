//! Helpers shared by the end-to-end tests: locating the built binaries and the repo's example files.
#![allow(dead_code)]

pub mod lambda_watch;
pub mod moto;
pub mod remote;
pub mod slack;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The shared test corpus (`../shared/corpus` beside the checkout, as in CI).
pub fn corpus() -> PathBuf {
    let dir = workspace_root().join("../shared/corpus");
    assert!(dir.is_dir(), "the test corpus is expected at {} (shared/ beside the checkout)", dir.display());
    dir
}

/// A path under the workspace root.
pub fn repo_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// Real terraform: `DEPLOY_RUNNER_TERRAFORM` (set by `make test`), else the pinned one `make tools` installs.
pub fn terraform() -> PathBuf {
    let path = std::env::var_os("DEPLOY_RUNNER_TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/bin/terraform"));
    assert!(path.exists(), "terraform not found at {}: run `make tools` (make test does)", path.display());
    path
}

/// The directory cargo puts this profile's binaries in (`target/debug`), found from the test binary's own path.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// Builds the workspace binaries once per test process, so `cargo test -p deploy-runner-e2e` works on its own.
pub fn ensure_binaries_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--bins", "--workspace"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --bins failed");
    });
}

/// A workspace binary by name, built if needed.
pub fn binary(name: &str) -> PathBuf {
    ensure_binaries_built();
    bin_dir().join(name)
}

/// The `deploy-runner` CLI.
pub fn deploy_runner() -> Command {
    Command::new(binary("deploy-runner"))
}

/// Runs a command with `stdin` piped in and returns its output.
pub fn run_with_stdin(mut command: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn deploy-runner");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Stdout parsed as exactly one JSON document.
pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// A real git repository in a temp dir, for history-based tests.
pub struct TestRepo {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

impl TestRepo {
    /// An empty repository with a committer identity.
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = TestRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    /// A repository holding a copy of a corpus folder (plus `extra` files), committed once.
    pub fn from_corpus(relative: &str, extra: &[(&str, &str)]) -> TestRepo {
        let repo = TestRepo::new();
        copy_dir(&corpus().join(relative), repo.path());
        for (path, text) in extra {
            repo.write(path, text);
        }
        repo.commit("base");
        repo
    }

    /// The work tree.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs git in the repository and returns stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git").arg("-C").arg(self.path()).args(args).output().expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Writes a file (creating folders).
    pub fn write(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }

    /// Appends a line to a file.
    pub fn append(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        let mut old = std::fs::read_to_string(&full).expect("read");
        old.push_str(text);
        std::fs::write(full, old).expect("write");
    }

    /// Removes a file or folder.
    pub fn remove(&self, path: &str) {
        let full = self.path().join(path);
        if full.is_dir() {
            std::fs::remove_dir_all(full).expect("rm -r");
        } else {
            std::fs::remove_file(full).expect("rm");
        }
    }

    /// Commits everything and returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Copies a directory tree (files only; this corpus has no symlinks).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Runs `changes --base HEAD~1 --head HEAD` (plus `extra`) and returns the JSON report; asserts exit 0.
pub fn changes(repo: &TestRepo, extra: &[&str]) -> serde_json::Value {
    let output = deploy_runner()
        .args(["changes", "--format", "json", "--base", "HEAD~1", "--head", "HEAD", "--repo"])
        .arg(repo.path())
        .args(extra)
        .output()
        .expect("run changes");
    assert_eq!(output.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    stdout_json(&output)
}

/// `(path, change)` of every selected unit, in report order.
pub fn selected(report: &serde_json::Value) -> Vec<(String, String)> {
    report["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| (u["path"].as_str().expect("path").to_owned(), u["change"].as_str().expect("change").to_owned()))
        .collect()
}
