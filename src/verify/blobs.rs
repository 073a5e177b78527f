//! Streaming a volume's blobs through BLAKE3 and the upstream digests
//! into a sink, reading ahead of the hashing on a second thread. A
//! `git-sha1` digest (a git blob id) is SHA-1 seeded with `"blob <size>\0"`,
//! the size the manifest gives the blob, then fed the bytes as they stream.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use sha2::Digest as _;

use super::BlobSink;
use crate::bundle::reader::{Member, VolumeReader};
use crate::bundle::{PARITY_MEMBER, VOLUME_MEMBER};
use crate::error::{Error, Rejection, Result};
use crate::id::ContentId;
use crate::manifest::Manifest;
use crate::progress::Progress;

/// What the volume must hold: each blob's size and the upstream digests
/// its entries declare, or for a piece of a chunked blob (the member
/// `blobs/<blob>` too), its size and what it is. Indexes into the manifest,
/// sorted by blob id, not copies: at 100 000 blobs the copies (and a map
/// before them) were the largest thing a verification held beside the
/// manifest; these are 9 bytes a member and 4 an entry with digests.
pub(super) struct BlobPlan {
    manifest: Arc<Manifest>,
    /// The members, sorted by the blob's id: the blob's index in the
    /// table, and the piece's number ([`WHOLE`] for a blob carried whole).
    members: Vec<(u32, u32)>,
    /// Whether the volume has given each member.
    given: Vec<bool>,
    /// How many it has not.
    left: usize,
    with_digests: UpstreamDigests,
}

/// The piece number of a member that is a whole blob.
const WHOLE: u32 = u32::MAX;

/// One member the volume must hold.
pub(super) struct Expected {
    size: u64,
    digests: Vec<UpstreamDigest>,
    /// Boxed: pieces are rare, and every blob would pay for the room.
    piece: Option<Box<PieceOf>>,
}

/// A member that is a piece of a chunked blob: the piece's number, its
/// offset in the blob and its own BLAKE3, which it must hash to.
#[derive(Debug, Clone, Copy)]
pub(super) struct PieceOf {
    index: usize,
    offset: u64,
    id: ContentId,
}

/// An algorithm name and the digest an entry declares for it.
pub(super) type UpstreamDigest = (String, Vec<u8>);

/// The entries of a manifest that declare upstream digests, by index,
/// sorted by blob (4 bytes an entry with digests): what a blob must also
/// hash to, found without a pass over every entry for each blob (a bundle
/// of many chunked blobs and many entries would otherwise cost their
/// product).
pub struct UpstreamDigests(Vec<(ContentId, u32)>);

impl UpstreamDigests {
    #[must_use]
    pub fn of(manifest: &Manifest) -> Self {
        let index = |i: usize| u32::try_from(i).expect("fewer than 2^32 entries");
        let mut with_digests: Vec<(ContentId, u32)> = Vec::new();
        for (i, entry) in manifest.entries.iter().enumerate() {
            if !entry.digests.is_empty() {
                crate::manifest::lean_vec::reserve(&mut with_digests, 1);
                with_digests.push((entry.blob, index(i)));
            }
        }
        // By blob, then index: the entries of one blob keep their order, and so do the digests they add.
        with_digests.sort_unstable();
        with_digests.shrink_to_fit();
        UpstreamDigests(with_digests)
    }

    /// The upstream digests the entries of blob `id` declare, each once, in
    /// the order of the entries (`manifest` is the one this was made of).
    #[must_use]
    pub fn of_blob(&self, manifest: &Manifest, id: &ContentId) -> Vec<UpstreamDigest> {
        let start = self.0.partition_point(|(blob, _)| blob < id);
        let mut digests = Vec::new();
        for (_, i) in self.0[start..].iter().take_while(|(blob, _)| blob == id) {
            add_digests(&mut digests, &manifest.entries.get(*i as usize).expect("an index of the entries"));
        }
        digests
    }
}

/// Adds the digests `entry` declares that `digests` does not hold yet.
fn add_digests(digests: &mut Vec<UpstreamDigest>, entry: &crate::manifest::Entry) {
    for (algorithm, digest) in &entry.digests {
        let pair = (algorithm.clone(), digest.0.clone());
        if !digests.contains(&pair) {
            digests.push(pair);
        }
    }
}

impl BlobPlan {
    pub(super) fn new(manifest: &Arc<Manifest>, volume: u32) -> Self {
        let index = |i: usize| u32::try_from(i).expect("fewer than 2^32 blobs and entries");
        let mut members: Vec<(u32, u32)> = Vec::new();
        for (at, blob) in manifest.blobs.iter().enumerate().filter(|(_, b)| b.carried) {
            if !blob.is_chunked() && blob.volume == volume {
                members.push((index(at), WHOLE));
            }
            let pieces = blob.pieces.iter().enumerate().filter(|(_, p)| p.volume == volume);
            members.extend(pieces.map(|(k, _)| (index(at), index(k))));
        }
        let id_of = |&(at, _): &(u32, u32)| manifest.blobs[at as usize].id;
        members.sort_unstable_by_key(id_of);
        // A volume holds at most one piece of a blob, and never a piece of a
        // blob it also holds whole (the manifest's rules, checked before).
        members.dedup_by_key(|m| id_of(m));
        members.shrink_to_fit();
        BlobPlan {
            given: vec![false; members.len()],
            left: members.len(),
            members,
            with_digests: UpstreamDigests::of(manifest),
            manifest: manifest.clone(),
        }
    }

    fn id_of(&self, member: usize) -> &ContentId {
        &self.manifest.blobs[self.members[member].0 as usize].id
    }

    /// The member `id` the volume gives now: `Err(true)` if it gave it
    /// already, `Err(false)` if it is not one this volume holds.
    fn take(&mut self, id: &ContentId) -> std::result::Result<Expected, bool> {
        let at = self.members.binary_search_by(|m| self.manifest.blobs[m.0 as usize].id.cmp(id)).map_err(|_| false)?;
        if std::mem::replace(&mut self.given[at], true) {
            return Err(true);
        }
        self.left -= 1;
        let (blob, piece) = self.members[at];
        let blob = &self.manifest.blobs[blob as usize];
        if piece == WHOLE {
            return Ok(Expected { size: blob.size, digests: self.digests_of(id), piece: None });
        }
        let (offset, of) = blob.pieces_at().nth(piece as usize).expect("a member's piece is one of its blob's");
        let piece = PieceOf { index: piece as usize, offset, id: of.id };
        Ok(Expected { size: of.size, digests: Vec::new(), piece: Some(Box::new(piece)) })
    }

    fn digests_of(&self, id: &ContentId) -> Vec<UpstreamDigest> {
        self.with_digests.of_blob(&self.manifest, id)
    }

    /// The first member not given yet, and how many are not.
    fn missing(&self) -> Option<(&ContentId, usize)> {
        let first = self.given.iter().position(|given| !given)?;
        Some((self.id_of(first), self.left))
    }
}

/// Step 4 and 5 for one volume, as a two-stage pipeline: this thread
/// decompresses and parses the volume while a second one hashes and writes,
/// so an import costs about its slower stage rather than their sum. Chunks
/// are recycled through a bounded channel, which caps memory at a few MiB.
pub(super) fn stream_blobs<R: io::Read, S: BlobSink>(
    volume: &mut VolumeReader<R>,
    plan: BlobPlan,
    sink: &mut S,
    progress: &dyn Progress,
    subject: &str,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Vec<Job>>(PIPELINE_DEPTH);
        let (recycle, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let writer = scope.spawn(move || hash_and_write(&queue, &recycle, sink, progress, subject));
        let mut batch = Batch { jobs: &jobs, pending: Vec::new(), bytes: 0 };
        let read = read_blobs(volume, plan, &mut batch, &spare, subject);
        // What was read before a failure is handed over too, as it was before batching.
        let _ = batch.flush();
        drop(jobs);
        let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The writer's failure is the first one: reading stops when it can no longer hand over.
        written.and(read)
    })
}

/// Batches in flight between the two stages, each of about [`CHUNK`] bytes.
const PIPELINE_DEPTH: usize = 4;
const CHUNK: usize = 1 << 20;

/// Most jobs in a batch. Jobs go over in batches because each hand-over
/// can wake the other thread: one a job, three a blob, and most of verify's
/// time at 100 000 small files went to the kernel switching threads.
const BATCH_JOBS: usize = 1024;

/// Jobs gathered until they hold a chunk's worth of data (or
/// [`BATCH_JOBS`] of them), then handed over at once.
struct Batch<'a> {
    jobs: &'a std::sync::mpsc::SyncSender<Vec<Job>>,
    pending: Vec<Job>,
    bytes: usize,
}

impl Batch<'_> {
    /// Adds `job`, handing the batch over once it is full; `Err` when the
    /// writing stage is gone.
    fn push(&mut self, job: Job) -> std::result::Result<(), ()> {
        let len = if let Job::Data(data) = &job { data.len() } else { 0 };
        // A batch holds at most a chunk's worth: as many bytes in flight as one chunk a job held.
        if self.bytes + len > CHUNK {
            self.flush()?;
        }
        self.bytes += len;
        self.pending.push(job);
        if self.bytes >= CHUNK || self.pending.len() >= BATCH_JOBS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::result::Result<(), ()> {
        self.bytes = 0;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.jobs.send(std::mem::take(&mut self.pending)).map_err(drop)
    }
}

/// What the reading stage hands to the writing stage.
enum Job {
    /// A member starts: its id, its size, the digests it must match and, for a piece, what it is.
    Begin(ContentId, u64, Vec<UpstreamDigest>, Option<PieceOf>),
    Data(Vec<u8>),
    End(ContentId, Vec<UpstreamDigest>, Option<PieceOf>),
}

/// The reading stage: every member must be a blob the plan expects, once, of its size.
fn read_blobs<R: io::Read>(
    volume: &mut VolumeReader<R>,
    mut plan: BlobPlan,
    jobs: &mut Batch<'_>,
    spare: &std::sync::mpsc::Receiver<Vec<u8>>,
    subject: &str,
) -> Result<()> {
    // A closed channel means the writing stage failed; its error is reported instead.
    let writer_gone = || Error::Usage(String::new());
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
        let Expected { size: expected_size, digests, piece } = plan.take(&id).map_err(|again| {
            let why = if again { "a second copy of blob" } else { "blob the manifest does not list for this volume:" };
            Error::rejected(subject, Rejection::UnexpectedMember(format!("{why} {}", id.short())))
        })?;
        let piece = piece.map(|p| *p);
        if size != expected_size {
            return Err(Error::rejected(
                subject,
                Rejection::Oversize(format!("blob {} is {size} bytes, the manifest says {expected_size}", id.short())),
            ));
        }
        jobs.push(Job::Begin(id, size, digests.clone(), piece)).map_err(|()| writer_gone())?;
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            // Whole chunks are recycled; a small blob's bytes get a buffer of their size.
            let mut chunk = if n == CHUNK {
                spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK))
            } else {
                Vec::with_capacity(n)
            };
            chunk.resize(n, 0);
            volume.read_data(&mut chunk)?;
            jobs.push(Job::Data(chunk)).map_err(|()| writer_gone())?;
            left -= n as u64;
        }
        volume.end_member(size).map_err(|r| Error::rejected(subject, r))?;
        jobs.push(Job::End(id, digests, piece)).map_err(|()| writer_gone())?;
    }
    if let Some((first, count)) = plan.missing() {
        return Err(Error::rejected(
            subject,
            Rejection::Truncated(format!("{count} blob(s) missing, first {}", first.short())),
        ));
    }
    Ok(())
}

/// The writing stage: hash each blob while writing it to the sink, and
/// commit it only when every digest matched.
fn hash_and_write<S: BlobSink>(
    queue: &std::sync::mpsc::Receiver<Vec<Job>>,
    recycle: &std::sync::mpsc::Sender<Vec<u8>>,
    sink: &mut S,
    progress: &dyn Progress,
    subject: &str,
) -> Result<()> {
    let mut current = None;
    for job in queue.iter().flatten() {
        match job {
            Job::Begin(id, size, digests, piece) => {
                let inner = match piece {
                    None => sink.begin(&id)?,
                    Some(piece) => sink.begin_piece(&id, piece.index, piece.offset)?,
                };
                current = Some(HashingWriter::new(inner, size, &digests, progress));
            }
            Job::Data(chunk) => {
                let writer = current.as_mut().expect("Begin comes first");
                writer.write_all(&chunk).map_err(|e| Error::io(Path::new(subject), e))?;
                if chunk.capacity() >= CHUNK {
                    let _ = recycle.send(chunk);
                }
            }
            Job::End(id, digests, None) => {
                let writer = current.take().expect("Begin comes first");
                let inner =
                    writer.check(&id, &digests).map_err(|m| Error::rejected(subject, Rejection::DigestMismatch(m)))?;
                sink.commit(&id, inner)?;
            }
            Job::End(id, _, Some(piece)) => {
                let writer = current.take().expect("Begin comes first");
                let inner = writer
                    .check_piece(&id, &piece)
                    .map_err(|m| Error::rejected(subject, Rejection::DigestMismatch(m)))?;
                sink.commit_piece(&id, piece.index, inner)?;
            }
        }
    }
    Ok(())
}

/// Hashes with BLAKE3 and every upstream algorithm the entries need while writing through.
pub(super) struct HashingWriter<'p, W> {
    inner: W,
    blake3: blake3::Hasher,
    sha1: Option<sha1::Sha1>,
    sha256: Option<sha2::Sha256>,
    sha512: Option<sha2::Sha512>,
    /// Seeded with git's blob header: a git blob id over the bytes that follow.
    git_sha1: Option<sha1::Sha1>,
    shards: Option<Shards>,
    progress: &'p dyn Progress,
}

/// SHA-256 of each shard of a blob, as [`crate::manifest::SHA256_SHARDS`] lays them out.
struct Shards {
    size: u64,
    /// Bytes the current shard still takes.
    left: u64,
    current: sha2::Sha256,
    /// The shard size and the digests of the shards done.
    out: Vec<u8>,
}

impl Shards {
    fn new(size: u64) -> Self {
        Shards { size, left: size, current: sha2::Sha256::new(), out: size.to_be_bytes().to_vec() }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = usize::try_from(self.left).unwrap_or(usize::MAX).min(data.len());
            self.current.update(&data[..take]);
            data = &data[take..];
            self.left -= take as u64;
            if self.left == 0 {
                let done = std::mem::take(&mut self.current);
                self.out.extend_from_slice(&done.finalize());
                self.left = self.size;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.left != self.size {
            self.out.extend_from_slice(&self.current.finalize());
        }
        self.out
    }
}

impl<'p, W: Write> HashingWriter<'p, W> {
    /// Hashes for `digests` over a blob of `size` bytes (the size seeds
    /// `git-sha1`; a piece, checked only against its BLAKE3, has no digests).
    pub(super) fn new(inner: W, size: u64, digests: &[UpstreamDigest], progress: &'p dyn Progress) -> Self {
        let wants = |name: &str| digests.iter().any(|(a, _)| a == name);
        HashingWriter {
            inner,
            blake3: blake3::Hasher::new(),
            sha1: wants("sha1").then(sha1::Sha1::new),
            sha256: wants("sha256").then(sha2::Sha256::new),
            sha512: wants("sha512").then(sha2::Sha512::new),
            git_sha1: wants("git-sha1").then(|| git_blob_hasher(size)),
            shards: digests
                .iter()
                .find(|(a, _)| a == crate::manifest::SHA256_SHARDS)
                .and_then(|(_, d)| crate::manifest::shards_of(d))
                .map(|(shard, _)| Shards::new(shard)),
            progress,
        }
    }

    /// A piece must hash to its own BLAKE3 (the whole blob's digests are
    /// checked once every piece is in place).
    fn check_piece(self, blob: &ContentId, piece: &PieceOf) -> Result<W, String> {
        let actual = ContentId(*self.blake3.finalize().as_bytes());
        if actual != piece.id {
            return Err(format!("piece {} of blob {} hashes to {}", piece.index + 1, blob.short(), actual.short()));
        }
        Ok(self.inner)
    }

    pub(super) fn check(self, id: &ContentId, digests: &[UpstreamDigest]) -> Result<W, String> {
        let actual = ContentId(*self.blake3.finalize().as_bytes());
        if actual != *id {
            return Err(format!("blob {} hashes to {}", id.short(), actual.short()));
        }
        let sha1 = self.sha1.map(|h| h.finalize().to_vec());
        let sha256 = self.sha256.map(|h| h.finalize().to_vec());
        let sha512 = self.sha512.map(|h| h.finalize().to_vec());
        let git_sha1 = self.git_sha1.map(|h| h.finalize().to_vec());
        let shards = self.shards.map(Shards::finish);
        for (algorithm, expected) in digests {
            let actual = match algorithm.as_str() {
                "sha1" => sha1.as_ref(),
                "sha256" => sha256.as_ref(),
                "sha512" => sha512.as_ref(),
                "git-sha1" => git_sha1.as_ref(),
                crate::manifest::SHA256_SHARDS => shards.as_ref(),
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
        if let Some(h) = &mut self.git_sha1 {
            h.update(done);
        }
        if let Some(h) = &mut self.shards {
            h.update(done);
        }
        self.progress.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-1 fed git's header for a blob of `size` bytes: what follows is the
/// blob, and the result its git blob id (`git hash-object`).
fn git_blob_hasher(size: u64) -> sha1::Sha1 {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {size}\0").as_bytes());
    hasher
}

/// The whole of a chunked blob, its pieces each verified already, read
/// back in order: it must hash to its BLAKE3 and to every upstream digest
/// its entries declare. Streams; `blob` names it in errors.
pub fn check_assembled(
    (manifest, upstream): (&Manifest, &UpstreamDigests),
    blob: &crate::manifest::Blob,
    mut data: impl io::Read,
    progress: &dyn Progress,
    subject: &str,
) -> Result<()> {
    let digests = upstream.of_blob(manifest, &blob.id);
    let mut writer = HashingWriter::new(io::sink(), blob.size, &digests, progress);
    let copied = io::copy(&mut io::Read::take(&mut data, blob.size), &mut writer)
        .map_err(|e| Error::io(Path::new(subject), e))?;
    if copied != blob.size {
        return Err(Error::rejected(
            subject,
            Rejection::Truncated(format!("blob {} assembled to {copied} of {} bytes", blob.id.short(), blob.size)),
        ));
    }
    writer.check(&blob.id, &digests).map(|_| ()).map_err(|m| Error::rejected(subject, Rejection::DigestMismatch(m)))
}

#[cfg(test)]
mod tests {

    #[test]
    fn jobs_go_over_in_order_in_batches_of_at_most_a_chunk() {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Vec<Job>>(1000);
        let mut batch = Batch { jobs: &jobs, pending: Vec::new(), bytes: 0 };
        let sizes = std::iter::repeat_n(40usize, 3000).chain([CHUNK, 7, CHUNK - 7, CHUNK, 1]);
        let mut sent = Vec::new();
        for (n, size) in sizes.enumerate() {
            let n = u8::try_from(n % 251).unwrap();
            batch.push(Job::Data(vec![n; size])).unwrap();
            sent.push((n, size));
        }
        batch.flush().unwrap();
        drop(jobs);
        let mut got = Vec::new();
        for jobs in queue {
            assert!(jobs.len() <= BATCH_JOBS);
            let bytes: usize = jobs.iter().map(|j| if let Job::Data(d) = j { d.len() } else { 0 }).sum();
            assert!(bytes <= CHUNK, "a batch of {bytes} bytes");
            got.extend(jobs.into_iter().map(|j| match j {
                Job::Data(d) => (d[0], d.len()),
                _ => unreachable!("only data was sent"),
            }));
        }
        assert_eq!(got, sent, "every job, in order");
    }

    #[test]
    fn shards_are_hashed_across_write_boundaries_the_last_one_short() {
        use sha2::Digest as _;
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
        let mut shards = Shards::new(1 << 20);
        for piece in data.chunks(333_333) {
            shards.update(piece);
        }
        let mut want = (1u64 << 20).to_be_bytes().to_vec();
        for shard in data.chunks(1 << 20) {
            want.extend_from_slice(&sha2::Sha256::digest(shard));
        }
        assert_eq!(shards.finish(), want);
        let mut exact = Shards::new(1 << 20);
        exact.update(&data[..2 << 20]);
        assert_eq!(exact.finish().len(), 8 + 2 * 32, "no empty shard after an exact multiple");
    }

    use super::*;
    use crate::progress::Silent;

    /// `git hash-object` of `data`, from git itself (the vectors below were
    /// taken from it); `None` where git is not installed.
    fn git_hash_object(data: &[u8]) -> Option<String> {
        let mut child = std::process::Command::new("git")
            .args(["hash-object", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(data).ok()?;
        let out = child.wait_with_output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Streams `data` in `pieces` writes through a writer checking `git-sha1` against `hex`.
    fn check_git_sha1(data: &[u8], hex: &str, pieces: usize) -> Result<(), String> {
        let digests = vec![("git-sha1".to_owned(), hex::decode(hex).unwrap())];
        let mut writer = HashingWriter::new(io::sink(), data.len() as u64, &digests, &Silent);
        for piece in data.chunks(data.len().div_ceil(pieces).max(1)) {
            writer.write_all(piece).unwrap();
        }
        writer.check(&ContentId::of(data), &digests).map(drop)
    }

    #[test]
    fn git_sha1_is_the_git_blob_id() {
        let vectors: [(&[u8], &str); 3] = [
            (b"hello\n", "ce013625030ba8dba906f756967f9e9ca394464a"),
            (b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
            (b"{\"a\": 1}\n", "cb5b2f69babc53f9145b45ad20b9a075d48717ef"),
        ];
        for (data, id) in vectors {
            if let Some(git) = git_hash_object(data) {
                assert_eq!(git, id, "git disagrees with the vector for {data:?}");
            }
            check_git_sha1(data, id, 1).unwrap();
            check_git_sha1(data, id, 3).unwrap();
        }
        // The plain SHA-1 of the bytes is not their git blob id, nor is a blob id of other bytes.
        let plain = hex::encode(<sha1::Sha1 as sha2::Digest>::digest(b"hello\n"));
        let err = check_git_sha1(b"hello\n", &plain, 1).unwrap_err();
        assert!(err.contains("upstream git-sha1 digest does not match"), "{err}");
        assert!(check_git_sha1(b"hello!", "ce013625030ba8dba906f756967f9e9ca394464a", 2).is_err());
    }

    #[test]
    fn an_assembled_blob_is_checked_against_its_git_sha1() {
        let data = b"hello\n";
        let mut manifest = crate::manifest::tests::sample();
        let blob = crate::manifest::Blob { id: ContentId::of(data), size: 6, volume: 0, carried: true, pieces: vec![] };
        let mut entry = crate::manifest::tests::entry_at("files", "hello.txt", data);
        let id = |hex: &str| crate::manifest::Digest(hex::decode(hex).unwrap());
        entry.digests.insert("git-sha1".into(), id("ce013625030ba8dba906f756967f9e9ca394464a"));
        manifest.entries = vec![entry].into();
        let upstream = UpstreamDigests::of(&manifest);
        check_assembled((&manifest, &upstream), &blob, &data[..], &Silent, "bundle").unwrap();
        manifest.entries[0].digests.insert("git-sha1".into(), id("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"));
        let err = check_assembled((&manifest, &upstream), &blob, &data[..], &Silent, "bundle").unwrap_err().to_string();
        assert!(err.contains("git-sha1 digest does not match"), "{err}");
    }
}
