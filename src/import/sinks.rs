//! Verification's sinks over the mirror's staging: verify defines what a
//! sink is, the mirror keeps the blobs, and this adapter joins the two so
//! that neither names the other.

use std::path::PathBuf;

use crate::error::Result;
use crate::id::ContentId;
use crate::mirror::{StagedBlob, Staging};
use crate::verify::BlobSink;
use crate::verify::set::SetSink;

/// A bundle's staging as the sink of a volume set being verified; with
/// `keep_copies` (a set with parity volumes), a copy of each data volume
/// file verified is kept too, so that a later run can rebuild a missing
/// volume from parity without the volumes verified before.
pub(super) struct Staged<'a> {
    pub staging: &'a mut Staging,
    pub keep_copies: bool,
    /// Set when verification refuses the bundle itself: its staging is removed.
    pub refused: bool,
}

impl SetSink for Staged<'_> {
    type Blobs = Self;

    fn is_done(&self, index: u32) -> bool {
        self.staging.is_done(index)
    }

    fn volume_copy(&mut self, index: u32) -> Result<Option<Box<dyn std::io::Write + Send>>> {
        if !self.keep_copies {
            return Ok(None);
        }
        Ok(Some(Box::new(self.staging.begin_copy(index)?)))
    }

    fn kept_volume(&self, index: u32) -> Option<PathBuf> {
        self.staging.kept_copy(index)
    }

    fn refused(&mut self) {
        self.refused = true;
    }

    fn blobs(&mut self) -> &mut Self {
        self
    }

    fn volume_done(&mut self, index: u32) -> Result<()> {
        self.staging.volume_done(index)
    }
}

impl BlobSink for Staged<'_> {
    type Writer = StagedBlob;

    fn begin(&mut self, _id: &ContentId) -> Result<StagedBlob> {
        self.staging.begin_blob()
    }

    fn commit(&mut self, id: &ContentId, writer: StagedBlob) -> Result<()> {
        self.staging.commit_blob(id, writer)
    }

    fn begin_piece(&mut self, blob: &ContentId, _piece: usize, offset: u64) -> Result<StagedBlob> {
        self.staging.begin_piece(blob, offset)
    }

    fn commit_piece(&mut self, _blob: &ContentId, _piece: usize, writer: StagedBlob) -> Result<()> {
        self.staging.commit_piece(writer)
    }

    fn commit_whole(&mut self, blob: &ContentId) -> Result<()> {
        self.staging.checked_whole(blob);
        Ok(())
    }
}
