//! What every generator starts from: the corpus's two fixed keys, fixed
//! times, and bundles built from parts with tests/common/hostile.rs, so the
//! bytes depend on nothing but the generator (no clock, no randomness).
#![allow(dead_code)] // helpers for the generators that later cases use

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use airlock::id::{ContentId, RelPath};
use airlock::manifest::{Blob, Entry, FORMAT_SINGLE, Manifest};
use airlock::sign::SecretKey;

use crate::common::hostile;

/// 2026-01-01T00:00:00Z.
pub const CREATED: u64 = 1_767_225_600;
/// 2126-01-01T00:00:00Z: the corpus must not expire under the tests.
pub const EXPIRES: u64 = 4_922_899_200;

/// The corpus's keys: `trusted` is pinned by fixtures/vectors/policy.toml, `other` is not.
pub struct Base {
    pub trusted: SecretKey,
    pub other: SecretKey,
}

impl Base {
    pub fn new() -> Self {
        Base { trusted: load_key("trusted"), other: load_key("other") }
    }

    /// A bundle of plain files, sequence 1 of `channel`.
    pub fn files(&self, channel: &str, files: &[(&str, &[u8])]) -> Bundle {
        let entries = files.iter().map(|(path, data)| entry("files", path, None, path, data)).collect();
        self.bundle(channel, entries, files.iter().map(|(_, d)| d.to_vec()).collect())
    }

    /// A bundle of `entries`, sequence 1 of `channel`, carrying `contents`
    /// (each entry's blob must be the BLAKE3 of one of them).
    pub fn bundle(&self, channel: &str, entries: Vec<Entry>, contents: Vec<Vec<u8>>) -> Bundle {
        let blobs: BTreeMap<ContentId, Vec<u8>> = contents.into_iter().map(|d| (ContentId::of(&d), d)).collect();
        let mut manifest = Manifest {
            format: FORMAT_SINGLE,
            tool: "airlock test vectors".into(),
            channel: channel.into(),
            sequence: 1,
            previous: None,
            created: CREATED,
            expires: EXPIRES,
            signers: vec![self.trusted.public().id()],
            volumes: 1,
            parity: 0,
            blobs: blobs
                .iter()
                .map(|(id, data)| Blob {
                    id: *id,
                    size: data.len() as u64,
                    volume: 0,
                    carried: true,
                    pieces: Vec::new(),
                })
                .collect(),
            entries: entries.into(),
        };
        manifest.entries.decoded_mut().sort_by(|a, b| a.place().cmp(&b.place()));
        Bundle { manifest, blobs }
    }

    /// The volume of `bundle`, manifest and seal signed by the trusted key.
    pub fn signed(&self, bundle: &Bundle) -> Vec<u8> {
        bundle.signed_by(&[&self.trusted])
    }
}

/// A manifest and the blobs it carries, before signing.
#[derive(Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub blobs: BTreeMap<ContentId, Vec<u8>>,
}

impl Bundle {
    /// The volume, manifest and seal signed by `keys`.
    pub fn signed_by(&self, keys: &[&SecretKey]) -> Vec<u8> {
        hostile::rebuild(&self.manifest, &self.blobs, keys, keys)
    }

    /// The channel's next bundle with the same content (change it after).
    pub fn next(&self) -> Bundle {
        let mut next = self.clone();
        next.manifest.sequence += 1;
        next.manifest.previous = Some(ContentId::of(&self.manifest.to_bytes().unwrap()));
        next
    }
}

/// An entry of `ecosystem` for `content` at `path`.
pub fn entry(ecosystem: &str, name: &str, version: Option<&str>, path: &str, content: &[u8]) -> Entry {
    Entry {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.map(Into::into),
        path: RelPath::new(path).unwrap(),
        blob: ContentId::of(content),
        size: content.len() as u64,
        digests: BTreeMap::new(),
        source: None,
        attributes: BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    }
}

/// Loads fixtures/vectors/keys/NAME.key through a private copy (git does not keep file modes).
fn load_key(name: &str) -> SecretKey {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/vectors/keys/{name}.key"));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("key");
    fs::write(&copy, fs::read(&source).unwrap()).unwrap();
    fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    SecretKey::load(&copy).unwrap()
}
