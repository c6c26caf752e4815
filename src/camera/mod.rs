//! Where frames come from. Capture is blocking and runs on a thread of its own; the daemon sees
//! only this trait. Adapters: a V4L2 camera through `nokhwa`, and a replay of photos (tests and
//! the demo).

pub mod capture;
pub mod pixels;
pub mod replay;
pub mod v4l2;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, Millis};
use crate::vision::ImageLimits;
use pixels::PixelFormat;

/// Where frames come from (config section `[camera]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    pub kind: CameraKind,
    /// v4l2: the device, `/dev/videoN` or a udev link such as `/dev/v4l/by-id/...`.
    pub device: PathBuf,
    /// v4l2: the size asked for (the camera's closest is used).
    pub width: u32,
    pub height: u32,
    /// v4l2: the pixel format asked for.
    pub format: PixelFormat,
    /// replay: the folder of JPEG/PNG frames, played in name order.
    pub replay_dir: Option<PathBuf>,
    /// Frames per second.
    pub fps: u32,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            kind: CameraKind::V4l2,
            device: PathBuf::from("/dev/video0"),
            width: 640,
            height: 480,
            format: PixelFormat::Mjpeg,
            replay_dir: None,
            fps: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    V4l2,
    Replay,
}

/// Makes a camera on the thread that will read it.
pub type CameraFactory = Box<dyn FnOnce() -> Box<dyn FrameSource> + Send>;

/// Prepares what `config` names: a replay folder is read now (so a bad one fails at start);
/// a V4L2 device is opened by its first frame, and reopened after failures.
pub fn open(
    config: &CameraConfig,
    limits: &ImageLimits,
    clock: Arc<dyn Clock>,
) -> Result<CameraFactory, CameraError> {
    let interval = Duration::from_millis(1000 / u64::from(config.fps.max(1)));
    Ok(match config.kind {
        CameraKind::V4l2 => {
            let settings = v4l2::V4l2Settings {
                device: config.device.clone(),
                width: config.width,
                height: config.height,
                fps: config.fps,
                format: config.format,
            };
            let limits = *limits;
            Box::new(move || Box::new(v4l2::V4l2Camera::new(settings, limits, clock)))
        }
        CameraKind::Replay => {
            let dir = config.replay_dir.as_ref().ok_or_else(|| {
                CameraError::Unavailable("camera.kind = \"replay\" needs camera.replay_dir".into())
            })?;
            let replay = replay::ReplayCamera::from_dir(dir, limits, interval, clock)?;
            Box::new(move || Box::new(replay))
        }
    })
}

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
    /// One frame was corrupt: skip it.
    #[error("corrupt frame: {0}")]
    BadFrame(String),
    /// A replay has no more frames.
    #[error("no more frames")]
    Ended,
}

/// A blocking source of frames. Not `Send`: a V4L2 handle must stay on the thread that opened
/// it, so cameras are made on the capture thread by a [`CameraFactory`].
pub trait FrameSource {
    fn next_frame(&mut self) -> Result<Frame, CameraError>;
}
