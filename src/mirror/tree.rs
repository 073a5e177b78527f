//! Building a generation's tree.
//!
//! Every published entry is a hard link to its object (or to a copy of it,
//! below), and every generation hard-links the files of the one before. A file
//! system allows an inode only so many links (ext2/ext3 32,000, ext4
//! 65,000), and while generation N+1 is built, N-1, N and the build all
//! link the same inodes. So no inode gets a new link in a tree once it has
//! [`LINK_BUDGET`] links (counting every generation): an entry beyond that
//! gets its own copy of the object, which the following entries of that
//! blob link to, up to the budget again. No generation then holds more
//! than the budget of names of one inode, and three of them (with the
//! object's own name and its staged one) stay below the limit, whatever
//! the number of entries sharing a blob. Every entry stays a regular file,
//! so what a reader of the tree sees does not change.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Layout;
use crate::durable::write_atomically;
use crate::error::{Error, IoContext, Rejection, Result};
use crate::id::{ContentId, RelPath};

/// Links past which an inode gets no new one in a tree, all generations
/// counted. Three generations of at most this many names of an inode, plus
/// its names in the object store and staging, stay below the 32,000 links
/// ext2 and ext3 allow (ext4 allows 65,000). A copy of a blob serves this
/// many entries, so copies cost little disk.
pub(crate) const LINK_BUDGET: u64 = 10_000;

/// A generation being built: ecosystem folders of hard links into the object store.
pub(super) struct Tree {
    root: PathBuf,
    objects: PathBuf,
    published: super::Paths,
    /// Folders known to exist, so a tree of many files costs no stat per
    /// parent: a cache of at most [`FOLDER_CACHE`], emptied when full (an
    /// npm or PyPI tree has a folder or two per package, and entries come
    /// in the order of their paths, so the folders of the next entries are
    /// the ones just seen).
    folders: std::collections::HashSet<PathBuf>,
    /// The copy in this tree that entries of a blob whose object is out of
    /// links are linked to (see the module's comment), and its inode.
    copies: HashMap<ContentId, (PathBuf, u64)>,
    /// The links of objects counted so far: stated, then counted as the
    /// tree links it (under the import's lock nothing else links them). An
    /// entry removed from the tree may leave a count one too high, which
    /// only makes the budget stricter. A cache of at most [`LINK_CACHE`]
    /// objects, emptied when full: a count it no longer has is stated
    /// again, and the file system's count is the true one.
    links: HashMap<ContentId, u64>,
}

/// Objects whose link counts a tree keeps at once (about 48 bytes each):
/// enough that the entries of a shared blob are counted without a `stat`
/// each, few enough that a publish of a million new objects holds a bounded
/// map rather than one of them all.
const LINK_CACHE: usize = 1 << 14;

/// Folders a tree remembers as made at once (a path each).
const FOLDER_CACHE: usize = 1 << 12;

/// What linking an entry to an object did.
enum Linked {
    Made,
    /// The object has used up its budget, or the file system refused it a link.
    OutOfLinks,
    /// Something has the entry's name already.
    InTheWay,
}

impl Tree {
    pub(super) fn new(root: PathBuf, objects: PathBuf) -> Self {
        Tree {
            root,
            objects,
            published: super::Paths::default(),
            folders: std::collections::HashSet::new(),
            copies: HashMap::new(),
            links: HashMap::new(),
        }
    }

    /// The objects this import put into the store: each has two names, its
    /// own and its staged one, so linking it needs no `stat` first.
    pub(super) fn objects_added(&mut self, ids: &[ContentId]) {
        let room = LINK_CACHE.saturating_sub(self.links.len());
        self.links.extend(ids.iter().take(room).map(|id| (*id, 2)));
    }

    /// Counts `links` for object `id`, making room first when the cache is full.
    fn count_links(&mut self, id: &ContentId, links: u64) {
        if self.links.len() >= LINK_CACHE && !self.links.contains_key(id) {
            self.links.clear();
        }
        self.links.insert(*id, links);
    }

    /// Writes a file the mirror generates (the state, the inventory).
    pub(super) fn write_file(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.write_file_with(path, |file| file.write_all(bytes))
    }

    /// [`Tree::write_file`] with the contents produced by `fill`.
    pub(super) fn write_file_with(
        &mut self,
        path: &Path,
        fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        crate::durable::write_atomically_with(&target, 0o644, fill)
    }

    /// Makes room for a file at `folder/path`: parents as folders, nothing in the way.
    fn prepare(&mut self, folder: &str, path: &RelPath) -> Result<PathBuf> {
        let target = self.parents(folder, path)?;
        self.clear(folder, path, &target)?;
        Ok(target)
    }

    /// The path of `folder/path`, its parents made folders.
    fn parents(&mut self, folder: &str, path: &RelPath) -> Result<PathBuf> {
        let mut dir = self.root.join(folder);
        if !self.folders.contains(&dir) {
            fs::create_dir_all(&dir).at(&dir)?;
            self.remember_folder(&dir);
        }
        let parts: Vec<&str> = path.components().collect();
        let (last, parents) = parts.split_last().expect("a RelPath has a component");
        for part in parents {
            dir.push(part);
            if self.folders.contains(&dir) {
                continue;
            }
            self.remember_folder(&dir);
            match dir.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(conflict(folder, path, "one of its parent folders is a file in the mirror")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&dir).at(&dir)?,
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        Ok(dir.join(last))
    }

    /// Remembers that folder `dir` exists, making room first when the cache is full.
    fn remember_folder(&mut self, dir: &Path) {
        if self.folders.len() >= FOLDER_CACHE {
            self.folders.clear();
        }
        self.folders.insert(dir.to_path_buf());
    }

    /// Takes out what is at `target` (`folder/path`), if anything: a file
    /// (an entry of the generation before, replaced), never a folder.
    fn clear(&mut self, folder: &str, path: &RelPath, target: &Path) -> Result<()> {
        match target.symlink_metadata() {
            Ok(m) if m.is_dir() => Err(conflict(folder, path, "the mirror has a folder of that name")),
            Ok(_) => {
                fs::remove_file(target).at(target)?;
                self.forget_copy(target);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(target, e)),
        }
    }

    /// Hard-links `target` to blob `id`'s object unless the object has
    /// [`LINK_BUDGET`] links or more (see `links`).
    fn link_object(&mut self, id: &ContentId, target: &Path) -> Result<Linked> {
        let object = self.objects.join(id.to_hex());
        let links = match self.links.get(id) {
            Some(known) => *known,
            None => fs::metadata(&object).at(&object)?.nlink(),
        };
        self.count_links(id, links);
        if links >= LINK_BUDGET {
            return Ok(Linked::OutOfLinks);
        }
        match fs::hard_link(&object, target) {
            Ok(()) => {
                self.count_links(id, links + 1);
                Ok(Linked::Made)
            }
            Err(e) if out_of_links(&e) => Ok(Linked::OutOfLinks),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Linked::InTheWay),
            Err(e) => Err(Error::io(target, e)),
        }
    }

    /// A copy replaced or removed is no longer one to link to. (Its inode
    /// number alone cannot tell: the file system may give it to the very
    /// file that takes its place.)
    fn forget_copy(&mut self, path: &Path) {
        self.copies.retain(|_, (copy, _)| copy != path);
    }

    /// Paths published by this import, `folder/path`.
    pub(super) fn take_published(&mut self) -> super::Paths {
        std::mem::take(&mut self.published)
    }
}

impl Layout for Tree {
    /// Places blob `id` at `folder/path`, replacing a file already there: a
    /// hard link to its object, or, once the object has [`LINK_BUDGET`]
    /// links, to this tree's copy of it (a new copy when that one has as many).
    /// Most entries are new in the tree, so the link is tried first and
    /// what is in the way looked at only when the link fails for it: one
    /// `link` per new entry, no `stat`.
    fn link_blob(&mut self, folder: &str, path: &RelPath, id: &ContentId) -> Result<()> {
        let target = self.parents(folder, path)?;
        let mut linked = self.link_object(id, &target)?;
        if let Linked::InTheWay = linked {
            self.clear(folder, path, &target)?;
            linked = self.link_object(id, &target)?;
        }
        let object = self.objects.join(id.to_hex());
        let linked = matches!(linked, Linked::Made)
            || match self.copies.get(id) {
                Some((copy, inode)) => link_within_budget(copy, &target, Some(*inode))?,
                None => false,
            };
        if !linked {
            let inode = copy_durably(&object, &target)?;
            self.copies.insert(*id, (target, inode));
        }
        self.published.push(folder, path.as_str());
        Ok(())
    }

    /// Writes a generated file at `folder/path` (an index page, an evidence file).
    fn write(&mut self, folder: &str, path: &str, bytes: &[u8]) -> Result<()> {
        let rel = RelPath::new(path).map_err(|e| Error::Usage(format!("{folder}/{path}: {e}")))?;
        let target = self.prepare(folder, &rel)?;
        write_atomically(&target, bytes, 0o644)
    }

    /// [`Layout::write`] with the contents produced by `fill`, for a file too
    /// large to build in memory first (a document listing many versions).
    fn write_with(
        &mut self,
        folder: &str,
        path: &str,
        fill: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<()> {
        let rel = RelPath::new(path).map_err(|e| Error::Usage(format!("{folder}/{path}: {e}")))?;
        let target = self.prepare(folder, &rel)?;
        crate::durable::write_atomically_with(&target, 0o644, fill)
    }

    /// Takes a file out of the generation being built (a no-op if it is not there).
    fn remove(&mut self, folder: &str, path: &str) -> Result<()> {
        RelPath::new(path).map_err(|e| Error::Usage(format!("{folder}/{path}: {e}")))?;
        let base = self.root.join(folder);
        let target = base.join(path);
        match fs::remove_file(&target) {
            Ok(()) => self.forget_copy(&target),
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
    fn read(&self, folder: &str, path: &str) -> Option<Vec<u8>> {
        RelPath::new(path).ok()?;
        fs::read(self.root.join(folder).join(path)).ok()
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

/// Bytes of the copies a tree makes of blobs that `entries` share more than
/// [`LINK_BUDGET`] times, when each blob's object is new: one per budget
/// of entries beyond the first. (Sorted references, not a map: the
/// manifest may have hundreds of thousands of entries.)
pub(crate) fn copies_bytes(entries: &crate::manifest::Entries) -> u64 {
    if (entries.len() as u64) < LINK_BUDGET {
        return 0;
    }
    let mut by_blob: Vec<(crate::id::ContentId, u64)> = entries.iter().map(|e| (e.blob, e.size)).collect();
    by_blob.sort_unstable();
    by_blob.chunk_by(|a, b| a.0 == b.0).map(|run| run[0].1.saturating_mul(run.len() as u64 / LINK_BUDGET)).sum()
}

/// Hard-links `from` at `to` unless `from` has [`LINK_BUDGET`] links or
/// more, or the file system refuses it another; says whether it linked.
/// A copy made earlier (`inode` given) that is gone or no longer that
/// inode (another file took its place since) is not linked either.
fn link_within_budget(from: &Path, to: &Path, inode: Option<u64>) -> Result<bool> {
    match fs::metadata(from) {
        Ok(meta) if meta.nlink() < LINK_BUDGET && inode.is_none_or(|i| i == meta.ino()) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound && inode.is_some() => return Ok(false),
        Err(e) => return Err(Error::io(from, e)),
    }
    match fs::hard_link(from, to) {
        Ok(()) => Ok(true),
        Err(e) if out_of_links(&e) => Ok(false),
        Err(e) => Err(Error::io(to, e)),
    }
}

/// The file system allows the inode no more links (EMLINK).
fn out_of_links(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TooManyLinks
}

/// Copies `from` to the new file `to` and makes its contents durable (the
/// tree's folders are synced before it is published, its files are not);
/// returns the copy's inode.
fn copy_durably(from: &Path, to: &Path) -> Result<u64> {
    fs::copy(from, to).at(to)?;
    let file = File::open(to).at(to)?;
    file.sync_all().at(to)?;
    Ok(file.metadata().at(to)?.ino())
}

/// Recreates `from` at `to` with hard links for files (cheap, and the
/// generation stays immutable because files are only ever replaced, never
/// written in place).
pub(super) fn link_copy(from: &Path, to: &Path) -> Result<()> {
    copy_folder(from, to, &mut HashMap::new())
}

/// [`link_copy`] of one folder. Where the file system allows a file no more
/// links (a mirror that an airlock without the link budget filled, or a file
/// system with a lower limit), the file is copied instead, and later files
/// of the same inode are linked to that copy: `copies` maps the inode
/// (device, number) to it.
fn copy_folder(from: &Path, to: &Path, copies: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    fs::create_dir(to).at(to)?;
    for entry in fs::read_dir(from).at(from)? {
        let entry = entry.at(from)?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().at(&src)?;
        if kind.is_dir() {
            copy_folder(&src, &dst, copies)?;
        } else if kind.is_file() {
            link_or_copy(&src, &dst, copies)?;
        } else {
            return Err(Error::Usage(format!(
                "{}: unexpected non-file in the mirror; it was changed by hand",
                src.display()
            )));
        }
    }
    Ok(())
}

/// Hard-links `src` at `dst`, or, when `src` can have no more links, links
/// `dst` to the copy made of `src` before or makes that copy.
fn link_or_copy(src: &Path, dst: &Path, copies: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    match fs::hard_link(src, dst) {
        Ok(()) => return Ok(()),
        Err(e) if !out_of_links(&e) => return Err(Error::io(dst, e)),
        Err(_) => {}
    }
    let meta = fs::metadata(src).at(src)?;
    let inode = (meta.dev(), meta.ino());
    if let Some(copy) = copies.get(&inode)
        && link_within_budget(copy, dst, None)?
    {
        return Ok(());
    }
    copy_durably(src, dst)?;
    copies.insert(inode, dst.to_owned());
    Ok(())
}

/// fsyncs every folder under `root` (file contents were synced when staged).
pub(super) fn sync_tree(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).at(root)? {
        let entry = entry.at(root)?;
        if entry.file_type().at(&entry.path())?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    crate::durable::sync_dir(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree in `dir` whose object store holds `content` with `links` names in all.
    fn tree_with_object(dir: &Path, content: &[u8], links: u64) -> (Tree, ContentId) {
        let (objects, elsewhere) = (dir.join("objects"), dir.join("elsewhere"));
        fs::create_dir_all(&objects).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        let id = ContentId::of(content);
        let object = objects.join(id.to_hex());
        fs::write(&object, content).unwrap();
        for i in 1..links {
            fs::hard_link(&object, elsewhere.join(i.to_string())).unwrap();
        }
        (Tree::new(dir.join("tree"), objects), id)
    }

    fn path(p: &str) -> RelPath {
        RelPath::new(p).unwrap()
    }

    #[test]
    fn an_object_out_of_links_is_copied_once_and_the_copy_shared() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tree, id) = tree_with_object(dir.path(), b"shared", LINK_BUDGET);
        for name in ["a", "b", "c"] {
            tree.link_blob("files", &path(name), &id).unwrap();
        }
        let inode = |name: &str| fs::metadata(dir.path().join("tree/files").join(name)).unwrap();
        let object = fs::metadata(dir.path().join("objects").join(id.to_hex())).unwrap();
        assert_eq!(object.nlink(), LINK_BUDGET, "the object got no link past its budget");
        assert_ne!(inode("a").ino(), object.ino());
        assert_eq!(inode("a").ino(), inode("c").ino(), "one copy serves the entries after it");
        assert_eq!(inode("a").nlink(), 3);
        assert_eq!(fs::read(dir.path().join("tree/files/b")).unwrap(), b"shared");
    }

    #[test]
    fn counts_the_full_cache_let_go_of_are_stated_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tree, id) = tree_with_object(dir.path(), b"shared", LINK_BUDGET - 2);
        tree.link_blob("files", &path("a"), &id).unwrap();
        // Fill the cache with other objects: the shared one's count goes.
        let others: Vec<ContentId> = (0..LINK_CACHE as u64).map(|i| ContentId::of(&i.to_le_bytes())).collect();
        tree.objects_added(&others);
        tree.count_links(&ContentId::of(b"one more"), 2);
        assert!(!tree.links.contains_key(&id) && tree.links.len() <= LINK_CACHE);
        for name in ["b", "c"] {
            tree.link_blob("files", &path(name), &id).unwrap();
        }
        let object = fs::metadata(dir.path().join("objects").join(id.to_hex())).unwrap();
        assert_eq!(object.nlink(), LINK_BUDGET, "b was linked on a count stated again, c was not");
        let c = fs::metadata(dir.path().join("tree/files/c")).unwrap();
        assert_ne!(c.ino(), object.ino(), "c is a copy");
    }

    #[test]
    fn folders_past_the_cache_are_made_and_a_file_in_the_way_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tree, id) = tree_with_object(dir.path(), b"x", 1);
        for i in 0..FOLDER_CACHE + 10 {
            tree.link_blob("npm", &path(&format!("p{i}/-/p{i}-1.0.0.tgz")), &id).unwrap();
            assert!(tree.folders.len() <= FOLDER_CACHE);
        }
        assert!(dir.path().join("tree/npm/p0/-/p0-1.0.0.tgz").is_file());
        // A folder the cache let go of that is now a file is found in the way.
        fs::write(dir.path().join("tree/npm/q"), b"a file").unwrap();
        tree.folders.clear();
        let e = tree.link_blob("npm", &path("q/-/q-1.0.0.tgz"), &id).unwrap_err().to_string();
        assert!(e.contains("parent folders is a file"), "{e}");
    }

    #[test]
    fn a_copy_replaced_by_another_file_is_not_linked_to() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tree, id) = tree_with_object(dir.path(), b"shared", LINK_BUDGET);
        tree.link_blob("files", &path("first"), &id).unwrap();
        // A generated file takes the copy's place (two paths colliding).
        tree.write("files", "first", b"generated").unwrap();
        tree.link_blob("files", &path("second"), &id).unwrap();
        assert_eq!(fs::read(dir.path().join("tree/files/second")).unwrap(), b"shared");
    }

    #[test]
    fn copies_are_counted_per_budget_of_entries_sharing_a_blob() {
        let entry = |content: &[u8]| crate::manifest::tests::entry_at("files", "x", content);
        let budget = usize::try_from(LINK_BUDGET).unwrap();
        let mut entries = vec![entry(b"1234"); 2 * budget + 1];
        entries.extend(vec![entry(b"12"); budget - 1]);
        assert_eq!(copies_bytes(&entries.clone().into()), 2 * 4, "two copies of the shared blob, none of the other");
        assert_eq!(copies_bytes(&entries[..budget - 1].to_vec().into()), 0);
    }
}
