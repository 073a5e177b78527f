//! The offline verification pipeline. Order matters and is the point:
//!
//! 1. the volume's framing is checked as it is read (`bundle::reader`);
//! 2. the signature envelope is checked against the policy over the
//!    manifest bytes as received, before any manifest CBOR is decoded;
//! 3. the manifest must be canonical CBOR, match the schema's rules and
//!    not be expired; every ecosystem it names must be known here;
//! 4. every blob is streamed through BLAKE3 (and the upstream digests its
//!    entries declare) into a sink, and is committed only when all match;
//! 5. the volume must hold exactly the manifest's blobs, each once.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

mod blobs;
mod chunks;
mod evidence;
mod report;
pub mod set;
mod volume;

pub use blobs::{UpstreamDigests, check_assembled};
pub use evidence::screen_new_names;
pub use report::{EntryFindings, EntryReport, Findings, ListsEntries, PackageReports, VerifyReport};
pub use volume::{OpenVolume, open_volume, verify_volume};

use crate::bundle::{FrameSeen, ManifestFrame};
use crate::ecosystem::{self, ManifestExt as _};
use crate::error::{Error, Rejection, Result};
use crate::id::{ContentId, KeyId};
use crate::manifest::{Entry, EntryRef, Manifest};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sign::envelope;
use crate::time::rfc3339;

/// A manifest whose signatures met the policy.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    /// Shared, not copied: a manifest of tens of thousands of entries is
    /// the largest thing an import holds, and several places keep it.
    pub manifest: Arc<Manifest>,
    /// The manifest frame's envelope exactly as received (the buffer it was
    /// read into, not a copy), and its segments by length and BLAKE3: their
    /// bytes, spooled up to the manifest cap, are dropped once decoded.
    pub frame: Arc<FrameSeen>,
    /// BLAKE3 of the signed manifest bytes (in format 2, of the root, which
    /// names its segments): the bundle's identity in reports and state.
    pub digest: ContentId,
    pub trusted_signers: Vec<KeyId>,
    /// Signers the policy revoked: reported, never counted.
    pub revoked_signers: Vec<KeyId>,
    /// The per-package layer findings (content and digest layers hold once the blobs stream through).
    pub packages: Arc<Findings>,
}

impl VerifiedManifest {
    /// The manifest segments, read again from frame 1 of the volume at
    /// `path` (one this run verified): only what writes them out again
    /// (`sign`, the mirror keeping them) needs their bytes. The frame read
    /// must be the one verified (`None` in format 1).
    pub fn reread_segments(&self, path: &Path) -> Result<Option<crate::manifest::carried::CarriedBytes>> {
        let subject = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::input(path, "bundle", &e))?;
        let (_, frame) = crate::bundle::reader::VolumeReader::open(file, &subject)?;
        if !frame.is(&self.frame) {
            return Err(Error::Usage(format!("{subject}: changed while it was read; run the command again")));
        }
        Ok(frame.segments)
    }

    /// The manifest segments, streamed again from frame 1 of the volume at
    /// `path` (one this run verified) into `out`, a block at a time: what
    /// keeps them (the mirror) checks each against the signed root itself.
    pub fn stream_segments(&self, path: &Path, out: &mut dyn Write) -> Result<()> {
        let file = File::open(path).map_err(|e| Error::input(path, "bundle", &e))?;
        crate::bundle::reader::stream_known_segments(file, &self.frame, &path.display().to_string(), out)
    }
}

/// Where verified blobs go: nowhere (`verify`) or a staging area (`import`).
pub trait BlobSink: Send {
    type Writer: Write + Send;
    /// A writer for blob `id`.
    fn begin(&mut self, id: &ContentId) -> Result<Self::Writer>;
    /// Blob `id` was written and every digest matched.
    fn commit(&mut self, id: &ContentId, writer: Self::Writer) -> Result<()>;
    /// A writer for piece `piece` (from 0) of the chunked blob `blob`,
    /// which starts at `offset` of the blob.
    fn begin_piece(&mut self, blob: &ContentId, piece: usize, offset: u64) -> Result<Self::Writer>;
    /// That piece was written and hashed to its own BLAKE3.
    fn commit_piece(&mut self, blob: &ContentId, piece: usize, writer: Self::Writer) -> Result<()>;
    /// Every piece of chunked blob `blob` was written to this sink in this
    /// run, in order, and the whole matched its BLAKE3 and upstream digests
    /// on the way (so it need not be read back to be checked).
    fn commit_whole(&mut self, _blob: &ContentId) -> Result<()> {
        Ok(())
    }
}

/// Discards blobs after checking them.
pub struct Discard;

impl BlobSink for Discard {
    type Writer = io::Sink;
    fn begin(&mut self, _id: &ContentId) -> Result<io::Sink> {
        Ok(io::sink())
    }
    fn commit(&mut self, _id: &ContentId, _writer: io::Sink) -> Result<()> {
        Ok(())
    }
    fn begin_piece(&mut self, _blob: &ContentId, _piece: usize, _offset: u64) -> Result<io::Sink> {
        Ok(io::sink())
    }
    fn commit_piece(&mut self, _blob: &ContentId, _piece: usize, _writer: io::Sink) -> Result<()> {
        Ok(())
    }
}

/// Steps 2 and 3: trust, then decode, then the manifest's own rules.
pub fn check_manifest(frame: ManifestFrame, policy: &Policy, now: u64, subject: &str) -> Result<VerifiedManifest> {
    let ManifestFrame { envelope, segments } = frame;
    let verified =
        envelope::verify(&envelope, policy.keyring(), envelope::MANIFEST).map_err(|r| Error::rejected(subject, r))?;
    // What is kept of the segments (their length and BLAKE3), taken now so
    // that their bytes (a temporary file beyond 1 MiB) go as soon as they
    // are decoded rather than stay beside the checks below.
    let seen_segments = crate::bundle::segments_seen(segments.as_ref());
    // In format 2 each segment is checked against the root, just verified, before it is decoded.
    let manifest = Manifest::decode(verified.payload, segments.as_ref(), policy.held_segments())
        .map_err(|e| e.into_error(subject))?;
    drop(segments);
    let digest = ContentId::of(verified.payload);
    let (trusted_signers, revoked_signers) = (verified.trusted_signers, verified.revoked_signers);
    // The channel is in the signed manifest, so it is judged after the signatures over its raw bytes.
    policy.check_channel(&manifest.channel, &trusted_signers).map_err(|r| Error::rejected(subject, r))?;
    if now >= manifest.expires {
        return Err(Error::rejected(
            subject,
            Rejection::Expired(format!("the bundle expired at {}", rfc3339(manifest.expires))),
        ));
    }
    let mut packages = Findings::default();
    // Every entry is judged, so that a refusal reports each one; the first
    // refusal is the error.
    let mut refusal = None;
    for entry in &manifest.entries {
        check_entry(&entry).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
        packages.push(evidence::check(&entry, policy).unwrap_or_else(|r| {
            let findings = EntryFindings::refused(&entry, &r);
            refusal.get_or_insert(r);
            findings
        }));
    }
    let manifest = Arc::new(manifest);
    if let Some(rejection) = refusal {
        let reports = PackageReports::of(manifest, packages.done(), trusted_signers.len());
        return Err(Error::refused_entries(subject, rejection, Arc::new(reports)));
    }
    // Generated files too (index pages, metadata beside a file): two entries
    // of one bundle must not claim one path of the mirror.
    ecosystem::reserved::check_bundle(&manifest.entries).map_err(|e| e.into_error(subject))?;
    for eco in ecosystem::ALL {
        // Only those that check their entries together hold them all at once.
        if !eco.checks_together() {
            continue;
        }
        let all = 0..manifest.entries.len();
        let range = manifest.entries.range_of(eco.name()).unwrap_or(all);
        let mine: Vec<EntryRef<'_>> =
            manifest.entries.iter_from(range.start).take(range.len()).filter(|e| e.ecosystem == eco.name()).collect();
        let mine: Vec<&Entry> = mine.iter().map(|e| &**e).collect();
        if !mine.is_empty() {
            eco.check_together(&mine).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
        }
    }
    Ok(VerifiedManifest {
        digest,
        manifest,
        frame: Arc::new(FrameSeen { envelope, segments: seen_segments }),
        trusted_signers,
        revoked_signers,
        packages: packages.done(),
    })
}

fn check_entry(entry: &Entry) -> Result<(), String> {
    let eco = ecosystem::by_name(&entry.ecosystem).ok_or_else(|| {
        format!("entry {} has unknown ecosystem {:?}; update airlock on this side", entry.name, entry.ecosystem)
    })?;
    eco.check_entry(entry).map_err(|m| format!("{} entry {}: {m}", entry.ecosystem, entry.name))
}

/// Verifies a single-volume bundle completely, handing blobs to `sink`.
pub fn verify_bundle<S: BlobSink>(
    path: &Path,
    policy: &Policy,
    now: u64,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<(VerifiedManifest, VerifyReport)> {
    let subject = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::input(path, "bundle", &e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::Usage(format!(
            "{subject}: is a directory (a split bundle); this command takes a single-file bundle, `airlock verify` and `airlock import` take split bundles"
        )));
    }
    let mut manifests = Vec::new();
    let volume = open_volume(file, &subject, policy, now, &mut manifests)?;
    let verified = manifests.pop().expect("open_volume keeps the manifest it checked");
    if !verified.manifest.is_single_volume() {
        return Err(Error::Usage(format!(
            "{subject}: is {} of a split bundle; this command takes a single-file bundle, `airlock verify` and `airlock import` take split bundles",
            volume.label(&verified.manifest)
        )));
    }
    progress.start("verifying", verified.manifest.carried_bytes());
    verify_volume(volume, &verified, policy, sink, progress)?;
    progress.finish();
    let report = VerifyReport::new(&subject, &verified, policy, None);
    Ok((verified, report))
}
