//! Rollouts: one wave per account in deploy order, optional approvals, halt on the first failed account, resume.
//!
//! [`waves`] plans the waves from the policy; [`sequencer`] holds the semantics that the local sequencer runs
//! in-process (and that the Step Functions definition mirrors), over ports for running a wave, asking for an
//! approval and persisting state.

pub mod asl;
pub mod execution;
pub mod sequencer;
pub mod waves;

pub use sequencer::{
    execute, Approval, Approver, FileStore, RunState, RunStatus, RunStore, WaveResult, WaveRunner, WaveStatus,
};
pub use waves::{plan_waves, Wave, WaveError};
