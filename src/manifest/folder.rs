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
    pub root: &'a [u8],
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
        Some(KeptSegments { root_digest: ContentId::of(root), root, carried })
    }

    /// Every file to keep, with its bytes: the root, then the segments.
    pub fn files(&self) -> impl Iterator<Item = (ContentId, &'a [u8])> + '_ {
        std::iter::once((self.root_digest, self.root)).chain(self.carried.iter().copied())
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
