//! The images' evidence: their manifests (the digest chain), and cosign
//! signatures by the tag scheme, checked against the keys `[[oci.signers]]`
//! pins. A signature is a `.sig` image whose layers are simple-signing
//! payloads, each with its ECDSA P-256 signature (DER, base64) in the
//! `dev.cosignproject.cosign/signature` annotation; the payload names the
//! manifest digest and the repository it vouches for.

use base64::Engine as _;
use serde_json::Value;

use super::{parse_manifest, sha256_hex};
use crate::ecosystem::evidence::absent;
use crate::ecosystem::signer_keys::KeySigners;
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, KIB, MIB};

/// The images' evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 3] = [
    // The image's manifest or index, and the platform manifests of an index
    // it carries, as the registry served them; distribution's own limit is 4 MiB.
    EvidenceKind { name: "oci-manifest", max_bytes: 4 * MIB, needed: true },
    // The `.sig` manifest (with any certificate and bundle annotations).
    EvidenceKind { name: "cosign-signature", max_bytes: MIB, needed: false },
    // Its config and simple-signing payloads (a few hundred bytes each).
    EvidenceKind { name: "cosign-blob", max_bytes: 256 * KIB, needed: false },
];

/// The annotation holding a layer's signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The simple-signing payload's type.
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// What the report says of an image's signature, or why it is refused.
pub fn verify(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let digest = entry.version.as_deref().unwrap_or_default();
    let governing: Vec<_> = trust
        .rules
        .and_then(|r| r.roots::<KeySigners>())
        .map(|s| s.governing(&entry.name).collect())
        .unwrap_or_default();
    let Some(sig) = entry.evidence.iter().find(|e| e.kind == "cosign-signature") else {
        if !governing.is_empty() {
            return Err(Rejection::Policy(format!(
                "{id}: [[oci.signers]] pins a key for this image, but the bundle carries no cosign signature ({})",
                absent(entry, "cosign-signature", "none")
            )));
        }
        return Ok(Provenance::absent(absent(entry, "cosign-signature", "no cosign signature")));
    };
    let signed = signed_payloads(entry, &sig.data, digest).map_err(|m| Rejection::Policy(format!("{id}: {m}")))?;
    if governing.is_empty() {
        if trust.requires("cosign-signature") {
            return Err(Rejection::Policy(format!(
                "{id}: the policy requires cosign-signature but no [[oci.signers]] names this image; add one with its key"
            )));
        }
        return Ok(Provenance::not_checked(
            "cosign signature carried, not checked: no [[oci.signers]] names this image",
        ));
    }
    for signer in &governing {
        if signed.iter().any(|(payload, signature)| signer.key.verifies(payload, signature)) {
            return Ok(Provenance::verified(format!("cosign signature by {} verified", signer.label), Vec::new()));
        }
    }
    let keys = governing.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(", ");
    Err(Rejection::Policy(format!(
        "{id}: no cosign signature it carries verifies with a key [[oci.signers]] pins for it ({keys})"
    )))
}

/// A simple-signing payload and the signature (DER) over it.
type SignedPayload = (Vec<u8>, Vec<u8>);

/// The (payload, signature) pairs of a `.sig` manifest whose payload names
/// this image's digest and repository; any other is refused.
fn signed_payloads(entry: &Entry, sig: &[u8], digest: &str) -> Result<Vec<SignedPayload>, String> {
    let manifest = parse_manifest(sig).map_err(|m| format!("its cosign signature: {m}"))?;
    let mut out = Vec::new();
    for layer in manifest.layers() {
        let hex = layer.as_digest_sha256().unwrap_or_default();
        let payload =
            entry.evidence.iter().find(|e| e.kind == "cosign-blob" && sha256_hex(&e.data) == hex).ok_or_else(|| {
                format!("its cosign signature lists payload sha256:{hex}, which the bundle does not carry")
            })?;
        let value: Value = serde_json::from_slice(&payload.data)
            .map_err(|_| "its cosign signature's payload is not JSON".to_owned())?;
        let critical = &value["critical"];
        let named = critical["image"]["docker-manifest-digest"].as_str().unwrap_or_default();
        let reference = critical["identity"]["docker-reference"].as_str().unwrap_or_default();
        if critical["type"].as_str() != Some(PAYLOAD_TYPE) {
            return Err("its cosign signature's payload is not a cosign container image signature".into());
        }
        if named != digest {
            return Err(format!("its cosign signature is over {named}, not this image's {digest}"));
        }
        let repository = reference.split('@').next().unwrap_or_default();
        let repository = match repository.rfind(':') {
            Some(colon) if !repository[colon..].contains('/') => &repository[..colon],
            _ => repository,
        };
        if repository != entry.name {
            return Err(format!("its cosign signature names the repository {reference}, not {}", entry.name));
        }
        let encoded = layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            .ok_or("its cosign signature's layer has no signature annotation")?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "its cosign signature is not base64".to_owned())?;
        out.push((payload.data.clone(), der));
    }
    if out.is_empty() {
        return Err("its cosign signature has no layers".into());
    }
    Ok(out)
}
