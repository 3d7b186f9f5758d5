//! The deploy-runner request gate.
//!
//! CI may only *ask*; this crate decides. It decodes a request body strictly ([`Request::decode`]), checks it
//! against an allow-list [`Policy`], and answers with a [`Decision`]. It is pure: no I/O, no async, no AWS, so the
//! invoker Lambda, the deploy task (defense in depth) and the local backend all run exactly the same rules.
//!
//! ```
//! use deploy_runner_gate::{Gate, Policy, Reason};
//! let policy = Policy::from_json(include_str!("../../../examples/policy.json")).unwrap();
//! let gate = Gate::new(policy);
//! let outcome = gate.evaluate(br#"{"action": "apply", "actor": "octocat",
//!     "repo": "https://github.com/acme/infrastructure-live.git", "ref": "feature/x", "path": "dev/vpc"}"#);
//! assert_eq!(outcome.decision.reason, Reason::RefNotAllowedForApply);
//! ```

mod decision;
mod gate;
mod policy;
mod request;
pub mod strict_json;
pub mod syntax;
pub mod text;

pub use decision::{quote, Container, Decision, Reason, Verdict};
pub use gate::{Admitted, Denial, Gate, Outcome, MAX_ROLLOUT_UNITS};
pub use policy::{
    Account, Policy, PolicyDocument, PolicyError, RepoAllowList, RepoListDocument, RepoSections, ToolBinary,
};
pub use request::{
    Action, ActionRequest, AmiBuild, ApprovalAnswer, ChangeKind, DecodeError, DeletedUnitTarget, ImageBuild,
    LedgerQuery, Request, Rollout, RolloutMode, RolloutUnit, RunQuery, UnitTarget, VariableUpdate, NO_LEDGER_ENTRY,
};
