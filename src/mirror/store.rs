//! The storage boundary: what imports and `gc` do to a mirror, whatever
//! keeps it: the local directory ([`Mirror`]) or S3-compatible object
//! storage ([`super::Bucket`]). The ecosystems see only [`super::Layout`]
//! and verification only the import's sinks, so neither knows which.
//!
//! A bundle's [`Staging`] is a local folder whatever the backend: blobs are
//! verified onto local disk and the store takes them from there when the
//! bundle is published.

use super::segments::{KeptSegments, collect_local, local_segments};
use super::{
    Against, Mirror, PublishReport, StagedBundle, Staging, State, Stored, WaitingImport, publish::Publication,
};
use crate::error::Result;
use crate::id::ContentId;
use crate::manifest::{Blob, Entry, Manifest};

/// Writes a document to the writer it is given, as it is made: reports of
/// large bundles are tens of megabytes, never held whole.
pub type Fill<'a> = &'a dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>;

/// A mirror's storage, opened (and locked) for one import or `gc`.
pub trait Store {
    /// Where the mirror is, as reports name it.
    fn location(&self) -> String;
    /// The published generation's number; 0 before the first import.
    fn generation(&self) -> Result<u64>;
    /// The published state, or an empty one for a new mirror.
    fn state(&self) -> Result<State>;
    /// Every entry the published generation holds, with its channels.
    fn inventory(&self) -> Result<Vec<Stored>>;
    /// The inventory as the merge with a bundle of `channel` listing
    /// `incoming` needs it: what the bundle lists again unchanged not held.
    fn inventory_against(&self, incoming: &[Entry], channel: &str) -> Result<Against>;
    /// The blobs an incremental bundle expects from earlier bundles that
    /// the object store does not hold (with the right size).
    fn missing_objects<'m>(&self, manifest: &'m Manifest) -> Vec<&'m Blob>;
    /// Fails with one line naming the bytes needed and available when the
    /// mirror cannot take `needed` more bytes.
    fn check_space(&self, needed: u64, what: &str) -> Result<()>;
    /// The staging of bundle `digest`, created if new; `bundle` describes it for `gc`.
    fn bundle_staging(&self, digest: &ContentId, bundle: &StagedBundle) -> Result<Staging>;
    /// Removes the staging of bundle `digest`, if any.
    fn discard_staging(&self, digest: &ContentId) -> Result<()>;
    /// Publishes the staged bundle as the next generation in one atomic
    /// step, or leaves the published mirror as it was.
    fn publish(&mut self, staging: &Staging, publication: Publication<'_>) -> Result<PublishReport>;
    /// Keeps the audit page and JSON report of the import of bundle
    /// `digest` (hex) beside the mirror's state, each written by its
    /// [`Fill`] as it is made; says where.
    fn keep_report(&self, digest: &str, page: Fill<'_>, json: Fill<'_>) -> Result<String>;
    /// Keeps a format 2 bundle's root and the segments it carries (before
    /// it is published), for the incremental bundles that leave them out;
    /// returns those not held before.
    fn keep_segments(&self, kept: &KeptSegments<'_>) -> Result<Vec<ContentId>>;
    /// Removes segments [`Store::keep_segments`] wrote for a bundle that
    /// was then not published, leaving the mirror as it was.
    fn forget_segments(&self, written: &[ContentId]) -> Result<()>;
    /// Removes objects, generations and manifest segments nothing published uses.
    fn gc(&self, dry_run: bool) -> Result<Collected>;
    /// Removes the staging of bundles that can no longer be imported (all with `all`).
    fn gc_staging(&self, now: u64, all: bool, dry_run: bool) -> Result<Vec<String>>;
    /// The imports staged and still able to be published (a `gc` keeps these).
    fn waiting_imports(&self, now: u64) -> Result<Vec<WaitingImport>>;
}

/// What a `gc` removed, or with `dry_run` would remove.
#[derive(Debug, Default)]
pub struct Collected {
    /// Objects (blobs) removed and the bytes they held.
    pub removed: usize,
    pub freed: u64,
    /// Manifest segments and roots removed, and their bytes (counted apart: they are no artifact).
    pub segments_removed: usize,
    pub segments_freed: u64,
    /// Keys found where the mirror is that airlock did not write, kept.
    pub foreign: Vec<String>,
}

impl Store for Mirror {
    fn location(&self) -> String {
        self.root().display().to_string()
    }
    fn generation(&self) -> Result<u64> {
        Ok(self.view.current()?.map_or(0, |(n, _)| n))
    }
    fn state(&self) -> Result<State> {
        self.view.state()
    }
    fn inventory(&self) -> Result<Vec<Stored>> {
        self.view.inventory()
    }
    fn inventory_against(&self, incoming: &[Entry], channel: &str) -> Result<Against> {
        self.view.inventory_against(incoming, channel)
    }
    fn missing_objects<'m>(&self, manifest: &'m Manifest) -> Vec<&'m Blob> {
        Mirror::missing_objects(self, manifest)
    }
    fn check_space(&self, needed: u64, what: &str) -> Result<()> {
        Mirror::check_space(self, needed, what)
    }
    fn bundle_staging(&self, digest: &ContentId, bundle: &StagedBundle) -> Result<Staging> {
        Mirror::bundle_staging(self, digest, bundle)
    }
    fn discard_staging(&self, digest: &ContentId) -> Result<()> {
        Mirror::discard_staging(self, digest)
    }
    fn publish(&mut self, staging: &Staging, publication: Publication<'_>) -> Result<PublishReport> {
        self.publish_staged(staging, publication)
    }
    fn keep_report(&self, digest: &str, page: Fill<'_>, json: Fill<'_>) -> Result<String> {
        Mirror::keep_report(self, digest, page, json)
    }
    fn keep_segments(&self, kept: &KeptSegments<'_>) -> Result<Vec<ContentId>> {
        local_segments(self.root()).keep(kept.files())
    }
    fn forget_segments(&self, written: &[ContentId]) -> Result<()> {
        local_segments(self.root()).forget(written)
    }
    fn gc(&self, dry_run: bool) -> Result<Collected> {
        let (removed, freed) = Mirror::gc(self, dry_run)?;
        let (segments_removed, segments_freed) = collect_local(self.root(), &self.state()?, dry_run)?;
        Ok(Collected { removed, freed, segments_removed, segments_freed, foreign: Vec::new() })
    }
    fn gc_staging(&self, now: u64, all: bool, dry_run: bool) -> Result<Vec<String>> {
        Mirror::gc_staging(self, now, all, dry_run)
    }
    fn waiting_imports(&self, now: u64) -> Result<Vec<WaitingImport>> {
        self.view.waiting_imports(now)
    }
}
