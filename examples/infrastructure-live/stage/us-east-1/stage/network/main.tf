# A stand-in module: terraform_data needs no provider, so plan and apply run offline.
variable "account_name" { type = string }
variable "environment" { type = string }
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
