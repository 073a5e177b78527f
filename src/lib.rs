//! airlock carries software across air gaps without losing the reasons to
//! trust it. See README.md for the threat model and the command line.
//!
//! The library never prints; the CLI (`cli`) renders reports and progress.

pub mod audit;
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
pub mod http;
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
pub mod sort;
pub mod time;
pub mod trust;
pub mod verify;

pub use error::{Error, Rejection, Result};
pub use time::{creation_time, now};
