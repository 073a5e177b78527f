//! Volumes. A volume is a valid `.tar.zst` (any zstd and tar can list it)
//! made of three zstd frames:
//!
//! 1. a frame of raw (stored) blocks holding the tar member `manifest.cose`,
//!    the signed manifest, so a reader gets it without decompression;
//! 2. a compressed frame holding the blob members `blobs/<blake3 hex>` and
//!    the end-of-archive blocks;
//! 3. a zstd *skippable* frame (ignored by zstd itself) holding the volume
//!    seal: a signature over the BLAKE3 of frame 2's compressed bytes, the
//!    manifest digest and the volume's index.
//!
//! The seal is what makes every bit of a volume count: compressed formats
//! have many encodings of the same content, and without it some bit flips
//! in frame 2 would decode to the same bytes and pass unnoticed. Frame 1 is
//! written in the one encoding the reader accepts, and the seal covers
//! frame 2 exactly, so a volume has no second encoding. Co-signing later
//! adds a signature to frame 1's envelope and to the seal without touching
//! frame 2.
//!
//! The reader accepts only what the writer produces: tar headers byte for
//! byte, zero padding, the end-of-archive blocks, and nothing after the seal.
//!
//! A split bundle (`export --split`) is a folder of such volumes. Every one
//! starts with the same signed manifest, whose blob table says which data
//! volume carries each blob; frame 2 of each then starts with the member
//! `volume.cbor` saying which volume of the set it is (the seal confirms it
//! at the end). Parity volumes (`--parity`) follow the data volumes: their
//! frame 2 holds `volume.cbor`, with the size of every data volume, and
//! `parity.bin`, Reed-Solomon recovery bytes over the data volume files
//! (see [`parity`]). A bundle of one volume without parity has no
//! `volume.cbor`: that is the format written without `--split`.

pub mod frame;
pub mod parity;
pub mod reader;
pub mod split;
pub mod writer;

use serde::{Deserialize, Serialize};

use crate::id::ContentId;
use crate::manifest::carried::CarriedBytes;

/// The first member of every volume.
pub const MANIFEST_MEMBER: &str = "manifest.cose";
/// Folder of the blob members.
pub const BLOB_PREFIX: &str = "blobs/";
/// The second member of frame 1 in format 2: the segments the signed
/// root names, one after the other.
pub const SEGMENTS_MEMBER: &str = "manifest.segments";
/// First member of frame 2 in a volume of a split set: which volume it is.
pub const VOLUME_MEMBER: &str = "volume.cbor";
/// The recovery bytes of a parity volume.
pub const PARITY_MEMBER: &str = "parity.bin";
/// Largest `volume.cbor` accepted (a parity volume lists every data volume's size).
pub const MAX_VOLUME_INFO_BYTES: u64 = 1 << 20;
/// tar block size.
pub(crate) const BLOCK: usize = 512;

/// zstd window we compress with (4 MiB) and the most a reader will allocate.
pub(crate) const WINDOW_LOG: u32 = 22;

/// Largest volume seal accepted (it holds one signature per signer).
pub const MAX_SEAL_BYTES: u64 = 1 << 20;

/// What frame 1 holds: the signed manifest envelope and, from format 2
/// on, the segments its root names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestFrame {
    pub envelope: Vec<u8>,
    /// Spooled as read or written (up to the manifest cap), never held whole.
    pub segments: Option<CarriedBytes>,
}

impl ManifestFrame {
    /// The segments, in format 2.
    #[must_use]
    pub fn segments(&self) -> Option<&CarriedBytes> {
        self.segments.as_ref()
    }

    /// Whether this is the frame `seen` was made from.
    #[must_use]
    pub fn is(&self, seen: &FrameSeen) -> bool {
        self.envelope == seen.envelope && segments_seen(self.segments()) == seen.segments
    }

    /// What is kept of this frame once its manifest is decoded: the
    /// envelope, and the segments by length and BLAKE3 only.
    #[must_use]
    pub fn seen(self) -> FrameSeen {
        FrameSeen { segments: segments_seen(self.segments()), envelope: self.envelope }
    }
}

/// What [`FrameSeen`] keeps of a frame's segments: their length and BLAKE3.
#[must_use]
pub fn segments_seen(segments: Option<&CarriedBytes>) -> Option<(u64, ContentId)> {
    segments.map(|s| (s.len(), s.id()))
}

/// Frame 1 of a volume already read, as the other volumes of its set are
/// compared with it: the envelope byte for byte, the segments member by
/// its length and BLAKE3 (the signed root in the envelope names every
/// segment, so a volume whose envelope is the same and whose segments are
/// not is damaged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSeen {
    pub envelope: Vec<u8>,
    pub segments: Option<(u64, ContentId)>,
}

/// The payload of a volume seal (`volume-seal` in schemas/manifest.cddl).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSeal {
    /// Seal format version.
    pub format: u32,
    /// BLAKE3 of the manifest this volume belongs to.
    pub manifest: ContentId,
    /// Index of this volume in the set.
    pub volume: u32,
    /// BLAKE3 of frame 2 (the compressed blob frame) as stored.
    pub frame: ContentId,
    /// Size of frame 2 in bytes.
    pub frame_size: u64,
}

/// `volume-info` in schemas/manifest.cddl: which volume of a split set this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeInfo {
    /// Index in the set: data volumes from 0, then the parity volumes.
    pub volume: u32,
    /// In parity volumes only: what the recovery bytes were computed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<ParityInfo>,
}

/// `parity-info` in schemas/manifest.cddl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityInfo {
    /// Bytes each data volume contributes to one Reed-Solomon stripe.
    pub stripe: u32,
    /// Size in bytes of each data volume file, in order.
    pub sizes: Vec<u64>,
}

impl ParityInfo {
    /// Number of stripes: the largest data volume, in stripes (shorter ones are padded with zeros).
    #[must_use]
    pub fn stripes(&self) -> u64 {
        // A stripe of 0 is refused when a volume is opened; here it is no stripes rather than a division by zero.
        let largest = self.sizes.iter().max().copied().unwrap_or(0);
        if self.stripe == 0 { 0 } else { largest.div_ceil(u64::from(self.stripe)) }
    }

    /// Size of the `parity.bin` member. The sizes come from a volume: one
    /// near 2^64 saturates here (no parity member is that large, so the
    /// volume is refused) rather than overflow.
    #[must_use]
    pub fn member_size(&self) -> u64 {
        self.stripes().saturating_mul(u64::from(self.stripe))
    }
}

/// How people call volume `index` of a set of `data` data and `parity` parity volumes.
#[must_use]
pub fn volume_label(index: u32, data: u32, parity: u32) -> String {
    if index < data {
        format!("volume {} of {data}", index + 1)
    } else {
        format!("parity volume {} of {parity}", index - data + 1)
    }
}

/// The file name the exporter gives volume `index`: `volume-03-of-12.airlock`,
/// `parity-1-of-2.airlock` (numbers padded so that a listing sorts them).
#[must_use]
pub fn volume_file_name(index: u32, data: u32, parity: u32) -> String {
    let (kind, number, count) =
        if index < data { ("volume", index + 1, data) } else { ("parity", index - data + 1, parity) };
    let width = count.to_string().len();
    format!("{kind}-{number:0width$}-of-{count}.airlock")
}

/// Whether `name` is a member name the writer emits: [`MANIFEST_MEMBER`],
/// [`VOLUME_MEMBER`], [`PARITY_MEMBER`] or `blobs/` and 64 lower-case hex
/// digits. Nothing else is ever a member of a volume, so the reader refuses
/// any other name before it looks further at the header.
#[must_use]
pub fn is_member_name(name: &str) -> bool {
    let blob = name
        .strip_prefix(BLOB_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    blob || [MANIFEST_MEMBER, SEGMENTS_MEMBER, VOLUME_MEMBER, PARITY_MEMBER].contains(&name)
}

/// The tar header the writer emits for member `name` of `size` bytes; the
/// reader compares received headers against it byte for byte. `None` when
/// `name` is not a member name ([`is_member_name`]): those are short ASCII
/// names without `..`, which always fit the header, so this never panics,
/// whatever a reader hands it. Public so that tests can build hostile
/// volumes whose headers are exactly the accepted ones.
#[must_use]
pub fn member_header(name: &str, size: u64) -> Option<tar::Header> {
    if !is_member_name(name) {
        return None;
    }
    let mut header = tar::Header::new_ustar();
    header.set_path(name).ok()?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Some(header)
}

/// Zero bytes after a member of `size` bytes up to the next block.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The member name of a blob.
#[must_use]
pub fn blob_member(id: &ContentId) -> String {
    format!("{BLOB_PREFIX}{}", id.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for a regular file called `name` (any bytes, up to
    /// 100), written byte by byte as a hostile writer would: the tar crate's
    /// own `set_path` refuses `..` and long names.
    fn raw_header(name: &[u8], size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        header
    }

    fn hostile_names() -> Vec<Vec<u8>> {
        let seventy = format!("{BLOB_PREFIX}../{}", "a".repeat(61));
        assert_eq!(seventy.len(), 70);
        vec![
            seventy.into_bytes(),
            format!("{BLOB_PREFIX}{}", "A".repeat(64)).into_bytes(),
            format!("{BLOB_PREFIX}./{}", "a".repeat(62)).into_bytes(),
            format!("/{BLOB_PREFIX}{}", "a".repeat(63)).into_bytes(),
            b"manifest.cose/../x".to_vec(),
            b"../manifest.cose".to_vec(),
            b"/etc/passwd".to_vec(),
            vec![0xff; 100],
            [BLOB_PREFIX.as_bytes(), &[0xc3; 64][..]].concat(),
            b"volume.cbor\n".to_vec(),
        ]
    }

    #[test]
    fn parity_sizes_near_the_top_of_u64_do_not_overflow() {
        let info = ParityInfo { stripe: 1 << 16, sizes: vec![u64::MAX, 3] };
        assert_eq!(info.member_size(), u64::MAX);
        let info = ParityInfo { stripe: 512, sizes: vec![1000, 3] };
        assert_eq!(info.member_size(), 1024);
        assert_eq!(ParityInfo { stripe: 0, sizes: vec![1000] }.member_size(), 0);
    }

    #[test]
    fn member_header_refuses_every_other_name_without_panicking() {
        for name in hostile_names() {
            let text = String::from_utf8_lossy(&name);
            assert!(!is_member_name(&text), "{text:?}");
            assert!(member_header(&text, 10).is_none(), "{text:?}");
        }
        let blob = blob_member(&crate::id::ContentId::of(b"x"));
        for name in [MANIFEST_MEMBER, VOLUME_MEMBER, PARITY_MEMBER, blob.as_str()] {
            assert!(member_header(name, 10).is_some(), "{name}");
        }
    }

    #[test]
    fn a_hostile_first_member_is_refused_by_name_not_a_panic() {
        for name in hostile_names() {
            let mut member = raw_header(&name, 5).as_bytes().to_vec();
            member.extend_from_slice(b"hello");
            member.resize(2 * BLOCK, 0);
            let mut volume = Vec::new();
            frame::write_raw(&mut volume, &member).unwrap();
            let Err(err) = reader::VolumeReader::open(&volume[..], "v.airlock") else {
                panic!("{name:?} accepted");
            };
            let text = err.to_string();
            assert_eq!(err.exit_code(), 1, "{text}");
            assert!(text.contains("unexpected archive member"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }
}
