//! Signer tables of the import policy that pin an ECDSA P-256, P-384 or
//! P-521 public key file (PEM) for the entries whose names match patterns: container image
//! signers (cosign keys) and model signers (model-signing's `key` method)
//! are both written this way. Each ecosystem keeps its own rule struct (its
//! pattern field's name, `deny_unknown_fields`) and states its table here.

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use serde::de::DeserializeOwned;
use sha2::Digest as _;
use webpki::RawPublicKeyEntity;
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::error::{Error, Result};
use crate::policy::References;
use crate::policy::names::matches;

/// How one ecosystem's signer table reads.
pub struct SignerTable {
    /// The table as written in the policy, e.g. `oci.signers`.
    pub table: &'static str,
    /// What its patterns name, e.g. `images`.
    pub governs: &'static str,
    /// What its key files are, for errors, e.g. `cosign public key`.
    pub key_what: &'static str,
    /// The error for a PEM key that is not ECDSA P-256, P-384 or P-521.
    pub not_ecdsa: &'static str,
}

/// A pinned ECDSA public key: P-256 (with SHA-256), P-384 (with SHA-384)
/// or P-521 (with SHA-512), as model-signing signs; on every curve also
/// SHA-256, as cosign signs.
#[derive(Debug)]
pub enum SignerKey {
    P256(VerifyingKey),
    /// Its `SubjectPublicKeyInfo` (DER), verified by ring through webpki.
    P384(Vec<u8>),
    /// Its curve point (SEC1, checked when the policy is read), verified by
    /// the `p521` crate (ring has no P-521; already in the tree through rPGP).
    P521(Vec<u8>),
}

impl SignerKey {
    /// Whether `signature` over `message` verifies: DER, or for P-256 also
    /// the fixed-size r‖s form some signers write.
    #[must_use]
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            SignerKey::P256(key) => Signature::from_der(signature)
                .or_else(|_| Signature::from_slice(signature))
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
            SignerKey::P384(spki) => {
                let spki = SubjectPublicKeyInfoDer::from(spki.as_slice());
                // model-signing hashes with the curve's SHA-384; cosign with SHA-256 on every curve.
                let hashes = [webpki::ring::ECDSA_P384_SHA384, webpki::ring::ECDSA_P384_SHA256];
                RawPublicKeyEntity::try_from(&spki)
                    .is_ok_and(|key| hashes.iter().any(|alg| key.verify_signature(*alg, message, signature).is_ok()))
            }
            SignerKey::P521(point) => {
                use p521::ecdsa::signature::Verifier as _;
                use p521::ecdsa::signature::hazmat::PrehashVerifier as _;
                let Ok(key) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else { return false };
                let Ok(signature) = p521::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p521::ecdsa::Signature::from_slice(signature))
                else {
                    return false;
                };
                // model-signing hashes with the curve's SHA-512; cosign with SHA-256 on every curve.
                key.verify(message, &signature).is_ok()
                    || key.verify_prehash(&sha2::Sha256::digest(message), &signature).is_ok()
            }
        }
    }
}

/// The pinned keys, each with the patterns it governs.
#[derive(Debug)]
pub struct KeySigners(Vec<KeySigner>);

#[derive(Debug)]
pub struct KeySigner {
    /// Name patterns (`*` wildcard).
    pub patterns: Vec<String>,
    pub key: SignerKey,
    /// The key file as the policy names it.
    pub label: String,
}

impl KeySigners {
    /// The signers whose patterns match `name`.
    pub fn governing<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a KeySigner> {
        self.0.iter().filter(move |s| SignerTable::governs(&s.patterns, name))
    }
}

impl SignerTable {
    /// The table's rules from `json` (its array of tables, as the policy
    /// hands it over), each turned by `parts` into its patterns and key
    /// file, every key file read beside the policy and parsed.
    pub fn resolve<R: DeserializeOwned>(
        &self,
        json: &str,
        references: References<'_>,
        origin: &str,
        parts: impl Fn(R) -> (Vec<String>, String),
    ) -> Result<KeySigners> {
        let written: Vec<R> = self.rules(json, origin)?;
        self.keys(written.into_iter().map(parts), references, origin)
    }

    /// The table's rules as written, for a table whose rules are not all keys.
    pub fn rules<R: DeserializeOwned>(&self, json: &str, origin: &str) -> Result<Vec<R>> {
        let table = self.table;
        serde_json::from_str(json).map_err(|e| Error::Usage(format!("{origin}: [[{table}]]: {e}")))
    }

    /// Fails unless a rule names at least one pattern.
    pub fn check_patterns(&self, patterns: &[String], origin: &str) -> Result<()> {
        if patterns.is_empty() {
            return Err(Error::Usage(format!(
                "{origin}: [[{}]] names no {}; list the repository patterns it governs",
                self.table, self.governs
            )));
        }
        Ok(())
    }

    /// The key rules (patterns, key file), every key file read beside the policy and parsed.
    pub fn keys(
        &self,
        rules: impl IntoIterator<Item = (Vec<String>, String)>,
        references: References<'_>,
        origin: &str,
    ) -> Result<KeySigners> {
        let table = self.table;
        let mut signers = Vec::new();
        for (patterns, file) in rules {
            self.check_patterns(&patterns, origin)?;
            let References::Beside(base) = references else {
                return Err(Error::Usage(format!(
                    "{origin}: [[{table}]] key names the file {file:?}; a policy statement cannot name files"
                )));
            };
            let path = base.join(&file);
            let pem = std::fs::read_to_string(&path).map_err(|e| Error::input(&path, self.key_what, &e))?;
            let key = parse_pem(&pem, self.not_ecdsa).map_err(|m| Error::Usage(format!("{}: {m}", path.display())))?;
            signers.push(KeySigner { patterns, key, label: file });
        }
        Ok(KeySigners(signers))
    }

    /// The patterns a rule governs match `name`.
    #[must_use]
    pub fn governs(patterns: &[String], name: &str) -> bool {
        patterns.iter().any(|p| matches(p, name))
    }
}

/// A PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`) of an ECDSA P-256, P-384 or
/// P-521 key, as `cosign generate-key-pair` and `openssl ec -pubout` write it;
/// `not_ecdsa` is the error for another kind of key.
pub fn parse_pem(pem: &str, not_ecdsa: &str) -> std::result::Result<SignerKey, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PUBLIC KEY-----")
        .collect();
    if body.is_empty() {
        return Err("not a PEM public key (-----BEGIN PUBLIC KEY-----)".into());
    }
    let der =
        base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| "its PEM body is not base64".to_owned())?;
    if let Ok(key) = VerifyingKey::from_public_key_der(&der) {
        return Ok(SignerKey::P256(key));
    }
    let spki = SubjectPublicKeyInfoRef::from_der(&der).map_err(|_| not_ecdsa.to_owned())?;
    let curve = spki.algorithm.parameters.and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if spki.algorithm.oid == EC_PUBLIC_KEY && curve == Some(SECP384R1) {
        return Ok(SignerKey::P384(der));
    }
    if spki.algorithm.oid == EC_PUBLIC_KEY && curve == Some(SECP521R1) {
        let point = spki.subject_public_key.as_bytes().ok_or_else(|| not_ecdsa.to_owned())?;
        p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| not_ecdsa.to_owned())?;
        return Ok(SignerKey::P521(point.to_vec()));
    }
    Err(not_ecdsa.to_owned())
}

/// id-ecPublicKey and the P-384 and P-521 curves (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
