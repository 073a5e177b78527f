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

/// The first member of every volume.
pub const MANIFEST_MEMBER: &str = "manifest.cose";
/// Folder of the blob members.
pub const BLOB_PREFIX: &str = "blobs/";
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
        self.sizes.iter().max().copied().unwrap_or(0).div_ceil(u64::from(self.stripe))
    }

    /// Size of the `parity.bin` member.
    #[must_use]
    pub fn member_size(&self) -> u64 {
        self.stripes() * u64::from(self.stripe)
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

/// The tar header the writer emits for a member; the reader compares
/// received headers against it byte for byte. Public so that tests can
/// build hostile volumes whose headers are exactly the accepted ones.
#[must_use]
pub fn member_header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    // Names are at most 70 bytes (`blobs/` + 64 hex), always fit the name field.
    header.set_path(name).expect("member names are short ASCII");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
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
