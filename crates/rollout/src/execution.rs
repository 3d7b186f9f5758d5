//! A rollout as a Step Functions execution: the input the invoker starts it with, its name, and what its history
//! says about each wave. Pure, so the invoker's logic is tested without AWS and the definition's contract lives next
//! to the definition ([`crate::asl`]).
//!
//! Each wave carries the exact command of its ECS task: the wave's typed request, re-encoded. That is the only copy of
//! the units in the input (Step Functions caps input at 256 KiB), and `resume` rebuilds the remaining waves from it.

use crate::asl::TASK_STATE;
use crate::ledger::LedgerScope;
use crate::sequencer::WaveStatus;
use crate::waves::Wave;
use deploy_runner_gate::{ActionRequest, Policy, Request, Rollout, RolloutMode};
use serde::{Deserialize, Serialize};

/// Step Functions' limit on an execution's input.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;
/// How many times one run may be resumed (each resume is a new execution).
pub const MAX_ATTEMPTS: u32 = 50;
/// The container command prefix of a wave's task.
pub const TASK_COMMAND: [&str; 3] = ["deploy-runner-task", "run", "--request"];

/// Who asked for the rollout and what it deploys (for notifications and the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutHeader {
    /// CI's actor.
    pub actor: String,
    /// The repo URL.
    pub repo: String,
    /// The ref (branch or SHA).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Plan or apply.
    pub mode: RolloutMode,
    /// The apply ref the rollout's ledger and lock are kept under (apply rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_ref: Option<String>,
}

/// One wave as the state machine's `Map` iterates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionWave {
    /// The account.
    pub account: String,
    /// Its deploy order.
    pub deploy_order: u64,
    /// Whether an approval gates it.
    pub needs_approval: bool,
    /// The ECS task definition (planner or applier).
    pub task_definition: String,
    /// The container command: [`TASK_COMMAND`] and the wave's request JSON.
    pub command: Vec<String>,
    /// Whether a success moves the account's ledger entry (apply rollouts).
    #[serde(default)]
    pub records_ledger: bool,
    /// The ledger's partition key ([`LedgerScope::key`]).
    #[serde(default)]
    pub ledger_key: String,
    /// The ledger's sort key for this account ([`ledger_account_key`]).
    #[serde(default)]
    pub ledger_account: String,
    /// The commit the wave applies.
    #[serde(default)]
    pub commit: String,
    /// The commit the account's entry held when the rollout started ([`NO_DEPLOYED_COMMIT`]: none); the entry
    /// moves only from it.
    #[serde(default)]
    pub deployed_commit: String,
}

/// The ledger's sort key of an account's entry.
pub fn ledger_account_key(account: &str) -> String {
    format!("account#{account}")
}

/// `deployed_commit` of an account with no ledger entry (never a commit id).
pub const NO_DEPLOYED_COMMIT: &str = "none";

/// The ledger's sort key of a scope's apply lock.
pub const LOCK_SORT_KEY: &str = "lock";

/// The whole execution input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionInput {
    /// The run id (the first execution's name; resumes share it).
    pub run_id: String,
    /// 1 for the first execution, then one more per resume.
    pub attempt: u32,
    /// What is rolled out, by whom.
    pub rollout: RolloutHeader,
    /// Accounts whose waves succeeded in earlier attempts (never run again).
    pub completed: Vec<String>,
    /// The waves still to run, in deploy order.
    pub waves: Vec<ExecutionWave>,
    /// Whether this execution holds its scope's apply lock (apply rollouts), released when it stops.
    #[serde(default)]
    pub holds_lock: bool,
    /// The ledger's partition key of the lock it holds.
    #[serde(default)]
    pub ledger_key: String,
}

/// Why an execution input could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    /// The input would exceed Step Functions' limit.
    #[error("the rollout's execution input is {0} bytes, over Step Functions' 256 KiB; split the rollout")]
    TooLarge(usize),
    /// The input is not what this version writes.
    #[error("the execution input is not a deploy-runner rollout: {0}")]
    Unreadable(String),
    /// Too many resumes.
    #[error("run has been resumed {MAX_ATTEMPTS} times; start a new rollout")]
    TooManyAttempts,
}

impl ExecutionError {
    /// The invoker's stable reason code for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ExecutionError::TooLarge(_) => "rollout_too_large",
            ExecutionError::Unreadable(_) => "input_unreadable",
            ExecutionError::TooManyAttempts => "too_many_attempts",
        }
    }
}

/// The execution name of `attempt` of `run_id`: the run id itself, then `<run_id>-r<attempt>`.
pub fn execution_name(run_id: &str, attempt: u32) -> String {
    if attempt <= 1 {
        run_id.to_owned()
    } else {
        format!("{run_id}-r{attempt}")
    }
}

/// An execution's ARN from its state machine's ARN and its name.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!("{}:{name}", state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
}

/// The deploy task's command for `request`: [`TASK_COMMAND`] and the typed request, re-encoded, so only validated
/// fields reach the task. ECS overrides, the state machine's waves and local task processes all use it.
pub fn task_command(request: &Request) -> Vec<String> {
    let mut command: Vec<String> = TASK_COMMAND.iter().map(|s| (*s).to_owned()).collect();
    command.push(request.to_json().to_string());
    command
}

/// The task command of a wave: its rollout, as a request of `actor`.
pub fn wave_command(actor: &str, wave: &Rollout) -> Vec<String> {
    task_command(&Request { actor: actor.to_owned(), request_id: None, body: ActionRequest::Rollout(wave.clone()) })
}

/// Builds the input of one execution. `task_definition` is the planner's or the applier's, by mode.
pub fn build_input(
    policy: &Policy,
    run_id: &str,
    attempt: u32,
    header: RolloutHeader,
    completed: Vec<String>,
    waves: &[Wave],
    task_definition: &str,
) -> Result<ExecutionInput, ExecutionError> {
    if attempt > MAX_ATTEMPTS {
        return Err(ExecutionError::TooManyAttempts);
    }
    let applies = header.mode == RolloutMode::Apply;
    let ledger_key = waves.first().map(|w| LedgerScope::of(policy, &w.request).key()).unwrap_or_default();
    let waves: Vec<ExecutionWave> = waves
        .iter()
        .filter(|w| !completed.contains(&w.account))
        .map(|w| ExecutionWave {
            account: w.account.clone(),
            deploy_order: w.deploy_order,
            // Approvals gate changes; a plan changes nothing.
            needs_approval: applies && policy.needs_approval(&w.account),
            task_definition: task_definition.to_owned(),
            command: wave_command(&header.actor, &w.request),
            records_ledger: applies,
            ledger_key: if applies { ledger_key.clone() } else { String::new() },
            ledger_account: ledger_account_key(&w.account),
            commit: w.request.git_ref.clone(),
            deployed_commit: w.request.deployed_commit.clone().unwrap_or_else(|| NO_DEPLOYED_COMMIT.to_owned()),
        })
        .collect();
    let input = ExecutionInput {
        run_id: run_id.to_owned(),
        attempt,
        rollout: header,
        completed,
        waves,
        holds_lock: applies,
        ledger_key: if applies { ledger_key } else { String::new() },
    };
    let size = input.to_json().len();
    if size > MAX_INPUT_BYTES {
        return Err(ExecutionError::TooLarge(size));
    }
    Ok(input)
}

impl ExecutionInput {
    /// The JSON the execution is started with.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an execution's input.
    pub fn from_json(text: &str) -> Result<ExecutionInput, ExecutionError> {
        serde_json::from_str(text).map_err(|e| ExecutionError::Unreadable(e.to_string()))
    }

    /// The rollout request the remaining waves amount to, as the gate must see it again before a resume.
    pub fn remaining_request(&self) -> Result<Request, ExecutionError> {
        let mut units = Vec::new();
        let mut parallelism = None;
        for wave in &self.waves {
            let Some(json) = wave.command.get(TASK_COMMAND.len()) else {
                return Err(ExecutionError::Unreadable(format!("wave {} has no request", wave.account)));
            };
            match Request::decode(json.as_bytes()) {
                Ok(Request { body: ActionRequest::Rollout(r), .. }) => {
                    parallelism = parallelism.or(r.parallelism);
                    units.extend(r.units);
                }
                Ok(_) => return Err(ExecutionError::Unreadable(format!("wave {} is not a rollout", wave.account))),
                Err(e) => return Err(ExecutionError::Unreadable(e.message)),
            }
        }
        let header = &self.rollout;
        Ok(Request {
            actor: header.actor.clone(),
            request_id: None,
            body: ActionRequest::Rollout(Rollout {
                repo: header.repo.clone(),
                git_ref: header.git_ref.clone(),
                mode: header.mode,
                units,
                apply_ref: header.apply_ref.clone(),
                deployed_commit: None,
                ledger_bases: None,
                detected_from: None,
                parallelism,
            }),
        })
    }
}

/// One event of an execution's history, reduced to what the invoker reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryEvent {
    /// A state was entered with this input.
    StateEntered {
        /// The state's name.
        name: String,
        /// Its input (JSON).
        input: String,
    },
    /// A task state scheduled its resource with these (resolved) parameters.
    TaskScheduled {
        /// `lambda`, `ecs`, ...
        resource_type: String,
        /// The parameters (JSON), including a `.waitForTaskToken` token.
        parameters: String,
    },
    /// A task state's resource answered (submitted or succeeded), with this output (JSON).
    TaskOutput {
        /// `lambda`, `ecs`, ...
        resource_type: String,
        /// The output.
        output: String,
    },
}

/// What an execution's history says about one wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveProgress {
    /// The account.
    pub account: String,
    /// Where the wave is.
    pub status: WaveStatus,
    /// Its ECS task, once started.
    pub task_arn: Option<String>,
    /// The approval's task token while the wave waits for one (never shown to callers).
    #[serde(skip)]
    pub approval_token: Option<String>,
}

/// Reads the waves' progress from the history of one execution of `input`. Waves completed by earlier attempts are
/// reported as succeeded; waves not reached yet are pending.
pub fn wave_progress(input: &ExecutionInput, events: &[HistoryEvent]) -> Vec<WaveProgress> {
    let mut waves: Vec<WaveProgress> = input
        .completed
        .iter()
        .map(|a| (a, WaveStatus::Succeeded))
        .chain(input.waves.iter().map(|w| (&w.account, WaveStatus::Pending)))
        .map(|(account, status)| WaveProgress {
            account: account.clone(),
            status,
            task_arn: None,
            approval_token: None,
        })
        .collect();
    let mut current: Option<usize> = None;
    for event in events {
        match event {
            HistoryEvent::StateEntered { name, input } => {
                let status = match name.as_str() {
                    "Approval" => WaveStatus::AwaitingApproval,
                    n if n == TASK_STATE => WaveStatus::Running,
                    "WaveSucceeded" => WaveStatus::Succeeded,
                    "WaveFailed" => WaveStatus::Failed,
                    _ => continue,
                };
                let account = serde_json::from_str::<serde_json::Value>(input)
                    .ok()
                    .and_then(|v| v["wave"]["account"].as_str().map(str::to_owned));
                current = account.and_then(|a| waves.iter().position(|w| w.account == a));
                if let Some(wave) = current.map(|i| &mut waves[i]) {
                    wave.status = status;
                    if status != WaveStatus::AwaitingApproval {
                        wave.approval_token = None;
                    }
                }
            }
            HistoryEvent::TaskScheduled { resource_type, parameters } if resource_type == "lambda" => {
                let token = serde_json::from_str::<serde_json::Value>(parameters)
                    .ok()
                    .and_then(|v| v["Payload"]["task_token"].as_str().map(str::to_owned));
                if let (Some(wave), Some(token)) = (current.map(|i| &mut waves[i]), token) {
                    if wave.status == WaveStatus::AwaitingApproval {
                        wave.approval_token = Some(token);
                    }
                }
            }
            HistoryEvent::TaskOutput { resource_type, output } if resource_type == "ecs" => {
                let value: serde_json::Value = serde_json::from_str(output).unwrap_or_default();
                // runTask answers `Tasks: [..]` when submitted; the .sync completion is the described task itself.
                let arn = value["Tasks"].as_array().and_then(|t| t.first()).unwrap_or(&value)["TaskArn"]
                    .as_str()
                    .map(str::to_owned);
                if let (Some(wave), Some(arn)) = (current.map(|i| &mut waves[i]), arn) {
                    wave.task_arn = Some(arn);
                }
            }
            _ => {}
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waves::plan_waves;
    use deploy_runner_gate::{ChangeKind, RolloutUnit};

    use crate::test_policy as policy;

    fn rollout() -> Rollout {
        let unit =
            |p: &str| RolloutUnit { path: p.into(), change: ChangeKind::Affected, source_ref: None, depends_on: None };
        Rollout {
            repo: "https://github.com/acme/infrastructure-live.git".into(),
            git_ref: "main".into(),
            mode: RolloutMode::Apply,
            units: vec![unit("prod/app"), unit("dev/app"), unit("stage/app"), unit("dev/db")],
            apply_ref: None,
            deployed_commit: None,
            ledger_bases: None,
            detected_from: None,
            parallelism: None,
        }
    }

    fn header() -> RolloutHeader {
        RolloutHeader {
            actor: "octocat".into(),
            repo: rollout().repo,
            git_ref: "main".into(),
            mode: RolloutMode::Apply,
            apply_ref: None,
        }
    }

    fn input(completed: Vec<String>) -> ExecutionInput {
        let waves = plan_waves(&policy(), &rollout()).expect("waves");
        build_input(&policy(), "run-1", 1, header(), completed, &waves, "applier:3").expect("input")
    }

    #[test]
    fn the_input_carries_each_wave_once_with_its_command_and_approval() {
        let input = input(vec![]);
        let accounts: Vec<&str> = input.waves.iter().map(|w| w.account.as_str()).collect();
        assert_eq!(accounts, ["dev", "stage", "prod"]);
        assert_eq!(input.waves.iter().map(|w| w.needs_approval).collect::<Vec<_>>(), [false, false, true]);
        let dev = &input.waves[0].command;
        assert_eq!(dev[..3], TASK_COMMAND);
        let request = Request::decode(dev[3].as_bytes()).expect("the command is a valid request");
        let ActionRequest::Rollout(wave) = request.body else { panic!("rollout") };
        assert_eq!(wave.units.iter().map(|u| u.path.as_str()).collect::<Vec<_>>(), ["dev/app", "dev/db"]);
        assert_eq!(ExecutionInput::from_json(&input.to_json()), Ok(input.clone()));
        let remaining = input.remaining_request().expect("request");
        let ActionRequest::Rollout(all) = remaining.body else { panic!("rollout") };
        assert_eq!(all.units.len(), 4);
    }

    #[test]
    fn completed_waves_are_left_out_and_limits_hold() {
        let resumed = input(vec!["dev".into()]);
        assert_eq!(resumed.waves.iter().map(|w| w.account.as_str()).collect::<Vec<_>>(), ["stage", "prod"]);
        let waves = plan_waves(&policy(), &rollout()).expect("waves");
        let too_many = build_input(&policy(), "r", MAX_ATTEMPTS + 1, header(), vec![], &waves, "a");
        assert_eq!(too_many, Err(ExecutionError::TooManyAttempts));
        let mut big = rollout();
        big.units = (0..2000)
            .map(|i| RolloutUnit {
                path: format!("dev/us-east-1/dev/services/{}-{i}/component", "a-rather-long-service-name".repeat(4)),
                change: ChangeKind::Affected,
                source_ref: None,
                depends_on: None,
            })
            .collect();
        let waves = plan_waves(&policy(), &big).expect("waves");
        let result = build_input(&policy(), "r", 1, header(), vec![], &waves, "a");
        assert!(
            matches!(result, Err(ExecutionError::TooLarge(n)) if n > MAX_INPUT_BYTES),
            "2,000 long paths are too large"
        );
        assert_eq!(execution_name("run-1", 1), "run-1");
        assert_eq!(execution_name("run-1", 3), "run-1-r3");
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:1:stateMachine:deploy", "run-1"),
            "arn:aws:states:us-east-1:1:execution:deploy:run-1"
        );
    }

    #[test]
    fn history_tells_each_waves_status_task_and_waiting_token() {
        let input = input(vec!["dev".into()]);
        let entered = |name: &str, account: &str| HistoryEvent::StateEntered {
            name: name.into(),
            input: serde_json::json!({"wave": {"account": account}, "run_id": "run-1"}).to_string(),
        };
        let events = vec![
            entered("NeedsApproval", "stage"),
            entered(TASK_STATE, "stage"),
            HistoryEvent::TaskOutput {
                resource_type: "ecs".into(),
                output: r#"{"Tasks":[{"TaskArn":"arn:aws:ecs:us-east-1:1:task/c/abc"}]}"#.into(),
            },
            entered("CheckExitCode", "stage"),
            entered("WaveSucceeded", "stage"),
            entered("Approval", "prod"),
            HistoryEvent::TaskScheduled {
                resource_type: "lambda".into(),
                parameters: r#"{"FunctionName":"n","Payload":{"kind":"approval","task_token":"TOKEN"}}"#.into(),
            },
        ];
        let progress = wave_progress(&input, &events);
        let summary: Vec<(&str, WaveStatus)> = progress.iter().map(|w| (w.account.as_str(), w.status)).collect();
        assert_eq!(
            summary,
            [("dev", WaveStatus::Succeeded), ("stage", WaveStatus::Succeeded), ("prod", WaveStatus::AwaitingApproval)]
        );
        assert_eq!(progress[1].task_arn.as_deref(), Some("arn:aws:ecs:us-east-1:1:task/c/abc"));
        assert_eq!(progress[2].approval_token.as_deref(), Some("TOKEN"));
        let answered = [events, vec![entered(TASK_STATE, "prod")]].concat();
        let progress = wave_progress(&input, &answered);
        assert_eq!(progress[2].status, WaveStatus::Running);
        assert_eq!(progress[2].approval_token, None, "an answered approval has no token to answer again");
    }
}
