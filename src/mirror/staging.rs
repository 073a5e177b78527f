//! A bundle's staging: its verified blobs and volume markers, kept across
//! runs until the set is complete (see the module above for the order that
//! makes a marker trustworthy after a crash).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::fs::AtFlags;
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::unnamed::{self, Ahead};
use super::{BUILD, BUNDLE_RECORD};
use crate::durable::writeback::DropBehind;
use crate::durable::{OpenDir, remove_path};
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

/// The mode of every staged blob, and so of every published file: world-readable.
const BLOB_MODE: u32 = 0o644;

/// A bundle's verified blobs, kept across runs until the set is complete.
pub struct Staging {
    pub(super) dir: PathBuf,
    blobs: PathBuf,
    /// `blobs`, held open: a blob is created, named and promoted relative
    /// to it, with no walk of the staging's path per blob.
    blobs_dir: OpenDir,
    /// How blobs are created (see [`Creation`]); `Unnamed` until the file
    /// system refuses it.
    creation: Creation,
    /// Unnamed files created ahead of the blobs, from the first blob on.
    ahead: Option<Ahead>,
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
    pub(super) fn open(dir: &Path, bundle: &StagedBundle) -> Result<Self> {
        // Absolute once here: the temporary files of the named creation and
        // of the volume copies would otherwise look up the working
        // directory once each (tempfile makes their paths absolute).
        let dir = std::path::absolute(dir).at(dir)?;
        let blobs = dir.join("blobs");
        // `chunks` and `copies` only when a bundle needs them.
        for sub in [&dir, &blobs, &dir.join("volumes")] {
            fs::create_dir_all(sub).at(sub)?;
        }
        let staging = Staging {
            blobs_dir: OpenDir::open(&blobs)?,
            creation: Creation::first_choice(),
            ahead: None,
            blobs,
            volumes: dir.join("volumes"),
            chunks: dir.join("chunks"),
            copies: dir.join("copies"),
            dir,
            done: BTreeSet::new(),
            pending_copy: None,
            whole: BTreeSet::new(),
        };
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
        self.blobs_dir.sync_filesystem()
    }

    pub(super) fn blob_path(&self, id: &ContentId) -> PathBuf {
        self.blobs.join(id.to_hex())
    }

    /// Puts a staged blob into the object store, unless the store has it;
    /// says whether it did. A hard link, not a move: until the import is
    /// published, the staging stays complete, so a publish that fails can
    /// take its new objects out again and a later run (or one after a `gc`)
    /// still finds every blob its volume markers promise.
    /// One `linkat` per blob: a store that has the blob already says so by
    /// refusing the link (EEXIST), with no `stat` before it.
    pub(super) fn promote(&self, id: &ContentId, objects: &OpenDir) -> Result<bool> {
        let name = id.to_hex();
        match rustix::fs::linkat(&self.blobs_dir.fd, &name, &objects.fd, &name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(Error::io(&objects.join(&name), e.into())),
        }
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

    /// A writer for a blob: a file in staging without a name (or, where the
    /// file system cannot make one, a `.part-` file) until
    /// [`Staging::commit_blob`] names it.
    pub fn begin_blob(&mut self) -> Result<StagedBlob> {
        if self.creation == Creation::Unnamed {
            match self.next_unnamed() {
                Ok(file) => return Ok(StagedBlob { file: Part::Unnamed(DropBehind::new(file)) }),
                Err(e) if unnamed::unsupported(e) => self.creation = Creation::Named,
                Err(e) => return Err(Error::io(&self.blobs, e.into())),
            }
        }
        self.begin_named_blob()
    }

    /// The next of the unnamed files created ahead (the creator started on
    /// the first); after a failure the creator has ended, and is started
    /// again if another blob comes.
    fn next_unnamed(&mut self) -> rustix::io::Result<File> {
        let ahead = match &mut self.ahead {
            Some(ahead) => ahead,
            None => self.ahead.insert(Ahead::start(&self.blobs_dir.fd, BLOB_MODE).map_err(|e| io_errno(&e))?),
        };
        ahead.next().inspect_err(|_| self.ahead = None)
    }

    /// [`Staging::begin_blob`] where files cannot be created unnamed: a
    /// `.part-` file, renamed to the blob's name by [`Staging::commit_blob`].
    fn begin_named_blob(&mut self) -> Result<StagedBlob> {
        let file = tempfile::Builder::new().prefix(".part-").tempfile_in(&self.blobs).at(&self.blobs)?;
        Ok(StagedBlob { file: Part::Named(DropBehind::new(file)) })
    }

    /// Keeps blob `id`, written completely and every digest matched: gives
    /// its file the blob's name. Durability comes later, for all of a
    /// volume's blobs at once ([`Staging::volume_done`]).
    pub fn commit_blob(&mut self, id: &ContentId, writer: StagedBlob) -> Result<()> {
        let path = self.blob_path(id);
        match writer.file {
            Part::Unnamed(file) => self.name_unnamed(&file.into_inner(), id),
            Part::Named(file) => {
                let file = file.into_inner();
                // Published files are world-readable (tempfile creates them 0600).
                file.as_file().set_permissions(crate::durable::permissions(BLOB_MODE)).at(&path)?;
                file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
                Ok(())
            }
            Part::Piece(_) => Err(Error::Usage(format!(
                "{}: a piece committed as a whole blob; this is a bug in airlock",
                path.display()
            ))),
        }
    }

    /// Links the unnamed `file` at blob `id`'s name: one `linkat` through `/proc/self/fd`.
    fn name_unnamed(&self, file: &File, id: &ContentId) -> Result<()> {
        let name = id.to_hex();
        let source = unnamed::proc_fd_path(file);
        match rustix::fs::linkat(rustix::fs::CWD, &source, &self.blobs_dir.fd, &name, AtFlags::SYMLINK_FOLLOW) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => self.replace_with_unnamed(&source, &name),
            Err(e) => Err(Error::io(&self.blob_path(id), e.into())),
        }
    }

    /// The blob's name is taken: by a run killed before this volume's
    /// marker, so what it names may not be durable, or not even whole. The
    /// verified file replaces it by a rename, so the name never goes
    /// missing (a blob another volume carried too and marked done keeps
    /// its name through a crash here).
    fn replace_with_unnamed(&self, source: &str, name: &str) -> Result<()> {
        let part = format!(".part-{name}");
        let at_part = self.blobs.join(&part);
        match rustix::fs::unlinkat(&self.blobs_dir.fd, &part, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(Error::io(&at_part, e.into())),
        }
        rustix::fs::linkat(rustix::fs::CWD, source, &self.blobs_dir.fd, &part, AtFlags::SYMLINK_FOLLOW)
            .map_err(|e| Error::io(&at_part, e.into()))?;
        rustix::fs::renameat(&self.blobs_dir.fd, &part, &self.blobs_dir.fd, name)
            .map_err(|e| Error::io(&self.blobs.join(name), e.into()))
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
    pub fn discard(mut self) -> Result<()> {
        // The creator first, so that it creates nothing in a folder being removed.
        self.ahead = None;
        remove_path(&self.dir)
    }
}

/// How a staging creates its blobs' files.
///
/// A `.part-` file and a rename cost three metadata calls per blob more
/// than a file created without a name (`O_TMPFILE`) and linked at its name
/// once verified: the `.part-` name's creation, a `chmod` (tempfile creates
/// 0600) and the rename, on top of the `link` both make. On a mirror of many
/// small files those calls are most of the import's kernel time. A file
/// without a name also leaves nothing behind when the run is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    /// `O_TMPFILE`, created ahead ([`Ahead`]) and linked through `/proc/self/fd`.
    Unnamed,
    /// A `.part-` file renamed to the blob's name: the file system (or an
    /// old kernel) cannot create files without a name, or `/proc` is not
    /// mounted to link them through.
    Named,
}

impl Creation {
    fn first_choice() -> Self {
        if Path::new("/proc/self/fd").is_dir() { Creation::Unnamed } else { Creation::Named }
    }
}

/// An error the thread creating files could not be started with, as the
/// errno the creation's own errors are.
fn io_errno(e: &io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error)
}

/// A blob, or a piece of a chunked blob, being written into staging.
pub struct StagedBlob {
    file: Part,
}

enum Part {
    /// A whole blob in a file without a name yet.
    Unnamed(DropBehind<File>),
    /// A whole blob in a `.part-` file (see [`Creation::Named`]).
    Named(DropBehind<tempfile::NamedTempFile>),
    /// The chunk file, positioned at the piece's offset.
    Piece(DropBehind<File>),
}

impl Write for StagedBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Part::Unnamed(file) | Part::Piece(file) => file.write(buf),
            Part::Named(file) => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Part::Unnamed(file) | Part::Piece(file) => file.flush(),
            Part::Named(file) => file.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn staging_in(dir: &Path) -> Staging {
        let bundle = StagedBundle { channel: "stable".into(), sequence: 1, expires: u64::MAX, volumes: 1 };
        Staging::open(&dir.join("staging"), &bundle).unwrap()
    }

    fn stage(staging: &mut Staging, content: &[u8]) -> ContentId {
        let id = ContentId::of(content);
        let mut writer = staging.begin_blob().unwrap();
        writer.write_all(content).unwrap();
        staging.commit_blob(&id, writer).unwrap();
        id
    }

    /// Every name in the staging's `blobs` folder.
    fn names(staging: &Staging) -> BTreeSet<String> {
        fs::read_dir(&staging.blobs).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
    }

    fn assert_staged(staging: &Staging, id: &ContentId, content: &[u8]) {
        let path = staging.blob_path(id);
        assert_eq!(fs::read(&path).unwrap(), content);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, BLOB_MODE);
    }

    #[test]
    fn blobs_get_their_name_and_mode_and_nothing_else_whichever_the_creation() {
        for creation in [Creation::first_choice(), Creation::Named] {
            let dir = tempfile::tempdir().unwrap();
            let mut staging = staging_in(dir.path());
            staging.creation = creation;
            let (a, b) = (stage(&mut staging, b"first blob"), stage(&mut staging, b"second"));
            assert_staged(&staging, &a, b"first blob");
            assert_staged(&staging, &b, b"second");
            assert_eq!(names(&staging), BTreeSet::from([a.to_hex(), b.to_hex()]), "{creation:?} left other names");
        }
    }

    #[test]
    fn files_are_created_without_a_name_where_the_file_system_can() {
        let dir = tempfile::tempdir().unwrap();
        let mut staging = staging_in(dir.path());
        let writer = staging.begin_blob().unwrap();
        if staging.creation == Creation::Unnamed {
            assert!(names(&staging).is_empty(), "a blob being written has no name yet");
        }
        drop(writer);
        assert!(names(&staging).is_empty(), "a blob never committed leaves nothing");
    }

    #[test]
    fn a_name_a_killed_run_left_is_replaced_by_the_verified_blob() {
        for creation in [Creation::first_choice(), Creation::Named] {
            let dir = tempfile::tempdir().unwrap();
            let mut staging = staging_in(dir.path());
            staging.creation = creation;
            let id = ContentId::of(b"verified");
            fs::write(staging.blob_path(&id), b"torn").unwrap();
            let linked_elsewhere = dir.path().join("elsewhere");
            fs::hard_link(staging.blob_path(&id), &linked_elsewhere).unwrap();
            stage(&mut staging, b"verified");
            assert_staged(&staging, &id, b"verified");
            assert_eq!(fs::read(&linked_elsewhere).unwrap(), b"torn", "replaced by a rename, not written over");
            assert_eq!(names(&staging), BTreeSet::from([id.to_hex()]), "{creation:?} left other names");
        }
    }

    #[test]
    fn the_errors_of_a_file_system_without_unnamed_files_choose_the_named_creation() {
        for errno in [Errno::OPNOTSUPP, Errno::ISDIR, Errno::INVAL] {
            assert!(unnamed::unsupported(errno), "{errno:?}");
        }
        for errno in [Errno::NOSPC, Errno::ACCESS, Errno::NOENT] {
            assert!(!unnamed::unsupported(errno), "{errno:?} is a failure, not a missing feature");
        }
    }

    #[test]
    fn promoting_links_the_staged_blob_once_and_reports_a_blob_the_store_has() {
        let dir = tempfile::tempdir().unwrap();
        let mut staging = staging_in(dir.path());
        let id = stage(&mut staging, b"blob");
        let objects = dir.path().join("objects");
        fs::create_dir(&objects).unwrap();
        let objects = OpenDir::open(&objects).unwrap();
        assert!(staging.promote(&id, &objects).unwrap());
        assert!(!staging.promote(&id, &objects).unwrap(), "the store had it");
        let object = fs::metadata(objects.join(&id.to_hex())).unwrap();
        assert_eq!(object.ino(), fs::metadata(staging.blob_path(&id)).unwrap().ino(), "a hard link of the staged blob");
    }
}
