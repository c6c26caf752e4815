//! The ports: what facegate needs from an identity provider, an object store, a face index and
//! a directory. The embedded backend and the AWS adapters implement the same traits, so the
//! trigger logic and the device flow run unchanged on either.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::BackendError;
use crate::clock::Millis;

/// What an object store knows about a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub size: u64,
    pub uploaded_at_ms: Millis,
    pub content_type: String,
}

/// Sign-up and sign-in images (S3, or the local store).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BackendError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError>;
    async fn delete(&self, key: &str) -> Result<(), BackendError>;
}

/// One face found in the index. The index returns the nearest faces whatever their score (down
/// to a floor well below any decision threshold, for Rekognition); the decision rule judges them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceMatch {
    pub face_id: String,
    /// Backend-native similarity: cosine for the local index, percent for Rekognition.
    pub similarity: f32,
}

/// Face indexing and search (Rekognition collection, or the local SFace gallery).
#[async_trait]
pub trait FaceIndex: Send + Sync {
    /// Indexes the single face of `image`; zero or several faces, or a face that fails the
    /// quality gate, is [`BackendError::Rejected`] with the reason. Returns the new FaceId.
    async fn index_face(&self, image: &[u8], external_id: &str) -> Result<String, BackendError>;
    /// The faces nearest to the largest face of `image`, best first, at most `max_faces`.
    async fn search_by_image(
        &self,
        image: &[u8],
        max_faces: usize,
    ) -> Result<Vec<FaceMatch>, BackendError>;
    /// How many faces are enrolled: the decision rule's threshold follows it.
    async fn face_count(&self) -> Result<usize, BackendError>;
    /// The embedding the device already computed for `image`, offered for reuse: an index that
    /// runs the same model in this process may use it for exactly these bytes instead of
    /// running the model again. Remote indexes ignore it.
    fn offer_embedding(&self, _image: &[u8], _embedding: &[f32]) {}
    /// Similarity of the largest faces of two images (Rekognition's CompareFaces).
    async fn compare(&self, source: &[u8], target: &[u8]) -> Result<f32, BackendError>;
    async fn delete_faces(&self, face_ids: &[String]) -> Result<(), BackendError>;
}

/// A FaceId and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceRecord {
    pub face_id: String,
    pub username: String,
    pub indexed_at_ms: Millis,
}

/// FaceId ⇄ user records (DynamoDB, or sled).
#[async_trait]
pub trait Directory: Send + Sync {
    async fn put_face(&self, record: FaceRecord) -> Result<(), BackendError>;
    async fn user_of_face(&self, face_id: &str) -> Result<Option<String>, BackendError>;
    async fn faces_of_user(&self, username: &str) -> Result<Vec<String>, BackendError>;
    async fn delete_face(&self, face_id: &str) -> Result<(), BackendError>;
}

/// What only the triggers write: the verdict of each answered challenge, so that a retried
/// Verify answers as the first invocation did, and each user's recent failed answers, for the
/// lockout. Verdicts are filed under a private challenge parameter, never under anything the
/// client sees, and the device has no write access to it (DynamoDB in AWS mode).
#[async_trait]
pub trait TriggerLedger: Send + Sync {
    /// The verdict filed for challenge `id`, if any.
    async fn verdict(&self, id: &str) -> Result<Option<bool>, BackendError>;
    /// Files `correct` for challenge `id` unless a verdict is already filed, and returns the
    /// verdict on file: the first one wins. It may be forgotten after `expires_at_ms`.
    async fn file_verdict(
        &self,
        id: &str,
        correct: bool,
        expires_at_ms: Millis,
    ) -> Result<bool, BackendError>;
    /// How many failed answers `username` gave at or after `since_ms`.
    async fn failures_since(&self, username: &str, since_ms: Millis)
    -> Result<usize, BackendError>;
    /// Notes a failed answer by `username` at `at_ms` (kept at least until `keep_until_ms`).
    async fn record_failure(
        &self,
        username: &str,
        at_ms: Millis,
        keep_until_ms: Millis,
    ) -> Result<(), BackendError>;
    /// Forgets `username`'s failed answers (after a correct one).
    async fn clear_failures(&self, username: &str) -> Result<(), BackendError>;
}

/// Whether a user exists in the user pool: the trusted check behind enrollment.
#[async_trait]
pub trait UserLookup: Send + Sync {
    async fn user_exists(&self, username: &str) -> Result<bool, BackendError>;
}

/// Tokens issued after a successful challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in_secs: u64,
}

/// Where a custom-auth exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Answer this challenge, quoting `session`.
    Challenge {
        session: String,
        parameters: HashMap<String, String>,
    },
    /// Authenticated.
    Tokens(Tokens),
}

/// Cognito's `InitiateAuth(CUSTOM_AUTH)` / `RespondToAuthChallenge` / refresh. A refused
/// authentication is [`BackendError::Denied`].
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    async fn initiate_custom_auth(&self, username: &str) -> Result<AuthStep, BackendError>;
    async fn respond_to_challenge(
        &self,
        username: &str,
        session: &str,
        answer: &str,
    ) -> Result<AuthStep, BackendError>;
    async fn refresh(&self, username: &str, refresh_token: &str) -> Result<Tokens, BackendError>;
}
