//! The sign-in and sign-up buckets through `aws-sdk-s3`: frames are written with server-side
//! encryption and their content type; a missing object is `None`, not an error.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::errors;
use crate::backend::{BackendError, ObjectInfo, ObjectStore};

/// One bucket.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the bucket exists (for `facegate doctor`). A 403 means it exists but this
    /// identity may not list it, which is how the device policy is meant to be.
    pub async fn check_exists(&self) -> Result<&'static str, BackendError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok("exists"),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match (status, e.code()) {
                    (Some(403), _) | (_, Some("Forbidden" | "AccessDenied")) => {
                        Ok("exists (this identity may not list it)")
                    }
                    (Some(404), _) | (_, Some("NotFound" | "NoSuchBucket")) => Err(
                        BackendError::Rejected(format!("bucket {} does not exist", self.bucket)),
                    ),
                    _ => Err(errors::map("S3 HeadBucket", e)),
                }
            }
        }
    }
}

fn is_not_found(code: Option<&str>) -> bool {
    matches!(code, Some("NoSuchKey" | "NotFound" | "404"))
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BackendError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| errors::map("S3 PutObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if is_not_found(e.code()) => return Ok(None),
            Err(e) => return Err(errors::map("S3 GetObject", e)),
        };
        let body = output.body.collect().await.map_err(|e| {
            BackendError::Unavailable(format!("S3 GetObject {key}: body cut off: {e}"))
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let output = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e)
                if is_not_found(e.code())
                    || e.as_service_error().is_some_and(|s| s.is_not_found()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(errors::map("S3 HeadObject", e)),
        };
        let uploaded_at_ms = output
            .last_modified()
            .and_then(|t| t.to_millis().ok())
            .and_then(|ms| u64::try_from(ms).ok())
            .ok_or_else(|| {
                BackendError::Internal(format!("S3 HeadObject {key}: no LastModified"))
            })?;
        Ok(Some(ObjectInfo {
            size: output
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            uploaded_at_ms,
            content_type: output.content_type().unwrap_or_default().to_string(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| errors::map("S3 DeleteObject", e))?;
        Ok(())
    }
}
