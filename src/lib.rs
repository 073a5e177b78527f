//! airlock carries software across air gaps without losing the reasons to
//! trust it. See README.md for the threat model and the command line.
//!
//! The library never prints; the CLI (`cli`) renders reports and progress.

pub mod bundle;
pub mod cli;
pub mod config;
pub mod cosign;
pub mod durable;
pub mod ecosystem;
pub mod error;
pub mod escape;
pub mod export;
pub mod fetch;
pub mod id;
pub mod import;
pub mod inspect;
pub mod lockfile;
pub mod manifest;
pub mod mirror;
pub mod policy;
pub mod progress;
pub mod provenance;
pub mod sbom;
pub mod serve;
pub mod sign;
pub mod trust;
pub mod verify;

pub use error::{Error, Rejection, Result};

/// Seconds since the Unix epoch, from the system clock. Verification always
/// uses this: nothing in the environment can move an expiry check.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The creation time written into a new manifest: `SOURCE_DATE_EPOCH` when
/// set (reproducible exports, as in reproducible-builds.org), else [`now`].
#[must_use]
pub fn creation_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok()).unwrap_or_else(now)
}
