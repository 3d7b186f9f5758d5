locals {
  environment   = "dev"
  network_index = 1
}
