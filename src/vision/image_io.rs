//! Decoding photos safely: only regular files, read through a byte limit (a device or a FIFO
//! would never end); a pixel limit and a shape limit checked on the header before allocating (so
//! a 50,000×50,000 or a 1,000,000×1 PNG is refused up front); EXIF orientation honoured, grey
//! made RGB. Decoding costs at most a few bytes per pixel of `max_pixels`.

use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

/// The widest shape accepted, long side : short side. Cameras deliver 4:3 to 21:9 (2.4:1) and
/// face photos are portraits; only a crafted file is thinner, and such a strip can hold no face.
pub const MAX_ASPECT_RATIO: u32 = 8;

/// The largest `max_bytes` a config may set: far above any photo, far below the memory a
/// Raspberry Pi has.
pub const MAX_BYTES_LIMIT: u64 = 64 * 1024 * 1024;
/// The largest `max_pixels` a config may set (a 100-megapixel photo).
pub const MAX_PIXELS_LIMIT: u64 = 100_000_000;

/// Limits on what a photo may cost (config section `[vision.images]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageLimits {
    /// Largest encoded file accepted, in bytes.
    pub max_bytes: u64,
    /// Largest decoded image accepted, in pixels (width × height).
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

impl ImageLimits {
    /// Every value out of its safe range, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=MAX_BYTES_LIMIT).contains(&self.max_bytes) {
            problems.push(format!(
                "vision.images.max_bytes = {} must be 1 to {MAX_BYTES_LIMIT} (64 MiB): every \
                 photo is read into memory",
                self.max_bytes
            ));
        }
        if !(1..=MAX_PIXELS_LIMIT).contains(&self.max_pixels) {
            problems.push(format!(
                "vision.images.max_pixels = {} must be 1 to {MAX_PIXELS_LIMIT}: decoding costs \
                 a few bytes per pixel",
                self.max_pixels
            ));
        }
        problems
    }
}

/// Why a photo could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("cannot read {path}: it is {kind}, not a regular file")]
    NotAFile { path: String, kind: &'static str },
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image is {size} bytes, over the limit of {limit} bytes (vision.images.max_bytes)")]
    TooManyBytes { size: u64, limit: u64 },
    #[error(
        "the image is {width}x{height} = {pixels} pixels, over the limit of {limit} (vision.images.max_pixels)"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error(
        "the image is {width}x{height}, thinner than {max}:1; no camera frame or face photo has \
         that shape (cameras are at most about 2.4:1)",
        max = MAX_ASPECT_RATIO
    )]
    TooThin { width: u32, height: u32 },
    #[error("not a JPEG or PNG image")]
    UnknownFormat,
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// Reads and decodes the photo at `path`.
pub fn load(path: &Path, limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    decode(&read_file(path, limits.max_bytes)?, limits)
}

/// The bytes of the regular file at `path` (a symlink to one is fine), at most `max_bytes` of
/// them. Devices, FIFOs, sockets and directories are refused before they are read: their
/// reported size is 0, `/dev/zero` never ends and a FIFO waits for a writer. The file is opened
/// without blocking, so one swapped in after the check cannot hang the caller either.
pub fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ImageError> {
    let shown = || path.display().to_string();
    let io = |error| ImageError::Io {
        path: shown(),
        error,
    };
    let regular = |metadata: &std::fs::Metadata| match file_kind(metadata) {
        None => Ok(()),
        Some(kind) => Err(ImageError::NotAFile {
            path: shown(),
            kind,
        }),
    };
    regular(&std::fs::metadata(path).map_err(io)?)?;
    let file = open_nonblocking(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    regular(&metadata)?;
    check_size(metadata.len(), &limit_of(max_bytes))?;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // Never read past the limit, even if the file grows while we read it.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_size(bytes.len() as u64, &limit_of(max_bytes))?;
    Ok(bytes)
}

fn limit_of(max_bytes: u64) -> ImageLimits {
    ImageLimits {
        max_bytes,
        max_pixels: 0,
    }
}

/// What `metadata` describes when it is not a regular file.
fn file_kind(metadata: &std::fs::Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    Some("not a file")
}

fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Decodes an encoded photo held in memory.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    check_size(bytes.len() as u64, limits)?;
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        _ => return Err(ImageError::UnknownFormat),
    }
    // The header's claim is checked before the decoder buffers anything.
    if let Some((width, height)) = header_dimensions(bytes) {
        check_dimensions(width, height, limits)?;
    }
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let pixels = check_dimensions(width, height, limits)?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(width);
    decoder_limits.max_image_height = Some(height);
    decoder_limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(1 << 20));
    decoder.set_limits(decoder_limits).map_err(corrupt)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// Encodes `image` as JPEG at `quality`, for uploads.
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    // Encoding an in-memory RGB buffer into a Vec cannot fail.
    image
        .write_with_encoder(encoder)
        .expect("JPEG encoding of an RGB buffer into memory");
    out
}

/// The pixel count of a `width`×`height` image within `limits` and [`MAX_ASPECT_RATIO`].
fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<u64, ImageError> {
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    let (long, short) = (width.max(height) as u64, width.min(height) as u64);
    if long > short * MAX_ASPECT_RATIO as u64 {
        return Err(ImageError::TooThin { width, height });
    }
    Ok(pixels)
}

/// The size a PNG (IHDR) or JPEG (first SOF segment) header claims, without decoding.
fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        return Some((be32(&bytes[16..20]), be32(&bytes[20..24])));
    }
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        let length = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame && at + 9 <= bytes.len() {
            let height = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]) as u32;
            let width = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]) as u32;
            return Some((width, height));
        }
        at += 2 + length;
    }
    None
}

fn check_size(size: u64, limits: &ImageLimits) -> Result<(), ImageError> {
    if size == 0 {
        return Err(ImageError::Empty);
    }
    if size > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            size,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn corrupt(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(l) => ImageError::Corrupt(format!("over a decoding limit: {l}")),
        other => ImageError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_pixel(width, height, Rgb([1, 2, 3]));
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    /// A valid PNG header whose IHDR claims `width`×`height`, with no data behind it.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend(13u32.to_be_bytes());
        out.extend(&ihdr);
        out.extend(crc32(&ihdr).to_be_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= byte as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_small_png_decodes() {
        let image = decode(&png(3, 2), &ImageLimits::default()).unwrap();
        assert_eq!(image.dimensions(), (3, 2));
        assert_eq!(image.get_pixel(0, 0), &Rgb([1, 2, 3]));
    }

    #[test]
    fn zero_bytes_is_empty() {
        assert!(matches!(
            decode(&[], &ImageLimits::default()),
            Err(ImageError::Empty)
        ));
    }

    #[test]
    fn a_truncated_png_is_corrupt() {
        let bytes = png(40, 40);
        let err = decode(&bytes[..bytes.len() / 2], &ImageLimits::default()).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    }

    #[test]
    fn text_is_not_an_image() {
        let err = decode(b"hello, I am not a photo", &ImageLimits::default()).unwrap_err();
        assert!(matches!(err, ImageError::UnknownFormat), "{err}");
    }

    #[test]
    fn a_decompression_bomb_header_is_refused_before_allocating() {
        let err = decode(&png_header(50_000, 50_000), &ImageLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooManyPixels {
                    pixels: 2_500_000_000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_huge_jpeg_header_is_refused_before_decoding() {
        // SOI, then a baseline SOF0 claiming 60000x60000, and nothing else.
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
        bytes.extend(60_000u16.to_be_bytes());
        bytes.extend(60_000u16.to_be_bytes());
        bytes.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        let err = decode(&bytes, &ImageLimits::default()).unwrap_err();
        assert!(
            matches!(err, ImageError::TooManyPixels { width: 60_000, .. }),
            "{err}"
        );
    }

    #[test]
    fn header_dimensions_of_real_encodings() {
        assert_eq!(header_dimensions(&png(7, 5)), Some((7, 5)));
        let jpeg = encode_jpeg(&RgbImage::new(9, 4), 80);
        assert_eq!(header_dimensions(&jpeg), Some((9, 4)));
        assert_eq!(header_dimensions(b"nothing"), None);
    }

    #[test]
    fn the_byte_limit_is_enforced() {
        let limits = ImageLimits {
            max_bytes: 10,
            ..Default::default()
        };
        assert!(matches!(
            decode(&png(4, 4), &limits),
            Err(ImageError::TooManyBytes { .. })
        ));
    }

    /// `jpeg` with an EXIF APP1 segment (little-endian TIFF, one IFD entry: Orientation)
    /// inserted after the SOI marker.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend(8u32.to_le_bytes()); // IFD0 offset
        tiff.extend(1u16.to_le_bytes()); // one entry
        tiff.extend(0x0112u16.to_le_bytes()); // Orientation
        tiff.extend(3u16.to_le_bytes()); // SHORT
        tiff.extend(1u32.to_le_bytes()); // count
        tiff.extend(orientation.to_le_bytes());
        tiff.extend([0, 0]);
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(((app1.len() + 2) as u16).to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A wide image whose EXIF says "rotate 90° clockwise to display" comes out tall.
        let mut image = RgbImage::from_pixel(16, 8, Rgb([0, 0, 0]));
        image.put_pixel(0, 0, Rgb([255, 255, 255]));
        let jpeg = with_exif_orientation(&encode_jpeg(&image, 95), 6);
        let decoded = decode(&jpeg, &ImageLimits::default()).unwrap();
        assert_eq!(decoded.dimensions(), (8, 16));
        // The top-left corner moves to the top-right.
        assert!(
            decoded.get_pixel(7, 0)[0] > 128,
            "{:?}",
            decoded.get_pixel(7, 0)
        );
        assert!(decoded.get_pixel(0, 0)[0] < 128);
    }

    #[test]
    fn jpeg_round_trip_keeps_size() {
        let image = RgbImage::from_pixel(16, 8, Rgb([200, 100, 50]));
        let decoded = decode(&encode_jpeg(&image, 90), &ImageLimits::default()).unwrap();
        assert_eq!(decoded.dimensions(), (16, 8));
    }
}
