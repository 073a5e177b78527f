//! Rollback, replay and fork protection: where a bundle stands in its channel's sequence.

use crate::error::{Error, Rejection, Result};
use crate::mirror::State;
use crate::verify::VerifiedManifest;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sequence {
    Next,
    AlreadyImported,
}

/// Rollback, replay and fork protection per channel: a bundle must be newer
/// than the channel's last import and, when it is the very next one, chain
/// to it; the exact bundle imported last is a no-op so sync scripts can retry.
pub(super) fn check_sequence(state: &State, verified: &VerifiedManifest, allow_gap: bool) -> Result<Sequence> {
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
