//! Writes a volume.

use std::io::{self, Read, Write};

use crate::bundle::{BLOCK, MANIFEST_MEMBER, WINDOW_LOG, blob_member, member_header};
use crate::id::ContentId;

/// zstd level: 3 is zstd's default and what the hand-rolled baseline uses.
pub const LEVEL: i32 = 3;

/// Streams a volume into `W`.
pub struct VolumeWriter<W: Write> {
    out: zstd::stream::write::Encoder<'static, W>,
}

/// A blob's bytes were not what the manifest says (the source changed while exporting).
#[derive(Debug)]
pub enum BlobWriteError {
    Io(io::Error),
    Changed { expected: ContentId, size: u64 },
}

impl From<io::Error> for BlobWriteError {
    fn from(e: io::Error) -> Self {
        BlobWriteError::Io(e)
    }
}

impl<W: Write> VolumeWriter<W> {
    /// Starts a volume, compressing on `threads` worker threads (0: inline).
    pub fn new(out: W, threads: u32) -> io::Result<Self> {
        let mut out = zstd::stream::write::Encoder::new(out, LEVEL)?;
        out.include_checksum(true)?;
        out.include_contentsize(false)?;
        out.window_log(WINDOW_LOG)?;
        if threads > 0 {
            out.multithread(threads)?;
        }
        Ok(VolumeWriter { out })
    }

    /// Writes the signed manifest, which must come first.
    pub fn write_manifest(&mut self, envelope: &[u8]) -> io::Result<()> {
        self.member(MANIFEST_MEMBER, envelope.len() as u64, &mut &envelope[..])?;
        Ok(())
    }

    /// Copies exactly `size` bytes from `data` as blob `id`, hashing them on
    /// the way; fails if the bytes are not the ones the manifest names.
    pub fn write_blob(&mut self, id: &ContentId, size: u64, data: impl Read) -> Result<(), BlobWriteError> {
        let mut hashing = HashingReader { inner: data.take(size), hasher: blake3::Hasher::new(), count: 0 };
        let written = self.member(&blob_member(id), size, &mut hashing)?;
        let mut probe = [0u8; 1];
        let grew = hashing.inner.into_inner().read(&mut probe)? != 0;
        if written != size || grew || ContentId(*hashing.hasher.finalize().as_bytes()) != *id {
            return Err(BlobWriteError::Changed { expected: *id, size });
        }
        Ok(())
    }

    /// Writes a header, the data (zero-filled if it runs short, so the
    /// archive stays well-formed until the caller aborts), and the padding.
    fn member(&mut self, name: &str, size: u64, data: &mut impl Read) -> io::Result<u64> {
        self.out.write_all(member_header(name, size).as_bytes())?;
        let copied = io::copy(data, &mut self.out)?;
        let short = size - copied;
        io::copy(&mut io::repeat(0).take(short + padding(size)), &mut self.out)?;
        Ok(copied)
    }

    /// Writes the end-of-archive blocks and the zstd epilogue.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.finish()
    }
}

/// Zero bytes after a member of `size` bytes up to the next block.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
