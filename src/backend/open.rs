//! The one place where the configured backend kind becomes ports. Callers build what they need
//! from the ports (the device flow, the daemon); the adapters never build a flow themselves.

use std::sync::{Arc, Mutex};

use super::aws::{AwsBackend, jwks};
use super::embedded::EmbeddedBackend;
use super::fault::{FlakyFaces, FlakyIdentity, Outage};
use super::keys::{Expectations, KeySource};
use super::{BackendError, Directory, FaceIndex, IdentityProvider, ObjectStore};
use crate::clock::Clock;
use crate::config::{BackendKind, Config};
use crate::matching::DecisionRule;
use crate::vision::FaceEngine;

/// What the device talks to, whichever backend it is.
#[derive(Clone)]
pub struct BackendPorts {
    pub kind: BackendKind,
    pub idp: Arc<dyn IdentityProvider>,
    pub signin: Arc<dyn ObjectStore>,
    pub faces: Arc<dyn FaceIndex>,
    pub directory: Arc<dyn Directory>,
    pub keys: Arc<dyn KeySource>,
    pub expectations: Expectations,
    /// Who a face is, in this backend's scores.
    pub rule: DecisionRule,
    /// The embedded backend itself, for its administration while the door runs.
    pub embedded: Option<Arc<EmbeddedBackend>>,
}

impl BackendPorts {
    /// The ports of the embedded backend.
    pub fn embedded(backend: Arc<EmbeddedBackend>) -> Self {
        Self {
            kind: BackendKind::Embedded,
            idp: backend.pool.clone(),
            signin: Arc::new(backend.signin.clone()),
            faces: Arc::new(backend.faces.clone()),
            directory: Arc::new(backend.directory.clone()),
            keys: backend.pool.clone(),
            expectations: backend.pool.expectations(),
            rule: backend.ports.config.rule.clone(),
            embedded: Some(backend),
        }
    }

    /// The ports of AWS, with the user pool's keys cached in `jwks_cache`.
    pub fn aws(
        aws: &AwsBackend,
        jwks_cache: sled::Tree,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BackendError> {
        let keys = jwks::CognitoKeys::new(
            aws.jwks_url(),
            jwks_cache,
            clock,
            aws.config.operation_timeout(),
        )?;
        Ok(Self {
            kind: BackendKind::Aws,
            idp: aws.pool.clone(),
            signin: aws.signin.clone(),
            faces: aws.faces.clone(),
            directory: aws.directory.clone(),
            keys: Arc::new(keys),
            expectations: aws.expectations(),
            rule: aws.rule(),
            embedded: None,
        })
    }

    /// The same ports behind an outage switch (the demo and tests take the network away).
    pub fn behind(mut self, outage: &Outage) -> Self {
        self.idp = Arc::new(FlakyIdentity {
            inner: self.idp,
            outage: outage.clone(),
        });
        self.faces = Arc::new(FlakyFaces {
            inner: self.faces,
            outage: outage.clone(),
        });
        self
    }

    /// The backend's name in the audit trail.
    pub fn name(&self) -> &'static str {
        match self.kind {
            BackendKind::Embedded => "embedded",
            BackendKind::Aws => "aws",
        }
    }
}

/// Opens the configured backend. The embedded one runs on `engine` (shared with the door; one
/// of its own when `None`) and owns its store in the data directory; AWS caches the pool's keys
/// in the daemon's `store`.
pub async fn open(
    config: &Config,
    engine: Option<Arc<Mutex<FaceEngine>>>,
    store: &sled::Db,
    clock: Arc<dyn Clock>,
) -> Result<BackendPorts, BackendError> {
    match config.backend.kind {
        BackendKind::Embedded => {
            let engine = match engine {
                Some(engine) => engine,
                None => Arc::new(Mutex::new(
                    FaceEngine::load(&config.vision)
                        .map_err(|e| BackendError::Internal(e.to_string()))?,
                )),
            };
            let backend = EmbeddedBackend::open(
                &config.data_dir,
                engine,
                &config.backend.embedded,
                config.matching.rule(),
                clock,
            )?;
            Ok(BackendPorts::embedded(Arc::new(backend)))
        }
        BackendKind::Aws => {
            let aws = AwsBackend::connect(&config.backend.aws).await?;
            let cache = store
                .open_tree("aws/jwks")
                .map_err(|e| BackendError::Internal(format!("the key cache: {e}")))?;
            BackendPorts::aws(&aws, cache, clock)
        }
    }
}
