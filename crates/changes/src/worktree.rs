//! A [`Snapshot`] of a directory on disk, for `deploy-runner units` on a checkout (or any folder).

use crate::snapshot::{BlobSource, EntryKind, Snapshot};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Folders never descended into: git's own data and terragrunt's caches.
const SKIPPED_DIRS: [&str; 2] = [".git", ".terragrunt-cache"];

/// Reads files from under a root directory.
struct DirSource {
    root: PathBuf,
}

impl BlobSource for DirSource {
    fn read(&self, path: &str, _id: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.root.join(path))
    }
}

/// Snapshots every file and symlink under `root` (symlinks are recorded, never followed while walking).
pub fn snapshot_dir(root: &Path) -> std::io::Result<Snapshot> {
    let mut entries = HashMap::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())?;
                entries.insert(relative, EntryKind::Symlink(target.to_string_lossy().into_owned()));
            } else if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    pending.push((entry.path(), relative));
                }
            } else if kind.is_file() {
                entries.insert(relative, EntryKind::File { size: entry.metadata()?.len(), id: String::new() });
            }
        }
    }
    Ok(Snapshot::new(entries, Box::new(DirSource { root: root.to_path_buf() })))
}
