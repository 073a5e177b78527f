//! Volumes: one zstd frame holding a tar stream whose first member is the
//! signed manifest (`manifest.cose`) and whose other members are blobs named
//! `blobs/<blake3 hex>`.
//!
//! The writer produces exactly one byte sequence for a given manifest and
//! blob set, and the reader accepts only that sequence: every tar header
//! must equal, byte for byte, the header the writer would produce for that
//! member; padding and the end-of-archive blocks must be zero; the zstd
//! frame header must be ours; nothing may follow the frame. A volume
//! therefore has no second encoding for an attacker (or a bad medium) to use.

pub mod reader;
pub mod writer;

/// The first member of every volume.
pub const MANIFEST_MEMBER: &str = "manifest.cose";
/// Folder of the blob members.
pub const BLOB_PREFIX: &str = "blobs/";
/// tar block size.
pub(crate) const BLOCK: usize = 512;

/// zstd window we compress with (4 MiB) and the most a reader will allocate.
pub(crate) const WINDOW_LOG: u32 = 22;

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

/// The member name of a blob.
#[must_use]
pub fn blob_member(id: &crate::id::ContentId) -> String {
    format!("{BLOB_PREFIX}{}", id.to_hex())
}
