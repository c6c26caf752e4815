//! FaceId ⇄ user records in a DynamoDB table: partition key `FaceId`, attribute `Username`,
//! and a global secondary index `ByUser` on `Username` for a user's faces.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::errors;
use crate::backend::{BackendError, Directory, FaceRecord};

pub const FACE_ID: &str = "FaceId";
pub const USERNAME: &str = "Username";
pub const INDEXED_AT: &str = "IndexedAtMs";
pub const BY_USER_INDEX: &str = "ByUser";

#[derive(Clone)]
pub struct DynamoDirectory {
    client: Client,
    table: String,
}

impl DynamoDirectory {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl Directory for DynamoDirectory {
    async fn put_face(&self, record: FaceRecord) -> Result<(), BackendError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(FACE_ID, AttributeValue::S(record.face_id))
            .item(USERNAME, AttributeValue::S(record.username))
            .item(
                INDEXED_AT,
                AttributeValue::N(record.indexed_at_ms.to_string()),
            )
            .send()
            .await
            .map_err(|e| errors::map("DynamoDB PutItem", e))?;
        Ok(())
    }

    async fn user_of_face(&self, face_id: &str) -> Result<Option<String>, BackendError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(FACE_ID, AttributeValue::S(face_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| errors::map("DynamoDB GetItem", e))?;
        Ok(out
            .item()
            .and_then(|item| item.get(USERNAME))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    async fn faces_of_user(&self, username: &str) -> Result<Vec<String>, BackendError> {
        let mut faces = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_USER_INDEX)
                .key_condition_expression("#u = :u")
                .expression_attribute_names("#u", USERNAME)
                .expression_attribute_values(":u", AttributeValue::S(username.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| errors::map("DynamoDB Query", e))?;
            faces.extend(
                out.items()
                    .iter()
                    .filter_map(|item| item.get(FACE_ID)?.as_s().ok().cloned()),
            );
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(faces);
            }
        }
    }

    async fn delete_face(&self, face_id: &str) -> Result<(), BackendError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(FACE_ID, AttributeValue::S(face_id.into()))
            .send()
            .await
            .map_err(|e| errors::map("DynamoDB DeleteItem", e))?;
        Ok(())
    }
}

/// The triggers' ledger in a DynamoDB table of its own (partition key `Key`; `ExpiresAt` in
/// seconds is its TTL attribute): `verdict#ID` items with `Correct`, and `failures#USER` items
/// with the list `Failures` of failure times (ms). Only the Lambda's role may write it.
#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

pub const LEDGER_KEY: &str = "Key";
const CORRECT: &str = "Correct";
const FAILURES: &str = "Failures";
const EXPIRES_AT: &str = "ExpiresAt";
/// Failure times kept per user before the list is trimmed.
const MAX_FAILURES_KEPT: usize = 64;

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn item(
        &self,
        key: String,
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, BackendError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(LEDGER_KEY, AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| errors::map("DynamoDB GetItem", e))?;
        Ok(out.item().cloned())
    }

    async fn failure_times(&self, username: &str) -> Result<Vec<u64>, BackendError> {
        let item = self.item(format!("failures#{username}")).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(FAILURES))
            .and_then(|v| v.as_l().ok())
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_n().ok()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn seconds(ms: u64) -> AttributeValue {
    AttributeValue::N((ms / 1000 + 1).to_string())
}

#[async_trait]
impl crate::backend::TriggerLedger for DynamoLedger {
    async fn verdict(&self, id: &str) -> Result<Option<bool>, BackendError> {
        let item = self.item(format!("verdict#{id}")).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(CORRECT))
            .and_then(|v| v.as_bool().ok())
            .copied())
    }

    async fn file_verdict(
        &self,
        id: &str,
        correct: bool,
        expires_at_ms: u64,
    ) -> Result<bool, BackendError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(LEDGER_KEY, AttributeValue::S(format!("verdict#{id}")))
            .item(CORRECT, AttributeValue::Bool(correct))
            .item(EXPIRES_AT, seconds(expires_at_ms))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", LEDGER_KEY)
            .send()
            .await;
        match put {
            Ok(_) => Ok(correct),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                self.verdict(id)
                    .await?
                    .ok_or_else(|| BackendError::Internal("a filed verdict vanished".into()))
            }
            Err(e) => Err(errors::map("DynamoDB PutItem", e)),
        }
    }

    async fn failures_since(&self, username: &str, since_ms: u64) -> Result<usize, BackendError> {
        Ok(self
            .failure_times(username)
            .await?
            .into_iter()
            .filter(|at| *at >= since_ms)
            .count())
    }

    async fn record_failure(
        &self,
        username: &str,
        at_ms: u64,
        keep_until_ms: u64,
    ) -> Result<(), BackendError> {
        let key = AttributeValue::S(format!("failures#{username}"));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(LEDGER_KEY, key.clone())
            .update_expression("SET #f = list_append(if_not_exists(#f, :empty), :at), #e = :exp")
            .expression_attribute_names("#f", FAILURES)
            .expression_attribute_names("#e", EXPIRES_AT)
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(
                ":at",
                AttributeValue::L(vec![AttributeValue::N(at_ms.to_string())]),
            )
            .expression_attribute_values(":exp", seconds(keep_until_ms))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| errors::map("DynamoDB UpdateItem", e))?;
        let kept = out
            .attributes()
            .and_then(|a| a.get(FAILURES))
            .and_then(|v| v.as_l().ok())
            .map_or(0, Vec::len);
        if kept > MAX_FAILURES_KEPT {
            // Trim to the newest: a lost concurrent failure here only shortens a lockout.
            let mut times = self.failure_times(username).await?;
            times.sort_unstable();
            let newest = times.split_off(times.len() - MAX_FAILURES_KEPT);
            self.client
                .put_item()
                .table_name(&self.table)
                .item(LEDGER_KEY, key)
                .item(
                    FAILURES,
                    AttributeValue::L(
                        newest
                            .iter()
                            .map(|t| AttributeValue::N(t.to_string()))
                            .collect(),
                    ),
                )
                .item(EXPIRES_AT, seconds(keep_until_ms))
                .send()
                .await
                .map_err(|e| errors::map("DynamoDB PutItem", e))?;
        }
        Ok(())
    }

    async fn clear_failures(&self, username: &str) -> Result<(), BackendError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(
                LEDGER_KEY,
                AttributeValue::S(format!("failures#{username}")),
            )
            .send()
            .await
            .map_err(|e| errors::map("DynamoDB DeleteItem", e))?;
        Ok(())
    }
}
