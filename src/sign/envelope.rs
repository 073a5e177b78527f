//! The signature envelope: a tagged `COSE_Sign` (RFC 9052 §4.1) whose payload is
//! the canonical manifest and whose signatures are `EdDSA` (ed25519), one per
//! operator. COSE's `Sig_structure` already binds the context string
//! "Signature" and the protected headers; we add our own external AAD as
//! domain separation, so an airlock manifest signature cannot be replayed as
//! any other COSE message, and pin the content type in the protected header.

use std::collections::BTreeSet;

use ciborium::Value;
use coset::{
    AsCborValue, CoseSign, CoseSignBuilder, CoseSignature, CoseSignatureBuilder, HeaderBuilder, TaggedCborSerializable,
    iana,
};
use ed25519_dalek::Signature;

use crate::error::{Error, Rejection, Signers};
use crate::id::KeyId;
use crate::manifest::canonical::{self, Shape};
use crate::sign::signer::Placeholder;
use crate::sign::{Keyring, Signer};

/// What a signature is for. Each purpose has its own external AAD (domain
/// separation) and content type, so a signature made for one can never be
/// accepted as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purpose {
    /// External AAD bound into every signature.
    pub context: &'static [u8],
    /// Content type of the payload, in the body's protected header.
    pub content_type: &'static str,
    /// What the payload is, in error messages.
    pub subject: &'static str,
}

/// The bundle manifest.
pub const MANIFEST: Purpose = Purpose {
    context: b"airlock bundle manifest v1",
    content_type: "application/vnd.airlock.manifest+cbor",
    subject: "manifest",
};

/// A volume's seal over its compressed bytes.
pub const VOLUME_SEAL: Purpose = Purpose {
    context: b"airlock volume seal v1",
    content_type: "application/vnd.airlock.volume-seal+cbor",
    subject: "volume seal",
};

/// A policy statement: the next trust policy's TOML text, byte for byte
/// (`policy::statement`).
pub const POLICY_STATEMENT: Purpose = Purpose {
    context: b"airlock policy statement v1",
    content_type: "application/vnd.airlock.policy+toml",
    subject: "policy statement",
};

/// Signs `payload` (canonical CBOR, or a policy's text) with every key, returning the envelope bytes.
///
/// The bytes are coset's, but the payload is not handed to coset: it would
/// copy it into a CBOR value for every signature and again for the
/// envelope, and grow each output by doubling, several times the payload
/// in all (megabytes for a manifest of tens of thousands of entries).
/// Instead coset encodes everything with an empty or absent payload and the
/// payload's bytes are written in where coset put that one-byte item.
/// Each key only signs its `Sig_structure`: a token key never leaves its token.
pub fn seal<S: Signer>(payload: &[u8], keys: &[S], purpose: Purpose) -> Result<Vec<u8>, Error> {
    let encoding = |e: String| Error::Usage(format!("cannot encode the {} envelope: {e}", purpose.subject));
    let protected = HeaderBuilder::new().content_type(purpose.content_type.to_owned()).build();
    let mut sign = CoseSignBuilder::new().protected(protected).build();
    for key in keys {
        let mut signature = signature_template(key.public().id());
        // The Sig_structure ends with the payload: coset writes an empty byte string there.
        let without = sign.tbs_data(purpose.context, &signature);
        let tbs = splice_payload(&without, without.len() - 1, CBOR_EMPTY_BYTES, payload).map_err(encoding)?;
        signature.signature = key.sign(&tbs)?.to_vec();
        sign.signatures.push(signature);
    }
    let shell = sign.to_tagged_vec().map_err(|e| encoding(e.to_string()))?;
    splice_payload(&shell, payload_position(&shell).map_err(encoding)?, CBOR_NULL, payload).map_err(encoding)
}

/// How long `seal` makes the envelope of a payload of `len` bytes: the
/// envelope of an empty payload, with a longer byte string in its place.
/// No key signs for this: every ed25519 signature is 64 bytes.
pub fn sealed_len<S: Signer>(len: u64, keys: &[S], purpose: Purpose) -> Result<u64, Error> {
    let placeholders: Vec<Placeholder> = keys.iter().map(|k| Placeholder(k.public().clone())).collect();
    let empty = seal(&[], &placeholders, purpose)?;
    let mut head = Vec::new();
    canonical::write_head(&mut head, MAJOR_BYTES, len);
    Ok(empty.len() as u64 - 1 + head.len() as u64 + len)
}

/// CBOR `null`: what coset writes for an absent payload.
const CBOR_NULL: u8 = 0xf6;
/// CBOR's empty byte string.
const CBOR_EMPTY_BYTES: u8 = 0x40;
/// CBOR major type of byte strings.
const MAJOR_BYTES: u8 = 2;

/// Where the payload item of a tagged `COSE_Sign` starts: the third item of
/// the array inside the tag, after the protected and unprotected headers.
fn payload_position(envelope: &[u8]) -> Result<usize, String> {
    let array = canonical::content_start(envelope, 0)?;
    let protected = canonical::content_start(envelope, array)?;
    let unprotected = canonical::item_end(envelope, protected)?;
    canonical::item_end(envelope, unprotected)
}

/// `encoded` with the one-byte item `placeholder` at `at` replaced by
/// `payload` as a byte string, in one exactly sized buffer.
fn splice_payload(encoded: &[u8], at: usize, placeholder: u8, payload: &[u8]) -> Result<Vec<u8>, String> {
    if encoded.get(at) != Some(&placeholder) {
        return Err(format!("coset's encoding has no {placeholder:#04x} where the payload goes"));
    }
    let mut out = Vec::with_capacity(encoded.len() + 8 + payload.len());
    out.extend_from_slice(&encoded[..at]);
    canonical::write_head(&mut out, MAJOR_BYTES, payload.len() as u64);
    out.extend_from_slice(payload);
    out.extend_from_slice(&encoded[at + 1..]);
    Ok(out)
}

/// Why [`add_signature`] could not add one.
#[derive(Debug)]
pub enum AddError {
    /// The envelope given is not one airlock would accept.
    Rejected(Rejection),
    /// The key could not sign (a token refused, or was taken out).
    Signer(Error),
}

impl AddError {
    /// The error to report, naming `subject` for a rejected envelope.
    #[must_use]
    pub fn into_error(self, subject: &str) -> Error {
        match self {
            AddError::Rejected(rejection) => Error::rejected(subject, rejection),
            AddError::Signer(error) => error,
        }
    }
}

/// Adds one more signature to an existing envelope, leaving the payload and
/// the other signatures untouched.
pub fn add_signature<S: Signer + ?Sized>(envelope: &[u8], key: &S, purpose: Purpose) -> Result<Vec<u8>, AddError> {
    let Decoded { mut sign, payload } = decode(envelope, purpose).map_err(AddError::Rejected)?;
    let payload = payload.ok_or_else(|| AddError::Rejected(no_payload(purpose)))?;
    let template = signature_template(key.public().id());
    let without = sign.tbs_data(purpose.context, &template);
    let tbs = splice_payload(&without, without.len() - 1, CBOR_EMPTY_BYTES, payload)
        .map_err(|e| AddError::Rejected(Rejection::Malformed(e)))?;
    let mut signature = template;
    signature.signature = key.sign(&tbs).map_err(AddError::Signer)?.to_vec();
    sign.signatures.push(signature);
    let malformed = |e: String| AddError::Rejected(Rejection::Malformed(e));
    let shell = sign.to_tagged_vec().map_err(|e| malformed(e.to_string()))?;
    let at = payload_position(&shell).map_err(malformed)?;
    splice_payload(&shell, at, CBOR_NULL, payload).map_err(malformed)
}

fn signature_template(id: KeyId) -> CoseSignature {
    let protected = HeaderBuilder::new().algorithm(iana::Algorithm::EdDSA).key_id(id.0.to_vec()).build();
    CoseSignatureBuilder::new().protected(protected).build()
}

/// What an envelope holds, before any trust decision.
#[derive(Debug, Clone)]
pub struct Opened<'a> {
    /// The payload bytes exactly as received, within the envelope.
    pub payload: &'a [u8],
    /// Key ids of every signature, in order, as claimed (not yet verified).
    pub claimed_signers: Vec<KeyId>,
}

/// Decodes the envelope without judging trust (for `inspect`).
pub fn open_untrusted(envelope: &[u8], purpose: Purpose) -> Result<Opened<'_>, Rejection> {
    let Decoded { sign, payload } = decode(envelope, purpose)?;
    let claimed_signers = sign.signatures.iter().map(signer_id).collect::<Result<_, _>>()?;
    Ok(Opened { payload: payload.ok_or_else(|| no_payload(purpose))?, claimed_signers })
}

/// The outcome of checking an envelope against a keyring.
#[derive(Debug, Clone)]
pub struct Verified<'a> {
    /// The payload bytes exactly as signed, within the envelope.
    pub payload: &'a [u8],
    /// Distinct trusted keys whose signatures verified.
    pub trusted_signers: Vec<KeyId>,
    /// Signers the keyring does not know (ignored).
    pub unknown_signers: Vec<KeyId>,
    /// Distinct signers the keyring revokes: never counted, so not checked either.
    pub revoked_signers: Vec<KeyId>,
}

/// Checks every signature by a key the keyring trusts over the payload bytes
/// as received, and requires the keyring's threshold of distinct keys. A
/// signature that claims a trusted key id and fails is a rejection, not an
/// omission: it means the manifest or the signature was altered. A revoked
/// key never counts, whether or not the keyring still lists it.
///
/// The payload is read where it lies in `envelope`, never copied: it is
/// most of the envelope (up to the manifest cap) and nothing about it is
/// trusted yet.
pub fn verify<'a>(envelope: &'a [u8], keyring: &Keyring, purpose: Purpose) -> Result<Verified<'a>, Rejection> {
    let Decoded { sign, payload } = decode(envelope, purpose)?;
    let mut trusted = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    for (index, signature) in sign.signatures.iter().enumerate() {
        let id = signer_id(signature)?;
        if signature.protected.header.alg != Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA)) {
            return Err(Rejection::BadSignature(format!("signature {index} by {} is not EdDSA", id.short())));
        }
        if keyring.is_revoked(&id) {
            revoked.insert(id);
            continue;
        }
        let Some(key) = keyring.key(&id) else {
            unknown.insert(id);
            continue;
        };
        let payload = payload.ok_or_else(|| no_payload(purpose))?;
        if !signature_matches(&sign, signature, purpose, payload, key.verifying_key()) {
            return Err(Rejection::BadSignature(format!(
                "the signature by trusted key {} does not match the {}",
                id.short(),
                purpose.subject
            )));
        }
        trusted.insert(id);
    }
    if trusted.len() < keyring.threshold() {
        let short = |ids: &BTreeSet<KeyId>| ids.iter().map(KeyId::short).collect();
        return Err(Rejection::BelowThreshold {
            valid: trusted.len(),
            required: keyring.threshold(),
            signers: Box::new(Signers {
                counted: short(&trusted),
                untrusted: short(&unknown),
                revoked: short(&revoked),
            }),
        });
    }
    Ok(Verified {
        payload: payload.ok_or_else(|| no_payload(purpose))?,
        trusted_signers: trusted.into_iter().collect(),
        unknown_signers: unknown.into_iter().collect(),
        revoked_signers: revoked.into_iter().collect(),
    })
}

/// Whether `signature` is a valid ed25519 signature, by the rules of
/// `verify_strict` (no small-order key or `R`, canonical `S`), over the
/// `Sig_structure` of `sign` with `payload`. The structure is hashed in
/// three pieces (coset's encoding up to the payload, the payload's head,
/// the payload) so that it is never assembled in memory.
fn signature_matches(
    sign: &CoseSign,
    signature: &CoseSignature,
    purpose: Purpose,
    payload: &[u8],
    key: &ed25519_dalek::VerifyingKey,
) -> bool {
    // Without a payload coset ends the structure with an empty byte string.
    let without = sign.tbs_data(purpose.context, signature);
    let Some((&CBOR_EMPTY_BYTES, before)) = without.split_last() else { return false };
    let Ok(sig) = Signature::from_slice(&signature.signature) else { return false };
    let r: [u8; 32] = sig.r_bytes().to_owned();
    let small_order_r =
        curve25519_dalek::edwards::CompressedEdwardsY(r).decompress().is_none_or(|p| p.is_small_order());
    if small_order_r || key.is_weak() {
        return false;
    }
    let Ok(mut stream) = key.verify_stream(&sig) else { return false };
    let mut head = Vec::with_capacity(9);
    canonical::write_head(&mut head, MAJOR_BYTES, payload.len() as u64);
    stream.update(before);
    stream.update(&head);
    stream.update(payload);
    stream.finalize_and_verify().is_ok()
}

fn no_payload(purpose: Purpose) -> Rejection {
    Rejection::Malformed(format!("the signature envelope has no {}", purpose.subject))
}

/// Most CBOR items an envelope may hold: a handful per signature, so about
/// a thousand signatures.
const MAX_ENVELOPE_ITEMS: usize = 4096;
/// Deepest nesting: tag, `COSE_Sign`, signatures, one signature, its header map.
const MAX_ENVELOPE_DEPTH: usize = 8;
/// A protected header is a small map (content type, or algorithm and key id).
const MAX_HEADER_ITEMS: usize = 64;

/// Most bytes of an envelope besides its payload: headers and signatures,
/// about a hundred bytes for each signer (a volume leaves 1 MiB of room
/// for them; twice that is still a small document to decode).
const MAX_SHELL_BYTES: usize = 2 << 20;

/// An envelope decoded without its payload, which stays where it is.
struct Decoded<'a> {
    /// The `COSE_Sign` with no payload (coset's `None`).
    sign: CoseSign,
    /// The payload's bytes within the envelope; `None` if it is CBOR `null`.
    payload: Option<&'a [u8]>,
}

fn decode(envelope: &[u8], purpose: Purpose) -> Result<Decoded<'_>, Rejection> {
    let malformed =
        |e: &dyn std::fmt::Display| Rejection::Malformed(format!("signature envelope is not COSE_Sign: {e}"));
    // The shape is checked before any decoder sees the bytes: the envelope
    // arrives before anything is trusted, and a small document must not be
    // able to make the decoder recurse or allocate far beyond its size.
    let shape = Shape { depth: MAX_ENVELOPE_DEPTH, items: MAX_ENVELOPE_ITEMS };
    canonical::check_shape(envelope, shape).map_err(|e| malformed(&e))?;
    // The payload is cut out before decoding, so the decoder, and its copies,
    // see only the small rest: the shell, with `null` in the payload's place.
    let (at, payload) = split_payload(envelope).map_err(|e| malformed(&e))?;
    let end = at + payload.map_or(1, |p| p.len() + head_len(p.len()));
    if envelope.len() - (end - at) > MAX_SHELL_BYTES {
        return Err(malformed(&format!("more than {MAX_SHELL_BYTES} bytes of headers and signatures")));
    }
    let mut shell = Vec::with_capacity(envelope.len() - (end - at) + 1);
    shell.extend_from_slice(&envelope[..at]);
    shell.push(CBOR_NULL);
    shell.extend_from_slice(&envelope[end..]);
    let value: Value = ciborium::de::from_reader(shell.as_slice()).map_err(|e| malformed(&e))?;
    let Value::Tag(CoseSign::TAG, body) = value else {
        return Err(malformed(&"not a tagged COSE_Sign"));
    };
    // The protected headers are CBOR inside byte strings: the same rule for them.
    let header_shape = Shape { depth: MAX_ENVELOPE_DEPTH, items: MAX_HEADER_ITEMS };
    if let Value::Array(parts) = body.as_ref() {
        let signatures = match parts.get(3) {
            Some(Value::Array(signatures)) => signatures.as_slice(),
            _ => &[],
        };
        let headers = signatures.iter().filter_map(|s| s.as_array().and_then(|s| s.first())).chain(parts.first());
        for header in headers {
            if let Value::Bytes(bytes) = header
                && !bytes.is_empty()
            {
                canonical::check_shape(bytes, header_shape)
                    .map_err(|e| malformed(&format!("protected header: {e}")))?;
            }
        }
    }
    let sign = CoseSign::from_cbor_value(*body).map_err(|e| malformed(&e))?;
    if sign.protected.header.content_type != Some(coset::ContentType::Text(purpose.content_type.to_owned())) {
        return Err(Rejection::Malformed(format!("the envelope's content type is not {}", purpose.content_type)));
    }
    // Re-encoding must give back the same bytes: no second representation
    // of the same envelope, so a bit flip anywhere is seen (the payload's
    // head is checked for its shortest form by `split_payload`).
    if sign.clone().to_tagged_vec().ok() != Some(shell) {
        return Err(Rejection::Malformed("signature envelope is not in its canonical form".into()));
    }
    Ok(Decoded { sign, payload })
}

/// Where the payload item of the tagged `COSE_Sign` in `envelope` starts,
/// and its bytes: a byte string with its shortest head, or `null`. The
/// envelope's shape has been checked.
fn split_payload(envelope: &[u8]) -> Result<(usize, Option<&[u8]>), String> {
    if envelope.first().map(|b| b >> 5) != Some(6) {
        return Err("not a tagged COSE_Sign".into());
    }
    if envelope.get(canonical::content_start(envelope, 0)?).map(|b| b >> 5) != Some(4) {
        return Err("not a COSE_Sign array".into());
    }
    let at = payload_position(envelope)?;
    match envelope.get(at) {
        Some(&CBOR_NULL) => Ok((at, None)),
        Some(b) if b >> 5 == MAJOR_BYTES => {
            let (start, end) = (canonical::content_start(envelope, at)?, canonical::item_end(envelope, at)?);
            if start - at != head_len(end - start) {
                return Err("the payload's length is not in its shortest form".into());
            }
            Ok((at, Some(&envelope[start..end])))
        }
        _ => Err("the payload is not a byte string".into()),
    }
}

/// Bytes of the shortest head of a byte string of `len` bytes.
fn head_len(len: usize) -> usize {
    let mut head = Vec::with_capacity(9);
    canonical::write_head(&mut head, MAJOR_BYTES, len as u64);
    head.len()
}

fn signer_id(signature: &CoseSignature) -> Result<KeyId, Rejection> {
    let kid = &signature.protected.header.key_id;
    <[u8; KeyId::LEN]>::try_from(kid.as_slice())
        .map(KeyId)
        .map_err(|_| Rejection::Malformed("a signature has no 16-byte key id in its protected header".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SecretKey;
    use ed25519_dalek::ed25519::signature::Signer as _;

    fn keyring_of(keys: &[&SecretKey], threshold: usize, revoked: &[&SecretKey]) -> Keyring {
        let named =
            keys.iter().map(|k| crate::sign::TrustedKey { name: k.public().id().short(), key: k.public().clone() });
        let revoked = revoked.iter().map(|k| k.public().id()).collect();
        Keyring::new(named.collect(), threshold, revoked, "test").unwrap()
    }

    fn policy(keys: &[&SecretKey], threshold: usize) -> Keyring {
        keyring_of(keys, threshold, &[])
    }

    /// How `seal` encoded before it wrote the payload in itself: all through coset.
    fn sealed_by_coset(payload: &[u8], keys: &[SecretKey], purpose: Purpose) -> Vec<u8> {
        let protected = HeaderBuilder::new().content_type(purpose.content_type.to_owned()).build();
        let mut builder = CoseSignBuilder::new().protected(protected).payload(payload.to_vec());
        for key in keys {
            builder = builder.add_created_signature(signature_template(key.public().id()), purpose.context, |tbs| {
                key.signing_key().sign(tbs).to_bytes().to_vec()
            });
        }
        builder.build().to_tagged_vec().unwrap()
    }

    #[test]
    fn sealing_gives_the_bytes_coset_gives() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
        // Every length class of a byte string's head.
        for len in [0usize, 1, 23, 24, 255, 256, 65_535, 65_536, 300_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for signers in [&keys[..1], &keys[..]] {
                for purpose in [MANIFEST, VOLUME_SEAL, POLICY_STATEMENT] {
                    let sealed = seal(&payload, signers, purpose).unwrap();
                    assert_eq!(sealed, sealed_by_coset(&payload, signers, purpose), "{len} bytes");
                    assert_eq!(sealed_len(len as u64, signers, purpose).unwrap(), sealed.len() as u64);
                    let keyring = policy(&signers.iter().collect::<Vec<_>>(), signers.len());
                    assert_eq!(verify(&sealed, &keyring, purpose).unwrap().payload, payload);
                }
            }
        }
    }

    #[test]
    fn threshold_counts_distinct_trusted_keys() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        let stranger = SecretKey::generate().unwrap();
        let sealed = seal(b"manifest", std::slice::from_ref(&a), MANIFEST).unwrap();
        // The same key twice does not make two.
        let twice = add_signature(&sealed, &a, MANIFEST).unwrap();
        assert!(matches!(
            verify(&twice, &policy(&[&a, &b], 2), MANIFEST),
            Err(Rejection::BelowThreshold { valid: 1, required: 2, .. })
        ));
        let both = add_signature(&sealed, &b, MANIFEST).unwrap();
        let ok = verify(&both, &policy(&[&a, &b], 2), MANIFEST).unwrap();
        assert_eq!(ok.payload, b"manifest");
        assert_eq!(ok.trusted_signers.len(), 2);
        // An untrusted signer is ignored, not counted.
        let with_stranger = add_signature(&sealed, &stranger, MANIFEST).unwrap();
        assert!(verify(&with_stranger, &policy(&[&stranger], 1), MANIFEST).is_ok());
        assert!(matches!(
            verify(&sealed, &policy(&[&stranger], 1), MANIFEST),
            Err(Rejection::BelowThreshold { valid: 0, .. })
        ));
    }

    #[test]
    fn changed_payload_fails() {
        let a = SecretKey::generate().unwrap();
        let sealed = seal(b"manifest", std::slice::from_ref(&a), MANIFEST).unwrap();
        let pos = sealed.windows(8).rposition(|w| w == b"manifest").unwrap();
        let mut bad = sealed.clone();
        bad[pos] ^= 1;
        assert!(matches!(verify(&bad, &policy(&[&a], 1), MANIFEST), Err(Rejection::BadSignature(_))));
    }

    #[test]
    fn hostile_shapes_are_refused_before_decoding() {
        let a = SecretKey::generate().unwrap();
        let sealed = seal(b"manifest", std::slice::from_ref(&a), MANIFEST).unwrap();
        let policy = policy(&[&a], 1);
        let malformed = |bytes: &[u8]| match verify(bytes, &policy, MANIFEST) {
            Err(Rejection::Malformed(m)) => m,
            other => panic!("{other:?}"),
        };
        // Deep nesting where the unprotected header goes.
        let mut deep = sealed[..2].to_vec();
        deep.extend(std::iter::repeat_n(0x81u8, 100_000));
        deep.push(0);
        assert!(malformed(&deep).contains("deeper"));
        // An array declaring more items than bytes follow, and one with many real items.
        let mut wide = sealed[..2].to_vec();
        wide.extend([0x9a, 0x7f, 0xff, 0xff, 0xff]);
        assert!(malformed(&wide).contains("declares"));
        let mut many = sealed[..2].to_vec();
        many.extend([0x9a, 0x00, 0x10, 0x00, 0x00]);
        many.extend(std::iter::repeat_n(0x80u8, 1 << 20));
        assert!(malformed(&many).contains("more than"));
        // A protected header (CBOR inside a byte string) holding a million items.
        let mut header = vec![0xa1, 0x03, 0x9a, 0x00, 0x10, 0x00, 0x00];
        header.extend(std::iter::repeat_n(0x00u8, 1 << 20));
        let mut bomb = vec![0xd8, 0x62, 0x84, 0x5a];
        bomb.extend((header.len() as u32).to_be_bytes());
        bomb.extend(header);
        bomb.extend([0xa0, 0x41, b'm', 0x80]);
        assert!(malformed(&bomb).contains("protected header"));
    }

    #[test]
    fn the_payload_is_read_in_place_and_its_head_must_be_shortest() {
        let a = SecretKey::generate().unwrap();
        let payload = vec![5u8; 100_000];
        let sealed = seal(&payload, std::slice::from_ref(&a), MANIFEST).unwrap();
        let verified = verify(&sealed, &policy(&[&a], 1), MANIFEST).unwrap();
        // Not a copy: the payload is the envelope's own bytes.
        let inside = sealed.as_ptr_range();
        assert!(inside.contains(&verified.payload.as_ptr()) && verified.payload == payload.as_slice());
        assert!(inside.contains(&open_untrusted(&sealed, MANIFEST).unwrap().payload.as_ptr()));
        // `manifest` with a 2-byte length where the 1-byte head would do.
        let short = seal(b"manifest", std::slice::from_ref(&a), MANIFEST).unwrap();
        let at = payload_position(&short).unwrap();
        assert_eq!(short[at], 0x48);
        let mut long = short[..at].to_vec();
        long.extend([0x59, 0x00, 0x08]);
        long.extend_from_slice(&short[at + 1..]);
        let Err(Rejection::Malformed(m)) = verify(&long, &policy(&[&a], 1), MANIFEST) else { panic!("accepted") };
        assert!(m.contains("shortest"), "{m}");
    }

    #[test]
    fn signatures_are_checked_as_strictly_as_verify_strict() {
        let a = SecretKey::generate().unwrap();
        let sealed = seal(b"manifest", std::slice::from_ref(&a), MANIFEST).unwrap();
        let Decoded { sign, payload } = decode(&sealed, MANIFEST).unwrap();
        let payload = payload.unwrap();
        let key = a.public().verifying_key();
        assert!(signature_matches(&sign, &sign.signatures[0], MANIFEST, payload, key));
        assert!(!signature_matches(&sign, &sign.signatures[0], MANIFEST, b"manifesT", key));
        // The identity as key and as R, with S = 0, satisfies the plain
        // equation for any message; verify_strict refuses it, and so must we.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
        let mut forged = sign.signatures[0].clone();
        forged.signature = [identity, [0u8; 32]].concat();
        let sig = Signature::from_slice(&forged.signature).unwrap();
        assert!(weak.verify_stream(&sig).is_ok_and(|mut s| {
            s.update(b"anything");
            s.finalize_and_verify().is_ok()
        }));
        assert!(weak.verify_strict(b"anything", &sig).is_err());
        assert!(!signature_matches(&sign, &forged, MANIFEST, payload, &weak));
    }

    #[test]
    fn signature_is_bound_to_our_context() {
        let a = SecretKey::generate().unwrap();
        let sealed = seal(b"manifest", std::slice::from_ref(&a), MANIFEST).unwrap();
        let sign = CoseSign::from_tagged_slice(&sealed).unwrap();
        let result = sign.verify_signature(0, b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| ())?;
            a.public().verifying_key().verify_strict(tbs, &sig).map_err(|_| ())
        });
        assert!(result.is_err(), "a signature must not verify without the airlock context");
        // Nor as a volume seal.
        assert!(verify(&sealed, &policy(&[&a], 1), VOLUME_SEAL).is_err());
    }

    #[test]
    fn a_revoked_key_never_counts_even_while_listed() {
        let keys: Vec<SecretKey> = (0..3).map(|_| SecretKey::generate().unwrap()).collect();
        let policy = keyring_of(&keys.iter().collect::<Vec<_>>(), 2, &[&keys[2]]);
        let by_0_and_2 = seal(b"statement", &[keys[0].clone(), keys[2].clone()], POLICY_STATEMENT).unwrap();
        let refused = verify(&by_0_and_2, &policy, POLICY_STATEMENT);
        let message = refused.as_ref().map_or_else(ToString::to_string, |_| String::new());
        let Err(Rejection::BelowThreshold { valid: 1, signers, .. }) = refused else {
            panic!("a revoked key's signature was counted")
        };
        assert_eq!(signers.revoked, [keys[2].public().id().short()]);
        // Re-pinning a revoked key is not the advice.
        assert!(
            message.contains("a revoked key's signature never counts") && !message.contains("pin the"),
            "{message}"
        );
        let all = add_signature(&by_0_and_2, &keys[1], POLICY_STATEMENT).unwrap();
        let ok = verify(&all, &policy, POLICY_STATEMENT).unwrap();
        assert_eq!(ok.trusted_signers.len(), 2);
        assert_eq!(ok.revoked_signers, [keys[2].public().id()]);
        // A policy statement is not a manifest.
        assert!(matches!(verify(&all, &policy, MANIFEST), Err(Rejection::Malformed(_))));
    }
}
