//! The gate: applies the policy to a decoded request and decides.
//!
//! Checks run in a fixed order so a request with several problems always gets the same reason: common fields,
//! repo, refs, paths (syntax, then guards, then accounts), then action-specific fields. The first failure denies.

use crate::decision::{quote, Container, Decision, Reason, Verdict};
use crate::policy::Policy;
use crate::request::{Action, ActionRequest, ChangeKind, Request};
use crate::syntax;

/// Most units one rollout may carry.
pub const MAX_ROLLOUT_UNITS: usize = 2000;

/// A request that passed the gate, with what the gate worked out about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The request, unchanged.
    pub request: Request,
    /// The container that runs it; `None` for read-only actions, which start nothing.
    pub container: Option<Container>,
    /// The account of a single-unit action.
    pub account: Option<String>,
}

/// A denial: the reason code and an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The reason code.
    pub reason: Reason,
    /// The explanation.
    pub message: String,
}

/// The result of checking a body: the decision to report, and the admitted request when allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to report.
    pub decision: Decision,
    /// Present exactly when the decision is allow.
    pub admitted: Option<Admitted>,
}

/// The request gate over one policy.
#[derive(Debug, Clone)]
pub struct Gate {
    policy: Policy,
}

type Check = Result<(), Denial>;

fn deny(reason: Reason, message: String) -> Check {
    Err(Denial { reason, message })
}

impl Gate {
    /// A gate enforcing `policy`.
    pub fn new(policy: Policy) -> Gate {
        Gate { policy }
    }

    /// The policy this gate enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decodes and checks a raw request body. Never panics; every failure is a denial.
    pub fn evaluate(&self, body: &[u8]) -> Outcome {
        match Request::decode(body) {
            Ok(request) => self.evaluate_request(request),
            Err(e) => Outcome { decision: Decision::deny(e.reason, e.message, e.action), admitted: None },
        }
    }

    /// Checks an already-decoded request.
    pub fn evaluate_request(&self, request: Request) -> Outcome {
        let action = request.body.action();
        match self.check(&request) {
            Ok(admitted) => Outcome {
                decision: Decision {
                    decision: Verdict::Allow,
                    reason: Reason::Ok,
                    message: describe_allowed(&admitted),
                    action: Some(action),
                    container: admitted.container,
                    account: admitted.account.clone(),
                },
                admitted: Some(admitted),
            },
            Err(denial) => {
                Outcome { decision: Decision::deny(denial.reason, denial.message, Some(action)), admitted: None }
            }
        }
    }

    /// Applies every rule to `request`; the first failure denies.
    pub fn check(&self, request: &Request) -> Result<Admitted, Denial> {
        self.check_common(request)?;
        let body = &request.body;
        let action = body.action();
        match body {
            ActionRequest::Status(query) | ActionRequest::Logs(query) | ActionRequest::Resume(query) => {
                check_run_query(query)?;
                if let Some(account) = &query.account {
                    self.check_account_name(account)?;
                }
                return Ok(Admitted { request: request.clone(), container: None, account: query.account.clone() });
            }
            ActionRequest::Approve(answer) | ActionRequest::Reject(answer) => {
                self.check_approval_answer(answer)?;
                return Ok(Admitted {
                    request: request.clone(),
                    container: None,
                    account: Some(answer.account.clone()),
                });
            }
            _ => {}
        }
        self.check_repo(action, body.repo())?;
        if let ActionRequest::Ledger(query) = body {
            if let Some(apply_ref) = &query.apply_ref {
                self.check_named_apply_ref(apply_ref)?;
            }
            return Ok(Admitted { request: request.clone(), container: None, account: None });
        }
        check_ref_field("ref", body.git_ref())?;
        // The container comes from the action's own table; the applier is exactly the apply class, whose ref must
        // be an apply ref or a full SHA.
        let Some(container) = body.container() else {
            return Ok(Admitted { request: request.clone(), container: None, account: None });
        };
        if container == Container::Applier {
            self.check_apply_ref(body.git_ref())?;
            if let ActionRequest::Rollout(r) = body {
                check_pinned("ref", &r.git_ref)?;
            }
        }
        match body {
            ActionRequest::PlanDestroy(t) | ActionRequest::Destroy(t) => check_ref_field("source_ref", &t.source_ref)?,
            ActionRequest::BuildImage(b) => {
                if let Err(why) = syntax::check_context_path(&b.context_path) {
                    deny(Reason::PathInvalid, format!("context_path {}: {why}", quote(&b.context_path)))?;
                }
                if let Err(why) = syntax::check_image_tag(&b.tag) {
                    deny(Reason::FieldInvalid, format!("tag {}: {why}", quote(&b.tag)))?;
                }
                self.check_build_tag(&b.tag, &b.git_ref)?;
            }
            ActionRequest::BuildAmi(b) => {
                for (field, path) in [("template_path", Some(&b.template_path)), ("var_file", b.var_file.as_ref())] {
                    if let Some(Err(why)) = path.map(|p| syntax::check_unit_path(p)) {
                        deny(Reason::PathInvalid, format!("{field} {}: {why}", quote(path.map_or("", |p| p))))?;
                    }
                }
            }
            ActionRequest::Rollout(r) => self.check_rollout_units(r)?,
            ActionRequest::Apply(t) => {
                self.check_ledger_fields(t.apply_ref.as_deref(), t.deployed_commit.as_deref())?
            }
            ActionRequest::Plan(t) | ActionRequest::Validate(t)
                if t.apply_ref.is_some() || t.deployed_commit.is_some() =>
            {
                deny(Reason::FieldInvalid, format!("apply_ref and deployed_commit are for apply, not {action}"))?;
            }
            _ => {}
        }
        let account = match body.unit_path() {
            Some(path) => Some(self.check_unit_paths(&[path])?.to_owned()),
            None => None,
        };
        if let (Container::Applier, Some(account)) = (container, &account) {
            self.check_approval_needed(action, account)?;
        }
        if let ActionRequest::UpdateVariable(u) = body {
            if !self.policy.is_updatable_variable(&u.variable) {
                deny(
                    Reason::VariableNotAllowed,
                    format!(
                        "variable {} is not in update_variable_names ({})",
                        quote(&u.variable),
                        self.policy.document().update_variable_names.join(", ")
                    ),
                )?;
            }
            if let Err(why) = syntax::check_variable_value(&u.value) {
                deny(Reason::FieldInvalid, format!("value {}: {why}", quote(&u.value)))?;
            }
        }
        Ok(Admitted { request: request.clone(), container: Some(container), account })
    }

    fn check_common(&self, request: &Request) -> Check {
        if let Err(why) = syntax::check_actor(&request.actor) {
            deny(Reason::FieldInvalid, format!("actor {}: {why}", quote(&request.actor)))?;
        }
        if let Some(id) = &request.request_id {
            if let Err(why) = syntax::check_request_id(id) {
                deny(Reason::FieldInvalid, format!("request_id {}: {why}", quote(id)))?;
            }
        }
        Ok(())
    }

    fn check_repo(&self, action: Action, repo: &str) -> Check {
        let (list, section) = match action {
            Action::BuildImage | Action::BuildAmi => (self.policy.app(), "app"),
            _ => (self.policy.infrastructure_live(), "infrastructure_live"),
        };
        let shown = quote(&syntax::redact_repo_userinfo(repo));
        if let Err(why) = syntax::check_repo_shape(repo) {
            return deny(Reason::RepoNotAllowed, format!("repo {shown}: {why}"));
        }
        if !list.allows(repo) {
            return deny(
                Reason::RepoNotAllowed,
                format!("repo {shown} is not in the {section} allow-list required by {action}"),
            );
        }
        Ok(())
    }

    fn check_apply_ref(&self, git_ref: &str) -> Check {
        if self.policy.is_apply_ref(git_ref) || syntax::is_full_commit_sha(git_ref) {
            return Ok(());
        }
        deny(
            Reason::RefNotAllowedForApply,
            format!(
                "ref {} is neither an apply ref ({}) nor a full commit SHA",
                quote(git_ref),
                self.policy.document().apply_refs.join(", ")
            ),
        )
    }

    /// Checks unit paths in three passes (syntax, guards, accounts) so a guarded unit is always reported as
    /// guarded, whatever else is wrong with its neighbours. Returns the first path's account.
    fn check_unit_paths<'p>(&self, paths: &[&'p str]) -> Result<&'p str, Denial> {
        for path in paths {
            if let Err(why) = syntax::check_unit_path(path) {
                deny(Reason::PathInvalid, format!("path {}: {why}", quote(path)))?;
            }
        }
        for path in paths {
            if let Some(index) = self.policy.guard_matching(path) {
                deny(
                    Reason::PathGuarded,
                    format!(
                        "path {} matches path guard {:?}; the pipeline never deploys its own runner",
                        quote(path),
                        self.policy.document().path_guards[index]
                    ),
                )?;
            }
        }
        let mut first_account = "";
        for (i, path) in paths.iter().enumerate() {
            let account = path.split('/').next().unwrap_or_default();
            if self.policy.account(account).is_none() {
                deny(
                    Reason::UnknownAccount,
                    format!("path {} is in account {}, which the policy does not know", quote(path), quote(account)),
                )?;
            }
            if i == 0 {
                first_account = account;
            }
        }
        Ok(first_account)
    }

    /// `apply_ref` names one of the policy's apply refs (a name, never a SHA: it keys the ledger and the lock).
    fn check_named_apply_ref(&self, apply_ref: &str) -> Check {
        check_ref_field("apply_ref", apply_ref)?;
        if !self.policy.is_apply_ref(apply_ref) {
            deny(
                Reason::RefNotAllowedForApply,
                format!(
                    "apply_ref {} is not an apply ref ({})",
                    quote(apply_ref),
                    self.policy.document().apply_refs.join(", ")
                ),
            )?;
        }
        Ok(())
    }

    /// A request's ledger fields: `apply_ref` names an apply ref, `deployed_commit` is a full SHA.
    fn check_ledger_fields(&self, apply_ref: Option<&str>, deployed_commit: Option<&str>) -> Check {
        if let Some(apply_ref) = apply_ref {
            self.check_named_apply_ref(apply_ref)?;
        }
        if let Some(deployed) = deployed_commit {
            if !syntax::is_full_commit_sha(deployed) {
                deny(Reason::FieldInvalid, format!("deployed_commit {}: must be a full commit SHA", quote(deployed)))?;
            }
        }
        Ok(())
    }

    fn check_rollout_units(&self, rollout: &crate::request::Rollout) -> Check {
        self.check_ledger_fields(rollout.apply_ref.as_deref(), rollout.deployed_commit.as_deref())?;
        for (account, base) in rollout.detected_from.iter().flatten() {
            self.check_account_name(account)?;
            if !syntax::is_full_commit_sha(base) {
                deny(
                    Reason::FieldInvalid,
                    format!("detected_from.{account} {}: must be a full commit SHA", quote(base)),
                )?;
            }
        }
        for (account, base) in rollout.ledger_bases.iter().flatten() {
            self.check_account_name(account)?;
            if base != crate::request::NO_LEDGER_ENTRY && !syntax::is_full_commit_sha(base) {
                deny(
                    Reason::FieldInvalid,
                    format!("ledger_bases.{account} {}: must be a full commit SHA or \"none\"", quote(base)),
                )?;
            }
        }
        let count = rollout.units.len();
        if count == 0 {
            deny(Reason::FieldInvalid, "units: a rollout needs at least one unit".into())?;
        }
        if count > MAX_ROLLOUT_UNITS {
            deny(Reason::TooManyUnits, format!("units: {count} units; a rollout takes at most {MAX_ROLLOUT_UNITS}"))?;
        }
        let paths: Vec<&str> = rollout.units.iter().map(|u| u.path.as_str()).collect();
        self.check_unit_paths(&paths)?;
        if let Some(parallelism) = rollout.parallelism {
            let most = self.policy.document().max_parallel_units;
            if parallelism == 0 || parallelism > most {
                deny(
                    Reason::FieldInvalid,
                    format!("parallelism {parallelism}: must be 1 to the policy's max_parallel_units ({most})"),
                )?;
            }
        }
        check_wait_lists(&rollout.units)?;
        let mut seen = std::collections::HashSet::with_capacity(count);
        for unit in &rollout.units {
            if !seen.insert(unit.path.as_str()) {
                deny(Reason::FieldInvalid, format!("units: path {} appears twice", quote(&unit.path)))?;
            }
            match (&unit.source_ref, unit.change) {
                (None, ChangeKind::Deleted) => {
                    deny(Reason::FieldInvalid, format!("units: deleted unit {} needs a source_ref", quote(&unit.path)))?
                }
                (Some(source_ref), ChangeKind::Deleted) => {
                    check_ref_field("source_ref", source_ref)?;
                    if rollout.mode == crate::request::RolloutMode::Apply {
                        check_pinned("source_ref", source_ref)?;
                    }
                }
                (Some(_), _) => deny(
                    Reason::FieldInvalid,
                    format!("units: source_ref is only meaningful for deleted units ({})", quote(&unit.path)),
                )?,
                (None, _) => {}
            }
        }
        Ok(())
    }
}

/// Each applied unit waits only for other applied units of its own account in the rollout, each named once, and
/// the waits have no cycle (which would leave a wave waiting forever). Deleted units wait for none: they run
/// after the others, in order.
fn check_wait_lists(units: &[crate::request::RolloutUnit]) -> Check {
    let account = |path: &str| path.split('/').next().unwrap_or_default().to_owned();
    let applied: std::collections::HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .filter(|(_, u)| u.change != ChangeKind::Deleted)
        .map(|(i, u)| (u.path.as_str(), i))
        .collect();
    for unit in units {
        let Some(waits) = &unit.depends_on else { continue };
        if unit.change == ChangeKind::Deleted {
            deny(Reason::FieldInvalid, format!("units: deleted unit {} waits for nothing", quote(&unit.path)))?;
        }
        let mut seen = std::collections::HashSet::new();
        for dependency in waits {
            let known = applied.contains_key(dependency.as_str()) && account(dependency) == account(&unit.path);
            if !known || dependency == &unit.path || !seen.insert(dependency.as_str()) {
                deny(
                    Reason::FieldInvalid,
                    format!(
                        "units: {} depends_on {}: must name another applied unit of its account in this rollout, once",
                        quote(&unit.path),
                        quote(dependency)
                    ),
                )?;
            }
        }
    }
    // Kahn's algorithm over the explicit waits (an absent list waits for the unit before: always acyclic).
    let mut waiting: Vec<usize> = vec![0; units.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for (i, unit) in units.iter().enumerate() {
        for dependency in unit.depends_on.iter().flatten() {
            let d = applied[dependency.as_str()];
            waiting[i] += 1;
            dependents[d].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..units.len()).filter(|i| waiting[*i] == 0).collect();
    let mut done = 0;
    while let Some(i) = ready.pop() {
        done += 1;
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(j);
            }
        }
    }
    if done < units.len() {
        let stuck: Vec<&str> = (0..units.len()).filter(|i| waiting[*i] > 0).map(|i| units[i].path.as_str()).collect();
        deny(Reason::FieldInvalid, format!("units: depends_on has a cycle among {}", quote(&stuck.join(", "))))?;
    }
    Ok(())
}

impl Gate {
    /// The account of a `logs` query must be one the policy knows.
    fn check_account_name(&self, account: &str) -> Check {
        if self.policy().account(account).is_none() {
            deny(Reason::UnknownAccount, format!("account {} is not in the policy", quote(account)))?;
        }
        Ok(())
    }

    /// An approval answer names a valid run, an account whose wave waits for approvals, and a short comment.
    fn check_approval_answer(&self, answer: &crate::request::ApprovalAnswer) -> Check {
        check_run_id(&answer.run_id)?;
        self.check_account_name(&answer.account)?;
        if !self.policy().needs_approval(&answer.account) {
            deny(
                Reason::FieldInvalid,
                format!("account {}: its waves need no approval (policy approval_accounts)", quote(&answer.account)),
            )?;
        }
        if let Some(comment) = &answer.comment {
            if let Err(why) = syntax::check_comment(comment) {
                deny(Reason::FieldInvalid, format!("comment {}: {why}", quote(comment)))?;
            }
        }
        Ok(())
    }
}

impl Gate {
    /// A single-unit change in an approval account would skip the approval its rollout wave waits for: refused
    /// unless the policy exempts the action explicitly.
    fn check_approval_needed(&self, action: Action, account: &str) -> Check {
        if !self.policy.needs_approval(account) || self.policy.is_approval_exempt(action) {
            return Ok(());
        }
        deny(
            Reason::ApprovalRequired,
            format!(
                "{action} in account {} needs an approval (approval_accounts): send it as a rollout, whose {} wave \
                 waits for one, or exempt {action} with approval_exempt_actions",
                quote(account),
                quote(account)
            ),
        )
    }

    /// Images are tagged by what they are built from, so a tag can't be squatted: the built commit's SHA (a prefix
    /// of at least 7 hex digits; the task checks it against the commit it fetched), or a release tag name when the
    /// build is at that very tag and the policy's `release_tag_patterns` accept it.
    fn check_build_tag(&self, tag: &str, git_ref: &str) -> Check {
        if syntax::is_commit_sha_prefix(tag) || (tag == git_ref && self.policy.is_release_tag(tag)) {
            return Ok(());
        }
        deny(
            Reason::TagNotAllowed,
            format!(
                "tag {}: an image is tagged with its commit SHA (at least 7 hex digits of the built commit) or, when \
                 built at a release tag matching release_tag_patterns, with that tag's name (ref {})",
                quote(tag),
                quote(git_ref)
            ),
        )
    }
}

/// Every wave and every resume of an apply rollout must run the same commit: a branch name would be resolved
/// again by each of them.
fn check_pinned(field: &str, value: &str) -> Check {
    if syntax::is_full_commit_sha(value) {
        return Ok(());
    }
    deny(
        Reason::RefNotPinned,
        format!(
            "{field} {}: an apply rollout runs every wave at one commit, so it takes a full commit SHA, not a branch \
             (the CLI resolves a branch to its SHA before sending)",
            quote(value)
        ),
    )
}

fn check_run_id(run_id: &str) -> Check {
    if syntax::check_request_id(run_id).is_err() {
        deny(Reason::FieldInvalid, format!("run_id {}: must match ^[A-Za-z0-9_-]{{1,80}}$", quote(run_id)))?;
    }
    Ok(())
}

/// A run id has the request id's shape; a logs page token is printable ASCII.
fn check_run_query(query: &crate::request::RunQuery) -> Check {
    check_run_id(&query.run_id)?;
    if let Some(token) = &query.next_token {
        if token.is_empty() || token.len() > 1024 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            deny(Reason::FieldInvalid, format!("next_token {}: 1-1024 printable ASCII characters", quote(token)))?;
        }
    }
    Ok(())
}

fn check_ref_field(field: &str, value: &str) -> Check {
    match syntax::check_ref(value) {
        Ok(()) => Ok(()),
        Err(why) => deny(Reason::RefInvalid, format!("{field} {}: {why}", quote(value))),
    }
}

fn describe_allowed(admitted: &Admitted) -> String {
    let body = &admitted.request.body;
    match body {
        ActionRequest::Status(q) | ActionRequest::Logs(q) | ActionRequest::Resume(q) => {
            return format!("{} of run {}", body.action(), q.run_id);
        }
        ActionRequest::Approve(a) | ActionRequest::Reject(a) => {
            return format!("{} of account {} in run {}", body.action(), a.account, a.run_id);
        }
        ActionRequest::Ledger(q) => {
            return format!("ledger of {} at {}", q.repo, q.apply_ref.as_deref().unwrap_or("the first apply ref"));
        }
        _ => {}
    }
    let container = admitted.container.map_or("no", |c| c.as_str());
    let target = match body {
        ActionRequest::BuildImage(b) => format!("context {} with tag {}", b.context_path, b.tag),
        ActionRequest::BuildAmi(b) => format!("template {}", b.template_path),
        ActionRequest::Rollout(r) => format!("{} of {} unit(s)", r.mode.as_str(), r.units.len()),
        _ => body.unit_path().unwrap_or_default().to_owned(),
    };
    format!("{} {target} at {} in {} runs on the {} container", body.action(), body.git_ref(), body.repo(), container)
}
