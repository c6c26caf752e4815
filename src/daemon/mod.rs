//! The door daemon: the pure state machine, passive liveness, and the runtime that drives them
//! with the face engine, the device flow, offline grace, the audit outbox and the door. The
//! `facegate run` service loop, hardware adapters and systemd integration are not built yet.

pub mod liveness;
pub mod machine;
pub mod runtime;
