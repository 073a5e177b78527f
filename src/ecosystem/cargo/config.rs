//! The `[cargo]` section of `airlock.toml` (schemas/config.cddl).

use std::path::PathBuf;

use serde::Deserialize;

/// `cargo` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoConfig {
    #[serde(default)]
    pub locks: Vec<PathBuf>,
    pub index: Option<String>,
}
