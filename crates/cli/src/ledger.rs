//! The local backend's deployment ledger and apply lock, under the state directory:
//!
//! - `ledger/<scope>.json`: per repo and apply ref, what each account last deployed (written atomically, and only
//!   forward: an entry moves only from the commit its wave started from);
//! - `locks/<scope>.lock`: an exclusive file lock (`flock`) held by the process running an apply rollout, so it is
//!   released when that process stops, however it stops; `locks/<scope>.json` says who holds it.
//!
//! `<scope>` is the first 16 hex digits of the SHA-256 of the scope's key (repo URL and apply ref).

use crate::local::LocalError;
use deploy_runner_rollout::ledger::rfc3339;
use deploy_runner_rollout::{ApplyLock, LedgerEntry, LedgerScope, LedgerView, Wave, WaveLedger};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// How often a waiting rollout tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(250);

fn file_stem(scope: &LedgerScope) -> String {
    let digest = Sha256::digest(scope.key().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> LocalError {
    move |source| LocalError::Io { context, source }
}

/// The ledger file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LedgerFile {
    repo: String,
    apply_ref: String,
    accounts: Vec<LedgerEntry>,
}

/// The ledgers under a state directory.
#[derive(Debug, Clone)]
pub struct FileLedger {
    state_dir: PathBuf,
}

impl FileLedger {
    /// The ledgers under `state_dir`.
    pub fn new(state_dir: &Path) -> FileLedger {
        FileLedger { state_dir: state_dir.to_path_buf() }
    }

    fn path(&self, scope: &LedgerScope) -> PathBuf {
        self.state_dir.join("ledger").join(format!("{}.json", file_stem(scope)))
    }

    fn load(&self, scope: &LedgerScope) -> Result<LedgerFile, LocalError> {
        let path = self.path(scope);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io(format!("{} is not a ledger", path.display()))(std::io::Error::other(e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(LedgerFile { repo: scope.repo.clone(), apply_ref: scope.apply_ref.clone(), accounts: Vec::new() })
            }
            Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
        }
    }

    /// The scope's entries, and the apply lock's holder while a live process holds it.
    pub fn read(&self, scope: &LedgerScope) -> Result<LedgerView, LocalError> {
        let mut file = self.load(scope)?;
        file.accounts.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(LedgerView {
            repo: scope.repo.clone(),
            apply_ref: scope.apply_ref.clone(),
            accounts: file.accounts,
            lock: LocalApplyLock::holder(&self.state_dir, scope),
        })
    }

    /// Moves `entry.account` to `entry.commit`, provided it still holds `expected` (or already holds the commit).
    pub fn record(
        &self,
        scope: &LedgerScope,
        mut entry: LedgerEntry,
        expected: Option<&str>,
    ) -> Result<(), LocalError> {
        let mut file = self.load(scope)?;
        let existing = file.accounts.iter().find(|e| e.account == entry.account);
        let current = existing.and_then(|e| e.commit.clone());
        // Where the account's ledger began stays (as the DynamoDB update keeps it): see `LedgerEntry::baseline`.
        if entry.baseline.is_none() {
            entry.baseline = existing.and_then(|e| e.baseline.clone());
        }
        if current.is_some() && current.as_deref() != expected && current != entry.commit {
            return Err(LocalError::State(format!(
                "the ledger of {} moved to {} while this wave applied {} from {}",
                entry.account,
                current.as_deref().unwrap_or("nothing"),
                entry.commit.as_deref().unwrap_or("nothing"),
                expected.unwrap_or("nothing")
            )));
        }
        file.accounts.retain(|e| e.account != entry.account);
        file.accounts.push(entry);
        self.save(scope, &file)
    }

    /// Records where `account`'s units were first detected from, unless the account has an entry already.
    pub fn set_baseline(&self, scope: &LedgerScope, account: &str, base: &str, run_id: &str) -> Result<(), LocalError> {
        let mut file = self.load(scope)?;
        if file.accounts.iter().any(|e| e.account == account) {
            return Ok(());
        }
        file.accounts.push(LedgerEntry {
            account: account.to_owned(),
            commit: None,
            run_id: run_id.to_owned(),
            recorded_at: rfc3339(SystemTime::now()),
            baseline: Some(base.to_owned()),
        });
        self.save(scope, &file)
    }

    fn save(&self, scope: &LedgerScope, file: &LedgerFile) -> Result<(), LocalError> {
        let path = self.path(scope);
        let dir = path.parent().unwrap_or(&self.state_dir);
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(file).unwrap_or_default();
        std::fs::write(&temporary, text).map_err(io(format!("cannot write {}", temporary.display())))?;
        // Rename is atomic: a reader sees the old ledger or the new one.
        std::fs::rename(&temporary, &path).map_err(io(format!("cannot write {}", path.display())))
    }
}

/// Records a rollout's succeeded apply waves in the file ledger.
pub struct LocalWaveLedger {
    /// The ledgers.
    pub ledger: FileLedger,
    /// The rollout's scope.
    pub scope: LedgerScope,
}

impl WaveLedger for LocalWaveLedger {
    fn record(&mut self, run_id: &str, wave: &Wave) -> std::io::Result<()> {
        let entry = LedgerEntry {
            account: wave.account.clone(),
            commit: Some(wave.request.git_ref.clone()),
            run_id: run_id.to_owned(),
            recorded_at: rfc3339(SystemTime::now()),
            baseline: None,
        };
        self.ledger.record(&self.scope, entry, wave.request.deployed_commit.as_deref()).map_err(std::io::Error::other)
    }
}

/// A scope's apply lock, held by this process until dropped (or until it exits, however it exits).
#[derive(Debug)]
pub struct LocalApplyLock {
    _file: File,
    holder_path: PathBuf,
}

impl LocalApplyLock {
    fn paths(state_dir: &Path, scope: &LedgerScope) -> (PathBuf, PathBuf) {
        let dir = state_dir.join("locks");
        let stem = file_stem(scope);
        (dir.join(format!("{stem}.lock")), dir.join(format!("{stem}.json")))
    }

    /// Who holds `scope`'s lock, if a live process does.
    pub fn holder(state_dir: &Path, scope: &LedgerScope) -> Option<ApplyLock> {
        let (lock_path, holder_path) = LocalApplyLock::paths(state_dir, scope);
        let file = File::open(&lock_path).ok()?;
        // Free if we can take it ourselves (a holder that died released it with its last descriptor).
        if file.try_lock_shared().is_ok() {
            return None;
        }
        serde_json::from_slice(&std::fs::read(holder_path).ok()?).ok()
    }

    /// Takes `scope`'s lock for `lock`, waiting up to `max_wait` while another rollout holds it (`on_wait` is told
    /// who, once). Ctrl-C ends the wait.
    pub fn take(
        state_dir: &Path,
        scope: &LedgerScope,
        lock: &ApplyLock,
        max_wait: Duration,
        interrupt: &AtomicBool,
        mut on_wait: impl FnMut(Option<&ApplyLock>),
    ) -> Result<LocalApplyLock, LocalError> {
        let (lock_path, holder_path) = LocalApplyLock::paths(state_dir, scope);
        let dir = lock_path.parent().unwrap_or(state_dir);
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("cannot open {}", lock_path.display())))?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io(format!("cannot lock {}", lock_path.display()))(e))
                }
            }
            let holder = serde_json::from_slice::<ApplyLock>(&std::fs::read(&holder_path).unwrap_or_default()).ok();
            if !told {
                on_wait(holder.as_ref());
                told = true;
            }
            if interrupt.load(Ordering::SeqCst) {
                return Err(LocalError::State("interrupted while waiting for the apply lock".into()));
            }
            if started.elapsed() >= max_wait {
                let who = holder.map_or("another apply rollout".to_owned(), |h| {
                    format!("apply rollout {} (commit {}, {})", h.run_id, h.commit, h.holder)
                });
                return Err(LocalError::Denied {
                    reason: "apply_in_progress".into(),
                    message: format!(
                        "{who} holds the apply lock of {} {}; waited {}s (--max-wait)",
                        scope.repo,
                        scope.apply_ref,
                        max_wait.as_secs()
                    ),
                });
            }
            std::thread::sleep(LOCK_POLL);
        }
        let text = serde_json::to_vec_pretty(lock).unwrap_or_default();
        std::fs::write(&holder_path, text).map_err(io(format!("cannot write {}", holder_path.display())))?;
        Ok(LocalApplyLock { _file: file, holder_path })
    }
}

impl Drop for LocalApplyLock {
    fn drop(&mut self) {
        // The file lock itself goes with the descriptor; the holder note goes first so nobody reads a stale one.
        let _ = std::fs::remove_file(&self.holder_path);
    }
}
