//! Signing keys, their files, and key ids.
//!
//! Key files are one line of text each (comment lines start with `#`):
//! `airlock-pub-ed25519:<hex>`, and for the secret key either
//! `airlock-sec-ed25519-encrypted:v1 ...` (sealed under a passphrase, what
//! `keygen` writes: see [`encrypted`]) or `airlock-sec-ed25519:<hex>` (in
//! clear, with `--unencrypted`). The secret file is created with mode 0600 and
//! refused if others can read it, as ssh does. A key can also stay on a
//! PKCS#11 token ([`pkcs11`]); every signing command takes any of the three
//! through [`signer`].

pub mod encrypted;
pub mod envelope;
pub mod keyring;
pub mod pkcs11;
pub mod signer;

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

pub use self::encrypted::{Cost, EncryptedKey};
pub use self::keyring::{Keyring, TrustedKey};
pub use self::signer::{OperatorKey, Signer};
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

/// Shows the key id only, never the key.
impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public.id().to_hex())
    }
}

/// What a secret key file holds.
#[derive(Clone)]
pub enum KeyFile {
    /// `airlock-sec-ed25519:<hex>`: the key in clear (`keygen --unencrypted`).
    Clear(SecretKey),
    /// Sealed under a passphrase (what `keygen` writes).
    Encrypted(EncryptedKey),
}

impl KeyFile {
    /// Reads a secret key file, refusing one that others can read.
    pub fn read(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        if path.is_dir() {
            return Err(Error::Usage(format!(
                "{origin}: is a folder, not a secret key; pass the .key file written by `airlock keygen`"
            )));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| Error::input(path, "secret key", &e))?);
        let line = only_line(&text).unwrap_or_default();
        // What the file is comes first: a .pub given by mistake is not to be chmod-ed.
        if !line.starts_with(PUBLIC_TAG) {
            check_private(path)?;
        }
        if line.starts_with(encrypted::TAG) {
            return EncryptedKey::from_line(line, &origin).map(KeyFile::Encrypted);
        }
        let Some(hexed) = line.strip_prefix(SECRET_TAG) else {
            let what = if line.starts_with(PUBLIC_TAG) {
                "is a public key, not a secret one"
            } else {
                "is not an airlock secret key"
            };
            return Err(Error::Usage(format!(
                "{origin}: {what} (expected one line starting {}, or {SECRET_TAG}); pass the .key file written by `airlock keygen`",
                encrypted::TAG
            )));
        };
        let seed = Zeroizing::new(decode_key_bytes(hexed).ok_or_else(|| {
            Error::Usage(format!("{origin}: the secret key is not 64 hex digits; the file is damaged"))
        })?);
        Ok(KeyFile::Clear(SecretKey::from_seed(&seed)))
    }

    /// The public key, known without a passphrase.
    #[must_use]
    pub fn public(&self) -> &PublicKey {
        match self {
            KeyFile::Clear(key) => key.public(),
            KeyFile::Encrypted(sealed) => sealed.public(),
        }
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| Error::Usage(format!("the system random source failed: {e}; try again")))?;
        Ok(SecretKey::from_seed(&seed))
    }

    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
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

    /// Reads a `.key` file stored in clear, refusing one that others can
    /// read; an encrypted one is refused too (open it through [`signer`]).
    pub fn load(path: &Path) -> Result<Self> {
        match KeyFile::read(path)? {
            KeyFile::Clear(key) => Ok(key),
            KeyFile::Encrypted(_) => Err(Error::Usage(format!(
                "{}: is encrypted with a passphrase; give the passphrase (--passphrase-file or a terminal)",
                path.display()
            ))),
        }
    }

    /// Writes PREFIX.key in clear (mode 0600) and PREFIX.pub. Refuses to
    /// replace an existing key unless `force`; returns the two paths.
    pub fn write_pair(&self, prefix: &Path, force: bool) -> Result<(PathBuf, PathBuf)> {
        self.write_pair_as(prefix, force, None)
    }

    fn write_pair_as(&self, prefix: &Path, force: bool, sealed: Option<&EncryptedKey>) -> Result<(PathBuf, PathBuf)> {
        let (secret_path, public_path) = pair_paths(prefix, force)?;
        self.write_secret(&secret_path, sealed)?;
        write_public(self.public(), &public_path, None)?;
        Ok((secret_path, public_path))
    }

    /// Writes the secret key file at `path` (mode 0600), sealed or in clear,
    /// replacing what is there (`keygen --encrypt` rewrites a clear key so).
    pub fn write_secret(&self, path: &Path, sealed: Option<&EncryptedKey>) -> Result<()> {
        check_output(path, "--out", Existing::Replace, &[])?;
        let id = self.public.id().to_hex();
        let text = Zeroizing::new(if let Some(sealed) = sealed {
            format!(
                "# airlock secret key {id}, encrypted with a passphrase: keep it on the connected side\n{}\n",
                sealed.to_line()
            )
        } else {
            let hexed = Zeroizing::new(hex::encode(Zeroizing::new(self.key.to_bytes()).as_slice()));
            format!(
                "# airlock secret key {id} (not encrypted): keep this file private, never copy it to the disconnected side\n{SECRET_TAG}{}\n",
                hexed.as_str()
            )
        });
        write_atomically(path, text.as_bytes(), 0o600)
    }
}

/// PREFIX.key and PREFIX.pub, checked as outputs before anything is asked
/// or written: an existing key is refused unless `force`.
pub fn pair_paths(prefix: &Path, force: bool) -> Result<(PathBuf, PathBuf)> {
    let secret_path = with_suffix(prefix, ".key");
    let public_path = with_suffix(prefix, ".pub");
    let paths = [&secret_path, &public_path];
    check_key_outputs(&paths, force)?;
    Ok((secret_path, public_path))
}

/// Refuses to overwrite a key file unless `force`, and any path that is no
/// place for one (see [`check_output`]).
pub fn check_key_outputs(paths: &[&PathBuf], force: bool) -> Result<()> {
    if !force {
        for path in paths {
            if path.symlink_metadata().is_ok() {
                return Err(Error::Usage(format!(
                    "{}: already exists; refusing to overwrite a key (pass --force to replace it)",
                    path.display()
                )));
            }
        }
    }
    for path in paths {
        check_output(path, "--out", Existing::Replace, &[])?;
    }
    Ok(())
}

/// Writes a `.pub` file; `held_at` says where its secret key is, in a comment.
pub fn write_public(public: &PublicKey, path: &Path, held_at: Option<&str>) -> Result<()> {
    let id = public.id().to_hex();
    let held = held_at.map(|place| format!(", its secret key held at {place}")).unwrap_or_default();
    let text = format!("# airlock public key {id}{held}\n{}\n", public.to_text());
    write_atomically(path, text.as_bytes(), 0o644)
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
    only_line(text)?.strip_prefix(tag)
}

/// The one line of a key file that is neither blank nor a comment.
fn only_line(text: &str) -> Option<&str> {
    // Editors on some systems save a byte-order mark first; it is not part of the key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    Some(line)
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

    #[test]
    fn a_public_key_or_a_folder_given_as_the_secret_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let (_, public) = key.write_pair(&dir.path().join("op"), false).unwrap();
        let err = SecretKey::load(&public).unwrap_err().to_string();
        assert!(err.contains("is a public key, not a secret one") && !err.contains("chmod"), "{err}");
        let err = SecretKey::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a folder, not a secret key") && !err.contains("chmod"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_before_a_key_is_ignored() {
        let key = SecretKey::generate().unwrap();
        let text = format!("\u{feff}# airlock public key\n{}\n", key.public().to_text());
        assert_eq!(&PublicKey::from_text(&text, "bom.pub").unwrap(), key.public());
    }
}
