//! Each ecosystem's layout of a publication: the loop the mirror calls back
//! while it builds the next generation.

use crate::ecosystem::{ALL, Change};
use crate::error::Result;
use crate::manifest::Entry;
use crate::mirror::{Layout, Merged};
use crate::policy::Policy;

/// Writes, for every ecosystem, what the merge changed into the generation
/// being built, then the registry keys documents `policy` pins for the
/// ecosystems whose clients read one (while the mirror holds entries of it).
pub(super) fn writer(policy: &Policy) -> impl FnMut(&Merged<'_>, &mut dyn Layout) -> Result<()> + '_ {
    move |merged, tree| {
        for eco in ALL {
            let of_eco = |e: &&Entry| e.ecosystem == eco.name();
            let change = Change {
                new: merged.fresh.iter().copied().filter(of_eco).collect(),
                removed: merged.removed.iter().copied().filter(of_eco).collect(),
                all: merged.all.iter().map(|(_, e)| *e).filter(of_eco).collect(),
            };
            if !change.new.is_empty() || !change.removed.is_empty() {
                eco.publish(&change, tree)?;
            }
        }
        for eco in ALL {
            let Some(path) = eco.pinned_keys_path() else { continue };
            if let Some(keys) = policy.rules(eco.name()).and_then(|r| r.pinned_document())
                && merged.all.iter().any(|(_, e)| e.ecosystem == eco.name())
            {
                tree.write(eco.name(), path, keys)?;
            }
        }
        Ok(())
    }
}
