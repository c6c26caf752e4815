//! AWS mode: the same ports over Cognito, S3, Rekognition and DynamoDB with the official SDKs.
//! The device drives the CUSTOM_AUTH exchange, uploads frames and searches faces; the trigger
//! Lambda (`facegate-lambda`) runs the shared trigger logic over the same adapters.
//!
//! Credentials come from the default chain (environment, profile, instance/container role);
//! each service may have its own endpoint (tests, S3-compatible stores). The SDK retries
//! throttling and 5xx with backoff (standard mode) inside an operation timeout.

pub mod cognito;
#[cfg(feature = "device")]
mod device;
pub mod dynamodb;
#[cfg(feature = "device")]
pub mod enroll;
pub mod errors;
#[cfg(feature = "device")]
pub mod jwks;
pub mod rekognition;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::{Deserialize, Serialize};

use crate::backend::BackendError;
use crate::backend::triggers::{TriggerConfig, TriggerPorts};
use crate::clock::Clock;
use crate::matching::{DecisionRule, Threshold};

/// Config section `[backend.aws]`; the names match the SAM stack's outputs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// The region; unset: the default chain (AWS_REGION, the profile).
    pub region: Option<String>,
    pub user_pool_id: String,
    pub client_id: String,
    /// A file holding the app client's secret, when the client has one (0600, not the config).
    pub client_secret_file: Option<PathBuf>,
    /// Sign-in frames (the device writes here under the challenge's key).
    pub signin_bucket: String,
    /// Enrollment photos (admin only).
    pub signup_bucket: String,
    pub collection_id: String,
    pub faces_table: String,
    /// The triggers' ledger (challenge verdicts, failed answers): the Lambda's alone.
    pub ledger_table: String,
    /// Rekognition similarity a face must reach to match, percent (Rekognition's scores are not
    /// SFace's: the calibrated `[matching]` rule does not apply to them).
    pub match_threshold: f32,
    /// Percentage points by which the best person must beat anyone else.
    pub match_margin: f32,
    /// Endpoint overrides (tests, S3-compatible stores); unset: AWS's own.
    pub endpoint_url: Option<String>,
    pub s3_endpoint_url: Option<String>,
    pub dynamodb_endpoint_url: Option<String>,
    pub rekognition_endpoint_url: Option<String>,
    /// The pool's token issuer (`iss`), for emulators; unset:
    /// `https://cognito-idp.REGION.amazonaws.com/POOL`.
    pub issuer_url: Option<String>,
    /// Where the pool's signing keys are; unset: `ISSUER/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// Seconds to connect; seconds for a whole operation, retries included.
    pub connect_timeout_secs: f32,
    pub operation_timeout_secs: f32,
    /// Tries per call (1 = no retry).
    pub max_attempts: u32,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            user_pool_id: String::new(),
            client_id: String::new(),
            client_secret_file: None,
            signin_bucket: String::new(),
            signup_bucket: String::new(),
            collection_id: "facegate".into(),
            faces_table: "facegate-faces".into(),
            ledger_table: "facegate-ledger".into(),
            match_threshold: 95.0,
            match_margin: 1.0,
            endpoint_url: None,
            s3_endpoint_url: None,
            dynamodb_endpoint_url: None,
            rekognition_endpoint_url: None,
            issuer_url: None,
            jwks_url: None,
            connect_timeout_secs: 2.0,
            operation_timeout_secs: 4.0,
            max_attempts: 3,
        }
    }
}

impl AwsConfig {
    /// Every missing or out-of-range value, naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("user_pool_id", &self.user_pool_id),
            ("client_id", &self.client_id),
            ("signin_bucket", &self.signin_bucket),
            ("signup_bucket", &self.signup_bucket),
            ("collection_id", &self.collection_id),
            ("faces_table", &self.faces_table),
            ("ledger_table", &self.ledger_table),
        ] {
            if value.is_empty() {
                problems.push(format!(
                    "backend.aws.{key} is empty: copy it from the stack's outputs (docs/aws.md)"
                ));
            }
        }
        if !(50.0..=100.0).contains(&self.match_threshold) {
            problems.push(format!(
                "backend.aws.match_threshold = {} must be 50 to 100 (percent)",
                self.match_threshold
            ));
        }
        if !(0.0..=10.0).contains(&self.match_margin) {
            problems.push(format!(
                "backend.aws.match_margin = {} must be 0 to 10 (percentage points)",
                self.match_margin
            ));
        }
        for (key, value, max) in [
            (
                "connect_timeout_secs",
                self.connect_timeout_secs,
                MAX_CONNECT_SECS,
            ),
            (
                "operation_timeout_secs",
                self.operation_timeout_secs,
                MAX_OPERATION_SECS,
            ),
        ] {
            if !(value > 0.0 && value <= max) {
                problems.push(format!(
                    "backend.aws.{key} = {value} must be above 0 and at most {max} seconds"
                ));
            }
        }
        if !(1..=10).contains(&self.max_attempts) {
            problems.push(format!(
                "backend.aws.max_attempts = {} must be 1 to 10",
                self.max_attempts
            ));
        }
        problems
    }

    /// The connect timeout; within its checked range even for a config built in code.
    pub fn connect_timeout(&self) -> Duration {
        bounded_secs(self.connect_timeout_secs, MAX_CONNECT_SECS)
    }

    /// The timeout of a whole call, retries included; within its checked range.
    pub fn operation_timeout(&self) -> Duration {
        bounded_secs(self.operation_timeout_secs, MAX_OPERATION_SECS)
    }

    /// The decision rule for Rekognition's percent scores: a fixed threshold and margin.
    pub fn rule(&self) -> DecisionRule {
        DecisionRule::new(Threshold::Fixed(self.match_threshold), self.match_margin)
    }

    fn client_secret(&self) -> Result<Option<String>, BackendError> {
        let Some(path) = &self.client_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            BackendError::Internal(format!("client secret {}: {e}", path.display()))
        })?;
        Ok(Some(text.trim().to_string()))
    }
}

/// The longest timeouts a config may set, seconds.
const MAX_CONNECT_SECS: f32 = 60.0;
const MAX_OPERATION_SECS: f32 = 120.0;

/// `secs` as a duration clamped to 1 ms..`max`: `Duration::from_secs_f32` panics on NaN,
/// infinity and values past `u64::MAX` seconds.
fn bounded_secs(secs: f32, max: f32) -> Duration {
    Duration::try_from_secs_f32(secs.clamp(0.001, max)).unwrap_or(Duration::from_secs(1))
}

/// The clients of every service, built once.
#[derive(Clone)]
pub struct AwsBackend {
    pub config: AwsConfig,
    pub region: String,
    pub pool: Arc<cognito::CognitoPool>,
    pub signin: Arc<s3::S3Store>,
    pub signup: Arc<s3::S3Store>,
    pub faces: Arc<rekognition::RekognitionIndex>,
    pub directory: Arc<dynamodb::DynamoDirectory>,
    pub ledger: Arc<dynamodb::DynamoLedger>,
}

impl AwsBackend {
    /// Resolves credentials and region and builds the clients (no call is made yet).
    pub async fn connect(config: &AwsConfig) -> Result<Self, BackendError> {
        let shared = Self::sdk_config(config).await;
        let region = shared.region().map(|r| r.to_string()).ok_or_else(|| {
            BackendError::Internal("no AWS region: set backend.aws.region or AWS_REGION".into())
        })?;
        Self::from_sdk_config(config, &shared, region)
    }

    pub(crate) async fn sdk_config(config: &AwsConfig) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout())
                    .operation_timeout(config.operation_timeout())
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }

    /// Builds the clients from an SDK config (tests pass one with mocked HTTP).
    pub fn from_sdk_config(
        config: &AwsConfig,
        shared: &SdkConfig,
        region: String,
    ) -> Result<Self, BackendError> {
        let mut s3 = aws_sdk_s3::config::Builder::from(shared);
        if let Some(url) = &config.s3_endpoint_url {
            // S3-compatible stores and moto want path-style addressing.
            s3 = s3.endpoint_url(url).force_path_style(true);
        }
        let s3 = aws_sdk_s3::Client::from_conf(s3.build());
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(shared);
        if let Some(url) = &config.dynamodb_endpoint_url {
            dynamo = dynamo.endpoint_url(url);
        }
        let dynamo = aws_sdk_dynamodb::Client::from_conf(dynamo.build());
        let mut rekognition = aws_sdk_rekognition::config::Builder::from(shared);
        if let Some(url) = &config.rekognition_endpoint_url {
            rekognition = rekognition.endpoint_url(url);
        }
        let rekognition = aws_sdk_rekognition::Client::from_conf(rekognition.build());
        Ok(Self {
            region,
            pool: Arc::new(cognito::CognitoPool::new(
                aws_sdk_cognitoidentityprovider::Client::new(shared),
                &config.user_pool_id,
                &config.client_id,
                config.client_secret()?,
            )),
            signin: Arc::new(s3::S3Store::new(s3.clone(), &config.signin_bucket)),
            signup: Arc::new(s3::S3Store::new(s3, &config.signup_bucket)),
            faces: Arc::new(rekognition::RekognitionIndex::new(
                rekognition,
                &config.collection_id,
                (config.match_threshold - config.match_margin).max(0.0),
            )),
            directory: Arc::new(dynamodb::DynamoDirectory::new(
                dynamo.clone(),
                &config.faces_table,
            )),
            ledger: Arc::new(dynamodb::DynamoLedger::new(dynamo, &config.ledger_table)),
            config: config.clone(),
        })
    }

    /// The decision rule for Rekognition's scores.
    pub fn rule(&self) -> DecisionRule {
        self.config.rule()
    }

    /// The ports the trigger Lambda runs over.
    pub fn trigger_ports(&self, config: TriggerConfig, clock: Arc<dyn Clock>) -> TriggerPorts {
        TriggerPorts {
            signin: self.signin.clone(),
            signup: self.signup.clone(),
            faces: self.faces.clone(),
            directory: self.directory.clone(),
            users: self.pool.clone(),
            ledger: self.ledger.clone(),
            clock,
            config: TriggerConfig {
                rule: self.rule(),
                ..config
            },
        }
    }
}
