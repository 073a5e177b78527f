//! `export`: artifacts in, one signed volume out (or a folder of them).
//!
//! This module takes the options and runs the steps: the checks
//! ([`checks`]), the artifacts of `--files` and of every ecosystem's
//! lockfiles (through [`crate::ecosystem::Source`]; it names no ecosystem),
//! the signed manifest ([`manifest`]), the volume or volumes ([`volume`],
//! [`split`]), and the channel state ([`state`]).

mod checks;
mod manifest;
mod split;
mod state;
mod volume;

pub use state::{ChannelState, state_segments};

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::ecosystem::registry::append;
use crate::ecosystem::{Artifact, FetchContext, Planned, Source, files};
use crate::error::{Error, IoContext, Result};
use crate::fetch::{Cache, Client};
use crate::progress::Progress;
use crate::sign::{OperatorKey, Signer};

/// The longest `expires_in` an export accepts: 100 years (as humantime
/// counts them, 365.25 days each). An expiry bounds how long a bundle that
/// leaked or was kept back can still be imported somewhere; beyond a
/// century it bounds nothing. A fixed cap, rather than "until the year
/// 9999", refuses the same `--expires` on every machine on every day, and
/// keeps any creation time up to the year 9899 within [`MAX_TIME`](crate::manifest::MAX_TIME).
pub const MAX_EXPIRES_IN: Duration = Duration::from_hours(876_600);

/// What to export and how.
pub struct ExportOptions {
    pub inputs: Inputs,
    /// Signing keys (`--key`, one or more): key files opened, or token keys.
    pub keys: Vec<OperatorKey>,
    /// The bundle to write.
    pub out: PathBuf,
    pub channel: String,
    pub expires_in: Duration,
    /// Creation time, seconds since the epoch.
    pub now: u64,
    /// Replace an existing bundle at `out`.
    pub force: bool,
    /// Compression worker threads (0: compress on the calling thread).
    pub threads: u32,
    pub network: Network,
    /// The exporter's channel state (`--state`): where the next sequence
    /// number and the previous manifest's digest come from.
    pub state: Option<PathBuf>,
    /// Carry every blob even when earlier bundles of the channel carried it.
    pub full: bool,
    /// `--split`: write `out` as a folder of volumes; `None` writes one file.
    pub split: Option<Split>,
}

/// How to split a bundle into volumes.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// The largest a volume file may be, in bytes.
    pub size: u64,
    /// Parity volumes to add (`--parity`).
    pub parity: u32,
}

/// Where artifacts come from.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Folders whose regular files to ship (`--files`).
    pub files: Vec<PathBuf>,
    /// Lockfiles with their registry settings, one source per ecosystem
    /// (`ecosystem::<name>::source`); fetched in this order.
    pub sources: Vec<Box<dyn Source>>,
}

impl Inputs {
    /// Whether any source names a lockfile (so that something is fetched).
    #[must_use]
    pub fn any_lockfile(&self) -> bool {
        self.sources.iter().any(|s| s.names_inputs())
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && !self.any_lockfile()
    }
}

/// Cache and concurrency for lockfile exports (each source has its endpoint).
#[derive(Debug, Clone)]
pub struct Network {
    pub cache: PathBuf,
    /// Concurrent requests.
    pub jobs: usize,
    /// Longest wait for data from a registry.
    pub read_timeout: Duration,
    /// Retries of a transient failure.
    pub retries: u32,
}

impl Default for Network {
    fn default() -> Self {
        Network { cache: Cache::default_dir(), jobs: 8, read_timeout: Duration::from_secs(30), retries: 3 }
    }
}

/// What was exported.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub bundle: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub created: String,
    pub expires: String,
    pub signers: Vec<String>,
    pub entries: usize,
    pub blobs: usize,
    pub bytes: u64,
    /// Blobs and bytes this bundle carries (fewer than the inventory's in an incremental bundle).
    pub carried_blobs: usize,
    pub carried_bytes: u64,
    pub bundle_bytes: u64,
    /// Data volumes and parity volumes written (1 and 0 without `--split`).
    pub volumes: u32,
    pub parity_volumes: u32,
    /// Artifacts fetched from a registry in this run (not found in the cache).
    pub downloads: usize,
}

/// What an export would carry (`export --dry-run`), as far as it is known
/// before any registry is asked.
#[derive(Debug, Clone, Serialize)]
pub struct ExportPlan {
    pub bundle: String,
    pub channel: String,
    pub expires: String,
    pub signers: Vec<String>,
    /// Each `--files` folder: how many files and bytes it holds.
    pub files: Vec<PlannedFolder>,
    /// What the lockfiles, lists and flags name, to be resolved and fetched.
    pub packages: Vec<Planned>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedFolder {
    pub folder: String,
    pub files: usize,
    pub bytes: u64,
}

/// Everything an export checks before it fetches or writes anything (the
/// options, keys, `--out`, `--state`, every lockfile and every `--files`
/// folder, listed but not read), and what it would then fetch: the plan of
/// `export --dry-run`. Writes nothing, the download cache included.
pub fn plan(options: &ExportOptions) -> Result<ExportPlan> {
    checks::check_options(options)?;
    let expires = checks::expiry(options)?;
    let mut folders = Vec::new();
    for dir in &options.inputs.files {
        let found = files::list(dir)?;
        let bytes = found.iter().map(|(_, size)| size).sum();
        folders.push(PlannedFolder { folder: dir.display().to_string(), files: found.len(), bytes });
    }
    let pins = options.inputs.sources.iter().map(|s| s.read()).collect::<Result<Vec<_>>>()?;
    let packages: Vec<Planned> = pins.iter().flat_map(|p| p.planned()).collect();
    if packages.is_empty() && folders.iter().all(|f| f.files == 0) {
        return Err(nothing_to_export());
    }
    Ok(ExportPlan {
        bundle: options.out.display().to_string(),
        channel: options.channel.clone(),
        expires: crate::time::rfc3339(expires),
        signers: options.keys.iter().map(|k| k.public().id().short()).collect(),
        files: folders,
        packages,
    })
}

/// The inputs were given but name nothing (empty folders, empty lockfiles).
fn nothing_to_export() -> Error {
    Error::Usage("nothing to export: the inputs name no files or packages".into())
}

/// Runs an export.
pub fn export(options: &ExportOptions, progress: &dyn Progress) -> Result<ExportReport> {
    checks::check_options(options)?;
    let mut artifacts = Vec::new();
    for dir in &options.inputs.files {
        append(&mut artifacts, files::collect(dir, progress)?);
    }
    let mut downloads = 0;
    if options.inputs.any_lockfile() {
        let fetched = fetch_lockfiles(&options.inputs, &options.network, progress)?;
        downloads = fetched.1;
        append(&mut artifacts, fetched.0);
    }
    if artifacts.is_empty() {
        return Err(nothing_to_export());
    }
    let last = match &options.state {
        Some(dir) => {
            std::fs::create_dir_all(dir).at(dir)?;
            ChannelState::load(dir, &options.channel)?
        }
        None => None,
    };
    let (mut manifest, sources) = manifest::build_manifest(artifacts, options)?;
    let sent = match &options.state {
        Some(dir) if !options.full => ChannelState::sent_blobs(dir, &options.channel)?,
        _ => std::collections::BTreeSet::new(),
    };
    for blob in &mut manifest.blobs {
        blob.carried = !sent.contains(&blob.id);
    }
    if let Some(last) = &last {
        state::chain_to(&mut manifest, last, &options.channel)?;
    }
    let budget = match &options.split {
        Some(split) => Some(split::plan_volumes(&mut manifest, split, &options.keys, &sources, progress)?),
        None => None,
    };
    let entries = manifest.entries.len();
    let held = match (&options.state, &last) {
        (Some(dir), Some(_)) if !options.full => ChannelState::sent_segments(dir, &options.channel)?,
        _ => std::collections::BTreeSet::new(),
    };
    let (digest, sealed, segments) = manifest::sign_final(&mut manifest, &options.keys, &held)?;
    if let Some(dir) = &options.state {
        state::keep_segments(dir, &sealed)?;
    }
    let bundle_bytes = match &budget {
        Some(budget) => split::write_split(options, &manifest, digest, &sealed, &sources, budget, progress)?,
        None => volume::write_volume(options, &manifest, digest, sealed, &sources, progress)?,
    };
    if let Some(dir) = &options.state {
        state::record(dir, &manifest, (digest, &segments), &options.out, sent)?;
        // Clean-up only: the bundle and the state are written; a segment
        // left over costs disk, and the next export removes it.
        let _ = state::collect_segments(dir);
    }
    Ok(ExportReport {
        bundle: options.out.display().to_string(),
        manifest_digest: digest.to_hex(),
        channel: manifest.channel.clone(),
        sequence: manifest.sequence,
        created: crate::time::rfc3339(manifest.created),
        expires: crate::time::rfc3339(manifest.expires),
        signers: options.keys.iter().map(|k| k.public().id().short()).collect(),
        entries,
        blobs: manifest.blobs.len(),
        bytes: manifest.blob_bytes(),
        carried_blobs: manifest.blobs.iter().filter(|b| b.carried).count(),
        carried_bytes: manifest.carried_bytes(),
        bundle_bytes,
        volumes: manifest.volumes,
        parity_volumes: manifest.parity,
        downloads,
    })
}

/// Parses every lockfile and fetches what it pins; returns the artifacts and
/// how many were downloaded (rather than found in the cache).
fn fetch_lockfiles(inputs: &Inputs, network: &Network, progress: &dyn Progress) -> Result<(Vec<Artifact>, usize)> {
    // Every lockfile is read and checked before anything is fetched or
    // written (the download cache included): a bad one is one line naming it.
    let pins = inputs.sources.iter().map(|s| s.read()).collect::<Result<Vec<_>>>()?;
    let client = Client::new(network.read_timeout, network.retries)?;
    let cache = Cache::open(&network.cache)?;
    let ctx = FetchContext { client: &client, cache: &cache, jobs: network.jobs, progress };
    progress.start("fetching", 0);
    let mut artifacts = Vec::new();
    for pinned in &pins {
        append(&mut artifacts, pinned.fetch(&ctx)?);
    }
    progress.finish();
    Ok((artifacts, cache.downloads()))
}
