//! The allow-list policy: which repos, apply refs, accounts and variables the gate admits.
//!
//! The policy is server-side configuration (rendered by Terraform in production). It is parsed strictly, and
//! every problem — a bad regex, an unknown field, a missing section — is a [`PolicyError`]. An invalid policy
//! must stop the service at start-up; it is never treated as "allow everything" or "allow nothing" silently.

use crate::syntax;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The single-unit actions a policy may let skip approvals (explicitly, with `approval_exempt_actions`).
const APPROVAL_EXEMPTIBLE: [crate::request::Action; 3] =
    [crate::request::Action::Apply, crate::request::Action::Destroy, crate::request::Action::UpdateVariable];

/// Upper bound on the compiled size of one policy regex, so a hostile or careless config can't exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The document is not valid JSON for the policy schema (unknown field, missing section, wrong type).
    #[error("policy is not valid: {0}")]
    Schema(#[from] serde_json::Error),
    /// A regex entry does not compile.
    #[error("policy {field}[{index}] is not a valid regex: {source}")]
    Regex {
        /// Which list the regex is in.
        field: String,
        /// Its position in that list.
        index: usize,
        /// What the regex engine said.
        source: regex::Error,
    },
    /// A value violates the policy's own rules.
    #[error("policy {field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The tool that the deploy task runs in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolBinary {
    /// `terragrunt` (the default).
    #[default]
    Terragrunt,
    /// Plain `terraform`, for units with `.tf` files and no terragrunt.
    Terraform,
    /// OpenTofu's `tofu`, run exactly like `terraform` (units with `.tf` or `.tofu` files).
    Tofu,
}

impl ToolBinary {
    /// The executable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolBinary::Terragrunt => "terragrunt",
            ToolBinary::Terraform => "terraform",
            ToolBinary::Tofu => "tofu",
        }
    }

    /// Whether the tool is Terraform itself or a drop-in for it (OpenTofu): it needs an `init`, and a unit is a
    /// folder of its configuration files, not a `terragrunt.hcl`.
    pub fn is_terraform_like(self) -> bool {
        matches!(self, ToolBinary::Terraform | ToolBinary::Tofu)
    }

    /// Whether a file named `name` makes its folder a unit for this tool.
    pub fn is_unit_config(self, name: &str) -> bool {
        if self.is_terraform_like() {
            [".tf", ".tf.json", ".tofu", ".tofu.json"].iter().any(|ext| name.ends_with(ext))
        } else {
            name == "terragrunt.hcl" || name == "terragrunt.hcl.json"
        }
    }
}

/// One AWS account the pipeline may deploy to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The 12-digit AWS account id.
    pub id: String,
    /// Rollout position: lower deploys first; ties are ordered by account name.
    pub deploy_order: u64,
}

/// The policy document as written in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Allowed repos, per kind.
    pub repos: RepoSections,
    /// Refs that may be applied (matched exactly).
    pub apply_refs: Vec<String>,
    /// Accounts by name; a unit path's first segment must be one of these.
    pub accounts: BTreeMap<String, Account>,
    /// Regexes of unit paths that the pipeline must never touch (its own runner).
    pub path_guards: Vec<String>,
    /// Variables that `update-variable` may change.
    pub update_variable_names: Vec<String>,
    /// The tool the deploy task runs.
    #[serde(default)]
    pub binary: ToolBinary,
    /// Accounts whose rollout wave waits for an approval (for example `prod`).
    #[serde(default)]
    pub approval_accounts: Vec<String>,
    /// Regexes of release tag names (e.g. `v[0-9]+\.[0-9]+\.[0-9]+`): a `build-image` at a tag ref matching one may
    /// use that tag name as the image tag. Without any, images are tagged by commit SHA only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_tag_patterns: Vec<String>,
    /// Single-unit actions (`apply`, `destroy`, `update-variable`) allowed in approval accounts without a rollout
    /// wave's approval. Empty (the default): in those accounts every change goes through an approved wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approval_exempt_actions: Vec<crate::request::Action>,
    /// How many units of a wave the deploy task runs at once, at most (as their dependencies allow); a rollout may
    /// ask for fewer. Not tied to the machine's cores: the tools mostly wait on the network.
    #[serde(default = "default_parallel_units")]
    pub max_parallel_units: u32,
}

/// [`PolicyDocument::max_parallel_units`] when the policy doesn't say.
pub const DEFAULT_PARALLEL_UNITS: u32 = 8;

/// The most units a wave may run at once, whatever the policy says (each is a terraform process and its providers).
pub const MAX_PARALLEL_UNITS: u32 = 64;

fn default_parallel_units() -> u32 {
    DEFAULT_PARALLEL_UNITS
}

/// The two kinds of repo the gate knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSections {
    /// Terragrunt `infrastructure-live` repos: plan, apply, destroy, update-variable, rollout.
    pub infrastructure_live: RepoListDocument,
    /// Application repos: build-image.
    pub app: RepoListDocument,
}

/// An allow-list of repos as written in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoListDocument {
    /// Repos allowed by exact, case-sensitive equality.
    pub exact: Vec<String>,
    /// Regexes that must match a whole repo URL (implicitly anchored).
    pub regex: Vec<String>,
}

/// A compiled repo allow-list.
#[derive(Debug, Clone)]
pub struct RepoAllowList {
    exact: Vec<String>,
    regex: Vec<Regex>,
}

impl RepoAllowList {
    /// True when `repo` equals an exact entry or, for URLs with a scheme, fully matches a regex entry; an SSH remote
    /// (`git@HOST:PATH`, `ssh://git@HOST/PATH`) is also allowed when its `https://HOST/PATH` is
    /// ([`syntax::ssh_to_https`]).
    pub fn allows(&self, repo: &str) -> bool {
        let matches = |candidate: &str| {
            self.exact.iter().any(|e| e == candidate)
                || (syntax::has_url_scheme(candidate) && self.regex.iter().any(|re| re.is_match(candidate)))
        };
        matches(repo) || syntax::ssh_to_https(repo).is_some_and(|https| matches(&https))
    }
}

/// A validated, compiled policy, ready for the gate.
#[derive(Debug, Clone)]
pub struct Policy {
    document: PolicyDocument,
    infrastructure_live: RepoAllowList,
    app: RepoAllowList,
    path_guards: Vec<Regex>,
    release_tags: Vec<Regex>,
}

impl Policy {
    /// Parses and validates a policy from JSON text.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let document: PolicyDocument = serde_json::from_str(text)?;
        Policy::from_document(document)
    }

    /// Validates and compiles a policy document.
    pub fn from_document(document: PolicyDocument) -> Result<Policy, PolicyError> {
        let infrastructure_live = compile_repo_list(&document.repos.infrastructure_live, "repos.infrastructure_live")?;
        let app = compile_repo_list(&document.repos.app, "repos.app")?;
        for (index, r) in document.apply_refs.iter().enumerate() {
            syntax::check_branch_ref(r).map_err(|why| invalid(format!("apply_refs[{index}]"), why))?;
        }
        if document.accounts.is_empty() {
            return Err(invalid("accounts".into(), "must name at least one account"));
        }
        for (name, account) in &document.accounts {
            syntax::check_path_segment(name)
                .map_err(|why| invalid(format!("accounts.{name:?}"), &format!("account name {why}")))?;
            if account.id.len() != 12 || !account.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!("accounts.{name}.id"), "must be a 12-digit AWS account id"));
            }
        }
        for (index, name) in document.approval_accounts.iter().enumerate() {
            if !document.accounts.contains_key(name) {
                return Err(invalid(format!("approval_accounts[{index}]"), "must name an account in `accounts`"));
            }
        }
        for (index, action) in document.approval_exempt_actions.iter().enumerate() {
            if !APPROVAL_EXEMPTIBLE.contains(action) {
                return Err(invalid(
                    format!("approval_exempt_actions[{index}]"),
                    "must be apply, destroy or update-variable (rollouts always wait for their approvals)",
                ));
            }
        }
        if !(1..=MAX_PARALLEL_UNITS).contains(&document.max_parallel_units) {
            return Err(invalid(
                "max_parallel_units".to_owned(),
                &format!("must be 1 to {MAX_PARALLEL_UNITS} (default {DEFAULT_PARALLEL_UNITS})"),
            ));
        }
        let path_guards = compile_regexes(&document.path_guards, "path_guards")?;
        let release_tags = compile_regexes(&document.release_tag_patterns, "release_tag_patterns")?;
        for (index, name) in document.update_variable_names.iter().enumerate() {
            if !is_hcl_identifier(name) {
                return Err(invalid(format!("update_variable_names[{index}]"), "must be an HCL identifier"));
            }
        }
        Ok(Policy { document, infrastructure_live, app, path_guards, release_tags })
    }

    /// The document this policy was built from.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// The `infrastructure-live` repo allow-list.
    pub fn infrastructure_live(&self) -> &RepoAllowList {
        &self.infrastructure_live
    }

    /// The app repo allow-list.
    pub fn app(&self) -> &RepoAllowList {
        &self.app
    }

    /// True when `name` is exactly one of the apply refs.
    pub fn is_apply_ref(&self, name: &str) -> bool {
        self.document.apply_refs.iter().any(|r| r == name)
    }

    /// The account named `name`, if the policy knows it.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.document.accounts.get(name)
    }

    /// Account names in rollout order: by `deploy_order`, then by name.
    pub fn accounts_in_deploy_order(&self) -> Vec<&str> {
        let mut names: Vec<(&u64, &str)> =
            self.document.accounts.iter().map(|(name, a)| (&a.deploy_order, name.as_str())).collect();
        names.sort();
        names.into_iter().map(|(_, name)| name).collect()
    }

    /// The index of the first guard regex that matches `path`, if any.
    pub fn guard_matching(&self, path: &str) -> Option<usize> {
        self.path_guards.iter().position(|re| re.is_match(path))
    }

    /// True when `name` is a release tag name the policy lets images be tagged with (when built at that tag).
    pub fn is_release_tag(&self, name: &str) -> bool {
        self.release_tags.iter().any(|re| re.is_match(name))
    }

    /// True when `update-variable` may change `name`.
    pub fn is_updatable_variable(&self, name: &str) -> bool {
        self.document.update_variable_names.iter().any(|v| v == name)
    }

    /// True when a single-unit `action` may run in an approval account without a wave's approval.
    pub fn is_approval_exempt(&self, action: crate::request::Action) -> bool {
        self.document.approval_exempt_actions.contains(&action)
    }

    /// True when `account`'s rollout wave waits for an approval.
    pub fn needs_approval(&self, account: &str) -> bool {
        self.document.approval_accounts.iter().any(|a| a == account)
    }

    /// The tool the deploy task runs.
    pub fn binary(&self) -> ToolBinary {
        self.document.binary
    }
}

fn invalid(field: String, message: &str) -> PolicyError {
    PolicyError::Invalid { field, message: message.to_owned() }
}

fn compile_repo_list(list: &RepoListDocument, field: &str) -> Result<RepoAllowList, PolicyError> {
    for (index, repo) in list.exact.iter().enumerate() {
        syntax::check_repo_shape(repo).map_err(|why| invalid(format!("{field}.exact[{index}]"), why))?;
    }
    Ok(RepoAllowList { exact: list.exact.clone(), regex: compile_regexes(&list.regex, &format!("{field}.regex"))? })
}

/// Compiles each pattern as a full, case-sensitive match: `\A(?:pattern)\z`.
fn compile_regexes(patterns: &[String], field: &str) -> Result<Vec<Regex>, PolicyError> {
    patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| {
            if pattern.is_empty() {
                return Err(invalid(
                    format!("{field}[{index}]"),
                    "is an empty regex, which would match nothing useful",
                ));
            }
            RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|source| PolicyError::Regex { field: field.to_owned(), index, source })
        })
        .collect()
}

fn is_hcl_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = include_str!("../../../examples/policy.json");

    #[test]
    fn example_policy_loads() {
        let policy = Policy::from_json(EXAMPLE).expect("example policy is valid");
        assert!(policy.is_apply_ref("main"));
        assert!(!policy.is_apply_ref("MAIN"));
        assert_eq!(policy.binary(), ToolBinary::Terragrunt);
    }

    #[test]
    fn deploy_order_ties_break_by_name() {
        let text = EXAMPLE.replace(r#""deploy_order": 3"#, r#""deploy_order": 1"#);
        let policy = Policy::from_json(&text).expect("valid");
        let order = policy.accounts_in_deploy_order();
        let dev = order.iter().position(|a| *a == "dev").expect("dev");
        let prod = order.iter().position(|a| *a == "prod").expect("prod");
        assert!(dev < prod, "{order:?}");
    }

    #[test]
    fn invalid_policies_are_refused_with_a_clear_message() {
        let mut base: serde_json::Value = serde_json::from_str(EXAMPLE).expect("json");
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutation, &str)> = vec![
            ("bad regex", Box::new(|v| v["path_guards"][0] = "(".into()), "path_guards[0] is not a valid regex"),
            ("bad repo regex", Box::new(|v| v["repos"]["app"]["regex"][0] = "[".into()), "repos.app.regex[0]"),
            ("unknown field", Box::new(|v| v["allow_all"] = true.into()), "unknown field `allow_all`"),
            (
                "missing section",
                Box::new(|v| {
                    v.as_object_mut().map(|o| o.remove("apply_refs"));
                }),
                "missing field `apply_refs`",
            ),
            ("negative order", Box::new(|v| v["accounts"]["dev"]["deploy_order"] = (-1).into()), "invalid value"),
            ("short account id", Box::new(|v| v["accounts"]["dev"]["id"] = "123".into()), "12-digit"),
            ("bad apply ref", Box::new(|v| v["apply_refs"][0] = "ma in".into()), "apply_refs[0]"),
            (
                "bad account name",
                Box::new(|v| v["accounts"]["../x"] = serde_json::json!({"id": "111111111111", "deploy_order": 1})),
                "account name",
            ),
            ("no accounts", Box::new(|v| v["accounts"] = serde_json::json!({})), "at least one account"),
            (
                "bad exact repo",
                Box::new(|v| v["repos"]["app"]["exact"] = serde_json::json!(["https://u:p@x/y"])),
                "user info",
            ),
            ("bad variable", Box::new(|v| v["update_variable_names"][0] = "a b".into()), "HCL identifier"),
            ("bad binary", Box::new(|v| v["binary"] = "bash".into()), "unknown variant"),
            ("no parallelism", Box::new(|v| v["max_parallel_units"] = 0.into()), "max_parallel_units: must be 1 to 64"),
            ("too much parallelism", Box::new(|v| v["max_parallel_units"] = 65.into()), "max_parallel_units"),
            ("empty regex", Box::new(|v| v["path_guards"][0] = "".into()), "empty regex"),
            (
                "a rollout exempt from approvals",
                Box::new(|v| v["approval_exempt_actions"] = serde_json::json!(["rollout"])),
                "approval_exempt_actions[0]: must be apply, destroy or update-variable",
            ),
            (
                "approval of an unknown account",
                Box::new(|v| v["approval_accounts"] = serde_json::json!(["qa"])),
                "approval_accounts[0]: must name an account",
            ),
        ];
        for (name, mutate, needle) in cases.iter() {
            let mut doc = base.clone();
            mutate(&mut doc);
            let err = Policy::from_json(&doc.to_string()).expect_err(name).to_string();
            assert!(err.contains(needle), "{name}: {err:?} should contain {needle:?}");
        }
        base["binary"] = "terraform".into();
        assert_eq!(Policy::from_json(&base.to_string()).expect("valid").binary(), ToolBinary::Terraform);
        base["binary"] = "tofu".into();
        assert_eq!(Policy::from_json(&base.to_string()).expect("valid").binary(), ToolBinary::Tofu);
    }

    #[test]
    fn regexes_are_full_matches_and_case_sensitive() {
        let policy = Policy::from_json(EXAMPLE).expect("valid");
        assert!(policy.app().allows("https://github.com/acme/svc-orders.git"));
        for r in [
            "https://github.com/acme/svc-orders.git.evil.com",
            "https://github.com/acme/svc-orders.gitx",
            "xhttps://github.com/acme/svc-orders.git",
            "https://GITHUB.com/acme/svc-orders.git",
            "https://github.com/acme/svc-Orders.git",
        ] {
            assert!(!policy.app().allows(r), "{r}");
        }
    }

    #[test]
    fn a_unit_is_what_its_tool_reads() {
        for tool in [ToolBinary::Terraform, ToolBinary::Tofu] {
            for name in ["main.tf", "main.tf.json", "main.tofu", "main.tofu.json"] {
                assert!(tool.is_unit_config(name), "{tool:?} {name}");
            }
            assert!(!tool.is_unit_config("terragrunt.hcl"), "{tool:?}");
            assert!(tool.is_terraform_like());
        }
        assert!(ToolBinary::Terragrunt.is_unit_config("terragrunt.hcl"));
        assert!(ToolBinary::Terragrunt.is_unit_config("terragrunt.hcl.json"));
        assert!(!ToolBinary::Terragrunt.is_unit_config("main.tf"));
        assert!(!ToolBinary::Terragrunt.is_terraform_like());
        assert_eq!(ToolBinary::Tofu.as_str(), "tofu");
    }
}
