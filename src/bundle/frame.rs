//! The two zstd frames airlock writes by hand: a frame of raw blocks (for
//! the manifest member) and a skippable frame (for the seal). Both have
//! exactly one encoding, which the parsers insist on.

use std::io::{self, Read, Write};

const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Frame header descriptor: 4-byte content size, single segment, no checksum, no dictionary.
const RAW_FHD: u8 = 0xa0;
/// Largest block zstd allows.
const MAX_BLOCK: usize = 128 << 10;
/// The skippable-frame magic airlock uses for seals (0x184D2A5E, little-endian).
const SKIPPABLE_MAGIC: [u8; 4] = [0x5e, 0x2a, 0x4d, 0x18];

/// Writes `content` as a zstd frame of raw blocks.
pub fn write_raw(out: &mut impl Write, content: &[u8]) -> io::Result<()> {
    write_raw_stream(out, content.len() as u64, &mut &content[..])
}

/// Writes the `total` bytes `content` gives as one zstd frame of raw
/// blocks, a block at a time (the segments a frame carries are read from
/// a temporary file as they are written).
pub fn write_raw_stream(out: &mut impl Write, total: u64, content: &mut dyn Read) -> io::Result<()> {
    let size = u32::try_from(total).map_err(|_| io::Error::other("raw frame content over 4 GiB"))?;
    out.write_all(&MAGIC)?;
    out.write_all(&[RAW_FHD])?;
    out.write_all(&size.to_le_bytes())?;
    let mut buf = vec![0u8; MAX_BLOCK.min(size as usize)];
    let mut left = size as usize;
    while left > 0 {
        let block = left.min(MAX_BLOCK);
        left -= block;
        // Block header: bit 0 last-block, bits 1-2 type (0 = raw), bits 3.. size.
        let header = u32::from(left == 0) | ((block as u32) << 3);
        out.write_all(&header.to_le_bytes()[..3])?;
        content.read_exact(&mut buf[..block])?;
        out.write_all(&buf[..block])?;
    }
    Ok(())
}

/// Why a hand-written frame was refused.
#[derive(Debug)]
pub enum FrameError {
    /// Not the encoding the writer produces.
    Malformed(String),
    /// Larger than the caller's cap.
    Oversize(u64),
    /// Reading failed (including a premature end).
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Reads a raw-block frame of at most `cap` bytes of content.
pub fn read_raw(input: &mut impl Read, cap: u64) -> Result<Vec<u8>, FrameError> {
    let mut blocks = RawBlocks::start(input, cap)?;
    let mut content = Vec::with_capacity(blocks.size());
    while blocks.next_into(input, &mut content)? {}
    Ok(content)
}

/// A raw-block frame read one block at a time, so that its content can be
/// compared with bytes already held instead of read into a second buffer.
#[derive(Debug)]
pub struct RawBlocks {
    size: usize,
    read: usize,
}

impl RawBlocks {
    /// Reads the frame's header: its content must be at most `cap` bytes.
    pub fn start(input: &mut impl Read, cap: u64) -> Result<Self, FrameError> {
        let mut head = [0u8; 9];
        input.read_exact(&mut head)?;
        if head[..4] != MAGIC || head[4] != RAW_FHD {
            return Err(FrameError::Malformed(
                "not an airlock volume (it does not start with airlock's manifest frame)".into(),
            ));
        }
        let size = u64::from(u32::from_le_bytes(head[5..9].try_into().expect("4 bytes")));
        if size > cap {
            return Err(FrameError::Oversize(size));
        }
        if size == 0 {
            return Err(FrameError::Malformed("empty manifest frame".into()));
        }
        Ok(RawBlocks { size: size as usize, read: 0 })
    }

    /// Bytes of content the frame declares.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Appends the next block's content to `out`; `false` once every block was read.
    pub fn next_into(&mut self, input: &mut impl Read, out: &mut Vec<u8>) -> Result<bool, FrameError> {
        if self.read == self.size {
            return Ok(false);
        }
        let mut block = [0u8; 4];
        input.read_exact(&mut block[..3])?;
        let header = u32::from_le_bytes(block);
        let expected = (self.size - self.read).min(MAX_BLOCK);
        let last = self.read + expected == self.size;
        let wanted = u32::from(last) | ((expected as u32) << 3);
        if header != wanted {
            return Err(FrameError::Malformed("unexpected block in the manifest frame".into()));
        }
        let start = out.len();
        out.resize(start + expected, 0);
        input.read_exact(&mut out[start..])?;
        self.read += expected;
        Ok(true)
    }
}

/// Writes `content` as a skippable frame.
pub fn write_skippable(out: &mut impl Write, content: &[u8]) -> io::Result<()> {
    let size = u32::try_from(content.len()).map_err(|_| io::Error::other("skippable frame over 4 GiB"))?;
    out.write_all(&SKIPPABLE_MAGIC)?;
    out.write_all(&size.to_le_bytes())?;
    out.write_all(content)
}

/// Reads airlock's skippable frame of at most `cap` bytes, which must be the
/// last thing in the input.
pub fn read_skippable_last(input: &mut impl Read, cap: u64) -> Result<Vec<u8>, FrameError> {
    let mut head = [0u8; 8];
    input.read_exact(&mut head)?;
    if head[..4] != SKIPPABLE_MAGIC {
        return Err(FrameError::Malformed("the volume seal is missing".into()));
    }
    let size = u64::from(u32::from_le_bytes(head[4..].try_into().expect("4 bytes")));
    if size > cap {
        return Err(FrameError::Oversize(size));
    }
    let mut content = Vec::new();
    input.take(size).read_to_end(&mut content)?;
    if content.len() as u64 != size {
        return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    let mut probe = [0u8; 1];
    if input.read(&mut probe)? != 0 {
        return Err(FrameError::Malformed("data after the volume seal".into()));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_decode_with_zstd_itself() {
        for len in [1usize, 512, MAX_BLOCK, MAX_BLOCK + 1, 3 * MAX_BLOCK + 7] {
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut frame = Vec::new();
            write_raw(&mut frame, &content).unwrap();
            assert_eq!(zstd::decode_all(&frame[..]).unwrap(), content, "zstd disagrees at {len}");
            assert_eq!(read_raw(&mut &frame[..], u64::MAX).unwrap(), content);
        }
    }

    #[test]
    fn a_stream_makes_the_frame_its_bytes_make() {
        let content: Vec<u8> = (0..3 * MAX_BLOCK + 700).map(|i| (i % 241) as u8).collect();
        let mut joined = Vec::new();
        write_raw(&mut joined, &content).unwrap();
        // A reader giving its bytes in pieces cut inside, at and around block boundaries.
        for cut in [0, 511, MAX_BLOCK, MAX_BLOCK + 1, 2 * MAX_BLOCK - 3] {
            let (first, rest) = content.split_at(cut);
            let mut frame = Vec::new();
            write_raw_stream(&mut frame, content.len() as u64, &mut first.chain(rest)).unwrap();
            assert_eq!(frame, joined);
        }
        // A reader with fewer bytes than the frame declares fails, not writes a short frame silently.
        assert!(write_raw_stream(&mut Vec::new(), content.len() as u64 + 1, &mut &content[..]).is_err());
    }

    #[test]
    fn skippable_frames_are_skipped_by_zstd() {
        let mut data = Vec::new();
        write_raw(&mut data, b"hello").unwrap();
        write_skippable(&mut data, b"seal").unwrap();
        assert_eq!(zstd::decode_all(&data[..]).unwrap(), b"hello");
        let mut rest = &data[9 + 3 + 5..];
        assert_eq!(read_skippable_last(&mut rest, 100).unwrap(), b"seal");
    }

    #[test]
    fn caps_are_enforced_before_allocation() {
        let mut frame = Vec::new();
        write_raw(&mut frame, &[1u8; 1000]).unwrap();
        assert!(matches!(read_raw(&mut &frame[..], 999), Err(FrameError::Oversize(1000))));
    }
}
