//! Format 2: the manifest as a small signed root and the segments it names.
//!
//! The signature covers the root only (`manifest-root` in
//! schemas/manifest.cddl). The root names each segment of the blob table
//! and each segment of the entries by BLAKE3, size and item count, in
//! order, so every segment is checked against the signed root over its raw
//! bytes before any of it is decoded, as the whole manifest is checked
//! against its signature in format 1. A segment is the canonical CBOR
//! array of its items.
//!
//! Entries are sorted by place and cut where the place's own hash says
//! (content-defined boundaries, as TUF's hashed bins and Merkle-tree logs
//! cut theirs): adding, changing or removing one entry changes the segment
//! holding it and the root, never its neighbours, which is what lets the
//! segments of a large channel be compared, stored and (later) left out of
//! an incremental bundle one by one. The blob table is in archive order,
//! cut where a blob's own id says, so that a blob added or changed from
//! carried to taken from the mirror also changes one segment.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::carried::CarriedBytes;
use super::evidence::KindOf;
use super::{Blob, Entries, Entry, Manifest, canonical, encodes_items, is_zero, lean_vec};
use crate::id::{ContentId, KeyId};

/// The format with a root and segments.
pub const FORMAT_SEGMENTED: u32 = 2;

/// Largest root accepted: about 150 000 segment references, which name
/// several million entries.
pub const MAX_ROOT_BYTES: u64 = 8 << 20;

/// An entry ends its segment when the low bits of its place's hash are all
/// zero (a blob: of its id, a BLAKE3 already): one in 32 on average.
const CUT_MASK: u8 = 31;

/// A segment is also cut once it holds this many bytes, so that one holding
/// large evidence documents stays a bounded unit to read and compare.
const SEGMENT_TARGET_BYTES: usize = 256 << 10;

/// `manifest-root` in schemas/manifest.cddl: what the envelope signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    pub format: u32,
    pub tool: String,
    pub channel: String,
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ContentId>,
    pub created: u64,
    pub expires: u64,
    pub signers: Vec<KeyId>,
    pub volumes: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parity: u32,
    /// The segments of the blob table, in archive order.
    #[serde(deserialize_with = "lean_vec::deserialize")]
    pub blobs: Vec<SegmentRef>,
    /// The segments of the entries, in the order of their places.
    #[serde(deserialize_with = "lean_vec::deserialize")]
    pub entries: Vec<SegmentRef>,
}

/// `segment-ref` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRef {
    /// BLAKE3 of the segment's bytes.
    pub id: ContentId,
    /// Bytes, at least 1.
    pub size: u64,
    /// Items in the segment, at least 1.
    pub count: u64,
    /// `false` in an incremental bundle for a segment the channel's earlier
    /// bundle carried: the bundle leaves it out and the importer takes it
    /// from the mirror that imported that bundle ([`SegmentSource`]).
    #[serde(default = "super::carried_default", skip_serializing_if = "super::is_carried")]
    pub carried: bool,
}

/// Where the segments a bundle leaves out are found: the segments of the
/// roots a mirror imported. Whatever it hands back is checked against the
/// signed root like a carried segment, so it need not be trusted.
pub trait SegmentSource: Send + Sync + std::fmt::Debug {
    /// The bytes of segment `id`, which the root says are `size` bytes (read
    /// no more than that), or `None` when it is not held.
    fn segment(&self, id: &ContentId, size: u64) -> Result<Option<Vec<u8>>, String>;
    /// Where segments were looked for, and what to do when one is missing,
    /// to end the line that names it: "…; <this>".
    fn missing_advice(&self) -> String;
}

/// No segments held: `verify` or `inspect` without a mirror.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSegments;

impl SegmentSource for NoSegments {
    fn segment(&self, _id: &ContentId, _size: u64) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    fn missing_advice(&self) -> String {
        "it is in the mirror that imported the channel's earlier bundles: pass that mirror with --mirror, or ask for a --full bundle".into()
    }
}

/// Why a format 2 manifest could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecoded {
    /// The bytes break the format's rules: a damaged or hostile bundle.
    Invalid(String),
    /// A segment the bundle leaves out is not held where it was looked for,
    /// or the copy held there is damaged (not the bundle's fault: an
    /// earlier bundle of the channel is missing, or the mirror).
    NotHeld(String),
    /// This machine failed: a temporary file in `TMPDIR` did not read back.
    Io(String),
}

impl Undecoded {
    /// The error for the volume `subject`: the bundle's fault (exit 1) or,
    /// for a temporary file that did not read back, this machine's.
    #[must_use]
    pub fn into_error(self, subject: &str) -> crate::error::Error {
        use crate::error::{Error, Rejection};
        match self {
            Undecoded::Invalid(m) => Error::rejected(subject, Rejection::Schema(m)),
            Undecoded::NotHeld(m) => Error::rejected(subject, Rejection::Policy(m)),
            Undecoded::Io(m) => Error::io(&std::env::temp_dir(), std::io::Error::other(m)),
        }
    }
}

impl From<String> for Undecoded {
    fn from(message: String) -> Self {
        Undecoded::Invalid(message)
    }
}

impl From<&str> for Undecoded {
    fn from(message: &str) -> Self {
        Undecoded::Invalid(message.to_owned())
    }
}

impl std::fmt::Display for Undecoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undecoded::Invalid(m) | Undecoded::NotHeld(m) | Undecoded::Io(m) => f.write_str(m),
        }
    }
}

/// A format 2 manifest encoded: the root to sign, and the segments it
/// carries one after the other in the root's order (blob table first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub root: Vec<u8>,
    pub segments: Vec<u8>,
}

/// Encodes `manifest` (whatever its `format` says) as format 2, carrying every segment.
pub fn encode(manifest: &Manifest) -> Result<Encoded, String> {
    encode_leaving_out(manifest, &std::collections::BTreeSet::new())
}

/// Encodes `manifest` as format 2, leaving out each segment whose id is in
/// `held` (the segments of the channel's previous root, which the mirror
/// that imported it holds): the root names them as not carried.
pub fn encode_leaving_out(
    manifest: &Manifest,
    held: &std::collections::BTreeSet<ContentId>,
) -> Result<Encoded, String> {
    let mut segments = LeanBytes(Vec::new());
    let root = encode_into(manifest, held, &mut segments)?;
    Ok(Encoded { root, segments: segments.0 })
}

/// [`encode_leaving_out`] with the segments it carries written to `out` as
/// they are cut (a file, or only counted) rather than held; returns the root.
pub fn encode_into(
    manifest: &Manifest,
    held: &std::collections::BTreeSet<ContentId>,
    out: &mut dyn std::io::Write,
) -> Result<Vec<u8>, String> {
    // Only the blobs this bundle carries: the others are implied by the
    // entries naming them, so that the table of an incremental bundle is
    // as small as what changed (see `blobs_of`).
    let carried: Vec<&Blob> = manifest.blobs.iter().filter(|b| b.carried).collect();
    let blobs = write_segments(carried.iter(), out, held, |blob| blob.id.0[0] & CUT_MASK == 0)?;
    let entries = write_segments(manifest.entries.iter(), out, held, |e| ends_segment(e))?;
    let root = Root {
        format: FORMAT_SEGMENTED,
        tool: manifest.tool.clone(),
        channel: manifest.channel.clone(),
        sequence: manifest.sequence,
        previous: manifest.previous,
        created: manifest.created,
        expires: manifest.expires,
        signers: manifest.signers.clone(),
        volumes: manifest.volumes,
        parity: manifest.parity,
        blobs,
        entries,
    };
    canonical::to_vec(&root)
}

/// Bytes that grow by an eighth rather than double: the segments of
/// 100 000 entries are 21 MB, which doubling held in 30.
struct LeanBytes(Vec<u8>);

impl std::io::Write for LeanBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lean_vec::reserve(&mut self.0, buf.len());
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every segment a root (as encoded) names, carried or not, in order.
pub fn named(root: &[u8]) -> Result<Vec<SegmentRef>, String> {
    let root: Root = canonical::from_slice(root)?;
    Ok(root.blobs.into_iter().chain(root.entries).collect())
}

/// Whether `entry` is the last of its segment: decided by its place alone.
fn ends_segment(entry: &Entry) -> bool {
    let mut hasher = blake3::Hasher::new();
    hasher.update(entry.ecosystem.as_bytes());
    hasher.update(&[0]);
    hasher.update(entry.path.as_str().as_bytes());
    hasher.finalize().as_bytes()[0] & CUT_MASK == 0
}

/// Writes `items` to `out` as segments cut after each item `cut` names (and
/// once a segment reaches its target size), but those in `held`; returns
/// their references.
fn write_segments<T: Serialize>(
    items: impl ExactSizeIterator<Item = T>,
    out: &mut dyn std::io::Write,
    held: &std::collections::BTreeSet<ContentId>,
    cut: impl Fn(&T) -> bool,
) -> Result<Vec<SegmentRef>, String> {
    let mut refs = Vec::new();
    let (mut body, mut segment) = (Vec::new(), Vec::new());
    let mut count = 0u64;
    let len = items.len();
    for (k, item) in items.enumerate() {
        body.extend_from_slice(&canonical::to_vec(&item)?);
        count += 1;
        if cut(&item) || k + 1 == len || body.len() >= SEGMENT_TARGET_BYTES {
            segment.clear();
            canonical::write_head(&mut segment, 4, count);
            segment.extend_from_slice(&body);
            let id = ContentId::of(&segment);
            let carried = !held.contains(&id);
            refs.push(SegmentRef { id, size: segment.len() as u64, count, carried });
            if carried {
                out.write_all(&segment).map_err(|e| format!("cannot write the manifest segments: {e}"))?;
            }
            body.clear();
            count = 0;
        }
    }
    Ok(refs)
}

/// The bytes of the segments a bundle carries: in memory, or spooled as
/// frame 1 was read ([`CarriedBytes`]), each segment read when it is
/// checked or decoded, so that they are never held whole beside what they
/// decode to (up to the manifest cap each).
pub trait SegmentBytes {
    /// How many bytes.
    fn total(&self) -> u64;
    /// The `len` bytes at `offset` (within [`SegmentBytes::total`]).
    fn bytes_at(&self, offset: usize, len: usize) -> Result<Cow<'_, [u8]>, Undecoded>;
}

impl<T: AsRef<[u8]>> SegmentBytes for T {
    fn total(&self) -> u64 {
        self.as_ref().len() as u64
    }
    fn bytes_at(&self, offset: usize, len: usize) -> Result<Cow<'_, [u8]>, Undecoded> {
        Ok(Cow::Borrowed(&self.as_ref()[offset..offset + len]))
    }
}

impl SegmentBytes for &CarriedBytes {
    fn total(&self) -> u64 {
        self.len()
    }
    fn bytes_at(&self, offset: usize, len: usize) -> Result<Cow<'_, [u8]>, Undecoded> {
        self.read_at(offset as u64, len as u64).map_err(|e| {
            Undecoded::Io(format!("cannot read back the manifest segments from a temporary file in TMPDIR: {e}"))
        })
    }
}

/// Decodes a format 2 manifest: the root (whose signature the caller
/// checked over these bytes), then each segment once its bytes match the
/// root (those the bundle carries from `segments`, the others from
/// `held`), then the rules every manifest meets.
pub fn decode<S: SegmentBytes>(
    root: &[u8],
    segments: S,
    held: &dyn SegmentSource,
    kinds: KindOf,
) -> Result<Manifest, Undecoded> {
    let manifest = decode_unchecked(root, &segments, held, kinds)?;
    drop(segments);
    manifest.check_with(kinds)?;
    Ok(manifest)
}

/// The manifest a root and its segments make, each segment checked
/// against the root; the manifest's own rules are the caller's to check.
fn decode_unchecked(
    root: &[u8],
    segments: &impl SegmentBytes,
    held: &dyn SegmentSource,
    kinds: KindOf,
) -> Result<Manifest, Undecoded> {
    if root.len() as u64 > MAX_ROOT_BYTES {
        return Err(
            format!("the manifest root is {} bytes, more than the {MAX_ROOT_BYTES}-byte cap", root.len()).into()
        );
    }
    let root: Root = canonical::from_slice(root)?;
    if root.format != FORMAT_SEGMENTED {
        return Err(format!(
            "the manifest root says format {}, but only format {FORMAT_SEGMENTED} has segments",
            root.format
        )
        .into());
    }
    check_sizes(&root, segments.total())?;
    // The blob table's segments come first in the bytes, the entries' after.
    let blob_starts = starts_of(&root.blobs, 0);
    let blob_bytes = root.blobs.iter().filter(|r| r.carried).map(|r| r.size as usize).sum();
    let entry_starts = starts_of(&root.entries, blob_bytes);
    // Every carried segment against the root, in the order of the bytes, before any is decoded
    // (so that the first damaged one is the one named); then each is read again to be decoded.
    check_carried(&root.blobs, segments, &blob_starts, "blob")?;
    check_carried(&root.entries, segments, &entry_starts, "entry")?;
    let blobs = read_blobs(&root.blobs, (segments, &blob_starts, held))?;
    let mut blobs = BlobTable::of(blobs)?;
    let entries = read_entries(&root.entries, (segments, &entry_starts, held), kinds, &mut |e| blobs.see(e))?;
    let blobs = blobs.finish();
    let manifest = Manifest {
        format: FORMAT_SEGMENTED,
        tool: root.tool,
        channel: root.channel,
        sequence: root.sequence,
        previous: root.previous,
        created: root.created,
        expires: root.expires,
        signers: root.signers,
        volumes: root.volumes,
        parity: root.parity,
        blobs,
        entries,
    };
    Ok(manifest)
}

/// The whole blob table of a format 2 manifest: the blobs its table lists,
/// which it carries (in archive order), then one not carried for every
/// other blob an entry names (by id, in volume 0): an earlier bundle of
/// the channel carried it, and the importer takes it from the mirror, as a
/// `carried: false` row of format 1 says. Each entry is seen as it is
/// decoded, not in a pass of its own.
struct BlobTable {
    blobs: Vec<Blob>,
    /// Where the implied blobs start.
    start: usize,
    /// The listed blobs' ids, sorted: 32 bytes a blob rather than a hash set.
    listed: Vec<ContentId>,
}

impl BlobTable {
    fn of(carried: Vec<Blob>) -> Result<Self, String> {
        if let Some(blob) = carried.iter().find(|b| !b.carried) {
            return Err(format!(
                "blob {} is listed as not carried, but a format 2 blob table lists only the blobs the bundle carries",
                blob.id.short()
            ));
        }
        let mut listed: Vec<ContentId> = carried.iter().map(|b| b.id).collect();
        listed.sort_unstable();
        Ok(BlobTable { start: carried.len(), blobs: carried, listed })
    }

    /// The implied blobs go straight after the carried ones, sorted and
    /// deduplicated in place at the end: an incremental bundle of a large
    /// channel implies a blob for nearly every entry, and a second table of
    /// them (and a stable sort's scratch) tripled what the table holds.
    fn see(&mut self, e: &Entry) {
        if self.listed.binary_search(&e.blob).is_err() {
            lean_vec::reserve(&mut self.blobs, 1);
            self.blobs.push(Blob { id: e.blob, size: e.size, volume: 0, carried: false, pieces: Vec::new() });
        }
    }

    fn finish(self) -> Vec<Blob> {
        let (mut blobs, start) = (self.blobs, self.start);
        blobs[start..].sort_unstable_by_key(|b| b.id);
        // Entries sharing a blob imply it once (a size they disagree on is refused by the manifest's rules).
        let mut kept = start;
        for at in start..blobs.len() {
            if kept == start || blobs[at].id != blobs[kept - 1].id {
                blobs.swap(kept, at);
                kept += 1;
            }
        }
        blobs.truncate(kept);
        blobs.shrink_to_fit();
        blobs
    }
}

/// The blob table as format 2 holds it (and [`decode`] returns it): the
/// carried blobs as they are, then those not carried by id, in volume 0.
pub fn normalize_blobs(blobs: &mut Vec<Blob>) {
    let mut others: Vec<Blob> = Vec::new();
    blobs.retain(|b| {
        b.carried || {
            others.push(Blob { volume: 0, ..b.clone() });
            false
        }
    });
    others.sort_by_key(|b| b.id);
    blobs.extend(others);
}

/// The carried segments' sizes add up to the `carried` bytes the bundle
/// holds, and all of them, carried or not, stay within the manifest cap
/// (what is read from a mirror is bounded by the signed root, not by the
/// bundle's size).
fn check_sizes(root: &Root, carried: u64) -> Result<(), String> {
    let refs = || root.blobs.iter().chain(&root.entries);
    let sum = |carried_only: bool| {
        refs()
            .filter(|r| r.carried || !carried_only)
            .try_fold(0u64, |total, r| total.checked_add(r.size))
            .ok_or("the segment sizes add up to more than 2^64 bytes")
    };
    let named = sum(true)?;
    if named != carried {
        return Err(format!("the root names {named} bytes of carried segments, the bundle holds {carried}"));
    }
    let all = sum(false)?;
    if all > super::MAX_MANIFEST_BYTES {
        return Err(format!(
            "the root names {all} bytes of segments, more than the {}-byte manifest cap",
            super::MAX_MANIFEST_BYTES
        ));
    }
    Ok(())
}

/// A segment's items, decoded without doubling the vector.
#[derive(Deserialize)]
#[serde(transparent, bound(deserialize = "T: Deserialize<'de>"))]
pub(super) struct Items<T>(#[serde(deserialize_with = "lean_vec::deserialize")] pub(super) Vec<T>);

/// Where each carried segment of `refs` starts in the bytes, the first at
/// `start`. The sizes add up to the bytes held (checked before), so every
/// slice taken at these is in range.
fn starts_of(refs: &[SegmentRef], start: usize) -> Vec<usize> {
    refs.iter()
        .scan(start, |at, r| {
            let here = *at;
            *at += if r.carried { r.size as usize } else { 0 };
            Some(here)
        })
        .collect()
}

/// Where a manifest's segments are: the bytes the bundle carries, where
/// each carried segment starts in them, and what holds the others.
type SegmentsAt<'a, S> = (&'a S, &'a [usize], &'a dyn SegmentSource);

/// The entries of the segments `refs` names, each segment decoded and
/// checked, then kept as its bytes ([`Entries`]), not decoded.
fn read_entries(
    refs: &[SegmentRef],
    at: SegmentsAt<'_, impl SegmentBytes>,
    kinds: KindOf,
    each: &mut dyn FnMut(&Entry),
) -> Result<Entries, Undecoded> {
    let mut firsts = Vec::with_capacity(refs.len());
    let mut total = 0usize;
    for r in refs {
        firsts.push(total);
        total = usize::try_from(r.count)
            .ok()
            .and_then(|n| total.checked_add(n))
            .ok_or("the entry counts add up to too many")?;
    }
    let mut kept = super::entries::SpoolBuilder::default();
    let screen =
        |entries: &[Entry]| entries.iter().try_for_each(|entry| super::check_entry_evidence_sizes(entry, kinds));
    // Read from the last back: the first place of the segment after this one.
    let mut after: Option<(String, String)> = None;
    read_segments::<Entry>(refs, at, "entry", screen, |k, raw, entries| {
        // Sorted by place, one per place, which the entries held as segments are known to be.
        let within = entries.windows(2).all(|pair| pair[0].place() < pair[1].place());
        let before_next = match (entries.last(), &after) {
            (Some(last), Some((e, p))) => last.place() < (e.as_str(), p.as_str()),
            _ => true,
        };
        if !within || !before_next {
            return Err(Undecoded::from("the entries are not sorted by place, one per place"));
        }
        after = entries.first().map(|e| (e.ecosystem.clone(), e.path.as_str().to_owned()));
        entries.iter().for_each(&mut *each);
        kept.add(raw, &entries, firsts[k]).map_err(|e| not_spooled(&e))
    })?;
    kept.finish().map_err(|e| not_spooled(&e))
}

fn not_spooled(e: &std::io::Error) -> Undecoded {
    Undecoded::Io(format!("cannot keep the manifest's entries in a temporary file in TMPDIR: {e}"))
}

/// The blob table of the segments `refs` names, in order.
fn read_blobs(refs: &[SegmentRef], at: SegmentsAt<'_, impl SegmentBytes>) -> Result<Vec<Blob>, Undecoded> {
    let mut items = Vec::new();
    read_segments::<Blob>(
        refs,
        at,
        "blob",
        |_| Ok(()),
        |_, _, blobs| {
            lean_vec::reserve(&mut items, blobs.len());
            // Backwards, so that one reversal at the end puts every item in order.
            items.extend(blobs.into_iter().rev());
            Ok(())
        },
    )?;
    items.reverse();
    items.shrink_to_fit();
    Ok(items)
}

/// Reads the segments `refs` names, the carried ones from `bytes` at
/// `starts` (each checked against the root already, [`check_carried`]),
/// the others from `held`, from the last back (so that of several
/// damaged segments the last is named, as before they were spooled): a
/// segment read from `held` must hash to its reference before it is
/// decoded; each must hold its count of items, pass `screen` (before it is
/// re-encoded: evidence caps) and be canonical; then `keep` is given its
/// index, its bytes and its items.
fn read_segments<T: Serialize + serde::de::DeserializeOwned>(
    refs: &[SegmentRef],
    (bytes, starts, held): SegmentsAt<'_, impl SegmentBytes>,
    what: &str,
    screen: impl Fn(&[T]) -> Result<(), String>,
    mut keep: impl FnMut(usize, &[u8], Vec<T>) -> Result<(), Undecoded>,
) -> Result<(), Undecoded> {
    let mut buf = Vec::new();
    for (k, segment) in refs.iter().enumerate().rev() {
        let name = || format!("{what} segment {} of {}", k + 1, refs.len());
        let raw = if segment.carried {
            bytes.bytes_at(starts[k], segment.size as usize)?
        } else {
            // Whatever goes wrong here is the mirror's, not the bundle's.
            let not_held = |why: String| Undecoded::NotHeld(format!("{}: {why}", name()));
            let fetched = held.segment(&segment.id, segment.size).map_err(not_held)?.ok_or_else(|| {
                not_held(format!(
                    "{} is not carried, as an earlier bundle of the channel carried it; {}",
                    segment.id.short(),
                    held.missing_advice()
                ))
            })?;
            if ContentId::of(&fetched) != segment.id {
                return Err(not_held(format!(
                    "the copy of {} held where the bundle's left-out segments are read is not the segment the signed root names; remove it and ask for a --full bundle",
                    segment.id.short()
                )));
            }
            Cow::Owned(fetched)
        };
        let decoded: Items<T> = canonical::decode_unchecked(&raw).map_err(|e| format!("{}: {e}", name()))?;
        if decoded.0.len() as u64 != segment.count {
            return Err(format!("{} holds {} items, the root says {}", name(), decoded.0.len(), segment.count).into());
        }
        screen(&decoded.0)?;
        if !encodes_items(decoded.0.iter(), &raw, &mut buf)? {
            return Err(format!("{}: {}", name(), canonical::NOT_CANONICAL).into());
        }
        keep(k, &raw, decoded.0)?;
    }
    Ok(())
}

/// No segment `refs` names is empty, and each carried one (at its start in
/// `bytes`) hashes to its reference: checked in order, before any is
/// decoded, so that the first one wrong is the one named.
fn check_carried(
    refs: &[SegmentRef],
    bytes: &impl SegmentBytes,
    starts: &[usize],
    what: &str,
) -> Result<(), Undecoded> {
    for (k, segment) in refs.iter().enumerate() {
        let name = || format!("{what} segment {} of {}", k + 1, refs.len());
        if segment.size == 0 || segment.count == 0 {
            return Err(format!("{} is empty", name()).into());
        }
        if segment.carried && ContentId::of(&bytes.bytes_at(starts[k], segment.size as usize)?) != segment.id {
            return Err(format!("{} does not match its digest in the signed root", name()).into());
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::manifest::tests::{entry_at, sample};

    fn kinds(_: &str) -> Option<&'static crate::manifest::evidence::EvidenceKind> {
        None
    }

    /// A format 2 manifest of `n` plain files, one blob each.
    pub(in crate::manifest) fn manifest_of(n: usize) -> Manifest {
        let mut m = sample();
        m.format = FORMAT_SEGMENTED;
        m.entries = (0..n).map(|i| entry_at("files", &format!("f/{i:05}.txt"), i.to_string().as_bytes())).collect();
        m.entries.sort_by(|a, b| a.place().cmp(&b.place()));
        m.blobs = m
            .entries
            .iter()
            .map(|e| Blob { id: e.blob, size: e.size, volume: 0, carried: true, pieces: Vec::new() })
            .collect();
        m
    }

    fn root_of(encoded: &Encoded) -> Root {
        canonical::from_slice(&encoded.root).unwrap()
    }

    /// `encoded` with its root replaced by `root` (as a signer holding the key could write it).
    fn with_root(encoded: &Encoded, root: &Root) -> Encoded {
        Encoded { root: canonical::to_vec(root).unwrap(), segments: encoded.segments.clone() }
    }

    /// The segments with segment `k` of the entries replaced by `bytes`, the root naming them.
    fn replace_entry_segment(encoded: &Encoded, k: usize, bytes: &[u8], count: u64) -> Encoded {
        let mut root = root_of(encoded);
        let start = root.blobs.iter().chain(&root.entries[..k]).map(|r| r.size as usize).sum::<usize>();
        let end = start + root.entries[k].size as usize;
        let mut segments = encoded.segments[..start].to_vec();
        segments.extend_from_slice(bytes);
        segments.extend_from_slice(&encoded.segments[end..]);
        root.entries[k] = SegmentRef { id: ContentId::of(bytes), size: bytes.len() as u64, count, carried: true };
        Encoded { root: canonical::to_vec(&root).unwrap(), segments }
    }

    fn decode_encoded(encoded: &Encoded) -> Result<Manifest, String> {
        decode(&encoded.root, &encoded.segments, &NoSegments, kinds).map_err(|e| e.to_string())
    }

    /// Segments held by id, as a mirror holds them.
    #[derive(Debug, Default)]
    struct Held(std::collections::BTreeMap<ContentId, Vec<u8>>);

    impl Held {
        /// Every segment of `encoded` (which carries all of them).
        fn of(encoded: &Encoded) -> Self {
            let root = root_of(encoded);
            let mut at = 0;
            let mut held = Held::default();
            for r in root.blobs.iter().chain(&root.entries) {
                let end = at + r.size as usize;
                held.0.insert(r.id, encoded.segments[at..end].to_vec());
                at = end;
            }
            held
        }
    }

    impl SegmentSource for Held {
        fn segment(&self, id: &ContentId, size: u64) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(id).map(|bytes| bytes.iter().copied().take(size as usize + 1).collect()))
        }
        fn missing_advice(&self) -> String {
            "not held here".into()
        }
    }

    #[test]
    fn a_segmented_manifest_decodes_to_what_was_encoded() {
        for n in [1, 31, 2000] {
            let m = manifest_of(n);
            let encoded = encode(&m).unwrap();
            let root = root_of(&encoded);
            assert_eq!(root.entries.iter().map(|r| r.count).sum::<u64>(), n as u64);
            assert_eq!(root.blobs.iter().map(|r| r.count).sum::<u64>(), n as u64);
            assert_eq!(decode_encoded(&encoded).unwrap(), m, "{n} entries");
            let (payload, segments) = m.encode().unwrap();
            assert_eq!(Manifest::decode_with(&payload, segments.as_deref(), &NoSegments, kinds).unwrap(), m);
        }
        // Cut by the places' hashes: about one entry in 32 ends a segment.
        let segments = root_of(&encode(&manifest_of(2000)).unwrap()).entries.len();
        assert!((30..=100).contains(&segments), "{segments} segments for 2000 entries");
    }

    #[test]
    fn segments_taken_are_given_back_as_decoded_to_the_same_manifest() {
        // Some 2 MiB of segments: given back a MiB at a time, last first.
        let m = manifest_of(20_000);
        let encoded = encode(&m).unwrap();
        assert!(encoded.segments.len() > 2 << 20, "{} bytes", encoded.segments.len());
        assert_eq!(decode(&encoded.root, encoded.segments.clone(), &NoSegments, kinds).unwrap(), m);
        // A damaged segment is refused by name, whichever way the bytes are given.
        let mut damaged = encoded.segments.clone();
        damaged[encoded.segments.len() / 2] ^= 1;
        let owned = decode(&encoded.root, damaged.clone(), &NoSegments, kinds).unwrap_err().to_string();
        let borrowed = decode(&encoded.root, &damaged, &NoSegments, kinds).unwrap_err().to_string();
        assert!(owned.contains("does not match its digest in the signed root"), "{owned}");
        assert_eq!(owned, borrowed);
    }

    #[test]
    fn one_entry_changed_or_added_changes_one_segment() {
        let m = manifest_of(2000);
        let before = root_of(&encode(&m).unwrap()).entries;
        let mut changed = m.clone();
        changed.entries[1234].attributes.insert("note".into(), "changed".into());
        let after = root_of(&encode(&changed).unwrap()).entries;
        assert_eq!(after.len(), before.len());
        assert_eq!(before.iter().zip(&after).filter(|(a, b)| a != b).count(), 1);
        let mut added = m.clone();
        added.entries.insert(1000, entry_at("files", "f/00999.txu", b"new"));
        added.blobs.push(Blob { id: ContentId::of(b"new"), size: 3, volume: 0, carried: true, pieces: Vec::new() });
        let after = root_of(&encode(&added).unwrap()).entries;
        let kept = after.iter().filter(|r| before.contains(r)).count();
        assert!(kept + 2 >= before.len(), "{kept} of {} segments kept", before.len());
        assert_eq!(decode_encoded(&encode(&added).unwrap()).unwrap(), added);
    }

    #[test]
    fn a_segment_is_checked_against_the_root_before_it_is_decoded() {
        let encoded = encode(&manifest_of(300)).unwrap();
        // A changed byte in any segment: its digest no longer matches.
        for at in [0, encoded.segments.len() / 2, encoded.segments.len() - 1] {
            let mut bad = encoded.clone();
            bad.segments[at] ^= 0x20;
            let refused = decode_encoded(&bad).unwrap_err();
            assert!(refused.contains("does not match its digest in the signed root"), "{refused}");
        }
        // Bytes added or removed: the root names another length.
        let mut longer = encoded.clone();
        longer.segments.push(0);
        assert!(decode_encoded(&longer).unwrap_err().contains("the root names"));
        let mut shorter = encoded.clone();
        shorter.segments.pop();
        assert!(decode_encoded(&shorter).unwrap_err().contains("the root names"));
        // Segments in another order: each is at the wrong place.
        let mut root = root_of(&encoded);
        root.entries.swap(0, 1);
        assert!(decode_encoded(&with_root(&encoded, &root)).unwrap_err().contains("does not match"));
    }

    #[test]
    fn a_root_signed_over_hostile_segments_is_refused() {
        let m = manifest_of(300);
        let encoded = encode(&m).unwrap();
        let first = &m.entries[0];
        let one = |entries: &[&Entry]| {
            let mut out = Vec::new();
            canonical::write_head(&mut out, 4, entries.len() as u64);
            for e in entries {
                out.extend(canonical::to_vec(e).unwrap());
            }
            out
        };
        let refuse = |bad: Encoded, why: &str| {
            let refused = decode_encoded(&bad).unwrap_err();
            assert!(refused.contains(why), "{refused} (expected {why:?})");
        };
        // The count the root gives is the segment's.
        let segment = one(&[first]);
        refuse(replace_entry_segment(&encoded, 0, &segment, 2), "holds 1 items, the root says 2");
        // No empty segment.
        refuse(replace_entry_segment(&encoded, 0, &one(&[]), 0), "is empty");
        // Canonical CBOR within a segment: an array head in a longer form than needed.
        let mut long_head = vec![0x98, 1];
        long_head.extend(canonical::to_vec(first).unwrap());
        refuse(replace_entry_segment(&encoded, 0, &long_head, 1), "deterministic");
        // The entries stay sorted across segments: the first entry again in the last segment.
        let last = root_of(&encoded).entries.len() - 1;
        let moved = replace_entry_segment(&encoded, last, &one(&[first]), 1);
        refuse(moved, "not sorted");
        // A root of another format, and a format 1 document given as a root.
        let mut root = root_of(&encoded);
        root.format = 3;
        refuse(with_root(&encoded, &root), "only format 2 has segments");
        let single = Manifest { format: crate::manifest::FORMAT_SINGLE, ..m.clone() };
        let as_root = Encoded { root: single.to_bytes().unwrap(), segments: Vec::new() };
        assert!(decode_encoded(&as_root).is_err());
        // And the other way round: a format 2 manifest is no single document.
        assert!(m.to_bytes().unwrap_err().contains("root and segments"));
        let smuggled = canonical::to_vec(&m).unwrap();
        assert!(Manifest::from_bytes_with(&smuggled, kinds).unwrap_err().contains("signed root with segments"));
    }

    #[test]
    fn a_root_over_its_cap_is_refused_before_it_is_decoded() {
        let huge = vec![0u8; MAX_ROOT_BYTES as usize + 1];
        assert!(decode(&huge, [0u8; 0], &NoSegments, kinds).unwrap_err().to_string().contains("cap"));
    }

    #[test]
    fn an_incremental_root_leaves_out_the_segments_held_and_reads_them_back() {
        let m = manifest_of(2000);
        let before = encode(&m).unwrap();
        let held = Held::of(&before);
        let mut changed = m.clone();
        changed.entries[1234].attributes.insert("note".into(), "changed".into());
        let ids: std::collections::BTreeSet<ContentId> = held.0.keys().copied().collect();
        let encoded = encode_leaving_out(&changed, &ids).unwrap();
        let root = root_of(&encoded);
        // One entry segment changed: the only one carried.
        let carried: Vec<&SegmentRef> = root.blobs.iter().chain(&root.entries).filter(|r| r.carried).collect();
        assert_eq!(carried.len(), 1);
        assert_eq!(encoded.segments.len() as u64, carried[0].size);
        assert!(encoded.segments.len() * 20 < before.segments.len());
        assert_eq!(decode(&encoded.root, &encoded.segments, &held, kinds).unwrap(), changed);
        assert_eq!(named(&encoded.root).unwrap().len(), root.blobs.len() + root.entries.len());
        // Without the held segments: not held, which is no fault of the bundle.
        let refused = decode(&encoded.root, &encoded.segments, &NoSegments, kinds).unwrap_err();
        assert!(matches!(&refused, Undecoded::NotHeld(m) if m.contains("is not carried") && m.contains("--mirror")));
        // The flag is canonical only when false: `carried: true` written out is refused.
        let explicit = canonical::to_vec(&root).unwrap();
        let mut value: ciborium::Value = ciborium::from_reader(&explicit[..]).unwrap();
        for list in value.as_map_mut().unwrap().iter_mut().filter(|(k, _)| k.as_text() == Some("entries")) {
            for r in list.1.as_array_mut().unwrap() {
                let r = r.as_map_mut().unwrap();
                if !r.iter().any(|(k, _)| k.as_text() == Some("carried")) {
                    r.push(("carried".into(), true.into()));
                }
            }
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&value, &mut bytes).unwrap();
        let refused = decode(&bytes, &encoded.segments, &held, kinds).unwrap_err().to_string();
        assert!(refused.contains(canonical::NOT_CANONICAL), "{refused}");
    }

    #[test]
    fn the_blob_table_lists_only_the_blobs_carried_and_the_others_come_from_the_entries() {
        let mut m = manifest_of(2000);
        let full = root_of(&encode(&m).unwrap());
        // The next bundle of the channel: every blob but one was carried before.
        for blob in &mut m.blobs[1..] {
            blob.carried = false;
        }
        let encoded = encode(&m).unwrap();
        let root = root_of(&encoded);
        assert_eq!(root.blobs.iter().map(|r| r.count).sum::<u64>(), 1);
        assert!(root.blobs.len() * 10 < full.blobs.len());
        let mut expected = m.clone();
        normalize_blobs(&mut expected.blobs);
        assert_eq!(decode_encoded(&encoded).unwrap(), expected);
        assert_eq!(expected.blobs.iter().filter(|b| !b.carried).count(), 1999);
        // A carried: false row in a format 2 table is refused.
        let stale = Blob { carried: false, ..m.blobs[1].clone() };
        let mut segment = Vec::new();
        canonical::write_head(&mut segment, 4, 1);
        segment.extend(canonical::to_vec(&stale).unwrap());
        let mut root = root.clone();
        let carried_len = root.blobs[0].size as usize;
        root.blobs =
            vec![SegmentRef { id: ContentId::of(&segment), size: segment.len() as u64, count: 1, carried: true }];
        let bad = Encoded {
            root: canonical::to_vec(&root).unwrap(),
            segments: [segment.as_slice(), &encoded.segments[carried_len..]].concat(),
        };
        assert!(decode_encoded(&bad).unwrap_err().contains("lists only the blobs the bundle carries"));
    }

    #[test]
    fn a_held_segment_is_checked_like_a_carried_one_and_the_whole_stays_within_the_cap() {
        let m = manifest_of(300);
        let full = encode(&m).unwrap();
        let mut held = Held::of(&full);
        let ids: std::collections::BTreeSet<ContentId> = held.0.keys().copied().collect();
        let encoded = encode_leaving_out(&m, &ids).unwrap();
        assert!(encoded.segments.is_empty());
        assert_eq!(decode(&encoded.root, &encoded.segments, &held, kinds).unwrap(), m);
        // What the mirror hands back is checked against the signed root.
        let first = root_of(&encoded).entries[0].id;
        held.0.get_mut(&first).unwrap()[3] ^= 1;
        let refused = decode(&encoded.root, &encoded.segments, &held, kinds).unwrap_err();
        assert!(
            matches!(&refused, Undecoded::NotHeld(m) if m.contains("is not the segment the signed root names")),
            "{refused}"
        );
        // A root (signed by a trusted key) naming left-out segments of an
        // exabyte is refused before anything is read from the mirror.
        let mut root = root_of(&encoded);
        root.entries[0].size = u64::MAX / 4;
        let refused = decode(&canonical::to_vec(&root).unwrap(), [0u8; 0], &held, kinds).unwrap_err().to_string();
        assert!(refused.contains("manifest cap"), "{refused}");
        // The carried ones must still add up to the bytes the bundle holds.
        let refused = decode(&encoded.root, [0u8; 7], &held, kinds).unwrap_err().to_string();
        assert!(refused.contains("bytes of carried segments"), "{refused}");
    }
}
