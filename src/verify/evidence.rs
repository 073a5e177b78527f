//! The provenance and policy layers for one entry: the evidence it carries,
//! checked against the trust roots the policy pins, and the evidence the
//! policy requires. A proxy that stripped evidence is not an error by itself;
//! the policy decides, and the report always says what was there.

use base64::Engine as _;
use serde_json::Value;

use super::EntryReport;
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::policy::Policy;
use crate::provenance::npm::{SignatureError, rfc3339_secs};

/// Judges `entry`'s evidence; `signers` is how many trusted keys signed the bundle.
pub fn check(entry: &Entry, policy: &Policy, signers: usize) -> Result<EntryReport, Rejection> {
    let id = match &entry.version {
        Some(v) => format!("{} {}@{v}", entry.ecosystem, entry.name),
        None => format!("{} {}", entry.ecosystem, entry.path),
    };
    let rules = policy.rules(&entry.ecosystem);
    let required: &[String] = rules.map_or(&[], |r| &r.require);
    for kind in required {
        if !entry.evidence.iter().any(|e| &e.kind == kind) {
            let looked = entry
                .missing
                .iter()
                .find(|m| &m.kind == kind)
                .map_or("not looked for by the exporter", |m| m.looked.as_str());
            return Err(Rejection::Policy(format!(
                "{id}: the policy requires {kind}, which the bundle does not carry (looked for at {looked}); a proxy may have stripped it: export through a path that keeps it, or change the policy"
            )));
        }
    }
    let provenance = match entry.ecosystem.as_str() {
        "npm" => npm(entry, policy, &id)?,
        "pypi" => carried(
            entry,
            "pypi-provenance",
            "PEP 740 provenance carried, not verified (Sigstore verification is not implemented yet)",
            "no PEP 740 provenance",
        ),
        "cargo" => "index entry carried; crates have no upstream signatures (digest-only)".to_owned(),
        _ => "none (plain file)".to_owned(),
    };
    let digest = if entry.digests.is_empty() {
        "none upstream (plain file: the BLAKE3 content address is its digest)".to_owned()
    } else {
        format!("{} match", entry.digests.keys().cloned().collect::<Vec<_>>().join(", "))
    };
    let policy_result = if required.is_empty() {
        "ok (no evidence required)".to_owned()
    } else {
        format!("ok (requires {})", required.join(", "))
    };
    Ok(EntryReport {
        ecosystem: entry.ecosystem.clone(),
        name: entry.name.clone(),
        version: entry.version.clone(),
        path: entry.path.to_string(),
        transfer: format!("ok ({signers} trusted signer(s))"),
        content: "ok (BLAKE3 and size)".into(),
        digest,
        provenance,
        policy: policy_result,
    })
}

fn carried(entry: &Entry, kind: &str, present: &str, absent: &str) -> String {
    if entry.evidence.iter().any(|e| e.kind == kind) {
        return present.to_owned();
    }
    match entry.missing.iter().find(|m| m.kind == kind) {
        Some(m) => format!("{absent} (looked for at {})", m.looked),
        None => absent.to_owned(),
    }
}

/// npm: the registry signature, verified when the policy pins the registry's keys.
fn npm(entry: &Entry, policy: &Policy, id: &str) -> Result<String, Rejection> {
    let attestations = carried(
        entry,
        "npm-attestations",
        "attestations carried, not verified (Sigstore verification is not implemented yet)",
        "no attestations",
    );
    let Some(signatures) = entry.evidence.iter().find(|e| e.kind == "npm-signatures") else {
        return Ok(format!("{}; {attestations}", carried(entry, "npm-signatures", "", "no registry signature")));
    };
    let Some(keys) = policy.rules("npm").and_then(|r| r.npm_keys.as_ref()) else {
        return Ok(format!(
            "registry signature carried, not checked (the policy pins no npm registry-keys); {attestations}"
        ));
    };
    let integrity = registry_integrity(entry)
        .ok_or_else(|| Rejection::Schema(format!("{id}: the carried npm metadata has no dist.integrity")))?;
    // The signature covers the registry's integrity string; it must name the artifact carried.
    let carried_sha512 = entry.digests.get("sha512").map(|d| d.0.clone());
    let signed_sha512 = integrity
        .split_whitespace()
        .find_map(|p| p.strip_prefix("sha512-"))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    if carried_sha512.is_none() || carried_sha512 != signed_sha512 {
        return Err(Rejection::DigestMismatch(format!("{id}: the signed integrity does not name the tarball carried")));
    }
    let version = entry.version.as_deref().unwrap_or_default();
    let published = entry.attributes.get("published").and_then(|t| rfc3339_secs(t));
    let required = policy.rules("npm").is_some_and(|r| r.require.iter().any(|k| k == "npm-signatures"));
    match keys.verify(&entry.name, version, &integrity, &signatures.data, published) {
        Ok(keyid) => Ok(format!("registry signature by {keyid} verified; {attestations}")),
        Err(SignatureError::Unpinned(why)) if !required => {
            Ok(format!("registry signature not verified ({why}); {attestations}"))
        }
        Err(why) => Err(Rejection::BadSignature(format!("{id}: the npm registry signature does not verify: {why}"))),
    }
}

fn registry_integrity(entry: &Entry) -> Option<String> {
    let version = entry.evidence.iter().find(|e| e.kind == "npm-version")?;
    let object: Value = serde_json::from_slice(&version.data).ok()?;
    object.get("dist")?.get("integrity")?.as_str().map(str::to_owned)
}
