//! The CI templates users copy: hardened the way a reviewer would check them. actionlint and the CircleCI schema
//! run in `make lint`; these checks are what those tools don't enforce, and they run with every `make test`.

mod common;

use common::*;
use std::path::PathBuf;

/// Every GitHub Actions workflow in the repository (the templates and the project's own).
fn workflows() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in
        [".github/workflows", "examples/infrastructure-live/.github/workflows", "examples/app-ci/.github/workflows"]
    {
        let Ok(entries) = std::fs::read_dir(repo_file(dir)) else { continue };
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "yml" || e == "yaml") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// The lines of every `run:` script of a workflow (block scalars and one-liners), with their line numbers.
fn run_script_lines(text: &str) -> Vec<(usize, String)> {
    let mut scripts = Vec::new();
    let mut block_indent: Option<usize> = None;
    for (number, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(base) = block_indent {
            if line.trim().is_empty() || indent > base {
                scripts.push((number + 1, line.to_owned()));
                continue;
            }
            block_indent = None;
        }
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(rest) = trimmed.strip_prefix("run:") {
            if rest.trim().starts_with('|') || rest.trim().starts_with('>') {
                block_indent = Some(indent);
            } else {
                scripts.push((number + 1, rest.to_owned()));
            }
        }
    }
    scripts
}

#[test]
fn workflows_are_hardened() {
    let files = workflows();
    assert!(files.len() >= 2, "the templates are found: {files:?}");
    let pinned = regex::Regex::new(r"uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d").expect("regex");
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains("\npermissions:"), "{name}: a top-level permissions block (least privilege)");
        for line in
            text.lines().filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:"))
        {
            assert!(
                pinned.is_match(line),
                "{name}: actions are pinned by full commit SHA with the version noted: {line}"
            );
        }
        if text.contains("actions/checkout@") {
            assert!(text.contains("persist-credentials: false"), "{name}: checkout keeps no token in .git/config");
        }
        for (number, line) in run_script_lines(&text) {
            assert!(!line.contains("${{"), "{name}:{number}: event data reaches scripts only through env: {line}");
        }
        if text.contains("releases/download") {
            assert!(text.contains("sha256sum -c"), "{name}: a downloaded CLI is checked against its SHA-256");
        }
    }
}

#[test]
fn the_circleci_template_verifies_what_it_downloads() {
    let text = std::fs::read_to_string(repo_file("examples/app-ci/.circleci/config.yml")).expect("read");
    assert!(text.contains("sha256sum -c"), "the CLI is checked against its published SHA-256");
    assert!(!text.contains("| sudo tar") && !text.contains("| tar"), "nothing is piped from curl into tar");
}

#[test]
fn the_run_script_scanner_sees_inline_expressions() {
    // The check above can fail: an expression in a block script and in a one-liner are both found.
    let bad = "jobs:\n  x:\n    steps:\n      - run: |\n          echo \"${{ github.head_ref }}\"\n      - run: echo ${{ x }}\n      - uses: a/b@v1\n";
    let lines: Vec<String> = run_script_lines(bad).into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines.iter().filter(|l| l.contains("${{")).count(), 2, "{lines:?}");
}
