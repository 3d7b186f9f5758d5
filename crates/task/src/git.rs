//! Git for the deploy task: fetch exactly what is needed, check it out detached, verify ancestry, read trees,
//! commit and push.
//!
//! Credentials reach only the git processes that talk to the remote (fetch, push), and only for as long as they
//! run: never argv, the remote URL, `.git/config`, a file that outlives the command, or output. HTTPS uses a
//! one-shot credential helper passed with `-c` that reads the token from the environment of that one git
//! process; SSH uses a key file in a private temporary directory that exists only while the command runs.
//! Once every fetch is done the task [`Repo::seal`]s the clone: from then on nothing can fetch, so no credential
//! exists anywhere while a tool runs.

use crate::mask::Masker;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The helper prints the token from git's own environment; the script text holds no secret.
const TOKEN_HELPER: &str = "credential.helper=!f() { test \"$1\" = get && printf \
     'username=x-access-token\\npassword=%s\\n' \"$DEPLOY_RUNNER_GIT_TOKEN\"; }; f";
/// The variable the helper reads; set only on the one git process that needs it.
const TOKEN_VARIABLE: &str = "DEPLOY_RUNNER_GIT_TOKEN";

/// The environment that lets a tool's own git (terraform fetching a private module source) use a read-only token:
/// the same one-shot helper, through git's `GIT_CONFIG_*` variables. Whatever the tool runs can read this token.
pub fn tool_credential_env(read_token: &str) -> [(&'static str, String); 4] {
    [
        ("GIT_CONFIG_COUNT", "1".to_owned()),
        ("GIT_CONFIG_KEY_0", "credential.helper".to_owned()),
        ("GIT_CONFIG_VALUE_0", TOKEN_HELPER.trim_start_matches("credential.helper=").to_owned()),
        (TOKEN_VARIABLE, read_token.to_owned()),
    ]
}

/// The URL to clone `repo` from with `credentials`: an SSH remote (CircleCI's `git@github.com:org/repo.git`) is the
/// same repository as its `https://` form (the gate's one normalisation), and a deployment with a token and no
/// SSH key clones it that way. Everything else is cloned as written.
pub fn clone_url(repo: &str, credentials: &Credentials) -> String {
    match deploy_runner_gate::syntax::ssh_to_https(repo) {
        Some(https) if credentials.ssh.is_none() && credentials.token.is_some() => https,
        _ => repo.to_owned(),
    }
}

/// A git failure, with git's output already masked.
#[derive(Debug, thiserror::Error)]
#[error("git {operation} failed: {output}")]
pub struct GitError {
    /// What was being done.
    pub operation: String,
    /// git's (masked) output.
    pub output: String,
}

impl GitError {
    fn new(operation: impl Into<String>, output: impl Into<String>) -> GitError {
        GitError { operation: operation.into(), output: output.into() }
    }
}

/// How to authenticate to the remote: a token for HTTPS, a key (with pinned known hosts) for SSH.
#[derive(Clone, Default)]
pub struct Credentials {
    /// A GitHub token for HTTPS remotes.
    pub token: Option<String>,
    /// A private key and the known-hosts lines for SSH remotes.
    pub ssh: Option<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ssh", &self.ssh.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    /// True when there is nothing to authenticate with.
    pub fn is_empty(&self) -> bool {
        self.token.is_none() && self.ssh.is_none()
    }
}

/// An SSH key on disk for the length of one git command: a private directory removed when this is dropped.
struct KeyFiles {
    _dir: tempfile::TempDir,
}

/// A clone being prepared in `dir`.
#[derive(Debug)]
pub struct Repo {
    dir: PathBuf,
    url: String,
    fetch_credentials: Option<Credentials>,
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

/// One entry of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The git mode: `100644`/`100755` files, `120000` symlinks, `040000` folders, `160000` submodules.
    pub mode: String,
    /// The repo-relative path.
    pub path: String,
}

impl TreeEntry {
    /// True for a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode == "120000"
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode == "100644" || self.mode == "100755"
    }

    /// True for a folder.
    pub fn is_dir(&self) -> bool {
        self.mode == "040000"
    }
}

impl Repo {
    /// Creates an empty repository at `dir` with `url` as `origin`; fetches authenticate with `credentials`.
    pub fn init(dir: &Path, url: &str, credentials: Credentials, masker: Masker) -> Result<Repo, GitError> {
        std::fs::create_dir_all(dir).map_err(|e| GitError::new("init", e.to_string()))?;
        let repo = Repo { dir: dir.to_path_buf(), url: url.to_owned(), fetch_credentials: Some(credentials), masker };
        repo.git("init", &["init", "-q"])?;
        repo.git("remote add", &["remote", "add", "origin", url])?;
        Ok(repo)
    }

    /// The work tree.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Drops the fetch credentials: every fetch is done, and tools may run from now on. A fetch after this is a
    /// bug, and fails instead of putting a credential in reach of a tool's leftovers.
    pub fn seal(&mut self) {
        self.fetch_credentials = None;
    }

    /// A git command in the clone that never prompts and never uses credentials, hooks or transports configured
    /// elsewhere on the machine, with no secret in its environment.
    fn command(&self) -> Command {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.dir);
        command.args(["-c", "credential.helper=", "-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never"]);
        command.env("GIT_TERMINAL_PROMPT", "0").env_remove(TOKEN_VARIABLE).env_remove("GIT_SSH_COMMAND");
        crate::config::without_secrets(&mut command);
        command.stdin(Stdio::null());
        command
    }

    /// Adds `credentials` to a git command that talks to the remote. The key files live until the returned guard
    /// is dropped, which the caller does as soon as the command ends.
    fn authenticate(command: &mut Command, credentials: &Credentials) -> Result<Option<KeyFiles>, GitError> {
        if let Some(token) = &credentials.token {
            command.args(["-c", TOKEN_HELPER]).env(TOKEN_VARIABLE, token);
        }
        let Some((key, known_hosts)) = &credentials.ssh else { return Ok(None) };
        let io = |e: std::io::Error| GitError::new("ssh key", e.to_string());
        // A fresh 0700 directory outside the clone and the work dir: nothing a tool can list later.
        let dir = tempfile::Builder::new().prefix("deploy-runner-ssh-").tempdir().map_err(io)?;
        let key_path = dir.path().join("id");
        let hosts_path = dir.path().join("known_hosts");
        write_private(&key_path, &format!("{}\n", key.trim_end())).map_err(io)?;
        write_private(&hosts_path, known_hosts).map_err(io)?;
        command.env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=yes \
                 -o UserKnownHostsFile='{}'",
                key_path.display(),
                hosts_path.display()
            ),
        );
        Ok(Some(KeyFiles { _dir: dir }))
    }

    /// Runs a prepared git command, returning stdout; on failure an error with the masked output.
    fn run(&self, operation: &str, mut command: Command) -> Result<String, GitError> {
        let output = command.output().map_err(|e| GitError::new(operation, e.to_string()))?;
        if !output.status.success() {
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            return Err(GitError::new(operation, self.masker.mask(text.trim()).into_owned()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs a local git command (no remote, no credentials).
    fn git(&self, operation: &str, args: &[&str]) -> Result<String, GitError> {
        let mut command = self.command();
        command.args(args);
        self.run(operation, command)
    }

    /// Runs a git command that talks to the remote, with `credentials` for exactly its duration.
    fn remote_git(&self, operation: &str, args: &[&str], credentials: &Credentials) -> Result<String, GitError> {
        let mut command = self.command();
        let key_files = Repo::authenticate(&mut command, credentials)?;
        command.args(args);
        let result = self.run(operation, command);
        drop(key_files);
        result
    }

    /// Fetches a branch into `refs/remotes/origin/<branch>`; `depth` limits history (`None`: all of it).
    pub fn fetch_branch(&self, branch: &str, depth: Option<u32>) -> Result<(), GitError> {
        self.fetch(&format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"), depth)
    }

    /// Fetches a tag into `refs/tags/<tag>` (a release build runs at exactly the tagged commit).
    pub fn fetch_tag(&self, tag: &str, depth: Option<u32>) -> Result<(), GitError> {
        self.fetch(&format!("+refs/tags/{tag}:refs/tags/{tag}"), depth)
    }

    /// Fetches one commit by id (the remote must allow it, as GitHub and git's protocol v2 do).
    pub fn fetch_commit(&self, sha: &str, depth: Option<u32>) -> Result<(), GitError> {
        self.fetch(sha, depth)
    }

    fn fetch(&self, what: &str, depth: Option<u32>) -> Result<(), GitError> {
        let Some(credentials) = &self.fetch_credentials else {
            return Err(GitError::new(
                format!("fetch {what}"),
                "the clone is sealed: every fetch happens before a tool runs",
            ));
        };
        let depth_arg = depth.map(|d| format!("--depth={d}"));
        let mut args = vec!["fetch", "-q", "--no-tags", "--no-recurse-submodules"];
        if let Some(d) = &depth_arg {
            args.push(d);
        }
        args.extend(["origin", "--", what]);
        self.remote_git(&format!("fetch {what}"), &args, credentials)?;
        Ok(())
    }

    /// Resolves a fetched branch, tag or commit to its full commit id.
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
            .map_err(|e| GitError::new("merge-base", e.to_string()))?;
        match status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(GitError::new("merge-base", format!("cannot compare {ancestor} and {descendant}"))),
        }
    }

    /// The tree entries of `commit` on the way to `path` (each folder above it, and `path` itself) and everything
    /// below it. A symlink on the way is listed and not followed.
    pub fn tree_entries(&self, commit: &str, path: &str) -> Result<Vec<TreeEntry>, GitError> {
        let listing = self.git(
            &format!("ls-tree {commit}"),
            &["--literal-pathspecs", "ls-tree", "-r", "-t", "-z", "--full-tree", commit, "--", path],
        )?;
        Ok(listing
            .split('\0')
            .filter_map(|record| {
                let (meta, path) = record.split_once('\t')?;
                let mode = meta.split(' ').next()?;
                Some(TreeEntry { mode: mode.to_owned(), path: path.to_owned() })
            })
            .collect())
    }

    /// Adds a second work tree at `dir` checked out at `commit` (for deleted units, which live at another commit).
    pub fn worktree_at(&self, dir: &Path, commit: &str) -> Result<PathBuf, GitError> {
        let path = dir.to_string_lossy().into_owned();
        self.git("worktree add", &["worktree", "add", "-q", "--detach", &path, commit])?;
        Ok(dir.to_path_buf())
    }

    /// Commits the given repo-relative files with `message`, as `author_name <author_email>`.
    pub fn commit_files(
        &self,
        files: &[&str],
        message: &str,
        author_name: &str,
        author_email: &str,
    ) -> Result<String, GitError> {
        let mut add = vec!["add", "--"];
        add.extend(files);
        self.git("add", &add)?;
        let name = format!("user.name={author_name}");
        let email = format!("user.email={author_email}");
        self.git(
            "commit",
            &["-c", &name, "-c", &email, "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", message],
        )?;
        self.resolve("HEAD")
    }

    /// Pushes HEAD to `branch` with the push credentials; a non-fast-forward rejection is an outcome, not an error.
    pub fn push_head(&self, branch: &str, credentials: &Credentials) -> Result<PushOutcome, GitError> {
        let refspec = format!("HEAD:refs/heads/{branch}");
        match self.remote_git("push", &["push", "-q", "--porcelain", "--no-verify", "origin", &refspec], credentials) {
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

    /// The remote URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Writes a file only we can read (a key).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_remotes_are_cloned_over_https_with_a_token_and_no_key() {
        let token = Credentials { token: Some("t".into()), ssh: None };
        let key = Credentials { token: Some("t".into()), ssh: Some(("k".into(), "h".into())) };
        let https = "https://github.com/acme/x.git";
        assert_eq!(clone_url("git@github.com:acme/x.git", &token), https);
        assert_eq!(clone_url("ssh://git@github.com/acme/x.git", &token), https);
        assert_eq!(clone_url("git@github.com:acme/x.git", &key), "git@github.com:acme/x.git");
        assert_eq!(clone_url("git@github.com:acme/x.git", &Credentials::default()), "git@github.com:acme/x.git");
        assert_eq!(clone_url("file:///srv/x.git", &token), "file:///srv/x.git");
    }

    #[test]
    fn a_sealed_clone_cannot_fetch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut repo =
            Repo::init(dir.path(), "file:///nowhere", Credentials::default(), Masker::default()).expect("init");
        repo.seal();
        let error = repo.fetch_branch("main", Some(1)).expect_err("sealed");
        assert!(error.to_string().contains("the clone is sealed"), "{error}");
    }

    #[test]
    fn key_files_exist_only_while_the_command_runs() {
        let mut command = Command::new("true");
        let credentials = Credentials { token: None, ssh: Some(("KEY".into(), "host ssh-ed25519 AAAA".into())) };
        let guard = Repo::authenticate(&mut command, &credentials).expect("key files").expect("a guard");
        let ssh_command = command
            .get_envs()
            .find(|(name, _)| *name == "GIT_SSH_COMMAND")
            .and_then(|(_, value)| value)
            .map(|v| v.to_string_lossy().into_owned())
            .expect("GIT_SSH_COMMAND");
        let key = ssh_command.split('\'').nth(1).expect("key path").to_owned();
        assert_eq!(std::fs::read_to_string(&key).expect("key"), "KEY\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777, 0o600);
        drop(guard);
        assert!(!Path::new(&key).exists(), "the key is gone once the command ends");
        assert!(!Path::new(&key).parent().expect("dir").exists());
    }
}
