//! Encryption at rest for what must not sit in the clear on a stolen SD card: face embeddings,
//! signing keys, cached tokens. XChaCha20-Poly1305 with a random 24-byte nonce per record and
//! the record's name as associated data, so a sealed value cannot be moved to another slot.
//! The key is 32 random bytes in `<data_dir>/secret.key`, created with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "secret.key";
const NONCE_LEN: usize = 24;

/// Why a key could not be used or a record opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot use the key file {path}: {error}")]
    KeyFile { path: PathBuf, error: String },
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileOpen { path: PathBuf, mode: u32 },
    #[error("a sealed record ({context}) is damaged or was moved")]
    Damaged { context: String },
}

/// Seals and opens records with the data directory's key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Loads `<data_dir>/secret.key`, creating it (0600) on first use.
    pub fn open_or_create(data_dir: &Path) -> Result<Self, SealError> {
        let path = data_dir.join(KEY_FILE);
        let fail = |error: String| SealError::KeyFile {
            path: path.clone(),
            error,
        };
        let key = match std::fs::read(&path) {
            Ok(bytes) => {
                check_private(&path)?;
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                write_private(&path, &key).map_err(|e| fail(e.to_string()))?;
                key
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| fail(format!("it holds {} bytes, not 32", key.len())))?;
        Ok(Self { cipher })
    }

    /// A sealer with a given key (tests).
    pub fn with_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// `nonce || ciphertext` of `plaintext`, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        // Encryption only fails for plaintexts beyond 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encrypts any record facegate stores");
        [nonce.as_slice(), &ciphertext].concat()
    }

    /// The plaintext of a sealed record, if it is intact and was sealed for `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let damaged = || SealError::Damaged {
            context: context.to_string(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(damaged());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| damaged())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn check_private(path: &Path) -> Result<(), SealError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| SealError::KeyFile {
                path: path.to_path_buf(),
                error: e.to_string(),
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SealError::KeyFileOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_only_in_their_own_slot() {
        let sealer = Sealer::with_key(&[7; 32]);
        let sealed = sealer.seal(b"embedding", "face/1");
        assert!(
            !sealed.windows(9).any(|w| w == b"embedding"),
            "plaintext visible"
        );
        assert_eq!(sealer.open(&sealed, "face/1").unwrap(), b"embedding");
        assert!(
            sealer.open(&sealed, "face/2").is_err(),
            "moved to another slot"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered, "face/1").is_err());
        assert!(sealer.open(&[1, 2, 3], "face/1").is_err());
        assert!(
            Sealer::with_key(&[8; 32]).open(&sealed, "face/1").is_err(),
            "another key"
        );
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::open_or_create(dir.path()).unwrap();
        let sealed = a.seal(b"x", "ctx");
        let b = Sealer::open_or_create(dir.path()).unwrap();
        assert_eq!(b.open(&sealed, "ctx").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Sealer::open_or_create(dir.path()).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
