//! The rollout scenario table (all succeed; dev fails so stage and prod never run; the prod approval rejected;
//! the prod approval timing out; resume after a stage failure running only stage and prod; a missing exit code
//! failing), run through the sequencer with a scripted wave runner and a real file store.
//!
//! The rollouts issue runs the same table against the Step Functions definition in moto; this is the local half.

use deploy_runner_gate::{ChangeKind, Policy, Rollout, RolloutMode, RolloutUnit};
use deploy_runner_rollout::{
    execute, plan_waves, Approval, Approver, FileStore, NoLedger, RunState, RunStatus, RunStore, Wave, WaveLedger,
    WaveResult, WaveRunner, WaveStatus,
};
use std::collections::HashMap;

fn plan() -> Vec<Wave> {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/policy.json")).expect("policy");
    doc["accounts"]["stage"] = serde_json::json!({"id": "222222222222", "deploy_order": 2});
    let policy = Policy::from_json(&doc.to_string()).expect("policy");
    let unit =
        |p: &str| RolloutUnit { path: p.into(), change: ChangeKind::Affected, source_ref: None, depends_on: None };
    let rollout = Rollout {
        repo: "https://github.com/acme/infrastructure-live.git".into(),
        git_ref: "0123456789abcdef0123456789abcdef01234567".into(),
        mode: RolloutMode::Apply,
        units: vec![unit("prod/app"), unit("stage/app"), unit("dev/app")],
        apply_ref: None,
        deployed_commit: None,
        ledger_bases: None,
        detected_from: None,
        parallelism: None,
    };
    plan_waves(&policy, &rollout).expect("waves")
}

/// Exit codes by account, and the order waves ran in.
struct Scripted {
    exits: HashMap<String, Option<i32>>,
    ran: Vec<String>,
}

impl WaveRunner for Scripted {
    fn run(&mut self, _run_id: &str, _index: usize, wave: &Wave) -> WaveResult {
        self.ran.push(wave.account.clone());
        WaveResult::Exited(self.exits.get(&wave.account).copied().unwrap_or(Some(0)))
    }
}

struct Answer(Approval);

impl Approver for Answer {
    fn approve(&mut self, _run_id: &str, _wave: &Wave) -> Approval {
        self.0.clone()
    }
}

struct Case {
    name: &'static str,
    exits: &'static [(&'static str, Option<i32>)],
    approval: Approval,
    expected_ran: &'static [&'static str],
    expected_status: RunStatus,
    expected_waves: &'static [WaveStatus],
}

#[test]
fn the_scenario_table() {
    use WaveStatus::*;
    let cases = [
        Case {
            name: "all succeed",
            exits: &[],
            approval: Approval::Approved("lead".into()),
            expected_ran: &["dev", "stage", "prod"],
            expected_status: RunStatus::Succeeded,
            expected_waves: &[Succeeded, Succeeded, Succeeded],
        },
        Case {
            name: "dev fails",
            exits: &[("dev", Some(1))],
            approval: Approval::Approved("lead".into()),
            expected_ran: &["dev"],
            expected_status: RunStatus::Failed,
            expected_waves: &[Failed, Skipped, Skipped],
        },
        Case {
            name: "prod approval rejected",
            exits: &[],
            approval: Approval::Rejected("lead".into()),
            expected_ran: &["dev", "stage"],
            expected_status: RunStatus::Failed,
            expected_waves: &[Succeeded, Succeeded, Rejected],
        },
        Case {
            name: "prod approval times out",
            exits: &[],
            approval: Approval::TimedOut,
            expected_ran: &["dev", "stage"],
            expected_status: RunStatus::Failed,
            expected_waves: &[Succeeded, Succeeded, TimedOut],
        },
        Case {
            name: "missing exit code",
            exits: &[("stage", None)],
            approval: Approval::Approved("lead".into()),
            expected_ran: &["dev", "stage"],
            expected_status: RunStatus::Failed,
            expected_waves: &[Succeeded, Failed, Skipped],
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = FileStore::new(dir.path());
        let mut state = RunState::new("run-1", plan());
        let mut runner =
            Scripted { exits: case.exits.iter().map(|(a, e)| ((*a).to_owned(), *e)).collect(), ran: vec![] };
        let status = execute(
            &mut state,
            &["prod".to_owned()],
            &mut runner,
            &mut Answer(case.approval),
            &mut store,
            &mut NoLedger,
        )
        .expect("executed");
        assert_eq!(status, case.expected_status, "{}", case.name);
        assert_eq!(runner.ran, case.expected_ran, "{}", case.name);
        let waves: Vec<WaveStatus> = state.waves.iter().map(|w| w.status).collect();
        assert_eq!(waves, case.expected_waves, "{}", case.name);
        assert_eq!(store.load("run-1").expect("load"), Some(state), "{}: saved state is the final state", case.name);
    }
}

#[test]
fn resume_after_a_stage_failure_runs_only_stage_and_prod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = FileStore::new(dir.path());
    let mut state = RunState::new("run-2", plan());
    let mut failing = Scripted { exits: HashMap::from([("stage".to_owned(), Some(1))]), ran: vec![] };
    let approve = &mut Answer(Approval::Approved("lead".into()));
    assert_eq!(
        execute(&mut state, &[], &mut failing, approve, &mut store, &mut NoLedger).expect("run"),
        RunStatus::Failed
    );
    assert_eq!(failing.ran, ["dev", "stage"]);

    // A new process (after the fix): load from disk and resume.
    let mut resumed = store.load("run-2").expect("load").expect("saved");
    let mut fixed = Scripted { exits: HashMap::new(), ran: vec![] };
    assert_eq!(
        execute(&mut resumed, &[], &mut fixed, approve, &mut store, &mut NoLedger).expect("resume"),
        RunStatus::Succeeded
    );
    assert_eq!(fixed.ran, ["stage", "prod"], "dev already succeeded and is not run again");
    assert!(resumed.waves.iter().all(|w| w.status == WaveStatus::Succeeded));
}

#[test]
fn an_interrupted_wave_is_resumable_and_state_survives_every_step() {
    struct Interrupt;
    impl WaveRunner for Interrupt {
        fn run(&mut self, _: &str, _: usize, wave: &Wave) -> WaveResult {
            if wave.account == "stage" {
                WaveResult::Interrupted
            } else {
                WaveResult::Exited(Some(0))
            }
        }
    }
    /// Records every saved state, to check nothing is lost between transitions.
    struct Recording(Vec<RunState>);
    impl RunStore for Recording {
        fn save(&mut self, state: &RunState) -> std::io::Result<()> {
            self.0.push(state.clone());
            Ok(())
        }
    }
    let mut store = Recording(vec![]);
    let mut state = RunState::new("run-3", plan());
    let status = execute(
        &mut state,
        &[],
        &mut Interrupt,
        &mut Answer(Approval::Approved("x".into())),
        &mut store,
        &mut NoLedger,
    )
    .expect("run");
    assert_eq!(status, RunStatus::Interrupted);
    assert_eq!(state.waves[1].status, WaveStatus::Interrupted);
    // The stage wave was saved as running before it ran: a crash mid-wave would show it, not lose it.
    assert!(store.0.iter().any(|s| s.waves[1].status == WaveStatus::Running));
    assert_eq!(store.0.last(), Some(&state));
}

/// Records which accounts the sequencer entered in the ledger, failing for one account.
struct Recorder {
    recorded: Vec<String>,
    fails_for: Option<&'static str>,
}

impl WaveLedger for Recorder {
    fn record(&mut self, _run_id: &str, wave: &Wave) -> std::io::Result<()> {
        if self.fails_for == Some(wave.account.as_str()) {
            return Err(std::io::Error::other("the table is unreachable"));
        }
        self.recorded.push(wave.account.clone());
        Ok(())
    }
}

#[test]
fn only_succeeded_apply_waves_reach_the_ledger_and_a_failed_write_stops_the_run() {
    let approve = &mut Answer(Approval::Approved("lead".into()));
    let mut store = FileStore::new(tempfile::tempdir().expect("tempdir").path());
    let mut state = RunState::new("run-4", plan());
    let mut runner = Scripted { exits: HashMap::from([("stage".to_owned(), Some(1))]), ran: vec![] };
    let mut ledger = Recorder { recorded: vec![], fails_for: None };
    execute(&mut state, &[], &mut runner, approve, &mut store, &mut ledger).expect("run");
    assert_eq!(ledger.recorded, ["dev"], "the failed stage wave and the skipped prod wave are not recorded");

    // The task succeeded but the ledger could not say so: the wave does not count, and the run stops there.
    let mut state = RunState::new("run-5", plan());
    let mut runner = Scripted { exits: HashMap::new(), ran: vec![] };
    let mut ledger = Recorder { recorded: vec![], fails_for: Some("stage") };
    assert_eq!(
        execute(&mut state, &[], &mut runner, approve, &mut store, &mut ledger).expect("run"),
        RunStatus::Failed
    );
    assert_eq!(runner.ran, ["dev", "stage"]);
    assert_eq!(state.waves[1].status, WaveStatus::Failed);
    assert!(state.waves[1].detail.as_deref().unwrap_or_default().contains("table is unreachable"), "{state:?}");

    // Plans never touch the ledger.
    let mut waves = plan();
    waves.iter_mut().for_each(|w| w.request.mode = RolloutMode::Plan);
    let mut state = RunState::new("run-6", waves);
    let mut ledger = Recorder { recorded: vec![], fails_for: Some("dev") };
    let mut runner = Scripted { exits: HashMap::new(), ran: vec![] };
    assert_eq!(
        execute(&mut state, &[], &mut runner, approve, &mut store, &mut ledger).expect("run"),
        RunStatus::Succeeded
    );
    assert!(ledger.recorded.is_empty());
}
