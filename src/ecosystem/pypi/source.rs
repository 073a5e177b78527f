//! PyPI on the export side: requirements.txt or pylock.toml files in, each
//! pinned release's files (as [`Selection`] chooses them) with their
//! evidence out, from the simple index the flag, the config file or pip's
//! own configuration names.

use std::path::PathBuf;

use super::lockfile::{self, PypiPin};
use super::{DEFAULT_INDEX, NAME, Selection, check_pins, resolve};
use crate::ecosystem::endpoints::{env_nonempty, home, ini_value};
use crate::ecosystem::registry::{append, planned_pins, read_lockfiles};
use crate::ecosystem::{Artifact, FetchContext, Pinned, Planned, Source};
use crate::error::Result;

/// PyPI's part of an export.
#[derive(Debug, Clone, Default)]
pub struct Lockfiles {
    /// requirements.txt or pylock.toml files.
    pub locks: Vec<PathBuf>,
    /// The simple index; `None`: pip's `index-url`, else [`DEFAULT_INDEX`].
    pub index: Option<String>,
    /// Which files of each release to take.
    pub selection: Selection,
}

impl Source for Lockfiles {
    fn lockfiles(&self) -> &[PathBuf] {
        &self.locks
    }

    fn read(&self) -> Result<Box<dyn Pinned + '_>> {
        let pins = read_lockfiles(&self.locks, |path, text, origin| {
            let is_pylock = path.extension().is_some_and(|e| e == "toml");
            let parsed = if is_pylock {
                lockfile::parse_pylock(text, origin)?
            } else {
                lockfile::parse_requirements(text, origin)?
            };
            check_pins(&parsed, origin)?;
            Ok(parsed)
        })?;
        Ok(Box::new(Pins { source: self, pins }))
    }
}

/// What each lockfile pins, in the order of [`Lockfiles::locks`].
struct Pins<'a> {
    source: &'a Lockfiles,
    pins: Vec<Vec<PypiPin>>,
}

impl Pinned for Pins<'_> {
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>> {
        let mut artifacts = Vec::new();
        for pins in &self.pins {
            append(&mut artifacts, resolve(pins, &self.source.index(), &self.source.selection, ctx)?);
        }
        Ok(artifacts)
    }

    fn planned(&self) -> Vec<Planned> {
        let index = self.source.index();
        let planned = |(lock, pins): (&PathBuf, &Vec<PypiPin>)| {
            planned_pins(NAME, &index, lock, pins.iter().map(|p| (p.name.as_str(), p.version.as_str())))
        };
        self.source.locks.iter().zip(&self.pins).flat_map(planned).collect()
    }
}

impl Lockfiles {
    /// The flag's index, else pip's `index-url`, else [`DEFAULT_INDEX`].
    fn index(&self) -> String {
        self.index.clone().or_else(pip_index_url).unwrap_or_else(|| DEFAULT_INDEX.to_owned())
    }
}

/// pip's `index-url` from `PIP_INDEX_URL` or its config files.
#[must_use]
pub fn pip_index_url() -> Option<String> {
    if let Some(url) = env_nonempty("PIP_INDEX_URL") {
        return Some(url);
    }
    let home = home();
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = env_nonempty("PIP_CONFIG_FILE") {
        files.push(file.into());
    }
    if let Some(home) = &home {
        files.push(home.join(".config/pip/pip.conf"));
        files.push(home.join(".pip/pip.conf"));
    }
    files.push("/etc/pip.conf".into());
    files.iter().find_map(|f| ini_value(f, "global", "index-url"))
}
