//! Keeping the task's own secrets out of reach of the tools it runs.
//!
//! The tools (terraform, terragrunt, kaniko, packer) run code from the repo: on a plan, anyone's branch. They run
//! as the task's own uid, so the kernel would let them read `/proc/<task>/environ` (where ECS put the git
//! credentials), `/proc/<task>/mem` and `/proc/<task>/fd/*`, or attach with ptrace. Marking the task
//! non-dumpable closes all of these at once: the kernel then requires `CAP_SYS_PTRACE`, which neither a non-root
//! user nor a container's default root has. On Fargate the task is the container's first process (no ECS init,
//! which would hold the same environment readable at `/proc/1/environ`), so it also reaps orphaned tool
//! processes: see [`reap_group`].

use rustix::process::{DumpableBehavior, Pid, WaitOptions};

/// Makes this process non-dumpable. Called first thing, before any secret is read or any child started.
pub fn protect_process() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(std::io::Error::from)
}

/// True when the process is non-dumpable (for the task's own start-up check).
pub fn is_protected() -> bool {
    matches!(rustix::process::dumpable_behavior(), Ok(DumpableBehavior::NotDumpable))
}

/// True when the task is its container's first process (PID 1 of its PID namespace).
pub fn is_init() -> bool {
    rustix::process::getpid().is_init()
}

/// Reaps the processes a tool's group leaves behind. The kernel hands orphans to PID 1, and when that is the task
/// nobody else would wait for them; they were just killed or are finishing, so this waits up to a second for
/// them. Call only after the group's leader was waited for, so this never takes a status someone else waits on.
/// Elsewhere (not PID 1) orphans belong to the real init and this returns at once.
pub fn reap_group(group: Pid) {
    if !is_init() {
        return;
    }
    let started = std::time::Instant::now();
    loop {
        match rustix::process::waitpgid(group, WaitOptions::NOHANG) {
            Ok(Some(_)) => continue,
            Ok(None) if started.elapsed() < std::time::Duration::from_secs(1) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(None) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_becomes_non_dumpable() {
        // Each test runs in a thread of the same process; dumpability is per process, so set it and check it.
        protect_process().expect("prctl");
        assert!(is_protected());
    }
}
