# The one container of each task definition. Credentials arrive through `secrets` (injected by ECS from Secrets
# Manager); nothing secret is ever in `environment`, the command or the task definition itself. They are split by
# need: every task fetches with the read-only credential; only the applier holds the one that can push, which
# only update-variable's push uses (docs/security.md).

locals {
  task_environment = {
    DEPLOY_RUNNER_POLICY = jsonencode(local.policy)
  }

  read_secrets = concat(
    var.github_read_token_secret_arn == null ? [] : [{ name = "GITHUB_READ_TOKEN", valueFrom = var.github_read_token_secret_arn }],
    var.ssh_read_key_secret_arn == null ? [] : [{ name = "DEPLOY_SSH_READ_KEY", valueFrom = var.ssh_read_key_secret_arn }],
  )
  push_secrets = concat(
    var.github_token_secret_arn == null ? [] : [{ name = "GITHUB_TOKEN", valueFrom = var.github_token_secret_arn }],
    var.ssh_private_key_secret_arn == null ? [] : [{ name = "DEPLOY_SSH_PRIVATE_KEY", valueFrom = var.ssh_private_key_secret_arn }],
  )
  task_secrets = {
    planner       = local.read_secrets
    image_builder = local.read_secrets
    applier       = concat(local.read_secrets, local.push_secrets)
  }

  # DEPLOY_RUNNER_TASK_CONFIG per container (crates/task/src/config.rs; a test loads it there).
  task_configs = {
    planner = { terragrunt_run_style = var.terragrunt_run_style }
    applier = { terragrunt_run_style = var.terragrunt_run_style }
    image_builder = {
      terragrunt_run_style = var.terragrunt_run_style
      image                = { registry_repo = try(var.app_image_repository.url, null) }
    }
  }

  task_images = {
    planner       = var.runner_image
    applier       = var.runner_image
    image_builder = var.image_builder_image
  }

  container_definitions = {
    for key, image in local.task_images : key => [{
      name      = var.container_name
      image     = image
      essential = true
      environment = [
        for name, value in merge(local.task_environment, {
          DEPLOY_RUNNER_TASK_CONFIG = jsonencode(local.task_configs[key])
          DEPLOY_SSH_KNOWN_HOSTS    = var.ssh_known_hosts
        }) : { name = name, value = value } if value != null
      ]
      secrets = local.task_secrets[key]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.names.task_log_group
          awslogs-region        = var.region
          awslogs-stream-prefix = var.log_stream_prefix
        }
      }
      # No ECS init: it would be PID 1 holding the injected secrets in an environment every process of the
      # container's user can read at /proc/1/environ. The task is PID 1 instead, non-dumpable (so the tools it runs
      # can read neither its environment nor its memory), forwarding SIGTERM to the tool's process group and
      # reaping its orphans. It has the whole stop timeout (Fargate's maximum) to stop the tool cleanly.
      linuxParameters = { initProcessEnabled = false }
      stopTimeout     = 120
    }]
  }
}
