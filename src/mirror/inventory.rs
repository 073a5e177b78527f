//! The mirror: a published tree that only ever changes by one atomic step.
//!
//! ```text
//! MIRROR/
//!   files -> .airlock/current/files      one link per ecosystem folder
//!   .airlock/
//!     lock                               held for the whole import
//!     current -> generations/N           the published generation
//!     generations/N/                     ecosystem folders + state.json
//!     objects/<blake3>                   verified blobs; trees hard-link them
//!     staging/<manifest digest>/         a bundle being imported, kept across runs:
//!       bundle.json                      its channel, sequence and expiry (for gc)
//!       blobs/<blake3>                   verified blobs
//!       volumes/<index>                  volume `index` verified, its blobs durable
//!       generation/                      the next generation while it is built
//! ```
//!
//! An import verifies every blob into staging, builds generation N+1 in
//! staging (hard links to the old generation and to objects, or to copies
//! of an object that has used up its links: see tree.rs), makes it
//! durable (file contents, then the rename, then the directory), and only
//! then replaces the `current` link with a rename. Until that rename
//! nothing a client sees has changed. Blobs go into the object store as
//! hard links of the staged ones, so a publish that fails before the
//! rename can take out the objects it added and leave the mirror as it
//! was, while the staging stays complete: a refused bundle's is removed,
//! one that failed on the machine (the disk) is kept for the next run.
//!
//! A split bundle may arrive over several runs, so its staging is kept,
//! keyed by the manifest digest: a volume counts as done only once its
//! blobs are durable and its marker is written (contents, then the rename,
//! then the directory), so a run killed at any point loses at most the
//! volume it was reading. What a killed run leaves half-written (a `.part-`
//! file, a half-built generation in any bundle's staging, a generation
//! renamed into place but never published) is removed when the mirror is
//! next opened; staging of a bundle that can no longer be imported is
//! removed by `airlock gc`.

mod tree;

pub use tree::Tree;
pub(crate) use tree::copies_bytes;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::writeback::DropBehind;
use crate::durable::{remove_path, sync_dir};
use crate::ecosystem;
use crate::ecosystem::reserved::Holder;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::Entry;
use crate::verify::{BlobSink, VerifiedManifest, rfc3339};

const META: &str = ".airlock";
const CURRENT: &str = "current";
const GENERATIONS: &str = "generations";
const OBJECTS: &str = "objects";
const STAGING: &str = "staging";
const STATE: &str = "state.json";
const INVENTORY: &str = "inventory.cbor";
const BUNDLE_RECORD: &str = "bundle.json";
/// The next generation while it is built, in a bundle's staging.
const BUILD: &str = "generation";

/// Evidence kept in the inventory because indexes are regenerated from it;
/// other evidence is written as files by its ecosystem and only its kind is kept.
const INLINE_EVIDENCE: [&str; 3] = ["npm-version", "npm-signatures", "cargo-index-entry"];

fn trim_for_inventory(entry: &mut Entry) {
    for evidence in &mut entry.evidence {
        if !INLINE_EVIDENCE.contains(&evidence.kind.as_str()) {
            evidence.data = Vec::new();
        }
    }
}

/// An inventory entry: what is published, and which channels vouch for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The channel whose entry this is: its evidence is what the mirror
    /// publishes, and only it may change the entry (a plain file's content).
    pub channel: String,
    /// Other channels whose bundles list the identical artifact. The entry
    /// stays published while any channel lists it; they never change it.
    /// (Absent from inventories written before channels could share entries.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_listed_by: Vec<String>,
    pub entry: Entry,
}

/// The inventory file's contents, decoded without doubling its vector.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Inventory(#[serde(deserialize_with = "crate::manifest::lean_vec::deserialize")] Vec<Stored>);

/// Reads an inventory file. This program wrote it, under the mirror's lock,
/// so it is decoded as it is read, without the whole-document canonical
/// check the manifest gets (which would hold the file and its re-encoding
/// beside the decoded entries).
fn read_inventory(path: &Path) -> Result<Vec<Stored>> {
    let file = File::open(path).at(path)?;
    let inventory: Inventory =
        ciborium::de::from_reader_with_recursion_limit(io::BufReader::new(file), 16).map_err(|e| {
            Error::Usage(format!(
                "{}: unreadable mirror inventory ({e}); the mirror was changed by hand",
                path.display()
            ))
        })?;
    let mut entries = inventory.0;
    entries.shrink_to_fit();
    Ok(entries)
}

/// The result of merging a bundle into the mirror's inventory. It borrows
/// from the inventory and the manifest instead of copying entries: with
/// tens of thousands of entries, copies were most of an import's memory.
struct Merged<'a> {
    /// Every entry published after the import, with the channel whose entry
    /// it is, in the order of their places.
    all: Vec<(&'a str, &'a Entry)>,
    /// The other channels that list an entry of `all`, by the entry's
    /// place, sorted. Kept apart from `all`: most entries have none.
    also: Vec<(Place<'a>, Vec<&'a str>)>,
    /// Incoming entries not already published.
    fresh: Vec<&'a Entry>,
    /// Entries the bundle's channel published before, no longer lists, and
    /// no other channel lists.
    removed: Vec<&'a Entry>,
}

/// An entry's ecosystem and path.
type Place<'a> = (&'a str, &'a str);

/// The mirror's entries after a bundle of `channel` listing `incoming`
/// (the channel's whole intended inventory).
///
/// An entry belongs to the channel that published it first. Another
/// channel may list the identical artifact (sites run several channels that
/// carry a popular package): the entry stays exactly as its channel
/// published it, evidence included, and the other channel is recorded as
/// listing it too, so the entry is withdrawn only once no channel lists it
/// (then the next channel listing it holds it, unchanged). The same place
/// with other content is a rejection for registry ecosystems (two bundles
/// disagree about a published artifact); a plain file may change from one
/// bundle of its channel to the next, never by another channel's bundle.
fn merge<'a>(current: &'a [Stored], incoming: &'a [Entry], channel: &'a str) -> Result<Merged<'a>> {
    let mut listed: Vec<&Entry> = incoming.iter().collect();
    listed.sort_unstable_by(|a, b| a.place().cmp(&b.place()));
    let find = |entry: &Entry| listed.binary_search_by(|l| l.place().cmp(&entry.place())).ok();
    // What the mirror holds at each listed entry's place.
    let mut held: Vec<Option<&Stored>> = vec![None; listed.len()];
    let mut all = Vec::with_capacity(current.len() + incoming.len());
    let mut also = Vec::new();
    let mut removed = Vec::new();
    for stored in current {
        let place = stored.entry.place();
        let others = stored.also_listed_by.iter().map(String::as_str);
        match find(&stored.entry) {
            Some(i) => {
                check_relisting(stored, listed[i], channel)?;
                held[i] = Some(stored);
                if stored.channel == channel {
                    // Its own channel's listing replaces it (below); the others still list it.
                    push_listers(&mut also, place, others);
                } else {
                    all.push((stored.channel.as_str(), &stored.entry));
                    push_listers(&mut also, place, others.chain([channel]));
                }
            }
            None if stored.channel == channel => {
                let mut others = others;
                match others.next() {
                    None => removed.push(&stored.entry),
                    Some(next) => {
                        all.push((next, &stored.entry));
                        push_listers(&mut also, place, others);
                    }
                }
            }
            None => {
                all.push((stored.channel.as_str(), &stored.entry));
                push_listers(&mut also, place, others.filter(|c| *c != channel));
            }
        }
    }
    // From now on this channel vouches for what it lists and no other channel holds.
    all.extend(
        listed.iter().zip(&held).filter(|(_, h)| h.is_none_or(|s| s.channel == channel)).map(|(e, _)| (channel, *e)),
    );
    all.sort_unstable_by(|a, b| a.1.place().cmp(&b.1.place()));
    also.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let fresh =
        incoming.iter().filter(|e| find(e).is_some_and(|i| held[i].is_none_or(|s| s.entry.blob != e.blob))).collect();
    Ok(Merged { all, also, fresh, removed })
}

/// Records the channels listing the entry at `place` besides its own, if any.
fn push_listers<'a>(
    also: &mut Vec<(Place<'a>, Vec<&'a str>)>,
    place: Place<'a>,
    channels: impl Iterator<Item = &'a str>,
) {
    let mut channels: Vec<&str> = channels.collect();
    if !channels.is_empty() {
        channels.sort_unstable();
        channels.dedup();
        also.push((place, channels));
    }
}

/// Whether `channel` may list `incoming` where the mirror holds `stored`.
fn check_relisting(stored: &Stored, incoming: &Entry, channel: &str) -> Result<()> {
    if incoming.blob == stored.entry.blob {
        return Ok(());
    }
    if stored.entry.ecosystem != ecosystem::files::NAME {
        return Err(disagreement(&stored.entry, incoming));
    }
    let reject = |why: String| {
        Err(Error::rejected(format!("{}/{}", incoming.ecosystem, incoming.path), crate::error::Rejection::Policy(why)))
    };
    let (was, now) = (stored.entry.blob.short(), incoming.blob.short());
    if stored.channel != channel {
        return reject(format!(
            "channel {} published this file (blake3 {was}) and channel {channel} brings other content (blake3 {now}); a channel never replaces another channel's file: rename it in channel {channel}, or have channel {} change or withdraw it",
            stored.channel, stored.channel
        ));
    }
    if let Some(other) = stored.also_listed_by.first() {
        return reject(format!(
            "channel {other} also lists this file with its current content (blake3 {was}); channel {channel}'s new content (blake3 {now}) would change what channel {other} vouches for: have channel {other} drop the file first, or give the new content another name"
        ));
    }
    Ok(())
}

fn disagreement(published: &Entry, incoming: &Entry) -> Error {
    Error::rejected(
        format!("{}/{}", incoming.ecosystem, incoming.path),
        crate::error::Rejection::Policy(format!(
            "the mirror already holds this file with other content (blake3 {}, the bundle has {}); two bundles disagree about a published artifact: find out which one is wrong before importing",
            published.blob.short(),
            incoming.blob.short()
        )),
    )
}

/// Every path the mirror's entries occupy after the import, carried and
/// generated, against every other ([`ecosystem::reserved`]); a collision
/// counts when an entry `channel` lists takes part in it.
fn check_reserved(all: &[(&str, &Entry)], channel: &str) -> Result<()> {
    // This channel's entries are the bundle's; the others' are what the mirror holds.
    let source = |i: usize| {
        let (owner, entry) = all[i];
        (entry, if owner == channel { Holder::Bundle } else { Holder::Mirror(owner) })
    };
    ecosystem::reserved::check(all.len(), source)
        .map_err(|why| Error::rejected(format!("channel {channel}"), crate::error::Rejection::Policy(why)))
}

/// Whether a bundle with `manifest` could be published over the mirror's
/// `inventory`: the checks its publication makes (other channels' entries
/// unchanged, no two entries claiming one path), made before anything of it
/// is staged.
pub fn check_listing(inventory: &[Stored], manifest: &crate::manifest::Manifest) -> Result<()> {
    let merged = merge(inventory, &manifest.entries, &manifest.channel)?;
    check_reserved(&merged.all, &manifest.channel)
}

/// Writes the inventory file: every published entry with its channels,
/// evidence the ecosystems wrote as files trimmed to its kind. Encoded one
/// entry at a time so that no second copy of the inventory is held.
fn write_inventory(tree: &mut Tree, merged: &Merged<'_>) -> Result<()> {
    let stored = merged.all.iter().map(|(channel, entry)| {
        let mut entry = (*entry).clone();
        trim_for_inventory(&mut entry);
        let also = match merged.also.binary_search_by(|(place, _)| place.cmp(&entry.place())) {
            Ok(i) => merged.also[i].1.iter().map(|c| (*c).to_owned()).collect(),
            Err(_) => Vec::new(),
        };
        Stored { channel: (*channel).to_owned(), also_listed_by: also, entry }
    });
    let len = merged.all.len();
    tree.write_file_with(Path::new(INVENTORY), |file| crate::manifest::canonical::write_seq(file, len, stored))
}

/// An opened, locked mirror.
pub struct Mirror {
    root: PathBuf,
    meta: PathBuf,
    /// Held until drop: one import at a time.
    _lock: File,
    view: View,
    /// We created the mirror in this run; a failed import removes it again.
    fresh: bool,
    /// We created the root folder itself too.
    created_root: bool,
    published: bool,
}

/// The mirror's record of what it holds, stored in each generation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub generation: u64,
    pub imports: Vec<ImportRecord>,
}

/// One accepted bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportRecord {
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub imported: String,
    pub entries: usize,
    pub signers: Vec<String>,
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
                fs::TryLockError::WouldBlock => Error::Usage(format!(
                    "{}: another airlock import is using this mirror; wait for it to finish",
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
        let dir = self.meta.join(STAGING).join(digest.to_hex());
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

    /// Removes the staging of bundle `digest`, if any (it was imported).
    pub fn discard_staging(&self, digest: &ContentId) -> Result<()> {
        remove_path(&self.meta.join(STAGING).join(digest.to_hex()))
    }

    /// Bytes free for imports on the mirror's filesystem.
    pub fn available_bytes(&self) -> Result<u64> {
        let staging = self.meta.join(STAGING);
        let stat = rustix::fs::statvfs(&staging).map_err(|e| Error::io(&staging, e.into()))?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Fails with one line naming the bytes needed and available when the
    /// mirror's filesystem cannot hold `needed` more bytes.
    pub fn check_space(&self, needed: u64, what: &str) -> Result<()> {
        let available = self.available_bytes()?;
        if needed > available {
            let staging = self.meta.join(STAGING);
            return Err(Error::io(
                &staging,
                io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "{what} needs {needed} bytes, the filesystem has {available} available; nothing was written"
                    ),
                ),
            ));
        }
        Ok(())
    }

    /// The blobs an incremental bundle expects from earlier bundles that the
    /// mirror's object store does not hold (with the right size).
    #[must_use]
    pub fn missing_objects<'m>(&self, manifest: &'m crate::manifest::Manifest) -> Vec<&'m crate::manifest::Blob> {
        let objects = self.meta.join(OBJECTS);
        manifest
            .blobs_not_carried()
            .filter(|b| fs::metadata(objects.join(b.id.to_hex())).map_or(true, |m| m.len() != b.size))
            .collect()
    }

    /// Builds the next generation from the current one plus the verified
    /// bundle in `staging`, makes it durable and publishes it atomically.
    /// The bundle passed [`check_listing`] against this mirror's inventory,
    /// under the same lock, before it was staged (import does that).
    /// `npm_keys` is the npm registry keys document the import policy pins;
    /// the mirror serves it at the registry's keys endpoint.
    ///
    /// When it fails before the new generation is published, what it did
    /// is undone: the half-built generation and the objects it added go,
    /// so the mirror is as it was (the staged blobs stay in `staging`).
    pub fn publish(
        &mut self,
        staging: &Staging,
        verified: &VerifiedManifest,
        now: u64,
        npm_keys: Option<&[u8]>,
    ) -> Result<PublishReport> {
        let previous = self.current()?;
        let generation = previous.as_ref().map_or(1, |(n, _)| n + 1);
        let mut added = Vec::new();
        let previous_dir = previous.as_ref().map(|(_, dir)| dir.as_path());
        let result = self.build_and_swap(staging, verified, now, npm_keys, (generation, previous_dir), &mut added);
        if result.is_err() {
            self.undo_publish(staging, generation, &added);
        }
        result
    }

    /// Removes what a failed [`Mirror::publish`] of `generation` left, unless
    /// that generation is the published one (a failure after the swap):
    /// the build, the generation if it was renamed into place, and the
    /// objects it `added` (no published generation can use them: they were
    /// not in the store before). Best effort: the next open and `gc` remove
    /// what is left, and the error that ended the publish is the one to report.
    fn undo_publish(&self, staging: &Staging, generation: u64, added: &[ContentId]) {
        if self.current().ok().flatten().is_some_and(|(n, _)| n == generation) {
            return;
        }
        let _ = remove_path(&staging.dir.join(BUILD));
        let _ = remove_path(&self.meta.join(GENERATIONS).join(generation.to_string()));
        let objects = self.meta.join(OBJECTS);
        for id in added {
            let _ = remove_path(&objects.join(id.to_hex()));
        }
        let _ = sync_dir(&objects);
    }

    /// [`Mirror::publish`] of `generation`, built from the folder of the one
    /// before (if any), until it is done or fails; the ids of the objects it
    /// put into the store are pushed to `added` as it goes.
    fn build_and_swap(
        &mut self,
        staging: &Staging,
        verified: &VerifiedManifest,
        now: u64,
        npm_keys: Option<&[u8]>,
        (generation, previous): (u64, Option<&Path>),
        added: &mut Vec<ContentId>,
    ) -> Result<PublishReport> {
        let inventory = self.inventory()?;
        let merged = merge(&inventory, &verified.manifest.entries, &verified.manifest.channel)?;
        let build = staging.dir.join(BUILD);
        match previous {
            Some(dir) => tree::link_copy(dir, &build)?,
            None => fs::create_dir(&build).at(&build)?,
        }
        let objects = self.meta.join(OBJECTS);
        staging.make_durable()?;
        for blob in verified.manifest.blobs.iter().filter(|b| b.carried) {
            if staging.promote(&blob.id, &objects)? {
                added.push(blob.id);
            }
        }
        sync_dir(&objects)?;
        let mut tree = Tree::new(build.clone(), objects);
        for eco in ecosystem::ALL {
            let of_eco = |e: &&Entry| e.ecosystem == eco.name();
            let change = ecosystem::Change {
                new: merged.fresh.iter().copied().filter(of_eco).collect(),
                removed: merged.removed.iter().copied().filter(of_eco).collect(),
                all: merged.all.iter().map(|(_, e)| *e).filter(of_eco).collect(),
            };
            if !change.new.is_empty() || !change.removed.is_empty() {
                eco.publish(&change, &mut tree)?;
            }
        }
        if let Some(keys) = npm_keys
            && merged.all.iter().any(|(_, e)| e.ecosystem == "npm")
        {
            tree.write(ecosystem::npm::NAME, ecosystem::npm::KEYS_PATH, keys)?;
        }
        write_inventory(&mut tree, &merged)?;
        drop(merged);
        drop(inventory);
        let mut state = self.state()?;
        state.generation = generation;
        state.imports.push(ImportRecord {
            manifest_digest: verified.digest.to_hex(),
            channel: verified.manifest.channel.clone(),
            sequence: verified.manifest.sequence,
            imported: rfc3339(now),
            entries: verified.manifest.entries.len(),
            signers: verified.trusted_signers.iter().map(super::id::KeyId::to_hex).collect(),
        });
        tree.write_file(Path::new(STATE), &serde_json::to_vec_pretty(&state).expect("state serializes"))?;
        tree::sync_tree(&build)?;

        let generations = self.meta.join(GENERATIONS);
        let target = generations.join(generation.to_string());
        if target.exists() {
            // Left by an import killed after this rename but before the link swap.
            fs::remove_dir_all(&target).at(&target)?;
        }
        fs::rename(&build, &target).at(&target)?;
        sync_dir(&generations)?;
        self.swap_current(generation)?;
        self.published = true;
        self.repair_links()?;
        self.prune(generation);
        Ok(PublishReport { mirror: self.root.display().to_string(), generation, published: tree.published(), state })
    }

    /// Points `current` at generation `n` with one rename.
    fn swap_current(&self, n: u64) -> Result<()> {
        let tmp = self.meta.join("current.tmp");
        let _ = fs::remove_file(&tmp);
        symlink(&Path::new(GENERATIONS).join(n.to_string()), &tmp).at(&tmp)?;
        let link = self.meta.join(CURRENT);
        fs::rename(&tmp, &link).at(&link)?;
        sync_dir(&self.meta)
    }

    /// Every ecosystem folder of the published generation has its link at the
    /// top of the mirror (restores links an interrupted first import did not make).
    fn repair_links(&self) -> Result<()> {
        let Some((_, dir)) = self.current()? else { return Ok(()) };
        for eco in ecosystem::ALL {
            if !dir.join(eco.name()).is_dir() {
                continue;
            }
            let link = self.root.join(eco.name());
            let target = Path::new(META).join(CURRENT).join(eco.name());
            match fs::read_link(&link) {
                Ok(existing) if existing == target => continue,
                Ok(_) | Err(_) if link.symlink_metadata().is_ok() => {
                    return Err(Error::Usage(format!(
                        "{}: is not airlock's link; move it out of the mirror",
                        link.display()
                    )));
                }
                _ => {}
            }
            symlink(&target, &link).at(&link)?;
        }
        sync_dir(&self.root)
    }

    /// Keeps the published generation and the one before it (readers that
    /// resolved the old link a moment ago still find their files).
    /// Removes what no published or previous generation uses: withdrawn
    /// blobs in the object store and older generations (stale staging went
    /// when the mirror was opened). Returns (objects removed, bytes freed).
    pub fn gc(&self) -> Result<(usize, u64)> {
        let Some((current, dir)) = self.current()? else { return Ok((0, 0)) };
        self.prune(current);
        let mut keep = std::collections::BTreeSet::new();
        for generation in [Some(dir), current.checked_sub(1).map(|p| self.meta.join(GENERATIONS).join(p.to_string()))]
            .into_iter()
            .flatten()
        {
            let path = generation.join(INVENTORY);
            if path.exists() {
                keep.extend(read_inventory(&path)?.into_iter().map(|s| s.entry.blob.to_hex()));
            }
        }
        let objects = self.meta.join(OBJECTS);
        let (mut removed, mut freed) = (0, 0);
        for entry in fs::read_dir(&objects).at(&objects)? {
            let entry = entry.at(&objects)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                freed += entry.metadata().map_or(0, |m| m.len());
                fs::remove_file(entry.path()).at(&entry.path())?;
                removed += 1;
            }
        }
        sync_dir(&objects)?;
        Ok((removed, freed))
    }

    /// Removes the staging of bundles that can no longer be imported: already
    /// imported, older than (or a fork of) the channel's last import, or
    /// expired; with `all`, every staged import. Returns what it removed.
    pub fn gc_staging(&self, now: u64, all: bool) -> Result<Vec<String>> {
        let state = self.state()?;
        let staging = self.meta.join(STAGING);
        let mut removed = Vec::new();
        for entry in fs::read_dir(&staging).at(&staging)? {
            let dir = entry.at(&staging)?.path();
            let digest = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let record: Option<StagedBundle> =
                fs::read(dir.join(BUNDLE_RECORD)).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let why = match &record {
                _ if all => Some("--all-staging".to_owned()),
                None => Some("no readable bundle.json (left by a killed run)".to_owned()),
                Some(r) => abandoned(r, &digest, &state, now),
            };
            if let Some(why) = why {
                remove_path(&dir)?;
                removed.push(format!("{} ({why})", &digest[..digest.len().min(16)]));
            }
        }
        Ok(removed)
    }

    fn prune(&self, current: u64) {
        let generations = self.meta.join(GENERATIONS);
        let Ok(entries) = fs::read_dir(&generations) else { return };
        for entry in entries.flatten() {
            let n: Option<u64> = entry.file_name().to_str().and_then(|n| n.parse().ok());
            if n.is_none_or(|n| n + 1 < current) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Read-only access to a mirror's published state (for `status`; no lock, creates nothing).
pub struct View {
    meta: PathBuf,
}

impl View {
    /// Opens the mirror at `root` for reading; it must exist.
    pub fn open(root: &Path) -> Result<Self> {
        let meta = root.join(META);
        if !meta.is_dir() {
            return Err(Error::Usage(format!(
                "{}: is not an airlock mirror (no .airlock inside); pass the folder given to `airlock import --mirror`",
                root.display()
            )));
        }
        Ok(View { meta })
    }

    /// The published generation's number and folder.
    pub fn current(&self) -> Result<Option<(u64, PathBuf)>> {
        let link = self.meta.join(CURRENT);
        match fs::read_link(&link) {
            Ok(target) => {
                let n = target.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok());
                match n {
                    Some(n) => Ok(Some((n, self.meta.join(GENERATIONS).join(n.to_string())))),
                    None => Err(Error::Usage(format!(
                        "{}: points at {}, not a generation; the mirror was changed by hand",
                        link.display(),
                        target.display()
                    ))),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&link, e)),
        }
    }

    /// Every entry the published generation holds, with the channel that brought it.
    pub fn inventory(&self) -> Result<Vec<Stored>> {
        let Some((_, dir)) = self.current()? else {
            return Ok(Vec::new());
        };
        read_inventory(&dir.join(INVENTORY))
    }

    /// The published state, or an empty one for a new mirror.
    pub fn state(&self) -> Result<State> {
        let Some((_, dir)) = self.current()? else {
            return Ok(State::default());
        };
        let path = dir.join(STATE);
        let text = fs::read(&path).at(&path)?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::Usage(format!("{}: unreadable mirror state ({e}); the mirror was changed by hand", path.display()))
        })
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

/// What an import changed.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub mirror: String,
    pub generation: u64,
    pub published: Vec<String>,
    #[serde(skip)]
    pub state: State,
}

/// Why a staged bundle can never be published, if it cannot.
fn abandoned(record: &StagedBundle, digest: &str, state: &State, now: u64) -> Option<String> {
    if state.imports.iter().any(|i| i.manifest_digest == digest) {
        return Some("imported".into());
    }
    let last = state.imports.iter().filter(|i| i.channel == record.channel).map(|i| i.sequence).max();
    if last.is_some_and(|last| last >= record.sequence) {
        return Some(format!("channel {} has moved on to sequence {}", record.channel, last.unwrap_or(0)));
    }
    (now >= record.expires).then(|| format!("expired {}", rfc3339(record.expires)))
}

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
    dir: PathBuf,
    blobs: PathBuf,
    /// One marker per data volume verified and durable.
    volumes: PathBuf,
    done: BTreeSet<u32>,
}

impl Staging {
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
    fn make_durable(&self) -> Result<()> {
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
    fn promote(&self, id: &ContentId, objects: &Path) -> Result<bool> {
        let to = objects.join(id.to_hex());
        if to.exists() {
            return Ok(false);
        }
        fs::hard_link(self.blob_path(id), &to).at(&to)?;
        Ok(true)
    }

    /// Removes the whole staging (after publication, or when nothing of it is worth keeping).
    pub fn discard(self) -> Result<()> {
        remove_path(&self.dir)
    }
}

impl crate::verify::set::SetSink for Staging {
    type Blobs = Staging;

    fn is_done(&self, index: u32) -> bool {
        self.done.contains(&index)
    }

    fn blobs(&mut self) -> &mut Staging {
        self
    }

    /// The order that makes a marker trustworthy after a crash: the blobs'
    /// contents and names are durable first (syncfs), then the marker is
    /// written, renamed into place and its directory synced.
    fn volume_done(&mut self, index: u32) -> Result<()> {
        self.make_durable()?;
        crate::durable::write_atomically(&self.volumes.join(index.to_string()), b"", 0o644)?;
        self.done.insert(index);
        Ok(())
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

impl BlobSink for Staging {
    type Writer = StagedBlob;

    fn begin(&mut self, _id: &ContentId) -> Result<StagedBlob> {
        let file = tempfile::Builder::new().prefix(".part-").tempfile_in(&self.blobs).at(&self.blobs)?;
        Ok(StagedBlob { file: DropBehind::new(file) })
    }

    fn commit(&mut self, id: &ContentId, writer: StagedBlob) -> Result<()> {
        let path = self.blob_path(id);
        // Durability comes later, for all of a volume's blobs at once (volume_done).
        // Published files are world-readable (tempfile creates them 0600).
        let file = writer.file.into_inner();
        crate::durable::set_mode(file.path(), 0o644).at(&path)?;
        file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RelPath;

    /// An entry at `path`; a registry package is named by the path's first
    /// part, as its layout has it.
    fn entry(ecosystem: &str, path: &str, content: &[u8]) -> Entry {
        let files = ecosystem == ecosystem::files::NAME;
        Entry {
            ecosystem: ecosystem.into(),
            name: if files { path.into() } else { path.split('/').next().unwrap().into() },
            version: if files { None } else { Some("1".into()) },
            path: RelPath::new(path).unwrap(),
            blob: ContentId::of(content),
            size: content.len() as u64,
            digests: std::collections::BTreeMap::new(),
            source: None,
            attributes: std::collections::BTreeMap::new(),
            evidence: Vec::new(),
            missing: Vec::new(),
        }
    }

    fn stored(channel: &str, e: Entry) -> Stored {
        Stored { channel: channel.into(), also_listed_by: Vec::new(), entry: e }
    }

    #[test]
    fn merging_adds_skips_identical_refuses_disagreement_and_withdraws_dropped() {
        let old = vec![
            stored("weekly", entry("npm", "a/-/a-1.tgz", b"a")),
            stored("weekly", entry("files", "notes.txt", b"v1")),
            stored("other", entry("npm", "o/-/o-1.tgz", b"o")),
        ];
        let incoming =
            [entry("npm", "a/-/a-1.tgz", b"a"), entry("npm", "b/-/b-1.tgz", b"b"), entry("files", "notes.txt", b"v1")];
        let m = merge(&old, &incoming, "weekly").unwrap();
        assert_eq!(m.all.len(), 4);
        assert_eq!(m.fresh.len(), 1, "an artifact already present is not written again");
        assert!(m.removed.is_empty());

        let err = merge(&old, &[entry("npm", "a/-/a-1.tgz", b"other")], "weekly").err().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("two bundles disagree"), "{err}");

        // Plain files may change from one bundle to the next.
        let changed = [entry("npm", "a/-/a-1.tgz", b"a"), entry("files", "notes.txt", b"v2")];
        let m = merge(&old, &changed, "weekly").unwrap();
        assert_eq!(m.fresh.len(), 1);
        assert!(m.all.iter().any(|(_, e)| e.blob == ContentId::of(b"v2")));

        // A path that a case-insensitive file system would merge with a published one.
        let incoming = [entry("files", "NOTES.txt", b"v1")];
        let err = merge(&old, &incoming, "other").and_then(|m| check_reserved(&m.all, "other")).err().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("differ only by case"), "{err}");

        // The channel dropped a.tgz: withdrawn; another channel's entries stay.
        let dropped = [entry("files", "notes.txt", b"v1")];
        let m = merge(&old, &dropped, "weekly").unwrap();
        assert_eq!(m.removed.len(), 1);
        assert_eq!(m.removed[0].path.as_str(), "a/-/a-1.tgz");
        assert!(m.all.iter().any(|(channel, _)| *channel == "other"));
    }

    #[test]
    fn another_channel_listing_an_entry_co_lists_it_without_changing_or_withdrawing_it() {
        let mut theirs = entry("npm", "a/-/a-1.tgz", b"a");
        theirs.attributes.insert("published".into(), "by b".into());
        let old = vec![stored("a", entry("npm", "a/-/a-1.tgz", b"a"))];
        let m = merge(&old, std::slice::from_ref(&theirs), "b").unwrap();
        assert_eq!(m.all.len(), 1);
        assert_eq!(m.all[0].0, "a", "the entry stays channel a's");
        assert_eq!(m.all[0].1, &old[0].entry, "with channel a's evidence and attributes");
        assert_ne!(m.all[0].1, &theirs);
        assert_eq!(m.also, [(("npm", "a/-/a-1.tgz"), vec!["b"])]);
        assert!(m.fresh.is_empty() && m.removed.is_empty());

        let co_listed = vec![Stored { also_listed_by: vec!["b".into()], ..old[0].clone() }];
        // Channel b drops it: it stays, channel a's alone.
        let m = merge(&co_listed, &[], "b").unwrap();
        assert_eq!((m.all.len(), m.also.len(), m.removed.len()), (1, 0, 0));
        // Channel a drops it: channel b still lists it, so it stays, now channel b's and unchanged.
        let m = merge(&co_listed, &[], "a").unwrap();
        assert_eq!((m.all[0].0, m.also.len(), m.removed.len()), ("b", 0, 0));
        assert_eq!(m.all[0].1, &co_listed[0].entry);
        // Channel a may not give a plain file new content while channel b vouches for the old.
        let shared = vec![Stored { also_listed_by: vec!["b".into()], ..stored("a", entry("files", "f", b"v1")) }];
        let err = merge(&shared, &[entry("files", "f", b"v2")], "a").err().unwrap();
        assert!(err.to_string().contains("channel b also lists this file with its current content"), "{err}");
    }

    #[test]
    fn an_inventory_written_before_channels_could_share_entries_still_loads() {
        #[derive(Serialize)]
        struct OldStored {
            channel: String,
            entry: Entry,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INVENTORY);
        let old = [OldStored { channel: "weekly".into(), entry: entry("files", "notes.txt", b"v1") }];
        let mut file = File::create(&path).unwrap();
        crate::manifest::canonical::write_seq(&mut file, old.len(), old.into_iter()).unwrap();
        drop(file);
        let read = read_inventory(&path).unwrap();
        assert_eq!(read, [stored("weekly", entry("files", "notes.txt", b"v1"))]);
    }
}
