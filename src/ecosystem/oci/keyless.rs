//! Keyless (Sigstore) image signatures, verified offline against the pinned
//! `[sigstore] trusted-root`, in each of cosign's formats:
//!
//! - a `.sig` layer signed with a Fulcio certificate: the certificate and
//!   its chain in the `dev.sigstore.cosign/certificate` and `/chain`
//!   annotations, and Rekor's record of it (the signed entry timestamp over
//!   a `hashedrekord` entry) in `dev.sigstore.cosign/bundle`. These are the
//!   parts of a Sigstore bundle v0.1 (message signature over the payload's
//!   SHA-256, inclusion promise), so they are put back into one and handed
//!   to the same verifier as every other ecosystem's bundles;
//! - a keyless `.att` layer (`cosign attest` before the bundle format): a
//!   DSSE envelope with the same three annotations, Rekor's record being an
//!   `intoto` entry; put back into a bundle v0.1 the same way;
//! - an OCI 1.1 referrer whose layer is a Sigstore bundle (`cosign sign` and
//!   `cosign attest` with the new bundle format, the default since cosign
//!   3): a DSSE envelope over an in-toto statement whose subject must be the
//!   image's manifest digest.
//!
//! Either way the verifier checks the chain to the pinned Fulcio roots, the
//! SCT, the Rekor entry and its consistency with the signature; which
//! identity may sign which images is `[[oci.signers]]`'s decision.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};
use sigstore_verify::types::{ArtifactDigest, Bundle, HashAlgorithm, SignatureContent};

use crate::policy::Publisher;
use crate::provenance::sigstore::{Signer, SigstoreRoot, verify_keyless_over};

/// The annotations of a keyless `.sig` layer.
const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// The media types of a Sigstore bundle as cosign attaches it.
pub const BUNDLE_ARTIFACT_TYPES: [&str; 3] = [
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
];

/// The predicate of the statement `cosign sign` writes in a bundle: a
/// signature of the image, not an attestation about it.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Whether a `.sig` layer's annotations hold a Fulcio certificate.
pub fn is_keyless(annotations: Option<&HashMap<String, String>>) -> bool {
    annotations.is_some_and(|a| a.contains_key(CERTIFICATE_ANNOTATION))
}

/// Who signed `payload` with the certificate in a `.sig` layer's annotations.
pub fn layer_signer(
    root: &SigstoreRoot,
    annotations: &HashMap<String, String>,
    payload: &[u8],
    signature: &[u8],
) -> Result<Signer, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let content = json!({
        "messageSignature": {
            "messageDigest": { "algorithm": "SHA2_256", "digest": b64.encode(sha256(payload)) },
            "signature": b64.encode(signature),
        },
    });
    let what = "its keyless cosign signature";
    let bundle = layer_bundle(annotations, content, what)?;
    let digest = ArtifactDigest::new(HashAlgorithm::Sha2256, sha256(payload)).map_err(|e| e.to_string())?;
    verify_keyless_over(root, &bundle, digest)
        .map_err(|why| format!("{what} does not verify against the pinned Sigstore root ({why})"))
}

/// Who signed the DSSE envelope `raw` of an `.att` layer (`cosign attest`
/// before the bundle format) with the certificate in its annotations, its
/// statement bound by the verifier to the image `digest` (`sha256:<hex>`).
pub fn attestation_signer(
    root: &SigstoreRoot,
    annotations: &HashMap<String, String>,
    raw: &[u8],
    digest: &str,
) -> Result<Signer, String> {
    let what = "its keyless cosign attestation";
    let envelope: Value = serde_json::from_slice(raw).map_err(|_| format!("{what} is not a DSSE envelope"))?;
    let bundle = layer_bundle(annotations, json!({ "dsseEnvelope": envelope }), what)?;
    verify_keyless_over(root, &bundle, image_digest(digest)?)
        .map_err(|why| format!("{what} does not verify against the pinned Sigstore root ({why})"))
}

/// The image's manifest digest as the verifier takes a statement's subject.
fn image_digest(digest: &str) -> Result<ArtifactDigest, String> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let bytes = hex::decode(hex).map_err(|_| format!("the image digest {digest} is not sha256"))?;
    ArtifactDigest::new(HashAlgorithm::Sha2256, bytes).map_err(|e| e.to_string())
}

/// The Sigstore bundle v0.1 a keyless layer amounts to: its certificate,
/// chain and Rekor record, and `content` (the signature, as the bundle
/// names it: `messageSignature` or `dsseEnvelope`).
fn layer_bundle(annotations: &HashMap<String, String>, content: Value, what: &str) -> Result<Bundle, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let certificate = annotations.get(CERTIFICATE_ANNOTATION).map(String::as_str).unwrap_or_default();
    let mut certificates = pem_certificates(certificate, what)?;
    if certificates.len() != 1 {
        return Err(format!("{what}'s certificate annotation is not one PEM certificate"));
    }
    if let Some(chain) = annotations.get(CHAIN_ANNOTATION) {
        certificates.extend(pem_certificates(chain, what)?);
    }
    let record = annotations.get(BUNDLE_ANNOTATION).ok_or_else(|| {
        format!("{what} carries no Rekor record (dev.sigstore.cosign/bundle), so it cannot be checked offline")
    })?;
    let record: Value = serde_json::from_str(record).map_err(|_| format!("{what}'s Rekor record is not JSON"))?;
    let entry = tlog_entry(&record).map_err(|m| format!("{what}'s {m}"))?;
    let mut value = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {
                "certificates": certificates.iter().map(|der| json!({ "rawBytes": b64.encode(der) })).collect::<Vec<_>>(),
            },
            "tlogEntries": [entry],
        },
    });
    if let (Some(bundle), Value::Object(content)) = (value.as_object_mut(), content) {
        bundle.extend(content);
    }
    Bundle::from_json(&value.to_string()).map_err(|e| format!("{what} does not make a Sigstore bundle ({e})"))
}

/// A transparency-log entry from cosign's record: `{SignedEntryTimestamp,
/// Payload: {body, integratedTime, logIndex, logID}}`.
fn tlog_entry(record: &Value) -> Result<Value, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = || "Rekor record is malformed".to_owned();
    let payload = &record["Payload"];
    let body = payload["body"].as_str().ok_or_else(bad)?;
    let decoded: Value = b64.decode(body).ok().and_then(|raw| serde_json::from_slice(&raw).ok()).ok_or_else(bad)?;
    let log_id = hex::decode(payload["logID"].as_str().ok_or_else(bad)?).map_err(|_| bad())?;
    let (Some(time), Some(index), Some(set)) =
        (payload["integratedTime"].as_i64(), payload["logIndex"].as_i64(), record["SignedEntryTimestamp"].as_str())
    else {
        return Err(bad());
    };
    Ok(json!({
        "logIndex": index.to_string(),
        "logId": { "keyId": b64.encode(log_id) },
        "kindVersion": { "kind": decoded["kind"], "version": decoded["apiVersion"] },
        "integratedTime": time.to_string(),
        "inclusionPromise": { "signedEntryTimestamp": set },
        "canonicalizedBody": body,
    }))
}

/// The DER certificates of a PEM text; `what` names the signature in errors.
fn pem_certificates(text: &str, what: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (line, body.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b)) => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|_| format!("a certificate of {what} is not base64"))?;
                out.push(der);
                body = None;
            }
            (_, Some(b)) => b.push_str(line),
            _ => {}
        }
    }
    Ok(out)
}

/// Whether the Sigstore bundle `raw` was signed with a certificate (keyless)
/// rather than a key (whose bundle names only a hint of it).
pub fn has_certificate(raw: &[u8]) -> bool {
    let value: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let material = &value["verificationMaterial"];
    !material["certificate"].is_null() || !material["x509CertificateChain"].is_null()
}

/// What a Sigstore bundle attached as a referrer says, once verified: the
/// statement's predicate type and who signed it.
pub struct Attached {
    pub predicate_type: String,
    pub signer: Signer,
}

/// Verifies the Sigstore bundle `raw` (a referrer's layer) as a statement
/// about the image `digest` (`sha256:<hex>`).
pub fn attached(root: &SigstoreRoot, raw: &[u8], digest: &str) -> Result<Attached, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "its Sigstore bundle is not UTF-8 JSON".to_owned())?;
    let bundle = Bundle::from_json(text).map_err(|e| format!("its Sigstore bundle is malformed ({e})"))?;
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Err("its Sigstore bundle signs no in-toto statement (a DSSE envelope about the image)".into());
    };
    // The verifier binds the statement's subject to the image by digest.
    let signer = verify_keyless_over(root, &bundle, image_digest(digest)?)
        .map_err(|why| format!("its Sigstore bundle does not verify against the pinned Sigstore root ({why})"))?;
    let statement: Value = serde_json::from_slice(envelope.payload.as_bytes()).unwrap_or(Value::Null);
    let predicate_type = statement["predicateType"].as_str().unwrap_or("an unnamed predicate");
    Ok(Attached { predicate_type: crate::escape::one_line(predicate_type).to_string(), signer })
}

/// The first identity rule that accepts `signer`, or why none does.
pub fn accepted<'a>(signer: &Signer, rules: &[&'a Publisher], what: &str) -> Result<&'a Publisher, String> {
    if let Some(rule) = rules.iter().find(|r| r.accepts(signer)) {
        return Ok(rule);
    }
    let who = match signer {
        Signer::Identity { san, issuer } => format!("{san} (issuer {issuer})"),
        Signer::RegistryKey(key) => key.clone(),
    };
    let who = crate::escape::one_line(&who);
    let wanted = rules.iter().map(|r| format!("{} (issuer {})", r.describe(), r.issuer)).collect::<Vec<_>>();
    Err(format!("{what} is by {who}, not by a signer [[oci.signers]] names for it: {}", wanted.join(", ")))
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).to_vec()
}
