//! The images' evidence: their manifests (the digest chain), and cosign
//! signatures and attestations by the tag scheme, checked against the keys
//! `[[oci.signers]]` pins. A signature is a `.sig` image whose layers are
//! simple-signing payloads, each with its ECDSA signature (DER, base64) in
//! the `dev.cosignproject.cosign/signature` annotation; the payload names
//! the manifest digest and the repository it vouches for. An attestation
//! (`cosign attest`) is an `.att` image whose layers are DSSE envelopes
//! (`application/vnd.dsse.envelope.v1+json`), each an in-toto statement
//! (SLSA provenance, an SBOM, a vulnerability scan...) whose subject is the
//! image's manifest digest, signed over the DSSE pre-authentication
//! encoding.

use base64::Engine as _;
use serde_json::Value;

use super::{parse_manifest, sha256_hex};
use crate::ecosystem::evidence::absent;
use crate::ecosystem::signer_keys::{KeySigner, KeySigners};
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, MIB};

/// The images' evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 7] = [
    // The image's manifest or index, and the platform manifests of an index
    // it carries, as the registry served them; distribution's own limit is 4 MiB.
    EvidenceKind { name: "oci-manifest", max_bytes: 4 * MIB, needed: true },
    // The `.sig` manifest (with any certificate and bundle annotations).
    EvidenceKind { name: "cosign-signature", max_bytes: MIB, needed: false },
    // The `.att` manifest: a layer descriptor per attestation.
    EvidenceKind { name: "cosign-attestation", max_bytes: MIB, needed: false },
    // The `.sbom` manifest (`cosign attach sbom`): a layer per SBOM document.
    EvidenceKind { name: "cosign-sbom", max_bytes: MIB, needed: false },
    // The blobs of all three: configs and simple-signing payloads (a few
    // hundred bytes each), DSSE envelopes (an SLSA provenance is tens of KiB;
    // an SBOM statement can be more), SBOM documents.
    EvidenceKind { name: "cosign-blob", max_bytes: 4 * MIB, needed: false },
    // An OCI 1.1 referrer: a manifest whose `subject` is the image.
    EvidenceKind { name: "oci-referrer", max_bytes: MIB, needed: false },
    // Its config and layers (a Sigstore bundle, an SBOM, an attestation).
    EvidenceKind { name: "oci-referrer-blob", max_bytes: 4 * MIB, needed: false },
];

/// The annotation holding a layer's signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The simple-signing payload's type.
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// What the report says of an image's signature and attestations, or why it is refused.
pub fn verify(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let governing: Vec<&KeySigner> = trust
        .rules
        .and_then(|r| r.roots::<KeySigners>())
        .map(|s| s.governing(&entry.name).collect())
        .unwrap_or_default();
    let signature = signature(entry, trust, id, &governing)?;
    let attestations = attestations(entry, trust, id, &governing)?;
    let mut text = format!("{}; {}", signature.text, attestations.text);
    for carried in [sboms(entry), referrers(entry)] {
        if let Some(line) = carried.map_err(|m| Rejection::Policy(format!("{id}: {m}")))? {
            text.push_str("; ");
            text.push_str(&line);
        }
    }
    Ok(Provenance::with(signature.outcome.either(attestations.outcome), text, Vec::new()))
}

/// The blobs `manifest` lists, each carried as evidence `kind` (so the
/// layout holds the manifest whole); `what` names the manifest in errors.
fn all_carried(entry: &Entry, manifest: &oci_spec::image::ImageManifest, kind: &str, what: &str) -> Result<(), String> {
    for d in super::blobs_of(manifest) {
        let hex = d.as_digest_sha256().unwrap_or_default();
        let carried = entry.evidence.iter().find(|e| e.kind == kind && sha256_hex(&e.data) == hex);
        if carried.is_none_or(|e| e.data.len() as u64 != d.size()) {
            return Err(format!("{what} lists sha256:{hex}, which the bundle does not carry"));
        }
    }
    Ok(())
}

/// What the report says of a `.sbom` (`cosign attach sbom` signs nothing,
/// so it is carried for the site's tools, not checked).
fn sboms(entry: &Entry) -> Result<Option<String>, String> {
    let Some(sbom) = entry.evidence.iter().find(|e| e.kind == "cosign-sbom") else { return Ok(None) };
    let manifest = parse_manifest(&sbom.data).map_err(|m| format!("its cosign SBOM: {m}"))?;
    all_carried(entry, &manifest, "cosign-blob", "its cosign SBOM")?;
    Ok(Some(format!(
        "cosign SBOM carried ({} document(s)), not checked: cosign attach sbom signs nothing",
        manifest.layers().len()
    )))
}

/// What the report says of the image's OCI 1.1 referrers: each must name
/// this image as its subject and carry its blobs, or the image is refused.
fn referrers(entry: &Entry) -> Result<Option<String>, String> {
    let digest = entry.version.as_deref().unwrap_or_default();
    let mut kinds = Vec::new();
    for referrer in entry.evidence.iter().filter(|e| e.kind == "oci-referrer") {
        let what = format!("its referrer sha256:{}", sha256_hex(&referrer.data));
        let manifest = parse_manifest(&referrer.data).map_err(|m| format!("{what}: {m}"))?;
        let subject = super::layout::subject_hex(&referrer.data);
        if subject.map(|s| format!("sha256:{s}")).as_deref() != Some(digest) {
            return Err(format!("{what} does not name this image ({digest}) as its subject"));
        }
        all_carried(entry, &manifest, "oci-referrer-blob", &what)?;
        let value: Value = serde_json::from_slice(&referrer.data).unwrap_or(Value::Null);
        let artifact_type = super::layout::artifact_type(&value).and_then(Value::as_str);
        kinds.push(crate::escape::one_line(artifact_type.unwrap_or("no artifact type")).to_string());
    }
    if kinds.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!("{} OCI referrer(s) carried ({}), not checked", kinds.len(), kinds.join(", "))))
}

fn signature(entry: &Entry, trust: &Trust<'_>, id: &str, governing: &[&KeySigner]) -> Result<Provenance, Rejection> {
    let digest = entry.version.as_deref().unwrap_or_default();
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
    for signer in governing {
        if signed.iter().any(|(payload, signature)| signer.key.verifies(payload, signature)) {
            return Ok(Provenance::verified(format!("cosign signature by {} verified", signer.label), Vec::new()));
        }
    }
    let keys = governing.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(", ");
    Err(Rejection::Policy(format!(
        "{id}: no cosign signature it carries verifies with a key [[oci.signers]] pins for it ({keys})"
    )))
}

/// What the report says of an image's attestations: each must be about
/// this image and verify with a pinned key, or the image is refused.
fn attestations(entry: &Entry, trust: &Trust<'_>, id: &str, governing: &[&KeySigner]) -> Result<Provenance, Rejection> {
    let refuse = |m: String| Rejection::Policy(format!("{id}: {m}"));
    let Some(att) = entry.evidence.iter().find(|e| e.kind == "cosign-attestation") else {
        if trust.requires("cosign-attestation") {
            return Err(refuse(format!(
                "the policy requires cosign-attestation but the bundle carries none ({})",
                absent(entry, "cosign-attestation", "none")
            )));
        }
        return Ok(Provenance::absent(absent(entry, "cosign-attestation", "no cosign attestation")));
    };
    let digest = entry.version.as_deref().unwrap_or_default();
    let envelopes = attestation_envelopes(entry, &att.data).map_err(refuse)?;
    if governing.is_empty() {
        if trust.requires("cosign-attestation") {
            return Err(refuse(
                "the policy requires cosign-attestation but no [[oci.signers]] names this image; add one with its key"
                    .into(),
            ));
        }
        return Ok(Provenance::not_checked(format!(
            "{} cosign attestation(s) carried, not checked: no [[oci.signers]] names this image",
            envelopes.len()
        )));
    }
    let mut by = Vec::new();
    for envelope in &envelopes {
        let pae = envelope.pae();
        let Some(signer) = governing.iter().find(|s| envelope.signatures.iter().any(|sig| s.key.verifies(&pae, sig)))
        else {
            let keys = governing.iter().map(|s| s.label.as_str()).collect::<Vec<_>>().join(", ");
            return Err(refuse(format!(
                "a cosign attestation it carries does not verify with a key [[oci.signers]] pins for it ({keys})"
            )));
        };
        // Authenticated; only now is the statement read.
        let predicate_type = envelope.about(digest).map_err(refuse)?;
        by.push(format!("{predicate_type} by {}", signer.label));
    }
    Ok(Provenance::verified(format!("cosign attestations verified: {}", by.join(", ")), Vec::new()))
}

/// One attestation of an `.att` manifest, read but not yet authenticated.
struct Envelope {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<Vec<u8>>,
}

impl Envelope {
    /// The DSSE pre-authentication encoding its signatures are over.
    fn pae(&self) -> Vec<u8> {
        let (kind, payload) = (&self.payload_type, &self.payload);
        let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), payload.len()).into_bytes();
        pae.extend_from_slice(payload);
        pae
    }

    /// Its statement's predicate type, if its subject is `digest` (`sha256:<hex>`).
    fn about(&self, digest: &str) -> Result<String, String> {
        let statement: Value = serde_json::from_slice(&self.payload)
            .map_err(|_| "its cosign attestation's payload is not an in-toto statement".to_owned())?;
        let subjects: Vec<&str> = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["digest"]["sha256"].as_str())
            .collect();
        if !subjects.iter().any(|s| format!("sha256:{s}") == digest) {
            return Err(format!("its cosign attestation is about {}, not this image's {digest}", subjects.join(", ")));
        }
        Ok(statement["predicateType"].as_str().unwrap_or("an unnamed predicate").to_owned())
    }
}

/// The DSSE envelope of an attestation layer, as cosign writes it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dsse {
    payload_type: String,
    payload: String,
    signatures: Vec<DsseSignature>,
}

#[derive(serde::Deserialize)]
struct DsseSignature {
    sig: String,
}

/// The attestations an `.att` manifest lists, each a DSSE envelope carried.
fn attestation_envelopes(entry: &Entry, att: &[u8]) -> Result<Vec<Envelope>, String> {
    let manifest = parse_manifest(att).map_err(|m| format!("its cosign attestation: {m}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for layer in manifest.layers() {
        let hex = layer.as_digest_sha256().unwrap_or_default();
        let blob = entry
            .evidence
            .iter()
            .find(|e| e.kind == "cosign-blob" && sha256_hex(&e.data) == hex)
            .ok_or_else(|| format!("its cosign attestation lists sha256:{hex}, which the bundle does not carry"))?;
        let dsse: Dsse = serde_json::from_slice(&blob.data)
            .map_err(|_| "its cosign attestation's layer is not a DSSE envelope".to_owned())?;
        let payload = b64.decode(&dsse.payload).map_err(|_| "its cosign attestation's payload is not base64")?;
        let signatures = dsse.signatures.iter().filter_map(|s| b64.decode(&s.sig).ok()).collect();
        out.push(Envelope { payload_type: dsse.payload_type, payload, signatures });
    }
    if out.is_empty() {
        return Err("its cosign attestation has no layers".into());
    }
    Ok(out)
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
