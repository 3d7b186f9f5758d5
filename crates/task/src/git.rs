//! Git for the deploy task: fetch exactly what is needed, check it out detached, verify ancestry, commit and push.
//!
//! Credentials never reach argv, the remote URL, `.git/config` or output. HTTPS uses a one-shot credential helper
//! passed with `-c` that reads `GITHUB_TOKEN` from the environment git inherits; SSH uses a key file readable only
//! by us and pinned known hosts.

use crate::mask::Masker;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The helper prints the token from git's own environment; the script text holds no secret.
const TOKEN_HELPER: &str =
    "credential.helper=!f() { test \"$1\" = get && printf 'username=x-access-token\\npassword=%s\\n' \"$GITHUB_TOKEN\"; }; f";

/// A git failure, with git's output already masked.
#[derive(Debug, thiserror::Error)]
#[error("git {operation} failed: {output}")]
pub struct GitError {
    /// What was being done.
    pub operation: String,
    /// git's (masked) output.
    pub output: String,
}

/// How to authenticate to the remote.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// A GitHub token for HTTPS remotes.
    pub github_token: Option<String>,
    /// A private key file and a known-hosts file for SSH remotes.
    pub ssh: Option<(PathBuf, PathBuf)>,
}

/// A clone being prepared in `dir`.
#[derive(Debug, Clone)]
pub struct Repo {
    dir: PathBuf,
    credentials: Credentials,
    masker: Masker,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The ref moved.
    Pushed,
    /// The remote moved meanwhile (not a fast-forward).
    Rejected,
}

impl Repo {
    /// Creates an empty repository at `dir` with `url` as `origin`.
    pub fn init(dir: &Path, url: &str, credentials: Credentials, masker: Masker) -> Result<Repo, GitError> {
        std::fs::create_dir_all(dir).map_err(|e| GitError { operation: "init".into(), output: e.to_string() })?;
        let repo = Repo { dir: dir.to_path_buf(), credentials, masker };
        repo.git("init", &["init", "-q"])?;
        repo.git("remote add", &["remote", "add", "origin", url])?;
        Ok(repo)
    }

    /// The work tree.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self) -> Command {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.dir);
        // Never prompt, never use credentials or hooks configured elsewhere on the machine.
        command.args(["-c", "credential.helper=", "-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never"]);
        command.env("GIT_TERMINAL_PROMPT", "0").env_remove("GITHUB_TOKEN").env_remove("DEPLOY_SSH_PRIVATE_KEY");
        if let Some(token) = &self.credentials.github_token {
            command.args(["-c", TOKEN_HELPER]).env("GITHUB_TOKEN", token);
        }
        if let Some((key, known_hosts)) = &self.credentials.ssh {
            command.env(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -i '{}' -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile='{}'",
                    key.display(),
                    known_hosts.display()
                ),
            );
        }
        command.stdin(Stdio::null());
        command
    }

    /// Runs git, returning stdout; on failure an error with the masked output.
    fn git(&self, operation: &str, args: &[&str]) -> Result<String, GitError> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(|e| GitError { operation: operation.into(), output: e.to_string() })?;
        if !output.status.success() {
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            return Err(GitError { operation: operation.into(), output: self.masker.mask(text.trim()).into_owned() });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Fetches a branch into `refs/remotes/origin/<branch>`; `depth` limits history (`None`: all of it).
    pub fn fetch_branch(&self, branch: &str, depth: Option<u32>) -> Result<(), GitError> {
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        self.fetch(&refspec, depth)
    }

    /// Fetches one commit by id (the remote must allow it, as GitHub and git's protocol v2 do).
    pub fn fetch_commit(&self, sha: &str, depth: Option<u32>) -> Result<(), GitError> {
        self.fetch(sha, depth)
    }

    fn fetch(&self, what: &str, depth: Option<u32>) -> Result<(), GitError> {
        let depth_arg = depth.map(|d| format!("--depth={d}"));
        let mut args = vec!["fetch", "-q", "--no-tags", "--no-recurse-submodules"];
        if let Some(d) = &depth_arg {
            args.push(d);
        }
        args.extend(["origin", "--", what]);
        self.git(&format!("fetch {what}"), &args)?;
        Ok(())
    }

    /// Resolves a fetched branch or commit to its full id.
    pub fn resolve(&self, rev: &str) -> Result<String, GitError> {
        self.git(
            &format!("rev-parse {rev}"),
            &["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{rev}^{{commit}}")],
        )
    }

    /// Checks out a commit, detached.
    pub fn checkout_detached(&self, commit: &str) -> Result<(), GitError> {
        self.git(&format!("checkout {commit}"), &["checkout", "-q", "--detach", commit, "--"])?;
        Ok(())
    }

    /// True when `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        let status = self
            .command()
            .args(["merge-base", "--is-ancestor", ancestor, descendant])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| GitError { operation: "merge-base".into(), output: e.to_string() })?;
        match status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(GitError {
                operation: "merge-base".into(),
                output: format!("cannot compare {ancestor} and {descendant}"),
            }),
        }
    }

    /// Adds a second work tree at `dir` checked out at `commit` (for deleted units, which live at another commit).
    pub fn worktree_at(&self, dir: &Path, commit: &str) -> Result<PathBuf, GitError> {
        let path = dir.to_string_lossy().into_owned();
        self.git("worktree add", &["worktree", "add", "-q", "--detach", &path, commit])?;
        Ok(dir.to_path_buf())
    }

    /// Commits every change with `message`, as `author` (`Name <email>`).
    pub fn commit_all(&self, message: &str, author_name: &str, author_email: &str) -> Result<String, GitError> {
        self.git("add", &["add", "-A"])?;
        let name = format!("user.name={author_name}");
        let email = format!("user.email={author_email}");
        self.git("commit", &["-c", &name, "-c", &email, "commit", "-q", "--no-verify", "-m", message])?;
        self.resolve("HEAD")
    }

    /// Pushes HEAD to `branch`; a non-fast-forward rejection is an outcome, not an error.
    pub fn push_head(&self, branch: &str) -> Result<PushOutcome, GitError> {
        let refspec = format!("HEAD:refs/heads/{branch}");
        match self.git("push", &["push", "-q", "--porcelain", "origin", &refspec]) {
            Ok(_) => Ok(PushOutcome::Pushed),
            Err(e)
                if e.output.contains("[rejected]")
                    || e.output.contains("non-fast-forward")
                    || e.output.contains("fetch first") =>
            {
                Ok(PushOutcome::Rejected)
            }
            Err(e) => Err(e),
        }
    }
}
