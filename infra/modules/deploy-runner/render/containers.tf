# The one container of each task definition. Credentials arrive through `secrets` (injected by ECS from Secrets
# Manager); nothing secret is ever in `environment`, the command or the task definition itself.

locals {
  task_environment = {
    DEPLOY_RUNNER_POLICY = jsonencode(local.policy)
  }

  task_secrets = concat(
    var.github_token_secret_arn == null ? [] : [{ name = "GITHUB_TOKEN", valueFrom = var.github_token_secret_arn }],
    var.ssh_private_key_secret_arn == null ? [] : [{ name = "DEPLOY_SSH_PRIVATE_KEY", valueFrom = var.ssh_private_key_secret_arn }],
  )

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
      secrets = local.task_secrets
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = local.names.task_log_group
          awslogs-region        = var.region
          awslogs-stream-prefix = var.log_stream_prefix
        }
      }
      # An init process reaps terraform's children and forwards SIGTERM; the task then has the whole stop timeout
      # (Fargate's maximum) to stop the tool cleanly and release state locks.
      linuxParameters = { initProcessEnabled = true }
      stopTimeout     = 120
    }]
  }
}
