//! What the daemon needs of the face engine, behind a trait: the largest face of a frame,
//! whether it passes the quality gate, and its embedding. The engine implements it; tests of
//! the loop, offline grace, cooldowns and the audit use a scripted analyser and no models.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::vision::{Embedding, Face, FaceEngine, VisionError, quality};

/// What one frame shows.
#[derive(Debug, Clone)]
pub enum Analysis {
    NoFace,
    /// A face that fails the quality gate (too small, blurred, turned away, …).
    Unusable {
        /// Smaller than the gate's `min_face_px`: the person should come closer.
        too_small: bool,
    },
    /// A face good enough to track and send, with its embedding and yaw.
    Good {
        face: Face,
        /// Boxed: the embedding is most of the enum's size, and most frames have none.
        embedding: Box<Embedding>,
        yaw: f32,
    },
}

/// Inference time spent on one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub detect: Duration,
    pub embed: Option<Duration>,
}

/// The face engine as the daemon sees it.
pub trait FaceAnalyser: Send {
    fn analyse(&mut self, image: &RgbImage) -> Result<(Analysis, Timings), VisionError>;
}

/// The real engine, shared (with the embedded backend's face index) behind a mutex.
pub struct EngineAnalyser(pub Arc<Mutex<FaceEngine>>);

impl FaceAnalyser for EngineAnalyser {
    fn analyse(&mut self, image: &RgbImage) -> Result<(Analysis, Timings), VisionError> {
        let mut engine = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let faces = engine.detect(image)?;
        let mut timings = Timings {
            detect: started.elapsed(),
            embed: None,
        };
        let Some(face) = faces.into_iter().next() else {
            return Ok((Analysis::NoFace, timings));
        };
        let aligned = engine.align(image, &face);
        let limits = &engine.config().quality;
        let verdict = quality::assess(&face, &aligned, limits);
        if !verdict.passed {
            let too_small = verdict.metrics.face_px < limits.min_face_px;
            return Ok((Analysis::Unusable { too_small }, timings));
        }
        let started = Instant::now();
        let embedding = engine.embed_aligned(&aligned)?;
        timings.embed = Some(started.elapsed());
        let (yaw, _) = quality::pose(&face);
        Ok((
            Analysis::Good {
                face,
                embedding: Box::new(embedding),
                yaw,
            },
            timings,
        ))
    }
}

/// Answers from a script, one per frame, whatever the frame shows (then no face).
pub struct ScriptedAnalyser {
    script: Arc<Mutex<VecDeque<Analysis>>>,
}

impl ScriptedAnalyser {
    /// An analyser that answers `script` in order, and a handle to append to it.
    pub fn new(script: impl IntoIterator<Item = Analysis>) -> (Self, ScriptHandle) {
        let script = Arc::new(Mutex::new(script.into_iter().collect()));
        (
            Self {
                script: script.clone(),
            },
            ScriptHandle(script),
        )
    }
}

/// Appends answers to a running [`ScriptedAnalyser`].
#[derive(Clone)]
pub struct ScriptHandle(Arc<Mutex<VecDeque<Analysis>>>);

impl ScriptHandle {
    /// Appends `answers` to what is left.
    pub fn push(&self, answers: impl IntoIterator<Item = Analysis>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(answers);
    }

    /// Replaces what is left by `answers` (frames the daemon did not analyse leave theirs).
    pub fn replace(&self, answers: impl IntoIterator<Item = Analysis>) {
        let mut script = self.0.lock().unwrap_or_else(|p| p.into_inner());
        script.clear();
        script.extend(answers);
    }
}

impl FaceAnalyser for ScriptedAnalyser {
    fn analyse(&mut self, _image: &RgbImage) -> Result<(Analysis, Timings), VisionError> {
        let next = self
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .unwrap_or(Analysis::NoFace);
        Ok((next, Timings::default()))
    }
}
