//! The device's half of AWS mode, kept out of the Lambda (feature `device`): the default
//! credential chain for `facegate doctor`, and the pool's issuer and keys (which
//! `backend::open` turns into the device's ports).

use super::{AwsBackend, AwsConfig, jwks};
use crate::backend::BackendError;
use crate::backend::keys::Expectations;

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
}
