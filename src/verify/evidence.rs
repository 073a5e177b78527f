//! The provenance and policy layers for one entry: the evidence it carries,
//! checked against the trust roots the policy pins, and the evidence the
//! policy requires. A proxy that stripped evidence is not an error by itself;
//! the policy decides, and the report always says what was there.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::EntryFindings;
use crate::ecosystem::{self, Outcome, Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::policy::names::HeldNames;
use crate::policy::{Policy, Publisher, Rules};
use crate::provenance::sigstore::Attested;

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
        rules.names.screen(&entry.ecosystem, entry, &HeldNames::default())?;
    }
    let owner = ecosystem::by_name(&entry.ecosystem);
    let judged = owner.is_none_or(|owner| owner.judged_alone(entry));
    let required: &[String] = if judged { rules.map_or(&[], |r| &r.require) } else { &[] };
    check_present(entry, owner, required, &id)?;
    let trust = Trust { sigstore: policy.sigstore(), rules };
    let Provenance { text: provenance, outcome: provenance_outcome, attested } =
        match ecosystem::by_name(&entry.ecosystem) {
            Some(owner) => owner.verify_evidence(entry, &trust, &id)?,
            None => Provenance::absent("none (plain file)"),
        };
    let publisher = match rules {
        Some(rules) => check_publishers(entry, rules, &attested, &id)?,
        None => None,
    };
    let (digest, digest_outcome) = digest_layer(entry);
    let mut checked = required.iter().map(|k| format!("requires {k}")).collect::<Vec<_>>();
    checked.extend(publisher);
    let (policy, policy_outcome) = if checked.is_empty() {
        ("ok (no evidence required)".into(), Outcome::NotRequired)
    } else {
        (format!("ok ({})", checked.join("; ")).into(), Outcome::Ok)
    };
    Ok(EntryFindings { digest, provenance, policy, outcomes: [digest_outcome, provenance_outcome, policy_outcome] })
}

/// The digest layer: the upstream digests, each recomputed as the blob streamed.
fn digest_layer(entry: &Entry) -> (Cow<'static, str>, Outcome) {
    if entry.digests.is_empty() {
        ("none upstream (plain file: the BLAKE3 content address is its digest)".into(), Outcome::Absent)
    } else {
        (format!("{} match", entry.digests.keys().cloned().collect::<Vec<_>>().join(", ")).into(), Outcome::Ok)
    }
}

impl EntryFindings {
    /// The findings of an entry refused by its evidence or by the policy:
    /// the layer that refused it says why; the one after it was not judged.
    #[must_use]
    pub fn refused(entry: &Entry, why: &Rejection) -> Self {
        let (digest, digest_outcome) = digest_layer(entry);
        let by_policy = matches!(why, Rejection::Policy(_));
        let why: Cow<'static, str> = why.to_string().into();
        let (provenance, policy) = if by_policy {
            (
                (Cow::Borrowed("not reported (the policy refused the entry)"), Outcome::NotChecked),
                (why, Outcome::Failed),
            )
        } else {
            ((why, Outcome::Failed), (Cow::Borrowed("not judged (its provenance failed)"), Outcome::NotChecked))
        };
        EntryFindings {
            digest,
            provenance: provenance.0,
            policy: policy.0,
            outcomes: [digest_outcome, provenance.1, policy.1],
        }
    }
}

/// Every evidence kind the policy requires must be carried; a proxy that
/// stripped it shows here, with where the exporter looked.
fn check_present(
    entry: &Entry,
    owner: Option<&dyn ecosystem::Ecosystem>,
    required: &[String],
    id: &str,
) -> Result<(), Rejection> {
    for kind in required {
        if !owner.map_or_else(|| entry.carries(kind), |owner| owner.carries(entry, kind)) {
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
    let governing: Vec<&Publisher> = rules.publishers_of(&entry.name).collect();
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

/// The form the policy's name rules compare `name` in, as its ecosystem folds it.
fn normalize(ecosystem: &str, name: &str) -> String {
    ecosystem::by_name(ecosystem).map_or_else(|| name.to_lowercase(), |owner| owner.normalize_name(name))
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
    let mut prepared: BTreeMap<&str, HeldNames> = BTreeMap::new();
    for (ecosystem, names) in known {
        let Some(rules) = policy.rules(ecosystem) else { continue };
        let of_ecosystem = entries.iter().filter(|e| e.ecosystem == ecosystem);
        prepared.insert(ecosystem, rules.names.held_names(ecosystem, names, of_ecosystem)?);
    }
    let none = HeldNames::default();
    for entry in entries {
        let Some(rules) = policy.rules(&entry.ecosystem) else { continue };
        rules.names.screen(&entry.ecosystem, entry, prepared.get(entry.ecosystem.as_str()).unwrap_or(&none))?;
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
        Policy::load(&path, crate::ecosystem::POLICY_TABLES).unwrap()
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

    #[test]
    fn debian_names_are_screened_against_protect_only_unless_asked() {
        let held = vec![entry("debian", "libfoo1")];
        let new = [entry("debian", "libfoo2")];
        screen_new_names(&new, &held, &policy("[debian.names]\n")).unwrap();
        let protected = policy("[debian.names]\nprotect = [\"libfoo3\"]\n");
        let err = screen_new_names(&new, &held, &protected).unwrap_err();
        assert!(err.to_string().contains("looks like libfoo3"), "{err}");
        let asked = policy("[debian.names]\nlook-alikes = true\n");
        let err = screen_new_names(&new, &held, &asked).unwrap_err();
        assert!(err.to_string().contains("looks like libfoo1"), "{err}");
        // And PyPI can turn it off.
        let off = policy("[pypi.names]\nlook-alikes = false\n");
        screen_new_names(&[entry("pypi", "reqeusts")], &[entry("pypi", "requests")], &off).unwrap();
    }
}
