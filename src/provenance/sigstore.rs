//! Sigstore bundles, verified offline, for any ecosystem's attestations
//! (each ecosystem finds the bundles in what its registry serves).
//!
//! The cryptography is the `sigstore-verify` crate's: the certificate chain
//! to the Fulcio roots, the SCT, the transparency-log inclusion proof and
//! signed checkpoint or the signed entry timestamp against the Rekor keys,
//! and the DSSE signature over the in-toto statement. All of it is checked
//! against the `trusted_root.json` the policy pins, never one from the bundle.
//! This module is the glue: it binds each statement's subject to the
//! artifact carried (by digest, and by name, which the crate does not
//! check), and returns who signed.

use serde_json::Value;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{ArtifactDigest, Bundle, DerPublicKey, HashAlgorithm, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult, Verifier};

use crate::error::{Error, Result};

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
    /// The statement's subject name: a purl, or a file name, as the ecosystem's statements name it.
    pub name: String,
    pub algorithm: HashAlgorithm,
    pub digest: &'a [u8],
}

/// Who vouched, once the bundle verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A Fulcio certificate: the workload identity (SAN) and its OIDC issuer.
    Identity { san: String, issuer: String },
    /// A key the registry holds and the policy pins (a managed-key bundle).
    RegistryKey(String),
}

/// One attestation that verified.
#[derive(Debug, Clone)]
pub struct Attested {
    /// What it attests: "SLSA provenance", "PEP 740 publish", ...
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

/// A Sigstore bundle in its JSON form.
pub fn parse_bundle(value: &Value) -> std::result::Result<Bundle, String> {
    Bundle::from_json(&value.to_string()).map_err(|e| format!("malformed Sigstore bundle ({e})"))
}

/// Any identity may sign cryptographically; which one the site accepts is
/// the policy's decision, made by the caller on the returned identity.
pub fn verify_keyless(
    root: &SigstoreRoot,
    bundle: &Bundle,
    subject: &Subject,
) -> std::result::Result<VerificationResult, String> {
    check_subject_name(bundle, &subject.name)?;
    root.verifier.verify(digest(subject)?, bundle, &VerificationPolicy::any_identity()).map_err(|e| e.to_string())
}

/// A keyless bundle over `digest` whose statement's subject names are not
/// the artifact's (a model-signing statement names the folder its signer
/// chose): the caller binds the statement to what is carried by its
/// content. Returns who signed, for the caller's policy to judge.
pub fn verify_keyless_over(
    root: &SigstoreRoot,
    bundle: &Bundle,
    digest: ArtifactDigest,
) -> std::result::Result<Signer, String> {
    let result =
        root.verifier.verify(digest, bundle, &VerificationPolicy::any_identity()).map_err(|e| e.to_string())?;
    identity(&result)
}

/// A bundle signed by a key rather than a certificate (`der`: its
/// `SubjectPublicKeyInfo`, which the caller pins), over `digest`. The
/// statement's subject name is the caller's to check ([`check_subject_name`]).
pub fn verify_with_key(
    root: &SigstoreRoot,
    digest: ArtifactDigest,
    bundle: &Bundle,
    der: &[u8],
) -> std::result::Result<VerificationResult, String> {
    let policy = PublicKeyVerificationPolicy::new(DerPublicKey::from(der.to_vec()));
    root.verifier.verify(digest, bundle, &policy).map_err(|e| e.to_string())
}

/// The subject's digest as the verifier takes it.
pub fn digest(subject: &Subject) -> std::result::Result<ArtifactDigest, String> {
    ArtifactDigest::new(subject.algorithm, subject.digest.to_vec()).map_err(|e| e.to_string())
}

/// The certificate's identity, once a keyless bundle verified.
pub fn identity(result: &VerificationResult) -> std::result::Result<Signer, String> {
    match (result.identity(), result.issuer()) {
        (Some(san), Some(issuer)) => Ok(Signer::Identity { san: san.as_str().to_owned(), issuer: issuer.to_owned() }),
        _ => Err("the signing certificate names no identity or issuer".into()),
    }
}

/// The crate binds the statement to the artifact by digest; the name binds
/// it to the package, so one package's attestation cannot vouch for another
/// that happens to share its bytes.
pub fn check_subject_name(bundle: &Bundle, expected: &str) -> std::result::Result<(), String> {
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
