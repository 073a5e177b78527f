//! One way to sign whatever holds the key: a key file (in clear or sealed
//! under a passphrase, decrypted in memory) or a private key object on a
//! PKCS#11 token, which signs without the key ever leaving it. Envelope
//! sealing asks a [`Signer`] for 64 bytes and never sees a secret.

use std::path::{Path, PathBuf};

use ed25519_dalek::Signature;
use ed25519_dalek::ed25519::signature::Signer as _;
use zeroize::Zeroizing;

use super::pkcs11::{self, Pkcs11Uri, TokenKey};
use super::{KeyFile, PublicKey, SecretKey};
use crate::error::{Error, Result};

/// Signs messages with an operator's ed25519 key.
pub trait Signer {
    /// The key whose signatures these are (its id goes into the envelope).
    fn public(&self) -> &PublicKey;

    /// An ed25519 signature (RFC 8032, pure) over `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64]>;
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public(&self) -> &PublicKey {
        (**self).public()
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        (**self).sign(message)
    }
}

impl Signer for SecretKey {
    fn public(&self) -> &PublicKey {
        SecretKey::public(self)
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        Ok(self.signing_key().sign(message).to_bytes())
    }
}

/// An operator's key as a signing command holds it.
#[derive(Clone)]
pub enum OperatorKey {
    /// A key in memory: read from a key file (decrypted if it was sealed) or made here.
    Memory(SecretKey),
    /// A private key object on a PKCS#11 token.
    Token(TokenKey),
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OperatorKey::Memory(key) => write!(f, "OperatorKey::Memory({:?})", key.public()),
            OperatorKey::Token(key) => write!(f, "OperatorKey::Token({:?})", key.public()),
        }
    }
}

impl From<SecretKey> for OperatorKey {
    fn from(key: SecretKey) -> Self {
        OperatorKey::Memory(key)
    }
}

impl Signer for OperatorKey {
    fn public(&self) -> &PublicKey {
        match self {
            OperatorKey::Memory(key) => key.public(),
            OperatorKey::Token(key) => key.public(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        match self {
            OperatorKey::Memory(key) => Signer::sign(key, message),
            OperatorKey::Token(key) => key.sign(message),
        }
    }
}

/// Stands in for a key where only the envelope's length matters: ed25519
/// signatures are always 64 bytes, so no key is asked to sign.
pub(crate) struct Placeholder(pub(crate) PublicKey);

impl Signer for Placeholder {
    fn public(&self) -> &PublicKey {
        &self.0
    }

    fn sign(&self, _message: &[u8]) -> Result<[u8; 64]> {
        Ok([0; 64])
    }
}

/// Checks a signature a key holder made against its public key: a token
/// whose objects do not belong together must not write signatures no one
/// can verify.
pub(crate) fn check_signature(public: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    public.verifying_key().verify_strict(message, &Signature::from_bytes(signature)).is_ok()
}

/// Where a command was told its key is: `--key FILE` or `--key 'pkcs11:...'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Pkcs11(Box<Pkcs11Uri>),
}

impl KeySource {
    /// A `pkcs11:` URI (RFC 7512), or else a path (`./pkcs11:x` for a file so named).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        if text.starts_with(pkcs11::SCHEME) {
            return Pkcs11Uri::parse(text).map(|uri| KeySource::Pkcs11(Box::new(uri)));
        }
        if text.is_empty() {
            return Err("an empty key path".into());
        }
        Ok(KeySource::File(PathBuf::from(text)))
    }

    /// The key file, if this is one (for the rule that no output overwrites an input).
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            KeySource::File(path) => Some(path),
            KeySource::Pkcs11(_) => None,
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Pkcs11(uri) => write!(f, "{uri}"),
        }
    }
}

/// How a key was kept, for the commands' notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A key file in clear: anyone who copies the disk has the key.
    ClearFile,
    /// A key file sealed under a passphrase.
    EncryptedFile,
    /// A PKCS#11 token: the key never left it.
    Token,
}

/// A passphrase or a PIN, wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// What a command may be asked for while opening a key.
#[derive(Debug, Clone, Copy)]
pub enum Question<'a> {
    /// The passphrase of this encrypted key file.
    Passphrase(&'a Path),
    /// A new passphrase for this key file (asked twice on a terminal).
    NewPassphrase(&'a Path),
    /// The user PIN of the token with this label.
    Pin(&'a str),
}

/// Asks the operator (the command line answers on a terminal, or says how
/// to give the answer when there is none); the library never prints.
pub trait Ask {
    fn ask(&self, question: Question<'_>) -> Result<Secret>;
}

/// Where the secrets and the PKCS#11 module come from, besides asking.
pub struct Unlock<'a> {
    /// `--passphrase-file` (or `AIRLOCK_PASSPHRASE_FILE`): used for every encrypted key.
    pub passphrase_file: Option<PathBuf>,
    /// `--pkcs11-module` (or `AIRLOCK_PKCS11_MODULE`), unless the URI has `module-path`.
    pub pkcs11_module: Option<PathBuf>,
    /// `--pin-file` (or `AIRLOCK_PIN_FILE`), unless the URI has `pin-source` or `pin-value`.
    pub pin_file: Option<PathBuf>,
    pub ask: &'a dyn Ask,
}

impl Unlock<'_> {
    /// Opens the key at `source`, asking for a passphrase or a PIN where one is needed.
    pub fn open(&self, source: &KeySource) -> Result<(OperatorKey, Storage)> {
        match source {
            KeySource::File(path) => match KeyFile::read(path)? {
                KeyFile::Clear(key) => Ok((OperatorKey::Memory(key), Storage::ClearFile)),
                KeyFile::Encrypted(sealed) => {
                    let passphrase = self.passphrase(path)?;
                    let key = sealed.open(&passphrase, &path.display().to_string())?;
                    Ok((OperatorKey::Memory(key), Storage::EncryptedFile))
                }
            },
            KeySource::Pkcs11(uri) => Ok((OperatorKey::Token(TokenKey::open(uri, self)?), Storage::Token)),
        }
    }

    /// Opens every key, in order.
    pub fn open_all(&self, sources: &[KeySource]) -> Result<Vec<(OperatorKey, Storage)>> {
        sources.iter().map(|source| self.open(source)).collect()
    }

    /// The passphrase of `key`: the passphrase file, else asked.
    pub fn passphrase(&self, key: &Path) -> Result<Secret> {
        match &self.passphrase_file {
            Some(file) => read_secret_file(file, "passphrase file"),
            None => self.ask.ask(Question::Passphrase(key)),
        }
    }

    /// A new passphrase for `key` (keygen): the passphrase file, else asked.
    pub fn new_passphrase(&self, key: &Path) -> Result<Secret> {
        let passphrase = match &self.passphrase_file {
            Some(file) => read_secret_file(file, "passphrase file")?,
            None => self.ask.ask(Question::NewPassphrase(key))?,
        };
        if passphrase.is_empty() {
            return Err(Error::Usage(format!(
                "{}: an empty passphrase protects nothing; give one, or pass --unencrypted to store the key in clear",
                key.display()
            )));
        }
        Ok(passphrase)
    }
}

/// How much of a passphrase or PIN file is read: its first line must end
/// within this (a file such as /dev/zero must not be read for ever).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The first line of a passphrase or PIN file, without its line ending. A
/// pipe works too (`--passphrase-file <(pass show airlock)`).
pub fn read_secret_file(path: &Path, what: &str) -> Result<Secret> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::input(path, what, &e))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes).map_err(|e| Error::input(path, what, &e))?;
    let end = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => end,
        None if bytes.len() as u64 > MAX_SECRET_FILE => {
            return Err(Error::Usage(format!(
                "{}: the {what} has no line end in its first 64 KiB; write the secret alone on the first line",
                path.display()
            )));
        }
        None => bytes.len(),
    };
    bytes.truncate(end);
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the {what} is empty; write the secret on its first line",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sources_are_files_or_uris() {
        assert_eq!(KeySource::parse("op.key").unwrap(), KeySource::File("op.key".into()));
        assert_eq!(KeySource::parse("./pkcs11:x").unwrap(), KeySource::File("./pkcs11:x".into()));
        assert!(matches!(KeySource::parse("pkcs11:token=ops;object=alice").unwrap(), KeySource::Pkcs11(_)));
        assert!(KeySource::parse("pkcs11:token=a b").is_err());
        assert!(KeySource::parse("").is_err());
    }

    #[test]
    fn secret_files_give_their_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, b"  two words \r\nsecond line\n").unwrap();
        assert_eq!(&read_secret_file(&path, "passphrase file").unwrap()[..], b"  two words ");
        std::fs::write(&path, b"\nafter a blank line\n").unwrap();
        assert_eq!(read_secret_file(&path, "passphrase file").unwrap_err().exit_code(), 2);
        let endless = read_secret_file(Path::new("/dev/zero"), "passphrase file").unwrap_err();
        assert!(endless.to_string().contains("no line end"), "{endless}");
    }

    #[test]
    fn placeholders_sign_nothing_but_are_64_bytes() {
        let key = SecretKey::generate().unwrap();
        let placeholder = Placeholder(key.public().clone());
        let real = Signer::sign(&key, b"m").unwrap();
        assert!(check_signature(key.public(), b"m", &real));
        assert!(!check_signature(key.public(), b"m", &placeholder.sign(b"m").unwrap()));
    }
}
