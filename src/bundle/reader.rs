//! Reads a volume, trusting nothing in it.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read, Write};

use crate::bundle::writer::padding;
use crate::bundle::{BLOB_PREFIX, BLOCK, MANIFEST_MEMBER, WINDOW_LOG, member_header};
use crate::error::{Error, Rejection, Result};
use crate::id::ContentId;
use crate::manifest::MAX_MANIFEST_BYTES;

/// Largest signature envelope accepted: the manifest cap plus room for signatures.
pub const MAX_ENVELOPE_BYTES: u64 = MAX_MANIFEST_BYTES + (1 << 20);

/// The zstd frame header the writer produces: magic, a frame header
/// descriptor with only the checksum flag, and the window descriptor of
/// `WINDOW_LOG`. Any other header is another encoding of the same data,
/// which we do not accept.
const FRAME_HEADER: [u8; 6] = [0x28, 0xb5, 0x2f, 0xfd, 0x04, ((WINDOW_LOG - 10) << 3) as u8];

type Raw<R> = BufReader<Chain<Cursor<[u8; 6]>, MediaReader<R>>>;

/// A streaming, strict volume reader.
pub struct VolumeReader<R: Read> {
    decoder: zstd::stream::read::Decoder<'static, Raw<R>>,
    name: String,
}

/// What a member header announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Blob {
        id: ContentId,
        size: u64,
    },
    /// The end-of-archive marker was read and nothing follows it.
    End,
}

impl<R: Read> VolumeReader<R> {
    /// Checks the frame header and sets up decompression. `name` is used in errors.
    pub fn new(raw: R, name: &str) -> Result<Self> {
        let mut raw = MediaReader(raw);
        let mut head = [0u8; 6];
        read_full(&mut raw, &mut head).map_err(|e| classify(name, &e))?;
        if head != FRAME_HEADER {
            return Err(Error::rejected(
                name,
                Rejection::Malformed("not an airlock volume (unexpected zstd frame header)".into()),
            ));
        }
        let chained = BufReader::with_capacity(1 << 16, Cursor::new(head).chain(raw));
        let mut decoder = zstd::stream::read::Decoder::with_buffer(chained)
            .map_err(|e| Error::io(std::path::Path::new(name), e))?
            .single_frame();
        decoder.window_log_max(WINDOW_LOG).map_err(|e| Error::io(std::path::Path::new(name), e))?;
        Ok(VolumeReader { decoder, name: name.to_owned() })
    }

    fn reject(&self, rejection: Rejection) -> Error {
        Error::rejected(&self.name, rejection)
    }

    /// Reads the first member, which must be the signed manifest.
    pub fn read_manifest(&mut self) -> Result<Vec<u8>> {
        let (name, size) =
            self.read_header()?.ok_or_else(|| self.reject(Rejection::Malformed("the volume is empty".into())))?;
        if name != MANIFEST_MEMBER {
            return Err(
                self.reject(Rejection::UnexpectedMember(format!("{name:?} where {MANIFEST_MEMBER} must come first")))
            );
        }
        if size > MAX_ENVELOPE_BYTES {
            return Err(self.reject(Rejection::Oversize(format!(
                "the manifest declares {size} bytes, more than the {MAX_ENVELOPE_BYTES}-byte cap"
            ))));
        }
        let mut envelope = Vec::new();
        self.copy_member(size, &mut envelope).map_err(|e| e.into_error(&self.name))?;
        Ok(envelope)
    }

    /// Reads the next member header. Blob members come back with their id;
    /// the end marker is checked completely (two zero blocks, then the end of
    /// the zstd frame, then the end of the file).
    pub fn next_member(&mut self) -> Result<Member> {
        let Some((name, size)) = self.read_header()? else {
            self.finish()?;
            return Ok(Member::End);
        };
        let id = name
            .strip_prefix(BLOB_PREFIX)
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .and_then(ContentId::from_hex);
        match id {
            Some(id) => Ok(Member::Blob { id, size }),
            None => Err(self.reject(Rejection::UnexpectedMember(format!("{name:?}")))),
        }
    }

    /// Streams the current member's `size` bytes into `out` and checks its padding.
    pub fn copy_member(&mut self, size: u64, out: &mut dyn Write) -> Result<(), CopyError> {
        let copied = io::copy(&mut (&mut self.decoder).take(size), &mut WriteSide(out)).map_err(CopyError::from_io)?;
        if copied != size {
            return Err(CopyError::Volume(Rejection::Truncated(format!(
                "a member ends after {copied} of {size} bytes"
            ))));
        }
        let pad = padding(size) as usize;
        let mut zeros = [0u8; BLOCK];
        read_full(&mut self.decoder, &mut zeros[..pad]).map_err(CopyError::from_io)?;
        if zeros[..pad].iter().any(|b| *b != 0) {
            return Err(CopyError::Volume(Rejection::Malformed("non-zero padding after a member".into())));
        }
        Ok(())
    }

    /// Reads one header block: `None` for the first end-of-archive block,
    /// otherwise the member's name and size after checking that the block is
    /// exactly what the writer emits for them.
    fn read_header(&mut self) -> Result<Option<(String, u64)>> {
        let mut block = [0u8; BLOCK];
        read_full(&mut self.decoder, &mut block).map_err(|e| classify(&self.name, &e))?;
        if block.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let header = tar::Header::from_byte_slice(&block);
        let name_bytes = &block[..100];
        let end = name_bytes.iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
        let size = header
            .size()
            .map_err(|_| self.reject(Rejection::Malformed(format!("member {name:?} has an unreadable size"))))?;
        let valid_name = name == MANIFEST_MEMBER || name.starts_with(BLOB_PREFIX);
        if !valid_name || member_header(&name, size).as_bytes()[..] != block[..] {
            let kind = header.entry_type();
            let what = if kind.is_file() {
                "a member with an unexpected header"
            } else {
                "a link, device or other non-file member"
            };
            return Err(self.reject(Rejection::UnexpectedMember(format!("{name:?} ({what})"))));
        }
        Ok(Some((name, size)))
    }

    /// After the first zero block: the second, then nothing at all.
    fn finish(&mut self) -> Result<()> {
        let mut block = [0u8; BLOCK];
        read_full(&mut self.decoder, &mut block).map_err(|e| classify(&self.name, &e))?;
        if block.iter().any(|b| *b != 0) {
            return Err(self.reject(Rejection::Malformed("damaged end-of-archive marker".into())));
        }
        let mut probe = [0u8; 1];
        match self.decoder.read(&mut probe) {
            Ok(0) => {}
            Ok(_) => return Err(self.reject(Rejection::Malformed("data after the end-of-archive marker".into()))),
            Err(e) => return Err(classify(&self.name, &e)),
        }
        let raw = self.decoder.get_mut();
        match raw.fill_buf() {
            Ok([]) => Ok(()),
            Ok(_) => Err(self.reject(Rejection::Malformed("data after the end of the compressed stream".into()))),
            Err(e) => Err(classify(&self.name, &e)),
        }
    }
}

/// Failure while copying a member out: the volume's fault, or the destination's.
#[derive(Debug)]
pub enum CopyError {
    Volume(Rejection),
    Media(io::Error),
    Destination(io::Error),
}

impl CopyError {
    fn from_io(e: io::Error) -> Self {
        if e.get_ref().is_some_and(
            <dyn std::error::Error + std::marker::Send + std::marker::Sync + 'static>::is::<DestinationError>,
        ) {
            let inner = e.into_inner().and_then(|b| b.downcast::<DestinationError>().ok());
            return CopyError::Destination(inner.map_or_else(|| io::Error::other("write failed"), |d| d.0));
        }
        match rejection_or_media(e) {
            Ok(rejection) => CopyError::Volume(rejection),
            Err(media) => CopyError::Media(media),
        }
    }

    /// Converts to the library error, naming the volume.
    #[must_use]
    pub fn into_error(self, volume: &str) -> Error {
        match self {
            CopyError::Volume(r) => Error::rejected(volume, r),
            CopyError::Media(e) | CopyError::Destination(e) => Error::io(std::path::Path::new(volume), e),
        }
    }
}

/// Marks errors from the medium so they are not mistaken for bad data.
struct MediaReader<R>(R);

#[derive(Debug)]
struct MediaError(io::Error);

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for MediaError {}

impl<R: Read> Read for MediaReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| io::Error::other(MediaError(e)))
    }
}

/// Marks errors of the destination a member is copied into.
struct WriteSide<'a>(&'a mut dyn Write);

#[derive(Debug)]
struct DestinationError(io::Error);

impl std::fmt::Display for DestinationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for DestinationError {}

impl Write for WriteSide<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(|e| io::Error::other(DestinationError(e)))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(|e| io::Error::other(DestinationError(e)))
    }
}

/// A read error is either the medium failing (kept as I/O) or the data
/// being bad (a rejection).
fn rejection_or_media(e: io::Error) -> Result<Rejection, io::Error> {
    if e.get_ref()
        .is_some_and(<dyn std::error::Error + std::marker::Send + std::marker::Sync + 'static>::is::<MediaError>)
    {
        let inner = e.into_inner().and_then(|b| b.downcast::<MediaError>().ok());
        return Err(inner.map_or_else(|| io::Error::other("read failed"), |m| m.0));
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Ok(Rejection::Truncated("the stream ends early".into()));
    }
    Ok(Rejection::Malformed(format!("compressed stream is damaged ({e})")))
}

fn classify(name: &str, e: &io::Error) -> Error {
    let copy = io::Error::new(e.kind(), e.to_string());
    let is_media = e
        .get_ref()
        .is_some_and(<dyn std::error::Error + std::marker::Send + std::marker::Sync + 'static>::is::<MediaError>);
    if is_media {
        return Error::io(std::path::Path::new(name), copy);
    }
    match rejection_or_media(copy) {
        Ok(r) => Error::rejected(name, r),
        Err(m) => Error::io(std::path::Path::new(name), m),
    }
}

/// Fills `buf` completely or fails with `UnexpectedEof`.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    reader.read_exact(buf)
}
