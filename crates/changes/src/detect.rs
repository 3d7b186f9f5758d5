//! `deploy-runner changes`: map the diff between two commits to units, in deploy order.

use crate::accounts::{AccountOrder, AccountsError};
use crate::eval::Evaluator;
use crate::git::{ChangedFile, FileStatus, GitError, GitRepo};
use crate::reads::{MatchIndex, ReadMatch, Reads};
use crate::snapshot::Snapshot;
use crate::stacks::{expand_stacks, StackExpansion};
use crate::units::{discover_units, evaluate_snapshot_units, owning_unit, tool_version_scope, unit_of_config};
use deploy_runner_gate::ChangeKind;
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Guards that apply when none are configured: the pipeline never deploys its own runner.
pub const DEFAULT_GUARDS: [&str; 2] = [r"^.+/ecs-deploy-runner(/.+)?$", r"^_envcommon/mgmt/ecs-deploy-runner\.hcl$"];

/// Top-level folders whose changes never select anything (CI configuration).
const IGNORED_TOP_LEVEL: [&str; 2] = [".github/", "_ci/"];

/// The reason given for units selected only through reads that could not be resolved.
pub const UNRESOLVED_REASON: &str = "unresolved";

/// Settings of a detection run.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Also select units that depend on selected units, transitively.
    pub with_dependents: bool,
    /// Units matching any of these (or reached only through files matching them) are skipped.
    pub guards: Vec<Regex>,
    /// Deploy order; `None` reads `accounts.json` at the head commit.
    pub accounts: Option<AccountOrder>,
}

impl Default for DetectOptions {
    fn default() -> DetectOptions {
        DetectOptions {
            with_dependents: false,
            guards: DEFAULT_GUARDS.iter().filter_map(|g| Regex::new(g).ok()).collect(),
            accounts: None,
        }
    }
}

/// A unit to plan or apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectedUnit {
    /// Repo-relative unit directory.
    pub path: String,
    /// Its strongest change.
    pub change: ChangeKind,
    /// The unit path's first segment.
    pub account: String,
    /// The account's deploy order.
    pub deploy_order: u64,
    /// The changed files (or `unresolved`) that selected it.
    pub reasons: Vec<String>,
    /// For a unit a stack generates: the stack file (`terragrunt stack generate` there creates it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// For a unit applied (not deleted): the selected units of its account it must wait for, directly or through
    /// units that are not selected. When some unit of the account has dependencies that can't be worked out, its
    /// units form a chain in order instead. Deleted units run after the others, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// A unit that would have been selected but is guarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedUnit {
    /// Repo-relative unit directory.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The answer of `deploy-runner changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeReport {
    /// The base commit (full SHA).
    pub base: String,
    /// The head commit (full SHA).
    pub head: String,
    /// Selected units in deploy order.
    pub units: Vec<SelectedUnit>,
    /// Guarded units.
    pub skipped: Vec<SkippedUnit>,
    /// Things the user should know (unresolved reads, parse errors, escapes).
    pub warnings: Vec<String>,
}

/// Why detection could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Git failed (not a repo, unknown revision, ...).
    #[error(transparent)]
    Git(#[from] GitError),
    /// `accounts.json` is missing or invalid.
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// Selected units sit in accounts that `accounts.json` does not list.
    #[error("units in accounts missing from accounts.json: {0}")]
    UnknownAccounts(String),
    /// The dependency graph has a cycle, so there is no deploy order.
    #[error("dependency cycle: {0}")]
    Cycle(String),
    /// A stack touched by the change can't be evaluated, so its units are unknown: nothing is guessed.
    #[error("{0}")]
    Stack(String),
}

/// Detects the units changed between `base` and `head` in `repo`.
pub fn detect_changes(
    repo: &GitRepo,
    base: &str,
    head: &str,
    options: &DetectOptions,
) -> Result<ChangeReport, DetectError> {
    let base = repo.resolve_commit(base)?;
    let head = repo.resolve_commit(head)?;
    let changed = repo.changed_files(&base, &head)?;
    // The base tree is needed for deleted and modified files, and for what stacks generated before; list it while
    // the head is being loaded.
    let needs_base =
        changed.iter().any(|f| f.status != FileStatus::Added) || repo.tree_has_stacks(&head).unwrap_or(true);
    let (head_snapshot, base_snapshot) = std::thread::scope(|scope| {
        let base_job = needs_base.then(|| scope.spawn(|| repo.snapshot(&base, false)));
        let head_snapshot = repo.snapshot(&head, true);
        let base_snapshot = match base_job {
            Some(job) => job.join().unwrap_or_else(|_| Err(std::io::Error::other("panicked").into())),
            None => Ok(Snapshot::empty()),
        };
        (head_snapshot, base_snapshot)
    });
    let (head_snapshot, base_snapshot) = (Arc::new(head_snapshot?), Arc::new(base_snapshot?));
    let accounts = match &options.accounts {
        Some(accounts) => accounts.clone(),
        None => match head_snapshot.read("accounts.json") {
            Ok(Some(bytes)) => AccountOrder::parse(&bytes, "accounts.json")?,
            _ => return Err(AccountsError::Missing(format!("accounts.json at {head}")).into()),
        },
    };
    let mut report = detect(&base_snapshot, &head_snapshot, &changed, &accounts, options)?;
    drop_in_background((head_snapshot, base_snapshot));
    report.base = base;
    report.head = head;
    Ok(report)
}

/// Selection state of one unit while detecting.
#[derive(Debug, Default)]
struct Candidate {
    change: Option<ChangeKind>,
    reasons: BTreeSet<String>,
}

impl Candidate {
    /// Records a change, keeping the strongest: deleted > added > modified > affected > dependent.
    fn select(&mut self, change: ChangeKind, reason: Option<&str>) {
        if self.change.is_none_or(|current| strength(change) > strength(current)) {
            self.change = Some(change);
        }
        if let Some(reason) = reason {
            self.reasons.insert(reason.to_owned());
        }
    }
}

fn strength(change: ChangeKind) -> u8 {
    match change {
        ChangeKind::Deleted => 5,
        ChangeKind::Added => 4,
        ChangeKind::Modified => 3,
        ChangeKind::Affected => 2,
        ChangeKind::Dependent => 1,
    }
}

/// The pure core of detection over two snapshots and the list of changed files.
pub fn detect(
    base: &Arc<Snapshot>,
    head: &Arc<Snapshot>,
    changed: &[ChangedFile],
    accounts: &AccountOrder,
    options: &DetectOptions,
) -> Result<ChangeReport, DetectError> {
    let changed: Vec<&ChangedFile> =
        changed.iter().filter(|f| !IGNORED_TOP_LEVEL.iter().any(|dir| f.path.starts_with(dir))).collect();
    let mut head_units = discover_units(head);
    let mut base_units = discover_units(base);
    // Stacks generate units of their own; the folders they copy units from are catalog entries, not units.
    let head_stacks =
        if changed.is_empty() { StackExpansion::default() } else { expand_stacks(&Evaluator::new(head.clone())) };
    let base_stacks = expand_stacks(&Evaluator::new(base.clone()));
    for source in head_stacks.sources.iter().chain(&base_stacks.sources) {
        head_units.remove(source);
        base_units.remove(source);
    }
    // Evaluate first: which configs are only included parents (not units) is known from what units include.
    let mut head_reads =
        if changed.is_empty() { BTreeMap::new() } else { evaluate_snapshot_units(head.clone(), &head_units) };
    let gone: BTreeMap<String, String> = base_units
        .iter()
        .filter(|(dir, _)| !head_units.contains_key(*dir))
        .map(|(d, c)| (d.clone(), c.clone()))
        .collect();
    let mut deleted_reads = evaluate_snapshot_units(base.clone(), &gone);
    let mut warnings = BTreeSet::new();
    for (parent, config) in included_parents(head, &head_units, &head_reads, &deleted_reads) {
        // A parent at head is configuration on both sides of the diff (a change to it is not a deletion).
        head_units.remove(&parent);
        head_reads.remove(&parent);
        base_units.remove(&parent);
        warnings.insert(format!("{parent}: {config} is included by other units and has no Terraform of its own, so it is configuration, not a unit"));
    }
    for (parent, _) in included_parents(base, &gone, &deleted_reads, &head_reads) {
        base_units.remove(&parent);
        deleted_reads.remove(&parent);
    }
    let mut head_dirs: BTreeSet<String> = head_units.keys().cloned().collect();
    let base_dirs: BTreeSet<String> = base_units.keys().cloned().collect();
    let deleted_dirs: BTreeSet<String> = base_dirs.difference(&head_dirs).cloned().collect();
    let all_dirs: BTreeSet<String> = head_dirs.union(&base_dirs).cloned().collect();
    let mut stack_of: BTreeMap<String, String> = BTreeMap::new();
    for (stack, why) in &head_stacks.failed {
        let dir = crate::snapshot::parent(stack);
        if changed.iter().any(|f| crate::reads::is_under(&f.path, dir)) {
            return Err(DetectError::Stack(format!(
                "{stack}: {why}; its units can't be listed, so nothing is guessed"
            )));
        }
        warnings.insert(format!("{stack}: {why}"));
    }
    warnings.extend(head_stacks.warnings.iter().cloned());

    let mut candidates: BTreeMap<String, Candidate> = BTreeMap::new();
    // Files a unit owns select it directly.
    for file in &changed {
        if let Some(dir) = unit_of_config(&file.path) {
            let change = match (head_dirs.contains(dir), base_dirs.contains(dir)) {
                (true, false) => ChangeKind::Added,
                (false, true) => ChangeKind::Deleted,
                (true, true) => ChangeKind::Modified,
                // An included parent: configuration, whose includers read it.
                (false, false) => continue,
            };
            candidates.entry(dir.to_owned()).or_default().select(change, Some(&file.path));
        } else if let Some(owner) = owning_unit(&all_dirs, &file.path) {
            let change = if deleted_dirs.contains(owner) { ChangeKind::Deleted } else { ChangeKind::Modified };
            candidates.entry(owner.clone()).or_default().select(change, Some(&file.path));
        }
    }

    // Units a stack generates: added or deleted with their stack block; otherwise selected by what they read.
    for (path, unit) in &head_stacks.units {
        stack_of.insert(path.clone(), unit.stack_file.clone());
        if !base_stacks.units.contains_key(path) {
            candidates.entry(path.clone()).or_default().select(ChangeKind::Added, Some(&unit.stack_file));
        }
        head_dirs.insert(path.clone());
        head_reads.insert(path.clone(), unit.reads.clone());
    }
    for (path, unit) in &base_stacks.units {
        if !head_stacks.units.contains_key(path) && !changed.is_empty() {
            stack_of.insert(path.clone(), unit.stack_file.clone());
            candidates.entry(path.clone()).or_default().select(ChangeKind::Deleted, Some(&unit.stack_file));
            deleted_reads.insert(path.clone(), unit.reads.clone());
        }
    }

    // A tool version pin applies to every unit below its folder.
    for file in &changed {
        if let Some(scope) = tool_version_scope(&file.path) {
            for dir in head_dirs.iter().filter(|d| crate::reads::is_under(d, scope)) {
                candidates.entry(dir.clone()).or_default().select(ChangeKind::Affected, Some(&file.path));
            }
        }
    }

    // Reads select the units that read a changed file.
    let owners: Vec<Option<&String>> = changed.iter().map(|f| owning_unit(&all_dirs, &f.path)).collect();
    let files: Vec<(&str, bool)> = changed.iter().zip(&owners).map(|(f, o)| (f.path.as_str(), o.is_some())).collect();
    let mut index = MatchIndex::new(&files);
    for (dir, reads) in &head_reads {
        for (i, how) in index.matches(reads) {
            let file = &changed[i].path;
            if owners[i] == Some(dir) {
                continue; // its own file made it modified already
            }
            let candidate = candidates.entry(dir.clone()).or_default();
            candidate.select(ChangeKind::Affected, Some(file));
            if let ReadMatch::Unresolved(detail) = how {
                warnings.insert(format!(
                    "{dir}: selected as affected because an unresolved read ({detail}) could read {file}"
                ));
                candidate.reasons.insert(UNRESOLVED_REASON.to_owned());
            }
        }
        // Escapes, symlink loops, parse errors and oversized files are worth knowing wherever they are.
        warnings.extend(reads.all_warnings());
    }
    deleted_reads.retain(|dir, _| candidates.get(dir).and_then(|c| c.change) == Some(ChangeKind::Deleted));

    let graph = DependencyGraph::new(head_reads.iter().chain(deleted_reads.iter()));
    if let Some(cycle) = graph.find_cycle() {
        return Err(DetectError::Cycle(cycle.join(" -> ")));
    }
    if options.with_dependents {
        let seeds: Vec<String> =
            candidates.iter().filter(|(_, c)| c.change.is_some()).map(|(d, _)| d.clone()).collect();
        for (dependent, via) in graph.dependents_of(&seeds) {
            candidates.entry(dependent).or_default().select(ChangeKind::Dependent, Some(&via));
        }
    }

    let mut units = Vec::new();
    let mut skipped = Vec::new();
    let mut unknown_accounts = Vec::new();
    for (dir, candidate) in candidates {
        let Some(change) = candidate.change else {
            continue;
        };
        let guarded_path = options.guards.iter().any(|g| g.is_match(&dir));
        let reached_only_through_guarded = !candidate.reasons.is_empty()
            && candidate.reasons.iter().all(|r| r == UNRESOLVED_REASON || options.guards.iter().any(|g| g.is_match(r)));
        if guarded_path || (change == ChangeKind::Affected && reached_only_through_guarded) {
            skipped.push(SkippedUnit { path: dir, reason: "self-update-guard".to_owned() });
            continue;
        }
        if let Some(reads) = deleted_reads.get(&dir) {
            warnings.extend(reads.all_warnings());
        }
        let account = dir.split('/').next().unwrap_or_default().to_owned();
        let Some(deploy_order) = accounts.order(&account) else {
            unknown_accounts.push(format!("{dir} (account {account:?})"));
            continue;
        };
        let stack = stack_of.get(&dir).cloned();
        units.push(SelectedUnit {
            path: dir,
            change,
            account,
            deploy_order,
            reasons: candidate.reasons.into_iter().collect(),
            stack,
            depends_on: Vec::new(),
        });
    }
    if !unknown_accounts.is_empty() {
        return Err(DetectError::UnknownAccounts(unknown_accounts.join(", ")));
    }
    let levels = graph.levels();
    // A unit whose dependencies can't all be worked out goes after every unit of its account it could depend on
    // (and, deleted, is destroyed before them): never before its own dependencies.
    let unknown: BTreeSet<&str> = head_reads
        .iter()
        .chain(deleted_reads.iter())
        .filter(|(_, r)| r.segments().any(|s| s.dependencies_unknown))
        .map(|(d, _)| d.as_str())
        .collect();
    for unit in units.iter().filter(|u| unknown.contains(u.path.as_str())) {
        let (when, relative) = if u_deleted(unit) { ("destroyed", "before") } else { ("applied", "after") };
        warnings.insert(format!(
            "{}: its dependencies can't all be worked out, so it is {when} {relative} every other selected unit of {}",
            unit.path, unit.account
        ));
    }
    units.sort_by(|a, b| {
        let key = |u: &SelectedUnit| {
            let deleted = u_deleted(u);
            let level = if unknown.contains(u.path.as_str()) {
                i64::MAX / 2
            } else {
                levels.get(&u.path).copied().unwrap_or(0) as i64
            };
            (u.deploy_order, u.account.clone(), deleted, if deleted { -level } else { level })
        };
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });
    wait_lists(&mut units, &graph, &unknown);
    drop_in_background((head_reads, deleted_reads, graph));
    Ok(ChangeReport {
        base: String::new(),
        head: String::new(),
        units,
        skipped,
        warnings: warnings.into_iter().collect(),
    })
}

/// Fills each applied unit's `depends_on` (see [`SelectedUnit::depends_on`]); `units` are in their final order.
fn wait_lists(units: &mut [SelectedUnit], graph: &DependencyGraph, unknown: &BTreeSet<&str>) {
    let selected: HashMap<String, String> =
        units.iter().filter(|u| !u_deleted(u)).map(|u| (u.path.clone(), u.account.clone())).collect();
    let chained: BTreeSet<String> =
        units.iter().filter(|u| unknown.contains(u.path.as_str())).map(|u| u.account.clone()).collect();
    let mut previous: HashMap<String, String> = HashMap::new();
    for unit in units.iter_mut().filter(|u| !u_deleted(u)) {
        unit.depends_on = if chained.contains(&unit.account) {
            previous.get(&unit.account).cloned().into_iter().collect()
        } else {
            graph
                .nearest(&unit.path, |dir| selected.contains_key(dir))
                .into_iter()
                .filter(|dep| selected.get(dep) == Some(&unit.account))
                .collect()
        };
        previous.insert(unit.account.clone(), unit.path.clone());
    }
}

fn u_deleted(unit: &SelectedUnit) -> bool {
    unit.change == ChangeKind::Deleted
}

/// Configs that other configs include and that have no Terraform of their own (no `terraform { source }`, no
/// Terraform files in their folder): a legacy root `terragrunt.hcl` or a shared parent. They are configuration,
/// not units: never selected or planned, and a change to them selects their includers (which read them).
pub fn included_parents(
    snapshot: &Snapshot,
    units: &BTreeMap<String, String>,
    reads: &BTreeMap<String, Reads>,
    other_reads: &BTreeMap<String, Reads>,
) -> Vec<(String, String)> {
    let included: BTreeSet<String> = reads.values().chain(other_reads.values()).flat_map(Reads::all_includes).collect();
    units
        .iter()
        .filter(|(_, config)| included.contains(*config))
        .filter(|(dir, _)| !reads.get(*dir).is_some_and(|r| r.segments().any(|s| s.has_source)))
        .filter(|(dir, _)| !snapshot.files_in(dir).iter().any(|f| crate::modules::is_terraform_file(f)))
        .map(|(dir, config)| (dir.clone(), config.clone()))
        .collect()
}

/// Frees large structures off the critical path. Tearing down the caches of 10,000 evaluated units takes longer
/// than some whole phases of detection; a CLI that is about to exit need not wait for it.
fn drop_in_background<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

/// Unit -> the units it depends on.
pub struct DependencyGraph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl DependencyGraph {
    /// Builds the graph from each unit's reads; edges to directories that are not units are kept (harmless).
    pub fn new<'a>(reads: impl Iterator<Item = (&'a String, &'a Reads)>) -> DependencyGraph {
        DependencyGraph { edges: reads.map(|(dir, r)| (dir.clone(), r.all_dependencies())).collect() }
    }

    /// A cycle, as the list of units around it (first repeated at the end), if there is one.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: HashMap<&str, Mark> = HashMap::new();
        for start in self.edges.keys() {
            if marks.contains_key(start.as_str()) {
                continue;
            }
            // Iterative DFS: (node, next child index); the stack is the current path.
            let mut stack: Vec<(&str, Vec<&str>)> = vec![(start, self.children(start))];
            marks.insert(start, Mark::Visiting);
            while let Some((node, children)) = stack.last_mut() {
                let node = *node;
                match children.pop() {
                    Some(child) => match marks.get(child) {
                        Some(Mark::Visiting) => {
                            let from = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                            let mut cycle: Vec<String> = stack[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                            cycle.push(child.to_owned());
                            return Some(cycle);
                        }
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(child, Mark::Visiting);
                            stack.push((child, self.children(child)));
                        }
                    },
                    None => {
                        marks.insert(node, Mark::Done);
                        stack.pop();
                    }
                }
            }
        }
        None
    }

    fn children(&self, node: &str) -> Vec<&str> {
        let mut children: Vec<&str> =
            self.edges.get(node).map(|s| s.iter().map(String::as_str).collect()).unwrap_or_default();
        children.reverse();
        children
    }

    /// The units `unit` depends on for which `stop` holds, found through any others: the nearest on each path.
    pub fn nearest(&self, unit: &str, stop: impl Fn(&str) -> bool) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue: Vec<&str> = self.children(unit);
        while let Some(next) = queue.pop() {
            if next == unit || !seen.insert(next) {
                continue;
            }
            if stop(next) {
                found.insert(next.to_owned());
            } else {
                queue.extend(self.children(next));
            }
        }
        found
    }

    /// Each unit's depth: 0 with no dependencies, else one more than its deepest dependency. Requires no cycle.
    pub fn levels(&self) -> HashMap<String, usize> {
        let mut levels: HashMap<String, usize> = HashMap::new();
        for start in self.edges.keys() {
            let mut stack = vec![(start.as_str(), false)];
            while let Some((node, expanded)) = stack.pop() {
                if levels.contains_key(node) {
                    continue;
                }
                let children = self.children(node);
                if expanded || children.is_empty() {
                    let level = children.iter().map(|c| levels.get(*c).map_or(1, |l| l + 1)).max().unwrap_or(0);
                    levels.insert(node.to_owned(), level);
                } else {
                    stack.push((node, true));
                    stack.extend(children.into_iter().filter(|c| !levels.contains_key(*c)).map(|c| (c, false)));
                }
            }
        }
        levels
    }

    /// Every unit that depends on one of `seeds`, transitively, with the seed-side unit it was reached through.
    pub fn dependents_of(&self, seeds: &[String]) -> Vec<(String, String)> {
        let mut reverse: HashMap<&str, Vec<&str>> = HashMap::new();
        for (unit, deps) in &self.edges {
            for dep in deps {
                reverse.entry(dep.as_str()).or_default().push(unit.as_str());
            }
        }
        let mut seen: BTreeSet<&str> = seeds.iter().map(String::as_str).collect();
        let mut queue: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let mut found = Vec::new();
        while let Some(unit) = queue.pop() {
            for dependent in reverse.get(unit).into_iter().flatten() {
                if seen.insert(dependent) {
                    found.push(((*dependent).to_owned(), unit.to_owned()));
                    queue.push(dependent);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> DependencyGraph {
        DependencyGraph {
            edges: edges.iter().map(|(u, d)| ((*u).to_owned(), d.iter().map(|s| (*s).to_owned()).collect())).collect(),
        }
    }

    #[test]
    fn nearest_finds_the_first_wanted_unit_on_each_path() {
        // app -> db -> vpc, app -> cache (not wanted) -> vpc; lone has none.
        let g = graph(&[("vpc", &[]), ("db", &["vpc"]), ("cache", &["vpc"]), ("app", &["db", "cache"]), ("lone", &[])]);
        let wanted = |d: &str| ["vpc", "db", "app", "lone"].contains(&d);
        let names = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        assert_eq!(names(g.nearest("app", wanted)), ["db", "vpc"], "vpc through the unwanted cache, not past db");
        assert_eq!(names(g.nearest("db", wanted)), ["vpc"]);
        assert!(g.nearest("lone", wanted).is_empty());
    }

    #[test]
    fn levels_put_dependencies_first() {
        let g = graph(&[("vpc", &[]), ("db", &["vpc"]), ("app", &["db", "vpc"]), ("lone", &[])]);
        let levels = g.levels();
        assert_eq!((levels["vpc"], levels["db"], levels["app"], levels["lone"]), (0, 1, 2, 0));
        assert_eq!(g.find_cycle(), None);
    }

    #[test]
    fn cycles_are_named() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        let cycle = g.find_cycle().expect("cycle");
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4, "{cycle:?}");
    }

    #[test]
    fn dependents_are_transitive() {
        let g = graph(&[("vpc", &[]), ("db", &["vpc"]), ("app", &["db"]), ("other", &[])]);
        let mut found: Vec<String> = g.dependents_of(&["vpc".to_owned()]).into_iter().map(|(d, _)| d).collect();
        found.sort();
        assert_eq!(found, ["app", "db"]);
    }
}
