//! A read-only snapshot of a repository's files: a git commit or a working directory.
//!
//! Evaluation never touches the filesystem or git directly; it asks a [`Snapshot`], which knows every path in the
//! tree and fetches file contents through a [`BlobSource`]. That keeps the evaluator pure and lets the same code
//! run on a commit (read from git objects) and on a checkout (the `units` command).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Files larger than this are never parsed or returned by `file()`; reads of them are still recorded.
pub const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;

/// The most symlinks followed while resolving one path, as in Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// The absolute path under which evaluation sees the repo root (`get_repo_root()`).
pub const VIRTUAL_ROOT: &str = "/repo";

/// What sits at a path in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes; `id` is the source's handle for its contents (a blob id, or empty).
    File {
        /// Size in bytes.
        size: u64,
        /// A handle the [`BlobSource`] understands.
        id: String,
    },
    /// A symbolic link and its target as written.
    Symlink(String),
}

/// Fetches file contents for a snapshot.
pub trait BlobSource: Send + Sync {
    /// The bytes of the file at `path` (repo-relative) with handle `id`.
    fn read(&self, path: &str, id: &str) -> std::io::Result<Vec<u8>>;

    /// Reads many files at once; sources that can batch (git) override this.
    fn prefetch(&self, _wanted: &[(&str, &str)]) {}
}

/// Why a path could not be resolved inside the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The path, or a symlink on the way, points outside the repo root.
    #[error("{0} points outside the repository")]
    Escapes(String),
    /// Symlinks nest too deeply or form a loop.
    #[error("{0}: too many levels of symbolic links (a loop?)")]
    SymlinkLoop(String),
}

/// Every path in one tree, and the means to read them.
pub struct Snapshot {
    entries: HashMap<String, EntryKind>,
    dirs: HashSet<String>,
    has_symlinks: bool,
    source: Box<dyn BlobSource>,
    /// Files (and symlinks) by parent folder, built on first use: most callers never list a folder.
    children: std::sync::OnceLock<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("entries", &self.entries.len()).finish()
    }
}

impl Snapshot {
    /// A snapshot of `entries` (repo-relative paths) whose contents come from `source`.
    pub fn new(entries: HashMap<String, EntryKind>, source: Box<dyn BlobSource>) -> Snapshot {
        let mut dirs = HashSet::new();
        dirs.insert(String::new());
        for path in entries.keys() {
            let mut p = path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if !dirs.insert(parent.to_owned()) {
                    break;
                }
                p = parent;
            }
        }
        let has_symlinks = entries.values().any(|e| matches!(e, EntryKind::Symlink(_)));
        Snapshot { entries, dirs, has_symlinks, source, children: std::sync::OnceLock::new() }
    }

    /// A snapshot with no files (the base of a range that only adds).
    pub fn empty() -> Snapshot {
        Snapshot::new(HashMap::new(), Box::new(MemorySource::default()))
    }

    /// Every file and symlink path, unsorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The entry at `path`, without following symlinks.
    pub fn entry(&self, path: &str) -> Option<&EntryKind> {
        self.entries.get(path)
    }

    /// The files and symlinks directly in folder `dir` (repo-relative paths, sorted); empty for no such folder.
    pub fn files_in(&self, dir: &str) -> &[String] {
        let children = self.children.get_or_init(|| {
            let mut by_dir: HashMap<String, Vec<String>> = HashMap::new();
            for path in self.entries.keys() {
                let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
                by_dir.entry(parent.to_owned()).or_default().push(path.clone());
            }
            by_dir.values_mut().for_each(|files| files.sort());
            by_dir
        });
        children.get(dir.trim_matches('/')).map_or(&[], Vec::as_slice)
    }

    /// True when `path` is a directory of the tree (the root is `""`).
    pub fn is_dir(&self, path: &str) -> bool {
        self.dirs.contains(path)
    }

    /// True when the tree holds any symlink (otherwise every path is its own real path).
    pub fn has_symlinks(&self) -> bool {
        self.has_symlinks
    }

    /// True when something (file, symlink or directory) exists at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.entries.contains_key(path) || self.dirs.contains(path)
    }

    /// Asks the source to load these files in one go.
    pub fn prefetch(&self, paths: &[&str]) {
        let wanted: Vec<(&str, &str)> = paths
            .iter()
            .filter_map(|p| match self.entries.get(*p) {
                Some(EntryKind::File { id, size }) if *size <= MAX_READ_BYTES => Some((*p, id.as_str())),
                _ => None,
            })
            .collect();
        self.source.prefetch(&wanted);
    }

    /// Follows symlinks in every component of `path` and returns the real path, never leaving the root.
    pub fn resolve(&self, path: &str) -> Result<String, ResolveError> {
        // The common case: a clean path in a tree without symlinks is its own real path.
        if !self.has_symlinks && split(path).all(|c| c != "." && c != "..") && !path.contains("//") {
            return Ok(path.trim_matches('/').to_owned());
        }
        let mut pending: Vec<String> = split(path).map(str::to_owned).collect();
        pending.reverse();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component.as_str() {
                "." | "" => continue,
                ".." => {
                    if resolved.pop().is_none() {
                        return Err(ResolveError::Escapes(path.to_owned()));
                    }
                    continue;
                }
                _ => {}
            }
            resolved.push(component);
            let current = resolved.join("/");
            if let Some(EntryKind::Symlink(target)) = self.entries.get(&current) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ResolveError::SymlinkLoop(path.to_owned()));
                }
                if target.starts_with('/') {
                    return Err(ResolveError::Escapes(path.to_owned()));
                }
                resolved.pop();
                for part in split(target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push(part.to_owned());
                }
            }
        }
        Ok(resolved.join("/"))
    }

    /// Reads a file (after resolving symlinks). `Ok(None)` when nothing readable is there.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ReadError> {
        let real = self.resolve(path).map_err(ReadError::Resolve)?;
        match self.entries.get(&real) {
            Some(EntryKind::File { size, .. }) if *size > MAX_READ_BYTES => {
                Err(ReadError::TooLarge { path: real, size: *size })
            }
            Some(EntryKind::File { id, .. }) => {
                self.source.read(&real, id).map(Some).map_err(|e| ReadError::Io { path: real, message: e.to_string() })
            }
            _ => Ok(None),
        }
    }
}

/// Why a file's contents could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Path resolution failed.
    #[error(transparent)]
    Resolve(ResolveError),
    /// The file is larger than [`MAX_READ_BYTES`].
    #[error("{path} is {size} bytes, over the {MAX_READ_BYTES}-byte limit for files read during detection")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The source failed.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// Lexically normalises an absolute path (`.`/`..`), returning the repo-relative path if it stays inside
/// [`VIRTUAL_ROOT`].
pub fn to_repo_relative(absolute: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in split(absolute) {
        match component {
            "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    let root = VIRTUAL_ROOT.trim_start_matches('/');
    match parts.split_first() {
        Some((first, rest)) if *first == root => Some(rest.join("/")),
        _ => None,
    }
}

/// The absolute (virtual) path of a repo-relative path.
pub fn to_absolute(relative: &str) -> String {
    if relative.is_empty() {
        VIRTUAL_ROOT.to_owned()
    } else {
        format!("{VIRTUAL_ROOT}/{relative}")
    }
}

/// Joins `path` onto the absolute directory `base` unless it is absolute already.
pub fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else if path.is_empty() {
        base.to_owned()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    }
}

/// The parent of a repo-relative path (`""` for top-level entries).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// A relative path from directory `from` to `to` (both repo-relative), as terragrunt prints it.
pub fn relative_path(from: &str, to: &str) -> String {
    let from: Vec<&str> = split(from).collect();
    let to: Vec<&str> = split(to).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// A source over an in-memory map, for tests and generated repos.
#[derive(Debug, Default)]
pub struct MemorySource(pub HashMap<String, Arc<[u8]>>);

impl BlobSource for MemorySource {
    fn read(&self, path: &str, _id: &str) -> std::io::Result<Vec<u8>> {
        self.0.get(path).map(|b| b.to_vec()).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// Builds a snapshot from `(path, contents)` pairs and `(path, symlink target)` pairs.
pub fn memory_snapshot(files: &[(&str, &str)], symlinks: &[(&str, &str)]) -> Snapshot {
    let mut entries = HashMap::new();
    let mut blobs = HashMap::new();
    for (path, text) in files {
        entries.insert((*path).to_owned(), EntryKind::File { size: text.len() as u64, id: String::new() });
        blobs.insert((*path).to_owned(), Arc::from(text.as_bytes()));
    }
    for (path, target) in symlinks {
        entries.insert((*path).to_owned(), EntryKind::Symlink((*target).to_owned()));
    }
    Snapshot::new(entries, Box::new(MemorySource(blobs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(to_repo_relative("/repo/a/./b/../c"), Some("a/c".into()));
        assert_eq!(to_repo_relative("/repo"), Some(String::new()));
        assert_eq!(to_repo_relative("/repo/../etc/passwd"), None);
        assert_eq!(to_repo_relative("/etc/passwd"), None);
        assert_eq!(to_repo_relative("/repository/x"), None);
        assert_eq!(relative_path("", "dev/vpc"), "dev/vpc");
        assert_eq!(relative_path("dev/vpc", ""), "../..");
        assert_eq!(relative_path("dev/a", "dev/b/c"), "../b/c");
        assert_eq!(relative_path("dev", "dev"), ".");
        assert_eq!(join("/repo/dev", "../x"), "/repo/dev/../x");
        assert_eq!(join("/repo/dev", "/abs"), "/abs");
    }

    #[test]
    fn symlinks_resolve_inside_and_refuse_escapes_and_loops() {
        let snap = memory_snapshot(
            &[("shared/common.hcl", "x = 1")],
            &[
                ("dev/common.hcl", "../shared/common.hcl"),
                ("dev/linkdir", "../shared"),
                ("dev/out", "../../etc/passwd"),
                ("dev/abs", "/etc/passwd"),
                ("loop/a", "b"),
                ("loop/b", "a"),
            ],
        );
        assert_eq!(snap.resolve("dev/common.hcl"), Ok("shared/common.hcl".into()));
        assert_eq!(snap.resolve("dev/linkdir/common.hcl"), Ok("shared/common.hcl".into()));
        assert_eq!(snap.read("dev/common.hcl").expect("read"), Some(b"x = 1".to_vec()));
        assert!(matches!(snap.resolve("dev/out"), Err(ResolveError::Escapes(_))));
        assert!(matches!(snap.resolve("dev/abs"), Err(ResolveError::Escapes(_))));
        assert!(matches!(snap.resolve("loop/a"), Err(ResolveError::SymlinkLoop(_))));
        assert!(snap.is_dir("dev") && snap.is_dir("") && !snap.is_dir("dev/common.hcl"));
    }
}
