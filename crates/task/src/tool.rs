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
        ToolBinary::Terraform => {
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
}
