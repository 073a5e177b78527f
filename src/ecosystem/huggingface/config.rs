//! The `[huggingface]` section of `airlock.toml` (schemas/config.cddl).

use serde::Deserialize;

/// `huggingface` in schemas/config.cddl.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuggingfaceConfig {
    /// `ORG/NAME[@REVISION]` of models.
    #[serde(default)]
    pub models: Vec<String>,
    /// `ORG/NAME[@REVISION]` of datasets.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Globs of the files carried (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of files left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The hub, over `HF_ENDPOINT` and the public default.
    pub endpoint: Option<String>,
}
