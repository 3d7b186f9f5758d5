# ---- Naming and placement -------------------------------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource name (3-32 lowercase letters, digits, dashes)."
  type        = string
  default     = "deploy-runner"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "The VPC the tasks run in."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks: private subnets with a NAT route, or public ones with assign_public_ip."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "egress_cidr_blocks" {
  description = "Where tasks may connect (HTTPS, and SSH when an SSH key is used). Nothing may connect to them."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# ---- The gate policy (mirrors examples/policy.json; see docs/gate.md) ------------------------------------------

variable "infrastructure_live_repos" {
  description = "infrastructure-live repos: exact clone URLs, and anchored regexes."
  type        = object({ exact = list(string), regex = optional(list(string), []) })
}

variable "app_repos" {
  description = "App repos allowed to build images: exact clone URLs, and anchored regexes."
  type        = object({ exact = optional(list(string), []), regex = optional(list(string), []) })
  default     = {}
}

variable "apply_refs" {
  description = "Branches an apply may run from."
  type        = list(string)
  default     = ["main"]
}

variable "accounts" {
  description = "Accounts by name: id, deploy_order (waves run in this order), and the read-only and deploy roles the planner and applier assume there."
  type = map(object({
    id              = string
    deploy_order    = number
    plan_role_arn   = string
    deploy_role_arn = string
  }))
}

variable "path_guards" {
  description = "Anchored regexes of unit paths no request may touch: the pipeline's own units."
  type        = list(string)
  default     = ["^.+/ecs-deploy-runner(/.+)?$", "^_envcommon/mgmt/ecs-deploy-runner\\.hcl$"]
}

variable "update_variable_names" {
  description = "Variables deploy-image may change."
  type        = list(string)
  default     = ["image_version", "version", "ami_version_tag", "ami"]
}

variable "tool_binary" {
  description = "terragrunt, terraform or tofu (OpenTofu). The runner image must carry it (docker/runner.Dockerfile)."
  type        = string
  default     = "terragrunt"

  validation {
    condition     = contains(["terragrunt", "terraform", "tofu"], var.tool_binary)
    error_message = "tool_binary must be terragrunt, terraform or tofu."
  }
}

variable "terragrunt_run_style" {
  description = "Run terragrunt as `terragrunt run -- <command>` (terragrunt 0.73+)."
  type        = bool
  default     = true
}

variable "release_tag_patterns" {
  description = "Regexes of release tag names (e.g. \"v[0-9]+\\\\.[0-9]+\\\\.[0-9]+\"): build-image at such a tag may tag the image with its name. Otherwise images are tagged by commit SHA only."
  type        = list(string)
  default     = []
}

variable "max_parallel_units" {
  description = "How many units of a wave the deploy task runs at once, at most, as their dependencies allow (1 to 64). Size task_sizes for that many terraform processes: the AWS provider alone takes a few hundred MiB per running unit."
  type        = number
  default     = 8

  validation {
    condition     = var.max_parallel_units >= 1 && var.max_parallel_units <= 64 && floor(var.max_parallel_units) == var.max_parallel_units
    error_message = "max_parallel_units must be a whole number from 1 to 64."
  }
}

variable "approval_accounts" {
  description = "Accounts whose apply waves wait for `deploy-runner approve`/`reject`."
  type        = list(string)
  default     = []
}

variable "approval_timeout_seconds" {
  description = "How long an approval waits before its wave fails (and the rollout halts)."
  type        = number
  default     = 86400
}

# ---- Code and images ------------------------------------------------------------------------------------------

variable "invoker_zip" {
  description = "Path of the invoker's bootstrap.zip (`make lambda`: target/lambda/deploy-runner-invoker/bootstrap.zip)."
  type        = string
}

variable "notifier_zip" {
  description = "Path of the notifier's bootstrap.zip (`make lambda`: target/lambda/deploy-runner-notifier/bootstrap.zip)."
  type        = string
}

variable "lambda_architecture" {
  description = "x86_64, or arm64 (build with `make lambda LAMBDA_ARCH=--arm64`)."
  type        = string
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
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
  description = "ECR repositories runner_image and image_builder_image come from (empty when they are elsewhere)."
  type        = list(string)
  default     = []
}

variable "app_image_repository" {
  description = "The ECR repository build-image pushes to: url, arn and its image_tag_mutability (pass the repository's own attribute; it must be IMMUTABLE, so no tag is ever overwritten). null: build-image can't push."
  type        = object({ url = string, arn = string, image_tag_mutability = optional(string) })
  default     = null
  validation {
    condition     = try(startswith(var.app_image_repository.image_tag_mutability, "IMMUTABLE"), true)
    error_message = "app_image_repository must have immutable tags (image_tag_mutability = \"IMMUTABLE\"): a branch build could otherwise overwrite a released tag."
  }
}

variable "task_sizes" {
  description = "Fargate cpu/memory of each task definition."
  type        = map(object({ cpu = number, memory = number }))
  default = {
    planner       = { cpu = 1024, memory = 2048 }
    applier       = { cpu = 1024, memory = 2048 }
    image_builder = { cpu = 2048, memory = 4096 }
  }
  validation {
    condition     = alltrue([for key in ["planner", "applier", "image_builder"] : contains(keys(var.task_sizes), key)])
    error_message = "task_sizes must size planner, applier and image_builder."
  }
}

variable "task_cpu_architecture" {
  description = "X86_64 or ARM64: the architecture the task images are built for."
  type        = string
  default     = "X86_64"
}

# ---- Secrets (created outside the module, so their values never enter Terraform state) ------------------------

variable "github_read_token_secret_arn" {
  description = "Secrets Manager secret with a read-only GitHub token (contents: read): every clone and fetch of every task uses it. Plans run anyone's branch, so they only ever get this one."
  type        = string
  default     = null
}

variable "github_token_secret_arn" {
  description = "Secrets Manager secret with the GitHub token that can push: only the applier gets it, and only update-variable's push uses it (also for fetches when github_read_token_secret_arn is null)."
  type        = string
  default     = null
}

variable "ssh_read_key_secret_arn" {
  description = "Secrets Manager secret with a read-only SSH deploy key, the alternative to a read-only token."
  type        = string
  default     = null
}

variable "ssh_private_key_secret_arn" {
  description = "Secrets Manager secret with an SSH deploy key that can push: applier only, like github_token_secret_arn."
  type        = string
  default     = null
}

variable "ssh_known_hosts" {
  description = "Pinned known_hosts lines of the git host (required with an SSH key)."
  type        = string
  default     = null
}

variable "slack_webhook_secret_arn" {
  description = "Secrets Manager secret with the Slack Workflow webhook URL (or {\"url\": ...})."
  type        = string
}

# ---- Logs, keys and CI access ---------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of every log group the module creates. The invoker's is the audit trail (one line per decision): keep it at least a year."
  type        = number
  default     = 365
}

variable "invoker_reserved_concurrency" {
  description = "Reserved concurrency of the invoker (null: none, it shares the account's pool). Caps how many requests CI can have in flight, and guarantees them that much."
  type        = number
  default     = null
}

variable "ledger_deletion_protection" {
  description = "Protect the deployment ledger table from deletion (it records what each account has deployed; losing it makes the next push diff from its own base). Set false only to tear a deployment down."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer managed key for the log groups (its key policy must allow CloudWatch Logs), the Lambdas' environment and the ledger table; null: AWS managed keys."
  type        = string
  default     = null
}

variable "create_ci_user" {
  description = "Create the CI machine user (its only permission: invoke the invoker). Its access key is created by hand, so it never enters state."
  type        = bool
  default     = true
}

variable "ci_role_names" {
  description = "Existing roles (e.g. GitHub OIDC roles) that get the same invoke-only policy."
  type        = list(string)
  default     = []
}

variable "approver_role_names" {
  description = "Existing roles (e.g. your SSO role for release leads) allowed to approve and reject rollout waves: they may invoke the approvals entry point, nothing else. CI's principals must not be among them."
  type        = list(string)
  default     = []
}

variable "approver_user_names" {
  description = "Existing IAM users allowed to approve and reject rollout waves (prefer approver_role_names)."
  type        = list(string)
  default     = []
}
