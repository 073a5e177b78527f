//! The `[oci]` section of `airlock.toml` (schemas/config.cddl).

use std::path::PathBuf;

use serde::Deserialize;

/// `oci` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OciConfig {
    /// images.txt files.
    #[serde(default)]
    pub images: Vec<PathBuf>,
    /// `OS/ARCH[/VARIANT]` carried from an image index.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Carry every platform of an image index.
    #[serde(default)]
    pub all_platforms: bool,
    /// Registries (`HOST:PORT`) spoken to over plain HTTP.
    #[serde(default)]
    pub plain_http: Vec<String>,
}
