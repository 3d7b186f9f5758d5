# The parent module passes its variables through; the validations live here so the tests exercise them.

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and dashes (it prefixes IAM role and Lambda names)."
  }
}

variable "partition" {
  description = "The AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "region" {
  description = "The region the control plane runs in."
  type        = string
}

variable "account_id" {
  description = "The account the control plane runs in."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "infrastructure_live_repos" {
  description = "infrastructure-live repos the gate admits: exact URLs and anchored regexes."
  type        = object({ exact = list(string), regex = list(string) })
  validation {
    condition     = length(var.infrastructure_live_repos.exact) + length(var.infrastructure_live_repos.regex) > 0
    error_message = "infrastructure_live_repos must admit at least one repo."
  }
}

variable "app_repos" {
  description = "App repos allowed to build images: exact URLs and anchored regexes."
  type        = object({ exact = list(string), regex = list(string) })
}

variable "apply_refs" {
  description = "Branches an apply may run from."
  type        = list(string)
  validation {
    condition     = length(var.apply_refs) > 0
    error_message = "apply_refs must name at least one branch."
  }
}

variable "accounts" {
  description = "Accounts by name: id, deploy_order, and the roles the planner and applier assume there."
  type = map(object({
    id              = string
    deploy_order    = number
    plan_role_arn   = string
    deploy_role_arn = string
  }))
  validation {
    condition     = length(var.accounts) > 0
    error_message = "accounts must name at least one account."
  }
  validation {
    condition     = alltrue([for a in values(var.accounts) : can(regex("^[0-9]{12}$", a.id))])
    error_message = "every account id must be 12 digits."
  }
  validation {
    condition     = alltrue([for a in values(var.accounts) : a.deploy_order >= 1 && floor(a.deploy_order) == a.deploy_order])
    error_message = "every deploy_order must be a whole number of at least 1."
  }
  validation {
    condition = alltrue(flatten([for a in values(var.accounts) : [
      for arn in [a.plan_role_arn, a.deploy_role_arn] : can(regex("^arn:aws[a-z-]*:iam::${a.id}:role/[\\w+=,.@/-]+$", arn))
    ]]))
    error_message = "plan_role_arn and deploy_role_arn must be IAM role ARNs in their own account."
  }
}

variable "path_guards" {
  description = "Anchored regexes of unit paths no request may touch (the pipeline's own units)."
  type        = list(string)
}

variable "update_variable_names" {
  description = "Variables deploy-image (update-variable) may change."
  type        = list(string)
}

variable "tool_binary" {
  description = "terragrunt or terraform."
  type        = string
  validation {
    condition     = contains(["terragrunt", "terraform"], var.tool_binary)
    error_message = "tool_binary must be terragrunt or terraform."
  }
}

variable "approval_accounts" {
  description = "Accounts whose apply waves wait for approve/reject."
  type        = list(string)
  validation {
    condition     = alltrue([for a in var.approval_accounts : contains(keys(var.accounts), a)])
    error_message = "every approval account must be one of accounts."
  }
}

variable "approval_timeout_seconds" {
  description = "How long an approval waits before the wave fails."
  type        = number
  validation {
    condition     = var.approval_timeout_seconds >= 60 && var.approval_timeout_seconds <= 31536000
    error_message = "approval_timeout_seconds must be between 60 and 31536000 (one year, the Step Functions limit)."
  }
}

variable "container_name" {
  description = "The container in every task definition (its exit code decides a wave)."
  type        = string
  validation {
    # It also sits inside a JSONPath filter of the state machine, so quotes and the like are out.
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.container_name))
    error_message = "container_name must be letters, digits, '-' and '_'."
  }
}

variable "subnet_ids" {
  description = "Subnets the tasks run in."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet (Fargate uses awsvpc)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (public subnets without NAT only)."
  type        = bool
}

variable "task_definition_arns" {
  description = "The deployed task definitions (null while only IAM is rendered)."
  type        = object({ planner = string, applier = string, image_builder = string })
  default     = null
}

variable "log_stream_prefix" {
  description = "The awslogs stream prefix of the tasks."
  type        = string
}

variable "runner_image" {
  description = "The planner's and applier's image (docker/runner.Dockerfile), pinned by digest."
  type        = string
}

variable "image_builder_image" {
  description = "The image builder's image (docker/image-builder.Dockerfile), pinned by digest."
  type        = string
}

variable "pull_repository_arns" {
  description = "ECR repositories the task images are pulled from (empty when they come from elsewhere)."
  type        = list(string)
}

variable "app_image_repository" {
  description = "The ECR repository app images are pushed to: its URL and ARN (null: build-image is unavailable)."
  type        = object({ url = string, arn = string })
}

variable "github_read_token_secret_arn" {
  type    = string
  default = null
}

variable "ssh_read_key_secret_arn" {
  type    = string
  default = null
}

variable "release_tag_patterns" {
  type    = list(string)
  default = []
}

variable "max_parallel_units" {
  type    = number
  default = 8
}

variable "github_token_secret_arn" {
  description = "Secrets Manager secret holding the GitHub token (null when the tasks use an SSH key)."
  type        = string
}

variable "ssh_private_key_secret_arn" {
  description = "Secrets Manager secret holding the SSH deploy key (null when the tasks use a token)."
  type        = string
  validation {
    condition = anytrue([for arn in [var.github_read_token_secret_arn, var.github_token_secret_arn,
    var.ssh_read_key_secret_arn, var.ssh_private_key_secret_arn] : arn != null])
    error_message = "the tasks need git credentials: set github_read_token_secret_arn (and github_token_secret_arn for update-variable's push), or the SSH key equivalents."
  }
}

variable "ssh_known_hosts" {
  description = "Pinned known_hosts lines for SSH clones (required with an SSH key)."
  type        = string
  validation {
    condition     = (var.ssh_private_key_secret_arn == null && var.ssh_read_key_secret_arn == null) || try(length(trimspace(var.ssh_known_hosts)) > 0, false)
    error_message = "ssh_known_hosts must pin the git host's keys when an SSH key secret is set."
  }
}

variable "slack_webhook_secret_arn" {
  description = "Secrets Manager secret holding the Slack Workflow webhook URL."
  type        = string
}

variable "kms_key_arn" {
  description = "The customer managed key of the log groups and secrets (null: AWS managed keys)."
  type        = string
}

variable "terragrunt_run_style" {
  description = "Run terragrunt as `terragrunt run -- <command>` (terragrunt 0.73+)."
  type        = bool
}
