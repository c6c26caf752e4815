//! Local persistence shared by the backend and the daemon: encryption at rest, offline
//! grants, the audit outbox.

pub mod audit;
pub mod grants;
pub mod sealed;

pub use sealed::{SealError, Sealer};
