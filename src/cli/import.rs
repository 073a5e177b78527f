//! `airlock import`

use std::path::PathBuf;

use clap::Args;

use super::{Output, TrustArgs};
use crate::error::Result;
use crate::import::import;

/// Verify a bundle and publish it into a local mirror, all or nothing
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle file
    pub bundle: PathBuf,
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
        let report = import(&self.bundle, &policy, &self.mirror, crate::now(), self.allow_gap, &progress)?;
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
