//! Hugging Face models and datasets: `--hf-model ORG/NAME[@REVISION]` on
//! the connected side, fetched over the hub's API (revision, tree, resolve);
//! `MIRROR/huggingface/hub/` on the inside in the hub client's own cache
//! layout, which `HF_HUB_CACHE=MIRROR/huggingface/hub HF_HUB_OFFLINE=1`
//! reads, and `airlock serve` answers the hub routes under `/huggingface`.
//!
//! Entries, one per file of the repository at one commit:
//!
//! - name: the repository, `ORG/NAME` (a model) or `datasets/ORG/NAME`;
//!   version: the commit (40 hex digits) its revision resolved to, once, at
//!   export; the branch or tag asked for in the `revision` attribute.
//! - path: `hub/<models|datasets>--ORG--NAME/snapshots/<commit>/<file>`.
//!   `publish` links the same blob at `blobs/<etag>` (the LFS SHA-256, or
//!   the git blob id), writes `refs/<revision>` (the commit, no newline) and
//!   `trees/<commit>.json` (the client's own tree cache, which tells it the
//!   snapshot is complete, and tells `airlock serve` the etags and sizes).
//! - digests: `sha256` of every file, and `git-sha1` (its git blob id) of
//!   every file not in LFS, both recomputed on verify and import. An LFS
//!   file has no `git-sha1`: its tree `oid` is its pointer's blob id, not
//!   the content's.
//! - the first file in path order (the head) carries the repository's
//!   evidence: `hf-files`, the hub's listing of the carried files (path,
//!   size, git blob id, LFS SHA-256), and the model-signing signature
//!   `model-signature` (`model.sig`) when the repository has one.
//!   [`Ecosystem::check_together`] makes sure the listing names exactly the
//!   files the bundle carries, with their sizes and digests, so the policy
//!   judges the head alone for the whole snapshot.
//!
//! Files are regular files in `snapshots/` (hard links of the blobs), not
//! the symbolic links the client makes where it can: the client reads
//! both, as it writes regular files itself where links are unavailable.

pub mod cli;
pub mod config;
mod evidence;
pub mod listing;
mod policy;
mod serve;
pub mod source;

use std::collections::{BTreeMap, BTreeSet};

use crate::ecosystem::{Change, Ecosystem, Provenance, Reserved, Trust};
use crate::error::{Rejection, Result};
use crate::http;
use crate::manifest::Entry;
use crate::manifest::evidence::EvidenceKind;
use crate::mirror::Layout;

use listing::Listing;

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "huggingface";
/// The hub cache inside the ecosystem's folder (`HF_HUB_CACHE`).
pub const HUB: &str = "hub";
/// The signature file model-signing writes by default.
pub const SIGNATURE_FILE: &str = "model.sig";

/// The Hugging Face ecosystem.
pub struct Huggingface;

/// Whether a repository is a model or a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Model,
    Dataset,
}

impl Kind {
    /// `models` / `datasets`: the API's and the cache's plural.
    #[must_use]
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Model => "models",
            Kind::Dataset => "datasets",
        }
    }
}

/// A repository: its kind and `ORG/NAME` (or a bare `NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub kind: Kind,
    pub id: String,
}

impl Repo {
    /// From an entry name: `ORG/NAME` or `datasets/ORG/NAME`.
    pub fn from_entry_name(name: &str) -> Result<Repo, String> {
        let (kind, id) = match name.strip_prefix("datasets/") {
            Some(id) => (Kind::Dataset, id),
            None => (Kind::Model, name),
        };
        check_repo_id(id)?;
        Ok(Repo { kind, id: id.to_owned() })
    }

    /// The entry name.
    #[must_use]
    pub fn entry_name(&self) -> String {
        match self.kind {
            Kind::Model => self.id.clone(),
            Kind::Dataset => format!("datasets/{}", self.id),
        }
    }

    /// `models--ORG--NAME`, the cache's folder for it.
    #[must_use]
    pub fn folder(&self) -> String {
        format!("{}--{}", self.kind.plural(), self.id.replace('/', "--"))
    }

    /// The hub's URL prefix for downloads: empty (models) or `datasets/`.
    #[must_use]
    pub fn url_prefix(&self) -> &'static str {
        match self.kind {
            Kind::Model => "",
            Kind::Dataset => "datasets/",
        }
    }
}

/// `NAME` or `ORG/NAME`, each part `[A-Za-z0-9][A-Za-z0-9._-]*` up to 96
/// characters, without `--` or `..` (the hub refuses both; `--` would make
/// two repositories one cache folder).
pub fn check_repo_id(id: &str) -> Result<(), String> {
    let parts: Vec<&str> = id.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !p.contains("--")
            && !p.contains("..")
            && !p.ends_with('.')
            && !p.ends_with('-')
    };
    if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
        return Err(format!(
            "{id:?} is not a Hugging Face repository (ORG/NAME: letters, digits, '.', '_' and '-', no '--' or '..')"
        ));
    }
    Ok(())
}

/// A commit id: 40 lower-case hex digits.
#[must_use]
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A branch or tag name: `[A-Za-z0-9._/-]`, segments neither empty nor `.`/`..`, at most 200 bytes.
pub fn check_revision(revision: &str) -> Result<(), String> {
    let ok = !revision.is_empty()
        && revision.len() <= 200
        && revision.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        && revision.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && !s.starts_with('.'));
    if ok { Ok(()) } else { Err(format!("{revision:?} is not a branch, tag or commit name")) }
}

/// `hub/<folder>/snapshots/<commit>/`.
#[must_use]
pub fn snapshot_prefix(repo: &Repo, commit: &str) -> String {
    format!("{HUB}/{}/snapshots/{commit}/", repo.folder())
}

/// The entry's repository, commit and file path, from its name, version and path.
pub fn parts_of(entry: &Entry) -> Result<(Repo, &str, &str), String> {
    let repo = Repo::from_entry_name(&entry.name)?;
    let commit = entry.version.as_deref().unwrap_or_default();
    if !is_commit(commit) {
        return Err(format!("version {commit:?} is not a commit id (40 lower-case hex digits)"));
    }
    let prefix = snapshot_prefix(&repo, commit);
    let file = entry
        .path
        .as_str()
        .strip_prefix(&prefix)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| format!("path {} is not under {prefix}", entry.path))?;
    Ok((repo, commit, file))
}

/// The head's listing, if the entry carries one.
fn listing_of(entry: &Entry) -> Option<Result<Listing, String>> {
    entry.evidence.iter().find(|e| e.kind == "hf-files").map(|e| Listing::parse(&e.data))
}

/// A file's etag in the cache (its LFS SHA-256, or its git blob id): the
/// `etag` attribute, which [`Ecosystem::check_together`] checks against the
/// listing, and the listing against the file's verified `sha256` or `git-sha1`.
fn etag(entry: &Entry) -> Option<&str> {
    entry.attributes.get("etag").map(String::as_str)
}

/// `hub/<folder>/blobs/<etag>` of a file.
fn blob_path(entry: &Entry) -> Option<String> {
    let (repo, _, _) = parts_of(entry).ok()?;
    Some(format!("{HUB}/{}/blobs/{}", repo.folder(), etag(entry)?))
}

impl Ecosystem for Huggingface {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        let (repo, commit, file) = parts_of(entry)?;
        if file.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(format!("file {file:?} is not a relative path inside the repository"));
        }
        if !entry.digests.contains_key("sha256") {
            return Err("a Hugging Face file carries its sha256".into());
        }
        if let Some(revision) = entry.attributes.get("revision") {
            check_revision(revision)?;
        }
        let sha = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
        let git_sha1 = entry.digests.get("git-sha1").map(|d| hex::encode(&d.0));
        match etag(entry) {
            Some(e) if Some(e) == git_sha1.as_deref() => {}
            Some(e) if e == sha => {}
            _ => return Err("its etag attribute is neither its sha256 nor its git-sha1 digest".into()),
        }
        for e in &entry.evidence {
            if e.kind != "hf-files" && e.kind != "model-signature" {
                return Err(format!("evidence {} is not Hugging Face evidence", e.kind));
            }
        }
        match listing_of(entry) {
            Some(listing) => {
                let listing = listing?;
                if listing.repo != repo.entry_name() || listing.commit != commit {
                    return Err(format!(
                        "its hf-files listing is of {}@{}, not {}@{commit}",
                        listing.repo,
                        listing.commit,
                        repo.entry_name()
                    ));
                }
                Ok(())
            }
            None if entry.evidence.is_empty() && entry.missing.is_empty() => Ok(()),
            None => Err("only the head file, which carries the hf-files listing, carries evidence".into()),
        }
    }

    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        let Ok((repo, commit, _)) = parts_of(entry) else { return };
        let folder = repo.folder();
        add(Reserved::own(entry.path.as_str(), "file"));
        // The blob a file is linked from is named by its content: entries
        // claiming it claim the same bytes.
        if let Some(etag) = etag(entry) {
            add(Reserved::shared(format!("{HUB}/{folder}/blobs/{etag}"), "blob", etag));
        }
        let key = entry.version.as_deref().unwrap_or_default();
        add(Reserved::shared(format!("{HUB}/{folder}/trees/{commit}.json"), "tree listing", key));
        if let Some(revision) = entry.attributes.get("revision") {
            add(Reserved::shared(format!("{HUB}/{folder}/refs/{revision}"), "ref", key));
        }
    }

    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        let all = Snapshots::of(&change.all);
        let needed_blobs: BTreeSet<String> = all.blob_paths().collect();
        let needed_refs: BTreeSet<String> = all.ref_paths().collect();
        let removed = Snapshots::of(&change.removed);
        for (path, _) in removed.files() {
            tree.remove(NAME, path)?;
        }
        for path in removed.blob_paths().filter(|p| !needed_blobs.contains(p)) {
            tree.remove(NAME, &path)?;
        }
        for path in removed.ref_paths().filter(|p| !needed_refs.contains(p)) {
            tree.remove(NAME, &path)?;
        }
        for ((repo, commit), _) in removed.0.iter().filter(|(k, _)| !all.0.contains_key(*k)) {
            tree.remove(NAME, &format!("{HUB}/{}/trees/{commit}.json", repo.folder()))?;
        }
        for entry in &change.new {
            tree.link_blob(NAME, &entry.path, &entry.blob)?;
            if let Some(blob) = blob_path(entry) {
                let blob = crate::id::RelPath::new(&blob).map_err(crate::error::Error::Usage)?;
                tree.link_blob(NAME, &blob, &entry.blob)?;
            }
        }
        for ((repo, commit), snapshot) in &all.0 {
            let folder = format!("{HUB}/{}", repo.folder());
            if let Some(listing) = &snapshot.listing {
                tree.write(NAME, &format!("{folder}/trees/{commit}.json"), &listing.tree_cache())?;
                if let Some(revision) = &listing.revision {
                    tree.write(NAME, &format!("{folder}/refs/{revision}"), commit.as_bytes())?;
                }
            }
        }
        Ok(())
    }

    fn inventory_evidence(&self) -> &'static [&'static str] {
        &["hf-files"]
    }

    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &evidence::EVIDENCE
    }

    fn normalize_name(&self, name: &str) -> String {
        name.to_lowercase()
    }

    fn verify_evidence(&self, entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
        match listing_of(entry) {
            Some(listing) => {
                let listing = listing.map_err(|m| Rejection::Policy(format!("{id}: {m}")))?;
                evidence::verify(entry, &listing, trust, id)
            }
            None => {
                Ok(Provenance::not_checked("a file of its snapshot; the snapshot's listing and signature vouch for it"))
            }
        }
    }

    fn checks_together(&self) -> bool {
        true
    }

    fn check_together(&self, entries: &[&Entry]) -> Result<(), String> {
        let mut groups: BTreeMap<(String, String), Vec<&Entry>> = BTreeMap::new();
        for entry in entries {
            groups.entry((entry.name.clone(), entry.version.clone().unwrap_or_default())).or_default().push(entry);
        }
        for ((name, commit), files) in &groups {
            let id = format!("huggingface {name}@{commit}");
            let heads: Vec<&&Entry> = files.iter().filter(|e| listing_of(e).is_some()).collect();
            let [head] = heads.as_slice() else {
                return Err(format!("{id}: {} of its files carry the hf-files listing; exactly one must", heads.len()));
            };
            let listing = listing_of(head).expect("a head").map_err(|m| format!("{id}: {m}"))?;
            let mut listed: BTreeMap<&str, &listing::File> =
                listing.files.iter().map(|f| (f.path.as_str(), f)).collect();
            if listed.len() != listing.files.len() {
                return Err(format!("{id}: its listing names a file twice"));
            }
            for entry in files {
                let (_, _, file) = parts_of(entry).map_err(|m| format!("{id}: {m}"))?;
                let f = listed
                    .remove(file)
                    .ok_or_else(|| format!("{id}: it carries {file}, which its listing does not name"))?;
                let sha = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
                if f.size != entry.size || f.sha256 != sha {
                    return Err(format!("{id}: {file} is not the size and sha256 its listing states"));
                }
                // Shard digests the listing states are checked against the bytes as the entry's own.
                let shards = entry.digests.get(crate::manifest::SHA256_SHARDS).map(|d| d.0.clone());
                if shards != f.shards.as_ref().map(listing::Shards::digest) {
                    return Err(format!("{id}: {file}'s shard digests are not the ones its listing states"));
                }
                // The git blob id the listing (and so the cache's etag and tree) gives a file outside
                // LFS is the one its bytes were checked against.
                let git_sha1 = entry.digests.get("git-sha1").map(|d| hex::encode(&d.0));
                if !f.lfs && git_sha1.as_ref() != Some(&f.oid) {
                    return Err(format!(
                        "{id}: {file} has no git-sha1 digest, or not the git blob id its listing states"
                    ));
                }
                if etag(entry) != Some(f.etag().as_str()) {
                    return Err(format!("{id}: {file}'s etag is not the one its listing states"));
                }
                if entry.attributes.get("revision") != listing.revision.as_ref() {
                    return Err(format!("{id}: {file} names another revision than its listing"));
                }
            }
            if let Some(file) = listed.keys().next() {
                return Err(format!("{id}: its listing names {file}, which the bundle does not carry"));
            }
        }
        Ok(())
    }

    fn judged_alone(&self, entry: &Entry) -> bool {
        listing_of(entry).is_some()
    }

    fn route(&self, route: &http::Route<'_>, folder: &http::Folder<'_>) -> http::Response {
        serve::route(route, folder)
    }

    fn client_url(&self, base: &str) -> Option<String> {
        Some(format!("{base}/{NAME}"))
    }

    fn purl(&self, name: &str, version: &str, _path: &str) -> Option<String> {
        Some(crate::ecosystem::purl(NAME, name, version))
    }
}

/// One repository's snapshot at one commit, among some entries.
struct Snapshot<'a> {
    files: Vec<&'a Entry>,
    listing: Option<Listing>,
}

/// Entries grouped by repository and commit.
struct Snapshots<'a>(BTreeMap<(RepoKey, String), Snapshot<'a>>);

/// A repository as a map key.
type RepoKey = Repo;

impl PartialOrd for Repo {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Repo {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.kind.plural(), &self.id).cmp(&(other.kind.plural(), &other.id))
    }
}

impl<'a> Snapshots<'a> {
    fn of(entries: &[&'a Entry]) -> Self {
        let mut map: BTreeMap<(Repo, String), Snapshot<'a>> = BTreeMap::new();
        for entry in entries {
            let Ok((repo, commit, _)) = parts_of(entry) else { continue };
            let snapshot =
                map.entry((repo, commit.to_owned())).or_insert_with(|| Snapshot { files: Vec::new(), listing: None });
            snapshot.files.push(entry);
            if let Some(Ok(listing)) = listing_of(entry) {
                snapshot.listing = Some(listing);
            }
        }
        Snapshots(map)
    }

    fn files(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.0.values().flat_map(|s| s.files.iter().map(|e| (e.path.as_str(), *e)))
    }

    fn blob_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.0.values().flat_map(|s| s.files.iter().filter_map(|e| blob_path(e)))
    }

    fn ref_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().filter_map(|((repo, _), s)| {
            let revision = s.listing.as_ref()?.revision.as_ref()?;
            Some(format!("{HUB}/{}/refs/{revision}", repo.folder()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8], lfs: bool) -> (Entry, listing::File) {
        use sha2::Digest as _;
        let commit = "a".repeat(40);
        let sha = hex::encode(sha2::Sha256::digest(data));
        let oid = listing::git_blob_id(data);
        let etag = if lfs { sha.clone() } else { oid.clone() };
        let mut digests = BTreeMap::new();
        digests.insert("sha256".to_owned(), crate::manifest::Digest(hex::decode(&sha).unwrap()));
        if !lfs {
            digests.insert("git-sha1".to_owned(), crate::manifest::Digest(hex::decode(&oid).unwrap()));
        }
        let mut attributes = BTreeMap::new();
        attributes.insert("etag".to_owned(), etag);
        attributes.insert("revision".to_owned(), "main".to_owned());
        let entry = Entry {
            ecosystem: NAME.into(),
            name: "org/m".into(),
            version: Some(commit.clone()),
            path: crate::id::RelPath::new(&format!("hub/models--org--m/snapshots/{commit}/{path}")).unwrap(),
            blob: crate::id::ContentId(*blake3::hash(data).as_bytes()),
            size: data.len() as u64,
            digests,
            source: None,
            attributes,
            evidence: Vec::new(),
            missing: Vec::new(),
        };
        (entry, listing::File { path: path.into(), size: data.len() as u64, oid, sha256: sha, lfs, shards: None })
    }

    fn snapshot_of(files: &[(&str, &[u8], bool)]) -> Vec<Entry> {
        let made: Vec<_> = files.iter().map(|(p, d, l)| file(p, d, *l)).collect();
        let listing = Listing {
            repo: "org/m".into(),
            commit: "a".repeat(40),
            revision: Some("main".into()),
            files: made.iter().map(|(_, f)| f.clone()).collect(),
        };
        let mut entries: Vec<Entry> = made.into_iter().map(|(e, _)| e).collect();
        entries[0].evidence.push(crate::manifest::Evidence { kind: "hf-files".into(), data: listing.to_bytes() });
        entries
    }

    #[test]
    fn entries_and_snapshots_are_checked() {
        let hf = Huggingface;
        let entries = snapshot_of(&[("config.json", b"{}", false), ("w.safetensors", b"weights", true)]);
        for e in &entries {
            hf.check_entry(e).unwrap();
        }
        let refs: Vec<&Entry> = entries.iter().collect();
        hf.check_together(&refs).unwrap();
        assert!(hf.judged_alone(&entries[0]) && !hf.judged_alone(&entries[1]));

        let bad = |f: &dyn Fn(&mut Entry)| {
            let mut e = entries[1].clone();
            f(&mut e);
            hf.check_entry(&e).unwrap_err()
        };
        assert!(bad(&|e| e.name = "org/a--b".into()).contains("not a Hugging Face repository"));
        assert!(bad(&|e| e.version = Some("main".into())).contains("not a commit"));
        assert!(
            bad(&|e| e.path = crate::id::RelPath::new("hub/models--org--x/snapshots/a/w").unwrap())
                .contains("not under")
        );
        assert!(
            bad(&|e| {
                e.attributes.insert("etag".into(), "b".repeat(64));
            })
            .contains("etag")
        );
        // A git blob id as the etag must be the file's git-sha1 digest, which import recomputes.
        let mut config = entries[0].clone();
        config.attributes.insert("etag".into(), "c".repeat(40));
        assert!(hf.check_entry(&config).unwrap_err().contains("etag"));
        config.digests.remove("git-sha1");
        config.attributes.insert("etag".into(), listing::git_blob_id(b"{}"));
        assert!(hf.check_entry(&config).unwrap_err().contains("etag"));
        assert!(
            bad(&|e| {
                e.attributes.insert("revision".into(), "../x".into());
            })
            .contains("branch")
        );
        assert!(
            bad(&|e| e.evidence.push(crate::manifest::Evidence { kind: "model-signature".into(), data: vec![] }))
                .contains("only the head")
        );

        // A file the listing does not name; one it names that is not carried; two heads; a changed file.
        let extra = file("extra.py", b"x", false).0;
        let mut with_extra: Vec<&Entry> = refs.clone();
        with_extra.push(&extra);
        assert!(hf.check_together(&with_extra).unwrap_err().contains("does not name"));
        assert!(hf.check_together(&refs[..1]).unwrap_err().contains("does not carry"));
        let mut second_head = entries[1].clone();
        second_head.evidence = entries[0].evidence.clone();
        assert!(hf.check_together(&[&entries[0], &second_head]).unwrap_err().contains("2 of its files"));
        let mut changed = entries[1].clone();
        changed.size += 1;
        assert!(hf.check_together(&[&entries[0], &changed]).unwrap_err().contains("size and sha256"));
        // A file outside LFS without its git blob id as a digest, or with another one.
        let mut unhashed = entries[0].clone();
        unhashed.digests.remove("git-sha1");
        assert!(hf.check_together(&[&unhashed, &entries[1]]).unwrap_err().contains("git-sha1"));
        let mut other_id = entries[0].clone();
        other_id.digests.insert("git-sha1".into(), crate::manifest::Digest(vec![0; 20]));
        assert!(hf.check_together(&[&other_id, &entries[1]]).unwrap_err().contains("git blob id its listing states"));
        let mut other_ref = entries[1].clone();
        other_ref.attributes.insert("revision".into(), "v2".into());
        assert!(hf.check_together(&[&entries[0], &other_ref]).unwrap_err().contains("another revision"));
    }

    #[test]
    fn repository_names() {
        for good in ["gpt2", "org/model", "Org-1/model.v2_x", "a/b"] {
            assert!(check_repo_id(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b/c", "../x", "a/..", "a--b/c", "a/b--c", "/a", "a/", "a b/c", "-a/b", "a/b.", "a/.b"] {
            assert!(check_repo_id(bad).is_err(), "{bad:?}");
        }
        let repo = Repo::from_entry_name("datasets/org/set").unwrap();
        assert_eq!(repo.folder(), "datasets--org--set");
        assert_eq!(Repo::from_entry_name("org/m").unwrap().folder(), "models--org--m");
        assert!(check_revision("main").is_ok());
        assert!(check_revision("refs/pr/1").is_ok());
        for bad in ["", "../x", "a//b", "/a", "a/.hidden", "a b"] {
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
    }
}
