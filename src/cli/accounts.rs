//! `facegate admin add|passwd|remove|list`: the web console's accounts (`web-accounts.json` in
//! the data directory; the running service reads it at every sign-in). Passwords come from
//! standard input, one line, so they never show in the process list or the shell's history.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use clap::Subcommand;

use super::{Failure, GlobalArgs, load_config};
use crate::web::{Accounts, Role};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account; the password is read from standard input
    Add {
        name: String,
        /// admin (everything) or viewer (read-only)
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
    },
    /// Set an account's password (read from standard input)
    Passwd { name: String },
    /// Delete an account
    Remove { name: String },
    /// List the accounts and their roles
    List,
}

pub fn run(global: &GlobalArgs, command: AdminCommand) -> Result<u8, Failure> {
    let config = load_config(global)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data directory {}", config.data_dir.display()))?;
    let accounts = Accounts::new(&config.data_dir);
    match command {
        AdminCommand::Add { name, role } => {
            accounts
                .add(&name, role, &password()?)
                .map_err(anyhow::Error::from)?;
            println!("account {name} added ({role:?})");
        }
        AdminCommand::Passwd { name } => {
            accounts
                .set_password(&name, &password()?)
                .map_err(anyhow::Error::from)?;
            println!("password of {name} changed");
        }
        AdminCommand::Remove { name } => {
            accounts.remove(&name).map_err(anyhow::Error::from)?;
            println!("account {name} removed");
        }
        AdminCommand::List => {
            for (name, role) in accounts.list().map_err(anyhow::Error::from)? {
                println!("{name}\t{role:?}");
            }
        }
    }
    Ok(0)
}

fn password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (shown as typed; pipe it in to hide it): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
