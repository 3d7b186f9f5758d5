# A stand-in module: terraform_data needs no provider, so plan and apply run offline.
# Terragrunt passes these from root.hcl's inputs; the defaults let plain terraform run the unit too.
variable "account_name" {
  type    = string
  default = "example"
}

variable "environment" {
  type    = string
  default = "example"
}

variable "settings" {
  type    = map(string)
  default = {}
}

resource "terraform_data" "this" {
  input = {
    account     = var.account_name
    environment = var.environment
    settings    = var.settings
  }
}

output "id" {
  value = terraform_data.this.id
}
