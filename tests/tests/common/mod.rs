//! Helpers shared by the end-to-end tests: locating the built binaries and the repo's example files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A path under the workspace root.
pub fn repo_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// The directory cargo puts this profile's binaries in (`target/debug`), found from the test binary's own path.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
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
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
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
