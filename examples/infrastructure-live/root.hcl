# Shared by every unit through `include "root"`. Reads the account and environment settings of the including unit.
locals {
  account_vars = read_terragrunt_config(find_in_parent_folders("account.hcl"))
  env_vars     = read_terragrunt_config(find_in_parent_folders("env.hcl"))
  account_name = local.account_vars.locals.account_name
  environment  = local.env_vars.locals.environment
}

inputs = {
  account_name = local.account_name
  environment  = local.environment
}
