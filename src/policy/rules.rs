//! Per-ecosystem rules: what upstream evidence entries must carry, the
//! trust roots to check it with, who may have built them, and which names
//! are accepted.

use serde::Deserialize;

use super::References;
use super::names::{NameRules, matches, normalize};
use crate::error::{Error, Result};
use crate::manifest::EVIDENCE_KINDS;
use crate::provenance::npm::RegistryKeys;
use crate::provenance::sigstore::Signer;

/// `ecosystem-rules` in schemas/policy.cddl.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EcosystemRules {
    /// Evidence kinds every entry must carry, verified (`npm-signatures`, ...).
    #[serde(default)]
    pub require: Vec<String>,
    /// npm only: the registry's keys document, relative to the policy.
    #[serde(default)]
    pub registry_keys: Option<String>,
    /// npm only: the same document inline, as JSON text (what a signed
    /// statement must use, since it cannot name a file).
    #[serde(default)]
    pub registry_keys_json: Option<String>,
    /// Who must have built the packages the rule names.
    #[serde(default)]
    pub publishers: Vec<Publisher>,
    #[serde(default)]
    pub names: NameRules,
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
    pub npm_keys: Option<RegistryKeys>,
    /// The pinned keys document as written, which the mirror serves to npm clients.
    pub npm_keys_document: Option<Vec<u8>>,
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
    pub fn publishers_of<'a>(&'a self, ecosystem: &'a str, name: &str) -> impl Iterator<Item = &'a Publisher> {
        let name = normalize(ecosystem, name);
        self.publishers.iter().filter(move |p| p.packages.iter().any(|pat| matches(&normalize(ecosystem, pat), &name)))
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

    fn validate(&self, origin: &str, ecosystem: &str) -> Result<()> {
        let bad = |why: &str| Err(Error::Usage(format!("{origin}: [[{ecosystem}.publishers]] {why}")));
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
    /// Checks the rules and loads the files they name (relative to `base`).
    pub fn resolve(
        &self,
        ecosystem: &str,
        references: References<'_>,
        origin: &str,
        has_sigstore: bool,
    ) -> Result<Rules> {
        self.check_require(ecosystem, origin)?;
        if ecosystem != "npm" && (self.registry_keys.is_some() || self.registry_keys_json.is_some()) {
            return Err(Error::Usage(format!("{origin}: registry-keys is an npm setting, not {ecosystem}")));
        }
        let (npm_keys, npm_keys_document) = match self.registry_keys_document(references, origin)? {
            Some((document, label)) => (Some(RegistryKeys::from_json(&document, &label)?), Some(document)),
            None => (None, None),
        };
        if self.require.iter().any(|k| k == "npm-signatures") && npm_keys.is_none() {
            return Err(Error::Usage(format!(
                "{origin}: [npm] requires npm-signatures but pins no registry-keys to check them with"
            )));
        }
        let needs_sigstore = !self.publishers.is_empty()
            || self.require.iter().any(|k| k == "npm-attestations" || k == "pypi-provenance");
        if needs_sigstore && !has_sigstore {
            return Err(Error::Usage(format!(
                "{origin}: [{ecosystem}] checks provenance but the policy pins no Sigstore root; add [sigstore] trusted-root = \"trusted_root.json\""
            )));
        }
        if !self.publishers.is_empty() && ecosystem == "cargo" {
            return Err(Error::Usage(format!("{origin}: crates carry no provenance; remove [[cargo.publishers]]")));
        }
        for publisher in &self.publishers {
            publisher.validate(origin, ecosystem)?;
        }
        Ok(Rules {
            require: self.require.clone(),
            npm_keys,
            npm_keys_document,
            publishers: self.publishers.clone(),
            names: self.names.clone(),
        })
    }

    fn check_require(&self, ecosystem: &str, origin: &str) -> Result<()> {
        match self.require.iter().find(|k| !EVIDENCE_KINDS.contains(&k.as_str()) || !k.starts_with(ecosystem)) {
            None => Ok(()),
            Some(kind) => Err(Error::Usage(format!(
                "{origin}: [{ecosystem}] requires unknown evidence {kind:?}; use one of {}",
                EVIDENCE_KINDS.iter().filter(|k| k.starts_with(ecosystem)).copied().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The pinned npm keys document and a label naming it in errors.
    fn registry_keys_document(&self, references: References<'_>, origin: &str) -> Result<Option<(Vec<u8>, String)>> {
        match (&self.registry_keys, &self.registry_keys_json, references) {
            (None, None, _) => Ok(None),
            (Some(_), Some(_), _) => {
                Err(Error::Usage(format!("{origin}: [npm] has both registry-keys and registry-keys-json; keep one")))
            }
            (None, Some(json), _) => {
                Ok(Some((json.as_bytes().to_vec(), format!("{origin}: [npm] registry-keys-json"))))
            }
            (Some(file), None, References::Beside(base)) => {
                let path = base.join(file);
                let document = std::fs::read(&path).map_err(|e| Error::input(&path, "npm registry keys", &e))?;
                Ok(Some((document, path.display().to_string())))
            }
            (Some(file), None, References::Refused) => Err(Error::Usage(format!(
                "{origin}: [npm] registry-keys names the file {file:?}; a policy statement must carry the document itself: use registry-keys-json = '''<the file's contents>''' instead"
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
