//! npm registry signatures.
//!
//! The registry signs `NAME@VERSION:INTEGRITY` (the tarball URL is not
//! signed, so a mirror may rewrite it) with ECDSA P-256 / SHA-256; the
//! signature is DER, base64, and names its key by the key id the registry's
//! keys endpoint gives (`SHA256:` + the key's OpenSSH-style fingerprint). A
//! key that has expired still vouches for what it signed before its expiry,
//! as `npm audit signatures` judges: the version's publication time decides.

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::provenance::rfc3339_secs;

/// The registry's public keys, as its keys endpoint serves them.
#[derive(Debug, Clone)]
pub struct RegistryKeys {
    keys: Vec<RegistryKey>,
}

#[derive(Debug, Clone)]
struct RegistryKey {
    keyid: String,
    key: VerifyingKey,
    /// The `SubjectPublicKeyInfo` as pinned, for Sigstore's managed-key bundles.
    der: Vec<u8>,
    /// Seconds since the epoch after which the key signs nothing new.
    expires: Option<u64>,
}

#[derive(Deserialize)]
struct KeysDocument {
    keys: Vec<KeyRecord>,
}

#[derive(Deserialize)]
struct KeyRecord {
    keyid: String,
    #[serde(default)]
    keytype: Option<String>,
    key: String,
    expires: Option<String>,
}

#[derive(Deserialize)]
struct SignatureRecord {
    keyid: String,
    sig: String,
}

impl RegistryKeys {
    /// Parses a keys document (`{"keys": [{keyid, keytype, scheme, key, expires}]}`).
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::Usage(format!("{origin}: {why}; pin the registry's keys document (its /-/npm/v1/keys answer)"))
        };
        let doc: KeysDocument =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not an npm keys document ({e})")))?;
        let mut keys = Vec::new();
        for record in doc.keys {
            if record.keytype.as_deref().is_some_and(|t| t != "ecdsa-sha2-nistp256") {
                return Err(bad(format!("key {} has unsupported type {:?}", record.keyid, record.keytype)));
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(&record.key)
                .map_err(|_| bad(format!("key {} is not base64", record.keyid)))?;
            let key = VerifyingKey::from_public_key_der(&der)
                .map_err(|_| bad(format!("key {} is not a P-256 public key", record.keyid)))?;
            let expires = match record.expires.as_deref() {
                None => None,
                Some(text) => Some(
                    rfc3339_secs(text)
                        .ok_or_else(|| bad(format!("key {} has an unreadable expiry {text:?}", record.keyid)))?,
                ),
            };
            keys.push(RegistryKey { keyid: record.keyid, key, der, expires });
        }
        if keys.is_empty() {
            return Err(bad("no keys".into()));
        }
        Ok(RegistryKeys { keys })
    }

    /// Reads a keys document from a file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::input(path, "npm registry keys", &e))?;
        RegistryKeys::from_json(&bytes, &path.display().to_string())
    }

    /// The pinned key `keyid` (DER `SubjectPublicKeyInfo`) and its expiry, for
    /// the registry's publish attestations, which Sigstore bundles carry.
    #[must_use]
    pub fn key_der(&self, keyid: &str) -> Option<(&[u8], Option<u64>)> {
        self.keys.iter().find(|k| k.keyid == keyid).map(|k| (k.der.as_slice(), k.expires))
    }

    /// Checks `signatures` (the registry's `dist.signatures` JSON) over
    /// `NAME@VERSION:INTEGRITY`. `published` is the version's publication
    /// time, which decides whether an expired key still counts. Returns the
    /// key id that verified; an error says why none did.
    pub fn verify(
        &self,
        name: &str,
        version: &str,
        integrity: &str,
        signatures: &[u8],
        published: Option<u64>,
    ) -> Result<String, SignatureError> {
        let records: Vec<SignatureRecord> = serde_json::from_slice(signatures)
            .map_err(|e| SignatureError::Invalid(format!("unreadable dist.signatures ({e})")))?;
        let message = format!("{name}@{version}:{integrity}");
        let mut reasons = Vec::new();
        let mut pinned_key_failed = false;
        for record in &records {
            let Some(key) = self.keys.iter().find(|k| k.keyid == record.keyid) else {
                reasons.push(format!("signed by {} which the policy does not pin", record.keyid));
                continue;
            };
            pinned_key_failed = true;
            if let Some(expires) = key.expires {
                match published {
                    Some(time) if time < expires => {}
                    Some(_) => {
                        reasons.push(format!("key {} had expired when this version was published", key.keyid));
                        continue;
                    }
                    None => {
                        reasons.push(format!("key {} has expired and the publication time is unknown", key.keyid));
                        continue;
                    }
                }
            }
            let valid = base64::engine::general_purpose::STANDARD
                .decode(&record.sig)
                .ok()
                .and_then(|der| Signature::from_der(&der).ok())
                .is_some_and(|sig| key.key.verify(message.as_bytes(), &sig).is_ok());
            if valid {
                return Ok(key.keyid.clone());
            }
            reasons.push(format!("the signature by {} does not match {message}", key.keyid));
        }
        if reasons.is_empty() {
            reasons.push("no signatures".into());
        }
        let why = reasons.join("; ");
        Err(if pinned_key_failed { SignatureError::Invalid(why) } else { SignatureError::Unpinned(why) })
    }
}

/// Why no registry signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// Only keys the policy does not pin signed: the signature cannot be judged here.
    Unpinned(String),
    /// A pinned key's signature fails (or its key had expired): the metadata was altered or is suspect.
    Invalid(String),
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Unpinned(why) | SignatureError::Invalid(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn upstream(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry/upstream").join(name))
            .unwrap()
    }

    fn real() -> (RegistryKeys, Vec<Value>) {
        let keys = RegistryKeys::from_json(&upstream("registry-keys.json"), "registry-keys.json").unwrap();
        let doc: Value = serde_json::from_slice(&upstream("registry-signatures.json")).unwrap();
        (keys, doc["signatures"].as_array().unwrap().clone())
    }

    fn sigs(record: &Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!([{"keyid": record["keyid"], "sig": record["sig"]}])).unwrap()
    }

    const BEFORE_EXPIRY: u64 = 1_700_000_000; // 2023-11-14
    const AFTER_EXPIRY: u64 = 1_800_000_000; // 2027-01-15

    #[test]
    fn real_registry_signatures_verify() {
        let (keys, records) = real();
        for r in &records {
            let (name, version, integrity) =
                (r["name"].as_str().unwrap(), r["version"].as_str().unwrap(), r["integrity"].as_str().unwrap());
            let keyid = keys
                .verify(name, version, integrity, &sigs(r), Some(BEFORE_EXPIRY))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(keyid, r["keyid"].as_str().unwrap());
        }
    }

    #[test]
    fn a_signature_over_another_version_or_artifact_fails() {
        let (keys, records) = real();
        let r = &records[1];
        let (name, integrity) = (r["name"].as_str().unwrap(), r["integrity"].as_str().unwrap());
        assert!(keys.verify(name, "1.0.1", integrity, &sigs(r), Some(BEFORE_EXPIRY)).is_err());
        let other = records[2]["integrity"].as_str().unwrap();
        assert!(keys.verify(name, r["version"].as_str().unwrap(), other, &sigs(r), Some(BEFORE_EXPIRY)).is_err());
    }

    #[test]
    fn an_expired_key_counts_only_for_what_it_signed_before_expiry() {
        let (keys, records) = real();
        let expired =
            records.iter().find(|r| r["keyid"] == "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA").unwrap();
        let args = (
            expired["name"].as_str().unwrap(),
            expired["version"].as_str().unwrap(),
            expired["integrity"].as_str().unwrap(),
        );
        assert!(keys.verify(args.0, args.1, args.2, &sigs(expired), Some(BEFORE_EXPIRY)).is_ok());
        let err = keys.verify(args.0, args.1, args.2, &sigs(expired), Some(AFTER_EXPIRY)).unwrap_err();
        assert!(matches!(&err, SignatureError::Invalid(why) if why.contains("expired")), "{err}");
        assert!(keys.verify(args.0, args.1, args.2, &sigs(expired), None).is_err());
    }

    #[test]
    fn an_unpinned_key_does_not_count() {
        let (_, records) = real();
        let doc: Value = serde_json::from_slice(&upstream("registry-keys.json")).unwrap();
        let only_second = serde_json::json!({"keys": [doc["keys"][1]]});
        let keys = RegistryKeys::from_json(&serde_json::to_vec(&only_second).unwrap(), "k").unwrap();
        let r = records.iter().find(|r| r["keyid"] != doc["keys"][1]["keyid"]).unwrap();
        let err = keys
            .verify(
                r["name"].as_str().unwrap(),
                r["version"].as_str().unwrap(),
                r["integrity"].as_str().unwrap(),
                &sigs(r),
                Some(BEFORE_EXPIRY),
            )
            .unwrap_err();
        assert!(matches!(&err, SignatureError::Unpinned(why) if why.contains("does not pin")), "{err}");
    }
}
