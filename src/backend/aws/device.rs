//! The device's half of AWS mode, kept out of the Lambda (feature `device`): the default
//! credential chain for `facegate doctor`, the pool's issuer and keys, and the device flow.

use std::sync::Arc;
use std::time::Duration;

use super::{AwsBackend, AwsConfig, jwks};
use crate::auth::{DeviceFlow, jwt::Expectations};
use crate::backend::BackendError;
use crate::clock::Clock;

impl AwsBackend {
    /// Resolves the default credential chain (for `facegate doctor`): which provider answered,
    /// and the access key's last four characters.
    pub async fn resolve_credentials(config: &AwsConfig) -> Result<String, BackendError> {
        use aws_credential_types::provider::ProvideCredentials;
        let shared = Self::sdk_config(config).await;
        let provider = shared.credentials_provider().ok_or_else(|| {
            BackendError::Internal("the AWS SDK found no credential provider".into())
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            BackendError::Denied(format!(
                "no AWS credentials: {e} (the device needs its own IAM identity; see docs/aws.md)"
            ))
        })?;
        let key = credentials.access_key_id();
        let tail = &key[key.len().saturating_sub(4)..];
        let expiry = match credentials.expiry() {
            Some(_) => "temporary",
            None => "long-lived",
        };
        Ok(format!("{expiry} key …{tail}"))
    }

    /// The issuer (`iss`) of the pool's tokens: `backend.aws.issuer_url`, or AWS's own.
    pub fn issuer(&self) -> String {
        match &self.config.issuer_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => jwks::issuer(&self.region, &self.config.user_pool_id),
        }
    }

    /// Where the user pool publishes its signing keys: `backend.aws.jwks_url`, or under the
    /// issuer, as Cognito does.
    pub fn jwks_url(&self) -> String {
        match &self.config.jwks_url {
            Some(url) => url.clone(),
            None => format!("{}/.well-known/jwks.json", self.issuer()),
        }
    }

    /// What a token from this pool must say.
    pub fn expectations(&self) -> Expectations {
        Expectations {
            issuer: self.issuer(),
            client_id: self.config.client_id.clone(),
            leeway_secs: 30,
        }
    }

    /// The device flow, with the pool's keys cached in `store`.
    pub fn device_flow(
        &self,
        store: sled::Tree,
        clock: Arc<dyn Clock>,
    ) -> Result<DeviceFlow, BackendError> {
        let keys = jwks::CognitoKeys::new(
            self.jwks_url(),
            store,
            clock.clone(),
            Duration::from_secs_f32(self.config.operation_timeout_secs),
        )?;
        Ok(DeviceFlow {
            idp: self.pool.clone(),
            signin: self.signin.clone(),
            faces: self.faces.clone(),
            directory: self.directory.clone(),
            keys: Arc::new(keys),
            expectations: self.expectations(),
            rule: self.rule(),
            clock,
        })
    }
}
