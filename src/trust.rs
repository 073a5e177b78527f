//! The import policy as this build reads it: with the table of every
//! ecosystem that has one (`ecosystem::POLICY_TABLES`). The policy module
//! names no ecosystem, so whoever reads a policy file passes the tables;
//! these are the calls that do.

use std::path::Path;

use crate::ecosystem::POLICY_TABLES;
use crate::error::Result;
use crate::policy::{Policy, References};

/// Reads and validates a policy file.
pub fn load_policy(path: &Path) -> Result<Policy> {
    Policy::load(path, POLICY_TABLES)
}

/// Validates policy text; `origin` names it in errors.
pub fn parse_policy(text: &str, references: References<'_>, origin: &str) -> Result<Policy> {
    Policy::parse(text, references, origin, POLICY_TABLES)
}
