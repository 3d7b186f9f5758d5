locals {
  environment   = "prod"
  network_index = 3
}
