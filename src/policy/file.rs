//! The policy file as written (`policy` in schemas/policy.cddl).
//!
//! The fields every policy has are this module's; each ecosystem's table
//! (`[npm]`, ...) is read as [`EcosystemRules`] with the settings its
//! [`Table`] adds, from the tables the caller passes. The file is read by
//! hand-written visitors rather than `derive` because the set of tables
//! is only known then; they refuse unknown fields in serde's own words, as
//! `deny_unknown_fields` does, so the errors name the field and its span.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use super::channels::ChannelItem;
use super::{EcosystemRules, FIRST_SERIAL, References, Tables};
use crate::error::{Error, Result};
use crate::provenance::sigstore::SigstoreRoot;
use crate::sign::{PublicKey, TrustedKey};

/// `policy` in schemas/policy.cddl.
#[derive(Debug)]
pub struct PolicyFile {
    pub version: u32,
    /// The policy's place in the site's sequence; a signed statement replaces
    /// serial N only with N+1 (`statement`). Distinct from the format `version`.
    pub serial: u64,
    pub threshold: usize,
    pub keys: Vec<PolicyKey>,
    /// Key ids (32 hex digits) whose signatures never count, listed or not.
    pub revoked: Vec<String>,
    /// Channels this site accepts bundles from, each by name or with the
    /// keys bound to it (`channels`); absent: any channel, any trusted key.
    pub channels: Option<Vec<ChannelItem>>,
    /// The ecosystem tables present, by table name.
    pub ecosystems: BTreeMap<&'static str, EcosystemRules>,
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

/// The fields of every policy before the ecosystem tables, and after them,
/// in the order errors list them.
const FIELDS_BEFORE: [&str; 6] = ["version", "serial", "threshold", "keys", "revoked", "channels"];
const FIELDS_AFTER: [&str; 1] = ["sigstore"];

impl PolicyFile {
    /// Reads policy TOML whose ecosystem tables are `tables`.
    pub fn parse(text: &str, tables: Tables<'_>) -> std::result::Result<Self, toml::de::Error> {
        FileSeed { tables }.deserialize(toml::Deserializer::parse(text)?)
    }
}

struct FileSeed<'t> {
    tables: Tables<'t>,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = PolicyFile;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<PolicyFile, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = PolicyFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct PolicyFile")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<PolicyFile, A::Error> {
        let tables = self.tables.iter().map(|t| t.name());
        let fields: Vec<&'static str> = FIELDS_BEFORE.into_iter().chain(tables).chain(FIELDS_AFTER).collect();
        let settings = all_settings(self.tables);
        let table_settings: Vec<&'static str> = self.tables.iter().flat_map(|t| t.table_settings()).copied().collect();
        let mut file = PolicyFile {
            version: 0,
            serial: FIRST_SERIAL,
            threshold: 0,
            keys: Vec::new(),
            revoked: Vec::new(),
            channels: None,
            ecosystems: BTreeMap::new(),
            sigstore: None,
        };
        let mut seen = BTreeSet::new();
        while let Some(field) = map.next_key_seed(FieldSeed(&fields))? {
            if !seen.insert(field) {
                return Err(de::Error::duplicate_field(field));
            }
            match field {
                "version" => file.version = map.next_value()?,
                "serial" => file.serial = map.next_value()?,
                "threshold" => file.threshold = map.next_value()?,
                "keys" => file.keys = map.next_value()?,
                "revoked" => file.revoked = map.next_value()?,
                "channels" => file.channels = map.next_value()?,
                "sigstore" => file.sigstore = map.next_value()?,
                table => {
                    let rules = map.next_value_seed(RulesSeed { settings: &settings, tables: &table_settings })?;
                    file.ecosystems.insert(table, rules);
                }
            }
        }
        for required in ["version", "threshold", "keys"] {
            if !seen.contains(required) {
                return Err(de::Error::missing_field(required));
            }
        }
        Ok(file)
    }
}

/// Every table's own settings, in table order: any table may be given any
/// of them (and is refused later, by name, when it is not its own).
fn all_settings(tables: Tables<'_>) -> Vec<&'static str> {
    let mut settings: Vec<&'static str> = Vec::new();
    for setting in tables.iter().flat_map(|t| t.settings()) {
        if !settings.contains(setting) {
            settings.push(setting);
        }
    }
    settings
}

/// `ecosystem-rules` in schemas/policy.cddl: the common fields, with the
/// ecosystems' settings after `require`.
struct RulesSeed<'s> {
    settings: &'s [&'static str],
    /// Settings that are arrays of tables ([`Table::table_settings`]).
    tables: &'s [&'static str],
}

impl<'de> DeserializeSeed<'de> for RulesSeed<'_> {
    type Value = EcosystemRules;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<EcosystemRules, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RulesSeed<'_> {
    type Value = EcosystemRules;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct EcosystemRules")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<EcosystemRules, A::Error> {
        let fields: Vec<&'static str> =
            ["require"].into_iter().chain(self.settings.iter().copied()).chain(["publishers", "names"]).collect();
        let mut rules = EcosystemRules::default();
        let mut seen = BTreeSet::new();
        while let Some(field) = map.next_key_seed(FieldSeed(&fields))? {
            if !seen.insert(field) {
                return Err(de::Error::duplicate_field(field));
            }
            match field {
                "require" => rules.require = map.next_value()?,
                "publishers" => rules.publishers = map.next_value()?,
                "names" => rules.names = map.next_value()?,
                setting if self.tables.contains(&setting) => {
                    let tables: Vec<toml::Table> = map.next_value()?;
                    rules.settings.insert(setting, serde_json::to_string(&tables).map_err(de::Error::custom)?);
                }
                setting => {
                    rules.settings.insert(setting, map.next_value()?);
                }
            }
        }
        Ok(rules)
    }
}

/// A field name, one of the given ones; any other is refused as serde's
/// `deny_unknown_fields` refuses it.
struct FieldSeed<'f>(&'f [&'static str]);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = &'static str;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<&'static str, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldSeed<'_> {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> std::result::Result<&'static str, E> {
        self.0.iter().copied().find(|field| *field == name).ok_or_else(|| unknown_field(name, self.0))
    }
}

/// serde's `Error::unknown_field` message, for a list known only at run time.
fn unknown_field<E: de::Error>(field: &str, expected: &[&str]) -> E {
    let quoted: Vec<String> = expected.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => E::custom(format_args!("unknown field `{field}`, there are no fields")),
        [one] => E::custom(format_args!("unknown field `{field}`, expected {one}")),
        [a, b] => E::custom(format_args!("unknown field `{field}`, expected {a} or {b}")),
        all => E::custom(format_args!("unknown field `{field}`, expected one of {}", all.join(", "))),
    }
}

impl SigstoreSettings {
    pub(super) fn load(&self, references: References<'_>, origin: &str) -> Result<SigstoreRoot> {
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
    pub(super) fn resolve(&self, references: References<'_>, origin: &str) -> Result<TrustedKey> {
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
