//! Plain files: every regular file under a folder, published at the same
//! relative path under MIRROR/files/.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::ecosystem::{Artifact, Change, Ecosystem};
use crate::error::{Error, Result};
use crate::id::{ContentId, RelPath};
use crate::manifest::Entry;
use crate::mirror::Tree;
use crate::progress::{Progress, ProgressReader};

/// The plain-files ecosystem.
pub struct Files;

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "files";

impl Ecosystem for Files {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        if entry.name != entry.path.as_str() {
            return Err("a plain file's name must be its path".into());
        }
        if entry.version.is_some() {
            return Err("plain files have no version".into());
        }
        Ok(())
    }

    fn publish(&self, change: &Change<'_>, tree: &mut Tree) -> Result<()> {
        for entry in &change.removed {
            tree.remove(NAME, entry.path.as_str())?;
        }
        for entry in &change.new {
            tree.link_blob(NAME, &entry.path, &entry.blob)?;
        }
        Ok(())
    }
}

/// Lists every regular file under `root` in path order, hashing each. Links,
/// devices, sockets and names that are not UTF-8 are refused, not skipped:
/// an operator must know that the bundle is not what the folder shows.
pub fn collect(root: &Path, progress: &dyn Progress) -> Result<Vec<Artifact>> {
    let meta = fs::metadata(root).map_err(|e| Error::input(root, "--files folder", &e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "{}: is not a folder; --files takes a folder whose files to ship",
            root.display()
        )));
    }
    let mut found = Vec::new();
    walk(root, root, &mut found)?;
    // Held through the hashing, beside the artifacts: without the spare room of its growth.
    found.shrink_to_fit();
    // Paths under one root are distinct: an unstable sort gives the one order, without a scratch copy.
    found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let total = found.iter().map(|(_, size)| size).sum();
    progress.start("hashing", total);
    // Sized up front: collecting through `Result` would grow the list by doubling.
    let mut files = Vec::with_capacity(found.len());
    for (path, _) in found {
        files.push(hash_file(root.join(path.as_str()), path, progress)?);
    }
    progress.finish();
    Ok(files)
}

/// Adds every regular file under `dir` to `found`: its path relative to
/// `root` and its size. The full path is not kept: it is the root's joined
/// with the relative one, made again when the file is read.
fn walk(root: &Path, dir: &Path, found: &mut Vec<(RelPath, u64)>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::input(dir, "folder", &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::input(dir, "folder", &e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::input(&path, "file", &e))?;
        if kind.is_dir() {
            walk(root, &path, found)?;
        } else if kind.is_file() {
            let rel = relative(root, &path)?;
            let size = entry.metadata().map_err(|e| Error::input(&path, "file", &e))?.len();
            found.push((rel, size));
        } else {
            return Err(Error::Usage(format!(
                "{}: is a symbolic link or special file; airlock ships regular files only: replace it with the file it stands for, or move it out of the folder",
                path.display()
            )));
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> Result<RelPath> {
    let rel = path.strip_prefix(root).expect("walked paths are under the root");
    let text = rel
        .to_str()
        .ok_or_else(|| Error::Usage(format!("{}: the name is not valid UTF-8; rename it", path.display())))?;
    RelPath::new(text).map_err(|why| Error::Usage(format!("{}: cannot be shipped: {why}; rename it", path.display())))
}

fn hash_file(source: PathBuf, path: RelPath, progress: &dyn Progress) -> Result<Artifact> {
    let file = File::open(&source).map_err(|e| Error::input(&source, "file", &e))?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut ProgressReader { inner: file, progress }, &mut hasher)
        .map_err(|e| Error::input(&source, "file", &e))?;
    let entry = Entry {
        ecosystem: NAME.into(),
        name: path.as_str().to_owned(),
        version: None,
        path,
        blob: ContentId(*hasher.finalize().as_bytes()),
        size,
        digests: std::collections::BTreeMap::new(),
        source: None,
        attributes: std::collections::BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    };
    Ok(Artifact { entry, source })
}
