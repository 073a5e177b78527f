//! npm's upstream evidence: its kinds and caps, and their verification
//! offline. The registry signature is checked against the registry keys
//! the policy pins (`registry-keys`), the attestations document (SLSA
//! provenance and the registry's publish attestation) against the pinned
//! Sigstore root through the shared Sigstore code.

use serde_json::Value;
use sigstore_verify::types::{Bundle, HashAlgorithm, VerificationMaterialContent};

use super::registry_keys::{RegistryKeys, SignatureError};
use crate::ecosystem::evidence::{Outcome, Provenance, Trust, absent, describe};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, KIB, MIB};
use crate::provenance::rfc3339_secs;
use crate::provenance::sigstore::{self, Attested, Findings, Signer, SigstoreRoot, Subject};

/// npm's evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 3] = [
    // A version's object from the full packument. The largest of aws-sdk,
    // typescript, next, @types/node, react-native, npm and electron (2025)
    // is 9.5 KiB; the registry puts readmes at the top, not per version.
    EvidenceKind { name: "npm-version", max_bytes: MIB, needed: true },
    // `dist.signatures`: one or two records of about 200 bytes.
    EvidenceKind { name: "npm-signatures", max_bytes: 64 * KIB, needed: false },
    // The attestations document: two Sigstore bundles, about 12 KiB.
    EvidenceKind { name: "npm-attestations", max_bytes: MIB, needed: false },
];

const NPM_PROVENANCE: &str = "https://slsa.dev/provenance/";
const NPM_PUBLISH: &str = "https://github.com/npm/attestation/tree/main/specs/publish/";

/// The registry signature, verified when the policy pins the registry's
/// keys, and the attestations, verified when it pins a Sigstore root.
pub fn verify(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let (attestations, attested_outcome, attested) = npm_attestations(entry, trust, id)?;
    let (signature, signed) = npm_signature(entry, trust, id)?;
    Ok(Provenance::with(signed.either(attested_outcome), format!("{signature}; {attestations}"), attested))
}

fn registry_keys<'a>(trust: &Trust<'a>) -> Option<&'a RegistryKeys> {
    trust.rules.and_then(|r| r.roots::<RegistryKeys>())
}

fn npm_signature(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<(String, Outcome), Rejection> {
    let Some(signatures) = entry.evidence.iter().find(|e| e.kind == "npm-signatures") else {
        return Ok((absent(entry, "npm-signatures", "no registry signature"), Outcome::Absent));
    };
    let Some(keys) = registry_keys(trust) else {
        return Ok((
            "registry signature carried, not checked (the policy pins no npm registry-keys)".into(),
            Outcome::NotChecked,
        ));
    };
    let integrity = registry_integrity(entry)
        .ok_or_else(|| Rejection::Schema(format!("{id}: the carried npm metadata has no dist.integrity")))?;
    // The signature covers the registry's integrity string; it must name the artifact carried.
    let carried_sha512 = entry.digests.get("sha512").map(|d| d.0.clone());
    if carried_sha512.is_none() || carried_sha512 != super::sri_sha512(&integrity) {
        return Err(Rejection::DigestMismatch(format!("{id}: the signed integrity does not name the tarball carried")));
    }
    let version = entry.version.as_deref().unwrap_or_default();
    let published = entry.attributes.get("published").and_then(|t| rfc3339_secs(t));
    let required = trust.requires("npm-signatures");
    match keys.verify(&entry.name, version, &integrity, &signatures.data, published) {
        Ok(keyid) => Ok((format!("registry signature by {keyid} verified"), Outcome::Ok)),
        Err(SignatureError::Unpinned(why)) if !required => {
            Ok((format!("registry signature not verified ({why})"), Outcome::NotChecked))
        }
        Err(why) => Err(Rejection::BadSignature(format!("{id}: the npm registry signature does not verify: {why}"))),
    }
}

/// The attestations' words, outcome and what verified.
type Attestations = (String, Outcome, Vec<Attested>);

fn npm_attestations(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Attestations, Rejection> {
    let Some(evidence) = entry.evidence.iter().find(|e| e.kind == "npm-attestations") else {
        return Ok((absent(entry, "npm-attestations", "no attestations"), Outcome::Absent, Vec::new()));
    };
    let Some(root) = trust.sigstore else {
        return Ok((
            "attestations carried, not verified (the policy pins no Sigstore trusted root)".into(),
            Outcome::NotChecked,
            Vec::new(),
        ));
    };
    let version = entry.version.as_deref().unwrap_or_default();
    let sha512 = entry.digests.get("sha512").map(|d| d.0.as_slice()).unwrap_or_default();
    let subject = Subject { name: purl(&entry.name, version), algorithm: HashAlgorithm::Sha2512, digest: sha512 };
    let findings = verify_attestations(&evidence.data, &subject, root, registry_keys(trust))
        .map_err(|why| Rejection::BadSignature(format!("{id}: the npm attestations do not verify: {why}")))?;
    if trust.requires("npm-attestations") && findings.verified.is_empty() {
        return Err(Rejection::Policy(format!(
            "{id}: the policy requires npm-attestations, and none could be verified here: {}",
            findings.unchecked.join("; ")
        )));
    }
    let outcome = if findings.verified.is_empty() { Outcome::NotChecked } else { Outcome::Ok };
    Ok((describe(&findings), outcome, findings.verified))
}

fn registry_integrity(entry: &Entry) -> Option<String> {
    let version = entry.evidence.iter().find(|e| e.kind == "npm-version")?;
    let object: Value = serde_json::from_slice(&version.data).ok()?;
    object.get("dist")?.get("integrity")?.as_str().map(str::to_owned)
}

/// npm's attestations document (`{"attestations": [{predicateType, bundle}]}`).
/// Provenance is checked against Fulcio; the registry's publish attestation
/// against its key, which must be pinned (`registry-keys`) to count.
pub fn verify_attestations(
    document: &[u8],
    subject: &Subject,
    root: &SigstoreRoot,
    keys: Option<&RegistryKeys>,
) -> Result<Findings, String> {
    let doc: Value = serde_json::from_slice(document).map_err(|e| format!("unreadable attestations document ({e})"))?;
    let list = doc["attestations"].as_array().ok_or("the attestations document lists no attestations")?;
    let mut findings = Findings::default();
    for item in list {
        let predicate = item["predicateType"].as_str().unwrap_or_default();
        let bundle = sigstore::parse_bundle(&item["bundle"])?;
        if predicate.starts_with(NPM_PROVENANCE) {
            let result =
                sigstore::verify_keyless(root, &bundle, subject).map_err(|e| format!("SLSA provenance: {e}"))?;
            findings.verified.push(Attested { what: "SLSA provenance".into(), signer: sigstore::identity(&result)? });
        } else if predicate.starts_with(NPM_PUBLISH) {
            match verify_publish(root, &bundle, subject, keys)? {
                Ok(attested) => findings.verified.push(attested),
                Err(why) => findings.unchecked.push(why),
            }
        } else {
            findings.unchecked.push(format!("attestation of unknown type {predicate:?} not checked"));
        }
    }
    Ok(findings)
}

/// The registry's publish attestation: a managed-key bundle whose key hint
/// names a registry key. An unpinned key leaves it unjudged.
fn verify_publish(
    root: &SigstoreRoot,
    bundle: &Bundle,
    subject: &Subject,
    keys: Option<&RegistryKeys>,
) -> Result<Result<Attested, String>, String> {
    // The hint is unauthenticated: it only picks which pinned key to try.
    let hint = match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(key) => key.hint.clone(),
        _ => return Err("npm publish attestation: not signed by a registry key".into()),
    };
    let Some((der, expires)) = keys.and_then(|k| k.key_der(&hint)) else {
        return Ok(Err(format!(
            "npm publish attestation by {hint} not checked (the policy pins no such registry key)"
        )));
    };
    sigstore::check_subject_name(bundle, &subject.name)?;
    let result = sigstore::verify_with_key(root, sigstore::digest(subject)?, bundle, der)
        .map_err(|e| format!("npm publish attestation: {e}"))?;
    // Like the registry signature, judged by when it was made: the log's time.
    if let Some(expires) = expires {
        let logged = result.integrated_time().map_or(u64::MAX, |t| u64::try_from(t.as_second()).unwrap_or(u64::MAX));
        if logged >= expires {
            return Err(format!(
                "npm publish attestation: key {hint} had expired when the attestation was logged (or the log time is unknown)"
            ));
        }
    }
    Ok(Ok(Attested { what: "npm publish".into(), signer: Signer::RegistryKey(hint) }))
}

/// The purl an npm statement names: `pkg:npm/%40scope/name@version`.
#[must_use]
pub fn purl(name: &str, version: &str) -> String {
    format!("pkg:npm/{}@{version}", name.replacen('@', "%40", 1))
}
