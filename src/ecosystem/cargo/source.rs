//! Crates on the export side: Cargo.lock files in, each pinned registry
//! crate with its index line out, from the sparse index the flag, the config
//! file or cargo's own source replacement names.

use std::fs;
use std::path::PathBuf;

use super::lockfile::{self, CratePin};
use super::{DEFAULT_INDEX, NAME, check_pins, resolve};
use crate::ecosystem::endpoints::{env_nonempty, home};
use crate::ecosystem::registry::{append, planned_pins, read_lockfiles};
use crate::ecosystem::{Artifact, FetchContext, Pinned, Planned, Source};
use crate::error::Result;

/// Cargo's part of an export.
#[derive(Debug, Clone, Default)]
pub struct Lockfiles {
    /// Cargo.lock files.
    pub locks: Vec<PathBuf>,
    /// The sparse index; `None`: cargo's source replacement, else [`DEFAULT_INDEX`].
    pub index: Option<String>,
}

impl Source for Lockfiles {
    fn lockfiles(&self) -> &[PathBuf] {
        &self.locks
    }

    fn read(&self) -> Result<Box<dyn Pinned + '_>> {
        let pins = read_lockfiles(&self.locks, |_, text, origin| {
            let parsed = lockfile::parse_cargo_lock(text, origin)?;
            check_pins(&parsed, origin)?;
            Ok(parsed)
        })?;
        Ok(Box::new(Pins { source: self, pins }))
    }
}

/// What each lockfile pins, in the order of [`Lockfiles::locks`].
struct Pins<'a> {
    source: &'a Lockfiles,
    pins: Vec<Vec<CratePin>>,
}

impl Pinned for Pins<'_> {
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>> {
        let mut artifacts = Vec::new();
        for pins in &self.pins {
            append(&mut artifacts, resolve(pins, &self.source.index(), ctx)?);
        }
        Ok(artifacts)
    }

    fn planned(&self) -> Vec<Planned> {
        let index = self.source.index();
        let planned = |(lock, pins): (&PathBuf, &Vec<CratePin>)| {
            planned_pins(NAME, &index, lock, pins.iter().map(|p| (p.name.as_str(), p.version.as_str())))
        };
        self.source.locks.iter().zip(&self.pins).flat_map(planned).collect()
    }
}

impl Lockfiles {
    /// The flag's index, else cargo's source replacement, else [`DEFAULT_INDEX`].
    fn index(&self) -> String {
        self.index.clone().or_else(cargo_index).unwrap_or_else(|| DEFAULT_INDEX.to_owned())
    }
}

/// The endpoint for crates.io in cargo's source replacement
/// (`[source.crates-io] replace-with = "x"`, `[source.x] registry = "sparse+URL"`).
#[must_use]
pub fn cargo_index() -> Option<String> {
    let cargo_home = env_nonempty("CARGO_HOME").map(PathBuf::from).or_else(|| home().map(|h| h.join(".cargo")))?;
    let text = fs::read_to_string(cargo_home.join("config.toml"))
        .or_else(|_| fs::read_to_string(cargo_home.join("config")))
        .ok()?;
    let config: toml::Value = toml::from_str(&text).ok()?;
    let sources = config.get("source")?;
    let replacement = sources.get("crates-io")?.get("replace-with")?.as_str()?;
    let registry = sources.get(replacement)?.get("registry")?.as_str()?;
    registry.strip_prefix("sparse+").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use crate::ecosystem::ManifestExt as _;
    use crate::ecosystem::registry::carry_needed;

    #[test]
    fn needed_evidence_over_its_cap_is_refused() {
        let mut entry = crate::manifest::tests::sample().entries.remove(0);
        let err = carry_needed(&mut entry, "cargo-index-entry", vec![b' '; 2 << 20], "crate big 1.0.0").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("crate big 1.0.0: the registry's cargo-index-entry is 2097152 bytes, over the 1 MiB cap"),
            "{err}"
        );
        carry_needed(&mut entry, "cargo-index-entry", b"{}".to_vec(), "crate big 1.0.0").unwrap();
        assert_eq!(entry.evidence.len(), 1);
        let mut manifest = crate::manifest::tests::sample();
        manifest.entries = vec![entry].into();
        manifest.check().unwrap();
    }
}
