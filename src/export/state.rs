//! The exporter's record of each channel (`--state`): the next sequence
//! number, the previous manifest's digest, and the blobs already sent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::bundle::ManifestFrame;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::Manifest;
use crate::manifest::folder::{CarriedSegments, KeptSegments, SegmentFolder};

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
    pub(super) fn path(dir: &Path, channel: &str) -> PathBuf {
        dir.join(format!("{channel}.json"))
    }

    pub(super) fn blobs_path(dir: &Path, channel: &str) -> PathBuf {
        dir.join(format!("{channel}.blobs"))
    }

    pub(super) fn segments_path(dir: &Path, channel: &str) -> PathBuf {
        dir.join(format!("{channel}.segments"))
    }

    /// Every blob an earlier bundle of the channel carried.
    pub fn sent_blobs(dir: &Path, channel: &str) -> Result<BTreeSet<ContentId>> {
        read_ids(&Self::blobs_path(dir, channel))
    }

    /// The manifest segments the channel's last bundle named (the site that
    /// imported it keeps them): the next bundle leaves them out.
    pub fn sent_segments(dir: &Path, channel: &str) -> Result<BTreeSet<ContentId>> {
        read_ids(&Self::segments_path(dir, channel))
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

/// The segments of each channel's last bundle, `STATE/segments/<blake3>`:
/// what `verify`, `inspect`, `diff` and `sign` given `--state` read the
/// segments an incremental bundle leaves out from.
#[must_use]
pub fn state_segments(dir: &Path) -> SegmentFolder {
    SegmentFolder::new(
        dir.join("segments"),
        format!(
            "the exporter's state {} does not hold it (it keeps the segments of each channel's last bundle): give --mirror with the mirror that imported the channel's earlier bundles, or export with --full",
            dir.display()
        ),
    )
}

/// Keeps the segments the bundle about to be written carries, beside
/// those of the channel's last bundle that it leaves out.
pub(super) fn keep_segments(dir: &Path, frame: &ManifestFrame) -> Result<()> {
    let Some(segments) = frame.segments() else { return Ok(()) };
    let opened = crate::sign::envelope::open_untrusted(&frame.envelope, crate::sign::envelope::MANIFEST)
        .map_err(|r| Error::Usage(format!("cannot read back the manifest just signed: {r}")))?;
    let folder = state_segments(dir);
    // The segments only: the root is the bundle's, kept by the channel state.
    let mut keep = |kept: &KeptSegments<'_>| folder.keep(kept.carried.iter().copied());
    let Some(mut carried) = CarriedSegments::new(opened.payload, &mut keep) else { return Ok(()) };
    let copied = std::io::copy(&mut segments.reader(), &mut carried).map(drop);
    let temp = std::env::temp_dir();
    carried.finish(copied.map_err(|e| Error::io(&temp, e))).map(drop).map_err(|not_kept| not_kept.error)
}

/// Removes the kept segments no channel's last bundle names (each channel's `CHANNEL.segments`).
pub(super) fn collect_segments(dir: &Path) -> Result<()> {
    let mut live = BTreeSet::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.extension().is_some_and(|e| e == "segments") && path.is_file() {
            live.extend(read_ids(&path)?);
        }
    }
    state_segments(dir).retain(&live, false).map(drop)
}

/// The ids listed one per line in hex in the state file `path` (none when
/// it does not exist), read a line at a time (a channel that sent a million
/// blobs lists 65 MB of them).
fn read_ids(path: &Path) -> Result<BTreeSet<ContentId>> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(Error::input(path, "channel state", &e)),
    };
    let damaged = || {
        Error::Usage(format!("{}: damaged channel state; restore it from backup or export with --full", path.display()))
    };
    let mut ids = BTreeSet::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => damaged(),
            _ => Error::input(path, "channel state", &e),
        })?;
        ids.insert(ContentId::from_hex(&line).ok_or_else(damaged)?);
    }
    Ok(ids)
}

/// Writes `ids` to `path` one per line, as [`read_ids`] reads them.
fn write_ids<'a>(path: &Path, ids: impl Iterator<Item = &'a ContentId>) -> Result<()> {
    crate::durable::write_atomically_with(path, 0o644, |out| {
        ids.into_iter().try_for_each(|id| writeln!(out, "{}", id.to_hex()))
    })
}

/// The next bundle of a channel follows the last one: the next sequence
/// number and the last manifest's digest.
pub(super) fn chain_to(manifest: &mut Manifest, last: &ChannelState, channel: &str) -> Result<()> {
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

/// Records the bundle just written as the channel's last, with every blob
/// sent so far (`sent` and the bundle's own) and the segments its root
/// names; only once the bundle is safely written.
pub(super) fn record(
    dir: &Path,
    manifest: &Manifest,
    (digest, segments): (ContentId, &[ContentId]),
    bundle: &Path,
    sent: BTreeSet<ContentId>,
) -> Result<()> {
    let record = ChannelState {
        channel: manifest.channel.clone(),
        sequence: manifest.sequence,
        manifest_digest: digest.to_hex(),
        bundle: bundle.display().to_string(),
        created: crate::time::rfc3339(manifest.created),
    };
    let json = serde_json::to_vec_pretty(&record).expect("state serializes");
    let mut all_sent = sent;
    all_sent.extend(manifest.blobs.iter().map(|b| b.id));
    write_ids(&ChannelState::blobs_path(dir, &manifest.channel), all_sent.iter())?;
    write_ids(&ChannelState::segments_path(dir, &manifest.channel), segments.iter())?;
    crate::durable::write_atomically(&ChannelState::path(dir, &manifest.channel), &json, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_and_read_a_line_at_a_time_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.blobs");
        assert!(read_ids(&path).unwrap().is_empty(), "a new channel has sent nothing");
        let ids: BTreeSet<ContentId> = (0..3000u32).map(|i| ContentId::of(&i.to_le_bytes())).collect();
        write_ids(&path, ids.iter()).unwrap();
        assert_eq!(read_ids(&path).unwrap(), ids);
        for damage in [&b"not hex\n"[..], b"\xff\xfe\n"] {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(damage);
            std::fs::write(&path, bytes).unwrap();
            let e = read_ids(&path).unwrap_err().to_string();
            assert!(e.contains("damaged channel state") && e.contains("c.blobs"), "{e}");
            write_ids(&path, ids.iter()).unwrap();
        }
    }
}
