//! The invoker's side of the deployment ledger and the apply lock: answer `ledger`, take a scope's lock before an
//! apply rollout starts (reclaiming it from a holder whose execution has ended), and give it back when a start
//! fails. The state machine records each succeeded wave and releases the lock when the rollout stops.

use crate::invoker::{aws_error, error, InvokeResponse, Invoker};
use crate::ports::{Executions, LedgerStore, Logs, Tasks};
use deploy_runner_gate::{ActionRequest, LedgerQuery, Request, Rollout};
use deploy_runner_rollout::ledger::{rfc3339, unix_seconds};
use deploy_runner_rollout::{ApplyLock, LedgerScope, LedgerView};
use std::time::SystemTime;

/// How long a lock may name an execution that does not exist yet (the invoker takes the lock, then starts the
/// execution): after this, the taker is presumed to have died in between and the lock is reclaimed.
pub const START_GRACE_SECS: u64 = 300;

impl<T: Tasks + Sync, L: Logs + Sync, E: Executions + Sync, D: LedgerStore + Sync> Invoker<T, L, E, D> {
    /// Whether this deployment has a ledger table.
    pub(crate) fn has_ledger(&self) -> bool {
        self.runtime.ledger_table.as_deref().is_some_and(|t| !t.is_empty())
    }

    /// Answers `ledger`: what each account last deployed from the repo's apply ref, and who holds its lock.
    pub(crate) async fn read_ledger(&self, query: &LedgerQuery) -> InvokeResponse {
        if !self.has_ledger() {
            return error(None, "not_supported", "this deployment has no ledger table (runtime.ledger_table)");
        }
        let apply_ref = query
            .apply_ref
            .as_deref()
            .or_else(|| self.gate.policy().document().apply_refs.first().map(String::as_str))
            .unwrap_or_default();
        let scope = LedgerScope::new(&query.repo, apply_ref);
        match self.ledger.read(&scope).await {
            Ok(view) => InvokeResponse {
                decision: "allow".into(),
                reason: "ok".into(),
                message: format!(
                    "{} account(s) deployed from {} {}{}",
                    view.accounts.len(),
                    scope.repo,
                    scope.apply_ref,
                    view.lock
                        .as_ref()
                        .map(|l| format!("; rollout {} holds the apply lock", l.run_id))
                        .unwrap_or_default()
                ),
                ledger: Some(view),
                ..InvokeResponse::default()
            },
            Err(e) => aws_error(None, &e),
        }
    }

    /// Takes `scope`'s apply lock for `run_id` (run by the execution `holder`). A lock of the same run is taken
    /// over (a retry, or a resume after an abort); a lock whose execution has ended is reclaimed; a live one refuses
    /// with `apply_in_progress`.
    pub(crate) async fn take_lock(
        &self,
        scope: &LedgerScope,
        run_id: &str,
        commit: &str,
        holder: &str,
    ) -> Result<(), InvokeResponse> {
        let lock = ApplyLock {
            run_id: run_id.to_owned(),
            commit: commit.to_owned(),
            holder: holder.to_owned(),
            acquired_at: rfc3339(SystemTime::now()),
        };
        let mut replacing: Option<ApplyLock> = None;
        // Each round either takes the lock or learns of a newer holder; a handful of rounds means a storm.
        for _ in 0..4 {
            let current = match self.ledger.acquire(scope, &lock, replacing.as_ref()).await {
                Ok(None) => return Ok(()),
                Ok(Some(current)) => current,
                Err(e) => return Err(aws_error(Some(run_id.to_owned()), &e)),
            };
            if current.run_id == run_id || self.holder_has_ended(&current).await? {
                replacing = Some(current);
                continue;
            }
            let view = self.ledger.read(scope).await.ok();
            return Err(InvokeResponse {
                ledger: view,
                ..error(
                    Some(run_id.to_owned()),
                    "apply_in_progress",
                    &format!(
                        "apply rollout {} (commit {}) holds the apply lock of {} {} since {}; one apply rollout runs \
                         at a time per repo and apply ref: ask again when it stops",
                        current.run_id, current.commit, scope.repo, scope.apply_ref, current.acquired_at
                    ),
                )
            });
        }
        Err(error(
            Some(run_id.to_owned()),
            "apply_in_progress",
            "the apply lock changed hands while it was being taken; ask again",
        ))
    }

    /// Whether the execution holding `lock` has stopped (or never started, past the grace period).
    async fn holder_has_ended(&self, lock: &ApplyLock) -> Result<bool, InvokeResponse> {
        match self.executions.describe(&lock.holder).await {
            Ok(Some(state)) => Ok(state.status != "RUNNING"),
            Ok(None) => {
                let now = unix_seconds(&rfc3339(SystemTime::now())).unwrap_or(0);
                let taken = unix_seconds(&lock.acquired_at).unwrap_or(0);
                Ok(now.saturating_sub(taken) > START_GRACE_SECS)
            }
            Err(e) => Err(aws_error(Some(lock.run_id.clone()), &e)),
        }
    }

    /// For each account of `rollout` with nothing in the ledger: records what its units were detected from, so a
    /// failed first deployment is detected from there again by the next run.
    pub(crate) async fn record_baselines(
        &self,
        scope: &LedgerScope,
        rollout: &Rollout,
        view: &LedgerView,
        run_id: &str,
    ) -> Result<(), crate::ports::PortError> {
        let at = rfc3339(SystemTime::now());
        for (account, base) in rollout.detected_from.iter().flatten() {
            if view.accounts.iter().all(|e| &e.account != account) {
                self.ledger.set_baseline(scope, account, base, run_id, &at).await?;
            }
        }
        Ok(())
    }

    /// A single-unit `apply` as the task must see it: with the commit the unit's account has deployed, read from
    /// the ledger of its apply ref (`apply_ref`, else `ref` when it names one, else the policy's first: a SHA's
    /// account is the same account whichever ref it came from). A caller's own `deployed_commit` is never passed
    /// on. Any other request is returned as it is.
    pub(crate) async fn with_ledger_facts(&self, request: &Request) -> Result<Request, InvokeResponse> {
        let ActionRequest::Apply(target) = &request.body else { return Ok(request.clone()) };
        let mut target = target.clone();
        target.deployed_commit = None;
        if self.has_ledger() {
            let policy = self.gate.policy();
            let scope = LedgerScope::new(&target.repo, target.ledger_ref(policy));
            let view = self.ledger.read(&scope).await.map_err(|e| aws_error(None, &e))?;
            let account = target.path.split('/').next().unwrap_or_default();
            target.deployed_commit = view.deployed(account).map(str::to_owned);
        }
        Ok(Request { body: ActionRequest::Apply(target), ..request.clone() })
    }

    /// Gives `run_id`'s lock back after its execution could not start; a failure is logged (the lock is reclaimable
    /// once the grace period passes, since its execution never started).
    pub(crate) async fn give_back_lock(&self, scope: &LedgerScope, run_id: &str) {
        if let Err(e) = self.ledger.release(scope, run_id).await {
            tracing::warn!(run_id, error = %e, "could not give the apply lock back; it is reclaimed after the grace period");
        }
    }
}
