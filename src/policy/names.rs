//! Which package names a site accepts: allow and deny lists, private names
//! that only internal sources may supply (dependency confusion), and a
//! screen that holds back names that look like a protected name or one the
//! mirror already has (typosquatting) until an operator has reviewed them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::look_alike::{PAIR_BUDGET, TooManyPairs, first_look_alikes, looks_alike};
use crate::error::Rejection;
use crate::manifest::Entry;

/// `name-rules` in schemas/policy.cddl, per ecosystem.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NameRules {
    /// Only names matching one of these patterns are accepted (absent: any).
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Names matching any of these patterns are refused.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Internal names: accepted only from a source under `private-sources`.
    #[serde(default)]
    pub private: Vec<String>,
    /// URL prefixes of the site's internal registries.
    #[serde(default)]
    pub private_sources: Vec<String>,
    /// Names that look-alikes are screened against, beside the mirror's own.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Names an operator reviewed and accepts although they look like another.
    #[serde(default)]
    pub reviewed: Vec<String>,
    /// Whether a new name is also screened against the names the mirror
    /// holds (`protect` always is); absent: the ecosystem's default.
    #[serde(default)]
    pub look_alikes: Option<bool>,
    /// [`NameRules::look_alikes`] resolved against the ecosystem's default:
    /// `true` when held names are not screened against (unset, they are).
    #[serde(skip)]
    pub ignore_held: bool,
    /// How the ecosystem compares names (set when the rules are resolved).
    #[serde(skip)]
    pub fold: NameFold,
}

/// The form an ecosystem compares names in (PEP 503 for PyPI, `-` and `_`
/// alike for crates, lower case everywhere): its own function, given by the
/// ecosystem's [`Table`](super::Table).
#[derive(Clone, Copy)]
pub struct NameFold(pub fn(&str) -> String);

impl NameFold {
    /// Lower case only.
    pub const LOWER: NameFold = NameFold(str::to_lowercase);

    /// `name` in the form names are compared in.
    #[must_use]
    pub fn apply(self, name: &str) -> String {
        (self.0)(name)
    }
}

impl Default for NameFold {
    fn default() -> Self {
        NameFold::LOWER
    }
}

impl std::fmt::Debug for NameFold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameFold")
    }
}

impl NameRules {
    /// Allow, deny and private rules for one entry.
    pub fn check(&self, ecosystem: &str, entry: &Entry) -> Result<(), Rejection> {
        let normalize = |name: &str| self.fold.apply(name);
        let name = normalize(&entry.name);
        let id = format!("{ecosystem} {}", entry.name);
        if let Some(pattern) = self.deny.iter().find(|p| matches(&normalize(p), &name)) {
            return Err(Rejection::Policy(format!("{id}: the policy denies names matching {pattern:?}")));
        }
        if let Some(allow) = &self.allow
            && !allow.iter().any(|p| matches(&normalize(p), &name))
        {
            return Err(Rejection::Policy(format!(
                "{id}: not on the policy's allow list; add it to [{ecosystem}] allow if the site wants it"
            )));
        }
        if self.private.iter().any(|p| matches(&normalize(p), &name)) {
            let source = entry.source.as_deref().unwrap_or("an unknown source");
            if !self.private_sources.iter().any(|prefix| source.starts_with(prefix.as_str())) {
                return Err(Rejection::Policy(format!(
                    "{id}: is a private name but came from {source}, not from a private-sources registry; a public package may be impersonating an internal one"
                )));
            }
        }
        Ok(())
    }

    /// The look-alike screen: a name new to the mirror that is within a small
    /// edit distance of a protected name or of one the mirror holds.
    pub fn screen(&self, ecosystem: &str, entry: &Entry, held: &HeldNames) -> Result<(), Rejection> {
        let normalize = |name: &str| self.fold.apply(name);
        let name = normalize(&entry.name);
        if held.names.contains(&name) || self.reviewed.iter().any(|r| normalize(r) == name) {
            return Ok(());
        }
        let protected = self.protect.iter().map(|p| normalize(p)).find(|p| *p != name && looks_alike(&name, p));
        let similar =
            protected.as_deref().or_else(|| held.similar.get(&name).map(String::as_str).filter(|_| !self.ignore_held));
        if let Some(similar) = similar {
            return Err(Rejection::Policy(format!(
                "{ecosystem} {}: is new here and looks like {similar}; held back for review: if it is genuine, add it to [{ecosystem}] reviewed in the policy",
                entry.name
            )));
        }
        Ok(())
    }

    /// The names of one ecosystem a mirror holds, `held` (in the form
    /// [`NameRules::fold`] gives), made ready to screen `entries`: each of
    /// their names new to the mirror is matched against the held ones once,
    /// through an index ([`look_alike`](super::look_alike)).
    pub fn held_names<'e>(
        &self,
        ecosystem: &str,
        held: BTreeSet<String>,
        entries: impl IntoIterator<Item = &'e Entry>,
    ) -> Result<HeldNames, Rejection> {
        let mut similar = BTreeMap::new();
        if !self.ignore_held && !held.is_empty() {
            let new: BTreeSet<String> =
                entries.into_iter().map(|e| self.fold.apply(&e.name)).filter(|n| !held.contains(n)).collect();
            let new: Vec<&str> = new.iter().map(String::as_str).collect();
            let found = first_look_alikes(&new, &held).map_err(|TooManyPairs| {
                Rejection::Policy(format!(
                    "{ecosystem}: the look-alike screen would compare more than {PAIR_BUDGET} pairs of the bundle's new names with the mirror's (names made to resemble many held ones); review the bundle, or set look-alikes = false in [{ecosystem}.names] to skip the screen against held names"
                ))
            })?;
            for (name, similar_to) in new.iter().zip(found) {
                if let Some(held_name) = similar_to {
                    similar.insert((*name).to_owned(), held_name.to_owned());
                }
            }
        }
        Ok(HeldNames { names: held, similar })
    }
}

/// The names a mirror holds in one ecosystem, for [`NameRules::screen`]: the
/// names themselves and, for each name new to the mirror, the first held
/// name it looks like. Empty: only protected names are screened against.
#[derive(Debug, Default)]
pub struct HeldNames {
    names: BTreeSet<String>,
    similar: BTreeMap<String, String>,
}

/// Glob match where `*` stands for any run of characters.
#[must_use]
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("@corp/*", "@corp/tool"));
        assert!(!matches("@corp/*", "@corpx/tool"));
        assert!(matches("*", "anything"));
        assert!(matches("corp-*-internal", "corp-auth-internal"));
        assert!(!matches("corp-*-internal", "corp-auth-internal-x"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
    }
}
