//! Face embeddings with SFace: 128 numbers, L2-normalised, compared by cosine similarity.

use image::RgbImage;

use super::VisionError;
use super::align::ALIGNED_SIZE;
use super::runtime::Session;

/// Length of an SFace embedding.
pub const EMBEDDING_DIM: usize = 128;

/// OpenCV Zoo's cosine threshold for SFace: same person at or above it.
pub const DEFAULT_MATCH_THRESHOLD: f32 = 0.363;

/// A unit-length face embedding. Invariant: its L2 norm is 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Embedding([f32; EMBEDDING_DIM]);

impl Embedding {
    /// Normalises `values`; `None` when they are not 128 finite numbers with a non-zero norm.
    pub fn from_raw(values: &[f32]) -> Option<Embedding> {
        let values: [f32; EMBEDDING_DIM] = values.try_into().ok()?;
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        Some(Embedding(values.map(|v| v / norm)))
    }

    /// Cosine similarity, in −1..=1.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        dot(&self.0, &other.0)
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Little-endian bytes, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The inverse of [`Embedding::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Embedding> {
        if bytes.len() != EMBEDDING_DIM * 4 {
            return None;
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Embedding::from_raw(&values)
    }
}

/// Dot product written so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// SFace behind an inference session.
pub struct Recognizer {
    session: Box<dyn Session>,
}

impl Recognizer {
    pub fn new(session: Box<dyn Session>) -> Self {
        Self { session }
    }

    /// The embedding of an aligned 112×112 crop.
    pub fn embed(&mut self, aligned: &RgbImage) -> Result<Embedding, VisionError> {
        if aligned.dimensions() != (ALIGNED_SIZE, ALIGNED_SIZE) {
            return Err(VisionError::Runtime(format!(
                "the recogniser takes a 112x112 crop, not {}x{}",
                aligned.width(),
                aligned.height()
            )));
        }
        let outputs = self.session.run([1, 3, 112, 112], &rgb_planes(aligned))?;
        let raw = outputs
            .first()
            .ok_or_else(|| VisionError::Runtime("the recogniser returned nothing".into()))?;
        Embedding::from_raw(&raw.data).ok_or_else(|| {
            VisionError::Runtime(format!(
                "the recogniser returned {} values, not a usable 128-d embedding",
                raw.data.len()
            ))
        })
    }
}

/// Planar R, G, B in 0–255 (the model normalises inside its graph).
fn rgb_planes(image: &RgbImage) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut tensor = vec![0.0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            tensor[c * plane + i] = pixel[c] as f32;
        }
    }
    tensor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: usize) -> Embedding {
        let mut v = [0.0; EMBEDDING_DIM];
        v[i] = 3.0;
        Embedding::from_raw(&v).unwrap()
    }

    #[test]
    fn embeddings_are_normalised_and_cosine_is_bounded() {
        let a = unit(0);
        assert!((a.cosine(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.cosine(&unit(5)), 0.0);
        let mut v = [1.0; EMBEDDING_DIM];
        v[0] = -1.0;
        let b = Embedding::from_raw(&v).unwrap();
        let norm: f32 = b.as_slice().iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!((a.cosine(&b) + 1.0 / (EMBEDDING_DIM as f32).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn unusable_raw_values_are_refused() {
        assert!(Embedding::from_raw(&[0.0; EMBEDDING_DIM]).is_none());
        assert!(Embedding::from_raw(&[1.0; 3]).is_none());
        let mut v = [1.0; EMBEDDING_DIM];
        v[7] = f32::NAN;
        assert!(Embedding::from_raw(&v).is_none());
    }

    #[test]
    fn bytes_round_trip() {
        let e = unit(42);
        assert_eq!(Embedding::from_bytes(&e.to_bytes()), Some(e));
        assert!(Embedding::from_bytes(&[0u8; 10]).is_none());
    }

    #[test]
    fn dot_matches_the_naive_sum_with_a_tail() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..13).map(|i| (i % 3) as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), naive);
    }

    #[test]
    fn rgb_planes_keep_channel_order() {
        let image = RgbImage::from_pixel(1, 1, image::Rgb([10, 20, 30]));
        assert_eq!(rgb_planes(&image), vec![10.0, 20.0, 30.0]);
    }
}
