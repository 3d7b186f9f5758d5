//! The exact command lines run for each operation, for terragrunt and for plain terraform.

use deploy_runner_gate::ToolBinary;

/// What to do in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `plan`.
    Plan,
    /// `validate`.
    Validate,
    /// `plan -destroy`.
    PlanDestroy,
    /// `apply -auto-approve`.
    Apply,
    /// `destroy -auto-approve`.
    Destroy,
}

impl Operation {
    /// A short name for logs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Plan => "plan",
            Operation::Validate => "validate",
            Operation::PlanDestroy => "plan-destroy",
            Operation::Apply => "apply",
            Operation::Destroy => "destroy",
        }
    }

    /// True for operations that change infrastructure.
    pub fn changes_infrastructure(self) -> bool {
        matches!(self, Operation::Apply | Operation::Destroy)
    }

    /// The terraform arguments, non-interactive.
    fn terraform_args(self, colour: bool) -> Vec<&'static str> {
        let mut args = match self {
            Operation::Plan => vec!["plan", "-input=false"],
            Operation::Validate => vec!["validate"],
            Operation::PlanDestroy => vec!["plan", "-destroy", "-input=false"],
            Operation::Apply => vec!["apply", "-input=false", "-auto-approve"],
            Operation::Destroy => vec!["destroy", "-input=false", "-auto-approve"],
        };
        if !colour {
            args.push("-no-color");
        }
        args
    }
}

/// How the tool is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolStyle {
    /// terragrunt or terraform.
    pub binary: ToolBinary,
    /// Terragrunt's newer `terragrunt run -- <command>` form.
    pub terragrunt_run: bool,
}

/// The argv (after the program) of every command for `operation`, in order. Plain terraform needs an `init`
/// first; terragrunt initialises on its own.
pub fn commands(style: ToolStyle, operation: Operation) -> Vec<Vec<String>> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    match style.binary {
        ToolBinary::Terraform | ToolBinary::Tofu => {
            vec![owned(&["init", "-input=false", "-no-color"]), owned(&operation.terraform_args(false))]
        }
        ToolBinary::Terragrunt => {
            let args = operation.terraform_args(false);
            if style.terragrunt_run {
                let mut run = owned(&["run", "--non-interactive", "--"]);
                run.extend(owned(&args));
                vec![run]
            } else {
                let mut classic = owned(&args);
                classic.push("--terragrunt-non-interactive".to_owned());
                vec![classic]
            }
        }
    }
}

/// The argv that generates a terragrunt stack's units (`terragrunt stack generate`), run in the stack's folder
/// before one of its units.
pub fn stack_generate() -> Vec<String> {
    ["stack", "generate", "--non-interactive"].map(str::to_owned).to_vec()
}

/// The environment that points terragrunt at the Terraform or OpenTofu executable it drives: `TG_TF_PATH`, and
/// `TERRAGRUNT_TFPATH` for terragrunt before 0.73. Nothing for the other tools, which are that executable.
pub fn tf_path_env(binary: ToolBinary, tf_path: Option<&std::path::Path>) -> Vec<(&'static str, std::ffi::OsString)> {
    match (binary, tf_path) {
        (ToolBinary::Terragrunt, Some(path)) => {
            vec![("TG_TF_PATH", path.as_os_str().to_owned()), ("TERRAGRUNT_TFPATH", path.as_os_str().to_owned())]
        }
        _ => Vec::new(),
    }
}

/// The environment that gives every unit of a task one provider cache in `dir`: Terraform's and OpenTofu's plugin
/// cache (the lock file may then record only this platform's checksums: the clone is thrown away), or terragrunt's
/// provider cache server, which is safe for parallel runs by design.
pub fn provider_cache_env(binary: ToolBinary, dir: &std::path::Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let dir = dir.as_os_str().to_owned();
    if binary.is_terraform_like() {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            // Terraform refuses a cache dir that doesn't exist; without one it downloads per unit, as before.
            eprintln!("deploy-runner-task: warning: no provider cache ({e})");
            return Vec::new();
        }
        vec![("TF_PLUGIN_CACHE_DIR", dir), ("TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE", "true".into())]
    } else {
        vec![
            ("TG_PROVIDER_CACHE", "1".into()),
            ("TG_PROVIDER_CACHE_DIR", dir.clone()),
            ("TERRAGRUNT_PROVIDER_CACHE", "1".into()),
            ("TERRAGRUNT_PROVIDER_CACHE_DIR", dir),
        ]
    }
}

/// The environment every tool run gets: automation mode, never prompt.
pub const TOOL_ENV: [(&str, &str); 4] = [
    ("TF_IN_AUTOMATION", "1"),
    ("TF_INPUT", "0"),
    ("TG_NON_INTERACTIVE", "true"),
    ("TERRAGRUNT_NON_INTERACTIVE", "true"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(binary: ToolBinary, run: bool, op: Operation) -> Vec<String> {
        commands(ToolStyle { binary, terragrunt_run: run }, op).into_iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn exact_argv_for_terragrunt() {
        use Operation::*;
        let cases = [
            (Plan, false, "plan -input=false -no-color --terragrunt-non-interactive"),
            (Validate, false, "validate -no-color --terragrunt-non-interactive"),
            (PlanDestroy, false, "plan -destroy -input=false -no-color --terragrunt-non-interactive"),
            (Apply, false, "apply -input=false -auto-approve -no-color --terragrunt-non-interactive"),
            (Destroy, false, "destroy -input=false -auto-approve -no-color --terragrunt-non-interactive"),
            (Plan, true, "run --non-interactive -- plan -input=false -no-color"),
            (Apply, true, "run --non-interactive -- apply -input=false -auto-approve -no-color"),
            (Destroy, true, "run --non-interactive -- destroy -input=false -auto-approve -no-color"),
        ];
        for (op, run, expected) in cases {
            assert_eq!(argv(ToolBinary::Terragrunt, run, op), [expected], "{op:?} run={run}");
        }
    }

    #[test]
    fn terraform_inits_first() {
        assert_eq!(
            argv(ToolBinary::Terraform, false, Operation::Apply),
            ["init -input=false -no-color", "apply -input=false -auto-approve -no-color"]
        );
    }

    /// OpenTofu takes Terraform's argv, operation for operation, and initialises first.
    #[test]
    fn opentofu_runs_exactly_like_terraform() {
        use Operation::*;
        for op in [Plan, Validate, PlanDestroy, Apply, Destroy] {
            assert_eq!(argv(ToolBinary::Tofu, false, op), argv(ToolBinary::Terraform, false, op), "{op:?}");
            assert_eq!(argv(ToolBinary::Tofu, true, op), argv(ToolBinary::Terraform, false, op), "{op:?} run style");
        }
        assert_eq!(
            argv(ToolBinary::Tofu, false, PlanDestroy),
            ["init -input=false -no-color", "plan -destroy -input=false -no-color"]
        );
    }

    /// One provider cache per task: terraform's and tofu's plugin cache, terragrunt's cache server.
    #[test]
    fn every_tool_gets_one_provider_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("provider-cache");
        let names = |env: Vec<(&'static str, std::ffi::OsString)>| env.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        for tool in [ToolBinary::Terraform, ToolBinary::Tofu] {
            let env = provider_cache_env(tool, &cache);
            assert_eq!(env[0], ("TF_PLUGIN_CACHE_DIR", cache.as_os_str().to_owned()), "{tool:?}");
            assert!(cache.is_dir(), "terraform needs the directory to exist");
        }
        assert_eq!(
            names(provider_cache_env(ToolBinary::Terragrunt, &cache)),
            [
                "TG_PROVIDER_CACHE",
                "TG_PROVIDER_CACHE_DIR",
                "TERRAGRUNT_PROVIDER_CACHE",
                "TERRAGRUNT_PROVIDER_CACHE_DIR"
            ]
        );
    }

    /// Terragrunt drives OpenTofu when told to; tofu and terraform are the executable themselves.
    #[test]
    fn terragrunt_is_pointed_at_its_tf_path() {
        let tofu = std::path::Path::new("/usr/local/bin/tofu");
        let env = tf_path_env(ToolBinary::Terragrunt, Some(tofu));
        assert_eq!(
            env,
            [("TG_TF_PATH", tofu.as_os_str().to_owned()), ("TERRAGRUNT_TFPATH", tofu.as_os_str().to_owned())]
        );
        assert!(tf_path_env(ToolBinary::Terragrunt, None).is_empty());
        assert!(tf_path_env(ToolBinary::Tofu, Some(tofu)).is_empty());
    }
}
