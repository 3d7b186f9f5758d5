output "invoker_function_name" {
  description = "What CI passes as `deploy-runner ci --function-name`."
  value       = aws_lambda_function.this["invoker"].function_name
}

output "invoker_function_arn" {
  description = "The invoker's ARN (the only thing CI may invoke)."
  value       = aws_lambda_function.this["invoker"].arn
}

output "approver_function_name" {
  description = "What approvers pass as `deploy-runner approve|reject --function-name`."
  value       = aws_lambda_function.this["approver"].function_name
}

output "approver_function_arn" {
  description = "The approvals entry point (approvers may invoke it; CI may not)."
  value       = aws_lambda_function.this["approver"].arn
}

output "notifier_function_arn" {
  description = "The notifier's ARN."
  value       = aws_lambda_function.this["notifier"].arn
}

output "state_machine_arn" {
  description = "The rollout state machine."
  value       = aws_sfn_state_machine.rollouts.arn
}

output "ledger_table_name" {
  description = "The DynamoDB table of the deployment ledger and the apply locks (docs/rollouts.md: the ledger)."
  value       = aws_dynamodb_table.ledger.name
}

output "cluster_arn" {
  description = "The ECS cluster the tasks run on."
  value       = aws_ecs_cluster.this.arn
}

output "task_log_group" {
  description = "The log group of every task (streams: deploy-runner/runner/<task-id>)."
  value       = aws_cloudwatch_log_group.this["tasks"].name
}

output "invoker_log_group" {
  description = "The invoker's log group: one JSON audit line per decision."
  value       = aws_cloudwatch_log_group.this["invoker"].name
}

output "task_definition_arns" {
  description = "planner, applier and image_builder task definitions."
  value       = { for key, definition in aws_ecs_task_definition.task : key => definition.arn }
}

output "role_names" {
  description = "Every role the module creates, e.g. to attach an extra policy to image_builder_task for build-ami."
  value       = { for key, role in aws_iam_role.this : key => role.name }
}

output "ci_user_name" {
  description = "The CI machine user (null when create_ci_user is false); create its access key by hand."
  value       = try(aws_iam_user.ci[0].name, null)
}

output "ci_policy_json" {
  description = "The invoke-only policy, for CI principals managed elsewhere."
  value       = module.render.iam_policies_json.ci
}
