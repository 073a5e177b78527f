//! The import policy: which keys are trusted and how many must sign.
//!
//! A policy comes either from `--trust PUB...` (threshold from `--threshold`,
//! default 1) or from a TOML file described by schemas/policy.cddl:
//!
//! ```toml
//! version = 1
//! threshold = 2
//! [[keys]]
//! name = "alice"
//! public = "airlock-pub-ed25519:…"   # or: file = "alice.pub" (relative to the policy)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::provenance::sigstore::SigstoreRoot;
use crate::sign::PublicKey;

pub mod names;
mod rules;

pub use rules::{EcosystemRules, Publisher, Rules};

/// The policy format version this build reads.
pub const POLICY_VERSION: u32 = 1;

/// A trust policy, validated.
#[derive(Debug, Clone)]
pub struct Policy {
    keys: BTreeMap<KeyId, TrustedKey>,
    threshold: usize,
    rules: BTreeMap<String, Rules>,
    channels: Option<Vec<String>>,
    sigstore: Option<std::sync::Arc<SigstoreRoot>>,
}

/// A key the site trusts, with the name the policy gives it.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
}

/// `policy` in schemas/policy.cddl.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub version: u32,
    pub threshold: usize,
    pub keys: Vec<PolicyKey>,
    /// Channels this site accepts bundles from; absent: any.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub npm: Option<EcosystemRules>,
    #[serde(default)]
    pub pypi: Option<EcosystemRules>,
    #[serde(default)]
    pub cargo: Option<EcosystemRules>,
    #[serde(default)]
    pub sigstore: Option<SigstoreSettings>,
}

/// `sigstore-settings` in schemas/policy.cddl.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SigstoreSettings {
    /// The Sigstore `trusted_root.json`, relative to the policy.
    pub trusted_root: String,
}

/// `policy-key` in schemas/policy.cddl.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyKey {
    pub name: String,
    #[serde(default)]
    pub public: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
}

impl Policy {
    /// A policy trusting `keys`, requiring `threshold` of them.
    pub fn from_keys(keys: Vec<PublicKey>, threshold: usize) -> Result<Self> {
        let named = keys.into_iter().map(|key| TrustedKey { name: key.id().short(), key }).collect();
        Policy::new(named, threshold, "--trust")
    }

    fn new(keys: Vec<TrustedKey>, threshold: usize, origin: &str) -> Result<Self> {
        let mut by_id = BTreeMap::new();
        for key in keys {
            let name = key.name.clone();
            if by_id.insert(key.key.id(), key).is_some() {
                return Err(Error::Usage(format!("{origin}: key {name} is listed twice; list each trusted key once")));
            }
        }
        if by_id.is_empty() {
            return Err(Error::Usage(format!("{origin}: no trusted keys; name at least one public key")));
        }
        if threshold == 0 || threshold > by_id.len() {
            return Err(Error::Usage(format!(
                "{origin}: threshold {threshold} cannot be met by {} trusted key(s); use a threshold between 1 and {}",
                by_id.len(),
                by_id.len()
            )));
        }
        Ok(Policy { keys: by_id, threshold, rules: BTreeMap::new(), channels: None, sigstore: None })
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::input(path, "policy", &e))?;
        let origin = path.display().to_string();
        let file: PolicyFile = toml::from_str(&text).map_err(|e| {
            Error::Usage(format!("{origin}: invalid policy: {}; see schemas/policy.cddl", one_line(&e.to_string())))
        })?;
        if file.version != POLICY_VERSION {
            return Err(Error::Usage(format!(
                "{origin}: policy version {} is not supported (this airlock reads version {POLICY_VERSION})",
                file.version
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let keys = file.keys.iter().map(|k| k.resolve(base, &origin)).collect::<Result<Vec<_>>>()?;
        let mut policy = Policy::new(keys, file.threshold, &origin)?;
        if let Some(bad) = file.channels.iter().flatten().find(|c| !crate::manifest::valid_channel(c)) {
            return Err(Error::Usage(format!("{origin}: channel {bad:?} is not a valid channel name")));
        }
        policy.channels = file.channels;
        if let Some(settings) = &file.sigstore {
            policy.sigstore = Some(std::sync::Arc::new(SigstoreRoot::load(&base.join(&settings.trusted_root))?));
        }
        for (ecosystem, rules) in [("npm", &file.npm), ("pypi", &file.pypi), ("cargo", &file.cargo)] {
            if let Some(rules) = rules {
                let resolved = rules.resolve(ecosystem, base, &origin, policy.sigstore.is_some())?;
                policy.rules.insert(ecosystem.to_owned(), resolved);
            }
        }
        Ok(policy)
    }

    /// The trusted key with this id, if any.
    #[must_use]
    pub fn key(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id).map(|k| &k.key)
    }

    /// The name the policy gives a trusted key.
    #[must_use]
    pub fn name_of(&self, id: &KeyId) -> Option<&str> {
        self.keys.get(id).map(|k| k.name.as_str())
    }

    /// Whether bundles of `channel` are accepted.
    #[must_use]
    pub fn accepts_channel(&self, channel: &str) -> bool {
        self.channels.as_ref().is_none_or(|list| list.iter().any(|c| c == channel))
    }

    /// The evidence rules for an ecosystem (none: digest-only is enough).
    #[must_use]
    pub fn rules(&self, ecosystem: &str) -> Option<&Rules> {
        self.rules.get(ecosystem)
    }

    /// The Sigstore trust root the policy pins, if any.
    #[must_use]
    pub fn sigstore(&self) -> Option<&SigstoreRoot> {
        self.sigstore.as_deref()
    }

    #[must_use]
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }
}

impl PolicyKey {
    fn resolve(&self, base: &Path, origin: &str) -> Result<TrustedKey> {
        let key = match (&self.public, &self.file) {
            (Some(text), None) => PublicKey::from_text(text, &format!("{origin}: key {}", self.name))?,
            (None, Some(file)) => PublicKey::load(&base.join(file))?,
            _ => {
                return Err(Error::Usage(format!(
                    "{origin}: key {} must have exactly one of `public` or `file`",
                    self.name
                )));
            }
        };
        Ok(TrustedKey { name: self.name.clone(), key })
    }
}

/// toml's errors span several lines with a source excerpt; keep the first.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SecretKey;

    #[test]
    fn loads_inline_and_file_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        b.write_pair(&dir.path().join("bob"), false).unwrap();
        let path = dir.path().join("policy.toml");
        fs::write(
            &path,
            format!("version = 1\nthreshold = 2\n[[keys]]\nname = \"alice\"\npublic = \"{}\"\n[[keys]]\nname = \"bob\"\nfile = \"bob.pub\"\n", a.public().to_text()),
        )
        .unwrap();
        let policy = Policy::load(&path).unwrap();
        assert_eq!(policy.threshold(), 2);
        assert_eq!(policy.name_of(&b.public().id()), Some("bob"));
    }

    #[test]
    fn refuses_unmeetable_threshold_and_unknown_fields() {
        let a = SecretKey::generate().unwrap();
        assert!(Policy::from_keys(vec![a.public().clone()], 2).is_err());
        assert!(Policy::from_keys(vec![a.public().clone()], 0).is_err());
        assert!(Policy::from_keys(vec![a.public().clone(), a.public().clone()], 1).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        fs::write(&path, "version = 1\nthreshold = 1\nkeys = []\ncolour = \"blue\"\n").unwrap();
        let err = Policy::load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(!err.to_string().contains('\n'));
    }
}
