//! `airlock sign`

use std::path::PathBuf;

use clap::Args;

use super::keys::{KeyParser, UnlockArgs};
use super::{HeldArgs, Output, TrustArgs};
use crate::cosign::cosign;
use crate::error::Result;
use crate::sign::signer::KeySource;

/// Co-sign a bundle: verify it against the keys you trust, then add your signature (nothing else changes)
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle file (rewritten in place, atomically)
    pub bundle: PathBuf,
    /// Your secret key: a key file (encrypted or in clear), or a PKCS#11 URI (pkcs11:token=...;object=...)
    #[arg(long, value_name = "KEY", value_parser = KeyParser, env = "AIRLOCK_KEY", hide_env_values = true)]
    pub key: KeySource,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub unlock: UnlockArgs,
    #[command(flatten)]
    pub held: HeldArgs,
}

impl SignArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let policy = self.trust.load("sign")?.with_held_segments(self.held.source()?);
        let (keys, clear) = self.unlock.open(std::slice::from_ref(&self.key))?;
        let key = &keys[0];
        let progress = out.progress();
        let report = cosign(&self.bundle, key, &policy, crate::now(), &progress)?;
        out.line(format!("signed    {} (manifest {})", report.bundle, &report.manifest_digest[..16]));
        out.line(format!("signers   {}", report.signers.join(", ")));
        out.report("sign", &report);
        clear.warn(out);
        Ok(())
    }
}
