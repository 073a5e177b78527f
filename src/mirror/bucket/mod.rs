//! A mirror published into S3-compatible object storage
//! (`--mirror s3://BUCKET/PREFIX`), readable by the ecosystems' clients as
//! a static site: the same [`Store`] the local folder implements.
//!
//! ```text
//! s3://BUCKET/PREFIX/
//!   pypi/ npm/ cargo/ files/ ...         the published keys, as clients ask for them
//!   .airlock/
//!     lock                               created only if absent: one import at a time
//!     state.json                         the published state: the commit point
//!     generations/N/listing.cbor         every key generation N publishes, with its BLAKE3
//!     generations/N/inventory.cbor       its entries, as the local mirror keeps them
//!     reports/<digest>.html, .json       each import's audit page and report
//!     segments/<blake3>                  manifest roots and segments (mirror/segments.rs)
//! ```
//!
//! Verification is unchanged and ends before anything is uploaded: the
//! bundle is verified into a local staging folder (one bundle's blobs, in
//! airlock's cache folder, its space checked first), then uploaded in the
//! order `tree.rs` describes. A run killed at any point leaves the
//! published state naming objects that all exist; the next import finds
//! what the killed one uploaded and goes on (create-only puts of the same
//! bytes), and `gc` deletes what no published generation lists. What a
//! generation withdraws is deleted as soon as it is published (a withdrawn
//! artifact must not stay downloadable), so a page a client cached for up
//! to its 60 s may name a file already gone.

mod s3;
mod segments;
mod tree;

pub(super) use self::segments::BucketSegments;
use self::segments::PREFIX as SEGMENTS_PREFIX;

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::s3::{Created, Put, S3};
use self::tree::{Hashing, Inputs, Listing, ObjectTree, file_opener};
use super::inventory::{Against, decode_inventory, decode_inventory_against, encode_inventory};
use super::segments::KeptSegments;
use super::{
    BUILD, Collected, Fill, Publication, PublishReport, StagedBundle, Staging, State, Store, Stored, WaitingImport,
    merge,
};
use crate::durable::remove_path;
use crate::error::{Error, IoContext, Result};
use crate::fetch::Payload;
use crate::id::ContentId;
use crate::manifest::{Blob, Entry, Manifest};

const LOCK: &str = ".airlock/lock";
/// Written once, when a prefix becomes a mirror: a prefix without it must be empty.
const CLAIM: &str = ".airlock/mirror";
const STATE: &str = ".airlock/state.json";
const STATE_CAP: u64 = 64 << 20;

/// Who holds a bucket's lock.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    since: String,
}

/// A bucket mirror, opened and locked for one import or `gc`.
pub struct Bucket {
    s3: S3,
    /// This machine's staging of bundles for this bucket.
    staging: PathBuf,
    state: State,
    listing: Listing,
    locked: bool,
}

/// Whether `--mirror` names object storage rather than a folder.
#[must_use]
pub fn is_bucket(mirror: &Path) -> bool {
    mirror.to_str().is_some_and(|m| m.starts_with("s3://"))
}

/// An object of the bucket as it is read.
type ObjectBody = io::BufReader<Box<dyn Read + Send>>;

impl Bucket {
    /// Opens and locks the mirror at `url` (`s3://BUCKET/PREFIX`).
    pub fn open(url: &str) -> Result<Self> {
        let mut bucket = Self::unlocked(url)?;
        bucket.lock()?;
        bucket.state = bucket.read_state()?;
        if bucket.state.generation == 0 {
            bucket.claim()?;
        }
        bucket.listing = bucket.read_listing(bucket.state.generation)?;
        bucket.remove_half_built()?;
        Ok(bucket)
    }

    /// Opens the mirror at `url` to read its published state (`status`):
    /// no lock, nothing written; it must be a mirror already.
    pub fn open_read_only(url: &str) -> Result<Self> {
        let mut bucket = Self::unlocked(url)?;
        bucket.state = bucket.read_state()?;
        if bucket.state.generation == 0 && bucket.s3.head(CLAIM)?.is_none() {
            return Err(Error::Usage(format!(
                "{}: is not an airlock mirror (no {CLAIM}); pass the address given to `airlock import --mirror`",
                bucket.s3.url
            )));
        }
        Ok(bucket)
    }

    fn unlocked(url: &str) -> Result<Self> {
        let s3 = S3::from_url(url)?;
        let staging = crate::fetch::Cache::default_dir()
            .join("s3-staging")
            .join(&ContentId::of(s3.url.as_bytes()).to_hex()[..16]);
        std::fs::create_dir_all(&staging).at(&staging)?;
        Ok(Bucket { s3, staging, state: State::default(), listing: Listing::new(), locked: false })
    }

    /// Takes the lock: a create-only put. A lock left by a run on this
    /// machine that is no longer alive (killed) is taken over.
    fn lock(&mut self) -> Result<()> {
        let holder = Holder { host: host_name(), pid: std::process::id(), since: crate::time::rfc3339(crate::now()) };
        let body = serde_json::to_vec(&holder).expect("holder serializes");
        for _ in 0..2 {
            let put =
                Put { content_type: "application/json", cache_control: "no-store", blake3: "", create_only: true };
            if self.s3.put(LOCK, &Payload::Bytes(&body), &put)? == Created::Written {
                self.locked = true;
                return Ok(());
            }
            let other: Option<Holder> =
                self.s3.get_bytes(LOCK, 4096)?.and_then(|bytes| serde_json::from_slice(&bytes).ok());
            match other {
                Some(other) if other.host == holder.host && !process_alive(other.pid) => self.s3.delete(LOCK)?,
                Some(other) => {
                    return Err(Error::Busy(format!(
                        "{}: another airlock import holds the lock (host {}, pid {}, since {}); wait for it to finish, or pass --wait; if no import runs there, delete {}/{LOCK}",
                        self.s3.url,
                        crate::escape::one_line(&other.host),
                        other.pid,
                        crate::escape::one_line(&other.since),
                        self.s3.url
                    )));
                }
                None => {
                    return Err(Error::Busy(format!(
                        "{}: the lock {}/{LOCK} is held (unreadable); if no import runs, delete it",
                        self.s3.url, self.s3.url
                    )));
                }
            }
        }
        Err(Error::Busy(format!(
            "{}: another import took the lock as this one freed a stale one; try again",
            self.s3.url
        )))
    }

    /// Makes a new prefix this mirror's, refusing one that holds anything
    /// else: documents are replaced at their keys, so publishing into a
    /// prefix in use could overwrite what someone else keeps there. A prefix
    /// claimed by a killed first import is this mirror's already.
    fn claim(&self) -> Result<()> {
        if self.s3.head(CLAIM)?.is_some() {
            return Ok(());
        }
        if let Some(key) = self.s3.first_keys(2)?.into_iter().find(|key| key != LOCK) {
            return Err(Error::Usage(format!(
                "{}: holds {key} and is not an airlock mirror; choose a new or empty prefix for --mirror",
                self.s3.url
            )));
        }
        let claim = format!("{{\"airlock\":\"{}\"}}\n", env!("CARGO_PKG_VERSION"));
        self.put_bytes(CLAIM, claim.as_bytes(), "application/json")
    }

    fn read_state(&self) -> Result<State> {
        let Some(bytes) = self.s3.get_bytes(STATE, STATE_CAP)? else { return Ok(State::default()) };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Usage(format!(
                "{}/{STATE}: unreadable mirror state ({e}); the bucket was changed by hand",
                self.s3.url
            ))
        })
    }

    fn generation_key(generation: u64, name: &str) -> String {
        format!(".airlock/generations/{generation}/{name}")
    }

    /// Generation `n`'s object `name`, streamed.
    fn generation_object(&self, generation: u64, name: &str) -> Result<ObjectBody> {
        let key = Self::generation_key(generation, name);
        match self.s3.get(&key)? {
            Some(body) => Ok(io::BufReader::new(body)),
            None => Err(Error::Usage(format!(
                "{}/{key}: missing, though the state names generation {generation}; the bucket was changed by hand",
                self.s3.url
            ))),
        }
    }

    fn read_listing(&self, generation: u64) -> Result<Listing> {
        if generation == 0 {
            return Ok(Listing::new());
        }
        let body = self.generation_object(generation, "listing.cbor")?;
        ciborium::de::from_reader_with_recursion_limit(body, 8).map_err(|e| {
            Error::Usage(format!(
                "{}: unreadable listing of generation {generation} ({e}); the bucket was changed by hand",
                self.s3.url
            ))
        })
    }

    /// The half-built generation in any bundle's staging (a killed run's).
    fn remove_half_built(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.staging).at(&self.staging)? {
            let path = entry.at(&self.staging)?.path();
            if path.is_dir() {
                remove_path(&path.join(BUILD))?;
            } else {
                remove_path(&path)?;
            }
        }
        Ok(())
    }

    /// PUTs the file at `path`, of BLAKE3 `blake3` and `size` bytes, at `key`.
    fn put_file(&self, key: &str, path: &Path, (blake3, size): (String, u64), content_type: &str) -> Result<()> {
        let put = Put { content_type, cache_control: "no-cache", blake3: &blake3, create_only: false };
        self.s3.put(key, &Payload::Stream(&file_opener(path.to_owned()), size), &put).map(drop)
    }

    /// PUTs at `key` what `fill` writes, through a file in the local staging
    /// (a report of a large bundle is tens of megabytes, never held whole).
    fn put_written(&self, key: &str, fill: Fill<'_>, content_type: &str) -> Result<()> {
        let tmp = tempfile::Builder::new().prefix(".report-").tempfile_in(&self.staging).at(&self.staging)?;
        let mut out = std::io::BufWriter::new(tmp.as_file());
        fill(&mut out).and_then(|()| std::io::Write::flush(&mut out)).at(tmp.path())?;
        drop(out);
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(tmp.as_file().try_clone().at(tmp.path())?).at(tmp.path())?;
        let size = tmp.as_file().metadata().at(tmp.path())?.len();
        self.put_file(key, tmp.path(), (ContentId(*hasher.finalize().as_bytes()).to_hex(), size), content_type)
    }

    fn put_bytes(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<()> {
        let blake3 = ContentId::of(bytes).to_hex();
        let put = Put { content_type, cache_control: "no-cache", blake3: &blake3, create_only: false };
        self.s3.put(key, &Payload::Bytes(bytes), &put).map(drop)
    }

    /// Builds and uploads the next generation, then commits it by
    /// replacing the state; deletes what it no longer publishes.
    fn publish_staged(&mut self, staging: &Staging, publication: Publication<'_>) -> Result<PublishReport> {
        let Publication { manifest, record, base_url, rules, layouts, aliases } = publication;
        let generation = self.state.generation + 1;
        let entries = manifest.entries.decoded();
        let inventory = self.inventory_against(&entries, &manifest.channel)?;
        let merged = merge(&inventory, &entries, &manifest.channel, rules)?;
        let build = staging.dir.join(BUILD);
        remove_path(&build)?;
        let documents = build.join("documents");
        std::fs::create_dir_all(&documents).at(&documents)?;
        let sizes: HashMap<ContentId, u64> = manifest.blobs.iter().map(|b| (b.id, b.size)).collect();
        let replaceable: BTreeSet<String> = merged
            .all
            .iter()
            .filter(|(_, e)| (rules.replaceable)(e))
            .map(|(_, e)| format!("{}/{}", e.ecosystem, e.path.as_str()))
            .collect();
        let staged = |id: &ContentId| Some(staging.blob_path(id)).filter(|p| p.is_file());
        let inputs = Inputs { sizes: &sizes, aliases, replaceable: &replaceable, staged: &staged };
        let mut tree = ObjectTree::new(&self.s3, &self.listing, documents, inputs);
        layouts(&merged, &mut tree)?;
        let inventory_file = build.join("inventory.cbor");
        let mut out = Hashing::new(io::BufWriter::new(std::fs::File::create(&inventory_file).at(&inventory_file)?));
        encode_inventory(&mut out, &merged, rules).and_then(|()| io::Write::flush(&mut out)).at(&inventory_file)?;
        let inventory_digest = out.finish();
        drop(merged);
        drop(inventory);
        tree.upload()?;

        let mut listing = Vec::new();
        ciborium::ser::into_writer(&tree.next, &mut listing).expect("listing encodes");
        self.put_bytes(&Self::generation_key(generation, "listing.cbor"), &listing, "application/cbor")?;
        let inventory_key = Self::generation_key(generation, "inventory.cbor");
        self.put_file(&inventory_key, &inventory_file, inventory_digest, "application/cbor")?;
        let mut state = self.state.clone();
        state.generation = generation;
        state.imports.extend(record);
        state.base_url = base_url;
        self.put_bytes(STATE, &serde_json::to_vec_pretty(&state).expect("state serializes"), "application/json")?;

        // Published. What follows only tidies: what fails is left for `gc`.
        for key in tree.dropped() {
            let _ = self.s3.delete(&key);
        }
        for name in ["listing.cbor", "inventory.cbor"] {
            let _ = self.s3.delete(&Self::generation_key(generation - 1, name));
        }
        let published = tree.take_published();
        self.listing = tree.next;
        self.state = state.clone();
        let _ = remove_path(&build);
        Ok(PublishReport { mirror: self.s3.url.clone(), generation, published, state })
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        if self.locked {
            let _ = self.s3.delete(LOCK);
        }
    }
}

impl Bucket {
    /// The published inventory one entry at a time, as [`View::each_stored`](super::View::each_stored).
    pub fn each_stored<S>(&self, begin: impl FnOnce(u64) -> S, each: impl FnMut(&mut S, Stored)) -> Result<S> {
        match self.published_inventory()? {
            Some((body, name)) => super::inventory::each_stored_from(body, &name, begin, each),
            None => Ok(begin(0)),
        }
    }

    /// The published generation's inventory object and its name as
    /// messages give it; none before the first import.
    fn published_inventory(&self) -> Result<Option<(ObjectBody, String)>> {
        if self.state.generation == 0 {
            return Ok(None);
        }
        let body = self.generation_object(self.state.generation, "inventory.cbor")?;
        let name = format!("{}/{}", self.s3.url, Self::generation_key(self.state.generation, "inventory.cbor"));
        Ok(Some((body, name)))
    }
}

impl Store for Bucket {
    fn location(&self) -> String {
        self.s3.url.clone()
    }
    fn generation(&self) -> Result<u64> {
        Ok(self.state.generation)
    }
    fn state(&self) -> Result<State> {
        Ok(self.state.clone())
    }
    fn inventory(&self) -> Result<Vec<Stored>> {
        match self.published_inventory()? {
            Some((body, name)) => decode_inventory(body, &name),
            None => Ok(Vec::new()),
        }
    }
    fn inventory_against(&self, incoming: &[Entry], channel: &str) -> Result<Against> {
        match self.published_inventory()? {
            Some((body, name)) => decode_inventory_against(body, &name, incoming, channel),
            None => Ok(Against::default()),
        }
    }
    fn missing_objects<'m>(&self, manifest: &'m Manifest) -> Vec<&'m Blob> {
        let held: HashMap<&str, u64> =
            self.listing.values().filter(|o| !o.document).map(|o| (o.blake3.as_str(), o.size)).collect();
        manifest.blobs_not_carried().filter(|b| held.get(b.id.to_hex().as_str()) != Some(&b.size)).collect()
    }
    fn check_space(&self, needed: u64, what: &str) -> Result<()> {
        super::local::check_free(&self.staging, needed, what)
    }
    fn bundle_staging(&self, digest: &ContentId, bundle: &StagedBundle) -> Result<Staging> {
        Staging::open(&self.staging.join(digest.to_hex()), bundle)
    }
    fn discard_staging(&self, digest: &ContentId) -> Result<()> {
        remove_path(&self.staging.join(digest.to_hex()))
    }
    fn publish(&mut self, staging: &Staging, publication: Publication<'_>) -> Result<PublishReport> {
        self.publish_staged(staging, publication)
    }
    fn keep_report(&self, digest: &str, page: Fill<'_>, json: Fill<'_>) -> Result<String> {
        self.put_written(&format!(".airlock/reports/{digest}.json"), json, "application/json")?;
        let key = format!(".airlock/reports/{digest}.html");
        self.put_written(&key, page, "text/html; charset=utf-8")?;
        Ok(format!("{}/{key}", self.s3.url))
    }
    fn keep_segments(&self, kept: &KeptSegments<'_>) -> Result<Vec<ContentId>> {
        Bucket::keep_segments(self, kept)
    }
    fn forget_segments(&self, written: &[ContentId]) -> Result<()> {
        Bucket::forget_segments(self, written)
    }
    fn gc(&self, dry_run: bool) -> Result<Collected> {
        self.collect(dry_run)
    }
    fn gc_staging(&self, now: u64, all: bool, dry_run: bool) -> Result<Vec<String>> {
        super::gc::gc_staging_in(&self.staging, &self.state, now, all, dry_run)
    }
    fn waiting_imports(&self, now: u64) -> Result<Vec<WaitingImport>> {
        super::gc::waiting_in(&self.staging, &self.state, now)
    }
}

impl Bucket {
    /// Deletes what the published generation does not list: what a killed
    /// import uploaded before it published, what a failed delete left, and
    /// older generations' listings. An object without airlock's
    /// `x-amz-meta-blake3` was not written by airlock and is kept (and counted).
    fn collect(&self, dry_run: bool) -> Result<Collected> {
        let current = format!(".airlock/generations/{}/", self.state.generation);
        let live_segments = self.live_segment_keys()?;
        let mut collected = Collected::default();
        self.s3.for_each_key(|listed| {
            let key = listed.key.as_str();
            let ours = [LOCK, CLAIM, STATE].contains(&key)
                || key.starts_with(&current)
                || key.starts_with(".airlock/reports/")
                || self.listing.contains_key(key)
                || live_segments.contains(key);
            if ours {
                return Ok(());
            }
            let written = key.starts_with(".airlock/generations/")
                || self.s3.head(key)?.is_some_and(|head| head.blake3.is_some_and(|b| !b.is_empty()));
            if !written {
                collected.foreign.push(listed.key);
                return Ok(());
            }
            if !dry_run {
                self.s3.delete(key)?;
            }
            if key.starts_with(SEGMENTS_PREFIX) {
                collected.segments_removed += 1;
                collected.segments_freed += listed.size;
            } else {
                collected.removed += 1;
                collected.freed += listed.size;
            }
            Ok(())
        })?;
        Ok(collected)
    }
}

/// This machine's name, as the lock records it.
fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Whether process `pid` runs on this machine.
fn process_alive(pid: u32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid.cast_signed()) else { return false };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}
