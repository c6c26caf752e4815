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
