//! Local module calls in Terraform code: `module "x" { source = "../modules/x" }`, followed recursively.
//!
//! Terraform loads every `*.tf`, `*.tf.json`, `*.tofu` and `*.tofu.json` file of a folder; a `module` block whose
//! `source` is a local path (Terraform's rule: it starts with `./` or `../`) pulls in another folder, whose own
//! local calls pull in more. Change detection counts those folders as read by the unit; the deploy task refuses
//! a unit whose local module tree leaves the clone. Sources are literal strings (Terraform allows nothing else),
//! so this is exact and static: nothing is evaluated.

use crate::snapshot::{self, Snapshot};
use hcl::{Body, Expression, Structure};
use std::collections::{BTreeSet, VecDeque};

/// File names Terraform (and OpenTofu) load from a module folder.
pub const TERRAFORM_EXTENSIONS: [&str; 4] = [".tf", ".tf.json", ".tofu", ".tofu.json"];

/// What following local module calls found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleTree {
    /// Every folder reached through local module calls (repo-relative, real paths), not counting the start.
    pub dirs: BTreeSet<String>,
    /// Local sources that leave the repository: `<file>: module "<name>" source "<source>"`.
    pub escapes: Vec<String>,
    /// Terraform files that could not be parsed, so their calls are unknown: `<file>: <why>`.
    pub unparsable: Vec<String>,
}

/// True for a file Terraform loads from its folder.
pub fn is_terraform_file(path: &str) -> bool {
    TERRAFORM_EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

/// True for a source Terraform treats as a local path.
pub fn is_local_source(source: &str) -> bool {
    source.starts_with("./") || source.starts_with("../") || source == "." || source == ".."
}

/// Follows the local module calls of the Terraform files directly in each of `start_dirs`, recursively.
pub fn local_module_tree<'a>(snapshot: &Snapshot, start_dirs: impl IntoIterator<Item = &'a str>) -> ModuleTree {
    let mut tree = ModuleTree::default();
    let mut queue: VecDeque<String> = start_dirs.into_iter().map(str::to_owned).collect();
    let mut visited: BTreeSet<String> = queue.iter().cloned().collect();
    while let Some(dir) = queue.pop_front() {
        for file in snapshot.files_in(&dir).iter().filter(|f| is_terraform_file(f)) {
            let calls = match module_sources(snapshot, file) {
                Ok(calls) => calls,
                Err(why) => {
                    tree.unparsable.push(format!("{file}: {why}"));
                    continue;
                }
            };
            for (name, source) in calls.into_iter().filter(|(_, source)| is_local_source(source)) {
                let escape = || format!("{file}: module {name:?} source {source:?}");
                // A local path may still use go-getter's `//` subfolder syntax: the whole tree before it is copied.
                let root = source.split_once("//").map_or(source.as_str(), |(root, _)| root);
                let lexical = snapshot::to_repo_relative(&snapshot::join(&snapshot::to_absolute(&dir), root));
                let Some(real) = lexical.and_then(|p| snapshot.resolve(&p).ok()) else {
                    tree.escapes.push(escape());
                    continue;
                };
                tree.dirs.insert(real.clone());
                if visited.insert(real.clone()) {
                    queue.push_back(real);
                }
            }
        }
    }
    tree
}

/// The `(name, source)` of every `module` block in a Terraform file (native or JSON syntax); sources that are
/// not literal strings are skipped (Terraform rejects them).
pub fn module_sources(snapshot: &Snapshot, file: &str) -> Result<Vec<(String, String)>, String> {
    let bytes = snapshot.read(file).map_err(|e| e.to_string())?.ok_or("cannot be read")?;
    let text = String::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_owned())?;
    if file.ends_with(".json") {
        return json_module_sources(&text);
    }
    let body: Body = crate::parsed::parse_hcl(&text)?;
    let mut calls = Vec::new();
    for structure in body.iter() {
        let Structure::Block(block) = structure else { continue };
        if block.identifier.as_str() != "module" {
            continue;
        }
        let name = block.labels.first().map(|l| l.as_str().to_owned()).unwrap_or_default();
        for item in block.body.iter() {
            if let Structure::Attribute(attr) = item {
                if attr.key.as_str() == "source" {
                    if let Expression::String(source) = &attr.expr {
                        calls.push((name.clone(), source.clone()));
                    }
                }
            }
        }
    }
    Ok(calls)
}

/// `{"module": {"name": {"source": "..."}}}`, where each level may also be a list of such objects.
fn json_module_sources(text: &str) -> Result<Vec<(String, String)>, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    fn objects(value: &Value) -> Vec<&serde_json::Map<String, Value>> {
        match value {
            Value::Object(map) => vec![map],
            Value::Array(items) => items.iter().flat_map(objects).collect(),
            _ => Vec::new(),
        }
    }
    let mut calls = Vec::new();
    for modules in objects(&value).into_iter().filter_map(|top| top.get("module")).flat_map(objects) {
        for (name, blocks) in modules {
            for block in objects(blocks) {
                if let Some(Value::String(source)) = block.get("source") {
                    calls.push((name.clone(), source.clone()));
                }
            }
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::memory_snapshot;

    #[test]
    fn follows_local_calls_recursively_and_reports_escapes() {
        let snapshot = memory_snapshot(
            &[
                ("live/dev/app/main.tf", "module \"app\" {\n  source = \"../../../modules/app\"\n}\nmodule \"remote\" {\n  source = \"git::https://x/y.git\"\n}\n"),
                ("modules/app/main.tf", "module \"db\" {\n  source = \"../db//sub\"\n}\n"),
                ("modules/app/extra.tf.json", r#"{"module": {"cache": {"source": "./cache"}}}"#),
                ("modules/app/cache/main.tf", "module \"loop\" {\n  source = \"../\"\n}\n"),
                ("modules/db/sub/main.tf", "resource \"x\" \"y\" {}\n"),
                ("live/dev/evil/main.tf", "module \"out\" {\n  source = \"../../../../etc\"\n}\n"),
                ("live/dev/linked/main.tf", "module \"l\" {\n  source = \"./link\"\n}\n"),
                ("live/dev/broken/main.tf", "module \"b\" {\n"),
            ],
            &[("live/dev/linked/link", "/etc")],
        );
        let tree = local_module_tree(&snapshot, ["live/dev/app"]);
        assert_eq!(
            tree.dirs.iter().map(String::as_str).collect::<Vec<_>>(),
            ["modules/app", "modules/app/cache", "modules/db"]
        );
        assert!(tree.escapes.is_empty() && tree.unparsable.is_empty(), "{tree:?}");

        let evil = local_module_tree(&snapshot, ["live/dev/evil"]);
        assert_eq!(evil.escapes, ["live/dev/evil/main.tf: module \"out\" source \"../../../../etc\""]);
        let linked = local_module_tree(&snapshot, ["live/dev/linked"]);
        assert_eq!(linked.escapes.len(), 1, "a symlink out of the repo is an escape: {linked:?}");
        let broken = local_module_tree(&snapshot, ["live/dev/broken"]);
        assert_eq!(broken.unparsable.len(), 1);
    }
}
