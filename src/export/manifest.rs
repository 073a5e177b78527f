//! The manifest of an export: the artifacts sorted and deduplicated into
//! entries and blobs, then encoded and signed (and sizes worked out without
//! signing, for planning volumes).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::ExportOptions;
use super::checks::expiry;
use crate::bundle::writer::BlobFrame;
use crate::bundle::{ManifestFrame, VolumeSeal};
use crate::ecosystem::Artifact;
use crate::ecosystem::ManifestExt as _;
use crate::error::{Error, Result};
use crate::id::ContentId;
use crate::manifest::canonical;
use crate::manifest::{Blob, Entry, FORMAT_SEGMENTED, Manifest};
use crate::sign::{OperatorKey, Signer, envelope};

/// The manifest for `artifacts`: sorted, blobs deduplicated, the same
/// package from two lockfiles counted once; and where each blob's bytes are,
/// in the order of the manifest's blobs.
pub(super) fn build_manifest(
    mut artifacts: Vec<Artifact>,
    options: &ExportOptions,
) -> Result<(Manifest, Vec<PathBuf>)> {
    sort_stably(&mut artifacts, |a, b| (&a.entry.ecosystem, &a.entry.path).cmp(&(&b.entry.ecosystem, &b.entry.path)));
    artifacts.dedup_by(|a, b| a.entry == b.entry);
    let (entries, blobs, sources) = split_artifacts(artifacts);
    let expires = expiry(options)?;
    let mut signers: Vec<_> = options.keys.iter().map(|k| k.public().id()).collect();
    signers.sort();
    signers.dedup();
    let manifest = Manifest {
        format: FORMAT_SEGMENTED,
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
        entries: entries.into(),
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
                blobs.push(Blob {
                    id: artifact.entry.blob,
                    size: artifact.entry.size,
                    volume: 0,
                    carried: true,
                    pieces: Vec::new(),
                });
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

/// How long frame 1's members are (the envelope, and the segments of
/// format 2), without signing the manifest: the envelope's length is
/// worked out from the encoding's.
pub(super) fn envelope_len(manifest: &Manifest, keys: &[OperatorKey]) -> Result<u64> {
    let mut counted = Counted(0);
    let payload = manifest.encode_into(&BTreeSet::new(), &mut counted).map_err(|e| cannot_encode(&e))?;
    let sealed = envelope::sealed_len(payload.len() as u64, keys, envelope::MANIFEST)?;
    // In format 2 the segments are a member of their own: its header block and padding.
    let segments = if manifest.is_segmented() { counted.0 + 2 * crate::bundle::BLOCK as u64 } else { 0 };
    Ok(sealed + segments)
}

/// Counts what is written to it.
struct Counted(u64);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn cannot_encode(e: &str) -> Error {
    Error::Usage(format!("cannot encode the manifest: {e}"))
}

/// Signs the finished manifest; returns its digest and frame 1's content.
/// The entries are taken out of `manifest` and freed as soon as they are
/// encoded: writing the volumes needs only the blobs.
/// The segments in `held` (the channel's previous root's, which the site
/// that imported it keeps) are left out, the root naming them as not
/// carried. Returns the digest, frame 1's content and the ids of every
/// segment the root names (for the channel state).
pub(super) fn sign_final(
    manifest: &mut Manifest,
    keys: &[OperatorKey],
    held: &BTreeSet<ContentId>,
) -> Result<(ContentId, ManifestFrame, Vec<ContentId>)> {
    // The segments go to a spool as they are cut (a temporary file beyond
    // 1 MiB), read from it again as frame 1 is written: neither the
    // entries and their encoding nor the volume and its segments are held
    // at once.
    let temp = std::env::temp_dir();
    let mut spool = crate::manifest::carried::CarriedWriter::default();
    let encoded = manifest.encode_into(held, &mut spool);
    let payload = encoded.map_err(|e| spool.take_error().map_or_else(|| cannot_encode(&e), |e| Error::io(&temp, e)))?;
    let carried = spool.len();
    let named = if manifest.is_segmented() {
        crate::manifest::segments::named(&payload).map_err(|e| cannot_encode(&e))?
    } else {
        Vec::new()
    };
    // The importer caps the manifest whole, the segments it reads from its mirror included.
    let whole = named.iter().map(|r| r.size).sum::<u64>().max(carried);
    check_importable(payload.len() as u64 + whole, manifest.entries.len())?;
    manifest.entries = crate::manifest::Entries::default();
    let segments = if manifest.is_segmented() { Some(spool.finish().map_err(|e| Error::io(&temp, e))?) } else { None };
    let envelope = seal_manifest(&payload, keys)?;
    let ids = named.into_iter().map(|r| r.id).collect();
    Ok((ContentId::of(&payload), ManifestFrame { envelope, segments }, ids))
}

/// A manifest no importer accepts is refused before a volume is written:
/// the importer caps it (it holds the root and the segments whole) at
/// [`crate::manifest::MAX_MANIFEST_BYTES`], about 400 000 small entries.
fn check_importable(len: u64, entries: usize) -> Result<()> {
    let cap = crate::manifest::MAX_MANIFEST_BYTES;
    if len <= cap {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "the manifest of these {entries} entries would be {} MiB, more than the {} MiB an import accepts; export them as several bundles (each --files folder or lockfile in a channel of its own)",
        len.div_ceil(1 << 20),
        cap >> 20
    )))
}

fn seal_manifest(bytes: &[u8], keys: &[OperatorKey]) -> Result<Vec<u8>> {
    envelope::seal(bytes, keys, envelope::MANIFEST)
}

/// The signed seal of volume `volume` over its blob frame.
pub(super) fn seal_volume(keys: &[OperatorKey], manifest: ContentId, volume: u32, frame: BlobFrame) -> Result<Vec<u8>> {
    envelope::seal(&encode_volume_seal(manifest, volume, frame)?, keys, envelope::VOLUME_SEAL)
}

pub(super) fn encode_volume_seal(manifest: ContentId, volume: u32, frame: BlobFrame) -> Result<Vec<u8>> {
    let seal = VolumeSeal { format: 1, manifest, volume, frame: frame.digest, frame_size: frame.size };
    canonical::to_vec(&seal).map_err(|e| Error::Usage(format!("cannot encode the volume seal: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_past_the_importers_cap_is_refused_at_export() {
        let cap = crate::manifest::MAX_MANIFEST_BYTES;
        assert!(check_importable(cap, 400_000).is_ok());
        let refused = check_importable(cap + 1, 1_000_000).unwrap_err().to_string();
        assert!(refused.contains("1000000 entries would be 65 MiB, more than the 64 MiB"), "{refused}");
        assert!(matches!(check_importable(cap + 1, 1).unwrap_err(), Error::Usage(_)));
    }

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
