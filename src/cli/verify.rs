//! `airlock verify`

use std::path::PathBuf;

use clap::Args;

use super::{HeldArgs, Output, TrustArgs, bytes, counted};
use crate::error::Result;
use crate::verify::VerifyReport;
use crate::verify::set::{CheckOnly, VolumesReport, identify, incomplete, verify_set};

/// Check a bundle, or volumes of a split bundle, completely against the trusted keys; writes nothing
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file; or a split bundle's folder (checks the set); or one or more of its volume files
    #[arg(required = true, value_name = "BUNDLE")]
    pub bundle: Vec<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub held: HeldArgs,
}

impl VerifyArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let policy = self.trust.load("verify")?.with_held_segments(self.held.source()?);
        let progress = out.progress();
        let now = crate::now();
        let set = identify(&self.bundle, &policy, now)?;
        let outcome = verify_set(&set, &policy, now, &mut CheckOnly::new(), &progress)?;
        // One volume file checks that volume; a folder or several files check the set.
        let one_volume = self.bundle.len() == 1 && self.bundle[0].is_file();
        let only_missing = outcome.damaged.is_empty() && set.unreadable.is_empty();
        if !(outcome.complete() || one_volume && only_missing) {
            return Err(incomplete(set, outcome, "nothing was written"));
        }
        let subject = self.bundle.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        let volumes = VolumesReport::new(&set.verified.manifest, &outcome, &set.unreadable);
        let report = VerifyReport::new(&subject, &set.verified, &policy, volumes);
        print_verified(out, &report);
        if !outcome.complete() {
            out.line("note      the packages of the missing volumes are checked when those volumes are verified");
        }
        out.line(summary("verified", &report));
        out.report_entries("verify", &report);
        Ok(())
    }
}

/// The last line of `verify` and `import`:
/// `verified 3 303 entries, 0 problems, signed by alice + bob`.
pub(super) fn summary(verb: &str, report: &VerifyReport) -> String {
    let problems = report.volumes.as_ref().map_or(0, |v| v.damaged.len());
    let stood_in =
        if problems > 0 { " (damaged copies another copy, parity or an earlier run stood in for)" } else { "" };
    format!(
        "{verb} {}, {}{stood_in}, signed by {}",
        counted(report.entries, "entry", "entries"),
        counted(problems, "problem", "problems"),
        report.trusted_signers.join(" + ")
    )
}

/// Each entry's five layers, two lines each (with `--verbose`).
fn print_entries(out: &Output, report: &VerifyReport) {
    for p in report.packages.iter() {
        let version = p.version().map(|v| format!(" {v}")).unwrap_or_default();
        out.detail(format!("  {} {}{} ({})", p.ecosystem(), p.name(), version, p.path()));
        out.detail(format!(
            "      transfer {} | content {} | digest {} | provenance {} | policy {}",
            p.transfer, p.content, p.digest, p.provenance, p.policy
        ));
    }
}

pub(super) fn print_verified(out: &Output, report: &VerifyReport) {
    out.line(format!(
        "verified  {}: {}, {}, {}",
        report.bundle,
        counted(report.entries, "entry", "entries"),
        counted(report.blobs, "blob", "blobs"),
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
    if let Some(v) = &report.volumes {
        out.line(format!("volumes   {} data + {} parity", v.data, v.parity));
        for (what, list) in [
            ("read", &v.verified),
            ("earlier", &v.earlier),
            ("not read", &v.not_read),
            ("rebuilt", &v.rebuilt),
            ("missing", &v.missing),
            ("damaged", &v.damaged),
        ] {
            if !list.is_empty() {
                let texts: Vec<&str> = list.iter().map(|v| v.text.as_str()).collect();
                out.line(format!("  {what:<9}{}", texts.join("; ")));
            }
        }
    }
    // The entries of missing volumes are not checked yet: listing them would claim they were.
    if report.volumes.as_ref().is_none_or(|v| v.missing.is_empty()) {
        print_entries(out, report);
    }
}
