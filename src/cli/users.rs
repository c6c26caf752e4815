//! `facegate users`: list and manage the embedded user pool.

use clap::Subcommand;

use super::{Failure, GlobalArgs, open_embedded, print_json, runtime};
use crate::backend::Directory;
use crate::backend::embedded::{EmbeddedBackend, User};

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
    /// Delete a user with every face
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
    let (_, backend) = open_embedded(global)?;
    let fail = |e: crate::backend::BackendError| Failure::from(anyhow::Error::from(e));
    let update = |backend: &EmbeddedBackend, user: &str, change: &dyn Fn(&mut User)| {
        backend.users.update(user, change).map_err(fail)
    };
    let changed = match command {
        UsersCommand::List { json } => {
            let users = backend.users.list().map_err(fail)?;
            if json {
                print_json(&users)?;
            } else if users.is_empty() {
                println!("no users enrolled");
            } else {
                users.iter().for_each(|u| println!("{}", describe(u)));
            }
            return Ok(0);
        }
        UsersCommand::Show { user, json } => {
            let found = backend
                .users
                .get(&user)
                .map_err(fail)?
                .ok_or_else(|| anyhow::anyhow!("no user {user}"))?;
            let faces = runtime()?
                .block_on(backend.directory.faces_of_user(&found.username))
                .map_err(fail)?;
            if json {
                print_json(&serde_json::json!({"user": found, "face_ids": faces}))?;
            } else {
                println!("{}", describe(&found));
                faces.iter().for_each(|f| println!("  FaceId {f}"));
            }
            return Ok(0);
        }
        UsersCommand::Disable { user } => update(&backend, &user, &|u| u.enabled = false)?,
        UsersCommand::Enable { user } => update(&backend, &user, &|u| u.enabled = true)?,
        UsersCommand::AddGroup { user, group } => update(&backend, &user, &|u| {
            u.groups.insert(group.clone());
        })?,
        UsersCommand::RemoveGroup { user, group } => update(&backend, &user, &|u| {
            u.groups.remove(&group);
        })?,
        UsersCommand::Delete { user } => {
            if !runtime()?
                .block_on(backend.delete_user(&user))
                .map_err(fail)?
            {
                return Err(anyhow::anyhow!("no user {user}").into());
            }
            println!("deleted {user}");
            return Ok(0);
        }
    };
    println!("{}", describe(&changed));
    Ok(0)
}
