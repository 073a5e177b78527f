//! `import`: verify every volume into staging (over one run or several), then publish in one step.
//!
//! The import is where verification, the ecosystems and the mirror meet:
//! it hands verification sinks over the mirror's staging ([`sinks`]), checks
//! a bundle's listing against the mirror's inventory ([`listing`]) and writes
//! each ecosystem's layout when the mirror publishes ([`layouts`]). The
//! mirror below it knows none of them.

mod layouts;
mod listing;
mod sequence;
mod sinks;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Rejection, Result};
use crate::mirror::{
    Against, CarriedSegments, Changes, ImportRecord, KeptSegments, Mirror, Publication, PublishReport, StagedBundle,
    Store,
};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::verify::set::{CheckOnly, VolumeSet, VolumesReport, identify, incomplete, verify_set, volume_bytes};
use crate::verify::{VerifiedManifest, VerifyReport};
use layouts::Rendering;
use sequence::{Sequence, check_sequence};

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub verified: VerifyReport,
    /// `published`; `already-imported` when this exact bundle was imported
    /// before (nothing changed); `dry-run` when nothing was to be written.
    pub outcome: &'static str,
    pub mirror: PublishReport,
    /// What the import changed (or, for a dry run, would change).
    pub changes: Changes,
    /// The audit page this import left in the mirror (`.airlock/reports/<manifest digest>.html`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_page: Option<String>,
    /// Why the audit page could not be written. The import itself is
    /// published by then: this is a warning, not a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_error: Option<String>,
}

impl crate::verify::ListsEntries for ImportReport {
    fn entries(&self) -> &crate::verify::PackageReports {
        &self.verified.packages
    }
    fn unlisted(&self) -> Self {
        ImportReport { verified: self.verified.unlisted(), ..self.clone() }
    }
}

/// What an import may be told besides the bundle and the policy.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Accept an incremental bundle that skips sequence numbers of its channel.
    pub allow_gap: bool,
    /// Render the documents clients read for this address (recorded in the
    /// mirror; later imports keep it until another is given).
    pub base_url: Option<String>,
    /// Verify everything and say what would change, writing nothing.
    pub dry_run: bool,
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
    let options = ImportOptions { allow_gap, base_url: None, dry_run: false };
    import_volumes(&[bundle.to_path_buf()], policy, mirror, now, &options, progress)
}

/// Verifies the volumes at `paths` (a bundle file, a split bundle's folder,
/// or any of its volumes, in any order) against `policy` into the bundle's
/// staging in the mirror at `mirror`, and publishes the bundle once every
/// data volume has been verified, in this run or earlier ones. On any error,
/// and while volumes are missing ([`Error::Incomplete`]), the published
/// mirror is unchanged; volumes verified are kept for the next run.
pub fn import_volumes(
    paths: &[PathBuf],
    policy: &Policy,
    mirror: &Path,
    now: u64,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    // An incremental bundle's manifest names segments the mirror kept from the channel's earlier bundles.
    let policy = &policy.clone().with_held_segments(crate::mirror::held_segments(mirror)?);
    let set = identify(paths, policy, now)?;
    let subject = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let mut mirror = open_store(mirror)?;
    import_set(set, &subject, policy, &mut *mirror, now, options, progress)
}

/// The mirror `--mirror` names, opened and locked: a folder, or
/// S3-compatible object storage (`s3://BUCKET/PREFIX`).
pub fn open_store(mirror: &Path) -> Result<Box<dyn Store>> {
    if crate::mirror::is_bucket(mirror) {
        let url = mirror.to_str().expect("an s3:// address is UTF-8");
        return Ok(Box::new(crate::mirror::Bucket::open(url)?));
    }
    Ok(Box::new(Mirror::open(mirror)?))
}

/// Renders the documents of the mirror at `root` again for `base_url`, as
/// a new generation holding the same entries (nothing is imported): how a
/// mirror moves to another address without re-importing its bundles.
pub fn render(root: &Path, base_url: &str) -> Result<PublishReport> {
    if !crate::mirror::is_bucket(root) && crate::mirror::View::open(root)?.current()?.is_none() {
        return Err(Error::Usage(format!(
            "{}: holds no import yet; give --base-url with the first bundle instead",
            root.display()
        )));
    }
    let mut mirror = open_store(root)?;
    if mirror.generation()? == 0 {
        return Err(Error::Usage(format!(
            "{}: holds no import yet; give --base-url with the first bundle instead",
            mirror.location()
        )));
    }
    // Merged under a channel no bundle can name, nothing comes or goes.
    let nothing = crate::manifest::Manifest::empty(String::new());
    let record = StagedBundle { channel: String::new(), sequence: 0, expires: 0, volumes: 0 };
    let staging = mirror.bundle_staging(&crate::id::ContentId::of(b"airlock render"), &record)?;
    let rendering = Rendering { base_url: Some(base_url), rerender: true };
    let mut layouts = layouts::writer(None, rendering);
    let rules = listing::Rules::new();
    let publication = Publication {
        manifest: &nothing,
        record: None,
        base_url: Some(base_url.to_owned()),
        rules: &rules.entry_rules(),
        layouts: &mut layouts,
        aliases: &layouts::static_aliases,
    };
    let published = mirror.publish(&staging, publication);
    staging.discard()?;
    published
}

/// [`import_volumes`] of the identified `set` into the opened `mirror`.
fn import_set(
    set: VolumeSet,
    subject: &str,
    policy: &Policy,
    mirror: &mut dyn Store,
    now: u64,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let verified = &set.verified;
    let state = mirror.state()?;
    let sequence = check_sequence(&state, verified, options.allow_gap)?;
    let base_url = options.base_url.clone().or_else(|| state.base_url.clone());
    let rendering = Rendering { base_url: base_url.as_deref(), rerender: base_url != state.base_url };
    check_earlier_blobs(mirror, verified, subject)?;
    // The look-alike screen and the merge need the mirror's entries, so they
    // run here rather than in verify; the inventory is the largest thing an
    // import reads, so only when one of them will look at it.
    let screen = verified.manifest.entries.iter().any(|e| policy.rules(&e.ecosystem).is_some());
    let m = &verified.manifest;
    // Decoded for the checks against the mirror, and let go before the
    // blobs stream (the manifest keeps its entries as their segments' bytes).
    let entries = m.entries.decoded();
    let inventory = if screen || sequence == Sequence::Next {
        mirror.inventory_against(&entries, &m.channel)?
    } else {
        Against::default()
    };
    if screen {
        // What the bundle lists again unchanged is the mirror's too.
        let relisted = inventory.relisted().map(|at| &entries[at]);
        let held = inventory.stored.iter().map(|s| &s.entry).chain(relisted);
        crate::verify::screen_new_names(&entries, held, policy).map_err(|r| Error::rejected(subject, r))?;
    }
    let changes = if sequence == Sequence::Next {
        // What publishing will refuse (another channel's entries changed, two
        // entries claiming one path) is refused before anything is staged.
        listing::check_listing(&inventory, &entries, m)?
    } else {
        Changes::default()
    };
    drop(inventory);
    drop(entries);
    if options.dry_run && sequence == Sequence::Next {
        return dry_run(&set, subject, policy, mirror, now, changes, progress);
    }
    if sequence == Sequence::AlreadyImported {
        return already_imported(&set, subject, policy, mirror, now, state, progress);
    }
    let record =
        StagedBundle { channel: m.channel.clone(), sequence: m.sequence, expires: m.expires, volumes: m.volumes };
    let mut staging = mirror.bundle_staging(&verified.digest, &record)?;
    let keep_copies = keeps_copies(&set, staging.done());
    let mut refused = false;
    let outcome = check_space(mirror, &set, staging.done()).and_then(|()| {
        let mut sink = sinks::Staged { staging: &mut staging, keep_copies, refused: false };
        let outcome = verify_set(&set, policy, now, &mut sink, progress);
        refused = sink.refused;
        outcome
    });
    let outcome = match outcome {
        Ok(outcome) if outcome.complete() => outcome,
        failed => {
            // A run that kept no volume leaves no staging behind, nor one refused as a whole.
            if staging.done().is_empty() || refused {
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
    match assemble_chunked(&mut staging, m, subject, progress) {
        Ok(()) => {}
        // The pieces each matched the signed manifest and the whole does not:
        // no later run would do better.
        Err(e @ Error::Rejected { .. }) => {
            staging.discard()?;
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    let volumes = VolumesReport::new(m, &outcome, &set.unreadable);
    let report = VerifyReport::new(subject, verified, policy, volumes);
    let record = ImportRecord {
        manifest_digest: verified.digest.to_hex(),
        channel: m.channel.clone(),
        sequence: m.sequence,
        imported: crate::time::rfc3339(now),
        entries: m.entries.len(),
        signers: verified.trusted_signers.iter().map(crate::id::KeyId::to_hex).collect(),
    };
    let rules = listing::Rules::new();
    let mut layouts = layouts::writer(Some(policy), rendering);
    let publication = Publication {
        manifest: m,
        record: Some(record),
        base_url: base_url.clone(),
        rules: &rules.entry_rules(),
        layouts: &mut layouts,
        aliases: &layouts::static_aliases,
    };
    let published = publish_with_segments(mirror, staging, publication, &set)?;
    let import = ImportReport {
        verified: report,
        outcome: "published",
        mirror: published,
        changes,
        audit_page: None,
        audit_error: None,
    };
    Ok(with_audit_page(mirror, import, &crate::time::rfc3339(now)))
}

/// Publishes the staged bundle, its manifest's segments kept first (and
/// taken out again when it is not published); its staging is removed once
/// published.
fn publish_with_segments(
    mirror: &mut dyn Store,
    staging: crate::mirror::Staging,
    publication: Publication<'_>,
    set: &VolumeSet,
) -> Result<PublishReport> {
    let kept_segments = keep_segments(mirror, set)?;
    match mirror.publish(&staging, publication) {
        Ok(published) => {
            staging.discard()?;
            Ok(published)
        }
        Err(e) => {
            mirror.forget_segments(&kept_segments)?;
            // Refused by the mirror's contents: no later run would publish it,
            // so nothing of it is kept (publish took its objects out again).
            // Other failures (the disk) keep the verified volumes for a retry.
            if matches!(e, Error::Rejected { .. }) {
                staging.discard()?;
            }
            Err(e)
        }
    }
}

/// Keeps a format 2 bundle's root and the segments it carries in the
/// mirror, so that the channel's next bundle may leave them out.
/// Returns those the mirror did not hold before.
fn keep_segments(mirror: &dyn Store, set: &VolumeSet) -> Result<Vec<crate::id::ContentId>> {
    let verified = &set.verified;
    if verified.frame.segments.is_none() {
        return Ok(Vec::new());
    }
    // Their bytes were dropped once decoded: streamed again from a volume
    // this run identified, a batch at a time (they are up to the manifest cap).
    let Some(file) = set.files.values().flatten().next() else { return Ok(Vec::new()) };
    let opened = crate::sign::envelope::open_untrusted(&verified.frame.envelope, crate::sign::envelope::MANIFEST)
        .map_err(|r| Error::rejected("the manifest", r))?;
    let mut keep = |kept: &KeptSegments<'_>| mirror.keep_segments(kept);
    let Some(mut carried) = CarriedSegments::new(opened.payload, &mut keep) else { return Ok(Vec::new()) };
    let streamed = verified.stream_segments(file, &mut carried);
    carried.finish(streamed).map_err(|not_kept| {
        // What this run wrote before it failed is kept by nothing.
        let _ = mirror.forget_segments(&not_kept.written);
        not_kept.error
    })
}

/// The exact bundle imported last, again: nothing is staged again, but
/// every volume given is read, as the report must not vouch for a copy
/// nobody checked.
fn already_imported(
    set: &VolumeSet,
    subject: &str,
    policy: &Policy,
    mirror: &mut dyn Store,
    now: u64,
    state: crate::mirror::State,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let verified = &set.verified;
    let outcome = verify_set(set, policy, now, &mut CheckOnly::new(), progress)?;
    mirror.discard_staging(&verified.digest)?;
    // What the channel's next bundle will leave out, kept again: how a
    // mirror that lost them (or was filled by an airlock that did not keep
    // them) is mended without a --full bundle.
    keep_segments(mirror, set)?;
    let unchanged = PublishReport {
        mirror: mirror.location(),
        generation: mirror.generation()?,
        published: crate::mirror::Paths::default(),
        state,
    };
    let volumes = VolumesReport::new(&verified.manifest, &outcome, &set.unreadable);
    let report = VerifyReport::new(subject, verified, policy, volumes);
    Ok(ImportReport {
        verified: report,
        outcome: "already-imported",
        mirror: unchanged,
        changes: Changes::default(),
        audit_page: None,
        audit_error: None,
    })
}

/// `import --dry-run`: every volume given read and verified as an import
/// would (nothing staged, nothing published), and what publishing would
/// change. A split bundle must be given whole (what earlier runs staged
/// counts, as for an import).
fn dry_run(
    set: &VolumeSet,
    subject: &str,
    policy: &Policy,
    mirror: &mut dyn Store,
    now: u64,
    changes: Changes,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let verified = &set.verified;
    let outcome = verify_set(set, policy, now, &mut CheckOnly::new(), progress)?;
    let m = &verified.manifest;
    if !outcome.complete() {
        return Err(Error::Usage(format!(
            "{subject}: a dry run reads every data volume, and not all of them are given; give them all (an import for real keeps the volumes it verified for the next run)"
        )));
    }
    let volumes = VolumesReport::new(m, &outcome, &set.unreadable);
    let report = VerifyReport::new(subject, verified, policy, volumes);
    let would = PublishReport {
        mirror: mirror.location(),
        generation: mirror.generation()? + 1,
        published: {
            let mut paths = crate::mirror::Paths::default();
            m.entries.iter().for_each(|e| paths.push_joined(e.path.as_str()));
            paths
        },
        state: mirror.state()?,
    };
    Ok(ImportReport {
        verified: report,
        outcome: "dry-run",
        mirror: would,
        changes,
        audit_page: None,
        audit_error: None,
    })
}

/// The import's page and JSON report, kept in the mirror for auditors. The
/// import is published by now: a failure to write them is reported, not fatal.
fn with_audit_page(mirror: &dyn Store, mut import: ImportReport, imported: &str) -> ImportReport {
    let kept = {
        let report = &import;
        let page = |out: &mut dyn std::io::Write| {
            crate::audit::write_import_page(out, &report.verified, &report.mirror, &report.changes, imported)
        };
        let json =
            |out: &mut dyn std::io::Write| serde_json::to_writer_pretty(out, report).map_err(std::io::Error::from);
        mirror.keep_report(&report.verified.manifest_digest, &page, &json)
    };
    match kept {
        Ok(page) => import.audit_page = Some(page),
        Err(e) => import.audit_error = Some(e.to_string()),
    }
    import
}

/// Every data volume is staged: each chunked blob's pieces are in its chunk
/// file, each checked on its own as it was read. The whole is read back in
/// order through its BLAKE3 and upstream digests (unless this run read its
/// pieces in order and checked the whole on the way), then staged like a
/// blob carried whole. One assembled by a run killed before publishing is not
/// read again; one whose check a kill interrupted is checked again from
/// the start, from staging (no volume is read again).
fn assemble_chunked(
    staging: &mut crate::mirror::Staging,
    manifest: &crate::manifest::Manifest,
    subject: &str,
    progress: &dyn Progress,
) -> Result<()> {
    let mut upstream = None;
    for blob in manifest.blobs.iter().filter(|b| b.carried && b.is_chunked()) {
        if staging.has_blob(&blob.id) {
            continue;
        }
        // Every volume's marker is durable now, so the pieces are; checked whole as they came in order.
        if staging.is_checked_whole(&blob.id) {
            staging.chunks_assembled(&blob.id)?;
            continue;
        }
        let file = staging.open_chunks(&blob.id)?;
        progress.start("assembling", blob.size);
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        let upstream = upstream.get_or_insert_with(|| crate::verify::UpstreamDigests::of(manifest));
        crate::verify::check_assembled((manifest, upstream), blob, reader, progress, subject)?;
        progress.finish();
        staging.chunks_assembled(&blob.id)?;
    }
    Ok(())
}

/// Whether this run keeps a copy of each data volume file it verifies: in
/// a set with parity, so that a volume missing in a later run can be
/// rebuilt from the volumes verified in this one without them being given
/// again; not when the run is given every data volume still to verify (the
/// set completes now, or a rebuild runs now, from the files given).
fn keeps_copies(set: &VolumeSet, done: &BTreeSet<u32>) -> bool {
    let m = &set.verified.manifest;
    m.parity > 0 && (0..m.volumes).any(|i| !done.contains(&i) && !set.files.contains_key(&i))
}

/// An incremental bundle relies on blobs from earlier bundles: the mirror must hold them.
fn check_earlier_blobs(mirror: &dyn Store, verified: &VerifiedManifest, subject: &str) -> Result<()> {
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
fn check_space(mirror: &dyn Store, set: &VolumeSet, done: &BTreeSet<u32>) -> Result<()> {
    let m = &set.verified.manifest;
    let parity_given = (m.volumes..m.total_volumes()).any(|i| set.files.contains_key(&i));
    let to_stage: Vec<u32> =
        (0..m.volumes).filter(|i| !done.contains(i) && (set.files.contains_key(i) || parity_given)).collect();
    let blobs: u64 = to_stage.iter().map(|i| volume_bytes(m, *i)).sum();
    // With parity, a copy of each data volume file is kept until the set is
    // complete (about its blobs' bytes again, compression aside): a later run
    // may need it to rebuild a missing volume.
    let copies = if keeps_copies(set, done) { blobs + blobs / 64 + (64 << 10) * to_stage.len() as u64 } else { 0 };
    let blobs = blobs + copies;
    let generation = (1 << 20) + 4096 * m.entries.len() as u64 + crate::mirror::copies_bytes(&m.entries);
    let what = if m.is_single_volume() {
        "importing the bundle".to_owned()
    } else {
        format!("staging {} of {} data volume(s) and publishing", to_stage.len(), m.volumes)
    };
    mirror.check_space(blobs + generation, &what)
}
