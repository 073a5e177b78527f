//! `airlock import`

use std::path::PathBuf;

use clap::Args;

use super::{Output, TrustArgs};
use crate::error::Result;
use crate::import::import_volumes;

/// Verify a bundle and publish it into a local mirror, all or nothing
///
/// A split bundle's volumes may be given in any order and over several runs (the folder, or any
/// volume files): each volume verified is kept in the mirror's staging, and the bundle is
/// published once every data volume is there (parity volumes rebuild missing or damaged ones).
/// Until then the import exits with status 4, naming the missing volumes, and the mirror is unchanged.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle file; or a split bundle's folder, or one or more of its volume files
    #[arg(required = true, value_name = "BUNDLE")]
    pub bundle: Vec<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The mirror folder (created if missing); files land in MIRROR/files/
    #[arg(long, value_name = "DIR")]
    pub mirror: PathBuf,
    /// Accept an incremental bundle that skips sequence numbers of its channel
    #[arg(long)]
    pub allow_gap: bool,
}

impl ImportArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let policy = self.trust.load()?;
        let progress = out.progress();
        let report = import_volumes(&self.bundle, &policy, &self.mirror, crate::now(), self.allow_gap, &progress)?;
        super::verify::print_verified(out, &report.verified);
        out.line(format!(
            "published {} files into {} (generation {})",
            report.mirror.published.len(),
            report.mirror.mirror,
            report.mirror.generation
        ));
        out.report(&report);
        Ok(())
    }
}
