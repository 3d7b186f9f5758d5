//! The task's configuration, all from its environment (the ECS task definition sets it; secrets come from
//! Secrets Manager through the container's `secrets`).

use deploy_runner_gate::{Policy, PolicyError};
use serde::Deserialize;
use std::path::PathBuf;

/// The gate policy (JSON), the same document the invoker enforces.
pub const ENV_POLICY: &str = "DEPLOY_RUNNER_POLICY";
/// Optional task settings (JSON, see [`TaskConfig`]).
pub const ENV_TASK_CONFIG: &str = "DEPLOY_RUNNER_TASK_CONFIG";
/// The run id the invoker assigned.
pub const ENV_RUN_ID: &str = "DEPLOY_RUNNER_RUN_ID";
/// The local backend's Terraform state directory (see [`crate::local_state`]); never set on ECS.
pub const ENV_LOCAL_STATE_DIR: &str = "DEPLOY_RUNNER_LOCAL_STATE_DIR";
/// A GitHub token that can push: used only by `update-variable`'s push (and for fetches when no read-only
/// token is given, as before the credentials were split).
pub const ENV_GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// A read-only GitHub token: every clone and fetch uses it when set.
pub const ENV_GITHUB_READ_TOKEN: &str = "GITHUB_READ_TOKEN";
/// An SSH private key that can push, the alternative to a token (fetches too when no read-only key is given).
pub const ENV_SSH_KEY: &str = "DEPLOY_SSH_PRIVATE_KEY";
/// A read-only SSH deploy key: every clone and fetch uses it when set.
pub const ENV_SSH_READ_KEY: &str = "DEPLOY_SSH_READ_KEY";
/// Pinned known hosts for SSH (required with a key).
pub const ENV_SSH_KNOWN_HOSTS: &str = "DEPLOY_SSH_KNOWN_HOSTS";

/// Every variable that holds a secret. No child process the task starts (git aside, which gets exactly the one
/// credential it needs) inherits any of them.
pub const SECRET_VARIABLES: [&str; 4] = [ENV_GITHUB_TOKEN, ENV_GITHUB_READ_TOKEN, ENV_SSH_KEY, ENV_SSH_READ_KEY];

/// Removes every secret variable from a child's environment.
pub fn without_secrets(command: &mut std::process::Command) -> &mut std::process::Command {
    for name in SECRET_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Task settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// Where clones go (default: a fresh temporary directory, removed afterwards).
    pub workdir: Option<PathBuf>,
    /// The tool executable (default: the policy's binary name, found on `PATH`).
    pub tool_path: Option<PathBuf>,
    /// Use terragrunt's `terragrunt run -- <command>` form.
    pub terragrunt_run_style: bool,
    /// For terragrunt: the Terraform or OpenTofu executable it drives (`TG_TF_PATH`; default: terragrunt's own
    /// choice, which prefers `tofu` on `PATH`).
    pub tf_path: Option<PathBuf>,
    /// Seconds the tool gets to exit after SIGTERM before it is killed.
    pub grace_period_secs: u64,
    /// Attempts to push an `update-variable` commit when the branch moves meanwhile.
    pub push_attempts: u32,
    /// Commit author for `update-variable`.
    pub git_author_name: String,
    /// Commit author email for `update-variable`.
    pub git_author_email: String,
    /// Image builds.
    pub image: ImageConfig,
    /// The packer executable for `build-ami`.
    pub packer_path: PathBuf,
    /// Hand the read-only git token to the tool (as a git credential helper reading `GITHUB_READ_TOKEN`), for
    /// private module sources. The tool runs the repo's code, so that token is readable by whoever can push a
    /// branch: only ever a read-only one, and only when set.
    pub tool_git_credential: bool,
    /// One provider cache for every unit of the task (under the work dir), so each provider version is downloaded
    /// once: `TF_PLUGIN_CACHE_DIR` for terraform and tofu (inits take turns), terragrunt's provider cache server
    /// for terragrunt. On by default.
    pub provider_cache: bool,
}

impl Default for TaskConfig {
    fn default() -> TaskConfig {
        TaskConfig {
            workdir: None,
            tool_path: None,
            terragrunt_run_style: false,
            tf_path: None,
            grace_period_secs: 30,
            push_attempts: 5,
            git_author_name: "deploy-runner".to_owned(),
            git_author_email: "deploy-runner@users.noreply.github.com".to_owned(),
            image: ImageConfig::default(),
            packer_path: PathBuf::from("packer"),
            tool_git_credential: false,
            provider_cache: true,
        }
    }
}

/// Settings of `build-image`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// The kaniko executor.
    pub executor_path: PathBuf,
    /// The image repository images are pushed to (`<registry>/<name>`); the tag comes from the request.
    pub registry_repo: Option<String>,
    /// Skip the build when the tag already exists (checked with `exists_command`).
    pub skip_existing: bool,
    /// A command that exits 0 when the image given as its last argument exists (e.g. `["crane", "manifest"]`).
    pub exists_command: Vec<String>,
    /// A command that prints the image config JSON of the image given as its last argument (e.g.
    /// `["crane", "config"]`), whose `org.opencontainers.image.revision` label says which commit it was built from.
    pub revision_command: Vec<String>,
}

impl Default for ImageConfig {
    fn default() -> ImageConfig {
        ImageConfig {
            executor_path: PathBuf::from("/kaniko/executor"),
            registry_repo: None,
            skip_existing: true,
            exists_command: vec!["crane".to_owned(), "manifest".to_owned()],
            revision_command: vec!["crane".to_owned(), "config".to_owned()],
        }
    }
}

/// Everything the task reads from its environment.
#[derive(Debug)]
pub struct Environment {
    /// The gate policy.
    pub policy: Policy,
    /// Task settings.
    pub config: TaskConfig,
    /// The run id, when the invoker set one.
    pub run_id: Option<String>,
    /// The git credentials, split by what they may do.
    pub git: GitSecrets,
    /// Where units without a backend of their own keep their state (the local backend only).
    pub local_state_dir: Option<PathBuf>,
}

/// Git credentials by need: fetching (every action) and pushing (`update-variable` only).
#[derive(Debug, Clone, Default)]
pub struct GitSecrets {
    /// The read-only token, if any.
    pub read_token: Option<String>,
    /// The push-capable token, if any.
    pub push_token: Option<String>,
    /// The read-only SSH key, if any.
    pub read_ssh_key: Option<String>,
    /// The push-capable SSH key, if any.
    pub push_ssh_key: Option<String>,
    /// Pinned known hosts (required with any key).
    pub known_hosts: Option<String>,
}

impl GitSecrets {
    /// What fetches use: the read-only credentials, else (deployments from before the split) the push ones.
    pub fn fetch(&self) -> crate::git::Credentials {
        crate::git::Credentials {
            token: self.read_token.clone().or_else(|| self.push_token.clone()),
            ssh: self.read_ssh_key.clone().or_else(|| self.push_ssh_key.clone()).zip(self.known_hosts.clone()),
        }
    }

    /// What a push uses: only the push-capable credentials.
    pub fn push(&self) -> crate::git::Credentials {
        crate::git::Credentials {
            token: self.push_token.clone(),
            ssh: self.push_ssh_key.clone().zip(self.known_hosts.clone()),
        }
    }

    /// Every secret value, for the masker.
    pub fn values(&self) -> Vec<&str> {
        [&self.read_token, &self.push_token, &self.read_ssh_key, &self.push_ssh_key]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect()
    }
}

/// A configuration problem: the task refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// The policy is invalid.
    #[error("{ENV_POLICY}: {0}")]
    Policy(#[from] PolicyError),
    /// The task config is invalid.
    #[error("{ENV_TASK_CONFIG}: {0}")]
    TaskConfig(serde_json::Error),
    /// An SSH key without pinned known hosts.
    #[error("an SSH key ({ENV_SSH_KEY} or {ENV_SSH_READ_KEY}) is set but {ENV_SSH_KNOWN_HOSTS} is not: host keys must be pinned")]
    UnpinnedHosts,
}

impl Environment {
    /// Reads the environment through `var` (the process environment in production, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Environment, ConfigError> {
        let policy = Policy::from_json(&var(ENV_POLICY).ok_or(ConfigError::Missing(ENV_POLICY))?)?;
        let config = match var(ENV_TASK_CONFIG) {
            Some(text) if !text.trim().is_empty() => serde_json::from_str(&text).map_err(ConfigError::TaskConfig)?,
            _ => TaskConfig::default(),
        };
        let non_empty = |name| var(name).filter(|v: &String| !v.trim().is_empty());
        let git = GitSecrets {
            read_token: non_empty(ENV_GITHUB_READ_TOKEN),
            push_token: non_empty(ENV_GITHUB_TOKEN),
            read_ssh_key: non_empty(ENV_SSH_READ_KEY),
            push_ssh_key: non_empty(ENV_SSH_KEY),
            known_hosts: non_empty(ENV_SSH_KNOWN_HOSTS),
        };
        if (git.read_ssh_key.is_some() || git.push_ssh_key.is_some()) && git.known_hosts.is_none() {
            return Err(ConfigError::UnpinnedHosts);
        }
        let local_state_dir = non_empty(ENV_LOCAL_STATE_DIR).map(PathBuf::from);
        Ok(Environment { policy, config, run_id: non_empty(ENV_RUN_ID), git, local_state_dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const POLICY: &str = include_str!("../../../examples/policy.json");

    fn env(vars: &[(&str, &str)]) -> Result<Environment, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Environment::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn reads_everything_from_the_environment() {
        let e = env(&[
            (ENV_POLICY, POLICY),
            (ENV_TASK_CONFIG, r#"{"grace_period_secs": 5, "image": {"registry_repo": "r/x"}}"#),
            (ENV_RUN_ID, "run-1"),
            (ENV_GITHUB_TOKEN, "tok"),
            (ENV_SSH_KEY, "key"),
            (ENV_SSH_KNOWN_HOSTS, "github.com ssh-ed25519 AAAA"),
        ])
        .expect("valid");
        assert_eq!(e.config.grace_period_secs, 5);
        assert_eq!(e.config.image.registry_repo.as_deref(), Some("r/x"));
        assert_eq!(e.config.image.executor_path, PathBuf::from("/kaniko/executor"), "defaults fill the rest");
        assert_eq!(e.run_id.as_deref(), Some("run-1"));
        assert!(e.git.push().ssh.is_some());
        assert_eq!(e.git.fetch().token.as_deref(), Some("tok"), "without a read-only token, fetches use the old one");
    }

    #[test]
    fn credentials_are_split_by_need() {
        let e = env(&[
            (ENV_POLICY, POLICY),
            (ENV_GITHUB_TOKEN, "push-token"),
            (ENV_GITHUB_READ_TOKEN, "read-token"),
            (ENV_SSH_READ_KEY, "read-key"),
            (ENV_SSH_KNOWN_HOSTS, "github.com ssh-ed25519 AAAA"),
        ])
        .expect("valid");
        assert_eq!(e.git.fetch().token.as_deref(), Some("read-token"));
        assert_eq!(e.git.fetch().ssh.map(|(key, _)| key).as_deref(), Some("read-key"));
        assert_eq!(e.git.push().token.as_deref(), Some("push-token"));
        assert!(e.git.push().ssh.is_none(), "a read-only key is never used to push");
        let read_only = env(&[(ENV_POLICY, POLICY), (ENV_GITHUB_READ_TOKEN, "read-token")]).expect("valid");
        assert!(read_only.git.push().token.is_none());
    }

    #[test]
    fn refuses_to_start_on_bad_configuration() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], "DEPLOY_RUNNER_POLICY is not set"),
            (vec![(ENV_POLICY, "{}")], "DEPLOY_RUNNER_POLICY"),
            (vec![(ENV_POLICY, POLICY), (ENV_TASK_CONFIG, r#"{"grace": 1}"#)], "unknown field `grace`"),
            (vec![(ENV_POLICY, POLICY), (ENV_SSH_KEY, "key")], "host keys must be pinned"),
            (vec![(ENV_POLICY, POLICY), (ENV_SSH_READ_KEY, "key")], "host keys must be pinned"),
        ];
        for (vars, needle) in cases {
            let err = env(&vars).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err:?} should contain {needle:?}");
        }
    }
}
