//! Users and groups of the embedded user pool, in sled. Usernames are plain ASCII e-mail
//! addresses, compared in lower case: a look-alike letter (the Kelvin sign folds into `k`)
//! must never name someone else's account.

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

/// Checks and normalises a username: an ASCII e-mail address, lower case, safe in a storage
/// key. Anything outside ASCII is refused rather than folded, so what the operator typed is
/// the account they get.
pub fn normalize_username(raw: &str) -> Result<String, BackendError> {
    let typed = raw.trim();
    if let Some(c) = typed.chars().find(|c| !c.is_ascii()) {
        let folded: String = c.to_lowercase().collect();
        let hint = if folded.is_ascii() {
            format!(", which folds into {folded:?}")
        } else {
            String::new()
        };
        return Err(BackendError::Rejected(format!(
            "{raw:?} contains {c:?} (U+{:04X}){hint}: usernames are plain ASCII e-mail \
             addresses, so a look-alike letter cannot name another person's account",
            c as u32
        )));
    }
    let name = typed.to_ascii_lowercase();
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

    /// Puts back `user` exactly as it was (undoing a failed enrollment).
    pub fn restore(&self, user: &User) -> Result<(), BackendError> {
        let bytes = serde_json::to_vec(user).map_err(internal)?;
        self.tree
            .insert(user.username.as_bytes(), bytes)
            .map_err(internal)?;
        self.tree.flush().map_err(internal)?;
        Ok(())
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

    #[test]
    fn a_look_alike_letter_never_names_another_account() {
        // U+212A KELVIN SIGN lower-cases to an ASCII `k`: "\u{212a}im" would be kim's account.
        assert_eq!("\u{212a}im@example.com".to_lowercase(), "kim@example.com");
        let err = normalize_username("\u{212a}im@example.com").unwrap_err();
        assert!(err.to_string().contains("U+212A"), "{err}");
        assert!(err.to_string().contains("folds into \"k\""), "{err}");
        for look_alike in [
            "\u{ff4b}im@example.com", // fullwidth k (NFKC: k)
            "\u{0430}na@example.com", // Cyrillic a
            "ana@exa\u{0301}mple.com",
            "kim@example.com\u{200b}",
            "\u{0130}lker@example.com", // capital I with dot: lower-cases to i + a combining dot
        ] {
            assert!(
                normalize_username(look_alike).is_err(),
                "{look_alike:?} accepted"
            );
        }
    }
}
