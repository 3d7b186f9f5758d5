//! The release artifacts as the CI templates consume them: the archive `make dist` produces (through
//! `scripts/dist.sh`, the same script the release workflow runs) has the name the templates download, a checksum
//! file `sha256sum -c` accepts, and the CLI at the top level, where the templates extract it from.

mod common;

use common::*;
use std::process::Command;

/// The archive names the templates download (`archive=...`), per template.
fn downloaded_archives() -> Vec<(String, String)> {
    let pattern = regex::Regex::new(r"archive=(deploy-runner-[a-z0-9_-]+\.tar\.gz)").expect("regex");
    [
        "examples/infrastructure-live/.github/workflows/pipelines.yml",
        "examples/app-ci/.github/workflows/app.yml",
        "examples/app-ci/.circleci/config.yml",
    ]
    .iter()
    .map(|template| {
        let text = std::fs::read_to_string(repo_file(template)).expect("template");
        let archive =
            pattern.captures(&text).unwrap_or_else(|| panic!("{template} downloads no archive"))[1].to_owned();
        ((*template).to_owned(), archive)
    })
    .collect()
}

#[test]
fn the_archive_make_dist_builds_is_what_the_templates_download() {
    let host = String::from_utf8(Command::new("rustc").arg("-vV").output().expect("rustc").stdout).expect("utf8");
    let target = host.lines().find_map(|l| l.strip_prefix("host: ")).expect("host").to_owned();
    ensure_binaries_built();
    let out = tempfile::tempdir().expect("tempdir");
    // The debug binaries stand in for the release ones: packaging is what is under test, and it is the same script.
    let packaged = Command::new(repo_file("scripts/dist.sh"))
        .arg(&target)
        .arg(bin_dir())
        .arg(out.path())
        .output()
        .expect("dist.sh");
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));
    let archive = format!("deploy-runner-{target}.tar.gz");
    for (template, downloaded) in downloaded_archives() {
        if target == "x86_64-unknown-linux-gnu" {
            assert_eq!(downloaded, archive, "{template} downloads what the release publishes");
        }
    }
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{archive}.sha256")])
        .current_dir(out.path())
        .output()
        .expect("sha256sum");
    assert!(check.status.success(), "the checksum file verifies: {}", String::from_utf8_lossy(&check.stdout));
    // Exactly the templates' extraction: only the CLI, into a bin folder.
    let bin = tempfile::tempdir().expect("tempdir");
    let extract = Command::new("tar")
        .arg("-xzf")
        .arg(out.path().join(&archive))
        .arg("-C")
        .arg(bin.path())
        .arg("deploy-runner")
        .status()
        .expect("tar");
    assert!(extract.success());
    let version = Command::new(bin.path().join("deploy-runner")).arg("--version").output().expect("run the CLI");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("deploy-runner "), "{version:?}");
    let listing = Command::new("tar").arg("-tzf").arg(out.path().join(&archive)).output().expect("tar");
    assert_eq!(String::from_utf8_lossy(&listing.stdout), "deploy-runner\ndeploy-runner-task\nREADME.md\n");
    // The release workflow builds with the same make target.
    let release = std::fs::read_to_string(repo_file(".github/workflows/release.yml")).expect("release workflow");
    assert!(release.contains("make dist DIST_TARGET="), "the workflow packages with make dist");
}
