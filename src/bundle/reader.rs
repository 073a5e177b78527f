//! Reads a volume, trusting nothing in it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::bundle::frame::{self, FrameError};
use crate::bundle::writer::BlobFrame;
use crate::bundle::{
    BLOB_PREFIX, BLOCK, FrameSeen, MANIFEST_MEMBER, MAX_SEAL_BYTES, MAX_VOLUME_INFO_BYTES, ManifestFrame,
    PARITY_MEMBER, SEGMENTS_MEMBER, VOLUME_MEMBER, VolumeInfo, WINDOW_LOG, is_member_name, member_header, padding,
};
use crate::error::{Error, Rejection, Result};
use crate::id::ContentId;
use crate::manifest::carried::{CarriedBytes, CarriedWriter};
use crate::manifest::{MAX_MANIFEST_BYTES, canonical};

/// Largest signature envelope accepted: the manifest cap plus room for
/// signatures. In format 2 the envelope and the segments together.
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
    /// Reads the manifest frame and returns what it holds, with a reader
    /// positioned at the blob frame. `name` is used in errors.
    pub fn open(raw: R, name: &str) -> Result<(Self, ManifestFrame)> {
        let (reader, envelope) = VolumeReader::open_among(raw, name, &[])?;
        match envelope {
            Envelope::Read(frame) => Ok((reader, frame)),
            Envelope::Known(_) => unreachable!("no envelope was known"),
        }
    }

    /// [`VolumeReader::open`] for a volume whose manifest frame may be one
    /// of `known` (the other volumes of a set, read already): the frame is
    /// compared with it block by block (the segments by their BLAKE3), not
    /// read into a second buffer of up to the manifest cap.
    pub fn open_among(raw: R, name: &str, known: &[&FrameSeen]) -> Result<(Self, Envelope)> {
        let mut raw = MediaReader(raw);
        let envelope = read_manifest_frame(&mut raw, known).map_err(|e| frame_error(name, e))?;
        let envelope = match envelope {
            Content::Read(parts) => Envelope::Read(parts.finish().map_err(|f| f.into_error(name))?),
            Content::Known(k) => Envelope::Known(k),
        };
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

/// The envelope of a volume's manifest frame.
#[derive(Debug)]
pub enum Envelope {
    /// Byte for byte the `known` frame of this index.
    Known(usize),
    /// Another frame, as read.
    Read(ManifestFrame),
}

/// Frame 1's content: the same as a known frame's, or as read.
enum Content {
    Known(usize),
    /// Boxed: its hasher is two KiB.
    Read(Box<FrameParts>),
}

/// A volume whose envelope is a known one's but whose segments are not the
/// ones it names: it can only be damaged.
const OTHER_SEGMENTS: &str = "its manifest segments are not those of the volume read before it, under the same signed root: this volume is damaged";

/// Reads frame 1. While its bytes are those of the frame a `known` one
/// makes (member headers, envelope, zero padding; the segments hashed)
/// they are only compared; once no known one matches, the content is kept:
/// the part compared so far is that frame's, so it is rebuilt from it —
/// unless the difference is past the envelope, in the segments the same
/// signed root names, which is damage, refused.
fn read_manifest_frame(raw: &mut impl Read, known: &[&FrameSeen]) -> Result<Content, FrameError> {
    let mut blocks = frame::RawBlocks::start(raw, MAX_ENVELOPE_BYTES + 4 * BLOCK as u64)?;
    let frames: Vec<KnownFrame> = known.iter().map(|f| KnownFrame::new(f)).collect();
    let mut hashers: Vec<blake3::Hasher> = frames.iter().map(|_| blake3::Hasher::new()).collect();
    let mut candidates: Vec<usize> = (0..frames.len()).filter(|k| frames[*k].len == blocks.size()).collect();
    let mut block = Vec::with_capacity(128 << 10);
    let mut offset = 0;
    while !candidates.is_empty() {
        block.clear();
        if !blocks.next_into(raw, &mut block)? {
            // Every byte but the segments compared: their BLAKE3 decides.
            return candidates
                .iter()
                .find(|k| frames[**k].segments_match(&hashers[**k]))
                .map(|k| Content::Known(*k))
                .ok_or_else(|| FrameError::Malformed(OTHER_SEGMENTS.into()));
        }
        let last = candidates[0];
        candidates.retain(|k| {
            frames[*k].matches(offset, &block, &mut |got| {
                hashers[*k].update(got);
            })
        });
        if candidates.is_empty() {
            let mut parts = FrameParts::default();
            if !frames[last].prefix(offset, &mut |bytes| parts.push(bytes)) {
                return Err(FrameError::Malformed(OTHER_SEGMENTS.into()));
            }
            parts.push(&block);
            return read_rest(raw, &mut blocks, parts, block).map(|parts| Content::Read(Box::new(parts)));
        }
        offset += block.len();
    }
    read_rest(raw, &mut blocks, FrameParts::default(), block).map(|parts| Content::Read(Box::new(parts)))
}

/// The rest of frame 1 taken apart into `parts`, a block at a time.
fn read_rest(
    raw: &mut impl Read,
    blocks: &mut frame::RawBlocks,
    mut parts: FrameParts,
    mut block: Vec<u8>,
) -> Result<FrameParts, FrameError> {
    loop {
        block.clear();
        if !blocks.next_into(raw, &mut block)? {
            return Ok(parts);
        }
        parts.push(&block);
    }
}

/// Reads frame 1 of a volume again, which must be the `known` one this run
/// read before, and writes its segments' bytes to `out` as they come, a
/// block at a time: the frame is not held. What `out` is given is compared
/// with the known segments only at the end (by their BLAKE3), so `out`
/// must check what it keeps itself (each segment against the signed root).
/// A frame that is not the known one is "changed while it was read".
pub fn stream_known_segments(raw: impl Read, known: &FrameSeen, name: &str, out: &mut dyn Write) -> Result<()> {
    let mut raw = MediaReader(raw);
    let frame = KnownFrame::new(known);
    let changed = || Error::Usage(format!("{name}: changed while it was read; run the command again"));
    let mut blocks =
        frame::RawBlocks::start(&mut raw, MAX_ENVELOPE_BYTES + 4 * BLOCK as u64).map_err(|e| frame_error(name, e))?;
    if blocks.size() != frame.len {
        return Err(changed());
    }
    let (mut hasher, mut failed) = (blake3::Hasher::new(), None);
    let mut block = Vec::with_capacity(128 << 10);
    let mut offset = 0;
    while blocks.next_into(&mut raw, &mut block).map_err(|e| frame_error(name, e))? {
        let same = frame.matches(offset, &block, &mut |got| {
            hasher.update(got);
            if failed.is_none() {
                failed = out.write_all(got).err();
            }
        });
        if let Some(e) = failed {
            return Err(Error::io(Path::new(name), e));
        }
        if !same {
            return Err(changed());
        }
        offset += block.len();
        block.clear();
    }
    if !frame.segments_match(&hasher) {
        return Err(changed());
    }
    Ok(())
}

/// The content of the manifest frame a known one is written in, without
/// making it: its parts in order.
struct KnownFrame<'a> {
    parts: Vec<Part<'a>>,
    len: usize,
    /// The segments' BLAKE3, which their bytes hashed as read must give.
    segments: Option<ContentId>,
}

enum Part<'a> {
    Header(Box<[u8; BLOCK]>),
    Bytes(&'a [u8]),
    /// The segments: not held, hashed.
    Hashed(usize),
    Zeros(usize),
}

impl Part<'_> {
    fn len(&self) -> usize {
        match self {
            Part::Header(_) => BLOCK,
            Part::Bytes(b) => b.len(),
            Part::Hashed(n) | Part::Zeros(n) => *n,
        }
    }
}

/// The header block the writer emits for member `name` of `len` bytes.
fn header_part(name: &str, len: u64) -> Part<'static> {
    let mut header = Box::new([0u8; BLOCK]);
    let expected = member_header(name, len).expect("the manifest members' names are valid");
    header.copy_from_slice(expected.as_bytes());
    Part::Header(header)
}

impl<'a> KnownFrame<'a> {
    fn new(frame: &'a FrameSeen) -> Self {
        let envelope = frame.envelope.as_slice();
        let mut parts = vec![
            header_part(MANIFEST_MEMBER, envelope.len() as u64),
            Part::Bytes(envelope),
            Part::Zeros(padding(envelope.len() as u64) as usize),
        ];
        if let Some((len, _)) = frame.segments {
            // Within the frame cap, which fits in memory: no truncation.
            let n = usize::try_from(len).unwrap_or(usize::MAX);
            parts.extend([header_part(SEGMENTS_MEMBER, len), Part::Hashed(n), Part::Zeros(padding(len) as usize)]);
        }
        let len = parts.iter().map(Part::len).fold(0usize, usize::saturating_add);
        KnownFrame { parts, len, segments: frame.segments.map(|(_, id)| id) }
    }

    /// Whether the segments hashed into `hasher` are the known ones.
    fn segments_match(&self, hasher: &blake3::Hasher) -> bool {
        self.segments.is_none_or(|id| ContentId(*hasher.finalize().as_bytes()) == id)
    }

    /// Each part with where it starts, clipped to `range`: (start, part).
    fn overlapping(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = (usize, &Part<'a>)> {
        self.parts
            .iter()
            .scan(0usize, |at, part| {
                let start = *at;
                *at += part.len();
                Some((start, part))
            })
            .filter(move |(start, part)| *start < range.end && start + part.len() > range.start)
    }

    /// Whether `chunk` is the content from `offset` on (its segment bytes
    /// go to `hashed`, judged at the end).
    fn matches(&self, offset: usize, chunk: &[u8], hashed: &mut dyn FnMut(&[u8])) -> bool {
        let end = offset + chunk.len();
        self.overlapping(offset..end).all(|(start, part)| {
            let from = offset.max(start);
            let to = end.min(start + part.len());
            let got = &chunk[from - offset..to - offset];
            match part {
                Part::Header(h) => h[from - start..to - start] == *got,
                Part::Bytes(b) => b[from - start..to - start] == *got,
                Part::Hashed(_) => {
                    hashed(got);
                    true
                }
                Part::Zeros(_) => got.iter().all(|b| *b == 0),
            }
        })
    }

    /// Gives the first `len` bytes of the content to `out`; `false` when
    /// they reach into the segments, which are not held.
    fn prefix(&self, len: usize, out: &mut dyn FnMut(&[u8])) -> bool {
        for (start, part) in self.overlapping(0..len) {
            let to = len.min(start + part.len()) - start;
            match part {
                Part::Header(h) => out(&h[..to]),
                Part::Bytes(b) => out(&b[..to]),
                Part::Hashed(_) => return false,
                // Padding: less than a block.
                Part::Zeros(_) => out(&[0u8; BLOCK][..to]),
            }
        }
        true
    }
}

/// Frame 1's content taken apart as it is read: `manifest.cose` whole
/// (the envelope: the small signed root in format 2), then, in format 2,
/// the `manifest.segments` member's bytes spooled with their BLAKE3
/// ([`CarriedWriter`]: a temporary file beyond 1 MiB), so that the
/// segments, up to the manifest cap, are never held. Each member has the
/// header the writer emits and zero padding, and nothing else follows.
/// The first thing wrong is kept and the rest of the frame still read, so
/// that the frame's own damage, found by the caller, is the one reported.
#[derive(Default)]
struct FrameParts {
    /// The envelope member with its padding, then the segments' header block.
    head: Vec<u8>,
    /// The envelope's size, once its header is read.
    envelope: Option<u64>,
    segments: Option<SegmentsPart>,
    failed: Option<Fault>,
}

/// Why frame 1 was not taken apart: the volume's fault, or the temporary
/// file's that its segments go to (this machine's).
#[derive(Debug)]
enum Fault {
    Rejected(Rejection),
    Spool(io::Error),
}

impl From<Rejection> for Fault {
    fn from(r: Rejection) -> Self {
        Fault::Rejected(r)
    }
}

impl Fault {
    fn into_error(self, name: &str) -> Error {
        match self {
            Fault::Rejected(r) => Error::rejected(name, r),
            Fault::Spool(e) => Error::io(&std::env::temp_dir(), e),
        }
    }
}

/// The segments member as it comes: its declared size, the bytes seen of
/// it and its padding, and where its data goes.
struct SegmentsPart {
    size: u64,
    seen: u64,
    data: CarriedWriter,
}

impl FrameParts {
    /// Takes the next bytes of the frame.
    fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.failed = self.take(bytes).err();
        }
    }

    fn take(&mut self, mut bytes: &[u8]) -> Result<(), Fault> {
        while !bytes.is_empty() {
            if let Some(segments) = &mut self.segments {
                return segments.take(bytes);
            }
            let wanted = self.head_len() - self.head.len();
            let n = wanted.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if n == wanted {
                self.advance()?;
            }
        }
        Ok(())
    }

    /// How much of the frame `head` holds: the envelope's header, then
    /// up to the segments' header included.
    fn head_len(&self) -> usize {
        self.envelope.map_or(BLOCK, |size| envelope_end(size) + BLOCK)
    }

    /// `head` is complete up to [`FrameParts::head_len`]: reads the header it ends with.
    fn advance(&mut self) -> Result<(), Rejection> {
        let Some(size) = self.envelope else {
            self.envelope = Some(member_size(&self.head, 0, MANIFEST_MEMBER)?);
            return Ok(());
        };
        check_padding(&self.head, size, MANIFEST_MEMBER)?;
        let size = member_size(&self.head, envelope_end(size), SEGMENTS_MEMBER)?;
        self.segments = Some(SegmentsPart { size, seen: 0, data: CarriedWriter::default() });
        Ok(())
    }

    /// The frame as read, or why it is not one.
    fn finish(self) -> Result<ManifestFrame, Fault> {
        let rejected = Fault::Rejected;
        if let Some(failed) = self.failed {
            return Err(failed);
        }
        let Some(size) = self.envelope else {
            return Err(rejected(Rejection::Truncated("the manifest frame is too short".into())));
        };
        let (mut head, end) = (self.head, envelope_end(size));
        if head.len() < end {
            return Err(rejected(Rejection::Truncated(format!("the manifest frame ends inside {MANIFEST_MEMBER}"))));
        }
        check_padding(&head, size, MANIFEST_MEMBER)?;
        let segments = match self.segments {
            Some(segments) => Some(segments.finish()?),
            // Format 1: the frame ends with the envelope's padding.
            None if head.len() == end => None,
            None => return Err(rejected(Rejection::Truncated("the manifest frame is too short".into()))),
        };
        // The envelope (up to the manifest cap in format 1) is cut out in place rather than copied.
        head.truncate(BLOCK + size as usize);
        head.drain(..BLOCK);
        Ok(ManifestFrame { envelope: head, segments })
    }
}

impl SegmentsPart {
    /// Takes the next bytes: the member's data, then its zero padding, then nothing.
    fn take(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        let data = usize::try_from(self.size.saturating_sub(self.seen)).unwrap_or(usize::MAX).min(bytes.len());
        self.data.write_all(&bytes[..data]).map_err(Fault::Spool)?;
        let rest = &bytes[data..];
        let pad_left = (self.size + padding(self.size)).saturating_sub(self.seen + data as u64);
        self.seen += bytes.len() as u64;
        if rest.len() as u64 > pad_left {
            return Err(Fault::Rejected(Rejection::Malformed(format!(
                "the manifest frame does not hold exactly its members: data follows {SEGMENTS_MEMBER}"
            ))));
        }
        if rest.iter().any(|b| *b != 0) {
            return Err(Fault::Rejected(Rejection::Malformed(format!(
                "the manifest frame does not hold exactly its members: data follows {SEGMENTS_MEMBER} where its zero padding belongs"
            ))));
        }
        Ok(())
    }

    fn finish(self) -> Result<CarriedBytes, Fault> {
        if self.seen < self.size + padding(self.size) {
            let ends = format!("the manifest frame ends inside {SEGMENTS_MEMBER}");
            return Err(Fault::Rejected(Rejection::Truncated(ends)));
        }
        self.data.finish().map_err(Fault::Spool)
    }
}

/// Where the envelope member, header and padding included, ends in frame 1.
fn envelope_end(size: u64) -> usize {
    // Within the envelope cap, checked when its header was read.
    BLOCK + size as usize + padding(size) as usize
}

/// The size the header at `at` in `head` gives member `name`, which must be
/// the member found there (the envelope first, the segments after it),
/// within the envelope cap.
fn member_size(head: &[u8], at: usize, name: &str) -> Result<u64, Rejection> {
    let header: &[u8; BLOCK] = head[at..at + BLOCK].try_into().expect("a whole block");
    let (found, size) = parse_header(header)?;
    if found != name {
        let place = if at == 0 { "must come first" } else { "must follow it" };
        return Err(Rejection::UnexpectedMember(format!("{found:?} where {name} {place}")));
    }
    if size > MAX_ENVELOPE_BYTES {
        let what = if name == MANIFEST_MEMBER { "the manifest" } else { "the manifest's segments" };
        return Err(Rejection::Oversize(format!(
            "{what} declares {size} bytes, more than the {MAX_ENVELOPE_BYTES}-byte cap"
        )));
    }
    Ok(size)
}

/// The envelope member of `size` bytes is followed by zero padding in `head`.
fn check_padding(head: &[u8], size: u64, name: &str) -> Result<(), Rejection> {
    let pad = &head[BLOCK + size as usize..envelope_end(size)];
    if pad.iter().any(|b| *b != 0) {
        return Err(Rejection::Malformed(format!(
            "the manifest frame does not hold exactly its members: data follows {name} where its zero padding belongs"
        )));
    }
    Ok(())
}

/// Parses one header block, accepting it only if it is exactly the header
/// the writer emits for that name and size (regular file, fixed mode, owner
/// and time): links, devices, long-name and pax records, absolute or `..`
/// names all fail here. The name is checked against the names the writer
/// uses before anything is built from it.
fn parse_header(block: &[u8; BLOCK]) -> Result<(String, u64), Rejection> {
    let header = tar::Header::from_byte_slice(block);
    let end = block[..100].iter().position(|b| *b == 0).unwrap_or(100);
    let name = String::from_utf8_lossy(&block[..end]).into_owned();
    let unexpected = || {
        let what = if header.entry_type().is_file() {
            "a member with an unexpected name or header"
        } else {
            "a link, device or other non-file member"
        };
        Rejection::UnexpectedMember(format!("{name:?} ({what})"))
    };
    if !is_member_name(&name) {
        return Err(unexpected());
    }
    let size = header.size().map_err(|_| Rejection::Malformed(format!("member {name:?} has an unreadable size")))?;
    match member_header(&name, size) {
        Some(expected) if expected.as_bytes()[..] == block[..] => Ok((name, size)),
        _ => Err(unexpected()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::writer::write_manifest_frame;

    fn frame(envelope: &[u8], segments: Option<&[u8]>) -> ManifestFrame {
        ManifestFrame { envelope: envelope.to_vec(), segments: segments.map(|s| CarriedBytes::from_vec(s.to_vec())) }
    }

    fn split(content: &[u8]) -> Result<ManifestFrame, Fault> {
        let mut parts = FrameParts::default();
        parts.push(content);
        parts.finish()
    }

    fn volume(frame: &ManifestFrame) -> Vec<u8> {
        let mut out = Vec::new();
        write_manifest_frame(&mut out, frame).unwrap();
        // An empty blob frame: the reader only needs frame 1 here.
        out.extend(zstd::encode_all(&[0u8; 1024][..], 3).unwrap());
        out
    }

    fn read_among(volume: &[u8], known: &[&ManifestFrame]) -> Result<Envelope> {
        let seen: Vec<FrameSeen> = known.iter().map(|f| (*f).clone().seen()).collect();
        let seen: Vec<&FrameSeen> = seen.iter().collect();
        VolumeReader::open_among(volume, "v", &seen).map(|(_, envelope)| envelope)
    }

    fn read(volume: &[u8], known: &[&ManifestFrame]) -> Envelope {
        read_among(volume, known).unwrap()
    }

    #[test]
    fn a_known_frames_segments_stream_again_and_another_frame_is_changed() {
        let segments: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let known = frame(b"the envelope", Some(&segments));
        let seen = known.clone().seen();
        let mut out = Vec::new();
        stream_known_segments(&volume(&known)[..], &seen, "v", &mut out).unwrap();
        assert_eq!(out, segments, "every byte, in order, across blocks");
        let mut other = segments.clone();
        other[200_000] ^= 1;
        for changed in [frame(b"the envelope", Some(&other)), frame(b"the envelopf", Some(&segments))] {
            let e = stream_known_segments(&volume(&changed)[..], &seen, "v", &mut Vec::new()).unwrap_err();
            assert!(e.to_string().contains("changed while it was read"), "{e}");
        }
    }

    #[test]
    fn segments_past_what_is_held_are_spooled_and_read_back_whole() {
        // Over the 1 MiB held in memory, over several raw blocks, with a tail that is not a whole block.
        let segments: Vec<u8> = (0..(3 << 20) + 777u32).map(|i| (i * 13 % 251) as u8).collect();
        let written = frame(b"a root", Some(&segments));
        let Envelope::Read(got) = read(&volume(&written), &[]) else { panic!("nothing was known") };
        assert_eq!(got.envelope, b"a root");
        let spooled = got.segments.expect("format 2");
        assert_eq!(spooled.id(), ContentId::of(&segments));
        assert_eq!(spooled.to_vec().unwrap(), segments, "every byte, in order");
    }

    #[test]
    fn a_known_frame_is_compared_and_any_other_read_whole() {
        // Over several raw blocks, so that differences fall in the first, a middle and the last.
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (envelope, segments) in
            [(&bytes[..], None), (&bytes[..1000], Some(&bytes[1000..])), (&bytes[..], Some(&[][..]))]
        {
            let known = frame(envelope, segments);
            let file = volume(&known);
            assert!(matches!(read(&file, &[&known]), Envelope::Known(0)));
            assert!(matches!(read(&file, &[&frame(b"other", None), &known]), Envelope::Known(1)));
            let len = envelope.len() + segments.map_or(0, <[u8]>::len);
            for at in [0, 1, 999, 1000, 131_000, 131_072 - 512, 200_000, len - 1] {
                let (mut other_envelope, mut other_segments) = (envelope.to_vec(), segments.map(<[u8]>::to_vec));
                let in_segments =
                    if let (Some(k), Some(segments)) = (at.checked_sub(envelope.len()), other_segments.as_mut()) {
                        segments[k] ^= 1;
                        true
                    } else {
                        other_envelope[at.min(envelope.len() - 1)] ^= 1;
                        false
                    };
                let other = frame(&other_envelope, other_segments.as_deref());
                // The same envelope (signed root) over other segments is damage, refused by name.
                if in_segments {
                    for (file, known) in [(&file, &other), (&volume(&other), &known)] {
                        let refused = read_among(file, &[known]).unwrap_err().to_string();
                        assert!(refused.contains("this volume is damaged"), "at {at}: {refused}");
                    }
                    continue;
                }
                let Envelope::Read(got) = read(&file, &[&other]) else { panic!("taken for the other at {at}") };
                assert_eq!(got, known, "at {at}");
                // And the other way round: the known one differs from what is read.
                let Envelope::Read(got) = read(&volume(&other), &[&known]) else { panic!("at {at}") };
                assert_eq!(got, other, "at {at}");
            }
            let shorter = frame(&envelope[1..], segments);
            let Envelope::Read(got) = read(&file, &[&shorter]) else { panic!("another length matched") };
            assert_eq!(got, known);
            let Envelope::Read(got) = read(&file, &[]) else { panic!("nothing was known") };
            assert_eq!(got, known);
        }
    }

    #[test]
    fn a_frame_like_a_known_one_but_with_other_padding_is_refused() {
        let known = frame(&[9u8; 1000], None);
        let mut bytes = volume(&known);
        // The last byte of the padding: frame header 9 + block header 3 + member header 512 + 1000.
        bytes[9 + 3 + 512 + 1000 + 5] = 1;
        assert!(read_among(&bytes[..], &[&known]).is_err());
        // After the segments too, whose bytes are not held: refused as damage.
        let known = frame(&[9u8; 1000], Some(&[7u8; 700]));
        let mut bytes = volume(&known);
        bytes[9 + 3 + 512 + 1024 + 512 + 700 + 5] = 1;
        assert!(read_among(&bytes[..], &[&known]).is_err());
    }

    #[test]
    fn frame_one_holds_the_envelope_then_at_most_the_segments() {
        let envelope_then = |name: &str| {
            let mut content = member_header(MANIFEST_MEMBER, 3).unwrap().as_bytes().to_vec();
            content.extend_from_slice(b"abc");
            content.resize(2 * BLOCK, 0);
            content.extend_from_slice(member_header(name, 2).unwrap().as_bytes());
            content.extend_from_slice(b"xy");
            content.resize(4 * BLOCK, 0);
            content
        };
        let parts = split(&envelope_then(SEGMENTS_MEMBER)).unwrap();
        assert_eq!(parts, frame(b"abc", Some(b"xy")));
        for other in [VOLUME_MEMBER, MANIFEST_MEMBER] {
            let refused = split(&envelope_then(other)).unwrap_err();
            assert!(matches!(refused, Fault::Rejected(Rejection::UnexpectedMember(_))), "{refused:?}");
        }
        let mut longer = envelope_then(SEGMENTS_MEMBER);
        longer.extend_from_slice(&[0u8; BLOCK]);
        assert!(split(&longer).is_err());
        let mut cut = envelope_then(SEGMENTS_MEMBER);
        cut.truncate(3 * BLOCK + 1);
        assert!(split(&cut).is_err());
        // Taken apart in pieces of any size, the same frame.
        let whole = envelope_then(SEGMENTS_MEMBER);
        for piece in [1, 7, 511, 512, 513] {
            let mut parts = FrameParts::default();
            whole.chunks(piece).for_each(|bytes| parts.push(bytes));
            assert_eq!(parts.finish().unwrap(), frame(b"abc", Some(b"xy")), "in pieces of {piece}");
        }
    }
}
