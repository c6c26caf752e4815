//! The console's accounts: `<data_dir>/web-accounts.json` (0600), names, roles and argon2id
//! hashes, written by `facegate admin add|passwd|remove` and read again at every sign-in, so
//! a change made from the CLI takes effect on the running service without a restart.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

/// The file's name in the data directory.
pub const FILE: &str = "web-accounts.json";
/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: enroll, delete, unlock.
    Admin,
    /// Read-only: every page, no change.
    Viewer,
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Rejected(String),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}: not a valid accounts file")]
    Corrupt(PathBuf),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    name: String,
    role: Role,
    /// PHC string: `$argon2id$v=19$m=…`.
    hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    accounts: Vec<Account>,
}

/// The accounts file of one data directory.
pub struct Accounts {
    path: PathBuf,
}

impl Accounts {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE),
        }
    }

    /// Creates `name` with `role`.
    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<(), AccountError> {
        check_name(name)?;
        let mut file = self.read()?;
        if file.accounts.iter().any(|a| a.name == name) {
            return Err(AccountError::Rejected(format!(
                "account {name} exists: use `facegate admin passwd`"
            )));
        }
        let hash = hash(password)?;
        file.accounts.push(Account {
            name: name.into(),
            role,
            hash,
        });
        self.write(&file)
    }

    /// Sets a new password for `name`.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        let mut file = self.read()?;
        let hash = hash(password)?;
        let account = file
            .accounts
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| AccountError::Rejected(format!("no account {name}")))?;
        account.hash = hash;
        self.write(&file)
    }

    pub fn remove(&self, name: &str) -> Result<(), AccountError> {
        let mut file = self.read()?;
        let before = file.accounts.len();
        file.accounts.retain(|a| a.name != name);
        if file.accounts.len() == before {
            return Err(AccountError::Rejected(format!("no account {name}")));
        }
        self.write(&file)
    }

    /// Every account's name and role.
    pub fn list(&self) -> Result<Vec<(String, Role)>, AccountError> {
        Ok(self
            .read()?
            .accounts
            .into_iter()
            .map(|a| (a.name, a.role))
            .collect())
    }

    /// The role of `name` when `password` is theirs. Slow on purpose (argon2id): call it off
    /// the runtime's workers. An unknown name costs a hash too, so timing does not tell.
    pub fn verify(&self, name: &str, password: &str) -> Result<Option<Role>, AccountError> {
        let file = self.read()?;
        let found = file.accounts.iter().find(|a| a.name == name);
        let decoy;
        let phc = match found {
            Some(account) => account.hash.as_str(),
            None => {
                decoy = hash("not anybody's password")?;
                decoy.as_str()
            }
        };
        let parsed =
            PasswordHash::new(phc).map_err(|_| AccountError::Corrupt(self.path.clone()))?;
        let right = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(found.filter(|_| right).map(|a| a.role))
    }

    fn read(&self) -> Result<File, AccountError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|_| AccountError::Corrupt(self.path.clone()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(error) => Err(self.io(error)),
        }
    }

    /// Atomically: a 0600 temporary file renamed over the old one.
    fn write(&self, file: &File) -> Result<(), AccountError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let temporary = self.path.with_extension("json.new");
        let text = serde_json::to_vec_pretty(file).expect("accounts serialize");
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|e| self.io(e))?;
        out.write_all(&text)
            .and_then(|()| out.sync_all())
            .map_err(|e| self.io(e))?;
        // The service reads it as the data directory's owner, whoever ran the CLI.
        if let Some(dir) = self.path.parent()
            && let Ok(meta) = std::fs::metadata(dir)
        {
            use std::os::unix::fs::MetadataExt;
            let _ = std::os::unix::fs::chown(&temporary, Some(meta.uid()), Some(meta.gid()));
        }
        std::fs::rename(&temporary, &self.path).map_err(|e| self.io(e))
    }

    fn io(&self, error: std::io::Error) -> AccountError {
        AccountError::Io {
            path: self.path.clone(),
            error,
        }
    }
}

/// argon2id with OWASP's second recommended setting (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AccountError::Rejected(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Rejected(format!("cannot hash the password: {e}")))
}

fn check_name(name: &str) -> Result<(), AccountError> {
    let fine = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if fine {
        Ok(())
    } else {
        Err(AccountError::Rejected(format!(
            "{name:?}: an account name is 1 to 64 of a-z, 0-9, '.', '_', '-', '@'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_added_checked_changed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(dir.path());
        accounts.add("ana", Role::Admin, "correct horse").unwrap();
        assert!(accounts.add("ana", Role::Viewer, "another one!").is_err());
        assert!(accounts.add("bo", Role::Viewer, "short").is_err());
        assert!(accounts.add("<b>", Role::Viewer, "long enough pw").is_err());
        assert_eq!(
            accounts.verify("ana", "correct horse").unwrap(),
            Some(Role::Admin)
        );
        assert_eq!(accounts.verify("ana", "wrong horse!").unwrap(), None);
        assert_eq!(accounts.verify("nobody", "correct horse").unwrap(), None);
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"));
        accounts.set_password("ana", "battery staple").unwrap();
        assert_eq!(accounts.verify("ana", "correct horse").unwrap(), None);
        accounts.remove("ana").unwrap();
        assert!(accounts.list().unwrap().is_empty());
    }
}
