//! `gc`: what no published or previous generation uses, and staging of
//! bundles that can no longer be imported.

use std::fs;
use std::path::Path;

use super::inventory::each_stored;
use serde::Serialize;

use super::{BUNDLE_RECORD, GENERATIONS, INVENTORY, Mirror, OBJECTS, STAGING, StagedBundle, State, View};
use crate::durable::{remove_path, sync_dir};
use crate::error::{IoContext, Result};
use crate::id::ContentId;
use crate::time::rfc3339;

impl Mirror {
    /// Keeps the published generation and the one before it (readers that
    /// resolved the old link a moment ago still find their files).
    /// Removes what no published or previous generation uses: withdrawn
    /// blobs in the object store and older generations (stale staging went
    /// when the mirror was opened). Returns (objects removed, bytes freed);
    /// with `dry_run`, what it would remove, removing nothing.
    pub fn gc(&self, dry_run: bool) -> Result<(usize, u64)> {
        let Some((current, dir)) = self.current()? else { return Ok((0, 0)) };
        if !dry_run {
            self.prune(current);
        }
        // The blobs the two generations kept list, 32 bytes each, read one
        // entry at a time (sets of the entries' hex names took some 150).
        let mut keep: Vec<ContentId> = Vec::new();
        for generation in [Some(dir), current.checked_sub(1).map(|p| self.meta.join(GENERATIONS).join(p.to_string()))]
            .into_iter()
            .flatten()
        {
            let path = generation.join(INVENTORY);
            if path.exists() {
                each_stored(&path, |_| (), |(), stored| keep.push(stored.entry.blob))?;
            }
        }
        keep.sort_unstable();
        keep.dedup();
        // Exactly the names objects are written under (lower-case hex).
        let kept = |name: &str| {
            ContentId::from_hex(name).is_some_and(|id| id.to_hex() == name && keep.binary_search(&id).is_ok())
        };
        let objects = self.meta.join(OBJECTS);
        let (mut removed, mut freed) = (0, 0);
        for entry in fs::read_dir(&objects).at(&objects)? {
            let entry = entry.at(&objects)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !kept(&name) {
                freed += entry.metadata().map_or(0, |m| m.len());
                if !dry_run {
                    fs::remove_file(entry.path()).at(&entry.path())?;
                }
                removed += 1;
            }
        }
        if !dry_run {
            sync_dir(&objects)?;
        }
        Ok((removed, freed))
    }

    /// Removes the staging of bundles that can no longer be imported: already
    /// imported, older than (or a fork of) the channel's last import, or
    /// expired; with `all`, every staged import. Returns what it removed
    /// (with `dry_run`, what it would remove).
    pub fn gc_staging(&self, now: u64, all: bool, dry_run: bool) -> Result<Vec<String>> {
        gc_staging_in(&self.meta.join(STAGING), &self.state()?, now, all, dry_run)
    }

    pub(super) fn prune(&self, current: u64) {
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

/// A split bundle whose import waits for more volumes: what `status` shows
/// and `gc` keeps.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingImport {
    /// The bundle's manifest digest, in its 16-hex short form.
    pub bundle: String,
    pub channel: String,
    pub sequence: u64,
    pub volumes: u32,
    /// Data volumes verified and kept so far.
    pub volumes_done: usize,
    pub expires: String,
}

impl View {
    /// The imports staged and still able to be published (a `gc` keeps these).
    pub fn waiting_imports(&self, now: u64) -> Result<Vec<WaitingImport>> {
        waiting_in(&self.meta.join(STAGING), &self.state()?, now)
    }
}

/// [`View::waiting_imports`] of the bundles staged in `staging` for a mirror in `state`.
pub(super) fn waiting_in(staging: &Path, state: &State, now: u64) -> Result<Vec<WaitingImport>> {
    let Ok(entries) = fs::read_dir(staging) else { return Ok(Vec::new()) };
    let mut waiting = Vec::new();
    for entry in entries {
        let dir = entry.at(staging)?.path();
        let digest = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let Some(record) =
            fs::read(dir.join(BUNDLE_RECORD)).ok().and_then(|b| serde_json::from_slice::<StagedBundle>(&b).ok())
        else {
            continue;
        };
        if abandoned(&record, &digest, state, now).is_some() {
            continue;
        }
        let volumes_done = fs::read_dir(dir.join("volumes")).map_or(0, Iterator::count);
        waiting.push(WaitingImport {
            bundle: digest[..digest.len().min(16)].to_owned(),
            channel: record.channel,
            sequence: record.sequence,
            volumes: record.volumes,
            volumes_done,
            expires: rfc3339(record.expires),
        });
    }
    waiting.sort_by(|a, b| (&a.channel, a.sequence).cmp(&(&b.channel, b.sequence)));
    Ok(waiting)
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

/// [`Mirror::gc_staging`] of the bundles staged in `staging` for a mirror in `state`.
pub(super) fn gc_staging_in(staging: &Path, state: &State, now: u64, all: bool, dry_run: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(staging).at(staging)? {
        let dir = entry.at(staging)?.path();
        let digest = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let record: Option<StagedBundle> =
            fs::read(dir.join(BUNDLE_RECORD)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let why = match &record {
            _ if all => Some("--all-staging".to_owned()),
            None => Some("no readable bundle.json (left by a killed run)".to_owned()),
            Some(r) => abandoned(r, &digest, state, now),
        };
        if let Some(why) = why {
            if !dry_run {
                remove_path(&dir)?;
            }
            removed.push(format!("{} ({why})", &digest[..digest.len().min(16)]));
        }
    }
    Ok(removed)
}
