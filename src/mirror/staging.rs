//! A bundle's staging: its verified blobs and volume markers, kept across
//! runs until the set is complete (see the module above for the order that
//! makes a marker trustworthy after a crash).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BUILD, BUNDLE_RECORD};
use crate::durable::remove_path;
use crate::durable::writeback::DropBehind;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;

/// What `gc` needs to know about a bundle being imported (`bundle.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedBundle {
    pub channel: String,
    pub sequence: u64,
    /// Seconds since the epoch: staging of an expired bundle is abandoned.
    pub expires: u64,
    pub volumes: u32,
}

/// A bundle's verified blobs, kept across runs until the set is complete.
pub struct Staging {
    pub(super) dir: PathBuf,
    blobs: PathBuf,
    /// One marker per data volume verified and durable.
    volumes: PathBuf,
    /// Chunked blobs being assembled, one file each, the pieces written at
    /// their offsets (`chunks/<blob hex>`); a piece is durable once the
    /// marker of the volume that carried it is.
    chunks: PathBuf,
    /// Copies of the data volume files verified, kept (in a set with
    /// parity) so that a later run can rebuild a missing volume from them.
    copies: PathBuf,
    done: BTreeSet<u32>,
    /// The copy of the volume being verified, until it is done.
    pending_copy: Option<(u32, tempfile::NamedTempFile)>,
    /// Chunked blobs whose pieces this run wrote in order and checked whole
    /// on the way: assembling them is a rename. Not kept across runs.
    whole: BTreeSet<ContentId>,
}

impl Staging {
    /// The staging in `dir`, created if new, with what a killed run left
    /// half-written removed. `bundle` describes it for `gc`.
    pub(super) fn open(dir: PathBuf, bundle: &StagedBundle) -> Result<Self> {
        let staging = Staging {
            blobs: dir.join("blobs"),
            volumes: dir.join("volumes"),
            chunks: dir.join("chunks"),
            copies: dir.join("copies"),
            dir,
            done: BTreeSet::new(),
            pending_copy: None,
            whole: BTreeSet::new(),
        };
        // `chunks` and `copies` only when a bundle needs them.
        for sub in [&staging.dir, &staging.blobs, &staging.volumes] {
            fs::create_dir_all(sub).at(sub)?;
        }
        let record = staging.dir.join(BUNDLE_RECORD);
        if !record.exists() {
            crate::durable::write_atomically(&record, &serde_json::to_vec_pretty(bundle).expect("serializes"), 0o644)?;
        }
        staging.clear_leftovers()?;
        staging.load_done()
    }

    /// Removes what a killed run left half-written: partial blobs and a half-built generation.
    /// A chunk file is kept: the pieces of done volumes in it are durable,
    /// the rest is written again at its offsets when its volume is read again.
    fn clear_leftovers(&self) -> Result<()> {
        for folder in [&self.blobs, &self.copies] {
            if folder == &self.copies && !folder.is_dir() {
                continue;
            }
            for entry in fs::read_dir(folder).at(folder)? {
                let path = entry.at(folder)?.path();
                if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".part-")) {
                    remove_path(&path)?;
                }
            }
        }
        let build = self.dir.join(BUILD);
        if build.symlink_metadata().is_ok() {
            remove_path(&build)?;
        }
        Ok(())
    }

    fn load_done(mut self) -> Result<Self> {
        for entry in fs::read_dir(&self.volumes).at(&self.volumes)? {
            let name = entry.at(&self.volumes)?.file_name();
            if let Some(index) = name.to_str().and_then(|n| n.parse().ok()) {
                self.done.insert(index);
            }
        }
        Ok(self)
    }

    /// Data volumes verified and kept by earlier runs.
    #[must_use]
    pub fn done(&self) -> &BTreeSet<u32> {
        &self.done
    }

    /// Makes every staged blob's contents durable before anything is renamed
    /// into the object store: one `syncfs` of the mirror's filesystem instead
    /// of an fsync per blob, which on a mirror of many small files costs more
    /// than the hashing.
    pub(super) fn make_durable(&self) -> Result<()> {
        let dir = File::open(&self.blobs).at(&self.blobs)?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(&self.blobs, e.into()))
    }

    fn blob_path(&self, id: &ContentId) -> PathBuf {
        self.blobs.join(id.to_hex())
    }

    /// Puts a staged blob into the object store, unless the store has it;
    /// says whether it did. A hard link, not a move: until the import is
    /// published, the staging stays complete, so a publish that fails can
    /// take its new objects out again and a later run (or one after a `gc`)
    /// still finds every blob its volume markers promise.
    pub(super) fn promote(&self, id: &ContentId, objects: &Path) -> Result<bool> {
        let to = objects.join(id.to_hex());
        if to.exists() {
            return Ok(false);
        }
        fs::hard_link(self.blob_path(id), &to).at(&to)?;
        Ok(true)
    }

    /// Volume `index` was verified and kept by an earlier run.
    #[must_use]
    pub fn is_done(&self, index: u32) -> bool {
        self.done.contains(&index)
    }

    /// Volume `index` verified completely; its blobs are kept. The order
    /// that makes a marker trustworthy after a crash: the blobs' contents
    /// and names are durable first (syncfs), then the marker is written,
    /// renamed into place and its directory synced.
    /// A copy of the volume's file taken while it was read is named first,
    /// so the marker also promises the copy.
    pub fn volume_done(&mut self, index: u32) -> Result<()> {
        if let Some((copied, file)) = self.pending_copy.take()
            && copied == index
        {
            let path = self.copy_path(index);
            crate::durable::set_mode(file.path(), 0o644).at(&path)?;
            file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        }
        self.make_durable()?;
        crate::durable::write_atomically(&self.volumes.join(index.to_string()), b"", 0o644)?;
        self.done.insert(index);
        Ok(())
    }

    /// A writer for a blob: a temporary file in staging until
    /// [`Staging::commit_blob`] names it.
    pub fn begin_blob(&mut self) -> Result<StagedBlob> {
        let file = tempfile::Builder::new().prefix(".part-").tempfile_in(&self.blobs).at(&self.blobs)?;
        Ok(StagedBlob { file: Part::Whole(DropBehind::new(file)) })
    }

    /// Keeps blob `id`, written completely and every digest matched.
    pub fn commit_blob(&mut self, id: &ContentId, writer: StagedBlob) -> Result<()> {
        let path = self.blob_path(id);
        // Durability comes later, for all of a volume's blobs at once (volume_done).
        // Published files are world-readable (tempfile creates them 0600).
        let Part::Whole(file) = writer.file else {
            return Err(Error::Usage(format!(
                "{}: a piece committed as a whole blob; this is a bug in airlock",
                path.display()
            )));
        };
        let file = file.into_inner();
        crate::durable::set_mode(file.path(), 0o644).at(&path)?;
        file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }

    /// A writer at `offset` of the chunk file of blob `blob` (created if new),
    /// for one piece.
    pub fn begin_piece(&mut self, blob: &ContentId, offset: u64) -> Result<StagedBlob> {
        fs::create_dir_all(&self.chunks).at(&self.chunks)?;
        let path = self.chunk_path(blob);
        let mut file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).at(&path)?;
        Ok(StagedBlob { file: Part::Piece(DropBehind::at(file, offset)) })
    }

    /// The piece was written and matched its digest. Durability comes with
    /// its volume's marker ([`Staging::volume_done`]), as for blobs.
    pub fn commit_piece(&mut self, writer: StagedBlob) -> Result<()> {
        drop(writer);
        Ok(())
    }

    fn chunk_path(&self, blob: &ContentId) -> PathBuf {
        self.chunks.join(blob.to_hex())
    }

    /// Whether blob `id` is staged whole (a chunked one once assembled).
    #[must_use]
    pub fn has_blob(&self, id: &ContentId) -> bool {
        self.blob_path(id).is_file()
    }

    /// Every piece of chunked blob `blob` was written by this run, in order,
    /// and the whole checked on the way.
    pub fn checked_whole(&mut self, blob: &ContentId) {
        self.whole.insert(*blob);
    }

    /// Whether [`Staging::checked_whole`] was said of `blob` in this run.
    #[must_use]
    pub fn is_checked_whole(&self, blob: &ContentId) -> bool {
        self.whole.contains(blob)
    }

    /// The chunk file of blob `blob`, to read it whole once every piece is in.
    pub fn open_chunks(&self, blob: &ContentId) -> Result<File> {
        let path = self.chunk_path(blob);
        File::open(&path).at(&path)
    }

    /// The chunk file of blob `blob` was read whole and matched every
    /// digest: it becomes the staged blob, as if carried whole.
    pub fn chunks_assembled(&mut self, blob: &ContentId) -> Result<()> {
        let (from, to) = (self.chunk_path(blob), self.blob_path(blob));
        crate::durable::set_mode(&from, 0o644).at(&from)?;
        fs::rename(&from, &to).at(&to)
    }

    /// A file to copy data volume `index` into as it is read; it is kept
    /// when the volume is done ([`Staging::volume_done`]), dropped otherwise.
    pub fn begin_copy(&mut self, index: u32) -> Result<DropBehind<File>> {
        fs::create_dir_all(&self.copies).at(&self.copies)?;
        let file = tempfile::Builder::new().prefix(".part-").tempfile_in(&self.copies).at(&self.copies)?;
        let writer = file.as_file().try_clone().at(&self.copies)?;
        self.pending_copy = Some((index, file));
        Ok(DropBehind::new(writer))
    }

    fn copy_path(&self, index: u32) -> PathBuf {
        self.copies.join(format!("{index}.airlock"))
    }

    /// The copy of data volume `index` an earlier run verified and kept, if any.
    #[must_use]
    pub fn kept_copy(&self, index: u32) -> Option<PathBuf> {
        let path = self.copy_path(index);
        (self.done.contains(&index) && path.is_file()).then_some(path)
    }

    /// Removes the whole staging (after publication, or when nothing of it is worth keeping).
    pub fn discard(self) -> Result<()> {
        remove_path(&self.dir)
    }
}

/// A blob, or a piece of a chunked blob, being written into staging.
pub struct StagedBlob {
    file: Part,
}

enum Part {
    Whole(DropBehind<tempfile::NamedTempFile>),
    /// The chunk file, positioned at the piece's offset.
    Piece(DropBehind<File>),
}

impl Write for StagedBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Part::Whole(file) => file.write(buf),
            Part::Piece(file) => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Part::Whole(file) => file.flush(),
            Part::Piece(file) => file.flush(),
        }
    }
}
