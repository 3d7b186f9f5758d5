//! The invoker behind the real Lambda runtime loop: `cargo lambda watch` serves the Runtime API and the Invoke API
//! on a loopback port, and the function talks to moto through `AWS_ENDPOINT_URL`.

use super::moto::{free_port, Moto};
use super::{repo_file, workspace_root};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `cargo lambda watch` of the invoker, stopped when dropped.
pub struct InvokerWatch {
    child: Child,
    /// The Invoke API's port (`AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:<port>`).
    pub port: u16,
    log: tempfile::NamedTempFile,
}

/// Who the readiness probe says it is; [`InvokerWatch::audit`] leaves its decisions out.
const PROBE_ACTOR: &str = "readiness-probe";

impl Drop for InvokerWatch {
    fn drop(&mut self) {
        // SIGTERM, so cargo lambda stops the function it started too.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl InvokerWatch {
    /// Starts the invoker with `config` as `DEPLOY_RUNNER_CONFIG` and waits until it answers an invoke (the first
    /// start compiles it).
    pub fn start(moto: &Moto, config: &str) -> InvokerWatch {
        let cargo_lambda = workspace_root().join(".tools/venv/bin/cargo-lambda");
        assert!(cargo_lambda.exists(), "cargo-lambda is missing: run `make tools` (make test does)");
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let path = format!(
            "{}:{}",
            workspace_root().join(".tools/venv/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(env!("CARGO"))
            .args(["lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .arg("--manifest-path")
            .arg(repo_file("crates/invoker/Cargo.toml"))
            .env("PATH", path)
            .env("DEPLOY_RUNNER_CONFIG", config)
            .env("AWS_ENDPOINT_URL", moto.setup["endpoint"].as_str().expect("endpoint"))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdout(Stdio::from(log.reopen().expect("log")))
            .stderr(Stdio::from(log.reopen().expect("log")))
            .spawn()
            .expect("start cargo lambda watch");
        let watch = InvokerWatch { child, port, log };
        let started = Instant::now();
        // A request for a repo no policy allows is denied without touching AWS: a cheap readiness probe.
        let probe = format!(
            r#"{{"action": "plan", "actor": "{PROBE_ACTOR}", "repo": "https://example.invalid/probe.git", "ref": "main", "path": "probe"}}"#
        );
        while watch.invoke(&probe).is_none() {
            assert!(started.elapsed() < Duration::from_secs(600), "the function never answered:\n{}", watch.log());
            std::thread::sleep(Duration::from_millis(500));
        }
        watch
    }

    /// POSTs `body` to the function's invoke URL as `lambda:Invoke` does; `None` until the emulator answers 200.
    pub fn invoke(&self, body: &str) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(300))).ok()?;
        write!(
            stream,
            "POST /2015-03-31/functions/deploy-runner-invoker/invocations HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, payload) = answer.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200").then(|| payload.to_owned())
    }

    /// Everything the function and cargo lambda printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The invoker's audit lines (one per decision), without the readiness probes'.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| l.find('{').map(|i| &l[i..]))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "decision" && v["actor"] != PROBE_ACTOR)
            .collect()
    }
}
