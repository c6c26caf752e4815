//! `facegate keys`: the embedded pool's token signing key. Rotation makes a new key with a new
//! `kid`; tokens signed with the old one stop verifying, refresh tokens keep working. Like every
//! command on the embedded store, it needs the service stopped (one writer).

use clap::Subcommand;

use super::{Failure, GlobalArgs, open_embedded, print_json};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the pool's public signing key set (JWKS)
    Show,
    /// Replace the token signing key (stop the service first; restart it after)
    Rotate,
}

pub fn run(global: &GlobalArgs, command: KeysCommand) -> Result<u8, Failure> {
    let (_, backend) = open_embedded(global)?;
    match command {
        KeysCommand::Show => print_json(&backend.pool.jwks())?,
        KeysCommand::Rotate => {
            let kid = |jwks: &crate::backend::keys::Jwks| {
                jwks.keys.first().map(|k| k.kid.clone()).unwrap_or_default()
            };
            let old = kid(&backend.pool.jwks());
            let new = backend
                .rotate_signing_key()
                .map_err(|e| Failure::from(anyhow::Error::from(e)))?;
            println!(
                "signing key rotated: kid {old} -> {}; restart the service (systemctl restart facegate)",
                kid(&new)
            );
        }
    }
    Ok(0)
}
