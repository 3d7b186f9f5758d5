# Common settings of the app component in every environment.
locals {
  env_vars = read_terragrunt_config(find_in_parent_folders("env.hcl"))
}

inputs = {
  replicas      = 2
  image_version = "v1.4.0"
}
