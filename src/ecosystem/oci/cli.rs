//! The OCI images' `airlock export` flags, merged with the `[oci]` config
//! section into the export's [`Images`].

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::Args;

use super::config::OciConfig;
use super::source::Images;

/// The images.txt flag, with the other inputs.
#[derive(Debug, Args)]
#[group(skip)]
pub struct LockArgs {
    /// Carry the container images an images.txt names (REGISTRY/REPO:TAG or @sha256:..., one a line); repeatable
    #[arg(long, value_name = "FILE")]
    pub oci_images: Vec<PathBuf>,
}

/// The registry flags.
#[derive(Debug, Args)]
#[group(skip)]
pub struct RegistryArgs {
    /// Platform an image index is carried for, OS/ARCH[/VARIANT]; repeatable [default: linux/amd64]
    #[arg(long, value_name = "PLATFORM")]
    pub oci_platform: Vec<String>,
    /// Carry every platform an image index lists (instead of the --oci-platform ones)
    #[arg(long)]
    pub oci_all_platforms: bool,
    /// Speak plain HTTP to this registry (HOST:PORT), for a loopback test registry; repeatable
    #[arg(long, value_name = "HOST:PORT")]
    pub oci_plain_http: Vec<String>,
}

/// The export's OCI part: the config's lists then the flags'.
#[must_use]
pub fn images(lock: &LockArgs, registry: &RegistryArgs, config: &OciConfig) -> Images {
    let platforms: Vec<String> =
        if registry.oci_platform.is_empty() { config.platforms.clone() } else { registry.oci_platform.clone() };
    Images {
        lists: config.images.iter().chain(&lock.oci_images).cloned().collect(),
        platforms: if platforms.is_empty() { vec!["linux/amd64".to_owned()] } else { platforms },
        all_platforms: registry.oci_all_platforms || config.all_platforms,
        plain_http: config.plain_http.iter().chain(&registry.oci_plain_http).cloned().collect(),
    }
}
