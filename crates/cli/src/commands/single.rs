//! The single-request shortcuts: `plan`, `apply`, `destroy`, `build-image` and `deploy-image`.

use super::backend::Backend;
use crate::cli::{BackendArgs, BuildImageArgs, DeployImageArgs, DestroyArgs, UnitArgs};
use deploy_runner_gate::{ActionRequest, DeletedUnitTarget, ImageBuild, Request, UnitTarget, VariableUpdate};
use std::process::ExitCode;

fn send(backend: &BackendArgs, body: ActionRequest) -> anyhow::Result<ExitCode> {
    let request = Request { actor: backend.actor.clone(), request_id: None, body };
    Ok(ExitCode::from(Backend::from_args(backend)?.single(&request)?))
}

fn target(args: &UnitArgs) -> UnitTarget {
    UnitTarget {
        repo: args.repo_url.clone(),
        git_ref: args.git_ref.clone(),
        path: args.path.clone(),
        apply_ref: None,
        deployed_commit: None,
    }
}

/// `deploy-runner plan`.
pub fn plan(args: UnitArgs) -> anyhow::Result<ExitCode> {
    send(&args.backend, ActionRequest::Plan(target(&args)))
}

/// `deploy-runner apply`.
pub fn apply(args: UnitArgs) -> anyhow::Result<ExitCode> {
    send(&args.backend, ActionRequest::Apply(target(&args)))
}

/// `deploy-runner destroy`.
pub fn destroy(args: DestroyArgs) -> anyhow::Result<ExitCode> {
    let unit = &args.unit;
    let body = ActionRequest::Destroy(DeletedUnitTarget {
        repo: unit.repo_url.clone(),
        git_ref: unit.git_ref.clone(),
        path: unit.path.clone(),
        source_ref: args.source_ref.clone(),
    });
    send(&unit.backend, body)
}

/// `deploy-runner build-image`.
pub fn build_image(args: BuildImageArgs) -> anyhow::Result<ExitCode> {
    let body = ActionRequest::BuildImage(ImageBuild {
        repo: args.repo_url,
        git_ref: args.git_ref,
        context_path: args.context_path,
        tag: args.tag,
    });
    send(&args.backend, body)
}

/// `deploy-runner deploy-image`: update-variable on infrastructure-live.
pub fn deploy_image(args: DeployImageArgs) -> anyhow::Result<ExitCode> {
    let unit = &args.unit;
    let body = ActionRequest::UpdateVariable(VariableUpdate {
        repo: unit.repo_url.clone(),
        git_ref: unit.git_ref.clone(),
        path: unit.path.clone(),
        variable: args.variable,
        value: args.value,
    });
    send(&unit.backend, body)
}
