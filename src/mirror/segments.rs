//! The manifest segments of the bundles a mirror imported (format 2), kept
//! by BLAKE3 so that an incremental bundle may leave out the segments its
//! channel's previous bundle carried (`carried: false` in the root):
//!
//! ```text
//! MIRROR/.airlock/segments/<blake3>     a segment, or a root (named by its digest)
//! s3://BUCKET/PREFIX/.airlock/segments/<blake3>
//! ```
//!
//! An import keeps its root and every segment it carries before it
//! publishes; `gc` keeps what the latest root of each channel names. What is
//! read back is checked against the signed root that names it, like a
//! carried segment, so a damaged or planted file here can only make an
//! import fail, never change what it publishes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{META, State};
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::canonical;
use crate::manifest::segments::{Root, SegmentSource};

/// Where the segments are, under the mirror's `.airlock`.
pub(super) const SEGMENTS: &str = "segments";

/// The bytes a bundle's manifest frame holds that the mirror keeps: the
/// signed root (by its digest) and each segment it carries (by its id).
pub struct KeptSegments<'a> {
    pub root_digest: ContentId,
    pub root: &'a [u8],
    pub carried: Vec<(ContentId, &'a [u8])>,
}

impl<'a> KeptSegments<'a> {
    /// What to keep of a format 2 manifest whose verified root is `root`
    /// and whose frame carries `segments`; `None` for format 1.
    #[must_use]
    pub fn of(root: &'a [u8], segments: Option<&'a [u8]>) -> Option<Self> {
        let segments = segments?;
        let parsed: Root = canonical::from_slice(root).ok()?;
        let mut at = 0usize;
        let mut carried = Vec::new();
        for r in parsed.blobs.iter().chain(&parsed.entries).filter(|r| r.carried) {
            // The root was verified against these bytes: sizes add up.
            let end = at + usize::try_from(r.size).ok()?;
            carried.push((r.id, segments.get(at..end)?));
            at = end;
        }
        Some(KeptSegments { root_digest: ContentId::of(root), root, carried })
    }

    /// Every key to write, with its bytes.
    pub(super) fn files(&self) -> impl Iterator<Item = (ContentId, &'a [u8])> + '_ {
        std::iter::once((self.root_digest, self.root)).chain(self.carried.iter().copied())
    }
}

/// The segments of a local mirror: read without the lock (what is read is
/// checked against a signed root; a file `gc` removed meanwhile is "not
/// held", and the import says what to do).
#[derive(Debug)]
pub struct LocalSegments {
    mirror: PathBuf,
    dir: PathBuf,
}

impl LocalSegments {
    #[must_use]
    pub fn new(mirror: &Path) -> Self {
        LocalSegments { mirror: mirror.to_owned(), dir: mirror.join(META).join(SEGMENTS) }
    }

    /// Writes every file of `kept` not yet here (and replaces a damaged
    /// one), then makes them durable with one `syncfs`, before the bundle
    /// is published. Returns those it wrote.
    pub(super) fn keep(&self, kept: &KeptSegments<'_>) -> Result<Vec<ContentId>> {
        fs::create_dir_all(&self.dir).at(&self.dir)?;
        let mut written = Vec::new();
        for (id, bytes) in kept.files() {
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

    /// Removes what [`LocalSegments::keep`] wrote for a bundle that was
    /// then not published (nothing else names them).
    pub(super) fn forget(&self, written: &[ContentId]) -> Result<()> {
        for id in written {
            crate::durable::remove_path(&self.dir.join(id.to_hex()))?;
        }
        Ok(())
    }

    /// Removes every segment and root that no channel's latest root names
    /// (and what a killed `keep` left); returns (files, bytes) removed.
    pub(super) fn collect(&self, state: &State, dry_run: bool) -> Result<(usize, u64)> {
        let live = live_segments(state, |id| read_root(&self.dir.join(id.to_hex())))?;
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let (mut removed, mut freed) = (0, 0);
        for entry in entries {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            let keep = name.to_str().and_then(ContentId::from_hex).is_some_and(|id| live.contains(&id));
            if !keep {
                freed += entry.metadata().map_or(0, |m| m.len());
                if !dry_run {
                    fs::remove_file(entry.path()).at(&entry.path())?;
                }
                removed += 1;
            }
        }
        Ok((removed, freed))
    }
}

impl SegmentSource for LocalSegments {
    fn segment(&self, id: &ContentId, size: u64) -> std::result::Result<Option<Vec<u8>>, String> {
        read_checked(&self.dir.join(id.to_hex()), id, size)
    }

    fn missing_advice(&self) -> String {
        format!(
            "the mirror {} does not hold it: import the channel's bundles in order (the one this bundle follows first), or ask for a --full bundle",
            self.mirror.display()
        )
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
pub(super) fn check_held(
    bytes: Vec<u8>,
    id: &ContentId,
    size: u64,
    place: &str,
) -> std::result::Result<Option<Vec<u8>>, String> {
    if bytes.len() as u64 != size || ContentId::of(&bytes) != *id {
        return Err(format!(
            "the mirror's copy {place} is damaged (it is not the segment the signed root names); remove it and ask for a --full bundle"
        ));
    }
    Ok(Some(bytes))
}

/// The root kept at `path`, if any (a root that does not parse names nothing).
fn read_root(path: &Path) -> Result<Option<Root>> {
    match fs::read(path) {
        Ok(bytes) => Ok(canonical::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The roots of each channel's latest import and every segment they name.
pub(super) fn live_segments(
    state: &State,
    read_root: impl Fn(&ContentId) -> Result<Option<Root>>,
) -> Result<std::collections::BTreeSet<ContentId>> {
    let mut latest: std::collections::BTreeMap<&str, &super::ImportRecord> = std::collections::BTreeMap::new();
    for record in &state.imports {
        let newer = latest.get(record.channel.as_str()).is_none_or(|held| held.sequence < record.sequence);
        if newer {
            latest.insert(&record.channel, record);
        }
    }
    let mut live = std::collections::BTreeSet::new();
    for record in latest.values() {
        let Some(digest) = ContentId::from_hex(&record.manifest_digest) else { continue };
        if let Some(root) = read_root(&digest)? {
            live.insert(digest);
            live.extend(root.blobs.iter().chain(&root.entries).map(|r| r.id));
        }
    }
    Ok(live)
}

/// The segments held where `--mirror` points, read-only: a folder (which
/// need not exist yet: it holds none) or object storage.
pub fn held_segments(mirror: &Path) -> Result<Arc<dyn SegmentSource>> {
    if super::is_bucket(mirror) {
        let url = mirror.to_str().expect("an s3:// address is UTF-8");
        return Ok(Arc::new(super::bucket::BucketSegments::open(url)?));
    }
    Ok(Arc::new(LocalSegments::new(mirror)))
}
