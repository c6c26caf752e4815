//! The quality gate: is this face good enough to enrol or to send for matching? Each check
//! that fails gives a reason a person can act on ("face too small: 38 px < 60 px").
//!
//! Sharpness, brightness and contrast are measured on the aligned 112×112 crop, so they do not
//! depend on how far the person stands from the camera.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::detect::Face;

/// Thresholds (config section `[vision.quality]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityThresholds {
    /// Smallest face side, in pixels of the original frame.
    pub min_face_px: f32,
    /// Lowest detector score.
    pub min_score: f32,
    /// Lowest variance of the Laplacian on the aligned crop (blur).
    pub min_sharpness: f32,
    /// Mean grey level of the crop must lie in this range (0–255).
    pub min_brightness: f32,
    pub max_brightness: f32,
    /// Lowest standard deviation of grey levels on the crop.
    pub min_contrast: f32,
    /// Largest head turn, as |nose offset| / eye distance (0 = frontal).
    pub max_yaw: f32,
    /// Largest head tilt (eye line against horizontal), degrees.
    pub max_roll_deg: f32,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        Self {
            min_face_px: 60.0,
            min_score: 0.75,
            min_sharpness: 25.0,
            min_brightness: 50.0,
            max_brightness: 210.0,
            min_contrast: 20.0,
            max_yaw: 0.4,
            max_roll_deg: 20.0,
        }
    }
}

impl QualityThresholds {
    /// Every threshold out of its safe range, naming the key. A gate that lets anything through
    /// (`min_face_px = -inf`, `max_yaw = inf`, a NaN that every comparison fails) is refused.
    pub fn problems(&self) -> Vec<String> {
        let checks: [(&str, f32, f32, f32, &str); 7] = [
            (
                "min_face_px",
                self.min_face_px,
                40.0,
                4096.0,
                "pixels: smaller faces give unreliable embeddings",
            ),
            ("min_sharpness", self.min_sharpness, 0.0, 10_000.0, ""),
            (
                "min_brightness",
                self.min_brightness,
                0.0,
                255.0,
                "grey levels",
            ),
            (
                "max_brightness",
                self.max_brightness,
                0.0,
                255.0,
                "grey levels",
            ),
            ("min_contrast", self.min_contrast, 0.0, 128.0, "grey levels"),
            (
                "max_yaw",
                self.max_yaw,
                0.05,
                0.8,
                "eye distances: a face turned further is not matched reliably",
            ),
            ("max_roll_deg", self.max_roll_deg, 1.0, 45.0, "degrees"),
        ];
        checks
            .into_iter()
            .filter(|(_, value, low, high, _)| !(*low..=*high).contains(value))
            .map(|(key, value, low, high, why)| {
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                format!("vision.quality.{key} = {value} must be {low} to {high}{why}")
            })
            .collect()
    }
}

/// What was measured on one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityMetrics {
    pub face_px: f32,
    pub score: f32,
    pub sharpness: f32,
    pub brightness: f32,
    pub contrast: f32,
    pub yaw: f32,
    pub roll_deg: f32,
}

/// The verdict: passed when there are no reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityVerdict {
    pub passed: bool,
    pub reasons: Vec<String>,
    pub metrics: QualityMetrics,
}

/// Measures `face` (with its aligned crop) and judges it against `limits`.
pub fn assess(face: &Face, aligned: &RgbImage, limits: &QualityThresholds) -> QualityVerdict {
    let grey = grey_levels(aligned);
    let (brightness, contrast) = mean_and_std(&grey);
    let (yaw, roll_deg) = pose(face);
    let metrics = QualityMetrics {
        face_px: face.bbox.width.min(face.bbox.height),
        score: face.score,
        sharpness: laplacian_variance(&grey, aligned.width() as usize),
        brightness,
        contrast,
        yaw,
        roll_deg,
    };
    let mut reasons = Vec::new();
    let mut check = |ok: bool, reason: String| {
        if !ok {
            reasons.push(reason);
        }
    };
    let m = &metrics;
    check(
        m.face_px >= limits.min_face_px,
        format!(
            "face too small: {:.0} px < {:.0} px",
            m.face_px, limits.min_face_px
        ),
    );
    check(
        m.score >= limits.min_score,
        format!(
            "detection score too low: {:.2} < {:.2}",
            m.score, limits.min_score
        ),
    );
    check(
        m.sharpness >= limits.min_sharpness,
        format!(
            "too blurry: sharpness {:.0} < {:.0}",
            m.sharpness, limits.min_sharpness
        ),
    );
    check(
        m.brightness >= limits.min_brightness,
        format!(
            "too dark: brightness {:.0} < {:.0}",
            m.brightness, limits.min_brightness
        ),
    );
    check(
        m.brightness <= limits.max_brightness,
        format!(
            "too bright: brightness {:.0} > {:.0}",
            m.brightness, limits.max_brightness
        ),
    );
    check(
        m.contrast >= limits.min_contrast,
        format!(
            "too little contrast: {:.0} < {:.0}",
            m.contrast, limits.min_contrast
        ),
    );
    check(
        m.yaw.abs() <= limits.max_yaw,
        format!(
            "head turned: yaw {:.2} > {:.2}",
            m.yaw.abs(),
            limits.max_yaw
        ),
    );
    check(
        m.roll_deg.abs() <= limits.max_roll_deg,
        format!(
            "head tilted: {:.0}° > {:.0}°",
            m.roll_deg.abs(),
            limits.max_roll_deg
        ),
    );
    QualityVerdict {
        passed: reasons.is_empty(),
        reasons,
        metrics,
    }
}

/// Yaw as the nose's sideways offset from the eyes' midpoint over the eye distance, and roll
/// as the eye line's angle, in degrees.
pub fn pose(face: &Face) -> (f32, f32) {
    let [right_eye, left_eye, nose, ..] = face.landmarks;
    let (dx, dy) = (left_eye[0] - right_eye[0], left_eye[1] - right_eye[1]);
    let eye_distance = (dx * dx + dy * dy).sqrt();
    if eye_distance <= f32::EPSILON {
        return (f32::INFINITY, 0.0);
    }
    let mid = [
        (left_eye[0] + right_eye[0]) / 2.0,
        (left_eye[1] + right_eye[1]) / 2.0,
    ];
    // Project the nose offset on the eye line, so a tilted head does not read as turned.
    let along = ((nose[0] - mid[0]) * dx + (nose[1] - mid[1]) * dy) / eye_distance;
    (along / eye_distance, dy.atan2(dx).to_degrees())
}

/// ITU-R BT.601 luma of each pixel.
pub fn grey_levels(image: &RgbImage) -> Vec<f32> {
    image
        .pixels()
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect()
}

fn mean_and_std(values: &[f32]) -> (f32, f32) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, var.sqrt())
}

/// Variance of the 4-neighbour Laplacian over the interior pixels.
pub fn laplacian_variance(grey: &[f32], width: usize) -> f32 {
    if width < 3 || grey.len() < 3 * width {
        return 0.0;
    }
    let height = grey.len() / width;
    let mut responses = Vec::with_capacity((width - 2) * (height - 2));
    for y in 1..height - 1 {
        for x in 1..width - 1 {
            let at = |xx: usize, yy: usize| grey[yy * width + xx];
            responses
                .push(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y));
        }
    }
    mean_and_std(&responses).1.powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::SFACE_TEMPLATE;
    use crate::vision::detect::BoundingBox;
    use image::Rgb;

    fn face(size: f32, score: f32) -> Face {
        Face {
            bbox: BoundingBox {
                x: 0.0,
                y: 0.0,
                width: size,
                height: size * 1.2,
            },
            score,
            landmarks: SFACE_TEMPLATE,
        }
    }

    fn checker(contrast: u8) -> RgbImage {
        RgbImage::from_fn(112, 112, |x, y| {
            let v = if (x / 4 + y / 4) % 2 == 0 {
                128 - contrast / 2
            } else {
                128 + contrast / 2
            };
            Rgb([v; 3])
        })
    }

    #[test]
    fn a_gate_that_lets_anything_through_is_a_problem() {
        assert!(QualityThresholds::default().problems().is_empty());
        let open = QualityThresholds {
            min_face_px: f32::NEG_INFINITY,
            max_yaw: f32::INFINITY,
            max_roll_deg: f32::NAN,
            ..QualityThresholds::default()
        };
        let problems = open.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        for key in ["min_face_px = -inf", "max_yaw = inf", "max_roll_deg = NaN"] {
            assert!(
                problems.iter().any(|p| p.contains(key)),
                "{key}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_good_face_passes_with_no_reasons() {
        let v = assess(
            &face(120.0, 0.95),
            &checker(120),
            &QualityThresholds::default(),
        );
        assert!(v.passed, "{:?}", v.reasons);
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn a_small_face_is_refused_with_the_measured_and_required_size() {
        let v = assess(
            &face(38.0, 0.95),
            &checker(120),
            &QualityThresholds::default(),
        );
        assert!(!v.passed);
        assert_eq!(v.reasons, vec!["face too small: 38 px < 60 px".to_string()]);
    }

    #[test]
    fn a_flat_grey_crop_is_blurry_and_without_contrast() {
        let flat = RgbImage::from_pixel(112, 112, Rgb([128; 3]));
        let v = assess(&face(120.0, 0.95), &flat, &QualityThresholds::default());
        assert!(
            v.reasons.iter().any(|r| r.starts_with("too blurry")),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("too little contrast"))
        );
        assert_eq!(v.metrics.sharpness, 0.0);
    }

    #[test]
    fn dark_and_bright_crops_are_named() {
        let limits = QualityThresholds::default();
        let dark = assess(
            &face(120.0, 0.95),
            &RgbImage::from_pixel(112, 112, Rgb([10; 3])),
            &limits,
        );
        assert!(dark.reasons.iter().any(|r| r.starts_with("too dark")));
        let bright = assess(
            &face(120.0, 0.95),
            &RgbImage::from_pixel(112, 112, Rgb([250; 3])),
            &limits,
        );
        assert!(bright.reasons.iter().any(|r| r.starts_with("too bright")));
    }

    #[test]
    fn pose_reads_turn_and_tilt_from_landmarks() {
        let frontal = face(120.0, 0.9);
        let (yaw, roll) = pose(&frontal);
        assert!(yaw.abs() < 0.05 && roll.abs() < 1.0, "{yaw} {roll}");

        let mut turned = frontal.clone();
        turned.landmarks[2][0] += 20.0; // nose towards one eye
        assert!(pose(&turned).0 > 0.5);

        let mut tilted = frontal;
        tilted.landmarks[1][1] += 35.0; // one eye much lower
        assert!(pose(&tilted).1 > 30.0);
    }

    #[test]
    fn laplacian_variance_of_a_step_is_positive_and_of_flat_is_zero() {
        let flat = vec![5.0; 25];
        assert_eq!(laplacian_variance(&flat, 5), 0.0);
        let step: Vec<f32> = (0..25)
            .map(|i| if i % 5 < 2 { 0.0 } else { 100.0 })
            .collect();
        assert!(laplacian_variance(&step, 5) > 0.0);
        assert_eq!(laplacian_variance(&[1.0; 4], 2), 0.0);
    }
}
