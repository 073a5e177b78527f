//! The local directory a mirror is kept in: opening and locking it, what a
//! killed run left behind, staging, free space and the object store.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::{BUILD, GENERATIONS, META, OBJECTS, STAGING, StagedBundle, Staging, View};
use crate::durable::remove_path;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::{Blob, Manifest};

/// An opened, locked mirror.
pub struct Mirror {
    pub(super) root: PathBuf,
    pub(super) meta: PathBuf,
    /// Held until drop: one import at a time.
    pub(super) _lock: File,
    pub(super) view: View,
    /// We created the mirror in this run; a failed import removes it again.
    pub(super) fresh: bool,
    /// We created the root folder itself too.
    pub(super) created_root: bool,
    pub(super) published: bool,
}

impl Mirror {
    /// Opens (creating if needed) and locks the mirror at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let root_existed = root.exists();
        if root_existed && !root.is_dir() {
            return Err(Error::Usage(format!(
                "{}: is not a folder; --mirror takes the mirror's folder",
                root.display()
            )));
        }
        // A new mirror is one folder in an existing one: a typo in the path
        // must not grow a tree of folders somewhere unexpected.
        let parent = root.parent().filter(|p| !p.as_os_str().is_empty());
        if !root_existed && parent.is_some_and(|p| !p.is_dir()) {
            return Err(Error::Usage(format!(
                "{}: its parent folder {} does not exist; create it first (airlock creates only the mirror's own folder)",
                root.display(),
                parent.map(Path::display).expect("checked above")
            )));
        }
        let meta = root.join(META);
        let fresh = !meta.exists();
        if fresh && root_existed && fs::read_dir(root).at(root)?.next().is_some() {
            return Err(Error::Usage(format!(
                "{}: is not empty and is not an airlock mirror; choose a new or empty folder for --mirror",
                root.display()
            )));
        }
        for dir in [&meta, &meta.join(GENERATIONS), &meta.join(OBJECTS), &meta.join(STAGING)] {
            fs::create_dir_all(dir).at(dir)?;
        }
        let lock_path = meta.join("lock");
        let lock = File::options().create(true).truncate(false).write(true).open(&lock_path).at(&lock_path)?;
        if let Err(e) = lock.try_lock() {
            return Err(match e {
                fs::TryLockError::WouldBlock => Error::Busy(format!(
                    "{}: another airlock import or gc is using this mirror; wait for it to finish, or pass --wait",
                    root.display()
                )),
                fs::TryLockError::Error(e) => Error::io(&lock_path, e),
            });
        }
        let mirror = Mirror {
            root: root.to_owned(),
            view: View { meta: meta.clone() },
            meta,
            _lock: lock,
            fresh,
            created_root: !root_existed,
            published: false,
        };
        mirror.remove_stale_staging()?;
        mirror.remove_unpublished_generations()?;
        mirror.repair_links()?;
        Ok(mirror)
    }

    /// Writes `REPORTS/<digest>.html` and `.json` (each atomically; the
    /// page last, so a page never exists without its JSON).
    pub fn keep_report(&self, digest: &str, page: super::Fill<'_>, json: super::Fill<'_>) -> Result<String> {
        let dir = self.root.join(super::REPORTS);
        fs::create_dir_all(&dir).at(&dir)?;
        crate::durable::write_atomically_with(&dir.join(format!("{digest}.json")), 0o644, json)?;
        let page_path = dir.join(format!("{digest}.html"));
        crate::durable::write_atomically_with(&page_path, 0o644, page)?;
        Ok(page_path.display().to_string())
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Anything in staging that is not a bundle's staging (left by an older
    /// airlock or by hand), and the half-built generation in any bundle's
    /// staging (left by a killed run). We hold the lock, so no live import
    /// owns any of it. A half-built generation holds a link to every file
    /// of the mirror: removing them all keeps the generations that link one
    /// inode at three while a publish runs (see tree.rs).
    fn remove_stale_staging(&self) -> Result<()> {
        let staging = self.meta.join(STAGING);
        for entry in fs::read_dir(&staging).at(&staging)? {
            let path = entry.at(&staging)?.path();
            if path.file_name().and_then(|n| n.to_str()).and_then(ContentId::from_hex).is_none() {
                remove_path(&path)?;
            } else {
                remove_path(&path.join(BUILD))?;
            }
        }
        Ok(())
    }

    /// Generations newer than the published one: renamed into place by a run
    /// killed before it swapped the `current` link, so no reader ever saw them.
    fn remove_unpublished_generations(&self) -> Result<()> {
        let current = self.current()?.map_or(0, |(n, _)| n);
        let generations = self.meta.join(GENERATIONS);
        for entry in fs::read_dir(&generations).at(&generations)? {
            let path = entry.at(&generations)?.path();
            let n: Option<u64> = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok());
            if n.is_some_and(|n| n > current) {
                remove_path(&path)?;
            }
        }
        Ok(())
    }

    /// The staging of bundle `digest`, created if new, with what a killed
    /// run left half-written removed. `bundle` describes it for `gc`.
    pub fn bundle_staging(&self, digest: &ContentId, bundle: &StagedBundle) -> Result<Staging> {
        Staging::open(&self.meta.join(STAGING).join(digest.to_hex()), bundle)
    }

    /// Removes the staging of bundle `digest`, if any (it was imported).
    pub fn discard_staging(&self, digest: &ContentId) -> Result<()> {
        remove_path(&self.meta.join(STAGING).join(digest.to_hex()))
    }

    /// Bytes free for imports on the mirror's filesystem.
    pub fn available_bytes(&self) -> Result<u64> {
        available_bytes(&self.meta.join(STAGING))
    }

    /// Fails with one line naming the bytes needed and available when the
    /// mirror's filesystem cannot hold `needed` more bytes.
    pub fn check_space(&self, needed: u64, what: &str) -> Result<()> {
        check_free(&self.meta.join(STAGING), needed, what)
    }

    /// The blobs an incremental bundle expects from earlier bundles that the
    /// mirror's object store does not hold (with the right size).
    #[must_use]
    pub fn missing_objects<'m>(&self, manifest: &'m Manifest) -> Vec<&'m Blob> {
        let objects = self.meta.join(OBJECTS);
        manifest
            .blobs_not_carried()
            .filter(|b| fs::metadata(objects.join(b.id.to_hex())).map_or(true, |m| m.len() != b.size))
            .collect()
    }
}

impl std::ops::Deref for Mirror {
    type Target = View;
    fn deref(&self) -> &View {
        &self.view
    }
}

impl Drop for Mirror {
    /// A mirror this run created and never published is removed again, so a
    /// rejected first import leaves no trace.
    /// A mirror that keeps a split bundle's staged volumes stays.
    fn drop(&mut self) {
        let staging_empty = fs::read_dir(self.meta.join(STAGING)).is_ok_and(|mut d| d.next().is_none());
        if self.fresh && !self.published && staging_empty && matches!(self.current(), Ok(None)) {
            let _ = fs::remove_dir_all(&self.meta);
            if self.created_root {
                let _ = fs::remove_dir(&self.root);
            }
        }
    }
}

/// Bytes free on the filesystem of `dir`.
fn available_bytes(dir: &Path) -> Result<u64> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| Error::io(dir, e.into()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Fails with one line naming the bytes needed and available when the
/// filesystem of `dir` cannot hold `needed` more bytes.
pub(super) fn check_free(dir: &Path, needed: u64, what: &str) -> Result<()> {
    let available = available_bytes(dir)?;
    if needed > available {
        return Err(Error::io(
            dir,
            io::Error::new(
                io::ErrorKind::StorageFull,
                format!("{what} needs {needed} bytes, the filesystem has {available} available; nothing was written"),
            ),
        ));
    }
    Ok(())
}

#[cfg(unix)]
pub(super) fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
