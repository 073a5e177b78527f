//! PyPI's upstream evidence: its kinds and caps, and the PEP 740
//! provenance verified offline against the pinned Sigstore root.

use serde_json::Value;
use sigstore_verify::types::HashAlgorithm;

use crate::ecosystem::evidence::{Outcome, Provenance, Trust, absent, describe};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, MIB};
use crate::provenance::sigstore::{self, Attested, Findings, SigstoreRoot, Subject};

/// PyPI's evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 2] = [
    // PEP 658 METADATA, with the long description (pydantic's: 132 KiB).
    // Written to the mirror as it is, never parsed.
    EvidenceKind { name: "pypi-core-metadata", max_bytes: 4 * MIB, needed: false },
    // A PEP 740 provenance object: about 10 KiB per attestation.
    EvidenceKind { name: "pypi-provenance", max_bytes: MIB, needed: false },
];

/// PEP 740 attestations, verified when the policy pins a Sigstore root.
pub fn verify(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let Some(evidence) = entry.evidence.iter().find(|e| e.kind == "pypi-provenance") else {
        return Ok(Provenance::absent(absent(entry, "pypi-provenance", "no PEP 740 provenance")));
    };
    let Some(root) = trust.sigstore else {
        return Ok(Provenance::not_checked(
            "PEP 740 provenance carried, not verified (the policy pins no Sigstore trusted root)",
        ));
    };
    let sha256 = entry.digests.get("sha256").map(|d| d.0.as_slice()).unwrap_or_default();
    let file_name = entry.path.as_str().rsplit('/').next().unwrap_or_default();
    let subject = Subject { name: file_name.to_owned(), algorithm: HashAlgorithm::Sha2256, digest: sha256 };
    let findings = verify_pep740(&evidence.data, &subject, root)
        .map_err(|why| Rejection::BadSignature(format!("{id}: the PEP 740 provenance does not verify: {why}")))?;
    let outcome = if findings.verified.is_empty() { Outcome::NotChecked } else { Outcome::Ok };
    Ok(Provenance::with(outcome, describe(&findings), findings.verified))
}

/// A PEP 740 provenance object (`{"attestation_bundles": [{publisher,
/// attestations}]}`): each attestation is rebuilt as the Sigstore bundle it
/// abbreviates and verified against Fulcio.
pub fn verify_pep740(document: &[u8], subject: &Subject, root: &SigstoreRoot) -> Result<Findings, String> {
    let doc: Value = serde_json::from_slice(document).map_err(|e| format!("unreadable PEP 740 provenance ({e})"))?;
    let bundles = doc["attestation_bundles"].as_array().ok_or("the provenance object has no attestation_bundles")?;
    let mut findings = Findings::default();
    for attestation in bundles.iter().flat_map(|b| b["attestations"].as_array().into_iter().flatten()) {
        let bundle = sigstore::parse_bundle(&pep740_bundle(attestation)?)?;
        let result =
            sigstore::verify_keyless(root, &bundle, subject).map_err(|e| format!("PEP 740 attestation: {e}"))?;
        findings.verified.push(Attested { what: "PEP 740 publish".into(), signer: sigstore::identity(&result)? });
    }
    if findings.verified.is_empty() {
        return Err("the provenance object holds no attestations".into());
    }
    Ok(findings)
}

/// PEP 740's attestation object is a Sigstore bundle with the envelope's
/// statement and signature lifted out and the certificate inlined.
fn pep740_bundle(attestation: &Value) -> Result<Value, String> {
    if attestation["version"] != 1 {
        return Err(format!("PEP 740 attestation version {} is not supported", attestation["version"]));
    }
    let material = &attestation["verification_material"];
    let envelope = &attestation["envelope"];
    Ok(serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": material["certificate"]},
            "tlogEntries": material["transparency_entries"],
        },
        "dsseEnvelope": {
            "payload": envelope["statement"],
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": envelope["signature"]}],
        },
    }))
}
