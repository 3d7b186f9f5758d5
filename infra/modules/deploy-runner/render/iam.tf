# Least-privilege IAM documents, one per principal. Tests render them with real terraform and check that no
# statement grants a `*` action, that `*` resources appear only for actions AWS offers no resource level for
# (see `wildcard_resource_actions`), and that the roles grant what the code calls: the invoker what the AWS
# adapter calls, the state machine what its generated definition uses.

locals {
  # Actions that only accept "Resource": "*" (AWS defines no resource type for them), each with its reason.
  wildcard_resource_actions = {
    "ecr:GetAuthorizationToken" = "registry login tokens are account-wide; ECR has no resource type for them"
    "ecs:ListTasks"             = "ListTasks names no task resource; the ecs:cluster condition confines it to our cluster"
    "states:SendTaskSuccess"    = "a task token is not a resource: AWS defines no resource type for answering one"
    "states:SendTaskFailure"    = "a task token is not a resource: AWS defines no resource type for answering one"
  }

  # Writing a Lambda's own logs into the log group the module creates for it.
  lambda_log_statement = {
    invoker = {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${local.arns.invoker_log_group}:log-stream:*"]
    }
    approver = {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${local.arns.approver_log_group}:log-stream:*"]
    }
    notifier = {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${local.arns.notifier_log_group}:log-stream:*"]
    }
  }

  # RunTask of our task definitions only, and only on our cluster.
  run_task_statement = {
    Sid       = "RunOurTasksOnOurCluster"
    Effect    = "Allow"
    Action    = ["ecs:RunTask"]
    Resource  = local.arns.task_definitions
    Condition = { ArnEquals = { "ecs:cluster" = local.arns.cluster } }
  }

  # RunTask with tags needs TagResource on the new task.
  tag_task_statement = {
    Sid       = "TagTasksAtLaunch"
    Effect    = "Allow"
    Action    = ["ecs:TagResource"]
    Resource  = [local.arns.tasks_in_cluster]
    Condition = { StringEquals = { "ecs:CreateAction" = "RunTask" } }
  }

  pass_task_roles_statement = {
    Sid       = "PassTaskRolesToEcs"
    Effect    = "Allow"
    Action    = ["iam:PassRole"]
    Resource  = local.task_role_arns
    Condition = { StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" } }
  }

  # Logging in to ECR, to pull or push (see wildcard_resource_actions).
  ecr_login_statement = {
    Sid      = "EcrLogin"
    Effect   = "Allow"
    Action   = ["ecr:GetAuthorizationToken"]
    Resource = ["*"]
  }

  kms_decrypt_statements = var.kms_key_arn == null ? [] : [{
    Sid      = "DecryptWithTheModuleKey"
    Effect   = "Allow"
    Action   = ["kms:Decrypt"]
    Resource = [var.kms_key_arn]
  }]

  git_secret_arns = compact([
    var.github_read_token_secret_arn, var.github_token_secret_arn,
    var.ssh_read_key_secret_arn, var.ssh_private_key_secret_arn,
  ])

  iam_policies = {
    # CI's machine user (or role): invoke the invoker, nothing else. Not the approver: CI can't approve.
    ci = {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "InvokeTheInvokerOnly"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [local.arns.invoker]
      }]
    }

    # The approvers (people, or their SSO roles): invoke the approvals entry point, nothing else.
    approvers = {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "InvokeTheApproverOnly"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [local.arns.approver]
      }]
    }

    # The approvals entry point: find a rollout's waiting approval and answer its task token. Nothing else; it
    # starts nothing.
    approver = {
      Version = "2012-10-17"
      Statement = concat([
        {
          Sid      = "FollowRollouts"
          Effect   = "Allow"
          Action   = ["states:DescribeExecution", "states:GetExecutionHistory"]
          Resource = [local.arns.executions]
        },
        {
          # Task tokens have no resource type: "*" is the only resource these actions accept (see above).
          Sid      = "AnswerApprovals"
          Effect   = "Allow"
          Action   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
          Resource = ["*"]
        },
        local.lambda_log_statement.approver,
      ], local.kms_decrypt_statements)
    }

    # The Lambdas' environment is encrypted with kms_key_arn when it is set: kms_decrypt_statements.
    invoker = {
      Version = "2012-10-17"
      Statement = concat([
        local.run_task_statement,
        local.tag_task_statement,
        local.pass_task_roles_statement,
        {
          # Finding a run's task by its run-id tag (status/logs of single-task runs).
          Sid       = "FindRunsOnOurCluster"
          Effect    = "Allow"
          Action    = ["ecs:ListTasks"]
          Resource  = ["*"]
          Condition = { ArnEquals = { "ecs:cluster" = local.arns.cluster } }
        },
        {
          Sid      = "FollowOurTasks"
          Effect   = "Allow"
          Action   = ["ecs:DescribeTasks"]
          Resource = [local.arns.tasks_in_cluster]
        },
        {
          Sid      = "ReadTaskLogs"
          Effect   = "Allow"
          Action   = ["logs:GetLogEvents"]
          Resource = ["${local.arns.task_log_group}:log-stream:*"]
        },
        {
          Sid      = "StartRollouts"
          Effect   = "Allow"
          Action   = ["states:StartExecution"]
          Resource = [local.arns.state_machine]
        },
        {
          Sid      = "FollowRollouts"
          Effect   = "Allow"
          Action   = ["states:DescribeExecution", "states:GetExecutionHistory"]
          Resource = [local.arns.executions]
        },
        {
          # Read the deployment ledger; take, reclaim and (when a start fails) give back the apply lock.
          Sid      = "LedgerAndApplyLock"
          Effect   = "Allow"
          Action   = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
          Resource = [local.arns.ledger_table]
        },
        local.lambda_log_statement.invoker,
      ], local.kms_decrypt_statements)
    }

    notifier = {
      Version = "2012-10-17"
      Statement = concat([
        {
          Sid      = "ReadTheSlackWebhook"
          Effect   = "Allow"
          Action   = ["secretsmanager:GetSecretValue"]
          Resource = [var.slack_webhook_secret_arn]
        },
        local.lambda_log_statement.notifier,
      ], local.kms_decrypt_statements)
    }

    # What `arn:aws:states:::ecs:runTask.sync` and `lambda:invoke` need (a test derives this from the definition).
    state_machine = {
      Version = "2012-10-17"
      Statement = [
        local.run_task_statement,
        local.tag_task_statement,
        local.pass_task_roles_statement,
        {
          Sid      = "WaitForAndStopOurTasks"
          Effect   = "Allow"
          Action   = ["ecs:DescribeTasks", "ecs:StopTask"]
          Resource = [local.arns.tasks_in_cluster]
        },
        {
          # .sync learns that a task stopped through this managed EventBridge rule.
          Sid      = "SyncWithEcsThroughEventBridge"
          Effect   = "Allow"
          Action   = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
          Resource = [local.arns.ecs_events_rule]
        },
        {
          Sid      = "Notify"
          Effect   = "Allow"
          Action   = ["lambda:InvokeFunction"]
          Resource = [local.arns.notifier, "${local.arns.notifier}:*"]
        },
        {
          # Record a succeeded wave in the ledger; release the apply lock when the rollout stops.
          Sid      = "RecordWavesAndReleaseTheLock"
          Effect   = "Allow"
          Action   = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]
          Resource = [local.arns.ledger_table]
        },
      ]
    }

    # ECS itself, starting a task: pull the image, write its logs, inject its secrets.
    task_execution = {
      Version = "2012-10-17"
      Statement = concat(
        length(var.pull_repository_arns) == 0 ? [] : [
          local.ecr_login_statement,
          {
            Sid      = "PullTaskImages"
            Effect   = "Allow"
            Action   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
            Resource = var.pull_repository_arns
          },
        ],
        [
          {
            Sid      = "WriteTaskLogs"
            Effect   = "Allow"
            Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
            Resource = ["${local.arns.task_log_group}:log-stream:*"]
          },
          {
            Sid      = "InjectGitCredentials"
            Effect   = "Allow"
            Action   = ["secretsmanager:GetSecretValue"]
            Resource = local.git_secret_arns
          },
        ],
        local.kms_decrypt_statements,
      )
    }

    # The planner runs on every branch, and terraform has escape hatches (external data sources), so it only gets
    # the read-only role of each account.
    planner_task = {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "AssumeReadOnlyRoles"
        Effect   = "Allow"
        Action   = ["sts:AssumeRole"]
        Resource = sort([for a in values(var.accounts) : a.plan_role_arn])
      }]
    }

    # The applier assumes each account's deploy role (which trusts this role: the seed's
    # allow-auto-deploy-from-other-accounts pattern).
    applier_task = {
      Version = "2012-10-17"
      Statement = [{
        Sid      = "AssumeDeployRoles"
        Effect   = "Allow"
        Action   = ["sts:AssumeRole"]
        Resource = sort([for a in values(var.accounts) : a.deploy_role_arn])
      }]
    }

    # kaniko pushes app images to the one app repository (and reads it to skip tags that exist).
    # kaniko pushes app images to the one app repository (and reads it to skip tags that exist). Without one,
    # the role gets no policy at all.
    image_builder_task = var.app_image_repository == null ? null : {
      Version = "2012-10-17"
      Statement = [
        local.ecr_login_statement,
        {
          Sid    = "PushAppImages"
          Effect = "Allow"
          Action = [
            "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
            "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart",
          ]
          Resource = [var.app_image_repository.arn]
        },
      ]
    }
  }

  # Who may assume each role.
  assume_role_policies = {
    lambda = {
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "lambda.amazonaws.com" }
        Action    = ["sts:AssumeRole"]
        Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
      }]
    }
    ecs_tasks = {
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "ecs-tasks.amazonaws.com" }
        Action    = ["sts:AssumeRole"]
        Condition = {
          StringEquals = { "aws:SourceAccount" = var.account_id }
          ArnLike      = { "aws:SourceArn" = "${local.arn_prefix}:ecs:${var.region}:${var.account_id}:*" }
        }
      }]
    }
    states = {
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "states.amazonaws.com" }
        Action    = ["sts:AssumeRole"]
        Condition = {
          StringEquals = { "aws:SourceAccount" = var.account_id }
          ArnLike      = { "aws:SourceArn" = local.arns.state_machine }
        }
      }]
    }
  }
}
