//! The crates' table of the import policy (`[cargo]`): the common rules,
//! with `-` and `_` alike in names, and no publishers (no provenance).

use super::Cargo;
use crate::manifest::evidence::EvidenceKind;
use crate::policy::Table;
use crate::policy::names::NameFold;

impl Table for Cargo {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn evidence(&self) -> &'static [EvidenceKind] {
        &super::evidence::EVIDENCE
    }

    fn no_publishers(&self) -> Option<&'static str> {
        Some("crates carry no provenance")
    }

    fn name_fold(&self) -> NameFold {
        NameFold(normalize_name)
    }
}

/// crates.io's comparison: lower case, `-` and `_` alike.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    name.to_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn normal_form() {
        assert_eq!(super::normalize_name("Serde_JSON"), "serde-json");
    }
}
