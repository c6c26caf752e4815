//! `facegate users`: list and manage the embedded user pool.

use clap::Subcommand;

use super::{Failure, GlobalArgs, open_embedded, print_json, runtime};
use crate::auth::policy::group_name_problem;
use crate::backend::Directory;
use crate::backend::embedded::erase::erase_person;
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
    /// Delete a person with every trace: faces, embeddings, refresh tokens, kept photos, the
    /// door's offline grant; the stores are rewritten so nothing stays on disk
    Delete {
        user: String,
        #[arg(long)]
        json: bool,
    },
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
    let (config, backend) = open_embedded(global)?;
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
        UsersCommand::AddGroup { user, group } => {
            if let Some(problem) = group_name_problem(&group) {
                return Err(anyhow::anyhow!(problem).into());
            }
            update(&backend, &user, &|u| {
                u.groups.insert(group.clone());
            })?
        }
        UsersCommand::RemoveGroup { user, group } => update(&backend, &user, &|u| {
            u.groups.remove(&group);
        })?,
        UsersCommand::Delete { user, json } => {
            let erased = runtime()?
                .block_on(erase_person(&config.data_dir, backend, &user))
                .map_err(fail)?
                .ok_or_else(|| anyhow::anyhow!("no user {user}"))?;
            if json {
                print_json(&erased)?;
                return Ok(0);
            }
            let d = &erased.deleted;
            println!(
                "deleted {}: {} face(s) with their embeddings, {} refresh token(s), {} kept \
                 photo(s), {}; the store was rewritten so none of it stays on disk",
                d.username,
                d.faces,
                d.refresh_tokens,
                d.photos,
                if erased.offline_grant {
                    "the door's offline grant"
                } else {
                    "no offline grant"
                }
            );
            return Ok(0);
        }
    };
    println!("{}", describe(&changed));
    Ok(0)
}
