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
    done: BTreeSet<u32>,
}

impl Staging {
    /// The staging in `dir`, created if new, with what a killed run left
    /// half-written removed. `bundle` describes it for `gc`.
    pub(super) fn open(dir: PathBuf, bundle: &StagedBundle) -> Result<Self> {
        let staging = Staging { blobs: dir.join("blobs"), volumes: dir.join("volumes"), dir, done: BTreeSet::new() };
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
    fn clear_leftovers(&self) -> Result<()> {
        for entry in fs::read_dir(&self.blobs).at(&self.blobs)? {
            let path = entry.at(&self.blobs)?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".part-")) {
                remove_path(&path)?;
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
    pub fn volume_done(&mut self, index: u32) -> Result<()> {
        self.make_durable()?;
        crate::durable::write_atomically(&self.volumes.join(index.to_string()), b"", 0o644)?;
        self.done.insert(index);
        Ok(())
    }

    /// A writer for a blob: a temporary file in staging until
    /// [`Staging::commit_blob`] names it.
    pub fn begin_blob(&mut self) -> Result<StagedBlob> {
        let file = tempfile::Builder::new().prefix(".part-").tempfile_in(&self.blobs).at(&self.blobs)?;
        Ok(StagedBlob { file: DropBehind::new(file) })
    }

    /// Keeps blob `id`, written completely and every digest matched.
    pub fn commit_blob(&mut self, id: &ContentId, writer: StagedBlob) -> Result<()> {
        let path = self.blob_path(id);
        // Durability comes later, for all of a volume's blobs at once (volume_done).
        // Published files are world-readable (tempfile creates them 0600).
        let file = writer.file.into_inner();
        crate::durable::set_mode(file.path(), 0o644).at(&path)?;
        file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }

    /// Removes the whole staging (after publication, or when nothing of it is worth keeping).
    pub fn discard(self) -> Result<()> {
        remove_path(&self.dir)
    }
}

/// A blob being written into staging.
pub struct StagedBlob {
    file: DropBehind<tempfile::NamedTempFile>,
}

impl Write for StagedBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
