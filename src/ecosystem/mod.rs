//! Ecosystems: one module per kind of artifact, behind one small trait.
//!
//! An ecosystem says which entries it accepts beyond the schema and how its
//! verified entries are laid out in the mirror for its clients. Adding an
//! ecosystem is adding a module here and a line to [`ALL`].

pub mod cargo;
pub mod debian;
pub mod endpoints;
pub mod evidence;
pub mod files;
pub mod huggingface;
pub mod npm;
pub mod oci;
pub mod pypi;
pub mod registry;
pub mod reserved;
pub mod signer_keys;

pub use evidence::{ManifestExt, Outcome, Provenance, Trust};
pub use registry::{Artifact, FetchContext};
pub use reserved::Reserved;

use std::path::PathBuf;

use crate::error::{Rejection, Result};
use crate::escape;
use crate::http;
use crate::manifest::Entry;
use crate::manifest::evidence::EvidenceKind;
use crate::mirror::Layout;

/// What every ecosystem module provides to the import side.
pub trait Ecosystem: Sync {
    /// The name used in manifests (`entry.ecosystem`).
    fn name(&self) -> &'static str;
    /// Rules for an entry beyond the manifest schema; the error says what is wrong.
    fn check_entry(&self, entry: &Entry) -> Result<(), String>;
    /// Hands `add` every path `entry` occupies under the ecosystem's folder:
    /// its own file and every file `publish` generates for it, whether or not
    /// this entry's evidence fills it (another entry's file there would be
    /// taken for it). [`reserved::check`] compares them across entries.
    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>));
    /// Files `publish` (or `airlock serve`) makes for the whole tree, with
    /// what each is; no entry may occupy them.
    fn reserved_globally(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Writes `change.new` into the new mirror generation under the
    /// ecosystem's own top-level folder, takes `change.removed` out of what
    /// clients see, and regenerates whatever index the clients read for the
    /// names it touched from `change.all`, the ecosystem's entries after the import.
    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()>;

    // --- storage: what the mirror is told of this ecosystem's entries ---
    /// Whether a channel may give the path of `entry` new content from one
    /// bundle to the next (plain files, a Debian suite's release file and index
    /// files); a registry artifact never changes once published.
    fn entry_replaceable(&self, _entry: &Entry) -> bool {
        false
    }
    /// Evidence kinds the mirror's inventory keeps whole because `publish`
    /// regenerates indexes from them; of other evidence only the kind is kept.
    fn inventory_evidence(&self) -> &'static [&'static str] {
        &[]
    }
    /// Where in its folder the ecosystem's clients read the registry keys
    /// document the import policy pins, if they do; written on every import
    /// while the ecosystem has entries.
    fn pinned_keys_path(&self) -> Option<&'static str> {
        None
    }

    /// The other paths of its folder the ecosystem's clients ask for the
    /// document it wrote at `path` by, where no web server maps requests
    /// (a bucket read as a static site): a project page `NAME/index.html`
    /// asked for as `NAME/`. Served by rules (`contrib/`) or `serve` elsewhere.
    fn static_aliases(&self, path: &str) -> Vec<String> {
        let _ = path;
        Vec::new()
    }

    // --- SERVE and SBOM (`airlock serve`, `airlock inspect --sbom`) ---
    /// Answers `GET /NAME/...` for `airlock serve`: `route` holds the
    /// segments below `NAME`, `folder` is the ecosystem's folder of the
    /// mirror. Ecosystems that serve nothing answer 404.
    fn route(&self, route: &http::Route<'_>, folder: &http::Folder<'_>) -> http::Response {
        let _ = (route, folder);
        http::Response::status(404)
    }
    /// A top-level path segment the ecosystem's clients ask for besides
    /// `/NAME/` because their protocol fixes it (the distribution API's
    /// `v2`): `airlock serve` hands `GET /SEGMENT/...` to [`Ecosystem::route`]
    /// as it does `/NAME/...`.
    fn api_root(&self) -> Option<&'static str> {
        None
    }
    /// The URL its clients are pointed at when `airlock serve` listens on
    /// `base` (`http://HOST:PORT`), for the banner and the `--json` report;
    /// `None` when its clients need no URL of their own.
    fn client_url(&self, base: &str) -> Option<String> {
        let _ = base;
        None
    }
    /// The package URL (github.com/package-url/purl-spec) of an entry
    /// (`path` is its path in the ecosystem's folder), every segment
    /// percent-encoded; `None` when the ecosystem has no purl type.
    fn purl(&self, name: &str, version: &str, path: &str) -> Option<String> {
        let _ = (name, version, path);
        None
    }

    // --- EXPORT ---
    /// The `airlock export` flag naming this ecosystem's lockfiles
    /// (`--name-lock`), for an ecosystem an export fetches from a registry.
    fn lockfile_flag(&self) -> Option<&'static str> {
        None
    }

    // --- trust: evidence kinds, names, evidence verification ---

    /// The kinds of upstream evidence this ecosystem's entries may carry,
    /// each with its cap (`manifest::evidence`).
    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &[]
    }
    /// The form names are compared in by the policy's name rules and the
    /// look-alike screen (lower case unless the ecosystem folds more).
    fn normalize_name(&self, name: &str) -> String {
        name.to_lowercase()
    }
    /// Checks the upstream evidence `entry` carries against the trust roots
    /// in `trust` (`id` names the entry in errors): what the report says of
    /// its provenance, and the attestations that verified. Evidence the
    /// policy does not pin a root for is reported, not refused.
    fn verify_evidence(&self, _entry: &Entry, _trust: &Trust<'_>, _id: &str) -> Result<Provenance, Rejection> {
        Ok(Provenance::absent("none (plain file)"))
    }

    // --- entries checked together (OCI: an image and the blobs it lists) ---
    /// Rules across the bundle's entries of this ecosystem, after each
    /// passed [`Ecosystem::check_entry`]: what one entry's evidence lists
    /// that another must carry. The error says what is wrong.
    fn check_together(&self, entries: &[&Entry]) -> Result<(), String> {
        let _ = entries;
        Ok(())
    }
    /// Whether [`Ecosystem::check_together`] checks anything (then an
    /// ecosystem's entries are all held for it).
    fn checks_together(&self) -> bool {
        false
    }
    /// Whether the policy's required evidence applies to `entry` itself;
    /// `false` for an entry another entry vouches for (an image's layer, the
    /// image's signature covering its digest, [`Ecosystem::check_together`]
    /// making sure an image lists it).
    fn judged_alone(&self, entry: &Entry) -> bool {
        let _ = entry;
        true
    }
    /// Whether `entry` carries evidence that can stand for `kind`, which the
    /// policy requires (checked before the ecosystem judges the evidence, so
    /// a stripped signature is reported with where the exporter looked).
    fn carries(&self, entry: &Entry, kind: &str) -> bool {
        entry.carries(kind)
    }
}

/// The ecosystems `airlock serve` names to its user, in the order it names
/// them (its banner and `--json` report). Every ecosystem with a
/// [`Ecosystem::client_url`] belongs here.
pub static SERVED: &[&dyn Ecosystem] =
    &[&npm::Npm, &pypi::Pypi, &cargo::Cargo, &debian::Debian, &oci::Oci, &huggingface::Huggingface];

/// `pkg:KIND/NAME@VERSION`, each segment of `name` and the version
/// percent-encoded ([`escape::url_segment`]), an npm scope's `@` too.
#[must_use]
pub fn purl(kind: &str, name: &str, version: &str) -> String {
    let name = name.split('/').map(escape::url_segment).collect::<Vec<_>>().join("/");
    format!("pkg:{kind}/{name}@{}", escape::url_segment(version))
}

// --- EXPORT ---

/// One ecosystem's lockfiles in an export, with its registry settings. Each
/// ecosystem that fetches from a registry has one (`<name>::source`), made by
/// its `cli` module from the flags and its config section. An export reads
/// every source before it fetches from any.
pub trait Source: std::fmt::Debug + Send + Sync {
    /// The lockfiles (inputs the bundle must not overwrite).
    fn lockfiles(&self) -> &[PathBuf];
    /// Whether the source names anything to fetch: a lockfile, or (Hugging
    /// Face) a repository named on the command line.
    fn names_inputs(&self) -> bool {
        !self.lockfiles().is_empty()
    }
    /// Reads every lockfile and checks every pin against the ecosystem's name
    /// and version grammar, without touching the network or the download
    /// cache: a bad lockfile is one error naming it.
    fn read(&self) -> Result<Box<dyn Pinned + '_>>;
}

/// What a [`Source`]'s lockfiles pin, checked and ready to fetch.
pub trait Pinned {
    /// Fetches every pin with its evidence through `ctx`, lockfile by
    /// lockfile in the order the source names them.
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>>;
    /// What [`fetch`](Pinned::fetch) would ask for, as the inputs name it,
    /// without the network (`export --dry-run`).
    fn planned(&self) -> Vec<Planned>;
}

/// One thing an export would fetch, as its input names it, before any
/// registry is asked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    pub ecosystem: &'static str,
    pub name: String,
    /// The version, revision, tag or digest the input pins; `None` where
    /// the registry decides (a Debian package named without a version).
    pub version: Option<String>,
    /// Where it would be fetched from: the index, registry, archive or hub.
    pub from: String,
    /// The lockfile, list or flag that names it.
    pub input: String,
}

/// The tables an import policy may have, one per ecosystem with rules of its
/// own, in the order schemas/policy.cddl lists them (and errors name them).
pub static POLICY_TABLES: &[&dyn crate::policy::Table] =
    &[&npm::Npm, &pypi::Pypi, &cargo::Cargo, &debian::Debian, &oci::Oci, &huggingface::Huggingface];

/// What an import changes in one ecosystem.
pub struct Change<'a> {
    /// Entries to publish (not already in the mirror).
    pub new: Vec<&'a Entry>,
    /// Entries the channel dropped: withdrawn from the client-facing tree (their blobs stay in the object store).
    pub removed: Vec<&'a Entry>,
    /// What entries of `new` replace at their paths (their earlier content).
    pub replaced: Vec<&'a Entry>,
    /// Every entry of the ecosystem after the import.
    pub all: Vec<&'a Entry>,
    /// The address clients reach the mirror at (`import --base-url`), for
    /// documents that must name it in full; `None`: relative where they can
    /// be, the rest filled in by `airlock serve`.
    pub base_url: Option<&'a str>,
    /// Every document is regenerated, not only those of the names changed
    /// (the base URL changed).
    pub rerender: bool,
    /// What the import policy's table of this ecosystem pins, if anything
    /// (`None` in a re-render, which has no policy).
    pub pinned: Option<&'a crate::policy::Pinned>,
}

impl<'a> Change<'a> {
    /// Package names whose indexes need regenerating.
    #[must_use]
    pub fn touched(&self) -> std::collections::BTreeSet<&'a str> {
        let all = if self.rerender { &self.all[..] } else { &[] };
        self.new.iter().chain(&self.removed).chain(all).map(|e| e.name.as_str()).collect()
    }

    /// The entries of `name` after the import.
    #[must_use]
    pub fn versions_of(&self, name: &str) -> Vec<&'a Entry> {
        self.all.iter().copied().filter(|e| e.name == name).collect()
    }
}

/// Every ecosystem this build knows.
pub static ALL: &[&dyn Ecosystem] =
    &[&files::Files, &pypi::Pypi, &npm::Npm, &cargo::Cargo, &debian::Debian, &oci::Oci, &huggingface::Huggingface];

/// The ecosystem with this manifest name.
#[must_use]
pub fn by_name(name: &str) -> Option<&'static dyn Ecosystem> {
    ALL.iter().copied().find(|e| e.name() == name)
}
