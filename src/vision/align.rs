//! Alignment: the similarity transform that carries the five landmarks onto SFace's 112×112
//! template (the one OpenCV's `FaceRecognizerSF::alignCrop` uses), and a bilinear warp.

use image::{Rgb, RgbImage};

use super::detect::{Landmarks, Point};

/// Side of the aligned crop SFace expects.
pub const ALIGNED_SIZE: u32 = 112;

/// Where the landmarks land in the aligned crop.
pub const SFACE_TEMPLATE: Landmarks = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty`: rotation, uniform scale, translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    pub fn apply(&self, p: Point) -> Point {
        let (x, y) = (p[0] as f64, p[1] as f64);
        [
            (self.a * x - self.b * y + self.tx) as f32,
            (self.b * x + self.a * y + self.ty) as f32,
        ]
    }

    /// The inverse transform; `None` when the scale is zero.
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det <= f64::EPSILON {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// The scale factor.
    pub fn scale(&self) -> f64 {
        (self.a * self.a + self.b * self.b).sqrt()
    }
}

/// Least-squares similarity from `src` to `dst` (Umeyama's solution without reflection).
/// `None` when the source points coincide.
pub fn estimate_similarity(src: &[Point], dst: &[Point]) -> Option<Similarity> {
    let n = src.len().min(dst.len());
    if n < 2 {
        return None;
    }
    let mean = |pts: &[Point]| {
        let (sx, sy) = pts[..n].iter().fold((0.0, 0.0), |(sx, sy), p| {
            (sx + p[0] as f64, sy + p[1] as f64)
        });
        (sx / n as f64, sy / n as f64)
    };
    let (smx, smy) = mean(src);
    let (dmx, dmy) = mean(dst);
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (s, d) in src[..n].iter().zip(&dst[..n]) {
        let (sx, sy) = (s[0] as f64 - smx, s[1] as f64 - smy);
        let (dx, dy) = (d[0] as f64 - dmx, d[1] as f64 - dmy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if norm <= f64::EPSILON {
        return None;
    }
    let (a, b) = (dot / norm, cross / norm);
    Some(Similarity {
        a,
        b,
        tx: dmx - (a * smx - b * smy),
        ty: dmy - (b * smx + a * smy),
    })
}

/// Warps `image` by `transform` into a `size`×`size` crop; outside the image is black.
pub fn warp(image: &RgbImage, transform: &Similarity, size: u32) -> RgbImage {
    let Some(inverse) = transform.inverse() else {
        return RgbImage::new(size, size);
    };
    RgbImage::from_fn(size, size, |x, y| {
        let [sx, sy] = inverse.apply([x as f32, y as f32]);
        bilinear(image, sx, sy)
    })
}

/// The aligned 112×112 crop for a face with these landmarks.
pub fn align(image: &RgbImage, landmarks: &Landmarks) -> RgbImage {
    match estimate_similarity(landmarks, &SFACE_TEMPLATE) {
        Some(t) => warp(image, &t, ALIGNED_SIZE),
        None => RgbImage::new(ALIGNED_SIZE, ALIGNED_SIZE),
    }
}

pub(crate) fn bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let sample = |xx: i64, yy: i64| -> [f32; 3] {
        if xx < 0 || yy < 0 || xx >= w || yy >= h {
            [0.0; 3]
        } else {
            let p = image.get_pixel(xx as u32, yy as u32);
            [p[0] as f32, p[1] as f32, p[2] as f32]
        }
    };
    let (p00, p10, p01, p11) = (
        sample(x0, y0),
        sample(x0 + 1, y0),
        sample(x0, y0 + 1),
        sample(x0 + 1, y0 + 1),
    );
    Rgb(std::array::from_fn(|c| {
        let top = p00[c] + (p10[c] - p00[c]) * fx;
        let bottom = p01[c] + (p11[c] - p01[c]) * fx;
        (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(p: Point, q: Point) -> bool {
        (p[0] - q[0]).abs() < 1e-3 && (p[1] - q[1]).abs() < 1e-3
    }

    #[test]
    fn a_known_similarity_is_recovered_exactly() {
        let truth = Similarity {
            a: 0.8 * 0.3f64.cos(),
            b: 0.8 * 0.3f64.sin(),
            tx: 12.0,
            ty: -7.0,
        };
        let src: Vec<Point> = SFACE_TEMPLATE.to_vec();
        let dst: Vec<Point> = src.iter().map(|&p| truth.apply(p)).collect();
        let found = estimate_similarity(&src, &dst).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            assert!(close(found.apply(*s), *d));
        }
        assert!((found.scale() - 0.8).abs() < 1e-5);
    }

    #[test]
    fn inverse_undoes_the_transform() {
        let t = Similarity {
            a: 1.5,
            b: -0.4,
            tx: 3.0,
            ty: 9.0,
        };
        let back = t.inverse().unwrap();
        let p = [17.0, -4.5];
        assert!(close(back.apply(t.apply(p)), p));
    }

    #[test]
    fn coincident_landmarks_have_no_transform() {
        assert!(estimate_similarity(&[[5.0, 5.0]; 5], &SFACE_TEMPLATE).is_none());
        let crop = align(&RgbImage::new(10, 10), &[[5.0, 5.0]; 5]);
        assert_eq!(crop.dimensions(), (112, 112));
    }

    #[test]
    fn landmarks_at_the_template_give_an_identity_crop() {
        let image = RgbImage::from_fn(112, 112, |x, y| Rgb([x as u8, y as u8, 7]));
        let crop = align(&image, &SFACE_TEMPLATE);
        assert_eq!(crop.get_pixel(10, 20), &Rgb([10, 20, 7]));
        assert_eq!(crop.get_pixel(100, 90), &Rgb([100, 90, 7]));
    }

    #[test]
    fn bilinear_interpolates_between_pixels_and_blacks_out_the_outside() {
        let image = RgbImage::from_fn(2, 1, |x, _| Rgb([x as u8 * 100; 3]));
        assert_eq!(bilinear(&image, 0.5, 0.0), Rgb([50; 3]));
        assert_eq!(bilinear(&image, -5.0, 0.0), Rgb([0; 3]));
    }
}
