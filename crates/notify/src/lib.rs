//! Slack Workflow notifications.
//!
//! One schema everywhere ([`SlackMessage`]): the five variables a Slack Workflow Builder webhook declares, `branch`,
//! `status`, `url`, `repo` and `actor`, always present and always strings, plus the optional `account`, `run_id`
//! and `summary`. The rollout notifier Lambda and `deploy-runner ci` both post it.
//!
//! The webhook URL is a secret (anyone holding it can post to the channel): it is never logged, and errors from
//! posting describe what went wrong without it.

mod message;
mod webhook;

pub use message::{RolloutEvent, RolloutEventKind, SlackMessage};
pub use webhook::{post, PostError, RetryPolicy};
