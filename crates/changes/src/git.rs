//! Git access for change detection: a handful of batched plumbing calls, never one process per file.
//!
//! Only plumbing commands run (`rev-parse`, `diff --name-status`, `ls-tree`, `cat-file --batch`), with external
//! diff drivers and textconv off, so nothing configured by the repository is ever executed.

use crate::snapshot::{BlobSource, EntryKind, Snapshot};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Files whose contents detection may need; prefetched in one batch.
const PREFETCH_EXTENSIONS: [&str; 6] = [".hcl", ".json", ".tfvars", ".yaml", ".yml", ".hcl.json"];
/// Prefetch only files this small; bigger ones are read on demand.
const PREFETCH_MAX_BYTES: u64 = 256 * 1024;

/// What went wrong talking to git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The directory is not inside a git work tree.
    #[error("{0} is not a git repository")]
    NotARepo(PathBuf),
    /// A revision does not resolve to a commit.
    #[error("unknown revision {rev:?}{hint}")]
    UnknownRevision {
        /// The revision asked for.
        rev: String,
        /// Extra advice (shallow clones).
        hint: String,
    },
    /// git itself failed.
    #[error("git {args}: {message}")]
    Failed {
        /// The arguments.
        args: String,
        /// git's stderr.
        message: String,
    },
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Git's empty tree: as a base, every file at head is added (`deploy-runner ci --all`).
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// How a file changed between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Present only at head.
    Added,
    /// Present only at base.
    Deleted,
    /// Present at both, different.
    Modified,
}

/// A changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Repo-relative path.
    pub path: String,
    /// How it changed.
    pub status: FileStatus,
}

/// A git repository on disk.
#[derive(Debug, Clone)]
pub struct GitRepo {
    dir: PathBuf,
}

impl GitRepo {
    /// Opens the repository whose top level is at or above `dir`; the repo root is the top level.
    pub fn open(dir: &Path) -> Result<GitRepo, GitError> {
        let out = git_in(dir, &["rev-parse", "--show-toplevel"]).map_err(|_| GitError::NotARepo(dir.to_path_buf()))?;
        let top = String::from_utf8_lossy(&out).trim().to_owned();
        if top.is_empty() {
            return Err(GitError::NotARepo(dir.to_path_buf()));
        }
        Ok(GitRepo { dir: PathBuf::from(top) })
    }

    /// The top-level directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        git_in(&self.dir, args)
    }

    /// Resolves a revision (`HEAD~1`, a branch, a SHA) to a full commit id.
    pub fn resolve_commit(&self, rev: &str) -> Result<String, GitError> {
        if rev == EMPTY_TREE {
            return Ok(EMPTY_TREE.to_owned());
        }
        let spec = format!("{rev}^{{commit}}");
        match self.git(&["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]) {
            Ok(out) => Ok(String::from_utf8_lossy(&out).trim().to_owned()),
            Err(_) => {
                let shallow = self
                    .git(&["rev-parse", "--is-shallow-repository"])
                    .is_ok_and(|o| String::from_utf8_lossy(&o).trim() == "true");
                let hint = if shallow {
                    " (this is a shallow clone: fetch more history, e.g. actions/checkout with fetch-depth: 0)"
                        .to_owned()
                } else {
                    String::new()
                };
                Err(GitError::UnknownRevision { rev: rev.to_owned(), hint })
            }
        }
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        let (ancestor, descendant) = (self.resolve_commit(ancestor)?, self.resolve_commit(descendant)?);
        let status = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["merge-base", "--is-ancestor", &ancestor, &descendant])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status.success())
    }

    /// The bytes of `path` at `commit`, or `None` when it has no such file.
    pub fn file_at(&self, commit: &str, path: &str) -> Option<Vec<u8>> {
        let commit = self.resolve_commit(commit).ok()?;
        self.git(&["cat-file", "blob", "--end-of-options", &format!("{commit}:{path}")]).ok()
    }

    /// The merge-base of two commits.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        let out = self.git(&["merge-base", "--end-of-options", a, b])?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Files that differ between two commits (renames are a delete plus an add).
    pub fn changed_files(&self, base: &str, head: &str) -> Result<Vec<ChangedFile>, GitError> {
        let out = self.git(&[
            "diff",
            "--name-status",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            base,
            head,
            "--",
        ])?;
        let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
        let mut files = Vec::new();
        while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
            let status = match status.first() {
                Some(b'A') => FileStatus::Added,
                Some(b'D') => FileStatus::Deleted,
                _ => FileStatus::Modified,
            };
            files.push(ChangedFile { path: String::from_utf8_lossy(path).into_owned(), status });
        }
        Ok(files)
    }

    /// Whether `commit` holds any terragrunt stack file (a cheap listing, no contents).
    pub fn tree_has_stacks(&self, commit: &str) -> Result<bool, GitError> {
        let out = self.git(&["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit])?;
        Ok(out.split(|b| *b == 0).any(|p| {
            p.ends_with(crate::stacks::STACK_FILE.as_bytes())
                && (p.len() == crate::stacks::STACK_FILE.len()
                    || p[p.len() - crate::stacks::STACK_FILE.len() - 1] == b'/')
        }))
    }

    /// A snapshot of every file at `commit`. With `prefetch`, small config-like files are loaded in one batch up
    /// front (right when most units will be evaluated); without, contents are fetched as they are read.
    pub fn snapshot(&self, commit: &str, prefetch_configs: bool) -> Result<Snapshot, GitError> {
        let out = self.git(&["ls-tree", "-r", "-z", "-l", "--full-tree", commit])?;
        let mut entries = HashMap::new();
        let mut symlinks = Vec::new();
        let mut prefetch = Vec::new();
        for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            // "<mode> SP <type> SP <object> SP+ <size> TAB <path>"
            let Some(tab) = record.iter().position(|b| *b == b'\t') else {
                continue;
            };
            let meta = String::from_utf8_lossy(&record[..tab]);
            let path = String::from_utf8_lossy(&record[tab + 1..]).into_owned();
            let mut parts = meta.split_whitespace();
            let (Some(mode), Some(kind), Some(id), size) = (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if kind != "blob" {
                continue; // submodules (commits) hold no files of this repo
            }
            let size = size.and_then(|s| s.parse().ok()).unwrap_or(0);
            if mode == "120000" {
                symlinks.push((path, id.to_owned()));
            } else {
                if prefetch_configs
                    && size <= PREFETCH_MAX_BYTES
                    && PREFETCH_EXTENSIONS.iter().any(|e| path.ends_with(e))
                {
                    prefetch.push(id.to_owned());
                }
                entries.insert(path, EntryKind::File { size, id: id.to_owned() });
            }
        }
        let source = GitSource { dir: self.dir.clone(), blobs: Mutex::new(HashMap::new()) };
        let link_ids: Vec<String> = symlinks.iter().map(|(_, id)| id.clone()).collect();
        prefetch.extend(link_ids);
        source.fetch(&prefetch)?;
        for (path, id) in symlinks {
            let target = source.cached(&id).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            entries.insert(path, EntryKind::Symlink(target));
        }
        Ok(Snapshot::new(entries, Box::new(source)))
    }
}

fn git_in(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// Blob contents by object id.
type Blobs = HashMap<String, Arc<[u8]>>;

/// Blob contents from `git cat-file --batch`, cached by object id.
struct GitSource {
    dir: PathBuf,
    blobs: Mutex<Blobs>,
}

impl GitSource {
    fn cached(&self, id: &str) -> Option<Arc<[u8]>> {
        self.blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    /// Loads many blobs through `git cat-file --batch`: one process per core when there are many.
    fn fetch(&self, ids: &[String]) -> Result<(), GitError> {
        let missing: Vec<&String> = ids.iter().filter(|id| self.cached(id).is_none()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = missing.len().div_ceil(if missing.len() >= 2_000 { cores } else { 1 });
        let loaded: Vec<Result<Blobs, GitError>> = std::thread::scope(|scope| {
            let workers: Vec<_> =
                missing.chunks(chunk).map(|ids| scope.spawn(move || cat_file_batch(&self.dir, ids))).collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(std::io::Error::other("panicked").into())))
                .collect()
        });
        let mut blobs = self.blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for part in loaded {
            blobs.extend(part?);
        }
        Ok(())
    }
}

/// Reads the given blobs through one `git cat-file --batch` process.
fn cat_file_batch(dir: &Path, ids: &[&String]) -> Result<Blobs, GitError> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin"))?;
    let request: String = ids.iter().map(|id| format!("{id}\n")).collect();
    // Write from another thread: git answers while we are still asking, and both pipes would fill up.
    let writer = std::thread::spawn(move || stdin.write_all(request.as_bytes()));
    let mut reader =
        BufReader::with_capacity(1 << 16, child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?);
    let mut loaded = HashMap::with_capacity(ids.len());
    let mut header = String::new();
    for _ in 0..ids.len() {
        header.clear();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let mut parts = header.split_whitespace();
        let (Some(id), Some(kind), Some(size)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if kind == "missing" {
            continue;
        }
        let size: usize = size.parse().map_err(|_| std::io::Error::other("bad cat-file header"))?;
        let mut body = vec![0; size + 1]; // contents plus the trailing newline
        reader.read_exact(&mut body)?;
        body.pop();
        loaded.insert(id.to_owned(), Arc::from(body));
    }
    let _ = writer.join();
    let _ = child.wait();
    Ok(loaded)
}

impl BlobSource for GitSource {
    fn read(&self, _path: &str, id: &str) -> std::io::Result<Vec<u8>> {
        if let Some(hit) = self.cached(id) {
            return Ok(hit.to_vec());
        }
        self.fetch(&[id.to_owned()]).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.cached(id).map(|b| b.to_vec()).ok_or_else(|| std::io::Error::other(format!("blob {id} is missing")))
    }

    fn prefetch(&self, wanted: &[(&str, &str)]) {
        let ids: Vec<String> = wanted.iter().filter(|(_, id)| !id.is_empty()).map(|(_, id)| (*id).to_owned()).collect();
        let _ = self.fetch(&ids);
    }
}
