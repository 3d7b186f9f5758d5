//! `accounts.json`: each account's rollout position (`deploy_order`, lower first).

use serde::Deserialize;
use std::collections::BTreeMap;

/// Why `accounts.json` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The file is missing at the revision.
    #[error("{0} not found (pass --accounts to point elsewhere)")]
    Missing(String),
    /// The file is not the expected JSON.
    #[error("{path} is not a valid accounts file: {message}")]
    Invalid {
        /// Where it came from.
        path: String,
        /// The parse error.
        message: String,
    },
}

#[derive(Deserialize)]
struct AccountEntry {
    deploy_order: u64,
    // `id`, `root_user_email` and other fields are allowed and ignored.
}

/// Account name -> deploy order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountOrder(pub BTreeMap<String, u64>);

impl AccountOrder {
    /// Parses `{ "<account>": {"deploy_order": N, ...} }`; `origin` names the file in errors.
    pub fn parse(text: &[u8], origin: &str) -> Result<AccountOrder, AccountsError> {
        let entries: BTreeMap<String, AccountEntry> = serde_json::from_slice(text)
            .map_err(|e| AccountsError::Invalid { path: origin.to_owned(), message: e.to_string() })?;
        Ok(AccountOrder(entries.into_iter().map(|(name, e)| (name, e.deploy_order)).collect()))
    }

    /// The deploy order of `account`.
    pub fn order(&self, account: &str) -> Option<u64> {
        self.0.get(account).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_ignores_extra_fields() {
        let text =
            br#"{"dev": {"id": "111", "deploy_order": 1, "root_user_email": "x@y"}, "prod": {"deploy_order": 3}}"#;
        let order = AccountOrder::parse(text, "accounts.json").expect("valid");
        assert_eq!(order.order("dev"), Some(1));
        assert_eq!(order.order("prod"), Some(3));
        assert_eq!(order.order("stage"), None);
    }

    #[test]
    fn rejects_bad_files() {
        for bad in [
            &b"[]"[..],
            b"{\"dev\": {}}",
            b"{\"dev\": {\"deploy_order\": -1}}",
            b"{\"dev\": {\"deploy_order\": \"1\"}}",
            b"nope",
        ] {
            let err = AccountOrder::parse(bad, "accounts.json").expect_err("invalid");
            assert!(err.to_string().contains("accounts.json"), "{err}");
        }
    }
}
