//! A snapshot's evidence: the hub's listing (`hf-files`) and the `OpenSSF`
//! model-signing signature (`model-signature`, the repository's
//! `model.sig`), checked against the keys `[[huggingface.signers]]` pins.
//!
//! The signature is a Sigstore bundle (JSON) holding a DSSE envelope over an
//! in-toto statement (`https://in-toto.io/Statement/v1`, predicate type
//! `https://model_signing/signature/v1.0`, serialization method `files`):
//! its `resources` list every file of the model with its SHA-256, and its
//! one subject's digest is the SHA-256 of those digests in order. With the
//! `key` method the envelope's signature is ECDSA (DER) over the DSSE
//! pre-authentication encoding. A signature counts only when its resources
//! are exactly the carried files with their digests, less what the format
//! itself leaves out: the signature file and the repository's top-level
//! `.git`, `.github`, `.gitattributes` and `.gitignore`.

use std::collections::BTreeMap;

use base64::Engine as _;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier as _;
use serde_json::Value;
use sha2::Digest as _;

use super::SIGNATURE_FILE;
use super::listing::Listing;
use super::policy::Signers;
use crate::ecosystem::evidence::absent;
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, MIB};

/// The snapshot's evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 2] = [
    // The listing of the carried files: about 200 bytes a file.
    EvidenceKind { name: "hf-files", max_bytes: 16 * MIB, needed: true },
    // model.sig: a statement of about 150 bytes a file, and its envelope.
    EvidenceKind { name: "model-signature", max_bytes: 16 * MIB, needed: false },
];

const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// Paths model-signing leaves out of what it signs (besides the signature itself).
const GIT_PATHS: [&str; 4] = [".git", ".github", ".gitattributes", ".gitignore"];

/// Whether model-signing leaves `path` out of a model's signature.
#[must_use]
pub fn format_ignores(path: &str) -> bool {
    path == SIGNATURE_FILE || GIT_PATHS.iter().any(|g| path == *g || path.starts_with(&format!("{g}/")))
}

/// What the report says of a snapshot's signature, or why it is refused.
pub fn verify(entry: &Entry, listing: &Listing, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let refuse = |m: String| Rejection::Policy(format!("{id}: {m}"));
    let governing: Vec<_> =
        trust.rules.and_then(|r| r.roots::<Signers>()).map(|s| s.governing(&entry.name).collect()).unwrap_or_default();
    let Some(sig) = entry.evidence.iter().find(|e| e.kind == "model-signature") else {
        if !governing.is_empty() {
            return Err(refuse(format!(
                "[[huggingface.signers]] pins a key for this repository, but the bundle carries no model signature ({})",
                absent(entry, "model-signature", "none")
            )));
        }
        return Ok(Provenance::text(absent(entry, "model-signature", "no model signature")));
    };
    let signed = Signed::parse(&sig.data).map_err(refuse)?;
    if governing.is_empty() {
        if trust.requires("model-signature") {
            return Err(refuse(
                "the policy requires model-signature but no [[huggingface.signers]] names this repository; add one with its key"
                    .into(),
            ));
        }
        return Ok(Provenance::text(
            "model signature carried, not checked: no [[huggingface.signers]] names this repository",
        ));
    }
    let Some(verified_by) = governing.iter().find(|s| signed.verifies_with(&s.key)) else {
        let keys = governing.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(", ");
        return Err(refuse(format!(
            "its model signature does not verify with a key [[huggingface.signers]] pins for it ({keys})"
        )));
    };
    let resources = signed.resources().map_err(refuse)?;
    covers(&resources, listing).map_err(refuse)?;
    Ok(Provenance::text(format!("model signature by {} verified over {} files", verified_by.label, resources.len())))
}

/// The statement's resources must be exactly the carried files less what the format ignores.
fn covers(resources: &BTreeMap<String, String>, listing: &Listing) -> Result<(), String> {
    let carried: BTreeMap<&str, &str> = listing
        .files
        .iter()
        .filter(|f| !format_ignores(&f.path))
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    for (path, sha) in &carried {
        match resources.get(*path) {
            None => return Err(format!("its model signature does not list {path}, which the bundle carries")),
            Some(signed) if signed != sha => {
                return Err(format!("{path} is not the file its model signature lists (sha256 differs)"));
            }
            Some(_) => {}
        }
    }
    if let Some(path) = resources.keys().find(|p| !carried.contains_key(p.as_str())) {
        return Err(format!("its model signature lists {path}, which the bundle does not carry"));
    }
    Ok(())
}

/// The parts of a model-signing bundle that are checked.
struct Signed {
    payload: Vec<u8>,
    signatures: Vec<Vec<u8>>,
}

impl Signed {
    fn parse(data: &[u8]) -> Result<Signed, String> {
        let bundle: Value =
            serde_json::from_slice(data).map_err(|_| "its model signature is not a JSON Sigstore bundle".to_owned())?;
        let envelope = bundle.get("dsseEnvelope").ok_or("its model signature holds no DSSE envelope")?;
        if envelope.get("payloadType").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
            return Err("its model signature's envelope is not an in-toto statement".into());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = envelope
            .get("payload")
            .and_then(Value::as_str)
            .and_then(|p| b64.decode(p).ok())
            .ok_or("its model signature's payload is not base64")?;
        let signatures: Vec<Vec<u8>> = envelope
            .get("signatures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.get("sig")?.as_str().and_then(|s| b64.decode(s).ok())).collect())
            .unwrap_or_default();
        if signatures.is_empty() {
            return Err("its model signature's envelope has no signature".into());
        }
        Ok(Signed { payload, signatures })
    }

    /// The DSSE pre-authentication encoding the signature is over.
    fn pae(&self) -> Vec<u8> {
        let mut out = format!("DSSEv1 {} {PAYLOAD_TYPE} {} ", PAYLOAD_TYPE.len(), self.payload.len()).into_bytes();
        out.extend_from_slice(&self.payload);
        out
    }

    fn verifies_with(&self, key: &p256::ecdsa::VerifyingKey) -> bool {
        let pae = self.pae();
        self.signatures.iter().any(|der| {
            Signature::from_der(der).or_else(|_| Signature::from_slice(der)).is_ok_and(|s| key.verify(&pae, &s).is_ok())
        })
    }

    /// The statement's resources, path to SHA-256 hex, after its own consistency checks.
    fn resources(&self) -> Result<BTreeMap<String, String>, String> {
        let statement: Value = serde_json::from_slice(&self.payload)
            .map_err(|_| "its model signature's statement is not JSON".to_owned())?;
        if statement["_type"].as_str() != Some(STATEMENT_TYPE)
            || statement["predicateType"].as_str() != Some(PREDICATE_TYPE)
        {
            return Err(format!("its model signature is not a {PREDICATE_TYPE} in-toto statement"));
        }
        let predicate = &statement["predicate"];
        if predicate["serialization"]["method"].as_str() != Some("files") {
            return Err("its model signature hashes the model by shards; airlock checks the files method".into());
        }
        let list = predicate["resources"].as_array().ok_or("its model signature lists no resources")?;
        let mut root = sha2::Sha256::new();
        let mut resources = BTreeMap::new();
        for r in list {
            let (Some(name), Some("sha256"), Some(digest)) =
                (r["name"].as_str(), r["algorithm"].as_str(), r["digest"].as_str())
            else {
                return Err("its model signature lists a resource without a sha256 digest".into());
            };
            let bytes =
                hex::decode(digest).map_err(|_| format!("its model signature's digest of {name} is not hex"))?;
            root.update(&bytes);
            if resources.insert(name.to_owned(), digest.to_lowercase()).is_some() {
                return Err(format!("its model signature lists {name} twice"));
            }
        }
        let subjects = statement["subject"].as_array().map(Vec::as_slice).unwrap_or_default();
        let [subject] = subjects else {
            return Err("its model signature's statement does not have one subject".into());
        };
        if subject["digest"]["sha256"].as_str() != Some(hex::encode(root.finalize()).as_str()) {
            return Err(
                "its model signature's statement is inconsistent (its subject is not its resources' digest)".into()
            );
        }
        Ok(resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_format_ignores() {
        for ignored in ["model.sig", ".gitattributes", ".git/config", ".github/workflows/x.yml", ".gitignore"] {
            assert!(format_ignores(ignored), "{ignored}");
        }
        for kept in ["config.json", "sub/model.sig", "sub/.gitattributes", ".gitattributes2", "a.git"] {
            assert!(!format_ignores(kept), "{kept}");
        }
    }
}
