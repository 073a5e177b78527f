//! `import`: verify every volume into staging (over one run or several), then publish in one step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Rejection, Result};
use crate::mirror::{Mirror, PublishReport, StagedBundle, State};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::verify::set::{CheckOnly, VolumeSet, VolumesReport, identify, incomplete, verify_set, volume_bytes};
use crate::verify::{VerifiedManifest, VerifyReport};

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub verified: VerifyReport,
    /// `published`, or `already-imported` when this exact bundle was imported before (nothing changed).
    pub outcome: &'static str,
    pub mirror: PublishReport,
}

/// Verifies the single-file bundle `bundle` and publishes it; see [`import_volumes`].
pub fn import(
    bundle: &Path,
    policy: &Policy,
    mirror: &Path,
    now: u64,
    allow_gap: bool,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    import_volumes(&[bundle.to_path_buf()], policy, mirror, now, allow_gap, progress)
}

/// Verifies the volumes at `paths` (a bundle file, a split bundle's folder,
/// or any of its volumes, in any order) against `policy` into the bundle's
/// staging in the mirror at `mirror`, and publishes the bundle once every
/// data volume has been verified, in this run or earlier ones. On any error,
/// and while volumes are missing ([`Error::Incomplete`]), the published
/// mirror is unchanged; volumes verified are kept for the next run.
/// `allow_gap` accepts an incremental bundle that skips sequence numbers.
pub fn import_volumes(
    paths: &[PathBuf],
    policy: &Policy,
    mirror: &Path,
    now: u64,
    allow_gap: bool,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let set = identify(paths, policy, now)?;
    let subject = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let mut mirror = Mirror::open(mirror)?;
    let verified = &set.verified;
    let state = mirror.state()?;
    let sequence = check_sequence(&state, verified, allow_gap)?;
    check_earlier_blobs(&mirror, verified, &subject)?;
    // The look-alike screen and the merge need the mirror's entries, so they
    // run here rather than in verify; the inventory is the largest thing an
    // import reads, so only when one of them will look at it.
    let screen = verified.manifest.entries.iter().any(|e| policy.rules(&e.ecosystem).is_some());
    let inventory = if screen || sequence == Sequence::Next { mirror.inventory()? } else { Vec::new() };
    if screen {
        crate::verify::screen_new_names(&verified.manifest.entries, &inventory, policy)
            .map_err(|r| Error::rejected(&subject, r))?;
    }
    if sequence == Sequence::Next {
        // What publishing will refuse (another channel's entries changed, two
        // entries claiming one path) is refused before anything is staged.
        crate::mirror::check_listing(&inventory, &verified.manifest)?;
    }
    drop(inventory);
    if sequence == Sequence::AlreadyImported {
        // Nothing is staged again, but every volume given is read: the
        // report must not vouch for a copy nobody checked.
        let outcome = verify_set(&set, policy, now, &mut CheckOnly::new(), progress)?;
        mirror.discard_staging(&verified.digest)?;
        let current = mirror.current()?.map_or(0, |(n, _)| n);
        let unchanged = PublishReport {
            mirror: mirror.root().display().to_string(),
            generation: current,
            published: Vec::new(),
            state,
        };
        let volumes = VolumesReport::new(&verified.manifest, &outcome, &set.unreadable);
        let report = VerifyReport::new(&subject, verified, policy, volumes);
        return Ok(ImportReport { verified: report, outcome: "already-imported", mirror: unchanged });
    }
    let m = &verified.manifest;
    let record =
        StagedBundle { channel: m.channel.clone(), sequence: m.sequence, expires: m.expires, volumes: m.volumes };
    let mut staging = mirror.bundle_staging(&verified.digest, &record)?;
    let outcome =
        check_space(&mirror, &set, staging.done()).and_then(|()| verify_set(&set, policy, now, &mut staging, progress));
    let outcome = match outcome {
        Ok(outcome) if outcome.complete() => outcome,
        failed => {
            // A run that kept no volume leaves no staging behind.
            if staging.done().is_empty() {
                staging.discard()?;
            }
            return Err(match failed {
                Ok(outcome) => incomplete(
                    set,
                    outcome,
                    "the volumes verified are kept in the mirror for the next run; nothing was published",
                ),
                Err(e) => e,
            });
        }
    };
    let volumes = VolumesReport::new(m, &outcome, &set.unreadable);
    let report = VerifyReport::new(&subject, verified, policy, volumes);
    let npm_keys = policy.rules("npm").and_then(|r| r.pinned_document());
    let published = match mirror.publish(&staging, verified, now, npm_keys) {
        Ok(published) => published,
        // Refused by the mirror's contents: no later run would publish it,
        // so nothing of it is kept (publish took its objects out again).
        // Other failures (the disk) keep the verified volumes for a retry.
        Err(e @ Error::Rejected { .. }) => {
            staging.discard()?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    staging.discard()?;
    Ok(ImportReport { verified: report, outcome: "published", mirror: published })
}

/// An incremental bundle relies on blobs from earlier bundles: the mirror must hold them.
fn check_earlier_blobs(mirror: &Mirror, verified: &VerifiedManifest, subject: &str) -> Result<()> {
    let missing = mirror.missing_objects(&verified.manifest);
    if let Some(first) = missing.first() {
        return Err(Error::rejected(
            subject,
            Rejection::Policy(format!(
                "this incremental bundle relies on {} blob(s) from earlier bundles of channel {} that this mirror does not hold (first {}); import the earlier bundles first, or ask for a --full bundle",
                missing.len(),
                verified.manifest.channel,
                first.id.short()
            )),
        ));
    }
    Ok(())
}

/// Before reading anything: room for every blob this run will stage (the
/// data volumes given and not done yet, and those parity would rebuild),
/// plus the next generation's folders, index files and the copies of blobs
/// that more entries share than one inode may have links.
fn check_space(mirror: &Mirror, set: &VolumeSet, done: &BTreeSet<u32>) -> Result<()> {
    let m = &set.verified.manifest;
    let parity_given = (m.volumes..m.total_volumes()).any(|i| set.files.contains_key(&i));
    let to_stage: Vec<u32> =
        (0..m.volumes).filter(|i| !done.contains(i) && (set.files.contains_key(i) || parity_given)).collect();
    let blobs: u64 = to_stage.iter().map(|i| volume_bytes(m, *i)).sum();
    let generation = (1 << 20) + 4096 * m.entries.len() as u64 + crate::mirror::copies_bytes(&m.entries);
    let what = if m.is_single_volume() {
        "importing the bundle".to_owned()
    } else {
        format!("staging {} of {} data volume(s) and publishing", to_stage.len(), m.volumes)
    };
    mirror.check_space(blobs + generation, &what)
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
