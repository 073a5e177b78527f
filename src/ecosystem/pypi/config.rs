//! The `[pypi]` section of `airlock.toml` (schemas/config.cddl).

use std::path::PathBuf;

use serde::Deserialize;

/// `pypi` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PypiConfig {
    #[serde(default)]
    pub locks: Vec<PathBuf>,
    pub index: Option<String>,
    pub python_versions: Option<Vec<String>>,
    pub platforms: Option<Vec<String>>,
    pub all_files: Option<bool>,
    pub sdist: Option<bool>,
}
