//! Plain files: every regular file under a folder, published at the same
//! relative path under MIRROR/files/.

mod serve;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ecosystem::{Artifact, Change, Ecosystem, Reserved};
use crate::error::{Error, Result};
use crate::http;
use crate::id::{ContentId, RelPath};
use crate::manifest::Entry;
use crate::mirror::Layout;
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

    /// A plain file occupies its own path and nothing else.
    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        add(Reserved::own(entry.path.as_str(), "file"));
    }

    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        for entry in &change.removed {
            tree.remove(NAME, entry.path.as_str())?;
        }
        for entry in &change.new {
            tree.link_blob(NAME, &entry.path, &entry.blob)?;
        }
        Ok(())
    }

    fn route(&self, route: &http::Route<'_>, folder: &http::Folder<'_>) -> http::Response {
        serve::route(route, folder)
    }

    fn entry_replaceable(&self, _entry: &Entry) -> bool {
        true
    }
}

/// Lists every regular file under `root` in path order, hashing each. Links,
/// devices, sockets and names that are not UTF-8 are refused, not skipped:
/// an operator must know that the bundle is not what the folder shows.
pub fn collect(root: &Path, progress: &dyn Progress) -> Result<Vec<Artifact>> {
    let found = list(root)?;
    let total = found.iter().map(|(_, size)| size).sum();
    progress.start("hashing", total);
    let hashes = hash_all(root, &found, progress)?;
    progress.finish();
    // Sized up front: collecting through `Result` would grow the list by doubling.
    let mut files = Vec::with_capacity(found.len());
    for ((path, _), (blob, size)) in found.into_iter().zip(hashes) {
        files.push(artifact(root.join(path.as_str()), path, blob, size));
    }
    Ok(files)
}

/// Every regular file under `root` in path order, with its size, refused
/// as [`collect`] refuses them (nothing is read).
pub fn list(root: &Path) -> Result<Vec<(RelPath, u64)>> {
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
    Ok(found)
}

/// A file's index in the sorted list, its BLAKE3 and its size.
type Hashed = (usize, ContentId, u64);

/// Most threads hashing at once.
const MAX_HASHERS: usize = 8;

/// Each file's BLAKE3 and size, in `found`'s order, hashed on every core:
/// the files are independent, and on a mirror of many files one thread
/// hashing was a large part of an export's time. Of several unreadable
/// files, the first in path order is the one reported.
fn hash_all(root: &Path, found: &[(RelPath, u64)], progress: &dyn Progress) -> Result<Vec<(ContentId, u64)>> {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, MAX_HASHERS);
    let hash_some = || -> std::result::Result<Vec<Hashed>, (usize, Error)> {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some((path, _)) = found.get(index) else { return Ok(done) };
            match hash_file(&root.join(path.as_str()), progress) {
                Ok((blob, size)) => done.push((index, blob, size)),
                Err(e) => {
                    next.store(found.len(), Ordering::Relaxed); // the others stop at their next file
                    return Err((index, e));
                }
            }
        }
    };
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers).map(|_| scope.spawn(hash_some)).collect();
        threads.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut hashes = vec![(ContentId([0; 32]), 0); found.len()];
    let mut first_error: Option<(usize, Error)> = None;
    for outcome in outcomes {
        match outcome {
            Ok(done) => done.into_iter().for_each(|(index, blob, size)| hashes[index] = (blob, size)),
            Err((index, e)) if first_error.as_ref().is_none_or(|(first, _)| index < *first) => {
                first_error = Some((index, e));
            }
            Err(_) => {}
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(hashes),
    }
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

/// A file's BLAKE3 and size, read in 64 KiB blocks (BLAKE3 hashes several
/// of its 1 KiB chunks at once with SIMD; an 8 KiB copy buffer starves it).
fn hash_file(source: &Path, progress: &dyn Progress) -> Result<(ContentId, u64)> {
    let file = File::open(source).map_err(|e| Error::input(source, "file", &e))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(ProgressReader { inner: file, progress }).map_err(|e| Error::input(source, "file", &e))?;
    Ok((ContentId(*hasher.finalize().as_bytes()), hasher.count()))
}

fn artifact(source: PathBuf, path: RelPath, blob: ContentId, size: u64) -> Artifact {
    let entry = Entry {
        ecosystem: NAME.into(),
        name: path.as_str().to_owned(),
        version: None,
        path,
        blob,
        size,
        digests: std::collections::BTreeMap::new(),
        source: None,
        attributes: std::collections::BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    };
    Artifact { entry, source }
}
