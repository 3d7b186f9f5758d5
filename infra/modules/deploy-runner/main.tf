# deploy-runner's control plane: the invoker Lambda (the gate), ECS Fargate tasks that hold the deploy
# credentials, the rollout state machine and its notifier. Every name, ARN and JSON document comes from ./render,
# which is provider-less so the tests can evaluate it with real terraform.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  log_stream_prefix = "deploy-runner"
  container_name    = "runner"
}

module "render" {
  source = "./render"

  name       = var.name
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  infrastructure_live_repos = { exact = var.infrastructure_live_repos.exact, regex = var.infrastructure_live_repos.regex }
  app_repos                 = { exact = var.app_repos.exact, regex = var.app_repos.regex }
  apply_refs                = var.apply_refs
  accounts                  = var.accounts
  path_guards               = var.path_guards
  update_variable_names     = var.update_variable_names
  tool_binary               = var.tool_binary
  terragrunt_run_style      = var.terragrunt_run_style
  approval_accounts         = var.approval_accounts
  release_tag_patterns      = var.release_tag_patterns
  max_parallel_units        = var.max_parallel_units
  approval_timeout_seconds  = var.approval_timeout_seconds

  container_name     = local.container_name
  subnet_ids         = var.subnet_ids
  security_group_ids = [aws_security_group.tasks.id]
  assign_public_ip   = var.assign_public_ip
  log_stream_prefix  = local.log_stream_prefix
  task_definition_arns = {
    planner       = aws_ecs_task_definition.task["planner"].arn
    applier       = aws_ecs_task_definition.task["applier"].arn
    image_builder = aws_ecs_task_definition.task["image_builder"].arn
  }

  runner_image                 = var.runner_image
  image_builder_image          = var.image_builder_image
  pull_repository_arns         = var.pull_repository_arns
  app_image_repository         = var.app_image_repository
  github_read_token_secret_arn = var.github_read_token_secret_arn
  github_token_secret_arn      = var.github_token_secret_arn
  ssh_read_key_secret_arn      = var.ssh_read_key_secret_arn
  ssh_private_key_secret_arn   = var.ssh_private_key_secret_arn
  ssh_known_hosts              = var.ssh_known_hosts
  slack_webhook_secret_arn     = var.slack_webhook_secret_arn
  kms_key_arn                  = var.kms_key_arn
}

# ---- Network: tasks only ever connect out ---------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  #checkov:skip=CKV2_AWS_5:attached at run time: the invoker and the state machine pass it to every RunTask (awsvpc)
  name_prefix = "${var.name}-tasks-"
  description = "deploy-runner tasks: egress only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = toset(var.egress_cidr_blocks)
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS: git, AWS APIs, registries, providers"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  tags              = var.tags
}

resource "aws_vpc_security_group_egress_rule" "ssh" {
  for_each          = var.ssh_private_key_secret_arn == null && var.ssh_read_key_secret_arn == null ? toset([]) : toset(var.egress_cidr_blocks)
  security_group_id = aws_security_group.tasks.id
  description       = "SSH git clones"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  tags              = var.tags
}

# ---- Logs -----------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  for_each = {
    tasks    = module.render.names.task_log_group
    invoker  = module.render.names.invoker_log_group
    approver = module.render.names.approver_log_group
    notifier = module.render.names.notifier_log_group
  }
  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# ---- IAM ------------------------------------------------------------------------------------------------------

locals {
  roles = {
    invoker            = { trust = "lambda", policy = "invoker" }
    approver           = { trust = "lambda", policy = "approver" }
    notifier           = { trust = "lambda", policy = "notifier" }
    state_machine      = { trust = "states", policy = "state_machine" }
    task_execution     = { trust = "ecs_tasks", policy = "task_execution" }
    planner_task       = { trust = "ecs_tasks", policy = "planner_task" }
    applier_task       = { trust = "ecs_tasks", policy = "applier_task" }
    image_builder_task = { trust = "ecs_tasks", policy = "image_builder_task" }
  }
}

resource "aws_iam_role" "this" {
  for_each           = local.roles
  name               = module.render.names.roles[each.key]
  assume_role_policy = module.render.assume_role_policies_json[each.value.trust]
  tags               = var.tags
}

resource "aws_iam_role_policy" "this" {
  # Without an app repository the image builder needs no permissions at all (decided from a variable, so the keys
  # are known at plan time).
  for_each = { for key, role in local.roles : key => role if key != "image_builder_task" || var.app_image_repository != null }
  name     = "least-privilege"
  role     = aws_iam_role.this[each.key].id
  policy   = module.render.iam_policies_json[each.value.policy]
}

resource "aws_iam_user" "ci" {
  #checkov:skip=CKV_AWS_273:optional machine user for CI systems without OIDC (create_ci_user); its only permission is invoking the invoker, and GitHub OIDC through ci_role_names is the documented default
  count = var.create_ci_user ? 1 : 0
  name  = "${var.name}-ci"
  tags  = var.tags
}

resource "aws_iam_user_policy" "ci" {
  #checkov:skip=CKV_AWS_40:the optional CI machine user's one invoke-only policy; a group for one user adds nothing
  count  = var.create_ci_user ? 1 : 0
  name   = "invoke-deploy-runner-only"
  user   = aws_iam_user.ci[0].name
  policy = module.render.iam_policies_json.ci
}

resource "aws_iam_role_policy" "ci" {
  for_each = toset(var.ci_role_names)
  name     = "invoke-${var.name}-only"
  role     = each.value
  policy   = module.render.iam_policies_json.ci
}

# Who may approve or reject a rollout's wave: only these principals can invoke the approvals entry point.
resource "aws_iam_role_policy" "approvers" {
  for_each = toset(var.approver_role_names)
  name     = "approve-${var.name}-rollouts"
  role     = each.value
  policy   = module.render.iam_policies_json.approvers
}

resource "aws_iam_user_policy" "approvers" {
  #checkov:skip=CKV_AWS_40:for deployments whose approvers are IAM users (approver_role_names is preferred); the policy is invoke-the-approver-only
  for_each = toset(var.approver_user_names)
  name     = "approve-${var.name}-rollouts"
  user     = each.value
  policy   = module.render.iam_policies_json.approvers
}

# ---- ECS ------------------------------------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = module.render.names.cluster
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "task" {
  for_each = module.render.names.task_families

  family                   = each.value
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes[each.key].cpu
  memory                   = var.task_sizes[each.key].memory
  execution_role_arn       = aws_iam_role.this["task_execution"].arn
  task_role_arn            = aws_iam_role.this["${each.key}_task"].arn
  container_definitions    = module.render.container_definitions_json[each.key]
  tags                     = var.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.task_cpu_architecture
  }
}

# ---- Lambdas --------------------------------------------------------------------------------------------------

locals {
  lambdas = {
    invoker = {
      description = "deploy-runner: gates CI's requests and starts deploy tasks and rollouts"
      zip         = var.invoker_zip
      memory_size = 256
      environment = { DEPLOY_RUNNER_CONFIG = module.render.invoker_config_json }
    }
    # The same code as the approvals entry point: it answers approve and reject only, and only approvers may
    # invoke it (CI's credential can't).
    approver = {
      description = "deploy-runner: answers rollout approvals (approve, reject) for the approvers"
      zip         = var.invoker_zip
      memory_size = 256
      environment = merge({ DEPLOY_RUNNER_CONFIG = module.render.invoker_config_json }, module.render.approver_environment)
    }
    notifier = {
      description = "deploy-runner: tells Slack about rollouts and approvals"
      zip         = var.notifier_zip
      memory_size = 128
      environment = { DEPLOY_RUNNER_SLACK_SECRET = var.slack_webhook_secret_arn }
    }
  }
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:invoked synchronously only (CI, the approvers, the state machine's lambda:invoke), so a dead-letter queue would never receive anything
  #checkov:skip=CKV_AWS_117:they call AWS APIs only; a VPC would need NAT or endpoints and protects nothing here
  #checkov:skip=CKV_AWS_115:invoker_reserved_concurrency sets it for the invoker when wanted; reserving by default would take capacity from the account's pool
  #checkov:skip=CKV_AWS_272:the zips come from the project's release (checksummed) or make lambda, and are pinned by source_code_hash; code signing needs a signing profile the module can't assume
  #checkov:skip=CKV_AWS_173:the environment holds no secret (the policy and runtime settings); it is encrypted at rest with kms_key_arn when set, else the AWS managed key
  #checkov:skip=CKV_AWS_50:the invoker's audit line per decision is the record; X-Ray would add cost and a permission for no security value
  for_each = local.lambdas

  function_name    = module.render.names[each.key]
  description      = each.value.description
  role             = aws_iam_role.this[each.key].arn
  filename         = each.value.zip
  source_code_hash = filebase64sha256(each.value.zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = [var.lambda_architecture]
  memory_size      = each.value.memory_size
  kms_key_arn      = var.kms_key_arn
  # Only the invoker may be capped; the approver and notifier handle a few calls a day.
  reserved_concurrent_executions = each.key == "invoker" ? var.invoker_reserved_concurrency : null
  # The invoker answers in well under a second; the notifier retries with backoff inside this.
  timeout = 30
  tags    = var.tags

  environment {
    variables = each.value.environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this[each.key].name
  }

  lifecycle {
    precondition {
      # Lambda caps all environment variables of a function at 4 KB together.
      condition     = length(jsonencode(each.value.environment)) <= 4000
      error_message = "The ${each.key}'s environment is over Lambda's 4 KB limit: shorten the repo lists or path guards (regexes cover many repos)."
    }
  }

  depends_on = [aws_iam_role_policy.this]
}

# build-image never overwrites a tag itself; the registry's tag immutability backs that up against races and
# against a Dockerfile pushing with the builder's credentials (docs/security.md).
check "app_image_tags_are_immutable" {
  assert {
    condition     = var.app_image_repository == null || try(var.app_image_repository.image_tag_mutability != null, false)
    error_message = "app_image_repository.image_tag_mutability is not given, so the module can't verify that the app repository's tags are immutable: pass the repository's image_tag_mutability."
  }
}

# ---- Rollouts -------------------------------------------------------------------------------------------------

# The deployment ledger (per repo, apply ref and account: the last commit whose units all applied) and the apply
# locks (one apply rollout per repo and apply ref). The invoker reads and locks; the state machine records and
# releases. Every write is conditional; items are tiny, so on demand costs next to nothing.
resource "aws_dynamodb_table" "ledger" {
  #checkov:skip=CKV_AWS_119:encrypted at rest always; with the customer managed key when kms_key_arn is set (null keeps AWS's owned key, as for the module's other resources)
  name                        = module.render.names.ledger_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.ledger_deletion_protection
  tags                        = var.tags

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }
}

resource "aws_sfn_state_machine" "rollouts" {
  #checkov:skip=CKV_AWS_285:Step Functions keeps every execution's full history (what the invoker reads for status, approvals and resume); CloudWatch delivery would need account-wide log delivery permissions
  #checkov:skip=CKV_AWS_284:X-Ray would add cost and a permission; each wave's task logs and the execution history are the record
  name       = module.render.names.state_machine
  role_arn   = aws_iam_role.this["state_machine"].arn
  definition = module.render.state_machine_definition
  type       = "STANDARD"
  tags       = var.tags

  depends_on = [aws_iam_role_policy.this]
}
