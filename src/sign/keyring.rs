//! The keys a verifier trusts: key ids to public keys (with the names
//! reports give them), the ids whose signatures never count, and how many
//! distinct trusted keys must sign. Envelope verification takes a keyring;
//! the import policy builds one (`policy::Policy::keyring`). Nothing here
//! knows where the keys came from.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::sign::PublicKey;

/// A key the site trusts, with the name the policy gives it.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
}

/// Trusted keys, revoked key ids and the threshold, validated together.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: BTreeMap<KeyId, TrustedKey>,
    revoked: BTreeSet<KeyId>,
    threshold: usize,
}

impl Keyring {
    /// A keyring of `keys`, `threshold` of which must sign; `origin` names
    /// where the keys were given in errors.
    pub fn new(keys: Vec<TrustedKey>, threshold: usize, revoked: BTreeSet<KeyId>, origin: &str) -> Result<Self> {
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
                "{origin}: threshold {threshold} cannot be met by {usable} trusted key(s){revoked_note}; {}, or list more keys",
                threshold_hint(usable)
            )));
        }
        Ok(Keyring { keys: by_id, revoked, threshold })
    }

    /// Whether signatures by this key are never counted.
    #[must_use]
    pub fn is_revoked(&self, id: &KeyId) -> bool {
        self.revoked.contains(id)
    }

    /// The revoked key ids, listed or not.
    #[must_use]
    pub fn revoked(&self) -> &BTreeSet<KeyId> {
        &self.revoked
    }

    /// A key as reports show it: `name (short id)`, or the short id alone
    /// when the keyring does not name it.
    #[must_use]
    pub fn describe(&self, id: &KeyId) -> String {
        match self.name_of(id) {
            Some(name) if name != id.short() => format!("{name} ({})", id.short()),
            _ => id.short(),
        }
    }

    /// The trusted key with this id, if any. A revoked key is not trusted,
    /// even while it is still listed.
    #[must_use]
    pub fn key(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id).filter(|_| !self.is_revoked(id)).map(|k| &k.key)
    }

    /// The name given to a listed key.
    #[must_use]
    pub fn name_of(&self, id: &KeyId) -> Option<&str> {
        self.keys.get(id).map(|k| k.name.as_str())
    }

    /// How many distinct trusted keys must sign.
    #[must_use]
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Every listed key by id, revoked or not.
    #[must_use]
    pub fn listed(&self) -> &BTreeMap<KeyId, TrustedKey> {
        &self.keys
    }
}

/// `use a threshold between 1 and 3`; `use threshold 1` when one key is all there is.
pub(crate) fn threshold_hint(usable: usize) -> String {
    if usable == 1 { "use threshold 1".to_owned() } else { format!("use a threshold between 1 and {usable}") }
}
