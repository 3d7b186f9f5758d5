//! The AWS backend: every request goes to the invoker Lambda (`lambda:InvokeFunction` is all CI's machine user may
//! do), then the run is followed through the invoker's `status` and `logs` actions with bounded, backed-off polling.

use crate::progress::Progress;
use anyhow::Context;
use deploy_runner_aws::{load_config, LambdaInvoker};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The invoker, called with the standard AWS credential chain.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    lambda: LambdaInvoker,
    function: String,
}

/// How following a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    /// `succeeded`, `failed`, or `timed_out` when `--max-wait` ran out first.
    pub outcome: String,
    /// The last `status` answer.
    pub status: Value,
    /// The wave summaries the tasks printed, by account.
    pub summaries: BTreeMap<String, Value>,
}

impl Remote {
    /// Connects to the invoker `function` (name or ARN).
    pub fn connect(function: &str) -> anyhow::Result<Remote> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let aws = runtime.block_on(load_config());
        Ok(Remote { lambda: LambdaInvoker::from_config(&aws), runtime, function: function.to_owned() })
    }

    /// Sends one request; returns the invoker's answer.
    pub fn call(&self, request: &Value) -> anyhow::Result<Value> {
        let body = request.to_string();
        self.runtime
            .block_on(self.lambda.invoke(&self.function, body.as_bytes()))
            .with_context(|| format!("invoking {}", self.function))
    }

    /// Follows `run_id` until it ends or `max_wait` passes, printing each new log line through `progress`, prefixed
    /// by its account for rollouts, and showing the run's state on a terminal.
    pub fn follow(
        &self,
        actor: &str,
        run_id: &str,
        max_wait: Duration,
        progress: &Progress,
    ) -> anyhow::Result<Followed> {
        let started = Instant::now();
        let mut delay = Duration::from_secs(2);
        let mut tokens: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut summaries = BTreeMap::new();
        loop {
            let status = self.call(&json!({"action": "status", "actor": actor, "run_id": run_id}))?;
            if status["decision"] != "allow" {
                anyhow::bail!("status of {run_id}: {} ({})", status["message"], status["reason"]);
            }
            let rollout = status.get("rollout").filter(|r| !r.is_null());
            let outcome = match rollout {
                Some(r) => r["outcome"].as_str().unwrap_or("running").to_owned(),
                None => status["status"]["outcome"].as_str().unwrap_or("pending").to_owned(),
            };
            let streams: Vec<Option<String>> = match rollout {
                Some(r) => r["waves"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|w| w["log_stream"].is_string())
                    .map(|w| w["account"].as_str().map(str::to_owned))
                    .collect(),
                None => vec![None],
            };
            progress.status(describe_run(run_id, &outcome, rollout));
            for account in streams {
                self.drain_logs(actor, run_id, account, &mut tokens, &mut summaries, progress)?;
            }
            if outcome == "succeeded" || outcome == "failed" {
                progress.idle();
                return Ok(Followed { outcome, status, summaries });
            }
            if started.elapsed() >= max_wait {
                progress.idle();
                errln!(
                    "deploy-runner: run {run_id} is still {outcome} after {}s; follow it with: \
                     deploy-runner status --run {run_id} --function-name {}",
                    max_wait.as_secs(),
                    self.function
                );
                return Ok(Followed { outcome: "timed_out".into(), status, summaries });
            }
            std::thread::sleep(delay.min(max_wait.saturating_sub(started.elapsed())));
            delay = (delay * 3 / 2).min(Duration::from_secs(15));
        }
    }

    /// Reads every new page of one stream (a wave's, or the single task's).
    fn drain_logs(
        &self,
        actor: &str,
        run_id: &str,
        account: Option<String>,
        tokens: &mut BTreeMap<String, Option<String>>,
        summaries: &mut BTreeMap<String, Value>,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let key = account.clone().unwrap_or_default();
        // Bounded: a stream that keeps producing is read again at the next poll.
        for _ in 0..20 {
            let mut request = json!({"action": "logs", "actor": actor, "run_id": run_id});
            if let Some(account) = &account {
                request["account"] = json!(account);
            }
            if let Some(Some(token)) = tokens.get(&key) {
                request["next_token"] = json!(token);
            }
            let page = self.call(&request)?;
            let lines: Vec<&str> = page["lines"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            for line in &lines {
                if line.starts_with(r#"{"event":"wave_summary""#) {
                    if let Ok(summary) = serde_json::from_str::<Value>(line) {
                        summaries.insert(key.clone(), summary);
                    }
                }
                // Logs are progress: stderr, so stdout holds only the command's answer.
                match &account {
                    Some(a) => progress.line(&format!("{a} | {line}")),
                    None => progress.line(line),
                }
            }
            let next = page["next_token"].as_str().map(str::to_owned);
            let same = tokens.get(&key).cloned().flatten() == next;
            tokens.insert(key.clone(), next);
            if lines.is_empty() || same {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// One status line for a terminal: the run, its outcome, and each wave's state (`dev succeeded, stage running`).
fn describe_run(run_id: &str, outcome: &str, rollout: Option<&Value>) -> String {
    let waves: Vec<String> = rollout
        .and_then(|r| r["waves"].as_array())
        .into_iter()
        .flatten()
        .map(|w| format!("{} {}", w["account"].as_str().unwrap_or("?"), w["status"].as_str().unwrap_or("?")))
        .collect();
    if waves.is_empty() {
        format!("{run_id}: {outcome}")
    } else {
        format!("{run_id}: {outcome} ({})", waves.join(", "))
    }
}
