//! The import policy: which keys are trusted and how many must sign.
//!
//! A policy comes either from `--trust PUB...` (threshold from `--threshold`,
//! default 1) or from a TOML file described by schemas/policy.cddl:
//!
//! ```toml
//! version = 1
//! serial = 3                           # which policy of the site's sequence (default 1)
//! threshold = 2
//! revoked = ["<32 hex digits>"]        # key ids whose signatures never count
//! [[keys]]
//! name = "alice"
//! public = "airlock-pub-ed25519:…"   # or: file = "alice.pub" (relative to the policy)
//! [[channels]]                         # optional: keys bound to a channel (`channels`)
//! name = "weekly"
//! keys = ["alice"]
//! threshold = 1
//! ```
//!
//! The same text, with every reference to another file replaced by its
//! content, is what a signed policy statement carries (`statement`).

pub mod channels;
pub mod names;
mod rules;
pub mod statement;

pub use rules::{EcosystemRules, Publisher, Rules};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::provenance::sigstore::SigstoreRoot;
use crate::sign::PublicKey;

/// The policy format version this build reads.
pub const POLICY_VERSION: u32 = 1;

/// The serial of a policy that does not state one.
pub const FIRST_SERIAL: u64 = 1;

/// A trust policy, validated.
#[derive(Debug, Clone)]
pub struct Policy {
    keys: BTreeMap<KeyId, TrustedKey>,
    threshold: usize,
    serial: u64,
    revoked: BTreeSet<KeyId>,
    rules: BTreeMap<String, Rules>,
    channels: Option<Vec<channels::Channel>>,
    sigstore: Option<std::sync::Arc<SigstoreRoot>>,
}

/// Where a policy's references to other files (`file =`, `registry-keys =`)
/// are read from.
#[derive(Debug, Clone, Copy)]
pub enum References<'a> {
    /// Beside the policy file, in this folder.
    Beside(&'a Path),
    /// Nowhere: a signed statement must carry everything it vouches for, so
    /// its signers sign the keys themselves, not a file name.
    Refused,
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
    /// The policy's place in the site's sequence; a signed statement replaces
    /// serial N only with N+1 (`statement`). Distinct from the format `version`.
    #[serde(default = "first_serial")]
    pub serial: u64,
    pub threshold: usize,
    pub keys: Vec<PolicyKey>,
    /// Key ids (32 hex digits) whose signatures never count, listed or not.
    #[serde(default)]
    pub revoked: Vec<String>,
    /// Channels this site accepts bundles from, each by name or with the
    /// keys bound to it (`channels`); absent: any channel, any trusted key.
    #[serde(default)]
    pub channels: Option<Vec<channels::ChannelItem>>,
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
    #[serde(default)]
    pub trusted_root: Option<String>,
    /// The same document inline, as JSON text (what a signed statement must use).
    #[serde(default)]
    pub trusted_root_json: Option<String>,
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
        Policy::new(named, threshold, BTreeSet::new(), "--trust")
    }

    fn new(keys: Vec<TrustedKey>, threshold: usize, revoked: BTreeSet<KeyId>, origin: &str) -> Result<Self> {
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
        // A revoked key stays listed only to be named in reports; it cannot help meet the threshold.
        let usable = by_id.keys().filter(|id| !revoked.contains(id)).count();
        if threshold == 0 || threshold > usable {
            let revoked_note = match by_id.len() - usable {
                0 => String::new(),
                n => format!(" that are not revoked ({n} listed key(s) are revoked)"),
            };
            return Err(Error::Usage(format!(
                "{origin}: threshold {threshold} cannot be met by {usable} trusted key(s){revoked_note}; use a threshold between 1 and {usable}, or list more keys",
            )));
        }
        Ok(Policy {
            keys: by_id,
            threshold,
            serial: FIRST_SERIAL,
            revoked,
            rules: BTreeMap::new(),
            channels: None,
            sigstore: None,
        })
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::input(path, "policy", &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::parse(&text, References::Beside(base), &path.display().to_string())
    }

    /// Validates policy text; `origin` names it in errors.
    pub fn parse(text: &str, references: References<'_>, origin: &str) -> Result<Self> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            Error::Usage(format!("{origin}: invalid policy: {}; see schemas/policy.cddl", one_line(&e.to_string())))
        })?;
        if file.version != POLICY_VERSION {
            return Err(Error::Usage(format!(
                "{origin}: policy version {} is not supported (this airlock reads version {POLICY_VERSION})",
                file.version
            )));
        }
        if file.serial < FIRST_SERIAL {
            return Err(Error::Usage(format!("{origin}: serial {} is not allowed; serials start at 1", file.serial)));
        }
        let keys = file.keys.iter().map(|k| k.resolve(references, origin)).collect::<Result<Vec<_>>>()?;
        let mut policy = Policy::new(keys, file.threshold, parse_revoked(&file.revoked, origin)?, origin)?;
        policy.serial = file.serial;
        policy.channels = file
            .channels
            .as_deref()
            .map(|items| channels::resolve(items, &policy.keys, &policy.revoked, origin))
            .transpose()?;
        if let Some(settings) = &file.sigstore {
            policy.sigstore = Some(std::sync::Arc::new(settings.load(references, origin)?));
        }
        for (ecosystem, rules) in [("npm", &file.npm), ("pypi", &file.pypi), ("cargo", &file.cargo)] {
            if let Some(rules) = rules {
                let resolved = rules.resolve(ecosystem, references, origin, policy.sigstore.is_some())?;
                policy.rules.insert(ecosystem.to_owned(), resolved);
            }
        }
        Ok(policy)
    }

    /// The Sigstore trust root the policy pins, if any.
    #[must_use]
    pub fn sigstore(&self) -> Option<&SigstoreRoot> {
        self.sigstore.as_deref()
    }

    /// The policy's place in the site's sequence of policies.
    #[must_use]
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Whether signatures by this key are never counted.
    #[must_use]
    pub fn is_revoked(&self, id: &KeyId) -> bool {
        self.revoked.contains(id)
    }

    /// The revoked key ids, listed or not.
    pub fn revoked(&self) -> impl Iterator<Item = &KeyId> {
        self.revoked.iter()
    }

    /// A key as reports show it: `name (short id)`, or the short id alone
    /// when the policy does not name it.
    #[must_use]
    pub fn describe(&self, id: &KeyId) -> String {
        match self.name_of(id) {
            Some(name) if name != id.short() => format!("{name} ({})", id.short()),
            _ => id.short(),
        }
    }

    /// The trusted key with this id, if any. A revoked key is not trusted,
    /// even while the policy still lists it.
    #[must_use]
    pub fn key(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id).filter(|_| !self.is_revoked(id)).map(|k| &k.key)
    }

    /// The name the policy gives a trusted key.
    #[must_use]
    pub fn name_of(&self, id: &KeyId) -> Option<&str> {
        self.keys.get(id).map(|k| k.name.as_str())
    }

    /// Whether a bundle of `channel` signed by `signers` (the distinct
    /// trusted keys whose signatures verified) is accepted: the channel is
    /// listed, when the policy lists channels, and signed by enough of its
    /// own keys, when keys are bound to it.
    pub fn check_channel(&self, channel: &str, signers: &[KeyId]) -> Result<(), crate::error::Rejection> {
        channels::check(self.channels.as_deref(), channel, signers, |id| self.describe(id))
    }

    /// The evidence rules for an ecosystem (none: digest-only is enough).
    #[must_use]
    pub fn rules(&self, ecosystem: &str) -> Option<&Rules> {
        self.rules.get(ecosystem)
    }

    #[must_use]
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }
}

impl SigstoreSettings {
    fn load(&self, references: References<'_>, origin: &str) -> Result<SigstoreRoot> {
        match (&self.trusted_root, &self.trusted_root_json, references) {
            (Some(file), None, References::Beside(base)) => SigstoreRoot::load(&base.join(file)),
            (None, Some(json), _) => SigstoreRoot::from_json(json, &format!("{origin}: [sigstore] trusted-root-json")),
            (Some(file), None, References::Refused) => Err(Error::Usage(format!(
                "{origin}: [sigstore] trusted-root names the file {file:?}; a policy statement must carry the document itself: use trusted-root-json = '''<the file's contents>''' instead"
            ))),
            _ => Err(Error::Usage(format!(
                "{origin}: [sigstore] needs exactly one of trusted-root or trusted-root-json"
            ))),
        }
    }
}

impl PolicyKey {
    fn resolve(&self, references: References<'_>, origin: &str) -> Result<TrustedKey> {
        let key = match (&self.public, &self.file, references) {
            (Some(text), None, _) => PublicKey::from_text(text, &format!("{origin}: key {}", self.name))?,
            (None, Some(file), References::Beside(base)) => PublicKey::load(&base.join(file))?,
            (None, Some(file), References::Refused) => {
                return Err(Error::Usage(format!(
                    "{origin}: key {} names the file {file:?}; a policy statement must carry its keys: replace `file = ...` with `public = \"airlock-pub-ed25519:...\"`, the key line of that file",
                    self.name
                )));
            }
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

/// `revoked` holds full key ids, as `airlock keygen` prints them and the
/// `.pub` file's comment line shows them.
fn parse_revoked(ids: &[String], origin: &str) -> Result<BTreeSet<KeyId>> {
    ids.iter()
        .map(|text| {
            KeyId::from_hex(text).ok_or_else(|| {
                Error::Usage(format!(
                    "{origin}: revoked entry {text:?} is not a key id; give the 32 hex digits `airlock keygen` printed (also on the first line of the .pub file)"
                ))
            })
        })
        .collect()
}

fn first_serial() -> u64 {
    FIRST_SERIAL
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

    fn three_keys(extra: &str) -> (String, [SecretKey; 3]) {
        let keys = [SecretKey::generate().unwrap(), SecretKey::generate().unwrap(), SecretKey::generate().unwrap()];
        let listed = ["a", "b", "c"]
            .iter()
            .zip(&keys)
            .map(|(name, k)| format!("[[keys]]\nname = \"{name}\"\npublic = \"{}\"\n", k.public().to_text()))
            .collect::<Vec<_>>()
            .concat();
        (format!("version = 1\n{extra}\n{listed}"), keys)
    }

    #[test]
    fn serial_defaults_to_one_and_revoked_keys_are_not_trusted() {
        let (text, _) = three_keys("threshold = 1");
        assert_eq!(Policy::parse(&text, References::Refused, "p").unwrap().serial(), 1);
        let (text, [_, _, c]) = three_keys("threshold = 2\nserial = 7");
        let revoking = text.replace("serial = 7", &format!("serial = 7\nrevoked = [\"{}\"]", c.public().id()));
        let policy = Policy::parse(&revoking, References::Refused, "p").unwrap();
        assert_eq!(policy.serial(), 7);
        assert!(policy.is_revoked(&c.public().id()));
        // Still named for reports, but no longer a key signatures are checked against.
        assert_eq!(policy.name_of(&c.public().id()), Some("c"));
        assert!(policy.key(&c.public().id()).is_none());
        assert!(Policy::parse(&text, References::Refused, "p").unwrap().key(&c.public().id()).is_some());
    }

    #[test]
    fn a_threshold_that_only_revoked_keys_could_meet_is_refused() {
        let (text, [_, b, c]) = three_keys("threshold = 2");
        let revoked = format!("threshold = 2\nrevoked = [\"{}\", \"{}\"]", b.public().id(), c.public().id());
        let err = Policy::parse(&text.replace("threshold = 2", &revoked), References::Refused, "p").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("2 listed key(s) are revoked"), "{err}");
        let short = text.replace("threshold = 2", "threshold = 2\nrevoked = [\"abcd\"]");
        assert!(Policy::parse(&short, References::Refused, "p").unwrap_err().to_string().contains("not a key id"));
        let zero = text.replace("threshold = 2", "threshold = 2\nserial = 0");
        assert!(Policy::parse(&zero, References::Refused, "p").unwrap_err().to_string().contains("serials start at 1"));
    }

    #[test]
    fn a_statement_refuses_file_references_but_takes_inline_registry_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::generate().unwrap();
        a.write_pair(&dir.path().join("a"), false).unwrap();
        let by_file = "version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\nfile = \"a.pub\"\n";
        assert!(Policy::parse(by_file, References::Beside(dir.path()), "p").is_ok());
        let err = Policy::parse(by_file, References::Refused, "p").unwrap_err();
        assert!(err.to_string().contains("must carry its keys"), "{err}");

        let inline =
            format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\npublic = \"{}\"\n", a.public().to_text());
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry/upstream/registry-keys.json");
        let document = fs::read_to_string(fixture).unwrap();
        fs::write(dir.path().join("npm-keys.json"), &document).unwrap();
        let by_name = format!("{inline}[npm]\nregistry-keys = \"npm-keys.json\"\n");
        let beside = Policy::parse(&by_name, References::Beside(dir.path()), "p").unwrap();
        assert!(beside.rules("npm").unwrap().npm_keys.is_some());
        let err = Policy::parse(&by_name, References::Refused, "p").unwrap_err();
        assert!(err.to_string().contains("registry-keys-json"), "{err}");
        let carried = format!("{inline}[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys-json = '''{document}'''\n");
        let policy = Policy::parse(&carried, References::Refused, "p").unwrap();
        assert_eq!(policy.rules("npm").unwrap().npm_keys_document.as_deref(), Some(document.as_bytes()));
        let both = format!("{by_name}registry-keys-json = '''{document}'''\n");
        assert!(
            Policy::parse(&both, References::Beside(dir.path()), "p").unwrap_err().to_string().contains("keep one")
        );
    }
}

#[cfg(test)]
mod sigstore_settings_tests {
    use super::*;
    use crate::sign::SecretKey;

    #[test]
    fn a_statement_carries_its_trusted_root_inline() {
        let key = SecretKey::generate().unwrap();
        let head = format!(
            "version = 1\nserial = 2\nthreshold = 1\n[[keys]]\nname = \"a\"\npublic = \"{}\"\n",
            key.public().to_text()
        );
        let by_file = format!("{head}[sigstore]\ntrusted-root = \"trusted_root.json\"\n");
        let err = Policy::parse(&by_file, References::Refused, "next.toml").unwrap_err();
        assert!(err.to_string().contains("trusted-root-json"), "{err}");
        let root = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry/upstream/trusted_root.json"),
        )
        .unwrap();
        let inline = format!("{head}[sigstore]\ntrusted-root-json = '''{root}'''\n");
        let policy = Policy::parse(&inline, References::Refused, "next.toml").unwrap();
        assert!(policy.sigstore().is_some());
        let neither = format!("{head}[sigstore]\n");
        assert_eq!(Policy::parse(&neither, References::Refused, "next.toml").unwrap_err().exit_code(), 2);
    }
}
