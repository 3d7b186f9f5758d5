locals {
  account_name = "shared"
}
