//! Users and groups of the embedded user pool, in sled. Usernames are e-mail addresses,
//! compared in lower case.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backend::{BackendError, UserLookup};
use crate::clock::Millis;

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub sub: String,
    pub name: String,
    pub enabled: bool,
    pub groups: BTreeSet<String>,
    pub created_at_ms: Millis,
}

/// Checks and normalises a username: an e-mail address, lower case, safe in a storage key.
pub fn normalize_username(raw: &str) -> Result<String, BackendError> {
    let name = raw.trim().to_lowercase();
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c));
    let shape = name.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    });
    if name.len() > 254 || !valid_chars || !shape || name.matches('@').count() != 1 {
        return Err(BackendError::Rejected(format!(
            "{raw:?} is not an e-mail address facegate accepts (letters, digits and @._+- only)"
        )));
    }
    Ok(name)
}

/// The users tree.
#[derive(Clone)]
pub struct UserStore {
    tree: sled::Tree,
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(format!("user store: {e}"))
}

impl UserStore {
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    pub fn get(&self, username: &str) -> Result<Option<User>, BackendError> {
        let Ok(username) = normalize_username(username) else {
            return Ok(None);
        };
        match self.tree.get(username.as_bytes()).map_err(internal)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(internal),
            None => Ok(None),
        }
    }

    /// Creates `user`; an existing username is an error.
    pub fn create(&self, user: &User) -> Result<(), BackendError> {
        let bytes = serde_json::to_vec(user).map_err(internal)?;
        let created = self
            .tree
            .compare_and_swap(user.username.as_bytes(), None as Option<&[u8]>, Some(bytes))
            .map_err(internal)?;
        if created.is_err() {
            return Err(BackendError::Rejected(format!(
                "user {} already exists",
                user.username
            )));
        }
        self.tree.flush().map_err(internal)?;
        Ok(())
    }

    /// Applies `change` to an existing user and stores the result.
    pub fn update(&self, username: &str, change: impl Fn(&mut User)) -> Result<User, BackendError> {
        let mut user = self
            .get(username)?
            .ok_or_else(|| BackendError::Rejected(format!("no user {username}")))?;
        change(&mut user);
        let bytes = serde_json::to_vec(&user).map_err(internal)?;
        self.tree
            .insert(user.username.as_bytes(), bytes)
            .map_err(internal)?;
        self.tree.flush().map_err(internal)?;
        Ok(user)
    }

    pub fn delete(&self, username: &str) -> Result<bool, BackendError> {
        let username = normalize_username(username)?;
        let removed = self
            .tree
            .remove(username.as_bytes())
            .map_err(internal)?
            .is_some();
        self.tree.flush().map_err(internal)?;
        Ok(removed)
    }

    pub fn list(&self) -> Result<Vec<User>, BackendError> {
        self.tree
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(internal)?;
                serde_json::from_slice(&v).map_err(internal)
            })
            .collect()
    }
}

#[async_trait]
impl UserLookup for UserStore {
    async fn user_exists(&self, username: &str) -> Result<bool, BackendError> {
        Ok(self.get(username)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_email_addresses() {
        assert_eq!(
            normalize_username(" Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "a b@example.com",
            "ana@x/../y.com",
            "a@b@c.com",
            "ana@example.",
        ] {
            assert!(normalize_username(bad).is_err(), "{bad:?} accepted");
        }
    }
}
