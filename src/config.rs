//! `airlock.toml`: the export's inputs, endpoints, platform choices and
//! channel in a file (schemas/config.cddl). Paths are relative to the file.
//! Each ecosystem's section is defined in its folder (`<name>/config.rs`);
//! this is the one place that lists them.
//!
//! ```toml
//! channel = "weekly"
//! expires = "14d"
//! files = ["docs"]
//! [pypi]
//! locks = ["requirements.txt"]
//! index = "https://pypi.org/simple/"
//! python-versions = ["3.12"]
//! platforms = ["manylinux_x86_64"]
//! all-files = false
//! sdist = true
//! [npm]
//! locks = ["web/package-lock.json"]
//! registry = "https://registry.npmjs.org/"
//! [cargo]
//! locks = ["Cargo.lock"]
//! index = "https://index.crates.io/"
//! [debian]
//! packages = ["pkgs.txt"]
//! suites = ["bookworm", "bookworm-updates"]
//! [oci]
//! images = ["images.txt"]
//! platforms = ["linux/amd64"]
//! [huggingface]
//! models = ["org/model@main"]
//! include = ["*.json", "*.safetensors"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ecosystem::cargo::config::CargoConfig;
use crate::ecosystem::debian::config::DebianConfig;
use crate::ecosystem::huggingface::config::HuggingfaceConfig;
use crate::ecosystem::npm::config::NpmConfig;
use crate::ecosystem::oci::config::OciConfig;
use crate::ecosystem::pypi::config::PypiConfig;
use crate::error::{Error, Result};

/// `config` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub channel: Option<String>,
    pub expires: Option<String>,
    #[serde(default)]
    pub files: Vec<PathBuf>,
    #[serde(default)]
    pub pypi: PypiConfig,
    #[serde(default)]
    pub npm: NpmConfig,
    #[serde(default)]
    pub cargo: CargoConfig,
    #[serde(default)]
    pub debian: DebianConfig,
    #[serde(default)]
    pub oci: OciConfig,
    #[serde(default)]
    pub huggingface: HuggingfaceConfig,
}

impl Config {
    /// Reads a config file and makes its paths absolute.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, "config", &e))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            let first = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            Error::Usage(format!("{}: invalid config: {first}; see schemas/config.cddl", path.display()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for list in [
            &mut config.files,
            &mut config.pypi.locks,
            &mut config.npm.locks,
            &mut config.cargo.locks,
            &mut config.debian.packages,
            &mut config.oci.images,
        ] {
            for p in list.iter_mut() {
                *p = base.join(&*p);
            }
        }
        for p in [&mut config.debian.keyring, &mut config.debian.base].into_iter().flatten() {
            *p = base.join(&*p);
        }
        Ok(config)
    }
}
