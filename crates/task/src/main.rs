//! `deploy-runner-task`: the container entrypoint. Thin: read the environment and the request, run, exit.
//!
//! ```text
//! deploy-runner-task run --request '<gate request JSON>'     # as ECS runs it
//! deploy-runner-task run --request-file request.json         # or `-` for stdin
//! ```
//! Exit status: the tool's; 2 when the task could not get to running it; 3 when the gate denies the request;
//! 143 when stopped (SIGTERM).

use deploy_runner_task::config::SECRET_VARIABLES;
use deploy_runner_task::{harden, Environment, Task, EXIT_SETUP};
use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)),
        Err(error) => {
            report(&format!("deploy-runner-task: error: {error:#}"));
            ExitCode::from(EXIT_SETUP as u8)
        }
    }
}

/// One line on stderr, inert (an error can quote git's or a remote's text); a closed stderr is ignored.
fn report(line: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", deploy_runner_gate::text::inert(line)).and_then(|()| stderr.flush());
}

fn run() -> anyhow::Result<i32> {
    // Before any secret is read or any child started: the tools we run can't read our memory or environment.
    harden::protect_process().map_err(|e| anyhow::anyhow!("cannot make the task non-dumpable: {e}"))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let body = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["run", "--request", json] => json.as_bytes().to_vec(),
        ["run", "--request-file", "-"] => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body)?;
            body
        }
        ["run", "--request-file", path] => std::fs::read(path)?,
        _ => anyhow::bail!("usage: deploy-runner-task run (--request JSON | --request-file FILE|-)"),
    };
    let environment = Environment::from_vars(|name| std::env::var(name).ok())?;
    // The secrets now live in `environment` only: no child can inherit them by accident. (The kernel's copy of
    // our initial environment stays in /proc/self/environ, which non-dumpability closes to everyone else.)
    for name in SECRET_VARIABLES {
        std::env::remove_var(name);
    }
    let stop = Arc::new(AtomicBool::new(false));
    // ECS StopTask sends SIGTERM; Ctrl-C in the local backend sends SIGINT. Both ask the tool to stop.
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let task = Task::new(environment, stop)?;
    match task.execute(&body) {
        Ok(code) => Ok(code),
        Err(error) => {
            report(&format!("deploy-runner-task: {}", task.masker().mask(&error.to_string())));
            Ok(error.exit_code())
        }
    }
}
