//! The deploy task: the only code that runs with deploy credentials.
//!
//! It takes one gate request (the ECS container command built by the invoker, or a local process started by the
//! local backend), checks it against the gate again (defense in depth), checks out exactly the right commit,
//! verifies it, confines itself to the unit, runs terragrunt or terraform non-interactively with its output
//! streamed, and exits with the tool's exit code.

pub mod config;
pub mod confine;
pub mod deleted;
pub mod git;
pub mod harden;
pub mod image;
pub mod local_state;
pub mod mask;
pub mod plan;
pub mod process;
pub mod run;
pub mod sources;
pub mod tool;
pub mod update;

pub use config::{Environment, TaskConfig};
pub use run::{Task, TaskError, EXIT_DENIED, EXIT_SETUP};
