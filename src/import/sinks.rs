//! Verification's sinks over the mirror's staging: verify defines what a
//! sink is, the mirror keeps the blobs, and this adapter joins the two so
//! that neither names the other.

use crate::error::Result;
use crate::id::ContentId;
use crate::mirror::{StagedBlob, Staging};
use crate::verify::BlobSink;
use crate::verify::set::SetSink;

/// A bundle's staging as the sink of a volume set being verified.
pub(super) struct Staged<'a>(pub &'a mut Staging);

impl SetSink for Staged<'_> {
    type Blobs = Self;

    fn is_done(&self, index: u32) -> bool {
        self.0.is_done(index)
    }

    fn blobs(&mut self) -> &mut Self {
        self
    }

    fn volume_done(&mut self, index: u32) -> Result<()> {
        self.0.volume_done(index)
    }
}

impl BlobSink for Staged<'_> {
    type Writer = StagedBlob;

    fn begin(&mut self, _id: &ContentId) -> Result<StagedBlob> {
        self.0.begin_blob()
    }

    fn commit(&mut self, id: &ContentId, writer: StagedBlob) -> Result<()> {
        self.0.commit_blob(id, writer)
    }
}
