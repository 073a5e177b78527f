//! `airlock gc`

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{Output, bytes};
use crate::error::Result;
use crate::mirror::{Bucket, View, is_bucket};

/// Reclaim space: blobs withdrawn from the mirror, old generations, abandoned staging
///
/// Staged volumes of a split bundle are kept between imports until the set is complete; gc
/// removes those of bundles that can no longer be imported (imported already, superseded in
/// their channel, or expired), and with --all-staging every staged import.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The mirror: its folder, or s3://BUCKET/PREFIX (deletes what its generation does not list
    /// and airlock wrote; keeps, and counts, objects airlock did not write)
    #[arg(long, value_name = "MIRROR", env = "AIRLOCK_MIRROR", hide_env_values = true)]
    pub mirror: PathBuf,
    /// Also remove the staged volumes of imports still waiting for volumes
    #[arg(long)]
    pub all_staging: bool,
    /// Say what would be removed, and remove nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: super::WaitArgs,
}

#[derive(Serialize)]
struct GcReport {
    mirror: String,
    objects_removed: usize,
    bytes_freed: u64,
    /// Manifest segments and roots no channel's latest bundle names.
    segments_removed: usize,
    segment_bytes_freed: u64,
    /// In a bucket: keys under the prefix that airlock did not write, kept.
    foreign_objects_kept: usize,
    staging_removed: Vec<String>,
    /// Staged imports kept: split bundles still waiting for volumes.
    staging_kept: Vec<crate::mirror::WaitingImport>,
    /// With `--dry-run`: the counts say what would be removed; nothing was.
    dry_run: bool,
}

impl GcArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        // Refuse to create a mirror just to collect nothing.
        if is_bucket(&self.mirror) {
            Bucket::open_read_only(&self.mirror.to_string_lossy())?;
        } else {
            View::open(&self.mirror)?;
        }
        let mirror = self.wait.retrying(out, || crate::import::open_store(&self.mirror))?;
        let staging_removed = mirror.gc_staging(crate::now(), self.all_staging, self.dry_run)?;
        let collected = mirror.gc(self.dry_run)?;
        let (objects_removed, bytes_freed) = (collected.removed, collected.freed);
        let removed = if self.dry_run { "would remove" } else { "removed" };
        for staged in &staging_removed {
            out.line(format!("gc        {removed} the staged volumes of bundle {staged}"));
        }
        // A dry run with --all-staging keeps nothing it lists as removed.
        let staging_kept =
            if self.dry_run && self.all_staging { Vec::new() } else { mirror.waiting_imports(crate::now())? };
        for w in &staging_kept {
            out.line(format!(
                "gc        kept the staged volumes of bundle {} (channel {}, sequence {}: {} of {} volumes; until {}, or --all-staging)",
                w.bundle, w.channel, w.sequence, w.volumes_done, w.volumes, w.expires
            ));
        }
        let blobs = if objects_removed == 1 { "blob" } else { "blobs" };
        out.line(format!(
            "gc        {removed} {objects_removed} unused {blobs} ({}) from {}",
            bytes(bytes_freed),
            mirror.location()
        ));
        if collected.segments_removed > 0 {
            out.line(format!(
                "gc        {removed} {} manifest segment file(s) ({}) no channel's latest bundle names",
                collected.segments_removed,
                bytes(collected.segments_freed)
            ));
        }
        if let Some(first) = collected.foreign.first() {
            out.line(format!(
                "gc        kept {} object(s) airlock did not write, such as {}/{}; move them away from the mirror's prefix",
                collected.foreign.len(),
                mirror.location(),
                crate::escape::one_line(first)
            ));
        }
        out.line("note      an incremental bundle that relies on a removed blob needs a --full bundle");
        out.report(
            "gc",
            &GcReport {
                mirror: mirror.location(),
                objects_removed,
                bytes_freed,
                segments_removed: collected.segments_removed,
                segment_bytes_freed: collected.segments_freed,
                foreign_objects_kept: collected.foreign.len(),
                staging_removed,
                staging_kept,
                dry_run: self.dry_run,
            },
        );
        Ok(())
    }
}
