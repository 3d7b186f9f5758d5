//! Benchmark of `deploy-runner changes` on synthetic repos (a bench binary, not criterion: it times whole CLI runs,
//! process start and git included, as CI experiences them).
//!
//! Goals for 10,000 units and 200 `_envcommon` files on a 2-core machine: under 1 s wall, at most 5x the time to
//! merely read the same HCL bytes out of git, peak RSS under 512 MB, cost linear in units.
//!
//! Run: `make bench-changes` (or `cargo bench -p deploy-runner-e2e --bench changes_scale`).
#![allow(missing_docs)]

use deploy_runner_e2e::SyntheticRepo;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the CLI (release for figures; the already-built debug profile for the smoke run) and returns its path.
fn cli_binary(release: bool) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // The debug smoke run builds what the tests build (the whole workspace's binaries: the same features, so
    // nothing is rebuilt); the release figures build only the CLI.
    let args: &[&str] = if release {
        &["build", "--quiet", "--release", "-p", "deploy-runner-cli"]
    } else {
        &["build", "--quiet", "--workspace", "--bins"]
    };
    let status = Command::new(env!("CARGO")).args(args).current_dir(&root).status().expect("cargo build");
    assert!(status.success());
    // This binary lives in <target>/<profile>/deps; the CLI of the same profile sits in <target>/<profile>.
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").join("deploy-runner")
}

/// Runs a command to completion, returning wall time and peak RSS (KiB, sampled from /proc every millisecond).
fn measure(mut command: Command, stdin: Option<Vec<u8>>) -> (Duration, u64, Vec<u8>) {
    let start = Instant::now();
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin");
        std::thread::spawn(move || pipe.write_all(&bytes))
    });
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let mut peak_kib = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    if let Some(w) = writer {
        w.join().expect("writer").expect("write stdin");
    }
    (elapsed, peak_kib, reader.join().expect("reader").expect("read stdout"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

struct Figures {
    units: usize,
    changes: Duration,
    read_only: Duration,
    peak_mib: f64,
    selected: usize,
}

fn prepare_repo(repo: &Path, shape: SyntheticRepo, edit_all: bool) {
    shape.write(repo).expect("generate");
    git(repo, &["init", "-q", "-b", "main"]);
    // No background auto-gc during measurements; pack explicitly below, as a CI clone would be.
    git(repo, &["config", "gc.auto", "0"]);
    git(repo, &["-c", "user.email=b@x", "-c", "user.name=b", "add", "-A"]);
    git(repo, &["-c", "user.email=b@x", "-c", "user.name=b", "commit", "-q", "-m", "base"]);
    let edited = if edit_all { shape.envcommon } else { 1 };
    for c in 0..edited {
        let path = repo.join(format!("_envcommon/c{}.hcl", (c + 7) % shape.envcommon));
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("# edited\n");
        std::fs::write(&path, text).expect("write");
    }
    git(repo, &["-c", "user.email=b@x", "-c", "user.name=b", "commit", "-q", "-a", "-m", "edit"]);
    git(repo, &["gc", "-q"]);
}

fn run_scale(binary: &Path, shape: SyntheticRepo, edit_all: bool) -> Figures {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    prepare_repo(repo, shape, edit_all);

    // The floor: reading the same HCL bytes out of git, with the same plumbing (ls-tree + one cat-file --batch).
    let mut read_samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let listing = git(repo, &["ls-tree", "-r", "--full-tree", "HEAD"]);
        let ids: String = listing
            .lines()
            .filter(|l| l.ends_with(".hcl") || l.ends_with(".json"))
            .filter_map(|l| l.split_whitespace().nth(2))
            .map(|id| format!("{id}\n"))
            .collect();
        let mut command = Command::new("git");
        command.arg("-C").arg(repo).args(["cat-file", "--batch"]);
        let (_, _, out) = measure(command, Some(ids.into_bytes()));
        assert!(!out.is_empty());
        read_samples.push(start.elapsed());
    }

    let mut samples = Vec::new();
    let mut peak = 0;
    let mut selected = 0;
    for _ in 0..RUNS {
        let mut command = Command::new(binary);
        command.args(["changes", "--format", "json", "--base", "HEAD~1", "--head", "HEAD", "--repo"]).arg(repo);
        let (elapsed, kib, out) = measure(command, None);
        let report: serde_json::Value = serde_json::from_slice(&out).expect("json report");
        selected = report["units"].as_array().map_or(0, Vec::len);
        samples.push(elapsed);
        peak = peak.max(kib);
    }
    Figures {
        units: shape.units,
        changes: median(samples),
        read_only: median(read_samples),
        peak_mib: peak as f64 / 1024.0,
        selected,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks benches to list themselves
    }
    if !args.iter().any(|a| a == "--bench" || a == "--generate") {
        // `cargo test --all-targets` runs benches as tests; a small repo checks the bench still works end to end.
        let f = run_scale(&cli_binary(false), SyntheticRepo { units: 96, envcommon: 8, ..SyntheticRepo::BENCH }, false);
        assert_eq!(f.selected, 12, "unit i includes _envcommon/c{{i % 8}}: 96 / 8 read the edited file");
        println!(
            "changes_scale: smoke run ok ({} units in {:?}); run `make bench-changes` for figures",
            f.units, f.changes
        );
        return;
    }
    if let Some(dir) = args.iter().position(|a| a == "--generate").and_then(|i| args.get(i + 1)) {
        // For profiling by hand: write the 10,000-unit repo (base commit, then one _envcommon edit) and stop.
        let repo = Path::new(dir);
        std::fs::create_dir_all(repo).expect("mkdir");
        prepare_repo(repo, SyntheticRepo::BENCH, false);
        return;
    }
    let binary = cli_binary(true);
    println!("deploy-runner changes, median of {RUNS} runs (whole CLI: process start, git, parse, evaluation)\n");
    println!("| units | _envcommon | edit | selected | changes wall | read HCL bytes | ratio | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut by_units = Vec::new();
    for (units, edit_all) in [(2_500, false), (5_000, false), (10_000, false), (10_000, true)] {
        let shape = SyntheticRepo { units, ..SyntheticRepo::BENCH };
        let f = run_scale(&binary, shape, edit_all);
        let ratio = f.changes.as_secs_f64() / f.read_only.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {:.0} ms | {:.0} ms | {:.1}x | {:.0} MiB |",
            f.units,
            shape.envcommon,
            if edit_all { "all _envcommon" } else { "one _envcommon" },
            f.selected,
            f.changes.as_secs_f64() * 1000.0,
            f.read_only.as_secs_f64() * 1000.0,
            ratio,
            f.peak_mib
        );
        if !edit_all {
            by_units.push((f.units, f.changes));
        }
        if units == 10_000 {
            let ok = f.changes < Duration::from_secs(1) && ratio <= 5.0 && f.peak_mib < 512.0;
            println!("|   | goal (<1 s, <=5x, <512 MiB) | | | {} | | | |", if ok { "met" } else { "MISSED" });
        }
    }
    let per_unit: Vec<String> =
        by_units.iter().map(|(u, d)| format!("{u}: {:.1} µs/unit", d.as_secs_f64() * 1e6 / *u as f64)).collect();
    println!("\nlinearity (time per unit): {}", per_unit.join(", "));
}
