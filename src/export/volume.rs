//! Writing a data volume: the manifest frame, the blobs it carries, its
//! seal; and the one-file bundle written that way.

use std::fs::File;
use std::io::{BufWriter, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use super::ExportOptions;
use super::manifest::seal_volume;
use crate::bundle::ManifestFrame;
use crate::bundle::writer::{BlobWriteError, OUT_WRITE_BUFFER, VolumeWriter, write_seal};
use crate::durable::Existing;
use crate::durable::writeback::DropBehind;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::{Blob, Manifest, Piece};
use crate::progress::{Progress, ProgressReader};

/// The folder `out` will be written in; it must exist.
pub(super) fn out_dir(out: &Path) -> Result<&Path> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!("{}: the folder for --out does not exist; create it first", dir.display())));
    }
    Ok(dir)
}

/// Writes the volume to a temporary file beside `out` and renames it into
/// place only when complete; returns its size.
pub(super) fn write_volume(
    options: &ExportOptions,
    manifest: &Manifest,
    manifest_digest: ContentId,
    sealed: ManifestFrame,
    sources: &[PathBuf],
    progress: &dyn Progress,
) -> Result<u64> {
    let out = &options.out;
    let dir = out_dir(out)?;
    let tmp = tempfile::Builder::new().prefix(".airlock-export-").tempfile_in(dir).at(dir)?;
    let writer = start_volume(tmp.as_file(), out, &sealed, options.threads)?;
    // The one volume holds the envelope now: free it before the compressor's buffers are taken.
    drop(sealed);
    progress.start("writing", manifest.carried_bytes());
    let contents = VolumeContents {
        index: 0,
        info: None,
        blobs: with_sources(manifest, sources, |b| b.carried),
        pieces: Vec::new(),
    };
    fill_volume(writer, tmp.as_file(), out, options, manifest_digest, &contents, progress)?;
    progress.finish();
    let size = tmp.as_file().metadata().at(out)?.len();
    crate::durable::set_mode(tmp.path(), 0o644).at(out)?;
    // Checked again before the rename: the export may have taken hours.
    crate::durable::check_output(out, "--out", Existing::unless(options.force), &[])?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    crate::durable::sync_dir(dir)?;
    Ok(size)
}

/// What goes into one data volume.
pub(super) struct VolumeContents<'m> {
    pub(super) index: u32,
    /// `volume.cbor`, in a split set.
    pub(super) info: Option<Vec<u8>>,
    /// The blobs, with where the bytes of each are.
    pub(super) blobs: Vec<(&'m Blob, &'m Path)>,
    /// The pieces of chunked blobs: the blob, where its bytes are, the
    /// piece's offset in it and the piece.
    pub(super) pieces: Vec<(&'m Blob, &'m Path, u64, &'m Piece)>,
}

/// The pieces data volume `index` carries, each with its blob's source.
pub(super) fn pieces_with_sources<'m>(
    manifest: &'m Manifest,
    sources: &'m [PathBuf],
    index: u32,
) -> Vec<(&'m Blob, &'m Path, u64, &'m Piece)> {
    manifest
        .blobs
        .iter()
        .zip(sources)
        .filter(|(blob, _)| blob.carried)
        .flat_map(|(blob, path)| {
            blob.pieces_at().filter(move |(_, p)| p.volume == index).map(move |(at, p)| (blob, path.as_path(), at, p))
        })
        .collect()
}

/// The manifest's blobs that `keep` selects, each with its source (`sources`
/// is in the order of the manifest's blobs).
pub(super) fn with_sources<'m>(
    manifest: &'m Manifest,
    sources: &'m [PathBuf],
    keep: impl Fn(&Blob) -> bool,
) -> Vec<(&'m Blob, &'m Path)> {
    manifest
        .blobs
        .iter()
        .zip(sources)
        .filter(|(blob, _)| keep(blob))
        .map(|(blob, path)| (blob, path.as_path()))
        .collect()
}

/// A volume being written into `file` (named `name` in errors); frame 1,
/// the manifest's `sealed` envelope, is written.
pub(super) fn start_volume(
    file: &File,
    name: &Path,
    sealed: &ManifestFrame,
    threads: u32,
) -> Result<VolumeWriter<BufWriter<DropBehind<File>>>> {
    // A handle of its own for the writer thread; `file` stays the caller's, to sync.
    let handle = file.try_clone().at(name)?;
    VolumeWriter::new(BufWriter::with_capacity(OUT_WRITE_BUFFER, DropBehind::new(handle)), sealed, threads).at(name)
}

/// The error for a source whose bytes are not the ones the manifest names.
/// A copy in the download cache is removed, so the next run fetches it
/// again: downloads are not fsynced (the bytes are checked here, as they
/// are written into the bundle, so a copy a crash damaged costs one run
/// rather than a gigabyte of waiting for the disk in every export).
pub(super) fn changed(source: &Path, cache: &Path) -> Error {
    if source.starts_with(cache) {
        return crate::fetch::cache::damaged_copy(source);
    }
    changed_while_exported(source)
}

/// The error for an input file that changed while it was read.
pub(super) fn changed_while_exported(source: &Path) -> Error {
    Error::Usage(format!("{}: changed while it was being exported; run the export again", source.display()))
}

/// Writes the rest of one data volume into `writer`, which writes `file`
/// (named `name` in errors), and makes it durable.
pub(super) fn fill_volume(
    mut writer: VolumeWriter<BufWriter<DropBehind<File>>>,
    file: &File,
    name: &Path,
    options: &ExportOptions,
    manifest_digest: ContentId,
    contents: &VolumeContents,
    progress: &dyn Progress,
) -> Result<()> {
    if let Some(info) = &contents.info {
        writer.write_info(info).at(name)?;
    }
    for (blob, source) in &contents.blobs {
        let data = File::open(source).map_err(|e| Error::input(source, "file", &e))?;
        let reader = ProgressReader { inner: data, progress };
        writer.write_blob(&blob.id, blob.size, reader).map_err(|e| match e {
            BlobWriteError::Io(e) => Error::io(name, e),
            BlobWriteError::Changed { .. } => changed(source, &options.network.cache),
        })?;
    }
    for (blob, source, offset, piece) in &contents.pieces {
        let mut data = File::open(source).map_err(|e| Error::input(source, "file", &e))?;
        data.seek(SeekFrom::Start(*offset)).map_err(|e| Error::input(source, "file", &e))?;
        let reader = ProgressReader { inner: data, progress };
        writer.write_piece(&blob.id, &piece.id, piece.size, reader).map_err(|e| match e {
            BlobWriteError::Io(e) => Error::io(name, e),
            BlobWriteError::Changed { .. } => changed(source, &options.network.cache),
        })?;
    }
    let (mut out, frame) = writer.finish().at(name)?;
    let seal = seal_volume(&options.keys, manifest_digest, contents.index, frame)?;
    write_seal(&mut out, &seal).and_then(|()| std::io::Write::flush(&mut out)).at(name)?;
    drop(out);
    file.sync_all().at(name)
}
