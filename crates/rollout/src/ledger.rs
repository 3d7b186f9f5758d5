//! The deployment ledger and the apply lock, as data: per repo and apply ref, the last commit each account deployed
//! completely, and which apply rollout may run. The stores live behind ports (a file store in the CLI's local
//! backend, a DynamoDB table on AWS); this module holds what both agree on: keys, records and the rules.
//!
//! - An account's entry moves only when one of its apply waves succeeds, and only forward: the write is conditional
//!   on the entry still holding the commit the wave started from.
//! - One apply rollout per repo and apply ref holds the lock at a time; it is released when the rollout stops
//!   (succeeded, failed, rejected, interrupted), and a lock whose holder has ended is reclaimed.

use deploy_runner_gate::{Policy, Rollout};
use serde::{Deserialize, Serialize};

/// The repo and apply ref a ledger and a lock belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerScope {
    /// The repo, in its canonical form ([`deploy_runner_gate::syntax::canonical_repo`]: every spelling of one repo
    /// is one scope).
    pub repo: String,
    /// The apply ref (a branch name).
    pub apply_ref: String,
}

impl LedgerScope {
    /// The scope of `repo` at `apply_ref`, however the repo is spelled.
    pub fn new(repo: &str, apply_ref: &str) -> LedgerScope {
        LedgerScope { repo: deploy_runner_gate::syntax::canonical_repo(repo), apply_ref: apply_ref.to_owned() }
    }

    /// The scope an apply rollout is serialised and recorded under: its `apply_ref`, else the policy's first.
    pub fn of(policy: &Policy, rollout: &Rollout) -> LedgerScope {
        LedgerScope::new(&rollout.repo, rollout.ledger_ref(policy))
    }

    /// The scope's key in a store: `<repo> <apply_ref>` (neither a URL nor a ref name can hold a space).
    pub fn key(&self) -> String {
        format!("{} {}", self.repo, self.apply_ref)
    }
}

/// What one account last deployed from a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The account.
    pub account: String,
    /// The commit whose units all applied in the account (absent until one of its waves succeeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The rollout that applied it (or, before that, that recorded the baseline).
    pub run_id: String,
    /// When its wave succeeded, or the baseline was recorded (UTC, RFC 3339).
    pub recorded_at: String,
    /// The commit the account's first rollout detected its units from: everything before it was *assumed*
    /// deployed (by whatever deployed before the ledger). Until a wave succeeds, a failed first deployment is
    /// detected from there again; after that it stays, so a push that the assumption wrongly covered (an older push
    /// whose own first deployment had not run yet) can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// The apply rollout that may run in a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyLock {
    /// The rollout holding it.
    pub run_id: String,
    /// The commit it applies.
    pub commit: String,
    /// What runs it: a Step Functions execution ARN, or `pid <n>` for a local process.
    pub holder: String,
    /// When it was taken (UTC, RFC 3339).
    pub acquired_at: String,
}

/// A scope's ledger and lock, as `deploy-runner ledger` and the invoker's `ledger` action show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerView {
    /// The repo.
    pub repo: String,
    /// The apply ref.
    pub apply_ref: String,
    /// One entry per account that has deployed, by account name.
    pub accounts: Vec<LedgerEntry>,
    /// The apply rollout holding the lock, if any.
    pub lock: Option<ApplyLock>,
}

impl LedgerView {
    /// An empty view of `scope`.
    pub fn empty(scope: &LedgerScope) -> LedgerView {
        LedgerView { repo: scope.repo.clone(), apply_ref: scope.apply_ref.clone(), accounts: Vec::new(), lock: None }
    }

    /// The commit `account` last deployed, if any.
    pub fn deployed(&self, account: &str) -> Option<&str> {
        self.accounts.iter().find(|e| e.account == account).and_then(|e| e.commit.as_deref())
    }

    /// What `account`'s first rollout detected its units from, while nothing is deployed there yet.
    pub fn baseline(&self, account: &str) -> Option<&str> {
        let entry = self.accounts.iter().find(|e| e.account == account)?;
        if entry.commit.is_some() {
            return None;
        }
        entry.baseline.as_deref()
    }

    /// Where `account`'s ledger began (its first rollout's base), deployed since or not.
    pub fn origin(&self, account: &str) -> Option<&str> {
        self.accounts.iter().find(|e| e.account == account).and_then(|e| e.baseline.as_deref())
    }
}

/// Why an apply rollout whose units were detected from `bases` (account: ledger commit, or `none`) must not start
/// on `view`: an account has deployed something else since, by another run than `run_id` (a retry of this very
/// run finds its own entries). `None` when the ledger still says what the caller saw.
pub fn moved_since(
    bases: &std::collections::BTreeMap<String, String>,
    view: &LedgerView,
    run_id: &str,
) -> Option<String> {
    for (account, base) in bases {
        let entry = view.accounts.iter().find(|e| &e.account == account);
        let now = entry.and_then(|e| e.commit.as_deref()).unwrap_or(deploy_runner_gate::NO_LEDGER_ENTRY);
        if now != base && entry.is_none_or(|e| e.run_id != run_id) {
            return Some(format!(
                "{account} has deployed {now} (run {}) since this rollout's units were detected from {base}: they \
                 could roll it back or miss changes; detect them again (ci does, from the ledger)",
                entry.map_or("?", |e| e.run_id.as_str())
            ));
        }
    }
    None
}

/// Records a succeeded apply wave in the ledger (the sequencer calls it; plans never do).
pub trait WaveLedger {
    /// Moves the wave's account to the wave's commit, provided the entry still holds the commit the wave started
    /// from (`wave.request.deployed_commit`); an error stops the rollout.
    fn record(&mut self, run_id: &str, wave: &crate::Wave) -> std::io::Result<()>;
}

/// A ledger that records nothing: plan rollouts, and callers without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLedger;

impl WaveLedger for NoLedger {
    fn record(&mut self, _: &str, _: &crate::Wave) -> std::io::Result<()> {
        Ok(())
    }
}

/// `time` as UTC RFC 3339 to the second (`2026-11-29T22:41:07Z`), the ledger's timestamp format on both backends.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as [`rfc3339`] and Step Functions write them
/// (`2026-11-29T22:41:07Z`, `2026-11-29T22:41:07.123Z`); `None` for anything else.
pub fn unix_seconds(timestamp: &str) -> Option<u64> {
    let bytes = timestamp.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' || !timestamp.ends_with('Z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| timestamp.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days since 1970-01-01 from a civil date (Howard Hinnant's algorithm, the inverse of the one above).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_repo_spelled_another_way_is_the_same_scope() {
        // The policy may admit both spellings; a second scope would have its own lock and an empty ledger.
        let scope = LedgerScope::new("https://github.com/acme/live.git", "main");
        for spelling in
            ["git@github.com:acme/live.git", "https://github.com/Acme/Live", "https://github.com/acme/live/"]
        {
            assert_eq!(LedgerScope::new(spelling, "main").key(), scope.key(), "{spelling}");
        }
        assert_ne!(LedgerScope::new("https://github.com/acme/live", "release").key(), scope.key());
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_992_067)), "2026-11-29T22:41:07Z");
        for secs in [0, 951_782_400, 1_795_992_067, 4_102_444_800] {
            assert_eq!(unix_seconds(&rfc3339(UNIX_EPOCH + Duration::from_secs(secs))), Some(secs));
        }
        assert_eq!(unix_seconds("2026-11-29T22:41:07.123Z"), Some(1_795_992_067), "Step Functions' millis");
        assert_eq!(unix_seconds("yesterday"), None);
        assert_eq!(unix_seconds("2026-13-29T22:41:07Z"), None);
    }

    #[test]
    fn a_repo_is_keyed_by_its_canonical_form() {
        let https = LedgerScope::new("https://github.com/acme/live.git", "main");
        assert_eq!(LedgerScope::new("git@github.com:acme/live.git", "main"), https);
        assert_eq!(https.key(), "https://github.com/acme/live main");
    }
}
