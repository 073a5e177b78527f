//! The segments a bundle's frame 1 carries, as the exporter writes them and
//! the reader takes them off the volume: spooled (held up to 1 MiB, beyond
//! that in an unnamed temporary file in `TMPDIR`) with their length and
//! BLAKE3, so that bytes up to the manifest cap are never held whole.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::id::ContentId;
use crate::sort::{Spool, SpooledBytes};

/// Bytes held in memory before the rest goes to a temporary file.
const HELD_BYTES: usize = 1 << 20;

/// The carried segments' bytes, read back a piece at a time.
#[derive(Debug, Clone)]
pub struct CarriedBytes {
    bytes: Arc<SpooledBytes>,
    len: u64,
    id: ContentId,
}

impl CarriedBytes {
    /// Bytes already in memory (tests, and tools that take a frame apart).
    #[must_use]
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let (len, id) = (bytes.len() as u64, ContentId::of(&bytes));
        CarriedBytes { bytes: Arc::new(SpooledBytes::Held(bytes)), len, id }
    }

    /// How many bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Their BLAKE3, taken as they were written.
    #[must_use]
    pub fn id(&self) -> ContentId {
        self.id
    }

    /// The `len` bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        self.bytes.read_at(offset, len)
    }

    /// Every byte, in order, a piece at a time.
    #[must_use]
    pub fn reader(&self) -> CarriedReader<'_> {
        CarriedReader { bytes: self, at: 0 }
    }

    /// Every byte in one vector: for tests and tools that take a frame
    /// apart, never for a bundle being verified.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        self.reader().read_to_end(&mut all)?;
        Ok(all)
    }
}

impl PartialEq for CarriedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.id == other.id
    }
}

impl Eq for CarriedBytes {}

/// Reads [`CarriedBytes`] from the start, 64 KiB at a time at most.
pub struct CarriedReader<'a> {
    bytes: &'a CarriedBytes,
    at: u64,
}

impl Read for CarriedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.bytes.len - self.at).min(buf.len() as u64).min(64 << 10);
        if n == 0 {
            return Ok(0);
        }
        let piece = self.bytes.read_at(self.at, n)?;
        buf[..piece.len()].copy_from_slice(&piece);
        self.at += n;
        Ok(piece.len())
    }
}

/// Writes [`CarriedBytes`]: spooled and hashed as they come.
#[derive(Debug)]
pub struct CarriedWriter {
    spool: Spool,
    hasher: blake3::Hasher,
}

impl Default for CarriedWriter {
    fn default() -> Self {
        CarriedWriter { spool: Spool::new(HELD_BYTES), hasher: blake3::Hasher::new() }
    }
}

impl CarriedWriter {
    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.spool.len()
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spool.is_empty()
    }

    /// Why a write failed, if one did (the temporary file's error).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.spool.take_error()
    }

    /// Everything written.
    pub fn finish(self) -> io::Result<CarriedBytes> {
        let len = self.spool.len();
        let id = ContentId(*self.hasher.finalize().as_bytes());
        Ok(CarriedBytes { bytes: Arc::new(self.spool.finish()?), len, id })
    }
}

impl Write for CarriedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.spool.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_what_is_held_read_back_the_same_from_the_file() {
        let bytes: Vec<u8> = (0..3 * HELD_BYTES + 77).map(|i| (i % 253) as u8).collect();
        let mut writer = CarriedWriter::default();
        for piece in bytes.chunks(100_003) {
            writer.write_all(piece).unwrap();
        }
        let carried = writer.finish().unwrap();
        assert!(matches!(*carried.bytes, SpooledBytes::File(_)), "past the budget, in a file");
        assert_eq!(carried, CarriedBytes::from_vec(bytes.clone()), "the same length and BLAKE3");
        assert_eq!(carried.to_vec().unwrap(), bytes);
        assert_eq!(&carried.read_at(HELD_BYTES as u64 - 3, 10).unwrap()[..], &bytes[HELD_BYTES - 3..HELD_BYTES + 7]);
        assert!(carried.read_at(bytes.len() as u64 - 3, 10).is_err(), "past the end");
    }
}
