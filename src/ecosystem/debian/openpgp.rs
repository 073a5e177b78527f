//! Checking a Debian `InRelease` (an `OpenPGP` cleartext-signed message)
//! against an `OpenPGP` keyring, with the `pgp` crate (rPGP): nothing here
//! parses `OpenPGP` itself. What this module adds is the rule apt applies
//! through gpgv: at least one signature by a key (or signing subkey) of the
//! keyring verifies, and that key was valid when it signed (created before,
//! not expired, not revoked, its binding to the primary key verified).

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::fmt::Write as _;
use std::io::Cursor;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;

/// A keyring: the keys of a `.gpg` file (binary or armored), each with its
/// self-signatures checked.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// A signature that verified: who made it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The signing key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The primary key's first user ID.
    pub user: String,
    /// When the signature was made (seconds since the epoch).
    pub created: u64,
}

impl Keyring {
    /// Reads a keyring; a key whose self-signatures do not verify is left
    /// out (as gpgv ignores it); a file with no usable key is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, String> {
        let keys: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN") {
            let (keys, _) = SignedPublicKey::from_armor_many(Cursor::new(bytes))
                .map_err(|e| format!("not an OpenPGP keyring ({e})"))?;
            keys.filter_map(Result::ok).collect()
        } else {
            SignedPublicKey::from_bytes_many(Cursor::new(bytes))
                .map_err(|e| format!("not an OpenPGP keyring ({e})"))?
                .filter_map(Result::ok)
                .collect()
        };
        // Third-party certifications (Debian's keys carry many) are not
        // checked: only the key's own, which `self_certifications` verifies.
        let keys: Vec<SignedPublicKey> = keys.into_iter().filter(|k| !self_certifications(k).is_empty()).collect();
        if keys.is_empty() {
            return Err("holds no OpenPGP public key whose self-signatures verify".into());
        }
        Ok(Keyring { keys })
    }

    /// How many keys it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none (never, once read).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A verified cleartext message: the signed text (line ends as written,
/// `\n`) and the signatures by keys of the keyring that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub text: String,
    pub signers: Vec<Signer>,
}

/// The text a cleartext-signed `message` signs, unchecked: for comparing
/// two documents whose signatures were checked when they were imported.
pub fn signed_text(message: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(message).map_err(|_| "is not UTF-8 text".to_owned())?;
    let (msg, _) =
        CleartextSignedMessage::from_string(text).map_err(|e| format!("is not a signed message that parses ({e})"))?;
    Ok(msg.signed_text().replace("\r\n", "\n"))
}

/// Checks the cleartext-signed `message` against `keyring`. The whole
/// document must be the one message (nothing before or after it), and at
/// least one of its signatures must be by a key of the keyring valid when
/// it signed.
pub fn verify_cleartext(message: &[u8], keyring: &Keyring) -> Result<Verified, String> {
    let text = std::str::from_utf8(message).map_err(|_| "is not UTF-8 text".to_owned())?;
    if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
        || !text.trim_end().ends_with("-----END PGP SIGNATURE-----")
    {
        return Err("is not one OpenPGP cleartext-signed message".into());
    }
    let (msg, _) =
        CleartextSignedMessage::from_string(text).map_err(|e| format!("is not a signed message that parses ({e})"))?;
    let signed = msg.signed_text();
    let mut signers = Vec::new();
    let mut tried = Vec::new();
    for sig in msg.signatures() {
        match check_one(sig, signed.as_bytes(), keyring) {
            Ok(who) => signers.push(who),
            Err(why) => tried.push(why),
        }
    }
    if signers.is_empty() {
        let mut why = String::from("has no signature by a key of the keyring that verifies");
        if !tried.is_empty() {
            let _ = write!(why, " ({})", tried.join("; "));
        }
        return Err(why);
    }
    Ok(Verified { text: signed.replace("\r\n", "\n"), signers })
}

/// One signature: the keyring's key or subkey it names, verified, and that
/// key valid at the signature's creation time.
fn check_one(sig: &Signature, data: &[u8], keyring: &Keyring) -> Result<Signer, String> {
    let created = sig.created().map(|t| u64::from(t.as_secs())).ok_or("a signature without a creation time")?;
    let issuers: Vec<Vec<u8>> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| f.as_bytes().to_vec())
        .chain(sig.issuer_key_id().iter().map(|k| k.as_ref().to_vec()))
        .collect();
    let named = |fingerprint: &[u8], key_id: &[u8]| issuers.iter().any(|i| i == fingerprint || i == key_id);
    let label = issuers.first().map_or_else(|| "a signature naming no key".to_owned(), hex::encode_upper);
    for key in &keyring.keys {
        let user =
            key.details.users.first().map(|u| String::from_utf8_lossy(u.id.id()).into_owned()).unwrap_or_default();
        let primary_expiry = primary_expiry(key);
        if named(key.primary_key.fingerprint().as_bytes(), key.primary_key.legacy_key_id().as_ref()) {
            sig.verify(&key.primary_key, data).map_err(|_| format!("{label}: the signature does not verify"))?;
            valid_at(created, u64::from(key.primary_key.created_at().as_secs()), primary_expiry, revoked(key))
                .map_err(|w| format!("{label}: {w}"))?;
            let fingerprint = hex::encode_upper(key.primary_key.fingerprint().as_bytes());
            return Ok(Signer { fingerprint, user, created });
        }
        for sub in &key.public_subkeys {
            if !named(sub.key.fingerprint().as_bytes(), sub.key.legacy_key_id().as_ref()) {
                continue;
            }
            sub.verify_bindings(&key.primary_key)
                .map_err(|_| format!("{label}: the subkey's binding to its primary key does not verify"))?;
            let binding = sub
                .signatures
                .iter()
                .filter(|s| s.typ() == Some(pgp::packet::SignatureType::SubkeyBinding))
                .max_by_key(|s| s.created().map(pgp::types::Timestamp::as_secs));
            let binding = binding.ok_or_else(|| format!("{label}: the subkey has no binding signature"))?;
            if !binding.key_flags().sign() {
                return Err(format!("{label}: the subkey is not a signing key"));
            }
            sig.verify(&sub.key, data).map_err(|_| format!("{label}: the signature does not verify"))?;
            let sub_created = u64::from(sub.key.created_at().as_secs());
            let sub_expiry = binding
                .key_expiration_time()
                .filter(|d| d.as_secs() != 0)
                .map(|d| sub_created + u64::from(d.as_secs()));
            let sub_revoked =
                sub.signatures.iter().any(|s| s.typ() == Some(pgp::packet::SignatureType::SubkeyRevocation));
            valid_at(created, sub_created, sub_expiry, sub_revoked).map_err(|w| format!("{label}: {w}"))?;
            valid_at(created, u64::from(key.primary_key.created_at().as_secs()), primary_expiry, revoked(key))
                .map_err(|w| format!("{label}: its primary key: {w}"))?;
            let fingerprint = hex::encode_upper(sub.key.fingerprint().as_bytes());
            return Ok(Signer { fingerprint, user, created });
        }
    }
    Err(format!("{label}: not a key of the keyring"))
}

/// The key's own certifications of its user IDs that verify.
fn self_certifications(key: &SignedPublicKey) -> Vec<&Signature> {
    let (fingerprint, key_id) = (key.primary_key.fingerprint(), key.primary_key.legacy_key_id());
    key.details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter().map(move |s| (u, s)))
        .filter(|(_, s)| {
            s.issuer_fingerprint().iter().any(|f| **f == fingerprint) || s.issuer_key_id().iter().any(|k| **k == key_id)
        })
        .filter(|(u, s)| s.verify_certification(&key.primary_key, pgp::types::Tag::UserId, &u.id).is_ok())
        .map(|(_, s)| s)
        .collect()
}

/// When the primary key expires, from its newest verified self-certification, if it says.
fn primary_expiry(key: &SignedPublicKey) -> Option<u64> {
    let created = u64::from(key.primary_key.created_at().as_secs());
    self_certifications(key)
        .into_iter()
        .max_by_key(|s| s.created().map(pgp::types::Timestamp::as_secs))
        .and_then(Signature::key_expiration_time)
        .filter(|d| d.as_secs() != 0)
        .map(|d| created + u64::from(d.as_secs()))
}

/// Whether the key carries a revocation signature. Any revocation counts,
/// whatever its reason: a revoked archive key is not trusted again.
fn revoked(key: &SignedPublicKey) -> bool {
    !key.details.revocation_signatures.is_empty()
}

fn valid_at(when: u64, created: u64, expires: Option<u64>, revoked: bool) -> Result<(), String> {
    if revoked {
        return Err("the key is revoked".into());
    }
    if when < created {
        return Err("signed before the key was created".into());
    }
    if let Some(end) = expires
        && when >= end
    {
        return Err(format!("signed after the key expired at {}", crate::time::rfc3339(end)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian").join(path)).unwrap()
    }

    #[test]
    fn the_real_bookworm_inrelease_verifies_its_rsa_and_ed25519_signatures() {
        let keyring = Keyring::from_bytes(&fixture("debian-archive-keyring.gpg")).unwrap();
        let verified = verify_cleartext(&fixture("bookworm-InRelease"), &keyring).unwrap();
        assert_eq!(verified.signers.len(), 3, "{:?}", verified.signers);
        let users: Vec<&str> = verified.signers.iter().map(|s| s.user.as_str()).collect();
        assert!(users.iter().any(|u| u.contains("Stable Release Key (12/bookworm)")), "{users:?}");
        assert!(users.iter().any(|u| u.contains("Automatic Signing Key (12/bookworm)")), "{users:?}");
        assert!(verified.signers.iter().any(|s| s.fingerprint == "4D64FEC119C2029067D6E791F8D2585B8783D481"));
        assert!(verified.text.starts_with("Origin: Debian\n"), "{}", &verified.text[..40]);
    }

    #[test]
    fn bookworm_updates_verifies_and_a_changed_byte_or_another_keyring_does_not() {
        let keyring = Keyring::from_bytes(&fixture("debian-archive-keyring.gpg")).unwrap();
        let real = fixture("archive/debian/dists/bookworm-updates/InRelease");
        verify_cleartext(&real, &keyring).unwrap();
        let altered = String::from_utf8(real.clone()).unwrap().replacen("Label: Debian", "Label: Debiam", 1);
        let e = verify_cleartext(altered.as_bytes(), &keyring).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let stranger = Keyring::from_bytes(&fixture("test/test-keyring.gpg")).unwrap();
        let e = verify_cleartext(&real, &stranger).unwrap_err();
        assert!(e.contains("not a key of the keyring"), "{e}");
        let mut trailing = real;
        trailing.extend_from_slice(b"Origin: Evil\n");
        assert!(verify_cleartext(&trailing, &keyring).is_err());
    }

    #[test]
    fn validity_window() {
        assert!(valid_at(10, 5, Some(20), false).is_ok());
        assert!(valid_at(4, 5, None, false).unwrap_err().contains("before"));
        assert!(valid_at(20, 5, Some(20), false).unwrap_err().contains("expired"));
        assert!(valid_at(10, 5, None, true).unwrap_err().contains("revoked"));
    }
}
