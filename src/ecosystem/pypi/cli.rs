//! PyPI's `airlock export` flags, merged with the `[pypi]` config section
//! into the export's [`Lockfiles`]. The flags come in three groups, flattened
//! where `--help` has listed them: the lockfile with the other inputs, the
//! index with the other registries, the file choices after them.

// Doc comments on the argument structs are the --help and man page text, written for
// operators, not rustdoc: no Markdown backticks there.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::Args;

use super::Selection;
use super::config::PypiConfig;
use super::source::Lockfiles;

// `group(skip)`: every ecosystem has a `LockArgs`, and clap would make an
// argument group of each, all named after it.
/// The lockfile flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct LockArgs {
    /// Carry what a requirements.txt (exact pins, --hash honoured) or a pylock.toml pins; repeatable
    #[arg(long, value_name = "FILE")]
    pub pypi_lock: Vec<PathBuf>,
}

/// The index flag.
#[derive(Debug, Args)]
#[group(skip)]
pub struct IndexArgs {
    /// PyPI simple index (PEP 691 JSON) [default: pip's index-url, else https://pypi.org/simple/]
    #[arg(long, value_name = "URL")]
    pub pypi_index: Option<String>,
}

/// Which files of each release to take.
#[derive(Debug, Args)]
#[group(skip)]
pub struct FileArgs {
    /// CPython version whose wheels to take, e.g. 3.12; repeatable [default: 3.12]
    #[arg(long, value_name = "X.Y", value_parser = parse_python_version)]
    pub python_version: Vec<String>,
    /// Wheel platform family, e.g. manylinux_x86_64, musllinux_aarch64, win_amd64; repeatable [default: manylinux_x86_64]
    #[arg(long, value_name = "PLATFORM")]
    pub python_platform: Vec<String>,
    /// Take every file of each pinned PyPI release, whatever its platform
    #[arg(long)]
    pub pypi_all_files: bool,
    /// Leave out PyPI source distributions
    #[arg(long)]
    pub no_sdist: bool,
}

/// `3.12`: a CPython version as wheel tags name it (`cp312`), major and minor.
fn parse_python_version(text: &str) -> Result<String, String> {
    let numbers: Vec<&str> = text.split('.').collect();
    let is_number = |n: &&str| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit());
    if numbers.len() == 2 && numbers.iter().all(is_number) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a Python version; give major and minor, e.g. 3.12"))
    }
}

/// The export's PyPI part: the config's lockfiles then the flag's, and each
/// setting from its flag, else the config, else the default.
#[must_use]
pub fn lockfiles(lock: &LockArgs, index: &IndexArgs, files: &FileArgs, config: &PypiConfig) -> Lockfiles {
    let defaults = Selection::default();
    let or_config = |flag: &[String], conf: &Option<Vec<String>>, default: Vec<String>| {
        if flag.is_empty() { conf.clone().unwrap_or(default) } else { flag.to_vec() }
    };
    Lockfiles {
        locks: config.locks.iter().chain(&lock.pypi_lock).cloned().collect(),
        index: index.pypi_index.clone().or(config.index.clone()),
        selection: Selection {
            all: files.pypi_all_files || config.all_files.unwrap_or(false),
            python_versions: or_config(&files.python_version, &config.python_versions, defaults.python_versions),
            platforms: or_config(&files.python_platform, &config.platforms, defaults.platforms),
            sdist: !files.no_sdist && config.sdist.unwrap_or(true),
        },
    }
}
