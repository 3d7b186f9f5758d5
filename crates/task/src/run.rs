//! What the task does for each admitted request: check out the right commit, verify it, confine the path, run.

use crate::config::{without_secrets, Environment};
use crate::confine::{confine, ConfineError};
use crate::git::{GitError, PushOutcome, Repo};
use crate::mask::Masker;
use crate::plan::PlanCounts;
use crate::process::{run_streamed, Echo, RunContext, ToolResult, EXIT_TERMINATED};
use crate::tool::{commands, provider_cache_env, tf_path_env, Operation, ToolStyle, TOOL_ENV};
use crate::update::{set_input, Edited};
use deploy_runner_gate::{
    syntax, ActionRequest, AmiBuild, ChangeKind, Gate, ImageBuild, Request, Rollout, RolloutMode, RolloutUnit,
    ToolBinary, VariableUpdate,
};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Exit status when the task refuses a request that the gate denies.
pub const EXIT_DENIED: i32 = 3;
/// Exit status when the task can't do its job before any tool runs (clone, verification, confinement).
pub const EXIT_SETUP: i32 = 2;

/// Why the task stopped before or between tool runs.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The gate denied the request (defense in depth: the invoker should never have started us).
    #[error("request denied by the gate ({reason}): {message}")]
    Denied {
        /// The reason code.
        reason: String,
        /// The gate's explanation.
        message: String,
    },
    /// git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The path is not safe or not a unit.
    #[error(transparent)]
    Confine(#[from] ConfineError),
    /// A commit check failed, or another precondition.
    #[error("{0}")]
    Refused(String),
    /// Local I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl TaskError {
    /// The exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            TaskError::Denied { .. } => EXIT_DENIED,
            _ => EXIT_SETUP,
        }
    }
}

/// One unit's outcome in a wave.
#[derive(Debug, Clone, Serialize)]
pub struct UnitOutcome {
    /// The unit.
    pub path: String,
    /// What was run.
    pub operation: &'static str,
    /// `succeeded`, `failed` or `skipped`.
    pub status: &'static str,
    /// The tool's exit code, when it ran.
    pub exit_code: Option<i32>,
    /// Plan or apply counts, when the output had them.
    #[serde(flatten)]
    pub counts: Option<PlanCounts>,
    /// Why it failed before the tool ran, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time from preparing the unit to the tool's end, in milliseconds (absent when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The deploy task.
pub struct Task {
    env: Environment,
    gate: Gate,
    masker: Masker,
    stop: Arc<AtomicBool>,
    workdir: PathBuf,
    _scratch: Option<tempfile::TempDir>,
    /// Held while a terraform or tofu `init` fills the task's one provider cache: inits writing one cache at once
    /// race, and the units' plans and applies then only read it.
    init_lock: std::sync::Mutex<()>,
    /// Stack folders generated already: units of one stack run side by side, and two `terragrunt stack generate`
    /// in one folder at once would race, so each stack is generated once, by whichever unit comes first.
    generated_stacks: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
}

impl Task {
    /// A task with its environment; `stop` is set by the signal handler.
    pub fn new(env: Environment, stop: Arc<AtomicBool>) -> std::io::Result<Task> {
        let masker = Masker::new(env.git.values());
        let (workdir, scratch) = match &env.config.workdir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (tempfile::tempdir_in(dir)?.keep(), None)
            }
            None => {
                let scratch = tempfile::tempdir()?;
                (scratch.path().to_path_buf(), Some(scratch))
            }
        };
        let gate = Gate::new(env.policy.clone());
        Ok(Task {
            env,
            gate,
            masker,
            stop,
            workdir,
            _scratch: scratch,
            init_lock: std::sync::Mutex::new(()),
            generated_stacks: std::sync::Mutex::default(),
        })
    }

    /// The secret masker (for the caller's own messages).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Checks `body` with the gate and carries it out; returns the exit status.
    pub fn execute(&self, body: &[u8]) -> Result<i32, TaskError> {
        let outcome = self.gate.evaluate(body);
        let Some(admitted) = outcome.admitted else {
            return Err(TaskError::Denied {
                reason: outcome.decision.reason.to_string(),
                message: outcome.decision.message,
            });
        };
        let request = admitted.request;
        self.say(&format!(
            "{} by {} (run {})",
            outcome.decision.message,
            request.actor,
            self.env.run_id.as_deref().unwrap_or("local")
        ));
        match &request.body {
            ActionRequest::Plan(t) => self.single_unit(&t.repo, &t.git_ref, &t.path, None, Operation::Plan, None),
            ActionRequest::Validate(t) => {
                self.single_unit(&t.repo, &t.git_ref, &t.path, None, Operation::Validate, None)
            }
            ActionRequest::Apply(t) => {
                let ledger = Ledgered { apply_ref: t.apply_ref.as_deref(), deployed: t.deployed_commit.as_deref() };
                self.single_unit(&t.repo, &t.git_ref, &t.path, None, Operation::Apply, Some(ledger))
            }
            ActionRequest::PlanDestroy(t) => {
                self.single_unit(&t.repo, &t.git_ref, &t.path, Some(&t.source_ref), Operation::PlanDestroy, None)
            }
            ActionRequest::Destroy(t) => {
                self.single_unit(&t.repo, &t.git_ref, &t.path, Some(&t.source_ref), Operation::Destroy, None)
            }
            ActionRequest::Rollout(r) => self.wave(r),
            ActionRequest::UpdateVariable(u) => self.update_variable(u, &request),
            ActionRequest::BuildImage(b) => self.build_image(b),
            ActionRequest::BuildAmi(b) => self.build_ami(b),
            ActionRequest::Status(_)
            | ActionRequest::Logs(_)
            | ActionRequest::Approve(_)
            | ActionRequest::Reject(_)
            | ActionRequest::Resume(_)
            | ActionRequest::Ledger(_) => Err(TaskError::Refused(format!(
                "{} is answered by the invoker or the sequencer; there is nothing to run",
                request.body.action()
            ))),
        }
    }

    fn say(&self, message: &str) {
        let mut err = std::io::stderr().lock();
        let line = self.masker.mask(message);
        let _ = writeln!(err, "deploy-runner-task: {}", deploy_runner_gate::text::inert_line(&line))
            .and_then(|_| err.flush());
    }

    /// A new clone of `url` in the work dir; its fetches use the read-only credentials (or, in deployments from
    /// before the split, the only ones there are).
    fn open_repo(&self, url: &str, name: &str) -> Result<Repo, TaskError> {
        let credentials = self.env.git.fetch();
        let url = crate::git::clone_url(url, &credentials);
        Ok(Repo::init(&self.workdir.join(name), &url, credentials, self.masker.clone())?)
    }

    /// Fetches `git_ref` (a branch or full SHA) and returns its commit. `history` fetches everything reachable
    /// (needed to check ancestry); otherwise only the commit itself.
    fn fetch_ref(&self, repo: &Repo, git_ref: &str, history: bool) -> Result<String, TaskError> {
        let depth = if history { None } else { Some(1) };
        if syntax::is_full_commit_sha(git_ref) {
            repo.fetch_commit(git_ref, depth)?;
            Ok(repo.resolve(git_ref)?)
        } else {
            repo.fetch_branch(git_ref, depth)?;
            Ok(repo.resolve(&format!("refs/remotes/origin/{git_ref}"))?)
        }
    }

    /// For apply-class requests: the commit must be on an apply ref, so "apply what was planned" can't be used to
    /// apply an unreviewed commit. Returns the apply ref it is on.
    fn verify_on_apply_ref(&self, repo: &Repo, commit: &str, git_ref: &str) -> Result<String, TaskError> {
        if self.env.policy.is_apply_ref(git_ref) {
            return Ok(git_ref.to_owned());
        }
        for apply_ref in &self.env.policy.document().apply_refs {
            if repo.fetch_branch(apply_ref, None).is_err() {
                continue;
            }
            if repo.is_ancestor(commit, &format!("refs/remotes/origin/{apply_ref}"))? {
                self.say(&format!("verified: {commit} is reachable from {apply_ref}"));
                return Ok(apply_ref.clone());
            }
        }
        Err(TaskError::Refused(format!(
            "commit {commit} is not reachable from any apply ref ({}); refusing to apply it",
            self.env.policy.document().apply_refs.join(", ")
        )))
    }

    /// An apply-class commit: on an apply ref (the named one, when the ledger keys it by one), and never older than
    /// what the account has deployed from it.
    fn verify_apply_commit(
        &self,
        repo: &Repo,
        commit: &str,
        git_ref: &str,
        ledger: Ledgered<'_>,
    ) -> Result<(), TaskError> {
        let branch = match ledger.apply_ref {
            // Serialised and recorded under this apply ref: the commit must be on that one.
            Some(apply_ref) => self.verify_on_named_apply_ref(repo, commit, apply_ref)?,
            None => self.verify_on_apply_ref(repo, commit, git_ref)?,
        };
        match ledger.deployed {
            Some(deployed) => self.refuse_stale(repo, commit, deployed, &branch),
            None => Ok(()),
        }
    }

    /// For a rollout serialised under `apply_ref`: the commit must be reachable from that very apply ref (the
    /// ledger it is recorded in is that ref's). Returns it.
    fn verify_on_named_apply_ref(&self, repo: &Repo, commit: &str, apply_ref: &str) -> Result<String, TaskError> {
        if !self.env.policy.is_apply_ref(apply_ref) {
            return Err(TaskError::Refused(format!("apply_ref {apply_ref} is not an apply ref of the policy")));
        }
        repo.fetch_branch(apply_ref, None)?;
        if !repo.is_ancestor(commit, &format!("refs/remotes/origin/{apply_ref}"))? {
            return Err(TaskError::Refused(format!(
                "commit {commit} is not reachable from {apply_ref}; refusing to apply it"
            )));
        }
        self.say(&format!("verified: {commit} is reachable from {apply_ref}"));
        Ok(apply_ref.to_owned())
    }

    /// Never applies a commit older than what the account already has (`deployed`, from the ledger): a rollout of
    /// an older commit, or a resume of an old run after a newer one deployed, would roll the account back.
    fn refuse_stale(&self, repo: &Repo, commit: &str, deployed: &str, apply_ref: &str) -> Result<(), TaskError> {
        if deployed == commit {
            self.say(&format!("the account already has {commit}; applying it again"));
            return Ok(());
        }
        // The deployed commit came from this apply ref, whose history was fetched; fetch it by id if it was not.
        if repo.resolve(&format!("{deployed}^{{commit}}")).is_err() && repo.fetch_commit(deployed, None).is_err() {
            self.say(&format!(
                "warning: the deployed commit {deployed} is no longer in {apply_ref}'s history (rewritten?); \
                 applying {commit}, which {apply_ref} holds"
            ));
            return Ok(());
        }
        if repo.is_ancestor(deployed, commit)? {
            return Ok(());
        }
        if repo.is_ancestor(commit, deployed)? {
            return Err(TaskError::Refused(format!(
                "stale_commit: the account already has {deployed}, which is newer than {commit}; applying {commit} \
                 would roll it back (roll back with a new commit instead)"
            )));
        }
        self.say(&format!(
            "warning: {apply_ref}'s history was rewritten: the deployed commit {deployed} is not an ancestor of \
             {commit}; applying {commit}, which {apply_ref} holds"
        ));
        Ok(())
    }

    fn style(&self) -> ToolStyle {
        ToolStyle { binary: self.env.policy.binary(), terragrunt_run: self.env.config.terragrunt_run_style }
    }

    fn tool_program(&self) -> PathBuf {
        self.env.config.tool_path.clone().unwrap_or_else(|| PathBuf::from(self.env.policy.binary().as_str()))
    }

    /// Runs the tool's commands for `operation` in `dir`, stopping at the first that fails.
    fn run_tool(&self, repo: &Repo, dir: &Path, unit: &str, operation: Operation) -> Result<ToolResult, TaskError> {
        if let (Some(state_dir), true) = (&self.env.local_state_dir, self.env.policy.binary().is_terraform_like()) {
            let state = crate::local_state::state_path(state_dir, repo.url(), unit);
            if crate::local_state::keep_state(dir, &state).map_err(TaskError::Refused)? {
                self.say(&format!("{unit}: local state kept at {}", state.display()));
            }
        }
        self.run_tool_commands(dir, unit, commands(self.style(), operation))
    }

    /// Runs the tool with each argv in turn in `dir`, stopping at the first that fails.
    fn run_tool_commands(&self, dir: &Path, unit: &str, argvs: Vec<Vec<String>>) -> Result<ToolResult, TaskError> {
        let ctx = self.run_context(unit);
        let mut last = ToolResult::default();
        for args in argvs {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(ToolResult { exit_code: EXIT_TERMINATED, stopped: true, ..ToolResult::default() });
            }
            self.say(&format!("{unit}: {} {}", self.env.policy.binary().as_str(), args.join(" ")));
            let mut command = Command::new(self.tool_program());
            command.args(&args).current_dir(dir).envs(TOOL_ENV);
            command.envs(tf_path_env(self.env.policy.binary(), self.env.config.tf_path.as_deref()));
            if self.env.config.provider_cache {
                command.envs(provider_cache_env(self.env.policy.binary(), &self.workdir.join("provider-cache")));
            }
            // The tool runs the repo's code: it gets no credential of ours, unless the deployment hands it the
            // read-only one for private module sources.
            without_secrets(&mut command);
            if let (true, Some(token)) = (self.env.config.tool_git_credential, &self.env.git.read_token) {
                command.envs(crate::git::tool_credential_env(token));
            }
            // Every unit shares the cache: one init at a time fills it (terragrunt's cache server needs no turn).
            let _turn = (self.env.policy.binary().is_terraform_like() && args.first().is_some_and(|a| a == "init"))
                .then(|| self.init_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            last = run_streamed(command, &ctx)?;
            if last.exit_code != 0 {
                return Ok(last);
            }
        }
        Ok(last)
    }

    fn single_unit(
        &self,
        url: &str,
        git_ref: &str,
        path: &str,
        source_ref: Option<&str>,
        operation: Operation,
        ledger: Option<Ledgered<'_>>,
    ) -> Result<i32, TaskError> {
        let mut repo = self.open_repo(url, "repo")?;
        let history = operation.changes_infrastructure();
        let commit = self.fetch_ref(&repo, git_ref, history)?;
        if operation.changes_infrastructure() {
            self.verify_apply_commit(&repo, &commit, git_ref, ledger.unwrap_or_default())?;
        }
        let checkout = match source_ref {
            // Deleted units run where they still exist, and only if they are really gone at `ref`.
            Some(source) => {
                let source_commit = self.fetch_ref(&repo, source, history)?;
                if operation == Operation::Destroy && !repo.is_ancestor(&source_commit, &commit)? {
                    return Err(TaskError::Refused(format!(
                        "source_ref {source} is not an ancestor of {git_ref}; refusing to destroy from it"
                    )));
                }
                self.check_deleted(&repo, path, (git_ref, &commit), (source, &source_commit))?;
                source_commit
            }
            None => commit,
        };
        // Every fetch is done: from here on no credential exists outside this process.
        repo.seal();
        repo.checkout_detached(&checkout)?;
        let dir = match self.prepare_unit(&repo, repo.dir(), &checkout, path)? {
            Prepared::Unit(dir) => dir,
            Prepared::Failed(result) => return Ok(result.exit_code),
        };
        let result = self.run_tool(&repo, &dir, path, operation)?;
        if let Some(c) = result.counts {
            self.say(&format!("{path}: {} to add, {} to change, {} to destroy", c.add, c.change, c.destroy));
        }
        Ok(result.exit_code)
    }

    /// A destroy (or its plan) is only for a unit that is gone at `ref` and was a unit at `source_ref`: otherwise
    /// "destroy the deleted unit" could be aimed at a live one.
    fn check_deleted(
        &self,
        repo: &Repo,
        path: &str,
        (git_ref, commit): (&str, &str),
        (source_ref, source_commit): (&str, &str),
    ) -> Result<(), TaskError> {
        let binary = self.env.policy.binary();
        match crate::deleted::unit_at(repo, commit, path, binary)? {
            crate::deleted::UnitAt::Absent => {}
            crate::deleted::UnitAt::Present => {
                return Err(TaskError::Refused(format!(
                    "{path} is still a unit at {git_ref}; only a unit deleted at ref can be destroyed (its config \
                     must be absent at ref and present at source_ref)"
                )))
            }
            crate::deleted::UnitAt::Linked(link) => {
                return Err(TaskError::Refused(format!(
                    "{path}: {link} is a symlink at {git_ref}; refusing to destroy"
                )))
            }
        }
        match crate::deleted::unit_at(repo, source_commit, path, binary)? {
            crate::deleted::UnitAt::Present => Ok(()),
            crate::deleted::UnitAt::Absent => Err(TaskError::Refused(format!(
                "{path} is not a unit at source_ref {source_ref}; there is nothing to destroy from there"
            ))),
            crate::deleted::UnitAt::Linked(link) => Err(TaskError::Refused(format!(
                "{path}: {link} is a symlink at source_ref {source_ref}; refusing to destroy"
            ))),
        }
    }

    /// The unit's local `terraform { source }` and local module calls must stay inside the clone.
    fn check_sources(&self, repo: &Repo, commit: &str, path: &str) -> Result<(), TaskError> {
        crate::sources::check_local_sources(repo.dir(), commit, path, self.env.policy.binary())
            .map_err(TaskError::Refused)
    }

    /// Makes `path` (in the work tree `tree`, at `commit`) ready to run: confined, its sources checked. A unit a
    /// terragrunt stack generates is generated first, the way terragrunt does (`terragrunt stack generate` in the
    /// stack's folder), after checking that the stack at this commit generates exactly it from inside the clone.
    fn prepare_unit(&self, repo: &Repo, tree: &Path, commit: &str, path: &str) -> Result<Prepared, TaskError> {
        let binary = self.env.policy.binary();
        let Some((stack_dir, _)) = path.split_once(&format!("/{}", deploy_runner_gate::syntax::GENERATED_STACK_DIR))
        else {
            let dir = confine(tree, path, Some(binary))?;
            self.check_sources(repo, commit, path)?;
            return Ok(Prepared::Unit(dir));
        };
        if binary != ToolBinary::Terragrunt {
            return Err(TaskError::Refused(format!(
                "{path} is generated by a terragrunt stack: the policy's binary must be terragrunt"
            )));
        }
        let stack = confine(tree, stack_dir, None)?;
        crate::update::regular_file(&stack, deploy_runner_changes::stacks::STACK_FILE).map_err(TaskError::Refused)?;
        crate::sources::check_stack_unit(repo.dir(), commit, path).map_err(TaskError::Refused)?;
        let mut generated_stacks = self.generated_stacks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !generated_stacks.contains(&stack) {
            let generated = self.run_tool_commands(&stack, path, vec![crate::tool::stack_generate()])?;
            if generated.exit_code != 0 {
                return Ok(Prepared::Failed(generated));
            }
            generated_stacks.insert(stack.clone());
        }
        drop(generated_stacks);
        Ok(Prepared::Unit(confine(tree, path, Some(binary))?))
    }

    /// An account wave: units in the given order; plan runs them all, apply stops at the first failure.
    fn wave(&self, rollout: &Rollout) -> Result<i32, TaskError> {
        let apply = rollout.mode == RolloutMode::Apply;
        let mut repo = self.open_repo(&rollout.repo, "repo")?;
        let commit = self.fetch_ref(&repo, &rollout.git_ref, apply)?;
        if apply {
            let ledger =
                Ledgered { apply_ref: rollout.apply_ref.as_deref(), deployed: rollout.deployed_commit.as_deref() };
            self.verify_apply_commit(&repo, &commit, &rollout.git_ref, ledger)?;
        }
        // Every fetch happens before the first tool runs, the deleted units' source commits included; a unit whose
        // source can't be fetched or checked fails on its own turn, like any other unit.
        let mut fetched: HashMap<&str, Result<String, String>> = HashMap::new();
        let mut deleted_sources: HashMap<&str, Result<String, String>> = HashMap::new();
        for unit in rollout.units.iter().filter(|u| u.change == ChangeKind::Deleted) {
            let Some(source) = unit.source_ref.as_deref() else { continue };
            let source_commit = fetched
                .entry(source)
                .or_insert_with(|| self.fetch_ref(&repo, source, apply).map_err(|e| e.to_string()))
                .clone();
            let checked = source_commit.and_then(|source_commit| {
                if apply && !repo.is_ancestor(&source_commit, &commit).map_err(|e| e.to_string())? {
                    return Err(format!("source_ref {source} is not an ancestor of {commit}"));
                }
                self.check_deleted(&repo, &unit.path, (&rollout.git_ref, &commit), (source, &source_commit))
                    .map_err(|e| e.to_string())?;
                Ok(source_commit)
            });
            deleted_sources.insert(unit.path.as_str(), checked);
        }
        repo.seal();
        repo.checkout_detached(&commit)?;
        let operation_of = |unit: &RolloutUnit| match (apply, unit.change == ChangeKind::Deleted) {
            (true, true) => Operation::Destroy,
            (true, false) => Operation::Apply,
            (false, true) => Operation::PlanDestroy,
            (false, false) => Operation::Plan,
        };
        let limit = self.parallelism(rollout);
        // Applied units first, each once what it waits for has ended, up to `limit` at a time.
        let mut outcomes = self.run_as_dependencies_allow(&repo, &commit, rollout, limit, &operation_of);
        let mut first_failure = outcomes.iter().flatten().find(|o| o.status == "failed").map(failure_code);
        // Then deleted units, one at a time in the order given (detection lists them in reverse dependency order),
        // each from a work tree at the commit where it still exists.
        let mut worktrees: HashMap<String, PathBuf> = HashMap::new();
        for (index, unit) in rollout.units.iter().enumerate().filter(|(_, u)| u.change == ChangeKind::Deleted) {
            let operation = operation_of(unit);
            if (apply && first_failure.is_some()) || self.stop.load(Ordering::SeqCst) {
                outcomes[index] = Some(skipped(&unit.path, operation));
                continue;
            }
            let started = std::time::Instant::now();
            let tree = match deleted_sources.get(unit.path.as_str()) {
                None => Ok((repo.dir().to_path_buf(), commit.clone())),
                Some(Err(why)) => Err(TaskError::Refused(why.clone())),
                Some(Ok(source_commit)) => self.worktree(&repo, &mut worktrees, source_commit),
            };
            let outcome = match tree {
                Ok((tree, tree_commit)) => self.run_unit(&repo, &tree, &tree_commit, &unit.path, operation, started),
                Err(e) => self.unit_error(&unit.path, operation, &e, started),
            };
            if outcome.status == "failed" && first_failure.is_none() {
                first_failure = Some(failure_code(&outcome));
            }
            outcomes[index] = Some(outcome);
        }
        let outcomes: Vec<UnitOutcome> = outcomes
            .into_iter()
            .zip(&rollout.units)
            .map(|(outcome, unit)| outcome.unwrap_or_else(|| skipped(&unit.path, operation_of(unit))))
            .collect();
        let stopped = self.stop.load(Ordering::SeqCst);
        let summary = serde_json::json!({
            "event": "wave_summary",
            "mode": rollout.mode.as_str(),
            "ref": rollout.git_ref,
            "commit": commit,
            "succeeded": first_failure.is_none() && !stopped,
            "units": outcomes,
        });
        emit_event(&summary);
        Ok(if stopped { EXIT_TERMINATED } else { first_failure.unwrap_or(0) })
    }

    /// A work tree at `commit` (one per commit, shared by the deleted units that live there).
    /// How many units of `rollout`'s wave run at once: what it asks for, within the policy's most.
    fn parallelism(&self, rollout: &Rollout) -> usize {
        let most = self.env.policy.document().max_parallel_units.max(1);
        rollout.parallelism.unwrap_or(most).clamp(1, most) as usize
    }

    /// Runs the wave's applied units, each once the units it waits for have ended (`depends_on`; without one, the
    /// unit before it in the list), at most `limit` at a time. In an apply, the first failure starts nothing new
    /// (running units finish) and a unit whose dependency failed or never ran is skipped; a plan runs everything
    /// it can. Returns each unit's outcome by index; deleted units and units never started are `None`.
    fn run_as_dependencies_allow(
        &self,
        repo: &Repo,
        commit: &str,
        rollout: &Rollout,
        limit: usize,
        operation_of: &(dyn Fn(&RolloutUnit) -> Operation + Sync),
    ) -> Vec<Option<UnitOutcome>> {
        let apply = rollout.mode == RolloutMode::Apply;
        let units = &rollout.units;
        let index_of: HashMap<&str, usize> = units.iter().enumerate().map(|(i, u)| (u.path.as_str(), i)).collect();
        let mut previous: Option<usize> = None;
        let mut waits: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (i, unit) in units.iter().enumerate().filter(|(_, u)| u.change != ChangeKind::Deleted) {
            waits[i] = match &unit.depends_on {
                Some(list) => list.iter().filter_map(|d| index_of.get(d.as_str()).copied()).collect(),
                None => previous.into_iter().collect(),
            };
            previous = Some(i);
        }
        let mut outcomes: Vec<Option<UnitOutcome>> = vec![None; units.len()];
        let mut pending: Vec<usize> = (0..units.len()).filter(|i| units[*i].change != ChangeKind::Deleted).collect();
        let mut halted = false;
        std::thread::scope(|scope| {
            let (done, finished) = std::sync::mpsc::channel::<(usize, UnitOutcome)>();
            let mut running = 0usize;
            loop {
                halted |= self.stop.load(Ordering::SeqCst);
                // Skip (in an apply) what can no longer run and start what is ready, in list order; a skip can
                // block units listed before it, so go round until nothing changes.
                let mut skipped_any = true;
                while skipped_any {
                    skipped_any = false;
                    let mut still_pending = Vec::with_capacity(pending.len());
                    for i in std::mem::take(&mut pending) {
                        let ended = waits[i].iter().all(|d| outcomes[*d].is_some());
                        let blocked =
                            waits[i].iter().any(|d| outcomes[*d].as_ref().is_some_and(|o| o.status != "succeeded"));
                        if apply && blocked {
                            outcomes[i] = Some(skipped(&units[i].path, operation_of(&units[i])));
                            skipped_any = true;
                        } else if ended && !halted && running < limit {
                            running += 1;
                            let done = done.clone();
                            let unit = &units[i];
                            let operation = operation_of(unit);
                            scope.spawn(move || {
                                let started = std::time::Instant::now();
                                // A unit that panicked still ends (failed), so the wave never waits for it forever
                                // (release builds abort on a panic instead: the task ends either way).
                                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    self.run_unit(repo, repo.dir(), commit, &unit.path, operation, started)
                                }))
                                .unwrap_or_else(|_| {
                                    let why = TaskError::Refused("the deploy task failed running this unit".into());
                                    self.unit_error(&unit.path, operation, &why, started)
                                });
                                let _ = done.send((i, outcome));
                            });
                        } else {
                            still_pending.push(i);
                        }
                    }
                    pending = still_pending;
                }
                // Nothing running means nothing more can start: what is left is skipped below.
                if running == 0 {
                    break;
                }
                let Ok((i, outcome)) = finished.recv() else { break };
                running -= 1;
                if apply && outcome.status == "failed" {
                    halted = true;
                }
                outcomes[i] = Some(outcome);
            }
        });
        outcomes
    }

    /// Prepares and runs one unit in `tree` (checked out at `tree_commit`), timing it.
    fn run_unit(
        &self,
        repo: &Repo,
        tree: &Path,
        tree_commit: &str,
        path: &str,
        operation: Operation,
        started: std::time::Instant,
    ) -> UnitOutcome {
        self.say(&format!("{path}: {UNIT_STARTED}"));
        let result = self.prepare_unit(repo, tree, tree_commit, path).and_then(|prepared| match prepared {
            Prepared::Unit(dir) => self.run_tool(repo, &dir, path, operation),
            Prepared::Failed(result) => Ok(result),
        });
        let outcome = match result {
            Ok(r) => UnitOutcome {
                path: path.to_owned(),
                operation: operation.as_str(),
                status: if r.exit_code == 0 { "succeeded" } else { "failed" },
                exit_code: Some(r.exit_code),
                counts: r.counts,
                error: None,
                duration_ms: Some(elapsed_ms(started)),
            },
            Err(e) => self.unit_error(path, operation, &e, started),
        };
        let took = outcome.duration_ms.unwrap_or_default() as f64 / 1000.0;
        self.say(&format!("{path}: {} {UNIT_ENDED_IN} {took:.1}s", outcome.status));
        outcome
    }

    /// A unit that failed before its tool could run.
    fn unit_error(
        &self,
        path: &str,
        operation: Operation,
        error: &TaskError,
        started: std::time::Instant,
    ) -> UnitOutcome {
        self.say(&format!("{path}: {error}"));
        UnitOutcome {
            path: path.to_owned(),
            operation: operation.as_str(),
            status: "failed",
            exit_code: None,
            counts: None,
            error: Some(self.masker.mask(&error.to_string()).into_owned()),
            duration_ms: Some(elapsed_ms(started)),
        }
    }

    fn worktree(
        &self,
        repo: &Repo,
        worktrees: &mut HashMap<String, PathBuf>,
        commit: &str,
    ) -> Result<(PathBuf, String), TaskError> {
        if let Some(dir) = worktrees.get(commit) {
            return Ok((dir.clone(), commit.to_owned()));
        }
        let dir = repo.worktree_at(&self.workdir.join(format!("source-{}", worktrees.len())), commit)?;
        worktrees.insert(commit.to_owned(), dir.clone());
        Ok((dir, commit.to_owned()))
    }

    fn update_variable(&self, update: &VariableUpdate, request: &Request) -> Result<i32, TaskError> {
        let repo = self.open_repo(&update.repo, "repo")?;
        let commit = self.fetch_ref(&repo, &update.git_ref, true)?;
        // Edit the tip of the apply ref the commit is on (the ref itself when a branch was given).
        let branch = self.verify_on_apply_ref(&repo, &commit, &update.git_ref)?;
        let message = crate::update::commit_message(update, &request.actor).map_err(TaskError::Refused)?;
        let relative = format!("{}/terragrunt.hcl", update.path);
        let attempts = self.env.config.push_attempts.max(1);
        for attempt in 1..=attempts {
            repo.fetch_branch(&branch, None)?;
            let tip = repo.resolve(&format!("refs/remotes/origin/{branch}"))?;
            repo.checkout_detached(&tip)?;
            let dir = confine(repo.dir(), &update.path, Some(ToolBinary::Terragrunt))?;
            let file = crate::update::regular_file(&dir, "terragrunt.hcl").map_err(TaskError::Refused)?;
            let text = std::fs::read_to_string(&file)?;
            let new_text = match set_input(&relative, &text, &update.variable, &update.value)
                .map_err(|e| TaskError::Refused(e.to_string()))?
            {
                Edited::Unchanged => {
                    self.say(&format!("{relative}: {} is already {:?}; nothing to do", update.variable, update.value));
                    return Ok(0);
                }
                Edited::Changed(new_text) => new_text,
            };
            crate::update::replace_file(&file, &new_text)?;
            let new_commit = repo.commit_files(
                &[&relative],
                &message,
                &self.env.config.git_author_name,
                &self.env.config.git_author_email,
            )?;
            // The one place a push credential is used, for exactly this command.
            match repo.push_head(&branch, &self.env.git.push())? {
                PushOutcome::Pushed => {
                    self.say(&format!("pushed {new_commit} to {branch}: {} = {:?}", update.variable, update.value));
                    emit_event(&serde_json::json!({"event": "variable_updated", "commit": new_commit,
                        "branch": branch, "path": update.path, "variable": update.variable, "value": update.value}));
                    return Ok(0);
                }
                PushOutcome::Rejected => {
                    self.say(&format!("{branch} moved while committing (attempt {attempt} of {attempts}); rebasing"))
                }
            }
        }
        Err(TaskError::Refused(format!("{branch} kept moving; gave up after {attempts} push attempts")))
    }

    /// Fetches what a build builds. An image tagged by commit builds the commit its tag names (a branch given as
    /// `ref` must point at it); a release build fetches exactly the tag. Returns the commit and its version name.
    fn fetch_build(&self, repo: &Repo, git_ref: &str, tag: Option<&str>) -> Result<(String, String), TaskError> {
        let release = self.env.policy.is_release_tag(git_ref) && tag.is_none_or(|t| t == git_ref);
        if release {
            repo.fetch_tag(git_ref, Some(1))?;
            let commit = repo.resolve(&format!("refs/tags/{git_ref}"))?;
            return Ok((commit, git_ref.to_owned()));
        }
        let commit = self.fetch_ref(repo, git_ref, false)?;
        if let Some(tag) = tag {
            if !commit.starts_with(tag) {
                return Err(TaskError::Refused(format!(
                    "tag {tag} is not the built commit: {git_ref} is at {commit}; an image is tagged with the SHA of \
                     the commit it is built from"
                )));
            }
        }
        Ok((commit.clone(), commit))
    }

    fn build_image(&self, build: &ImageBuild) -> Result<i32, TaskError> {
        let image = &self.env.config.image;
        let Some(registry_repo) = &image.registry_repo else {
            return Err(TaskError::Refused("image.registry_repo is not configured".into()));
        };
        let destination = format!("{registry_repo}:{}", build.tag);
        let mut repo = self.open_repo(&build.repo, "app")?;
        let (commit, _) = self.fetch_build(&repo, &build.git_ref, Some(&build.tag))?;
        repo.seal();
        repo.checkout_detached(&commit)?;
        let context = confine(repo.dir(), &build.context_path, None)?;
        match crate::image::existing_revision(image, &destination).map_err(TaskError::Refused)? {
            crate::image::Existing::Absent => {}
            crate::image::Existing::BuiltFrom(revision) if revision == commit && image.skip_existing => {
                self.say(&format!("{destination} already exists, built from {commit}; not rebuilt"));
                return Ok(0);
            }
            crate::image::Existing::BuiltFrom(revision) => {
                return Err(TaskError::Refused(format!(
                    "{destination} already exists (built from {revision}); an existing tag is never overwritten"
                )))
            }
        }
        let mut command = Command::new(&image.executor_path);
        without_secrets(&mut command);
        command
            .arg(format!("--context=dir://{}", context.display()))
            .arg(format!("--dockerfile={}", context.join("Dockerfile").display()))
            .arg(format!("--destination={destination}"))
            .arg(format!("--label=org.opencontainers.image.revision={commit}"));
        let ctx = self.run_context(&format!("build {}", build.context_path));
        Ok(run_streamed(command, &ctx)?.exit_code)
    }

    fn build_ami(&self, build: &AmiBuild) -> Result<i32, TaskError> {
        let mut repo = self.open_repo(&build.repo, "app")?;
        let (commit, version) = self.fetch_build(&repo, &build.git_ref, None)?;
        repo.seal();
        repo.checkout_detached(&commit)?;
        let template = confine(repo.dir(), &build.template_path, None)?;
        let template_dir = template.parent().unwrap_or(repo.dir()).to_path_buf();
        let mut command = Command::new(&self.env.config.packer_path);
        without_secrets(&mut command);
        // Templates name and tag the AMI with these (undeclared variables are ignored by packer).
        command.env("PKR_VAR_deploy_runner_commit", &commit).env("PKR_VAR_deploy_runner_version", &version);
        command.arg("build").arg("-machine-readable").current_dir(&template_dir);
        if let Some(var_file) = &build.var_file {
            command.arg(format!("-var-file={}", confine(repo.dir(), var_file, None)?.display()));
        }
        command.arg(&template);
        let mut ctx = self.run_context(&format!("ami {}", build.template_path));
        ctx.capture_stdout = true;
        let result = run_streamed(command, &ctx)?;
        if result.exit_code != 0 {
            return Ok(result.exit_code);
        }
        match parse_ami(&result.stdout) {
            Some((region, ami)) => {
                emit_event(&serde_json::json!({"event": "ami", "ami_id": ami, "region": region, "commit": commit,
                                               "version": version}));
                Ok(0)
            }
            None => Err(TaskError::Refused("packer succeeded but printed no AMI id".into())),
        }
    }

    fn run_context(&self, prefix: &str) -> RunContext<'_> {
        RunContext {
            prefix: format!("[{prefix}] "),
            masker: &self.masker,
            stop: &self.stop,
            grace: Duration::from_secs(self.env.config.grace_period_secs),
            capture_stdout: false,
            log: None,
            echo: Echo::Inherit,
        }
    }
}

/// What the ledger says about a single-unit apply: the apply ref it is judged under and the commit the unit's
/// account has deployed from it (both set by the control plane).
#[derive(Debug, Clone, Copy, Default)]
struct Ledgered<'a> {
    apply_ref: Option<&'a str>,
    deployed: Option<&'a str>,
}

/// A unit ready to run, or the result of the step that failed preparing it (a stack's generation).
enum Prepared {
    Unit(PathBuf),
    Failed(ToolResult),
}

/// Prints one machine-readable event as a line of inert JSON on stdout (the wave summary, an AMI id). A closed
/// stdout is not the task's failure: the tool already ran, and its exit code is what counts.
fn emit_event(event: &serde_json::Value) {
    let line = deploy_runner_gate::text::to_json_string(event).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// What the task says when a wave's unit starts (`deploy-runner-task: <unit>: started`), so a display can show the
/// running units.
pub const UNIT_STARTED: &str = "started";

/// What the task says when a wave's unit ends (`deploy-runner-task: <unit>: <status> in <seconds>s`).
pub const UNIT_ENDED_IN: &str = "in";

/// The wave's exit code for a failed unit: its tool's, or 1 when the tool never ran.
fn failure_code(outcome: &UnitOutcome) -> i32 {
    outcome.exit_code.filter(|c| *c != 0).unwrap_or(1)
}

fn elapsed_ms(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn skipped(path: &str, operation: Operation) -> UnitOutcome {
    UnitOutcome {
        path: path.to_owned(),
        operation: operation.as_str(),
        status: "skipped",
        exit_code: None,
        counts: None,
        error: None,
        duration_ms: None,
    }
}

/// Finds `region:ami-...` in packer's machine-readable artifact lines (`...,artifact,0,id,us-east-1:ami-0abc`).
pub fn parse_ami(output: &str) -> Option<(String, String)> {
    output.lines().filter(|l| l.contains(",artifact,") && l.contains(",id,")).find_map(|line| {
        let id = line.rsplit(",id,").next()?.trim();
        let (region, ami) = id.split(',').next()?.split_once(':')?;
        ami.starts_with("ami-").then(|| (region.to_owned(), ami.to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_from_machine_readable_output() {
        let out = "1700000000,,ui,say,==> amazon-ebs.app: AMI: ami-0123456789abcdef0\n\
                   1700000001,amazon-ebs.app,artifact-count,1\n\
                   1700000001,amazon-ebs.app,artifact,0,builder-id,mitchellh.amazonebs\n\
                   1700000001,amazon-ebs.app,artifact,0,id,us-east-1:ami-0123456789abcdef0\n";
        assert_eq!(parse_ami(out), Some(("us-east-1".into(), "ami-0123456789abcdef0".into())));
        assert_eq!(parse_ami("1700000000,,ui,error,boom\n"), None);
    }
}
