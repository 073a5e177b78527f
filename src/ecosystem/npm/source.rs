//! npm on the export side: package-lock.json files in, each pinned tarball
//! with its evidence out, from the registry the flag, the config file or
//! npm's own configuration names.

use std::path::{Path, PathBuf};

use super::lockfile::{self, NpmPin};
use super::{DEFAULT_REGISTRY, NAME, check_pins, resolve};
use crate::ecosystem::endpoints::{env_nonempty, home, ini_value};
use crate::ecosystem::registry::{append, planned_pins, read_lockfiles};
use crate::ecosystem::{Artifact, FetchContext, Pinned, Planned, Source};
use crate::error::Result;

/// npm's part of an export.
#[derive(Debug, Clone, Default)]
pub struct Lockfiles {
    /// package-lock.json files.
    pub locks: Vec<PathBuf>,
    /// The registry; `None`: npm's `registry` setting, else [`DEFAULT_REGISTRY`].
    pub registry: Option<String>,
}

impl Source for Lockfiles {
    fn lockfiles(&self) -> &[PathBuf] {
        &self.locks
    }

    fn read(&self) -> Result<Box<dyn Pinned + '_>> {
        let pins = read_lockfiles(&self.locks, |path, text, origin| {
            let parsed = lockfile::parse_package_lock(text, origin)?;
            check_pins(&parsed, origin)?;
            Ok((path, parsed))
        })?;
        Ok(Box::new(Pins { source: self, pins }))
    }
}

/// What each lockfile pins, with the lockfile (whose folder may hold an `.npmrc`).
struct Pins<'a> {
    source: &'a Lockfiles,
    pins: Vec<(&'a Path, Vec<NpmPin>)>,
}

impl Pinned for Pins<'_> {
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>> {
        let mut artifacts = Vec::new();
        for (path, pins) in &self.pins {
            append(&mut artifacts, resolve(pins, &self.source.registry_for(path), ctx)?);
        }
        Ok(artifacts)
    }

    fn planned(&self) -> Vec<Planned> {
        let planned = |(lock, pins): &(&Path, Vec<NpmPin>)| {
            let registry = self.source.registry_for(lock);
            planned_pins(NAME, &registry, lock, pins.iter().map(|p| (p.name.as_str(), p.version.as_str())))
        };
        self.pins.iter().flat_map(planned).collect()
    }
}

impl Lockfiles {
    /// The flag's registry, else npm's setting for the lockfile at `lock`,
    /// else [`DEFAULT_REGISTRY`].
    fn registry_for(&self, lock: &Path) -> String {
        self.registry.clone().or_else(|| npm_registry(lock.parent())).unwrap_or_else(|| DEFAULT_REGISTRY.to_owned())
    }
}

/// npm's registry setting: `npm_config_registry`, then `registry=` in the
/// project's .npmrc (beside the lockfile), then in ~/.npmrc.
#[must_use]
pub fn npm_registry(lockfile_dir: Option<&Path>) -> Option<String> {
    if let Some(url) = env_nonempty("npm_config_registry").or_else(|| env_nonempty("NPM_CONFIG_REGISTRY")) {
        return Some(url);
    }
    let mut files = Vec::new();
    if let Some(dir) = lockfile_dir {
        files.push(dir.join(".npmrc"));
    }
    if let Some(home) = home() {
        files.push(home.join(".npmrc"));
    }
    files.iter().find_map(|f| ini_value(f, "", "registry"))
}

#[cfg(test)]
mod tests {
    use crate::ecosystem::ManifestExt as _;
    use crate::ecosystem::registry::carry;

    #[test]
    fn optional_evidence_over_its_cap_is_recorded_as_missing() {
        let mut entry = crate::manifest::tests::sample().entries.remove(0);
        let cap = crate::ecosystem::evidence::kind("npm-signatures").unwrap().max_bytes as usize;
        carry(&mut entry, "npm-signatures", Some(vec![b' '; cap]), "http://r/a");
        carry(&mut entry, "npm-attestations", Some(vec![b' '; 2 << 20]), "http://r/b");
        assert_eq!(entry.evidence.len(), 1);
        assert_eq!(entry.missing.len(), 1);
        assert_eq!(entry.missing[0].kind, "npm-attestations");
        assert_eq!(
            entry.missing[0].looked,
            "http://r/b, which served 2097152 bytes, over the 1 MiB cap for npm-attestations"
        );
        let mut manifest = crate::manifest::tests::sample();
        manifest.entries = vec![entry].into();
        manifest.check().unwrap();
    }
}
