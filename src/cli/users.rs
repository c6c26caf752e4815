//! `facegate users`: list and manage the embedded user pool — on the store, or through the
//! running service's socket while the door runs.

use clap::Subcommand;

use super::administer::administer;
use super::{Failure, GlobalArgs, print_json};
use crate::admin::{Reply, Request};
use crate::backend::embedded::User;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every user
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one user with their FaceIds
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: no door opens for them, and refresh stops working
    Disable { user: String },
    /// Enable a disabled user
    Enable { user: String },
    /// Delete a person with every trace: faces, embeddings, refresh tokens, failed answers,
    /// kept photos, the door's offline grant; the stores are rewritten so none of it stays on
    /// disk (at once with the service stopped, else when it next starts)
    Delete { user: String },
    /// Add the user to a group
    AddGroup { user: String, group: String },
    /// Remove the user from a group
    RemoveGroup { user: String, group: String },
}

fn describe(user: &User) -> String {
    format!(
        "{}  {}  {}  groups [{}]",
        user.username,
        if user.enabled { "enabled " } else { "DISABLED" },
        if user.name.is_empty() {
            "-"
        } else {
            &user.name
        },
        user.groups.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

pub fn run(global: &GlobalArgs, command: UsersCommand) -> Result<u8, Failure> {
    let (request, json) = match command {
        UsersCommand::List { json } => (Request::ListUsers, json),
        UsersCommand::Show { user, json } => (Request::ShowUser { user }, json),
        UsersCommand::Disable { user } => (
            Request::SetEnabled {
                user,
                enabled: false,
            },
            false,
        ),
        UsersCommand::Enable { user } => (
            Request::SetEnabled {
                user,
                enabled: true,
            },
            false,
        ),
        UsersCommand::Delete { user } => (Request::DeleteUser { user }, false),
        UsersCommand::AddGroup { user, group } => (Request::AddGroup { user, group }, false),
        UsersCommand::RemoveGroup { user, group } => (Request::RemoveGroup { user, group }, false),
    };
    match administer(global, request)? {
        Reply::Users { users } if json => print_json(&users)?,
        Reply::Users { users } if users.is_empty() => println!("no users enrolled"),
        Reply::Users { users } => users.iter().for_each(|u| println!("{}", describe(u))),
        Reply::User { user, face_ids } if json => {
            print_json(&serde_json::json!({"user": user, "face_ids": face_ids}))?
        }
        Reply::User { user, face_ids } => {
            println!("{}", describe(&user));
            face_ids.iter().for_each(|f| println!("  FaceId {f}"));
        }
        Reply::Changed { user } => println!("{}", describe(&user)),
        Reply::Deleted {
            user,
            offline_grant,
            removed,
            rewritten,
        } => {
            println!(
                "deleted {user}: {} face(s) with their embeddings, {} refresh token(s), {} kept \
                 photo(s), {}",
                removed.faces,
                removed.refresh_tokens,
                removed.photos,
                if offline_grant {
                    "the door's offline grant"
                } else {
                    "no offline grant"
                }
            );
            if rewritten {
                println!("  the stores were rewritten: none of it stays on disk");
            } else {
                println!(
                    "  the store is rewritten without it when the service next starts \
                     (systemctl restart facegate)"
                );
            }
        }
        other => return Err(unexpected(&other)),
    }
    Ok(0)
}

/// A reply the command did not ask for: the service is not this version.
pub fn unexpected(reply: &Reply) -> Failure {
    anyhow::anyhow!("unexpected answer from the service: {reply:?}").into()
}
