//! The `[debian]` section of `airlock.toml` (schemas/config.cddl).

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use serde::Deserialize;

/// `debian` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianConfig {
    /// pkgs.txt files.
    #[serde(default)]
    pub packages: Vec<PathBuf>,
    pub archive: Option<String>,
    #[serde(default)]
    pub suites: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// Each resolved on its own (`--debian-arch`, repeatable).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// One architecture: the same as `architectures = [it]`.
    pub architecture: Option<String>,
    pub keyring: Option<PathBuf>,
    pub base: Option<PathBuf>,
    /// Follow `Recommends` (`--debian-recommends`).
    #[serde(default)]
    pub recommends: bool,
}

impl DebianConfig {
    /// `architectures`, then `architecture`.
    #[must_use]
    pub fn architectures(&self) -> Vec<String> {
        self.architectures.iter().chain(&self.architecture).cloned().collect()
    }
}
