//! Hostile bundles of this area (see cases/mod.rs). None yet.

use super::Made;
use crate::base::Base;

pub fn cases(_base: &Base) -> Vec<Made> {
    Vec::new()
}
