//! The trigger Lambda's dispatch: one function for every event the stack routes to it, told
//! apart by Cognito's `triggerSource` or the S3 record's `eventSource`, each handed to the
//! shared trigger logic over the ports. Pure over the ports, so tests feed it the JSON
//! documents AWS sends; `src/bin/facegate-lambda.rs` only wires it to `lambda_runtime`.

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsCreateAuthChallenge, CognitoEventUserPoolsDefineAuthChallenge,
    CognitoEventUserPoolsPreSignup, CognitoEventUserPoolsVerifyAuthChallenge,
};
use aws_lambda_events::event::s3::S3Event;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::BackendError;
use super::aws::AwsConfig;
use super::triggers::{self, TriggerPorts};

/// Why an event could not be handled. Cognito treats any error as a failed sign-in (fail
/// closed); S3 retries the invocation.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("event is not a {kind} event: {error}")]
    Shape {
        kind: &'static str,
        error: serde_json::Error,
    },
    #[error("unsupported event: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

fn parse<T: DeserializeOwned>(event: Value, kind: &'static str) -> Result<T, LambdaError> {
    serde_json::from_value(event).map_err(|error| LambdaError::Shape { kind, error })
}

fn reply(value: impl serde::Serialize) -> Result<Value, LambdaError> {
    serde_json::to_value(value)
        .map_err(|e| LambdaError::Backend(BackendError::Internal(e.to_string())))
}

/// Handles one invocation and returns what Cognito (the event with its response) or S3 (a
/// summary, for the logs) expects.
pub async fn dispatch(event: Value, ports: &TriggerPorts) -> Result<Value, LambdaError> {
    if let Some(source) = event.get("triggerSource").and_then(Value::as_str) {
        let source = source.to_string();
        return match source.as_str() {
            "DefineAuthChallenge_Authentication" => {
                let event: CognitoEventUserPoolsDefineAuthChallenge = parse(event, "Define")?;
                reply(triggers::define_auth_challenge(event, &ports.config))
            }
            "CreateAuthChallenge_Authentication" => {
                let event: CognitoEventUserPoolsCreateAuthChallenge = parse(event, "Create")?;
                reply(triggers::create_auth_challenge(
                    event,
                    ports.clock.as_ref(),
                    &ports.config,
                ))
            }
            "VerifyAuthChallengeResponse_Authentication" => {
                let event: CognitoEventUserPoolsVerifyAuthChallenge = parse(event, "Verify")?;
                reply(triggers::verify_auth_challenge(event, ports).await)
            }
            s if s.starts_with("PreSignUp_") => {
                let event: CognitoEventUserPoolsPreSignup = parse(event, "PreSignUp")?;
                reply(triggers::pre_sign_up(event)?)
            }
            other => Err(LambdaError::Unsupported(format!("triggerSource {other}"))),
        };
    }
    let from_s3 = event
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        == Some("aws:s3");
    if from_s3 {
        let event: S3Event = parse(event, "S3")?;
        let indexed = triggers::index_faces(&event, ports).await?;
        return reply(json!({ "indexed": indexed }));
    }
    Err(LambdaError::Unsupported(
        "neither a Cognito trigger nor an S3 notification".into(),
    ))
}

/// The Lambda's settings from its environment (the SAM template sets these).
pub fn config_from_env(var: impl Fn(&str) -> Option<String>) -> Result<AwsConfig, String> {
    let required = |name: &str| var(name).ok_or_else(|| format!("{name} is not set"));
    let config = AwsConfig {
        region: var("AWS_REGION"),
        user_pool_id: required("FACEGATE_USER_POOL_ID")?,
        // The Lambda never signs in: the app client is the device's.
        client_id: var("FACEGATE_CLIENT_ID").unwrap_or_else(|| "unused-by-the-lambda".into()),
        signin_bucket: required("FACEGATE_SIGNIN_BUCKET")?,
        signup_bucket: required("FACEGATE_SIGNUP_BUCKET")?,
        collection_id: required("FACEGATE_COLLECTION_ID")?,
        faces_table: required("FACEGATE_FACES_TABLE")?,
        ledger_table: required("FACEGATE_LEDGER_TABLE")?,
        match_threshold: match var("FACEGATE_MATCH_THRESHOLD") {
            Some(t) => t
                .parse()
                .map_err(|_| format!("FACEGATE_MATCH_THRESHOLD {t:?} is not a number"))?,
            None => AwsConfig::default().match_threshold,
        },
        match_margin: match var("FACEGATE_MATCH_MARGIN") {
            Some(m) => m
                .parse()
                .map_err(|_| format!("FACEGATE_MATCH_MARGIN {m:?} is not a number"))?,
            None => AwsConfig::default().match_margin,
        },
        // Cognito gives a trigger 5 s in all: every call must give up well before that.
        connect_timeout_secs: 1.0,
        operation_timeout_secs: 2.0,
        max_attempts: 2,
        ..AwsConfig::default()
    };
    let problems = config.problems();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems.join("; "))
    }
}
