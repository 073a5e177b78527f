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

use super::keyless;
use super::policy::ImageSigners;
use super::{parse_manifest, sha256_hex};
use crate::ecosystem::evidence::absent;
use crate::ecosystem::signer_keys::KeySigner;
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, MIB};
use crate::policy::Publisher;
use crate::provenance::sigstore::SigstoreRoot;

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

/// The signers `[[oci.signers]]` pins for one image, and the root to check keyless ones with.
struct Governing<'a> {
    keys: Vec<&'a KeySigner>,
    identities: Vec<&'a Publisher>,
    sigstore: Option<&'a SigstoreRoot>,
}

impl Governing<'_> {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.identities.is_empty()
    }

    /// How errors name what was pinned.
    fn named(&self) -> String {
        let keys = self.keys.iter().map(|s| s.label.clone());
        let identities = self.identities.iter().map(|p| format!("{} (issuer {})", p.describe(), p.issuer));
        keys.chain(identities).collect::<Vec<_>>().join(", ")
    }

    /// The root keyless signatures are checked against, or what to do.
    fn root(&self) -> Result<&SigstoreRoot, String> {
        self.sigstore.ok_or_else(|| {
            "[[oci.signers]] names a keyless identity for it, but the policy pins no [sigstore] trusted-root to check it with; add one".to_owned()
        })
    }
}

/// What the report says of an image's signature and attestations, or why it is refused.
pub fn verify(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let signers = trust.rules.and_then(|r| r.roots::<ImageSigners>());
    let governing = Governing {
        keys: signers.map(|s| s.keys.governing(&entry.name).collect()).unwrap_or_default(),
        identities: signers.map(|s| s.identities(&entry.name).collect()).unwrap_or_default(),
        sigstore: trust.sigstore,
    };
    let refuse = |m: String| Rejection::Policy(format!("{id}: {m}"));
    let bundles = referrers(entry, &governing).map_err(refuse)?;
    let signature = signature(entry, trust, id, &governing, &bundles)?;
    let attestations = attestations(entry, trust, id, &governing)?;
    let mut text = format!("{}; {}", signature.text, attestations.text);
    for line in [sboms(entry).map_err(refuse)?, bundles.line].into_iter().flatten() {
        text.push_str("; ");
        text.push_str(&line);
    }
    let outcome = signature.outcome.either(attestations.outcome);
    Ok(Provenance::with(outcome, text, Vec::new()))
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

/// Whether a referrer of the image is a Sigstore bundle.
pub fn carries_bundle(entry: &Entry) -> bool {
    entry.evidence.iter().filter(|e| e.kind == "oci-referrer").any(|e| is_bundle(artifact_type_of(&e.data).as_deref()))
}

/// A referrer's artifact type (its own, or its config's media type).
fn artifact_type_of(referrer: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(referrer).unwrap_or(Value::Null);
    super::layout::artifact_type(&value).and_then(Value::as_str).map(str::to_owned)
}

/// Whether `artifact_type` is a Sigstore bundle's, as cosign attaches one.
fn is_bundle(artifact_type: Option<&str>) -> bool {
    artifact_type.is_some_and(|t| keyless::BUNDLE_ARTIFACT_TYPES.contains(&t))
}

/// The image's OCI 1.1 referrers, as far as they were checked.
struct Referrers {
    /// What the report says of them.
    line: Option<String>,
    /// Signatures in the bundle format (`cosign sign` since cosign 3) that verified, by whom.
    signed_by: Vec<String>,
}

impl Referrers {
    /// A signature in the bundle format that verified, as the report says it.
    fn signature(&self) -> Option<Provenance> {
        let by = self.signed_by.first()?;
        Some(Provenance::verified(format!("cosign signature by {by} verified (Sigstore bundle)"), Vec::new()))
    }
}

/// Each referrer must name this image as its subject and carry its blobs,
/// or the image is refused. A Sigstore bundle among them is verified when
/// `[[oci.signers]]` names a signer for the image, and must then be by one
/// of them.
fn referrers(entry: &Entry, governing: &Governing<'_>) -> Result<Referrers, String> {
    let digest = entry.version.as_deref().unwrap_or_default();
    let (mut unchecked, mut verified, mut signed_by) = (Vec::new(), Vec::new(), Vec::new());
    for referrer in entry.evidence.iter().filter(|e| e.kind == "oci-referrer") {
        let what = format!("its referrer sha256:{}", sha256_hex(&referrer.data));
        let manifest = parse_manifest(&referrer.data).map_err(|m| format!("{what}: {m}"))?;
        let subject = super::layout::subject_hex(&referrer.data);
        if subject.map(|s| format!("sha256:{s}")).as_deref() != Some(digest) {
            return Err(format!("{what} does not name this image ({digest}) as its subject"));
        }
        all_carried(entry, &manifest, "oci-referrer-blob", &what)?;
        let artifact_type = artifact_type_of(&referrer.data);
        if !is_bundle(artifact_type.as_deref()) || governing.is_empty() {
            let named = artifact_type.as_deref().unwrap_or("no artifact type");
            unchecked.push(crate::escape::one_line(named).to_string());
            continue;
        }
        if manifest.layers().is_empty() {
            return Err(format!("{what} is a Sigstore bundle referrer with no bundle in it"));
        }
        for layer in manifest.layers() {
            let hex = layer.as_digest_sha256().unwrap_or_default();
            let blob = entry.evidence.iter().find(|e| e.kind == "oci-referrer-blob" && sha256_hex(&e.data) == hex);
            let Some(blob) = blob else { continue };
            let (predicate_type, by) =
                bundle_signer(governing, &blob.data, digest, &format!("{what}'s Sigstore bundle"))?;
            if predicate_type == keyless::SIGN_PREDICATE {
                signed_by.push(by.clone());
            }
            verified.push(format!("{predicate_type} by {by}"));
        }
    }
    let mut parts = Vec::new();
    if !verified.is_empty() {
        parts.push(format!("Sigstore bundle referrer(s) verified: {}", verified.join(", ")));
    }
    if !unchecked.is_empty() {
        parts.push(format!("{} OCI referrer(s) carried ({}), not checked", unchecked.len(), unchecked.join(", ")));
    }
    let line = if parts.is_empty() { None } else { Some(parts.join("; ")) };
    Ok(Referrers { line, signed_by })
}

/// The predicate type of the Sigstore bundle `raw` about the image
/// `digest`, and which signer `[[oci.signers]]` pins made it: a Fulcio
/// certificate's identity (verified against the pinned Sigstore root), or a
/// pinned key (over the DSSE pre-authentication encoding, as for `.att`; a
/// Rekor entry is not required, as for `.sig` and `.att` by a key).
fn bundle_signer(governing: &Governing<'_>, raw: &[u8], digest: &str, what: &str) -> Result<(String, String), String> {
    if keyless::has_certificate(raw) {
        if governing.identities.is_empty() {
            return Err(format!(
                "{what} is signed keylessly, but [[oci.signers]] pins only keys for this image ({})",
                governing.named()
            ));
        }
        let attached = keyless::attached(governing.root()?, raw, digest).map_err(|m| format!("{what}: {m}"))?;
        let rule = keyless::accepted(&attached.signer, &governing.identities, what)?;
        return Ok((attached.predicate_type, format!("{} (issuer {})", rule.describe(), rule.issuer)));
    }
    let bundle: Value = serde_json::from_slice(raw).map_err(|_| format!("{what} is not JSON"))?;
    let envelope = serde_json::from_value::<Dsse>(bundle["dsseEnvelope"].clone())
        .map_err(|_| format!("{what} signs no in-toto statement (a DSSE envelope about the image)"))?;
    let envelope = Envelope::decode(envelope).map_err(|m| format!("{what}: {m}"))?;
    let pae = envelope.pae();
    let Some(signer) = governing.keys.iter().find(|s| envelope.signatures.iter().any(|sig| s.key.verifies(&pae, sig)))
    else {
        return Err(format!(
            "{what} does not verify with a signer [[oci.signers]] pins for it ({})",
            governing.named()
        ));
    };
    let predicate_type = envelope.about(digest, what)?;
    Ok((crate::escape::one_line(&predicate_type).to_string(), signer.label.clone()))
}

fn signature(
    entry: &Entry,
    trust: &Trust<'_>,
    id: &str,
    governing: &Governing<'_>,
    bundles: &Referrers,
) -> Result<Provenance, Rejection> {
    let refuse = |m: String| Rejection::Policy(format!("{id}: {m}"));
    let digest = entry.version.as_deref().unwrap_or_default();
    let Some(sig) = entry.evidence.iter().find(|e| e.kind == "cosign-signature") else {
        if let Some(verified) = bundles.signature() {
            return Ok(verified);
        }
        if !governing.is_empty() {
            return Err(refuse(format!(
                "[[oci.signers]] pins a signer for this image, but the bundle carries no cosign signature ({})",
                absent(entry, "cosign-signature", "none")
            )));
        }
        return Ok(Provenance::absent(absent(entry, "cosign-signature", "no cosign signature")));
    };
    let signed = signed_payloads(entry, &sig.data, digest).map_err(refuse)?;
    if governing.is_empty() {
        if trust.requires("cosign-signature") {
            return Err(refuse(
                "the policy requires cosign-signature but no [[oci.signers]] names this image; add one with its key or identity".into(),
            ));
        }
        return Ok(Provenance::not_checked(
            "cosign signature carried, not checked: no [[oci.signers]] names this image",
        ));
    }
    for signer in &governing.keys {
        if signed.iter().any(|s| signer.key.verifies(&s.payload, &s.signature)) {
            return Ok(Provenance::verified(format!("cosign signature by {} verified", signer.label), Vec::new()));
        }
    }
    if let Some(verified) = bundles.signature() {
        return Ok(verified);
    }
    // The first keyless layer that verifies by a governing identity; else why the first did not.
    let mut first_failure = None;
    let identities = !governing.identities.is_empty();
    for layer in signed.iter().filter(|s| identities && keyless::is_keyless(s.annotations.as_ref())) {
        let annotations = layer.annotations.as_ref().expect("is_keyless checked them");
        let checked =
            keyless::layer_signer(governing.root().map_err(refuse)?, annotations, &layer.payload, &layer.signature)
                .and_then(|signer| keyless::accepted(&signer, &governing.identities, "its keyless cosign signature"));
        match checked {
            Ok(rule) => {
                return Ok(Provenance::verified(
                    format!("keyless cosign signature by {} (issuer {}) verified", rule.describe(), rule.issuer),
                    Vec::new(),
                ));
            }
            Err(m) => {
                first_failure.get_or_insert(m);
            }
        }
    }
    if let Some(why) = first_failure {
        return Err(refuse(why));
    }
    Err(refuse(format!(
        "no cosign signature it carries verifies with a signer [[oci.signers]] pins for it ({})",
        governing.named()
    )))
}

/// What the report says of an image's attestations: each must be about
/// this image and verify with a pinned key, or the image is refused.
fn attestations(entry: &Entry, trust: &Trust<'_>, id: &str, signers: &Governing<'_>) -> Result<Provenance, Rejection> {
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
    let layers = attestation_envelopes(entry, &att.data).map_err(refuse)?;
    if signers.is_empty() {
        if trust.requires("cosign-attestation") {
            return Err(refuse(
                "the policy requires cosign-attestation but no [[oci.signers]] names this image; add one with its key or identity"
                    .into(),
            ));
        }
        return Ok(Provenance::not_checked(format!(
            "{} cosign attestation(s) carried, not checked: no [[oci.signers]] names this image",
            layers.len()
        )));
    }
    let mut by = Vec::new();
    for layer in &layers {
        by.push(attestation_signer(layer, signers, digest).map_err(refuse)?);
    }
    Ok(Provenance::verified(format!("cosign attestations verified: {}", by.join(", ")), Vec::new()))
}

/// "PREDICATE by SIGNER" for one `.att` layer: its DSSE signature verifies
/// with a pinned key, or (keyless: a Fulcio certificate and Rekor record in
/// its annotations) against the pinned Sigstore root by a governing
/// identity; and its statement is about the image `digest`.
fn attestation_signer(layer: &AttestationLayer<'_>, signers: &Governing<'_>, digest: &str) -> Result<String, String> {
    let envelope = &layer.envelope;
    let pae = envelope.pae();
    if let Some(signer) = signers.keys.iter().find(|s| envelope.signatures.iter().any(|sig| s.key.verifies(&pae, sig)))
    {
        // Authenticated; only now is the statement read.
        let predicate_type = envelope.about(digest, "its cosign attestation")?;
        return Ok(format!("{predicate_type} by {}", signer.label));
    }
    let keyless = layer.annotations.as_ref().filter(|a| keyless::is_keyless(Some(a)));
    let (Some(annotations), false) = (keyless, signers.identities.is_empty()) else {
        return Err(format!(
            "a cosign attestation it carries does not verify with a signer [[oci.signers]] pins for it ({})",
            signers.named()
        ));
    };
    let signer = keyless::attestation_signer(signers.root()?, annotations, layer.raw, digest)?;
    let rule = keyless::accepted(&signer, &signers.identities, "its keyless cosign attestation")?;
    // The verifier bound the statement's subject to the digest; read its predicate.
    let predicate_type = envelope.about(digest, "its cosign attestation")?;
    Ok(format!("{predicate_type} by {} (issuer {})", rule.describe(), rule.issuer))
}

/// One layer of an `.att` manifest: the envelope decoded, its bytes, its annotations.
struct AttestationLayer<'a> {
    envelope: Envelope,
    raw: &'a [u8],
    annotations: Option<std::collections::HashMap<String, String>>,
}

/// One attestation of an `.att` manifest, read but not yet authenticated.
struct Envelope {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<Vec<u8>>,
}

impl Envelope {
    /// The envelope as written, its payload and signatures decoded.
    fn decode(dsse: Dsse) -> Result<Envelope, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64.decode(&dsse.payload).map_err(|_| "its DSSE payload is not base64".to_owned())?;
        let signatures = dsse.signatures.iter().filter_map(|s| b64.decode(&s.sig).ok()).collect();
        Ok(Envelope { payload_type: dsse.payload_type, payload, signatures })
    }

    /// The DSSE pre-authentication encoding its signatures are over.
    fn pae(&self) -> Vec<u8> {
        let (kind, payload) = (&self.payload_type, &self.payload);
        let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), payload.len()).into_bytes();
        pae.extend_from_slice(payload);
        pae
    }

    /// Its statement's predicate type, if its subject is `digest`
    /// (`sha256:<hex>`); `what` names the envelope in errors.
    fn about(&self, digest: &str, what: &str) -> Result<String, String> {
        let statement: Value = serde_json::from_slice(&self.payload)
            .map_err(|_| format!("{what}'s payload is not an in-toto statement"))?;
        let subjects: Vec<&str> = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["digest"]["sha256"].as_str())
            .collect();
        if !subjects.iter().any(|s| format!("sha256:{s}") == digest) {
            return Err(format!("{what} is about {}, not this image's {digest}", subjects.join(", ")));
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
fn attestation_envelopes<'a>(entry: &'a Entry, att: &[u8]) -> Result<Vec<AttestationLayer<'a>>, String> {
    let manifest = parse_manifest(att).map_err(|m| format!("its cosign attestation: {m}"))?;
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
        let envelope = Envelope::decode(dsse).map_err(|m| format!("its cosign attestation: {m}"))?;
        out.push(AttestationLayer { envelope, raw: &blob.data, annotations: layer.annotations().clone() });
    }
    if out.is_empty() {
        return Err("its cosign attestation has no layers".into());
    }
    Ok(out)
}

/// A simple-signing payload, the signature (DER) over it, and its layer's
/// annotations (a keyless signature's certificate and Rekor record).
struct SignedPayload {
    payload: Vec<u8>,
    signature: Vec<u8>,
    annotations: Option<std::collections::HashMap<String, String>>,
}

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
        out.push(SignedPayload {
            payload: payload.data.clone(),
            signature: der,
            annotations: layer.annotations().clone(),
        });
    }
    if out.is_empty() {
        return Err("its cosign signature has no layers".into());
    }
    Ok(out)
}
