//! Per-ecosystem rules: what upstream evidence entries must carry, the
//! trust roots to check it with, who may have built them, and which names
//! are accepted.
//!
//! The rules are the same for every ecosystem; what differs (which evidence
//! kinds exist, how names compare, settings of its own such as pinned
//! registry keys) each ecosystem says through a [`Table`]. Nothing here
//! names an ecosystem.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::names::{NameFold, NameRules, matches};
use super::{References, Tables};
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::provenance::sigstore::Signer;

/// What an ecosystem adds to its table of the policy (`[npm]`, ...). The
/// ecosystems implement it (`ecosystem::POLICY_TABLES` lists them); the
/// policy reads a table only for the implementations it is given.
pub trait Table: Sync {
    /// The table's name: the ecosystem's name in manifests.
    fn name(&self) -> &'static str;
    /// The evidence kinds `require` may name, in the order errors list them.
    fn evidence(&self) -> &'static [EvidenceKind];
    /// Whether evidence of `kind` is checked against the Sigstore root, so
    /// that requiring it needs one pinned.
    fn needs_sigstore(&self, _kind: &str) -> bool {
        false
    }
    /// Why `[[NAME.publishers]]` cannot apply here, if they cannot
    /// (`crates carry no provenance`).
    fn no_publishers(&self) -> Option<&'static str> {
        None
    }
    /// The form names are compared in (lower case unless the ecosystem folds more).
    fn name_fold(&self) -> NameFold {
        NameFold::LOWER
    }
    /// Whether new names are screened against the names the mirror holds
    /// unless `[NAME.names] look-alikes` says otherwise (they are, where
    /// anyone may publish a name; not where a signed archive index vouches
    /// for every name, as Debian's does).
    fn screens_held_names(&self) -> bool {
        true
    }
    /// Settings of this table beyond the common ones, each a string (a file
    /// name or a document inline), in the order errors list them.
    fn settings(&self) -> &'static [&'static str] {
        &[]
    }
    /// Those of [`Table::settings`] that are arrays of tables
    /// (`[[oci.signers]]`): handed to [`Table::resolve`] as their JSON text.
    fn table_settings(&self) -> &'static [&'static str] {
        &[]
    }
    /// Resolves this table's own settings (only those present are in
    /// `settings`) once `require` is known to name only its kinds: the
    /// trust roots they pin, if any.
    fn resolve(
        &self,
        _settings: &BTreeMap<&'static str, String>,
        _require: &[String],
        _references: References<'_>,
        _origin: &str,
    ) -> Result<Option<Pinned>> {
        Ok(None)
    }
}

/// `ecosystem-rules` in schemas/policy.cddl, as written.
#[derive(Debug, Clone, Default)]
pub struct EcosystemRules {
    /// Evidence kinds every entry must carry, verified (`npm-signatures`, ...).
    pub require: Vec<String>,
    /// Settings of the ecosystem's own ([`Table::settings`]), as written.
    pub settings: BTreeMap<&'static str, String>,
    /// Who must have built the packages the rule names.
    pub publishers: Vec<Publisher>,
    pub names: NameRules,
}

/// Trust roots an ecosystem's own settings pin (npm: its registry's keys).
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The roots as the ecosystem parsed them; its evidence checks downcast them.
    pub roots: Arc<dyn Any + Send + Sync>,
    /// The pinned document as written, which the mirror serves to the ecosystem's clients.
    pub document: Vec<u8>,
}

/// `publisher` in schemas/policy.cddl: the Sigstore identity a package's
/// provenance must be signed by, e.g. a given repository's release workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Publisher {
    /// Name patterns (`*` wildcard) this rule governs.
    pub packages: Vec<String>,
    /// The certificate's SAN exactly.
    #[serde(default)]
    pub identity: Option<String>,
    /// Or: the SAN must be a workflow of this repository (`https://github.com/OWNER/REPO`).
    #[serde(default)]
    pub repository: Option<String>,
    /// With `repository`: the workflow file (`.github/workflows/release.yml`).
    #[serde(default)]
    pub workflow: Option<String>,
    /// The OIDC issuer, exactly (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
}

/// Evidence rules for one ecosystem, resolved.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub require: Vec<String>,
    /// What the ecosystem's own settings pin.
    pub pinned: Option<Pinned>,
    pub publishers: Vec<Publisher>,
    pub names: NameRules,
}

impl Rules {
    /// Whether `kind` of evidence is required.
    #[must_use]
    pub fn requires(&self, kind: &str) -> bool {
        self.require.iter().any(|k| k == kind)
    }

    /// The publisher rules governing package `name`.
    pub fn publishers_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Publisher> {
        let fold = self.names.fold;
        let name = fold.apply(name);
        self.publishers.iter().filter(move |p| p.packages.iter().any(|pat| matches(&fold.apply(pat), &name)))
    }

    /// The trust roots the ecosystem's settings pinned, if they are a `T`.
    #[must_use]
    pub fn roots<T: Any>(&self) -> Option<&T> {
        self.pinned.as_ref().and_then(|p| p.roots.downcast_ref())
    }

    /// The pinned document as written (npm: the registry keys the mirror serves).
    #[must_use]
    pub fn pinned_document(&self) -> Option<&[u8]> {
        self.pinned.as_ref().map(|p| p.document.as_slice())
    }
}

impl Publisher {
    /// Whether `signer` is the identity this rule expects.
    #[must_use]
    pub fn accepts(&self, signer: &Signer) -> bool {
        let Signer::Identity { san, issuer } = signer else { return false };
        if *issuer != self.issuer {
            return false;
        }
        match (&self.identity, &self.repository, &self.workflow) {
            (Some(identity), _, _) => san == identity,
            (None, Some(repo), Some(workflow)) => san.starts_with(&format!("{repo}/{workflow}@")),
            (None, Some(repo), None) => san.starts_with(&format!("{repo}/")),
            (None, None, _) => false,
        }
    }

    /// How the report and errors name what is expected.
    #[must_use]
    pub fn describe(&self) -> String {
        match (&self.identity, &self.repository, &self.workflow) {
            (Some(identity), _, _) => identity.clone(),
            (None, Some(repo), Some(workflow)) => format!("{repo}/{workflow}"),
            (None, Some(repo), None) => format!("a workflow of {repo}"),
            (None, None, _) => "nobody".into(),
        }
    }

    /// Checks the rule as written in `[[table]]` (`npm.publishers`, `oci.signers`).
    pub fn validate(&self, origin: &str, table: &str) -> Result<()> {
        let bad = |why: &str| Err(Error::Usage(format!("{origin}: [[{table}]] {why}")));
        if self.packages.is_empty() {
            return bad("names no packages; list the name patterns it governs");
        }
        match (&self.identity, &self.repository, &self.workflow) {
            (None, Some(repo), _) if repo.ends_with('/') || !repo.contains("://") => {
                bad("repository must be a URL without a trailing slash, like https://github.com/OWNER/REPO")
            }
            (Some(_), None, None) | (None, Some(_), _) => Ok(()),
            _ => bad("needs exactly one of identity or repository (workflow only with repository)"),
        }
    }
}

impl EcosystemRules {
    /// Checks the rules of `table` and loads the files they name; `tables`
    /// are every table the policy may have (a setting of another's is
    /// refused by that one's name).
    pub fn resolve(
        &self,
        table: &dyn Table,
        tables: Tables<'_>,
        references: References<'_>,
        origin: &str,
        has_sigstore: bool,
    ) -> Result<Rules> {
        let ecosystem = table.name();
        self.check_require(table, origin)?;
        if let Some(setting) = self.settings.keys().find(|s| !table.settings().contains(s)) {
            let owner = tables.iter().find(|t| t.settings().contains(setting)).map_or("other", |t| t.name());
            return Err(Error::Usage(format!("{origin}: {setting} is an {owner} setting, not {ecosystem}")));
        }
        let pinned = table.resolve(&self.settings, &self.require, references, origin)?;
        let needs_sigstore = !self.publishers.is_empty() || self.require.iter().any(|k| table.needs_sigstore(k));
        if needs_sigstore && !has_sigstore {
            return Err(Error::Usage(format!(
                "{origin}: [{ecosystem}] checks provenance but the policy pins no Sigstore root; add [sigstore] trusted-root = \"trusted_root.json\""
            )));
        }
        if let Some(why) = table.no_publishers()
            && !self.publishers.is_empty()
        {
            return Err(Error::Usage(format!("{origin}: {why}; remove [[{ecosystem}.publishers]]")));
        }
        for publisher in &self.publishers {
            publisher.validate(origin, &format!("{ecosystem}.publishers"))?;
        }
        let mut names = self.names.clone();
        names.fold = table.name_fold();
        names.ignore_held = !names.look_alikes.unwrap_or_else(|| table.screens_held_names());
        Ok(Rules { require: self.require.clone(), pinned, publishers: self.publishers.clone(), names })
    }

    fn check_require(&self, table: &dyn Table, origin: &str) -> Result<()> {
        let kinds = table.evidence();
        match self.require.iter().find(|k| !kinds.iter().any(|kind| kind.name == k.as_str())) {
            None => Ok(()),
            Some(kind) => Err(Error::Usage(format!(
                "{origin}: [{}] requires unknown evidence {kind:?}; use one of {}",
                table.name(),
                kinds.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(identity: Option<&str>, repository: Option<&str>, workflow: Option<&str>) -> Publisher {
        Publisher {
            packages: vec!["x".into()],
            identity: identity.map(Into::into),
            repository: repository.map(Into::into),
            workflow: workflow.map(Into::into),
            issuer: "https://token.actions.githubusercontent.com".into(),
        }
    }

    fn signer(san: &str) -> Signer {
        Signer::Identity { san: san.into(), issuer: "https://token.actions.githubusercontent.com".into() }
    }

    #[test]
    fn repository_rules_do_not_match_a_sibling_repository() {
        let rule = publisher(None, Some("https://github.com/org/repo"), None);
        assert!(rule.accepts(&signer("https://github.com/org/repo/.github/workflows/r.yml@refs/tags/v1")));
        assert!(!rule.accepts(&signer("https://github.com/org/repo-evil/.github/workflows/r.yml@refs/tags/v1")));
        let rule = publisher(None, Some("https://github.com/org/repo"), Some(".github/workflows/r.yml"));
        assert!(rule.accepts(&signer("https://github.com/org/repo/.github/workflows/r.yml@refs/tags/v1")));
        assert!(!rule.accepts(&signer("https://github.com/org/repo/.github/workflows/r.yml.evil@refs/tags/v1")));
        let exact = publisher(Some("https://github.com/org/repo/.github/workflows/r.yml@refs/tags/v1"), None, None);
        assert!(exact.accepts(&signer("https://github.com/org/repo/.github/workflows/r.yml@refs/tags/v1")));
        assert!(!exact.accepts(&Signer::Identity {
            san: "https://github.com/org/repo/.github/workflows/r.yml@refs/tags/v1".into(),
            issuer: "https://evil.example".into()
        }));
        assert!(!exact.accepts(&Signer::RegistryKey("k".into())));
    }
}
