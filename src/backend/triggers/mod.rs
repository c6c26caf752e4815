//! The Cognito trigger logic, written once over the ports and used by both the embedded user
//! pool and the AWS Lambda. Each function takes and returns the Cognito (or S3) event shape
//! from `aws_lambda_events`, as Cognito sends and expects it.
//!
//! The rules of SECURITY.md live here: the answer is only the key Create issued, in the sign-in
//! store, uploaded after the challenge, small enough, used once; nothing secret goes into the
//! public parameters; the face must be the user's by the decision rule (threshold for the
//! gallery's size, margin over anyone else); errors fail closed; three wrong answers end the
//! session, and repeated failures lock the user out for a while.

mod create;
mod define;
mod index_faces;
mod pre_sign_up;
mod verify;

use std::sync::Arc;

pub use create::create_auth_challenge;
pub use define::define_auth_challenge;
pub use index_faces::{IndexedFace, index_faces, signup_key, url_decode};
pub use pre_sign_up::pre_sign_up;
pub use verify::verify_auth_challenge;

use super::{Directory, FaceIndex, ObjectStore, TriggerLedger, UserLookup};
use crate::clock::Clock;
use crate::matching::{DecisionRule, MatchingConfig};

/// The one challenge name this flow uses.
pub const CUSTOM_CHALLENGE: &str = "CUSTOM_CHALLENGE";
/// Challenge metadata Create sets, so Define can tell our rounds from anything else.
pub const CHALLENGE_METADATA: &str = "FACE_FRAME";

/// Parameter names shared by Create (which writes them) and Verify and the device (which read).
pub mod params {
    /// Public and private: where the device must upload the frame; also the expected answer.
    pub const UPLOAD_KEY: &str = "uploadKey";
    /// Public: the largest frame accepted, bytes.
    pub const MAX_BYTES: &str = "maxBytes";
    /// Public: the content type to upload with.
    pub const CONTENT_TYPE: &str = "contentType";
    /// Private: when the challenge was issued, ms since the epoch.
    pub const ISSUED_AT: &str = "issuedAtMs";
    /// Private: the challenge's nonce.
    pub const NONCE: &str = "nonce";
    /// Private: where Verify files its verdict (random, unrelated to the public upload key).
    pub const VERDICT_ID: &str = "verdictId";
}

/// Settings of the trigger logic.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerConfig {
    /// Where sign-in frames go in the sign-in store.
    pub signin_prefix: String,
    /// Where enrollment photos go in the sign-up store (admin-only).
    pub signup_prefix: String,
    /// Largest answer frame or enrollment photo, bytes.
    pub max_image_bytes: u64,
    /// How long after Create a frame may be uploaded (Cognito's session lasts 3 minutes).
    pub challenge_ttl_ms: u64,
    /// Wrong answers that end a session.
    pub max_attempts: usize,
    /// Who a face is: threshold for the gallery's size, margin over anyone else.
    pub rule: DecisionRule,
    /// Failed answers within `lockout_window_ms` that lock a user out (until they age out).
    pub lockout_failures: usize,
    pub lockout_window_ms: u64,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            signin_prefix: "signin/".into(),
            signup_prefix: "signup/".into(),
            max_image_bytes: 2 * 1024 * 1024,
            challenge_ttl_ms: 3 * 60 * 1000,
            max_attempts: 3,
            rule: MatchingConfig::default().rule(),
            lockout_failures: 5,
            lockout_window_ms: 15 * 60 * 1000,
        }
    }
}

/// Everything the triggers reach through ports.
#[derive(Clone)]
pub struct TriggerPorts {
    pub signin: Arc<dyn ObjectStore>,
    pub signup: Arc<dyn ObjectStore>,
    pub faces: Arc<dyn FaceIndex>,
    pub directory: Arc<dyn Directory>,
    pub users: Arc<dyn UserLookup>,
    pub ledger: Arc<dyn TriggerLedger>,
    pub clock: Arc<dyn Clock>,
    pub config: TriggerConfig,
}
