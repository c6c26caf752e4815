//! The identity backend: ports (traits) for the services the seed design uses, the trigger
//! logic and the decision rule's use of them written once, the adapters (the embedded backend
//! on the device; AWS), and the one place that picks between them ([`open`]).

pub mod aws;
pub mod embedded;
pub mod fault;
pub mod identify;
pub mod keys;
pub mod lambda;
pub mod open;
pub mod ports;
pub mod triggers;

pub use ports::{
    AuthStep, Directory, FaceIndex, FaceMatch, FaceRecord, IdentityProvider, ObjectInfo,
    ObjectStore, Tokens, TriggerLedger, UserLookup,
};

/// A backend failure, grouped by what the caller must do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The service cannot be reached: go offline.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The service asks us to slow down: retry later.
    #[error("backend throttled: {0}")]
    Throttled(String),
    /// Authentication refused (wrong answer, expired or reused session, disabled user).
    #[error("not authorized: {0}")]
    Denied(String),
    /// The request itself is wrong (bad input, no face, several faces, too large).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Something that should not happen: a bug or a damaged store.
    #[error("internal error: {0}")]
    Internal(String),
}

/// 16 random bytes as hex: nonces, session and token ids.
pub fn random_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
