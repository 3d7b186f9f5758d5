//! Waves: a rollout's units grouped by account, in the policy's deploy order (server-side config; the caller's
//! order of accounts is ignored). Inside a wave, units keep the order change detection gave them (dependencies
//! first, deleted units last in reverse).

use deploy_runner_gate::{Policy, Rollout, RolloutUnit};
use serde::{Deserialize, Serialize};

/// One account's part of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    /// The account (the units' first path segment).
    pub account: String,
    /// Its deploy order in the policy.
    pub deploy_order: u64,
    /// The wave as a rollout request for the deploy task's wave mode.
    pub request: Rollout,
}

/// Why a rollout can't be split into waves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveError {
    /// A unit's account is not in the policy (the gate refuses these; this guards direct callers).
    #[error("unit {path} is in account {account:?}, which the policy does not know")]
    UnknownAccount {
        /// The unit.
        path: String,
        /// Its account.
        account: String,
    },
}

/// Splits `rollout` into waves, one per account, in deploy order (ties by account name).
pub fn plan_waves(policy: &Policy, rollout: &Rollout) -> Result<Vec<Wave>, WaveError> {
    let mut waves: Vec<Wave> = Vec::new();
    for unit in &rollout.units {
        let account = unit.path.split('/').next().unwrap_or_default();
        let Some(entry) = policy.account(account) else {
            return Err(WaveError::UnknownAccount { path: unit.path.clone(), account: account.to_owned() });
        };
        match waves.iter_mut().find(|w| w.account == account) {
            Some(wave) => wave.request.units.push(unit.clone()),
            None => waves.push(Wave {
                account: account.to_owned(),
                deploy_order: entry.deploy_order,
                request: Rollout { units: vec![unit.clone()], ..rollout.clone() },
            }),
        }
    }
    waves.sort_by(|a, b| (a.deploy_order, &a.account).cmp(&(b.deploy_order, &b.account)));
    Ok(waves)
}

/// The units of all waves, in execution order (for display).
pub fn units_in_order(waves: &[Wave]) -> impl Iterator<Item = &RolloutUnit> {
    waves.iter().flat_map(|w| w.request.units.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deploy_runner_gate::{ChangeKind, RolloutMode};

    use crate::test_policy as policy;

    fn unit(path: &str, change: ChangeKind) -> RolloutUnit {
        RolloutUnit { path: path.into(), change, source_ref: None, depends_on: None }
    }

    #[test]
    fn waves_follow_the_policy_not_the_caller() {
        let rollout = Rollout {
            repo: "r".into(),
            git_ref: "main".into(),
            mode: RolloutMode::Apply,
            units: vec![
                unit("prod/a", ChangeKind::Affected),
                unit("dev/net", ChangeKind::Modified),
                unit("stage/a", ChangeKind::Affected),
                unit("dev/app", ChangeKind::Affected),
                unit("shared/dns", ChangeKind::Affected),
            ],
            apply_ref: None,
            deployed_commit: None,
            ledger_bases: None,
            detected_from: None,
            parallelism: None,
        };
        let waves = plan_waves(&policy(), &rollout).expect("waves");
        let order: Vec<(&str, u64)> = waves.iter().map(|w| (w.account.as_str(), w.deploy_order)).collect();
        // dev and shared share deploy_order 1: ties by name.
        assert_eq!(order, [("dev", 1), ("shared", 1), ("stage", 2), ("prod", 3)]);
        let dev: Vec<&str> = waves[0].request.units.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(dev, ["dev/net", "dev/app"], "units keep change detection's order");
        assert_eq!(waves[0].request.git_ref, "main");
        assert_eq!(units_in_order(&waves).count(), 5);
        let bad = Rollout { units: vec![unit("qa/x", ChangeKind::Added)], ..rollout };
        assert!(matches!(plan_waves(&policy(), &bad), Err(WaveError::UnknownAccount { .. })));
    }
}
