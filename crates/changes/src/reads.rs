//! What a unit reads, and the question detection asks of it: could this changed file affect the unit?

use globset::{Glob, GlobBuilder, GlobMatcher};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Extensions of files under a local `terraform { source }` directory that count as read.
pub const MODULE_EXTENSIONS: [&str; 5] = [".tf", ".tf.json", ".hcl", ".tofu", ".tofu.json"];

/// A read whose path could not be worked out statically. Detection fails closed on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unresolved {
    /// The repo-relative prefix every possible path shares (`dev/app/src/`), when one is known.
    pub prefix: Option<String>,
    /// What could not be evaluated, for the warning.
    pub detail: String,
}

/// Everything one unit reads, directly or through included and read configs.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// Files read, and paths probed for existence (repo-relative).
    pub files: BTreeSet<String>,
    /// Local module directories (`terraform { source = "../modules/x" }`), repo-relative.
    pub source_dirs: BTreeSet<String>,
    /// Folders reached through local `module` calls of the unit's Terraform code (and of its source's), followed
    /// recursively; read like `source_dirs`.
    pub module_dirs: BTreeSet<String>,
    /// Configs this one includes (repo-relative paths). Reads too; kept apart to tell included parents from units.
    pub includes: BTreeSet<String>,
    /// Whether a `terraform { source }` was seen (in the config or what it includes).
    pub has_source: bool,
    /// Whether some of the unit's dependencies could not be worked out (its own config can't be parsed, or a
    /// dependency path can't be evaluated): it is then ordered conservatively.
    pub dependencies_unknown: bool,
    /// Glob patterns marked as read (repo-relative).
    pub globs: BTreeSet<String>,
    /// Reads that could not be resolved.
    pub unresolved: Vec<Unresolved>,
    /// Units this unit depends on through `dependency`/`dependencies` (repo-relative dirs). Not reads.
    pub dependencies: BTreeSet<String>,
    /// Problems worth telling the user about (escapes, symlink loops, parse errors).
    pub warnings: Vec<String>,
    /// Local `terraform { source }` values that leave the repository or can't be worked out statically. Detection
    /// fails closed on them through `unresolved`; the deploy task refuses to run the unit.
    pub source_problems: Vec<String>,
    /// Reads of shared files (includes, `read_terragrunt_config`), evaluated once and shared by many units rather
    /// than copied into each.
    pub shared: Vec<Arc<Reads>>,
}

impl Reads {
    /// Adds everything `other` reads, by reference.
    pub fn merge(&mut self, other: &Arc<Reads>) {
        self.shared.push(other.clone());
    }

    /// This unit's own reads and every shared part, depth-first (a part reached twice is visited twice).
    pub fn segments(&self) -> impl Iterator<Item = &Reads> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let next = stack.pop()?;
            stack.extend(next.shared.iter().map(Arc::as_ref));
            Some(next)
        })
    }

    /// Every file read or probed.
    pub fn all_files(&self) -> impl Iterator<Item = &String> {
        self.segments().flat_map(|r| r.files.iter())
    }

    /// Every unit depended on.
    pub fn all_dependencies(&self) -> BTreeSet<String> {
        self.segments().flat_map(|r| r.dependencies.iter().cloned()).collect()
    }

    /// Every config included, directly or through other includes.
    pub fn all_includes(&self) -> BTreeSet<String> {
        self.segments().flat_map(|r| r.includes.iter().cloned()).collect()
    }

    /// Every source problem, without repeats.
    pub fn all_source_problems(&self) -> BTreeSet<String> {
        self.segments().flat_map(|r| r.source_problems.iter().cloned()).collect()
    }

    /// Every local source folder.
    pub fn all_source_dirs(&self) -> BTreeSet<String> {
        self.segments().flat_map(|r| r.source_dirs.iter().cloned()).collect()
    }

    /// Every warning, without repeats.
    pub fn all_warnings(&self) -> BTreeSet<String> {
        self.segments().flat_map(|r| r.warnings.iter().cloned()).collect()
    }

    /// Flattens the segments and compiles the globs once, so many files can be matched quickly.
    pub fn matcher(&self) -> ReadMatcher<'_> {
        let segments: Vec<&Reads> = self.segments().collect();
        let globs = segments.iter().flat_map(|r| r.globs.iter()).filter_map(|g| compile_glob(g).ok()).collect();
        ReadMatcher { segments, globs }
    }
}

/// Compiles a terragrunt-style glob: `*` stays within a path segment, `**` crosses them, `{a,b}` alternates.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build().map(|g: Glob| g.compile_matcher())
}

/// How a file is read by a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadMatch {
    /// Definitely read (a file, a module directory or a glob).
    Read,
    /// Possibly read through an unresolved expression.
    Unresolved(String),
}

/// A [`Reads`] with its globs compiled.
pub struct ReadMatcher<'a> {
    segments: Vec<&'a Reads>,
    globs: Vec<GlobMatcher>,
}

impl ReadMatcher<'_> {
    /// Whether the unit reads `file`. `in_other_unit` says whether the file belongs to some other unit, which
    /// matters only for unresolved reads with no known prefix.
    pub fn reads(&self, file: &str, in_other_unit: bool) -> Option<ReadMatch> {
        if self.segments.iter().any(|r| r.reads_directly(file)) || self.globs.iter().any(|g| g.is_match(file)) {
            return Some(ReadMatch::Read);
        }
        self.segments.iter().find_map(|r| r.unresolved_read(file, in_other_unit))
    }
}

impl Reads {
    /// True when this segment's own files or module directories cover `file` (globs are matched by the caller,
    /// which compiles them once).
    fn reads_directly(&self, file: &str) -> bool {
        self.files.contains(file)
            || ((self.source_dirs.iter().any(|d| is_under(file, d))
                || self.module_dirs.iter().any(|d| is_under(file, d)))
                && is_module_file(file))
    }

    /// The first of this segment's own unresolved reads that could read `file`.
    fn unresolved_read(&self, file: &str, in_other_unit: bool) -> Option<ReadMatch> {
        self.unresolved.iter().find_map(|u| {
            let matches = match &u.prefix {
                Some(prefix) => file.starts_with(prefix.as_str()),
                None => !in_other_unit,
            };
            matches.then(|| ReadMatch::Unresolved(u.detail.clone()))
        })
    }
}

/// Matches many units against one list of changed files, checking each shared segment of reads once however many
/// units share it (a change to 200 `_envcommon` files in a 10,000-unit repo is 2,000,000 unit-file pairs).
pub struct MatchIndex<'f> {
    /// Each changed file, and whether some unit owns it.
    files: &'f [(&'f str, bool)],
    memo: HashMap<*const Reads, Arc<Vec<(usize, ReadMatch)>>>,
}

impl<'f> MatchIndex<'f> {
    /// An index over `files`: `(path, owned by some unit)`.
    pub fn new(files: &'f [(&'f str, bool)]) -> MatchIndex<'f> {
        MatchIndex { files, memo: HashMap::new() }
    }

    /// The changed files (by index into `files`) that `reads` reads, each once, definite reads winning.
    pub fn matches(&mut self, reads: &Reads) -> Vec<(usize, ReadMatch)> {
        let mut found: BTreeMap<usize, ReadMatch> = BTreeMap::new();
        let mut add = |list: &[(usize, ReadMatch)]| {
            for (index, how) in list {
                match found.get(index) {
                    Some(ReadMatch::Read) => {}
                    _ => {
                        found.insert(*index, how.clone());
                    }
                }
            }
        };
        add(&self.own_matches(reads));
        for shared in &reads.shared {
            add(&self.shared_matches(shared));
        }
        found.into_iter().collect()
    }

    fn shared_matches(&mut self, segment: &Arc<Reads>) -> Arc<Vec<(usize, ReadMatch)>> {
        let key = Arc::as_ptr(segment);
        if let Some(hit) = self.memo.get(&key) {
            return hit.clone();
        }
        let result = Arc::new(self.matches(segment));
        self.memo.insert(key, result.clone());
        result
    }

    /// Matches against one segment's own fields, not its shared children.
    fn own_matches(&self, segment: &Reads) -> Vec<(usize, ReadMatch)> {
        let globs: Vec<GlobMatcher> = segment.globs.iter().filter_map(|g| compile_glob(g).ok()).collect();
        let mut out = Vec::new();
        for (index, (file, in_some_unit)) in self.files.iter().enumerate() {
            if segment.reads_directly(file) || globs.iter().any(|g| g.is_match(file)) {
                out.push((index, ReadMatch::Read));
            } else if let Some(how) = segment.unresolved_read(file, *in_some_unit) {
                out.push((index, how));
            }
        }
        out
    }
}

/// True when `path` is `dir` itself or inside it (repo-relative; `""` is the root).
pub fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

fn is_module_file(path: &str) -> bool {
    MODULE_EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let mut reads = Reads::default();
        reads.files.insert("_envcommon/vpc.hcl".into());
        reads.source_dirs.insert("modules/vpc".into());
        reads.globs.insert("dev/app/{*.yaml,**/*.yaml}".into());
        reads.unresolved.push(Unresolved { prefix: Some("dev/app/src/".into()), detail: "run_cmd".into() });
        let m = reads.matcher();
        assert_eq!(m.reads("_envcommon/vpc.hcl", false), Some(ReadMatch::Read));
        assert_eq!(m.reads("modules/vpc/main.tf", false), Some(ReadMatch::Read));
        assert_eq!(m.reads("modules/vpc/README.md", false), None);
        assert_eq!(m.reads("modules/vpc2/main.tf", false), None);
        assert_eq!(m.reads("dev/app/a.yaml", false), Some(ReadMatch::Read));
        assert_eq!(m.reads("dev/app/x/y/b.yaml", false), Some(ReadMatch::Read));
        assert_eq!(m.reads("dev/other/a.yaml", false), None);
        assert!(matches!(m.reads("dev/app/src/x.txt", true), Some(ReadMatch::Unresolved(_))));
        assert_eq!(m.reads("README.md", false), None);
        let mut shared = Reads::default();
        shared.unresolved.push(Unresolved { prefix: None, detail: "unknown".into() });
        shared.files.insert("root.hcl".into());
        reads.merge(&Arc::new(shared));
        let m = reads.matcher();
        assert_eq!(m.reads("root.hcl", false), Some(ReadMatch::Read));
        assert!(matches!(m.reads("README.md", false), Some(ReadMatch::Unresolved(_))));
        assert_eq!(m.reads("prod/vpc/terragrunt.hcl", true), None);
    }

    #[test]
    fn under() {
        assert!(is_under("a/b", "a"));
        assert!(is_under("a", "a"));
        assert!(!is_under("ab/c", "a"));
        assert!(is_under("x", ""));
    }
}
