//! The control plane's invoker logic: gate a request, start the privileged task, answer `status` and `logs`, and
//! audit every decision. AWS sits behind the small traits in [`ports`]; `deploy-runner-aws` implements them and
//! the `deploy-runner-invoker` Lambda wires them together. No tokio, no AWS SDK here.

pub mod audit;
pub mod config;
pub mod invoker;
pub mod ledger;
pub mod ports;
pub mod rollouts;
pub mod runid;

pub use audit::AuditRecord;
pub use config::{ConfigError, InvokerConfig, RuntimeConfig};
pub use invoker::{EntryPoint, InvokeResponse, Invoker, RunStatus};
pub use rollouts::{RolloutView, WaveView};
