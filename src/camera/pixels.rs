//! Camera pixel formats to RGB, pure. V4L2 cameras deliver MJPEG, packed YUYV 4:2:2, NV12,
//! grey or raw RGB/BGR; the V4L2 adapter hands the bytes here so every conversion is tested
//! without a device. A frame whose size does not match its format is refused, never guessed at.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::vision::{ImageLimits, image_io};

/// A pixel format a camera can deliver (config `camera.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
    Nv12,
    Gray,
    Rgb,
    Bgr,
}

/// Why a frame's bytes are not a picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PixelError {
    #[error("{format:?} frame of {width}x{height} needs {expected} bytes, got {got}")]
    Size {
        format: PixelFormat,
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },
    #[error("{format:?} frames need an even width, got {width}")]
    OddWidth { format: PixelFormat, width: u32 },
    #[error("MJPEG frame does not decode: {0}")]
    Jpeg(String),
}

/// Converts one frame. `width` and `height` are what the camera says; MJPEG carries its own.
pub fn to_rgb(
    format: PixelFormat,
    width: u32,
    height: u32,
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<RgbImage, PixelError> {
    let pixels = width as usize * height as usize;
    let expect = |expected: usize| {
        if bytes.len() < expected {
            Err(PixelError::Size {
                format,
                width,
                height,
                expected,
                got: bytes.len(),
            })
        } else {
            Ok(())
        }
    };
    let even_width = || {
        if width.is_multiple_of(2) {
            Ok(())
        } else {
            Err(PixelError::OddWidth { format, width })
        }
    };
    let from_raw =
        |raw: Vec<u8>| RgbImage::from_raw(width, height, raw).expect("buffer length checked above");
    match format {
        PixelFormat::Mjpeg => {
            image_io::decode(bytes, limits).map_err(|e| PixelError::Jpeg(e.to_string()))
        }
        PixelFormat::Rgb => {
            expect(pixels * 3)?;
            Ok(from_raw(bytes[..pixels * 3].to_vec()))
        }
        PixelFormat::Bgr => {
            expect(pixels * 3)?;
            let raw = bytes[..pixels * 3]
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect();
            Ok(from_raw(raw))
        }
        PixelFormat::Gray => {
            expect(pixels)?;
            Ok(from_raw(
                bytes[..pixels].iter().flat_map(|&g| [g; 3]).collect(),
            ))
        }
        PixelFormat::Yuyv => {
            even_width()?;
            expect(pixels * 2)?;
            let raw = bytes[..pixels * 2]
                .chunks_exact(4)
                .flat_map(|q| {
                    let [y0, u, y1, v] = [q[0], q[1], q[2], q[3]];
                    let [a, b] = [yuv_to_rgb(y0, u, v), yuv_to_rgb(y1, u, v)];
                    [a[0], a[1], a[2], b[0], b[1], b[2]]
                })
                .collect();
            Ok(from_raw(raw))
        }
        PixelFormat::Nv12 => {
            even_width()?;
            let chroma_rows = height.div_ceil(2) as usize;
            expect(pixels + chroma_rows * width as usize)?;
            let (luma, chroma) = bytes.split_at(pixels);
            let w = width as usize;
            let mut raw = Vec::with_capacity(pixels * 3);
            for row in 0..height as usize {
                let uv_row = &chroma[(row / 2) * w..(row / 2) * w + w];
                for col in 0..w {
                    let uv = (col / 2) * 2;
                    raw.extend(yuv_to_rgb(luma[row * w + col], uv_row[uv], uv_row[uv + 1]));
                }
            }
            Ok(from_raw(raw))
        }
    }
}

/// BT.601 limited-range YCbCr to RGB, as V4L2 webcams deliver it.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 1.164 * (f32::from(y) - 16.0);
    let (d, e) = (f32::from(u) - 128.0, f32::from(v) - 128.0);
    let clamp = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    [
        clamp(c + 1.596 * e),
        clamp(c - 0.392 * d - 0.813 * e),
        clamp(c + 2.017 * d),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ImageLimits {
        ImageLimits::default()
    }

    #[test]
    fn yuyv_grey_levels_and_primaries_convert_to_the_expected_rgb() {
        // Y=16 is black and Y=235 white in limited range; U=V=128 is no colour.
        let bytes = [16, 128, 235, 128];
        let rgb = to_rgb(PixelFormat::Yuyv, 2, 1, &bytes, &limits()).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, [255, 255, 255]);
        // BT.601 red (R'=G'=B' from 255,0,0): Y=81, U=90, V=240.
        let red = to_rgb(PixelFormat::Yuyv, 2, 1, &[81, 90, 81, 240], &limits()).unwrap();
        let [r, g, b] = red.get_pixel(0, 0).0;
        assert!(r > 250 && g < 5 && b < 5, "{:?}", [r, g, b]);
    }

    #[test]
    fn nv12_shares_one_chroma_pair_between_four_pixels() {
        // 2x2 luma, then one UV pair (blue: Y=41, U=240, V=110).
        let bytes = [41, 41, 41, 41, 240, 110];
        let rgb = to_rgb(PixelFormat::Nv12, 2, 2, &bytes, &limits()).unwrap();
        for p in rgb.pixels() {
            let [r, g, b] = p.0;
            assert!(b > 250 && r < 5 && g < 5, "{:?}", p.0);
        }
    }

    #[test]
    fn bgr_and_grey_are_reordered_and_expanded() {
        let bgr = to_rgb(PixelFormat::Bgr, 1, 1, &[1, 2, 3], &limits()).unwrap();
        assert_eq!(bgr.get_pixel(0, 0).0, [3, 2, 1]);
        let grey = to_rgb(PixelFormat::Gray, 2, 1, &[7, 9], &limits()).unwrap();
        assert_eq!(grey.get_pixel(1, 0).0, [9, 9, 9]);
    }

    #[test]
    fn a_short_or_malformed_frame_is_refused_not_guessed() {
        let short = to_rgb(PixelFormat::Yuyv, 4, 4, &[0; 10], &limits()).unwrap_err();
        assert!(
            matches!(
                short,
                PixelError::Size {
                    expected: 32,
                    got: 10,
                    ..
                }
            ),
            "{short}"
        );
        let odd = to_rgb(PixelFormat::Yuyv, 3, 1, &[0; 6], &limits()).unwrap_err();
        assert!(matches!(odd, PixelError::OddWidth { .. }));
        let jpeg = to_rgb(PixelFormat::Mjpeg, 4, 4, &[0xFF, 0xD8, 0xFF, 0], &limits());
        assert!(matches!(jpeg, Err(PixelError::Jpeg(_))));
    }

    #[test]
    fn mjpeg_frames_decode_to_their_own_size() {
        let photo = RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, 128]));
        let jpeg = image_io::encode_jpeg(&photo, 95);
        let rgb = to_rgb(PixelFormat::Mjpeg, 0, 0, &jpeg, &limits()).unwrap();
        assert_eq!(rgb.dimensions(), (32, 24));
    }
}
