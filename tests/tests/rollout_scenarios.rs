//! One scenario table, run against both rollout engines with identical expected wave order and outcome:
//! the local sequencer (in-process), and the generated Step Functions definition executed by moto's interpreter,
//! started, inspected and resumed through the real invoker and its Step Functions adapter (the wire protocol).
//!
//! moto can't run ECS tasks or Lambda functions, so for the moto run the states that would (the wave's ECS task,
//! the approval and the notifications) are swapped for Pass/Choice states whose answers are baked into the
//! scenario's copy of the definition; every other state, and the execution input, are exactly as generated.

mod common;

use common::moto::start_moto;
use deploy_runner_aws::{CloudWatchLogs, DynamoLedger, EcsTasks, StepFunctions};
use deploy_runner_control::{Invoker, InvokerConfig};
use deploy_runner_gate::{ChangeKind, Policy, Rollout, RolloutMode, RolloutUnit};
use deploy_runner_rollout::asl::{definition, MachineSettings, TASK_STATE};
use deploy_runner_rollout::execution::{execution_arn, execution_name};
use deploy_runner_rollout::{
    execute, plan_waves, Approval, Approver, NoLedger, RunState, RunStatus, RunStore, Wave, WaveResult, WaveRunner,
};
use serde_json::{json, Value};

struct Scenario {
    name: &'static str,
    /// Exit code of each account's wave (`None`: the task ended without one); unlisted accounts exit 0.
    exits: &'static [(&'static str, Option<i32>)],
    /// The answer to the prod approval: `approved`, `rejected` or `timeout`.
    approval: &'static str,
    ran: &'static [&'static str],
    succeeded: bool,
    /// After the first run stops, fix every wave and resume: the waves the resume runs, and whether it succeeds.
    resume: Option<(&'static [&'static str], bool)>,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "all-succeed",
        exits: &[],
        approval: "approved",
        ran: &["dev", "stage", "prod"],
        succeeded: true,
        resume: None,
    },
    Scenario {
        name: "dev-fails",
        exits: &[("dev", Some(1))],
        approval: "approved",
        ran: &["dev"],
        succeeded: false,
        resume: None,
    },
    Scenario {
        name: "prod-rejected",
        exits: &[],
        approval: "rejected",
        ran: &["dev", "stage"],
        succeeded: false,
        resume: None,
    },
    Scenario {
        name: "prod-timeout",
        exits: &[],
        approval: "timeout",
        ran: &["dev", "stage"],
        succeeded: false,
        resume: None,
    },
    Scenario {
        name: "missing-exit",
        exits: &[("stage", None)],
        approval: "approved",
        ran: &["dev", "stage"],
        succeeded: false,
        resume: None,
    },
    Scenario {
        name: "stage-fails-then-resume",
        exits: &[("stage", Some(2))],
        approval: "approved",
        ran: &["dev", "stage"],
        succeeded: false,
        resume: Some((&["stage", "prod"], true)),
    },
];

const FIXED: Scenario =
    Scenario { name: "fixed", exits: &[], approval: "approved", ran: &[], succeeded: true, resume: None };

/// What one engine did: the waves each attempt ran, and whether each attempt succeeded.
type Outcome = Vec<(Vec<String>, bool)>;

fn expected(scenario: &Scenario) -> Outcome {
    let owned = |ran: &[&str]| ran.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut outcome = vec![(owned(scenario.ran), scenario.succeeded)];
    if let Some((ran, succeeded)) = scenario.resume {
        outcome.push((owned(ran), succeeded));
    }
    outcome
}

fn policy() -> Policy {
    let mut doc: Value = serde_json::from_str(include_str!("../../examples/policy.json")).expect("policy");
    doc["accounts"]["stage"] = json!({"id": "222222222222", "deploy_order": 2});
    doc["approval_accounts"] = json!(["prod"]);
    Policy::from_json(&doc.to_string()).expect("policy")
}

fn rollout() -> Rollout {
    let unit =
        |p: &str| RolloutUnit { path: p.into(), change: ChangeKind::Affected, source_ref: None, depends_on: None };
    Rollout {
        repo: "https://github.com/acme/infrastructure-live.git".into(),
        git_ref: "0123456789abcdef0123456789abcdef01234567".into(),
        mode: RolloutMode::Apply,
        units: vec![unit("prod/app"), unit("dev/app"), unit("stage/app")],
        apply_ref: None,
        deployed_commit: None,
        ledger_bases: None,
        detected_from: None,
        parallelism: None,
    }
}

fn exit_of(scenario: &Scenario, account: &str) -> Option<i32> {
    scenario.exits.iter().find(|(a, _)| *a == account).map_or(Some(0), |(_, e)| *e)
}

/// The local sequencer's answer.
fn run_local(scenario: &Scenario) -> Outcome {
    struct Runner<'s>(&'s Scenario, Vec<String>);
    impl WaveRunner for Runner<'_> {
        fn run(&mut self, _: &str, _: usize, wave: &Wave) -> WaveResult {
            self.1.push(wave.account.clone());
            WaveResult::Exited(exit_of(self.0, &wave.account))
        }
    }
    struct Answer(&'static str);
    impl Approver for Answer {
        fn approve(&mut self, _: &str, _: &Wave) -> Approval {
            match self.0 {
                "approved" => Approval::Approved("lead".into()),
                "rejected" => Approval::Rejected("lead".into()),
                _ => Approval::TimedOut,
            }
        }
    }
    struct NoStore;
    impl RunStore for NoStore {
        fn save(&mut self, _: &RunState) -> std::io::Result<()> {
            Ok(())
        }
    }
    let policy = policy();
    let approvals = policy.document().approval_accounts.clone();
    let mut state = RunState::new(scenario.name, plan_waves(&policy, &rollout()).expect("waves"));
    let mut outcome = Vec::new();
    let attempts: Vec<&Scenario> = if scenario.resume.is_some() { vec![scenario, &FIXED] } else { vec![scenario] };
    for attempt in attempts {
        let mut runner = Runner(attempt, vec![]);
        let status =
            execute(&mut state, &approvals, &mut runner, &mut Answer(attempt.approval), &mut NoStore, &mut NoLedger)
                .expect("run");
        outcome.push((runner.1, status == RunStatus::Succeeded));
    }
    outcome
}

/// The generated definition with the states moto can't run swapped for ones scripted by `scenario`: each
/// account's exit code (an empty list when the task ended without one) and the prod approval's answer.
fn scripted_definition(scenario: &Scenario) -> Value {
    let mut def = definition(&MachineSettings {
        partition: "aws".into(),
        cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/deploy-runner".into(),
        container_name: "runner".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        assign_public_ip: false,
        notifier_arn: "arn:aws:lambda:us-east-1:123456789012:function:notifier".into(),
        approval_timeout_secs: 3600,
        ledger_table: "deploy-runner-ledger".into(),
    });
    let states = &mut def["States"]["Waves"]["ItemProcessor"]["States"];
    let mut choices = Vec::new();
    for account in ["dev", "stage", "prod"] {
        let exit = exit_of(scenario, account);
        let state = format!("Scripted-{account}");
        choices.push(json!({"Variable": "$.wave.account", "StringEquals": account, "Next": state}));
        states[state] = json!({"Type": "Pass", "Result": {"exit_codes": exit.map_or(vec![], |e| vec![e])},
                               "ResultPath": "$.result", "Next": "CheckExitCode"});
    }
    states[TASK_STATE] = json!({"Type": "Choice", "Choices": choices, "Default": "WaveFailed"});
    let approval_next = if scenario.approval == "approved" { TASK_STATE } else { "WaveFailed" };
    states["Approval"] = json!({"Type": "Pass", "Next": approval_next});
    for notify in ["NotifySuccess", "NotifyFailure"] {
        let next = def["States"][notify]["Next"].clone();
        def["States"][notify] = json!({"Type": "Pass", "Next": next});
    }
    def
}

fn invoker_config(moto: &common::moto::Moto, machine: &str) -> InvokerConfig {
    let mut document: Value = serde_json::from_str(&common::moto::invoker_config_json(moto)).expect("config");
    document["policy"] = serde_json::to_value(policy().document()).expect("policy");
    document["runtime"]["state_machine_arn"] = json!(machine);
    InvokerConfig::from_json(&document.to_string()).expect("config")
}

/// Waits for an execution to stop; returns the waves it ran (in order) and whether it succeeded.
async fn finished(client: &aws_sdk_sfn::Client, arn: &str, name: &str) -> (Vec<String>, bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let described = client.describe_execution().execution_arn(arn).send().await.expect("describe");
        let status = described.status().as_str().to_owned();
        if status != "RUNNING" {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{name}: still running");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let history = client.get_execution_history().execution_arn(arn).max_results(1000).send().await.expect("history");
    let mut ran = Vec::new();
    for event in history.events() {
        let Some(details) = event.state_entered_event_details() else { continue };
        if details.name() == TASK_STATE {
            let input: Value = serde_json::from_str(details.input().unwrap_or("{}")).expect("input");
            ran.push(input["wave"]["account"].as_str().unwrap_or("?").to_owned());
        }
    }
    (ran, status == "SUCCEEDED")
}

/// moto's answer for the same scenario, driven through the invoker.
async fn run_moto(moto: &common::moto::Moto, aws: &aws_config::SdkConfig, scenario: &Scenario) -> Outcome {
    let client = aws_sdk_sfn::Client::new(aws);
    let machine = client
        .create_state_machine()
        .name(format!("deploy-runner-{}", scenario.name))
        .role_arn("arn:aws:iam::123456789012:role/deploy-runner-sfn")
        .definition(scripted_definition(scenario).to_string())
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn()
        .to_owned();
    let invoker =
        Invoker::new(invoker_config(moto, &machine), EcsTasks::from_config(aws), CloudWatchLogs::from_config(aws))
            .with_executions(StepFunctions::from_config(aws))
            .with_ledger(DynamoLedger::from_config(aws, moto.setup["ledger_table"].as_str().expect("table")));
    let mut request = deploy_runner_gate::Request {
        actor: "octocat".into(),
        request_id: Some(format!("scenario-{}", scenario.name)),
        body: deploy_runner_gate::ActionRequest::Rollout(rollout()),
    }
    .to_json();
    let started = invoker.handle(request.to_string().as_bytes(), b"n").await.0;
    assert_eq!(started.decision, "allow", "{}: {started:?}", scenario.name);
    let run_id = started.run_id.expect("run id");
    // Executions are named after the run id's claim (its request id's part).
    let name_base = deploy_runner_control::runid::claim_of(&run_id).to_owned();
    let mut outcome = vec![finished(&client, &execution_arn(&machine, &name_base), scenario.name).await];
    if scenario.resume.is_some() {
        // The fix lands; the same run is resumed through the invoker.
        client
            .update_state_machine()
            .state_machine_arn(&machine)
            .definition(scripted_definition(&FIXED).to_string())
            .send()
            .await
            .expect("update state machine");
        request = json!({"action": "resume", "actor": "fixer", "run_id": run_id});
        let resumed = invoker.handle(request.to_string().as_bytes(), b"n").await.0;
        assert_eq!(resumed.decision, "allow", "{}: {resumed:?}", scenario.name);
        let second = execution_arn(&machine, &execution_name(&name_base, 2));
        outcome.push(finished(&client, &second, scenario.name).await);
        let status = invoker
            .handle(json!({"action": "status", "actor": "ci", "run_id": run_id}).to_string().as_bytes(), b"n")
            .await
            .0;
        assert_eq!(status.rollout.as_ref().map(|r| r.outcome), Some("succeeded"), "{status:?}");
    }
    // The state machine itself (moto runs its DynamoDB integration for real) gave the apply lock back, however the
    // rollout stopped, and recorded each wave that succeeded.
    use deploy_runner_control::ports::LedgerStore;
    let scope = deploy_runner_rollout::LedgerScope::new(&rollout().repo, "main");
    let view = invoker.ledger().read(&scope).await.expect("ledger");
    assert_eq!(view.lock, None, "{}: the lock outlived the rollout", scenario.name);
    if outcome.last().is_some_and(|(_, succeeded)| *succeeded) {
        let recorded: Vec<(&str, &str)> =
            view.accounts.iter().map(|e| (e.account.as_str(), e.commit.as_deref().unwrap_or_default())).collect();
        let commit = rollout().git_ref;
        assert_eq!(recorded, [("dev", commit.as_str()), ("prod", commit.as_str()), ("stage", commit.as_str())]);
    }
    outcome
}

#[tokio::test(flavor = "multi_thread")]
async fn both_engines_agree_on_every_scenario() {
    let moto = start_moto();
    common::moto::enable_step_functions(&moto);
    let aws = common::moto::sdk_config(&moto).await;
    for scenario in &SCENARIOS {
        let expected = expected(scenario);
        assert_eq!(run_local(scenario), expected, "{}: local sequencer", scenario.name);
        assert_eq!(run_moto(&moto, &aws, scenario).await, expected, "{}: Step Functions (moto)", scenario.name);
    }
}
