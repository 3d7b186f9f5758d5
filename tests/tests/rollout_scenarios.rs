//! One scenario table, run against both rollout engines with identical expected wave order and outcome:
//! the local sequencer (in-process), and the generated Step Functions definition executed by moto's interpreter.
//!
//! moto can't run ECS tasks or Lambda functions, so for the moto run the states that would (the wave's ECS task,
//! the approval and the notifications) are swapped for Pass/Choice states that read scripted answers from the
//! input; every other state is exactly as generated.

mod common;

use common::moto::start_moto;
use deploy_runner_gate::{ChangeKind, Policy, Rollout, RolloutMode, RolloutUnit};
use deploy_runner_rollout::asl::{definition, MachineSettings, TASK_STATE};
use deploy_runner_rollout::{
    execute, plan_waves, Approval, Approver, RunState, RunStore, Wave, WaveResult, WaveRunner,
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
}

const SCENARIOS: [Scenario; 5] = [
    Scenario { name: "all-succeed", exits: &[], approval: "approved", ran: &["dev", "stage", "prod"], succeeded: true },
    Scenario { name: "dev-fails", exits: &[("dev", Some(1))], approval: "approved", ran: &["dev"], succeeded: false },
    Scenario { name: "prod-rejected", exits: &[], approval: "rejected", ran: &["dev", "stage"], succeeded: false },
    Scenario { name: "prod-timeout", exits: &[], approval: "timeout", ran: &["dev", "stage"], succeeded: false },
    Scenario {
        name: "missing-exit",
        exits: &[("stage", None)],
        approval: "approved",
        ran: &["dev", "stage"],
        succeeded: false,
    },
];

fn waves() -> Vec<Wave> {
    let mut doc: Value = serde_json::from_str(include_str!("../../examples/policy.json")).expect("policy");
    doc["accounts"]["stage"] = json!({"id": "222222222222", "deploy_order": 2});
    let policy = Policy::from_json(&doc.to_string()).expect("policy");
    let unit = |p: &str| RolloutUnit { path: p.into(), change: ChangeKind::Affected, source_ref: None };
    let rollout = Rollout {
        repo: "https://github.com/acme/infrastructure-live.git".into(),
        git_ref: "main".into(),
        mode: RolloutMode::Apply,
        units: vec![unit("prod/app"), unit("dev/app"), unit("stage/app")],
    };
    plan_waves(&policy, &rollout).expect("waves")
}

fn exit_of(scenario: &Scenario, account: &str) -> Option<i32> {
    scenario.exits.iter().find(|(a, _)| *a == account).map_or(Some(0), |(_, e)| *e)
}

/// The local sequencer's answer: which waves ran, and whether the rollout succeeded.
fn run_local(scenario: &Scenario) -> (Vec<String>, bool) {
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
    let mut state = RunState::new(scenario.name, waves());
    let mut runner = Runner(scenario, vec![]);
    let status = execute(&mut state, &["prod".to_owned()], &mut runner, &mut Answer(scenario.approval), &mut NoStore)
        .expect("run");
    (runner.1, status == deploy_runner_rollout::RunStatus::Succeeded)
}

/// The generated definition with the states moto can't run swapped for scripted ones.
fn scripted_definition() -> Value {
    let mut def = definition(&MachineSettings {
        cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/deploy-runner".into(),
        container_name: "runner".into(),
        subnets: vec!["subnet-1".into()],
        security_groups: vec!["sg-1".into()],
        notifier_arn: "arn:aws:lambda:us-east-1:123456789012:function:notifier".into(),
        approval_timeout_secs: 3600,
    });
    let states = &mut def["States"]["Waves"]["ItemProcessor"]["States"];
    states[TASK_STATE] = json!({"Type": "Pass", "Parameters": {"exit_codes.$": "$.wave.scripted.exit_codes"},
                                "ResultPath": "$.result", "Next": "CheckExitCode"});
    states["Approval"] = json!({"Type": "Choice", "Choices": [
        {"Variable": "$.wave.scripted.approval", "StringEquals": "approved", "Next": TASK_STATE}],
        "Default": "WaveFailed"});
    for notify in ["NotifySuccess", "NotifyFailure"] {
        let next = def["States"][notify]["Next"].clone();
        def["States"][notify] = json!({"Type": "Pass", "Next": next});
    }
    def
}

/// moto's answer for the same scenario.
async fn run_moto(client: &aws_sdk_sfn::Client, machine: &str, scenario: &Scenario) -> (Vec<String>, bool) {
    let items: Vec<Value> = waves()
        .iter()
        .map(|w| {
            let exit = exit_of(scenario, &w.account);
            json!({"account": w.account, "needs_approval": w.account == "prod", "task_definition": "applier:1",
                   "command": ["deploy-runner-task", "run", "--request", serde_json::to_string(&w.request).expect("json")],
                   "scripted": {"exit_codes": exit.map_or(vec![], |e| vec![e]), "approval": scenario.approval}})
        })
        .collect();
    let started = client
        .start_execution()
        .state_machine_arn(machine)
        .name(format!("run-{}", scenario.name))
        .input(json!({"waves": items}).to_string())
        .send()
        .await
        .expect("start");
    let arn = started.execution_arn().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let described = client.describe_execution().execution_arn(&arn).send().await.expect("describe");
        let status = described.status().as_str().to_owned();
        if status != "RUNNING" {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{}: still running", scenario.name);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let history = client.get_execution_history().execution_arn(&arn).max_results(1000).send().await.expect("history");
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

#[tokio::test(flavor = "multi_thread")]
async fn both_engines_agree_on_every_scenario() {
    let moto = start_moto();
    let endpoint = moto.setup["endpoint"].as_str().expect("endpoint").to_owned();
    let enable = std::process::Command::new("curl")
        .args(["-sf", "-X", "POST", "-d", r#"{"stepfunctions": {"execute_state_machine": true}}"#])
        .arg(format!("{endpoint}/moto-api/config"))
        .status()
        .expect("curl");
    assert!(enable.success());
    let aws = common::moto::sdk_config(&moto).await;
    let client = aws_sdk_sfn::Client::new(&aws);
    let machine = client
        .create_state_machine()
        .name("deploy-runner-rollout")
        .role_arn("arn:aws:iam::123456789012:role/deploy-runner-sfn")
        .definition(scripted_definition().to_string())
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn()
        .to_owned();
    for scenario in &SCENARIOS {
        let local = run_local(scenario);
        let remote = run_moto(&client, &machine, scenario).await;
        let expected = (scenario.ran.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(), scenario.succeeded);
        assert_eq!(local, expected, "{}: local sequencer", scenario.name);
        assert_eq!(remote, expected, "{}: Step Functions (moto)", scenario.name);
    }
}
