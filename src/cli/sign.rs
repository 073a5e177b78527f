//! `airlock sign`

use std::path::PathBuf;

use clap::Args;

use super::{Output, TrustArgs};
use crate::cosign::cosign;
use crate::error::Result;
use crate::sign::SecretKey;

/// Co-sign a bundle: verify it against the keys you trust, then add your signature (nothing else changes)
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle file (rewritten in place, atomically)
    pub bundle: PathBuf,
    /// Your secret key
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
}

impl SignArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let policy = self.trust.load()?;
        let key = SecretKey::load(&self.key)?;
        let progress = out.progress();
        let report = cosign(&self.bundle, &key, &policy, crate::now(), &progress)?;
        out.line(format!("signed    {} (manifest {})", report.bundle, &report.manifest_digest[..16]));
        out.line(format!("signers   {}", report.signers.join(", ")));
        out.report(&report);
        Ok(())
    }
}
