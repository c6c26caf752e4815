//! The V4L2 camera through `nokhwa`. A thin adapter: it opens the device lazily, asks for the
//! configured size, rate and pixel format, and hands raw bytes to [`super::pixels`]. When the
//! device vanishes (unplugged, driver reset) the stream is dropped and reopened on a later
//! call; the capture thread supplies the backoff and the logging.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat};
use nokhwa::utils::{RequestedFormatType, Resolution};

use super::pixels::{self, PixelFormat};
use super::{CameraError, Frame, FrameSource};
use crate::clock::Clock;
use crate::vision::ImageLimits;

/// What to open.
#[derive(Debug, Clone, PartialEq)]
pub struct V4l2Settings {
    /// `/dev/videoN`, or a udev link to it such as `/dev/v4l/by-id/...`.
    pub device: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: PixelFormat,
}

/// A V4L2 camera, reopened after failures.
pub struct V4l2Camera {
    settings: V4l2Settings,
    limits: ImageLimits,
    clock: Arc<dyn Clock>,
    camera: Option<nokhwa::Camera>,
    sequence: u64,
}

impl V4l2Camera {
    /// Does not touch the device yet: the first frame opens it, so a camera plugged in after
    /// the daemon starts is picked up.
    pub fn new(settings: V4l2Settings, limits: ImageLimits, clock: Arc<dyn Clock>) -> Self {
        Self {
            settings,
            limits,
            clock,
            camera: None,
            sequence: 0,
        }
    }

    fn open(&self) -> Result<nokhwa::Camera, CameraError> {
        let s = &self.settings;
        let unavailable =
            |e: String| CameraError::Unavailable(format!("{}: {e}", s.device.display()));
        let index = device_index(&s.device).map_err(unavailable)?;
        let wanted = CameraFormat::new(
            Resolution::new(s.width, s.height),
            frame_format(s.format),
            s.fps,
        );
        let formats = [frame_format(s.format)];
        let request = RequestedFormat::with_formats(RequestedFormatType::Closest(wanted), &formats);
        let mut camera = nokhwa::Camera::with_backend(
            CameraIndex::Index(index),
            request,
            ApiBackend::Video4Linux,
        )
        .map_err(|e| unavailable(e.to_string()))?;
        camera
            .open_stream()
            .map_err(|e| unavailable(e.to_string()))?;
        let got = camera.camera_format();
        tracing::info!(
            device = %s.device.display(),
            format = %got,
            "camera opened"
        );
        Ok(camera)
    }
}

impl FrameSource for V4l2Camera {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        if self.camera.is_none() {
            self.camera = Some(self.open()?);
        }
        let camera = self.camera.as_mut().expect("opened above");
        let buffer = match camera.frame() {
            Ok(buffer) => buffer,
            Err(e) => {
                self.camera = None; // dropped: reopened on a later call
                return Err(CameraError::Unavailable(format!(
                    "{}: {e}",
                    self.settings.device.display()
                )));
            }
        };
        let format = pixel_format(buffer.source_frame_format());
        let resolution = buffer.resolution();
        let image = pixels::to_rgb(
            format,
            resolution.width(),
            resolution.height(),
            buffer.buffer(),
            &self.limits,
        )
        .map_err(|e| CameraError::BadFrame(e.to_string()))?;
        self.sequence += 1;
        Ok(Frame {
            image,
            captured_at_ms: self.clock.now_ms(),
            sequence: self.sequence,
        })
    }
}

/// The N of `/dev/videoN`, following udev links.
pub fn device_index(device: &Path) -> Result<u32, String> {
    let real = std::fs::canonicalize(device).map_err(|e| e.to_string())?;
    index_of(&real).ok_or_else(|| format!("{} is not a /dev/videoN device", real.display()))
}

fn index_of(path: &Path) -> Option<u32> {
    path.file_name()?
        .to_str()?
        .strip_prefix("video")?
        .parse()
        .ok()
}

fn frame_format(format: PixelFormat) -> FrameFormat {
    match format {
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
        PixelFormat::Yuyv => FrameFormat::YUYV,
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Gray => FrameFormat::GRAY,
        PixelFormat::Rgb => FrameFormat::RAWRGB,
        PixelFormat::Bgr => FrameFormat::RAWBGR,
    }
}

fn pixel_format(format: FrameFormat) -> PixelFormat {
    match format {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::GRAY => PixelFormat::Gray,
        FrameFormat::RAWRGB => PixelFormat::Rgb,
        FrameFormat::RAWBGR => PixelFormat::Bgr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn video_device_names_give_their_index() {
        assert_eq!(index_of(Path::new("/dev/video0")), Some(0));
        assert_eq!(index_of(Path::new("/dev/video12")), Some(12));
        assert_eq!(index_of(Path::new("/dev/sda")), None);
        assert_eq!(index_of(Path::new("/dev/videoX")), None);
    }

    #[test]
    fn every_pixel_format_maps_to_nokhwa_and_back() {
        use PixelFormat::*;
        for format in [Mjpeg, Yuyv, Nv12, Gray, Rgb, Bgr] {
            assert_eq!(pixel_format(frame_format(format)), format);
        }
    }

    #[test]
    fn a_missing_device_is_unavailable_with_its_path_and_is_retried() {
        let settings = V4l2Settings {
            device: PathBuf::from("/dev/facegate-test-no-such-camera"),
            width: 640,
            height: 480,
            fps: 10,
            format: PixelFormat::Mjpeg,
        };
        let mut camera = V4l2Camera::new(
            settings,
            ImageLimits::default(),
            Arc::new(ManualClock::at(0)),
        );
        for _ in 0..2 {
            match camera.next_frame() {
                Err(CameraError::Unavailable(why)) => {
                    assert!(why.contains("facegate-test-no-such-camera"), "{why}")
                }
                other => panic!("expected Unavailable, got {:?}", other.map(|f| f.sequence)),
            }
        }
    }
}
