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

pub mod frame;
pub mod reader;
pub mod writer;

use serde::{Deserialize, Serialize};

use crate::id::ContentId;

/// The first member of every volume.
pub const MANIFEST_MEMBER: &str = "manifest.cose";
/// Folder of the blob members.
pub const BLOB_PREFIX: &str = "blobs/";
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

/// The tar header the writer emits for a member; the reader compares
/// received headers against it byte for byte.
pub(crate) fn member_header(name: &str, size: u64) -> tar::Header {
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
