//! `export`: artifacts in, one signed volume out.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::bundle::VolumeSeal;
use crate::bundle::writer::{BlobWriteError, VolumeWriter, write_seal};
use crate::ecosystem::files::{self, LocalFile};
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::canonical;
use crate::manifest::{Blob, FORMAT_VERSION, Manifest};
use crate::progress::Progress;
use crate::sign::{SecretKey, envelope};

/// What to export and how.
pub struct ExportOptions {
    /// Folders whose regular files to ship (`--files`).
    pub files: Vec<PathBuf>,
    /// Signing keys (`--key`, one or more).
    pub keys: Vec<SecretKey>,
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
    pub bundle_bytes: u64,
}

/// Refuses a channel name the manifest schema would not allow.
fn check_channel(channel: &str) -> Result<()> {
    if crate::manifest::valid_channel(channel) {
        Ok(())
    } else {
        Err(Error::Usage(format!("--channel {channel:?}: use 1 to 64 letters, digits, '-', '_' or '.'")))
    }
}

/// Runs an export.
pub fn export(options: &ExportOptions, progress: &dyn Progress) -> Result<ExportReport> {
    check_channel(&options.channel)?;
    if options.keys.is_empty() {
        return Err(Error::Usage("no signing key: pass --key KEY (made by `airlock keygen`)".into()));
    }
    if options.files.is_empty() {
        return Err(Error::Usage("nothing to export: pass --files DIR".into()));
    }
    if !options.force && options.out.symlink_metadata().is_ok() {
        return Err(Error::Usage(format!(
            "{}: already exists; choose another --out or pass --force to replace it",
            options.out.display()
        )));
    }
    let mut local = Vec::new();
    for dir in &options.files {
        local.extend(files::collect(dir, progress)?);
    }
    if local.is_empty() {
        return Err(Error::Usage("nothing to export: the --files folders hold no files".into()));
    }
    let manifest = build_manifest(&local, options)?;
    let bytes = manifest.to_bytes().map_err(|e| Error::Usage(format!("cannot encode the manifest: {e}")))?;
    let sealed = envelope::seal(&bytes, &options.keys, envelope::MANIFEST)
        .map_err(|e| Error::Usage(format!("cannot sign the manifest: {e}")))?;
    let bundle_bytes = write_volume(options, &manifest, ContentId::of(&bytes), &sealed, &local, progress)?;
    Ok(ExportReport {
        bundle: options.out.display().to_string(),
        manifest_digest: ContentId::of(&bytes).to_hex(),
        channel: manifest.channel.clone(),
        sequence: manifest.sequence,
        created: crate::verify::rfc3339(manifest.created),
        expires: crate::verify::rfc3339(manifest.expires),
        signers: options.keys.iter().map(|k| k.public().id().short()).collect(),
        entries: manifest.entries.len(),
        blobs: manifest.blobs.len(),
        bytes: manifest.blob_bytes(),
        bundle_bytes,
    })
}

fn build_manifest(local: &[LocalFile], options: &ExportOptions) -> Result<Manifest> {
    let mut entries: Vec<_> = local.iter().map(LocalFile::entry).collect();
    entries.sort_by(|a, b| (&a.ecosystem, &a.path).cmp(&(&b.ecosystem, &b.path)));
    let mut blobs: Vec<Blob> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for entry in &entries {
        if seen.insert(entry.blob) {
            blobs.push(Blob { id: entry.blob, size: entry.size, volume: 0 });
        }
    }
    let expires = options
        .now
        .checked_add(options.expires_in.as_secs())
        .ok_or_else(|| Error::Usage("--expires is too far in the future".into()))?;
    let mut signers: Vec<_> = options.keys.iter().map(|k| k.public().id()).collect();
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
        blobs,
        entries,
    };
    manifest.check().map_err(|e| Error::Usage(format!("the files cannot be shipped together: {e}")))?;
    Ok(manifest)
}

/// Writes the volume to a temporary file beside `out` and renames it into
/// place only when complete; returns its size.
fn write_volume(
    options: &ExportOptions,
    manifest: &Manifest,
    manifest_digest: ContentId,
    sealed: &[u8],
    local: &[LocalFile],
    progress: &dyn Progress,
) -> Result<u64> {
    let out = &options.out;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!("{}: the folder for --out does not exist; create it first", dir.display())));
    }
    let tmp = tempfile::Builder::new().prefix(".airlock-export-").tempfile_in(dir).at(dir)?;
    let mut writer =
        VolumeWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file()), sealed, options.threads).at(out)?;
    progress.start("writing", manifest.blob_bytes());
    let by_blob: std::collections::BTreeMap<_, _> = local.iter().map(|f| (f.blob, f)).collect();
    for blob in &manifest.blobs {
        let source = by_blob[&blob.id];
        let file = File::open(&source.source).map_err(|e| Error::input(&source.source, "file", &e))?;
        let reader = ProgressReader { inner: BufReader::with_capacity(1 << 20, file), progress };
        writer.write_blob(&blob.id, blob.size, reader).map_err(|e| match e {
            BlobWriteError::Io(e) => Error::io(out, e),
            BlobWriteError::Changed { .. } => Error::Usage(format!(
                "{}: changed while it was being exported; run the export again",
                source.source.display()
            )),
        })?;
    }
    let (mut file, frame) = writer.finish().at(out)?;
    let seal =
        VolumeSeal { format: 1, manifest: manifest_digest, volume: 0, frame: frame.digest, frame_size: frame.size };
    let seal = canonical::to_vec(&seal).map_err(|e| Error::Usage(format!("cannot encode the volume seal: {e}")))?;
    let seal = envelope::seal(&seal, &options.keys, envelope::VOLUME_SEAL)
        .map_err(|e| Error::Usage(format!("cannot sign the volume seal: {e}")))?;
    write_seal(&mut file, &seal).and_then(|()| std::io::Write::flush(&mut file)).at(out)?;
    drop(file);
    progress.finish();
    tmp.as_file().sync_all().at(out)?;
    let size = tmp.as_file().metadata().at(out)?.len();
    set_mode(tmp.path(), 0o644).at(out)?;
    tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
    crate::mirror::sync_dir(dir)?;
    Ok(size)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

struct ProgressReader<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
