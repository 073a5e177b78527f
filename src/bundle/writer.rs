//! Writes a volume: manifest frame, blob frame, seal frame.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::bundle::{
    BLOCK, MANIFEST_MEMBER, ManifestFrame, SEGMENTS_MEMBER, VOLUME_MEMBER, WINDOW_LOG, blob_member, frame,
    member_header, padding,
};
use crate::id::ContentId;

/// Bytes per multithreaded compression job (zstd's minimum is 512 KiB).
const JOB_SIZE: u32 = 2 << 20;

/// zstd level: 3 is zstd's default and what the hand-rolled baseline uses.
pub const LEVEL: i32 = 3;

/// Compressed bytes the encoder gathers before writing them on: larger
/// than the writer's own buffer ([`OUT_WRITE_BUFFER`]), so they pass
/// through it without a copy (zstd's default, 32 KiB, made every
/// compressed byte a second memcpy).
const OUT_BUFFER: usize = 1 << 20;

/// What callers buffer between the encoder and the file: small writes
/// (tar headers of frame 1, the seal) are gathered, the encoder's large
/// ones go straight through.
pub const OUT_WRITE_BUFFER: usize = 64 << 10;

/// Bytes of a blob read and hashed at a time.
const READ_CHUNK: usize = 1 << 20;

/// Streams a volume into `W`.
pub struct VolumeWriter<W: Write + Send + 'static> {
    out: zstd::stream::write::Encoder<'static, Sink<W>>,
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

/// Frame 2 as written: what the seal signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobFrame {
    pub digest: ContentId,
    pub size: u64,
}

impl<W: Write + Send + 'static> VolumeWriter<W> {
    /// Writes the manifest frame and starts the blob frame, compressing on
    /// `threads` worker threads (0: inline).
    pub fn new(mut out: W, manifest: &ManifestFrame, threads: u32) -> io::Result<Self> {
        write_manifest_frame(&mut out, manifest)?;

        let encoder = zstd::stream::raw::Encoder::new(LEVEL)?;
        let writer = zstd::stream::zio::Writer::new_with_capacity(Sink::start(out)?, encoder, OUT_BUFFER);
        let mut out = zstd::stream::write::Encoder::with_writer(writer);
        out.include_checksum(true)?;
        out.include_contentsize(false)?;
        out.window_log(WINDOW_LOG)?;
        if threads > 0 {
            out.multithread(threads)?;
            // Smaller jobs keep the compressor's buffers (and the export's RSS) small.
            out.set_parameter(zstd::stream::raw::CParameter::JobSize(JOB_SIZE))?;
        }
        Ok(VolumeWriter { out })
    }

    /// Copies exactly `size` bytes from `data` as blob `id`, hashing them on
    /// the way; fails if the bytes are not the ones the manifest names.
    pub fn write_blob(&mut self, id: &ContentId, size: u64, data: impl Read) -> Result<(), BlobWriteError> {
        self.write_checked(id, id, size, data, true)
    }

    /// Copies the next `size` bytes of `data` as a piece of the chunked
    /// blob `blob` (the member `blobs/<blob>`), hashing them on the way;
    /// fails unless they hash to `piece`.
    pub fn write_piece(
        &mut self,
        blob: &ContentId,
        piece: &ContentId,
        size: u64,
        data: impl Read,
    ) -> Result<(), BlobWriteError> {
        self.write_checked(blob, piece, size, data, false)
    }

    /// A member `blobs/<name>` of `size` bytes from `data` that must hash to
    /// `id`, and (`whole`) be all of `data`.
    fn write_checked(
        &mut self,
        name: &ContentId,
        id: &ContentId,
        size: u64,
        data: impl Read,
        whole: bool,
    ) -> Result<(), BlobWriteError> {
        self.begin_member(&blob_member(name), size)?;
        let mut limited = data.take(size);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut copied = 0u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&buf[..n]);
            self.out.write_all(&buf[..n])?;
            copied += n as u64;
        }
        let grew = whole && limited.into_inner().read(&mut [0u8; 1])? != 0;
        if copied != size || grew || ContentId(*hasher.finalize().as_bytes()) != *id {
            return Err(BlobWriteError::Changed { expected: *id, size });
        }
        self.end_member(size)?;
        Ok(())
    }

    /// Writes the `volume.cbor` member that starts frame 2 of a split set's volume.
    pub fn write_info(&mut self, info: &[u8]) -> io::Result<()> {
        self.begin_member(VOLUME_MEMBER, info.len() as u64)?;
        self.out.write_all(info)?;
        self.end_member(info.len() as u64)
    }

    /// Starts a member of `size` bytes; the caller writes exactly that many
    /// with [`Self::write_data`], then calls [`Self::end_member`].
    pub fn begin_member(&mut self, name: &str, size: u64) -> io::Result<()> {
        self.out.write_all(header(name, size)?.as_bytes())
    }

    /// Bytes of the current member.
    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    /// Pads the member of `size` bytes to the next tar block.
    pub fn end_member(&mut self, size: u64) -> io::Result<()> {
        io::copy(&mut io::repeat(0).take(padding(size)), &mut self.out).map(|_| ())
    }

    /// Ends the archive and the blob frame; the caller writes the seal next.
    pub fn finish(mut self) -> io::Result<(W, BlobFrame)> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        let written = self.out.finish()?.finish()?;
        let frame = BlobFrame { digest: ContentId(*written.hasher.finalize().as_bytes()), size: written.count };
        Ok((written.out, frame))
    }
}

/// Writes frame 1 in raw blocks: the `manifest.cose` member holding the
/// envelope and, in format 2, the `manifest.segments` member.
pub fn write_manifest_frame(out: &mut impl Write, manifest: &ManifestFrame) -> io::Result<()> {
    let envelope_header = header(MANIFEST_MEMBER, manifest.envelope.len() as u64)?;
    let zeros = [0u8; BLOCK];
    let pad = |len: u64| &zeros[..padding(len) as usize];
    let envelope = manifest.envelope.as_slice();
    let head = &envelope_header.as_bytes()[..];
    let head = head.chain(envelope).chain(pad(envelope.len() as u64));
    let mut total = (BLOCK + envelope.len() + pad(envelope.len() as u64).len()) as u64;
    let Some(segments) = manifest.segments() else { return frame::write_raw_stream(out, total, &mut { head }) };
    let segments_header = header(SEGMENTS_MEMBER, segments.len())?;
    total += BLOCK as u64 + segments.len() + padding(segments.len());
    let segments_header = &segments_header.as_bytes()[..];
    let mut content = head.chain(segments_header).chain(segments.reader()).chain(pad(segments.len()));
    frame::write_raw_stream(out, total, &mut content)
}

/// The header of member `name`; a name the format does not have is the caller's mistake.
fn header(name: &str, size: u64) -> io::Result<tar::Header> {
    member_header(name, size)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a bundle member name")))
}

/// Writes the seal frame; it must be the last thing in the volume.
pub fn write_seal(out: &mut impl Write, seal_envelope: &[u8]) -> io::Result<()> {
    frame::write_skippable(out, seal_envelope)
}

/// Compressed bytes gathered before they go to the writer thread.
const SINK_CHUNK: usize = 1 << 20;

/// Chunks queued for the writer thread at most.
const IN_FLIGHT: usize = 2;

/// Hashes the compressed bytes and writes them on, on a thread of its own.
/// With the compressor's workers busy, the thread that reads, hashes and
/// feeds the blobs was the export's bottleneck; this takes the other half
/// of its work (a second BLAKE3 pass and the copy into the file) away.
struct Sink<W: Write + Send + 'static> {
    pending: Vec<u8>,
    to_writer: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    writer: Option<JoinHandle<io::Result<Written<W>>>>,
}

/// What the writer thread hands back: the output, and the hash and count
/// of what it wrote there.
struct Written<W> {
    out: W,
    hasher: blake3::Hasher,
    count: u64,
}

impl<W: Write + Send + 'static> Sink<W> {
    fn start(out: W) -> io::Result<Self> {
        let (to_writer, chunks) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, spare) = sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
        let writer = std::thread::Builder::new().name("airlock-write".into()).spawn(move || {
            let mut written = Written { out, hasher: blake3::Hasher::new(), count: 0 };
            for mut chunk in chunks {
                written.hasher.update(&chunk);
                written.out.write_all(&chunk)?;
                written.count += chunk.len() as u64;
                chunk.clear();
                let _ = give_back.try_send(chunk);
            }
            written.out.flush()?;
            Ok(written)
        })?;
        Ok(Sink { pending: Vec::with_capacity(SINK_CHUNK), to_writer: Some(to_writer), spare, writer: Some(writer) })
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(SINK_CHUNK));
        let chunk = std::mem::replace(&mut self.pending, next);
        match self.to_writer.as_ref().map(|to_writer| to_writer.send(chunk)) {
            Some(Ok(())) => Ok(()),
            // The thread stopped: its error says why.
            _ => Err(self.join().err().unwrap_or_else(|| io::Error::other("the volume's writer stopped early"))),
        }
    }

    fn join(&mut self) -> io::Result<Written<W>> {
        self.to_writer = None;
        match self.writer.take() {
            Some(writer) => writer.join().unwrap_or_else(|_| Err(io::Error::other("the volume's writer panicked"))),
            None => Err(io::Error::other("the volume's writer has stopped")),
        }
    }

    /// Waits for everything to be written; the output and what was written.
    fn finish(mut self) -> io::Result<Written<W>> {
        self.send_pending()?;
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= SINK_CHUNK {
            self.send_pending()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}
