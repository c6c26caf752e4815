//! The door daemon's pure core: the state machine and passive liveness. The runtime around it
//! (camera, relay, offline grace, audit, systemd) is the next step of the daemon issue.

pub mod liveness;
pub mod machine;
