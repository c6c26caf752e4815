//! The capture thread: pulls frames from a [`FrameSource`] and publishes the newest one. A
//! failing camera is retried with exponential backoff and logged once per outage (not once per
//! frame); a corrupt frame is skipped. The counters are shared so health checks and metrics can
//! read them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{CameraError, CameraFactory, Frame, FrameSource};

/// What the capture thread has seen, readable from anywhere.
#[derive(Debug, Default)]
pub struct CameraHealth {
    pub frames: AtomicU64,
    pub bad_frames: AtomicU64,
    /// Outages that began (a camera that vanished and came back counts once).
    pub outages: AtomicU64,
    pub failing: AtomicBool,
    pub last_frame_ms: AtomicU64,
}

/// Exponential backoff between reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next try; each call doubles the following one, up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(5))
    }
}

/// Runs until the source ends or `publish` returns false (nobody listens any more).
pub fn run(
    mut camera: Box<dyn FrameSource>,
    mut backoff: Backoff,
    health: &CameraHealth,
    mut publish: impl FnMut(Frame) -> bool,
) {
    loop {
        match camera.next_frame() {
            Ok(frame) => {
                if health.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("camera is back");
                }
                backoff.reset();
                health.frames.fetch_add(1, Ordering::Relaxed);
                health
                    .last_frame_ms
                    .store(frame.captured_at_ms, Ordering::Relaxed);
                if !publish(frame) {
                    return;
                }
            }
            Err(CameraError::Ended) => {
                tracing::info!("the camera's frames ended");
                return;
            }
            Err(CameraError::BadFrame(why)) => {
                health.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%why, "skipping a corrupt frame");
            }
            Err(CameraError::Unavailable(why)) => {
                if !health.failing.swap(true, Ordering::Relaxed) {
                    health.outages.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%why, "camera unavailable; retrying with backoff");
                }
                std::thread::sleep(backoff.next_wait());
            }
        }
    }
}

/// Makes the camera and runs [`run`] on a thread of its own, publishing into a watch channel
/// (newest frame wins).
pub fn spawn(
    camera: CameraFactory,
    health: Arc<CameraHealth>,
) -> std::io::Result<tokio::sync::watch::Receiver<Option<Frame>>> {
    let (sender, receiver) = tokio::sync::watch::channel(None);
    std::thread::Builder::new()
        .name("camera".into())
        .spawn(move || {
            run(camera(), Backoff::default(), &health, |frame| {
                sender.send(Some(frame)).is_ok()
            });
        })?;
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use image::RgbImage;

    use super::*;

    /// A camera that plays a script of results.
    struct Scripted(VecDeque<Result<u64, CameraError>>);

    impl FrameSource for Scripted {
        fn next_frame(&mut self) -> Result<Frame, CameraError> {
            let next = self.0.pop_front().unwrap_or(Err(CameraError::Ended));
            next.map(|sequence| Frame {
                image: RgbImage::new(2, 2),
                captured_at_ms: sequence * 100,
                sequence,
            })
        }
    }

    fn gone() -> Result<u64, CameraError> {
        Err(CameraError::Unavailable("/dev/video0 vanished".into()))
    }

    #[test]
    fn a_camera_that_fails_mid_stream_is_retried_and_its_frames_flow_again() {
        let script = vec![
            Ok(1),
            Ok(2),
            gone(),
            gone(),
            gone(),
            Ok(3),
            Err(CameraError::BadFrame("truncated".into())),
            Ok(4),
            gone(),
            Ok(5),
        ];
        let health = CameraHealth::default();
        let mut seen = Vec::new();
        let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(4));
        run(
            Box::new(Scripted(script.into())),
            backoff,
            &health,
            |frame| {
                seen.push(frame.sequence);
                true
            },
        );
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
        assert_eq!(health.outages.load(Ordering::Relaxed), 2, "one per outage");
        assert_eq!(health.bad_frames.load(Ordering::Relaxed), 1);
        assert!(!health.failing.load(Ordering::Relaxed));
        assert_eq!(health.last_frame_ms.load(Ordering::Relaxed), 500);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
        let waits: Vec<u64> = (0..5).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, vec![200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(200));
    }

    #[test]
    fn capture_stops_when_nobody_listens() {
        let health = CameraHealth::default();
        let mut calls = 0;
        run(
            Box::new(Scripted(vec![Ok(1), Ok(2), Ok(3)].into())),
            Backoff::default(),
            &health,
            |_| {
                calls += 1;
                false
            },
        );
        assert_eq!(calls, 1);
    }
}
