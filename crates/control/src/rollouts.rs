//! The invoker's rollout actions over the Step Functions port: start a rollout as an execution, answer its approval
//! gates, resume it from the first wave that did not succeed, and report each wave's progress and logs.
//!
//! The waves are planned here from the *server-side* policy (deploy order, approvals); the caller's order is ignored.
//! A resume goes through the gate again with the current policy, so a policy tightened since the rollout started
//! also binds the rest of it.

use crate::invoker::{aws_error, error, request_id_conflict, Holder, InvokeResponse, Invoker};
use crate::ports::{ExecutionState, Executions, LedgerStore, Logs, Tasks};
use crate::runid::{claim_of, run_identity, RunIdentity};
use deploy_runner_gate::{ActionRequest, ApprovalAnswer, Container, Request, Rollout, RolloutMode, RunQuery};
use deploy_runner_rollout::execution::{
    build_input, execution_arn, execution_name, wave_progress, ExecutionInput, RolloutHeader, WaveProgress,
    MAX_ATTEMPTS,
};
use deploy_runner_rollout::ledger::moved_since;
use deploy_runner_rollout::{plan_waves, WaveStatus};
use serde::Serialize;

/// A rollout as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutView {
    /// The current execution (the latest attempt).
    pub execution_arn: String,
    /// Step Functions' status of that execution.
    pub execution_status: String,
    /// `running`, `awaiting_approval`, `succeeded` or `failed`.
    pub outcome: &'static str,
    /// 1, then one more per resume.
    pub attempt: u32,
    /// Every wave, in deploy order, including those completed by earlier attempts.
    pub waves: Vec<WaveView>,
}

/// One wave as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveView {
    /// The account.
    pub account: String,
    /// Where the wave is.
    pub status: WaveStatus,
    /// Its ECS task, once started.
    pub task_arn: Option<String>,
    /// Its own log stream, once started.
    pub log_stream: Option<String>,
}

/// The latest execution of a run, read once.
pub(crate) struct FoundRollout {
    arn: String,
    state: ExecutionState,
    input: ExecutionInput,
    progress: Vec<WaveProgress>,
    /// What its executions are named after: the run id's claim (or, for runs started before run ids were bound
    /// to their request, the whole run id).
    name_base: String,
}

impl<T: Tasks + Sync, L: Logs + Sync, E: Executions + Sync, D: LedgerStore + Sync> Invoker<T, L, E, D> {
    fn state_machine(&self) -> Option<&str> {
        self.runtime.state_machine_arn.as_deref().filter(|arn| !arn.is_empty())
    }

    /// The latest execution named after `name_base` (attempt 1, then `-r2`, ...), if any.
    async fn latest_execution(
        &self,
        machine: &str,
        name_base: &str,
    ) -> Result<Option<(String, ExecutionState)>, InvokeResponse> {
        let mut latest = None;
        for attempt in 1..=MAX_ATTEMPTS {
            let arn = execution_arn(machine, &execution_name(name_base, attempt));
            match self.executions.describe(&arn).await {
                Ok(Some(state)) => latest = Some((arn, state)),
                Ok(None) => break,
                Err(e) => return Err(aws_error(None, &e)),
            }
        }
        Ok(latest)
    }

    /// The latest execution of `run_id`, or `None` when it is not a rollout (or there is no state machine). An
    /// execution under the run id's claim that belongs to another run id (another request under the same
    /// request_id) is not this run.
    pub(crate) async fn find_rollout(&self, run_id: &str) -> Result<Option<FoundRollout>, InvokeResponse> {
        let Some(machine) = self.state_machine() else { return Ok(None) };
        let mut found = None;
        for name_base in [claim_of(run_id), run_id] {
            if let Some(latest) = self.latest_execution(machine, name_base).await? {
                found = Some((latest, name_base.to_owned()));
                break;
            }
        }
        let Some(((arn, state), name_base)) = found else { return Ok(None) };
        let input = ExecutionInput::from_json(&state.input)
            .map_err(|e| error(Some(run_id.to_owned()), "run_not_found", &e.to_string()))?;
        if input.run_id != run_id {
            return Ok(None);
        }
        let events = self.executions.history(&arn).await.map_err(|e| aws_error(Some(run_id.to_owned()), &e))?;
        let progress = wave_progress(&input, &events);
        Ok(Some(FoundRollout { arn, state, input, progress, name_base }))
    }

    /// The run id of the rollout whose first execution is named `claim`, if there is one.
    pub(crate) async fn rollout_holding(&self, claim: &str) -> Result<Option<String>, InvokeResponse> {
        let Some(machine) = self.state_machine() else { return Ok(None) };
        match self.executions.describe(&execution_arn(machine, &execution_name(claim, 1))).await {
            Ok(Some(state)) => Ok(Some(ExecutionInput::from_json(&state.input).map(|i| i.run_id).unwrap_or_default())),
            Ok(None) => Ok(None),
            Err(e) => Err(aws_error(None, &e)),
        }
    }

    fn view(&self, found: &FoundRollout) -> RolloutView {
        let outcome = match found.state.status.as_str() {
            "SUCCEEDED" => "succeeded",
            "RUNNING" if found.progress.iter().any(|w| w.status == WaveStatus::AwaitingApproval) => "awaiting_approval",
            "RUNNING" => "running",
            _ => "failed",
        };
        let waves = found
            .progress
            .iter()
            .map(|w| WaveView {
                account: w.account.clone(),
                status: w.status,
                task_arn: w.task_arn.clone(),
                log_stream: w.task_arn.as_deref().map(|arn| self.log_stream(arn)),
            })
            .collect();
        RolloutView {
            execution_arn: found.arn.clone(),
            execution_status: found.state.status.clone(),
            outcome,
            attempt: found.input.attempt,
            waves,
        }
    }

    fn rollout_answer(&self, found: &FoundRollout, message: String) -> InvokeResponse {
        InvokeResponse {
            run_id: Some(found.input.run_id.clone()),
            decision: "allow".into(),
            reason: "ok".into(),
            message,
            log_group: Some(self.runtime.log_group.clone()),
            rollout: Some(self.view(found)),
            ..InvokeResponse::default()
        }
    }

    pub(crate) fn rollout_status(&self, found: FoundRollout) -> InvokeResponse {
        let view = self.view(&found);
        let mut message = format!("rollout {} is {}", found.input.run_id, view.outcome);
        if let (Some(error), Some(cause)) = (&found.state.error, &found.state.cause) {
            message.push_str(&format!(" ({error}: {cause})"));
        }
        self.rollout_answer(&found, message)
    }

    /// A page of one wave's log stream: the named account's, or the latest wave that started a task.
    pub(crate) async fn rollout_logs(&self, query: &RunQuery, found: FoundRollout) -> InvokeResponse {
        let run_id = Some(query.run_id.clone());
        let wave = match &query.account {
            Some(account) => found.progress.iter().find(|w| &w.account == account),
            None => found.progress.iter().rev().find(|w| w.task_arn.is_some()),
        };
        let Some(task_arn) = wave.and_then(|w| w.task_arn.clone()) else {
            let which = query.account.as_deref().map_or("any wave".to_owned(), |a| format!("the {a} wave"));
            return error(run_id, "run_not_found", &format!("{which} of this rollout has not started a task yet"));
        };
        let stream = self.log_stream(&task_arn);
        match self.logs.read(&self.runtime.log_group, &stream, query.next_token.clone()).await {
            Ok(page) => InvokeResponse {
                message: format!("{} line(s)", page.lines.len()),
                task_arn: Some(task_arn),
                log_stream: Some(stream),
                lines: Some(page.lines),
                next_token: page.next_token,
                ..self.rollout_answer(&found, String::new())
            },
            Err(e) => aws_error(run_id, &e),
        }
    }

    fn task_definition(&self, mode: RolloutMode) -> &str {
        let container = if mode == RolloutMode::Plan { Container::Planner } else { Container::Applier };
        self.runtime.task_definitions.for_container(container)
    }

    /// Starts attempt `attempt` of `run_id` (executions named after `name_base`) with the waves of `rollout` not in
    /// `completed`.
    #[allow(clippy::too_many_arguments)]
    async fn start_attempt(
        &self,
        machine: &str,
        run_id: &str,
        name_base: &str,
        attempt: u32,
        actor: &str,
        rollout: &Rollout,
        completed: Vec<String>,
    ) -> InvokeResponse {
        let mut waves = match plan_waves(self.gate.policy(), rollout) {
            Ok(waves) => waves,
            // The gate refuses unknown accounts first; this guards a policy changed between gate and planning.
            Err(e) => return error(Some(run_id.to_owned()), "account_unknown", &e.to_string()),
        };
        let name = execution_name(name_base, attempt);
        // An apply rollout runs only while it holds its repo and apply ref's lock, and each wave learns what its
        // account has deployed (the task refuses an older commit); the state machine records and releases.
        let serialised = rollout.mode == RolloutMode::Apply && self.has_ledger();
        let scope = deploy_runner_rollout::LedgerScope::of(self.gate.policy(), rollout);
        if serialised {
            let holder = execution_arn(machine, &name);
            if let Err(response) = self.take_lock(&scope, run_id, &rollout.git_ref, &holder).await {
                return response;
            }
            match self.ledger.read(&scope).await {
                Ok(view) => {
                    // Units detected before a newer deployment landed would roll it back: detect again.
                    let moved = rollout.ledger_bases.as_ref().and_then(|b| moved_since(b, &view, run_id));
                    if let Some(why) = moved {
                        self.give_back_lock(&scope, run_id).await;
                        return error(Some(run_id.to_owned()), "ledger_moved", &why);
                    }
                    if let Err(e) = self.record_baselines(&scope, rollout, &view, run_id).await {
                        self.give_back_lock(&scope, run_id).await;
                        return aws_error(Some(run_id.to_owned()), &e);
                    }
                    for wave in &mut waves {
                        wave.request.apply_ref = Some(scope.apply_ref.clone());
                        wave.request.deployed_commit = view.deployed(&wave.account).map(str::to_owned);
                    }
                }
                Err(e) => {
                    self.give_back_lock(&scope, run_id).await;
                    return aws_error(Some(run_id.to_owned()), &e);
                }
            }
        } else {
            // Only the ledger says what an account has; a caller's word for it never reaches a task.
            for wave in &mut waves {
                wave.request.deployed_commit = None;
            }
        }
        let header = RolloutHeader {
            actor: actor.to_owned(),
            repo: rollout.repo.clone(),
            git_ref: rollout.git_ref.clone(),
            mode: rollout.mode,
            apply_ref: serialised.then(|| scope.apply_ref.clone()),
        };
        let definition = self.task_definition(rollout.mode).to_owned();
        let mut input = match build_input(self.gate.policy(), run_id, attempt, header, completed, &waves, &definition) {
            Ok(input) => input,
            Err(e) => {
                if serialised {
                    self.give_back_lock(&scope, run_id).await;
                }
                return error(Some(run_id.to_owned()), e.reason(), &e.to_string());
            }
        };
        if !serialised {
            // Without a ledger table the state machine has nothing to record or release.
            input.holds_lock = false;
            input.waves.iter_mut().for_each(|w| w.records_ledger = false);
        }
        match self.executions.start(machine, &name, &input.to_json()).await {
            Ok(arn) => {
                let progress = wave_progress(&input, &[]);
                let state = ExecutionState { status: "RUNNING".into(), input: String::new(), error: None, cause: None };
                let found = FoundRollout { arn, state, input, progress, name_base: name_base.to_owned() };
                let accounts: Vec<&str> = found.input.waves.iter().map(|w| w.account.as_str()).collect();
                let message = format!("started rollout attempt {attempt}: waves {}", accounts.join(" -> "));
                self.rollout_answer(&found, message)
            }
            // The name is taken: by this very run (a retry after it ended), or by another request's.
            Err(e) if e.message.contains("ExecutionAlreadyExists") => {
                let found = self.find_rollout(run_id).await;
                // The lock was (re)taken for an execution that already exists: it stays only while that very
                // execution runs (and then it was already this run's).
                let still_running = matches!(&found, Ok(Some(f)) if f.state.status == "RUNNING");
                if serialised && !still_running {
                    self.give_back_lock(&scope, run_id).await;
                }
                match found {
                    Ok(Some(found)) => {
                        let message = format!("already started for this request_id: rollout {} is {}", run_id, {
                            self.view(&found).outcome
                        });
                        self.rollout_answer(&found, message)
                    }
                    Ok(None) => error(
                        Some(run_id.to_owned()),
                        "request_id_conflict",
                        "an execution of another request holds this request_id; send this one with a new request_id",
                    ),
                    Err(response) => response,
                }
            }
            Err(e) => {
                if serialised {
                    self.give_back_lock(&scope, run_id).await;
                }
                aws_error(Some(run_id.to_owned()), &e)
            }
        }
    }

    pub(crate) async fn start_rollout(&self, request: &Request, rollout: &Rollout, nonce: &[u8]) -> InvokeResponse {
        let Some(machine) = self.state_machine() else {
            return error(
                None,
                "not_supported",
                "this deployment has no rollout state machine (runtime.state_machine_arn)",
            );
        };
        let RunIdentity { run_id, claim, .. } = run_identity(request, nonce);
        // A task under this request id's claim that is not one of this rollout's waves is another request's.
        if let Some(claim) = &claim {
            match self.claim_holder(claim).await {
                Ok(Some(Holder::Task(task))) if task.run_id.as_deref() != Some(run_id.as_str()) => {
                    return request_id_conflict(request)
                }
                Ok(Some(Holder::Rollout(holder))) if holder != run_id => return request_id_conflict(request),
                Ok(_) => {}
                Err(response) => return response,
            }
        }
        self.start_attempt(machine, &run_id, claim_of(&run_id), 1, &request.actor, rollout, Vec::new()).await
    }

    pub(crate) async fn answer_approval(&self, actor: &str, answer: &ApprovalAnswer, approve: bool) -> InvokeResponse {
        let run_id = Some(answer.run_id.clone());
        let found = match self.find_rollout(&answer.run_id).await {
            Ok(Some(found)) => found,
            Ok(None) => return error(run_id, "run_not_found", "no rollout is known for this run_id"),
            Err(response) => return response,
        };
        let waiting =
            found.progress.iter().find(|w| w.account == answer.account).and_then(|w| w.approval_token.clone());
        let (Some(token), "RUNNING") = (waiting, found.state.status.as_str()) else {
            return error(
                run_id,
                "approval_not_waiting",
                &format!("the {} wave of this rollout is not waiting for an approval", answer.account),
            );
        };
        let comment = answer.comment.as_deref().unwrap_or("");
        let sent = if approve {
            let output = serde_json::json!({"approved_by": actor, "comment": comment}).to_string();
            self.executions.send_task_success(&token, &output).await
        } else {
            let cause = if comment.is_empty() {
                format!("rejected by {actor}")
            } else {
                format!("rejected by {actor}: {comment}")
            };
            self.executions.send_task_failure(&token, "Rejected", &cause).await
        };
        match sent {
            Ok(()) => {
                let verb = if approve { "approved" } else { "rejected" };
                self.rollout_answer(&found, format!("{verb} the {} wave", answer.account))
            }
            // The token expired or was answered in the meantime.
            Err(e) if e.message.contains("TaskTimedOut") || e.message.contains("InvalidToken") => error(
                run_id,
                "approval_not_waiting",
                &format!("the {} approval was already answered or timed out", answer.account),
            ),
            Err(e) => aws_error(run_id, &e),
        }
    }

    pub(crate) async fn resume(&self, actor: &str, run_id: &str) -> InvokeResponse {
        let id = Some(run_id.to_owned());
        let Some(machine) = self.state_machine() else {
            return error(id, "not_supported", "this deployment has no rollout state machine");
        };
        let found = match self.find_rollout(run_id).await {
            Ok(Some(found)) => found,
            Ok(None) => return error(id, "run_not_found", "no rollout is known for this run_id"),
            Err(response) => return response,
        };
        match found.state.status.as_str() {
            "RUNNING" | "PENDING_REDRIVE" => {
                return error(id, "nothing_to_resume", "the rollout is still running; resume it after it stops")
            }
            "SUCCEEDED" => return error(id, "nothing_to_resume", "every wave of this rollout already succeeded"),
            _ => {}
        }
        let completed: Vec<String> =
            found.progress.iter().filter(|w| w.status == WaveStatus::Succeeded).map(|w| w.account.clone()).collect();
        // The rest of the rollout goes through the gate again, under today's policy.
        let mut request = match found.input.remaining_request() {
            Ok(request) => request,
            Err(e) => return error(id, "run_not_found", &e.to_string()),
        };
        request.actor = actor.to_owned();
        if let ActionRequest::Rollout(r) = &mut request.body {
            r.units.retain(|u| !completed.iter().any(|a| u.path.split('/').next() == Some(a.as_str())));
        }
        let admitted = match self.gate.check(&request) {
            Ok(admitted) => admitted,
            Err(denial) => {
                return InvokeResponse {
                    run_id: id,
                    decision: "deny".into(),
                    reason: denial.reason.to_string(),
                    message: format!("the rest of the rollout is no longer allowed: {}", denial.message),
                    ..InvokeResponse::default()
                }
            }
        };
        let ActionRequest::Rollout(rest) = &admitted.request.body else {
            return error(id, "run_not_found", "the execution input is not a rollout");
        };
        let name_base = found.name_base.clone();
        self.start_attempt(machine, run_id, &name_base, found.input.attempt + 1, actor, rest, completed).await
    }
}
