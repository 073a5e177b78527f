//! PyPI's table of the import policy (`[pypi]`): the common rules, with
//! names compared in their PEP 503 form.

use super::Pypi;
use crate::manifest::evidence::EvidenceKind;
use crate::policy::Table;
use crate::policy::names::NameFold;

impl Table for Pypi {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn evidence(&self) -> &'static [EvidenceKind] {
        &super::evidence::EVIDENCE
    }

    fn needs_sigstore(&self, kind: &str) -> bool {
        kind == "pypi-provenance"
    }

    fn name_fold(&self) -> NameFold {
        NameFold(normalize_name)
    }
}

/// PEP 503's normal form: lower case, runs of `-`, `_` and `.` as one `-`.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        let c = if matches!(c, '_' | '.') { '-' } else { c };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn normal_form() {
        assert_eq!(super::normalize_name("Zope.Interface__x"), "zope-interface-x");
    }
}
