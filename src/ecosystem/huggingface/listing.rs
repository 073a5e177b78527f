//! `hf-files`: what the hub's tree API listed for the carried files of one
//! snapshot, as the exporter checked them against the bytes (schemas/manifest.cddl).
//!
//! ```json
//! {"repo": "org/model", "commit": "<40 hex>", "revision": "main",
//!  "files": [{"path": "config.json", "size": 519, "oid": "<git blob id>",
//!             "sha256": "<hex>", "lfs": false}, ...]}
//! ```
//!
//! For an LFS file `oid` is the git blob id of its pointer (what the tree
//! API says) and `sha256` the LFS object id; for the others `oid` is the
//! git blob id of the bytes, `sha1("blob <len>\0" + bytes)`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha1::Digest as _;

/// The listing of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// The entry name: `ORG/NAME` or `datasets/ORG/NAME`.
    pub repo: String,
    pub commit: String,
    /// The branch or tag asked for, if not a commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub files: Vec<File>,
}

/// One file of the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    pub size: u64,
    /// The git blob id the tree API states.
    pub oid: String,
    /// Its SHA-256 (for an LFS file, the LFS object id).
    pub sha256: String,
    pub lfs: bool,
    /// A file the model signature hashes in more than one shard: the
    /// SHA-256 of each (the entry's `sha256-shards` digest, as hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<Shards>,
}

/// The shards of one file: cut every `size` bytes, the last what is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shards {
    pub size: u64,
    pub sha256: Vec<String>,
}

impl Shards {
    /// The `sha256-shards` digest these are (see `manifest::SHA256_SHARDS`).
    #[must_use]
    pub fn digest(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        for shard in &self.sha256 {
            out.extend(hex::decode(shard).unwrap_or_default());
        }
        out
    }
}

impl File {
    /// The name the hub's cache gives its blob, and the `ETag` it serves.
    #[must_use]
    pub fn etag(&self) -> String {
        if self.lfs { self.sha256.clone() } else { self.oid.clone() }
    }
}

fn hex_of(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Listing {
    /// Parses and checks the document's own rules.
    pub fn parse(data: &[u8]) -> Result<Listing, String> {
        let listing: Listing =
            serde_json::from_slice(data).map_err(|e| format!("its hf-files listing does not parse ({e})"))?;
        for f in &listing.files {
            let shards_ok = f.shards.as_ref().is_none_or(|s| {
                s.size > 0 && s.sha256.len() as u64 == f.size.div_ceil(s.size) && s.sha256.iter().all(|d| hex_of(d, 64))
            });
            if !hex_of(&f.oid, 40) || !hex_of(&f.sha256, 64) || !shards_ok {
                return Err(format!("its hf-files listing gives {} a malformed digest", f.path));
            }
        }
        Ok(listing)
    }

    /// The canonical bytes (files in path order).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut sorted = self.clone();
        sorted.files.sort_by(|a, b| a.path.cmp(&b.path));
        serde_json::to_vec(&sorted).expect("a listing serializes")
    }

    /// `trees/<commit>.json` as `huggingface_hub`'s tree cache has it
    /// (`format_version` 1): the client then knows the snapshot is whole.
    #[must_use]
    pub fn tree_cache(&self) -> Vec<u8> {
        let mut files = Map::new();
        for f in &self.files {
            let mut info = json!({ "size": f.size, "blob_id": f.oid });
            if f.lfs {
                info["lfs_sha256"] = json!(f.sha256);
                info["lfs_size"] = json!(f.size);
            }
            files.insert(f.path.clone(), info);
        }
        serde_json::to_vec_pretty(&json!({ "format_version": 1, "files": Value::Object(files) }))
            .expect("a tree cache serializes")
    }
}

/// The git blob id of `data`: `sha1("blob <len>\0" + data)`, as hex.
#[must_use]
pub fn git_blob_id(data: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", data.len()).as_bytes());
    hasher.update(data);
    hex::encode(hasher.finalize())
}

/// The git blob id of a file's bytes, read in pieces.
pub fn git_blob_id_of(path: &std::path::Path, size: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {size}\0").as_bytes());
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(git_blob_id(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(git_blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    #[test]
    fn listings_round_trip_and_make_the_clients_tree_cache() {
        let listing = Listing {
            repo: "org/m".into(),
            commit: "a".repeat(40),
            revision: Some("main".into()),
            files: vec![
                File {
                    path: "w.safetensors".into(),
                    size: 3,
                    oid: "b".repeat(40),
                    sha256: "c".repeat(64),
                    lfs: true,
                    shards: None,
                },
                File {
                    path: "config.json".into(),
                    size: 2,
                    oid: "d".repeat(40),
                    sha256: "e".repeat(64),
                    lfs: false,
                    shards: None,
                },
            ],
        };
        let parsed = Listing::parse(&listing.to_bytes()).unwrap();
        assert_eq!(parsed.files[0].path, "config.json");
        let tree: Value = serde_json::from_slice(&listing.tree_cache()).unwrap();
        assert_eq!(tree["files"]["w.safetensors"]["lfs_sha256"], "c".repeat(64));
        assert_eq!(tree["files"]["config.json"]["blob_id"], "d".repeat(40));
        assert!(tree["files"]["config.json"].get("lfs_sha256").is_none());
        assert!(
            Listing::parse(
                br#"{"repo":"a","commit":"b","files":[{"path":"x","size":1,"oid":"zz","sha256":"","lfs":false}]}"#
            )
            .is_err()
        );
    }
}
