# A complete deployment of deploy-runner's control plane into the shared-services (or "mgmt") account.
# Build the Lambdas first: `make lambda` (add LAMBDA_ARCH=--arm64 with lambda_architecture = "arm64").

terraform {
  required_version = ">= 1.9.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Where the control plane runs."
  type        = string
  default     = "us-east-1"
}

variable "vpc_id" {
  description = "The VPC of the tasks."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets with a NAT route."
  type        = list(string)
}

variable "runner_image" {
  description = "docker/runner.Dockerfile, pushed to ECR and pinned by digest."
  type        = string
}

variable "image_builder_image" {
  description = "docker/image-builder.Dockerfile, pushed to ECR and pinned by digest."
  type        = string
}

# The secrets are created by hand (see docs/deploying.md), so their values never enter Terraform state.
data "aws_secretsmanager_secret" "github_read_token" {
  name = "deploy-runner/github-read-token"
}

data "aws_secretsmanager_secret" "github_token" {
  name = "deploy-runner/github-token"
}

data "aws_secretsmanager_secret" "slack_webhook" {
  name = "deploy-runner/slack-webhook"
}

data "aws_ecr_repository" "runner" {
  name = "deploy-runner"
}

data "aws_ecr_repository" "image_builder" {
  name = "deploy-runner-image-builder"
}

data "aws_ecr_repository" "apps" {
  name = "apps"
}

module "deploy_runner" {
  source = "../../modules/deploy-runner"

  name       = "deploy-runner"
  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids

  infrastructure_live_repos = { exact = ["https://github.com/acme/infrastructure-live.git"] }
  app_repos                 = { regex = ["https://github\\.com/acme/svc-[a-z0-9-]+\\.git"] }
  apply_refs                = ["main"]
  approval_accounts         = ["prod"]
  accounts = {
    shared = {
      id              = "000000000000"
      deploy_order    = 1
      plan_role_arn   = "arn:aws:iam::000000000000:role/deploy-runner-read-only"
      deploy_role_arn = "arn:aws:iam::000000000000:role/allow-auto-deploy-from-other-accounts"
    }
    dev = {
      id              = "111111111111"
      deploy_order    = 2
      plan_role_arn   = "arn:aws:iam::111111111111:role/deploy-runner-read-only"
      deploy_role_arn = "arn:aws:iam::111111111111:role/allow-auto-deploy-from-other-accounts"
    }
    stage = {
      id              = "222222222222"
      deploy_order    = 3
      plan_role_arn   = "arn:aws:iam::222222222222:role/deploy-runner-read-only"
      deploy_role_arn = "arn:aws:iam::222222222222:role/allow-auto-deploy-from-other-accounts"
    }
    prod = {
      id              = "333333333333"
      deploy_order    = 4
      plan_role_arn   = "arn:aws:iam::333333333333:role/deploy-runner-read-only"
      deploy_role_arn = "arn:aws:iam::333333333333:role/allow-auto-deploy-from-other-accounts"
    }
  }

  invoker_zip  = "${path.root}/../../../target/lambda/deploy-runner-invoker/bootstrap.zip"
  notifier_zip = "${path.root}/../../../target/lambda/deploy-runner-notifier/bootstrap.zip"

  runner_image         = var.runner_image
  image_builder_image  = var.image_builder_image
  pull_repository_arns = [data.aws_ecr_repository.runner.arn, data.aws_ecr_repository.image_builder.arn]
  app_image_repository = {
    url                  = data.aws_ecr_repository.apps.repository_url
    arn                  = data.aws_ecr_repository.apps.arn
    image_tag_mutability = data.aws_ecr_repository.apps.image_tag_mutability
  }
  release_tag_patterns = ["v[0-9]+\\.[0-9]+\\.[0-9]+"]

  # Plans, validates and builds clone with the read-only token; only update-variable's push uses the other.
  github_read_token_secret_arn = data.aws_secretsmanager_secret.github_read_token.arn
  github_token_secret_arn      = data.aws_secretsmanager_secret.github_token.arn
  slack_webhook_secret_arn     = data.aws_secretsmanager_secret.slack_webhook.arn
}

output "invoker_function_name" {
  description = "deploy-runner ci --function-name"
  value       = module.deploy_runner.invoker_function_name
}

output "state_machine_arn" {
  description = "The rollout state machine."
  value       = module.deploy_runner.state_machine_arn
}

output "ci_user_name" {
  description = "Create its access key by hand: aws iam create-access-key --user-name <this>."
  value       = module.deploy_runner.ci_user_name
}
