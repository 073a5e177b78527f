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
//! The claims are compared sorted, through [`crate::sort`]: within a budget
//! of memory whatever the number of entries (a few MiB, where a vector of
//! claims and a map of folded paths took some 200 bytes an entry), and in
//! one pass, each path beside the folders on the way to it. Generic: it
//! names no ecosystem. The cases of the real ecosystems are tested in
//! `tests/reserved.rs`.

use std::borrow::Cow;
use std::io;
use std::ops::Range;

use super::Ecosystem;
use crate::manifest::{Entries, Entry, EntryRef, fold, folding_clash};
use crate::sort::{Sorted, Sorter};

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

/// Why [`check`] refused.
#[derive(Debug)]
pub enum Unchecked {
    /// Two claims cannot both have their paths: the message names both.
    Clash(String),
    /// The temporary files the claims are sorted in could not be used.
    Io(io::Error),
}

impl std::fmt::Display for Unchecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unchecked::Clash(why) => f.write_str(why),
            Unchecked::Io(e) => write!(f, "sorting the paths in a temporary file: {e}"),
        }
    }
}

impl From<io::Error> for Unchecked {
    fn from(e: io::Error) -> Self {
        Unchecked::Io(e)
    }
}

impl Unchecked {
    /// As the importer's error: a clash is a refusal of `subject` by the
    /// policy (exit 1); a failed temporary file the machine's (exit 3).
    #[must_use]
    pub fn into_error(self, subject: &str) -> crate::error::Error {
        use crate::error::{Error, Rejection};
        match self {
            Unchecked::Clash(why) => Error::rejected(subject, Rejection::Policy(why)),
            Unchecked::Io(source) => Error::Io {
                path: std::env::temp_dir(),
                source,
                hint: "the paths of the mirror are sorted in temporary files here: free space, or set TMPDIR to a folder with room",
            },
        }
    }
}

/// Who claims a path: an entry (by its index in the source) or the
/// ecosystem for its whole tree ([`GLOBAL`]), and whether the claim is of a
/// document shared by every entry with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claimant {
    owner: u32,
    from_bundle: bool,
    shared_by: Option<String>,
}

/// The owner of a path the ecosystem writes for its whole tree.
const GLOBAL: u32 = u32::MAX;

impl Claimant {
    /// Appends the claimant as a record's tail: owner, flags, shared key.
    fn encode(&self, record: &mut Vec<u8>) {
        record.extend_from_slice(&self.owner.to_be_bytes());
        record.push(u8::from(self.from_bundle) | u8::from(self.shared_by.is_some()) << 1);
        record.extend_from_slice(self.shared_by.as_deref().unwrap_or("").as_bytes());
    }

    /// The claimant a record's tail encodes, as [`Claimant::encode`] wrote it.
    fn decode(tail: &[u8]) -> Claimant {
        let owner = u32::from_be_bytes(tail[..4].try_into().expect("a record's tail holds its owner"));
        let flags = tail[4];
        let shared_by = (flags & 2 != 0).then(|| String::from_utf8_lossy(&tail[5..]).into_owned());
        Claimant { owner, from_bundle: flags & 1 != 0, shared_by }
    }
}

/// The entries being checked, by index, with where each comes from: a
/// function rather than a list, so no second list of them is built.
type Source<'s, 'a> = &'s dyn Fn(usize) -> (EntryRef<'a>, Holder<'a>);

/// The indexes of the entries of an ecosystem (all of them, or where a
/// sorted list holds that ecosystem's).
type Ranges<'s> = &'s dyn Fn(&str) -> Range<usize>;

/// Checks every path the `len` entries of `source` occupy, carried and
/// generated. A collision is reported only when an entry of the bundle
/// takes part in it; the error names both claims.
pub fn check<'a>(len: usize, source: impl Fn(usize) -> (&'a Entry, Holder<'a>)) -> Result<(), Unchecked> {
    let source = |i: usize| {
        let (entry, holder) = source(i);
        (EntryRef::Borrowed(entry), holder)
    };
    check_within(crate::sort::DEFAULT_BUDGET, &|_| 0..len, &source)
}

/// [`check`] of a bundle's own entries, sorted by place (so each
/// ecosystem's are read alone).
pub fn check_bundle(entries: &Entries) -> Result<(), Unchecked> {
    let source = |i: usize| (entries.get(i).expect("within the entries"), Holder::Bundle);
    let all = 0..entries.len();
    check_within(crate::sort::DEFAULT_BUDGET, &|eco| entries.range_of(eco).unwrap_or(all.clone()), &source)
}

/// [`check`], sorting within `budget` bytes of memory for each sort.
fn check_within(budget: usize, ranges: Ranges<'_>, source: Source<'_, '_>) -> Result<(), Unchecked> {
    // Ecosystems write to folders of their own: each is checked alone.
    for eco in super::ALL {
        check_ecosystem(*eco, budget, ranges(eco.name()), source)?;
    }
    Ok(())
}

fn check_ecosystem(
    eco: &'static dyn Ecosystem,
    budget: usize,
    range: Range<usize>,
    source: Source<'_, '_>,
) -> Result<(), Unchecked> {
    let (claims, mirror_held) = sorted_claims(eco, budget, range, source)?;
    let Some(claims) = claims else { return Ok(()) };
    let mut context = Context { eco, source, mirror_held, same: None, folder: None, stack: Vec::new() };
    let mut folded = Folded { sorter: Sorter::new(budget), levels: Vec::new(), record: Vec::new() };
    let mut groups = Groups { claims, pending: None };
    while let Some(group) = groups.next_group()? {
        context.check_same_path(&group);
        folded.add(&group)?;
        context.check_folders(group);
    }
    if let Some(why) = context.same.take().or(context.folder.take()) {
        return Err(Unchecked::Clash(why));
    }
    context.check_folding(folded.sorter.finish()?)
}

/// The claims of `eco`'s entries and of its whole tree, sorted by path
/// (`None` when its entries claim nothing), and whether an entry the
/// mirror holds is among them.
fn sorted_claims(
    eco: &'static dyn Ecosystem,
    budget: usize,
    range: Range<usize>,
    source: Source<'_, '_>,
) -> Result<(Option<Sorted>, bool), Unchecked> {
    let mut sorter = Sorter::new(budget);
    let (mut record, mut failed, mut any, mut mirror_held) = (Vec::new(), None, false, false);
    let mut push = |path: &str, claimant: Claimant, sorter: &mut Sorter| {
        // A path sorts before its folder's other names by the NUL ending it; no path holds one.
        if path.contains('\0') {
            failed.get_or_insert(Unchecked::Clash(format!("{}/{path:?} holds a NUL", eco.name())));
            return;
        }
        record.clear();
        record.extend_from_slice(path.as_bytes());
        record.push(0);
        claimant.encode(&mut record);
        if let Err(e) = sorter.push(&record) {
            failed.get_or_insert(e.into());
        }
    };
    for index in range {
        let (entry, holder) = source(index);
        if entry.ecosystem != eco.name() {
            continue;
        }
        let owner = u32::try_from(index).ok().filter(|i| *i != GLOBAL).expect("fewer than 2^32 - 1 entries");
        let from_bundle = holder == Holder::Bundle;
        (any, mirror_held) = (true, mirror_held || !from_bundle);
        eco.reserve(&entry, &mut |r| {
            let shared_by = r.shared_by.map(str::to_owned);
            push(&r.path, Claimant { owner, from_bundle, shared_by }, &mut sorter);
        });
    }
    if !any {
        return Ok((None, false));
    }
    for (path, _) in eco.reserved_globally() {
        push(path, Claimant { owner: GLOBAL, from_bundle: false, shared_by: None }, &mut sorter);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((Some(sorter.finish()?), mirror_held)),
    }
}

/// The claims of one path, as much of them as the checks need: the first,
/// the second, the first from the bundle and the first whose sharing
/// differs from the first's (a group can hold every version of a package).
struct Group {
    path: String,
    first: Claimant,
    second: Option<Claimant>,
    /// The first claim from the bundle, and whether it is the group's first.
    ours: Option<(Claimant, bool)>,
    odd: Option<Claimant>,
    /// Whether a claim not from the bundle (the mirror's, the tree's) is among them.
    held: bool,
}

impl Group {
    fn new(path: String, first: Claimant) -> Self {
        let ours = first.from_bundle.then(|| (first.clone(), true));
        Group { path, held: !first.from_bundle, first, second: None, ours, odd: None }
    }

    fn add(&mut self, claim: Claimant) {
        self.held |= !claim.from_bundle;
        if self.ours.is_none() && claim.from_bundle {
            self.ours = Some((claim.clone(), false));
        }
        if self.odd.is_none() && claim.shared_by != self.first.shared_by {
            self.odd = Some(claim.clone());
        }
        self.second.get_or_insert(claim);
    }
}

/// A claim record's path and claimant.
fn split_claim(record: &[u8]) -> (&str, Claimant) {
    let end = record.iter().position(|b| *b == 0).expect("a claim record ends its path with a NUL");
    let path = std::str::from_utf8(&record[..end]).expect("claim records are written from paths");
    (path, Claimant::decode(&record[end + 1..]))
}

/// The sorted claims, one path at a time.
struct Groups {
    claims: Sorted,
    /// The record that begins the next group, once read.
    pending: Option<Vec<u8>>,
}

impl Groups {
    fn next_group(&mut self) -> io::Result<Option<Group>> {
        let first = match self.pending.take() {
            Some(record) => record,
            None => match self.claims.next_record()? {
                Some(record) => record.to_vec(),
                None => return Ok(None),
            },
        };
        let (path, claimant) = split_claim(&first);
        let mut group = Group::new(path.to_owned(), claimant);
        while let Some(record) = self.claims.next_record()? {
            let (path, claimant) = split_claim(record);
            if path != group.path {
                self.pending = Some(record.to_vec());
                break;
            }
            group.add(claimant);
        }
        Ok(Some(group))
    }
}

/// What the checks of one ecosystem look at, and what they found.
struct Context<'c, 'a> {
    eco: &'static dyn Ecosystem,
    source: Source<'c, 'a>,
    /// Whether an entry the mirror holds claims a path (for the advice).
    mirror_held: bool,
    /// The first path claimed twice, and the first needed as file and folder.
    same: Option<String>,
    folder: Option<String>,
    /// The groups before this one whose paths begin the current one's.
    stack: Vec<Group>,
}

impl Context<'_, '_> {
    /// Claims of one exact path must all be one shared document: a bundle's
    /// claim either excludes some other claim of the path (reported) or
    /// shares the path with every one of them. Two claims exclude each
    /// other unless both are of the document shared by one key.
    fn check_same_path(&mut self, group: &Group) {
        let Some((ours, ours_first)) = &group.ours else { return };
        let other = match &ours.shared_by {
            None if *ours_first => group.second.as_ref(),
            None => Some(&group.first),
            Some(_) if group.first.shared_by != ours.shared_by => Some(&group.first),
            Some(_) => group.odd.as_ref(),
        };
        if let Some(other) = other
            && self.same.is_none()
        {
            let path = group.path.as_str();
            self.same = Some(self.collision((path, ours), (path, other), path, "both claim this path of the mirror"));
        }
    }

    /// No path may be a file for one claim and a folder on the way to
    /// another's. Sorted, a file comes before every path inside a folder of
    /// its name, and every path between them begins with its name: the
    /// groups whose paths begin this one's are a stack.
    fn check_folders(&mut self, group: Group) {
        while self.stack.last().is_some_and(|top| !group.path.starts_with(&top.path)) {
            self.stack.pop();
        }
        let files = self.stack.iter().filter(|file| group.path.as_bytes()[file.path.len()] == b'/');
        for file in files {
            let pair = match &group.ours {
                Some((ours, _)) => Some(((group.path.as_str(), ours), (file.path.as_str(), &file.first))),
                None => file
                    .ours
                    .as_ref()
                    .map(|(ours, _)| ((file.path.as_str(), ours), (group.path.as_str(), &group.first))),
            };
            if let Some((a, b)) = pair
                && self.folder.is_none()
            {
                let clash = "need this path of the mirror as a file and as a folder";
                self.folder = Some(self.collision(a, b, &file.path, clash));
            }
        }
        self.stack.push(group);
    }

    /// Paths, or folders of paths, that differ only by case or Unicode
    /// normalisation, sorted by their folded form: a clash when one of
    /// them is the bundle's (pairs among what the mirror holds are left alone).
    fn check_folding(&self, mut folded: Sorted) -> Result<(), Unchecked> {
        let mut fold_group: Option<FoldGroup> = None;
        while let Some(record) = folded.next_record()? {
            let (key, name, ours) = split_folded(record);
            match &mut fold_group {
                Some(g) if g.key == key => g.add(name, ours),
                _ => {
                    if let Some(g) = fold_group.take() {
                        self.judge(&g)?;
                    }
                    fold_group = Some(FoldGroup::new(key, name, ours));
                }
            }
        }
        fold_group.map_or(Ok(()), |g| self.judge(&g))
    }

    fn judge(&self, group: &FoldGroup) -> Result<(), Unchecked> {
        let (Some((name, path, claimant)), Some(second)) = (&group.ours, &group.second) else { return Ok(()) };
        let other = if group.first == *name { second } else { &group.first };
        let clash = folding_clash(self.eco.name(), other, name);
        let whose = self.describe(path, claimant);
        Err(Unchecked::Clash(format!("{clash} ({whose} is one of them); {}", self.advice())))
    }

    fn collision(&self, ours: (&str, &Claimant), other: (&str, &Claimant), path: &str, clash: &str) -> String {
        let (ours, other) = (self.describe(ours.0, ours.1), self.describe(other.0, other.1));
        format!("{}/{path}: {ours} and {other} {clash}; {}", self.eco.name(), self.advice())
    }

    /// What to do. A collision within one bundle is found when it is
    /// verified, before the mirror is looked at; one found with the
    /// mirror's entries present involves one of them.
    fn advice(&self) -> &'static str {
        if self.mirror_held {
            "the mirror already holds one of them: rename or drop the other upstream, or withdraw the one the mirror holds from its channel first"
        } else {
            "one would replace the other: the bundle must leave one of them out (ask its exporter why it lists both)"
        }
    }

    /// `the core metadata of <ecosystem> six 1.0 (six/six-1.0.tar.gz)`, and which
    /// channel's it is when the mirror holds it: the claim of `path` by `claimant`.
    fn describe(&self, path: &str, claimant: &Claimant) -> String {
        let name = self.eco.name();
        if claimant.owner == GLOBAL {
            let what = self.eco.reserved_globally().iter().find(|(p, _)| *p == path).map_or("file", |(_, w)| w);
            return format!("the {what} airlock writes for the whole {name} tree");
        }
        let (entry, holder) = (self.source)(claimant.owner as usize);
        // An entry may claim one path twice (a file where its own page goes): the claim's sharing tells them apart.
        let mut what = None;
        self.eco.reserve(&entry, &mut |r| {
            if r.path == path && r.shared_by == claimant.shared_by.as_deref() {
                what = what.or(Some(r.what));
            }
        });
        let what = what.unwrap_or("file");
        let whose = match (&claimant.shared_by, &entry.version) {
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

/// Every path claimed and every folder on the way to one, by folded form,
/// for [`Context::check_folding`]: once as the mirror's and once as the
/// bundle's at most, for a folder its paths share.
struct Folded {
    sorter: Sorter,
    /// The folders (and last the path) of the group added last, by depth,
    /// with whether each was added as the mirror's and as the bundle's.
    levels: Vec<(String, bool, bool)>,
    record: Vec<u8>,
}

impl Folded {
    fn add(&mut self, group: &Group) -> io::Result<()> {
        let path = group.path.as_str();
        let ours = group.ours.as_ref().map(|(c, _)| c);
        let ends = path.match_indices('/').map(|(end, _)| end).chain([path.len()]);
        for (depth, end) in ends.enumerate() {
            let name = &path[..end];
            if self.levels.get(depth).is_some_and(|(seen, _, _)| seen != name) {
                self.levels.truncate(depth);
            }
            if self.levels.len() == depth {
                self.levels.push((name.to_owned(), false, false));
            }
            let (_, as_held, as_ours) = &mut self.levels[depth];
            if group.held && !*as_held {
                *as_held = true;
                push_folded(&mut self.sorter, &mut self.record, name, None)?;
            }
            if let Some(claimant) = ours
                && !*as_ours
            {
                *as_ours = true;
                push_folded(&mut self.sorter, &mut self.record, name, Some((path, claimant)))?;
            }
        }
        Ok(())
    }
}

/// A folded record: the folded name, NUL, the name, NUL, then for the
/// bundle's the path it is on the way to (or is), NUL and the claimant.
fn push_folded(
    sorter: &mut Sorter,
    record: &mut Vec<u8>,
    name: &str,
    ours: Option<(&str, &Claimant)>,
) -> io::Result<()> {
    record.clear();
    record.extend_from_slice(fold(name).as_bytes());
    record.push(0);
    record.extend_from_slice(name.as_bytes());
    record.push(0);
    if let Some((path, claimant)) = ours {
        record.extend_from_slice(path.as_bytes());
        record.push(0);
        claimant.encode(record);
    }
    sorter.push(record)
}

/// A folded record's folded name, name, and the bundle's path and claimant.
fn split_folded(record: &[u8]) -> (&[u8], &str, Option<(&str, Claimant)>) {
    let mut parts = record.splitn(3, |b| *b == 0);
    let key = parts.next().expect("a folded record begins with its key");
    let name = parts.next().expect("a folded record holds its name");
    let name = std::str::from_utf8(name).expect("folded records are written from paths");
    let ours = parts.next().filter(|rest| !rest.is_empty()).map(split_claim);
    (key, name, ours)
}

/// The names of one folded form: the first, a second different one, and
/// the first the bundle added, with the path and claim it came with.
struct FoldGroup {
    key: Vec<u8>,
    first: String,
    second: Option<String>,
    ours: Option<(String, String, Claimant)>,
}

impl FoldGroup {
    fn new(key: &[u8], name: &str, ours: Option<(&str, Claimant)>) -> Self {
        let mut group = FoldGroup { key: key.to_vec(), first: name.to_owned(), second: None, ours: None };
        group.note_ours(name, ours);
        group
    }

    fn add(&mut self, name: &str, ours: Option<(&str, Claimant)>) {
        if self.second.is_none() && name != self.first {
            self.second = Some(name.to_owned());
        }
        self.note_ours(name, ours);
    }

    fn note_ours(&mut self, name: &str, ours: Option<(&str, Claimant)>) {
        if let (None, Some((path, claimant))) = (&self.ours, ours) {
            self.ours = Some((name.to_owned(), path.to_owned(), claimant));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::entry_at;

    /// The verdict of every check, with claims held in memory and with
    /// claims spilled to more runs than are merged at once.
    fn verdicts(entries: &[(Entry, Holder<'static>)]) -> [Result<(), String>; 2] {
        let source = |i: usize| (EntryRef::Borrowed(&entries[i].0), entries[i].1);
        let all = |_: &str| 0..entries.len();
        [usize::MAX, 256].map(|budget| check_within(budget, &all, &source).map_err(|e| e.to_string()))
    }

    #[test]
    fn claims_spilled_to_disk_are_judged_as_claims_held() {
        let mut entries: Vec<(Entry, Holder<'static>)> =
            (0..3000).map(|i| (entry_at("files", &format!("d{}/f{i}", i % 40), b"x"), Holder::Bundle)).collect();
        let [held, spilled] = verdicts(&entries);
        assert_eq!(held, Ok(()));
        assert_eq!(spilled, Ok(()));
        let cases: [(&str, Holder<'static>, &str); 4] = [
            ("d7/f7", Holder::Bundle, "both claim this path of the mirror"),
            ("d7", Holder::Bundle, "as a file and as a folder"),
            ("D7/new", Holder::Mirror("other"), "differ only by case"),
            ("d7/F7", Holder::Bundle, "differ only by case"),
        ];
        for (path, holder, expected) in cases {
            entries.push((entry_at("files", path, b"y"), holder));
            let [held, spilled] = verdicts(&entries);
            let why = held.expect_err(path);
            assert!(why.contains(expected), "{path}: {why}");
            assert_eq!(spilled, Err(why), "{path}");
            entries.pop();
        }
        // Folded alike but both the mirror's: left alone.
        entries.iter_mut().filter(|(e, _)| e.path.as_str().starts_with("d3/")).for_each(|e| e.1 = Holder::Mirror("a"));
        entries.push((entry_at("files", "D3/other", b"z"), Holder::Mirror("b")));
        assert_eq!(verdicts(&entries), [Ok(()), Ok(())]);
    }
}
