//! The rollout semantics, shared by the local sequencer and (as the reference for) the Step Functions machine:
//! waves in order, an optional approval before a wave, halt at the first failed wave, resume from where it stopped.
//!
//! Running a wave, asking for an approval and persisting state are ports, so the same logic drives local
//! processes in the CLI and in-memory fakes in tests. State is saved after every transition, so a crash or a
//! Ctrl-C loses nothing and `resume` continues from the first wave that has not succeeded.

use crate::ledger::WaveLedger;
use crate::waves::Wave;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a wave is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveStatus {
    /// Not started.
    Pending,
    /// Waiting for an approval.
    AwaitingApproval,
    /// Its task is running.
    Running,
    /// Its task exited 0.
    Succeeded,
    /// Its task failed, or exited without an exit code.
    Failed,
    /// Its approval was rejected.
    Rejected,
    /// Its approval timed out.
    TimedOut,
    /// Stopped by the user (Ctrl-C); resumable.
    Interrupted,
    /// Never ran because an earlier wave did not succeed.
    Skipped,
}

/// One wave's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveRecord {
    /// The account.
    pub account: String,
    /// Its status.
    pub status: WaveStatus,
    /// The task's exit code, when it had one.
    pub exit_code: Option<i32>,
    /// Who approved or rejected, or why it failed.
    pub detail: Option<String>,
}

/// How the whole run ended (so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished.
    Running,
    /// Every wave succeeded.
    Succeeded,
    /// A wave failed, was rejected or timed out; later waves did not run.
    Failed,
    /// Stopped by the user; resumable.
    Interrupted,
}

/// The persisted state of one rollout run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The run id.
    pub run_id: String,
    /// The waves, as planned.
    pub plan: Vec<Wave>,
    /// Each wave's record, in the same order.
    pub waves: Vec<WaveRecord>,
    /// The run's status.
    pub status: RunStatus,
}

impl RunState {
    /// A fresh run of `plan`.
    pub fn new(run_id: &str, plan: Vec<Wave>) -> RunState {
        let waves = plan
            .iter()
            .map(|w| WaveRecord {
                account: w.account.clone(),
                status: WaveStatus::Pending,
                exit_code: None,
                detail: None,
            })
            .collect();
        RunState { run_id: run_id.to_owned(), plan, waves, status: RunStatus::Running }
    }
}

/// What a wave's task said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveResult {
    /// The task ended; `None` when it ended without an exit code (which is a failure).
    Exited(Option<i32>),
    /// The user stopped it.
    Interrupted,
}

/// An approval's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Go ahead (by whom).
    Approved(String),
    /// Stop the rollout (by whom).
    Rejected(String),
    /// Nobody answered in time.
    TimedOut,
    /// The user stopped the run while it waited.
    Interrupted,
}

/// Runs one wave's task to completion.
pub trait WaveRunner {
    /// Runs `wave` (index `index`) of run `run_id`.
    fn run(&mut self, run_id: &str, index: usize, wave: &Wave) -> WaveResult;
}

/// Asks for approval before a wave.
pub trait Approver {
    /// Whether `wave` of `run_id` may run.
    fn approve(&mut self, run_id: &str, wave: &Wave) -> Approval;
}

/// Persists run state.
pub trait RunStore {
    /// Saves `state`, replacing what was there.
    fn save(&mut self, state: &RunState) -> std::io::Result<()>;
}

/// Which accounts need an approval before their wave.
pub type ApprovalAccounts<'a> = &'a [String];

/// Runs (or resumes) `state` to its end: waves that already succeeded are skipped; the first wave that does not
/// succeed stops the run and marks the rest skipped. A succeeded apply wave is recorded in `ledger` before it
/// counts. Saves after every transition.
pub fn execute(
    state: &mut RunState,
    approvals: ApprovalAccounts<'_>,
    runner: &mut dyn WaveRunner,
    approver: &mut dyn Approver,
    store: &mut dyn RunStore,
    ledger: &mut dyn WaveLedger,
) -> std::io::Result<RunStatus> {
    state.status = RunStatus::Running;
    // A resumed run retries what did not succeed; what did is never run again.
    for record in &mut state.waves {
        if record.status != WaveStatus::Succeeded {
            *record = WaveRecord {
                account: record.account.clone(),
                status: WaveStatus::Pending,
                exit_code: None,
                detail: None,
            };
        }
    }
    store.save(state)?;
    for index in 0..state.plan.len() {
        if state.waves[index].status == WaveStatus::Succeeded {
            continue;
        }
        let wave = state.plan[index].clone();
        if approvals.contains(&wave.account) {
            state.waves[index].status = WaveStatus::AwaitingApproval;
            store.save(state)?;
            let (status, detail) = match approver.approve(&state.run_id, &wave) {
                Approval::Approved(by) => (None, Some(format!("approved by {by}"))),
                Approval::Rejected(by) => (Some(WaveStatus::Rejected), Some(format!("rejected by {by}"))),
                Approval::TimedOut => (Some(WaveStatus::TimedOut), Some("approval timed out".to_owned())),
                Approval::Interrupted => (Some(WaveStatus::Interrupted), Some("interrupted".to_owned())),
            };
            state.waves[index].detail = detail;
            if let Some(stop) = status {
                return finish(state, index, stop, store);
            }
        }
        state.waves[index].status = WaveStatus::Running;
        store.save(state)?;
        let (status, exit_code) = match runner.run(&state.run_id, index, &wave) {
            WaveResult::Exited(Some(0)) => (WaveStatus::Succeeded, Some(0)),
            WaveResult::Exited(code) => (WaveStatus::Failed, code),
            WaveResult::Interrupted => (WaveStatus::Interrupted, None),
        };
        state.waves[index].exit_code = exit_code;
        if exit_code.is_none() && status == WaveStatus::Failed {
            state.waves[index].detail = Some("the task ended without an exit code".to_owned());
        }
        if status != WaveStatus::Succeeded {
            return finish(state, index, status, store);
        }
        // An apply wave counts once the ledger says so; if it can't, the run stops here (resume re-applies it).
        if wave.request.mode == deploy_runner_gate::RolloutMode::Apply {
            if let Err(e) = ledger.record(&state.run_id, &wave) {
                state.waves[index].detail = Some(format!("the deployment ledger could not be written: {e}"));
                return finish(state, index, WaveStatus::Failed, store);
            }
        }
        state.waves[index].status = WaveStatus::Succeeded;
        store.save(state)?;
    }
    state.status = RunStatus::Succeeded;
    store.save(state)?;
    Ok(state.status)
}

/// Records why wave `index` stopped the run and marks the later waves skipped.
fn finish(
    state: &mut RunState,
    index: usize,
    status: WaveStatus,
    store: &mut dyn RunStore,
) -> std::io::Result<RunStatus> {
    state.waves[index].status = status;
    for later in &mut state.waves[index + 1..] {
        later.status = WaveStatus::Skipped;
    }
    state.status = if status == WaveStatus::Interrupted { RunStatus::Interrupted } else { RunStatus::Failed };
    store.save(state)?;
    Ok(state.status)
}

/// Run state as JSON files under a state directory (`<dir>/runs/<run_id>.json`), written atomically.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store under `state_dir` (e.g. `.deploy-runner/`).
    pub fn new(state_dir: &Path) -> FileStore {
        FileStore { dir: state_dir.join("runs") }
    }

    fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    /// The saved state of `run_id`, if any.
    pub fn load(&self, run_id: &str) -> std::io::Result<Option<RunState>> {
        match std::fs::read(self.path(run_id)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl RunStore for FileStore {
    fn save(&mut self, state: &RunState) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(&state.run_id);
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
        // Rename is atomic: a crash leaves the old state or the new one, never half of either.
        std::fs::rename(temporary, path)
    }
}
