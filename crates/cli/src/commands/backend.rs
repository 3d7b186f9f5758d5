//! One interface over the two backends, so every command (and `ci`) behaves the same locally and against AWS:
//! run a rollout, run one request, answer an approval, resume, report status.

use crate::cli::BackendArgs;
use crate::local::{
    answer_approval, interrupt_flag, load_run, task_binary, ApprovalRecord, LocalApprover, LocalError, LocalSequencer,
    LocalTask, LocalWaveRunner,
};
use crate::progress::Progress;
use crate::remote::Remote;
use deploy_runner_gate::{ActionRequest, Gate, Policy, Request, Rollout};
use deploy_runner_rollout::{LedgerScope, LedgerView, RunState, RunStatus, WaveResult};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The local backend's settings.
pub struct LocalBackend {
    policy: Policy,
    policy_json: String,
    state_dir: PathBuf,
    lock_wait: Duration,
    pre_approved: Vec<String>,
    approval_timeout: Duration,
    interrupt: Arc<AtomicBool>,
    progress: Progress,
}

/// Where requests go.
pub enum Backend {
    /// In-process gate, local task processes, the local sequencer.
    Local(Box<LocalBackend>),
    /// The invoker Lambda.
    Aws {
        /// The invoker.
        remote: Remote,
        /// How long to follow a run.
        max_wait: Duration,
        /// Where the followed logs and the run's status go.
        progress: Progress,
    },
}

/// Why a ledger could not be read.
#[derive(Debug, Clone)]
pub struct LedgerRefusal {
    /// The gate (or the invoker) denied the read; otherwise the deployment keeps no ledger or failed.
    pub denied: bool,
    /// `reason: message`.
    pub message: String,
}

impl std::fmt::Display for LedgerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One wave's outcome, for summaries.
#[derive(Debug, Clone, Serialize)]
pub struct WaveReport {
    /// The account.
    pub account: String,
    /// `succeeded`, `failed`, `skipped`, `rejected`, `timed_out`, `interrupted`, ...
    pub status: String,
    /// The units, as the task's wave summary reported them (path, operation, status, add/change/destroy).
    pub units: Vec<Value>,
}

/// A rollout's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    /// The run id (empty when denied before one was assigned).
    pub run_id: String,
    /// `succeeded`, `failed`, `interrupted`, `timed_out` or `denied`.
    pub outcome: String,
    /// Why, when denied or failed before running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every wave, in deploy order.
    pub waves: Vec<WaveReport>,
}

impl RolloutReport {
    /// True when every wave succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcome == "succeeded"
    }

    /// Nothing to apply: newer deployments already cover this one.
    pub fn superseded(message: String) -> RolloutReport {
        RolloutReport { run_id: String::new(), outcome: "superseded".into(), message: Some(message), waves: vec![] }
    }

    fn denied(message: String) -> RolloutReport {
        RolloutReport { run_id: String::new(), outcome: "denied".into(), message: Some(message), waves: vec![] }
    }

    /// A local rollout that could not run: a denial, or a wait for the apply lock that ran out (like `--max-wait`
    /// running out while following an AWS run: `timed_out`, exit 1).
    fn from_local_error(error: LocalError) -> anyhow::Result<RolloutReport> {
        match error {
            LocalError::Denied { reason, message } if reason == "apply_in_progress" => Ok(RolloutReport {
                run_id: String::new(),
                outcome: "timed_out".into(),
                message: Some(format!("{reason}: {message}")),
                waves: vec![],
            }),
            LocalError::Denied { reason, message } => Ok(RolloutReport::denied(format!("{reason}: {message}"))),
            e => Err(e.into()),
        }
    }

    /// The invoker's answer that did not allow the request, as `reason: message` (the same text as local denials).
    fn refused_by(answer: &Value) -> RolloutReport {
        let text = |field: &str| answer[field].as_str().unwrap_or("?").to_owned();
        RolloutReport::denied(format!("{}: {}", text("reason"), text("message")))
    }
}

fn status_name(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn local_report(state: &RunState, events: &[(String, Vec<Value>)]) -> RolloutReport {
    let waves = state
        .waves
        .iter()
        .map(|w| {
            let summary = events.iter().rev().find(|(a, _)| a == &w.account).and_then(|(_, events)| {
                events.iter().rev().find(|e| e["event"] == "wave_summary").map(|e| e["units"].clone())
            });
            let units = summary.and_then(|u| u.as_array().cloned()).unwrap_or_default();
            WaveReport { account: w.account.clone(), status: status_name(w.status), units }
        })
        .collect();
    let outcome = match state.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Failed | RunStatus::Running => "failed",
    };
    RolloutReport { run_id: state.run_id.clone(), outcome: outcome.into(), message: None, waves }
}

impl Backend {
    /// The backend the flags ask for: AWS with --function-name, else local (which needs --config).
    pub fn from_args(args: &BackendArgs) -> anyhow::Result<Backend> {
        if let Some(function) = &args.function_name {
            return Ok(Backend::Aws {
                remote: Remote::connect(function)?,
                max_wait: args.max_wait,
                progress: Progress::for_stderr(),
            });
        }
        let Some(path) = &args.config else {
            anyhow::bail!("the local backend needs --config POLICY.json (or use --function-name for AWS)");
        };
        let (policy_json, policy) = super::check::read_policy(path)?;
        for account in &args.pre_approve {
            if policy.account(account).is_none() {
                anyhow::bail!("--approve {account}: the policy has no such account");
            }
        }
        Ok(Backend::Local(Box::new(LocalBackend {
            policy,
            policy_json,
            state_dir: args.state_dir.clone(),
            lock_wait: args.max_wait,
            pre_approved: args.pre_approve.clone(),
            approval_timeout: Duration::from_secs(args.approval_timeout),
            interrupt: interrupt_flag()?,
            progress: Progress::for_stderr(),
        })))
    }

    /// The policy, when local (for checks like deploy order warnings).
    pub fn local_policy(&self) -> Option<&Policy> {
        match self {
            Backend::Local(local) => Some(&local.policy),
            Backend::Aws { .. } => None,
        }
    }

    fn sequencer(local: &LocalBackend) -> LocalSequencer {
        LocalSequencer {
            policy: local.policy.clone(),
            state_dir: local.state_dir.clone(),
            lock_wait: local.lock_wait,
            interrupt: local.interrupt.clone(),
        }
    }

    /// The deployment ledger of `repo` at `apply_ref` (`None`: the policy's first apply ref). `Ok(Err(refusal))`
    /// when this deployment keeps none (an AWS deployment older than the ledger) or refuses to show it.
    pub fn ledger(
        &self,
        actor: &str,
        repo: &str,
        apply_ref: Option<&str>,
    ) -> anyhow::Result<Result<LedgerView, LedgerRefusal>> {
        match self {
            Backend::Local(local) => {
                let apply_ref = apply_ref
                    .map(str::to_owned)
                    .or_else(|| local.policy.document().apply_refs.first().cloned())
                    .unwrap_or_default();
                let request = json!({"action": "ledger", "actor": actor, "repo": repo, "apply_ref": apply_ref});
                let decision = Gate::new(local.policy.clone()).evaluate(request.to_string().as_bytes()).decision;
                if !decision.is_allowed() {
                    let message = format!("{}: {}", decision.reason, decision.message);
                    return Ok(Err(LedgerRefusal { denied: true, message }));
                }
                let scope = LedgerScope::new(repo, &apply_ref);
                Ok(Ok(crate::ledger::FileLedger::new(&local.state_dir).read(&scope)?))
            }
            Backend::Aws { remote, .. } => {
                let mut request = json!({"action": "ledger", "actor": actor, "repo": repo});
                if let Some(apply_ref) = apply_ref {
                    request["apply_ref"] = json!(apply_ref);
                }
                let answer = remote.call(&request)?;
                if answer["decision"] != "allow" {
                    let text = |field: &str| answer[field].as_str().unwrap_or("?").to_owned();
                    let message = format!("{}: {}", text("reason"), text("message"));
                    return Ok(Err(LedgerRefusal { denied: answer["decision"] == "deny", message }));
                }
                Ok(serde_json::from_value(answer["ledger"].clone())
                    .map_err(|e| LedgerRefusal { denied: false, message: format!("unreadable ledger: {e}") }))
            }
        }
    }

    /// How long to wait for runs and locks.
    pub fn max_wait(&self) -> Duration {
        match self {
            Backend::Local(local) => local.lock_wait,
            Backend::Aws { max_wait, .. } => *max_wait,
        }
    }

    /// How often to look again while another apply rollout holds the lock.
    pub fn lock_poll(&self) -> Duration {
        match self {
            Backend::Local(_) => Duration::from_millis(250),
            Backend::Aws { .. } => Duration::from_secs(5),
        }
    }

    fn task(local: &LocalBackend) -> LocalTask {
        LocalTask {
            binary: task_binary(),
            policy_json: local.policy_json.clone(),
            interrupt: local.interrupt.clone(),
            grace: Duration::from_secs(30),
            echo: local.progress.echo(),
            // Absolute, since the task runs in its own directory.
            tf_state_dir: Some(
                std::path::absolute(local.state_dir.join("tfstate")).unwrap_or(local.state_dir.join("tfstate")),
            ),
        }
    }

    fn runner(local: &LocalBackend, actor: &str) -> LocalWaveRunner {
        let progress = local.progress.clone();
        LocalWaveRunner {
            task: Backend::task(local),
            state_dir: local.state_dir.clone(),
            actor: actor.to_owned(),
            events: Vec::new(),
            on_wave: Box::new(move |wave, result| {
                let units = wave.request.units.len();
                let line = match result {
                    None => {
                        progress.line(&format!("== {} wave: {units} unit(s) ==", wave.account));
                        progress.status(format!("{} wave: {units} unit(s)", wave.account));
                        return;
                    }
                    Some(WaveResult::Exited(Some(0))) => format!("-- {} wave succeeded", wave.account),
                    Some(WaveResult::Exited(Some(code))) => format!("-- {} wave FAILED (exit {code})", wave.account),
                    Some(WaveResult::Exited(None)) => format!("-- {} wave FAILED (no exit code)", wave.account),
                    Some(WaveResult::Interrupted) => format!("-- {} wave interrupted", wave.account),
                };
                progress.idle();
                progress.line(&line);
            }),
        }
    }

    fn approver(local: &LocalBackend) -> LocalApprover {
        LocalApprover::new(
            local.state_dir.clone(),
            local.pre_approved.clone(),
            local.approval_timeout,
            local.interrupt.clone(),
            true,
        )
        .with_progress(local.progress.clone())
    }

    /// Gates and runs a rollout to its end (AWS: follows it up to --max-wait).
    pub fn rollout(&self, request: &Request, local_run_id: &str) -> anyhow::Result<RolloutReport> {
        let ActionRequest::Rollout(rollout) = &request.body else { anyhow::bail!("not a rollout request") };
        match self {
            Backend::Local(local) => {
                let sequencer = Backend::sequencer(local);
                let admitted: Rollout = match sequencer.admit(request) {
                    Ok(rollout) => rollout,
                    Err(LocalError::Denied { reason, message }) => {
                        return Ok(RolloutReport::denied(format!("{reason}: {message}")))
                    }
                    Err(e) => return Err(e.into()),
                };
                let mut runner = Backend::runner(local, &request.actor);
                match sequencer.start(local_run_id, &admitted, &mut runner, &mut Backend::approver(local)) {
                    Ok(state) => Ok(local_report(&state, &runner.events)),
                    Err(e) => RolloutReport::from_local_error(e),
                }
            }
            Backend::Aws { remote, max_wait, progress } => {
                let started = std::time::Instant::now();
                let mut queued = false;
                let answer = loop {
                    let answer = remote.call(&request.to_json())?;
                    // One apply rollout per repo and apply ref runs at a time: wait for the one ahead to stop.
                    if answer["reason"] != "apply_in_progress" {
                        break answer;
                    }
                    if started.elapsed() >= *max_wait {
                        let mut report = RolloutReport::refused_by(&answer);
                        report.outcome = "timed_out".into();
                        return Ok(report);
                    }
                    if !queued {
                        errln!("deploy-runner: queued: {}", answer["message"].as_str().unwrap_or("?"));
                        queued = true;
                    }
                    std::thread::sleep(self.lock_poll().min(max_wait.saturating_sub(started.elapsed())));
                };
                if answer["decision"] != "allow" {
                    return Ok(RolloutReport::refused_by(&answer));
                }
                let run_id = answer["run_id"].as_str().unwrap_or_default().to_owned();
                errln!("deploy-runner: rollout {run_id} started ({} units)", rollout.units.len());
                Backend::follow_rollout(remote, &request.actor, &run_id, *max_wait, progress)
            }
        }
    }

    fn follow_rollout(
        remote: &Remote,
        actor: &str,
        run_id: &str,
        max_wait: Duration,
        progress: &Progress,
    ) -> anyhow::Result<RolloutReport> {
        let followed = remote.follow(actor, run_id, max_wait, progress)?;
        let waves = followed.status["rollout"]["waves"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                let account = w["account"].as_str().unwrap_or_default().to_owned();
                let units = followed.summaries.get(&account).and_then(|s| s["units"].as_array().cloned());
                WaveReport {
                    account,
                    status: w["status"].as_str().unwrap_or_default().to_owned(),
                    units: units.unwrap_or_default(),
                }
            })
            .collect();
        Ok(RolloutReport { run_id: run_id.to_owned(), outcome: followed.outcome, message: None, waves })
    }

    /// Gates and runs one request to its end; returns the exit code to use (0, 1 failed, 3 denied).
    pub fn single(&self, request: &Request) -> anyhow::Result<u8> {
        match self {
            Backend::Local(local) => {
                let decision = Gate::new(local.policy.clone()).evaluate(request.to_json().to_string().as_bytes());
                if !decision.decision.is_allowed() {
                    errln!("deploy-runner: denied ({}): {}", decision.decision.reason, decision.decision.message);
                    return Ok(crate::EXIT_DENIED);
                }
                let run_id = format!("local-{}-{}-{}", request.body.action(), unix_seconds(), std::process::id());
                let log = local.state_dir.join("runs").join(&run_id).join("task.log");
                let request = with_ledger_facts(local, request)?;
                let outcome = Backend::task(local).run(&request, &run_id, "", &log)?;
                errln!("deploy-runner: {run_id} exited {:?} (log: {})", outcome.exit_code, log.display());
                Ok(if outcome.exit_code == Some(0) && !outcome.interrupted { 0 } else { crate::EXIT_FAILED })
            }
            Backend::Aws { remote, max_wait, progress } => {
                let answer = remote.call(&request.to_json())?;
                if answer["decision"] != "allow" {
                    errln!("deploy-runner: {} ({}): {}", answer["decision"], answer["reason"], answer["message"]);
                    return Ok(if answer["decision"] == "deny" { crate::EXIT_DENIED } else { crate::EXIT_FAILED });
                }
                let run_id = answer["run_id"].as_str().unwrap_or_default();
                errln!("deploy-runner: started {run_id}: {}", answer["message"]);
                let followed = remote.follow(&request.actor, run_id, *max_wait, progress)?;
                Ok(if followed.outcome == "succeeded" { 0 } else { crate::EXIT_FAILED })
            }
        }
    }

    /// Answers a rollout's approval.
    pub fn answer(
        &self,
        actor: &str,
        run_id: &str,
        account: &str,
        approve: bool,
        comment: Option<String>,
    ) -> anyhow::Result<u8> {
        let action = if approve { "approve" } else { "reject" };
        let mut request = json!({"action": action, "actor": actor, "run_id": run_id, "account": account});
        if let Some(comment) = &comment {
            request["comment"] = json!(comment);
        }
        match self {
            Backend::Local(local) => {
                let decision = Gate::new(local.policy.clone()).evaluate(request.to_string().as_bytes()).decision;
                if !decision.is_allowed() {
                    errln!("deploy-runner: denied ({}): {}", decision.reason, decision.message);
                    return Ok(crate::EXIT_DENIED);
                }
                let record = ApprovalRecord { approved: approve, by: actor.to_owned(), comment };
                answer_approval(&local.state_dir, run_id, account, &record)?;
                outln!("{action}d the {account} wave of {run_id}");
                Ok(0)
            }
            Backend::Aws { remote, .. } => report_answer(&remote.call(&request)?),
        }
    }

    /// Resumes a rollout from its first wave that did not succeed.
    pub fn resume(&self, actor: &str, run_id: &str) -> anyhow::Result<RolloutReport> {
        match self {
            Backend::Local(local) => {
                let sequencer = Backend::sequencer(local);
                let mut runner = Backend::runner(local, actor);
                match sequencer.resume(run_id, actor, &mut runner, &mut Backend::approver(local)) {
                    Ok(state) => Ok(local_report(&state, &runner.events)),
                    Err(e) => RolloutReport::from_local_error(e),
                }
            }
            Backend::Aws { remote, max_wait, progress } => {
                let started = std::time::Instant::now();
                let mut queued = false;
                let answer = loop {
                    let answer = remote.call(&json!({"action": "resume", "actor": actor, "run_id": run_id}))?;
                    if answer["reason"] != "apply_in_progress" || started.elapsed() >= *max_wait {
                        break answer;
                    }
                    if !std::mem::replace(&mut queued, true) {
                        errln!("deploy-runner: queued: {}", answer["message"].as_str().unwrap_or("?"));
                    }
                    std::thread::sleep(self.lock_poll().min(max_wait.saturating_sub(started.elapsed())));
                };
                if answer["reason"] == "apply_in_progress" {
                    let mut report = RolloutReport::refused_by(&answer);
                    report.outcome = "timed_out".into();
                    return Ok(report);
                }
                if answer["decision"] != "allow" {
                    return Ok(RolloutReport::refused_by(&answer));
                }
                Backend::follow_rollout(remote, actor, run_id, *max_wait, progress)
            }
        }
    }

    /// The status of a run, as JSON.
    pub fn status(&self, actor: &str, run_id: &str) -> anyhow::Result<Value> {
        match self {
            Backend::Local(local) => Ok(serde_json::to_value(load_run(&local.state_dir, run_id)?)?),
            Backend::Aws { remote, .. } => remote.call(&json!({"action": "status", "actor": actor, "run_id": run_id})),
        }
    }
}

fn report_answer(answer: &Value) -> anyhow::Result<u8> {
    if answer["reason"] == "entry_point_denied" {
        errln!(
            "deploy-runner: approve and reject go to the approvals function, which CI's credential can't invoke: \
             --function-name <name>-approver (terraform output approver_function_name)"
        );
    }
    outln!("{}", deploy_runner_gate::text::to_json_string_pretty(answer)?);
    Ok(match answer["decision"].as_str() {
        Some("allow") => 0,
        Some("deny") => crate::EXIT_DENIED,
        _ => crate::EXIT_FAILED,
    })
}

/// A single-unit `apply` as the local task must see it: with the commit the unit's account has deployed (the local
/// ledger, as the invoker reads the table), so it can't roll the account back (`stale_commit`).
fn with_ledger_facts(local: &LocalBackend, request: &Request) -> anyhow::Result<Request> {
    let ActionRequest::Apply(target) = &request.body else { return Ok(request.clone()) };
    let mut target = target.clone();
    let scope = LedgerScope::new(&target.repo, target.ledger_ref(&local.policy));
    let view = crate::ledger::FileLedger::new(&local.state_dir).read(&scope)?;
    let account = target.path.split('/').next().unwrap_or_default();
    target.deployed_commit = view.deployed(account).map(str::to_owned);
    Ok(Request { body: ActionRequest::Apply(target), ..request.clone() })
}

/// Seconds since the epoch (local run ids).
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
