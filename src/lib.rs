//! facegate: a door that opens for the right face.
//!
//! Module map (see docs/architecture.md for the data flow). Without the default feature `device`
//! only what the trigger Lambda runs is built: the backend's ports, triggers and AWS adapters,
//! the decision rule, the clock and the outcome types (no camera, GPIO, face engine or sled).

/// Administering the embedded backend, from the CLI or through the running service's socket.
#[cfg(feature = "device")]
pub mod admin;
/// The device side of the challenge: JWT verification, door policy, the authentication flow.
#[cfg(feature = "device")]
pub mod auth;
/// Identity backend: ports, the shared trigger logic, the embedded and AWS adapters, the opener.
pub mod backend;
/// Frame sources: the FrameSource trait and the replay camera.
#[cfg(feature = "device")]
pub mod camera;
/// Command-line interface, one file per subcommand.
#[cfg(feature = "device")]
pub mod cli;
/// Wall-clock time behind a trait, for tests.
pub mod clock;
/// TOML configuration, validated.
#[cfg(feature = "device")]
pub mod config;
/// The door daemon: the pure state machine and liveness, the daemon around them, its loop.
#[cfg(feature = "device")]
pub mod daemon;
/// The lock: the Relay trait, the fail-secure Door, the simulated relay.
#[cfg(feature = "device")]
pub mod door;
/// What happens at the door: typed outcomes and the event stream everything else follows.
pub mod events;
/// The decision rule: which enrolled person a face is, or nobody (open-set, calibrated).
pub mod matching;
/// Health and Prometheus metrics for the operator, over a loopback HTTP listener.
#[cfg(feature = "device")]
pub mod monitor;
/// From the parsed config to what one door runs with, derived values computed once.
#[cfg(feature = "device")]
pub mod settings;
/// The door's events sent to the world around it: signed webhooks and MQTT, each with a durable
/// outbox.
#[cfg(feature = "device")]
pub mod sinks;
/// Local persistence: encryption at rest, offline grants, the audit outbox.
#[cfg(feature = "device")]
pub mod store;
/// The on-device face engine: detect, align, quality, embed, 1:N gallery, accuracy measures.
#[cfg(feature = "device")]
pub mod vision;
/// The web console and the kiosk screen, served by the running service.
#[cfg(feature = "device")]
pub mod web;
