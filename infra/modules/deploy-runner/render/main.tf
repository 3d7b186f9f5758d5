locals {
  arn_prefix = "arn:${var.partition}"

  names = {
    cluster            = var.name
    invoker            = "${var.name}-invoker"
    approver           = "${var.name}-approver"
    notifier           = "${var.name}-notifier"
    state_machine      = "${var.name}-rollouts"
    ledger_table       = "${var.name}-ledger"
    task_log_group     = "/deploy-runner/${var.name}/tasks"
    invoker_log_group  = "/aws/lambda/${var.name}-invoker"
    approver_log_group = "/aws/lambda/${var.name}-approver"
    notifier_log_group = "/aws/lambda/${var.name}-notifier"
    task_families = {
      planner       = "${var.name}-planner"
      applier       = "${var.name}-applier"
      image_builder = "${var.name}-image-builder"
    }
    roles = {
      invoker            = "${var.name}-invoker"
      approver           = "${var.name}-approver"
      notifier           = "${var.name}-notifier"
      state_machine      = "${var.name}-state-machine"
      task_execution     = "${var.name}-task-execution"
      planner_task       = "${var.name}-planner-task"
      applier_task       = "${var.name}-applier-task"
      image_builder_task = "${var.name}-image-builder-task"
    }
  }

  # Everything is named up front, so policies can name their resources without depending on them.
  arns = {
    cluster            = "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:cluster/${local.names.cluster}"
    tasks_in_cluster   = "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:task/${local.names.cluster}/*"
    invoker            = "${local.arn_prefix}:lambda:${var.region}:${var.account_id}:function:${local.names.invoker}"
    approver           = "${local.arn_prefix}:lambda:${var.region}:${var.account_id}:function:${local.names.approver}"
    notifier           = "${local.arn_prefix}:lambda:${var.region}:${var.account_id}:function:${local.names.notifier}"
    state_machine      = "${local.arn_prefix}:states:${var.region}:${var.account_id}:stateMachine:${local.names.state_machine}"
    executions         = "${local.arn_prefix}:states:${var.region}:${var.account_id}:execution:${local.names.state_machine}:*"
    ledger_table       = "${local.arn_prefix}:dynamodb:${var.region}:${var.account_id}:table/${local.names.ledger_table}"
    task_log_group     = "${local.arn_prefix}:logs:${var.region}:${var.account_id}:log-group:${local.names.task_log_group}"
    invoker_log_group  = "${local.arn_prefix}:logs:${var.region}:${var.account_id}:log-group:${local.names.invoker_log_group}"
    approver_log_group = "${local.arn_prefix}:logs:${var.region}:${var.account_id}:log-group:${local.names.approver_log_group}"
    notifier_log_group = "${local.arn_prefix}:logs:${var.region}:${var.account_id}:log-group:${local.names.notifier_log_group}"
    ecs_events_rule    = "${local.arn_prefix}:events:${var.region}:${var.account_id}:rule/StepFunctionsGetEventsForECSTaskRule"
    # Any revision of our three families: a new revision must not need an IAM change.
    task_definitions = [
      for family in values(local.names.task_families) :
      "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:task-definition/${family}:*"
    ]
    roles = { for key, role in local.names.roles : key => "${local.arn_prefix}:iam::${var.account_id}:role/${role}" }
  }

  # The roles ECS tasks run with; only these may be passed, and only to ECS.
  task_role_arns = [
    local.arns.roles.task_execution,
    local.arns.roles.planner_task,
    local.arns.roles.applier_task,
    local.arns.roles.image_builder_task,
  ]

  # The gate policy: the invoker enforces it, and each task checks its request against it again.
  policy = {
    repos = {
      infrastructure_live = var.infrastructure_live_repos
      app                 = var.app_repos
    }
    apply_refs            = var.apply_refs
    accounts              = { for name, a in var.accounts : name => { id = a.id, deploy_order = a.deploy_order } }
    path_guards           = var.path_guards
    update_variable_names = var.update_variable_names
    binary                = var.tool_binary
    approval_accounts     = var.approval_accounts
    release_tag_patterns  = var.release_tag_patterns
    max_parallel_units    = var.max_parallel_units
  }

  # DEPLOY_RUNNER_CONFIG of the invoker (crates/control/src/config.rs loads it; a test keeps the two in step).
  invoker_config = var.task_definition_arns == null ? null : {
    policy = local.policy
    runtime = {
      cluster_arn      = local.arns.cluster
      subnets          = var.subnet_ids
      security_groups  = var.security_group_ids
      assign_public_ip = var.assign_public_ip
      launch_type      = "FARGATE"
      task_definitions = {
        planner         = var.task_definition_arns.planner
        applier         = var.task_definition_arns.applier
        "image-builder" = var.task_definition_arns.image_builder
      }
      container_name    = var.container_name
      log_group         = local.names.task_log_group
      log_stream_prefix = var.log_stream_prefix
      state_machine_arn = local.arns.state_machine
      ledger_table      = local.names.ledger_table
    }
  }

  # The definition is generated from crates/rollout/src/asl.rs (`make infra-template`); never edit the template.
  state_machine_definition = templatefile("${path.module}/state-machine.asl.json.tftpl", {
    partition             = var.partition
    cluster_arn           = local.arns.cluster
    assign_public_ip      = var.assign_public_ip ? "ENABLED" : "DISABLED"
    notifier_arn          = local.arns.notifier
    container_name        = var.container_name
    subnets               = var.subnet_ids
    security_groups       = var.security_group_ids
    approval_timeout_secs = var.approval_timeout_seconds
    ledger_table          = local.names.ledger_table
  })
}
