# Common settings of the network component in every environment.
locals {
  env_vars = read_terragrunt_config(find_in_parent_folders("env.hcl"))
  cidr     = "10.${local.env_vars.locals.network_index}.0.0/16"
}

inputs = {
  cidr = local.cidr
}
