//! `export`: artifacts in, one signed volume out.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::bundle::split::{self, Budget};
use crate::bundle::writer::{BlobFrame, BlobWriteError, VolumeWriter, write_seal};
use crate::bundle::{PARITY_MEMBER, ParityInfo, VOLUME_MEMBER, VolumeInfo, VolumeSeal, parity, volume_file_name};
use crate::durable::Existing;
use crate::durable::writeback::DropBehind;
use crate::ecosystem::ManifestExt as _;
use crate::ecosystem::pypi::{self, Selection};
use crate::ecosystem::registry::FetchContext;
use crate::ecosystem::{Artifact, cargo, endpoints, files, npm};
use crate::error::{Error, IoContext, Result};
use crate::fetch::{Cache, Client};
use crate::id::ContentId;
use crate::lockfile;
use crate::manifest::Entry;
use crate::manifest::canonical;
use crate::manifest::{Blob, FORMAT_VERSION, MAX_TIME, Manifest};
use crate::progress::{Progress, ProgressReader};
use crate::sign::{OperatorKey, Signer, envelope};

/// The longest `expires_in` an export accepts: 100 years (as humantime
/// counts them, 365.25 days each). An expiry bounds how long a bundle that
/// leaked or was kept back can still be imported somewhere; beyond a
/// century it bounds nothing. A fixed cap, rather than "until the year
/// 9999", refuses the same `--expires` on every machine on every day, and
/// keeps any creation time up to the year 9899 within [`MAX_TIME`].
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

/// The exporter's record of a channel, `STATE/CHANNEL.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChannelState {
    pub channel: String,
    pub sequence: u64,
    pub manifest_digest: String,
    pub bundle: String,
    pub created: String,
}

impl ChannelState {
    fn path(dir: &Path, channel: &str) -> PathBuf {
        dir.join(format!("{channel}.json"))
    }

    fn blobs_path(dir: &Path, channel: &str) -> PathBuf {
        dir.join(format!("{channel}.blobs"))
    }

    /// Every blob an earlier bundle of the channel carried.
    pub fn sent_blobs(dir: &Path, channel: &str) -> Result<std::collections::BTreeSet<ContentId>> {
        let path = Self::blobs_path(dir, channel);
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .map(|l| {
                    ContentId::from_hex(l).ok_or_else(|| {
                        Error::Usage(format!(
                            "{}: damaged channel state; restore it from backup or export with --full",
                            path.display()
                        ))
                    })
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(std::collections::BTreeSet::new()),
            Err(e) => Err(Error::input(&path, "channel state", &e)),
        }
    }

    /// The channel's last export, or `None` for a new channel.
    pub fn load(dir: &Path, channel: &str) -> Result<Option<Self>> {
        let path = Self::path(dir, channel);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Usage(format!("{}: unreadable channel state ({e}); restore it from backup, or start the channel again with a new name", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::input(&path, "channel state", &e)),
        }
    }
}

/// Where artifacts come from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Folders whose regular files to ship (`--files`).
    pub files: Vec<PathBuf>,
    /// requirements.txt or pylock.toml files.
    pub pypi_locks: Vec<PathBuf>,
    /// package-lock.json files.
    pub npm_locks: Vec<PathBuf>,
    /// Cargo.lock files.
    pub cargo_locks: Vec<PathBuf>,
}

impl Inputs {
    fn any_lockfile(&self) -> bool {
        !(self.pypi_locks.is_empty() && self.npm_locks.is_empty() && self.cargo_locks.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && !self.any_lockfile()
    }
}

/// Registry endpoints, cache and concurrency for lockfile exports.
#[derive(Debug, Clone)]
pub struct Network {
    /// Explicit endpoints (flag or config); `None` falls back to the
    /// client's configuration, then the public default.
    pub pypi_index: Option<String>,
    pub npm_registry: Option<String>,
    pub cargo_index: Option<String>,
    pub selection: Selection,
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
        Network {
            pypi_index: None,
            npm_registry: None,
            cargo_index: None,
            selection: Selection::default(),
            cache: Cache::default_dir(),
            jobs: 8,
            read_timeout: Duration::from_secs(30),
            retries: 3,
        }
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

/// Refuses a channel name the manifest schema would not allow.
fn check_channel(channel: &str) -> Result<()> {
    if crate::manifest::valid_channel(channel) {
        Ok(())
    } else {
        Err(Error::Usage(format!("--channel {channel:?}: use 1 to 64 letters, digits, '-', '_' or '.'")))
    }
}

/// What can be refused before anything is read or fetched.
fn check_options(options: &ExportOptions) -> Result<()> {
    check_channel(&options.channel)?;
    if options.keys.is_empty() {
        return Err(Error::Usage("no signing key: pass --key KEY (made by `airlock keygen`)".into()));
    }
    if options.inputs.is_empty() {
        return Err(Error::Usage(
            "nothing to export: pass --files DIR, --pypi-lock, --npm-lock or --cargo-lock (or --config FILE)".into(),
        ));
    }
    expiry(options)?;
    check_out(options)?;
    if let Some(dir) = &options.state {
        check_state(dir, &options.channel)?;
    }
    Ok(())
}

/// `--out` may not be an input; without `--split` it follows the rules of
/// every output file ([`crate::durable::check_output`]); with `--split` it
/// is replaced (with `--force`) only when it holds a bundle and nothing else.
fn check_out(options: &ExportOptions) -> Result<()> {
    let inputs = &options.inputs;
    let named: Vec<&Path> = inputs
        .files
        .iter()
        .chain(&inputs.pypi_locks)
        .chain(&inputs.npm_locks)
        .chain(&inputs.cargo_locks)
        .chain(&options.state)
        .map(PathBuf::as_path)
        .collect();
    let out = &options.out;
    if options.split.is_none() {
        return crate::durable::check_output(out, "--out", Existing::unless(options.force), &named);
    }
    crate::durable::refuse_inputs(out, "--out", &named)?;
    if out.symlink_metadata().is_err() {
        Ok(())
    } else if options.force {
        check_replaceable_bundle(out)
    } else {
        Err(Error::Usage(format!(
            "{}: already exists; choose another --out or pass --force to replace it",
            out.display()
        )))
    }
}

/// What `--split --force` may remove: a bundle file, or a folder holding
/// the volumes of one bundle and nothing else (their exporter's names, each
/// starting with an airlock manifest frame). Anything else may be someone's
/// work, and is refused naming the first file that is not a volume.
fn check_replaceable_bundle(out: &Path) -> Result<()> {
    let not_a_bundle = |what: String| {
        Error::Usage(format!(
            "{}: {what}; --split --force replaces only an earlier bundle (a folder of its volumes, or a bundle file): move it away or choose another --out",
            out.display()
        ))
    };
    let meta = out.symlink_metadata().at(out)?;
    if meta.is_file() {
        return bundle_digest(out).map(drop).ok_or_else(|| not_a_bundle("is not an airlock bundle".into()));
    }
    if !meta.is_dir() {
        return Err(not_a_bundle("is not a folder of volumes".into()));
    }
    let mut digests = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(out).map_err(|e| Error::input(out, "folder", &e))? {
        let path = entry.map_err(|e| Error::input(out, "folder", &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let is_file = path.symlink_metadata().is_ok_and(|m| m.is_file());
        let digest = if is_file && split::is_volume_file_name(name) { bundle_digest(&path) } else { None };
        let Some(digest) = digest else {
            return Err(not_a_bundle(format!("holds {}, which is not a volume of an airlock bundle", path.display())));
        };
        digests.insert(digest);
    }
    if digests.len() > 1 {
        return Err(not_a_bundle("holds the volumes of more than one bundle".into()));
    }
    Ok(())
}

/// The manifest digest of the volume at `path`, if it starts with an airlock
/// manifest frame holding a manifest envelope (signatures not checked).
fn bundle_digest(path: &Path) -> Option<ContentId> {
    let file = File::open(path).ok()?;
    let (_, envelope_bytes) = crate::bundle::reader::VolumeReader::open(file, &path.display().to_string()).ok()?;
    let opened = envelope::open_untrusted(&envelope_bytes, envelope::MANIFEST).ok()?;
    Some(ContentId::of(opened.payload))
}

/// The channel state's files are replaced on every export, but never when
/// they are not regular files (reading a FIFO would hang the export).
fn check_state(dir: &Path, channel: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Usage(format!("{}: --state must be a folder", dir.display())));
    }
    for path in [ChannelState::path(dir, channel), ChannelState::blobs_path(dir, channel)] {
        crate::durable::check_output(&path, "--state", Existing::Replace, &[])?;
    }
    Ok(())
}

/// When the bundle expires: `expires_in` after its creation time, which must
/// be at most [`MAX_EXPIRES_IN`] and end by [`MAX_TIME`].
fn expiry(options: &ExportOptions) -> Result<u64> {
    if options.expires_in > MAX_EXPIRES_IN {
        return Err(Error::Usage(format!(
            "--expires {}: longer than the 100 years a bundle may stay importable; choose a shorter duration",
            humantime::format_duration(options.expires_in)
        )));
    }
    options.now.checked_add(options.expires_in.as_secs()).filter(|t| *t <= MAX_TIME).ok_or_else(|| {
        Error::Usage(format!(
            "creation time {} (SOURCE_DATE_EPOCH, or the clock) plus --expires is after 9999-12-31T23:59:59Z; \
             set SOURCE_DATE_EPOCH to a real time",
            options.now
        ))
    })
}

/// The next bundle of a channel follows the last one: the next sequence
/// number and the last manifest's digest.
fn chain_to(manifest: &mut Manifest, last: &ChannelState, channel: &str) -> Result<()> {
    manifest.sequence =
        last.sequence.checked_add(1).filter(|s| *s <= crate::manifest::MAX_SEQUENCE).ok_or_else(|| {
            Error::Usage(format!(
                "channel state for {}: sequence {} is at the end of the range; start a new channel",
                channel, last.sequence
            ))
        })?;
    manifest.previous = Some(ContentId::from_hex(&last.manifest_digest).ok_or_else(|| {
        Error::Usage(format!(
            "channel state for {channel}: the manifest digest is damaged; restore the state from backup"
        ))
    })?);
    Ok(())
}

/// Runs an export.
pub fn export(options: &ExportOptions, progress: &dyn Progress) -> Result<ExportReport> {
    check_options(options)?;
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
        return Err(Error::Usage("nothing to export: the inputs name no files or packages".into()));
    }
    let last = match &options.state {
        Some(dir) => {
            std::fs::create_dir_all(dir).at(dir)?;
            ChannelState::load(dir, &options.channel)?
        }
        None => None,
    };
    let (mut manifest, sources) = build_manifest(artifacts, options)?;
    let sent = match &options.state {
        Some(dir) if !options.full => ChannelState::sent_blobs(dir, &options.channel)?,
        _ => std::collections::BTreeSet::new(),
    };
    for blob in &mut manifest.blobs {
        blob.carried = !sent.contains(&blob.id);
    }
    if let Some(last) = &last {
        chain_to(&mut manifest, last, &options.channel)?;
    }
    let budget = match &options.split {
        Some(split) => Some(plan_volumes(&mut manifest, split, &options.keys)?),
        None => None,
    };
    let entries = manifest.entries.len();
    let (digest, sealed) = sign_final(&mut manifest, &options.keys)?;
    let bundle_bytes = match &budget {
        Some(budget) => write_split(options, &manifest, digest, &sealed, &sources, budget, progress)?,
        None => write_volume(options, &manifest, digest, sealed, &sources, progress)?,
    };
    if let Some(dir) = &options.state {
        // Recorded only once the bundle is safely written.
        let record = ChannelState {
            channel: manifest.channel.clone(),
            sequence: manifest.sequence,
            manifest_digest: digest.to_hex(),
            bundle: options.out.display().to_string(),
            created: crate::verify::rfc3339(manifest.created),
        };
        let json = serde_json::to_vec_pretty(&record).expect("state serializes");
        let mut all_sent = sent;
        all_sent.extend(manifest.blobs.iter().map(|b| b.id));
        let lines: String = all_sent.iter().map(|id| id.to_hex() + "\n").collect();
        crate::durable::write_atomically(&ChannelState::blobs_path(dir, &manifest.channel), lines.as_bytes(), 0o644)?;
        crate::durable::write_atomically(&ChannelState::path(dir, &manifest.channel), &json, 0o644)?;
    }
    Ok(ExportReport {
        bundle: options.out.display().to_string(),
        manifest_digest: digest.to_hex(),
        channel: manifest.channel.clone(),
        sequence: manifest.sequence,
        created: crate::verify::rfc3339(manifest.created),
        expires: crate::verify::rfc3339(manifest.expires),
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

/// Moves the items of `more` to the end of `all`; into an empty `all` the
/// list is moved whole, as copying it would hold it twice for a moment.
fn append<T>(all: &mut Vec<T>, mut more: Vec<T>) {
    if all.is_empty() {
        *all = more;
    } else {
        all.append(&mut more);
    }
}

/// What the lockfiles pin, each list with the lockfile it came from.
struct Pins<'a> {
    pypi: Vec<(&'a Path, Vec<lockfile::pypi::PypiPin>)>,
    npm: Vec<(&'a Path, Vec<lockfile::npm::NpmPin>)>,
    cargo: Vec<(&'a Path, Vec<lockfile::cargo::CratePin>)>,
}

/// Reads every lockfile and checks every pin against its ecosystem's name
/// and version grammar, before anything is fetched or written (the
/// download cache included): a bad lockfile is one line naming it.
fn read_pins(inputs: &Inputs) -> Result<Pins<'_>> {
    let mut pins = Pins { pypi: Vec::new(), npm: Vec::new(), cargo: Vec::new() };
    for path in &inputs.pypi_locks {
        let text = read_lockfile(path)?;
        let origin = path.display().to_string();
        let is_pylock = path.extension().is_some_and(|e| e == "toml");
        let parsed = if is_pylock {
            lockfile::pypi::parse_pylock(&text, &origin)?
        } else {
            lockfile::pypi::parse_requirements(&text, &origin)?
        };
        pypi::check_pins(&parsed, &origin)?;
        pins.pypi.push((path, parsed));
    }
    for path in &inputs.npm_locks {
        let origin = path.display().to_string();
        let parsed = lockfile::npm::parse_package_lock(&read_lockfile(path)?, &origin)?;
        npm::check_pins(&parsed, &origin)?;
        pins.npm.push((path, parsed));
    }
    for path in &inputs.cargo_locks {
        let origin = path.display().to_string();
        let parsed = lockfile::cargo::parse_cargo_lock(&read_lockfile(path)?, &origin)?;
        cargo::check_pins(&parsed, &origin)?;
        pins.cargo.push((path, parsed));
    }
    Ok(pins)
}

/// Parses every lockfile and fetches what it pins; returns the artifacts and
/// how many were downloaded (rather than found in the cache).
fn fetch_lockfiles(inputs: &Inputs, network: &Network, progress: &dyn Progress) -> Result<(Vec<Artifact>, usize)> {
    let pins = read_pins(inputs)?;
    let client = Client::new(network.read_timeout, network.retries)?;
    let cache = Cache::open(&network.cache)?;
    let ctx = FetchContext { client: &client, cache: &cache, jobs: network.jobs, progress };
    progress.start("fetching", 0);
    let mut artifacts = Vec::new();
    for (_, pins) in &pins.pypi {
        let index = network
            .pypi_index
            .clone()
            .or_else(endpoints::pip_index_url)
            .unwrap_or_else(|| pypi::DEFAULT_INDEX.to_owned());
        append(&mut artifacts, pypi::resolve(pins, &index, &network.selection, &ctx)?);
    }
    for (path, pins) in &pins.npm {
        let registry = network
            .npm_registry
            .clone()
            .or_else(|| endpoints::npm_registry(path.parent()))
            .unwrap_or_else(|| npm::DEFAULT_REGISTRY.to_owned());
        append(&mut artifacts, npm::resolve(pins, &registry, &ctx)?);
    }
    for (_, pins) in &pins.cargo {
        let index = network
            .cargo_index
            .clone()
            .or_else(endpoints::cargo_index)
            .unwrap_or_else(|| cargo::DEFAULT_INDEX.to_owned());
        append(&mut artifacts, cargo::resolve(pins, &index, &ctx)?);
    }
    progress.finish();
    Ok((artifacts, cache.downloads()))
}

fn read_lockfile(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::input(path, "lockfile", &e))
}

/// The manifest for `artifacts`: sorted, blobs deduplicated, the same
/// package from two lockfiles counted once; and where each blob's bytes are,
/// in the order of the manifest's blobs.
fn build_manifest(mut artifacts: Vec<Artifact>, options: &ExportOptions) -> Result<(Manifest, Vec<PathBuf>)> {
    sort_stably(&mut artifacts, |a, b| (&a.entry.ecosystem, &a.entry.path).cmp(&(&b.entry.ecosystem, &b.entry.path)));
    artifacts.dedup_by(|a, b| a.entry == b.entry);
    let (entries, blobs, sources) = split_artifacts(artifacts);
    let expires = expiry(options)?;
    let mut signers: Vec<_> = options.keys.iter().map(|k| k.public().id()).collect();
    signers.sort();
    signers.dedup();
    let manifest = Manifest {
        format: FORMAT_VERSION,
        tool: format!("airlock {}", env!("CARGO_PKG_VERSION")),
        channel: options.channel.clone(),
        sequence: 1,
        previous: None,
        created: options.now,
        expires,
        signers,
        volumes: 1,
        parity: 0,
        blobs,
        entries,
    };
    manifest.check().map_err(|e| Error::Usage(format!("the inputs cannot be shipped together: {e}")))?;
    Ok((manifest, sources))
}

/// Sorts `items` stably by `compare`, as `sort_by` does but without its
/// scratch copy of up to 8 MB of whole items: the order is worked out on
/// indices and then applied by swapping items in place.
fn sort_stably<T>(items: &mut [T], compare: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if items.is_sorted_by(|a, b| compare(a, b).is_le()) {
        return;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| compare(&items[a], &items[b]));
    // `order[i]` is where the item that belongs at `i` is now; each cycle
    // of the permutation is followed once, marking its places done.
    for start in 0..items.len() {
        let mut at = start;
        loop {
            let from = order[at];
            order[at] = at;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// Splits sorted artifacts into the manifest's entries and its blobs, each
/// blob with the source of its first artifact (all of them hold the same bytes).
fn split_artifacts(artifacts: Vec<Artifact>) -> (Vec<Entry>, Vec<Blob>, Vec<PathBuf>) {
    let mut blobs = Vec::new();
    let mut sources = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    // Collected in place: an entry is the larger part of an artifact, so the
    // standard library reuses the artifacts' allocation for the entries and
    // the two lists are never held side by side.
    let mut entries: Vec<Entry> = artifacts
        .into_iter()
        .map(|artifact| {
            if seen.insert(artifact.entry.blob) {
                blobs.push(Blob { id: artifact.entry.blob, size: artifact.entry.size, volume: 0, carried: true });
                sources.push(artifact.source);
            }
            artifact.entry
        })
        .collect();
    entries.shrink_to_fit();
    blobs.shrink_to_fit();
    sources.shrink_to_fit();
    (entries, blobs, sources)
}

/// How long the manifest's envelope is, without encoding or signing the
/// manifest: the encoding's length is counted, the envelope's worked out.
fn envelope_len(manifest: &Manifest, keys: &[OperatorKey]) -> Result<u64> {
    let encoded =
        canonical::encoded_len(manifest).map_err(|e| Error::Usage(format!("cannot encode the manifest: {e}")))?;
    envelope::sealed_len(encoded as u64, keys, envelope::MANIFEST)
}

/// Signs the finished manifest; returns its digest and envelope. The
/// entries are taken out of `manifest` and freed as soon as they are
/// encoded: writing the volumes needs only the blobs, and the envelope, a
/// second copy of the encoded manifest, should not be made on top of them.
fn sign_final(manifest: &mut Manifest, keys: &[OperatorKey]) -> Result<(ContentId, Vec<u8>)> {
    let bytes = encode_manifest(manifest)?;
    manifest.entries = Vec::new();
    let sealed = seal_manifest(&bytes, keys)?;
    Ok((ContentId::of(&bytes), sealed))
}

fn encode_manifest(manifest: &Manifest) -> Result<Vec<u8>> {
    manifest.to_bytes().map_err(|e| Error::Usage(format!("cannot encode the manifest: {e}")))
}

fn seal_manifest(bytes: &[u8], keys: &[OperatorKey]) -> Result<Vec<u8>> {
    envelope::seal(bytes, keys, envelope::MANIFEST)
}

/// The signed seal of volume `volume` over its blob frame.
fn seal_volume(keys: &[OperatorKey], manifest: ContentId, volume: u32, frame: BlobFrame) -> Result<Vec<u8>> {
    envelope::seal(&encode_volume_seal(manifest, volume, frame)?, keys, envelope::VOLUME_SEAL)
}

fn encode_volume_seal(manifest: ContentId, volume: u32, frame: BlobFrame) -> Result<Vec<u8>> {
    let seal = VolumeSeal { format: 1, manifest, volume, frame: frame.digest, frame_size: frame.size };
    canonical::to_vec(&seal).map_err(|e| Error::Usage(format!("cannot encode the volume seal: {e}")))
}

/// The folder `out` will be written in; it must exist.
fn out_dir(out: &Path) -> Result<&Path> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!("{}: the folder for --out does not exist; create it first", dir.display())));
    }
    Ok(dir)
}

/// Writes the volume to a temporary file beside `out` and renames it into
/// place only when complete; returns its size.
fn write_volume(
    options: &ExportOptions,
    manifest: &Manifest,
    manifest_digest: ContentId,
    sealed: Vec<u8>,
    sources: &[PathBuf],
    progress: &dyn Progress,
) -> Result<u64> {
    let out = &options.out;
    let dir = out_dir(out)?;
    let tmp = tempfile::Builder::new().prefix(".airlock-export-").tempfile_in(dir).at(dir)?;
    let writer = start_volume(tmp.as_file(), out, &sealed, options.threads)?;
    // The one volume holds the envelope now: free it before the compressor's buffers are taken.
    drop(sealed);
    progress.start("writing", manifest.carried_bytes());
    let contents = VolumeContents { index: 0, info: None, blobs: with_sources(manifest, sources, |b| b.carried) };
    fill_volume(writer, tmp.as_file(), out, options, manifest_digest, &contents, progress)?;
    progress.finish();
    let size = tmp.as_file().metadata().at(out)?.len();
    crate::durable::set_mode(tmp.path(), 0o644).at(out)?;
    // Checked again before the rename: the export may have taken hours.
    crate::durable::check_output(out, "--out", Existing::unless(options.force), &[])?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    crate::durable::sync_dir(dir)?;
    Ok(size)
}

/// What goes into one data volume.
struct VolumeContents<'m> {
    index: u32,
    /// `volume.cbor`, in a split set.
    info: Option<Vec<u8>>,
    /// The blobs, with where the bytes of each are.
    blobs: Vec<(&'m Blob, &'m Path)>,
}

/// The manifest's blobs that `keep` selects, each with its source (`sources`
/// is in the order of the manifest's blobs).
fn with_sources<'m>(
    manifest: &'m Manifest,
    sources: &'m [PathBuf],
    keep: impl Fn(&Blob) -> bool,
) -> Vec<(&'m Blob, &'m Path)> {
    manifest
        .blobs
        .iter()
        .zip(sources)
        .filter(|(blob, _)| keep(blob))
        .map(|(blob, path)| (blob, path.as_path()))
        .collect()
}

/// A volume being written into `file` (named `name` in errors); frame 1,
/// the manifest's `sealed` envelope, is written.
fn start_volume<'f>(
    file: &'f File,
    name: &Path,
    sealed: &[u8],
    threads: u32,
) -> Result<VolumeWriter<BufWriter<DropBehind<&'f File>>>> {
    VolumeWriter::new(BufWriter::with_capacity(1 << 20, DropBehind::new(file)), sealed, threads).at(name)
}

/// Writes the rest of one data volume into `writer`, which writes `file`
/// (named `name` in errors), and makes it durable.
fn fill_volume(
    mut writer: VolumeWriter<BufWriter<DropBehind<&File>>>,
    file: &File,
    name: &Path,
    options: &ExportOptions,
    manifest_digest: ContentId,
    contents: &VolumeContents,
    progress: &dyn Progress,
) -> Result<()> {
    if let Some(info) = &contents.info {
        writer.write_info(info).at(name)?;
    }
    for (blob, source) in &contents.blobs {
        let data = File::open(source).map_err(|e| Error::input(source, "file", &e))?;
        let reader = ProgressReader { inner: BufReader::with_capacity(1 << 20, data), progress };
        writer.write_blob(&blob.id, blob.size, reader).map_err(|e| match e {
            BlobWriteError::Io(e) => Error::io(name, e),
            BlobWriteError::Changed { .. } => {
                Error::Usage(format!("{}: changed while it was being exported; run the export again", source.display()))
            }
        })?;
    }
    let (mut out, frame) = writer.finish().at(name)?;
    let seal = seal_volume(&options.keys, manifest_digest, contents.index, frame)?;
    write_seal(&mut out, &seal).and_then(|()| std::io::Write::flush(&mut out)).at(name)?;
    drop(out);
    file.sync_all().at(name)
}

/// Decides which data volume carries each blob so that no volume exceeds
/// `split.size`, and records it in the manifest (with the parity count).
fn plan_volumes(manifest: &mut Manifest, split: &Split, keys: &[OperatorKey]) -> Result<Budget> {
    // The envelope as it is now, with every blob in volume 0; the final one
    // is larger by at most 2 bytes per blob (volume numbers below 65536) and
    // the `volumes` and `parity` fields.
    let envelope = envelope_len(manifest, keys)? + 2 * manifest.blobs.len() as u64 + 32;
    // Worked out, not signed: a token key should sign only what is written.
    let largest_seal =
        encode_volume_seal(ContentId([0; 32]), u32::MAX, BlobFrame { digest: ContentId([0; 32]), size: u64::MAX })?;
    let largest_seal_len = envelope::sealed_len(largest_seal.len() as u64, keys, envelope::VOLUME_SEAL)?;
    let most_volumes = (manifest.blobs.len() as u64 + 1).min(u64::from(crate::manifest::MAX_VOLUMES));
    let budget = Budget {
        split: split.size,
        manifest_frame: split::manifest_frame_len(envelope),
        seal_frame: 8 + largest_seal_len,
        info_member: split::member_len(MAX_DATA_INFO),
        parity: split.parity,
        parity_info_member: split::member_len(MAX_DATA_INFO + 16 + 9 * most_volumes),
    };
    let sizes: Vec<u64> = manifest.blobs.iter().filter(|b| b.carried).map(|b| b.size).collect();
    let (volumes, count) = split::pack(&sizes, &budget).map_err(|too_large| {
        let blob = manifest.blobs.iter().filter(|b| b.carried).nth(too_large.index).expect("pack names a blob it was given");
        let entry = manifest.entries.iter().find(|e| e.blob == blob.id).expect("every blob has an entry");
        Error::Usage(format!(
            "{}/{} ({} bytes) does not fit in a volume of {} bytes; the smallest --split that holds it is {} ({} bytes)",
            entry.ecosystem,
            entry.path,
            blob.size,
            split.size,
            human_size(too_large.smallest_split),
            too_large.smallest_split
        ))
    })?;
    for (blob, volume) in manifest.blobs.iter_mut().filter(|b| b.carried).zip(volumes) {
        blob.volume = volume;
    }
    if count + split.parity > crate::manifest::MAX_VOLUMES || !parity::supported(count, split.parity.max(1)) {
        return Err(Error::Usage(format!(
            "--split {} makes {count} data volumes and --parity {} more: too many; choose a larger --split",
            split.size, split.parity
        )));
    }
    manifest.volumes = count;
    manifest.parity = split.parity;
    Ok(budget)
}

/// Largest `volume.cbor` of a data volume: `{"volume": u32}`.
const MAX_DATA_INFO: u64 = 16;

/// `1536 KiB`, `3 MiB`: a size in the largest binary unit that divides it.
fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

/// Writes the folder of volumes: into a temporary folder beside `out`,
/// every file made durable, then renamed into place; returns the bytes written.
fn write_split(
    options: &ExportOptions,
    manifest: &Manifest,
    manifest_digest: ContentId,
    sealed: &[u8],
    sources: &[PathBuf],
    budget: &Budget,
    progress: &dyn Progress,
) -> Result<u64> {
    let out = &options.out;
    let parent = out_dir(out)?;
    let tmp = tempfile::Builder::new().prefix(".airlock-export-").tempdir_in(parent).at(parent)?;
    let (data, parity) = (manifest.volumes, manifest.parity);
    let mut paths = Vec::new();
    progress.start("writing", manifest.carried_bytes());
    for index in 0..data {
        let path = tmp.path().join(volume_file_name(index, data, parity));
        let file = File::create(&path).at(&path)?;
        let info = VolumeInfo { volume: index, parity: None };
        let info = canonical::to_vec(&info).map_err(|e| Error::Usage(format!("cannot encode {VOLUME_MEMBER}: {e}")))?;
        let blobs = with_sources(manifest, sources, |b| b.carried && b.volume == index);
        let contents = VolumeContents { index, info: Some(info), blobs };
        let writer = start_volume(&file, &path, sealed, options.threads)?;
        fill_volume(writer, &file, &path, options, manifest_digest, &contents, progress)?;
        check_volume_size(&path, budget.data_limit())?;
        paths.push(path);
    }
    progress.finish();
    if parity > 0 {
        write_parity(tmp.path(), &paths, options, manifest_digest, sealed, budget, progress)?;
    }
    let mut total = 0;
    for entry in std::fs::read_dir(tmp.path()).at(tmp.path())? {
        let path = entry.at(tmp.path())?.path();
        total += std::fs::metadata(&path).at(&path)?.len();
        crate::durable::set_mode(&path, 0o644).at(&path)?;
    }
    crate::durable::set_mode(tmp.path(), 0o755).at(tmp.path())?;
    crate::durable::sync_dir(tmp.path())?;
    let written = tmp.keep();
    replace_with(&written, out, options.force)?;
    crate::durable::sync_dir(parent)?;
    Ok(total)
}

/// Moves the finished folder `written` to `out`, replacing what `--force`
/// allows to replace: checked again, as the export may have taken hours,
/// and removed volume by volume, so that a file put there since stays.
fn replace_with(written: &Path, out: &Path, force: bool) -> Result<()> {
    if let Ok(meta) = out.symlink_metadata() {
        if !force {
            return Err(Error::Usage(format!(
                "{}: appeared while the bundle was written; it is kept in {}",
                out.display(),
                written.display()
            )));
        }
        check_replaceable_bundle(out)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(out).at(out)? {
                let path = entry.at(out)?.path();
                if path.file_name().and_then(|n| n.to_str()).is_some_and(split::is_volume_file_name) {
                    std::fs::remove_file(&path).at(&path)?;
                }
            }
            std::fs::remove_dir(out).at(out)?;
        } else {
            std::fs::remove_file(out).at(out)?;
        }
    }
    std::fs::rename(written, out).at(out)
}

/// The packing guarantees the limit; this catches a mistake in it before a medium does.
fn check_volume_size(path: &Path, limit: u64) -> Result<()> {
    let size = std::fs::metadata(path).at(path)?.len();
    if size > limit {
        return Err(Error::Usage(format!(
            "{}: came out at {size} bytes, over the {limit}-byte limit; this is a bug in airlock, please report it",
            path.display()
        )));
    }
    Ok(())
}

/// Writes the parity volumes over the data volume files `data`.
fn write_parity(
    dir: &Path,
    data: &[PathBuf],
    options: &ExportOptions,
    manifest_digest: ContentId,
    sealed: &[u8],
    budget: &Budget,
    progress: &dyn Progress,
) -> Result<()> {
    let count = u32::try_from(data.len()).expect("volume counts fit u32");
    let sizes = data.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).at(p)).collect::<Result<Vec<_>>>()?;
    let info = ParityInfo { stripe: u32::try_from(budget.stripe()).expect("stripes are at most 64 KiB"), sizes };
    let parity = budget.parity;
    let mut volumes = Vec::new();
    for k in 0..parity {
        let index = count + k;
        let path = dir.join(volume_file_name(index, count, parity));
        let file = File::create(&path).at(&path)?;
        // Recovery bytes do not compress: no worker threads for them.
        let mut writer = VolumeWriter::new(BufWriter::with_capacity(1 << 20, file), sealed, 0).at(&path)?;
        let volume_info = VolumeInfo { volume: index, parity: Some(info.clone()) };
        let bytes =
            canonical::to_vec(&volume_info).map_err(|e| Error::Usage(format!("cannot encode {VOLUME_MEMBER}: {e}")))?;
        writer.write_info(&bytes).at(&path)?;
        writer.begin_member(PARITY_MEMBER, info.member_size()).at(&path)?;
        volumes.push((index, path, writer));
    }
    progress.start("parity", info.member_size() * u64::from(count));
    let dir_name = dir.to_path_buf();
    parity::encode(data, &info, parity, |k, bytes| {
        progress.advance(bytes.len() as u64 * u64::from(count));
        volumes[k].2.write_data(bytes)
    })
    .at(&dir_name)?;
    progress.finish();
    for (index, path, mut writer) in volumes {
        writer.end_member(info.member_size()).at(&path)?;
        let (mut out, frame) = writer.finish().at(&path)?;
        let seal = seal_volume(&options.keys, manifest_digest, index, frame)?;
        write_seal(&mut out, &seal).and_then(|()| std::io::Write::flush(&mut out)).at(&path)?;
        let file = out.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().at(&path)?;
        check_volume_size(&path, budget.split)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_stably_keeps_equal_items_in_their_order() {
        // (key, original position): several cycles, fixed points and runs of equal keys.
        let keys = [5, 3, 3, 9, 0, 3, 7, 5, 1, 9, 0, 2, 8, 3];
        let mut items: Vec<(u32, usize)> = keys.iter().copied().zip(0..).collect();
        let mut expected = items.clone();
        expected.sort_by_key(|item| item.0);
        sort_stably(&mut items, |a, b| a.0.cmp(&b.0));
        assert_eq!(items, expected);
        // Already sorted, sorted the other way, and empty.
        sort_stably(&mut items, |a, b| a.0.cmp(&b.0));
        assert_eq!(items, expected);
        expected.sort_by_key(|item| std::cmp::Reverse(item.0));
        sort_stably(&mut items, |a, b| b.0.cmp(&a.0));
        assert_eq!(items, expected);
        sort_stably(&mut Vec::<u8>::new(), Ord::cmp);
    }
}
