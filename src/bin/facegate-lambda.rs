//! `facegate-lambda`: the Cognito trigger and S3 index-faces Lambda (feature `lambda`). All the
//! logic is in `facegate::backend::lambda::dispatch`; this wires it to the Lambda runtime.

use std::sync::Arc;

use facegate::backend::aws::AwsBackend;
use facegate::backend::lambda::{config_from_env, dispatch};
use facegate::backend::triggers::TriggerConfig;
use facegate::clock::SystemClock;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let config = config_from_env(|name| std::env::var(name).ok())?;
    let backend = AwsBackend::connect(&config).await?;
    let ports = backend.trigger_ports(TriggerConfig::default(), Arc::new(SystemClock));
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        dispatch(event.payload, ports).await.map_err(|e| {
            tracing::error!(%e, "invocation failed");
            Error::from(e.to_string())
        })
    }))
    .await
}
