//! Sets of volumes: which files are which volume of which bundle, and
//! verifying a set volume by volume, in any order and over several runs,
//! with parity volumes rebuilding data volumes that are missing or damaged.
//!
//! Files are identified first (manifest frame and `volume.cbor` only), so
//! volumes of two bundles are refused before anything is read in full.
//! A data volume is then verified from the first of its copies that
//! passes; a damaged copy is reported, not fatal, so that another copy or
//! the parity volumes can stand in for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::parity::Rebuild;
use crate::bundle::{ParityInfo, volume_file_name, volume_label};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::verify::{BlobSink, Discard, VerifiedManifest, open_volume, verify_volume};

/// Where a set's verified volumes go.
pub trait SetSink {
    type Blobs: BlobSink;
    /// Volume `index` was verified and kept by an earlier run.
    fn is_done(&self, index: u32) -> bool;
    /// Where the blobs of the volume being verified go.
    fn blobs(&mut self) -> &mut Self::Blobs;
    /// Volume `index` verified completely; its blobs are to be kept.
    fn volume_done(&mut self, index: u32) -> Result<()>;
}

/// Checks and forgets (`airlock verify`).
pub struct CheckOnly(Discard);

impl CheckOnly {
    #[must_use]
    pub fn new() -> Self {
        CheckOnly(Discard)
    }
}

impl Default for CheckOnly {
    fn default() -> Self {
        Self::new()
    }
}

impl SetSink for CheckOnly {
    type Blobs = Discard;
    fn is_done(&self, _index: u32) -> bool {
        false
    }
    fn blobs(&mut self) -> &mut Discard {
        &mut self.0
    }
    fn volume_done(&mut self, _index: u32) -> Result<()> {
        Ok(())
    }
}

/// The files given, identified as volumes of one bundle.
pub struct VolumeSet {
    pub verified: VerifiedManifest,
    /// The files of each volume index, in the order given (copies count once).
    pub files: BTreeMap<u32, Vec<PathBuf>>,
    /// Files that are not a readable volume of a trusted bundle, with the reason.
    pub unreadable: Vec<(PathBuf, Error)>,
}

/// The volume files named by `paths`: files as given, folders by their `*.airlock` files.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| Error::input(path, "bundle", &e))?;
        let mut found = if meta.is_dir() {
            let mut inside = Vec::new();
            for entry in fs::read_dir(path).map_err(|e| Error::input(path, "bundle folder", &e))? {
                let entry = entry.map_err(|e| Error::input(path, "bundle folder", &e))?;
                let file = entry.path();
                if file.extension().is_some_and(|e| e == "airlock") && file.is_file() {
                    inside.push(file);
                }
            }
            if inside.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: holds no volumes (*.airlock files); pass the folder `airlock export --split` wrote, or volume files",
                    path.display()
                )));
            }
            inside.sort();
            inside
        } else {
            vec![path.clone()]
        };
        // The same file named twice (a folder and a file in it) is read once.
        found.retain(|f| seen.insert(fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
        files.extend(found);
    }
    Ok(files)
}

/// Reads the manifest frame and `volume.cbor` of every file; all must be
/// volumes of one bundle.
pub fn identify(paths: &[PathBuf], policy: &Policy, now: u64) -> Result<VolumeSet> {
    let mut manifests: Vec<VerifiedManifest> = Vec::new();
    let mut files: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
    let mut first_of: BTreeMap<crate::id::ContentId, PathBuf> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for path in expand(paths)? {
        let subject = path.display().to_string();
        let opened = File::open(&path)
            .map_err(|e| Error::input(&path, "volume", &e))
            .and_then(|file| open_volume(file, &subject, policy, now, &mut manifests));
        match opened {
            Ok(volume) => {
                first_of.entry(volume.digest).or_insert_with(|| path.clone());
                if manifests.len() > 1 {
                    let first = |m: &VerifiedManifest| first_of[&m.digest].clone();
                    return Err(mixed(&manifests, &[first(&manifests[0]), first(&manifests[1])]));
                }
                files.entry(volume.index).or_default().push(path);
            }
            Err(e @ Error::Rejected { .. }) => unreadable.push((path, e)),
            Err(e) => return Err(e),
        }
    }
    match manifests.pop() {
        Some(verified) if verified.manifest.is_single_volume() && paths.iter().any(|p| p.is_dir()) => {
            let folder = paths.iter().find(|p| p.is_dir()).expect("checked");
            Err(Error::Usage(format!(
                "{}: is a folder, and the bundle in it is a single file; pass the bundle file itself",
                folder.display()
            )))
        }
        Some(verified) => Ok(VolumeSet { verified, files, unreadable }),
        None => Err(unreadable.into_iter().next().map(|(_, e)| e).expect("expand finds at least one file")),
    }
}

/// Volumes of two bundles were given together.
fn mixed(manifests: &[VerifiedManifest], files: &[PathBuf; 2]) -> Error {
    let describe = |m: &VerifiedManifest, file: &Path| {
        format!(
            "{} is of bundle {} (channel {}, sequence {})",
            file.display(),
            &m.digest.to_hex()[..16],
            m.manifest.channel,
            m.manifest.sequence
        )
    };
    Error::Usage(format!(
        "volumes of two bundles given together: {} but {}; import or verify one bundle at a time",
        describe(&manifests[0], &files[0]),
        describe(&manifests[1], &files[1])
    ))
}

/// The volumes of a split bundle in a report, by name.
#[derive(Debug, Clone, Serialize)]
pub struct VolumesReport {
    pub data: u32,
    pub parity: u32,
    /// Volumes verified in this run.
    pub verified: Vec<String>,
    /// Data volumes verified by earlier runs (not read again).
    pub earlier: Vec<String>,
    pub rebuilt: Vec<String>,
    /// Files rejected (another copy or parity stood in for them when the set is complete).
    pub damaged: Vec<String>,
    pub missing: Vec<String>,
}

impl VolumesReport {
    /// `None` for a single-volume bundle.
    #[must_use]
    pub fn new(manifest: &Manifest, outcome: &SetOutcome, unreadable: &[(PathBuf, Error)]) -> Option<Self> {
        if manifest.is_single_volume() {
            return None;
        }
        let names = |indices: &[u32]| indices.iter().map(|i| labels(manifest, &[*i])).collect();
        Some(VolumesReport {
            data: manifest.volumes,
            parity: manifest.parity,
            verified: names(&outcome.verified),
            earlier: names(&outcome.earlier),
            rebuilt: names(&outcome.rebuilt),
            damaged: outcome.damaged.iter().chain(unreadable).map(|(_, e)| e.to_string()).collect(),
            missing: names(&outcome.missing),
        })
    }
}

/// What a run established about the set.
#[derive(Debug, Default)]
pub struct SetOutcome {
    /// Volumes (data and parity) verified in this run.
    pub verified: Vec<u32>,
    /// Data volumes verified and kept by earlier runs, not read again.
    pub earlier: Vec<u32>,
    /// Data volumes rebuilt from parity and verified.
    pub rebuilt: Vec<u32>,
    /// Copies of volumes that were rejected, with the reason.
    pub damaged: Vec<(PathBuf, Error)>,
    /// Data volumes still missing.
    pub missing: Vec<u32>,
    /// Why the parity volumes could not rebuild the missing ones, if they could not.
    pub no_rebuild: Option<String>,
}

impl SetOutcome {
    #[must_use]
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Verifies the data volumes of `set` not done yet into `sink`; then, if
/// some are missing or damaged, rebuilds them from the parity volumes.
/// A rejected copy is recorded and the run goes on; any other failure (the
/// disk, the destination) ends it.
pub fn verify_set<S: SetSink>(
    set: &VolumeSet,
    policy: &Policy,
    now: u64,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<SetOutcome> {
    let manifest = &set.verified.manifest;
    let mut outcome = SetOutcome::default();
    let mut good: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let todo: Vec<u32> = (0..manifest.volumes).filter(|i| set.files.contains_key(i) && !sink.is_done(*i)).collect();
    progress.start("reading", todo.iter().map(|i| volume_bytes(manifest, *i)).sum());
    for index in 0..manifest.volumes {
        let copies = set.files.get(&index).map_or(&[][..], Vec::as_slice);
        if sink.is_done(index) {
            outcome.earlier.push(index);
            if let Some(first) = copies.first() {
                good.insert(index, first.clone());
            }
            continue;
        }
        for path in copies {
            match verify_file(set, index, path, policy, now, sink.blobs(), progress) {
                Ok(()) => {
                    sink.volume_done(index)?;
                    outcome.verified.push(index);
                    good.insert(index, path.clone());
                    break;
                }
                Err(e @ Error::Rejected { .. }) => outcome.damaged.push((path.clone(), e)),
                Err(e) => return Err(e),
            }
        }
    }
    progress.finish();
    outcome.missing = (0..manifest.volumes).filter(|i| !good.contains_key(i) && !sink.is_done(*i)).collect();
    if !outcome.missing.is_empty() && manifest.parity > 0 {
        rebuild_missing(set, policy, now, sink, progress, &good, &mut outcome)?;
    }
    Ok(outcome)
}

/// Verifies one file as the volume it claims to be.
fn verify_file<B: BlobSink>(
    set: &VolumeSet,
    index: u32,
    path: &Path,
    policy: &Policy,
    now: u64,
    sink: &mut B,
    progress: &dyn Progress,
) -> Result<()> {
    let subject = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::input(path, "volume", &e))?;
    let mut manifests = vec![set.verified.clone()];
    let volume = open_volume(file, &subject, policy, now, &mut manifests)?;
    if volume.digest != set.verified.digest || volume.index != index {
        return Err(Error::Usage(format!("{subject}: changed while airlock was reading it; run the command again")));
    }
    verify_volume(volume, &set.verified, policy, sink, progress)
}

/// Verifies parity volumes until there are enough to cover the missing
/// data volumes, then rebuilds each missing one and verifies it into `sink`.
fn rebuild_missing<S: SetSink>(
    set: &VolumeSet,
    policy: &Policy,
    now: u64,
    sink: &mut S,
    progress: &dyn Progress,
    good: &BTreeMap<u32, PathBuf>,
    outcome: &mut SetOutcome,
) -> Result<()> {
    let manifest = &set.verified.manifest;
    let needed = outcome.missing.len();
    if needed > manifest.parity as usize {
        outcome.no_rebuild =
            Some(format!("{needed} data volumes are missing and the set has {} parity volume(s)", manifest.parity));
        return Ok(());
    }
    let absent: Vec<u32> =
        (0..manifest.volumes).filter(|i| !outcome.missing.contains(i) && !good.contains_key(i)).collect();
    if !absent.is_empty() {
        outcome.no_rebuild = Some(format!(
            "rebuilding from parity reads every other data volume in the same run; also give {}",
            labels(manifest, &absent)
        ));
        return Ok(());
    }
    let mut parity: Vec<(u32, PathBuf)> = Vec::new();
    let mut info: Option<ParityInfo> = None;
    for index in manifest.volumes..manifest.total_volumes() {
        for path in set.files.get(&index).map_or(&[][..], Vec::as_slice) {
            if parity.len() == needed {
                break;
            }
            progress.start("parity", 0);
            let checked = verify_file(set, index, path, policy, now, &mut Discard, progress);
            progress.finish();
            match checked {
                Ok(()) => {
                    info = Some(parity_info(path, policy, now, set)?);
                    outcome.verified.push(index);
                    parity.push((index, path.clone()));
                    break;
                }
                Err(e @ Error::Rejected { .. }) => outcome.damaged.push((path.clone(), e)),
                Err(e) => return Err(e),
            }
        }
    }
    let Some(info) = info.filter(|_| parity.len() == needed) else {
        outcome.no_rebuild = Some(format!("{needed} parity volume(s) needed, {} usable given", parity.len()));
        return Ok(());
    };
    let data: Vec<(u32, PathBuf)> = good.iter().map(|(i, p)| (*i, p.clone())).collect();
    for target in outcome.missing.clone() {
        let label = format!("{} (rebuilt from parity)", volume_label(target, manifest.volumes, manifest.parity));
        let rebuild = Rebuild::new(target, &info, manifest.parity, &data, &parity)?;
        progress.start("rebuilding", volume_bytes(manifest, target));
        let mut manifests = vec![set.verified.clone()];
        let volume = open_volume(rebuild, &label, policy, now, &mut manifests)?;
        if volume.index != target {
            return Err(Error::rejected(
                &label,
                crate::error::Rejection::Malformed(format!("it says it is volume {}", volume.index + 1)),
            ));
        }
        verify_volume(volume, &set.verified, policy, sink.blobs(), progress)?;
        progress.finish();
        sink.volume_done(target)?;
        outcome.rebuilt.push(target);
    }
    outcome.missing.clear();
    Ok(())
}

/// The parity table of a verified parity volume.
fn parity_info(path: &Path, policy: &Policy, now: u64, set: &VolumeSet) -> Result<ParityInfo> {
    let file = File::open(path).map_err(|e| Error::input(path, "volume", &e))?;
    let mut manifests = vec![set.verified.clone()];
    let volume = open_volume(file, &path.display().to_string(), policy, now, &mut manifests)?;
    volume.parity.ok_or_else(|| Error::Usage(format!("{}: changed while airlock was reading it", path.display())))
}

/// Bytes of the blobs data volume `index` carries.
#[must_use]
pub fn volume_bytes(manifest: &Manifest, index: u32) -> u64 {
    manifest.blobs_in_volume(index).map(|b| b.size).sum()
}

/// "volume 2 of 5 (volume-2-of-5.airlock), volume 4 of 5 (...)".
#[must_use]
pub fn labels(manifest: &Manifest, indices: &[u32]) -> String {
    let named: Vec<String> = indices
        .iter()
        .map(|i| {
            format!(
                "{} ({})",
                volume_label(*i, manifest.volumes, manifest.parity),
                volume_file_name(*i, manifest.volumes, manifest.parity)
            )
        })
        .collect();
    named.join(", ")
}

/// The one-line error for a set that is not complete after this run: the
/// first rejected copy if there was one, else the missing volumes.
#[must_use]
pub fn incomplete(set: VolumeSet, mut outcome: SetOutcome, kept: &str) -> Error {
    if !outcome.damaged.is_empty() {
        return outcome.damaged.swap_remove(0).1;
    }
    if let Some((_, e)) = set.unreadable.into_iter().next() {
        return e;
    }
    let m = &set.verified.manifest;
    let why = outcome.no_rebuild.map(|w| format!(" ({w})")).unwrap_or_default();
    Error::Incomplete(format!(
        "bundle {} (channel {}, sequence {}) is missing {}{why}; {kept}",
        &set.verified.digest.to_hex()[..16],
        m.channel,
        m.sequence,
        labels(m, &outcome.missing)
    ))
}
