//! `airlock verify`

use std::path::PathBuf;

use clap::Args;

use super::{Output, TrustArgs, bytes};
use crate::error::Result;
use crate::verify::{Discard, VerifyReport, verify_bundle};

/// Check a bundle completely against the trusted keys; writes nothing
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
}

impl VerifyArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let policy = self.trust.load()?;
        let progress = out.progress();
        let (_, report) = verify_bundle(&self.bundle, &policy, crate::now(), &mut Discard, &progress)?;
        print_verified(out, &report);
        for p in &report.packages {
            let version = p.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
            out.line(format!("  {} {}{} ({})", p.ecosystem, p.name, version, p.path));
            out.line(format!(
                "      transfer {} | content {} | digest {} | provenance {} | policy {}",
                p.transfer, p.content, p.digest, p.provenance, p.policy
            ));
        }
        out.report(&report);
        Ok(())
    }
}

pub(super) fn print_verified(out: &Output, report: &VerifyReport) {
    out.line(format!(
        "verified  {}: {} entries, {} blobs, {}",
        report.bundle,
        report.entries,
        report.blobs,
        bytes(report.bytes)
    ));
    out.line(format!(
        "manifest  {} (channel {}, sequence {})",
        report.manifest_digest, report.channel, report.sequence
    ));
    out.line(format!("signed by {}", report.trusted_signers.join(", ")));
    for revoked in &report.revoked_signers {
        out.line(format!("revoked   {revoked}: signature not counted (the policy revokes this key)"));
    }
    out.line(format!("expires   {}", report.expires));
    if report.not_carried > 0 {
        out.line(format!(
            "note      incremental bundle: {} blob(s) came in earlier bundles of the channel; import checks them against the mirror",
            report.not_carried
        ));
    }
}
