//! Files created without a name (`O_TMPFILE`) in a staging's `blobs`
//! folder, and created ahead of the writer on a thread of their own.
//!
//! Creating a file is most of what a small blob costs the kernel: on ext4
//! the inode allocator walks the group's inode bitmap and, on a file system
//! without a journal, looks up the inode table block of every inode freed
//! in the last minute (a mirror or an output folder just removed is
//! thousands of them) before it takes one. On the writing thread that cost
//! adds to every blob's; on a thread of its own it overlaps the writing.
//! Creating ahead is only safe because the files have no name: what a run
//! created and never used disappears when it ends, killed or not.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Files created ahead of the writer: enough to cover a burst of small
/// blobs, few enough to stay well inside the import's descriptor budget.
const AHEAD: usize = 4;

/// Unnamed files with `mode`, created in a folder ahead of their use.
pub(super) struct Ahead {
    files: Option<Receiver<rustix::io::Result<File>>>,
    creator: Option<JoinHandle<()>>,
}

impl Ahead {
    /// Starts creating files in the folder `dir` (the thread keeps its own
    /// descriptor of it).
    pub(super) fn start(dir: &OwnedFd, mode: u32) -> std::io::Result<Self> {
        let dir = dir.try_clone()?;
        let (sender, files) = sync_channel(AHEAD);
        let creator = std::thread::Builder::new()
            .name("airlock-create".into())
            .spawn(move || create_until_unwanted(&dir, mode, &sender))?;
        Ok(Ahead { files: Some(files), creator: Some(creator) })
    }

    /// The next file, or why it could not be created (after which no more
    /// come: the caller starts again or gives up).
    pub(super) fn next(&mut self) -> rustix::io::Result<File> {
        let files = self.files.as_ref().expect("present until drop");
        // A creator gone without a word panicked: say so as an I/O error, the import fails cleanly.
        files.recv().unwrap_or(Err(Errno::IO))
    }
}

impl Drop for Ahead {
    /// Stops the creator: with the receiving end gone its next send fails
    /// and it ends; the files it had made ahead close, and with no name
    /// they are freed.
    fn drop(&mut self) {
        drop(self.files.take());
        if let Some(creator) = self.creator.take() {
            let _ = creator.join();
        }
    }
}

/// The creator's loop: one file after the other until the receiver is gone
/// or a creation fails (the failure is sent, then it ends).
fn create_until_unwanted(dir: &OwnedFd, mode: u32, files: &SyncSender<rustix::io::Result<File>>) {
    let mut mode_fixed = None;
    loop {
        let file = create(dir, mode, &mut mode_fixed);
        let failed = file.is_err();
        if files.send(file).is_err() || failed {
            return;
        }
    }
}

/// A file without a name in folder `dir`, with `mode` whatever the process's
/// umask. `mode_fixed` is whether the umask takes bits off `mode`, so that
/// each file needs a `fchmod`: learnt from the first file's `fstat`.
pub(super) fn create(dir: &OwnedFd, mode: u32, mode_fixed: &mut Option<bool>) -> rustix::io::Result<File> {
    let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
    let fd: OwnedFd = rustix::fs::openat(dir, ".", flags, Mode::from_raw_mode(mode))?;
    let fix = match *mode_fixed {
        Some(known) => known,
        None => *mode_fixed.insert(rustix::fs::fstat(&fd)?.st_mode & 0o7777 != mode),
    };
    if fix {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    }
    Ok(File::from(fd))
}

/// What `openat(O_TMPFILE)` fails with where files cannot be created
/// without a name: the file system does not support it (EOPNOTSUPP), or
/// the kernel predates it and sees a folder opened for writing (EISDIR) or
/// unknown flags (EINVAL).
pub(super) fn unsupported(e: Errno) -> bool {
    matches!(e, Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL)
}

/// The path that names open `file` for `linkat(AT_SYMLINK_FOLLOW)`, which
/// (unlike `AT_EMPTY_PATH`) needs no privilege.
pub(super) fn proc_fd_path(file: &File) -> String {
    format!("/proc/self/fd/{}", file.as_raw_fd())
}
