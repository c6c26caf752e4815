//! Fault injection: wrappers that make a backend unreachable on demand, for tests and for the
//! demo's "network cut" scene. While the switch is on, every call fails as
//! [`BackendError::Unavailable`], exactly as a dead network would look to the daemon.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::{AuthStep, BackendError, FaceIndex, FaceMatch, IdentityProvider, Tokens};

/// A shared on/off switch for an outage.
#[derive(Debug, Clone, Default)]
pub struct Outage(Arc<AtomicBool>);

impl Outage {
    pub fn set(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), BackendError> {
        if self.0.load(Ordering::SeqCst) {
            Err(BackendError::Unavailable("injected outage".into()))
        } else {
            Ok(())
        }
    }
}

/// An identity provider that fails while the outage is on.
pub struct FlakyIdentity {
    pub inner: Arc<dyn IdentityProvider>,
    pub outage: Outage,
}

#[async_trait]
impl IdentityProvider for FlakyIdentity {
    async fn initiate_custom_auth(&self, username: &str) -> Result<AuthStep, BackendError> {
        self.outage.check()?;
        self.inner.initiate_custom_auth(username).await
    }

    async fn respond_to_challenge(
        &self,
        username: &str,
        session: &str,
        answer: &str,
    ) -> Result<AuthStep, BackendError> {
        self.outage.check()?;
        self.inner
            .respond_to_challenge(username, session, answer)
            .await
    }

    async fn refresh(&self, username: &str, refresh_token: &str) -> Result<Tokens, BackendError> {
        self.outage.check()?;
        self.inner.refresh(username, refresh_token).await
    }
}

/// A face index that fails while the outage is on.
pub struct FlakyFaces {
    pub inner: Arc<dyn FaceIndex>,
    pub outage: Outage,
}

#[async_trait]
impl FaceIndex for FlakyFaces {
    async fn index_face(&self, image: &[u8], external_id: &str) -> Result<String, BackendError> {
        self.outage.check()?;
        self.inner.index_face(image, external_id).await
    }

    async fn search_by_image(
        &self,
        image: &[u8],
        max_faces: usize,
    ) -> Result<Vec<FaceMatch>, BackendError> {
        self.outage.check()?;
        self.inner.search_by_image(image, max_faces).await
    }

    async fn face_count(&self) -> Result<usize, BackendError> {
        self.outage.check()?;
        self.inner.face_count().await
    }

    fn offer_embedding(&self, image: &[u8], embedding: &[f32]) {
        self.inner.offer_embedding(image, embedding);
    }

    async fn compare(&self, source: &[u8], target: &[u8]) -> Result<f32, BackendError> {
        self.outage.check()?;
        self.inner.compare(source, target).await
    }

    async fn delete_faces(&self, face_ids: &[String]) -> Result<(), BackendError> {
        self.outage.check()?;
        self.inner.delete_faces(face_ids).await
    }
}
