//! Face detection with YuNet: every face with its box, score and five landmarks, largest first.
//!
//! The pre- and post-processing follow OpenCV's `FaceDetectorYN` (BGR, 0–255, no mean, input
//! zero-padded to a multiple of 32, anchor-free decode, NMS) so that accuracy matches the
//! reference pipeline that runs the same model.

use image::RgbImage;
use image::imageops::{self, FilterType};
use serde::Serialize;

use super::VisionError;
use super::runtime::Session;

/// A point in image pixels.
pub type Point = [f32; 2];

/// Landmark order: right eye, left eye (as the person sees them: image left first), nose tip,
/// right mouth corner, left mouth corner.
pub type Landmarks = [Point; 5];

/// An axis-aligned box in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BoundingBox {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.width).min(other.x + other.width);
        let y2 = (self.y + self.height).min(other.y + other.height);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
    pub score: f32,
    pub landmarks: Landmarks,
}

impl Face {
    fn shifted(mut self, dx: f32, dy: f32, scale: f32) -> Face {
        let map = |p: Point| [p[0] / scale - dx, p[1] / scale - dy];
        self.bbox = BoundingBox {
            x: self.bbox.x / scale - dx,
            y: self.bbox.y / scale - dy,
            width: self.bbox.width / scale,
            height: self.bbox.height / scale,
        };
        self.landmarks = self.landmarks.map(map);
        self
    }
}

/// Detector settings (config section `[vision.detector]`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Minimum face score, 0–1.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    pub nms_threshold: f32,
    /// At most this many candidates enter NMS.
    pub top_k: usize,
    /// Larger frames are scaled down so their longest side is this many pixels: YuNet finds
    /// faces of about 10–300 px, so a face that fills a 1080p frame is still found.
    pub max_side: u32,
    /// When nothing is found, pad the image by half its size and look once more: tight crops
    /// (a face that fills the photo) are then found too.
    pub pad_retry: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            score_threshold: 0.6,
            nms_threshold: 0.3,
            top_k: 5000,
            max_side: 640,
            pad_retry: true,
        }
    }
}

/// The largest `max_side` a config may set: the detector's memory grows with its square.
pub const MAX_SIDE_LIMIT: u32 = 1920;

impl DetectorConfig {
    /// Every value out of its safe range, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(64..=MAX_SIDE_LIMIT).contains(&self.max_side) {
            problems.push(format!(
                "vision.detector.max_side = {} must be 64 to {MAX_SIDE_LIMIT} pixels: detection \
                 costs memory with the square of it",
                self.max_side
            ));
        }
        problems
    }
}

const STRIDES: [usize; 3] = [8, 16, 32];
const OUTPUTS: [&str; 12] = [
    "cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32", "bbox_8", "bbox_16", "bbox_32",
    "kps_8", "kps_16", "kps_32",
];

/// YuNet behind an inference session.
pub struct Detector {
    session: Box<dyn Session>,
    config: DetectorConfig,
    /// Where each of [`OUTPUTS`] sits in the session's output list.
    output_index: [usize; 12],
}

impl Detector {
    pub fn new(session: Box<dyn Session>, config: DetectorConfig) -> Result<Self, VisionError> {
        let names = session.output_names();
        let mut output_index = [0; 12];
        for (slot, wanted) in output_index.iter_mut().zip(OUTPUTS) {
            *slot = names.iter().position(|n| n == wanted).ok_or_else(|| {
                VisionError::Runtime(format!("the detector has no output `{wanted}`"))
            })?;
        }
        Ok(Self {
            session,
            config,
            output_index,
        })
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Every face in `image`, largest first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Face>, VisionError> {
        if image.width() == 0 || image.height() == 0 {
            return Ok(Vec::new());
        }
        // Scaled down once to max_side; the pad retry works on that copy, so it never holds
        // more than max_side² pixels and never resizes the full image again.
        let longest = image.width().max(image.height());
        let scale = if longest > self.config.max_side {
            self.config.max_side as f32 / longest as f32
        } else {
            1.0
        };
        let resized;
        let input = if scale < 1.0 {
            let w = ((image.width() as f32 * scale).round() as u32).max(1);
            let h = ((image.height() as f32 * scale).round() as u32).max(1);
            resized = imageops::resize(image, w, h, FilterType::Triangle);
            &resized
        } else {
            image
        };
        let mut faces = self.detect_once(input)?;
        if faces.is_empty() && self.config.pad_retry {
            faces = self.detect_padded(input)?;
        }
        let mut faces: Vec<Face> = faces
            .into_iter()
            .map(|f| f.shifted(0.0, 0.0, scale))
            .collect();
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(faces)
    }

    /// The faces of `image` (at most max_side) padded by half its longest side; the padded
    /// copy is made at the size detection takes, never above max_side.
    fn detect_padded(&mut self, image: &RgbImage) -> Result<Vec<Face>, VisionError> {
        let plan = PadPlan::new(image.width(), image.height(), self.config.max_side);
        let scaled;
        let source = if plan.scale < 1.0 {
            scaled = imageops::resize(image, plan.width, plan.height, FilterType::Triangle);
            &scaled
        } else {
            image
        };
        let mut padded = RgbImage::new(plan.width + 2 * plan.pad, plan.height + 2 * plan.pad);
        imageops::replace(&mut padded, source, plan.pad.into(), plan.pad.into());
        let shift = plan.pad as f32 / plan.scale;
        Ok(self
            .detect_once(&padded)?
            .into_iter()
            .map(|f| f.shifted(shift, shift, plan.scale))
            .collect())
    }

    /// The faces of `input`, which is at most max_side on its longest side.
    fn detect_once(&mut self, input: &RgbImage) -> Result<Vec<Face>, VisionError> {
        let (pad_w, pad_h) = (padded_len(input.width()), padded_len(input.height()));
        let tensor = bgr_planes(input, pad_w, pad_h);
        let outputs = self.session.run([1, 3, pad_h, pad_w], &tensor)?;
        let get = |i: usize| outputs.get(self.output_index[i]).map(|o| o.data.as_slice());
        let mut candidates = Vec::new();
        for (level, stride) in STRIDES.iter().enumerate() {
            let (cols, rows) = (pad_w / stride, pad_h / stride);
            let heads = (get(level), get(level + 3), get(level + 6), get(level + 9));
            let (Some(cls), Some(obj), Some(bbox), Some(kps)) = heads else {
                return Err(VisionError::Runtime(
                    "the detector returned too few outputs".into(),
                ));
            };
            let cells = rows * cols;
            if cls.len() < cells
                || obj.len() < cells
                || bbox.len() < cells * 4
                || kps.len() < cells * 10
            {
                return Err(VisionError::Runtime(format!(
                    "the detector's stride-{stride} outputs do not cover a {pad_w}x{pad_h} input"
                )));
            }
            decode_level(
                Heads {
                    cls,
                    obj,
                    bbox,
                    kps,
                },
                (cols, rows, *stride as f32),
                self.config.score_threshold,
                &mut candidates,
            );
        }
        Ok(non_maximum_suppression(
            candidates,
            self.config.nms_threshold,
            self.config.top_k,
        ))
    }
}

/// How the retry pads: the image scaled by `scale` to `width`×`height`, then `pad` black
/// pixels on every side. Unscaled that is half the longest side; for an image whose padded
/// copy would exceed `max_side`, the image is scaled down first so the copy fits in it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PadPlan {
    scale: f32,
    width: u32,
    height: u32,
    pad: u32,
}

impl PadPlan {
    fn new(width: u32, height: u32, max_side: u32) -> Self {
        let longest = width.max(height).max(1);
        let pad = longest / 2;
        let padded = longest as u64 + 2 * pad as u64;
        if padded <= max_side as u64 {
            return Self {
                scale: 1.0,
                width,
                height,
                pad,
            };
        }
        let scale = max_side as f64 / padded as f64;
        let fit = |len: u32| ((len as f64 * scale).round() as u32).clamp(1, max_side);
        let (width, height) = (fit(width), fit(height));
        let room = max_side.saturating_sub(width.max(height)) / 2;
        Self {
            scale: scale as f32,
            width,
            height,
            pad: ((pad as f64 * scale) as u32).min(room),
        }
    }
}

/// The next multiple of 32, as `FaceDetectorYN` pads.
fn padded_len(len: u32) -> usize {
    (len as usize).div_ceil(32) * 32
}

/// Planar B, G, R in 0–255, zero-padded on the right and bottom.
fn bgr_planes(image: &RgbImage, pad_w: usize, pad_h: usize) -> Vec<f32> {
    let plane = pad_w * pad_h;
    let mut tensor = vec![0.0f32; 3 * plane];
    for (x, y, pixel) in image.enumerate_pixels() {
        let at = y as usize * pad_w + x as usize;
        tensor[at] = pixel[2] as f32;
        tensor[plane + at] = pixel[1] as f32;
        tensor[2 * plane + at] = pixel[0] as f32;
    }
    tensor
}

struct Heads<'a> {
    cls: &'a [f32],
    obj: &'a [f32],
    bbox: &'a [f32],
    kps: &'a [f32],
}

/// Anchor-free decode of one stride level into candidate faces.
fn decode_level(heads: Heads<'_>, grid: (usize, usize, f32), threshold: f32, out: &mut Vec<Face>) {
    let (cols, rows, stride) = grid;
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            let score = (heads.cls[i].clamp(0.0, 1.0) * heads.obj[i].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let b = &heads.bbox[i * 4..i * 4 + 4];
            let cx = (c as f32 + b[0]) * stride;
            let cy = (r as f32 + b[1]) * stride;
            let w = b[2].exp() * stride;
            let h = b[3].exp() * stride;
            let k = &heads.kps[i * 10..i * 10 + 10];
            let landmarks = std::array::from_fn(|n| {
                [
                    (k[2 * n] + c as f32) * stride,
                    (k[2 * n + 1] + r as f32) * stride,
                ]
            });
            out.push(Face {
                bbox: BoundingBox {
                    x: cx - w / 2.0,
                    y: cy - h / 2.0,
                    width: w,
                    height: h,
                },
                score,
                landmarks,
            });
        }
    }
}

/// Greedy NMS: best score first, drop what overlaps a kept face by more than `iou_threshold`.
pub fn non_maximum_suppression(
    mut faces: Vec<Face>,
    iou_threshold: f32,
    top_k: usize,
) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces.truncate(top_k);
    let mut kept: Vec<Face> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou_threshold) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, size: f32, score: f32) -> Face {
        Face {
            bbox: BoundingBox {
                x,
                y,
                width: size,
                height: size,
            },
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = face(0.0, 0.0, 10.0, 1.0).bbox;
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&face(20.0, 20.0, 10.0, 1.0).bbox), 0.0);
        let half = BoundingBox {
            x: 5.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_every_separate_face() {
        let kept = non_maximum_suppression(
            vec![
                face(0.0, 0.0, 10.0, 0.7),
                face(1.0, 1.0, 10.0, 0.9),
                face(50.0, 50.0, 10.0, 0.8),
            ],
            0.3,
            100,
        );
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.9, 0.8]);
    }

    #[test]
    fn nms_honours_top_k() {
        let faces = (0..10)
            .map(|i| face(i as f32 * 100.0, 0.0, 10.0, 0.5 + i as f32 * 0.01))
            .collect();
        assert_eq!(non_maximum_suppression(faces, 0.3, 3).len(), 3);
    }

    #[test]
    fn decode_maps_a_cell_to_image_pixels() {
        // One 2x2 grid at stride 8; only cell (row 1, col 0) is a face.
        let cls = [0.0, 0.0, 1.0, 0.0];
        let obj = [0.0, 0.0, 0.81, 0.0];
        let mut bbox = [0.0; 16];
        bbox[8..12].copy_from_slice(&[0.5, 0.5, 0.0, (2.0f32).ln()]);
        let mut kps = [0.0; 40];
        kps[20..30].copy_from_slice(&[0.25, 0.5, 0.75, 0.5, 0.5, 1.0, 0.25, 1.5, 0.75, 1.5]);
        let mut out = Vec::new();
        decode_level(
            Heads {
                cls: &cls,
                obj: &obj,
                bbox: &bbox,
                kps: &kps,
            },
            (2, 2, 8.0),
            0.6,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        // centre (0.5, 1.5) cells -> (4, 12) px; 8 px wide, 16 px high.
        assert_eq!((f.bbox.x, f.bbox.y, f.bbox.width), (0.0, 4.0, 8.0));
        assert!((f.bbox.height - 16.0).abs() < 1e-4);
        assert_eq!(f.landmarks[0], [2.0, 12.0]);
        assert_eq!(f.landmarks[4], [6.0, 20.0]);
    }

    #[test]
    fn the_pad_retry_of_a_small_image_pads_by_half_its_longest_side() {
        let plan = PadPlan::new(92, 112, 640);
        assert_eq!(
            (plan.scale, plan.width, plan.height, plan.pad),
            (1.0, 92, 112, 56)
        );
    }

    #[test]
    fn the_pad_retry_never_makes_an_image_larger_than_max_side() {
        // A 1,000,000x1 strip once became a 2,000,000x1,000,001 canvas (6 TB).
        for (w, h) in [
            (1_000_000, 1),
            (1, 65_535),
            (65_535, 8),
            (64_506, 250),
            (40_000, 1_000),
            (6_000, 4_000),
            (641, 641),
            (u32::MAX, u32::MAX),
        ] {
            for max_side in [64, 640, 4096] {
                let p = PadPlan::new(w, h, max_side);
                let (pw, ph) = (p.width + 2 * p.pad, p.height + 2 * p.pad);
                assert!(
                    pw <= max_side && ph <= max_side && p.width >= 1 && p.height >= 1,
                    "{w}x{h} at {max_side}: {p:?}"
                );
                assert!(p.scale > 0.0 && p.scale <= 1.0, "{w}x{h}: {p:?}");
            }
        }
        // The padded copy of a square photo fills max_side: nothing is lost to the bound.
        let p = PadPlan::new(1280, 1280, 640);
        assert_eq!((p.width, p.pad), (320, 160));
    }

    #[test]
    fn padding_rounds_up_to_32() {
        assert_eq!(padded_len(1), 32);
        assert_eq!(padded_len(250), 256);
        assert_eq!(padded_len(256), 256);
    }

    #[test]
    fn bgr_planes_swap_channels_and_zero_the_padding() {
        let image = RgbImage::from_pixel(1, 1, image::Rgb([10, 20, 30]));
        let t = bgr_planes(&image, 2, 1);
        assert_eq!(t, vec![30.0, 0.0, 20.0, 0.0, 10.0, 0.0]);
    }
}
