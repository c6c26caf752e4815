//! Where frames come from. Capture is blocking and runs on a thread of its own; the daemon sees
//! only this trait. Adapters: a replay of photos (tests and the demo); the V4L2 camera is the
//! next step of the daemon issue.

pub mod replay;

use image::RgbImage;

use crate::clock::Millis;

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub image: RgbImage,
    pub captured_at_ms: Millis,
    pub sequence: u64,
}

/// Why no frame came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// The device is gone or failing: retry with backoff.
    #[error("camera unavailable: {0}")]
    Unavailable(String),
    /// A replay has no more frames.
    #[error("no more frames")]
    Ended,
}

/// A blocking source of frames.
pub trait FrameSource: Send {
    fn next_frame(&mut self) -> Result<Frame, CameraError>;
}
