//! Debian's `airlock export` flags, merged with the `[debian]` config
//! section into the export's [`Lockfiles`]. The package-list flag is listed
//! with the other inputs, the archive flags with the other registries.

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::Args;

use super::config::DebianConfig;
use super::source::Lockfiles;

/// The package-list flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct LockArgs {
    /// Carry these Debian packages and their dependency closure (one a line: name, name=version, name:arch; # comments), with each suite's InRelease and index files; repeatable
    #[arg(long, value_name = "FILE")]
    pub debian_packages: Vec<PathBuf>,
}

/// The archive flags.
#[derive(Debug, Args)]
#[group(skip)]
pub struct ArchiveArgs {
    /// Debian archive to fetch from [default: the one the host's apt sources name for the first suite, else http://deb.debian.org/debian]
    #[arg(long, value_name = "URL")]
    pub debian_archive: Option<String>,
    /// Suite (codename) whose InRelease, index files and packages to carry, e.g. bookworm, bookworm-updates; repeatable, earlier suites win ties
    #[arg(long, value_name = "SUITE")]
    pub debian_suite: Vec<String>,
    /// Archive component to carry; repeatable [default: main]
    #[arg(long, value_name = "NAME")]
    pub debian_component: Vec<String>,
    /// Architecture to resolve and carry, each closure on its own (with the "all" packages); repeatable [default: amd64]
    #[arg(long, value_name = "ARCH")]
    pub debian_arch: Vec<String>,
    /// OpenPGP keyring the exporter checks each InRelease against before fetching anything else [default: /usr/share/keyrings/debian-archive-keyring.gpg]
    #[arg(long, value_name = "FILE")]
    pub debian_keyring: Option<PathBuf>,
    /// What the target machines already have (the output of dpkg-query -W there): left out of the closure
    #[arg(long, value_name = "FILE")]
    pub debian_base: Option<PathBuf>,
    /// Follow Recommends too, as apt installs them by default (one nothing satisfies is left out, as apt does)
    #[arg(long)]
    pub debian_recommends: bool,
}

/// The export's Debian part: the config's package lists then the flag's;
/// each setting from the flag, else the config.
#[must_use]
pub fn lockfiles(lock: &LockArgs, archive: &ArchiveArgs, config: &DebianConfig) -> Lockfiles {
    let or = |flag: &Vec<String>, conf: &Vec<String>| if flag.is_empty() { conf.clone() } else { flag.clone() };
    Lockfiles {
        locks: config.packages.iter().chain(&lock.debian_packages).cloned().collect(),
        archive: archive.debian_archive.clone().or(config.archive.clone()),
        suites: or(&archive.debian_suite, &config.suites),
        components: or(&archive.debian_component, &config.components),
        architectures: or(&archive.debian_arch, &config.architectures()),
        keyring: archive.debian_keyring.clone().or(config.keyring.clone()),
        base: archive.debian_base.clone().or(config.base.clone()),
        recommends: archive.debian_recommends || config.recommends,
    }
}
