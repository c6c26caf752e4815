//! `facegate auth --photo PATH`: the whole sign-in flow against the configured backend.
//! Exit 0 granted, 1 denied, 2 error.

use std::path::PathBuf;

use clap::Args;

use super::{Failure, GlobalArgs, backend_ports, load_config, print_json, read_photo, runtime};
use crate::auth::DeviceFlow;
use crate::clock::SystemClock;
use crate::settings::DoorSettings;

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// The photo (a camera frame) to sign in with
    #[arg(long, value_name = "PATH")]
    pub photo: PathBuf,
    /// Claim this user; without it the face is identified 1:N
    #[arg(long, value_name = "EMAIL")]
    pub user: Option<String>,
    /// The door whose policy applies [default: the first door in the config]
    #[arg(long, value_name = "NAME")]
    pub door: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: AuthArgs) -> Result<u8, Failure> {
    let config = load_config(global)?;
    let settings = DoorSettings::resolve(&config, args.door.as_deref())?;
    let (door, policy) = (settings.door, settings.policy);
    let frame = read_photo(&args.photo, config.max_image_bytes())?;
    let decision = runtime()?.block_on(async {
        let (ports, _store) = backend_ports(&config).await?;
        let flow = DeviceFlow::new(&ports, std::sync::Arc::new(SystemClock));
        let decision = flow
            .authenticate(vec![frame], args.user.as_deref(), &door, &policy)
            .await?;
        anyhow::Ok(decision)
    })?;
    if args.json {
        print_json(&decision)?;
    } else {
        println!(
            "{} at door {}: user {}, similarity {}, {}",
            if decision.granted() {
                "GRANTED"
            } else {
                "DENIED"
            },
            decision.door,
            decision.user.as_deref().unwrap_or("unknown"),
            decision
                .similarity
                .map_or("n/a".into(), |s| format!("{s:.3}")),
            decision.reason
        );
        if let Some(claims) = &decision.claims {
            println!(
                "verified claims: {}",
                serde_json::to_string(claims).unwrap_or_default()
            );
        }
    }
    Ok(if decision.granted() { 0 } else { 1 })
}
