//! Chunked blobs checked whole while their pieces stream by: when a run
//! reads the pieces of a blob in order (the volumes of a set are read in
//! index order), the whole blob's BLAKE3 and upstream digests are computed
//! on the way, as for a blob carried whole, and the sink is told
//! ([`BlobSink::commit_whole`]). A blob whose pieces come out of order (over
//! several runs, or with a volume rebuilt from parity after the others) is
//! checked whole by the importer once every piece is staged
//! ([`super::check_assembled`]).

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::BlobSink;
use super::blobs::{HashingWriter, UpstreamDigest, upstream_digests};
use crate::error::{Error, Rejection, Result};
use crate::id::ContentId;
use crate::manifest::Manifest;
use crate::progress::Silent;

/// The chunked blobs whose pieces have come in order so far in this run.
pub(super) struct Wholes {
    pending: BTreeMap<ContentId, WholeHash>,
    /// A blob whose pieces, each right, are not the blob: the bundle is
    /// refused, not the volume (no other copy can do better).
    pub(super) refused: Option<Error>,
}

/// One chunked blob's hashes over its pieces 0..`next`.
struct WholeHash {
    next: usize,
    count: usize,
    digests: Vec<UpstreamDigest>,
    hashes: HashingWriter<'static, io::Sink>,
}

impl Wholes {
    pub(super) fn new(manifest: &Manifest) -> Self {
        let pending = manifest
            .blobs
            .iter()
            .filter(|b| b.carried && b.is_chunked())
            .map(|b| {
                let digests = upstream_digests(manifest, &b.id);
                let hashes = HashingWriter::new(io::sink(), &digests, &Silent);
                (b.id, WholeHash { next: 0, count: b.pieces.len(), digests, hashes })
            })
            .collect();
        Wholes { pending, refused: None }
    }
}

/// A sink that also hashes chunked blobs whole when their pieces come in order.
pub(super) struct InOrder<'a, B> {
    pub(super) inner: &'a mut B,
    pub(super) wholes: &'a mut Wholes,
    /// The volume being read, named in errors.
    pub(super) subject: &'a str,
}

/// The inner sink's writer, and for the next piece of a blob in order, that blob's hashes.
pub struct InOrderWriter<W> {
    inner: W,
    whole: Option<(ContentId, WholeHash)>,
}

impl<W: Write> Write for InOrderWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some((_, whole)) = &mut self.whole {
            whole.hashes.write_all(&buf[..n])?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<B: BlobSink> BlobSink for InOrder<'_, B> {
    type Writer = InOrderWriter<B::Writer>;

    fn begin(&mut self, id: &ContentId) -> Result<Self::Writer> {
        Ok(InOrderWriter { inner: self.inner.begin(id)?, whole: None })
    }

    fn commit(&mut self, id: &ContentId, writer: Self::Writer) -> Result<()> {
        self.inner.commit(id, writer.inner)
    }

    fn begin_piece(&mut self, blob: &ContentId, piece: usize, offset: u64) -> Result<Self::Writer> {
        let inner = self.inner.begin_piece(blob, piece, offset)?;
        // Taken out while the piece is written: a piece that fails takes the blob's in-order hashes with it.
        let whole = match self.wholes.pending.get(blob) {
            Some(w) if w.next == piece => self.wholes.pending.remove_entry(blob),
            _ => None,
        };
        Ok(InOrderWriter { inner, whole })
    }

    fn commit_piece(&mut self, blob: &ContentId, piece: usize, writer: Self::Writer) -> Result<()> {
        self.inner.commit_piece(blob, piece, writer.inner)?;
        let Some((id, mut whole)) = writer.whole else { return Ok(()) };
        whole.next += 1;
        if whole.next < whole.count {
            self.wholes.pending.insert(id, whole);
            return Ok(());
        }
        if let Err(m) = whole.hashes.check(&id, &whole.digests) {
            let error =
                || Error::rejected(self.subject, Rejection::DigestMismatch(format!("assembled from its pieces, {m}")));
            self.wholes.refused = Some(error());
            return Err(error());
        }
        self.inner.commit_whole(&id)
    }

    fn commit_whole(&mut self, blob: &ContentId) -> Result<()> {
        self.inner.commit_whole(blob)
    }
}
