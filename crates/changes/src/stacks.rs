//! Terragrunt stacks: `terragrunt.stack.hcl` files whose `unit` and `stack` blocks generate units under
//! `.terragrunt-stack/` (`terragrunt stack generate`). Detection lists each generated unit as a unit: where
//! terragrunt puts it, in its account, reading the stack file (and what the stack file reads), its local source's
//! files, and what its config reads when evaluated where it is generated, with the stack's `values`.
//!
//! Statically, like everything else here: a unit from a remote source can't be read, so it is selected by any
//! changed file outside other units (fail closed, with a warning); a stack that can't be evaluated is reported.

use crate::eval::Evaluator;
use crate::reads::{Reads, Unresolved};
use crate::snapshot::{self, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The stack file name.
pub const STACK_FILE: &str = "terragrunt.stack.hcl";
/// The folder `terragrunt stack generate` writes into, next to the stack file.
pub const STACK_DIR: &str = ".terragrunt-stack";
/// How deep stacks may nest.
const MAX_STACK_DEPTH: usize = 8;

/// A unit a stack file generates.
#[derive(Debug, Clone)]
pub struct GeneratedUnit {
    /// Where terragrunt generates it (repo-relative; does not exist in the tree).
    pub path: String,
    /// The stack file (in the tree) whose generation creates it.
    pub stack_file: String,
    /// Its local source folder, when the source is local.
    pub source_dir: Option<String>,
    /// What it reads.
    pub reads: Reads,
}

/// Every stack's generated units, the local source folders stacks use (not units of their own), and problems.
#[derive(Debug, Default)]
pub struct StackExpansion {
    /// Generated unit path -> the unit.
    pub units: BTreeMap<String, GeneratedUnit>,
    /// Local `source` folders of `unit`/`stack` blocks: catalog entries, not deployable units themselves.
    pub sources: BTreeSet<String>,
    /// Stack files that could not be evaluated, with why: `(stack file, problem)`.
    pub failed: Vec<(String, String)>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// True for a source terragrunt treats as a local path.
fn is_local(source: &str) -> bool {
    !(source.contains("::") || source.contains("://")) && (source.starts_with('.') || source.starts_with('/'))
}

/// Whether `path` is a generated unit's path (it crosses a `.terragrunt-stack` folder).
pub fn is_generated_path(path: &str) -> bool {
    path.split('/').any(|segment| segment == STACK_DIR)
}

/// The stack files of the tree that are not themselves some stack's nested source.
fn top_level_stack_files(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .paths()
        .filter(|p| p.rsplit('/').next() == Some(STACK_FILE))
        .filter(|p| !p.split('/').any(|s| s.starts_with('.')))
        .map(str::to_owned)
        .collect()
}

/// Expands every stack of `snapshot`.
pub fn expand_stacks(evaluator: &Evaluator) -> StackExpansion {
    let snapshot = evaluator.snapshot();
    let mut expansion = StackExpansion::default();
    let mut files = top_level_stack_files(snapshot);
    files.sort();
    for file in &files {
        let dir = snapshot::parent(file).to_owned();
        expand(evaluator, &mut expansion, &Origin { file, generated_dir: &dir, real_dir: &dir }, None, &[], 0, file);
    }
    // A stack file used as another stack's nested source is not a stack of its own.
    let nested: Vec<String> = expansion.sources.iter().map(|s| format!("{s}/{STACK_FILE}")).collect();
    if !nested.is_empty() {
        expansion.units.retain(|_, u| !nested.contains(&u.stack_file));
        expansion.failed.retain(|(file, _)| !nested.contains(file));
    }
    expansion
}

/// Where a stack file is evaluated: the file in the tree, where terragrunt generates it, and where it really is.
struct Origin<'a> {
    file: &'a str,
    generated_dir: &'a str,
    real_dir: &'a str,
}

fn expand(
    evaluator: &Evaluator,
    out: &mut StackExpansion,
    origin: &Origin<'_>,
    values: Option<hcl::Value>,
    inherited: &[Arc<Reads>],
    depth: usize,
    top: &str,
) {
    let snapshot = evaluator.snapshot();
    if depth > MAX_STACK_DEPTH {
        out.failed.push((top.to_owned(), format!("stacks nest more than {MAX_STACK_DEPTH} deep")));
        return;
    }
    let (entries, reads) = match evaluator.evaluate_stack(origin.generated_dir, origin.file, values) {
        Ok(result) => result,
        Err(why) => {
            out.failed.push((top.to_owned(), format!("{} cannot be evaluated: {why}", origin.file)));
            return;
        }
    };
    let mut chain = inherited.to_vec();
    chain.push(Arc::new(reads));
    for entry in entries {
        let what = format!("{} {:?} of {}", entry.kind, entry.name, origin.file);
        let (source, path) = match (&entry.source, &entry.path) {
            (Ok(source), Ok(path)) => (source.clone(), path.clone()),
            (Err(why), _) | (_, Err(why)) => {
                out.failed.push((top.to_owned(), format!("{what}: {why}")));
                continue;
            }
        };
        let base = if entry.no_dot { origin.generated_dir.to_owned() } else { join(origin.generated_dir, STACK_DIR) };
        let Some(generated) = snapshot::to_repo_relative(&snapshot::join(&snapshot::to_absolute(&base), &path)) else {
            out.failed.push((top.to_owned(), format!("{what}: path {path:?} leaves the repository")));
            continue;
        };
        // A relative source resolves from where the stack file really is (a nested stack's own folder).
        let local = is_local(&source).then(|| {
            let root = source.split_once("//").map_or(source.as_str(), |(root, _)| root);
            snapshot::to_repo_relative(&snapshot::join(&snapshot::to_absolute(origin.real_dir), root))
                .and_then(|p| snapshot.resolve(&p).ok())
        });
        let source_dir = match local {
            Some(Some(dir)) => Some(dir),
            Some(None) => {
                out.failed.push((top.to_owned(), format!("{what}: source {source:?} leaves the repository")));
                continue;
            }
            None => None,
        };
        if let Some(dir) = &source_dir {
            out.sources.insert(dir.clone());
        }
        let values = (!entry.values.is_null()).then_some(entry.values.clone());
        match (entry.kind.as_str(), &source_dir) {
            ("stack", Some(dir)) => {
                let nested = join(dir, STACK_FILE);
                if snapshot.entry(&nested).is_none() {
                    out.failed.push((top.to_owned(), format!("{what}: {dir} holds no {STACK_FILE}")));
                    continue;
                }
                let mut nested_chain = chain.clone();
                nested_chain.push(Arc::new(Reads { source_dirs: [dir.clone()].into(), ..Reads::default() }));
                let origin = Origin { file: &nested, generated_dir: &generated, real_dir: dir };
                expand(evaluator, out, &origin, values, &nested_chain, depth + 1, top);
            }
            ("stack", None) => out.failed.push((
                top.to_owned(),
                format!("{what}: a nested stack from the remote source {source:?} can't be listed statically"),
            )),
            (_, Some(dir)) => {
                let config = ["terragrunt.hcl", "terragrunt.hcl.json"]
                    .iter()
                    .map(|name| join(dir, name))
                    .find(|path| snapshot.entry(path).is_some());
                let Some(config) = config else {
                    out.failed.push((top.to_owned(), format!("{what}: {dir} holds no terragrunt.hcl")));
                    continue;
                };
                let mut reads = evaluator.evaluate_generated_unit(&generated, &config, values);
                // The source's files are copied to where the unit is generated: a read there is a read of them.
                reads.files = std::mem::take(&mut reads.files)
                    .into_iter()
                    .map(|f| match f.strip_prefix(&generated) {
                        Some(rest) if rest.starts_with('/') => format!("{dir}{rest}"),
                        _ => f,
                    })
                    .collect();
                reads.source_dirs.insert(dir.clone());
                reads.shared.extend(chain.iter().cloned());
                out.units.insert(
                    generated.clone(),
                    GeneratedUnit { path: generated, stack_file: top.to_owned(), source_dir, reads },
                );
            }
            (_, None) => {
                out.warnings.push(format!(
                    "{generated}: generated from the remote source {source:?}, whose config can't be read; it is \
                     selected by any changed file outside other units"
                ));
                let reads = Reads {
                    unresolved: vec![Unresolved { prefix: None, detail: format!("{what} has a remote source") }],
                    shared: chain.clone(),
                    has_source: true,
                    ..Reads::default()
                };
                out.units.insert(
                    generated.clone(),
                    GeneratedUnit { path: generated, stack_file: top.to_owned(), source_dir: None, reads },
                );
            }
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::memory_snapshot;

    #[test]
    fn units_are_generated_where_terragrunt_puts_them_with_their_values() {
        let snapshot = Arc::new(memory_snapshot(
            &[
                ("root.hcl", "locals {}\n"),
                (
                    "dev/app/terragrunt.stack.hcl",
                    "locals {\n  name = \"app\"\n}\nunit \"service\" {\n  source = \"../../units/service\"\n  path   = \"service\"\n  values = {\n    db_path = \"../db\"\n    name    = local.name\n  }\n}\nunit \"db\" {\n  source = \"../../units/db\"\n  path   = \"db\"\n}\nunit \"remote\" {\n  source = \"git::https://example.com/x.git//units/y\"\n  path   = \"remote\"\n}\nstack \"nested\" {\n  source = \"../../stacks/pair\"\n  path   = \"pair\"\n}\n",
                ),
                (
                    "units/service/terragrunt.hcl",
                    "include \"root\" {\n  path = find_in_parent_folders(\"root.hcl\")\n}\ndependency \"db\" {\n  config_path = values.db_path\n}\n",
                ),
                ("units/db/terragrunt.hcl", "inputs = {\n  x = file(\"schema.sql\")\n}\n"),
                ("units/db/schema.sql", "create table t ();\n"),
                ("stacks/pair/terragrunt.stack.hcl", "unit \"one\" {\n  source = \"../../units/db\"\n  path   = \"one\"\n}\n"),
            ],
            &[],
        ));
        let expansion = expand_stacks(&Evaluator::new(snapshot));
        assert!(expansion.failed.is_empty(), "{:?}", expansion.failed);
        let paths: Vec<&str> = expansion.units.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "dev/app/.terragrunt-stack/db",
                "dev/app/.terragrunt-stack/pair/.terragrunt-stack/one",
                "dev/app/.terragrunt-stack/remote",
                "dev/app/.terragrunt-stack/service",
            ]
        );
        let service = &expansion.units["dev/app/.terragrunt-stack/service"];
        assert_eq!(service.reads.all_dependencies(), ["dev/app/.terragrunt-stack/db".to_owned()].into());
        let files: BTreeSet<&String> = service.reads.all_files().collect();
        assert!(files.contains(&"root.hcl".to_owned()) && files.contains(&"dev/app/terragrunt.stack.hcl".to_owned()));
        let db = &expansion.units["dev/app/.terragrunt-stack/db"];
        assert!(db.reads.all_files().any(|f| f == "units/db/schema.sql"), "read where it is: {:?}", db.reads);
        assert!(expansion.sources.contains("units/db") && expansion.sources.contains("stacks/pair"));
        assert!(!expansion.units.values().any(|u| u.stack_file == "stacks/pair/terragrunt.stack.hcl"));
        assert_eq!(expansion.warnings.len(), 1, "the remote unit: {:?}", expansion.warnings);
    }
}
