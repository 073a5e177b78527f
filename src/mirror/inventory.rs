//! The inventory: every published entry with the channels that list it,
//! and the merge of a bundle's entries into it.

use std::fs::File;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::INVENTORY;
use super::tree::Tree;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::Entry;

/// What the mirror is told of the entries it stores, by the import that
/// knows their ecosystems.
pub struct EntryRules<'a> {
    /// Whether a channel may give the path of `entry` new content from one
    /// bundle to the next (a plain file); a registry artifact never changes.
    pub replaceable: &'a dyn Fn(&Entry) -> bool,
    /// Evidence kept in the inventory because indexes are regenerated from
    /// it; other evidence is written as files by its ecosystem and only its
    /// kind is kept.
    pub inline_evidence: &'a [&'a str],
}

fn trim_for_inventory(entry: &mut Entry, rules: &EntryRules<'_>) {
    for evidence in &mut entry.evidence {
        if !rules.inline_evidence.contains(&evidence.kind.as_str()) {
            evidence.data = Vec::new();
        }
    }
}

/// An inventory entry: what is published, and which channels vouch for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The channel whose entry this is: its evidence is what the mirror
    /// publishes, and only it may change the entry (a plain file's content).
    pub channel: String,
    /// Other channels whose bundles list the identical artifact. The entry
    /// stays published while any channel lists it; they never change it.
    /// (Absent from inventories written before channels could share entries.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_listed_by: Vec<String>,
    pub entry: Entry,
}

/// Reads an inventory file. This program wrote it, under the mirror's lock,
/// so it is decoded as it is read, without the whole-document canonical
/// check the manifest gets (which would hold the file and its re-encoding
/// beside the decoded entries).
pub(super) fn read_inventory(path: &Path) -> Result<Vec<Stored>> {
    let file = File::open(path).at(path)?;
    decode_inventory(io::BufReader::new(file), &path.display().to_string())
}

/// The inventory at `path` read one entry at a time, none of them kept
/// but by `each`: a state made by `begin` from the number of entries, given
/// to `each` with every entry, and returned.
pub(super) fn each_stored<S>(path: &Path, begin: impl FnOnce(u64) -> S, each: impl FnMut(&mut S, Stored)) -> Result<S> {
    let file = File::open(path).at(path)?;
    each_stored_from(io::BufReader::new(file), &path.display().to_string(), begin, each)
}

/// [`each_stored`] of the inventory `name` (as messages say it), read from `reader`.
pub(super) fn each_stored_from<S>(
    reader: impl io::Read,
    name: &str,
    begin: impl FnOnce(u64) -> S,
    each: impl FnMut(&mut S, Stored),
) -> Result<S> {
    crate::manifest::canonical::read_seq_announced(reader, begin, each).map_err(|e| unreadable(name, &e))
}

/// [`read_inventory`] of the inventory `name` (as messages say it), read from `reader`.
pub(super) fn decode_inventory(reader: impl io::Read, name: &str) -> Result<Vec<Stored>> {
    let mut entries = each_stored_from(reader, name, |_| Vec::new(), push_lean)?;
    entries.shrink_to_fit();
    Ok(entries)
}

/// The inventory as the merge with a bundle of `channel` listing
/// `incoming` needs it. The channel's own entries that the bundle lists
/// again at the same place with the same content are not held: the
/// bundle's entry stands for each, with the other channels that list it.
/// An incremental bundle lists its channel's whole inventory, so otherwise
/// every entry would be held twice, once decoded from each (at 100 000
/// entries some 40 MB).
#[derive(Debug, Default)]
pub struct Against {
    /// The entries the bundle does not list again unchanged.
    pub stored: Vec<Stored>,
    /// The others, by their index in `incoming`: those no other channel
    /// lists, then those others list too, with who.
    pub unshared: Vec<u32>,
    pub co_listed: Vec<(u32, Vec<String>)>,
}

impl Against {
    /// The indexes in `incoming` of the entries it lists again unchanged.
    pub fn relisted(&self) -> impl Iterator<Item = usize> {
        self.unshared.iter().chain(self.co_listed.iter().map(|(at, _)| at)).map(|at| *at as usize)
    }
}

/// [`read_inventory`] for the merge with a bundle of `channel` listing `incoming` ([`Against`]).
pub(super) fn read_inventory_against(path: &Path, incoming: &[Entry], channel: &str) -> Result<Against> {
    let file = File::open(path).at(path)?;
    decode_inventory_against(io::BufReader::new(file), &path.display().to_string(), incoming, channel)
}

/// [`decode_inventory`] for the merge with a bundle of `channel` listing `incoming`.
pub(super) fn decode_inventory_against(
    reader: impl io::Read,
    name: &str,
    incoming: &[Entry],
    channel: &str,
) -> Result<Against> {
    let by_place = ByPlace::new(incoming);
    let mut against = Against::default();
    let relisted = |stored: &Stored| {
        let listed = by_place.at(by_place.rank_of(stored.entry.place())?);
        let listed_again = stored.channel == channel && incoming[listed].blob == stored.entry.blob;
        listed_again.then(|| u32::try_from(listed).expect("fewer than 2^32 entries"))
    };
    crate::manifest::canonical::read_seq(reader, |stored: Stored| match relisted(&stored) {
        Some(listed) if stored.also_listed_by.is_empty() => push_lean(&mut against.unshared, listed),
        Some(listed) => against.co_listed.push((listed, stored.also_listed_by)),
        None => push_lean(&mut against.stored, stored),
    })
    .map_err(|e| unreadable(name, &e))?;
    against.stored.shrink_to_fit();
    against.unshared.shrink_to_fit();
    against.co_listed.shrink_to_fit();
    Ok(against)
}

/// A bundle's entries in the order of their places, to find one by its
/// place: the entries themselves when they are sorted (format 2's rule),
/// else (format 1) an index of them sorted.
struct ByPlace<'a> {
    entries: &'a [Entry],
    order: Option<Vec<u32>>,
}

impl<'a> ByPlace<'a> {
    fn new(entries: &'a [Entry]) -> Self {
        let sorted = entries.windows(2).all(|pair| pair[0].place() < pair[1].place());
        let order = (!sorted).then(|| {
            let index = |i: usize| u32::try_from(i).expect("fewer than 2^32 entries");
            let mut order: Vec<u32> = (0..entries.len()).map(index).collect();
            order.sort_unstable_by(|a, b| entries[*a as usize].place().cmp(&entries[*b as usize].place()));
            order
        });
        ByPlace { entries, order }
    }

    /// The index in the entries of the one `rank`-th by place.
    fn at(&self, rank: usize) -> usize {
        self.order.as_ref().map_or(rank, |order| order[rank] as usize)
    }

    /// The entries in the order of their places.
    fn iter(&self) -> impl Iterator<Item = &'a Entry> + '_ {
        (0..self.entries.len()).map(|rank| &self.entries[self.at(rank)])
    }

    /// The rank by place of the entry at `place`, if one is there.
    fn rank_of(&self, place: Place<'_>) -> Option<usize> {
        match &self.order {
            None => self.entries.binary_search_by(|e| e.place().cmp(&place)).ok(),
            Some(order) => order.binary_search_by(|i| self.entries[*i as usize].place().cmp(&place)).ok(),
        }
    }
}

/// Pushes `item`, growing `items` by an eighth rather than doubling it.
fn push_lean<T>(items: &mut Vec<T>, item: T) {
    crate::manifest::lean_vec::reserve(items, 1);
    items.push(item);
}

fn unreadable(name: &str, why: &dyn std::fmt::Display) -> Error {
    Error::Usage(format!("{name}: unreadable mirror inventory ({why}); the mirror was changed by hand"))
}

/// The result of merging a bundle into the mirror's inventory. It borrows
/// from the inventory and the manifest instead of copying entries: with
/// tens of thousands of entries, copies were most of an import's memory.
pub struct Merged<'a> {
    /// Every entry published after the import, with the channel whose entry
    /// it is, in the order of their places.
    pub all: Vec<(&'a str, &'a Entry)>,
    /// The other channels that list an entry of `all`, by the entry's
    /// place, sorted. Kept apart from `all`: most entries have none.
    also: Vec<(Place<'a>, Vec<&'a str>)>,
    /// Incoming entries not already published.
    pub fresh: Vec<&'a Entry>,
    /// Entries the bundle's channel published before, no longer lists, and
    /// no other channel lists.
    pub removed: Vec<&'a Entry>,
    /// Published entries whose path the bundle's channel gives new content
    /// (what they were: the new ones are in `fresh`).
    pub replaced: Vec<&'a Entry>,
}

/// An entry's ecosystem and path.
type Place<'a> = (&'a str, &'a str);

/// What an import changes in the mirror, besides the entries it adds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Changes {
    /// Entries at paths the mirror did not publish before.
    pub added: usize,
    /// Published entries the bundle's channel gave new content: what they were.
    pub replaced: Vec<Named>,
    /// Entries the bundle's channel published before and no longer lists
    /// (and no other channel lists): taken out of the mirror.
    pub withdrawn: Vec<Named>,
}

/// An entry as reports name it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Named {
    pub ecosystem: String,
    pub name: String,
    pub version: Option<String>,
    pub path: String,
}

impl Named {
    #[must_use]
    pub fn of(entry: &Entry) -> Named {
        Named {
            ecosystem: entry.ecosystem.clone(),
            name: entry.name.clone(),
            version: entry.version.clone(),
            path: entry.path.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{} {} {v}", self.ecosystem, self.name),
            None => write!(f, "{} {}", self.ecosystem, self.name),
        }
    }
}

impl Merged<'_> {
    /// What publishing this merge changes, for the reports.
    #[must_use]
    pub fn changes(&self) -> Changes {
        let named = |entries: &[&Entry]| entries.iter().map(|e| Named::of(e)).collect();
        // Every replaced entry's new content is in `fresh` too.
        let added = self.fresh.len().saturating_sub(self.replaced.len());
        Changes { added, replaced: named(&self.replaced), withdrawn: named(&self.removed) }
    }
}

/// The mirror's entries after a bundle of `channel` listing `incoming`
/// (the channel's whole intended inventory).
///
/// An entry belongs to the channel that published it first. Another
/// channel may list the identical artifact (sites run several channels that
/// carry a popular package): the entry stays exactly as its channel
/// published it, evidence included, and the other channel is recorded as
/// listing it too, so the entry is withdrawn only once no channel lists it
/// (then the next channel listing it holds it, unchanged). The same place
/// with other content is a rejection for registry ecosystems (two bundles
/// disagree about a published artifact); a plain file may change from one
/// bundle of its channel to the next, never by another channel's bundle.
pub fn merge<'a>(
    current: &'a Against,
    incoming: &'a [Entry],
    channel: &'a str,
    rules: &EntryRules<'_>,
) -> Result<Merged<'a>> {
    let listed = ByPlace::new(incoming);
    let find = |entry: &Entry| listed.rank_of(entry.place());
    // Whose entry the mirror holds at each listed entry's place (by rank), and its content.
    let mut held: Vec<Option<(&str, &ContentId)>> = vec![None; incoming.len()];
    let mut all = Vec::with_capacity(current.stored.len() + incoming.len());
    let mut also = Vec::new();
    let mut removed = Vec::new();
    let mut replaced = Vec::new();
    for at in current.relisted() {
        let entry = &incoming[at];
        held[find(entry).expect("a relisted entry is one the bundle lists")] = Some((channel, &entry.blob));
    }
    for (at, others) in &current.co_listed {
        push_listers(&mut also, incoming[*at as usize].place(), others.iter().map(String::as_str));
    }
    for stored in &current.stored {
        let place = stored.entry.place();
        let others = stored.also_listed_by.iter().map(String::as_str);
        match find(&stored.entry) {
            Some(i) => {
                let listing = &incoming[listed.at(i)];
                check_relisting(stored, listing, channel, rules)?;
                if stored.entry.blob != listing.blob {
                    replaced.push(&stored.entry);
                }
                held[i] = Some((stored.channel.as_str(), &stored.entry.blob));
                if stored.channel == channel {
                    // Its own channel's listing replaces it (below); the others still list it.
                    push_listers(&mut also, place, others);
                } else {
                    all.push((stored.channel.as_str(), &stored.entry));
                    push_listers(&mut also, place, others.chain([channel]));
                }
            }
            None if stored.channel == channel => {
                let mut others = others;
                match others.next() {
                    None => removed.push(&stored.entry),
                    Some(next) => {
                        all.push((next, &stored.entry));
                        push_listers(&mut also, place, others);
                    }
                }
            }
            None => {
                all.push((stored.channel.as_str(), &stored.entry));
                push_listers(&mut also, place, others.filter(|c| *c != channel));
            }
        }
    }
    // From now on this channel vouches for what it lists and no other channel holds.
    all.extend(
        listed.iter().zip(&held).filter(|(_, h)| h.is_none_or(|(c, _)| c == channel)).map(|(e, _)| (channel, e)),
    );
    all.sort_unstable_by(|a, b| a.1.place().cmp(&b.1.place()));
    also.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let fresh =
        incoming.iter().filter(|e| find(e).is_some_and(|i| held[i].is_none_or(|(_, blob)| *blob != e.blob))).collect();
    Ok(Merged { all, also, fresh, removed, replaced })
}

/// Records the channels listing the entry at `place` besides its own, if any.
fn push_listers<'a>(
    also: &mut Vec<(Place<'a>, Vec<&'a str>)>,
    place: Place<'a>,
    channels: impl Iterator<Item = &'a str>,
) {
    let mut channels: Vec<&str> = channels.collect();
    if !channels.is_empty() {
        channels.sort_unstable();
        channels.dedup();
        also.push((place, channels));
    }
}

/// Whether `channel` may list `incoming` where the mirror holds `stored`.
fn check_relisting(stored: &Stored, incoming: &Entry, channel: &str, rules: &EntryRules<'_>) -> Result<()> {
    if incoming.blob == stored.entry.blob {
        return Ok(());
    }
    if !(rules.replaceable)(&stored.entry) {
        return Err(disagreement(&stored.entry, incoming));
    }
    let reject = |why: String| {
        Err(Error::rejected(format!("{}/{}", incoming.ecosystem, incoming.path), crate::error::Rejection::Policy(why)))
    };
    let (was, now) = (stored.entry.blob.short(), incoming.blob.short());
    if stored.channel != channel {
        return reject(format!(
            "channel {} published this file (blake3 {was}) and channel {channel} brings other content (blake3 {now}); a channel never replaces another channel's file: rename it in channel {channel}, or have channel {} change or withdraw it",
            stored.channel, stored.channel
        ));
    }
    if let Some(other) = stored.also_listed_by.first() {
        return reject(format!(
            "channel {other} also lists this file with its current content (blake3 {was}); channel {channel}'s new content (blake3 {now}) would change what channel {other} vouches for: have channel {other} drop the file first, or give the new content another name"
        ));
    }
    Ok(())
}

fn disagreement(published: &Entry, incoming: &Entry) -> Error {
    Error::rejected(
        format!("{}/{}", incoming.ecosystem, incoming.path),
        crate::error::Rejection::Policy(format!(
            "the mirror already holds this file with other content (blake3 {}, the bundle has {}); two bundles disagree about a published artifact: find out which one is wrong before importing",
            published.blob.short(),
            incoming.blob.short()
        )),
    )
}

/// Writes the inventory file: every published entry with its channels,
/// evidence the ecosystems wrote as files trimmed to its kind. Encoded one
/// entry at a time so that no second copy of the inventory is held.
pub(super) fn write_inventory(tree: &mut Tree, merged: &Merged<'_>, rules: &EntryRules<'_>) -> Result<()> {
    tree.write_file_with(Path::new(INVENTORY), |file| encode_inventory(file, merged, rules))
}

/// The inventory's bytes, written to `out` one entry at a time.
pub(super) fn encode_inventory(out: &mut dyn io::Write, merged: &Merged<'_>, rules: &EntryRules<'_>) -> io::Result<()> {
    let stored = merged.all.iter().map(|(channel, entry)| {
        let mut entry = (*entry).clone();
        trim_for_inventory(&mut entry, rules);
        let also = match merged.also.binary_search_by(|(place, _)| place.cmp(&entry.place())) {
            Ok(i) => merged.also[i].1.iter().map(|c| (*c).to_owned()).collect(),
            Err(_) => Vec::new(),
        };
        Stored { channel: (*channel).to_owned(), also_listed_by: also, entry }
    });
    let len = merged.all.len();
    crate::manifest::canonical::write_seq(out, len, stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ContentId;

    use crate::manifest::tests::entry_at as entry;

    /// Plain files may change, as the import says of the `files` ecosystem.
    fn rules() -> EntryRules<'static> {
        fn replaceable(entry: &Entry) -> bool {
            entry.ecosystem == "files"
        }
        EntryRules { replaceable: &replaceable, inline_evidence: &[] }
    }

    fn stored(channel: &str, e: Entry) -> Stored {
        Stored { channel: channel.into(), also_listed_by: Vec::new(), entry: e }
    }

    /// `old` as a bundle of `channel` listing `incoming` reads it from the inventory file.
    fn against(old: &[Stored], incoming: &[Entry], channel: &str) -> Against {
        let mut bytes = Vec::new();
        crate::manifest::canonical::write_seq(&mut bytes, old.len(), old.iter()).unwrap();
        decode_inventory_against(bytes.as_slice(), "inventory", incoming, channel).unwrap()
    }

    #[test]
    fn merging_adds_skips_identical_refuses_disagreement_and_withdraws_dropped() {
        let old = vec![
            stored("weekly", entry("npm", "a/-/a-1.tgz", b"a")),
            stored("weekly", entry("files", "notes.txt", b"v1")),
            stored("other", entry("npm", "o/-/o-1.tgz", b"o")),
        ];
        let incoming =
            [entry("npm", "a/-/a-1.tgz", b"a"), entry("npm", "b/-/b-1.tgz", b"b"), entry("files", "notes.txt", b"v1")];
        let held = against(&old, &incoming, "weekly");
        assert_eq!((held.stored.len(), held.relisted().count()), (1, 2), "what it lists again unchanged is not held");
        let m = merge(&held, &incoming, "weekly", &rules()).unwrap();
        assert_eq!(m.all.len(), 4);
        assert_eq!(m.fresh.len(), 1, "an artifact already present is not written again");
        assert!(m.removed.is_empty());

        let other = [entry("npm", "a/-/a-1.tgz", b"other")];
        let err = merge(&against(&old, &other, "weekly"), &other, "weekly", &rules()).err().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("two bundles disagree"), "{err}");

        // Plain files may change from one bundle to the next.
        let changed = [entry("npm", "a/-/a-1.tgz", b"a"), entry("files", "notes.txt", b"v2")];
        let held = against(&old, &changed, "weekly");
        let m = merge(&held, &changed, "weekly", &rules()).unwrap();
        assert_eq!(m.fresh.len(), 1);
        assert!(m.all.iter().any(|(_, e)| e.blob == ContentId::of(b"v2")));

        // The channel dropped a.tgz: withdrawn; another channel's entries stay.
        let dropped = [entry("files", "notes.txt", b"v1")];
        let held = against(&old, &dropped, "weekly");
        let m = merge(&held, &dropped, "weekly", &rules()).unwrap();
        assert_eq!(m.removed.len(), 1);
        assert_eq!(m.removed[0].path.as_str(), "a/-/a-1.tgz");
        assert!(m.all.iter().any(|(channel, _)| *channel == "other"));
    }

    #[test]
    fn another_channel_listing_an_entry_co_lists_it_without_changing_or_withdrawing_it() {
        let mut theirs = entry("npm", "a/-/a-1.tgz", b"a");
        theirs.attributes.insert("published".into(), "by b".into());
        let old = vec![stored("a", entry("npm", "a/-/a-1.tgz", b"a"))];
        let held = against(&old, std::slice::from_ref(&theirs), "b");
        let m = merge(&held, std::slice::from_ref(&theirs), "b", &rules()).unwrap();
        assert_eq!(m.all.len(), 1);
        assert_eq!(m.all[0].0, "a", "the entry stays channel a's");
        assert_eq!(m.all[0].1, &old[0].entry, "with channel a's evidence and attributes");
        assert_ne!(m.all[0].1, &theirs);
        assert_eq!(m.also, [(("npm", "a/-/a-1.tgz"), vec!["b"])]);
        assert!(m.fresh.is_empty() && m.removed.is_empty());

        let co_listed = vec![Stored { also_listed_by: vec!["b".into()], ..old[0].clone() }];
        // Channel b drops it: it stays, channel a's alone.
        let held = against(&co_listed, &[], "b");
        let m = merge(&held, &[], "b", &rules()).unwrap();
        assert_eq!((m.all.len(), m.also.len(), m.removed.len()), (1, 0, 0));
        // Channel a drops it: channel b still lists it, so it stays, now channel b's and unchanged.
        let held = against(&co_listed, &[], "a");
        let m = merge(&held, &[], "a", &rules()).unwrap();
        assert_eq!((m.all[0].0, m.also.len(), m.removed.len()), ("b", 0, 0));
        assert_eq!(m.all[0].1, &co_listed[0].entry);
        // Channel a may not give a plain file new content while channel b vouches for the old.
        let shared = vec![Stored { also_listed_by: vec!["b".into()], ..stored("a", entry("files", "f", b"v1")) }];
        let v2 = [entry("files", "f", b"v2")];
        let err = merge(&against(&shared, &v2, "a"), &v2, "a", &rules()).err().unwrap();
        assert!(err.to_string().contains("channel b also lists this file with its current content"), "{err}");
    }

    #[test]
    fn an_inventory_written_before_channels_could_share_entries_still_loads() {
        #[derive(Serialize)]
        struct OldStored {
            channel: String,
            entry: Entry,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INVENTORY);
        let old = [OldStored { channel: "weekly".into(), entry: entry("files", "notes.txt", b"v1") }];
        let mut file = File::create(&path).unwrap();
        crate::manifest::canonical::write_seq(&mut file, old.len(), old.into_iter()).unwrap();
        drop(file);
        let read = read_inventory(&path).unwrap();
        assert_eq!(read, [stored("weekly", entry("files", "notes.txt", b"v1"))]);
    }
}
