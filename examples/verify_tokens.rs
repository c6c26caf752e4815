//! Verifies an ID and an access token with facegate's own verifier, as a door would after a
//! sign-in: the pool's JWKS (from the config's AWS backend), issuer, client, token use and
//! expiry. For the AWS end-to-end test, where a web client (AWS Amplify) signs in and the door's
//! verifier must accept what it got.
//!
//! `verify_tokens --config facegate.toml TOKENS.json` with `{"idToken": …, "accessToken": …}`;
//! prints the ID token's claims and exits 0, or says why and exits 1.

use std::sync::Arc;

use facegate::auth::DeviceFlow;
use facegate::backend::aws::AwsBackend;
use facegate::backend::open::BackendPorts;
use facegate::clock::SystemClock;
use facegate::config::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, config, tokens] = args.as_slice() else {
        return Err("usage: verify_tokens --config FILE TOKENS.json".into());
    };
    if flag != "--config" {
        return Err("usage: verify_tokens --config FILE TOKENS.json".into());
    }
    let config = Config::load(Some(std::path::Path::new(config)))?;
    let tokens: serde_json::Value = serde_json::from_slice(&std::fs::read(tokens)?)?;
    let token = |name: &str| tokens[name].as_str().unwrap_or_default().to_string();
    let backend = AwsBackend::connect(&config.backend.aws).await?;
    let store = sled::Config::new().temporary(true).open()?;
    let ports = BackendPorts::aws(&backend, store.open_tree("jwks")?, Arc::new(SystemClock))?;
    let flow = DeviceFlow::new(&ports, Arc::new(SystemClock));
    match flow
        .verify_tokens(&token("idToken"), &token("accessToken"))
        .await?
    {
        Ok(claims) => {
            println!("{}", serde_json::Value::Object(claims.0));
            Ok(())
        }
        Err(refused) => {
            eprintln!("refused: {refused}");
            std::process::exit(1);
        }
    }
}
