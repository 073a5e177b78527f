//! `airlock export`

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Output, bytes};
use crate::error::Result;
use crate::export::{ExportOptions, export};
use crate::sign::SecretKey;

/// Resolve artifacts and write a signed, content-addressed bundle
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Ship every regular file under DIR (published under MIRROR/files/); repeatable
    #[arg(long, value_name = "DIR", required = true)]
    pub files: Vec<PathBuf>,
    /// Secret key to sign with; repeat to co-sign with several keys
    #[arg(long, value_name = "KEY", required = true)]
    pub key: Vec<PathBuf>,
    /// The bundle file to write
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Sync channel the bundle belongs to
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub channel: String,
    /// How long the bundle stays importable, e.g. 30d, 12h, 2weeks
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    pub expires: Duration,
    /// Replace BUNDLE if it exists
    #[arg(long)]
    pub force: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30d, 12h, 2weeks)"))?;
    if d.as_secs() == 0 {
        return Err("must be at least one second".into());
    }
    Ok(d)
}

impl ExportArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let keys = self.key.iter().map(|p| SecretKey::load(p)).collect::<Result<Vec<_>>>()?;
        let threads = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
        let options = ExportOptions {
            files: self.files.clone(),
            keys,
            out: self.out.clone(),
            channel: self.channel.clone(),
            expires_in: self.expires,
            now: crate::creation_time(),
            force: self.force,
            threads,
        };
        let progress = out.progress();
        let report = export(&options, &progress)?;
        out.line(format!(
            "exported  {} entries, {} blobs, {} -> {} ({})",
            report.entries,
            report.blobs,
            bytes(report.bytes),
            report.bundle,
            bytes(report.bundle_bytes)
        ));
        out.line(format!(
            "manifest  {} (channel {}, sequence {})",
            report.manifest_digest, report.channel, report.sequence
        ));
        out.line(format!("signed by {}", report.signers.join(", ")));
        out.line(format!("expires   {}", report.expires));
        out.report(&report);
        Ok(())
    }
}
