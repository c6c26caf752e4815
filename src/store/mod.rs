//! Local persistence helpers shared by the backend and the daemon.

pub mod sealed;

pub use sealed::{SealError, Sealer};
