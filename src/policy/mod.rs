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
mod file;
mod look_alike;
pub mod names;
mod rules;
pub mod statement;

pub use file::{PolicyFile, PolicyKey, SigstoreSettings};
pub use rules::{EcosystemRules, Pinned, Publisher, Rules, Table};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::manifest::segments::{NoSegments, SegmentSource};
use crate::provenance::sigstore::SigstoreRoot;
pub use crate::sign::TrustedKey;
use crate::sign::{Keyring, PublicKey};

/// The policy format version this build reads.
pub const POLICY_VERSION: u32 = 1;

/// The serial of a policy that does not state one.
pub const FIRST_SERIAL: u64 = 1;

/// The ecosystems' tables a policy may have (`[npm]`, ...), in the order
/// errors list them: the ecosystems supply them (`ecosystem::POLICY_TABLES`),
/// the policy names none itself.
pub type Tables<'a> = &'a [&'a dyn Table];

/// A trust policy, validated.
#[derive(Debug, Clone)]
pub struct Policy {
    keyring: Keyring,
    serial: u64,
    rules: BTreeMap<String, Rules>,
    channels: Option<Vec<channels::Channel>>,
    sigstore: Option<std::sync::Arc<SigstoreRoot>>,
    /// Where the segments a bundle leaves out are read from: the mirror
    /// being imported into (or `verify --mirror`). Not trust: what is read
    /// is checked against the signed root.
    held_segments: std::sync::Arc<dyn SegmentSource>,
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

impl Policy {
    /// A policy trusting `keys`, requiring `threshold` of them.
    pub fn from_keys(keys: Vec<PublicKey>, threshold: usize) -> Result<Self> {
        let named = keys.into_iter().map(|key| TrustedKey { name: key.id().short(), key }).collect();
        Policy::new(named, threshold, BTreeSet::new(), "--trust")
    }

    fn new(keys: Vec<TrustedKey>, threshold: usize, revoked: BTreeSet<KeyId>, origin: &str) -> Result<Self> {
        Ok(Policy {
            keyring: Keyring::new(keys, threshold, revoked, origin)?,
            serial: FIRST_SERIAL,
            rules: BTreeMap::new(),
            channels: None,
            sigstore: None,
            held_segments: std::sync::Arc::new(NoSegments),
        })
    }

    /// This policy, reading the segments a bundle leaves out from `held`.
    #[must_use]
    pub fn with_held_segments(mut self, held: std::sync::Arc<dyn SegmentSource>) -> Self {
        self.held_segments = held;
        self
    }

    /// Where the segments a bundle leaves out are read from.
    #[must_use]
    pub fn held_segments(&self) -> &dyn SegmentSource {
        self.held_segments.as_ref()
    }

    /// Reads and validates a policy file whose ecosystem tables are `tables`.
    pub fn load(path: &Path, tables: Tables<'_>) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::input(path, "policy", &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::parse(&text, References::Beside(base), &path.display().to_string(), tables)
    }

    /// Validates policy text; `origin` names it in errors.
    pub fn parse(text: &str, references: References<'_>, origin: &str, tables: Tables<'_>) -> Result<Self> {
        let file = PolicyFile::parse(text, tables).map_err(|e| {
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
        let revoked = parse_revoked(&file.revoked, &keys, origin)?;
        let mut policy = Policy::new(keys, file.threshold, revoked, origin)?;
        policy.serial = file.serial;
        policy.channels = file
            .channels
            .as_deref()
            .map(|items| channels::resolve(items, policy.keyring.listed(), policy.keyring.revoked(), origin))
            .transpose()?;
        if let Some(settings) = &file.sigstore {
            policy.sigstore = Some(std::sync::Arc::new(settings.load(references, origin)?));
        }
        for table in tables {
            if let Some(rules) = file.ecosystems.get(table.name()) {
                let resolved = rules.resolve(*table, tables, references, origin, policy.sigstore.is_some())?;
                policy.rules.insert(table.name().to_owned(), resolved);
            }
        }
        Ok(policy)
    }

    /// The keys whose signatures count, the revoked ids and the threshold:
    /// what envelope verification checks against.
    #[must_use]
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
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
        self.keyring.is_revoked(id)
    }

    /// The revoked key ids, listed or not.
    pub fn revoked(&self) -> impl Iterator<Item = &KeyId> {
        self.keyring.revoked().iter()
    }

    /// A key as reports show it: `name (short id)`, or the short id alone
    /// when the policy does not name it.
    #[must_use]
    pub fn describe(&self, id: &KeyId) -> String {
        self.keyring.describe(id)
    }

    /// The trusted key with this id, if any. A revoked key is not trusted,
    /// even while the policy still lists it.
    #[must_use]
    pub fn key(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keyring.key(id)
    }

    /// The name the policy gives a trusted key.
    #[must_use]
    pub fn name_of(&self, id: &KeyId) -> Option<&str> {
        self.keyring.name_of(id)
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
        self.keyring.threshold()
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keyring.listed().values()
    }
}

/// `revoked` holds key ids in either form: the 16 hex digits airlock prints
/// (which name a key this policy lists) or the 32 of the `.pub` file's
/// comment line (which name any key, listed or not).
fn parse_revoked(ids: &[String], listed: &[TrustedKey], origin: &str) -> Result<BTreeSet<KeyId>> {
    ids.iter()
        .map(|text| {
            if let Some(full) = KeyId::from_hex(text) {
                return Ok(full);
            }
            let short = text.to_ascii_lowercase();
            if short.len() == 16 && short.bytes().all(|b| b.is_ascii_hexdigit()) {
                return listed.iter().map(|k| k.key.id()).find(|id| id.short() == short).ok_or_else(|| {
                    Error::Usage(format!(
                        "{origin}: revoked entry {text:?} names no key this policy lists; to revoke a key not listed, give the 32 hex digits on the first line of its .pub file"
                    ))
                });
            }
            Err(Error::Usage(format!(
                "{origin}: revoked entry {text:?} is not a key id; give the 16 hex digits airlock prints for a listed key, or the 32 on the first line of the .pub file"
            )))
        })
        .collect()
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
        let policy = Policy::load(&path, &[]).unwrap();
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
        let err = Policy::load(&path, &[]).unwrap_err();
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
    fn an_unmeetable_threshold_names_the_range_that_exists() {
        let (text, [a, b, _]) = three_keys("threshold = 3");
        let two_revoked = text.replace(
            "threshold = 3",
            &format!("threshold = 3\nrevoked = [\"{}\", \"{}\"]", a.public().id(), b.public().id()),
        );
        let err = Policy::parse(&two_revoked, References::Refused, "p", &[]).unwrap_err().to_string();
        assert!(err.contains("use threshold 1,") && !err.contains("between 1 and 1"), "{err}");
        let (text, _) = three_keys("threshold = 4");
        let err = Policy::parse(&text, References::Refused, "p", &[]).unwrap_err().to_string();
        assert!(err.contains("use a threshold between 1 and 3"), "{err}");
    }

    #[test]
    fn serial_defaults_to_one_and_revoked_keys_are_not_trusted() {
        let (text, _) = three_keys("threshold = 1");
        assert_eq!(Policy::parse(&text, References::Refused, "p", &[]).unwrap().serial(), 1);
        let (text, [_, _, c]) = three_keys("threshold = 2\nserial = 7");
        let revoking = text.replace("serial = 7", &format!("serial = 7\nrevoked = [\"{}\"]", c.public().id()));
        let policy = Policy::parse(&revoking, References::Refused, "p", &[]).unwrap();
        assert_eq!(policy.serial(), 7);
        assert!(policy.is_revoked(&c.public().id()));
        // Still named for reports, but no longer a key signatures are checked against.
        assert_eq!(policy.name_of(&c.public().id()), Some("c"));
        assert!(policy.key(&c.public().id()).is_none());
        assert!(Policy::parse(&text, References::Refused, "p", &[]).unwrap().key(&c.public().id()).is_some());
    }

    #[test]
    fn a_revoked_key_may_be_named_by_the_short_id_airlock_prints() {
        let (text, [_, _, c]) = three_keys("threshold = 2");
        let short = c.public().id().short();
        let revoking =
            text.replace("threshold = 2", &format!("threshold = 2\nrevoked = [\"{}\"]", short.to_uppercase()));
        let policy = Policy::parse(&revoking, References::Refused, "p", &[]).unwrap();
        assert!(policy.is_revoked(&c.public().id()));
        // A short id of no listed key cannot be resolved: the full one is asked for.
        let unknown = text.replace("threshold = 2", "threshold = 2\nrevoked = [\"0123456789abcdef\"]");
        let err = Policy::parse(&unknown, References::Refused, "p", &[]).unwrap_err().to_string();
        assert!(err.contains("names no key this policy lists") && err.contains("32 hex digits"), "{err}");
        let odd = text.replace("threshold = 2", "threshold = 2\nrevoked = [\"0123\"]");
        let err = Policy::parse(&odd, References::Refused, "p", &[]).unwrap_err().to_string();
        assert!(err.contains("is not a key id") && err.contains("16 hex digits"), "{err}");
    }

    #[test]
    fn a_threshold_that_only_revoked_keys_could_meet_is_refused() {
        let (text, [_, b, c]) = three_keys("threshold = 2");
        let revoked = format!("threshold = 2\nrevoked = [\"{}\", \"{}\"]", b.public().id(), c.public().id());
        let err = Policy::parse(&text.replace("threshold = 2", &revoked), References::Refused, "p", &[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("2 listed key(s) are revoked"), "{err}");
        let short = text.replace("threshold = 2", "threshold = 2\nrevoked = [\"abcd\"]");
        assert!(Policy::parse(&short, References::Refused, "p", &[]).unwrap_err().to_string().contains("not a key id"));
        let zero = text.replace("threshold = 2", "threshold = 2\nserial = 0");
        assert!(
            Policy::parse(&zero, References::Refused, "p", &[]).unwrap_err().to_string().contains("serials start at 1")
        );
    }

    #[test]
    fn a_statement_refuses_file_references() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::generate().unwrap();
        a.write_pair(&dir.path().join("a"), false).unwrap();
        let by_file = "version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\nfile = \"a.pub\"\n";
        assert!(Policy::parse(by_file, References::Beside(dir.path()), "p", &[]).is_ok());
        let err = Policy::parse(by_file, References::Refused, "p", &[]).unwrap_err();
        assert!(err.to_string().contains("must carry its keys"), "{err}");
        // (Inline npm registry keys: ecosystem::npm::policy.)
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
        let err = Policy::parse(&by_file, References::Refused, "next.toml", &[]).unwrap_err();
        assert!(err.to_string().contains("trusted-root-json"), "{err}");
        let root = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry/upstream/trusted_root.json"),
        )
        .unwrap();
        let inline = format!("{head}[sigstore]\ntrusted-root-json = '''{root}'''\n");
        let policy = Policy::parse(&inline, References::Refused, "next.toml", &[]).unwrap();
        assert!(policy.sigstore().is_some());
        let neither = format!("{head}[sigstore]\n");
        assert_eq!(Policy::parse(&neither, References::Refused, "next.toml", &[]).unwrap_err().exit_code(), 2);
    }
}
