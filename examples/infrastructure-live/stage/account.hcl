locals {
  account_name = "stage"
}
