//! Which channels a site accepts, and which keys may publish into each.
//!
//! `channels` lists the channels accepted (absent: any). An item is a
//! channel's name, which any trusted key may sign for, or a table that binds
//! keys to the channel:
//!
//! ```toml
//! [[channels]]
//! name = "pypi-weekly"
//! keys = ["alice", "<32 hex digits>"]   # names of [[keys]] entries, or key ids
//! threshold = 1
//! ```
//!
//! A bundle of a bound channel must, besides meeting the policy's own
//! threshold, be signed by `threshold` distinct keys of the channel that are
//! not revoked: a key trusted for one channel cannot publish into another.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::TrustedKey;
use crate::error::{Error, Rejection, Result};
use crate::id::KeyId;

/// An item of `channels` in schemas/policy.cddl, as written.
#[derive(Debug)]
pub enum ChannelItem {
    /// A channel's name: any trusted key may sign for it.
    Name(String),
    /// `channel-rule`: keys bound to the channel.
    Bound(ChannelRule),
}

/// `channel-rule` in schemas/policy.cddl.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRule {
    pub name: String,
    /// Names of `[[keys]]` entries, or key ids (32 hex digits).
    pub keys: Vec<String>,
    pub threshold: usize,
}

/// A name or a table: the errors of a table's fields stay the table's own
/// (an untagged enum would only say that nothing matched).
impl<'de> Deserialize<'de> for ChannelItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Item;
        impl<'de> Visitor<'de> for Item {
            type Value = ChannelItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a channel name or a table with name, keys and threshold")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<ChannelItem, E> {
                Ok(ChannelItem::Name(name.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ChannelItem, A::Error> {
                ChannelRule::deserialize(de::value::MapAccessDeserializer::new(map)).map(ChannelItem::Bound)
            }
        }
        d.deserialize_any(Item)
    }
}

/// A channel the policy accepts, validated.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    /// The keys bound to the channel and how many of them must sign;
    /// `None`: any trusted key, the policy's own threshold.
    pub bound: Option<(BTreeSet<KeyId>, usize)>,
}

/// Validates `channels` against the policy's keys.
pub fn resolve(
    items: &[ChannelItem],
    keys: &BTreeMap<KeyId, TrustedKey>,
    revoked: &BTreeSet<KeyId>,
    origin: &str,
) -> Result<Vec<Channel>> {
    let mut channels: Vec<Channel> = Vec::with_capacity(items.len());
    for item in items {
        let channel = match item {
            ChannelItem::Name(name) => Channel { name: name.clone(), bound: None },
            ChannelItem::Bound(rule) => rule.resolve(keys, revoked, origin)?,
        };
        if !crate::manifest::valid_channel(&channel.name) {
            return Err(Error::Usage(format!("{origin}: channel {:?} is not a valid channel name", channel.name)));
        }
        if channels.iter().any(|c| c.name == channel.name) {
            return Err(Error::Usage(format!(
                "{origin}: channel {} is listed twice in `channels`; list each channel once",
                channel.name
            )));
        }
        channels.push(channel);
    }
    Ok(channels)
}

impl ChannelRule {
    fn resolve(&self, keys: &BTreeMap<KeyId, TrustedKey>, revoked: &BTreeSet<KeyId>, origin: &str) -> Result<Channel> {
        let what = format!("{origin}: channel {}", self.name);
        if self.keys.is_empty() {
            return Err(Error::Usage(format!(
                "{what}: `keys` is empty; name the [[keys]] entries that may sign for this channel"
            )));
        }
        let bound = self.keys.iter().map(|key| find_key(key, keys, &what)).collect::<Result<BTreeSet<KeyId>>>()?;
        let usable = bound.iter().filter(|id| !revoked.contains(id)).count();
        if usable == 0 {
            return Err(Error::Usage(format!(
                "{what}: threshold {} cannot be met: none of its keys is usable (all revoked); bind a key that is not revoked to the channel",
                self.threshold
            )));
        }
        if self.threshold == 0 || self.threshold > usable {
            return Err(Error::Usage(format!(
                "{what}: threshold {} cannot be met by its {usable} key(s) that are not revoked; {}, or bind more keys to the channel",
                self.threshold,
                crate::sign::keyring::threshold_hint(usable)
            )));
        }
        Ok(Channel { name: self.name.clone(), bound: Some((bound, self.threshold)) })
    }
}

/// The key a channel names: by its `[[keys]]` name, or by its id.
fn find_key(wanted: &str, keys: &BTreeMap<KeyId, TrustedKey>, what: &str) -> Result<KeyId> {
    let mut by_name = keys.iter().filter(|(_, k)| k.name == wanted).map(|(id, _)| *id);
    match (by_name.next(), by_name.next()) {
        (Some(id), None) => return Ok(id),
        (Some(_), Some(_)) => {
            return Err(Error::Usage(format!(
                "{what}: two [[keys]] entries are named {wanted:?}; give them distinct names, or name the key by its id"
            )));
        }
        _ => {}
    }
    match KeyId::from_hex(wanted) {
        Some(id) if keys.contains_key(&id) => Ok(id),
        _ => Err(Error::Usage(format!(
            "{what}: key {wanted:?} is neither the name nor the id of a key in [[keys]]; list the key under [[keys]] and name it here"
        ))),
    }
}

/// Whether a bundle of `channel` whose trusted signers (distinct, verified,
/// not revoked) are `signers` may be accepted; `describe` names a key.
pub fn check(
    channels: Option<&[Channel]>,
    channel: &str,
    signers: &[KeyId],
    describe: impl Fn(&KeyId) -> String,
) -> Result<(), Rejection> {
    let Some(channels) = channels else { return Ok(()) };
    let Some(accepted) = channels.iter().find(|c| c.name == channel) else {
        return Err(Rejection::Policy(format!(
            "channel {channel:?} is not among the channels the policy accepts; add it to `channels` in the policy if this site should take it"
        )));
    };
    let Some((keys, threshold)) = &accepted.bound else { return Ok(()) };
    let counted = signers.iter().filter(|id| keys.contains(id)).count();
    if counted >= *threshold {
        return Ok(());
    }
    let names = |ids: &mut dyn Iterator<Item = &KeyId>| ids.map(&describe).collect::<Vec<_>>().join(", ");
    let signed = match names(&mut signers.iter()) {
        list if list.is_empty() => "none".to_owned(),
        list => list,
    };
    Err(Rejection::Policy(format!(
        "channel {channel} must be signed by {threshold} of its own key(s) ({}), and {counted} of them signed (trusted signers: {signed}); a key trusted for another channel cannot publish into this one: have a key of channel {channel} co-sign, or bind the signer's key to the channel in the policy",
        names(&mut keys.iter())
    )))
}

#[cfg(test)]
mod tests {
    use crate::policy::{Policy, References};
    use crate::sign::SecretKey;

    fn keys() -> [SecretKey; 3] {
        [SecretKey::generate().unwrap(), SecretKey::generate().unwrap(), SecretKey::generate().unwrap()]
    }

    fn policy_text(keys: &[SecretKey; 3], channels: &str) -> String {
        let listed = ["alice", "bob", "carol"]
            .iter()
            .zip(keys)
            .map(|(name, k)| format!("[[keys]]\nname = \"{name}\"\npublic = \"{}\"\n", k.public().to_text()))
            .collect::<Vec<_>>()
            .concat();
        // A plain `channels = [...]` line goes before the tables, which would take it as theirs.
        if channels.starts_with("[[") {
            format!("version = 1\nthreshold = 1\n{listed}{channels}")
        } else {
            format!("version = 1\nthreshold = 1\n{channels}{listed}")
        }
    }

    fn parse(text: &str) -> crate::error::Result<Policy> {
        Policy::parse(text, References::Refused, "p", &[])
    }

    #[test]
    fn a_bound_channel_counts_only_its_own_keys() {
        let k = keys();
        let bound = format!(
            "[[channels]]\nname = \"weekly\"\nkeys = [\"alice\", \"{}\"]\nthreshold = 2\n[[channels]]\nname = \"misc\"\nkeys = [\"carol\"]\nthreshold = 1\n",
            k[1].public().id()
        );
        let policy = parse(&policy_text(&k, &bound)).unwrap();
        let [a, b, c] = [0, 1, 2].map(|i| k[i].public().id());
        policy.check_channel("weekly", &[a, b]).unwrap();
        policy.check_channel("misc", &[c]).unwrap();
        let err = policy.check_channel("weekly", &[a, c]).unwrap_err().to_string();
        assert!(err.contains("channel weekly must be signed by 2 of its own key(s)"), "{err}");
        assert!(err.contains("and 1 of them signed") && err.contains("cannot publish into this one"), "{err}");
        let err = policy.check_channel("misc", &[a, b]).unwrap_err().to_string();
        assert!(err.contains("0 of them signed"), "{err}");
        let err = policy.check_channel("other", &[a, b, c]).unwrap_err().to_string();
        assert!(err.contains("not among the channels the policy accepts"), "{err}");
    }

    #[test]
    fn names_alone_and_no_list_keep_any_trusted_key() {
        let k = keys();
        let a = k[0].public().id();
        let unbound =
            parse(&policy_text(&k, "channels = [\"weekly\", { name = \"misc\", keys = [\"bob\"], threshold = 1 }]\n"))
                .unwrap();
        unbound.check_channel("weekly", &[a]).unwrap();
        assert!(unbound.check_channel("misc", &[a]).is_err());
        parse(&policy_text(&k, "")).unwrap().check_channel("anything", &[a]).unwrap();
    }

    #[test]
    fn a_channel_table_must_name_listed_keys_and_a_threshold_they_can_meet() {
        let k = keys();
        let table = |body: &str| policy_text(&k, &format!("[[channels]]\nname = \"weekly\"\n{body}\n"));
        let cases = [
            ("keys = [\"mallory\"]\nthreshold = 1", "is neither the name nor the id of a key in [[keys]]"),
            (
                &format!("keys = [\"{}\"]\nthreshold = 1", SecretKey::generate().unwrap().public().id()),
                "neither the name nor the id",
            ),
            ("keys = []\nthreshold = 1", "`keys` is empty"),
            ("keys = [\"alice\"]\nthreshold = 2", "threshold 2 cannot be met by its 1 key(s)"),
            ("keys = [\"alice\"]\nthreshold = 0", "threshold 0 cannot be met"),
            ("keys = [\"alice\"]", "missing field `threshold`"),
            ("keys = [\"alice\"]\nthreshold = 1\ncolour = \"blue\"", "unknown field `colour`"),
        ];
        for (body, expected) in cases {
            let err = parse(&table(body)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{body}");
            assert!(err.to_string().contains(expected), "{body}: {err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let twice = policy_text(&k, "channels = [\"weekly\", \"weekly\"]\n");
        assert!(parse(&twice).unwrap_err().to_string().contains("listed twice"));
        // A revoked key stays listed for reports but cannot help meet a channel's threshold.
        let revoked = table("keys = [\"alice\", \"bob\"]\nthreshold = 2")
            .replace("threshold = 1\n", &format!("threshold = 1\nrevoked = [\"{}\"]\n", k[1].public().id()));
        assert!(parse(&revoked).unwrap_err().to_string().contains("by its 1 key(s) that are not revoked"));
        let all_revoked = table("keys = [\"bob\"]\nthreshold = 1").replacen(
            "threshold = 1\n",
            &format!("threshold = 1\nrevoked = [\"{}\"]\n", k[1].public().id()),
            1,
        );
        assert!(parse(&all_revoked).unwrap_err().to_string().contains("none of its keys is usable (all revoked)"));
        let same_name = policy_text(&k, "[[channels]]\nname = \"weekly\"\nkeys = [\"bob\"]\nthreshold = 1\n").replacen(
            "name = \"alice\"",
            "name = \"bob\"",
            1,
        );
        assert!(parse(&same_name).unwrap_err().to_string().contains("two [[keys]] entries are named \"bob\""));
    }
}
