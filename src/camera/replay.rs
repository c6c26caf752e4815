//! A replay camera: a script of photos, each shown for some frames. A `Live` entry adds the
//! small shifts, tilts and shears of a person standing in front of a camera (deterministic, so
//! tests repeat); a `Still` entry repeats the photo exactly, like a photo held up or a frozen
//! feed. The motion is a simulation for tests and the demo; it says nothing about real cameras.

use std::time::Duration;

use image::RgbImage;

use super::{CameraError, Frame, FrameSource};
use crate::clock::Clock;
use crate::vision::align::bilinear;
use std::sync::Arc;

/// How a scripted photo moves from frame to frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    Still,
    Live,
}

/// One step of the script: `image` (or no one in view when `None`) for `frames` frames.
#[derive(Debug, Clone)]
pub struct Scene {
    pub image: Option<RgbImage>,
    pub frames: usize,
    pub motion: Motion,
}

/// Plays scenes in order, one frame every `frame_interval`.
pub struct ReplayCamera {
    scenes: Vec<Scene>,
    scene: usize,
    shown: usize,
    sequence: u64,
    frame_interval: Duration,
    /// Per-scene frame intervals from a script; empty means `frame_interval` for all.
    scene_intervals: Vec<Duration>,
    clock: Arc<dyn Clock>,
    rng: u64,
}

impl ReplayCamera {
    pub fn new(scenes: Vec<Scene>, frame_interval: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            scenes,
            scene: 0,
            shown: 0,
            sequence: 0,
            frame_interval,
            scene_intervals: Vec::new(),
            clock,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn random(&mut self) -> f32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// A photo as a person in front of the camera: ±1.5 px shift, ±1° tilt, ±3 % shear.
    fn jitter(&mut self, image: &RgbImage) -> RgbImage {
        let (dx, dy) = (self.random() * 1.5, self.random() * 1.5);
        let angle = self.random().to_radians();
        let shear = self.random() * 0.03;
        let (cx, cy) = (image.width() as f32 / 2.0, image.height() as f32 / 2.0);
        let (sin, cos) = angle.sin_cos();
        RgbImage::from_fn(image.width(), image.height(), |x, y| {
            // Inverse map: where in the photo this output pixel comes from.
            let (u, v) = (x as f32 - cx - dx, y as f32 - cy - dy);
            let (u, v) = (cos * u + sin * v, -sin * u + cos * v);
            bilinear(image, u - shear * v + cx, v + cy)
        })
    }
}

impl ReplayCamera {
    /// Every JPEG or PNG of `dir`, in name order, one frame each, as recorded — or, when `dir`
    /// holds a `script.txt`, that script (see [`ReplayCamera::from_script`]).
    pub fn from_dir(
        dir: &std::path::Path,
        limits: &crate::vision::ImageLimits,
        frame_interval: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CameraError> {
        let script = dir.join(SCRIPT_FILE);
        if script.is_file() {
            return Self::from_script(&script, limits, clock);
        }
        let unavailable = |e: String| CameraError::Unavailable(format!("{}: {e}", dir.display()));
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| unavailable(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(unavailable("no JPEG or PNG frames".into()));
        }
        let scenes = files
            .iter()
            .map(|path| {
                let image = crate::vision::image_io::load(path, limits)
                    .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
                Ok(Scene {
                    image: Some(image),
                    frames: 1,
                    motion: Motion::Still,
                })
            })
            .collect::<Result<Vec<_>, CameraError>>()?;
        Ok(Self::new(scenes, frame_interval, clock))
    }
}

/// The name of the optional script in a replay folder.
pub const SCRIPT_FILE: &str = "script.txt";

impl ReplayCamera {
    /// A scripted replay: one scene per line, `IMAGE FRAMES INTERVAL_MS [still|live]`, where
    /// IMAGE is a file beside the script or `-` for no one in view; `#` starts a comment.
    pub fn from_script(
        script: &std::path::Path,
        limits: &crate::vision::ImageLimits,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CameraError> {
        let bad = |line: usize, e: String| {
            CameraError::Unavailable(format!("{}:{line}: {e}", script.display()))
        };
        let text = std::fs::read_to_string(script).map_err(|e| bad(0, e.to_string()))?;
        let base = script.parent().unwrap_or(std::path::Path::new("."));
        let (mut scenes, mut intervals) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let [image, frames, interval, rest @ ..] = words.as_slice() else {
                return Err(bad(
                    n + 1,
                    "expected IMAGE FRAMES INTERVAL_MS [still|live]".into(),
                ));
            };
            let number = |w: &str, what: &str| {
                w.parse::<u64>()
                    .map_err(|_| bad(n + 1, format!("{what} `{w}` is not a whole number")))
            };
            let motion = match rest {
                [] | ["still"] => Motion::Still,
                ["live"] => Motion::Live,
                other => return Err(bad(n + 1, format!("unknown motion {other:?}"))),
            };
            let image = match *image {
                "-" => None,
                file => Some(
                    crate::vision::image_io::load(&base.join(file), limits)
                        .map_err(|e| bad(n + 1, format!("{file}: {e}")))?,
                ),
            };
            scenes.push(Scene {
                image,
                frames: number(frames, "FRAMES")? as usize,
                motion,
            });
            intervals.push(Duration::from_millis(number(interval, "INTERVAL_MS")?));
        }
        let mut camera = Self::new(scenes, Duration::ZERO, clock);
        camera.scene_intervals = intervals;
        Ok(camera)
    }
}

impl FrameSource for ReplayCamera {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        while self
            .scenes
            .get(self.scene)
            .is_some_and(|s| self.shown >= s.frames)
        {
            self.scene += 1;
            self.shown = 0;
        }
        let Some(scene) = self.scenes.get(self.scene).cloned() else {
            return Err(CameraError::Ended);
        };
        self.shown += 1;
        self.sequence += 1;
        let interval = self
            .scene_intervals
            .get(self.scene)
            .copied()
            .unwrap_or(self.frame_interval);
        if !interval.is_zero() {
            std::thread::sleep(interval);
        }
        let image = match (&scene.image, scene.motion) {
            (None, _) => RgbImage::from_pixel(320, 240, image::Rgb([40, 40, 40])),
            (Some(photo), Motion::Still) => photo.clone(),
            (Some(photo), Motion::Live) => self.jitter(photo),
        };
        Ok(Frame {
            image,
            captured_at_ms: self.clock.now_ms(),
            sequence: self.sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn photo() -> RgbImage {
        RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
        })
    }

    fn camera(motion: Motion, frames: usize) -> ReplayCamera {
        let scenes = vec![
            Scene {
                image: Some(photo()),
                frames,
                motion,
            },
            Scene {
                image: None,
                frames: 1,
                motion: Motion::Still,
            },
        ];
        ReplayCamera::new(scenes, Duration::ZERO, Arc::new(ManualClock::at(0)))
    }

    #[test]
    fn still_scenes_repeat_the_photo_exactly_and_the_script_ends() {
        let mut cam = camera(Motion::Still, 3);
        for _ in 0..3 {
            assert_eq!(cam.next_frame().unwrap().image, photo());
        }
        assert_ne!(cam.next_frame().unwrap().image, photo(), "the empty scene");
        assert_eq!(cam.next_frame().unwrap_err(), CameraError::Ended);
    }

    #[test]
    fn a_script_plays_its_scenes_and_a_bad_line_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        photo().save(dir.path().join("ana.png")).unwrap();
        let script = dir.path().join(SCRIPT_FILE);
        std::fs::write(&script, "# a morning\n- 2 0\nana.png 3 0 live\n").unwrap();
        let limits = crate::vision::ImageLimits::default();
        let clock = Arc::new(ManualClock::at(0));
        let mut cam =
            ReplayCamera::from_dir(dir.path(), &limits, Duration::ZERO, clock.clone()).unwrap();
        let frames: Vec<_> = std::iter::from_fn(|| cam.next_frame().ok()).collect();
        assert_eq!(frames.len(), 5);
        assert_ne!(frames[2].image, frames[3].image, "the live scene moves");
        assert_eq!(frames[2].image.dimensions(), photo().dimensions());

        std::fs::write(&script, "ana.png 3\n").unwrap();
        let err = ReplayCamera::from_script(&script, &limits, clock.clone())
            .err()
            .unwrap();
        assert!(err.to_string().contains("script.txt:1"), "{err}");
        std::fs::write(&script, "ana.png three 0\n").unwrap();
        let err = ReplayCamera::from_script(&script, &limits, clock)
            .err()
            .unwrap();
        assert!(err.to_string().contains("`three`"), "{err}");
    }

    #[test]
    fn live_scenes_move_between_frames() {
        let mut cam = camera(Motion::Live, 3);
        let a = cam.next_frame().unwrap();
        let b = cam.next_frame().unwrap();
        assert_ne!(a.image, b.image);
        assert_eq!(a.image.dimensions(), photo().dimensions());
        assert_eq!((a.sequence, b.sequence), (1, 2));
    }
}
