//! A volume's layout as the mutator sees it, read leniently so that what
//! the mutator wrote reads back: frame 1 (zstd raw blocks holding the tar
//! member `manifest.cose`), frame 2 (a zstd stream holding the tar members
//! `blobs/<hex>` and the end-of-archive blocks) and frame 3 (the skippable
//! frame holding the seal). See src/bundle/mod.rs for the format itself.

use std::io::Read;
use std::ops::Range;

pub const BLOCK: usize = 512;
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
pub const SKIPPABLE_MAGIC: [u8; 4] = [0x5e, 0x2a, 0x4d, 0x18];
/// Frame 1's frame header descriptor: 4-byte content size, single segment.
pub const RAW_FHD: u8 = 0xa0;
/// The most the mutator decompresses of frame 2 or reads of frame 1.
const MAX_CONTENT: usize = 4 << 20;

/// The three frames of a volume, each as far as it could be read.
pub struct Volume {
    /// Frame 1's content: the manifest member's header, envelope and padding.
    pub manifest_member: Vec<u8>,
    /// Frame 2 as stored (compressed).
    pub blob_frame: Vec<u8>,
    /// The seal frame's content, when the volume ends in one.
    pub seal: Option<Vec<u8>>,
}

impl Volume {
    /// `None` when not even frame 1 can be read (then the input is mutated as bytes).
    #[must_use]
    pub fn decode(data: &[u8]) -> Option<Volume> {
        let (manifest_member, used) = read_raw_frame(data)?;
        let rest = &data[used..];
        let (blob_frame, seal) = match find_seal(rest) {
            Some(at) => (rest[..at].to_vec(), Some(rest[at + 8..].to_vec())),
            None => (rest.to_vec(), None),
        };
        Some(Volume { manifest_member, blob_frame, seal })
    }
}

/// Reads a frame of raw or RLE blocks of any sizes; returns its content and its length.
fn read_raw_frame(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    if data.get(..4)? != ZSTD_MAGIC || *data.get(4)? != RAW_FHD {
        return None;
    }
    data.get(5..9)?;
    let mut pos = 9;
    let mut content = Vec::new();
    loop {
        let head = data.get(pos..pos + 3)?;
        let header = u32::from_le_bytes([head[0], head[1], head[2], 0]);
        pos += 3;
        let size = (header >> 3) as usize;
        match (header >> 1) & 3 {
            0 => {
                content.extend_from_slice(data.get(pos..pos + size)?);
                pos += size;
            }
            1 => {
                let byte = *data.get(pos)?;
                content.resize(content.len() + size, byte);
                pos += 1;
            }
            _ => return None,
        }
        if header & 1 == 1 {
            return Some((content, pos));
        }
        if content.len() > MAX_CONTENT {
            return None;
        }
    }
}

/// Where the seal frame starts: the first skippable frame header whose size runs exactly to the end.
fn find_seal(rest: &[u8]) -> Option<usize> {
    (0..rest.len().saturating_sub(7)).find(|&at| {
        let size = u32::from_le_bytes(rest[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        rest[at..at + 4] == SKIPPABLE_MAGIC && at + 8 + size == rest.len()
    })
}

/// Decompresses frame 2 (every frame in it), if it decompresses.
#[must_use]
pub fn decompress(blob_frame: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = zstd::stream::read::Decoder::new(blob_frame).ok()?;
    decoder.window_log_max(24).ok()?;
    let mut tar = Vec::new();
    decoder.take(MAX_CONTENT as u64).read_to_end(&mut tar).ok()?;
    Some(tar)
}

/// One tar member: its header block and what follows it up to the next
/// header as the header's size field says (data and padding).
#[derive(Clone)]
pub struct Member {
    pub header: [u8; BLOCK],
    pub data: Vec<u8>,
}

/// A tar stream: its members, then what follows them (normally the two zero blocks).
pub struct Tar {
    pub members: Vec<Member>,
    pub end: Vec<u8>,
}

impl Tar {
    #[must_use]
    pub fn split(bytes: &[u8]) -> Tar {
        let mut members = Vec::new();
        let mut pos = 0;
        while let Some(block) = bytes.get(pos..pos + BLOCK) {
            let header: [u8; BLOCK] = block.try_into().expect("one block");
            let Some(size) = field_number(&header[SIZE]) else { break };
            if header.iter().all(|b| *b == 0) {
                break;
            }
            let take = usize::try_from(size.saturating_add(BLOCK as u64 - 1) / BLOCK as u64 * BLOCK as u64)
                .unwrap_or(usize::MAX)
                .min(bytes.len() - pos - BLOCK);
            members.push(Member { header, data: bytes[pos + BLOCK..pos + BLOCK + take].to_vec() });
            pos += BLOCK + take;
        }
        Tar { members, end: bytes[pos..].to_vec() }
    }

    #[must_use]
    pub fn join(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for member in &self.members {
            out.extend_from_slice(&member.header);
            out.extend_from_slice(&member.data);
        }
        out.extend_from_slice(&self.end);
        out
    }
}

// The fields of a ustar header.
pub const NAME: Range<usize> = 0..100;
pub const MODE: Range<usize> = 100..108;
pub const UID: Range<usize> = 108..116;
pub const GID: Range<usize> = 116..124;
pub const SIZE: Range<usize> = 124..136;
pub const MTIME: Range<usize> = 136..148;
pub const CHECKSUM: Range<usize> = 148..156;
pub const TYPE: usize = 156;
pub const LINK_NAME: Range<usize> = 157..257;
pub const MAGIC: Range<usize> = 257..263;
pub const VERSION: Range<usize> = 263..265;
pub const OWNER_NAMES: Range<usize> = 265..329;
pub const DEVICE: Range<usize> = 329..345;
pub const PREFIX: Range<usize> = 345..500;

/// A numeric field as tar readers take it: octal (spaces and NULs around
/// it), or big-endian binary when the first byte has its top bit set.
#[must_use]
pub fn field_number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        return Some(field[field.len() - 8..].iter().fold(0u64, |n, b| n << 8 | u64::from(*b)));
    }
    let text = std::str::from_utf8(field).ok()?.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() { Some(0) } else { u64::from_str_radix(text, 8).ok() }
}

/// Writes `value` as the tar crate does: zero-padded octal digits and a
/// final NUL, or binary where octal does not fit.
pub fn set_number(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    if value >> (3 * digits) != 0 {
        field.fill(0);
        field[0] = 0x80;
        let at = field.len() - 8;
        field[at..].copy_from_slice(&value.to_be_bytes());
        return;
    }
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// The checksum the tar crate writes: the sum of the header's bytes with the checksum field as spaces.
pub fn set_checksum(header: &mut [u8; BLOCK]) {
    header[CHECKSUM].fill(b' ');
    let sum: u64 = header.iter().map(|b| u64::from(*b)).sum();
    set_number(&mut header[CHECKSUM], sum);
}

/// The name field up to its first NUL.
#[must_use]
pub fn name(header: &[u8; BLOCK]) -> &[u8] {
    let field = &header[NAME];
    &field[..field.iter().position(|b| *b == 0).unwrap_or(field.len())]
}

/// Sets the name field (cut at 100 bytes, NUL-padded).
pub fn set_name(header: &mut [u8; BLOCK], name: &[u8]) {
    let field = &mut header[NAME];
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
}

/// Writes `content` as a frame of raw blocks of at most `max_block` bytes,
/// the single encoding airlock's reader accepts when `max_block` is 128 KiB.
#[must_use]
pub fn raw_frame(content: &[u8], max_block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 64);
    out.extend_from_slice(&ZSTD_MAGIC);
    out.push(RAW_FHD);
    out.extend_from_slice(&u32::try_from(content.len()).unwrap_or(u32::MAX).to_le_bytes());
    let mut chunks = content.chunks(max_block.max(1)).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let header = u32::from(last) | (chunk.len() as u32) << 3;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// Compresses `content` as frame 2 is written: a checksum, no content size.
#[must_use]
pub fn compress(content: &[u8], level: i32, checksum: bool, content_size: bool) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level).expect("zstd encoder");
    encoder.include_checksum(checksum).expect("zstd parameter");
    encoder.include_contentsize(content_size).expect("zstd parameter");
    if content_size {
        encoder.set_pledged_src_size(Some(content.len() as u64)).expect("zstd parameter");
    }
    encoder.write_all(content).expect("compressing into memory");
    encoder.finish().expect("compressing into memory")
}

/// A skippable frame holding `content`.
#[must_use]
pub fn skippable_frame(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 8);
    out.extend_from_slice(&SKIPPABLE_MAGIC);
    out.extend_from_slice(&u32::try_from(content.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header helpers write what airlock's own writer writes, so that a
    /// mutant whose only change is a valid one still passes the reader.
    #[test]
    fn headers_and_frames_match_airlock_byte_for_byte() {
        for (name, size) in [
            ("manifest.cose", 1234u64),
            ("blobs/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 0),
            ("volume.cbor", 8 << 30),
        ] {
            let reference = airlock::bundle::member_header(name, size).expect("a member name");
            let mut header = *reference.as_bytes();
            let original = header;
            set_number(&mut header[SIZE], size);
            set_name(&mut header, name.as_bytes());
            set_checksum(&mut header);
            assert_eq!(header, original, "{name}");
            assert_eq!(field_number(&header[SIZE]), Some(size));
        }
        let content: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut reference = Vec::new();
        airlock::bundle::frame::write_raw(&mut reference, &content).unwrap();
        assert_eq!(raw_frame(&content, 128 << 10), reference);
        assert_eq!(read_raw_frame(&reference).unwrap(), (content, reference.len()));
    }
}
