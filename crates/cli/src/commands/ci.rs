//! `deploy-runner ci`: what a user's CI runs on every push to infrastructure-live. Detect the changed units, plan
//! them all as a rollout in deploy order, notify Slack, and on a push to an apply ref apply the same commit SHA that
//! was planned, in deploy order, halting at the first failed account. A pull request never applies.

use super::backend::{unix_seconds, Backend, RolloutReport};
use super::bases::{account_bases, detect_per_account, AccountBase, PushBase};
use super::changes::short;
use super::runs::{print_summary, unit_counts};
use crate::cli::{CiArgs, CiEvent, Format};
use crate::output::{print_json, resolve_format};
use anyhow::Context;
use clap::ValueEnum;
use deploy_runner_changes::git::GitRepo;
use deploy_runner_changes::{detect_changes, AccountOrder, ChangeReport, DetectOptions};
use deploy_runner_gate::{ActionRequest, ChangeKind, Request, Rollout, RolloutMode, RolloutUnit, NO_LEDGER_ENTRY};
use deploy_runner_notify::{post, RetryPolicy, SlackMessage};
use deploy_runner_rollout::LedgerView;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};

/// The apply refs when the backend is AWS (the invoker's policy is not visible here): `main`. The invoker's gate
/// still decides; this only chooses whether to ask.
const DEFAULT_APPLY_REFS: [&str; 1] = ["main"];

/// Runs git in `repo` and returns its trimmed stdout; callers pass only SHAs or fixed arguments.
fn git_output(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git").arg("-C").arg(repo).args(args).output().context("cannot run git")?;
    if !output.status.success() {
        anyhow::bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Reads the push's `before` from `GITHUB_EVENT_PATH`, when CI gave one (`None` without an event file).
fn event_before() -> anyhow::Result<Option<String>> {
    let Some(path) = std::env::var_os("GITHUB_EVENT_PATH") else { return Ok(None) };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read GITHUB_EVENT_PATH {}", Path::new(&path).display()))?;
    let event: Value = serde_json::from_str(&text).context("GITHUB_EVENT_PATH is not JSON")?;
    Ok(event["before"].as_str().map(str::to_owned))
}

/// The push's own base: `--base`; else the event's `before` (so a push of several commits is covered); else
/// `HEAD^`. A new branch's `before` is all zeros and a shallow checkout may lack it: then there is none.
fn push_base(args: &CiArgs, repo: &GitRepo) -> anyhow::Result<PushBase> {
    if let Some(base) = &args.base {
        return Ok(PushBase::Usable(repo.resolve_commit(base)?));
    }
    let (candidate, missing) = match event_before()? {
        Some(before) if before.trim_start_matches('0').is_empty() => {
            return Ok(PushBase::Missing("the push created the branch (its `before` is all zeros)".into()))
        }
        Some(before) => {
            let why = format!("the push's `before` {before} is not in this checkout (fetch-depth: 0)");
            (before, why)
        }
        None => (format!("{}^", args.head), format!("{} has no parent commit", args.head)),
    };
    Ok(match repo.resolve_commit(&candidate) {
        Ok(sha) => PushBase::Usable(sha),
        Err(_) => PushBase::Missing(missing),
    })
}

/// The base of a run that applies nothing: the push's base (falling back to `HEAD^` for a new branch, as a plan
/// needs no ledger), or for a pull request the merge-base with `origin/<apply ref>`.
fn resolve_base(args: &CiArgs, repo: &GitRepo, apply_ref: &str) -> anyhow::Result<String> {
    match args.event {
        CiEvent::Push => match push_base(args, repo)? {
            PushBase::Usable(sha) => Ok(sha),
            PushBase::Missing(_) => Ok(format!("{}^", args.head)),
        },
        CiEvent::PullRequest => {
            if let Some(base) = &args.base {
                return Ok(base.clone());
            }
            // Both sides are resolved to SHAs first, so nothing option-like ever reaches `git merge-base`.
            let target = format!("origin/{apply_ref}");
            let target_sha = repo
                .resolve_commit(&target)
                .with_context(|| format!("cannot find {target}; fetch it (fetch-depth: 0)"))?;
            let head_sha = repo.resolve_commit(&args.head)?;
            git_output(&args.repo, &["merge-base", &target_sha, &head_sha])
                .with_context(|| format!("no merge-base with {target}; fetch more history (fetch-depth: 0)"))
        }
    }
}

/// The accounts of `accounts.json` at `head`.
fn accounts_at(repo: &GitRepo, head: &str) -> anyhow::Result<Vec<String>> {
    let bytes = repo.file_at(head, "accounts.json").with_context(|| format!("no accounts.json at {head}"))?;
    Ok(AccountOrder::parse(&bytes, "accounts.json")?.0.into_keys().collect())
}

/// The rollout of every selected unit. A deleted unit is planned/destroyed from where it still exists: its
/// account's base (`sources`), else the report's.
fn rollout_request(
    actor: &str,
    request_id: Option<String>,
    repo: &str,
    selection: &Selection,
    mode: RolloutMode,
    parallelism: Option<u32>,
) -> Request {
    let report = &selection.report;
    let units = report
        .units
        .iter()
        .map(|u| RolloutUnit {
            path: u.path.clone(),
            change: u.change,
            source_ref: (u.change == ChangeKind::Deleted)
                .then(|| selection.sources.get(&u.account).unwrap_or(&report.base).clone()),
            // What detection found it waits for; the others of its wave may run beside it.
            depends_on: (u.change != ChangeKind::Deleted).then(|| u.depends_on.clone()),
        })
        .collect();
    Request {
        actor: actor.to_owned(),
        request_id,
        body: ActionRequest::Rollout(Rollout {
            repo: repo.to_owned(),
            git_ref: report.head.clone(),
            mode,
            units,
            apply_ref: (mode == RolloutMode::Apply).then(|| selection.apply_ref.clone()).flatten(),
            deployed_commit: None,
            ledger_bases: (mode == RolloutMode::Apply).then(|| selection.ledger_bases()).flatten(),
            detected_from: (mode == RolloutMode::Apply).then(|| selection.detected_from()).flatten(),
            parallelism,
        }),
    }
}

impl Selection {
    /// The bases of the accounts that have units in this selection (`None` off an apply ref).
    fn bases_with_units(&self) -> Option<impl Iterator<Item = &AccountBase>> {
        let bases = self.bases.as_ref()?;
        let accounts: Vec<&str> = self.report.units.iter().map(|u| u.account.as_str()).collect();
        Some(bases.iter().filter(move |b| accounts.contains(&b.account.as_str())))
    }

    /// What each account with units was detected from, as the ledger said (`none`: no entry): the apply starts
    /// only while the ledger still says so.
    fn ledger_bases(&self) -> Option<BTreeMap<String, String>> {
        Some(
            self.bases_with_units()?
                .map(|b| (b.account.clone(), b.deployed.clone().unwrap_or_else(|| NO_LEDGER_ENTRY.to_owned())))
                .collect(),
        )
    }

    /// The commit each account with units was detected from.
    fn detected_from(&self) -> Option<BTreeMap<String, String>> {
        Some(self.bases_with_units()?.filter_map(|b| Some((b.account.clone(), b.base.clone()?))).collect())
    }
}

/// What a run deploys: the units, where each account's were measured from, and the apply ref it is recorded under.
struct Selection {
    report: ChangeReport,
    /// Each account's base commit (deleted units' sources).
    sources: BTreeMap<String, String>,
    /// Per account, for a push to an apply ref.
    bases: Option<Vec<AccountBase>>,
    /// The apply ref the ledger and lock are kept under (a push to an apply ref).
    apply_ref: Option<String>,
}

/// Posts to `SLACK_WEBHOOK_URL` when set; a failure is reported and never fails the pipeline.
fn notify(args: &CiArgs, repo_url: &str, stage: &str, report: &RolloutReport) {
    let Ok(webhook) = std::env::var("SLACK_WEBHOOK_URL") else { return };
    if webhook.trim().is_empty() {
        return;
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let url = match (env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID")) {
        (Some(server), Some(repo), Some(run)) => format!("{server}/{repo}/actions/runs/{run}"),
        _ => repo_url.to_owned(),
    };
    let units: Vec<String> = report
        .waves
        .iter()
        .flat_map(|w| w.units.iter())
        .map(|u| {
            let counts = unit_counts(u).map(|c| format!(" {c}")).unwrap_or_default();
            format!("{} {}{counts}", u["path"].as_str().unwrap_or("?"), u["status"].as_str().unwrap_or("?"))
        })
        .collect();
    let message = SlackMessage {
        branch: args.branch.clone(),
        status: format!("{stage} {}", report.outcome),
        url,
        repo: env("GITHUB_REPOSITORY").unwrap_or_else(|| repo_url.to_owned()),
        actor: args.backend.actor.clone(),
        account: None,
        run_id: Some(report.run_id.clone()).filter(|r| !r.is_empty()),
        summary: Some(units.join("\n")).filter(|s| !s.is_empty()),
    };
    match post(webhook.trim(), &message, &RetryPolicy::default()) {
        Ok(_) => errln!("deploy-runner: notified Slack: {}", message.status),
        Err(e) => errln!("deploy-runner: warning: the Slack notification failed: {e}"),
    }
}

/// Warns when the repo's accounts.json orders accounts differently from the policy's `deploy_order`, which wins.
/// `deploy_order` is the policy's order (local), or the order of the waves the invoker planned (AWS).
fn warn_on_order_mismatch(deploy_order: &[&str], report: &ChangeReport) {
    let mut repo_order: Vec<&str> = Vec::new();
    for unit in &report.units {
        if !repo_order.contains(&unit.account.as_str()) {
            repo_order.push(&unit.account);
        }
    }
    let by_policy: Vec<&str> = deploy_order.iter().copied().filter(|a| repo_order.contains(a)).collect();
    if by_policy != repo_order {
        errln!(
            "deploy-runner: warning: accounts.json orders the accounts {} but the policy deploys {}; the policy wins",
            repo_order.join(" -> "),
            by_policy.join(" -> ")
        );
    }
}

fn print_changes(report: &ChangeReport, bases: Option<&[AccountBase]>) {
    match bases {
        None => errln!("changes {}..{}", short(&report.base), short(&report.head)),
        Some(bases) => {
            errln!("changes up to {}, per account:", short(&report.head));
            for b in bases {
                let from = match (b.source, &b.base, &b.deployed) {
                    ("deployed", _, _) => "already deployed: nothing to apply".to_owned(),
                    ("ahead", _, Some(d)) => format!("has {}, newer than this push: nothing to apply", short(d)),
                    ("unapplied", Some(base), Some(d)) => format!(
                        "has {} but never this push's changes: from {} (this push's base)",
                        short(d),
                        short(base)
                    ),
                    ("ledger", Some(base), _) => format!("from {} (last deployed)", short(base)),
                    ("baseline", Some(base), _) => {
                        format!("from {} (where its first, unfinished deployment started)", short(base))
                    }
                    ("all", _, _) => "every unit (--all)".to_owned(),
                    (_, Some(base), _) => format!("from {} (the push's base: no deployment recorded)", short(base)),
                    _ => String::new(),
                };
                errln!("  {:<8} {from}", b.account);
            }
        }
    }
    for unit in &report.units {
        errln!("  {:<8} {:<10} {:<50} {}", unit.account, unit.change.as_str(), unit.path, unit.reasons.join(", "));
    }
    for skipped in &report.skipped {
        errln!("  skipped             {:<50} {}", skipped.path, skipped.reason);
    }
    for warning in &report.warnings {
        errln!("warning: {warning}");
    }
}

/// Runs the pipeline.
pub fn run(args: CiArgs) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_args(&args.backend)?;
    let apply_refs: Vec<String> = match backend.local_policy() {
        Some(policy) => {
            let from_policy = &policy.document().apply_refs;
            if !args.apply_refs.is_empty() && &args.apply_refs != from_policy {
                errln!(
                    "deploy-runner: warning: --apply-ref is for the AWS backend; the local backend applies on the \
                     policy's apply_refs ({})",
                    from_policy.join(", ")
                );
            }
            from_policy.clone()
        }
        None if !args.apply_refs.is_empty() => args.apply_refs.clone(),
        None => DEFAULT_APPLY_REFS.iter().map(|r| (*r).to_owned()).collect(),
    };
    let repo = GitRepo::open(&args.repo)?;
    let repo_url = match &args.repo_url {
        Some(url) => url.clone(),
        None => {
            git_output(&args.repo, &["remote", "get-url", "origin"]).context("no --repo-url and no origin remote")?
        }
    };
    let applies = args.event == CiEvent::Push && apply_refs.contains(&args.branch);
    let options = DetectOptions { with_dependents: args.with_dependents, ..DetectOptions::default() };
    let selection = if applies {
        select_from_ledger(&args, &backend, &repo, &repo_url, &options)?
    } else {
        let base = resolve_base(&args, &repo, apply_refs.first().map_or("main", String::as_str))?;
        let report = detect_changes(&repo, &base, &args.head, &options)?;
        Selection { report, sources: BTreeMap::new(), bases: None, apply_ref: None }
    };
    let report = &selection.report;
    print_changes(report, selection.bases.as_deref());
    if let Some(policy) = backend.local_policy() {
        warn_on_order_mismatch(&policy.accounts_in_deploy_order(), report);
    }
    let ci_id = std::env::var("GITHUB_RUN_ID").ok().filter(|v| !v.is_empty()).map(|run| {
        let attempt = std::env::var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|_| "1".into());
        format!("gh-{run}-{attempt}")
    });
    // The process id keeps two runs of the same commit in the same second apart (a push to two branches).
    let stamp = format!("{}-{}-{}", short(&report.head), unix_seconds(), std::process::id());
    let event = args.event.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
    let mut summary = json!({"event": event, "branch": args.branch,
                             "base": report.base, "head": report.head, "changes": report, "plan": null,
                             "apply": null, "applied": false});
    if let Some(bases) = &selection.bases {
        summary["bases"] = serde_json::to_value(bases)?;
    }
    if report.units.is_empty() {
        errln!("\nno units selected: nothing to plan or apply");
        summary["succeeded"] = json!(true);
        return finish(&args, &summary, None);
    }

    errln!("\n== plan: {} unit(s) at {} ==", report.units.len(), short(&report.head));
    let pipeline =
        Pipeline { args: &args, backend: &backend, selection: &selection, repo_url: &repo_url, ci_id, stamp };
    let plan = pipeline.stage(RolloutMode::Plan)?;
    summary["plan"] = serde_json::to_value(&plan)?;
    if backend.local_policy().is_none() && !plan.waves.is_empty() {
        // The server's order only shows once it has planned the waves.
        let planned: Vec<&str> = plan.waves.iter().map(|w| w.account.as_str()).collect();
        warn_on_order_mismatch(&planned, report);
    }

    if !plan.succeeded() || !applies {
        if !applies {
            errln!("\nno apply: {event} of {} is not a push to an apply ref", args.branch);
        } else {
            errln!("\nno apply: a plan did not succeed");
        }
        summary["succeeded"] = json!(plan.succeeded());
        return finish(&args, &summary, Some(&plan));
    }

    errln!("\n== apply: deploy order, at the planned commit {} ==", report.head);
    let mut apply = pipeline.stage(RolloutMode::Apply)?;
    // A newer push deployed between detection and the apply (its rollout held the lock meanwhile): detect again
    // from the ledger as it is now, and apply what is still missing, if anything.
    let mut redetected: Option<Selection> = None;
    for round in 1..=MAX_REDETECTIONS {
        let moved =
            apply.outcome == "denied" && apply.message.as_deref().is_some_and(|m| m.starts_with("ledger_moved"));
        if !moved {
            break;
        }
        errln!("deploy-runner: {}; detecting again", apply.message.as_deref().unwrap_or_default());
        let fresh = select_from_ledger(&args, &backend, &repo, &repo_url, &options)?;
        print_changes(&fresh.report, fresh.bases.as_deref());
        if fresh.report.units.is_empty() {
            apply = RolloutReport::superseded("every account already has this commit or a newer one".into());
            break;
        }
        // Another request than the first apply's: its own request id (a retried CI job repeats the same rounds).
        let ci_id = pipeline.ci_id.as_ref().map(|id| format!("{id}-redetected{round}"));
        // Local run ids must differ from the first stages' (a plan at another head is another run).
        let stamp = format!("{}-{}-{}-{round}", short(&fresh.report.head), unix_seconds(), std::process::id());
        let again = Pipeline { selection: &fresh, ci_id, stamp, ..pipeline.clone() };
        if fresh.report.head != report.head {
            // Applied at another commit than the one planned: plan that one first.
            errln!("\n== plan: {} unit(s) at {} ==", fresh.report.units.len(), short(&fresh.report.head));
            let replan = again.stage(RolloutMode::Plan)?;
            summary["plan"] = serde_json::to_value(&replan)?;
            if !replan.succeeded() {
                apply = RolloutReport {
                    run_id: replan.run_id.clone(),
                    outcome: "failed".into(),
                    message: Some(format!("the plan at {} did not succeed: nothing applied", fresh.report.head)),
                    waves: Vec::new(),
                };
                redetected = Some(fresh);
                break;
            }
            errln!("\n== apply: deploy order, at the planned commit {} ==", fresh.report.head);
        }
        apply = again.stage(RolloutMode::Apply)?;
        redetected = Some(fresh);
    }
    if let Some(fresh) = &redetected {
        summary["head"] = json!(fresh.report.head);
        summary["changes"] = serde_json::to_value(&fresh.report)?;
        summary["bases"] = serde_json::to_value(&fresh.bases)?;
    }
    if !apply.succeeded() && apply.outcome != "superseded" {
        let selection = redetected.as_ref().unwrap_or(&selection);
        if let Some(superseded) = superseded_by_newer(&args, &backend, &repo, &repo_url, selection, &apply)? {
            errln!("\nno apply needed: {superseded}");
            apply.outcome = "superseded".into();
            apply.message = Some(superseded);
        } else if !apply.run_id.is_empty() {
            errln!("resume after the fix with: deploy-runner resume --run {}", apply.run_id);
        }
    }
    summary["apply"] = serde_json::to_value(&apply)?;
    summary["applied"] = json!(apply.succeeded());
    summary["succeeded"] = json!(apply.succeeded() || apply.outcome == "superseded");
    finish(&args, &summary, Some(&apply))
}

/// How many times an apply detects again after the ledger moved under it (each time, a newer push deployed).
const MAX_REDETECTIONS: usize = 5;

/// What both stages of one pipeline run share.
#[derive(Clone)]
struct Pipeline<'a> {
    args: &'a CiArgs,
    backend: &'a Backend,
    selection: &'a Selection,
    repo_url: &'a str,
    /// The CI run's identity, when CI gave one: each stage's request_id, so a retried job lands on the same run.
    ci_id: Option<String>,
    /// The head commit and a timestamp: local run ids.
    stamp: String,
}

impl Pipeline<'_> {
    /// Runs every selected unit as one rollout in `mode`, prints its summary and tells Slack.
    fn stage(&self, mode: RolloutMode) -> anyhow::Result<RolloutReport> {
        let name = mode.as_str();
        let request_id = self.ci_id.as_ref().map(|id| format!("{id}-{name}"));
        let request = rollout_request(
            &self.args.backend.actor,
            request_id.clone(),
            self.repo_url,
            self.selection,
            mode,
            self.args.parallelism,
        );
        let mut report = self.backend.rollout(&request, &format!("ci-{name}-{}", self.stamp))?;
        // CI's request ids are predictable, so someone holding CI's credential could claim one first with another
        // request. The control plane refuses to pass that off as ours; asking again under a fresh id defeats the
        // squat (a genuine retry of this job is the same request, and finds its run instead).
        if let (Some(id), Some(message)) = (&request_id, &report.message) {
            if report.outcome == "denied" && message.starts_with("request_id_conflict") {
                let fresh = format!("{id}-{}", unique_suffix());
                errln!("deploy-runner: warning: request_id {id} names another request; asking again as {fresh}");
                let retry = rollout_request(
                    &self.args.backend.actor,
                    Some(fresh),
                    self.repo_url,
                    self.selection,
                    mode,
                    self.args.parallelism,
                );
                report = self.backend.rollout(&retry, &format!("ci-{name}-{}", self.stamp))?;
            }
        }
        print_summary(name, &report);
        notify(self.args, self.repo_url, name, &report);
        Ok(report)
    }
}

/// A suffix no one can guess ahead of time: the clock's nanoseconds and this process's id.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Prints the summary; the exit status comes from the last stage that ran (`None`: nothing to run): 0, 1 when a
/// deployment failed, 3 when the gate denied it.
fn finish(args: &CiArgs, summary: &Value, last_stage: Option<&RolloutReport>) -> anyhow::Result<ExitCode> {
    let succeeded = last_stage.is_none_or(|r| r.succeeded() || r.outcome == "superseded");
    if resolve_format(args.format) == Format::Json {
        print_json(summary)?;
    } else {
        outln!("\nci {}: {}", summary["branch"].as_str().unwrap_or(""), if succeeded { "succeeded" } else { "FAILED" });
    }
    Ok(match last_stage {
        _ if succeeded => ExitCode::SUCCESS,
        Some(report) if report.outcome == "denied" => ExitCode::from(crate::EXIT_DENIED),
        _ => ExitCode::from(crate::EXIT_FAILED),
    })
}

/// Waits (up to `--max-wait`) while another apply rollout of the repo and branch holds the lock, so the ledger read
/// is the one this run applies over. `Ok(None)` when there is no ledger to read, with a warning why.
fn settled_ledger(args: &CiArgs, backend: &Backend, repo_url: &str) -> anyhow::Result<Option<LedgerView>> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        let view = match backend.ledger(&args.backend.actor, repo_url, Some(&args.branch))? {
            Ok(view) => view,
            Err(why) => {
                errln!("deploy-runner: warning: no deployment ledger ({why}); diffing from the push's base");
                return Ok(None);
            }
        };
        let Some(lock) = &view.lock else { return Ok(Some(view)) };
        if started.elapsed() >= backend.max_wait() {
            // The apply itself waits again (and gives up) the same way.
            return Ok(Some(view));
        }
        if !std::mem::replace(&mut told, true) {
            errln!(
                "deploy-runner: queued: apply rollout {} (commit {}) holds the apply lock of {}; waiting up to {}s",
                lock.run_id,
                short(&lock.commit),
                args.branch,
                backend.max_wait().as_secs()
            );
        }
        std::thread::sleep(backend.lock_poll());
    }
}

/// A push to an apply ref: each account's units since what it last deployed (see [`super::bases`]).
fn select_from_ledger(
    args: &CiArgs,
    backend: &Backend,
    repo: &GitRepo,
    repo_url: &str,
    options: &DetectOptions,
) -> anyhow::Result<Selection> {
    let mut head = repo.resolve_commit(&args.head)?;
    let ledger = settled_ledger(args, backend, repo_url)?;
    let push = push_base(args, repo)?;
    let accounts = accounts_at(repo, &head)?;
    let mut bases = account_bases(repo, &head, &accounts, ledger.as_ref(), &push, args.all)?;
    if let Some(newer) = unapplied_head(repo, &bases)? {
        // Accounts that have a newer commit but never got this push's changes: apply them there, at that commit
        // (applying this push's older commit would roll the newer one back). Every other account is measured up to
        // that commit too, so the rollout stays one commit.
        errln!(
            "deploy-runner: {} deployed {} from where this push ended, assuming this push had deployed; applying \
             this push's changes there, at {}",
            bases.iter().filter(|b| b.source == "unapplied").map(|b| b.account.as_str()).collect::<Vec<_>>().join(", "),
            short(&newer),
            short(&newer)
        );
        let unapplied: Vec<AccountBase> = bases.into_iter().filter(|b| b.source == "unapplied").collect();
        head = newer;
        bases = account_bases(repo, &head, &accounts_at(repo, &head)?, ledger.as_ref(), &push, args.all)?;
        for base in &mut bases {
            if let Some(u) = unapplied.iter().find(|u| u.account == base.account) {
                *base = u.clone();
            }
        }
    }
    let push_sha = match &push {
        PushBase::Usable(sha) => sha.clone(),
        PushBase::Missing(_) => deploy_runner_changes::git::EMPTY_TREE.to_owned(),
    };
    let (report, sources) = detect_per_account(repo, &head, &bases, &push_sha, options)?;
    Ok(Selection { report, sources, bases: Some(bases), apply_ref: Some(args.branch.clone()) })
}

/// The commit to apply an older push's `unapplied` changes at: the newest that those accounts have deployed (each
/// of them has it or an ancestor of it, so none is rolled back), if any. An error when that commit is not in the
/// checkout, or when their commits are not on one line of history (rewritten): no single commit fits then.
fn unapplied_head(repo: &GitRepo, bases: &[AccountBase]) -> anyhow::Result<Option<String>> {
    let mut commits: Vec<&str> =
        bases.iter().filter(|b| b.source == "unapplied").filter_map(|b| b.deployed.as_deref()).collect();
    commits.sort_unstable();
    commits.dedup();
    let Some(first) = commits.first() else { return Ok(None) };
    let mut newest = repo.resolve_commit(first).map_err(|_| {
        anyhow::anyhow!(
            "this push's changes were never applied where {first} is deployed, and {first} is not in this checkout: \
             fetch the whole history (fetch-depth: 0) and run ci again"
        )
    })?;
    for commit in &commits[1..] {
        let commit = repo.resolve_commit(commit)?;
        if repo.is_ancestor(&newest, &commit)? {
            newest = commit;
        } else if !repo.is_ancestor(&commit, &newest)? {
            anyhow::bail!(
                "this push's changes were never applied in accounts that deployed {newest} and {commit}, which are \
                 not on one line of history: deploy them with a new push"
            );
        }
    }
    Ok(Some(newest))
}

/// After a failed apply: when every account that did not succeed now has this push's commit or a newer one (a
/// newer push deployed while this one waited, and the task refused to roll it back), this push is superseded, not
/// failed. Says why, or `None`.
fn superseded_by_newer(
    args: &CiArgs,
    backend: &Backend,
    repo: &GitRepo,
    repo_url: &str,
    selection: &Selection,
    apply: &RolloutReport,
) -> anyhow::Result<Option<String>> {
    if apply.outcome == "denied" || apply.waves.is_empty() {
        return Ok(None);
    }
    let Ok(view) = backend.ledger(&args.backend.actor, repo_url, selection.apply_ref.as_deref())? else {
        return Ok(None);
    };
    let head = &selection.report.head;
    let mut newer = Vec::new();
    for wave in apply.waves.iter().filter(|w| w.status != "succeeded") {
        match view.deployed(&wave.account) {
            Some(d) if d != head && repo.resolve_commit(d).is_ok() && repo.is_ancestor(head, d)? => {
                newer.push(format!("{} has {}", wave.account, short(d)));
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(format!("a newer commit was deployed while this push waited ({})", newer.join(", "))))
}
