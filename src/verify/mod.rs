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

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sha2::Digest as _;

mod evidence;

pub mod set;

/// Kept here for the modules that write times through verify.
pub use crate::time::rfc3339;
pub use evidence::screen_new_names;

use crate::bundle::reader::{Envelope, Member, Tail, VolumeReader};
use crate::bundle::split::MAX_STRIPE;
use crate::bundle::{PARITY_MEMBER, ParityInfo, VOLUME_MEMBER, VolumeSeal, volume_label};
use crate::ecosystem::{self, ManifestExt as _};
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
    /// Shared, not copied: a manifest of tens of thousands of entries is
    /// the largest thing an import holds, and several places keep it.
    pub manifest: Arc<Manifest>,
    /// The envelope exactly as received, to keep with the mirror's records.
    /// The buffer it was read into, not a copy: it is up to the manifest cap.
    pub envelope: Arc<Vec<u8>>,
    /// BLAKE3 of the manifest bytes: the bundle's identity in reports and state.
    pub digest: ContentId,
    pub trusted_signers: Vec<KeyId>,
    /// Signers the policy revoked: reported, never counted.
    pub revoked_signers: Vec<KeyId>,
    /// The per-package layer findings (content and digest layers hold once the blobs stream through).
    pub packages: Arc<[EntryFindings]>,
}

/// Where verified blobs go: nowhere (`verify`) or a staging area (`import`).
pub trait BlobSink: Send {
    type Writer: Write + Send;
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
    /// Signatures by keys the policy revoked, which were not counted.
    pub revoked_signers: Vec<String>,
    pub entries: usize,
    pub blobs: usize,
    pub bytes: u64,
    /// Blobs of an incremental bundle that earlier bundles carried: checked by
    /// `import` against the mirror, not by `verify`.
    pub not_carried: usize,
    /// Per package, each of the five layers and its result.
    pub packages: PackageReports,
    /// The volumes of a split bundle: which were read, rebuilt, missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<set::VolumesReport>,
}

/// What the digest, provenance and policy layers found for one entry. The
/// transfer and content layers say the same of every entry of a verified
/// bundle and the entry's names are in the manifest, so neither is repeated
/// here: a bundle may have tens of thousands of entries.
#[derive(Debug, Clone)]
pub struct EntryFindings {
    pub digest: Cow<'static, str>,
    pub provenance: Cow<'static, str>,
    pub policy: Cow<'static, str>,
}

/// Every entry's report, built from the manifest and the findings as it is read.
#[derive(Debug, Clone)]
pub struct PackageReports {
    manifest: Arc<Manifest>,
    findings: Arc<[EntryFindings]>,
    transfer: String,
}

/// What was established for one entry, layer by layer (DESIGN.md's table).
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport<'a> {
    pub ecosystem: &'a str,
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub path: &'a str,
    pub transfer: &'a str,
    pub content: &'a str,
    pub digest: &'a str,
    pub provenance: &'a str,
    pub policy: &'a str,
}

impl PackageReports {
    fn new(verified: &VerifiedManifest) -> Self {
        PackageReports {
            manifest: verified.manifest.clone(),
            findings: verified.packages.clone(),
            transfer: format!("ok ({} trusted signer(s))", verified.trusted_signers.len()),
        }
    }

    /// The entries' reports, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = EntryReport<'_>> {
        self.manifest.entries.iter().zip(self.findings.iter()).map(|(entry, found)| EntryReport {
            ecosystem: &entry.ecosystem,
            name: &entry.name,
            version: entry.version.as_deref(),
            path: entry.path.as_str(),
            transfer: &self.transfer,
            content: "ok (BLAKE3 and size)",
            digest: &found.digest,
            provenance: &found.provenance,
            policy: &found.policy,
        })
    }
}

impl Serialize for PackageReports {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl VerifyReport {
    /// The report on `bundle` (as the operator named it).
    #[must_use]
    pub fn new(
        bundle: &str,
        verified: &VerifiedManifest,
        policy: &Policy,
        volumes: Option<set::VolumesReport>,
    ) -> Self {
        let m = &verified.manifest;
        VerifyReport {
            volumes,
            bundle: bundle.to_owned(),
            manifest_digest: verified.digest.to_hex(),
            channel: m.channel.clone(),
            sequence: m.sequence,
            created: rfc3339(m.created),
            expires: rfc3339(m.expires),
            trusted_signers: verified.trusted_signers.iter().map(|id| policy.describe(id)).collect(),
            revoked_signers: verified.revoked_signers.iter().map(|id| policy.describe(id)).collect(),
            entries: m.entries.len(),
            blobs: m.blobs.len(),
            bytes: m.blob_bytes(),
            not_carried: m.blobs_not_carried().count(),
            packages: PackageReports::new(verified),
        }
    }
}

/// Steps 2 and 3: trust, then decode, then the manifest's own rules.
pub fn check_manifest(envelope_bytes: Vec<u8>, policy: &Policy, now: u64, subject: &str) -> Result<VerifiedManifest> {
    let verified = envelope::verify(&envelope_bytes, policy.keyring(), envelope::MANIFEST)
        .map_err(|r| Error::rejected(subject, r))?;
    let manifest =
        Manifest::from_bytes(verified.payload).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
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
    let mut packages = Vec::with_capacity(manifest.entries.len());
    for entry in &manifest.entries {
        check_entry(entry).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
        packages.push(evidence::check(entry, policy).map_err(|r| Error::rejected(subject, r))?);
    }
    // Generated files too (index pages, metadata beside a file): two entries
    // of one bundle must not claim one path of the mirror.
    ecosystem::reserved::check(manifest.entries.len(), |i| (&manifest.entries[i], ecosystem::reserved::Holder::Bundle))
        .map_err(|m| Error::rejected(subject, Rejection::Policy(m)))?;
    for eco in ecosystem::ALL {
        let mine: Vec<&Entry> = manifest.entries.iter().filter(|e| e.ecosystem == eco.name()).collect();
        if !mine.is_empty() {
            eco.check_together(&mine).map_err(|m| Error::rejected(subject, Rejection::Schema(m)))?;
        }
    }
    Ok(VerifiedManifest {
        digest,
        manifest: manifest.into(),
        envelope: Arc::new(envelope_bytes),
        trusted_signers,
        revoked_signers,
        packages: packages.into(),
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

/// A volume whose manifest passed the checks, positioned after its
/// `volume.cbor`: the caller knows which volume of which set it claims to
/// be (its seal confirms it once the rest is read).
pub struct OpenVolume<R: io::Read> {
    reader: VolumeReader<R>,
    /// Index in the set.
    pub index: u32,
    /// In parity volumes: what the recovery bytes cover.
    pub parity: Option<ParityInfo>,
    /// The manifest digest: which bundle the volume belongs to.
    pub digest: ContentId,
}

impl<R: io::Read> OpenVolume<R> {
    /// "volume 2 of 5", "parity volume 1 of 1".
    #[must_use]
    pub fn label(&self, manifest: &Manifest) -> String {
        volume_label(self.index, manifest.volumes, manifest.parity)
    }
}

/// Reads a volume's manifest frame and checks the manifest (step 2 and 3),
/// unless `manifests` already holds one with the same envelope; a new one
/// is added to `manifests`. In a split set, reads which volume this is.
pub fn open_volume<R: io::Read>(
    raw: R,
    subject: &str,
    policy: &Policy,
    now: u64,
    manifests: &mut Vec<VerifiedManifest>,
) -> Result<OpenVolume<R>> {
    // A volume of a set whose manifest was checked already is only compared with it.
    let known: Vec<&[u8]> = manifests.iter().map(|m| m.envelope.as_slice()).collect();
    let (mut reader, envelope_bytes) = VolumeReader::open_among(raw, subject, &known)?;
    let position = match envelope_bytes {
        Envelope::Known(position) => position,
        Envelope::Read(envelope_bytes) => {
            manifests.push(check_manifest(envelope_bytes, policy, now, subject)?);
            manifests.len() - 1
        }
    };
    let verified = &manifests[position];
    let manifest = &verified.manifest;
    if manifest.is_single_volume() {
        return Ok(OpenVolume { reader, index: 0, parity: None, digest: verified.digest });
    }
    let reject = |m: String| Error::rejected(subject, Rejection::Malformed(m));
    let Member::Info { size } = reader.next_member()? else {
        return Err(reject(format!("a volume of a split bundle must start with {VOLUME_MEMBER}")));
    };
    let info = reader.read_info(size)?;
    let is_parity = info.volume >= manifest.volumes;
    if info.volume >= manifest.total_volumes() || is_parity != info.parity.is_some() {
        return Err(reject(format!(
            "{VOLUME_MEMBER} names volume {} of a set of {}",
            info.volume,
            manifest.total_volumes()
        )));
    }
    if let Some(parity) = &info.parity {
        // A rebuild holds a stripe per volume: no more than the exporter ever writes.
        if u64::from(parity.stripe) > MAX_STRIPE {
            return Err(reject(format!(
                "{VOLUME_MEMBER} of a parity volume declares stripes of {} bytes; airlock writes at most {} KiB",
                parity.stripe,
                MAX_STRIPE >> 10
            )));
        }
        let stripe_ok = parity.stripe > 0 && parity.stripe % 512 == 0;
        if !stripe_ok || parity.sizes.len() != manifest.volumes as usize {
            return Err(reject(format!("{VOLUME_MEMBER} of a parity volume does not describe the data volumes")));
        }
    }
    Ok(OpenVolume { reader, index: info.volume, parity: info.parity, digest: verified.digest })
}

/// Reads the rest of an opened volume: a data volume's blobs into `sink`
/// (step 4 and 5) or a parity volume's recovery bytes; then checks its seal.
pub fn verify_volume<R: io::Read, S: BlobSink>(
    mut volume: OpenVolume<R>,
    verified: &VerifiedManifest,
    policy: &Policy,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<()> {
    let subject = volume.reader.name().to_owned();
    match &volume.parity {
        None => {
            let plan = BlobPlan::new(&verified.manifest, volume.index);
            stream_blobs(&mut volume.reader, plan, sink, progress, &subject)?;
        }
        Some(info) => {
            let expected = info.member_size();
            match volume.reader.next_member()? {
                Member::Parity { size } if size == expected => {}
                _ => {
                    return Err(Error::rejected(
                        &subject,
                        Rejection::UnexpectedMember(format!("where {PARITY_MEMBER} of {expected} bytes belongs")),
                    ));
                }
            }
            let mut counted = crate::progress::ProgressWriter { inner: io::sink(), progress };
            volume.reader.copy_member(expected, &mut counted).map_err(|e| e.into_error(&subject))?;
            if volume.reader.next_member()? != Member::End {
                return Err(Error::rejected(&subject, Rejection::UnexpectedMember(format!("after {PARITY_MEMBER}"))));
            }
        }
    }
    check_seal(&volume.reader.finish()?, verified, volume.index, policy).map_err(|r| Error::rejected(&subject, r))
}

/// The seal must be signed like the manifest and name this manifest, this
/// volume and exactly the compressed bytes that were read.
fn check_seal(tail: &Tail, verified: &VerifiedManifest, volume: u32, policy: &Policy) -> Result<(), Rejection> {
    let opened = envelope::verify(&tail.seal, policy.keyring(), envelope::VOLUME_SEAL)?;
    let seal: VolumeSeal =
        canonical::from_slice(opened.payload).map_err(|e| Rejection::Malformed(format!("volume seal: {e}")))?;
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
}

/// Step 4 and 5 for one volume, as a two-stage pipeline: this thread
/// decompresses and parses the volume while a second one hashes and writes,
/// so an import costs about its slower stage rather than their sum. Chunks
/// are recycled through a bounded channel, which caps memory at a few MiB.
fn stream_blobs<R: io::Read, S: BlobSink>(
    volume: &mut VolumeReader<R>,
    plan: BlobPlan,
    sink: &mut S,
    progress: &dyn Progress,
    subject: &str,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(PIPELINE_DEPTH);
        let (recycle, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let writer = scope.spawn(move || hash_and_write(&queue, &recycle, sink, progress, subject));
        let read = read_blobs(volume, plan, &jobs, &spare, subject);
        drop(jobs);
        let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The writer's failure is the first one: reading stops when it can no longer hand over.
        written.and(read)
    })
}

/// Chunks in flight between the two stages, each of [`CHUNK`] bytes.
const PIPELINE_DEPTH: usize = 4;
const CHUNK: usize = 1 << 20;

/// What the reading stage hands to the writing stage.
enum Job {
    Begin(ContentId, Vec<UpstreamDigest>),
    Data(Vec<u8>),
    End(ContentId, Vec<UpstreamDigest>),
}

/// The reading stage: every member must be a blob the plan expects, once, of its size.
fn read_blobs<R: io::Read>(
    volume: &mut VolumeReader<R>,
    mut plan: BlobPlan,
    jobs: &std::sync::mpsc::SyncSender<Job>,
    spare: &std::sync::mpsc::Receiver<Vec<u8>>,
    subject: &str,
) -> Result<()> {
    // A closed channel means the writing stage failed; its error is reported instead.
    let writer_gone = || Error::Usage(String::new());
    let mut seen = BTreeSet::new();
    loop {
        let (id, size) = match volume.next_member()? {
            Member::End => break,
            Member::Blob { id, size } => (id, size),
            Member::Info { .. } | Member::Parity { .. } => {
                return Err(Error::rejected(
                    subject,
                    Rejection::UnexpectedMember(format!("{VOLUME_MEMBER} or {PARITY_MEMBER} among the blobs")),
                ));
            }
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
        jobs.send(Job::Begin(id, digests.clone())).map_err(|_| writer_gone())?;
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            let mut chunk = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            chunk.resize(n, 0);
            volume.read_data(&mut chunk)?;
            jobs.send(Job::Data(chunk)).map_err(|_| writer_gone())?;
            left -= n as u64;
        }
        volume.end_member(size).map_err(|r| Error::rejected(subject, r))?;
        jobs.send(Job::End(id, digests)).map_err(|_| writer_gone())?;
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

/// The writing stage: hash each blob while writing it to the sink, and
/// commit it only when every digest matched.
fn hash_and_write<S: BlobSink>(
    queue: &std::sync::mpsc::Receiver<Job>,
    recycle: &std::sync::mpsc::Sender<Vec<u8>>,
    sink: &mut S,
    progress: &dyn Progress,
    subject: &str,
) -> Result<()> {
    let mut current = None;
    for job in queue {
        match job {
            Job::Begin(id, digests) => current = Some(HashingWriter::new(sink.begin(&id)?, &digests, progress)),
            Job::Data(chunk) => {
                let writer = current.as_mut().expect("Begin comes first");
                writer.write_all(&chunk).map_err(|e| Error::io(Path::new(subject), e))?;
                let _ = recycle.send(chunk);
            }
            Job::End(id, digests) => {
                let writer = current.take().expect("Begin comes first");
                let inner =
                    writer.check(&id, &digests).map_err(|m| Error::rejected(subject, Rejection::DigestMismatch(m)))?;
                sink.commit(&id, inner)?;
            }
        }
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
