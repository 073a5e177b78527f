//! Signing keys, their files, and key ids.
//!
//! Key files are one line of text each (comment lines start with `#`):
//! `airlock-pub-ed25519:<hex>` and `airlock-sec-ed25519:<hex>`. The secret
//! file is created with mode 0600 and refused if others can read it, as ssh does.

pub mod envelope;

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::durable::{Existing, check_output, write_atomically};
use crate::error::{Error, Result};
use crate::id::KeyId;

const PUBLIC_TAG: &str = "airlock-pub-ed25519:";
const SECRET_TAG: &str = "airlock-sec-ed25519:";

/// A public key that signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id.to_hex())
    }
}

impl PublicKey {
    fn new(key: VerifyingKey) -> Self {
        let id = key_id(&key);
        PublicKey { key, id }
    }

    #[must_use]
    pub fn id(&self) -> KeyId {
        self.id
    }

    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The one-line text form written to `.pub` files and accepted in policies.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_TAG}{}", hex::encode(self.key.as_bytes()))
    }

    /// Parses the text form; `origin` names where it came from in errors.
    pub fn from_text(text: &str, origin: &str) -> Result<Self> {
        let hexed = key_line(text, PUBLIC_TAG)
            .ok_or_else(|| Error::Usage(format!("{origin}: not an airlock public key (expected a line starting {PUBLIC_TAG}); pass the .pub file written by `airlock keygen`")))?;
        let bytes = decode_key_bytes(hexed).ok_or_else(|| {
            Error::Usage(format!("{origin}: the public key is not 64 hex digits; the file is damaged, copy it again"))
        })?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            Error::Usage(format!("{origin}: not a valid ed25519 public key; the file is damaged, copy it again"))
        })?;
        Ok(PublicKey::new(key))
    }

    /// Reads a `.pub` file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::input(path, "public key", &e))?;
        PublicKey::from_text(&text, &path.display().to_string())
    }
}

/// A secret signing key. ed25519-dalek zeroizes it on drop (every copy) and keeps it out of `Debug`.
#[derive(Clone)]
pub struct SecretKey {
    key: SigningKey,
    public: PublicKey,
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| Error::Usage(format!("the system random source failed: {e}; try again")))?;
        Ok(SecretKey::from_seed(&seed))
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let public = PublicKey::new(key.verifying_key());
        SecretKey { key, public }
    }

    #[must_use]
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Reads a `.key` file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self> {
        check_private(path)?;
        let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(|e| Error::input(path, "secret key", &e))?);
        let origin = path.display();
        let hexed = key_line(&text, SECRET_TAG).ok_or_else(|| {
            Error::Usage(format!("{origin}: not an airlock secret key (expected a line starting {SECRET_TAG}); pass the .key file written by `airlock keygen`"))
        })?;
        let seed = zeroize::Zeroizing::new(decode_key_bytes(hexed).ok_or_else(|| {
            Error::Usage(format!("{origin}: the secret key is not 64 hex digits; the file is damaged"))
        })?);
        Ok(SecretKey::from_seed(&seed))
    }

    /// Writes PREFIX.key (mode 0600) and PREFIX.pub. Refuses to replace an
    /// existing key unless `force`; returns the two paths.
    pub fn write_pair(&self, prefix: &Path, force: bool) -> Result<(PathBuf, PathBuf)> {
        let secret_path = with_suffix(prefix, ".key");
        let public_path = with_suffix(prefix, ".pub");
        if !force {
            for path in [&secret_path, &public_path] {
                if path.symlink_metadata().is_ok() {
                    return Err(Error::Usage(format!(
                        "{}: already exists; refusing to overwrite a key (pass --force to replace it)",
                        path.display()
                    )));
                }
            }
        }
        for path in [&secret_path, &public_path] {
            check_output(path, "--out", Existing::Replace, &[])?;
        }
        let id = self.public.id().to_hex();
        let secret = zeroize::Zeroizing::new(format!(
            "# airlock secret key {id}: keep this file private, never copy it to the disconnected side\n{SECRET_TAG}{}\n",
            hex::encode(self.key.to_bytes())
        ));
        write_atomically(&secret_path, secret.as_bytes(), 0o600)?;
        let public = format!("# airlock public key {id}\n{}\n", self.public.to_text());
        write_atomically(&public_path, public.as_bytes(), 0o644)?;
        Ok((secret_path, public_path))
    }
}

/// The key id: BLAKE3 in key-derivation mode with our own context string,
/// truncated to 16 bytes.
#[must_use]
pub fn key_id(key: &VerifyingKey) -> KeyId {
    let full = blake3::derive_key("airlock 2026 ed25519 key id v1", key.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&full[..16]);
    KeyId(id)
}

fn key_line<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    line.strip_prefix(tag)
}

fn decode_key_bytes(hexed: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hexed.trim(), &mut out).ok()?;
    Some(out)
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| Error::input(path, "secret key", &e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{}: secret key is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("op");
        let key = SecretKey::generate().unwrap();
        let (secret, public) = key.write_pair(&prefix, false).unwrap();
        assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(SecretKey::load(&secret).unwrap().public(), key.public());
        assert_eq!(&PublicKey::load(&public).unwrap(), key.public());
        let again = key.write_pair(&prefix, false).unwrap_err();
        assert!(again.to_string().contains("--force"));
        key.write_pair(&prefix, true).unwrap();
    }

    #[test]
    fn refuses_wrong_kind_of_file() {
        let key = SecretKey::generate().unwrap();
        let err = PublicKey::from_text("airlock-sec-ed25519:00", "x.pub").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(PublicKey::from_text(&key.public().to_text(), "x").is_ok());
        assert!(PublicKey::from_text(&format!("{}\n{}", key.public().to_text(), key.public().to_text()), "x").is_err());
    }
}
