//! Every path an import will write, carried or generated, checked against
//! every other before anything is staged.
//!
//! An entry occupies more of the mirror than its own file: an ecosystem may
//! write evidence beside it (core metadata, provenance, attestations) and
//! documents for its package (an index page, a document of its versions).
//! Each ecosystem states those paths ([`Ecosystem::reserve`],
//! [`Ecosystem::reserved_globally`]); [`check`] refuses two entries that
//! claim one path (or paths a case-insensitive, normalising file system takes
//! for one, or a path that is a file for one and a folder for the other),
//! unless the path is a document the ecosystem's design shares between them
//! (the versions of one package, spelled exactly alike, share its index).
//!
//! Generic: it names no ecosystem. The cases of the real ecosystems are
//! tested in `tests/reserved.rs`.

use std::borrow::Cow;

use super::Ecosystem;
use crate::manifest::{Entry, FoldedPaths};

/// A path an entry occupies in its ecosystem's folder of the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved<'a> {
    /// Relative to the ecosystem's folder, e.g. `simple/six/index.html`.
    pub path: Cow<'a, str>,
    /// What the file is, for messages: `file`, `core metadata`, `index page`…
    pub what: &'static str,
    /// `None`: the entry's alone. `Some(key)`: a document generated for every
    /// entry with this key, spelled exactly alike (the project's name).
    pub shared_by: Option<&'a str>,
}

impl<'a> Reserved<'a> {
    /// A path no other entry may occupy.
    #[must_use]
    pub fn own(path: impl Into<Cow<'a, str>>, what: &'static str) -> Self {
        Reserved { path: path.into(), what, shared_by: None }
    }

    /// A document shared by every entry with the same `key`.
    #[must_use]
    pub fn shared(path: impl Into<Cow<'a, str>>, what: &'static str, key: &'a str) -> Self {
        Reserved { path: path.into(), what, shared_by: Some(key) }
    }
}

/// Where an entry being checked comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    /// Listed by the bundle being verified or imported.
    Bundle,
    /// Published already, by this channel; collisions between two entries
    /// the mirror holds are left alone (they were published before this rule).
    Mirror(&'a str),
}

/// One path claimed by an entry, or by the ecosystem for its whole tree.
/// Kept small (there is one per path of every entry checked): the entry
/// and what the path is are looked up again only for a message.
struct Claim<'a> {
    path: Cow<'a, str>,
    shared_by: Option<&'a str>,
    /// The claiming entry's index in the source, or [`GLOBAL`].
    owner: u32,
    from_bundle: bool,
}

/// The owner of a path the ecosystem writes for its whole tree.
const GLOBAL: u32 = u32::MAX;

impl Claim<'_> {
    /// Whether two claims of one path cannot both have it.
    fn excludes(&self, other: &Claim<'_>) -> bool {
        self.shared_by.is_none() || self.shared_by != other.shared_by
    }
}

/// The entries being checked, by index, with where each comes from: a
/// function rather than a list, so no second list of them is built.
type Source<'s, 'a> = &'s dyn Fn(usize) -> (&'a Entry, Holder<'a>);

/// Checks every path the `len` entries of `source` occupy, carried and
/// generated. A collision is reported only when an entry of the bundle
/// takes part in it; the error names both claims.
pub fn check<'a>(len: usize, source: impl Fn(usize) -> (&'a Entry, Holder<'a>)) -> Result<(), String> {
    // Ecosystems write to folders of their own: each is checked alone, so
    // only one ecosystem's claims are held at a time.
    for eco in super::ALL {
        check_ecosystem(*eco, len, &source)?;
    }
    Ok(())
}

fn check_ecosystem(eco: &'static dyn Ecosystem, len: usize, source: Source<'_, '_>) -> Result<(), String> {
    let mut claims = Vec::new();
    for index in 0..len {
        let (entry, holder) = source(index);
        if entry.ecosystem != eco.name() {
            continue;
        }
        let owner = u32::try_from(index).ok().filter(|i| *i != GLOBAL).expect("fewer than 2^32 - 1 entries");
        let from_bundle = holder == Holder::Bundle;
        eco.reserve(entry, &mut |r| claims.push(Claim { path: r.path, shared_by: r.shared_by, owner, from_bundle }));
    }
    if claims.is_empty() {
        return Ok(());
    }
    for (path, _) in eco.reserved_globally() {
        claims.push(Claim { path: Cow::Borrowed(path), shared_by: None, owner: GLOBAL, from_bundle: false });
    }
    // A sorted vector rather than a map: the claims are compared in groups of one path.
    claims.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let context = Context { eco, source, claims: &claims };
    context.check_same_path()?;
    context.check_folders()?;
    context.check_folding()
}

/// What the checks of one ecosystem look at.
struct Context<'c, 'a> {
    eco: &'static dyn Ecosystem,
    source: Source<'c, 'a>,
    /// Sorted by path.
    claims: &'c [Claim<'a>],
}

impl Context<'_, '_> {
    fn groups(&self) -> impl Iterator<Item = &[Claim<'_>]> {
        self.claims.chunk_by(|a, b| a.path == b.path)
    }

    /// The claims of exactly `path`.
    fn claims_of(&self, path: &str) -> &[Claim<'_>] {
        let start = self.claims.partition_point(|c| &*c.path < path);
        let len = self.claims[start..].iter().take_while(|c| c.path == path).count();
        &self.claims[start..start + len]
    }

    /// Claims of one exact path must all be one shared document. Linear in
    /// the group: a bundle's claim either excludes some other claim of the
    /// path (reported) or shares the path with every one of them.
    fn check_same_path(&self) -> Result<(), String> {
        for group in self.groups() {
            let Some((i, ours)) = group.iter().enumerate().find(|(_, c)| c.from_bundle) else { continue };
            let other = group.iter().enumerate().find(|(j, c)| *j != i && (ours.excludes(c) || c.excludes(ours)));
            if let Some((_, other)) = other {
                return Err(self.collision(ours, other, &ours.path, "both claim this path of the mirror"));
            }
        }
        Ok(())
    }

    /// No path may be a file for one claim and a folder on the way to another's.
    fn check_folders(&self) -> Result<(), String> {
        for group in self.groups() {
            let deeper = &group[0];
            for (end, _) in deeper.path.match_indices('/') {
                let folder = &deeper.path[..end];
                let file_claims = self.claims_of(folder);
                if file_claims.is_empty() {
                    continue;
                }
                let pair = match group.iter().find(|c| c.from_bundle) {
                    Some(ours) => Some((ours, &file_claims[0])),
                    None => file_claims.iter().find(|c| c.from_bundle).map(|file| (file, deeper)),
                };
                if let Some((a, b)) = pair {
                    return Err(self.collision(a, b, folder, "need this path of the mirror as a file and as a folder"));
                }
            }
        }
        Ok(())
    }

    /// Paths that differ only by case or Unicode normalisation: what the
    /// mirror holds first (pairs among those are left alone), then the bundle's.
    fn check_folding(&self) -> Result<(), String> {
        let mut folded = FoldedPaths::default();
        let name = self.eco.name();
        for group in self.groups().filter(|g| g.iter().any(|c| !c.from_bundle)) {
            let _ = folded.add(name, &group[0].path);
        }
        for group in self.groups() {
            if let Some(ours) = group.iter().find(|c| c.from_bundle) {
                folded
                    .add(name, &ours.path)
                    .map_err(|why| format!("{why} ({} is one of them); {}", self.describe(ours), self.advice()))?;
            }
        }
        Ok(())
    }

    fn collision(&self, ours: &Claim<'_>, other: &Claim<'_>, path: &str, clash: &str) -> String {
        let (ours, other, advice) = (self.describe(ours), self.describe(other), self.advice());
        format!("{}/{path}: {ours} and {other} {clash}; {advice}", self.eco.name())
    }

    /// What to do. A collision within one bundle is found when it is
    /// verified, before the mirror is looked at; one found with the
    /// mirror's entries present involves one of them.
    fn advice(&self) -> &'static str {
        if self.claims.iter().any(|c| !c.from_bundle && c.owner != GLOBAL) {
            "the mirror already holds one of them: rename or drop the other upstream, or withdraw the one the mirror holds from its channel first"
        } else {
            "one would replace the other: the bundle must leave one of them out (ask its exporter why it lists both)"
        }
    }

    /// `the core metadata of <ecosystem> six 1.0 (six/six-1.0.tar.gz)`, and which
    /// channel's it is when the mirror holds it.
    fn describe(&self, claim: &Claim<'_>) -> String {
        let name = self.eco.name();
        if claim.owner == GLOBAL {
            let what = self.eco.reserved_globally().iter().find(|(p, _)| *p == claim.path).map_or("file", |(_, w)| w);
            return format!("the {what} airlock writes for the whole {name} tree");
        }
        let (entry, holder) = (self.source)(claim.owner as usize);
        // An entry may claim one path twice (a file where its own page goes): the claim's sharing tells them apart.
        let mut what = None;
        self.eco.reserve(entry, &mut |r| {
            if r.path == claim.path && r.shared_by == claim.shared_by {
                what = what.or(Some(r.what));
            }
        });
        let what = what.unwrap_or("file");
        let whose = match (claim.shared_by, &entry.version) {
            (Some(key), _) => format!("{name} {key}"),
            (None, Some(version)) => format!("{name} {} {version} ({})", entry.name, entry.path),
            (None, None) => format!("{name}/{}", entry.path),
        };
        match holder {
            Holder::Bundle => format!("the {what} of {whose}"),
            Holder::Mirror(channel) => format!("the {what} of {whose} (the mirror's, from channel {channel})"),
        }
    }
}
