//! The published state of a mirror, read without the lock: the generation,
//! its state record and its inventory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::inventory::{Against, read_inventory, read_inventory_against};
use super::{CURRENT, GENERATIONS, INVENTORY, META, STATE, Store, Stored, WaitingImport};
use crate::error::{Error, IoContext, Result};
use crate::manifest::Entry;

/// The mirror's record of what it holds, stored in each generation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub generation: u64,
    pub imports: Vec<ImportRecord>,
    /// The address the documents were rendered for (`import --base-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
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

/// A mirror's published state as `status` shows it, wherever it is kept.
pub struct Published {
    /// Where the mirror is, as reports name it.
    pub location: String,
    /// The published generation; `None` before the first import.
    pub generation: Option<u64>,
    pub state: State,
    /// How many entries of each ecosystem the mirror publishes, and their
    /// bytes (counted as the inventory is read, none of it kept).
    pub contents: BTreeMap<String, Tally>,
    /// Split bundles whose import waits for more volumes.
    pub waiting: Vec<WaitingImport>,
}

/// Reads the published state of the mirror at `root` (a folder or
/// `s3://BUCKET/PREFIX`) without its lock, writing nothing.
pub fn read_published(root: &Path, now: u64) -> Result<Published> {
    if super::is_bucket(root) {
        let bucket = super::Bucket::open_read_only(&root.to_string_lossy())?;
        let state = bucket.state()?;
        let contents = bucket.each_stored(|_| BTreeMap::new(), tally)?;
        return Ok(Published {
            location: bucket.location(),
            generation: Some(state.generation).filter(|&n| n > 0),
            contents,
            waiting: bucket.waiting_imports(now)?,
            state,
        });
    }
    let view = View::open(root)?;
    let contents = view.each_stored(|_| BTreeMap::new(), tally)?;
    Ok(Published {
        location: root.display().to_string(),
        generation: view.current()?.map(|(n, _)| n),
        state: view.state()?,
        contents,
        waiting: view.waiting_imports(now)?,
    })
}

/// Entries and their bytes, of one ecosystem.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Tally {
    pub entries: usize,
    pub bytes: u64,
}

fn tally(contents: &mut BTreeMap<String, Tally>, stored: Stored) {
    let entry = stored.entry;
    match contents.get_mut(&entry.ecosystem) {
        Some(slot) => {
            slot.entries += 1;
            slot.bytes += entry.size;
        }
        None => {
            contents.insert(entry.ecosystem, Tally { entries: 1, bytes: entry.size });
        }
    }
}

/// Read-only access to a mirror's published state (for `status`; no lock, creates nothing).
pub struct View {
    pub(super) meta: PathBuf,
}

impl View {
    /// Opens the mirror at `root` for reading; it must exist.
    pub fn open(root: &Path) -> Result<Self> {
        let meta = root.join(META);
        if super::is_bucket(root) {
            return Err(Error::Usage(format!(
                "{}: this command reads a mirror folder; a mirror in object storage is read by its clients from the bucket itself (`import`, `status` and `gc` take s3:// addresses)",
                root.display()
            )));
        }
        if !root.exists() {
            return Err(Error::Usage(format!(
                "{}: no such folder; pass the folder given to `airlock import --mirror`",
                root.display()
            )));
        }
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

    /// [`View::inventory`] one entry at a time, none kept but by `each`: a
    /// state made by `begin` from the number of entries (0 for a mirror
    /// without a generation), given to `each` with every entry, and returned.
    pub fn each_stored<S>(&self, begin: impl FnOnce(u64) -> S, each: impl FnMut(&mut S, Stored)) -> Result<S> {
        let Some((_, dir)) = self.current()? else { return Ok(begin(0)) };
        super::inventory::each_stored(&dir.join(INVENTORY), begin, each)
    }

    /// [`View::inventory`] for the merge with a bundle of `channel` listing `incoming` ([`Against`]).
    pub fn inventory_against(&self, incoming: &[Entry], channel: &str) -> Result<Against> {
        let Some((_, dir)) = self.current()? else {
            return Ok(Against::default());
        };
        read_inventory_against(&dir.join(INVENTORY), incoming, channel)
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
