//! Units: which directories are units, which unit owns a file, and `deploy-runner units` queries.

use crate::eval::Evaluator;
use crate::reads::{compile_glob, is_under, ReadMatch, Reads};
use crate::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Config file names that make a directory a unit, in order of preference.
pub const UNIT_CONFIG_NAMES: [&str; 2] = ["terragrunt.hcl", "terragrunt.hcl.json"];

/// Folder names that never hold units, at any depth.
const NON_UNIT_FOLDERS: [&str; 3] = ["_envcommon", "modules", "_ci"];

/// If `path` is a unit config file, the unit's directory.
pub fn unit_of_config(path: &str) -> Option<&str> {
    let (dir, name) = path.rsplit_once('/')?;
    if !UNIT_CONFIG_NAMES.contains(&name) || !is_unit_dir(dir) {
        return None;
    }
    Some(dir)
}

/// True when a directory may be a unit: not the root, not under `_envcommon/`, `modules/`, `_ci/` or a dot-folder.
pub fn is_unit_dir(dir: &str) -> bool {
    !dir.is_empty() && dir.split('/').all(|segment| !segment.starts_with('.') && !NON_UNIT_FOLDERS.contains(&segment))
}

/// Every unit in the snapshot: unit directory -> its config file.
pub fn discover_units(snapshot: &Snapshot) -> BTreeMap<String, String> {
    let mut units: BTreeMap<String, String> = BTreeMap::new();
    for path in snapshot.paths() {
        if let Some(dir) = unit_of_config(path) {
            let preferred = units.get(dir).is_some_and(|existing| existing.ends_with("terragrunt.hcl"));
            if !preferred {
                units.insert(dir.to_owned(), path.to_owned());
            }
        }
    }
    units
}

/// The unit that owns `file`: its nearest ancestor directory that is a unit (nested units are not crossed).
pub fn owning_unit<'u>(units: &'u BTreeSet<String>, file: &str) -> Option<&'u String> {
    let mut dir = file;
    while let Some((parent, _)) = dir.rsplit_once('/') {
        if let Some(unit) = units.get(parent) {
            return Some(unit);
        }
        dir = parent;
    }
    None
}

/// Files that pin a tool's version for every unit in their folder and below (tfenv, tgenv, tofuenv, asdf/mise).
pub const TOOL_VERSION_FILES: [&str; 4] =
    [".terraform-version", ".terragrunt-version", ".opentofu-version", ".tool-versions"];

/// If `path` is a tool version pin, the folder whose units it applies to (`""` for the root).
pub fn tool_version_scope(path: &str) -> Option<&str> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    TOOL_VERSION_FILES.contains(&name).then_some(dir)
}

/// Local module calls, followed once per starting folder and shared by every unit that starts there.
struct ModuleTrees<'s> {
    snapshot: &'s Snapshot,
    trees: Mutex<BTreeMap<String, Arc<crate::modules::ModuleTree>>>,
    folders: Mutex<BTreeMap<String, Arc<Vec<String>>>>,
}

impl ModuleTrees<'_> {
    fn tree(&self, start: &str) -> Arc<crate::modules::ModuleTree> {
        if let Some(hit) = lock(&self.trees).get(start) {
            return hit.clone();
        }
        let tree = Arc::new(crate::modules::local_module_tree(self.snapshot, [start]));
        lock(&self.trees).insert(start.to_owned(), tree.clone());
        tree
    }

    /// Every folder at or under `root` that holds files: terragrunt copies the whole source tree and runs in one
    /// of them, so each one's module calls count.
    fn folders_under(&self, root: &str) -> Arc<Vec<String>> {
        if let Some(hit) = lock(&self.folders).get(root) {
            return hit.clone();
        }
        let prefix = format!("{root}/");
        let mut folders: BTreeSet<String> = self
            .snapshot
            .paths()
            .filter(|p| root.is_empty() || p.starts_with(&prefix))
            .filter_map(|p| p.rsplit_once('/').map(|(parent, _)| parent.to_owned()))
            .collect();
        folders.insert(root.to_owned());
        let folders = Arc::new(folders.into_iter().collect::<Vec<_>>());
        lock(&self.folders).insert(root.to_owned(), folders.clone());
        folders
    }

    /// Adds the folders the unit's (and its local source's) module calls reach to its reads.
    fn add_to(&self, unit: &str, reads: &mut Reads) {
        let mut trees = Vec::new();
        // The unit's own folder is its alone: followed uncached, and only when it holds Terraform files (most
        // terragrunt units hold none, and 10,000 one-off cache entries cost more than they save).
        if self.snapshot.files_in(unit).iter().any(|f| crate::modules::is_terraform_file(f)) {
            trees.push(Arc::new(crate::modules::local_module_tree(self.snapshot, [unit])));
        }
        for root in reads.all_source_dirs() {
            trees.extend(self.folders_under(&root).iter().map(|start| self.tree(start)));
        }
        for tree in trees {
            reads.module_dirs.extend(tree.dirs.iter().cloned());
            reads.warnings.extend(tree.escapes.iter().map(|e| format!("{unit}: {e} leaves the repository; not read")));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Evaluates the given units in parallel on every core and returns their reads.
pub fn evaluate_units(evaluator: &Evaluator, units: &BTreeMap<String, String>) -> BTreeMap<String, Reads> {
    let jobs: Vec<(&String, &String)> = units.iter().collect();
    let prefetch: Vec<&str> = jobs.iter().map(|(_, config)| config.as_str()).collect();
    evaluator.snapshot().prefetch(&prefetch);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len().div_ceil(32)).max(1);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let modules = ModuleTrees { snapshot: evaluator.snapshot(), trees: Mutex::default(), folders: Mutex::default() };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((dir, config)) = jobs.get(i) else {
                        break;
                    };
                    let mut reads = evaluator.evaluate_unit(dir, config);
                    modules.add_to(dir, &mut reads);
                    local.push(((*dir).clone(), reads));
                }
                results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(local);
            });
        }
    });
    results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).into_iter().collect()
}

/// Evaluates units with a fresh evaluator over `snapshot`, freeing its caches (parsed files of every unit) on a
/// background thread: tearing them down would otherwise add tens of milliseconds to a CLI run.
pub fn evaluate_snapshot_units(snapshot: Arc<Snapshot>, units: &BTreeMap<String, String>) -> BTreeMap<String, Reads> {
    let evaluator = Evaluator::new(snapshot);
    let reads = evaluate_units(&evaluator, units);
    std::thread::spawn(move || drop(evaluator));
    reads
}

/// The filters of `deploy-runner units`.
#[derive(Debug, Clone, Default)]
pub struct UnitsQuery {
    /// Keep units reading any of these (paths or globs, repo-relative). Empty: every unit.
    pub reading: Vec<String>,
    /// Drop units reading any of these.
    pub not_reading: Vec<String>,
    /// Add these units (directories or globs).
    pub include_dirs: Vec<String>,
    /// Remove these units (directories or globs), after everything else.
    pub exclude_dirs: Vec<String>,
}

/// Why a units query could not run.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// A pattern was empty.
    #[error("{flag}: an empty pattern matches nothing; give a path or glob")]
    EmptyPattern {
        /// The flag it was given to.
        flag: &'static str,
    },
    /// A pattern is not a valid glob.
    #[error("{flag} {pattern:?}: {source}")]
    BadPattern {
        /// The flag.
        flag: &'static str,
        /// The pattern.
        pattern: String,
        /// The glob error.
        source: globset::Error,
    },
}

/// The answer to a units query.
#[derive(Debug, Clone, Default)]
pub struct UnitsAnswer {
    /// Sorted unit directories.
    pub units: Vec<String>,
    /// Warnings about the selected units.
    pub warnings: Vec<String>,
    /// For each selected unit a stack generates: the stack file.
    pub stacks: BTreeMap<String, String>,
}

/// A `--reading` style pattern, ready to match.
struct FilePattern {
    literal: Option<String>,
    glob: Option<globset::GlobMatcher>,
    expanded: Vec<String>,
}

impl FilePattern {
    fn new(pattern: &str, flag: &'static str, snapshot: &Snapshot) -> Result<FilePattern, UnitsError> {
        let pattern = pattern.trim_start_matches("./");
        if pattern.is_empty() {
            return Err(UnitsError::EmptyPattern { flag });
        }
        if !pattern.contains(['*', '?', '[', '{']) {
            return Ok(FilePattern { literal: Some(pattern.to_owned()), glob: None, expanded: Vec::new() });
        }
        let glob = compile_glob(pattern).map_err(|source| UnitsError::BadPattern {
            flag,
            pattern: pattern.to_owned(),
            source,
        })?;
        let expanded = snapshot.paths().filter(|p| glob.is_match(p)).map(str::to_owned).collect();
        Ok(FilePattern { literal: None, glob: Some(glob), expanded })
    }

    /// Whether a unit with these reads reads a file this pattern names.
    fn read_by(&self, unit: &str, reads: &Reads, units: &BTreeSet<String>) -> Option<ReadMatch> {
        let matcher = reads.matcher();
        let in_other = |f: &str| owning_unit(units, f).is_some_and(|owner| owner != unit);
        // A tool version pin applies to every unit below its folder, whether or not it exists yet.
        let pinned = |f: &str| tool_version_scope(f).is_some_and(|scope| is_under(unit, scope));
        if let Some(literal) = &self.literal {
            if pinned(literal) {
                return Some(ReadMatch::Read);
            }
            return matcher.reads(literal, in_other(literal));
        }
        let glob = self.glob.as_ref()?;
        if reads.all_files().any(|f| glob.is_match(f)) || self.expanded.iter().any(|f| pinned(f)) {
            return Some(ReadMatch::Read);
        }
        self.expanded.iter().find_map(|f| matcher.reads(f, in_other(f)))
    }
}

fn dir_matchers(patterns: &[String], flag: &'static str) -> Result<Vec<globset::GlobMatcher>, UnitsError> {
    patterns
        .iter()
        .map(|p| {
            let p = p.trim_start_matches("./").trim_end_matches('/');
            if p.is_empty() {
                return Err(UnitsError::EmptyPattern { flag });
            }
            compile_glob(p).map_err(|source| UnitsError::BadPattern { flag, pattern: p.to_owned(), source })
        })
        .collect()
}

/// Answers a units query: the units of `snapshot` that read (or don't read) the given files.
pub fn units_reading(snapshot: Arc<Snapshot>, query: &UnitsQuery) -> Result<UnitsAnswer, UnitsError> {
    let reading: Vec<FilePattern> =
        query.reading.iter().map(|p| FilePattern::new(p, "--reading", &snapshot)).collect::<Result<_, _>>()?;
    let not_reading: Vec<FilePattern> =
        query.not_reading.iter().map(|p| FilePattern::new(p, "--not-reading", &snapshot)).collect::<Result<_, _>>()?;
    let include = dir_matchers(&query.include_dirs, "--include-dir")?;
    let exclude = dir_matchers(&query.exclude_dirs, "--exclude-dir")?;

    let mut units = discover_units(&snapshot);
    let stacks = crate::stacks::expand_stacks(&Evaluator::new(snapshot.clone()));
    for source in &stacks.sources {
        units.remove(source);
    }
    // Always evaluated: which configs are included parents rather than units depends on what units include.
    let mut reads = evaluate_snapshot_units(snapshot.clone(), &units);
    for (parent, _) in crate::detect::included_parents(&snapshot, &units, &reads, &BTreeMap::new()) {
        units.remove(&parent);
        reads.remove(&parent);
    }
    let mut unit_dirs: BTreeSet<String> = units.keys().cloned().collect();
    let mut answer = UnitsAnswer::default();
    for (path, unit) in stacks.units {
        unit_dirs.insert(path.clone());
        answer.stacks.insert(path.clone(), unit.stack_file);
        reads.insert(path, unit.reads);
    }
    answer.warnings.extend(stacks.warnings);
    answer.warnings.extend(stacks.failed.into_iter().map(|(stack, why)| format!("{stack}: {why}")));
    let empty = Reads::default();
    for dir in &unit_dirs {
        let unit_reads = reads.get(dir).unwrap_or(&empty);
        let mut selected = reading.is_empty()
            || reading.iter().any(|p| match p.read_by(dir, unit_reads, &unit_dirs) {
                Some(ReadMatch::Unresolved(detail)) => {
                    answer
                        .warnings
                        .push(format!("{dir}: selected because an unresolved read ({detail}) could read it"));
                    true
                }
                Some(ReadMatch::Read) => true,
                None => false,
            });
        if selected && not_reading.iter().any(|p| p.read_by(dir, unit_reads, &unit_dirs).is_some()) {
            selected = false;
        }
        if !selected && include.iter().any(|g| g.is_match(dir) || is_under(dir, g.glob().glob())) {
            selected = true;
        }
        if selected && exclude.iter().any(|g| g.is_match(dir) || is_under(dir, g.glob().glob())) {
            selected = false;
        }
        if selected {
            answer.units.push(dir.clone());
            answer.warnings.extend(unit_reads.all_warnings());
        }
    }
    answer.stacks.retain(|path, _| answer.units.contains(path));
    answer.warnings.sort();
    answer.warnings.dedup();
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_a_unit() {
        assert_eq!(unit_of_config("dev/vpc/terragrunt.hcl"), Some("dev/vpc"));
        assert_eq!(unit_of_config("dev/vpc/terragrunt.hcl.json"), Some("dev/vpc"));
        for not_unit in [
            "terragrunt.hcl",
            "_envcommon/vpc/terragrunt.hcl",
            "modules/x/terragrunt.hcl",
            ".github/x/terragrunt.hcl",
            "_ci/x/terragrunt.hcl",
            "dev/.terragrunt-cache/abc/terragrunt.hcl",
            "dev/vpc/root.hcl",
        ] {
            assert_eq!(unit_of_config(not_unit), None, "{not_unit}");
        }
    }

    #[test]
    fn nearest_unit_owns_a_file() {
        let units: BTreeSet<String> = ["dev/app", "dev/app/nested"].iter().map(|s| s.to_string()).collect();
        assert_eq!(owning_unit(&units, "dev/app/src/main.py").map(String::as_str), Some("dev/app"));
        assert_eq!(owning_unit(&units, "dev/app/nested/x.tf").map(String::as_str), Some("dev/app/nested"));
        assert_eq!(owning_unit(&units, "dev/env.hcl"), None);
    }
}
