//! The provenance and policy layers for one entry: the evidence it carries,
//! checked against the trust roots the policy pins, and the evidence the
//! policy requires. A proxy that stripped evidence is not an error by itself;
//! the policy decides, and the report always says what was there.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sigstore_verify::types::HashAlgorithm;

use super::EntryFindings;
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::policy::names::normalize;
use crate::policy::{Policy, Publisher, Rules};
use crate::provenance::npm::{SignatureError, rfc3339_secs};
use crate::provenance::sigstore::{self, Attested, Subject};

/// Judges `entry`'s evidence.
pub fn check(entry: &Entry, policy: &Policy) -> Result<EntryFindings, Rejection> {
    let id = match &entry.version {
        Some(v) => format!("{} {}@{v}", entry.ecosystem, entry.name),
        None => format!("{} {}", entry.ecosystem, entry.path),
    };
    let rules = policy.rules(&entry.ecosystem);
    if let Some(rules) = rules {
        rules.names.check(&entry.ecosystem, entry)?;
        // Against the protected names here; `import` screens against the mirror's too.
        rules.names.screen(&entry.ecosystem, entry, &BTreeSet::new())?;
    }
    let required: &[String] = rules.map_or(&[], |r| &r.require);
    check_present(entry, required, &id)?;
    let (provenance, attested): (Cow<'static, str>, _) = match entry.ecosystem.as_str() {
        "npm" => npm(entry, policy, &id).map(|(text, attested)| (text.into(), attested))?,
        "pypi" => pypi(entry, policy, &id).map(|(text, attested)| (text.into(), attested))?,
        "cargo" => ("index entry carried; crates have no upstream signatures (digest-only)".into(), Vec::new()),
        _ => ("none (plain file)".into(), Vec::new()),
    };
    let publisher = match rules {
        Some(rules) => check_publishers(entry, rules, &attested, &id)?,
        None => None,
    };
    let digest = if entry.digests.is_empty() {
        "none upstream (plain file: the BLAKE3 content address is its digest)".into()
    } else {
        format!("{} match", entry.digests.keys().cloned().collect::<Vec<_>>().join(", ")).into()
    };
    let mut checked = required.iter().map(|k| format!("requires {k}")).collect::<Vec<_>>();
    checked.extend(publisher);
    let policy = if checked.is_empty() {
        "ok (no evidence required)".into()
    } else {
        format!("ok ({})", checked.join("; ")).into()
    };
    Ok(EntryFindings { digest, provenance, policy })
}

/// Every evidence kind the policy requires must be carried; a proxy that
/// stripped it shows here, with where the exporter looked.
fn check_present(entry: &Entry, required: &[String], id: &str) -> Result<(), Rejection> {
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
    Ok(())
}

/// A package a publisher rule governs must have provenance that verified
/// and was signed by the identity the rule names.
fn check_publishers(
    entry: &Entry,
    rules: &Rules,
    attested: &[Attested],
    id: &str,
) -> Result<Option<String>, Rejection> {
    let governing: Vec<&Publisher> = rules.publishers_of(&entry.ecosystem, &entry.name).collect();
    if governing.is_empty() {
        return Ok(None);
    }
    if let Some(rule) = governing.iter().find(|rule| attested.iter().any(|a| rule.accepts(&a.signer))) {
        return Ok(Some(format!("built by {}", rule.describe())));
    }
    let expected = governing.iter().map(|r| r.describe()).collect::<Vec<_>>().join(" or ");
    let found = attested.iter().map(ToString::to_string).collect::<Vec<_>>();
    let found = if found.is_empty() { "no verified provenance".to_owned() } else { found.join("; ") };
    Err(Rejection::Policy(format!(
        "{id}: the policy expects provenance built by {expected}, but the bundle has {found}"
    )))
}

/// PEP 740 attestations, verified when the policy pins a Sigstore root.
fn pypi(entry: &Entry, policy: &Policy, id: &str) -> Result<(String, Vec<Attested>), Rejection> {
    let Some(evidence) = entry.evidence.iter().find(|e| e.kind == "pypi-provenance") else {
        return Ok((absent(entry, "pypi-provenance", "no PEP 740 provenance"), Vec::new()));
    };
    let Some(root) = policy.sigstore() else {
        return Ok((
            "PEP 740 provenance carried, not verified (the policy pins no Sigstore trusted root)".into(),
            Vec::new(),
        ));
    };
    let sha256 = entry.digests.get("sha256").map(|d| d.0.as_slice()).unwrap_or_default();
    let file_name = entry.path.as_str().rsplit('/').next().unwrap_or_default();
    let subject = Subject { name: file_name.to_owned(), algorithm: HashAlgorithm::Sha2256, digest: sha256 };
    let findings = sigstore::verify_pep740(&evidence.data, &subject, root)
        .map_err(|why| Rejection::BadSignature(format!("{id}: the PEP 740 provenance does not verify: {why}")))?;
    Ok((describe(&findings), findings.verified))
}

fn describe(findings: &sigstore::Findings) -> String {
    let mut parts: Vec<String> = findings.verified.iter().map(|a| format!("{a} verified")).collect();
    parts.extend(findings.unchecked.iter().cloned());
    parts.join("; ")
}

/// What the report says of evidence the entry does not carry: where the exporter looked, if it did.
fn absent(entry: &Entry, kind: &str, absent: &str) -> String {
    match entry.missing.iter().find(|m| m.kind == kind) {
        Some(m) => format!("{absent} (looked for at {})", m.looked),
        None => absent.to_owned(),
    }
}

/// npm: the registry signature, verified when the policy pins the registry's
/// keys, and the attestations, verified when it pins a Sigstore root.
fn npm(entry: &Entry, policy: &Policy, id: &str) -> Result<(String, Vec<Attested>), Rejection> {
    let (attestations, attested) = npm_attestations(entry, policy, id)?;
    let signature = npm_signature(entry, policy, id)?;
    Ok((format!("{signature}; {attestations}"), attested))
}

fn npm_signature(entry: &Entry, policy: &Policy, id: &str) -> Result<String, Rejection> {
    let Some(signatures) = entry.evidence.iter().find(|e| e.kind == "npm-signatures") else {
        return Ok(absent(entry, "npm-signatures", "no registry signature"));
    };
    let Some(keys) = policy.rules("npm").and_then(|r| r.npm_keys.as_ref()) else {
        return Ok("registry signature carried, not checked (the policy pins no npm registry-keys)".into());
    };
    let integrity = registry_integrity(entry)
        .ok_or_else(|| Rejection::Schema(format!("{id}: the carried npm metadata has no dist.integrity")))?;
    // The signature covers the registry's integrity string; it must name the artifact carried.
    let carried_sha512 = entry.digests.get("sha512").map(|d| d.0.clone());
    if carried_sha512.is_none() || carried_sha512 != crate::ecosystem::npm::sri_sha512(&integrity) {
        return Err(Rejection::DigestMismatch(format!("{id}: the signed integrity does not name the tarball carried")));
    }
    let version = entry.version.as_deref().unwrap_or_default();
    let published = entry.attributes.get("published").and_then(|t| rfc3339_secs(t));
    let required = policy.rules("npm").is_some_and(|r| r.requires("npm-signatures"));
    match keys.verify(&entry.name, version, &integrity, &signatures.data, published) {
        Ok(keyid) => Ok(format!("registry signature by {keyid} verified")),
        Err(SignatureError::Unpinned(why)) if !required => Ok(format!("registry signature not verified ({why})")),
        Err(why) => Err(Rejection::BadSignature(format!("{id}: the npm registry signature does not verify: {why}"))),
    }
}

fn npm_attestations(entry: &Entry, policy: &Policy, id: &str) -> Result<(String, Vec<Attested>), Rejection> {
    let Some(evidence) = entry.evidence.iter().find(|e| e.kind == "npm-attestations") else {
        return Ok((absent(entry, "npm-attestations", "no attestations"), Vec::new()));
    };
    let Some(root) = policy.sigstore() else {
        return Ok((
            "attestations carried, not verified (the policy pins no Sigstore trusted root)".into(),
            Vec::new(),
        ));
    };
    let version = entry.version.as_deref().unwrap_or_default();
    let sha512 = entry.digests.get("sha512").map(|d| d.0.as_slice()).unwrap_or_default();
    let subject =
        Subject { name: sigstore::npm_purl(&entry.name, version), algorithm: HashAlgorithm::Sha2512, digest: sha512 };
    let keys = policy.rules("npm").and_then(|r| r.npm_keys.as_ref());
    let findings = sigstore::verify_npm(&evidence.data, &subject, root, keys)
        .map_err(|why| Rejection::BadSignature(format!("{id}: the npm attestations do not verify: {why}")))?;
    let required = policy.rules("npm").is_some_and(|r| r.requires("npm-attestations"));
    if required && findings.verified.is_empty() {
        return Err(Rejection::Policy(format!(
            "{id}: the policy requires npm-attestations, and none could be verified here: {}",
            findings.unchecked.join("; ")
        )));
    }
    Ok((describe(&findings), findings.verified))
}

fn registry_integrity(entry: &Entry) -> Option<String> {
    let version = entry.evidence.iter().find(|e| e.kind == "npm-version")?;
    let object: Value = serde_json::from_slice(&version.data).ok()?;
    object.get("dist")?.get("integrity")?.as_str().map(str::to_owned)
}

/// The look-alike screen against the names a mirror already holds: a name
/// new to the mirror that is a typo away from one of them is held back.
pub fn screen_new_names<'h>(
    entries: &[Entry],
    held: impl IntoIterator<Item = &'h Entry>,
    policy: &Policy,
) -> Result<(), Rejection> {
    let mut known: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for held in held {
        let ecosystem = held.ecosystem.as_str();
        known.entry(ecosystem).or_default().insert(normalize(ecosystem, &held.name));
    }
    let none = BTreeSet::new();
    for entry in entries {
        let Some(rules) = policy.rules(&entry.ecosystem) else { continue };
        rules.names.screen(&entry.ecosystem, entry, known.get(entry.ecosystem.as_str()).unwrap_or(&none))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ecosystem: &str, name: &str) -> Entry {
        let mut entry = crate::manifest::tests::sample().entries.remove(0);
        entry.ecosystem = ecosystem.into();
        entry.name = name.into();
        entry
    }

    fn policy(rules: &str) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::sign::SecretKey::generate().unwrap();
        let path = dir.path().join("p.toml");
        let text = format!(
            "version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\npublic = \"{}\"\n{rules}",
            key.public().to_text()
        );
        std::fs::write(&path, text).unwrap();
        Policy::load(&path).unwrap()
    }

    #[test]
    fn a_new_name_one_typo_from_a_mirrored_name_is_held_back() {
        let held = vec![entry("pypi", "requests")];
        let screened = policy("[pypi.names]\n");
        let err = screen_new_names(&[entry("pypi", "reqeusts")], &held, &screened).unwrap_err();
        assert!(err.to_string().contains("looks like requests"), "{err}");
        // The name already in the mirror, another ecosystem's name, and a reviewed name pass.
        screen_new_names(&[entry("pypi", "requests")], &held, &screened).unwrap();
        screen_new_names(&[entry("npm", "reqeusts")], &held, &screened).unwrap();
        let reviewed = policy("[pypi.names]\nreviewed = [\"reqeusts\"]\n");
        screen_new_names(&[entry("pypi", "reqeusts")], &held, &reviewed).unwrap();
        // Without rules for the ecosystem, nothing is screened.
        screen_new_names(&[entry("pypi", "reqeusts")], &held, &policy("")).unwrap();
    }
}
