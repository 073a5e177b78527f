//! Building a generation's tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Rejection, Result};
use crate::id::{ContentId, RelPath};
use crate::sign::write_atomically;

/// A generation being built: ecosystem folders of hard links into the object store.
pub struct Tree {
    root: PathBuf,
    objects: PathBuf,
    published: Vec<String>,
    /// Folders known to exist, so a tree of many files costs no stat per parent.
    folders: std::collections::HashSet<PathBuf>,
}

impl Tree {
    pub(crate) fn new(root: PathBuf, objects: PathBuf) -> Self {
        Tree { root, objects, published: Vec::new(), folders: std::collections::HashSet::new() }
    }

    /// Places blob `id` at `folder/path`, replacing a file already there.
    pub fn link_blob(&mut self, folder: &str, path: &RelPath, id: &ContentId) -> Result<()> {
        let target = self.prepare(folder, path)?;
        let object = self.objects.join(id.to_hex());
        fs::hard_link(&object, &target).at(&target)?;
        self.published.push(format!("{folder}/{path}"));
        Ok(())
    }

    /// Writes a generated file at `folder/path` (an index page, an evidence file).
    pub fn write(&mut self, folder: &str, path: &str, bytes: &[u8]) -> Result<()> {
        let rel = RelPath::new(path).map_err(|e| Error::Usage(format!("{folder}/{path}: {e}")))?;
        let target = self.prepare(folder, &rel)?;
        write_atomically(&target, bytes, 0o644)
    }

    /// [`Tree::write`] with the contents produced by `fill`, for a file too
    /// large to build in memory first (a packument of many versions).
    pub fn write_with(
        &mut self,
        folder: &str,
        path: &str,
        fill: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<()> {
        let rel = RelPath::new(path).map_err(|e| Error::Usage(format!("{folder}/{path}: {e}")))?;
        let target = self.prepare(folder, &rel)?;
        crate::sign::write_atomically_with(&target, 0o644, fill)
    }

    /// Takes a file out of the generation being built (a no-op if it is not there).
    pub fn remove(&mut self, folder: &str, path: &str) -> Result<()> {
        RelPath::new(path).map_err(|e| Error::Usage(format!("{folder}/{path}: {e}")))?;
        let base = self.root.join(folder);
        let target = base.join(path);
        match fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&target, e)),
        }
        // Folders the withdrawn file leaves empty go too, so a later entry
        // may be a file where one of them was.
        let mut dir = target.parent();
        while let Some(d) = dir.filter(|d| *d != base && d.starts_with(&base)) {
            if fs::remove_dir(d).is_err() {
                break; // not empty: it still holds other entries
            }
            self.folders.remove(d);
            dir = d.parent();
        }
        Ok(())
    }

    /// Reads a file of the generation being built, if it is there.
    #[must_use]
    pub fn read(&self, folder: &str, path: &str) -> Option<Vec<u8>> {
        RelPath::new(path).ok()?;
        fs::read(self.root.join(folder).join(path)).ok()
    }

    /// Writes a file the ecosystem generates (an index page, a state file).
    pub fn write_file(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.write_file_with(path, |file| file.write_all(bytes))
    }

    /// [`Tree::write_file`] with the contents produced by `fill`.
    pub fn write_file_with(
        &mut self,
        path: &Path,
        fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        crate::sign::write_atomically_with(&target, 0o644, fill)
    }

    /// Makes room for a file at `folder/path`: parents as folders, nothing in the way.
    fn prepare(&mut self, folder: &str, path: &RelPath) -> Result<PathBuf> {
        let mut dir = self.root.join(folder);
        if !self.folders.contains(&dir) {
            fs::create_dir_all(&dir).at(&dir)?;
            self.folders.insert(dir.clone());
        }
        let parts: Vec<&str> = path.components().collect();
        let (last, parents) = parts.split_last().expect("a RelPath has a component");
        for part in parents {
            dir.push(part);
            if self.folders.contains(&dir) {
                continue;
            }
            self.folders.insert(dir.clone());
            match dir.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(conflict(folder, path, "one of its parent folders is a file in the mirror")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&dir).at(&dir)?,
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        let target = dir.join(last);
        match target.symlink_metadata() {
            Ok(m) if m.is_dir() => Err(conflict(folder, path, "the mirror has a folder of that name")),
            Ok(_) => {
                fs::remove_file(&target).at(&target)?;
                Ok(target)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(target),
            Err(e) => Err(Error::io(&target, e)),
        }
    }

    /// Paths published by this import, `folder/path`.
    pub(crate) fn published(&self) -> Vec<String> {
        self.published.clone()
    }
}

fn conflict(folder: &str, path: &RelPath, why: &str) -> Error {
    Error::rejected(
        format!("{folder}/{path}"),
        Rejection::Policy(format!(
            "cannot publish: {why}; remove the conflicting path from the mirror's source or rename it"
        )),
    )
}

/// Recreates `from` at `to` with hard links for files (cheap, and the
/// generation stays immutable because files are only ever replaced, never
/// written in place).
pub(crate) fn link_copy(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir(to).at(to)?;
    for entry in fs::read_dir(from).at(from)? {
        let entry = entry.at(from)?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().at(&src)?;
        if kind.is_dir() {
            link_copy(&src, &dst)?;
        } else if kind.is_file() {
            fs::hard_link(&src, &dst).at(&dst)?;
        } else {
            return Err(Error::Usage(format!(
                "{}: unexpected non-file in the mirror; it was changed by hand",
                src.display()
            )));
        }
    }
    Ok(())
}

/// fsyncs every folder under `root` (file contents were synced when staged).
pub(crate) fn sync_tree(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).at(root)? {
        let entry = entry.at(root)?;
        if entry.file_type().at(&entry.path())?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    super::sync_dir(root)
}
