//! The bundle manifest: the data model of schemas/manifest.cddl, one type per
//! rule, and its canonical encoding.

pub mod canonical;
pub mod carried;
pub mod entries;
pub mod evidence;
pub mod folder;
pub mod segments;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use self::evidence::KindOf;
use crate::id::{ContentId, KeyId, RelPath};

/// Format 1: the manifest is one document, signed whole (`manifest` in
/// the schema). Still read; no longer written.
pub const FORMAT_SINGLE: u32 = 1;

/// Format 2, which export writes: a signed root naming the segments that
/// hold the blob table and the entries ([`segments`]).
pub use entries::{Entries, EntryRef};
pub use segments::FORMAT_SEGMENTED;

/// Refuse manifests larger than this before reading them (64 MiB holds
/// several hundred thousand entries).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Highest sequence number a manifest may carry (2^53 - 1, exact in any JSON
/// reader): a channel can never be pushed to where its next number overflows.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// The latest time a manifest may carry (`time` in the schema): the last
/// one RFC 3339 can write ([`crate::time::MAX_TIME`]).
pub use crate::time::MAX_TIME;

/// `manifest` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// The exporting tool and its version, for diagnostics only.
    pub tool: String,
    /// The sync channel the bundle belongs to.
    pub channel: String,
    /// Position of this bundle in its channel, from 1.
    pub sequence: u64,
    /// BLAKE3 of the previous manifest of the channel, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ContentId>,
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created: u64,
    /// Expiry time, seconds since the Unix epoch (UTC).
    pub expires: u64,
    /// Ids of the keys that signed at export.
    pub signers: Vec<KeyId>,
    /// Number of data volumes in the set (they carry the blobs).
    pub volumes: u32,
    /// Number of parity volumes after the data volumes (`--parity`); 0, and
    /// absent from the encoding, when the set has none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parity: u32,
    /// Every blob the bundle carries, in archive order.
    #[serde(deserialize_with = "lean_vec::deserialize")]
    pub blobs: Vec<Blob>,
    /// Every artifact, pointing at its blob.
    pub entries: Entries,
}

/// `blob` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    pub id: ContentId,
    pub size: u64,
    /// Index of the volume that carries the blob, from 0.
    pub volume: u32,
    /// `false` in an incremental bundle for a blob an earlier bundle of the
    /// channel carried: the importer takes it from the mirror.
    #[serde(default = "carried_default", skip_serializing_if = "is_carried")]
    pub carried: bool,
    /// A blob larger than a volume (`export --split`) is cut into pieces,
    /// one per volume, in order: each piece's BLAKE3, size and volume.
    /// Empty, and absent from the encoding, for a blob carried whole (so
    /// bundles without chunked blobs keep their bytes); never one piece.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lean_vec::deserialize")]
    pub pieces: Vec<Piece>,
}

/// `piece` in schemas/manifest.cddl: one volume's share of a chunked blob.
/// A piece starts where the one before it ends (the first at 0), so pieces
/// can neither overlap nor leave a gap; in the volume it is the member
/// `blobs/<hex id of the whole blob>` of the piece's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Piece {
    /// BLAKE3 of the piece's bytes: each piece is checked on its own, as it is read.
    pub id: ContentId,
    /// Bytes, at least 1.
    pub size: u64,
    /// Index of the data volume that carries it; strictly increasing along the pieces.
    pub volume: u32,
}

impl Blob {
    /// Whether the blob is cut into pieces across volumes.
    #[must_use]
    pub fn is_chunked(&self) -> bool {
        !self.pieces.is_empty()
    }

    /// Each piece with the offset in the blob where it starts.
    pub fn pieces_at(&self) -> impl Iterator<Item = (u64, &Piece)> {
        self.pieces.iter().scan(0u64, |at, piece| {
            let start = *at;
            *at = at.saturating_add(piece.size);
            Some((start, piece))
        })
    }

    /// The rules for a chunked blob (nothing for a blob carried whole):
    /// at least two pieces, none empty, their sizes adding up to the
    /// blob's, in data volumes below `volumes` that strictly increase (no
    /// volume holds two pieces of one blob, so no more pieces than volumes),
    /// the blob's `volume` that of its first piece, and carried.
    pub fn check_pieces(&self, volumes: u32) -> Result<(), String> {
        if self.pieces.is_empty() {
            return Ok(());
        }
        let short = self.id.short();
        if self.pieces.len() > volumes as usize {
            return Err(format!("blob {short} has {} pieces, more than the {volumes} data volumes", self.pieces.len()));
        }
        if self.pieces.len() < 2 {
            return Err(format!("blob {short} is cut into one piece (a blob carried whole lists none)"));
        }
        if !self.carried {
            return Err(format!("blob {short} is not carried but lists pieces"));
        }
        let mut total = 0u64;
        for (k, piece) in self.pieces.iter().enumerate() {
            if piece.size == 0 {
                return Err(format!("blob {short}: piece {} is empty", k + 1));
            }
            if piece.volume >= volumes {
                return Err(format!("blob {short}: piece {} is in volume {} of {volumes}", k + 1, piece.volume));
            }
            if k > 0 && piece.volume <= self.pieces[k - 1].volume {
                return Err(format!(
                    "blob {short}: piece {} is in volume {}, not after piece {}'s volume {} (one piece per volume, in order)",
                    k + 1,
                    piece.volume,
                    k,
                    self.pieces[k - 1].volume
                ));
            }
            total = total
                .checked_add(piece.size)
                .filter(|t| *t <= self.size)
                .ok_or_else(|| format!("blob {short}: its pieces add up to more than its {} bytes", self.size))?;
        }
        if total != self.size {
            return Err(format!("blob {short}: its pieces add up to {total} bytes, the blob has {}", self.size));
        }
        if self.volume != self.pieces[0].volume {
            return Err(format!(
                "blob {short} is assigned to volume {}, its first piece to {}",
                self.volume, self.pieces[0].volume
            ));
        }
        Ok(())
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Most volumes (data and parity) one set may have.
pub const MAX_VOLUMES: u32 = 10_000;

fn carried_default() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_carried(carried: &bool) -> bool {
    *carried
}

/// `entry` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Which ecosystem module owns this entry (`ecosystem::by_name`).
    pub ecosystem: String,
    /// The package name, or for plain files the relative path.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the artifact lands inside the ecosystem's mirror tree.
    pub path: RelPath,
    pub blob: ContentId,
    pub size: u64,
    /// Upstream digests by algorithm name (`sha256`, `sha512`, `git-sha1`:
    /// [`DIGEST_ALGORITHMS`]), checked on import.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, Digest>,
    /// Where the exporter fetched the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Facts the registry states beside the artifact that clients need
    /// (`requires-python`, `yanked`, …), as the registry gave them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Upstream evidence carried with the artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Evidence that was looked for and not served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Missing>,
}

impl Entry {
    /// Whether the entry carries evidence of `kind`.
    #[must_use]
    pub fn carries(&self, kind: &str) -> bool {
        self.evidence.iter().any(|e| e.kind == kind)
    }

    /// Where the entry lands: its ecosystem and its path in that tree.
    #[must_use]
    pub fn place(&self) -> (&str, &str) {
        (self.ecosystem.as_str(), self.path.as_str())
    }

    /// `npm big@1.0.0`, `files notes.txt`: the entry as errors name it.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.version {
            Some(version) => format!("{} {}@{version}", self.ecosystem, self.name),
            None => format!("{} {}", self.ecosystem, self.path),
        }
    }
}

/// An upstream digest's bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(#[serde(with = "bytes")] pub Vec<u8>);

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

/// `evidence` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// What it is, e.g. `npm-registry-signature`, `sigstore-bundle`.
    pub kind: String,
    /// The evidence as the upstream served it.
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// `missing` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Missing {
    pub kind: String,
    /// Where it was looked for.
    pub looked: String,
}

/// Whether `array` is the canonical encoding of `items` as a CBOR array.
fn encodes_items<T: Serialize>(
    items: impl ExactSizeIterator<Item = T>,
    array: &[u8],
    buf: &mut Vec<u8>,
) -> Result<bool, String> {
    let mut head = Vec::new();
    canonical::write_head(&mut head, 4, items.len() as u64);
    if !array.starts_with(&head) {
        return Ok(false);
    }
    let mut at = head.len();
    for item in items {
        let end = canonical::item_end(array, at)?;
        if !canonical::encodes_as(&item, &array[at..end], buf)? {
            return Ok(false);
        }
        at = end;
    }
    Ok(at == array.len())
}

/// Decodes a sequence into a vector that grows by an eighth at a time
/// rather than doubling. The entries are most of a manifest and are kept for
/// a whole import; a doubled vector holds up to twice what it needs, and a
/// capacity taken from the declared length would let a hostile document
/// reserve memory it does not fill.
pub(crate) mod lean_vec {
    use std::marker::PhantomData;

    use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

    /// Makes room in `items` for `additional` more, growing it by an eighth
    /// (at least 16) rather than doubling it: what every vector of entries,
    /// blobs or their bytes that is kept for a whole command grows by.
    pub fn reserve<T>(items: &mut Vec<T>, additional: usize) {
        if items.capacity() - items.len() < additional {
            items.reserve_exact(additional.max(items.len() / 8).max(16));
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        struct Lean<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Lean<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    reserve(&mut items, 1);
                    items.push(item);
                }
                Ok(items)
            }
        }
        d.deserialize_seq(Lean(PhantomData))
    }
}

mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        // byte_buf, not bytes: ciborium reads long byte strings only into an owned buffer.
        d.deserialize_byte_buf(V)
    }
}

/// Channel names: 1 to 64 of `A-Za-z0-9._-` (they appear in file names and reports).
#[must_use]
pub fn valid_channel(channel: &str) -> bool {
    (1..=64).contains(&channel.len()) && channel.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Known upstream digest algorithms and their output sizes. `git-sha1` is
/// a git blob id, SHA-1 over `"blob <size>\0"` (the size in decimal) and
/// then the bytes, as `git hash-object` computes it: not the file's SHA-1.
pub const DIGEST_ALGORITHMS: [(&str, usize); 4] = [("sha1", 20), ("sha256", 32), ("sha512", 64), ("git-sha1", 20)];

/// The SHA-256 of each shard of a file cut every N bytes, the last shard
/// what is left (model-signing's `shards` method): N as 8 bytes big-endian,
/// then the shards' digests in order. Only for a file of more than one shard.
pub const SHA256_SHARDS: &str = "sha256-shards";
/// Smallest shard size carried (so the digest of a file within the manifest's cap stays small).
pub const MIN_SHARD: u64 = 1 << 20;

/// The shard size and shard digests of a [`SHA256_SHARDS`] digest.
#[must_use]
pub fn shards_of(digest: &[u8]) -> Option<(u64, std::slice::ChunksExact<'_, u8>)> {
    let (size, digests) = digest.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*size), digests.chunks_exact(32)))
}

/// A [`SHA256_SHARDS`] digest is well formed for a file of `size` bytes.
fn check_shards(digest: &[u8], size: u64) -> Result<(), String> {
    let Some((shard, digests)) = shards_of(digest) else { return Err("its sha256-shards digest is empty".into()) };
    if shard < MIN_SHARD || !digests.remainder().is_empty() || size <= shard {
        return Err(format!("its sha256-shards digest is malformed (shards of {shard} bytes over {size})"));
    }
    if digests.len() as u64 != size.div_ceil(shard) {
        return Err(format!("its sha256-shards digest has {} shards, not {}", digests.len(), size.div_ceil(shard)));
    }
    Ok(())
}

impl Manifest {
    /// A manifest of `channel` that lists nothing (never signed or written:
    /// what a mirror merges to publish its own entries again).
    #[must_use]
    pub fn empty(channel: String) -> Self {
        Manifest {
            format: FORMAT_SEGMENTED,
            tool: String::new(),
            channel,
            sequence: 0,
            previous: None,
            created: 0,
            expires: 0,
            signers: Vec::new(),
            volumes: 0,
            parity: 0,
            blobs: Vec::new(),
            entries: Entries::default(),
        }
    }

    /// The canonical CBOR bytes of a format 1 manifest (a format 2 one is
    /// written by [`Manifest::encode`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        if self.format != FORMAT_SINGLE {
            return Err(format!("a format {} manifest is a root and segments, not one document", self.format));
        }
        canonical::to_vec(self)
    }

    /// What the envelope signs and, in format 2, the segments beside it.
    pub fn encode(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        self.encode_leaving_out(&BTreeSet::new())
    }

    /// [`Manifest::encode`], leaving out of the segments those in `held`
    /// (format 2 only: the root names them as not carried).
    pub fn encode_leaving_out(&self, held: &BTreeSet<ContentId>) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        if self.format == FORMAT_SINGLE {
            return Ok((self.to_bytes()?, None));
        }
        let encoded = segments::encode_leaving_out(self, held)?;
        Ok((encoded.root, Some(encoded.segments)))
    }

    /// What the envelope signs, with the segments of format 2 (but those in
    /// `held`) written to `segments` as they are cut rather than returned
    /// (nothing is written for format 1, whose payload is the whole manifest).
    pub fn encode_into(
        &self,
        held: &BTreeSet<ContentId>,
        segments: &mut dyn std::io::Write,
    ) -> Result<Vec<u8>, String> {
        match self.format {
            FORMAT_SINGLE => self.to_bytes(),
            _ => segments::encode_into(self, held, segments),
        }
    }

    /// Whether the manifest is a root and segments (format 2).
    #[must_use]
    pub fn is_segmented(&self) -> bool {
        self.format != FORMAT_SINGLE
    }

    /// Decodes what a manifest frame holds: the signed `payload` and, in
    /// format 2, the `segments` it carries (those it leaves out from
    /// `held`); then checks the rules.
    pub fn decode_with<S: segments::SegmentBytes>(
        payload: &[u8],
        segments: Option<S>,
        held: &dyn segments::SegmentSource,
        kinds: KindOf,
    ) -> Result<Self, segments::Undecoded> {
        match segments {
            Some(segments) => segments::decode(payload, segments, held, kinds),
            None => Ok(Self::from_bytes_with(payload, kinds)?),
        }
    }

    /// Decodes canonical bytes and checks the rules the schema cannot say,
    /// with the evidence kinds `kinds` knows (`ecosystem::ManifestExt::from_bytes`
    /// passes this build's).
    pub fn from_bytes_with(bytes: &[u8], kinds: KindOf) -> Result<Self, String> {
        let mut manifest: Manifest = canonical::decode_unchecked(bytes).map_err(|e| {
            // A format 2 root whose frame lost its segments member reads as a broken manifest: say which.
            match canonical::decode_unchecked::<segments::Root>(bytes) {
                Ok(_) => {
                    "a format 2 manifest root, but the bundle holds no manifest.segments member beside it".to_owned()
                }
                Err(_) => e,
            }
        })?;
        if manifest.format != FORMAT_SINGLE {
            return Err(format!(
                "a format {} manifest is a signed root with segments, but this bundle holds it as one document",
                manifest.format
            ));
        }
        // The manifest is kept for a whole import: give back the slack of decoding.
        manifest.entries.decoded_mut().shrink_to_fit();
        manifest.blobs.shrink_to_fit();
        // Before the encoding check, which re-encodes one entry at a time:
        // an entry with a document over its cap is not encoded again.
        manifest.check_evidence_sizes(kinds)?;
        manifest.check_encoding(bytes)?;
        manifest.check_with(kinds)?;
        Ok(manifest)
    }

    /// `canonical::from_slice`'s rule, that `bytes` are exactly the
    /// canonical encoding of the manifest, checked one blob and one entry
    /// at a time: re-encoding the whole manifest would hold a third copy
    /// of it (the bytes and the decoded form are two), up to the 64 MiB cap.
    /// The fields besides `blobs` and `entries` are compared as the
    /// encoding of the manifest without them, field by field.
    fn check_encoding(&self, bytes: &[u8]) -> Result<(), String> {
        let skeleton = Manifest {
            format: self.format,
            tool: self.tool.clone(),
            channel: self.channel.clone(),
            sequence: self.sequence,
            previous: self.previous,
            created: self.created,
            expires: self.expires,
            signers: self.signers.clone(),
            volumes: self.volumes,
            parity: self.parity,
            blobs: Vec::new(),
            entries: Entries::default(),
        };
        let expected = canonical::to_vec(&skeleton)?;
        let differs = || Err(canonical::NOT_CANONICAL.to_owned());
        let (mut at_expected, mut at) = (canonical::content_start(&expected, 0)?, canonical::content_start(bytes, 0)?);
        if expected[..at_expected] != bytes[..at] {
            return differs();
        }
        let mut buf = Vec::new();
        while at_expected < expected.len() {
            let (key_expected, key) = (canonical::item_end(&expected, at_expected)?, canonical::item_end(bytes, at)?);
            let name = &expected[at_expected..key_expected];
            if *name != bytes[at..key] {
                return differs();
            }
            let (end_expected, end) = (canonical::item_end(&expected, key_expected)?, canonical::item_end(bytes, key)?);
            let same = match name {
                b"\x65blobs" => encodes_items(self.blobs.iter(), &bytes[key..end], &mut buf)?,
                b"\x67entries" => encodes_items(self.entries.iter(), &bytes[key..end], &mut buf)?,
                _ => expected[key_expected..end_expected] == bytes[key..end],
            };
            if !same {
                return differs();
            }
            (at_expected, at) = (end_expected, end);
        }
        if at != bytes.len() {
            return differs();
        }
        Ok(())
    }

    /// Cross-field rules: known format, sequence and volumes in range, blob
    /// sizes that add up, every blob used by an entry and every entry's blob
    /// present with the same size, no two entries at the same place, no entry
    /// whose path is a prefix folder of another's, and no two paths that one
    /// file system would take for the same ([`check_places`]); every
    /// evidence kind one `kinds` knows, every document within its cap.
    pub fn check_with(&self, kinds: KindOf) -> Result<(), String> {
        if self.format != FORMAT_SINGLE && self.format != FORMAT_SEGMENTED {
            return Err(format!(
                "format version {} is not supported (this airlock reads {FORMAT_SINGLE} and {FORMAT_SEGMENTED}); update airlock on this side",
                self.format
            ));
        }
        if !valid_channel(&self.channel) {
            return Err(format!("channel name {:?} is not allowed", self.channel));
        }
        if !(1..=MAX_SEQUENCE).contains(&self.sequence) {
            return Err(format!("sequence {} is outside 1..={MAX_SEQUENCE}", self.sequence));
        }
        if self.volumes == 0 {
            return Err("a bundle has at least one volume".into());
        }
        if u64::from(self.volumes) + u64::from(self.parity) > u64::from(MAX_VOLUMES) {
            return Err(format!("{} data and {} parity volumes, more than {MAX_VOLUMES}", self.volumes, self.parity));
        }
        for (what, time) in [("created", self.created), ("expires", self.expires)] {
            if time > MAX_TIME {
                return Err(format!("{what} {time} is after 9999-12-31T23:59:59Z, the last time the format can carry"));
            }
        }
        if self.created > self.expires {
            return Err("expires before it was created".into());
        }
        let mut total = 0u64;
        for blob in &self.blobs {
            total = total.checked_add(blob.size).ok_or("the blob sizes add up to more than 2^64 bytes")?;
            if blob.volume >= self.volumes {
                return Err(format!(
                    "blob {} is assigned to volume {} of {}",
                    blob.id.short(),
                    blob.volume,
                    self.volumes
                ));
            }
            blob.check_pieces(self.volumes)?;
        }
        // Sorted vectors rather than a map and a set: 40 bytes and a flag a blob.
        let mut sizes: Vec<(ContentId, u64)> = self.blobs.iter().map(|b| (b.id, b.size)).collect();
        sizes.sort_unstable();
        if let Some(pair) = sizes.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(format!("blob {} is listed twice", pair[0].0.short()));
        }
        let find = |id: &ContentId| sizes.binary_search_by_key(id, |(id, _)| *id).ok();
        let mut used = vec![false; sizes.len()];
        // An exporter lists the entries sorted by place, one per place: then
        // the entries are the set of places themselves, none is built beside them.
        let sorted = self.entries.is_sorted_by_place();
        // Format 2 cuts its segments by place: there the order is the rule.
        if !sorted && self.format == FORMAT_SEGMENTED {
            return Err("the entries are not sorted by place, one per place".into());
        }
        let mut places = BTreeSet::new();
        let mut checks = PlaceChecks::default();
        let contains = |wanted: (&str, &str)| self.entries.find_place(wanted).is_some();
        for (index, entry) in self.entries.iter().enumerate() {
            let entry = &*entry;
            check_entry_evidence_sizes(entry, kinds)?;
            if sorted {
                checks.add(index, (&entry.ecosystem, entry.path.as_str()), contains)?;
            }
            match find(&entry.blob).map(|at| (at, sizes[at].1)) {
                None => {
                    return Err(format!(
                        "entry {} points at blob {} that the bundle does not list",
                        entry.name,
                        entry.blob.short()
                    ));
                }
                Some((_, size)) if size != entry.size => {
                    return Err(format!("entry {} declares {} bytes, its blob {}", entry.name, entry.size, size));
                }
                Some((at, _)) => used[at] = true,
            }
            check_digests_and_kinds(entry, kinds)?;
            if !sorted && !places.insert((entry.ecosystem.clone(), entry.path.as_str().to_owned())) {
                return Err(format!("two entries at {}/{}", entry.ecosystem, entry.path));
            }
        }
        if let Some(unused) = self.blobs.iter().find(|b| find(&b.id).is_some_and(|at| !used[at])) {
            return Err(format!("blob {} is not needed by any entry", unused.id.short()));
        }
        if sorted {
            let place = |i: usize, with: &mut dyn FnMut(&str, &str)| {
                let entry = self.entries.get(i).expect("within the entries");
                with(&entry.ecosystem, entry.path.as_str());
            };
            checks.finish(&place)
        } else {
            let places: Vec<(String, String)> = places.into_iter().collect();
            let place = |i: usize, with: &mut dyn FnMut(&str, &str)| with(&places[i].0, &places[i].1);
            let contains =
                |(e, p): (&str, &str)| places.binary_search_by(|(a, b)| (a.as_str(), b.as_str()).cmp(&(e, p))).is_ok();
            check_place_set(places.len(), &place, contains)
        }
    }

    /// Every evidence document within its kind's cap (as `kinds` gives it),
    /// checked before any parser sees one.
    pub fn check_evidence_sizes(&self, kinds: KindOf) -> Result<(), String> {
        self.entries.iter().try_for_each(|entry| check_entry_evidence_sizes(&entry, kinds))
    }

    /// The blobs carried whole by volume `index`, in archive order.
    pub fn blobs_in_volume(&self, index: u32) -> impl Iterator<Item = &Blob> {
        self.blobs.iter().filter(move |b| b.carried && !b.is_chunked() && b.volume == index)
    }

    /// The pieces of chunked blobs that volume `index` carries, in archive
    /// order: the blob, the piece's number and its offset in the blob.
    pub fn pieces_in_volume(&self, index: u32) -> impl Iterator<Item = (&Blob, usize, u64, &Piece)> {
        self.blobs.iter().filter(|b| b.carried).flat_map(move |b| {
            b.pieces_at()
                .enumerate()
                .filter(move |(_, (_, p))| p.volume == index)
                .map(move |(k, (at, p))| (b, k, at, p))
        })
    }

    /// Bytes of blobs and pieces volume `index` carries.
    #[must_use]
    pub fn volume_bytes(&self, index: u32) -> u64 {
        self.blobs_in_volume(index).map(|b| b.size).sum::<u64>()
            + self.pieces_in_volume(index).map(|(_, _, _, p)| p.size).sum::<u64>()
    }

    /// Blobs an earlier bundle of the channel carried, which the importer takes from the mirror.
    pub fn blobs_not_carried(&self) -> impl Iterator<Item = &Blob> {
        self.blobs.iter().filter(|b| !b.carried)
    }

    /// Data and parity volumes together.
    #[must_use]
    pub fn total_volumes(&self) -> u32 {
        self.volumes + self.parity
    }

    /// Whether the bundle is a single volume (the format without `--split`).
    #[must_use]
    pub fn is_single_volume(&self) -> bool {
        self.volumes == 1 && self.parity == 0
    }

    /// Whether the bundle carries every blob its inventory needs.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.blobs.iter().all(|b| b.carried)
    }

    /// Bytes of the blobs this bundle carries.
    #[must_use]
    pub fn carried_bytes(&self) -> u64 {
        self.blobs.iter().filter(|b| b.carried).map(|b| b.size).sum()
    }

    /// Total bytes of all blobs.
    #[must_use]
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// An entry's upstream digests of known algorithms and lengths, and its
/// evidence of kinds `kinds` knows.
fn check_digests_and_kinds(entry: &Entry, kinds: KindOf) -> Result<(), String> {
    for (algorithm, digest) in &entry.digests {
        if algorithm == SHA256_SHARDS {
            check_shards(&digest.0, entry.size).map_err(|m| format!("entry {}: {m}", entry.name))?;
            continue;
        }
        match DIGEST_ALGORITHMS.iter().find(|(name, _)| name == algorithm) {
            Some((_, len)) if *len == digest.0.len() => {}
            Some(_) => return Err(format!("entry {}: {algorithm} digest has the wrong length", entry.name)),
            None => return Err(format!("entry {}: unknown digest algorithm {algorithm:?}", entry.name)),
        }
    }
    let named = entry.evidence.iter().map(|e| &e.kind).chain(entry.missing.iter().map(|m| &m.kind));
    if let Some(kind) = named.into_iter().find(|k| kinds(k).is_none()) {
        return Err(format!("entry {}: unknown evidence kind {kind:?}", entry.name));
    }
    Ok(())
}

/// Every evidence document of `entry` within its kind's cap.
fn check_entry_evidence_sizes(entry: &Entry, kinds: KindOf) -> Result<(), String> {
    for document in &entry.evidence {
        evidence::check_size(kinds, &document.kind, document.data.len())
            .map_err(|e| format!("entry {}: {e}", entry.describe()))?;
    }
    Ok(())
}

/// Rules for a set of (ecosystem, path) places that share one mirror tree:
/// no `a` beside `a/b` (the first would have to be both a file and a
/// folder), and no two different paths, or folders of paths, that are the
/// same name to a case-insensitive or normalising file system
/// ([`check_folding`]).
pub fn check_places<'a>(places: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    // A sorted vector rather than a set: a third of the memory for the same lookups.
    let mut all: Vec<(&str, &str)> = places.collect();
    all.sort_unstable();
    all.dedup();
    let place = |i: usize, with: &mut dyn FnMut(&str, &str)| with(all[i].0, all[i].1);
    check_place_set(all.len(), &place, |wanted| all.binary_search(&wanted).is_ok())
}

/// Place `index` of a set, handed to `with` (the places may be decoded
/// as they are read, not borrowed from a whole held decoded).
type PlaceAt<'a> = &'a dyn Fn(usize, &mut dyn FnMut(&str, &str));

/// [`check_places`] over `len` places given in order by index, without
/// repeats, and a test of whether the set holds a place.
fn check_place_set(len: usize, place: PlaceAt<'_>, contains: impl Fn((&str, &str)) -> bool) -> Result<(), String> {
    let mut checks = PlaceChecks::default();
    for index in 0..len {
        let mut checked = Ok(());
        place(index, &mut |ecosystem, path| checked = checks.add(index, (ecosystem, path), &contains));
        checked?;
    }
    checks.finish(place)
}

/// The rules of [`check_places`] over places given one at a time, in
/// order: no place that is a folder of another, checked as each comes
/// (against the whole set, by `contains`), and no two paths, nor folders
/// on the way to them, that differ only by the form a case-insensitive,
/// normalising file system compares ([`fold`]: `README` and `readme`,
/// `café` composed and decomposed), checked at the end. On such a file
/// system (macOS, Windows, a casefolded ext4, a share the mirror is copied
/// to) one would silently replace or merge into the other.
///
/// Each name is held as 16 bytes (a hash of its ecosystem and folded form,
/// and where it is), not as a map of names: names whose hashes meet are
/// compared in full, so a collision of hashes costs a comparison, never a
/// false refusal. The places come sorted, so a folder is held once per run
/// of the paths inside it.
struct PlaceChecks {
    /// Keyed anew in every process: a bundle cannot choose names whose hashes meet.
    keys: std::hash::RandomState,
    names: Vec<(u64, u32, u16)>,
    previous: (String, String),
}

impl Default for PlaceChecks {
    fn default() -> Self {
        PlaceChecks { keys: std::hash::RandomState::new(), names: Vec::new(), previous: (String::new(), String::new()) }
    }
}

impl PlaceChecks {
    /// Place `index`, the next in order.
    fn add(
        &mut self,
        index: usize,
        (ecosystem, path): (&str, &str),
        contains: impl Fn((&str, &str)) -> bool,
    ) -> Result<(), String> {
        use std::hash::BuildHasher as _;
        for (end, _) in path.match_indices('/') {
            let prefix = &path[..end];
            if contains((ecosystem, prefix)) {
                return Err(format!("{ecosystem}/{prefix} is both a file and a folder of {path}"));
            }
        }
        let (e, p) = &self.previous;
        let ends = path.match_indices('/').map(|(end, _)| end).chain([path.len()]);
        for end in ends {
            let name = &path[..end];
            let repeated = e == ecosystem && p.len() > end && p.as_bytes()[end] == b'/' && p.starts_with(name);
            if !repeated {
                let at = u32::try_from(index).expect("fewer than 2^32 places");
                let end = u16::try_from(end).expect("paths are shorter than 64 KiB");
                lean_vec::reserve(&mut self.names, 1);
                self.names.push((self.keys.hash_one((ecosystem, fold(name))), at, end));
            }
        }
        self.previous.0.clear();
        self.previous.0.push_str(ecosystem);
        self.previous.1.clear();
        self.previous.1.push_str(path);
        Ok(())
    }

    /// No two names added fold alike; `place` gives each place again by index.
    fn finish(mut self, place: PlaceAt<'_>) -> Result<(), String> {
        self.names.sort_unstable();
        // Only names whose hashes meet are read again, so each is copied.
        let name_of = |&(_, at, end): &(u64, u32, u16)| {
            let mut name = (String::new(), String::new());
            place(at as usize, &mut |ecosystem, path| name = (ecosystem.to_owned(), path[..end as usize].to_owned()));
            name
        };
        for run in self.names.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
            for (k, later) in run.iter().enumerate().skip(1) {
                let (ecosystem, name) = name_of(later);
                let same_fold = run[..k]
                    .iter()
                    .map(name_of)
                    .find(|(e, other)| *e == ecosystem && *other != name && fold(other) == fold(&name));
                if let Some((_, other)) = same_fold {
                    return Err(folding_clash(&ecosystem, &other, &name));
                }
            }
        }
        Ok(())
    }
}

/// The refusal of two paths of `ecosystem` that fold alike ([`fold`]).
#[must_use]
pub fn folding_clash(ecosystem: &str, one: &str, other: &str) -> String {
    format!(
        "{ecosystem}/{one} and {ecosystem}/{other} differ only by case or Unicode normalisation; a file system may take them for one"
    )
}

/// The form under which case-insensitive, normalising file systems compare
/// names: canonical decomposition, both case mappings (so `ß`/`SS`, `σ`/`ς`
/// and the Kelvin sign all meet), then composition.
/// An ASCII name folds to its ASCII lower case (normalisation leaves ASCII
/// alone), which is most often the name itself: then it is not copied.
#[must_use]
pub fn fold(name: &str) -> Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization as _;
    if !name.is_ascii() {
        return Cow::Owned(name.nfd().collect::<String>().to_uppercase().to_lowercase().nfc().collect());
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Owned(name.to_ascii_lowercase());
    }
    Cow::Borrowed(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The one evidence kind these tests know; the ecosystems' own are theirs.
    const TEST_DOCUMENT: evidence::EvidenceKind =
        evidence::EvidenceKind { name: "test-document", max_bytes: evidence::MIB, needed: false };

    fn test_kinds(name: &str) -> Option<&'static evidence::EvidenceKind> {
        (name == TEST_DOCUMENT.name).then_some(&TEST_DOCUMENT)
    }

    /// `from_bytes` and `check` as `ecosystem::ManifestExt` gives them, with the test kind.
    trait Checked: Sized {
        fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
        fn check(&self) -> Result<(), String>;
    }

    impl Checked for Manifest {
        fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
            Manifest::from_bytes_with(bytes, test_kinds)
        }
        fn check(&self) -> Result<(), String> {
            self.check_with(test_kinds)
        }
    }

    /// An entry at `path` holding `content`: a registry package is named by
    /// the path's first part, as its layout has it, a plain file by its path.
    pub(crate) fn entry_at(ecosystem: &str, path: &str, content: &[u8]) -> Entry {
        let files = ecosystem == "files";
        Entry {
            ecosystem: ecosystem.into(),
            name: if files { path.into() } else { path.split('/').next().unwrap().into() },
            version: if files { None } else { Some("1".into()) },
            path: RelPath::new(path).unwrap(),
            blob: ContentId::of(content),
            size: content.len() as u64,
            digests: BTreeMap::new(),
            source: None,
            attributes: BTreeMap::new(),
            evidence: Vec::new(),
            missing: Vec::new(),
        }
    }

    pub(crate) fn sample() -> Manifest {
        let blob = ContentId::of(b"hello");
        Manifest {
            format: FORMAT_SINGLE,
            tool: "airlock test".into(),
            channel: "default".into(),
            sequence: 1,
            previous: None,
            created: 1_700_000_000,
            expires: 1_800_000_000,
            signers: vec![KeyId([7; 16])],
            volumes: 1,
            parity: 0,
            blobs: vec![Blob { id: blob, size: 5, volume: 0, carried: true, pieces: Vec::new() }],
            entries: vec![Entry {
                ecosystem: "files".into(),
                name: "greeting.txt".into(),
                version: None,
                path: RelPath::new("greeting.txt").unwrap(),
                blob,
                size: 5,
                digests: BTreeMap::new(),
                source: None,
                attributes: BTreeMap::new(),
                evidence: vec![],
                missing: vec![],
            }]
            .into(),
        }
    }

    #[test]
    fn long_byte_strings_round_trip() {
        // Longer than the decoder's scratch buffer, as real evidence documents are.
        let mut m = sample();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        m.entries[0].evidence.push(Evidence { kind: "test-document".into(), data: data.clone() });
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap().entries[0].evidence[0].data, data);
    }

    #[test]
    fn round_trips_byte_identically() {
        let m = sample();
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        assert_eq!(Manifest::from_bytes(&bytes).unwrap().to_bytes().unwrap(), bytes);
    }

    #[test]
    fn cross_field_rules() {
        let mut m = sample();
        m.entries[0].size = 6;
        assert!(m.check().unwrap_err().contains("declares"));

        let mut m = sample();
        m.blobs.push(Blob { id: ContentId::of(b"other"), size: 5, volume: 0, carried: true, pieces: Vec::new() });
        assert!(m.check().unwrap_err().contains("not needed"));

        let mut m = sample();
        let mut nested = m.entries[0].clone();
        nested.path = RelPath::new("greeting.txt/inner").unwrap();
        m.entries.push(nested);
        assert!(m.check().unwrap_err().contains("both a file and a folder"));

        let mut m = sample();
        m.entries.push(m.entries[0].clone());
        assert!(m.check().unwrap_err().contains("two entries"));

        let mut m = sample();
        m.entries[0].digests.insert("md5".into(), Digest(vec![0; 16]));
        assert!(m.check().unwrap_err().contains("unknown digest"));

        // Shard digests: a shard size under the file's and the number of shards it makes.
        let size = sample().entries[0].size;
        let shards = |shard: u64, count: usize| {
            let mut d = shard.to_be_bytes().to_vec();
            d.extend(vec![7; 32 * count]);
            let mut m = sample();
            m.entries[0].size = size.max(3 << 20);
            m.blobs.iter_mut().for_each(|b| b.size = size.max(3 << 20));
            m.entries[0].digests.insert(SHA256_SHARDS.into(), Digest(d));
            m.check()
        };
        assert!(shards(1 << 20, 3).is_ok(), "{:?}", shards(1 << 20, 3));
        assert!(shards(1 << 20, 2).unwrap_err().contains("has 2 shards, not 3"));
        assert!(shards(4096, 768).unwrap_err().contains("malformed"), "shards under 1 MiB");
        assert!(shards(4 << 20, 1).unwrap_err().contains("malformed"), "one shard is its sha256");

        for sequence in [0, MAX_SEQUENCE + 1, u64::MAX] {
            let mut m = sample();
            m.sequence = sequence;
            assert!(m.check().unwrap_err().contains("outside"), "{sequence}");
        }

        for (created, expires) in [(MAX_TIME + 1, MAX_TIME + 1), (1_700_000_000, MAX_TIME + 1), (0, u64::MAX)] {
            let mut m = sample();
            (m.created, m.expires) = (created, expires);
            assert!(m.check().unwrap_err().contains("after 9999-12-31T23:59:59Z"), "{created} {expires}");
        }
        let mut m = sample();
        m.expires = MAX_TIME;
        assert!(m.check().is_ok());

        let mut m = sample();
        m.blobs[0].size = u64::MAX;
        m.blobs.push(Blob { id: ContentId::of(b"other"), size: 2, volume: 0, carried: true, pieces: Vec::new() });
        assert!(m.check().unwrap_err().contains("add up"));
    }

    #[test]
    fn places_are_checked_alike_in_sorted_and_unsorted_manifests() {
        // Sorted entries are their own set of places; unsorted ones go through a set.
        let with_paths = |paths: &[&str]| {
            let mut m = sample();
            m.entries = paths
                .iter()
                .map(|p| Entry { name: (*p).into(), path: RelPath::new(p).unwrap(), ..m.entries[0].clone() })
                .collect();
            m
        };
        for (paths, error) in [
            (&["a", "a/b", "c"][..], Some("both a file and a folder")),
            (&["a/b/c", "a/b/c/d/e"], Some("both a file and a folder")),
            (&["Docs/x", "docs/y", "e"], Some("differ only by case")),
            (&["a/b", "a/c", "b"], None),
        ] {
            let mut m = with_paths(paths);
            let sorted = m.check().err();
            m.entries.reverse();
            assert_eq!(m.check().err(), sorted, "{paths:?}");
            assert_eq!(sorted.is_some(), error.is_some(), "{paths:?}: {sorted:?}");
            if let (Some(found), Some(error)) = (sorted, error) {
                assert!(found.contains(error), "{paths:?}: {found}");
            }
        }
    }

    #[test]
    fn paths_one_file_system_would_merge_are_refused() {
        let places = |paths: &[&'static str]| check_places(paths.iter().map(|p| ("files", *p)));
        assert!(places(&["a.txt", "b.txt", "dir/a.txt", "Dir2/a.txt"]).is_ok());
        for clash in [
            &["README", "readme"][..],
            &["docs/a", "Docs/b"],
            &["caf\u{e9}", "cafe\u{301}"],
            &["stra\u{df}e", "STRASSE"],
            &["\u{212a}elvin", "kelvin"],
            &["x/\u{3c3}", "x/\u{3c2}"],
        ] {
            let err = places(clash).unwrap_err();
            assert!(err.contains("differ only by case"), "{clash:?}: {err}");
        }
        // The same path in two ecosystems is two places.
        assert!(check_places([("files", "a"), ("other", "A")].into_iter()).is_ok());
        assert!(places(&["a", "a/b"]).unwrap_err().contains("both a file and a folder"));
    }

    #[test]
    fn ascii_names_fold_as_the_full_folding_folds_them() {
        use unicode_normalization::UnicodeNormalization as _;
        let full = |name: &str| name.nfd().collect::<String>().to_uppercase().to_lowercase().nfc().collect::<String>();
        let ascii: String = (0u8..128).map(char::from).collect();
        for name in [ascii.as_str(), "README.md", "docs/a.txt", "Mixed/Case-1_2.JSON", ""] {
            assert_eq!(fold(name), full(name), "{name:?}");
        }
        assert!(matches!(fold("docs/a.txt"), Cow::Borrowed(_)));
    }

    #[test]
    fn defaults_spelled_out_are_a_second_encoding_and_refused() {
        // Found by the manifest fuzz target: `carried: true` written out
        // decoded to the same manifest as the bytes without it.
        let mut value = ciborium::Value::serialized(&sample()).unwrap();
        let ciborium::Value::Map(fields) = &mut value else { panic!("a map") };
        let (_, blobs) = fields.iter_mut().find(|(k, _)| k.as_text() == Some("blobs")).unwrap();
        let ciborium::Value::Array(blobs) = blobs else { panic!("an array") };
        let ciborium::Value::Map(blob) = &mut blobs[0] else { panic!("a map") };
        blob.push(("carried".into(), true.into()));
        let bytes = canonical::to_vec(&value).unwrap();
        assert!(Manifest::from_bytes(&bytes).unwrap_err().contains("deterministic"));
    }

    #[test]
    fn the_encoding_is_checked_part_by_part_as_strictly_as_whole() {
        // Every single-byte change of a manifest with all kinds of fields is
        // refused by the part-by-part check exactly when re-encoding the
        // whole decoded manifest would refuse it.
        let mut m = sample();
        m.previous = Some(ContentId::of(b"before"));
        m.parity = 0;
        let mut second = m.entries[0].clone();
        second.path = RelPath::new("b.txt").unwrap();
        second.version = Some("1".into());
        second.evidence.push(Evidence { kind: "test-document".into(), data: b"{}".to_vec() });
        second.digests.insert("sha256".into(), Digest(vec![1; 32]));
        m.entries.push(second);
        let bytes = m.to_bytes().unwrap();
        let whole = |b: &[u8]| canonical::from_slice::<Manifest>(b).and_then(|m| m.check().map(|()| m)).is_ok();
        let mut changed = 0;
        for at in 0..bytes.len() {
            for delta in [1u8, 0x20, 0x80] {
                let mut b = bytes.clone();
                b[at] = b[at].wrapping_add(delta);
                assert_eq!(Manifest::from_bytes(&b).is_ok(), whole(&b), "byte {at} + {delta}");
                changed += 1;
            }
        }
        assert!(changed > 1000);
        // Bytes after the manifest.
        let mut b = bytes.clone();
        b.push(0);
        assert!(Manifest::from_bytes(&b).is_err());
        assert!(Manifest::from_bytes(&bytes).is_ok());
    }

    /// `sample` with its blob cut into pieces of `sizes` bytes in `volumes`, in a set of `count` volumes.
    fn chunked(sizes: &[u64], volumes: &[u32], count: u32) -> Manifest {
        let mut m = sample();
        m.volumes = count;
        m.blobs[0].pieces = sizes
            .iter()
            .zip(volumes)
            .map(|(size, volume)| Piece { id: ContentId::of(&size.to_le_bytes()), size: *size, volume: *volume })
            .collect();
        m.blobs[0].volume = volumes.first().copied().unwrap_or(0);
        m
    }

    #[test]
    fn chunked_blobs_round_trip_and_their_pieces_must_describe_the_blob() {
        let m = chunked(&[2, 3], &[0, 1], 2);
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        let offsets: Vec<u64> = m.blobs[0].pieces_at().map(|(at, _)| at).collect();
        assert_eq!(offsets, [0, 2]);
        assert_eq!(m.volume_bytes(0), 2);
        assert_eq!(m.volume_bytes(1), 3);
        assert_eq!(m.blobs_in_volume(0).count(), 0, "a chunked blob is in no volume whole");
        // The blob of `sample` is 5 bytes.
        for (sizes, volumes, count, error) in [
            (&[2u64, 2][..], &[0u32, 1][..], 2, "add up to 4 bytes"),
            (&[3, 3], &[0, 1], 2, "add up to more than"),
            (&[u64::MAX, 6], &[0, 1], 2, "add up to more than"),
            (&[2, 3], &[0, 0], 2, "one piece per volume"),
            (&[2, 3], &[1, 0], 2, "one piece per volume"),
            (&[5, 0], &[0, 1], 2, "piece 2 is empty"),
            (&[1, 1, 3], &[0, 1, 2], 2, "more than the 2 data volumes"),
            (&[2, 3], &[0, 2], 2, "in volume 2 of 2"),
            (&[5], &[0], 1, "one piece"),
        ] {
            let err = chunked(sizes, volumes, count).check().unwrap_err();
            assert!(err.contains(error), "{sizes:?} {volumes:?}: {err}");
        }
        let mut m = chunked(&[2, 3], &[0, 1], 2);
        m.blobs[0].volume = 1;
        assert!(m.check().unwrap_err().contains("its first piece"));
        let mut m = chunked(&[2, 3], &[0, 1], 2);
        m.blobs[0].carried = false;
        assert!(m.check().unwrap_err().contains("not carried"));
    }

    #[test]
    fn an_empty_list_of_pieces_spelled_out_is_a_second_encoding_and_refused() {
        let mut value = ciborium::Value::serialized(&sample()).unwrap();
        let ciborium::Value::Map(fields) = &mut value else { panic!("a map") };
        let (_, blobs) = fields.iter_mut().find(|(k, _)| k.as_text() == Some("blobs")).unwrap();
        let ciborium::Value::Array(blobs) = blobs else { panic!("an array") };
        let ciborium::Value::Map(blob) = &mut blobs[0] else { panic!("a map") };
        blob.push(("pieces".into(), ciborium::Value::Array(vec![])));
        let bytes = canonical::to_vec(&value).unwrap();
        assert!(Manifest::from_bytes(&bytes).unwrap_err().contains("deterministic"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut value = ciborium::Value::serialized(&sample()).unwrap();
        if let ciborium::Value::Map(entries) = &mut value {
            entries.push(("extra".into(), 1.into()));
        }
        let bytes = canonical::to_vec(&value).unwrap();
        assert!(Manifest::from_bytes(&bytes).is_err());
    }
}
