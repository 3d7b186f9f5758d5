//! Running a tool: output streamed line by line with a prefix and secrets masked, its exit code kept, and a stop
//! request (SIGTERM from ECS StopTask) forwarded to its whole process group.

use crate::mask::Masker;
use crate::plan::{parse_line, PlanCounts};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit code reported when the task was stopped: 128 + SIGTERM, as a shell would.
pub const EXIT_TERMINATED: i32 = 143;

/// How a tool run ended.
#[derive(Debug, Clone, Default)]
pub struct ToolResult {
    /// The tool's exit code (128 + signal when it died of one; [`EXIT_TERMINATED`] when we stopped it).
    pub exit_code: i32,
    /// The last plan/apply summary seen in its output.
    pub counts: Option<PlanCounts>,
    /// Whether a stop request ended it.
    pub stopped: bool,
    /// Its stdout, when [`RunContext::capture_stdout`] asked for it (unmasked: for parsing, not printing).
    pub stdout: String,
}

/// What a tool run needs besides the command.
pub struct RunContext<'a> {
    /// Printed before every line, e.g. `[dev/us-east-1/vpc] `.
    pub prefix: String,
    /// Masks secrets in every line.
    pub masker: &'a Masker,
    /// Set when the task has been asked to stop.
    pub stop: &'a AtomicBool,
    /// How long the tool gets to exit after SIGTERM before it is killed.
    pub grace: Duration,
    /// Also keep the tool's stdout in [`ToolResult::stdout`].
    pub capture_stdout: bool,
    /// Also append every (masked) line here: the local sequencer's per-wave log file.
    pub log: Option<Arc<Mutex<std::fs::File>>>,
    /// Where the lines are printed besides the log file.
    pub echo: Echo,
}

/// Receives each printed line (prefixed and masked): a progress display that keeps its spinner below the lines.
#[derive(Clone)]
pub struct LineSink(Arc<dyn Fn(&str) + Send + Sync>);

impl LineSink {
    /// A sink calling `receive` with every line.
    pub fn new(receive: impl Fn(&str) + Send + Sync + 'static) -> LineSink {
        LineSink(Arc::new(receive))
    }
}

impl std::fmt::Debug for LineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineSink")
    }
}

/// Where a tool's output lines are printed.
#[derive(Debug, Clone)]
pub enum Echo {
    /// Its stdout to our stdout, its stderr to our stderr (the task: the container's streams are the logs).
    Inherit,
    /// Both to our stderr, keeping our stdout for a result (the CLI's `--format json`).
    Stderr,
    /// Nowhere (only the log file gets them).
    Off,
    /// To a sink (the CLI's progress display on a terminal).
    To(LineSink),
}

/// Runs `command` to completion, streaming its output. The tool gets its own process group so that a stop reaches
/// every process it started (terragrunt runs terraform, which runs providers).
pub fn run_streamed(mut command: Command, ctx: &RunContext<'_>) -> std::io::Result<ToolResult> {
    use std::os::unix::process::CommandExt;
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn()?;
    let counts = Arc::new(Mutex::new(None));
    let captured = Arc::new(Mutex::new(ctx.capture_stdout.then(String::new)));
    let stdout = child.stdout.take().map(|out| pump(out, ctx, false, counts.clone(), captured.clone()));
    let stderr = child.stderr.take().map(|err| pump(err, ctx, true, counts.clone(), Arc::new(Mutex::new(None))));
    let group = rustix::process::Pid::from_child(&child);
    let (status, stopped) = wait_or_stop(&mut child, ctx)?;
    crate::harden::reap_group(group);
    for pump in [stdout, stderr].into_iter().flatten() {
        let _ = pump.join();
    }
    use std::os::unix::process::ExitStatusExt;
    let exit_code =
        if stopped { EXIT_TERMINATED } else { status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)) };
    let counts = *counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stdout = captured.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().unwrap_or_default();
    Ok(ToolResult { exit_code, counts, stopped, stdout })
}

/// Copies one pipe to our stdout or stderr, line by line, prefixed, masked and flushed at once.
fn pump(
    pipe: impl Read + Send + 'static,
    ctx: &RunContext<'_>,
    to_stderr: bool,
    counts: Arc<Mutex<Option<PlanCounts>>>,
    captured: Arc<Mutex<Option<String>>>,
) -> std::thread::JoinHandle<()> {
    let prefix = ctx.prefix.clone();
    let masker = ctx.masker.clone();
    let (log, echo) = (ctx.log.clone(), ctx.echo.clone());
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buffer = Vec::new();
        while matches!(reader.read_until(b'\n', &mut buffer), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buffer);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(found) = parse_line(line) {
                *counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(found);
            }
            if let Some(text) = captured.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
                text.push_str(line);
                text.push('\n');
            }
            // The tool prints anyone's text (a plan of a branch): masked, and made inert before it is shown.
            let masked = masker.mask(line);
            let masked = deploy_runner_gate::text::inert_line(&masked);
            if let Some(file) = &log {
                let mut file = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = writeln!(file, "{masked}");
            }
            let _ = match &echo {
                Echo::Off => Ok(()),
                Echo::To(sink) => {
                    (sink.0)(&format!("{prefix}{masked}"));
                    Ok(())
                }
                Echo::Inherit if !to_stderr => {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{prefix}{masked}").and_then(|_| out.flush())
                }
                Echo::Inherit | Echo::Stderr => {
                    let mut err = std::io::stderr().lock();
                    writeln!(err, "{prefix}{masked}").and_then(|_| err.flush())
                }
            };
            buffer.clear();
        }
    })
}

/// Waits for the child; on a stop request sends SIGTERM to its group, waits the grace period, then SIGKILLs.
fn wait_or_stop(child: &mut Child, ctx: &RunContext<'_>) -> std::io::Result<(std::process::ExitStatus, bool)> {
    let group = rustix::process::Pid::from_child(child);
    let mut stop_sent: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            if stop_sent.is_some() {
                // The leader exited; make sure nothing it started outlives it.
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            return Ok((status, stop_sent.is_some()));
        }
        match stop_sent {
            None if ctx.stop.load(Ordering::SeqCst) => {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
                stop_sent = Some(Instant::now());
            }
            Some(at) if at.elapsed() >= ctx.grace => {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a short helper command (git, a registry check) to completion, capturing its output, honouring stops.
pub fn run_captured(mut command: Command) -> std::io::Result<(i32, String)> {
    let output = command.stdin(Stdio::null()).output()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.code().unwrap_or(-1), text))
}
