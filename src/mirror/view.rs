//! The published state of a mirror, read without the lock: the generation,
//! its state record and its inventory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::inventory::read_inventory;
use super::{CURRENT, GENERATIONS, INVENTORY, META, STATE, Stored};
use crate::error::{Error, IoContext, Result};

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

/// Read-only access to a mirror's published state (for `status`; no lock, creates nothing).
pub struct View {
    pub(super) meta: PathBuf,
}

impl View {
    /// Opens the mirror at `root` for reading; it must exist.
    pub fn open(root: &Path) -> Result<Self> {
        let meta = root.join(META);
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
