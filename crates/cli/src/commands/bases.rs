//! Where `ci` measures each account's changes from on a push to an apply ref: the account's ledger commit (what it
//! last deployed completely), so a cancelled run, a failed wave or a skipped push is covered by the next run, and
//! nothing an account already has is applied again. Without a ledger entry, the push's `before`; without that
//! either, every unit only when asked (`--all`).

use deploy_runner_changes::git::{GitRepo, EMPTY_TREE};
use deploy_runner_changes::{detect_changes, ChangeReport, DetectOptions, SelectedUnit};
use deploy_runner_rollout::LedgerView;
use serde::Serialize;
use std::collections::BTreeMap;

/// The push's own base, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushBase {
    /// A commit of the checkout.
    Usable(String),
    /// Why the push gives nothing to diff from.
    Missing(String),
}

/// Where one account's changes are measured from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountBase {
    /// The account.
    pub account: String,
    /// `ledger` (its last deployed commit), `baseline` (nothing deployed yet: where its first rollout started),
    /// `push` (the push's base), `all` (every unit), `deployed` (it already has the head), `ahead` (it has a
    /// newer commit than the head: this push is superseded there) or `unapplied` (it has a newer commit, but its
    /// ledger began after this push's base, assuming this push deployed: this push's changes are applied at the
    /// account's commit).
    pub source: &'static str,
    /// The commit diffed from (absent for `deployed` and `ahead`; git's empty tree for `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The ledger's commit for the account, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed: Option<String>,
}

/// Chooses each account's base. Fails, naming the accounts, when some account has nothing to diff from and `all`
/// was not given.
pub fn account_bases(
    repo: &GitRepo,
    head: &str,
    accounts: &[String],
    ledger: Option<&LedgerView>,
    push: &PushBase,
    all: bool,
) -> anyhow::Result<Vec<AccountBase>> {
    let mut bases = Vec::new();
    let mut stranded = Vec::new();
    for account in accounts {
        let deployed = ledger.and_then(|l| l.deployed(account)).map(str::to_owned);
        let base = |source, base: Option<String>| AccountBase {
            account: account.clone(),
            source,
            base,
            deployed: deployed.clone(),
        };
        if let Some(commit) = &deployed {
            let known = repo.resolve_commit(commit).is_ok();
            let at_or_after_head = commit == head || (known && repo.is_ancestor(head, commit)?);
            if at_or_after_head {
                if let Some(before) = assumed_by_origin(repo, head, ledger.and_then(|l| l.origin(account)), push)? {
                    bases.push(base("unapplied", Some(before)));
                    continue;
                }
            }
            if commit == head {
                bases.push(base("deployed", None));
                continue;
            }
            if known && repo.is_ancestor(commit, head)? {
                bases.push(base("ledger", Some(commit.clone())));
                continue;
            }
            if known && repo.is_ancestor(head, commit)? {
                bases.push(base("ahead", None));
                continue;
            }
            errln!(
                "deploy-runner: warning: {account} last deployed {commit}, which is {}; diffing {account} from the \
                 push's base instead",
                if known {
                    "not an ancestor of the head (the apply ref's history was rewritten?)"
                } else {
                    "not in this checkout (fetch the whole history: fetch-depth: 0)"
                }
            );
        }
        // Nothing deployed yet, but an earlier rollout started from here and did not finish: start from there again.
        if let Some(baseline) = ledger.and_then(|l| l.baseline(account)) {
            if baseline == EMPTY_TREE {
                bases.push(base("all", Some(EMPTY_TREE.to_owned())));
                continue;
            }
            if repo.resolve_commit(baseline).is_ok() && repo.is_ancestor(baseline, head)? {
                bases.push(base("baseline", Some(baseline.to_owned())));
                continue;
            }
        }
        match push {
            PushBase::Usable(commit) => bases.push(base("push", Some(commit.clone()))),
            PushBase::Missing(_) if all => bases.push(base("all", Some(EMPTY_TREE.to_owned()))),
            PushBase::Missing(_) => stranded.push(account.clone()),
        }
    }
    if let (false, PushBase::Missing(why)) = (stranded.is_empty(), push) {
        anyhow::bail!(
            "nothing to diff {} from: no deployment is recorded for {} and {why}. Deploy every unit of {} with \
             --all, or give --base",
            stranded.join(", "),
            if stranded.len() == 1 { "it" } else { "them" },
            if stranded.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(bases)
}

/// This push's base, when its own changes (base..`head`) lie before where the account's ledger began (`origin`, its
/// first rollout's base): that rollout assumed them deployed, but this push was to deploy them (a newer push's
/// first deployment ran before this one's, from this push's head). `None` otherwise.
fn assumed_by_origin(
    repo: &GitRepo,
    head: &str,
    origin: Option<&str>,
    push: &PushBase,
) -> anyhow::Result<Option<String>> {
    let (Some(origin), PushBase::Usable(before)) = (origin, push) else { return Ok(None) };
    // A ledger begun with --all (git's empty tree) assumed nothing.
    if origin == EMPTY_TREE || before == origin || before == head || repo.resolve_commit(origin).is_err() {
        return Ok(None);
    }
    let head_at_or_before_origin = head == origin || repo.is_ancestor(head, origin)?;
    Ok((head_at_or_before_origin && !repo.is_ancestor(origin, before)?).then(|| before.clone()))
}

/// Detects each account's units from its own base (one detection per distinct base) and merges them into one
/// report in deploy order. The report's `base` is the push's; each deleted unit's source is its account's base,
/// returned by account.
pub fn detect_per_account(
    repo: &GitRepo,
    head: &str,
    bases: &[AccountBase],
    push_base: &str,
    options: &DetectOptions,
) -> anyhow::Result<(ChangeReport, BTreeMap<String, String>)> {
    let mut by_base: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for b in bases {
        if let Some(base) = &b.base {
            by_base.entry(base.as_str()).or_default().push(b.account.as_str());
        }
    }
    let mut merged = ChangeReport {
        base: push_base.to_owned(),
        head: head.to_owned(),
        units: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    };
    let mut sources = BTreeMap::new();
    for (base, accounts) in by_base {
        let report = detect_changes(repo, base, head, options)?;
        let ours = |path: &str| accounts.iter().any(|a| path.split('/').next() == Some(*a));
        let units: Vec<SelectedUnit> =
            report.units.into_iter().filter(|u| accounts.contains(&u.account.as_str())).collect();
        for account in &accounts {
            sources.insert((*account).to_owned(), report.base.clone());
        }
        merged.units.extend(units);
        for skipped in report.skipped.into_iter().filter(|s| ours(&s.path)) {
            if !merged.skipped.contains(&skipped) {
                merged.skipped.push(skipped);
            }
        }
        for warning in report.warnings {
            if !merged.warnings.contains(&warning) {
                merged.warnings.push(warning);
            }
        }
    }
    // Accounts in deploy order (ties by name), each keeping detection's own order (dependencies first).
    merged.units.sort_by(|a, b| (a.deploy_order, &a.account).cmp(&(b.deploy_order, &b.account)));
    Ok((merged, sources))
}
