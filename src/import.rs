//! `import`: verify everything into staging, then publish in one step.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Rejection, Result};
use crate::mirror::{Mirror, PublishReport, State};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::verify::{VerifiedManifest, VerifyReport, verify_bundle};

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub verified: VerifyReport,
    /// `published`, or `already-imported` when this exact bundle was imported before (nothing changed).
    pub outcome: &'static str,
    pub mirror: PublishReport,
}

/// Verifies `bundle` against `policy` and publishes it into the mirror at
/// `mirror`. On any error the published mirror is unchanged.
/// `allow_gap` accepts an incremental bundle that skips sequence numbers.
pub fn import(
    bundle: &Path,
    policy: &Policy,
    mirror: &Path,
    now: u64,
    allow_gap: bool,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let mut mirror = Mirror::open(mirror)?;
    let mut staging = mirror.staging()?;
    let (verified, report) = verify_bundle(bundle, policy, now, &mut staging, progress)?;
    let state = mirror.state()?;
    let sequence = check_sequence(&state, &verified, allow_gap)?;
    let missing = mirror.missing_objects(&verified.manifest);
    if let Some(first) = missing.first() {
        return Err(Error::rejected(
            bundle.display(),
            Rejection::Policy(format!(
                "this incremental bundle relies on {} blob(s) from earlier bundles of channel {} that this mirror does not hold (first {}); import the earlier bundles first, or ask for a --full bundle",
                missing.len(),
                verified.manifest.channel,
                first.id.short()
            )),
        ));
    }
    if sequence == Sequence::AlreadyImported {
        let current = mirror.current()?.map_or(0, |(n, _)| n);
        let unchanged = PublishReport {
            mirror: mirror.root().display().to_string(),
            generation: current,
            published: Vec::new(),
            state,
        };
        return Ok(ImportReport { verified: report, outcome: "already-imported", mirror: unchanged });
    }
    crate::verify::screen_new_names(&verified.manifest.entries, &mirror.inventory()?, policy)
        .map_err(|r| Error::rejected(bundle.display(), r))?;
    let npm_keys = policy.rules("npm").and_then(|r| r.npm_keys_document.as_deref());
    let published = mirror.publish(&staging, &verified, now, npm_keys)?;
    Ok(ImportReport { verified: report, outcome: "published", mirror: published })
}

#[derive(Debug, PartialEq, Eq)]
enum Sequence {
    Next,
    AlreadyImported,
}

/// Rollback, replay and fork protection per channel: a bundle must be newer
/// than the channel's last import and, when it is the very next one, chain
/// to it; the exact bundle imported last is a no-op so sync scripts can retry.
fn check_sequence(state: &State, verified: &VerifiedManifest, allow_gap: bool) -> Result<Sequence> {
    let m = &verified.manifest;
    let Some(last) = state.imports.iter().filter(|r| r.channel == m.channel).max_by_key(|r| r.sequence) else {
        return Ok(Sequence::Next);
    };
    let digest = verified.digest.to_hex();
    let reject = |why: String| Err(Error::rejected(format!("channel {}", m.channel), Rejection::Policy(why)));
    if m.sequence < last.sequence {
        if state.imports.iter().any(|r| r.channel == m.channel && r.manifest_digest == digest) {
            return reject(format!(
                "bundle {} was imported before and the channel has moved on to {}: replaying an old bundle would roll the mirror back",
                m.sequence, last.sequence
            ));
        }
        return reject(format!(
            "rollback: sequence {} is older than the last imported, {}; import the newest bundle of the channel",
            m.sequence, last.sequence
        ));
    }
    if m.sequence == last.sequence {
        if last.manifest_digest == digest {
            return Ok(Sequence::AlreadyImported);
        }
        return reject(format!(
            "fork: sequence {} was already imported with manifest {}, this bundle has {}; two different bundles claim the same place: find out which is genuine",
            m.sequence,
            &last.manifest_digest[..16],
            &digest[..16]
        ));
    }
    if m.sequence == last.sequence + 1
        && m.previous.map(|p| p.to_hex()).as_deref() != Some(last.manifest_digest.as_str())
    {
        return reject(format!(
            "fork: bundle {} does not follow the imported bundle {} (its previous manifest differs); export with the same --state as the bundles before it",
            m.sequence, last.sequence
        ));
    }
    if m.sequence > last.sequence + 1 && !m.is_full() && !allow_gap {
        return reject(format!(
            "gap: bundle {} follows {}, and bundles in between were not imported; import them first, ask for a --full bundle, or pass --allow-gap",
            m.sequence, last.sequence
        ));
    }
    Ok(Sequence::Next)
}
