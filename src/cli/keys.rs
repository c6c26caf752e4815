//! `facegate keys`: the embedded pool's token signing key. Rotation makes a new key with a new
//! `kid` and signs with it at once (through the running service's socket while the door runs);
//! tokens signed with the old one stop verifying, refresh tokens keep working.

use clap::Subcommand;

use super::administer::administer;
use super::users::unexpected;
use super::{Failure, GlobalArgs, print_json};
use crate::admin::{Reply, Request};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the pool's public signing key set (JWKS)
    Show,
    /// Replace the token signing key
    Rotate,
}

pub fn run(global: &GlobalArgs, command: KeysCommand) -> Result<u8, Failure> {
    let request = match command {
        KeysCommand::Show => Request::ShowKeys,
        KeysCommand::Rotate => Request::RotateKey,
    };
    match administer(global, request)? {
        Reply::Keys { jwks } => print_json(&jwks)?,
        Reply::Rotated {
            old_kid, new_kid, ..
        } => println!("signing key rotated: kid {old_kid} -> {new_kid}"),
        other => return Err(unexpected(&other)),
    }
    Ok(0)
}
