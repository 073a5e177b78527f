//! Sigstore bundles as a signed import meets them (npm and PEP 740
//! provenance, model signatures, image signatures attached as referrers):
//! parsed and verified offline against a pinned trusted root, over the
//! digests the bundle itself names and over one it does not. Refused or
//! verified, never a panic.
#![no_main]

use std::sync::LazyLock;

use airlock::provenance::sigstore::{SigstoreRoot, check_subject_name, parse_bundle, verify_keyless_over};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sigstore_verify::types::{ArtifactDigest, HashAlgorithm, SignatureContent};

static ROOT: LazyLock<SigstoreRoot> = LazyLock::new(|| {
    let text = include_str!("../../../fixtures/registry/upstream/trusted_root.json");
    SigstoreRoot::from_json(text, "trusted_root.json").expect("the captured trusted root loads")
});

/// The statement's subject digests, or the message digest: what the
/// bundle claims to be about, so verification gets past the binding.
fn claimed(value: &Value) -> Vec<(HashAlgorithm, Vec<u8>)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    if let Some(digest) = value["messageSignature"]["messageDigest"]["digest"].as_str()
        && let Ok(bytes) = b64.decode(digest)
    {
        out.push((HashAlgorithm::Sha2256, bytes));
    }
    let payload = value["dsseEnvelope"]["payload"].as_str().and_then(|p| b64.decode(p).ok());
    let statement: Value = payload.and_then(|p| serde_json::from_slice(&p).ok()).unwrap_or(Value::Null);
    for subject in statement["subject"].as_array().into_iter().flatten() {
        for (name, algorithm) in [("sha256", HashAlgorithm::Sha2256), ("sha512", HashAlgorithm::Sha2512)] {
            if let Some(bytes) = subject["digest"][name].as_str().and_then(|h| hex::decode(h).ok()) {
                out.push((algorithm, bytes));
            }
        }
    }
    out.push((HashAlgorithm::Sha2256, vec![0; 32]));
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(bundle) = parse_bundle(&value) else { return };
    let _ = check_subject_name(&bundle, "pkg:npm/sigstore@1.3.0");
    for (algorithm, bytes) in claimed(&value) {
        if let Ok(digest) = ArtifactDigest::new(algorithm, bytes) {
            let _ = verify_keyless_over(&ROOT, &bundle, digest);
        }
    }
    if let SignatureContent::DsseEnvelope(envelope) = &bundle.content {
        assert!(envelope.payload.as_bytes().len() <= data.len());
    }
});
