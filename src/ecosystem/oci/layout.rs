//! Reading the published OCI image layout (`MIRROR/oci/`) back: its
//! `index.json` names every image by its full carried reference
//! (`org.opencontainers.image.ref.name`), and `blobs/sha256/` holds every
//! manifest, config and layer. `airlock serve` and `airlock push` read it
//! through this module; `publish` (mod.rs) writes it.
//!
//! ## Repository names on the inside
//!
//! A client of `airlock serve` or a site registry filled by `airlock push`
//! names a repository without the registry it came from: the carried
//! `registry.example/team/app:1` is `team/app:1` there
//! (`docker://mirror:8080/team/app:1`). [`LayoutIndex::resolve`] also takes
//! the full carried repository (`registry.example/team/app`, the registry
//! as the first path component, for a registry without a port), which is
//! what a `registries.conf` mirror with a path prefix asks for, and the only
//! form that reaches one of two carried repositories differing only in
//! their registry.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{INDEX_TYPES, MANIFEST_TYPES, REF_NAME, blobs_of, parse_index, parse_manifest};

/// Largest manifest read back (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The layout's index.
pub const INDEX_JSON: &str = super::INDEX_JSON;

/// One name of the layout's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The carried repository, `HOST[:PORT]/PATH`.
    pub repository: String,
    /// The tag, or `None` for an image carried without one (named by digest).
    pub tag: Option<String>,
    /// The manifest's sha256, lower-case hex.
    pub hex: String,
    pub media_type: String,
    pub size: u64,
}

/// The layout's `index.json`, parsed.
#[derive(Debug, Default)]
pub struct LayoutIndex {
    pub names: Vec<Named>,
}

/// What a repository name asked of the layout comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// The carried repository it names.
    Repository(&'a str),
    Unknown,
    /// Several carried repositories have this path on different registries.
    Ambiguous(Vec<&'a str>),
}

/// A lower-case sha256 hex digest.
#[must_use]
pub fn is_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:<hex>` as its hex; `None` for any other digest.
#[must_use]
pub fn digest_hex(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha256:").filter(|hex| is_hex(hex))
}

/// Splits `HOST[:PORT]/PATH:TAG` or `HOST[:PORT]/PATH@sha256:HEX` into
/// the repository and the tag (`None` for a digest).
fn split_reference(name: &str) -> Option<(&str, Option<&str>)> {
    if let Some((repository, digest)) = name.split_once('@') {
        return digest_hex(digest).map(|_| (repository, None));
    }
    let slash = name.find('/')?;
    let colon = name[slash..].rfind(':')? + slash;
    Some((&name[..colon], Some(&name[colon + 1..])))
}

impl LayoutIndex {
    /// Parses `index.json`; names it cannot read are left out (airlock wrote
    /// the file, from verified entries).
    pub fn parse(bytes: &[u8]) -> Result<LayoutIndex, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("index.json is not JSON ({e})"))?;
        let mut names = Vec::new();
        for d in value.get("manifests").and_then(Value::as_array).into_iter().flatten() {
            let text = |key: &str| d.get(key).and_then(Value::as_str);
            let (Some(name), Some(hex), Some(media_type), Some(size)) = (
                d.get("annotations").and_then(|a| a.get(REF_NAME)).and_then(Value::as_str),
                text("digest").and_then(digest_hex),
                text("mediaType"),
                d.get("size").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let Some((repository, tag)) = split_reference(name) else { continue };
            names.push(Named {
                repository: repository.to_owned(),
                tag: tag.map(str::to_owned),
                hex: hex.to_owned(),
                media_type: media_type.to_owned(),
                size,
            });
        }
        Ok(LayoutIndex { names })
    }

    /// Every carried repository.
    #[must_use]
    pub fn repositories(&self) -> BTreeSet<&str> {
        self.names.iter().map(|n| n.repository.as_str()).collect()
    }

    /// The carried repository `name` means: itself, or the one whose path
    /// below its registry it is (see the module's documentation).
    #[must_use]
    pub fn resolve(&self, name: &str) -> Resolved<'_> {
        let repositories = self.repositories();
        if let Some(exact) = repositories.iter().find(|r| **r == name) {
            return Resolved::Repository(exact);
        }
        let by_path: Vec<&str> =
            repositories.into_iter().filter(|r| r.split_once('/').is_some_and(|(_, path)| path == name)).collect();
        match by_path.as_slice() {
            [] => Resolved::Unknown,
            [one] => Resolved::Repository(one),
            _ => Resolved::Ambiguous(by_path),
        }
    }

    /// The names of one carried repository.
    pub fn of<'a, 'r>(&'a self, repository: &'r str) -> impl Iterator<Item = &'a Named> + use<'a, 'r> {
        self.names.iter().filter(move |n| n.repository == repository)
    }

    /// The tags of a carried repository, sorted (cosign's `.sig` tags among them).
    #[must_use]
    pub fn tags(&self, repository: &str) -> Vec<&str> {
        let tags: BTreeSet<&str> = self.of(repository).filter_map(|n| n.tag.as_deref()).collect();
        tags.into_iter().collect()
    }

    /// The manifest a tag of a carried repository names.
    #[must_use]
    pub fn by_tag(&self, repository: &str, tag: &str) -> Option<&Named> {
        self.of(repository).find(|n| n.tag.as_deref() == Some(tag))
    }
}

/// What one repository holds: its manifests (with their media types) and
/// the blobs they list, found from its names with `read` (a manifest's
/// bytes by hex, `None` when the layout does not hold it).
#[derive(Debug, Default)]
pub struct Reachable {
    /// Manifest hex → (media type, bytes).
    pub manifests: BTreeMap<String, (String, Vec<u8>)>,
    /// Config and layer hex → size.
    pub blobs: BTreeMap<String, u64>,
}

impl Reachable {
    /// The manifests the names of `repository` lead to (the top documents,
    /// the platform manifests of an index the layout holds) and their blobs.
    pub fn of(index: &LayoutIndex, repository: &str, read: &dyn Fn(&str) -> Option<Vec<u8>>) -> Reachable {
        let mut reachable = Reachable::default();
        let mut todo: Vec<String> = index.of(repository).map(|n| n.hex.clone()).collect();
        while let Some(hex) = todo.pop() {
            if reachable.manifests.contains_key(&hex) {
                continue;
            }
            let Some(doc) = read(&hex) else { continue };
            let Some(media) = manifest_media_type(&doc) else { continue };
            if INDEX_TYPES.contains(&media.as_str()) {
                if let Ok(child) = parse_index(&doc) {
                    todo.extend(child.manifests().iter().filter_map(|d| d.as_digest_sha256().map(str::to_owned)));
                }
            } else if let Ok(manifest) = parse_manifest(&doc) {
                for d in blobs_of(&manifest) {
                    if let Some(hex) = d.as_digest_sha256() {
                        reachable.blobs.insert(hex.to_owned(), d.size());
                    }
                }
            }
            reachable.manifests.insert(hex, (media, doc));
        }
        reachable
    }
}

/// The media type of a manifest or index, or `None` for a document that
/// is neither (a config, a layer). An OCI manifest may leave `mediaType`
/// out; then its shape tells.
#[must_use]
pub fn manifest_media_type(doc: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(doc).ok()?;
    match value.get("mediaType").and_then(Value::as_str) {
        Some(media) if INDEX_TYPES.contains(&media) || MANIFEST_TYPES.contains(&media) => Some(media.to_owned()),
        None if value.get("schemaVersion").and_then(Value::as_u64) == Some(2) => {
            if value.get("manifests").is_some_and(Value::is_array) {
                Some(INDEX_TYPES[0].to_owned())
            } else if value.get("config").is_some_and(Value::is_object) && value.get("layers").is_some() {
                Some(MANIFEST_TYPES[0].to_owned())
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The subject a manifest names (OCI 1.1 referrers), as hex.
#[must_use]
pub fn subject_hex(doc: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(doc).ok()?;
    digest_hex(value.get("subject")?.get("digest")?.as_str()?).map(str::to_owned)
}

/// A referrer's descriptor for the referrers API: its media type, digest,
/// size, `artifactType` (its own, or its config's media type) and annotations.
#[must_use]
pub fn referrer_descriptor(hex: &str, media: &str, doc: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(doc).unwrap_or(Value::Null);
    let artifact_type = artifact_type(&value).cloned().unwrap_or(Value::Null);
    let mut d = serde_json::json!({
        "mediaType": media, "digest": format!("sha256:{hex}"), "size": doc.len(), "artifactType": artifact_type,
    });
    if let Some(annotations) = value.get("annotations") {
        d["annotations"] = annotations.clone();
    }
    d
}

/// A manifest's artifact type: its own `artifactType`, or its config's media type.
#[must_use]
pub fn artifact_type(manifest: &Value) -> Option<&Value> {
    manifest.get("artifactType").or_else(|| manifest.get("config").and_then(|c| c.get("mediaType")))
}

/// The tags of cosign's tag scheme that point at `hex`'s evidence.
#[must_use]
pub fn tag_scheme(hex: &str) -> [String; 3] {
    ["sig", "att", "sbom"].map(|suffix| format!("sha256-{hex}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_or_without_their_registry() {
        let index = serde_json::json!({ "manifests": [
            { "mediaType": MANIFEST_TYPES[0], "digest": format!("sha256:{}", "a".repeat(64)), "size": 3,
              "annotations": { REF_NAME: "registry.example/team/app:1" } },
            { "mediaType": MANIFEST_TYPES[0], "digest": format!("sha256:{}", "b".repeat(64)), "size": 3,
              "annotations": { REF_NAME: "127.0.0.1:5000/team/tool@sha256:".to_owned() + &"b".repeat(64) } },
            { "mediaType": MANIFEST_TYPES[0], "digest": format!("sha256:{}", "c".repeat(64)), "size": 3,
              "annotations": { REF_NAME: "other.example/team/app:2" } },
            { "mediaType": MANIFEST_TYPES[0], "digest": format!("sha256:{}", "d".repeat(64)), "size": 3,
              "annotations": { REF_NAME: "127.0.0.1:5000/team/tool:sha256-x.sig" } },
        ] });
        let index = LayoutIndex::parse(&serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(index.resolve("team/tool"), Resolved::Repository("127.0.0.1:5000/team/tool"));
        assert_eq!(index.resolve("registry.example/team/app"), Resolved::Repository("registry.example/team/app"));
        assert_eq!(
            index.resolve("team/app"),
            Resolved::Ambiguous(vec!["other.example/team/app", "registry.example/team/app"])
        );
        assert_eq!(index.resolve("team"), Resolved::Unknown);
        assert_eq!(index.tags("127.0.0.1:5000/team/tool"), ["sha256-x.sig"]);
        assert_eq!(index.by_tag("registry.example/team/app", "1").unwrap().hex, "a".repeat(64));
    }

    #[test]
    fn referrers_are_described_by_their_subject_and_artifact_type() {
        let hex = "e".repeat(64);
        let doc = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPES[0], "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44", "size": 2 },
            "layers": [], "subject": { "mediaType": MANIFEST_TYPES[0], "digest": format!("sha256:{hex}"), "size": 1 },
            "annotations": { "a": "b" },
        }))
        .unwrap();
        assert_eq!(subject_hex(&doc), Some(hex));
        let d = referrer_descriptor(&"f".repeat(64), MANIFEST_TYPES[0], &doc);
        assert_eq!(d["artifactType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
        assert_eq!(d["annotations"]["a"], "b");
        assert_eq!(d["size"], doc.len());
        let plain =
            br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[]}"#;
        assert_eq!(subject_hex(plain), None);
        assert_eq!(
            referrer_descriptor("0", MANIFEST_TYPES[0], plain)["artifactType"],
            "application/vnd.oci.image.config.v1+json"
        );
    }

    #[test]
    fn documents_are_told_apart() {
        assert_eq!(
            manifest_media_type(br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#).as_deref(),
            Some(INDEX_TYPES[0])
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"config":{},"layers":[]}"#).as_deref(),
            Some(MANIFEST_TYPES[0])
        );
        assert_eq!(manifest_media_type(br#"{"architecture":"amd64","os":"linux"}"#), None);
        assert_eq!(manifest_media_type(b"\x1f\x8b binary"), None);
    }
}
