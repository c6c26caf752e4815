//! Sinks: the door's events sent to the world around it — [`webhook`]s and [`mqtt`] — each a subscriber
//! of the event stream with a durable outbox of its own, so a slow or absent receiver never
//! delays the door and loses nothing it was sent. [`document`] is the one format they all send.

pub mod document;
pub mod mqtt;
pub mod webhook;

/// Why a sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A secret file is missing, unreadable or too short.
    #[error("sink secret: {0}")]
    Secret(String),
    #[error("sink outbox: {0}")]
    Store(#[from] sled::Error),
    #[error("HTTP client: {0}")]
    Client(reqwest::Error),
}
