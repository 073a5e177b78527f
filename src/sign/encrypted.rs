//! Secret key files encrypted with a passphrase.
//!
//! One line of text after the comments, its fields in this order (the README's
//! "Operator keys" section documents it for other tools):
//!
//! ```text
//! airlock-sec-ed25519-encrypted:v1 public=<64 hex> kdf=argon2id m=<KiB> t=<passes> p=<lanes>
//!     salt=<32 hex> aead=xchacha20poly1305 nonce=<48 hex> sealed=<96 hex>
//! ```
//!
//! (one line in the file). Argon2id (RFC 9106, version 0x13) turns the
//! passphrase and the salt into a 32-byte key; XChaCha20-Poly1305 seals the
//! 32-byte ed25519 seed under it, with everything before ` sealed=` as
//! associated data, so the public key and the cost parameters cannot be
//! changed without the passphrase failing. The public key is in clear so that
//! a command can name the key (and check a decrypted seed against it) without
//! the passphrase.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::{PublicKey, SecretKey};
use crate::error::{Error, Result};

/// The tag that starts an encrypted key line.
pub(crate) const TAG: &str = "airlock-sec-ed25519-encrypted:";
const VERSION: &str = "v1";

/// Argon2id's cost: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Cost {
    /// What `keygen` writes: 128 MiB and 3 passes, about half a second on
    /// the 2-core machine this was measured on (README, Operator keys), so a
    /// guess costs an attacker that much memory and time too.
    pub const DEFAULT: Cost = Cost { memory_kib: 128 * 1024, passes: 3, lanes: 1 };

    /// The most a key file may ask for: reading a file must not take the
    /// machine's memory or an hour, whoever wrote it.
    const MAX: Cost = Cost { memory_kib: 4 * 1024 * 1024, passes: 64, lanes: 16 };

    fn params(self) -> std::result::Result<argon2::Params, argon2::Error> {
        argon2::Params::new(self.memory_kib, self.passes, self.lanes, Some(32))
    }

    fn within_limits(self) -> bool {
        self.memory_kib <= Cost::MAX.memory_kib && self.passes <= Cost::MAX.passes && self.lanes <= Cost::MAX.lanes
    }
}

/// A secret key file's sealed contents, parsed but not yet opened.
#[derive(Debug, Clone)]
pub struct EncryptedKey {
    public: PublicKey,
    cost: Cost,
    salt: [u8; 16],
    nonce: [u8; 24],
    sealed: [u8; 48],
}

impl EncryptedKey {
    /// Seals `key` under `passphrase` with a fresh salt and nonce.
    pub fn seal(key: &SecretKey, passphrase: &[u8], cost: Cost) -> Result<Self> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        for buf in [&mut salt[..], &mut nonce[..]] {
            getrandom::fill(buf)
                .map_err(|e| Error::Usage(format!("the system random source failed: {e}; try again")))?;
        }
        let mut this = EncryptedKey { public: key.public().clone(), cost, salt, nonce, sealed: [0; 48] };
        let cipher = this.cipher(passphrase)?;
        let mut seed = Zeroizing::new(key.signing_key().to_bytes());
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from(this.nonce), this.header().as_bytes(), (&mut seed[..]).into())
            .map_err(|_| Error::Usage("cannot encrypt the secret key".into()))?;
        this.sealed[..32].copy_from_slice(&seed[..]);
        this.sealed[32..].copy_from_slice(&tag);
        Ok(this)
    }

    /// The public key, readable without the passphrase.
    #[must_use]
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Opens the file with `passphrase`; `origin` names it in errors.
    pub fn open(&self, passphrase: &[u8], origin: &str) -> Result<SecretKey> {
        let cipher = self.cipher(passphrase)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&self.sealed[..32]);
        let tag = chacha20poly1305::Tag::try_from(&self.sealed[32..]).expect("the sealed bytes end in a 16-byte tag");
        cipher
            .decrypt_inout_detached(&XNonce::from(self.nonce), self.header().as_bytes(), (&mut seed[..]).into(), &tag)
            .map_err(|_| {
                Error::Usage(format!(
                    "{origin}: wrong passphrase for secret key {} (or the file was altered); check the passphrase, or the --passphrase-file, and try again",
                    self.public.id().short()
                ))
            })?;
        let key = SecretKey::from_seed(&seed);
        if key.public() != &self.public {
            return Err(Error::Usage(format!(
                "{origin}: the encrypted seed does not belong to the public key in the file; the file is damaged"
            )));
        }
        Ok(key)
    }

    /// Everything before ` sealed=`: the associated data.
    fn header(&self) -> String {
        let Cost { memory_kib, passes, lanes } = self.cost;
        format!(
            "{TAG}{VERSION} public={} kdf=argon2id m={memory_kib} t={passes} p={lanes} salt={} aead=xchacha20poly1305 nonce={}",
            hex::encode(self.public.verifying_key().as_bytes()),
            hex::encode(self.salt),
            hex::encode(self.nonce),
        )
    }

    /// The key line written to the file.
    #[must_use]
    pub fn to_line(&self) -> String {
        format!("{} sealed={}", self.header(), hex::encode(self.sealed))
    }

    /// Parses the key line (the text after the comments); `origin` names the file.
    pub fn from_line(line: &str, origin: &str) -> Result<Self> {
        let damaged = |what: &str| {
            Error::Usage(format!(
                "{origin}: encrypted secret key has {what}; the file is damaged, restore it from your backup"
            ))
        };
        let rest = line.strip_prefix(TAG).ok_or_else(|| damaged("no encrypted key tag"))?;
        let mut fields = rest.split(' ');
        let version = fields.next().unwrap_or_default();
        if version != VERSION {
            return Err(Error::Usage(format!(
                "{origin}: encrypted secret key of format {version:?}, this airlock reads {VERSION}; use a newer airlock"
            )));
        }
        let mut field = |name: &str| -> Result<&str> {
            fields
                .next()
                .and_then(|f| f.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| damaged(&format!("no {name}= where expected")))
        };
        let public_hex = field("public")?;
        let public = PublicKey::from_text(&format!("{}{public_hex}", super::PUBLIC_TAG), origin)?;
        if field("kdf")? != "argon2id" {
            return Err(damaged("a key derivation other than argon2id"));
        }
        let number = |text: &str, name: &str| text.parse::<u32>().map_err(|_| damaged(&format!("a bad {name}")));
        let memory_kib = number(field("m")?, "memory cost m")?;
        let passes = number(field("t")?, "pass count t")?;
        let lanes = number(field("p")?, "lane count p")?;
        let salt = hex_array(field("salt")?).ok_or_else(|| damaged("a bad salt"))?;
        if field("aead")? != "xchacha20poly1305" {
            return Err(damaged("a cipher other than xchacha20poly1305"));
        }
        let nonce = hex_array(field("nonce")?).ok_or_else(|| damaged("a bad nonce"))?;
        let sealed = hex_array(field("sealed")?).ok_or_else(|| damaged("bad sealed bytes"))?;
        if fields.next().is_some() {
            return Err(damaged("more fields than format v1 has"));
        }
        let cost = Cost { memory_kib, passes, lanes };
        if cost.params().is_err() {
            return Err(damaged("argon2 costs outside argon2's range"));
        }
        if !cost.within_limits() {
            return Err(Error::Usage(format!(
                "{origin}: the key file asks for argon2 costs (m={memory_kib} KiB, t={passes}, p={lanes}) above airlock's limits (4 GiB, 64 passes, 16 lanes); it was not written by airlock keygen"
            )));
        }
        Ok(EncryptedKey { public, cost, salt, nonce, sealed })
    }

    fn cipher(&self, passphrase: &[u8]) -> Result<XChaCha20Poly1305> {
        let params = self.cost.params().map_err(|e| Error::Usage(format!("argon2 cannot use these costs: {e}")))?;
        let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        kdf.hash_password_into(passphrase, &self.salt, &mut key[..]).map_err(|e| {
            Error::Usage(format!("cannot derive the key from the passphrase: {e}; free memory and try again"))
        })?;
        XChaCha20Poly1305::new_from_slice(&key[..]).map_err(|_| Error::Usage("cannot set up the cipher".into()))
    }
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    // Lowercase only: one spelling per file, as keygen writes it.
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap cost for unit tests of the format; the command-line tests use the default.
    const CHEAP: Cost = Cost { memory_kib: 64, passes: 1, lanes: 1 };

    #[test]
    fn seals_and_opens_and_binds_every_field() {
        let key = SecretKey::generate().unwrap();
        let sealed = EncryptedKey::seal(&key, b"correct horse", CHEAP).unwrap();
        let line = sealed.to_line();
        let parsed = EncryptedKey::from_line(&line, "k").unwrap();
        assert_eq!(parsed.open(b"correct horse", "k").unwrap().public(), key.public());
        let wrong = parsed.open(b"correct hors", "k").unwrap_err();
        assert_eq!(wrong.exit_code(), 2);
        assert!(wrong.to_string().contains("wrong passphrase"), "{wrong}");
        assert!(!line.contains(&hex::encode(key.signing_key().to_bytes())));
        // Another public key, or other costs, in the associated data: the passphrase no longer opens it.
        let other = SecretKey::generate().unwrap();
        let swapped = line.replace(
            &hex::encode(key.public().verifying_key().as_bytes()),
            &hex::encode(other.public().verifying_key().as_bytes()),
        );
        assert!(EncryptedKey::from_line(&swapped, "k").unwrap().open(b"correct horse", "k").is_err());
        let cheaper = line.replace(" t=1 ", " t=2 ");
        assert!(EncryptedKey::from_line(&cheaper, "k").unwrap().open(b"correct horse", "k").is_err());
    }

    #[test]
    fn refuses_damaged_and_hostile_lines() {
        let key = SecretKey::generate().unwrap();
        let line = EncryptedKey::seal(&key, b"pw", CHEAP).unwrap().to_line();
        for bad in [
            line.replace(":v1 ", ":v2 "),
            line.replace(" kdf=argon2id", " kdf=scrypt"),
            line.replace(" m=64 ", " m=8388608 "),
            line.replace(" t=1 ", " t=0 "),
            line.replace(" aead=xchacha20poly1305", " aead=none"),
            format!("{line} extra=1"),
            line[..line.len() - 2].to_owned(),
            line.to_uppercase(),
        ] {
            let err = EncryptedKey::from_line(&bad, "k").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }
}
