//! The `[npm]` section of `airlock.toml` (schemas/config.cddl).

use std::path::PathBuf;

use serde::Deserialize;

/// `npm` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmConfig {
    #[serde(default)]
    pub locks: Vec<PathBuf>,
    pub registry: Option<String>,
}
