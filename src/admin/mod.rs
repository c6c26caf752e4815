//! Administering the embedded backend while the door runs: one [`Request`] type and one
//! handler ([`Admin`]), the same whichever process holds the store. `facegate enroll`, `users`
//! and `keys` run the handler on the store themselves when it is free, and send the request to
//! the running service over its Unix socket ([`socket`]) when the service holds it, so both ways
//! give the same output and exit codes. The web console will put HTTP on the same handler.

pub mod socket;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::auth::policy::group_name_problem;
use crate::backend::embedded::{Deleted, EmbeddedBackend, EnrollReport, Enrollment, User};
use crate::backend::keys::Jwks;
use crate::backend::{BackendError, Directory};
use crate::store::grants::GrantStore;

/// One administrative act.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Enroll a person from photos (JPEG or PNG bytes, base64 on the wire).
    Enroll {
        user: String,
        name: String,
        #[serde(with = "base64_list")]
        photos: Vec<Vec<u8>>,
        groups: Vec<String>,
        /// The user may exist already: add these faces to that person.
        #[serde(default)]
        add_to_existing: bool,
    },
    ListUsers,
    ShowUser {
        user: String,
    },
    SetEnabled {
        user: String,
        enabled: bool,
    },
    AddGroup {
        user: String,
        group: String,
    },
    RemoveGroup {
        user: String,
        group: String,
    },
    DeleteUser {
        user: String,
    },
    ShowKeys,
    RotateKey,
}

/// What an act came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Enrolled {
        report: EnrollReport,
    },
    Users {
        users: Vec<User>,
    },
    User {
        user: User,
        face_ids: Vec<String>,
    },
    Changed {
        user: User,
    },
    Deleted {
        user: String,
        /// Whether the door held an offline grant for them (dropped too).
        offline_grant: bool,
        /// What went with them.
        removed: Deleted,
        /// Whether the stores were rewritten already (the store was free), so that nothing
        /// deleted stays in sled's log; otherwise that happens when the service next starts.
        #[serde(default)]
        rewritten: bool,
    },
    Keys {
        jwks: Jwks,
    },
    Rotated {
        old_kid: String,
        new_kid: String,
        jwks: Jwks,
    },
}

/// Why an act was not done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum AdminError {
    /// The request cannot be done as asked (unknown user, refused photo, …): fix it.
    #[error("{0}")]
    Rejected(String),
    /// Something failed on the way (the store, the service).
    #[error("{0}")]
    Failed(String),
}

impl From<BackendError> for AdminError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Rejected(why) | BackendError::Denied(why) => AdminError::Rejected(why),
            other => AdminError::Failed(other.to_string()),
        }
    }
}

/// The handler, over an open embedded backend and (in the service) the door's grants.
pub struct Admin {
    backend: Arc<EmbeddedBackend>,
    grants: Option<GrantStore>,
}

impl Admin {
    /// Administers `backend`; `grants` are the door's offline grants, dropped with a person.
    pub fn new(backend: Arc<EmbeddedBackend>, grants: Option<GrantStore>) -> Self {
        Self { backend, grants }
    }

    /// Carries out one request.
    pub async fn handle(&self, request: Request) -> Result<Reply, AdminError> {
        let backend = &self.backend;
        let change = |user: &str, change: &dyn Fn(&mut User)| -> Result<Reply, AdminError> {
            Ok(Reply::Changed {
                user: backend.users.update(user, change)?,
            })
        };
        match request {
            Request::Enroll {
                user,
                name,
                photos,
                groups,
                add_to_existing,
            } => Ok(Reply::Enrolled {
                report: backend
                    .enroll_with(Enrollment {
                        username: &user,
                        name: &name,
                        photos: &photos,
                        groups: &groups,
                        add_to_existing,
                    })
                    .await?,
            }),
            Request::ListUsers => Ok(Reply::Users {
                users: backend.users.list()?,
            }),
            Request::ShowUser { user } => {
                let found = backend
                    .users
                    .get(&user)?
                    .ok_or_else(|| AdminError::Rejected(format!("no user {user}")))?;
                let face_ids = backend.directory.faces_of_user(&found.username).await?;
                Ok(Reply::User {
                    user: found,
                    face_ids,
                })
            }
            Request::SetEnabled { user, enabled } => change(&user, &|u| u.enabled = enabled),
            Request::AddGroup { user, group } => {
                if let Some(problem) = group_name_problem(&group) {
                    return Err(AdminError::Rejected(problem));
                }
                change(&user, &|u| {
                    u.groups.insert(group.clone());
                })
            }
            Request::RemoveGroup { user, group } => change(&user, &|u| {
                u.groups.remove(&group);
            }),
            Request::DeleteUser { user } => {
                let Some(removed) = backend.delete_user(&user).await? else {
                    return Err(AdminError::Rejected(format!("no user {user}")));
                };
                let offline_grant = match &self.grants {
                    Some(grants) => grants
                        .revoke(&removed.username)
                        .map_err(|e| AdminError::Failed(e.to_string()))?,
                    None => false,
                };
                Ok(Reply::Deleted {
                    user: removed.username.clone(),
                    offline_grant,
                    removed,
                    rewritten: false,
                })
            }
            Request::ShowKeys => Ok(Reply::Keys {
                jwks: backend.pool.jwks(),
            }),
            Request::RotateKey => {
                let old_kid = first_kid(&backend.pool.jwks());
                let jwks = backend.rotate_signing_key()?;
                Ok(Reply::Rotated {
                    old_kid,
                    new_kid: first_kid(&jwks),
                    jwks,
                })
            }
        }
    }
}

fn first_kid(jwks: &Jwks) -> String {
    jwks.keys.first().map(|k| k.kid.clone()).unwrap_or_default()
}

/// Photos as base64 strings on the wire.
mod base64_list {
    use super::{Engine, STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(photos: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(photos.iter().map(|p| STANDARD.encode(p)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|p| STANDARD.decode(p).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_survive_the_wire() {
        let request = Request::Enroll {
            user: "ana@example.com".into(),
            name: "Ana".into(),
            photos: vec![vec![0xFF, 0xD8, 0, 1, 2]],
            groups: vec!["staff".into()],
            add_to_existing: false,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert!(
            text.contains(r#""op":"enroll""#) && text.contains("/9gAAQI="),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
        let refused: Result<Reply, AdminError> = Err(AdminError::Rejected("no user x".into()));
        let text = serde_json::to_string(&refused).unwrap();
        assert_eq!(
            serde_json::from_str::<Result<Reply, AdminError>>(&text).unwrap(),
            refused
        );
    }
}
