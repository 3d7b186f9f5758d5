//! The deployment ledger and the apply locks in one DynamoDB table (on demand; partition key `pk`, sort key `sk`):
//! per scope (`pk` = repo and apply ref), one item per account (`sk` = `account#<name>`: commit, run_id,
//! recorded_at) and the lock (`sk` = `lock`: run_id, commit, holder, acquired_at). Every write is conditional, so
//! two invokers (or the state machine and an invoker) can never both believe they hold the lock.

use crate::port_error;
use aws_sdk_dynamodb as dynamodb;
use aws_sdk_dynamodb::types::AttributeValue;
use deploy_runner_control::ports::{LedgerStore, PortError};
use deploy_runner_rollout::execution::{ledger_account_key, LOCK_SORT_KEY};
use deploy_runner_rollout::{ApplyLock, LedgerEntry, LedgerScope, LedgerView};
use std::collections::HashMap;

/// The table's port for the invoker.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: dynamodb::Client,
    table: String,
}

impl DynamoLedger {
    /// Wraps a client (built once at init) for `table`.
    pub fn new(client: dynamodb::Client, table: &str) -> DynamoLedger {
        DynamoLedger { client, table: table.to_owned() }
    }

    /// Builds the client from shared configuration.
    pub fn from_config(config: &aws_config::SdkConfig, table: &str) -> DynamoLedger {
        DynamoLedger::new(dynamodb::Client::new(config), table)
    }

    fn key(scope: &LedgerScope, sort: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(scope.key())),
            ("sk".to_owned(), AttributeValue::S(sort.to_owned())),
        ])
    }

    async fn current_lock(&self, scope: &LedgerScope) -> Result<Option<ApplyLock>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(DynamoLedger::key(scope, LOCK_SORT_KEY)))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        Ok(output.item().map(lock_of))
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn lock_of(item: &HashMap<String, AttributeValue>) -> ApplyLock {
    ApplyLock {
        run_id: text(item, "run_id"),
        commit: text(item, "commit"),
        holder: text(item, "holder"),
        acquired_at: text(item, "acquired_at"),
    }
}

fn is_condition_failure<E: dynamodb::error::ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

impl LedgerStore for DynamoLedger {
    async fn read(&self, scope: &LedgerScope) -> Result<LedgerView, PortError> {
        let mut view = LedgerView::empty(scope);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(scope.key()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(port_error)?;
            for item in output.items() {
                let sort = text(item, "sk");
                if sort == LOCK_SORT_KEY {
                    view.lock = Some(lock_of(item));
                } else if let Some(account) = sort.strip_prefix("account#") {
                    let optional = |name: &str| Some(text(item, name)).filter(|v| !v.is_empty());
                    view.accounts.push(LedgerEntry {
                        account: account.to_owned(),
                        commit: optional("commit"),
                        run_id: text(item, "run_id"),
                        recorded_at: text(item, "recorded_at"),
                        baseline: optional("baseline"),
                    });
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        view.accounts.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(view)
    }

    async fn acquire(
        &self,
        scope: &LedgerScope,
        lock: &ApplyLock,
        replacing: Option<&ApplyLock>,
    ) -> Result<Option<ApplyLock>, PortError> {
        // A lock released between a refused put and the read of its holder is free again: try once more.
        for _ in 0..3 {
            let mut item = DynamoLedger::key(scope, LOCK_SORT_KEY);
            for (name, value) in [
                ("run_id", &lock.run_id),
                ("commit", &lock.commit),
                ("holder", &lock.holder),
                ("acquired_at", &lock.acquired_at),
            ] {
                item.insert(name.to_owned(), AttributeValue::S(value.clone()));
            }
            let mut put = self.client.put_item().table_name(&self.table).set_item(Some(item));
            put = match replacing {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(old) => put
                    .condition_expression("attribute_not_exists(pk) OR (#run = :old_run AND #holder = :old_holder)")
                    .expression_attribute_names("#run", "run_id")
                    .expression_attribute_names("#holder", "holder")
                    .expression_attribute_values(":old_run", AttributeValue::S(old.run_id.clone()))
                    .expression_attribute_values(":old_holder", AttributeValue::S(old.holder.clone())),
            };
            match put.send().await {
                Ok(_) => return Ok(None),
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                    if let Some(current) = self.current_lock(scope).await? {
                        return Ok(Some(current));
                    }
                }
                Err(e) => return Err(port_error(e)),
            }
        }
        Err(PortError {
            kind: deploy_runner_control::ports::PortErrorKind::Throttled,
            message: "the apply lock kept changing hands; ask again".into(),
        })
    }

    async fn set_baseline(
        &self,
        scope: &LedgerScope,
        account: &str,
        base: &str,
        run_id: &str,
        at: &str,
    ) -> Result<(), PortError> {
        let mut item = DynamoLedger::key(scope, &ledger_account_key(account));
        for (name, value) in [("baseline", base), ("run_id", run_id), ("recorded_at", at)] {
            item.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            // The account has an entry already (deployed, or another rollout's baseline): it stays.
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(()),
            Err(e) => Err(port_error(e)),
            Ok(_) => Ok(()),
        }
    }

    async fn release(&self, scope: &LedgerScope, run_id: &str) -> Result<(), PortError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(DynamoLedger::key(scope, LOCK_SORT_KEY)))
            .condition_expression("#run = :run")
            .expression_attribute_names("#run", "run_id")
            .expression_attribute_values(":run", AttributeValue::S(run_id.to_owned()))
            .send()
            .await;
        match deleted {
            // Not ours (any more): nothing to give back.
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(()),
            Err(e) => Err(port_error(e)),
            Ok(_) => Ok(()),
        }
    }
}
