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
}

impl Progress {
    /// A spinner when stderr is an interactive terminal; plain lines otherwise.
    pub fn for_stderr() -> Progress {
        let interactive = std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none()
            && std::env::var("TERM").map_or(true, |term| term != "dumb");
        Progress { interactive, spinner: Arc::default() }
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
        Echo::To(LineSink::new(move |line| progress.line(line)))
    }
}
