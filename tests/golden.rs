//! The exporter's output, byte for byte: bundles made from fixed inputs, a
//! fixed key and a fixed time must not change when the code is reorganised.
//! The expected digests are in fixtures/golden/expected.txt; after a change
//! that is meant to change the bytes (a new format, a new field), rewrite
//! them with `AIRLOCK_UPDATE_GOLDEN=1 cargo test --test golden` and say so
//! in the commit.
//!
//! Lockfile exports name the fake registry's address (random port) in their
//! entries and evidence, so their manifest is compared with that address
//! replaced, and their blob frame as written.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use airlock::bundle::reader::{Member, VolumeReader};
use airlock::sign::envelope;
use common::registry::{self, Faults, Registry};
use common::{airlock, export_lockfiles};

/// 2026-01-01T00:00:00Z.
const EPOCH: &str = "1767225600";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus's trusted key, copied private as `airlock` demands.
fn key(dir: &Path) -> PathBuf {
    let path = dir.join("golden.key");
    fs::copy(root().join("fixtures/vectors/keys/trusted.key"), &path).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Every file of a bundle (one file, or a folder of volumes), by name.
fn bundle_files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    if path.is_dir() {
        fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
            .collect()
    } else {
        BTreeMap::from([(String::new(), fs::read(path).unwrap())])
    }
}

/// The signed manifest bytes (the root), its segments and the compressed blob frame of a single volume.
fn manifest_and_frame(bytes: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (mut volume, envelope_bytes) = VolumeReader::open(bytes, "golden").unwrap();
    while let Member::Blob { size, .. } = volume.next_member().unwrap() {
        volume.copy_member(size, &mut std::io::sink()).unwrap();
    }
    let tail = volume.finish().unwrap();
    let payload = envelope::open_untrusted(&envelope_bytes.envelope, envelope::MANIFEST).unwrap().payload.to_vec();
    let size = usize::try_from(tail.frame.size).unwrap();
    let start = bytes.len() - 8 - tail.seal.len() - size;
    let segments = envelope_bytes.segments.expect("export writes format 2").to_vec().unwrap();
    (payload, segments, bytes[start..start + size].to_vec())
}

/// The root and its segments with `needle` replaced by `with` in every
/// segment, and the root's references naming the segments so changed.
fn normalised_manifest(root: &[u8], segments: &[u8], needle: &str, with: &str) -> Vec<u8> {
    use ciborium::Value;
    let mut root: Value = ciborium::de::from_reader(root).unwrap();
    let Value::Map(fields) = &mut root else { panic!("the root is a map") };
    let (mut at, mut out) = (0, Vec::new());
    for (key, refs) in fields.iter_mut() {
        if !matches!(key.as_text(), Some("blobs" | "entries")) {
            continue;
        }
        let Value::Array(refs) = refs else { panic!("segment references are an array") };
        for reference in refs {
            let Value::Map(reference) = reference else { panic!("a reference is a map") };
            let at_key = |reference: &[(Value, Value)], name: &str| {
                reference.iter().position(|(k, _)| k.as_text() == Some(name)).unwrap()
            };
            let (id_at, size_at) = (at_key(reference, "id"), at_key(reference, "size"));
            let size = usize::try_from(reference[size_at].1.as_integer().unwrap()).unwrap();
            let mut segment: Value = ciborium::de::from_reader(&segments[at..at + size]).unwrap();
            at += size;
            replace_in(&mut segment, needle, with);
            let mut bytes = Vec::new();
            ciborium::ser::into_writer(&segment, &mut bytes).unwrap();
            reference[id_at].1 = Value::Bytes(blake3::hash(&bytes).as_bytes().to_vec());
            reference[size_at].1 = Value::from(bytes.len() as u64);
            out.extend(bytes);
        }
    }
    assert_eq!(at, segments.len());
    let mut normalised = Vec::new();
    ciborium::ser::into_writer(&root, &mut normalised).unwrap();
    normalised.extend(out);
    normalised
}

/// `needle` replaced by `with` in every text and byte string of a CBOR value.
fn replace_in(value: &mut ciborium::Value, needle: &str, with: &str) {
    use ciborium::Value;
    let swap = |bytes: &[u8]| -> Vec<u8> { String::from_utf8_lossy(bytes).replace(needle, with).into_bytes() };
    match value {
        Value::Text(text) => *text = text.replace(needle, with),
        Value::Bytes(bytes) if std::str::from_utf8(bytes).is_ok() => *bytes = swap(bytes),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_in(v, needle, with)),
        Value::Map(pairs) => pairs.iter_mut().for_each(|(_, v)| replace_in(v, needle, with)),
        Value::Tag(_, inner) => replace_in(inner, needle, with),
        _ => {}
    }
}

/// Files of incompressible bytes from a fixed generator, enough for several 32 KiB volumes.
fn generated_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("generated");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..6 {
        let bytes: Vec<u8> = (0..9_000 + 1_000 * n)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        let path = tree.join(format!("part-{n}/data.bin"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
    tree
}

fn exported(name: &str, input: &Path, args: &[&str], dir: &Path) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = airlock();
    cmd.env("SOURCE_DATE_EPOCH", EPOCH).args(["export", "--quiet", "--files"]).arg(input);
    cmd.arg("--key").arg(key(dir)).arg("--out").arg(&out).args(args).assert().success();
    out
}

/// name -> digest of everything that must not change.
fn digests() -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = BTreeMap::new();
    let demo = root().join("fixtures/demo");
    let plain = exported("files.airlock", &demo, &["--channel", "golden", "--expires", "30d"], dir.path());
    for (file, bytes) in bundle_files(&plain) {
        out.insert(format!("files{file}"), b3(&bytes));
    }
    let split = exported("split", &generated_tree(dir.path()), &["--split", "32KiB", "--parity", "1"], dir.path());
    for (file, bytes) in bundle_files(&split) {
        out.insert(format!("split/{file}"), b3(&bytes));
    }

    let registry = Registry::start(Faults::default());
    let work = dir.path().join("locks");
    fs::create_dir_all(&work).unwrap();
    fs::write(work.join("requirements.txt"), registry::requirements_txt()).unwrap();
    fs::write(work.join("package-lock.json"), registry::package_lock_json(&registry.base)).unwrap();
    fs::write(work.join("Cargo.lock"), registry::cargo_lock()).unwrap();
    let bundle = dir.path().join("locks.airlock");
    export_lockfiles(&work, &registry.base, &dir.path().join("cache"), &key(dir.path()), &bundle)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .assert()
        .success();
    let (payload, segments, frame) = manifest_and_frame(&fs::read(&bundle).unwrap());
    let normalised = normalised_manifest(&payload, &segments, &registry.base, "http://registry");
    out.insert("lockfiles manifest (registry address replaced)".into(), b3(&normalised));
    out.insert("lockfiles blob frame".into(), b3(&frame));
    out
}

#[test]
fn exports_are_byte_for_byte_what_they_were() {
    let expected_path = root().join("fixtures/golden/expected.txt");
    let made = digests().iter().fold(String::new(), |mut text, (name, digest)| {
        let _ = writeln!(text, "{digest}  {name}");
        text
    });
    if std::env::var_os("AIRLOCK_UPDATE_GOLDEN").is_some() {
        fs::write(&expected_path, &made).unwrap();
        return;
    }
    let expected = fs::read_to_string(&expected_path).unwrap();
    assert_eq!(
        made, expected,
        "the exporter's bytes changed; if that is intended, run AIRLOCK_UPDATE_GOLDEN=1 cargo test --test golden and say why in the commit"
    );
}
