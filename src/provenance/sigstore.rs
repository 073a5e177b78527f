//! Sigstore bundles, verified offline: npm's provenance and publish
//! attestations, and PyPI's PEP 740 attestations.
//!
//! The cryptography is the `sigstore-verify` crate's: the certificate chain
//! to the Fulcio roots, the SCT, the transparency-log inclusion proof and
//! signed checkpoint or the signed entry timestamp against the Rekor keys,
//! and the DSSE signature over the in-toto statement. All of it is checked
//! against the `trusted_root.json` the policy pins, never one from the bundle.
//! This module is the glue: it finds the bundles in what the registries serve,
//! binds each statement's subject to the artifact carried (by digest, and by
//! name, which the crate does not check), and returns who signed.

use serde_json::Value;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{
    ArtifactDigest, Bundle, DerPublicKey, HashAlgorithm, SignatureContent, VerificationMaterialContent,
};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult, Verifier};

use super::npm::RegistryKeys;
use crate::error::{Error, Result};

const NPM_PROVENANCE: &str = "https://slsa.dev/provenance/";
const NPM_PUBLISH: &str = "https://github.com/npm/attestation/tree/main/specs/publish/";

/// The Sigstore trust root a site pins: Fulcio CAs, Rekor and CT log keys.
pub struct SigstoreRoot {
    verifier: Verifier,
}

impl std::fmt::Debug for SigstoreRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigstoreRoot")
    }
}

impl SigstoreRoot {
    /// Reads a `trusted_root.json` (the Sigstore TUF repository's target).
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, "Sigstore trusted root", &e))?;
        SigstoreRoot::from_json(&text, &path.display().to_string())
    }

    /// Parses a trusted root document; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::Usage(format!(
                "{origin}: {why}; pin a Sigstore trusted_root.json (from the sigstore TUF repository)"
            ))
        };
        let root = TrustedRoot::from_json(text).map_err(|e| bad(format!("not a trusted root ({e})")))?;
        let verifier = Verifier::new(&root).map_err(|e| bad(format!("unusable trusted root ({e})")))?;
        Ok(SigstoreRoot { verifier })
    }
}

/// The artifact an attestation must be about.
pub struct Subject<'a> {
    /// The statement's subject name: `pkg:npm/NAME@VERSION`, or a PyPI file name.
    pub name: String,
    pub algorithm: HashAlgorithm,
    pub digest: &'a [u8],
}

/// Who vouched, once the bundle verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A Fulcio certificate: the workload identity (SAN) and its OIDC issuer.
    Identity { san: String, issuer: String },
    /// A key the registry holds and the policy pins (npm publish attestations).
    RegistryKey(String),
}

/// One attestation that verified.
#[derive(Debug, Clone)]
pub struct Attested {
    /// What it attests: "SLSA provenance", "npm publish", "PEP 740 publish".
    pub what: String,
    pub signer: Signer,
}

impl std::fmt::Display for Attested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.signer {
            Signer::Identity { san, issuer } => write!(f, "{} by {san} (issuer {issuer})", self.what),
            Signer::RegistryKey(keyid) => write!(f, "{} by registry key {keyid}", self.what),
        }
    }
}

/// What an attestations document held.
#[derive(Debug, Default)]
pub struct Findings {
    pub verified: Vec<Attested>,
    /// Attestations that could not be judged here, and why (not failures).
    pub unchecked: Vec<String>,
}

/// npm's attestations document (`{"attestations": [{predicateType, bundle}]}`).
/// Provenance is checked against Fulcio; the registry's publish attestation
/// against its key, which must be pinned (`registry-keys`) to count.
pub fn verify_npm(
    document: &[u8],
    subject: &Subject,
    root: &SigstoreRoot,
    keys: Option<&RegistryKeys>,
) -> std::result::Result<Findings, String> {
    let doc: Value = serde_json::from_slice(document).map_err(|e| format!("unreadable attestations document ({e})"))?;
    let list = doc["attestations"].as_array().ok_or("the attestations document lists no attestations")?;
    let mut findings = Findings::default();
    for item in list {
        let predicate = item["predicateType"].as_str().unwrap_or_default();
        let bundle = parse_bundle(&item["bundle"])?;
        if predicate.starts_with(NPM_PROVENANCE) {
            let result = verify_keyless(root, &bundle, subject).map_err(|e| format!("SLSA provenance: {e}"))?;
            findings.verified.push(Attested { what: "SLSA provenance".into(), signer: identity(&result)? });
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
) -> std::result::Result<std::result::Result<Attested, String>, String> {
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
    check_subject_name(bundle, &subject.name)?;
    let policy = PublicKeyVerificationPolicy::new(DerPublicKey::from(der.to_vec()));
    let result =
        root.verifier.verify(digest(subject)?, bundle, &policy).map_err(|e| format!("npm publish attestation: {e}"))?;
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

/// A PEP 740 provenance object (`{"attestation_bundles": [{publisher,
/// attestations}]}`): each attestation is rebuilt as the Sigstore bundle it
/// abbreviates and verified against Fulcio.
pub fn verify_pep740(document: &[u8], subject: &Subject, root: &SigstoreRoot) -> std::result::Result<Findings, String> {
    let doc: Value = serde_json::from_slice(document).map_err(|e| format!("unreadable PEP 740 provenance ({e})"))?;
    let bundles = doc["attestation_bundles"].as_array().ok_or("the provenance object has no attestation_bundles")?;
    let mut findings = Findings::default();
    for attestation in bundles.iter().flat_map(|b| b["attestations"].as_array().into_iter().flatten()) {
        let bundle = parse_bundle(&pep740_bundle(attestation)?)?;
        let result = verify_keyless(root, &bundle, subject).map_err(|e| format!("PEP 740 attestation: {e}"))?;
        findings.verified.push(Attested { what: "PEP 740 publish".into(), signer: identity(&result)? });
    }
    if findings.verified.is_empty() {
        return Err("the provenance object holds no attestations".into());
    }
    Ok(findings)
}

/// PEP 740's attestation object is a Sigstore bundle with the envelope's
/// statement and signature lifted out and the certificate inlined.
fn pep740_bundle(attestation: &Value) -> std::result::Result<Value, String> {
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

fn parse_bundle(value: &Value) -> std::result::Result<Bundle, String> {
    Bundle::from_json(&value.to_string()).map_err(|e| format!("malformed Sigstore bundle ({e})"))
}

/// Any identity may sign cryptographically; which one the site accepts is
/// the policy's decision, made by the caller on the returned identity.
fn verify_keyless(
    root: &SigstoreRoot,
    bundle: &Bundle,
    subject: &Subject,
) -> std::result::Result<VerificationResult, String> {
    check_subject_name(bundle, &subject.name)?;
    root.verifier.verify(digest(subject)?, bundle, &VerificationPolicy::any_identity()).map_err(|e| e.to_string())
}

fn digest(subject: &Subject) -> std::result::Result<ArtifactDigest, String> {
    ArtifactDigest::new(subject.algorithm, subject.digest.to_vec()).map_err(|e| e.to_string())
}

fn identity(result: &VerificationResult) -> std::result::Result<Signer, String> {
    match (result.identity(), result.issuer()) {
        (Some(san), Some(issuer)) => Ok(Signer::Identity { san: san.as_str().to_owned(), issuer: issuer.to_owned() }),
        _ => Err("the signing certificate names no identity or issuer".into()),
    }
}

/// The crate binds the statement to the artifact by digest; the name binds
/// it to the package, so one package's attestation cannot vouch for another
/// that happens to share its bytes.
fn check_subject_name(bundle: &Bundle, expected: &str) -> std::result::Result<(), String> {
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Err("the bundle signs no in-toto statement".into());
    };
    let statement: Value = serde_json::from_slice(envelope.payload.as_bytes())
        .map_err(|e| format!("unreadable in-toto statement ({e})"))?;
    let names: Vec<&str> =
        statement["subject"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    if names.contains(&expected) {
        Ok(())
    } else {
        Err(format!("the statement is about {}, not {expected}", names.join(", ")))
    }
}

/// The purl an npm statement names: `pkg:npm/%40scope/name@version`.
#[must_use]
pub fn npm_purl(name: &str, version: &str) -> String {
    format!("pkg:npm/{}@{version}", name.replacen('@', "%40", 1))
}
