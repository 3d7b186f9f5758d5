# Provider-less on purpose: everything here is pure rendering (names, ARNs, JSON documents), so the tests can
# evaluate it with real terraform offline and load the results in the Rust code that consumes them.
terraform {
  required_version = ">= 1.9.0"
}
