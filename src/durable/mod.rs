//! The durable file-system layer at the bottom of airlock: every file a
//! command writes goes through here. Writes are atomic (a temporary file
//! beside the target, synced, renamed over it, the folder synced), output
//! paths follow one set of rules (never an input, never over a folder,
//! device, FIFO or socket, an existing file only when asked), and large
//! files are written back as they grow ([`writeback`]).
//!
//! This module names nothing above it: no bundle, mirror or ecosystem.

pub mod writeback;

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Whether a file a command writes may replace one that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Refuse it: the command has `--force` and it was not given.
    Refuse,
    /// Replace it: `--force` was given, or the command updates the file by
    /// design (channel state, a policy statement being co-signed).
    Replace,
}

impl Existing {
    pub(crate) fn unless(force: bool) -> Self {
        if force { Existing::Replace } else { Existing::Refuse }
    }
}

/// The rules for every file a command writes (`--out`, `--sbom`, key files,
/// policy statements, channel state), checked before anything is written:
/// the path is none of the command's `inputs` (not by another name or
/// through a link either); a path that exists and is not a regular file
/// (a folder, a device, a FIFO, a socket, or a link to one) is always
/// refused; a regular file only with [`Existing::Replace`]. `flag` names
/// the option in messages. The write then goes through [`write_atomically`]:
/// a temporary file beside the path, renamed over it.
pub(crate) fn check_output(path: &Path, flag: &str, existing: Existing, inputs: &[&Path]) -> Result<()> {
    refuse_inputs(path, flag, inputs)?;
    if path.symlink_metadata().is_err() {
        return Ok(());
    }
    refuse_special(path, flag)?;
    if existing == Existing::Refuse {
        return Err(Error::Usage(format!(
            "{}: already exists; choose another {flag} or pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses an output `path` that is one of the command's `inputs`: the same
/// file (device and inode), however it is named.
pub(crate) fn refuse_inputs(path: &Path, flag: &str, inputs: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(out) = fs::metadata(path) else { return Ok(()) };
    for input in inputs {
        if fs::metadata(input).is_ok_and(|m| m.dev() == out.dev() && m.ino() == out.ino()) {
            return Err(Error::Usage(format!(
                "{}: is {}, an input of this command; writing {flag} there would destroy it: choose another path",
                path.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Refuses an existing `path` that is not a regular file (following links):
/// renaming over it would replace a folder, a device node or a FIFO.
/// A link that points nowhere is replaced, not followed.
fn refuse_special(path: &Path, flag: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let kind = match fs::metadata(path) {
        Ok(m) if m.is_file() => return Ok(()),
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => "a folder",
        Ok(m) if m.file_type().is_block_device() || m.file_type().is_char_device() => "a device",
        Ok(m) if m.file_type().is_fifo() => "a FIFO",
        Ok(m) if m.file_type().is_socket() => "a socket",
        Ok(_) => "not a regular file",
    };
    Err(Error::Usage(format!(
        "{}: is {kind}{}; {flag} writes a regular file: name a new file or an existing regular one",
        path.display(),
        if path.is_symlink() { " (through a symbolic link)" } else { "" }
    )))
}

/// Writes `bytes` to a temporary file beside `path` with `mode`, syncs it and
/// renames it into place, so a crash leaves either the old file or the new one.
/// A path that is not a regular file is refused (see [`check_output`]).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomically_with(path, mode, |file| file.write_all(bytes))
}

/// [`write_atomically`] with the contents produced by `fill`, buffered.
pub(crate) fn write_atomically_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp =
        tempfile::Builder::new().prefix(".airlock-tmp-").permissions(permissions(mode)).tempfile_in(dir).map_err(
            |e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::Usage(format!("{}: the folder does not exist; create it first", dir.display()))
                } else {
                    Error::io(dir, e)
                }
            },
        )?;
    let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
    fill(&mut buffered).and_then(|()| buffered.flush()).at(path)?;
    drop(buffered);
    tmp.as_file().sync_all().at(path)?;
    // Checked again just before the rename, whatever the caller checked.
    refuse_special(path, "the command")?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir)
}

/// Sets a file's permission bits.
pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::set_permissions(path, permissions(mode))
}

#[cfg(unix)]
pub(crate) fn permissions(mode: u32) -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(mode)
}

/// A folder held open, so that calls on the files in it name them relative
/// to it (`openat`, `linkat`) instead of walking its path once per file.
pub(crate) struct OpenDir {
    pub(crate) path: std::path::PathBuf,
    pub(crate) fd: std::os::fd::OwnedFd,
}

impl OpenDir {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| Error::io(path, e.into()))?;
        Ok(OpenDir { path: path.to_owned(), fd })
    }

    /// fsync the folder, making renames and new names in it durable.
    pub(crate) fn sync(&self) -> Result<()> {
        rustix::fs::fsync(&self.fd).map_err(|e| Error::io(&self.path, e.into()))
    }

    /// `syncfs` of the folder's file system: every file's contents and names on it.
    pub(crate) fn sync_filesystem(&self) -> Result<()> {
        rustix::fs::syncfs(&self.fd).map_err(|e| Error::io(&self.path, e.into()))
    }

    /// `path` of the file `name` in this folder, for messages.
    pub(crate) fn join(&self, name: &str) -> std::path::PathBuf {
        self.path.join(name)
    }
}

/// fsync a directory, making renames and new names in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Removes a file or a folder with everything in it; gone already is fine.
pub fn remove_path(path: &Path) -> Result<()> {
    let result = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}
