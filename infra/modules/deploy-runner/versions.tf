terraform {
  # Cross-variable validations (render/variables.tf) need 1.9.
  required_version = ">= 1.9.0"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # logging_config on aws_lambda_function arrived in 5.31.
      version = ">= 5.31.0, < 7.0.0"
    }
  }
}
