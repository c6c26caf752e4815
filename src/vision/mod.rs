//! The on-device face engine: decode → detect (YuNet) → align → quality → embed (SFace) → match.
//!
//! Everything here is synchronous and CPU-bound; callers run it on a thread of its own.

pub mod align;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod gallery;
pub mod image_io;
pub mod models;
pub mod onnx_graph;
pub mod open_set;
pub mod quality;
pub mod runtime;

use std::path::PathBuf;

use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use detect::{BoundingBox, Detector, DetectorConfig, Face};
pub use embed::{DEFAULT_MATCH_THRESHOLD, Embedding, Recognizer};
pub use gallery::{Gallery, Hit};
pub use image_io::{ImageError, ImageLimits};
pub use quality::{QualityThresholds, QualityVerdict};
pub use runtime::{RuntimeKind, RuntimeOptions};

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("model file {path} is missing ({error}); fetch it with {fetch}", fetch = models::FETCH_COMMAND)]
    ModelMissing {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "model file {path} has SHA-256 {actual}, expected {expected}; it is damaged or not the model facegate was built for: fetch it again with {fetch}",
        fetch = models::FETCH_COMMAND
    )]
    ModelDigest {
        path: PathBuf,
        expected: &'static str,
        actual: String,
    },
    #[error("cannot prepare model {name}: {source}")]
    ModelGraph {
        name: &'static str,
        source: onnx_graph::GraphError,
    },
    #[error("inference failed: {0}")]
    Runtime(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no face found in the image")]
    NoFace,
}

/// Engine settings (config section `[vision]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VisionConfig {
    /// `ort` (ONNX Runtime, fast) or `tract` (pure Rust).
    pub runtime: RuntimeKind,
    /// Threads per inference.
    pub threads: usize,
    /// Directory holding the two model files; unset: `$FACEGATE_MODEL_DIR`, `./models`,
    /// `/usr/share/facegate/models`.
    pub model_dir: Option<PathBuf>,
    /// ONNX Runtime's shared library; unset: `$ORT_DYLIB_PATH`, the model directory,
    /// `/usr/lib/facegate`.
    pub ort_library: Option<PathBuf>,
    /// Cosine similarity at or above which two faces are the same person.
    pub match_threshold: f32,
    pub detector: DetectorConfig,
    pub quality: QualityThresholds,
    pub images: ImageLimits,
}

impl Default for VisionConfig {
    fn default() -> Self {
        Self {
            runtime: RuntimeKind::default(),
            threads: 1,
            model_dir: None,
            ort_library: None,
            match_threshold: DEFAULT_MATCH_THRESHOLD,
            detector: DetectorConfig::default(),
            quality: QualityThresholds::default(),
            images: ImageLimits::default(),
        }
    }
}

impl VisionConfig {
    pub fn resolved_model_dir(&self) -> PathBuf {
        self.model_dir
            .clone()
            .unwrap_or_else(models::default_model_dir)
    }

    pub fn runtime_options(&self) -> RuntimeOptions {
        let model_dir = self.resolved_model_dir();
        RuntimeOptions {
            kind: self.runtime,
            threads: self.threads.max(1),
            ort_library: Some(
                self.ort_library
                    .clone()
                    .unwrap_or_else(|| runtime::default_library_path(&model_dir)),
            ),
        }
    }
}

/// A face with what the engine measured on it.
#[derive(Debug, Clone)]
pub struct DescribedFace {
    pub face: Face,
    pub quality: QualityVerdict,
    pub embedding: Embedding,
}

/// Detector and recogniser, loaded once and reused for every frame.
pub struct FaceEngine {
    detector: Detector,
    recognizer: Recognizer,
    config: VisionConfig,
}

impl FaceEngine {
    /// Verifies and loads both models with the configured runtime.
    pub fn load(config: &VisionConfig) -> Result<Self, VisionError> {
        let dir = config.resolved_model_dir();
        let options = config.runtime_options();
        let load = |file: models::ModelFile, name: &'static str| {
            let bytes = models::read_verified(&dir, file)?;
            runtime::load(&bytes, name, &options)
        };
        let detector = Detector::new(load(models::YUNET, "YuNet")?, config.detector.clone())?;
        let recognizer = Recognizer::new(load(models::SFACE, "SFace")?);
        Ok(Self {
            detector,
            recognizer,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    pub fn match_threshold(&self) -> f32 {
        self.config.match_threshold
    }

    /// Decodes a photo with the configured limits.
    pub fn load_image(&self, path: &std::path::Path) -> Result<RgbImage, VisionError> {
        Ok(image_io::load(path, &self.config.images)?)
    }

    /// Decodes an in-memory photo with the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, VisionError> {
        Ok(image_io::decode(bytes, &self.config.images)?)
    }

    /// Every face, largest first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Face>, VisionError> {
        self.detector.detect(image)
    }

    /// The 112×112 crop SFace takes.
    pub fn align(&self, image: &RgbImage, face: &Face) -> RgbImage {
        align::align(image, &face.landmarks)
    }

    /// The embedding of an aligned crop.
    pub fn embed_aligned(&mut self, aligned: &RgbImage) -> Result<Embedding, VisionError> {
        self.recognizer.embed(aligned)
    }

    /// Aligns once, then judges quality and embeds.
    pub fn describe(
        &mut self,
        image: &RgbImage,
        face: &Face,
    ) -> Result<DescribedFace, VisionError> {
        let aligned = self.align(image, face);
        Ok(DescribedFace {
            face: face.clone(),
            quality: quality::assess(face, &aligned, &self.config.quality),
            embedding: self.recognizer.embed(&aligned)?,
        })
    }

    /// The largest face of `image`, described; [`VisionError::NoFace`] when there is none.
    pub fn largest_face(&mut self, image: &RgbImage) -> Result<DescribedFace, VisionError> {
        let faces = self.detect(image)?;
        let face = faces.first().ok_or(VisionError::NoFace)?;
        self.describe(image, face)
    }
}
