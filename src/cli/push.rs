//! `airlock push`

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Output, counted};
use crate::ecosystem::oci::push::{PushOptions, push};
use crate::error::Result;
use crate::fetch::Client;

/// Push the mirror's container images, with their cosign signatures, into a registry of this site
///
/// Repositories keep their path without the registry they came from: registry.example/team/app:1 is
/// REGISTRY[/PREFIX]/team/app:1. Blobs the registry already has are not uploaded again. Credentials
/// come from $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json or ~/.docker/config.json
/// (podman login / docker login write them). A registry that cannot be reached, refuses the login
/// or the upload, or an --images pattern that matches nothing, is exit 2; a mirror file whose
/// digest is wrong is exit 1.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The mirror folder (the one given to airlock import)
    #[arg(long, value_name = "DIR", env = "AIRLOCK_MIRROR", hide_env_values = true)]
    pub mirror: PathBuf,
    /// The registry to push to: HOST[:PORT] or HOST[:PORT]/PREFIX (https:// by default, http:// for plain HTTP)
    #[arg(long, value_name = "URL")]
    pub registry: String,
    /// Push only the carried repositories matching this pattern (registry.example/team/*); repeatable
    #[arg(long, value_name = "PATTERN")]
    pub images: Vec<String>,
    /// Speak plain HTTP to the registry, for a loopback or test registry
    #[arg(long)]
    pub plain_http: bool,
    /// Upload blobs larger than SIZE in chunks of SIZE (100MiB, 1GiB), for a registry or proxy that
    /// caps the size of a request; whole blobs in one request without it
    #[arg(long, value_name = "SIZE", value_parser = parse_chunk_size)]
    pub chunk_size: Option<u64>,
    /// Seconds to wait for the registry before giving up on a request
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// Times a failed request (connection error, 429, 5xx) is retried
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

/// Smallest `--chunk-size`: below it a blob would take thousands of requests.
const MIN_CHUNK: u64 = 16 << 10;

/// `--chunk-size`: a number of bytes with a unit, at least [`MIN_CHUNK`].
fn parse_chunk_size(text: &str) -> std::result::Result<u64, String> {
    let bytes = crate::bundle::split::parse_bytes(text)
        .ok_or_else(|| format!("{text:?} is not a size: use e.g. 100MiB, 1GiB, 64MB or a number of bytes"))?;
    if bytes < MIN_CHUNK {
        return Err(format!("{text:?} is smaller than the smallest chunk, {} KiB", MIN_CHUNK >> 10));
    }
    Ok(bytes)
}

impl PushArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let options = PushOptions {
            mirror: self.mirror.clone(),
            registry: self.registry.clone(),
            images: self.images.clone(),
            plain_http: self.plain_http,
            chunk: self.chunk_size,
        };
        let client = Client::new(Duration::from_secs(self.timeout), self.retries)?;
        let report = push(&options, &client)?;
        for (carried, target) in &report.repositories {
            out.line(format!("{carried} -> {}/{target}", report.registry.split('/').next().unwrap_or_default()));
        }
        out.line(format!(
            "pushed {} ({}) to {}: {} uploaded ({} bytes), {} mounted, {} already there; {} uploaded, {} already there; {} set",
            counted(report.repositories.len(), "repository", "repositories"),
            counted(report.tags, "tag", "tags"),
            report.registry,
            counted(report.blobs_uploaded, "blob", "blobs"),
            report.bytes_uploaded,
            report.blobs_mounted,
            report.blobs_present,
            counted(report.manifests_uploaded, "manifest", "manifests"),
            report.manifests_present,
            counted(report.tags_set, "tag", "tags")
        ));
        out.report("push", &report);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_chunk_size;

    #[test]
    fn chunk_sizes_are_bytes_with_a_unit_and_no_media() {
        assert_eq!(parse_chunk_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_chunk_size("16384"), Ok(16 << 10));
        assert!(parse_chunk_size("1").unwrap_err().contains("smaller than the smallest chunk, 16 KiB"));
        assert!(parse_chunk_size("fat32").unwrap_err().contains("is not a size"));
    }
}
