//! Inputs that crashed the importer (issue 14, "Crashes"): a member name
//! the tar crate refuses to write back, times past the year 9999, and
//! names and versions outside their ecosystem's grammar, some of which
//! reached the generated pages as markup. Every bundle but the first is
//! signed by the trusted key.

use std::collections::BTreeMap;

use airlock::bundle::MANIFEST_MEMBER;
use airlock::manifest::{Digest, Entry, Evidence};
use sha2::Digest as _;

use super::Made;
use super::basics::GOOD;
use crate::base::{self, Base};
use crate::common::hostile;

/// 10000-01-01T00:00:00Z, the first second the format cannot carry.
const YEAR_10000: u64 = 253_402_300_800;

pub fn cases(base: &Base) -> Vec<Made> {
    let mut made = vec![
        ("unsigned-dotdot-first-member.airlock".into(), unsigned_dotdot_first_member(base)),
        ("signed-dotdot-member-in-frame-2.airlock".into(), signed_dotdot_member_in_frame_2(base)),
    ];
    for (name, created, expires) in [
        ("expires-year-10000", base::CREATED, YEAR_10000),
        ("created-year-10000", YEAR_10000, YEAR_10000),
        ("expires-u64-max", base::CREATED, u64::MAX),
    ] {
        let mut bundle = base.files("vectors", GOOD);
        (bundle.manifest.created, bundle.manifest.expires) = (created, expires);
        made.push((format!("{name}.airlock"), base.signed(&bundle)));
    }
    made.push(("manifest-field-name-with-newline.airlock".into(), field_name_with_newline(base)));
    for (name, entry) in named_entries() {
        let content = entry_content(&entry);
        made.push((format!("{name}.airlock"), base.signed(&base.bundle("vectors", vec![entry], vec![content]))));
    }
    made
}

/// A manifest whose entry has the field `eco\n\0stem` for `ecosystem`,
/// canonically encoded and signed: the schema error quoted the field name,
/// newline and all (found by the fuzzer, `volume` target).
fn field_name_with_newline(base: &Base) -> Vec<u8> {
    let bundle = base.files("vectors", GOOD);
    let mut value = hostile::manifest_value(&bundle.manifest);
    let ciborium::Value::Map(fields) = &mut value else { panic!("a manifest is a map") };
    let entries = fields.iter_mut().find(|(k, _)| k.as_text() == Some("entries")).map(|(_, v)| v).unwrap();
    let ciborium::Value::Array(entries) = entries else { panic!("entries is an array") };
    let ciborium::Value::Map(entry) = &mut entries[0] else { panic!("an entry is a map") };
    for (key, _) in entry.iter_mut() {
        if key.as_text() == Some("ecosystem") {
            *key = ciborium::Value::Text("eco\n\0stem".into());
        }
    }
    // Canonical order: keys sorted by their encoding (shorter first, then bytewise).
    let encoded = |v: &ciborium::Value| {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    };
    entry.sort_by_key(|(k, _)| encoded(k));
    let payload = encoded(&value);
    hostile::rebuild_payload(&payload, &bundle.manifest, &bundle.blobs, &[&base.trusted], &[&base.trusted])
}

/// 70 bytes, `blobs/` and 64 more like a blob's name, but with a `..` component.
fn dotdot_name() -> Vec<u8> {
    let name = format!("blobs/../{}", "a".repeat(61));
    assert_eq!(name.len(), 70);
    name.into_bytes()
}

/// A regular-file ustar header for `name` written byte by byte, as a
/// hostile writer would (the tar crate refuses to write a `..` name).
fn raw_header(name: &[u8], size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

/// Item 1: frame 1's member is the `..` name (holding an envelope nobody
/// signed), then the good bundle's blobs and a seal nobody signed.
fn unsigned_dotdot_first_member(base: &Base) -> Vec<u8> {
    let good = base.files("vectors", GOOD);
    let payload = good.manifest.to_bytes().unwrap();
    let envelope = hostile::sign_manifest(&payload, &[]);
    let mut member = raw_header(&dotdot_name(), envelope.len() as u64).as_bytes().to_vec();
    member.extend_from_slice(&envelope);
    member.resize(member.len().next_multiple_of(512), 0);
    assert_ne!(&member[..MANIFEST_MEMBER.len()], MANIFEST_MEMBER.as_bytes());
    let mut volume = Vec::new();
    airlock::bundle::frame::write_raw(&mut volume, &member).unwrap();
    let blobs: Vec<_> = good.blobs.iter().map(|(id, data)| (*id, data.as_slice())).collect();
    let frame = hostile::blob_frame(&blobs);
    volume.extend_from_slice(&frame);
    airlock::bundle::writer::write_seal(&mut volume, &hostile::seal(&payload, &frame, &[])).unwrap();
    volume
}

/// Item 1: a good manifest signed by the trusted key, and a blob frame,
/// sealed by the same key, whose first member is the `..` name.
fn signed_dotdot_member_in_frame_2(base: &Base) -> Vec<u8> {
    let good = base.files("vectors", GOOD);
    let payload = good.manifest.to_bytes().unwrap();
    let data = good.blobs.values().next().unwrap();
    let frame = hostile::compress(&hostile::tar_stream(&[(raw_header(&dotdot_name(), data.len() as u64), data)]));
    let trusted = [&base.trusted];
    hostile::assemble(&hostile::sign_manifest(&payload, &trusted), &frame, &hostile::seal(&payload, &frame, &trusted))
}

/// Item 3 and 12: one entry per case whose name or version is outside its
/// ecosystem's grammar, everything else as a genuine entry has it.
fn named_entries() -> Vec<(&'static str, Entry)> {
    let svg = "<svg onload=alert(1)>";
    let mut cases = vec![
        ("cargo-empty-name", krate("", "1.0.0")),
        ("cargo-version-not-semver", krate("tinycrate", "1.0")),
        ("pypi-svg-project", pypi(svg, "1.0", &format!("{svg}/{svg}-1.0.tar.gz"))),
        ("pypi-version-dotdot", pypi("six", "..", "six/six-1.16.0.tar.gz")),
        ("pypi-version-nul", pypi("six", "1.16.0\0", "six/six-1.16.0.tar.gz")),
        ("npm-leading-underscore", npm("_hidden", "1.0.0")),
        ("npm-version-markup", npm("tinylib", "1.0.0<script>")),
    ];
    // A PEP 740 provenance beside the `..` version: published under integrity/six/../.
    let provenance = Evidence { kind: "pypi-provenance".into(), data: br#"{"version":1}"#.to_vec() };
    cases[3].1.evidence.push(provenance);
    cases
}

fn entry_content(entry: &Entry) -> Vec<u8> {
    format!("{} {} {}\n", entry.ecosystem, entry.name, entry.version.as_deref().unwrap_or_default()).into_bytes()
}

/// `entry` with its blob and the upstream digests of its content.
fn with_content(mut entry: Entry, algorithms: &[&str]) -> Entry {
    let content = entry_content(&entry);
    entry.blob = airlock::id::ContentId::of(&content);
    entry.size = content.len() as u64;
    let mut digests = BTreeMap::new();
    for algorithm in algorithms {
        let digest = match *algorithm {
            "sha256" => sha2::Sha256::digest(&content).to_vec(),
            "sha512" => sha2::Sha512::digest(&content).to_vec(),
            other => panic!("no {other}"),
        };
        digests.insert((*algorithm).to_owned(), Digest(digest));
    }
    entry.digests = digests;
    entry
}

fn krate(name: &str, version: &str) -> Entry {
    let path = format!("{name}-{version}.crate");
    let mut entry = with_content(base::entry("cargo", name, Some(version), &path, b""), &["sha256"]);
    let cksum = hex::encode(&entry.digests["sha256"].0);
    let line = serde_json::json!({"name": name, "vers": version, "deps": [], "cksum": cksum, "features": {}});
    entry.evidence.push(Evidence { kind: "cargo-index-entry".into(), data: serde_json::to_vec(&line).unwrap() });
    entry
}

fn pypi(name: &str, version: &str, path: &str) -> Entry {
    with_content(base::entry("pypi", name, Some(version), path, b""), &["sha256"])
}

fn npm(name: &str, version: &str) -> Entry {
    let path = format!("{name}/-/{name}-{version}.tgz");
    with_content(base::entry("npm", name, Some(version), &path, b""), &["sha512"])
}
