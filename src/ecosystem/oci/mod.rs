//! Container images (OCI): `images.txt` on the connected side, fetched over
//! the distribution API; `MIRROR/oci/` an OCI image layout on the inside,
//! which `skopeo copy oci:MIRROR/oci:REF` reads.
//!
//! Entries, content-addressed:
//!
//! - an image: name the repository (`registry.example/team/app`), version
//!   `sha256:<hex>` (the digest its tags resolved to, once, at export), the
//!   tags in the `tags` attribute, its file the top-level manifest or index
//!   at `blobs/sha256/<hex>`. It carries that document again as `oci-manifest`
//!   evidence, and the platform manifests of an index it carries, so the
//!   whole digest chain is checked from the signed manifest before a byte of
//!   the bundle's blobs is read; and its cosign signature (`.sig`), if any.
//! - a blob (config or layer): no version, its file at `blobs/sha256/<hex>`,
//!   named after the first image that lists it, carried once however many do.
//!
//! An entry's path is its own sha256, so two claims of one path are claims
//! of the same bytes: every path here is shared.

mod auth;
pub mod cli;
mod client;
pub mod config;
mod evidence;
mod keyless;
pub mod layout;
pub mod lockfile;
mod policy;
pub mod push;
mod serve;
pub mod source;

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::ecosystem::{Change, Ecosystem, Provenance, Reserved, Trust};
use crate::error::{Rejection, Result};
use crate::id::RelPath;
use crate::manifest::Entry;
use crate::manifest::evidence::EvidenceKind;
use crate::mirror::Layout;

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "oci";
/// Where the layout keeps blobs.
const BLOBS: &str = "blobs/sha256";
/// The layout's two documents, which no entry may take.
const INDEX_JSON: &str = "index.json";
const OCI_LAYOUT: &str = "oci-layout";
/// The annotation naming each image of the layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Media types of the documents an image entry may be.
pub const INDEX_TYPES: [&str; 2] =
    ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
pub const MANIFEST_TYPES: [&str; 2] =
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];

/// The container image ecosystem.
pub struct Oci;

impl Ecosystem for Oci {
    fn name(&self) -> &'static str {
        NAME
    }

    /// skopeo's and podman's form of the registry `airlock serve` is
    /// (`docker://HOST:PORT/REPO:TAG`, the carried repository without its registry).
    fn client_url(&self, base: &str) -> Option<String> {
        let host = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://")).unwrap_or(base);
        Some(format!("docker://{host}/"))
    }

    /// `pkg:oci/NAME@sha256%3AHEX?repository_url=REGISTRY/PATH` for an
    /// image (the purl spec's oci type: the last path segment as the name,
    /// the digest as the version); configs and layers have none.
    fn purl(&self, name: &str, version: &str, _path: &str) -> Option<String> {
        if !version.starts_with("sha256:") {
            return None;
        }
        let last = name.rsplit('/').next().unwrap_or(name);
        let purl = super::purl(NAME, last, version);
        Some(format!("{purl}?repository_url={}", crate::escape::url_path(name)))
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        check_repository(&entry.name)?;
        let hex = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).ok_or("an OCI entry carries its sha256")?;
        if entry.path.as_str() != blob_path(&hex) {
            return Err(format!("path {} is not {BLOBS}/<its sha256>", entry.path));
        }
        match &entry.version {
            None => {
                if !entry.evidence.is_empty() {
                    return Err("a blob carries no evidence (its image does)".into());
                }
                Ok(())
            }
            Some(version) => {
                if *version != format!("sha256:{hex}") {
                    return Err(format!("version {version} is not the image's digest sha256:{hex}"));
                }
                for tag in tags(entry) {
                    check_tag(tag)?;
                }
                Chain::of(entry).map(|_| ())
            }
        }
    }

    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        for path in paths_of(entry) {
            add(Reserved::shared(path, "blob", SHARED));
        }
    }

    fn reserved_globally(&self) -> &'static [(&'static str, &'static str)] {
        &[(INDEX_JSON, "image index of the layout"), (OCI_LAYOUT, "layout marker")]
    }

    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        let needed: BTreeSet<String> = change.all.iter().flat_map(|e| paths_of(e)).collect();
        for entry in &change.removed {
            for path in paths_of(entry) {
                if !needed.contains(&path) {
                    tree.remove(NAME, &path)?;
                }
            }
        }
        for entry in &change.new {
            tree.link_blob(NAME, &entry.path, &entry.blob)?;
            for doc in written_evidence(entry) {
                tree.write(NAME, &blob_path(&sha256_hex(doc)), doc)?;
            }
            if let Some(index) = referrers_index(entry) {
                tree.write(NAME, &blob_path(&sha256_hex(&index)), &index)?;
            }
        }
        tree.write(NAME, OCI_LAYOUT, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        tree.write(NAME, INDEX_JSON, &layout_index(&change.all))
    }

    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &evidence::EVIDENCE
    }

    fn verify_evidence(&self, entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
        if entry.version.is_none() {
            return Ok(Provenance::not_checked(
                "a blob of the images that list it; their digests and signatures vouch for it",
            ));
        }
        evidence::verify(entry, trust, id)
    }

    fn route(&self, route: &crate::http::Route<'_>, folder: &crate::http::Folder<'_>) -> crate::http::Response {
        serve::route(route, folder)
    }

    fn api_root(&self) -> Option<&'static str> {
        Some("v2")
    }

    fn checks_together(&self) -> bool {
        true
    }

    fn check_together(&self, entries: &[&Entry]) -> Result<(), String> {
        check_blobs_listed(entries)
    }

    fn judged_alone(&self, entry: &Entry) -> bool {
        entry.version.is_some()
    }

    /// A Sigstore bundle attached as a referrer (`cosign sign` in the bundle
    /// format) can be the image's signature, in place of a `.sig`.
    fn carries(&self, entry: &Entry, kind: &str) -> bool {
        entry.carries(kind) || (kind == "cosign-signature" && evidence::carries_bundle(entry))
    }
}

/// The key every path of the layout is shared by: content-addressed.
const SHARED: &str = "sha256";

/// `blobs/sha256/<hex>`.
#[must_use]
pub fn blob_path(hex: &str) -> String {
    format!("{BLOBS}/{hex}")
}

/// The lower-case hex sha256 of `data`.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// An image's tags (the `tags` attribute, space-separated).
fn tags(entry: &Entry) -> impl Iterator<Item = &str> {
    entry.attributes.get("tags").map(String::as_str).unwrap_or_default().split(' ').filter(|t| !t.is_empty())
}

/// The documents of an image entry the layout gets as files beside its
/// own: the platform manifests and the signature's manifest and blobs.
fn written_evidence(entry: &Entry) -> impl Iterator<Item = &[u8]> {
    let top = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
    entry
        .evidence
        .iter()
        .filter(move |e| e.kind != "oci-manifest" || sha256_hex(&e.data) != top)
        .map(|e| e.data.as_slice())
}

/// Every path an entry fills in the layout.
fn paths_of(entry: &Entry) -> Vec<String> {
    let mut paths = vec![entry.path.as_str().to_owned()];
    paths.extend(written_evidence(entry).map(|d| blob_path(&sha256_hex(d))));
    paths.extend(referrers_index(entry).map(|index| blob_path(&sha256_hex(&index))));
    paths
}

/// The index of an image's carried OCI 1.1 referrers, as the referrers
/// tag scheme has it at `sha256-<hex>`: what a registry without the
/// referrers API (and a client falling back to the tag) reads. Generated
/// from the entry, so the same referrers make the same bytes.
fn referrers_index(entry: &Entry) -> Option<Vec<u8>> {
    let referrers = referrers_of(entry);
    if referrers.is_empty() {
        return None;
    }
    let manifests: Vec<Value> = referrers
        .iter()
        .map(|(hex, doc)| layout::referrer_descriptor(hex, &media_type(doc).unwrap_or_default(), doc))
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": manifests });
    Some(serde_json::to_vec(&index).expect("JSON serializes"))
}

/// The digest chain of one image, from its evidence: the top document
/// (named by the entry's digest) and, for an index, the platform manifests
/// it carries, each listed by the index with its size.
pub struct Chain {
    /// The image manifests carried: config and layers each must be a blob of the bundle.
    pub manifests: Vec<ImageManifest>,
}

impl Chain {
    /// Checks the chain `entry` carries.
    pub fn of(entry: &Entry) -> Result<Chain, String> {
        let top_hex = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
        let docs: BTreeMap<String, &[u8]> = entry
            .evidence
            .iter()
            .filter(|e| e.kind == "oci-manifest")
            .map(|e| (sha256_hex(&e.data), e.data.as_slice()))
            .collect();
        let top = docs.get(&top_hex).ok_or("it carries no oci-manifest with the image's digest")?;
        if entry.size != top.len() as u64 {
            return Err("its size is not its manifest's".into());
        }
        let media = media_type(top)?;
        if entry.attributes.get("media-type").map(String::as_str) != Some(media.as_str()) {
            return Err(format!("its media-type attribute is not its manifest's {media}"));
        }
        if MANIFEST_TYPES.contains(&media.as_str()) {
            if docs.len() != 1 {
                return Err("an image manifest carries no other manifest".into());
            }
            return Ok(Chain { manifests: vec![parse_manifest(top)?] });
        }
        let index = parse_index(top)?;
        let mut manifests = Vec::new();
        for (hex, doc) in docs.iter().filter(|(h, _)| **h != top_hex) {
            let listed = index
                .manifests()
                .iter()
                .find(|d| d.as_digest_sha256() == Some(hex.as_str()))
                .ok_or_else(|| format!("it carries manifest sha256:{hex}, which its index does not list"))?;
            if listed.size() != doc.len() as u64 {
                return Err(format!("manifest sha256:{hex} is not the size its index lists"));
            }
            if !MANIFEST_TYPES.contains(&media_type(doc)?.as_str()) {
                return Err(format!("manifest sha256:{hex} is not an image manifest"));
            }
            manifests.push(parse_manifest(doc)?);
        }
        if manifests.is_empty() {
            return Err("its index carries none of its platforms' manifests".into());
        }
        Ok(Chain { manifests })
    }
}

/// A document's `mediaType`, which airlock requires (it tells an index from a manifest).
pub fn media_type(doc: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(doc).map_err(|e| format!("a manifest is not JSON ({e})"))?;
    let media = value.get("mediaType").and_then(Value::as_str).ok_or("a manifest names no mediaType")?;
    if INDEX_TYPES.contains(&media) || MANIFEST_TYPES.contains(&media) {
        Ok(media.to_owned())
    } else {
        Err(format!("a manifest has the media type {media:?}, which airlock does not carry"))
    }
}

pub fn parse_index(doc: &[u8]) -> Result<ImageIndex, String> {
    ImageIndex::from_reader(doc).map_err(|e| format!("an image index does not parse ({e})"))
}

pub fn parse_manifest(doc: &[u8]) -> Result<ImageManifest, String> {
    ImageManifest::from_reader(doc).map_err(|e| format!("an image manifest does not parse ({e})"))
}

/// The descriptors of a manifest's blobs: config, then layers.
pub fn blobs_of(manifest: &ImageManifest) -> impl Iterator<Item = &Descriptor> {
    std::iter::once(manifest.config()).chain(manifest.layers())
}

/// Every config and layer an image lists is a blob of the bundle, with the
/// size listed; every blob is listed by an image.
fn check_blobs_listed(entries: &[&Entry]) -> Result<(), String> {
    let mut blobs: BTreeMap<String, (&Entry, bool)> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.version.is_none()) {
        let hex = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
        blobs.insert(hex, (entry, false));
    }
    for image in entries.iter().filter(|e| e.version.is_some()) {
        let id = format!("oci entry {}@{}", image.name, image.version.as_deref().unwrap_or_default());
        for manifest in Chain::of(image).map_err(|m| format!("{id}: {m}"))?.manifests {
            for descriptor in blobs_of(&manifest) {
                let hex = descriptor.as_digest_sha256().ok_or_else(|| format!("{id}: a blob has no sha256 digest"))?;
                let (blob, listed) = blobs.get_mut(hex).ok_or_else(|| {
                    format!("{id}: its manifest lists blob sha256:{hex}, which the bundle does not carry")
                })?;
                if blob.size != descriptor.size() {
                    return Err(format!("{id}: blob sha256:{hex} is not the size its manifest lists"));
                }
                *listed = true;
            }
        }
    }
    match blobs.iter().find(|(_, (_, listed))| !listed) {
        Some((hex, (blob, _))) => {
            Err(format!("oci entry {}: blob sha256:{hex} is listed by no image of the bundle", blob.name))
        }
        None => Ok(()),
    }
}

/// An image's carried OCI 1.1 referrers, (hex, bytes), in digest order, each once.
fn referrers_of(entry: &Entry) -> Vec<(String, &[u8])> {
    let mut referrers: Vec<(String, &[u8])> = entry
        .evidence
        .iter()
        .filter(|e| e.kind == "oci-referrer")
        .map(|e| (sha256_hex(&e.data), e.data.as_slice()))
        .collect();
    referrers.sort_unstable();
    referrers.dedup();
    referrers
}

/// `index.json`: a descriptor for each tag of each image (and for an image
/// without tags, its digest), one for each signature, attestation and SBOM
/// manifest by cosign's tags, one for each OCI 1.1 referrer by its digest,
/// and the referrers' index at the fallback tag `sha256-<hex>`.
fn layout_index(all: &[&Entry]) -> Vec<u8> {
    let mut manifests = Vec::new();
    let mut images: Vec<&&Entry> = all.iter().filter(|e| e.version.is_some()).collect();
    images.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    for image in images {
        let hex = image.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
        let media = image.attributes.get("media-type").cloned().unwrap_or_default();
        let mut refs: Vec<String> = tags(image).map(|t| format!("{}:{t}", image.name)).collect();
        if refs.is_empty() {
            refs.push(format!("{}@sha256:{hex}", image.name));
        }
        for name in refs {
            manifests.push(descriptor(&media, &hex, image.size, &name));
        }
        for (kind, suffix) in [("cosign-signature", "sig"), ("cosign-attestation", "att"), ("cosign-sbom", "sbom")] {
            if let Some(doc) = image.evidence.iter().find(|e| e.kind == kind) {
                let media = media_type(&doc.data).unwrap_or_default();
                let name = format!("{}:sha256-{hex}.{suffix}", image.name);
                manifests.push(descriptor(&media, &sha256_hex(&doc.data), doc.data.len() as u64, &name));
            }
        }
        for (referrer, doc) in referrers_of(image) {
            let media = media_type(doc).unwrap_or_default();
            let name = format!("{}@sha256:{referrer}", image.name);
            manifests.push(descriptor(&media, &referrer, doc.len() as u64, &name));
        }
        if let Some(index) = referrers_index(image) {
            let name = format!("{}:sha256-{hex}", image.name);
            manifests.push(descriptor(INDEX_TYPES[0], &sha256_hex(&index), index.len() as u64, &name));
        }
    }
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": manifests });
    serde_json::to_vec_pretty(&index).expect("JSON serializes")
}

fn descriptor(media: &str, hex: &str, size: u64, name: &str) -> Value {
    json!({ "mediaType": media, "digest": format!("sha256:{hex}"), "size": size, "annotations": { REF_NAME: name } })
}

/// Longest repository name the distribution spec's clients accept.
const MAX_REPOSITORY_LEN: usize = 255;

/// A repository with its registry, `HOST[:PORT]/PATH`: the host in lower
/// case letters, digits, `.` and `-`; each path component lower case
/// letters and digits joined by `.`, `_`, `__` or runs of `-`, as the
/// distribution spec's grammar says. Checked at export for every line of
/// images.txt and on import for every entry.
pub fn check_repository(name: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{name:?} is not a repository with its registry (HOST[:PORT]/PATH, lower case, as the distribution spec allows)"
        ))
    };
    let Some((host, path)) = name.split_once('/') else { return bad() };
    let (domain, port) = host.split_once(':').map_or((host, None), |(d, p)| (d, Some(p)));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if name.len() > MAX_REPOSITORY_LEN || !domain_ok || !port_ok || !path.split('/').all(component_ok) {
        return bad();
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn component_ok(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes: Vec<char> = component.chars().collect();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else { return false };
    if !alnum(*first) || !alnum(*last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if alnum(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep: String = bytes[start..i].iter().collect();
        if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-')) {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    // The names the layout gives an image's evidence (cosign's `.sig`, `.att`,
    // `.sbom` and the referrers' fallback index): an image tagged so would
    // stand in for another image's evidence in index.json and in `push`.
    let scheme = tag.strip_prefix("sha256-").map(|rest| rest.split_once('.').map_or(rest, |(hex, _)| hex));
    if scheme.is_some_and(layout::is_hex) {
        return Err(format!(
            "{tag:?} is a tag of cosign's and the referrers' tag schemes (sha256-<digest>[.sig|.att|.sbom]), which name an image's evidence, not an image"
        ));
    }
    let first_ok = tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first_ok && tag.len() <= 128 && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Ok(())
    } else {
        Err(format!(
            "{tag:?} is not a valid tag (1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')"
        ))
    }
}

/// The entry path of a blob, checked.
#[must_use]
pub fn blob_rel_path(hex: &str) -> RelPath {
    RelPath::new(&blob_path(hex)).expect("a hex digest makes a valid path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_and_the_client_address() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            Oci.purl("registry.example:5000/team/app", &digest, "blobs/sha256/x").unwrap(),
            format!("pkg:oci/app@sha256%3A{}?repository_url=registry.example%3A5000/team/app", "ab".repeat(32))
        );
        assert_eq!(Oci.purl("registry.example/team/app", "", "blobs/sha256/x"), None);
        assert_eq!(Oci.client_url("http://127.0.0.1:8080").unwrap(), "docker://127.0.0.1:8080/");
    }

    #[test]
    fn repository_grammar() {
        for good in ["registry.example/team/app", "127.0.0.1:5000/a", "localhost/x__y/a-b.c", "r.io/a--b"] {
            assert!(check_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "app",
            "registry.example/",
            "registry.example/Team/app",
            "registry.example/a//b",
            "registry.example/../etc",
            "registry.example/a/.hidden",
            "registry.example/a_-b",
            "registry.example:x/a",
            "reg istry/a",
            "registry.example/a\u{202e}b",
            "Registry.example/a",
        ] {
            assert!(check_repository(bad).is_err(), "{bad:?}");
        }
        assert!(check_tag("v1.0_rc-1").is_ok());
        let scheme = format!("sha256-{}", "a".repeat(64));
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129), &scheme, &format!("{scheme}.sig")] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
        assert!(check_tag("sha256-not-a-digest").is_ok());
    }
}
