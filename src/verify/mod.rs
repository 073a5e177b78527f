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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use sha2::Digest as _;

mod evidence;

use crate::bundle::VolumeSeal;
use crate::bundle::reader::{Member, Tail, VolumeReader};
use crate::ecosystem;
use crate::error::{Error, Rejection, Result};
use crate::id::{ContentId, KeyId};
use crate::manifest::canonical;
use crate::manifest::{Entry, Manifest};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sign::envelope;

/// A manifest whose signatures met the policy.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    pub manifest: Manifest,
    /// The envelope exactly as received, to keep with the mirror's records.
    pub envelope: Vec<u8>,
    /// BLAKE3 of the manifest bytes: the bundle's identity in reports and state.
    pub digest: ContentId,
    pub trusted_signers: Vec<KeyId>,
    /// The per-package layer report (content and digest layers hold once the blobs stream through).
    pub packages: Vec<EntryReport>,
}

/// Where verified blobs go: nowhere (`verify`) or a staging area (`import`).
pub trait BlobSink {
    type Writer: Write;
    /// Called once, before the first blob, with the bytes the volume's blobs
    /// will take: a sink that writes them refuses here, before writing
    /// anything, when they cannot fit.
    fn reserve(&mut self, _bytes: u64) -> Result<()> {
        Ok(())
    }
    /// A writer for blob `id`.
    fn begin(&mut self, id: &ContentId) -> Result<Self::Writer>;
    /// Blob `id` was written and every digest matched.
    fn commit(&mut self, id: &ContentId, writer: Self::Writer) -> Result<()>;
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
}

/// What a successful verification established.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub bundle: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub created: String,
    pub expires: String,
    pub trusted_signers: Vec<String>,
    pub entries: usize,
    pub blobs: usize,
    pub bytes: u64,
    /// Blobs of an incremental bundle that earlier bundles carried: checked by
    /// `import` against the mirror, not by `verify`.
    pub not_carried: usize,
    /// Per package, each of the five layers and its result.
    pub packages: Vec<EntryReport>,
}

/// What was established for one entry, layer by layer (DESIGN.md's table).
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    pub ecosystem: String,
    pub name: String,
    pub version: Option<String>,
    pub path: String,
    pub transfer: String,
    pub content: String,
    pub digest: String,
    pub provenance: String,
    pub policy: String,
}

impl VerifyReport {
    fn new(bundle: &Path, verified: &VerifiedManifest, policy: &Policy) -> Self {
        let m = &verified.manifest;
        VerifyReport {
            bundle: bundle.display().to_string(),
            manifest_digest: verified.digest.to_hex(),
            channel: m.channel.clone(),
            sequence: m.sequence,
            created: rfc3339(m.created),
            expires: rfc3339(m.expires),
            trusted_signers: verified
                .trusted_signers
                .iter()
                .map(|id| match policy.name_of(id) {
                    Some(name) if name != id.short() => format!("{name} ({})", id.short()),
                    _ => id.short(),
                })
                .collect(),
            entries: m.entries.len(),
            blobs: m.blobs.len(),
            bytes: m.blob_bytes(),
            not_carried: m.blobs_not_carried().count(),
            packages: verified.packages.clone(),
        }
    }
}

/// Seconds since the epoch as an RFC 3339 UTC time.
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// Steps 2 and 3: trust, then decode, then the manifest's own rules.
pub fn check_manifest(envelope_bytes: Vec<u8>, policy: &Policy, now: u64, subject: &str) -> Result<VerifiedManifest> {
    let verified =
        envelope::verify(&envelope_bytes, policy, envelope::MANIFEST).map_err(|r| Error::rejected(subject, r))?;
    let manifest =
        Manifest::from_bytes(&verified.payload).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
    if !policy.accepts_channel(&manifest.channel) {
        return Err(Error::rejected(
            subject,
            Rejection::Policy(format!(
                "channel {:?} is not among the channels the policy accepts; add it to `channels` in the policy if this site should take it",
                manifest.channel
            )),
        ));
    }
    if now >= manifest.expires {
        return Err(Error::rejected(
            subject,
            Rejection::Expired(format!("the bundle expired at {}", rfc3339(manifest.expires))),
        ));
    }
    let mut packages = Vec::with_capacity(manifest.entries.len());
    for entry in &manifest.entries {
        check_entry(entry).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
        packages.push(
            evidence::check(entry, policy, verified.trusted_signers.len()).map_err(|r| Error::rejected(subject, r))?,
        );
    }
    Ok(VerifiedManifest {
        digest: ContentId::of(&verified.payload),
        manifest,
        envelope: envelope_bytes,
        trusted_signers: verified.trusted_signers,
        packages,
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
            "{subject}: is a directory; pass the bundle file written by `airlock export`"
        )));
    }
    let (mut volume, envelope_bytes) = VolumeReader::open(file, &subject)?;
    let verified = check_manifest(envelope_bytes, policy, now, &subject)?;
    let plan = BlobPlan::new(&verified.manifest, 0);
    sink.reserve(plan.total_bytes())?;
    progress.start("verifying", plan.total_bytes());
    stream_blobs(&mut volume, plan, sink, progress, &subject)?;
    progress.finish();
    check_seal(&volume.finish()?, &verified, 0, policy).map_err(|r| Error::rejected(&subject, r))?;
    let report = VerifyReport::new(path, &verified, policy);
    Ok((verified, report))
}

/// The seal must be signed like the manifest and name this manifest, this
/// volume and exactly the compressed bytes that were read.
fn check_seal(tail: &Tail, verified: &VerifiedManifest, volume: u32, policy: &Policy) -> Result<(), Rejection> {
    let opened = envelope::verify(&tail.seal, policy, envelope::VOLUME_SEAL)?;
    let seal: VolumeSeal =
        canonical::from_slice(&opened.payload).map_err(|e| Rejection::Malformed(format!("volume seal: {e}")))?;
    let expected = VolumeSeal {
        format: 1,
        manifest: verified.digest,
        volume,
        frame: tail.frame.digest,
        frame_size: tail.frame.size,
    };
    if seal.manifest != verified.digest || seal.volume != volume {
        return Err(Rejection::Malformed("the volume seal belongs to another bundle or volume".into()));
    }
    if seal != expected {
        return Err(Rejection::DigestMismatch("the compressed blob frame is not the one the exporter sealed".into()));
    }
    Ok(())
}

/// What the volume must hold: each blob's size and the upstream digests its entries declare.
struct BlobPlan {
    expected: BTreeMap<ContentId, (u64, Vec<UpstreamDigest>)>,
}

/// An algorithm name and the digest an entry declares for it.
type UpstreamDigest = (String, Vec<u8>);

impl BlobPlan {
    fn new(manifest: &Manifest, volume: u32) -> Self {
        let mut expected: BTreeMap<ContentId, (u64, Vec<UpstreamDigest>)> =
            manifest.blobs_in_volume(volume).map(|b| (b.id, (b.size, Vec::new()))).collect();
        for entry in &manifest.entries {
            if let Some((_, digests)) = expected.get_mut(&entry.blob) {
                for (algorithm, digest) in &entry.digests {
                    let pair = (algorithm.clone(), digest.0.clone());
                    if !digests.contains(&pair) {
                        digests.push(pair);
                    }
                }
            }
        }
        BlobPlan { expected }
    }

    fn total_bytes(&self) -> u64 {
        self.expected.values().map(|(size, _)| size).sum()
    }
}

/// Step 4 and 5 for one volume.
fn stream_blobs<R: io::Read, S: BlobSink>(
    volume: &mut VolumeReader<R>,
    mut plan: BlobPlan,
    sink: &mut S,
    progress: &dyn Progress,
    subject: &str,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    loop {
        let (id, size) = match volume.next_member()? {
            Member::End => break,
            Member::Blob { id, size } => (id, size),
        };
        let Some((expected_size, digests)) = plan.expected.remove(&id) else {
            let why = if seen.contains(&id) {
                "a second copy of blob"
            } else {
                "blob the manifest does not list for this volume:"
            };
            return Err(Error::rejected(subject, Rejection::UnexpectedMember(format!("{why} {}", id.short()))));
        };
        if size != expected_size {
            return Err(Error::rejected(
                subject,
                Rejection::Oversize(format!("blob {} is {size} bytes, the manifest says {expected_size}", id.short())),
            ));
        }
        let mut hashing = HashingWriter::new(sink.begin(&id)?, &digests, progress);
        volume.copy_member(size, &mut hashing).map_err(|e| e.into_error(subject))?;
        let inner = hashing.check(&id, &digests).map_err(|m| Error::rejected(subject, Rejection::DigestMismatch(m)))?;
        sink.commit(&id, inner)?;
        seen.insert(id);
    }
    if let Some(missing) = plan.expected.keys().next() {
        return Err(Error::rejected(
            subject,
            Rejection::Truncated(format!("{} blob(s) missing, first {}", plan.expected.len(), missing.short())),
        ));
    }
    Ok(())
}

/// Hashes with BLAKE3 and every upstream algorithm the entries need while writing through.
struct HashingWriter<'p, W> {
    inner: W,
    blake3: blake3::Hasher,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    sha512: Option<sha2::Sha512>,
    progress: &'p dyn Progress,
}

impl<'p, W: Write> HashingWriter<'p, W> {
    fn new(inner: W, digests: &[UpstreamDigest], progress: &'p dyn Progress) -> Self {
        let wants = |name: &str| digests.iter().any(|(a, _)| a == name);
        HashingWriter {
            inner,
            blake3: blake3::Hasher::new(),
            sha1: wants("sha1").then(sha1::Sha1::new),
            sha256: wants("sha256").then(sha2::Sha256::new),
            sha512: wants("sha512").then(sha2::Sha512::new),
            progress,
        }
    }

    fn check(self, id: &ContentId, digests: &[UpstreamDigest]) -> Result<W, String> {
        let actual = ContentId(*self.blake3.finalize().as_bytes());
        if actual != *id {
            return Err(format!("blob {} hashes to {}", id.short(), actual.short()));
        }
        let sha1 = self.sha1.map(|h| h.finalize().to_vec());
        let sha256 = self.sha256.map(|h| h.finalize().to_vec());
        let sha512 = self.sha512.map(|h| h.finalize().to_vec());
        for (algorithm, expected) in digests {
            let actual = match algorithm.as_str() {
                "sha1" => sha1.as_ref(),
                "sha256" => sha256.as_ref(),
                "sha512" => sha512.as_ref(),
                _ => None,
            };
            if actual != Some(expected) {
                return Err(format!("blob {}: upstream {algorithm} digest does not match", id.short()));
            }
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let done = &buf[..n];
        self.blake3.update(done);
        if let Some(h) = &mut self.sha1 {
            h.update(done);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(done);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(done);
        }
        self.progress.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
