//! Debian's evidence: the suite's `InRelease` (on its own entry and on each
//! index file's) and each `.deb`'s Packages stanza, and their verification
//! against the keyring the import policy pins: the signature by a key valid
//! when it signed, the Release's dates against the import time and the
//! policy's grace, the index file's SHA256 and size as the Release lists them.

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use super::control::{self, Listed};
use super::openpgp::verify_cleartext;
use super::policy::Roots;
use super::{Kind, evidence_of, kind};
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::manifest::Entry;
use crate::manifest::evidence::{EvidenceKind, KIB, MIB};

/// The suite's `InRelease`, byte for byte.
pub const INRELEASE: &str = "debian-inrelease";
/// A `.deb`'s paragraph of its Packages index, byte for byte.
pub const STANZA: &str = "debian-stanza";

/// Debian's evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 2] = [
    // bookworm's InRelease (2026) is 148 KiB: ten architectures, four
    // components, Contents and diffs listed.
    EvidenceKind { name: INRELEASE, max_bytes: MIB, needed: true },
    // A Packages paragraph is one to a few KiB (long Depends lists included).
    EvidenceKind { name: STANZA, max_bytes: 64 * KIB, needed: true },
];

/// How far in the future a Release's `Date` may be (clocks differ).
const MAX_FUTURE: u64 = 3600;

/// Checks a Debian entry's evidence against the policy's pinned keyring.
pub fn verify(entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
    let Ok(what) = kind(entry.path.as_str()) else {
        return Err(Rejection::Schema(format!("{id}: not a Debian path")));
    };
    let (suite, rel) = match what {
        Kind::Release { suite, .. } => (suite, None),
        Kind::Index { suite, rel, .. } => (suite, Some(rel)),
        Kind::Deb { .. } => {
            return Ok(Provenance::verified(
                "stanza matches the .deb (name, version, architecture, SHA256, size); listed in a signed Packages.xz (checked on import)",
                Vec::new(),
            ));
        }
    };
    let Some(roots) = trust.rules.and_then(|r| r.roots::<Roots>()) else {
        return Ok(Provenance::not_checked("Debian signature not checked: the policy pins no [debian] keyring"));
    };
    let inrelease = evidence_of(entry, INRELEASE).unwrap_or_default();
    let verified = verify_cleartext(inrelease, &roots.keyring)
        .map_err(|why| Rejection::BadSignature(format!("{id}: the InRelease of {suite} {why}")))?;
    let release = control::paragraph(verified.text.trim_start_matches('\n'))
        .map_err(|e| Rejection::Schema(format!("{id}: the signed InRelease of {suite}: {e}")))?;
    check_release(&release, suite, crate::time::now(), roots.grace, id)?;
    if let Some(rel) = rel {
        let listed =
            control::sha256_list(&release).map_err(|e| Rejection::Schema(format!("{id}: the InRelease {e}")))?;
        check_listed(&listed, rel, entry, id)?;
    }
    let by: Vec<String> = verified.signers.iter().map(|s| format!("{} ({})", s.user, s.fingerprint)).collect();
    Ok(Provenance::verified(format!("InRelease of {suite} signed by {}", by.join(", ")), Vec::new()))
}

/// The signed Release names `suite` (as its Codename or Suite), is dated
/// no later than `now` (within [`MAX_FUTURE`]), and its `Valid-Until`, if
/// any, is not more than `grace` seconds before `now`.
pub fn check_release(
    release: &control::Paragraph,
    suite: &str,
    now: u64,
    grace: u64,
    id: &str,
) -> Result<(), Rejection> {
    if release.get("Codename") != Some(suite) && release.get("Suite") != Some(suite) {
        return Err(Rejection::Policy(format!(
            "{id}: the signed InRelease is for {:?}, not {suite}; the archive served another suite's Release",
            release.get("Codename").unwrap_or("no codename")
        )));
    }
    let date = |field: &str| -> Result<Option<u64>, Rejection> {
        release
            .get(field)
            .map(|d| {
                control::parse_date(d).map_err(|e| Rejection::Schema(format!("{id}: the InRelease's {field}: {e}")))
            })
            .transpose()
    };
    if let Some(made) = date("Date")?
        && made > now + MAX_FUTURE
    {
        return Err(Rejection::Policy(format!(
            "{id}: the InRelease of {suite} is dated {}, in the future; check this machine's clock",
            crate::time::rfc3339(made)
        )));
    }
    if let Some(until) = date("Valid-Until")?
        && now > until.saturating_add(grace)
    {
        return Err(Rejection::Expired(format!(
            "{id}: the InRelease of {suite} was valid until {}, more than the policy's valid-until-grace ({}) ago; export the suite again",
            crate::time::rfc3339(until),
            humantime::format_duration(std::time::Duration::from_secs(grace))
        )));
    }
    Ok(())
}

fn check_listed(listed: &[Listed], rel: &str, entry: &Entry, id: &str) -> Result<(), Rejection> {
    let line = listed
        .iter()
        .find(|l| l.path == rel)
        .ok_or_else(|| Rejection::Policy(format!("{id}: the signed InRelease does not list {rel}")))?;
    let sha256 = entry.digests.get("sha256").map(|d| d.0.as_slice()).unwrap_or_default();
    if line.sha256[..] != *sha256 || line.size != entry.size {
        return Err(Rejection::DigestMismatch(format!(
            "{id}: {rel} is not the file the signed InRelease lists (SHA256 {}, {} bytes)",
            hex::encode(line.sha256),
            line.size
        )));
    }
    Ok(())
}
