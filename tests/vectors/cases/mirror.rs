//! Channels sharing one mirror (issue 14, items 10 and 11): entries whose
//! carried or generated paths collide, within a bundle or with what
//! another channel published, and a channel listing another channel's
//! artifact with other evidence.

use sha2::Digest as _;

use super::Made;
use crate::base::{Base, Bundle, entry};
use airlock::manifest::{Digest, Entry, Evidence};

const SDIST: &[u8] = b"goodpkg 1.0 sdist";
const METADATA: &[u8] = b"Metadata-Version: 2.1\nName: goodpkg\nVersion: 1.0\n";
const EVIL_METADATA: &[u8] = b"Metadata-Version: 2.1\nName: goodpkg\nVersion: 1.0\nRequires-Dist: evil\n";
const CRATE: &[u8] = b"goodcrate 1.0.0 .crate";
const EVIL_DEP: &str = r#"[{"name":"evil","req":"^1","features":[],"optional":false,"default_features":true,"target":null,"kind":"normal"}]"#;

/// A registry entry with the sha256 its registry states.
fn registry_entry(ecosystem: &str, name: &str, version: &str, path: &str, content: &[u8]) -> Entry {
    let mut e = entry(ecosystem, name, Some(version), path, content);
    e.digests.insert("sha256".into(), Digest(sha2::Sha256::digest(content).to_vec()));
    e
}

fn pypi(file: &str, content: &[u8], metadata: Option<&[u8]>) -> (Entry, Vec<u8>) {
    let mut e = registry_entry("pypi", "goodpkg", "1.0", &format!("goodpkg/{file}"), content);
    if let Some(metadata) = metadata {
        e.evidence.push(Evidence { kind: "pypi-core-metadata".into(), data: metadata.to_vec() });
    }
    (e, content.to_vec())
}

fn krate(name: &str, version: &str, content: &[u8], deps: &str) -> (Entry, Vec<u8>) {
    let mut e = registry_entry("cargo", name, version, &format!("{name}-{version}.crate"), content);
    let cksum = hex::encode(sha2::Sha256::digest(content));
    let line = format!(
        r#"{{"name":"{name}","vers":"{version}","deps":{deps},"cksum":"{cksum}","features":{{}},"yanked":false}}"#
    );
    e.evidence.push(Evidence { kind: "cargo-index-entry".into(), data: line.into_bytes() });
    (e, content.to_vec())
}

fn file(path: &str, content: &[u8]) -> (Entry, Vec<u8>) {
    (entry("files", path, None, path, content), content.to_vec())
}

fn bundle(base: &Base, channel: &str, items: Vec<(Entry, Vec<u8>)>) -> Bundle {
    let (entries, contents) = items.into_iter().unzip();
    base.bundle(channel, entries, contents)
}

pub fn cases(base: &Base) -> Vec<Made> {
    let signed = |channel: &str, items| base.signed(&bundle(base, channel, items));
    let index_html = registry_entry("pypi", "index", "1.0", "index/index.html", b"<p>a page</p>");
    vec![
        (
            "pypi-file-at-core-metadata-path.airlock".into(),
            signed(
                "pypi",
                vec![
                    pypi("goodpkg-1.0.tar.gz", SDIST, Some(METADATA)),
                    pypi("goodpkg-1.0.tar.gz.metadata", EVIL_METADATA, None),
                ],
            ),
        ),
        ("pypi-project-index-html.airlock".into(), signed("pypi", vec![(index_html, b"<p>a page</p>".to_vec())])),
        (
            "channel-a-goods.airlock".into(),
            signed(
                "a",
                vec![
                    pypi("goodpkg-1.0.tar.gz", SDIST, Some(METADATA)),
                    krate("goodcrate", "1.0.0", CRATE, "[]"),
                    file("tools/tool.bin", b"channel a's tool"),
                ],
            ),
        ),
        (
            "channel-b-metadata-file.airlock".into(),
            signed("b", vec![pypi("goodpkg-1.0.tar.gz.metadata", EVIL_METADATA, None)]),
        ),
        ("channel-b-goodcrate-case.airlock".into(), signed("b", vec![krate("GoodCrate", "9.9.9", b"another", "[]")])),
        ("channel-b-plain-file.airlock".into(), signed("b", vec![file("tools/tool.bin", b"channel b's tool")])),
        (
            "channel-b-co-lists-goodcrate.airlock".into(),
            signed(
                "b",
                vec![krate("goodcrate", "1.0.0", CRATE, EVIL_DEP), file("tools/tool.bin", b"channel a's tool")],
            ),
        ),
    ]
}
