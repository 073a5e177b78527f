//! How an ecosystem writes its layout into the generation being built,
//! without knowing how or where the mirror keeps it.

use std::io;

use crate::error::Result;
use crate::id::{ContentId, RelPath};

/// The generation being built, as an ecosystem sees it: its own top-level
/// `folder` of files. Paths are relative to that folder.
pub trait Layout {
    /// Places blob `id` (a verified object of the store) at `folder/path`,
    /// replacing a file already there.
    fn link_blob(&mut self, folder: &str, path: &RelPath, id: &ContentId) -> Result<()>;

    /// Writes a generated file at `folder/path` (an index page, an evidence file).
    fn write(&mut self, folder: &str, path: &str, bytes: &[u8]) -> Result<()>;

    /// [`Layout::write`] with the contents produced by `fill`, for a file too
    /// large to build in memory first (a document listing many versions).
    fn write_with(
        &mut self,
        folder: &str,
        path: &str,
        fill: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<()>;

    /// Takes a file out of the generation being built (a no-op if it is not there).
    fn remove(&mut self, folder: &str, path: &str) -> Result<()>;

    /// Reads a file of the generation being built, if it is there.
    fn read(&self, folder: &str, path: &str) -> Option<Vec<u8>>;
}
