locals {
  environment   = "stage"
  network_index = 2
}
