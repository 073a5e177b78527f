//! npm's `airlock export` flags, merged with the `[npm]` config section into
//! the export's [`Lockfiles`]. The lockfile flag is listed with the other
//! inputs, the registry flag with the other registries.

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::Args;

use super::config::NpmConfig;
use super::source::Lockfiles;

// `group(skip)`: every ecosystem has a `LockArgs`, and clap would make an
// argument group of each, all named after it.
/// The lockfile flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct LockArgs {
    /// Carry what a package-lock.json (lockfileVersion 2 or 3) pins; repeatable
    #[arg(long, value_name = "FILE")]
    pub npm_lock: Vec<PathBuf>,
}

/// The registry flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct RegistryArgs {
    /// npm registry [default: npm's registry setting, else https://registry.npmjs.org/]
    #[arg(long, value_name = "URL")]
    pub npm_registry: Option<String>,
}

/// The export's npm part: the config's lockfiles then the flag's, and the
/// registry from the flag, else the config.
#[must_use]
pub fn lockfiles(lock: &LockArgs, registry: &RegistryArgs, config: &NpmConfig) -> Lockfiles {
    Lockfiles {
        locks: config.locks.iter().chain(&lock.npm_lock).cloned().collect(),
        registry: registry.npm_registry.clone().or(config.registry.clone()),
    }
}
