//! Progress on stderr. On a terminal, an indicatif spinner says what is running (which wave, how long) and stays
//! below the streamed log lines; in CI (not a terminal, or `CI` set) there are plain lines only.

use deploy_runner_task::process::{Echo, LineSink};
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The progress display of one command. Cloning shares it.
#[derive(Clone, Default)]
pub struct Progress {
    interactive: bool,
    spinner: Arc<Mutex<Option<ProgressBar>>>,
    /// What is running (a wave) and, inside it, the units running now, as the task says.
    now: Arc<Mutex<(String, Vec<String>)>>,
}

impl Progress {
    /// A spinner when stderr is an interactive terminal; plain lines otherwise.
    pub fn for_stderr() -> Progress {
        let interactive = std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && std::env::var("TERM").map_or(true, |term| term != "dumb");
        Progress { interactive, spinner: Arc::default(), now: Arc::default() }
    }

    fn spinner(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.spinner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prints one line on stderr, above the spinner when there is one.
    pub fn line(&self, text: &str) {
        match self.spinner().as_ref() {
            Some(spinner) => spinner.println(text),
            None => errln!("{text}"),
        }
    }

    /// Says what is running now (a terminal only: CI logs get the lines, not a ticking status).
    pub fn status(&self, text: String) {
        if !self.interactive {
            return;
        }
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = (text.clone(), Vec::new());
        self.show(text);
    }

    fn show(&self, text: String) {
        let mut spinner = self.spinner();
        let spinner = spinner.get_or_insert_with(|| {
            // Cleared when dropped too, so an error that ends the command early leaves no stale spinner behind.
            let bar = ProgressBar::new_spinner().with_finish(ProgressFinish::AndClear);
            bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("a valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        spinner.set_message(text);
    }

    /// Removes the spinner (before a prompt, and when the work is done).
    pub fn idle(&self) {
        if let Some(spinner) = self.spinner().take() {
            spinner.finish_and_clear();
        }
    }

    /// Where a task's output lines go: through the spinner on a terminal, else straight to stderr.
    pub fn echo(&self) -> Echo {
        if !self.interactive {
            return Echo::Stderr;
        }
        let progress = self.clone();
        Echo::To(LineSink::new(move |line| {
            progress.line(line);
            if let Some(event) = unit_event(line) {
                progress.track(event);
            }
        }))
    }

    /// Keeps the running units of the wave up to date in the status.
    fn track(&self, event: UnitEvent) {
        let text = {
            let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
            match event {
                UnitEvent::Started(unit) => now.1.push(unit),
                UnitEvent::Ended(unit) => now.1.retain(|u| *u != unit),
            }
            running_text(&now.0, &now.1)
        };
        self.show(text);
    }
}

/// A wave's unit starting or ending, as the deploy task says it.
#[derive(Debug, PartialEq, Eq)]
enum UnitEvent {
    Started(String),
    Ended(String),
}

/// Reads `<prefix>deploy-runner-task: <unit>: started` and `...: <status> in <seconds>s` lines.
fn unit_event(line: &str) -> Option<UnitEvent> {
    use deploy_runner_task::run::{UNIT_ENDED_IN, UNIT_STARTED};
    let (_, said) = line.split_once("deploy-runner-task: ")?;
    let (unit, what) = said.rsplit_once(": ")?;
    if unit.contains(' ') {
        return None;
    }
    if what == UNIT_STARTED {
        return Some(UnitEvent::Started(unit.to_owned()));
    }
    let (status, took) = what.split_once(&format!(" {UNIT_ENDED_IN} "))?;
    (["succeeded", "failed"].contains(&status) && took.ends_with('s')).then(|| UnitEvent::Ended(unit.to_owned()))
}

/// `dev wave: 5 unit(s); running dev/a, dev/b (+1)`.
fn running_text(base: &str, running: &[String]) -> String {
    const SHOWN: usize = 3;
    if running.is_empty() {
        return base.to_owned();
    }
    let mut names = running.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if running.len() > SHOWN {
        names.push_str(&format!(" (+{})", running.len() - SHOWN));
    }
    format!("{base}; running {names}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_units_come_from_the_tasks_own_lines() {
        let started = "dev | deploy-runner-task: dev/us-east-1/dev/app: started";
        assert_eq!(unit_event(started), Some(UnitEvent::Started("dev/us-east-1/dev/app".into())));
        let ended = "dev | deploy-runner-task: dev/us-east-1/dev/app: failed in 12.5s";
        assert_eq!(unit_event(ended), Some(UnitEvent::Ended("dev/us-east-1/dev/app".into())));
        for other in [
            "dev | [dev/us-east-1/dev/app] started",
            "dev | deploy-runner-task: dev/app: terraform init -input=false -no-color",
            "dev | deploy-runner-task: verified: abc is reachable from main",
            "dev | deploy-runner-task: dev/app: succeeded in the end",
        ] {
            assert_eq!(unit_event(other), None, "{other}");
        }
        let running: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(running_text("dev wave: 4 unit(s)", &running), "dev wave: 4 unit(s); running a, b, c (+1)");
        assert_eq!(running_text("dev wave: 4 unit(s)", &[]), "dev wave: 4 unit(s)");
    }
}
