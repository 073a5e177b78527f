//! Chunked blobs checked whole while their pieces stream by: when a run
//! reads the pieces of a blob in order (the volumes of a set are read in
//! index order), the whole blob's BLAKE3 and upstream digests are computed
//! on the way (a `git-sha1` seeded with the whole blob's size, then fed
//! every piece in order), as for a blob carried whole, and the sink is told
//! ([`BlobSink::commit_whole`]). A blob whose pieces come out of order (over
//! several runs, or with a volume rebuilt from parity after the others) is
//! checked whole by the importer once every piece is staged
//! ([`super::check_assembled`]).

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::BlobSink;
use super::blobs::{HashingWriter, UpstreamDigest, UpstreamDigests};
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
        let mut chunked = manifest.blobs.iter().filter(|b| b.carried && b.is_chunked()).peekable();
        // Only a bundle with chunked blobs pays for the index.
        let upstream = chunked.peek().map(|_| UpstreamDigests::of(manifest));
        let pending = chunked
            .map(|b| {
                let digests = upstream.as_ref().expect("made when a blob is chunked").of_blob(manifest, &b.id);
                let hashes = HashingWriter::new(io::sink(), b.size, &digests, &Silent);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Blob, Digest, Piece};
    use crate::verify::Discard;

    /// A manifest of one blob of `data` cut into `cuts` pieces, its entry declaring `git_sha1`.
    fn chunked(data: &[u8], cuts: &[usize], git_sha1: &str) -> Manifest {
        let mut manifest = crate::manifest::tests::sample();
        let mut entry = crate::manifest::tests::entry_at("files", "big.bin", data);
        entry.digests.insert("git-sha1".into(), Digest(hex::decode(git_sha1).unwrap()));
        let mut pieces = Vec::new();
        let mut start = 0;
        for (volume, end) in cuts.iter().copied().chain([data.len()]).enumerate() {
            let bytes = &data[start..end];
            pieces.push(Piece { id: ContentId::of(bytes), size: bytes.len() as u64, volume: volume as u32 });
            start = end;
        }
        manifest.volumes = pieces.len() as u32;
        manifest.blobs = vec![Blob { id: entry.blob, size: data.len() as u64, volume: 0, carried: true, pieces }];
        manifest.entries = vec![entry].into();
        manifest
    }

    /// Streams every piece in order through the in-order sink.
    fn stream(manifest: &Manifest, data: &[u8]) -> Result<()> {
        let mut wholes = Wholes::new(manifest);
        let mut sink = InOrder { inner: &mut Discard, wholes: &mut wholes, subject: "volume" };
        let blob = &manifest.blobs[0];
        let mut offset = 0u64;
        for (index, piece) in blob.pieces.iter().enumerate() {
            let mut writer = sink.begin_piece(&blob.id, index, offset)?;
            let start = usize::try_from(offset).unwrap();
            writer.write_all(&data[start..start + usize::try_from(piece.size).unwrap()]).unwrap();
            sink.commit_piece(&blob.id, index, writer)?;
            offset += piece.size;
        }
        Ok(())
    }

    #[test]
    fn a_chunked_blob_hashes_to_its_git_blob_id_over_its_pieces_in_order() {
        // `printf 'hello\n' | git hash-object --stdin`, the header holding the whole blob's size, not a piece's.
        let data = b"hello\n";
        stream(&chunked(data, &[2, 4], "ce013625030ba8dba906f756967f9e9ca394464a"), data).unwrap();
        let wrong = chunked(data, &[2, 4], "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        let err = stream(&wrong, data).unwrap_err().to_string();
        assert!(err.contains("assembled from its pieces") && err.contains("git-sha1 digest does not match"), "{err}");
    }
}
