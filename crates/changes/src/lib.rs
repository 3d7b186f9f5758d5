//! Change detection for Terragrunt `infrastructure-live` repositories.
//!
//! Given two commits, which units must be planned or applied, and in what order? A unit is selected when its
//! own files change (`added`, `modified`, `deleted`), when it reads a changed file (`affected`), or, on request,
//! when it depends on a selected unit (`dependent`). Reads are found by evaluating each unit's terragrunt config
//! statically with `hcl-rs` (see [`eval`]); nothing in a repo is ever executed.
//!
//! The crate is pure: git access sits behind [`snapshot::BlobSource`] and the [`git`] module's few batched
//! `git` calls; there is no async and no AWS.

pub mod accounts;
pub mod detect;
pub mod eval;
mod functions;
pub mod git;
pub mod modules;
pub mod parsed;
pub mod reads;
pub mod snapshot;
pub mod stacks;
pub mod units;
pub mod worktree;

pub use eval::Evaluator;
pub use reads::Reads;
pub use snapshot::Snapshot;

pub use accounts::{AccountOrder, AccountsError};
pub use detect::{detect_changes, ChangeReport, DetectError, DetectOptions, SelectedUnit, SkippedUnit};
pub use units::{discover_units, units_reading, UnitsAnswer, UnitsError, UnitsQuery};
