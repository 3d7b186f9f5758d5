//! Rollouts: one wave per account in deploy order, optional approvals, halt on the first failed account, resume.
//!
//! [`waves`] plans the waves from the policy; [`sequencer`] holds the semantics that the local sequencer runs
//! in-process (and that the Step Functions definition mirrors), over ports for running a wave, asking for an
//! approval and persisting state.

pub mod asl;
pub mod execution;
pub mod ledger;
pub mod sequencer;
pub mod waves;

pub use ledger::{ApplyLock, LedgerEntry, LedgerScope, LedgerView, NoLedger, WaveLedger};
pub use sequencer::{
    execute, Approval, Approver, FileStore, RunState, RunStatus, RunStore, WaveResult, WaveRunner, WaveStatus,
};
pub use waves::{plan_waves, Wave, WaveError};

/// The policy the unit tests share: the example policy with a stage account (order 2) and a shared account that ties
/// with dev (order 1).
#[cfg(test)]
pub(crate) fn test_policy() -> deploy_runner_gate::Policy {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/policy.json")).expect("policy");
    doc["accounts"]["stage"] = serde_json::json!({"id": "222222222222", "deploy_order": 2});
    doc["accounts"]["shared"] = serde_json::json!({"id": "000000000000", "deploy_order": 1});
    deploy_runner_gate::Policy::from_json(&doc.to_string()).expect("valid")
}
