//! Manifest segments kept in a folder, one file per segment named by its
//! BLAKE3: the mirror's `.airlock/segments/` (what an import keeps for the
//! channel's next, incremental bundle) and the exporter's `STATE/segments/`
//! (so that an incremental bundle can be verified or co-signed on the
//! connected side). What is read back is checked against the signed root
//! that names it, so a damaged or planted file can only make a check fail.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::canonical;
use super::segments::{Root, SegmentSource};
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;

/// The bytes of a bundle's manifest frame worth keeping: the signed root
/// (by its digest) and each segment it carries (by its id).
pub struct KeptSegments<'a> {
    pub root_digest: ContentId,
    /// `None` in a batch of segments kept before their root ([`CarriedSegments`]).
    pub root: Option<&'a [u8]>,
    pub carried: Vec<(ContentId, &'a [u8])>,
}

impl<'a> KeptSegments<'a> {
    /// What to keep of a format 2 manifest whose root is `root` and whose
    /// frame carries `segments` (checked against each other already);
    /// `None` for format 1.
    #[must_use]
    pub fn of(root: &'a [u8], segments: Option<&'a [u8]>) -> Option<Self> {
        let segments = segments?;
        let parsed: Root = canonical::from_slice(root).ok()?;
        let mut at = 0usize;
        let mut carried = Vec::new();
        for r in parsed.blobs.iter().chain(&parsed.entries).filter(|r| r.carried) {
            let end = at + usize::try_from(r.size).ok()?;
            carried.push((r.id, segments.get(at..end)?));
            at = end;
        }
        Some(KeptSegments { root_digest: ContentId::of(root), root: Some(root), carried })
    }

    /// Every file to keep, with its bytes: the root, then the segments.
    pub fn files(&self) -> impl Iterator<Item = (ContentId, &'a [u8])> + '_ {
        let root = self.root.map(|root| (self.root_digest, root));
        root.into_iter().chain(self.carried.iter().copied())
    }
}

/// Why [`CarriedSegments`] did not keep every segment, and the files it had
/// written before (that nothing keeps: to be forgotten).
#[derive(Debug)]
pub struct NotKept {
    pub error: Error,
    pub written: Vec<ContentId>,
}

/// Segments kept in batches of about this many bytes.
const BATCH_BYTES: usize = 4 << 20;

/// What keeps one batch of [`KeptSegments`]; returns the files it wrote.
pub type KeepBatch<'k> = dyn FnMut(&KeptSegments<'_>) -> Result<Vec<ContentId>> + 'k;

/// The segments a format 2 root says its frame carries, cut out of the
/// frame's bytes as they are written here, each checked against the id
/// the root gives it, and kept in batches of about [`BATCH_BYTES`]
/// (the root last, once every segment it names is kept): the segments
/// are never held whole.
pub struct CarriedSegments<'a, 'k> {
    root: &'a [u8],
    root_digest: ContentId,
    /// The carried segments' ids and sizes, in the frame's order.
    refs: Vec<(ContentId, u64)>,
    next: usize,
    current: Vec<u8>,
    batch: Vec<(ContentId, Vec<u8>)>,
    batch_bytes: usize,
    /// A batch is kept once it holds this many bytes ([`BATCH_BYTES`]).
    batch_limit: usize,
    keep: &'a mut KeepBatch<'k>,
    written: Vec<ContentId>,
    /// Why keeping stopped (the writer's caller sees an I/O error only).
    failed: Option<Error>,
}

impl<'a, 'k> CarriedSegments<'a, 'k> {
    /// For the format 2 root `root` (the signed payload); `None` when it
    /// does not parse as one.
    pub fn new(root: &'a [u8], keep: &'a mut KeepBatch<'k>) -> Option<Self> {
        let parsed: Root = canonical::from_slice(root).ok()?;
        let refs = parsed.blobs.iter().chain(&parsed.entries).filter(|r| r.carried).map(|r| (r.id, r.size)).collect();
        let (current, batch) = (Vec::new(), Vec::new());
        let root_digest = ContentId::of(root);
        let (batch_bytes, batch_limit, written, failed) = (0, BATCH_BYTES, Vec::new(), None);
        Some(CarriedSegments {
            root,
            root_digest,
            refs,
            next: 0,
            current,
            batch,
            batch_bytes,
            batch_limit,
            keep,
            written,
            failed,
        })
    }

    /// Ends the stream (`streamed` is how writing it ended): keeps the last
    /// batch and the root, and returns every file written; on any failure
    /// what was written is returned in the error's place to be forgotten.
    pub fn finish(mut self, streamed: Result<()>) -> std::result::Result<Vec<ContentId>, NotKept> {
        let ended = match (self.failed.take(), streamed) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) if self.next < self.refs.len() || !self.current.is_empty() => {
                Err(Error::Usage("the manifest frame ended before the segments its root names".into()))
            }
            (None, Ok(())) => self.keep_batch(true),
        };
        match ended {
            Ok(()) => Ok(self.written),
            Err(error) => Err(NotKept { error, written: self.written }),
        }
    }

    fn keep_batch(&mut self, with_root: bool) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let carried = batch.iter().map(|(id, bytes)| (*id, bytes.as_slice())).collect();
        let kept = KeptSegments { root_digest: self.root_digest, root: with_root.then_some(self.root), carried };
        self.written.extend((self.keep)(&kept)?);
        Ok(())
    }

    /// Takes `buf` into the segment being cut; returns how much it took.
    fn take(&mut self, buf: &[u8]) -> Result<usize> {
        let (id, size) = *self
            .refs
            .get(self.next)
            .ok_or_else(|| Error::Usage("the manifest frame holds more than the segments its root names".into()))?;
        let want = usize::try_from(size).unwrap_or(usize::MAX) - self.current.len();
        let n = want.min(buf.len());
        self.current.extend_from_slice(&buf[..n]);
        if n == want {
            let bytes = std::mem::take(&mut self.current);
            if ContentId::of(&bytes) != id {
                return Err(Error::Usage(format!(
                    "manifest segment {} is not the one its root names: the bundle changed while it was read",
                    id.short()
                )));
            }
            self.next += 1;
            self.batch_bytes += bytes.len();
            self.batch.push((id, bytes));
            if self.batch_bytes >= self.batch_limit {
                self.keep_batch(false)?;
            }
        }
        Ok(n)
    }
}

impl std::io::Write for CarriedSegments<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed.is_some() {
            return Err(std::io::Error::other("keeping the manifest segments failed"));
        }
        self.take(buf).map_err(|e| {
            self.failed = Some(e);
            std::io::Error::other("keeping the manifest segments failed")
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A folder of segments by BLAKE3.
#[derive(Debug, Clone)]
pub struct SegmentFolder {
    dir: PathBuf,
    /// Ends the line naming a segment not held here: "…; <advice>".
    advice: String,
}

impl SegmentFolder {
    #[must_use]
    pub fn new(dir: PathBuf, advice: String) -> Self {
        SegmentFolder { dir, advice }
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes every file not yet here (and replaces a damaged one), then
    /// makes them durable with one `syncfs`. Returns those it wrote.
    pub fn keep<'a>(&self, files: impl Iterator<Item = (ContentId, &'a [u8])>) -> Result<Vec<ContentId>> {
        fs::create_dir_all(&self.dir).at(&self.dir)?;
        let mut written = Vec::new();
        for (id, bytes) in files {
            let path = self.dir.join(id.to_hex());
            if read_checked(&path, &id, bytes.len() as u64).is_ok_and(|held| held.is_some()) {
                continue;
            }
            let tmp = self.dir.join(format!(".part-{}", id.to_hex()));
            fs::write(&tmp, bytes).at(&tmp)?;
            fs::rename(&tmp, &path).at(&path)?;
            written.push(id);
        }
        crate::durable::OpenDir::open(&self.dir)?.sync_filesystem()?;
        Ok(written)
    }

    /// Removes the files `written` (what [`SegmentFolder::keep`] wrote for
    /// something that was then not kept).
    pub fn forget(&self, written: &[ContentId]) -> Result<()> {
        written.iter().try_for_each(|id| crate::durable::remove_path(&self.dir.join(id.to_hex())))
    }

    /// Removes every file not in `live` (and what a killed `keep` left);
    /// returns (files, bytes) removed, or with `dry_run` would remove.
    pub fn retain(&self, live: &std::collections::BTreeSet<ContentId>, dry_run: bool) -> Result<(usize, u64)> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let (mut removed, mut freed) = (0, 0);
        for entry in entries {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            if name.to_str().and_then(ContentId::from_hex).is_some_and(|id| live.contains(&id)) {
                continue;
            }
            freed += entry.metadata().map_or(0, |m| m.len());
            if !dry_run {
                fs::remove_file(entry.path()).at(&entry.path())?;
            }
            removed += 1;
        }
        Ok((removed, freed))
    }

    /// The root kept under `digest`, if any (one that does not parse names nothing).
    pub fn root(&self, digest: &ContentId) -> Result<Option<Root>> {
        let path = self.dir.join(digest.to_hex());
        match fs::read(&path) {
            Ok(bytes) => Ok(canonical::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

impl SegmentSource for SegmentFolder {
    fn segment(&self, id: &ContentId, size: u64) -> std::result::Result<Option<Vec<u8>>, String> {
        read_checked(&self.dir.join(id.to_hex()), id, size)
    }

    fn missing_advice(&self) -> String {
        self.advice.clone()
    }
}

/// The file at `path` if it is segment `id` of `size` bytes; `None` when
/// there is no such file; an error naming it when it holds something else.
fn read_checked(path: &Path, id: &ContentId, size: u64) -> std::result::Result<Option<Vec<u8>>, String> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(size.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    check_held(bytes, id, size, &path.display().to_string())
}

/// `bytes` read from `place` if they are segment `id` of `size` bytes.
pub fn check_held(
    bytes: Vec<u8>,
    id: &ContentId,
    size: u64,
    place: &str,
) -> std::result::Result<Option<Vec<u8>>, String> {
    if bytes.len() as u64 != size || ContentId::of(&bytes) != *id {
        return Err(format!(
            "the copy {place} is damaged (it is not the segment the signed root names); remove it and ask for a --full bundle"
        ));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::manifest::segments::{encode, tests::manifest_of};

    /// The batches a [`CarriedSegments`] handed on: whether each had the root, and its segments.
    type Batches = Vec<(bool, Vec<ContentId>)>;

    /// Writes `bytes` into a [`CarriedSegments`] of `root` in 1 000-byte
    /// writes, batches of at least 64 KiB; what each batch held, and the end.
    fn stream(root: &[u8], bytes: &[u8]) -> (Batches, std::result::Result<Vec<ContentId>, NotKept>) {
        let mut batches = Vec::new();
        let mut keep = |kept: &KeptSegments<'_>| {
            let ids: Vec<ContentId> = kept.carried.iter().map(|(id, _)| *id).collect();
            batches.push((kept.root.is_some(), ids));
            Ok(kept.files().map(|(id, _)| id).collect())
        };
        let mut carried = CarriedSegments::new(root, &mut keep).unwrap();
        carried.batch_limit = 64 << 10;
        let streamed =
            bytes.chunks(1000).try_for_each(|chunk| carried.write_all(chunk)).map_err(|e| Error::io(Path::new("v"), e));
        let end = carried.finish(streamed);
        (batches, end)
    }

    #[test]
    fn carried_segments_are_kept_in_batches_each_checked_the_root_last() {
        let encoded = encode(&manifest_of(3000)).unwrap();
        let root: Root = canonical::from_slice(&encoded.root).unwrap();
        let ids: Vec<ContentId> = root.blobs.iter().chain(&root.entries).map(|r| r.id).collect();
        let (batches, end) = stream(&encoded.root, &encoded.segments);
        let written = end.unwrap();
        assert!(batches.len() > 2, "{} batches", batches.len());
        assert_eq!(batches.iter().filter(|(with_root, _)| *with_root).count(), 1);
        assert!(batches.last().unwrap().0, "the root comes once its segments are kept");
        assert_eq!(batches.iter().flat_map(|(_, ids)| ids.clone()).collect::<Vec<_>>(), ids);
        assert_eq!(written.len(), ids.len() + 1);

        let mut damaged = encoded.segments.clone();
        let at = damaged.len() / 2;
        damaged[at] ^= 1;
        let (batches, end) = stream(&encoded.root, &damaged);
        let NotKept { error, written } = end.unwrap_err();
        assert!(error.to_string().contains("is not the one its root names"), "{error}");
        assert!(batches.iter().all(|(with_root, _)| !with_root), "no root for a damaged frame");
        assert_eq!(written.len(), batches.iter().map(|(_, ids)| ids.len()).sum::<usize>(), "to be forgotten");

        let (_, end) = stream(&encoded.root, &encoded.segments[..encoded.segments.len() - 1]);
        assert!(end.unwrap_err().error.to_string().contains("ended before"));
    }
}
