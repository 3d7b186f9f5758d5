//! `deploy-runner`: the command CI runs. A thin composition root over the `deploy_runner_cli` library.

fn main() -> std::process::ExitCode {
    deploy_runner_cli::main()
}
