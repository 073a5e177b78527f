//! Sets of volumes: which files are which volume of which bundle, and
//! verifying a set volume by volume, in any order and over several runs,
//! with parity volumes rebuilding data volumes that are missing or damaged.
//!
//! Files are identified first (manifest frame and `volume.cbor` only), so
//! volumes of two bundles are refused before anything is read in full.
//! Every file given is then read in full (but those of volumes an earlier
//! run verified, which the report lists as not read): a data volume's blobs
//! come from the first of its copies that passes, the other copies are
//! checked all the same. A damaged copy is reported, not fatal, when another
//! copy or the parity volumes stand in for it; when nothing does, it is
//! refused by name, so that no report vouches for a file it did not check.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::parity::Rebuild;
use crate::bundle::{ParityInfo, volume_file_name, volume_label};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::verify::chunks::{InOrder, Wholes};
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
    /// Where to copy data volume `index`'s file while it is read for this
    /// sink, to be kept with its blobs when it is done; `None`: no copy.
    fn volume_copy(&mut self, _index: u32) -> Result<Option<Box<dyn std::io::Write + Send>>> {
        Ok(None)
    }
    /// The copy of data volume `index` kept by an earlier run: a rebuild
    /// from parity reads it in place of a volume not given again.
    fn kept_volume(&self, _index: u32) -> Option<PathBuf> {
        None
    }
    /// The bundle itself is refused (the pieces of a chunked blob, each
    /// right, are not the blob its manifest names): nothing kept for it
    /// will ever be published.
    fn refused(&mut self) {}
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
    /// Files found in a folder that are not a readable volume of a trusted bundle, with the reason.
    pub unreadable: Vec<(PathBuf, Error)>,
}

/// The volume files named by `paths`: files as given, folders by their `*.airlock` files.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(expand_given(paths)?.into_iter().map(|(file, _)| file).collect())
}

/// [`expand`], with whether the operator named each file (rather than a folder holding it).
fn expand_given(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    let mut seen: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| Error::input(path, "bundle", &e))?;
        let named = !meta.is_dir();
        // Opening a FIFO would wait forever, and a device is no bundle.
        if named && !meta.is_file() {
            return Err(Error::Usage(format!(
                "{}: is not a regular file (a device, FIFO or socket); pass a bundle file, a split bundle's folder or its volume files",
                path.display()
            )));
        }
        let found = if meta.is_dir() { folder_volumes(path)? } else { vec![path.clone()] };
        // The same file named twice (a folder and a file in it) is read once.
        for file in found {
            let key = fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if let Some(&at) = seen.get(&key) {
                files[at].1 |= named;
            } else {
                seen.insert(key, files.len());
                files.push((file, named));
            }
        }
    }
    Ok(files)
}

/// The `*.airlock` files in the folder `path`, sorted.
fn folder_volumes(path: &Path) -> Result<Vec<PathBuf>> {
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
    Ok(inside)
}

/// Reads the manifest frame and `volume.cbor` of every file; all must be
/// volumes of one bundle. A file the operator named that is not a volume of
/// a bundle this site trusts (garbage, an expired or untrusted bundle) is
/// refused by name: nothing may be said about it. One found in a folder is
/// set aside in [`VolumeSet::unreadable`], as it may be a volume whose
/// first bytes were damaged, which parity or another copy can stand in for.
pub fn identify(paths: &[PathBuf], policy: &Policy, now: u64) -> Result<VolumeSet> {
    let mut manifests: Vec<VerifiedManifest> = Vec::new();
    let mut files: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
    let mut first_of: BTreeMap<crate::id::ContentId, PathBuf> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (path, named) in expand_given(paths)? {
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
            Err(e @ Error::Rejected { .. }) if !named => unreadable.push((path, e)),
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
    pub verified: Vec<VolumeItem>,
    /// Data volumes verified by earlier runs (not read again).
    pub earlier: Vec<VolumeItem>,
    /// Files given for volumes verified by earlier runs: not read in this run, so nothing is said of them.
    pub not_read: Vec<VolumeItem>,
    pub rebuilt: Vec<VolumeItem>,
    /// Files rejected that another copy, parity or an earlier run stood in for.
    pub damaged: Vec<VolumeItem>,
    pub missing: Vec<VolumeItem>,
}

/// One volume (or a file given as one) in a [`VolumesReport`]: its place in
/// the set for scripts, and the words people read.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeItem {
    /// `data` or `parity`; absent for a file that could not be read as any volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Its number within its kind, from 1, as in its file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// The file name the exporter gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The path given on the command line, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// Why the file was rejected (`damaged` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub text: String,
}

impl VolumeItem {
    fn of(manifest: &Manifest, index: u32) -> Self {
        let (data, parity) = (manifest.volumes, manifest.parity);
        let (kind, number) = if index < data { ("data", index + 1) } else { ("parity", index - data + 1) };
        VolumeItem {
            kind: Some(kind),
            number: Some(number),
            file: Some(volume_file_name(index, data, parity)),
            given: None,
            error: None,
            text: labels(manifest, &[index]),
        }
    }
}

impl VolumesReport {
    /// `None` for a single-volume bundle.
    #[must_use]
    pub fn new(manifest: &Manifest, outcome: &SetOutcome, unreadable: &[(PathBuf, Error)]) -> Option<Self> {
        if manifest.is_single_volume() {
            return None;
        }
        let names = |indices: &[u32]| indices.iter().map(|i| VolumeItem::of(manifest, *i)).collect();
        let label = |i: u32| volume_label(i, manifest.volumes, manifest.parity);
        Some(VolumesReport {
            data: manifest.volumes,
            parity: manifest.parity,
            verified: names(&outcome.verified),
            earlier: names(&outcome.earlier),
            not_read: outcome
                .not_read
                .iter()
                .map(|(i, path)| VolumeItem {
                    given: Some(path.display().to_string()),
                    text: format!("{} ({}, verified by an earlier run)", path.display(), label(*i)),
                    ..VolumeItem::of(manifest, *i)
                })
                .collect(),
            rebuilt: names(&outcome.rebuilt),
            damaged: outcome
                .damaged
                .iter()
                .map(|(i, path, e)| VolumeItem {
                    given: Some(path.display().to_string()),
                    error: Some(e.to_string()),
                    text: e.to_string(),
                    ..VolumeItem::of(manifest, *i)
                })
                .chain(unreadable.iter().map(|(path, e)| VolumeItem {
                    kind: None,
                    number: None,
                    file: None,
                    given: Some(path.display().to_string()),
                    error: Some(e.to_string()),
                    text: e.to_string(),
                }))
                .collect(),
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
    /// The files given for the volumes in `earlier`, which were not read.
    pub not_read: Vec<(u32, PathBuf)>,
    /// Data volumes rebuilt from parity and verified.
    pub rebuilt: Vec<u32>,
    /// Files that were rejected: the volume each claims to be, and why.
    pub damaged: Vec<(u32, PathBuf, Error)>,
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

/// Verifies the data volumes of `set` not done yet into `sink`, and every
/// parity volume given; then, if some data volumes are missing or damaged,
/// rebuilds them from the parity volumes.
///
/// Every file given is read in full, but those of volumes an earlier run
/// verified (`not_read` says so). A rejected file is recorded and the run
/// goes on; at the end it is refused by name unless something stood in for
/// it: another copy, parity, an earlier run (see [`refuse_unaccounted`]).
/// Any other failure (the disk, the destination) ends the run.
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
    let mut wholes = Wholes::new(manifest);
    let reading = (0..manifest.volumes)
        .filter(|i| !sink.is_done(*i))
        .map(|i| volume_bytes(manifest, i) * copies(set, i).len() as u64)
        .sum();
    progress.start("reading", reading);
    for index in 0..manifest.volumes {
        let copies = copies(set, index);
        if sink.is_done(index) {
            outcome.earlier.push(index);
            outcome.not_read.extend(copies.iter().map(|path| (index, path.clone())));
            // A rebuild reads what was verified: the copy kept, else a file given again.
            if let Some(kept) = sink.kept_volume(index).or_else(|| copies.first().cloned()) {
                good.insert(index, kept);
            }
            continue;
        }
        for path in copies {
            // The first good copy goes to the sink; the others are checked all the same.
            let checked = if good.contains_key(&index) {
                verify_file(set, index, path, policy, now, &mut Discard, None, progress)
            } else {
                let copy = sink.volume_copy(index)?;
                let subject = path.display().to_string();
                let mut blobs = InOrder { inner: sink.blobs(), wholes: &mut wholes, subject: &subject };
                let checked = verify_file(set, index, path, policy, now, &mut blobs, copy, progress);
                if let Some(e) = wholes.refused.take() {
                    sink.refused();
                    return Err(e);
                }
                checked
            };
            match checked {
                Ok(()) => {
                    good.entry(index).or_insert_with(|| path.clone());
                }
                Err(e @ Error::Rejected { .. }) => outcome.damaged.push((index, path.clone(), e)),
                Err(e) => return Err(e),
            }
        }
        // A single-file bundle has no volumes report to list a damaged copy
        // in: refuse it before the good copy counts as done.
        if manifest.is_single_volume() && !outcome.damaged.is_empty() {
            return Err(outcome.damaged.swap_remove(0).2);
        }
        if good.contains_key(&index) {
            sink.volume_done(index)?;
            outcome.verified.push(index);
        }
    }
    progress.finish();
    let parity = verify_parity(set, policy, now, progress, &mut outcome)?;
    outcome.missing = (0..manifest.volumes).filter(|i| !good.contains_key(i) && !sink.is_done(*i)).collect();
    if !outcome.missing.is_empty() && manifest.parity > 0 {
        rebuild_missing(set, policy, now, sink, progress, &good, &parity, &mut wholes, &mut outcome)?;
    }
    refuse_unaccounted(set, &mut outcome)?;
    Ok(outcome)
}

/// The files given for volume `index`, in the order given.
fn copies(set: &VolumeSet, index: u32) -> &[PathBuf] {
    set.files.get(&index).map_or(&[][..], Vec::as_slice)
}

/// Verifies every parity volume file given (they are what a rebuild would
/// trust); returns the first good file of each parity volume.
fn verify_parity(
    set: &VolumeSet,
    policy: &Policy,
    now: u64,
    progress: &dyn Progress,
    outcome: &mut SetOutcome,
) -> Result<BTreeMap<u32, PathBuf>> {
    let manifest = &set.verified.manifest;
    let mut good = BTreeMap::new();
    for index in manifest.volumes..manifest.total_volumes() {
        for path in copies(set, index) {
            progress.start("parity", 0);
            let checked = verify_file(set, index, path, policy, now, &mut Discard, None, progress);
            progress.finish();
            match checked {
                Ok(()) => {
                    if let std::collections::btree_map::Entry::Vacant(first) = good.entry(index) {
                        first.insert(path.clone());
                        outcome.verified.push(index);
                    }
                }
                Err(e @ Error::Rejected { .. }) => outcome.damaged.push((index, path.clone(), e)),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(good)
}

/// Refuses, by name, a file given that nothing stood in for: a damaged copy
/// of a data volume that is still missing, a damaged parity volume with no
/// good copy, or, while the set is incomplete, a file of a folder that is no
/// volume of the bundle at all. Whatever is left is listed in the report.
fn refuse_unaccounted(set: &VolumeSet, outcome: &mut SetOutcome) -> Result<()> {
    let data = set.verified.manifest.volumes;
    let stood_in = |index: u32| {
        if index < data { !outcome.missing.contains(&index) } else { outcome.verified.contains(&index) }
    };
    if let Some(at) = outcome.damaged.iter().position(|(index, _, _)| !stood_in(*index)) {
        return Err(outcome.damaged.swap_remove(at).2);
    }
    match set.unreadable.first() {
        Some((_, Error::Rejected { subject, rejection, .. })) if !outcome.complete() => {
            Err(Error::rejected(subject, rejection.clone()))
        }
        _ => Ok(()),
    }
}

/// Verifies one file as the volume it claims to be, copying its bytes into
/// `copy` as they are read.
#[allow(clippy::too_many_arguments)] // one run's state, passed down once
fn verify_file<B: BlobSink>(
    set: &VolumeSet,
    index: u32,
    path: &Path,
    policy: &Policy,
    now: u64,
    sink: &mut B,
    copy: Option<Box<dyn std::io::Write + Send>>,
    progress: &dyn Progress,
) -> Result<()> {
    let subject = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::input(path, "volume", &e))?;
    let mut manifests = vec![set.verified.clone()];
    let file = Tee { inner: file, copy: copy.map(|c| std::io::BufWriter::with_capacity(1 << 20, c)) };
    let volume = open_volume(file, &subject, policy, now, &mut manifests)?;
    if volume.digest != set.verified.digest || volume.index != index {
        return Err(Error::Usage(format!("{subject}: changed while airlock was reading it; run the command again")));
    }
    verify_volume(volume, &set.verified, policy, sink, progress)
}

/// A volume file read while its bytes are copied to a second file.
struct Tee {
    inner: File,
    copy: Option<std::io::BufWriter<Box<dyn std::io::Write + Send>>>,
}

impl std::io::Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(copy) = &mut self.copy {
            use std::io::Write as _;
            copy.write_all(&buf[..n])?;
            if n == 0 {
                copy.flush()?;
            }
        }
        Ok(n)
    }
}

/// Rebuilds each missing data volume from the verified parity volumes
/// `parity` and every other data volume, and verifies it into `sink`.
#[allow(clippy::too_many_arguments)] // one run's state, passed down once
fn rebuild_missing<S: SetSink>(
    set: &VolumeSet,
    policy: &Policy,
    now: u64,
    sink: &mut S,
    progress: &dyn Progress,
    good: &BTreeMap<u32, PathBuf>,
    parity: &BTreeMap<u32, PathBuf>,
    wholes: &mut Wholes,
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
    let parity: Vec<(u32, PathBuf)> = parity.iter().take(needed).map(|(i, p)| (*i, p.clone())).collect();
    if parity.len() < needed {
        outcome.no_rebuild = Some(format!("{needed} parity volume(s) needed, {} usable given", parity.len()));
        return Ok(());
    }
    let info = parity_info(&parity[0].1, policy, now, set)?;
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
        let mut blobs = InOrder { inner: sink.blobs(), wholes: &mut *wholes, subject: &label };
        let checked = verify_volume(volume, &set.verified, policy, &mut blobs, progress);
        if wholes.refused.take().is_some() {
            sink.refused();
        }
        checked?;
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
    manifest.volume_bytes(index)
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
        return outcome.damaged.swap_remove(0).2;
    }
    if let Some((_, e)) = set.unreadable.into_iter().next() {
        return e;
    }
    let m = &set.verified.manifest;
    let why = outcome.no_rebuild.map(|w| format!(" ({w})")).unwrap_or_default();
    Error::Incomplete {
        message: format!(
            "bundle {} (channel {}, sequence {}) is missing {}{why}; {kept}",
            &set.verified.digest.to_hex()[..16],
            m.channel,
            m.sequence,
            labels(m, &outcome.missing)
        ),
        missing: outcome.missing.iter().map(|i| volume_file_name(*i, m.volumes, m.parity)).collect(),
    }
}
