//! Local persistence shared by the backend and the daemon: encryption at rest, offline
//! grants, the durable outboxes (audit, sinks), and rewriting a store so deleted records leave the disk.

pub mod audit;
pub mod compact;
pub mod grants;
pub mod outbox;
pub mod sealed;

pub use sealed::{SealError, Sealer};
