//! Prints the state machine definition as the infra module's Terraform template (`make infra-template`).

fn main() {
    print!("{}", deploy_runner_rollout::asl::terraform_template());
}
