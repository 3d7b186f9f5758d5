locals {
  environment   = "mgmt"
  network_index = 0
}
