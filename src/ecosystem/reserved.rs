//! Every path an import will write, carried or generated, checked against
//! every other before anything is staged.
//!
//! An entry occupies more of the mirror than its own file: PyPI writes its
//! core metadata and provenance beside it and an index page for its project,
//! npm a packument and an attestations document, cargo an index file named
//! after the crate. Each ecosystem states those paths ([`Ecosystem::reserve`],
//! [`Ecosystem::reserved_globally`]); [`check`] refuses two entries that
//! claim one path (or paths a case-insensitive, normalising file system takes
//! for one, or a path that is a file for one and a folder for the other),
//! unless the path is a document the ecosystem's design shares between them:
//! the versions of one project share its index page, the versions of one
//! crate, spelled exactly alike, its index file.

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

/// One path claimed by an entry (or by the ecosystem for the whole mirror).
struct Claim<'a> {
    ecosystem: &'a str,
    path: Cow<'a, str>,
    what: &'static str,
    shared_by: Option<&'a str>,
    /// `None`: a path the ecosystem writes for the whole mirror.
    owner: Option<(&'a Entry, Holder<'a>)>,
}

impl Claim<'_> {
    fn from_bundle(&self) -> bool {
        matches!(self.owner, Some((_, Holder::Bundle)))
    }

    /// Whether two claims of one path cannot both have it.
    fn excludes(&self, other: &Claim<'_>) -> bool {
        self.shared_by.is_none() || self.shared_by != other.shared_by
    }

    fn describe(&self) -> String {
        let Some((entry, holder)) = self.owner else {
            return format!("the {} airlock writes for the whole {} tree", self.what, self.ecosystem);
        };
        let whose = match (self.shared_by, &entry.version) {
            (Some(key), _) => format!("{} {key}", entry.ecosystem),
            (None, Some(version)) => format!("{} {} {version} ({})", entry.ecosystem, entry.name, entry.path),
            (None, None) => format!("{}/{}", entry.ecosystem, entry.path),
        };
        match holder {
            Holder::Bundle => format!("the {} of {whose}", self.what),
            Holder::Mirror(channel) => {
                format!("the {} of {whose} (the mirror's, from channel {channel})", self.what)
            }
        }
    }
}

/// Checks every path `entries` occupy, carried and generated. A collision
/// is reported only when an entry of the bundle takes part in it; the
/// error names both claims.
pub fn check<'a>(entries: impl IntoIterator<Item = (&'a Entry, Holder<'a>)>) -> Result<(), String> {
    let mut claims = Vec::new();
    let mut ecosystems: Vec<&'static dyn Ecosystem> = Vec::new();
    for (entry, holder) in entries {
        // Unknown ecosystems were refused by verification; the mirror holds none.
        let Some(eco) = super::by_name(&entry.ecosystem) else { continue };
        if !ecosystems.iter().any(|e| e.name() == eco.name()) {
            ecosystems.push(eco);
        }
        eco.reserve(entry, &mut |r| {
            claims.push(Claim {
                ecosystem: &entry.ecosystem,
                path: r.path,
                what: r.what,
                shared_by: r.shared_by,
                owner: Some((entry, holder)),
            });
        });
    }
    for eco in ecosystems {
        for (path, what) in eco.reserved_globally() {
            claims.push(Claim { ecosystem: eco.name(), path: Cow::Borrowed(path), what, shared_by: None, owner: None });
        }
    }
    // A sorted vector rather than a map: the claims are compared in groups of one path.
    claims.sort_unstable_by(|a, b| (a.ecosystem, &*a.path).cmp(&(b.ecosystem, &*b.path)));
    check_same_path(&claims)?;
    check_folders(&claims)?;
    check_folding(&claims)
}

/// The claims of one path, in `claims` sorted by place.
fn same_place<'c, 'a>(claims: &'c [Claim<'a>], ecosystem: &str, path: &str) -> &'c [Claim<'a>] {
    let start = claims.partition_point(|c| (c.ecosystem, &*c.path) < (ecosystem, path));
    let len = claims[start..].iter().take_while(|c| c.ecosystem == ecosystem && c.path == path).count();
    &claims[start..start + len]
}

/// Claims of one exact path must all be one shared document. Linear in the
/// group: a bundle's claim either excludes some other claim of the path
/// (reported) or shares the path with every one of them.
fn check_same_path(claims: &[Claim<'_>]) -> Result<(), String> {
    for group in claims.chunk_by(|a, b| a.ecosystem == b.ecosystem && a.path == b.path) {
        let Some((i, ours)) = group.iter().enumerate().find(|(_, c)| c.from_bundle()) else { continue };
        let other = group.iter().enumerate().find(|(j, c)| *j != i && (ours.excludes(c) || c.excludes(ours)));
        if let Some((_, other)) = other {
            let path = format!("{}/{}", ours.ecosystem, ours.path);
            return Err(collision(ours, other, &path, "both claim this path of the mirror", claims));
        }
    }
    Ok(())
}

/// No path may be a file for one claim and a folder on the way to another's.
fn check_folders(claims: &[Claim<'_>]) -> Result<(), String> {
    for group in claims.chunk_by(|a, b| a.ecosystem == b.ecosystem && a.path == b.path) {
        let deeper = &group[0];
        let path = &*deeper.path;
        for (end, _) in path.match_indices('/') {
            let files = same_place(claims, deeper.ecosystem, &path[..end]);
            if files.is_empty() {
                continue;
            }
            let pair = match group.iter().find(|c| c.from_bundle()) {
                Some(ours) => Some((ours, &files[0])),
                None => files.iter().find(|c| c.from_bundle()).map(|file| (file, deeper)),
            };
            if let Some((a, b)) = pair {
                let folder = format!("{}/{}", deeper.ecosystem, &path[..end]);
                return Err(collision(a, b, &folder, "need this path of the mirror as a file and as a folder", claims));
            }
        }
    }
    Ok(())
}

/// Paths that differ only by case or Unicode normalisation: what the mirror
/// holds first (pairs among those are left alone), then the bundle's.
fn check_folding(claims: &[Claim<'_>]) -> Result<(), String> {
    let mut folded = FoldedPaths::default();
    for claim in claims.iter().filter(|c| !c.from_bundle()) {
        let _ = folded.add(claim.ecosystem, &claim.path);
    }
    let mut previous: Option<(&str, &str)> = None;
    for claim in claims.iter().filter(|c| c.from_bundle()) {
        let place = (claim.ecosystem, &*claim.path);
        if previous == Some(place) {
            continue;
        }
        previous = Some(place);
        folded
            .add(claim.ecosystem, &claim.path)
            .map_err(|why| format!("{why} ({} is one of them); {}", claim.describe(), advice(claims)))?;
    }
    Ok(())
}

fn collision(ours: &Claim<'_>, other: &Claim<'_>, path: &str, clash: &str, claims: &[Claim<'_>]) -> String {
    format!("{path}: {} and {} {clash}; {}", ours.describe(), other.describe(), advice(claims))
}

/// What to do. A collision within one bundle is found when it is verified,
/// before the mirror is looked at; one found with the mirror's entries
/// present involves one of them.
fn advice(claims: &[Claim<'_>]) -> &'static str {
    if claims.iter().any(|c| matches!(c.owner, Some((_, Holder::Mirror(_))))) {
        "the mirror already holds one of them: rename or drop the other upstream, or withdraw the one the mirror holds from its channel first"
    } else {
        "one would replace the other: the bundle must leave one of them out (ask its exporter why it lists both)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{ContentId, RelPath};

    fn entry(ecosystem: &str, name: &str, version: &str, path: &str) -> Entry {
        Entry {
            ecosystem: ecosystem.into(),
            name: name.into(),
            version: (ecosystem != "files").then(|| version.into()),
            path: RelPath::new(path).unwrap(),
            blob: ContentId::of(path.as_bytes()),
            size: 0,
            digests: std::collections::BTreeMap::new(),
            source: None,
            attributes: std::collections::BTreeMap::new(),
            evidence: Vec::new(),
            missing: Vec::new(),
        }
    }

    fn bundle(entries: &[Entry]) -> Result<(), String> {
        check(entries.iter().map(|e| (e, Holder::Bundle)))
    }

    #[test]
    fn versions_of_one_project_share_its_pages_and_index_file() {
        bundle(&[
            entry("pypi", "six", "1.0", "six/six-1.0.tar.gz"),
            entry("pypi", "six", "1.1", "six/six-1.1.tar.gz"),
            entry("npm", "a", "1.0.0", "a/-/a-1.0.0.tgz"),
            entry("npm", "a", "1.1.0", "a/-/a-1.1.0.tgz"),
            entry("cargo", "Serde", "1.0.0", "Serde-1.0.0.crate"),
            entry("cargo", "Serde", "1.1.0", "Serde-1.1.0.crate"),
            entry("files", "simple/index.html", "", "simple/index.html"),
        ])
        .unwrap();
    }

    #[test]
    fn generated_paths_are_checked_against_every_other_path() {
        let cases = [
            (entry("pypi", "six", "1.0", "six/six-1.0.tar.gz.metadata"), "core metadata of pypi six 1.0"),
            (entry("pypi", "six", "1.0", "six/index.json"), "index page of pypi six"),
            (entry("pypi", "six", "1.0", "six/Six-1.0.tar.gz"), "differ only by case"),
            (entry("cargo", "SIX", "2.0.0", "SIX-2.0.0.crate"), "index file of cargo SIX"),
        ];
        let six =
            [entry("pypi", "six", "1.0", "six/six-1.0.tar.gz"), entry("cargo", "six", "1.0.0", "six-1.0.0.crate")];
        for (hostile, expected) in cases {
            let err = bundle(&[six[0].clone(), six[1].clone(), hostile.clone()]).unwrap_err();
            assert!(err.contains(expected) && err.contains("leave one of them out"), "{err}");
            // Against the mirror's entries: reported, with the channel that holds them.
            let held = six.iter().map(|e| (e, Holder::Mirror("a"))).chain([(&hostile, Holder::Bundle)]);
            let err = check(held).unwrap_err();
            assert!(err.contains("the mirror already holds one of them"), "{err}");
            // Between two entries the mirror holds (published before this rule): left alone.
            let kept = six.iter().chain([&hostile]).map(|e| (e, Holder::Mirror("a")));
            check(kept).unwrap();
        }
    }

    #[test]
    fn a_path_cannot_be_a_file_for_one_claim_and_a_folder_for_another() {
        // One file's provenance path is a folder on the way to another's.
        let a = entry("pypi", "p", "1", "p/p-x");
        let b = entry("pypi", "p", "1/p-x/provenance", "p/p-y");
        let err = bundle(&[a.clone(), b.clone()]).unwrap_err();
        assert!(
            err.starts_with("pypi/integrity/p/1/p-x/provenance: the provenance of pypi p 1/p-x/provenance"),
            "{err}"
        );
        assert!(err.contains("as a file and as a folder"), "{err}");
        // Across bundles too: a plain file where the mirror has a folder, and the other way round.
        let (file, deeper) = (entry("files", "a", "", "a"), entry("files", "a/b", "", "a/b"));
        for (held, new) in [(&file, &deeper), (&deeper, &file)] {
            let err = check([(held, Holder::Mirror("a")), (new, Holder::Bundle)]).unwrap_err();
            assert!(err.starts_with("files/a: ") && err.contains("the mirror already holds one of them"), "{err}");
        }
    }
}
