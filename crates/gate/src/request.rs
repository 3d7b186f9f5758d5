//! Typed requests: what CI may ask for, decoded strictly from JSON.
//!
//! Decoding happens in two steps. The body is first read as strict JSON (see [`crate::strict_json`]), then the
//! `action` field picks the typed shape and the remaining fields are decoded with unknown fields refused. Decoding
//! proves only the *shape*; the policy rules are applied afterwards by [`crate::Gate`].

use crate::decision::Reason;
use crate::strict_json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every action the gate knows. One enum that grows as the product does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `terragrunt plan` in one unit.
    Plan,
    /// `terragrunt validate` in one unit.
    Validate,
    /// Plan the destroy of a unit deleted at `ref`, from `source_ref` where it still exists.
    PlanDestroy,
    /// `terragrunt apply` in one unit.
    Apply,
    /// `terragrunt destroy` of a deleted unit, from `source_ref`.
    Destroy,
    /// Change one input variable of a unit and push the commit.
    UpdateVariable,
    /// Build and push an app image with kaniko.
    BuildImage,
    /// Build an AMI with Packer from an app repo's template.
    BuildAmi,
    /// Plan or apply a set of units in account waves, in deploy order.
    Rollout,
    /// Read-only: where a run is and how it ended.
    Status,
    /// Read-only: a page of a run's log lines.
    Logs,
    /// Approve the waiting approval gate of one account in a rollout.
    Approve,
    /// Reject the waiting approval gate of one account in a rollout, which stops it.
    Reject,
    /// Continue a failed, rejected or timed-out rollout from its first wave that did not succeed.
    Resume,
    /// Read-only: what each account last deployed from a repo's apply ref, and which apply rollout holds its lock.
    Ledger,
}

impl Action {
    /// Every action, in the order `deploy-runner describe` lists them.
    pub const ALL: [Action; 15] = [
        Action::Plan,
        Action::Validate,
        Action::PlanDestroy,
        Action::Apply,
        Action::Destroy,
        Action::UpdateVariable,
        Action::BuildImage,
        Action::BuildAmi,
        Action::Rollout,
        Action::Status,
        Action::Logs,
        Action::Approve,
        Action::Reject,
        Action::Resume,
        Action::Ledger,
    ];

    /// The wire name, as in `"action": "plan-destroy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Plan => "plan",
            Action::Validate => "validate",
            Action::PlanDestroy => "plan-destroy",
            Action::Apply => "apply",
            Action::Destroy => "destroy",
            Action::UpdateVariable => "update-variable",
            Action::BuildImage => "build-image",
            Action::BuildAmi => "build-ami",
            Action::Rollout => "rollout",
            Action::Status => "status",
            Action::Logs => "logs",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Resume => "resume",
            Action::Ledger => "ledger",
        }
    }

    /// The action with wire name `name`, if there is one (exact, case-sensitive).
    pub fn from_wire(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// What the action does, in a line (for `deploy-runner describe`).
    pub fn summary(self) -> &'static str {
        match self {
            Action::Plan => "terragrunt/terraform plan in one unit",
            Action::Validate => "terragrunt/terraform validate in one unit",
            Action::PlanDestroy => "plan the destroy of a unit deleted at ref, from source_ref where it still exists",
            Action::Apply => "apply one unit at an apply ref or a full SHA on one",
            Action::Destroy => "destroy a unit deleted at ref, from source_ref (an ancestor of ref)",
            Action::UpdateVariable => "set one input variable of a unit, commit and push to the apply ref",
            Action::BuildImage => "build and push an app image with kaniko",
            Action::BuildAmi => "build an AMI with packer and print its id",
            Action::Rollout => "plan or apply units in account waves, in deploy order",
            Action::Status => "where a run is and how it ended (answered by the invoker)",
            Action::Logs => "a page of a run's log lines (answered by the invoker)",
            Action::Approve => "approve a rollout's waiting approval for one account",
            Action::Reject => "reject a rollout's waiting approval for one account, which stops the rollout",
            Action::Resume => "continue a stopped rollout from its first wave that did not succeed",
            Action::Ledger => "what each account last deployed from an apply ref, and who holds its apply lock",
        }
    }

    /// The containers that may run the action (a rollout's depends on its mode; read-only actions start none).
    pub fn containers(self) -> &'static [crate::Container] {
        use crate::Container::{Applier, ImageBuilder, Planner};
        match self {
            Action::Plan | Action::Validate | Action::PlanDestroy => &[Planner],
            Action::Apply | Action::Destroy | Action::UpdateVariable => &[Applier],
            Action::BuildImage | Action::BuildAmi => &[ImageBuilder],
            Action::Rollout => &[Planner, Applier],
            Action::Status | Action::Logs | Action::Approve | Action::Reject | Action::Resume | Action::Ledger => &[],
        }
    }

    /// The fields the action takes besides the common `action`, `actor` and `request_id`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Action::Plan | Action::Validate => &["repo", "ref", "path"],
            Action::Apply => &["repo", "ref", "path", "apply_ref (optional)"],
            Action::PlanDestroy | Action::Destroy => &["repo", "ref", "path", "source_ref"],
            Action::UpdateVariable => &["repo", "ref", "path", "variable", "value"],
            Action::BuildImage => &["repo", "ref", "context_path", "tag"],
            Action::BuildAmi => &["repo", "ref", "template_path", "var_file (optional)"],
            Action::Rollout => &["repo", "ref", "mode", "units", "apply_ref (optional)", "parallelism (optional)"],
            Action::Status => &["run_id"],
            Action::Logs => &["run_id", "next_token (optional)", "account (optional)"],
            Action::Approve | Action::Reject => &["run_id", "account", "comment (optional)"],
            Action::Resume => &["run_id"],
            Action::Ledger => &["repo", "apply_ref (optional)"],
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unit in a repo at a ref: the target of plan, validate and apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTarget {
    /// The repo URL.
    pub repo: String,
    /// A branch name or full commit SHA.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The repo-relative unit path.
    pub path: String,
    /// `apply` only: the apply ref whose ledger the unit's account is judged by (default: `ref` when it names an
    /// apply ref, else the policy's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_ref: Option<String>,
    /// `apply` only, set by the control plane from the ledger and never trusted from a caller: the commit the
    /// unit's account last deployed. The deploy task refuses to apply an older commit (`stale_commit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_commit: Option<String>,
}

impl UnitTarget {
    /// The apply ref a single-unit apply is judged under: its `apply_ref`, else its `ref` when that is an apply
    /// ref, else the policy's first.
    pub fn ledger_ref<'a>(&'a self, policy: &'a crate::Policy) -> &'a str {
        self.apply_ref
            .as_deref()
            .or_else(|| policy.is_apply_ref(&self.git_ref).then_some(self.git_ref.as_str()))
            .or_else(|| policy.document().apply_refs.first().map(String::as_str))
            .unwrap_or_default()
    }
}

/// A unit deleted at `ref` that still exists at `source_ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletedUnitTarget {
    /// The repo URL.
    pub repo: String,
    /// The ref at which the unit is gone.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The repo-relative unit path.
    pub path: String,
    /// A ref at which the unit's config still exists.
    pub source_ref: String,
}

/// A change of one input variable in a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableUpdate {
    /// The repo URL.
    pub repo: String,
    /// The apply ref to push to, or a commit on it.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The repo-relative unit path.
    pub path: String,
    /// The input variable to set.
    pub variable: String,
    /// Its new value.
    pub value: String,
}

/// An app image build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageBuild {
    /// The app repo URL.
    pub repo: String,
    /// The ref to build.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The Docker build context inside the repo, or `.`.
    pub context_path: String,
    /// The image tag to push.
    pub tag: String,
}

/// A Packer AMI build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiBuild {
    /// The app repo URL.
    pub repo: String,
    /// The ref to build.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The Packer template inside the repo.
    pub template_path: String,
    /// An optional Packer variables file inside the repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var_file: Option<String>,
}

/// A run to look at (`status`), or read the logs of (`logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// The run id the invoker returned.
    pub run_id: String,
    /// For `logs`: where the previous page ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// For `logs` of a rollout: the account whose wave to read (each wave has its own log stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The answer to a rollout's approval gate (`approve` or `reject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalAnswer {
    /// The rollout's run id.
    pub run_id: String,
    /// The account whose wave waits for approval.
    pub account: String,
    /// Why, for the audit trail and the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Whether a rollout plans or applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutMode {
    /// Plan every unit; nothing changes.
    Plan,
    /// Apply (or destroy) every unit, halting at the first failed account.
    Apply,
}

impl RolloutMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutMode::Plan => "plan",
            RolloutMode::Apply => "apply",
        }
    }
}

/// Why change detection selected a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The unit's config exists at head but not at base.
    Added,
    /// A file owned by the unit changed.
    Modified,
    /// The unit's config existed at base and is gone at head.
    Deleted,
    /// The unit reads a changed file.
    Affected,
    /// The unit depends on a changed unit.
    Dependent,
}

impl ChangeKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Affected => "affected",
            ChangeKind::Dependent => "dependent",
        }
    }
}

/// One unit of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutUnit {
    /// The repo-relative unit path.
    pub path: String,
    /// Why the unit is in the rollout; `deleted` units are destroyed.
    pub change: ChangeKind,
    /// Where a deleted unit still exists; required for `deleted`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
    /// Applied units only: the units of the same account in this rollout that must end first (an empty list: none,
    /// so it may run beside the others). Absent: the unit before it in the list, as if the wave were one chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
}

/// A set of units to plan or apply in account waves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The repo URL.
    pub repo: String,
    /// The ref (for apply: an apply ref or a full SHA).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Plan or apply.
    pub mode: RolloutMode,
    /// The units, in the order change detection produced them.
    pub units: Vec<RolloutUnit>,
    /// The apply ref a pinned `ref` was taken from: apply rollouts are serialised, and recorded in the deployment
    /// ledger, per repo and apply ref (default: the policy's first apply ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_ref: Option<String>,
    /// Set by the control plane on each wave, never trusted from a caller: the commit the wave's account last
    /// deployed from this apply ref. The deploy task refuses to apply an older commit (`stale_commit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_commit: Option<String>,
    /// What the caller detected each account's units from: the account's ledger commit at the time (`none`: no
    /// entry). An apply rollout starts only while the ledger still says so (`ledger_moved` otherwise), so a newer
    /// deployment that landed meanwhile is never rolled back by units detected before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_bases: Option<std::collections::BTreeMap<String, String>>,
    /// The commit each account's units were detected from. For an account with nothing deployed yet it is
    /// recorded as the account's baseline, so a failed first deployment is detected from it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_from: Option<std::collections::BTreeMap<String, String>>,
    /// How many units of a wave may run at once (default and most: the policy's `max_parallel_units`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
}

/// A `ledger_bases` value for an account with no ledger entry.
pub const NO_LEDGER_ENTRY: &str = "none";

impl Rollout {
    /// The apply ref this rollout's ledger and lock are kept under.
    pub fn ledger_ref<'a>(&'a self, policy: &'a crate::Policy) -> &'a str {
        self.apply_ref
            .as_deref()
            .or_else(|| policy.document().apply_refs.first().map(String::as_str))
            .unwrap_or_default()
    }
}

/// A read of the deployment ledger of one repo (`ledger`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    /// The infrastructure-live repo URL.
    pub repo: String,
    /// The apply ref (default: the policy's first apply ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_ref: Option<String>,
}

/// The action-specific part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRequest {
    /// See [`Action::Plan`].
    Plan(UnitTarget),
    /// See [`Action::Validate`].
    Validate(UnitTarget),
    /// See [`Action::PlanDestroy`].
    PlanDestroy(DeletedUnitTarget),
    /// See [`Action::Apply`].
    Apply(UnitTarget),
    /// See [`Action::Destroy`].
    Destroy(DeletedUnitTarget),
    /// See [`Action::UpdateVariable`].
    UpdateVariable(VariableUpdate),
    /// See [`Action::BuildImage`].
    BuildImage(ImageBuild),
    /// See [`Action::BuildAmi`].
    BuildAmi(AmiBuild),
    /// See [`Action::Rollout`].
    Rollout(Rollout),
    /// See [`Action::Status`].
    Status(RunQuery),
    /// See [`Action::Logs`].
    Logs(RunQuery),
    /// See [`Action::Approve`].
    Approve(ApprovalAnswer),
    /// See [`Action::Reject`].
    Reject(ApprovalAnswer),
    /// See [`Action::Resume`].
    Resume(RunQuery),
    /// See [`Action::Ledger`].
    Ledger(LedgerQuery),
}

impl ActionRequest {
    /// Which action this is.
    pub fn action(&self) -> Action {
        match self {
            ActionRequest::Plan(_) => Action::Plan,
            ActionRequest::Validate(_) => Action::Validate,
            ActionRequest::PlanDestroy(_) => Action::PlanDestroy,
            ActionRequest::Apply(_) => Action::Apply,
            ActionRequest::Destroy(_) => Action::Destroy,
            ActionRequest::UpdateVariable(_) => Action::UpdateVariable,
            ActionRequest::BuildImage(_) => Action::BuildImage,
            ActionRequest::BuildAmi(_) => Action::BuildAmi,
            ActionRequest::Rollout(_) => Action::Rollout,
            ActionRequest::Status(_) => Action::Status,
            ActionRequest::Logs(_) => Action::Logs,
            ActionRequest::Approve(_) => Action::Approve,
            ActionRequest::Reject(_) => Action::Reject,
            ActionRequest::Resume(_) => Action::Resume,
            ActionRequest::Ledger(_) => Action::Ledger,
        }
    }

    /// The container that runs this request: the action's own, or for a rollout the one its mode needs.
    pub fn container(&self) -> Option<crate::Container> {
        match self {
            ActionRequest::Rollout(r) if r.mode == RolloutMode::Plan => Some(crate::Container::Planner),
            ActionRequest::Rollout(_) => Some(crate::Container::Applier),
            _ => self.action().containers().first().copied(),
        }
    }

    /// The run an action about an existing run names (status, logs, approve, reject, resume).
    pub fn run_id(&self) -> Option<&str> {
        match self {
            ActionRequest::Status(q) | ActionRequest::Logs(q) | ActionRequest::Resume(q) => Some(&q.run_id),
            ActionRequest::Approve(a) | ActionRequest::Reject(a) => Some(&a.run_id),
            _ => None,
        }
    }

    /// The repo the action works on (`""` for actions on an existing run, which name only the run).
    pub fn repo(&self) -> &str {
        match self {
            ActionRequest::Status(_) | ActionRequest::Logs(_) => "",
            ActionRequest::Approve(_) | ActionRequest::Reject(_) | ActionRequest::Resume(_) => "",
            ActionRequest::Plan(t) | ActionRequest::Validate(t) | ActionRequest::Apply(t) => &t.repo,
            ActionRequest::PlanDestroy(t) | ActionRequest::Destroy(t) => &t.repo,
            ActionRequest::UpdateVariable(u) => &u.repo,
            ActionRequest::BuildImage(b) => &b.repo,
            ActionRequest::BuildAmi(b) => &b.repo,
            ActionRequest::Rollout(r) => &r.repo,
            ActionRequest::Ledger(q) => &q.repo,
        }
    }

    /// The ref the action works at (`""` for actions on an existing run).
    pub fn git_ref(&self) -> &str {
        match self {
            ActionRequest::Status(_) | ActionRequest::Logs(_) => "",
            ActionRequest::Approve(_) | ActionRequest::Reject(_) | ActionRequest::Resume(_) => "",
            ActionRequest::Plan(t) | ActionRequest::Validate(t) | ActionRequest::Apply(t) => &t.git_ref,
            ActionRequest::PlanDestroy(t) | ActionRequest::Destroy(t) => &t.git_ref,
            ActionRequest::UpdateVariable(u) => &u.git_ref,
            ActionRequest::BuildImage(b) => &b.git_ref,
            ActionRequest::BuildAmi(b) => &b.git_ref,
            ActionRequest::Rollout(r) => &r.git_ref,
            ActionRequest::Ledger(q) => q.apply_ref.as_deref().unwrap_or_default(),
        }
    }

    /// The single unit path, for single-unit actions.
    pub fn unit_path(&self) -> Option<&str> {
        match self {
            ActionRequest::Plan(t) | ActionRequest::Validate(t) | ActionRequest::Apply(t) => Some(&t.path),
            ActionRequest::PlanDestroy(t) | ActionRequest::Destroy(t) => Some(&t.path),
            ActionRequest::UpdateVariable(u) => Some(&u.path),
            ActionRequest::BuildImage(_)
            | ActionRequest::BuildAmi(_)
            | ActionRequest::Rollout(_)
            | ActionRequest::Status(_)
            | ActionRequest::Logs(_)
            | ActionRequest::Approve(_)
            | ActionRequest::Reject(_)
            | ActionRequest::Resume(_)
            | ActionRequest::Ledger(_) => None,
        }
    }

    fn fields_json(&self) -> Result<Value, serde_json::Error> {
        match self {
            ActionRequest::Plan(t) | ActionRequest::Validate(t) | ActionRequest::Apply(t) => serde_json::to_value(t),
            ActionRequest::PlanDestroy(t) | ActionRequest::Destroy(t) => serde_json::to_value(t),
            ActionRequest::UpdateVariable(u) => serde_json::to_value(u),
            ActionRequest::BuildImage(b) => serde_json::to_value(b),
            ActionRequest::BuildAmi(b) => serde_json::to_value(b),
            ActionRequest::Rollout(r) => serde_json::to_value(r),
            ActionRequest::Status(q) | ActionRequest::Logs(q) | ActionRequest::Resume(q) => serde_json::to_value(q),
            ActionRequest::Approve(a) | ActionRequest::Reject(a) => serde_json::to_value(a),
            ActionRequest::Ledger(q) => serde_json::to_value(q),
        }
    }
}

/// A whole request: who asks, an optional idempotency key, and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who asked (CI's actor), for the audit trail.
    pub actor: String,
    /// An optional idempotency key.
    pub request_id: Option<String>,
    /// The action and its fields.
    pub body: ActionRequest,
}

/// Why a body could not be decoded into a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// `malformed_request` or `unknown_action`.
    pub reason: Reason,
    /// What was wrong, without echoing the input.
    pub message: String,
    /// The action, when it was recognised before decoding failed.
    pub action: Option<Action>,
}

impl Request {
    /// Decodes a request body: strict JSON, a known action, the exact fields of that action.
    pub fn decode(body: &[u8]) -> Result<Request, DecodeError> {
        let malformed =
            |message: String, action: Option<Action>| DecodeError { reason: Reason::MalformedRequest, message, action };
        let value = strict_json::parse_strict(body).map_err(|e| malformed(e.to_string(), None))?;
        let Value::Object(mut fields) = value else {
            return Err(malformed("the request must be a JSON object".into(), None));
        };
        let action = match fields.remove("action") {
            Some(Value::String(name)) => Action::from_wire(&name).ok_or_else(|| DecodeError {
                reason: Reason::UnknownAction,
                message: format!(
                    "unknown action {}; known actions: {}",
                    crate::decision::quote(&name),
                    Action::ALL.map(Action::as_str).join(", ")
                ),
                action: None,
            })?,
            Some(_) => return Err(malformed("field `action` must be a string".into(), None)),
            None => return Err(malformed("missing field `action`".into(), None)),
        };
        let actor = match fields.remove("actor") {
            Some(Value::String(actor)) => actor,
            Some(_) => return Err(malformed("field `actor` must be a string".into(), Some(action))),
            None => return Err(malformed("missing field `actor`".into(), Some(action))),
        };
        let request_id = match fields.remove("request_id") {
            Some(Value::String(id)) => Some(id),
            None | Some(Value::Null) => None,
            Some(_) => return Err(malformed("field `request_id` must be a string".into(), Some(action))),
        };
        let body = decode_action(action, fields).map_err(|e| malformed(format!("{action}: {e}"), Some(action)))?;
        Ok(Request { actor, request_id, body })
    }

    /// Encodes the request as the flat JSON object that [`Request::decode`] reads.
    pub fn to_json(&self) -> Value {
        let mut object = match self.body.fields_json() {
            Ok(Value::Object(map)) => map,
            // The field structs serialise to objects by construction; an error here is a programming bug.
            _ => Map::new(),
        };
        object.insert("action".into(), Value::String(self.body.action().as_str().into()));
        object.insert("actor".into(), Value::String(self.actor.clone()));
        if let Some(id) = &self.request_id {
            object.insert("request_id".into(), Value::String(id.clone()));
        }
        Value::Object(object)
    }
}

fn decode_action(action: Action, fields: Map<String, Value>) -> Result<ActionRequest, serde_json::Error> {
    let fields = Value::Object(fields);
    Ok(match action {
        Action::Plan => ActionRequest::Plan(serde_json::from_value(fields)?),
        Action::Validate => ActionRequest::Validate(serde_json::from_value(fields)?),
        Action::PlanDestroy => ActionRequest::PlanDestroy(serde_json::from_value(fields)?),
        Action::Apply => ActionRequest::Apply(serde_json::from_value(fields)?),
        Action::Destroy => ActionRequest::Destroy(serde_json::from_value(fields)?),
        Action::UpdateVariable => ActionRequest::UpdateVariable(serde_json::from_value(fields)?),
        Action::BuildImage => ActionRequest::BuildImage(serde_json::from_value(fields)?),
        Action::BuildAmi => ActionRequest::BuildAmi(serde_json::from_value(fields)?),
        Action::Rollout => ActionRequest::Rollout(serde_json::from_value(fields)?),
        Action::Status => ActionRequest::Status(run_id_only(action, fields)?),
        Action::Resume => ActionRequest::Resume(run_id_only(action, fields)?),
        Action::Logs => ActionRequest::Logs(serde_json::from_value(fields)?),
        Action::Approve => ActionRequest::Approve(serde_json::from_value(fields)?),
        Action::Reject => ActionRequest::Reject(serde_json::from_value(fields)?),
        Action::Ledger => ActionRequest::Ledger(serde_json::from_value(fields)?),
    })
}

/// A [`RunQuery`] that may carry only `run_id` (status, resume): the paging fields belong to `logs`.
fn run_id_only(action: Action, fields: Value) -> Result<RunQuery, serde_json::Error> {
    let query: RunQuery = serde_json::from_value(fields)?;
    for (field, present) in [("next_token", query.next_token.is_some()), ("account", query.account.is_some())] {
        if present {
            return Err(serde::de::Error::custom(format!("unknown field `{field}`: {action} takes only run_id")));
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let request = Request {
            actor: "octocat".into(),
            request_id: Some("run-1".into()),
            body: ActionRequest::Rollout(Rollout {
                repo: "https://github.com/acme/infrastructure-live.git".into(),
                git_ref: "main".into(),
                mode: RolloutMode::Apply,
                units: vec![
                    RolloutUnit {
                        path: "dev/vpc".into(),
                        change: ChangeKind::Modified,
                        source_ref: None,
                        depends_on: None,
                    },
                    RolloutUnit {
                        path: "dev/old".into(),
                        change: ChangeKind::Deleted,
                        source_ref: Some("abc".into()),
                        depends_on: None,
                    },
                ],
                apply_ref: Some("main".into()),
                deployed_commit: None,
                ledger_bases: None,
                detected_from: None,
                parallelism: None,
            }),
        };
        let bytes = serde_json::to_vec(&request.to_json()).expect("serialise");
        assert_eq!(Request::decode(&bytes), Ok(request));
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let cases: &[(&str, Reason, &str)] = &[
            (r#"[]"#, Reason::MalformedRequest, "JSON object"),
            (r#"{"actor":"a"}"#, Reason::MalformedRequest, "missing field `action`"),
            (r#"{"action":7}"#, Reason::MalformedRequest, "must be a string"),
            (r#"{"action":"Plan","actor":"a"}"#, Reason::UnknownAction, "unknown action"),
            (
                r#"{"action":"plan","repo":"r","ref":"main","path":"dev/x"}"#,
                Reason::MalformedRequest,
                "missing field `actor`",
            ),
            (
                r#"{"action":"plan","actor":"a","repo":"r","ref":"main"}"#,
                Reason::MalformedRequest,
                "missing field `path`",
            ),
            (
                r#"{"action":"plan","actor":"a","repo":"r","ref":"main","path":"p","x":1}"#,
                Reason::MalformedRequest,
                "unknown field `x`",
            ),
            (
                r#"{"action":"plan","actor":"a","repo":"r","ref":["main"],"path":"p"}"#,
                Reason::MalformedRequest,
                "invalid type",
            ),
            (
                r#"{"action":"plan","actor":"a","request_id":5,"repo":"r","ref":"main","path":"p"}"#,
                Reason::MalformedRequest,
                "request_id",
            ),
            (
                r#"{"action":"rollout","actor":"a","repo":"r","ref":"main","mode":"yolo","units":[]}"#,
                Reason::MalformedRequest,
                "unknown variant",
            ),
        ];
        for (body, reason, needle) in cases {
            let err = Request::decode(body.as_bytes()).expect_err(body);
            assert_eq!(err.reason, *reason, "{body}");
            assert!(err.message.contains(needle), "{body}: {:?} should contain {needle:?}", err.message);
        }
    }
}
