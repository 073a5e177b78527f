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
use serde::Deserialize;
use sha2::Digest as _;
use sigstore_verify::types::{ArtifactDigest, Bundle as SigstoreBundle, HashAlgorithm};

use super::SIGNATURE_FILE;
use super::listing::Listing;
use super::policy::{IdentitySigner, ModelSigners};
use crate::ecosystem::evidence::absent;
use crate::ecosystem::signer_keys::SignerKey;
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, MIB};
use crate::provenance::certificate::{Authorities, verify_signed};
use crate::provenance::sigstore::{Signer, SigstoreRoot, verify_keyless_over};

/// The snapshot's evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 2] = [
    // The listing of the carried files: about 200 bytes a file.
    EvidenceKind { name: "hf-files", max_bytes: 16 * MIB, needed: true },
    // model.sig: a statement of about 150 bytes a file (base64: 200), and its envelope.
    EvidenceKind { name: "model-signature", max_bytes: 8 * MIB, needed: false },
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
    let signers = trust.rules.and_then(|r| r.roots::<ModelSigners>()).filter(|s| s.governs(&entry.name));
    let Some(sig) = entry.evidence.iter().find(|e| e.kind == "model-signature") else {
        if signers.is_some() {
            return Err(refuse(format!(
                "[[huggingface.signers]] names a signer for this repository, but the bundle carries no model signature ({})",
                absent(entry, "model-signature", "none")
            )));
        }
        return Ok(Provenance::absent(absent(entry, "model-signature", "no model signature")));
    };
    let signed = Signed::parse(&sig.data).map_err(refuse)?;
    let Some(signers) = signers else {
        if trust.requires("model-signature") {
            return Err(refuse(
                "the policy requires model-signature but no [[huggingface.signers]] names this repository; add one with its key or identity"
                    .into(),
            ));
        }
        return Ok(Provenance::not_checked(
            "model signature carried, not checked: no [[huggingface.signers]] names this repository",
        ));
    };
    // Authenticated first, then read (a key's signature is checked before
    // the statement is parsed; Sigstore's verifier reads the subject itself).
    let by = signed_by(&signed, &sig.data, signers, &entry.name, trust).map_err(refuse)?;
    let (resources, _, method) = signed.resources().map_err(refuse)?;
    let over = match method {
        Method::Files => {
            covers(&resources, &listed_files(listing)).map_err(refuse)?;
            format!("{} files", resources.len())
        }
        Method::Shards(size) => {
            covers(&resources, &expected_shards(listing, size).map_err(refuse)?).map_err(refuse)?;
            format!("{} shards of {size} bytes", resources.len())
        }
    };
    Ok(Provenance::verified(format!("model signature by {by} verified over {over}"), Vec::new()))
}

/// The shard size of a model signature that hashes the model in shards:
/// what the exporter must compute for the import to check (read, not
/// authenticated; the import authenticates it before it counts).
#[must_use]
pub fn shard_size(signature: &[u8]) -> Option<u64> {
    match Signed::parse(signature).ok()?.resources().ok()? {
        (_, _, Method::Shards(size)) => Some(size),
        _ => None,
    }
}

/// A statement's resources (name to SHA-256 hex), its subject's digest, and its method.
type Resources = (BTreeMap<String, String>, Vec<u8>, Method);

/// How the statement hashes the model.
enum Method {
    /// A resource per file.
    Files,
    /// A resource per shard of this many bytes (`path:start:end`); empty files are not listed.
    Shards(u64),
}

/// What a `shards` statement must list for the carried files: each shard's
/// name and SHA-256, from the listing (a file of one shard is its sha256;
/// a longer one's shards were checked against its bytes, see `check_together`).
fn expected_shards(listing: &Listing, size: u64) -> Result<BTreeMap<String, String>, String> {
    let mut expected = BTreeMap::new();
    for f in listing.files.iter().filter(|f| !format_ignores(&f.path) && f.size > 0) {
        if f.size <= size {
            expected.insert(format!("{}:0:{}", f.path, f.size), f.sha256.clone());
            continue;
        }
        let Some(shards) = f.shards.as_ref().filter(|s| s.size == size) else {
            return Err(format!(
                "{} is carried without the digests of its shards of {size} bytes, which its model signature lists; export it again with this version of airlock",
                f.path
            ));
        };
        for (k, digest) in shards.sha256.iter().enumerate() {
            let start = k as u64 * size;
            expected.insert(format!("{}:{start}:{}", f.path, (start + size).min(f.size)), digest.clone());
        }
    }
    Ok(expected)
}

/// Who of the signers governing `name` made the signature (as the report
/// names them), or why none did.
fn signed_by(
    signed: &Signed,
    raw: &[u8],
    signers: &ModelSigners,
    name: &str,
    trust: &Trust<'_>,
) -> Result<String, String> {
    if let Some(key) = signers.keys.governing(name).find(|s| signed.verifies_with(&s.key)) {
        return Ok(key.label.clone());
    }
    let mut why = Vec::new();
    for signer in signers.authorities(name) {
        match signed.by_certificate(&signer.authority) {
            Ok(subject) => return Ok(format!("certificate {subject} of {}", signer.authority.label)),
            Err(e) => why.push(e),
        }
    }
    let identities: Vec<&IdentitySigner> = signers.identities(name).collect();
    if identities.is_empty() {
        let keys: Vec<String> = signers.keys.governing(name).map(|s| s.label.clone()).collect();
        if why.is_empty() {
            return Err(format!(
                "its model signature does not verify with a key [[huggingface.signers]] pins for it ({})",
                keys.join(", ")
            ));
        }
        why.extend(keys.iter().map(|k| format!("not by key {k}")));
        return Err(format!(
            "its model signature is not by a signer [[huggingface.signers]] names for it: {}",
            why.join("; ")
        ));
    }
    let Some(root) = trust.sigstore else {
        return Err(
            "[[huggingface.signers]] names a keyless identity for it, but the policy pins no [sigstore] trusted-root to check it with; add one".into(),
        );
    };
    let (_, subject, _) = signed.resources()?;
    let (san, issuer) = keyless_signer(root, raw, &subject)?;
    if identities.iter().any(|s| s.identity == san && s.issuer == issuer) {
        return Ok(format!("{san} (issuer {issuer}, Sigstore)"));
    }
    let wanted = identities.iter().map(|s| format!("{} (issuer {})", s.identity, s.issuer)).collect::<Vec<_>>();
    Err(format!(
        "its model signature is by {san} (issuer {issuer}), not by a signer [[huggingface.signers]] names for it: {}",
        wanted.join(", ")
    ))
}

/// The certificate identity of a Sigstore keyless signature over `subject`
/// (the statement's SHA-256), checked against the pinned Sigstore root.
fn keyless_signer(root: &SigstoreRoot, raw: &[u8], subject: &[u8]) -> Result<(String, String), String> {
    let text = std::str::from_utf8(raw).map_err(|_| "its model signature is not UTF-8 JSON".to_owned())?;
    let bundle =
        SigstoreBundle::from_json(text).map_err(|e| format!("its model signature is not a Sigstore bundle ({e})"))?;
    let digest = ArtifactDigest::new(HashAlgorithm::Sha2256, subject.to_vec()).map_err(|e| e.to_string())?;
    match verify_keyless_over(root, &bundle, digest) {
        Ok(Signer::Identity { san, issuer }) => Ok((san, issuer)),
        Ok(Signer::RegistryKey(_)) => Err("its model signature is not by a certificate".into()),
        Err(why) => Err(format!("its model signature does not verify against the pinned Sigstore root ({why})")),
    }
}

/// What a `files` statement must list: the carried files, less what the format ignores.
fn listed_files(listing: &Listing) -> BTreeMap<String, String> {
    listing.files.iter().filter(|f| !format_ignores(&f.path)).map(|f| (f.path.clone(), f.sha256.clone())).collect()
}

/// The statement's resources must be exactly what the bundle carries (the
/// files, or their shards), with the same SHA-256 each.
fn covers(resources: &BTreeMap<String, String>, carried: &BTreeMap<String, String>) -> Result<(), String> {
    for (path, sha) in carried {
        match resources.get(path) {
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
    /// DER, the signing certificate first (empty unless the bundle has an X.509 chain).
    chain: Vec<Vec<u8>>,
}

/// What is read of the bundle: typed, so a hostile document is refused at
/// its first wrong value instead of being built into a tree of JSON values.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    dsse_envelope: Envelope,
    verification_material: Option<VerificationMaterial>,
}

/// The certificates of the `certificate` method (a chain, the signing
/// certificate first); the Sigstore method's are read by its verifier.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    x509_certificate_chain: Option<CertificateChain>,
}

#[derive(Deserialize)]
struct CertificateChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    subject: Vec<Subject>,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct Subject {
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Predicate {
    serialization: Serialization,
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct Serialization {
    method: String,
    /// The `shards` method's (a JSON number, written as a float).
    shard_size: Option<f64>,
}

#[derive(Deserialize)]
struct Resource {
    name: String,
    algorithm: String,
    digest: String,
}

impl Signed {
    fn parse(data: &[u8]) -> Result<Signed, String> {
        let bundle: Bundle = serde_json::from_slice(data)
            .map_err(|_| "its model signature is not a Sigstore bundle with a DSSE envelope".to_owned())?;
        let envelope = &bundle.dsse_envelope;
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err("its model signature's envelope is not an in-toto statement".into());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64.decode(&envelope.payload).map_err(|_| "its model signature's payload is not base64")?;
        let signatures: Vec<Vec<u8>> = envelope.signatures.iter().filter_map(|s| b64.decode(&s.sig).ok()).collect();
        if signatures.is_empty() {
            return Err("its model signature's envelope has no signature".into());
        }
        let chain = bundle
            .verification_material
            .and_then(|m| m.x509_certificate_chain)
            .map(|c| c.certificates.iter().map(|r| b64.decode(&r.raw_bytes)).collect::<Result<Vec<_>, _>>())
            .transpose()
            .map_err(|_| "its model signature's certificate chain is not base64")?
            .unwrap_or_default();
        Ok(Signed { payload, signatures, chain })
    }

    /// The DSSE pre-authentication encoding the signature is over.
    fn pae(&self) -> Vec<u8> {
        let mut out = format!("DSSEv1 {} {PAYLOAD_TYPE} {} ", PAYLOAD_TYPE.len(), self.payload.len()).into_bytes();
        out.extend_from_slice(&self.payload);
        out
    }

    /// The signing certificate's subject, if a signature of the envelope is
    /// by a certificate that chains to `authority`.
    fn by_certificate(&self, authority: &Authorities) -> Result<String, String> {
        if self.chain.is_empty() {
            return Err(format!("it carries no certificate (for {})", authority.label));
        }
        let pae = self.pae();
        let mut last = String::new();
        for signature in &self.signatures {
            match verify_signed(authority, &self.chain, &pae, signature) {
                Ok(subject) => return Ok(subject),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verifies_with(&self, key: &SignerKey) -> bool {
        let pae = self.pae();
        self.signatures.iter().any(|signature| key.verifies(&pae, signature))
    }

    /// The statement's resources (path to SHA-256 hex) and its subject's
    /// digest, after its own consistency checks.
    fn resources(&self) -> Result<Resources, String> {
        let statement: Statement = serde_json::from_slice(&self.payload)
            .map_err(|_| format!("its model signature's statement is not a {PREDICATE_TYPE} in-toto statement"))?;
        if statement.kind != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
            return Err(format!("its model signature is not a {PREDICATE_TYPE} in-toto statement"));
        }
        let serialization = &statement.predicate.serialization;
        // model-signing writes the shard size as a JSON float (1048576.0).
        let shard_size = serialization.shard_size.filter(|s| s.fract() == 0.0 && *s >= 0.0 && *s < 2f64.powi(53));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let shard_size = shard_size.map(|s| s as u64);
        let method = match (serialization.method.as_str(), shard_size) {
            ("files", _) => Method::Files,
            ("shards", Some(size)) if size >= crate::manifest::MIN_SHARD => Method::Shards(size),
            ("shards", size) => {
                return Err(format!(
                    "its model signature hashes the model in shards of {size:?} bytes; airlock checks shards of 1 MiB or more"
                ));
            }
            (other, _) => return Err(format!("its model signature hashes the model by the unknown method {other:?}")),
        };
        let mut root = sha2::Sha256::new();
        let mut resources = BTreeMap::new();
        for r in &statement.predicate.resources {
            let algorithm = match method {
                Method::Files => "sha256".to_owned(),
                Method::Shards(size) => format!("sha256-sharded-{size}"),
            };
            if r.algorithm != algorithm {
                return Err(format!("its model signature hashes {} with {}, not {algorithm}", r.name, r.algorithm));
            }
            let bytes =
                hex::decode(&r.digest).map_err(|_| format!("its model signature's digest of {} is not hex", r.name))?;
            root.update(&bytes);
            if resources.insert(r.name.clone(), r.digest.to_lowercase()).is_some() {
                return Err(format!("its model signature lists {} twice", r.name));
            }
        }
        let [subject] = statement.subject.as_slice() else {
            return Err("its model signature's statement does not have one subject".into());
        };
        let root = root.finalize().to_vec();
        if subject.digest.get("sha256").map(String::as_str) != Some(hex::encode(&root).as_str()) {
            return Err(
                "its model signature's statement is inconsistent (its subject is not its resources' digest)".into()
            );
        }
        Ok((resources, root, method))
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
