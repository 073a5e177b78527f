//! What the mirror must be told of the ecosystems' entries, and the checks
//! a bundle's listing passes against the mirror's inventory before
//! anything of it is staged.

use crate::ecosystem::reserved::{self, Holder};
use crate::ecosystem::{self, ALL};
use crate::error::Result;
use crate::manifest::{Entry, Manifest};
use crate::mirror::{Against, Changes, EntryRules, merge};

/// The ecosystems' answers to what the mirror asks of entries ([`EntryRules`]).
pub(super) struct Rules {
    inline_evidence: Vec<&'static str>,
}

impl Rules {
    pub(super) fn new() -> Self {
        Rules { inline_evidence: ALL.iter().flat_map(|eco| eco.inventory_evidence()).copied().collect() }
    }

    pub(super) fn entry_rules(&self) -> EntryRules<'_> {
        EntryRules { replaceable: &replaceable, inline_evidence: &self.inline_evidence }
    }
}

/// Whether the ecosystem of `entry` lets a channel give its path new content.
fn replaceable(entry: &Entry) -> bool {
    ecosystem::by_name(&entry.ecosystem).is_some_and(|eco| eco.entry_replaceable(entry))
}

/// Whether a bundle with `manifest` could be published over the mirror's
/// `inventory`: the checks its publication makes (other channels' entries
/// unchanged, no two entries claiming one path), made before anything of it
/// is staged. Says what the publication will change.
pub(super) fn check_listing(inventory: &Against, entries: &[Entry], manifest: &Manifest) -> Result<Changes> {
    let rules = Rules::new();
    let merged = merge(inventory, entries, &manifest.channel, &rules.entry_rules())?;
    check_reserved(&merged.all, &manifest.channel)?;
    Ok(merged.changes())
}

/// Every path the mirror's entries occupy after the import, carried and
/// generated, against every other ([`reserved`]); a collision counts when
/// an entry `channel` lists takes part in it.
fn check_reserved(all: &[(&str, &Entry)], channel: &str) -> Result<()> {
    // This channel's entries are the bundle's; the others' are what the mirror holds.
    let source = |i: usize| {
        let (owner, entry) = all[i];
        (entry, if owner == channel { Holder::Bundle } else { Holder::Mirror(owner) })
    };
    reserved::check(all.len(), source).map_err(|e| e.into_error(&format!("channel {channel}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::manifest::tests::entry_at as entry;

    fn stored(channel: &str, e: Entry) -> crate::mirror::Stored {
        crate::mirror::Stored { channel: channel.into(), also_listed_by: Vec::new(), entry: e }
    }

    #[test]
    fn a_path_folding_into_a_published_one_is_refused() {
        let old = vec![
            stored("weekly", entry("npm", "a/-/a-1.tgz", b"a")),
            stored("weekly", entry("files", "notes.txt", b"v1")),
            stored("other", entry("npm", "o/-/o-1.tgz", b"o")),
        ];
        let rules = Rules::new();
        // A path that a case-insensitive file system would merge with a published one.
        let incoming = [entry("files", "NOTES.txt", b"v1")];
        let held = Against { stored: old, ..Against::default() };
        let merged = merge(&held, &incoming, "other", &rules.entry_rules());
        let err = merged.and_then(|m| check_reserved(&m.all, "other")).err().unwrap();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("differ only by case"), "{err}");
    }
}
