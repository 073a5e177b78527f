//! `airlock keygen`

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::Output;
use crate::error::Result;
use crate::sign::SecretKey;

/// Make an ed25519 signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Path prefix of the two key files
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
    /// Replace existing key files (the old secret key is lost)
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct KeygenReport {
    key_id: String,
    secret_key: String,
    public_key: String,
}

impl KeygenArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let key = SecretKey::generate()?;
        let (secret, public) = key.write_pair(&self.out, self.force)?;
        out.line(format!("key id      {}", key.public().id()));
        out.line(format!("secret key  {} (keep it on the connected side, mode 0600)", secret.display()));
        out.line(format!("public key  {} (pin it on the disconnected side with --trust)", public.display()));
        out.report(&KeygenReport {
            key_id: key.public().id().to_hex(),
            secret_key: secret.display().to_string(),
            public_key: public.display().to_string(),
        });
        Ok(())
    }
}
