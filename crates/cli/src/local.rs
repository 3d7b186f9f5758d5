//! The local backend (the embedded default): the gate in-process, the deploy task as a local process, rollouts
//! through the local sequencer with the same semantics as the state machine.
//!
//! Each wave's output goes to the terminal, prefixed with its account, and to its own log file under the state
//! directory. Ctrl-C stops the running task's whole process group (SIGTERM, then SIGKILL after the grace period)
//! and records the run as interrupted, so `deploy-runner resume` can finish it. State is saved after every step.

use crate::progress::Progress;
use deploy_runner_gate::{ActionRequest, Gate, Policy, Request, Rollout};
use deploy_runner_rollout::execution::task_command;
use deploy_runner_rollout::sequencer::WaveStatus;
use deploy_runner_rollout::{
    execute, plan_waves, ApplyLock, Approval, Approver, FileStore, LedgerScope, NoLedger, RunState, RunStatus, Wave,
    WaveLedger, WaveResult, WaveRunner,
};
use deploy_runner_task::mask::Masker;
use deploy_runner_task::process::{run_streamed, Echo, RunContext};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The default state directory (relative to the working directory).
pub const DEFAULT_STATE_DIR: &str = ".deploy-runner";
/// The environment variable naming the task binary (default: `deploy-runner-task` next to this executable).
pub const ENV_TASK_BIN: &str = "DEPLOY_RUNNER_TASK_BIN";

/// Why a local operation could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A file or process problem.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The gate refused.
    #[error("denied ({reason}): {message}")]
    Denied {
        /// The gate's reason code.
        reason: String,
        /// The gate's message.
        message: String,
    },
    /// The run is not in a state that allows the operation.
    #[error("{0}")]
    State(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let context = context.into();
    move |source| LocalError::Io { context, source }
}

/// Where the task binary is: `$DEPLOY_RUNNER_TASK_BIN`, else next to the running executable, else on `PATH`.
pub fn task_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(ENV_TASK_BIN).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("deploy-runner-task")))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("deploy-runner-task"))
}

/// Set on Ctrl-C (SIGINT) or SIGTERM; everything that waits checks it.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>, LocalError> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone()).map_err(io("cannot install the Ctrl-C handler"))?;
    }
    Ok(flag)
}

/// Runs the deploy task as a local process, the way ECS would run the container.
#[derive(Clone)]
pub struct LocalTask {
    /// The task executable.
    pub binary: PathBuf,
    /// The policy text handed to the task (it re-checks every request).
    pub policy_json: String,
    /// Set when the user asked to stop.
    pub interrupt: Arc<AtomicBool>,
    /// How long the task gets after SIGTERM.
    pub grace: Duration,
    /// Where the task's output is printed besides the log file.
    pub echo: Echo,
    /// Where units without a backend of their own keep their Terraform state (`<state dir>/tfstate`).
    pub tf_state_dir: Option<PathBuf>,
}

/// How a local task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Its exit code (`None` when a signal ended it).
    pub exit_code: Option<i32>,
    /// Whether the user stopped it.
    pub interrupted: bool,
    /// Its stdout's JSON lines (the task's machine-readable events, e.g. the wave summary).
    pub events: Vec<serde_json::Value>,
}

impl LocalTask {
    /// Runs `request` as run `run_id`; output is prefixed with `prefix` and appended to `log_file`.
    pub fn run(
        &self,
        request: &Request,
        run_id: &str,
        prefix: &str,
        log_file: &Path,
    ) -> Result<TaskOutcome, LocalError> {
        if let Some(dir) = log_file.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .map_err(io(format!("cannot open {}", log_file.display())))?;
        let mut command = Command::new(&self.binary);
        // The same arguments the container gets; the binary is ours instead of the image's entrypoint.
        command
            .args(&task_command(request)[1..])
            .env("DEPLOY_RUNNER_POLICY", &self.policy_json)
            .env("DEPLOY_RUNNER_RUN_ID", run_id);
        match &self.tf_state_dir {
            Some(dir) => command.env(deploy_runner_task::config::ENV_LOCAL_STATE_DIR, dir),
            None => command.env_remove(deploy_runner_task::config::ENV_LOCAL_STATE_DIR),
        };
        let token = std::env::var("GITHUB_TOKEN").unwrap_or_default();
        let masker = Masker::new([token.as_str()].into_iter().filter(|t| !t.is_empty()));
        let ctx = RunContext {
            prefix: prefix.to_owned(),
            masker: &masker,
            stop: &self.interrupt,
            grace: self.grace,
            capture_stdout: true,
            log: Some(Arc::new(Mutex::new(file))),
            // Progress, not a result: stdout stays free for the command's own answer (--format json).
            echo: self.echo.clone(),
        };
        let result =
            run_streamed(command, &ctx).map_err(io(format!("cannot run the deploy task {}", self.binary.display())))?;
        let events =
            result.stdout.lines().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str(l).ok()).collect();
        // A task killed by a signal reports 128 + n, which is a failure like any non-zero code.
        Ok(TaskOutcome { exit_code: Some(result.exit_code), interrupted: result.stopped, events })
    }
}

/// The log file of wave `index` (account `account`) of `run_id`.
pub fn wave_log(state_dir: &Path, run_id: &str, index: usize, account: &str) -> PathBuf {
    state_dir.join("runs").join(run_id).join(format!("{:02}-{account}.log", index + 1))
}

/// What each wave's task reported (its summary events), for the caller's final table.
pub type WaveEvents = Vec<(String, Vec<serde_json::Value>)>;

/// Told when a wave starts (`None`) and how it ended (progress display).
pub type WaveObserver = Box<dyn FnMut(&Wave, Option<&WaveResult>)>;

/// Runs each wave as one local task in wave mode.
pub struct LocalWaveRunner {
    /// The task runner.
    pub task: LocalTask,
    /// The state directory (log files go under it).
    pub state_dir: PathBuf,
    /// CI's actor, recorded in each wave's request.
    pub actor: String,
    /// What each wave reported, in order.
    pub events: WaveEvents,
    /// Called when a wave starts and ends (progress display).
    pub on_wave: WaveObserver,
}

impl WaveRunner for LocalWaveRunner {
    fn run(&mut self, run_id: &str, index: usize, wave: &Wave) -> WaveResult {
        (self.on_wave)(wave, None);
        let request =
            Request { actor: self.actor.clone(), request_id: None, body: ActionRequest::Rollout(wave.request.clone()) };
        let log = wave_log(&self.state_dir, run_id, index, &wave.account);
        let result = match self.task.run(&request, run_id, &format!("{} | ", wave.account), &log) {
            Ok(outcome) if outcome.interrupted => WaveResult::Interrupted,
            Ok(outcome) => {
                self.events.push((wave.account.clone(), outcome.events));
                WaveResult::Exited(outcome.exit_code)
            }
            Err(e) => {
                errln!("deploy-runner: {e}");
                let _ = std::fs::OpenOptions::new().append(true).open(&log).map(|mut f| writeln!(f, "{e}"));
                WaveResult::Exited(None)
            }
        };
        (self.on_wave)(wave, Some(&result));
        result
    }
}

/// An answer written by `deploy-runner approve|reject --local`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// True to approve.
    pub approved: bool,
    /// Who answered.
    pub by: String,
    /// Why.
    pub comment: Option<String>,
}

fn approval_path(state_dir: &Path, run_id: &str, account: &str) -> PathBuf {
    state_dir.join("runs").join(run_id).join("approvals").join(format!("{account}.json"))
}

/// Records an answer for the wave of `account` that `run_id` waits on; refuses when it is not waiting.
pub fn answer_approval(
    state_dir: &Path,
    run_id: &str,
    account: &str,
    record: &ApprovalRecord,
) -> Result<(), LocalError> {
    let state = load_run(state_dir, run_id)?;
    let waiting = state.waves.iter().any(|w| w.account == account && w.status == WaveStatus::AwaitingApproval);
    if !waiting {
        return Err(LocalError::State(format!("run {run_id} is not waiting for an approval of {account}")));
    }
    let path = approval_path(state_dir, run_id, account);
    let dir = path.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_string(record).unwrap_or_default();
    std::fs::write(&temporary, text).map_err(io(format!("cannot write {}", temporary.display())))?;
    std::fs::rename(&temporary, &path).map_err(io(format!("cannot write {}", path.display())))
}

/// Asks for approvals: pre-approved accounts pass, an answer file written by `deploy-runner approve` decides, and
/// on a terminal the user may answer at a prompt. Ctrl-C and the timeout end the wait.
pub struct LocalApprover {
    /// The state directory.
    pub state_dir: PathBuf,
    /// Accounts approved up front (`--approve ACCOUNT`).
    pub pre_approved: Vec<String>,
    /// How long to wait for an answer.
    pub timeout: Duration,
    /// Set on Ctrl-C.
    pub interrupt: Arc<AtomicBool>,
    /// Prompt on the terminal when stdin is one.
    pub prompt: bool,
    /// Lines typed on the terminal, from one reader thread shared by every prompt of the run.
    terminal_lines: Option<mpsc::Receiver<String>>,
    /// Cleared while an approval waits, so the prompt is not drawn over.
    progress: Progress,
}

impl LocalApprover {
    /// An approver; `prompt` asks on the terminal too when stdin is one.
    pub fn new(
        state_dir: PathBuf,
        pre_approved: Vec<String>,
        timeout: Duration,
        interrupt: Arc<AtomicBool>,
        prompt: bool,
    ) -> LocalApprover {
        LocalApprover {
            state_dir,
            pre_approved,
            timeout,
            interrupt,
            prompt,
            terminal_lines: None,
            progress: Progress::default(),
        }
    }

    /// Shares the command's progress display, which is cleared while an approval waits.
    pub fn with_progress(mut self, progress: Progress) -> LocalApprover {
        self.progress = progress;
        self
    }

    /// Prompts for `account` and returns where the answer will arrive. One thread reads stdin for the whole run:
    /// a thread per prompt would stay blocked after an answer file decided, and eat the next prompt's answer.
    fn prompt(&mut self, account: &str) -> Option<&mpsc::Receiver<String>> {
        if !self.prompt || !std::io::stdin().is_terminal() {
            return None;
        }
        let lines = self.terminal_lines.get_or_insert_with(|| {
            let (sender, receiver) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                while matches!(std::io::stdin().lock().read_line(&mut line), Ok(n) if n > 0) {
                    if sender.send(std::mem::take(&mut line)).is_err() {
                        return;
                    }
                }
            });
            receiver
        });
        // What was typed before this prompt does not answer it.
        while lines.try_recv().is_ok() {}
        {
            use std::io::Write;
            let mut stderr = std::io::stderr();
            let _ = write!(stderr, "approve the {account} wave? [y/N] ").and_then(|()| stderr.flush());
        }
        let _ = std::io::stderr().flush();
        Some(lines)
    }
}

impl Approver for LocalApprover {
    fn approve(&mut self, run_id: &str, wave: &Wave) -> Approval {
        if self.pre_approved.contains(&wave.account) {
            return Approval::Approved("--approve".into());
        }
        let path = approval_path(&self.state_dir, run_id, &wave.account);
        let _ = std::fs::remove_file(&path);
        self.progress.idle();
        errln!(
            "deploy-runner: the {} wave waits for approval: deploy-runner approve --local --run {run_id} --account {} \
             (or reject); timeout {}s",
            wave.account,
            wave.account,
            self.timeout.as_secs()
        );
        let timeout = self.timeout;
        let interrupt = self.interrupt.clone();
        let answers = self.prompt(&wave.account);
        let started = Instant::now();
        loop {
            if interrupt.load(Ordering::SeqCst) {
                return Approval::Interrupted;
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                if let Ok(record) = serde_json::from_str::<ApprovalRecord>(&text) {
                    let _ = std::fs::remove_file(&path);
                    return if record.approved { Approval::Approved(record.by) } else { Approval::Rejected(record.by) };
                }
            }
            if let Some(line) = answers.and_then(|r| r.try_recv().ok()) {
                let by = std::env::var("USER").unwrap_or_else(|_| "terminal".into());
                return if matches!(line.trim(), "y" | "Y" | "yes") {
                    Approval::Approved(by)
                } else {
                    Approval::Rejected(by)
                };
            }
            if started.elapsed() >= timeout {
                return Approval::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The saved state of `run_id`.
pub fn load_run(state_dir: &Path, run_id: &str) -> Result<RunState, LocalError> {
    FileStore::new(state_dir)
        .load(run_id)
        .map_err(io(format!("cannot read the state of run {run_id}")))?
        .ok_or_else(|| LocalError::State(format!("no local run {run_id} under {}", state_dir.display())))
}

/// A lock that marks a run as being executed by a live process, so a second `resume` can't run it twice.
struct RunLock(PathBuf);

impl RunLock {
    fn take(state_dir: &Path, run_id: &str) -> Result<RunLock, LocalError> {
        let path = state_dir.join("runs").join(format!("{run_id}.lock"));
        if let Ok(pid) = std::fs::read_to_string(&path) {
            let alive = Path::new("/proc").join(pid.trim()).exists();
            if alive && pid.trim() != std::process::id().to_string() {
                return Err(LocalError::State(format!("run {run_id} is being executed by process {}", pid.trim())));
            }
        }
        std::fs::create_dir_all(state_dir.join("runs")).map_err(io("cannot create the state directory"))?;
        std::fs::write(&path, std::process::id().to_string())
            .map_err(io(format!("cannot write {}", path.display())))?;
        Ok(RunLock(path))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The local sequencer: plans, runs and resumes rollouts under a state directory.
pub struct LocalSequencer {
    /// The policy (deploy order, approvals; the gate).
    pub policy: Policy,
    /// The state directory.
    pub state_dir: PathBuf,
    /// How long an apply rollout waits for another one of the same repo and apply ref to stop.
    pub lock_wait: Duration,
    /// Set on Ctrl-C (ends a wait for the lock).
    pub interrupt: Arc<AtomicBool>,
}

/// What an apply rollout holds while it runs: its scope's lock, and the ledger its waves are recorded in.
struct Serialised {
    _lock: crate::ledger::LocalApplyLock,
    ledger: crate::ledger::LocalWaveLedger,
}

impl LocalSequencer {
    /// The accounts whose waves wait for approval: the policy's, for apply rollouts only (a plan changes nothing).
    fn approvals(&self, state: &RunState) -> Vec<String> {
        let applies = state.plan.first().is_some_and(|w| w.request.mode == deploy_runner_gate::RolloutMode::Apply);
        if applies {
            self.policy.document().approval_accounts.clone()
        } else {
            Vec::new()
        }
    }

    /// Gates `request` (a rollout) and returns it, or the denial.
    pub fn admit(&self, request: &Request) -> Result<Rollout, LocalError> {
        match Gate::new(self.policy.clone()).check(request) {
            Ok(admitted) => match admitted.request.body {
                ActionRequest::Rollout(rollout) => Ok(rollout),
                other => Err(LocalError::State(format!("{} is not a rollout", other.action()))),
            },
            Err(denial) => Err(LocalError::Denied { reason: denial.reason.to_string(), message: denial.message }),
        }
    }

    /// Starts run `run_id` of an admitted rollout.
    pub fn start(
        &self,
        run_id: &str,
        rollout: &Rollout,
        runner: &mut dyn WaveRunner,
        approver: &mut dyn Approver,
    ) -> Result<RunState, LocalError> {
        let mut store = FileStore::new(&self.state_dir);
        if store.load(run_id).map_err(io("cannot read the run state"))?.is_some() {
            return Err(LocalError::State(format!("run {run_id} exists already; resume it instead")));
        }
        let waves = plan_waves(&self.policy, rollout).map_err(|e| LocalError::State(e.to_string()))?;
        let mut state = RunState::new(run_id, waves);
        let _lock = RunLock::take(&self.state_dir, run_id)?;
        let mut serialised = self.serialise(&mut state)?;
        let approvals = self.approvals(&state);
        let ledger: &mut dyn WaveLedger = match &mut serialised {
            Some(s) => &mut s.ledger,
            None => &mut NoLedger,
        };
        execute(&mut state, &approvals, runner, approver, &mut store, ledger)
            .map_err(io("cannot save the run state"))?;
        Ok(state)
    }

    /// For an apply rollout: waits for its scope's lock (`lock_wait` at most), then tells each wave still to run
    /// what its account has deployed (the task refuses an older commit). Plans take no lock.
    fn serialise(&self, state: &mut RunState) -> Result<Option<Serialised>, LocalError> {
        let Some(first) = state.plan.first() else { return Ok(None) };
        if first.request.mode != deploy_runner_gate::RolloutMode::Apply {
            return Ok(None);
        }
        let scope = LedgerScope::of(&self.policy, &first.request);
        let holder = ApplyLock {
            run_id: state.run_id.clone(),
            commit: first.request.git_ref.clone(),
            holder: format!("pid {}", std::process::id()),
            acquired_at: deploy_runner_rollout::ledger::rfc3339(std::time::SystemTime::now()),
        };
        let lock = crate::ledger::LocalApplyLock::take(
            &self.state_dir,
            &scope,
            &holder,
            self.lock_wait,
            &self.interrupt,
            |current| {
                let who = current.map_or("another apply rollout".to_owned(), |h| {
                    format!("apply rollout {} (commit {}, {})", h.run_id, h.commit, h.holder)
                });
                errln!(
                    "deploy-runner: queued: {who} holds the apply lock of {} {}; waiting up to {}s",
                    scope.repo,
                    scope.apply_ref,
                    self.lock_wait.as_secs()
                );
            },
        )?;
        let ledger = crate::ledger::FileLedger::new(&self.state_dir);
        let view = ledger.read(&scope)?;
        // Units detected before a newer deployment landed would roll it back: the caller detects again.
        if let Some(why) = first
            .request
            .ledger_bases
            .as_ref()
            .and_then(|b| deploy_runner_rollout::ledger::moved_since(b, &view, &state.run_id))
        {
            return Err(LocalError::Denied { reason: "ledger_moved".into(), message: why });
        }
        for (account, base) in first.request.detected_from.iter().flatten() {
            if view.accounts.iter().all(|e| &e.account != account) {
                ledger.set_baseline(&scope, account, base, &state.run_id)?;
            }
        }
        for (wave, record) in state.plan.iter_mut().zip(&state.waves) {
            if record.status != WaveStatus::Succeeded {
                wave.request.apply_ref = Some(scope.apply_ref.clone());
                wave.request.deployed_commit = view.deployed(&wave.account).map(str::to_owned);
            }
        }
        Ok(Some(Serialised { _lock: lock, ledger: crate::ledger::LocalWaveLedger { ledger, scope } }))
    }

    /// Resumes `run_id` from its first wave that did not succeed, after the gate re-checks what remains.
    pub fn resume(
        &self,
        run_id: &str,
        actor: &str,
        runner: &mut dyn WaveRunner,
        approver: &mut dyn Approver,
    ) -> Result<RunState, LocalError> {
        let _lock = RunLock::take(&self.state_dir, run_id)?;
        let mut state = load_run(&self.state_dir, run_id)?;
        if state.status == RunStatus::Succeeded {
            return Err(LocalError::State(format!("every wave of run {run_id} already succeeded")));
        }
        for (wave, record) in state.plan.iter().zip(&state.waves) {
            if record.status == WaveStatus::Succeeded {
                continue;
            }
            let request = Request {
                actor: actor.to_owned(),
                request_id: None,
                body: ActionRequest::Rollout(wave.request.clone()),
            };
            self.admit(&request)?;
        }
        let mut store = FileStore::new(&self.state_dir);
        let mut serialised = self.serialise(&mut state)?;
        let approvals = self.approvals(&state);
        let ledger: &mut dyn WaveLedger = match &mut serialised {
            Some(s) => &mut s.ledger,
            None => &mut NoLedger,
        };
        execute(&mut state, &approvals, runner, approver, &mut store, ledger)
            .map_err(io("cannot save the run state"))?;
        Ok(state)
    }
}
