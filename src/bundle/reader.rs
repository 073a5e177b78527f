//! Reads a volume, trusting nothing in it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::bundle::frame::{self, FrameError};
use crate::bundle::writer::BlobFrame;
use crate::bundle::{
    BLOB_PREFIX, BLOCK, MANIFEST_MEMBER, MAX_SEAL_BYTES, MAX_VOLUME_INFO_BYTES, PARITY_MEMBER, VOLUME_MEMBER,
    VolumeInfo, WINDOW_LOG, member_header, padding,
};
use crate::error::{Error, Rejection, Result};
use crate::id::ContentId;
use crate::manifest::{MAX_MANIFEST_BYTES, canonical};

/// Largest signature envelope accepted: the manifest cap plus room for signatures.
pub const MAX_ENVELOPE_BYTES: u64 = MAX_MANIFEST_BYTES + (1 << 20);

type Compressed<R> = HashingBufReader<BufReader<MediaReader<R>>>;

/// A streaming, strict volume reader.
pub struct VolumeReader<R: Read> {
    decoder: zstd::stream::read::Decoder<'static, Compressed<R>>,
    name: String,
}

/// What a member header announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Blob {
        id: ContentId,
        size: u64,
    },
    /// `volume.cbor`: which volume of a split set this is.
    Info {
        size: u64,
    },
    /// `parity.bin`: a parity volume's recovery bytes.
    Parity {
        size: u64,
    },
    /// The end-of-archive marker.
    End,
}

/// What follows the blobs: frame 2's digest as read, and the seal.
#[derive(Debug, Clone)]
pub struct Tail {
    pub frame: BlobFrame,
    pub seal: Vec<u8>,
}

impl<R: Read> VolumeReader<R> {
    /// Reads the manifest frame and returns the envelope it holds, with a
    /// reader positioned at the blob frame. `name` is used in errors.
    pub fn open(raw: R, name: &str) -> Result<(Self, Vec<u8>)> {
        let mut raw = MediaReader(raw);
        let mut envelope =
            frame::read_raw(&mut raw, MAX_ENVELOPE_BYTES + 2 * BLOCK as u64).map_err(|e| frame_error(name, e))?;
        let end = manifest_member(&envelope).map_err(|r| Error::rejected(name, r))?;
        // The envelope is up to the manifest cap: cut the member header and
        // padding off in place rather than copying it out.
        envelope.truncate(end);
        envelope.drain(..BLOCK);
        let compressed =
            HashingBufReader { inner: BufReader::with_capacity(1 << 16, raw), hasher: blake3::Hasher::new(), count: 0 };
        let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
            .map_err(|e| Error::io(Path::new(name), e))?
            .single_frame();
        decoder.window_log_max(WINDOW_LOG).map_err(|e| Error::io(Path::new(name), e))?;
        Ok((VolumeReader { decoder, name: name.to_owned() }, envelope))
    }

    fn reject(&self, rejection: Rejection) -> Error {
        Error::rejected(&self.name, rejection)
    }

    /// Reads the next member header: a blob with its id, or the end marker.
    pub fn next_member(&mut self) -> Result<Member> {
        let mut block = [0u8; BLOCK];
        self.decoder.read_exact(&mut block).map_err(|e| classify(&self.name, &e))?;
        if block.iter().all(|b| *b == 0) {
            return Ok(Member::End);
        }
        let (name, size) = parse_header(&block).map_err(|r| self.reject(r))?;
        match name.as_str() {
            VOLUME_MEMBER => return Ok(Member::Info { size }),
            PARITY_MEMBER => return Ok(Member::Parity { size }),
            _ => {}
        }
        let id = name
            .strip_prefix(BLOB_PREFIX)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .and_then(ContentId::from_hex);
        match id {
            Some(id) => Ok(Member::Blob { id, size }),
            None => Err(self.reject(Rejection::UnexpectedMember(format!("{name:?}")))),
        }
    }

    /// Streams the current member's `size` bytes into `out` and checks its padding.
    pub fn copy_member(&mut self, size: u64, out: &mut dyn Write) -> Result<(), CopyError> {
        let copied =
            io::copy(&mut (&mut self.decoder).take(size), &mut WriteSide(out)).map_err(|e| CopyError::from_io(&e))?;
        if copied != size {
            return Err(CopyError::Volume(Rejection::Truncated(format!(
                "a member ends after {copied} of {size} bytes"
            ))));
        }
        self.end_member(size).map_err(CopyError::Volume)
    }

    /// Reads the current `volume.cbor` member of `size` bytes.
    pub fn read_info(&mut self, size: u64) -> Result<VolumeInfo> {
        if size > MAX_VOLUME_INFO_BYTES {
            return Err(self.reject(Rejection::Oversize(format!("{VOLUME_MEMBER} declares {size} bytes"))));
        }
        let mut bytes = vec![0u8; size as usize];
        self.read_data(&mut bytes)?;
        self.end_member(size).map_err(|r| self.reject(r))?;
        canonical::from_slice(&bytes).map_err(|e| self.reject(Rejection::Malformed(format!("{VOLUME_MEMBER}: {e}"))))
    }

    /// Fills `buf` from the current member (the caller counts the member's bytes).
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<()> {
        self.decoder.read_exact(buf).map_err(|e| classify(&self.name, &e))
    }

    /// Checks the zero padding after a member of `size` bytes.
    pub fn end_member(&mut self, size: u64) -> Result<(), Rejection> {
        let pad = padding(size) as usize;
        let mut zeros = [0u8; BLOCK];
        self.decoder.read_exact(&mut zeros[..pad]).map_err(|e| data_rejection(&e))?;
        if zeros[..pad].iter().any(|b| *b != 0) {
            return Err(Rejection::Malformed("non-zero padding after a member".into()));
        }
        Ok(())
    }

    /// The name used in errors.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// After the first end-of-archive block: the second, the end of the
    /// blob frame, then the seal frame and nothing after it.
    pub fn finish(mut self) -> Result<Tail> {
        let mut block = [0u8; BLOCK];
        self.decoder.read_exact(&mut block).map_err(|e| classify(&self.name, &e))?;
        if block.iter().any(|b| *b != 0) {
            return Err(self.reject(Rejection::Malformed("damaged end-of-archive marker".into())));
        }
        match self.decoder.read(&mut [0u8; 1]) {
            Ok(0) => {}
            Ok(_) => return Err(self.reject(Rejection::Malformed("data after the end-of-archive marker".into()))),
            Err(e) => return Err(classify(&self.name, &e)),
        }
        let mut compressed = self.decoder.finish();
        let frame = BlobFrame { digest: ContentId(*compressed.hasher.finalize().as_bytes()), size: compressed.count };
        let seal = frame::read_skippable_last(&mut compressed.inner, MAX_SEAL_BYTES)
            .map_err(|e| frame_error(&self.name, e))?;
        Ok(Tail { frame, seal })
    }
}

/// Checks the manifest frame's content: the member header the writer
/// emits, the envelope, zero padding, nothing else. Returns where the
/// envelope ends (it starts after the header block).
fn manifest_member(member: &[u8]) -> Result<usize, Rejection> {
    let header: &[u8; BLOCK] = member
        .get(..BLOCK)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| Rejection::Truncated("the manifest frame is too short".into()))?;
    let (name, size) = parse_header(header)?;
    if name != MANIFEST_MEMBER {
        return Err(Rejection::UnexpectedMember(format!("{name:?} where {MANIFEST_MEMBER} must come first")));
    }
    if size > MAX_ENVELOPE_BYTES {
        return Err(Rejection::Oversize(format!(
            "the manifest declares {size} bytes, more than the {MAX_ENVELOPE_BYTES}-byte cap"
        )));
    }
    let end = BLOCK + size as usize;
    if member.len() as u64 != end as u64 + padding(size) || member[end..].iter().any(|b| *b != 0) {
        return Err(Rejection::Malformed("the manifest frame does not hold exactly the manifest member".into()));
    }
    Ok(end)
}

/// Parses one header block, accepting it only if it is exactly the header
/// the writer emits for that name and size (regular file, fixed mode, owner
/// and time): links, devices, long-name and pax records, absolute or `..`
/// names all fail here.
fn parse_header(block: &[u8; BLOCK]) -> Result<(String, u64), Rejection> {
    let header = tar::Header::from_byte_slice(block);
    let end = block[..100].iter().position(|b| *b == 0).unwrap_or(100);
    let name = String::from_utf8_lossy(&block[..end]).into_owned();
    let size = header.size().map_err(|_| Rejection::Malformed(format!("member {name:?} has an unreadable size")))?;
    let valid_name = [MANIFEST_MEMBER, VOLUME_MEMBER, PARITY_MEMBER].contains(&name.as_str())
        || name.starts_with(BLOB_PREFIX) && name.len() == BLOB_PREFIX.len() + 64;
    if !valid_name || member_header(&name, size).as_bytes()[..] != block[..] {
        let what = if header.entry_type().is_file() {
            "a member with an unexpected name or header"
        } else {
            "a link, device or other non-file member"
        };
        return Err(Rejection::UnexpectedMember(format!("{name:?} ({what})")));
    }
    Ok((name, size))
}

/// Failure while copying a member out: the volume's fault, the medium's, or the destination's.
#[derive(Debug)]
pub enum CopyError {
    Volume(Rejection),
    Media(io::Error),
    Destination(io::Error),
}

impl CopyError {
    fn from_io(e: &io::Error) -> Self {
        if let Some(dest) = take_marked::<DestinationError>(e) {
            return CopyError::Destination(dest);
        }
        if let Some(media) = take_marked::<MediaError>(e) {
            return CopyError::Media(media);
        }
        CopyError::Volume(data_rejection(e))
    }

    /// Converts to the library error, naming the volume.
    #[must_use]
    pub fn into_error(self, volume: &str) -> Error {
        match self {
            CopyError::Volume(r) => Error::rejected(volume, r),
            CopyError::Media(e) | CopyError::Destination(e) => Error::io(Path::new(volume), e),
        }
    }
}

/// An error from the medium or the destination, recognised again after
/// travelling through the zstd decoder and `io::copy`.
trait Marked: std::error::Error + Send + Sync + 'static {
    fn source_error(&self) -> &io::Error;
}

macro_rules! marked_error {
    ($name:ident) => {
        #[derive(Debug)]
        struct $name(io::Error);
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
        impl std::error::Error for $name {}
        impl Marked for $name {
            fn source_error(&self) -> &io::Error {
                &self.0
            }
        }
    };
}

marked_error!(MediaError);
marked_error!(DestinationError);

fn take_marked<M: Marked>(e: &io::Error) -> Option<io::Error> {
    let marked = e.get_ref()?.downcast_ref::<M>()?;
    let inner = marked.source_error();
    Some(io::Error::new(inner.kind(), inner.to_string()))
}

/// Marks errors from the medium so they are not mistaken for bad data.
struct MediaReader<R>(R);

impl<R: Read> Read for MediaReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| io::Error::other(MediaError(e)))
    }
}

/// Marks errors of the destination a member is copied into.
struct WriteSide<'a>(&'a mut dyn Write);

impl Write for WriteSide<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(|e| io::Error::other(DestinationError(e)))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(|e| io::Error::other(DestinationError(e)))
    }
}

/// Hashes exactly the compressed bytes the decoder consumes.
struct HashingBufReader<B> {
    inner: B,
    hasher: blake3::Hasher,
    count: u64,
}

impl<B: BufRead> Read for HashingBufReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for HashingBufReader<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are still in the buffer: fill_buf returns
        // them again without reading.
        if let Ok(buf) = self.inner.fill_buf() {
            self.hasher.update(&buf[..amt.min(buf.len())]);
        }
        self.count += amt as u64;
        self.inner.consume(amt);
    }
}

fn data_rejection(e: &io::Error) -> Rejection {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Rejection::Truncated("the stream ends early".into())
    } else {
        Rejection::Malformed(format!("compressed stream is damaged ({e})"))
    }
}

fn classify(name: &str, e: &io::Error) -> Error {
    match take_marked::<MediaError>(e) {
        Some(media) => Error::io(Path::new(name), media),
        None => Error::rejected(name, data_rejection(e)),
    }
}

fn frame_error(name: &str, e: FrameError) -> Error {
    match e {
        FrameError::Malformed(m) => Error::rejected(name, Rejection::Malformed(m)),
        FrameError::Oversize(size) => {
            Error::rejected(name, Rejection::Oversize(format!("a frame declares {size} bytes, more than the cap")))
        }
        FrameError::Io(e) => classify(name, &e),
    }
}
