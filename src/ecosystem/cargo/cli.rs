//! Cargo's `airlock export` flags, merged with the `[cargo]` config section
//! into the export's [`Lockfiles`]. The lockfile flag is listed with the
//! other inputs, the index flag with the other registries.

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::Args;

use super::config::CargoConfig;
use super::source::Lockfiles;

// `group(skip)`: every ecosystem has a `LockArgs`, and clap would make an
// argument group of each, all named after it.
/// The lockfile flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct LockArgs {
    /// Carry the registry crates a Cargo.lock pins; repeatable
    #[arg(long, value_name = "FILE")]
    pub cargo_lock: Vec<PathBuf>,
}

/// The index flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct IndexArgs {
    /// Sparse cargo index for crates.io packages [default: cargo's source replacement, else https://index.crates.io/]
    #[arg(long, value_name = "URL")]
    pub cargo_index: Option<String>,
}

/// The export's Cargo part: the config's lockfiles then the flag's, and the
/// index from the flag, else the config.
#[must_use]
pub fn lockfiles(lock: &LockArgs, index: &IndexArgs, config: &CargoConfig) -> Lockfiles {
    Lockfiles {
        locks: config.locks.iter().chain(&lock.cargo_lock).cloned().collect(),
        index: index.cargo_index.clone().or(config.index.clone()),
    }
}
