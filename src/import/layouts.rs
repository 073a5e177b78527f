//! Each ecosystem's layout of a publication: the loop the mirror calls back
//! while it builds the next generation.

use crate::ecosystem::{ALL, Change};
use crate::error::Result;
use crate::manifest::Entry;
use crate::mirror::{Layout, Merged};
use crate::policy::Policy;

/// The other paths a static store publishes the document at `path` of
/// ecosystem folder `folder` at ([`crate::ecosystem::Ecosystem::static_aliases`]).
pub(super) fn static_aliases(folder: &str, path: &str) -> Vec<String> {
    crate::ecosystem::by_name(folder).map(|eco| eco.static_aliases(path)).unwrap_or_default()
}

/// How the documents of a generation are rendered.
#[derive(Clone, Copy)]
pub(super) struct Rendering<'a> {
    /// The mirror's base URL after this publish (`import --base-url`).
    pub base_url: Option<&'a str>,
    /// It changed: every document is regenerated, not only the changed names'.
    pub rerender: bool,
}

/// Writes, for every ecosystem, what the merge changed into the generation
/// being built, then the registry keys documents `policy` pins for the
/// ecosystems whose clients read one (while the mirror holds entries of it);
/// a re-render without a policy leaves those documents as they were.
pub(super) fn writer<'a>(
    policy: Option<&'a Policy>,
    rendering: Rendering<'a>,
) -> impl FnMut(&Merged<'_>, &mut dyn Layout) -> Result<()> + 'a {
    move |merged, tree| {
        for eco in ALL {
            let of_eco = |e: &&Entry| e.ecosystem == eco.name();
            let change = Change {
                new: merged.fresh.iter().copied().filter(of_eco).collect(),
                removed: merged.removed.iter().copied().filter(of_eco).collect(),
                replaced: merged.replaced.iter().copied().filter(of_eco).collect(),
                all: merged.all.iter().map(|(_, e)| *e).filter(of_eco).collect(),
                base_url: rendering.base_url,
                rerender: rendering.rerender,
                pinned: policy.and_then(|p| p.rules(eco.name())).and_then(|r| r.pinned.as_ref()),
            };
            if !change.new.is_empty() || !change.removed.is_empty() || (change.rerender && !change.all.is_empty()) {
                eco.publish(&change, tree)?;
            }
        }
        let Some(policy) = policy else { return Ok(()) };
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
