//! The attack classes of software update systems (the TUF literature's list,
//! applied to bundles and an offline mirror), one named test per class.
//! Each builds the hostile bundle the way an attacker would — bytes changed,
//! parts of bundles combined, re-signed with the keys the attack has — and
//! checks, through the binary, the exit code, the one-line error, and that
//! the mirror did not change. Where an attack needs a signature the site
//! trusts, it models an exporter that was fooled (or one key of several
//! stolen), so the check under test is the only thing standing in the way.
//!
//! Elsewhere: every single-bit flip and every truncation (tests/tamper.rs),
//! forks and gaps (tests/sync.rs), killed imports (tests/crash.rs).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use airlock::id::ContentId;
use airlock::manifest::Manifest;
use airlock::sign::SecretKey;
use common::hostile;
use common::registry::{self, Faults, Registry};
use common::{airlock, one_line, snapshot, write_tree};
use serde_json::Value;

/// A disconnected site: the exporter's key (trusted here), the channel
/// state on the connected side, and a mirror holding the channel's first bundle.
struct Site {
    dir: tempfile::TempDir,
    key: SecretKey,
    key_file: PathBuf,
    public: PathBuf,
    state: PathBuf,
    mirror: PathBuf,
}

const FIRST: &[(&str, &[u8])] = &[("notes.txt", b"first notes\n"), ("tool.bin", b"the genuine tool, version 1")];

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key_file, public) = common::keygen(dir.path(), "op");
        let key = SecretKey::load(&key_file).unwrap();
        let site =
            Site { state: dir.path().join("state"), mirror: dir.path().join("mirror"), dir, key, key_file, public };
        let first = site.export("first", FIRST);
        site.import(&first).success();
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The channel's next bundle of `files`, chained to the one before.
    fn export(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let input = self.path(&format!("{name}-in"));
        write_tree(&input, files);
        let out = self.path(&format!("{name}.airlock"));
        common::export_in_channel(&input, &[&self.key_file], &out, Some(&self.state));
        out
    }

    /// A bundle of `files` outside the channel's state (sequence 1 of its own history).
    fn export_alone(&self, name: &str, files: &[(&str, &[u8])], extra: &[&str]) -> PathBuf {
        let input = self.path(&format!("{name}-in"));
        write_tree(&input, files);
        let out = self.path(&format!("{name}.airlock"));
        common::export_files(&input, &self.key_file, &out).arg("--quiet").args(extra).assert().success();
        out
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn import(&self, bundle: &Path) -> assert_cmd::assert::Assert {
        self.import_with(bundle, &["--trust".as_ref(), self.public.as_os_str()])
    }

    fn import_with(&self, bundle: &Path, trust: &[&std::ffi::OsStr]) -> assert_cmd::assert::Assert {
        airlock().args(["import", "--quiet"]).arg(bundle).args(trust).arg("--mirror").arg(&self.mirror).assert()
    }

    /// Imports `bytes` as a bundle and checks it is refused with `code`, one
    /// line naming every part of `expect`, and the mirror exactly as before.
    fn refused(&self, name: &str, bytes: &[u8], code: i32, expect: &[&str]) -> String {
        let bundle = self.write(name, bytes);
        self.refused_file(&bundle, &["--trust".as_ref(), self.public.as_os_str()], code, expect)
    }

    fn refused_file(&self, bundle: &Path, trust: &[&std::ffi::OsStr], code: i32, expect: &[&str]) -> String {
        let before = snapshot(&self.mirror);
        let out = self.import_with(bundle, trust).code(code);
        let err = one_line(&out.get_output().stderr);
        for part in expect {
            assert!(err.contains(part), "{}: expected {part:?} in: {err}", bundle.display());
        }
        assert_eq!(snapshot(&self.mirror), before, "{}: the mirror changed", bundle.display());
        err
    }
}

fn stranger() -> SecretKey {
    SecretKey::generate().unwrap()
}

/// The envelope of `original` with its payload swapped for `payload` and
/// its signatures kept as they were (an attacker who cannot sign).
fn with_payload(original: &[u8], payload: Vec<u8>) -> Vec<u8> {
    use coset::TaggedCborSerializable;
    let mut sign = coset::CoseSign::from_tagged_slice(original).unwrap();
    sign.payload = Some(payload);
    sign.to_tagged_vec().unwrap()
}

#[test]
fn arbitrary_package_a_replaced_blob_is_refused_re_signed_by_an_untrusted_key_or_not() {
    let site = Site::new();
    let genuine =
        site.export("second", &[("notes.txt", b"second notes\n"), ("tool.bin", b"the genuine tool, version 2")]);
    let p = hostile::open(&genuine);
    let tool = p.manifest.entries.iter().find(|e| e.path.as_str() == "tool.bin").unwrap().clone();
    let evil: &[u8] = b"the EVIL tool, version 6666";
    assert_eq!(evil.len() as u64, tool.size, "same size, so only the content differs");

    // Not re-signed: the blob's bytes replaced under its old name.
    let mut blobs = p.blobs.clone();
    blobs.insert(tool.blob, evil.to_vec());
    let carried: Vec<(ContentId, &[u8])> = p.manifest.blobs.iter().map(|b| (b.id, blobs[&b.id].as_slice())).collect();
    let frame = hostile::blob_frame(&carried);
    site.refused(
        "replaced.airlock",
        &hostile::assemble(&p.envelope, &frame, &p.seal),
        1,
        &["digest mismatch", &format!("blob {} hashes to {}", tool.blob.short(), ContentId::of(evil).short())],
    );

    // The manifest rewritten to name the new blob, signed and sealed by a key the site does not trust.
    let mut manifest = p.manifest.clone();
    let evil_id = ContentId::of(evil);
    for b in manifest.blobs.iter_mut().filter(|b| b.id == tool.blob) {
        b.id = evil_id;
    }
    for e in manifest.entries.decoded_mut().iter_mut().filter(|e| e.blob == tool.blob) {
        e.blob = evil_id;
    }
    blobs.insert(evil_id, evil.to_vec());
    let mallory = stranger();
    let resigned = hostile::rebuild(&manifest, &blobs, &[&mallory], &[&mallory]);
    site.refused("resigned.airlock", &resigned, 1, &["signed by 0 trusted key(s), the policy requires 1"]);

    // The same rewritten manifest under the genuine signatures (not re-signed).
    let payload = hostile::payload_of(&manifest);
    let carried: Vec<(ContentId, &[u8])> = manifest.blobs.iter().map(|b| (b.id, blobs[&b.id].as_slice())).collect();
    let frame = hostile::blob_frame(&carried);
    let unsigned = hostile::assemble(&with_payload(&p.envelope, payload), &frame, &p.seal);
    site.refused("unsigned.airlock", &unsigned, 1, &["bad signature", "does not match the manifest"]);

    // The genuine bundle still imports.
    site.import(&genuine).success();
    assert_eq!(fs::read(site.mirror.join("files/tool.bin")).unwrap(), b"the genuine tool, version 2");
}

/// A bundle of the fake registry's packages (PyPI, npm, crates), exported by the site's key.
fn registry_bundle(site: &Site, faults: Faults, name: &str) -> PathBuf {
    let registry = Registry::start(faults);
    let root = site.path(&format!("{name}-locks"));
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("requirements.txt"), registry::requirements_txt()).unwrap();
    fs::write(root.join("package-lock.json"), registry::package_lock_json(&registry.base)).unwrap();
    fs::write(root.join("Cargo.lock"), registry::cargo_lock()).unwrap();
    let out = site.path(&format!("{name}.airlock"));
    common::export_lockfiles(&root, &registry.base, &site.path("cache"), &site.key_file, &out)
        .args(["--channel", "deps"])
        .assert()
        .success();
    out
}

fn entry_index(manifest: &Manifest, ecosystem: &str, name: &str) -> usize {
    manifest.entries.iter().position(|e| e.ecosystem == ecosystem && e.name == name).unwrap()
}

/// Entry `to` becomes entry `from`'s artifact (blob, size, digests, evidence)
/// under `to`'s own name, version and path.
fn serve_as(manifest: &mut Manifest, from: usize, to: usize) {
    let source = manifest.entries.decoded_mut()[from].clone();
    let target = &mut manifest.entries.decoded_mut()[to];
    target.blob = source.blob;
    target.size = source.size;
    target.digests = source.digests;
    target.evidence = source.evidence;
    target.missing = source.missing;
    hostile::prune_blobs(manifest);
}

#[test]
fn wrong_software_a_genuine_signed_artifact_served_under_another_packages_name_is_refused() {
    let site = Site::new();
    let genuine = registry_bundle(&site, Faults::default(), "deps");
    let p = hostile::open(&genuine);
    // The exporter was fooled by a proxy, so these carry the site's own signature.
    let signed = |m: &Manifest| hostile::rebuild(m, &p.blobs, &[&site.key], &[&site.key]);

    // tinycrate 0.1.0 served as the genuine tinyhelper 0.2.0 crate with its genuine index line.
    let mut m = p.manifest.clone();
    let (helper, krate) = (entry_index(&m, "cargo", "tinyhelper"), entry_index(&m, "cargo", "tinycrate"));
    serve_as(&mut m, helper, krate);
    site.refused(
        "crate.airlock",
        &signed(&m),
        1,
        &["cargo entry tinycrate", "carries the registry index entry of tinyhelper 0.2.0, not its own"],
    );

    // tinylib 1.0.0 served as the genuine scoped package, with its registry metadata and signatures.
    let mut m = p.manifest.clone();
    let (scoped, tinylib) = (entry_index(&m, "npm", "@airlock-test/scoped"), entry_index(&m, "npm", "tinylib"));
    serve_as(&mut m, scoped, tinylib);
    site.refused(
        "npm.airlock",
        &signed(&m),
        1,
        &["npm entry tinylib", "registry metadata of @airlock-test/scoped@2.1.0, not its own"],
    );

    // Another project's file listed under tinyapp.
    let mut m = p.manifest.clone();
    let other = m.entries.iter().position(|e| e.name == "sdistonly").unwrap();
    let tinyapp = entry_index(&m, "pypi", "tinyapp");
    serve_as(&mut m, other, tinyapp);
    let mut value = hostile::manifest_value(&m);
    hostile::set_entry_text(&mut value, tinyapp, "path", &format!("tinyapp/{}", registry::SDIST_ONLY));
    let m: Manifest = ciborium::Value::deserialized(&value).unwrap();
    site.refused("pypi.airlock", &signed(&m), 1, &["pypi entry tinyapp", "is not a file of project tinyapp"]);

    // With the registry's keys pinned, tinylib's genuine registry signature does not vouch for another package.
    let mut m = p.manifest.clone();
    let (tinylib, scoped) = (entry_index(&m, "npm", "tinylib"), entry_index(&m, "npm", "@airlock-test/scoped"));
    let theirs = m.entries.decoded_mut()[tinylib].evidence.iter().find(|e| e.kind == "npm-signatures").unwrap().clone();
    for evidence in m.entries.decoded_mut()[scoped].evidence.iter_mut().filter(|e| e.kind == "npm-signatures") {
        *evidence = theirs.clone();
    }
    let policy = pinned_npm_policy(&site, "");
    let bundle = site.write("npm-signature.airlock", &signed(&m));
    site.refused_file(
        &bundle,
        &["--policy".as_ref(), policy.as_os_str()],
        1,
        &[
            "npm @airlock-test/scoped@2.1.0: the npm registry signature does not verify",
            "does not match @airlock-test/scoped@2.1.0:sha512-",
        ],
    );

    site.import(&genuine).success();
}

/// A policy trusting the site's key and pinning the fake registry's npm keys, plus `rules`.
fn pinned_npm_policy(site: &Site, rules: &str) -> PathBuf {
    fs::write(site.path("npm-keys.json"), registry::npm_keys_json(None)).unwrap();
    let policy = site.path("policy.toml");
    fs::write(
        &policy,
        format!(
            "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n[npm]\nregistry-keys = \"npm-keys.json\"\n{rules}"
        ),
    )
    .unwrap();
    policy
}

#[test]
fn fast_forward_a_sequence_far_ahead_is_refused_and_the_real_next_bundle_still_imports() {
    let site = Site::new();
    // The real next bundle: incremental (tool.bin is unchanged, so not carried).
    let next = site.export("second", &[("notes.txt", b"second notes\n"), ("tool.bin", FIRST[1].1)]);
    let p = hostile::open(&next);
    assert!(!p.manifest.is_full());

    // Far ahead, signed and sealed by a key the site does not trust.
    let mut m = p.manifest.clone();
    m.sequence = 1_000_000;
    let mallory = stranger();
    site.refused(
        "ahead-untrusted.airlock",
        &hostile::rebuild(&m, &p.blobs, &[&mallory], &[&mallory]),
        1,
        &["the policy requires 1"],
    );
    // Far ahead under the genuine signatures.
    let unsigned = hostile::assemble(&with_payload(&p.envelope, hostile::payload_of(&m)), &p.frame, &p.seal);
    site.refused("ahead-unsigned.airlock", &unsigned, 1, &["does not match the manifest"]);
    // Far ahead and signed by the exporter: an incremental bundle cannot skip bundles.
    site.refused(
        "ahead-gap.airlock",
        &hostile::rebuild(&m, &p.blobs, &[&site.key], &[&site.key]),
        1,
        &["gap: bundle 1000000 follows 1"],
    );
    // At the end of the range, where the next number would overflow.
    m.sequence = u64::MAX;
    site.refused(
        "ahead-max.airlock",
        &hostile::rebuild(&m, &p.blobs, &[&site.key], &[&site.key]),
        1,
        &["manifest fails its schema", "sequence 18446744073709551615 is outside"],
    );

    site.import(&next).success();
    assert_eq!(fs::read(site.mirror.join("files/notes.txt")).unwrap(), b"second notes\n");
}

#[test]
fn rollback_an_older_bundle_of_the_channel_is_refused() {
    let site = Site::new();
    let second = site.export("second", &[("notes.txt", b"second notes\n"), ("tool.bin", FIRST[1].1)]);
    site.import(&second).success();
    let third = site.export("third", &[("notes.txt", b"third notes\n"), ("tool.bin", b"tool 3")]);
    site.import(&third).success();

    // A bundle imported before, replayed.
    site.refused_file(
        &second,
        &["--trust".as_ref(), site.public.as_os_str()],
        1,
        &["channel default", "bundle 2 was imported before", "roll the mirror back"],
    );
    // An older bundle of the channel never imported here (another exporter history).
    let old = site.export_alone("old", &[("notes.txt", b"old notes\n")], &[]);
    site.refused_file(
        &old,
        &["--trust".as_ref(), site.public.as_os_str()],
        1,
        &["rollback: sequence 1 is older than the last imported, 3"],
    );
}

#[test]
fn indefinite_freeze_an_expired_bundle_is_refused() {
    let site = Site::new();
    let input = site.path("frozen-in");
    write_tree(&input, &[("notes.txt", b"notes from 2020\n")]);
    let frozen = site.path("frozen.airlock");
    // The channel's next bundle, made in 2020 and valid for a day.
    airlock()
        .env("SOURCE_DATE_EPOCH", "1600000000")
        .args(["export", "--quiet", "--expires", "1d", "--files"])
        .arg(&input)
        .arg("--key")
        .arg(&site.key_file)
        .arg("--state")
        .arg(&site.state)
        .arg("--out")
        .arg(&frozen)
        .assert()
        .success();
    site.refused_file(
        &frozen,
        &["--trust".as_ref(), site.public.as_os_str()],
        1,
        &["the bundle expired at 2020-09-14T12:26:40Z", "ask the exporter for a fresh bundle"],
    );
}

#[test]
fn endless_data_a_blob_larger_than_declared_is_refused() {
    let site = Site::new();
    let genuine = site.export("second", &[("notes.txt", b"second notes\n"), ("tool.bin", b"tool 2")]);
    let p = hostile::open(&genuine);
    let tool = p.manifest.blobs.iter().find(|b| b.size == 6).unwrap().clone();
    let notes = p.manifest.blobs.iter().find(|b| b.id != tool.id).unwrap().clone();
    let sealed =
        |frame: Vec<u8>| hostile::assemble(&p.envelope, &frame, &hostile::seal(&p.payload, &frame, &[&site.key]));

    // The member header declares a megabyte where the manifest says 6 bytes.
    let long = vec![b'x'; 1 << 20];
    let frame = hostile::compress(&hostile::tar_stream(&[
        (hostile::blob_header(&tool.id, long.len() as u64), &long),
        (hostile::blob_header(&notes.id, notes.size), &p.blobs[&notes.id]),
    ]));
    site.refused(
        "longer-header.airlock",
        &sealed(frame),
        1,
        &[&format!("blob {} is 1048576 bytes, the manifest says 6", tool.id.short())],
    );

    // The header is right, but the data goes on past the declared size.
    let mut data = p.blobs[&tool.id].clone();
    data.extend(vec![b'x'; 4096]);
    let mut stream = hostile::blob_header(&tool.id, tool.size).as_bytes().to_vec();
    stream.extend(&data);
    stream.extend(hostile::tar_stream(&[(hostile::blob_header(&notes.id, notes.size), &p.blobs[&notes.id])]));
    site.refused("longer-data.airlock", &sealed(hostile::compress(&stream)), 1, &["non-zero padding after a member"]);

    // A manifest the exporter signed that declares an exabyte: refused before
    // anything is written, for lack of room (exit 3, the machine's limit).
    let mut m = p.manifest.clone();
    let exabyte = 1u64 << 60;
    m.blobs.iter_mut().filter(|b| b.id == tool.id).for_each(|b| b.size = exabyte);
    m.entries.decoded_mut().iter_mut().filter(|e| e.blob == tool.id).for_each(|e| e.size = exabyte);
    let payload = hostile::payload_of(&m);
    let envelope = hostile::sign_manifest(&payload, &[&site.key]);
    let bytes = hostile::assemble(&envelope, &p.frame, &hostile::seal(&payload, &p.frame, &[&site.key]));
    site.refused("exabyte.airlock", &bytes, 3, &["bytes, the filesystem has", "free space on that filesystem"]);

    site.import(&genuine).success();
}

#[test]
fn endless_data_a_manifest_larger_than_declared_or_than_the_cap_is_refused() {
    let site = Site::new();
    let p = hostile::open(&site.export("second", &[("notes.txt", b"second")]));
    let genuine = hostile::assemble(&p.envelope, &p.frame, &p.seal);

    // Frame 1 declaring 4 GiB of content: refused before anything is allocated or read.
    let mut huge = genuine.clone();
    huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    site.refused("frame-cap.airlock", &huge, 1, &["a frame declares 4294967295 bytes, more than the cap"]);

    // The manifest member's header declares fewer bytes than the envelope that follows it.
    let mut member = Vec::new();
    let mut header =
        airlock::bundle::member_header(airlock::bundle::MANIFEST_MEMBER, p.envelope.len() as u64 - 100).unwrap();
    member.extend_from_slice(header.as_bytes());
    member.extend_from_slice(&p.envelope);
    member.resize(member.len().next_multiple_of(512), 0);
    let mut bytes = Vec::new();
    airlock::bundle::frame::write_raw(&mut bytes, &member).unwrap();
    bytes.extend(&p.frame);
    airlock::bundle::writer::write_seal(&mut bytes, &p.seal).unwrap();
    site.refused("member-longer.airlock", &bytes, 1, &["the manifest frame does not hold exactly its members"]);

    // The manifest member declaring more than the cap.
    header.set_size(1 << 40);
    header.set_cksum();
    member[..512].copy_from_slice(header.as_bytes());
    let mut bytes = Vec::new();
    airlock::bundle::frame::write_raw(&mut bytes, &member).unwrap();
    site.refused("member-cap.airlock", &bytes, 1, &["the manifest declares 1099511627776 bytes, more than the"]);
}

/// A zstd frame header (window 4 MiB, no content size) followed by `blocks`.
fn zstd_frame(blocks: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (22 - 10) << 3];
    frame.extend_from_slice(blocks);
    frame
}

/// A zstd block header: `last`, type (0 raw, 1 RLE), size.
fn block_header(last: bool, kind: u32, size: u32) -> [u8; 3] {
    let v = u32::from(last) | (kind << 1) | (size << 3);
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

#[test]
fn segments_that_are_not_the_ones_the_signed_root_names_are_refused() {
    let site = Site::new();
    let files: Vec<(String, Vec<u8>)> =
        (0..200).map(|i| (format!("f/{i:03}.txt"), format!("file {i}").into_bytes())).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let p = hostile::open(&site.export("second", &files));
    let segments = p.segments.clone().expect("export writes format 2");
    let with = |segments: Option<&[u8]>| hostile::assemble_with_segments(&p.envelope, segments, &p.frame, &p.seal);
    // A byte of an entry changed, the signature over the root intact.
    let mut changed = segments.clone();
    let at = segments.windows(9).position(|w| w == b"f/150.txt").unwrap();
    changed[at + 4] = b'9';
    site.refused(
        "segment-changed.airlock",
        &with(Some(&changed)),
        1,
        &["does not match its digest in the signed root"],
    );
    // A byte more, a byte less, none at all.
    let mut longer = segments.clone();
    longer.push(0x80);
    site.refused("segments-longer.airlock", &with(Some(&longer)), 1, &["the root names", "the bundle holds"]);
    site.refused("segments-shorter.airlock", &with(Some(&segments[1..])), 1, &["the root names"]);
    site.refused("segments-missing.airlock", &with(None), 1, &["no manifest.segments member"]);
    // Segments of another bundle's root under this one's signature.
    let other = hostile::open(&site.export_alone("other", &files[..100], &[]));
    site.refused("segments-swapped.airlock", &with(other.segments.as_deref()), 1, &["the root names"]);
    // Re-signed by the trusted key over a root naming segments in another order.
    let mut root: airlock::manifest::segments::Root = airlock::manifest::canonical::from_slice(&p.payload).unwrap();
    root.entries.swap(0, 1);
    let payload = airlock::manifest::canonical::to_vec(&root).unwrap();
    let bytes = hostile::assemble_with_segments(
        &hostile::sign_manifest(&payload, &[&site.key]),
        Some(&segments),
        &p.frame,
        &hostile::seal(&payload, &p.frame, &[&site.key]),
    );
    site.refused("segments-reordered.airlock", &bytes, 1, &["entry segment 1 of", "does not match its digest"]);
    // Re-signed over a root that leaves out a segment this site never
    // held (as an incremental bundle would), or one of an exabyte: refused
    // before anything is read or written.
    let resigned = |root: &airlock::manifest::segments::Root, segments: &[u8]| {
        let payload = airlock::manifest::canonical::to_vec(root).unwrap();
        hostile::assemble_with_segments(
            &hostile::sign_manifest(&payload, &[&site.key]),
            Some(segments),
            &p.frame,
            &hostile::seal(&payload, &p.frame, &[&site.key]),
        )
    };
    let mut root: airlock::manifest::segments::Root = airlock::manifest::canonical::from_slice(&p.payload).unwrap();
    let start: u64 = root.blobs.iter().map(|r| r.size).sum();
    let (start, end) = (start as usize, (start + root.entries[0].size) as usize);
    let without_first = [&segments[..start], &segments[end..]].concat();
    root.entries[0].carried = false;
    site.refused(
        "segment-left-out.airlock",
        &resigned(&root, &without_first),
        1,
        &["is not carried", "does not hold it"],
    );
    root.entries[0].size = 1 << 60;
    site.refused("segment-left-out-exabyte.airlock", &resigned(&root, &without_first), 1, &["manifest cap"]);
    // The genuine bundle still imports.
    let genuine = site.write("genuine.airlock", &with(Some(&segments)));
    site.import(&genuine).success();
}

#[test]
fn endless_data_a_zstd_decompression_bomb_is_refused_without_inflating_it() {
    let site = Site::new();
    let p = hostile::open(&site.export("second", &[("notes.txt", b"second notes\n")]));
    let blob = &p.manifest.blobs[0];
    let sealed = |frame: &[u8]| hostile::assemble(&p.envelope, frame, &hostile::seal(&p.payload, frame, &[&site.key]));

    // The genuine member, then 64 GiB of zeros: 2^19 RLE blocks of 128 KiB, 2 MiB compressed.
    let mut member = hostile::blob_header(&blob.id, blob.size).as_bytes().to_vec();
    member.extend(&p.blobs[&blob.id]);
    member.resize(member.len().next_multiple_of(512), 0);
    let mut blocks = block_header(false, 0, member.len() as u32).to_vec();
    blocks.extend(&member);
    let count = 1 << 19;
    for i in 0..count {
        blocks.extend(block_header(i + 1 == count, 1, 128 << 10));
        blocks.push(0);
    }
    let bomb = sealed(&zstd_frame(&blocks));
    assert!(bomb.len() < 3 << 20);
    let started = std::time::Instant::now();
    let bundle = site.write("bomb.airlock", &bomb);
    let (out, peak_kib, _) = hostile::run_measuring_memory(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("airlock"))
            .args(["import", "--quiet"])
            .arg(&bundle)
            .arg("--trust")
            .arg(&site.public)
            .arg("--mirror")
            .arg(&site.mirror),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out.stderr).contains("data after the end-of-archive marker"));
    assert!(started.elapsed().as_secs() < 20, "the bomb was inflated: {:?}", started.elapsed());
    assert!(peak_kib < 64 << 10, "peak RSS {peak_kib} KiB");

    // Frames that ask for a window or content size far beyond the 4 MiB the reader allows.
    for header in
        [vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3], vec![0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0]]
    {
        let mut frame = header;
        frame.extend(block_header(true, 1, 128 << 10));
        frame.push(0);
        site.refused("window.airlock", &sealed(&frame), 1, &["compressed stream is damaged", "too much memory"]);
    }
}

#[test]
fn endless_data_cbor_with_deep_nesting_or_huge_declared_lengths_is_refused() {
    let site = Site::new();
    let p = hostile::open(&site.export("second", &[("notes.txt", b"second notes\n")]));
    let frame_with = |envelope: &[u8]| hostile::assemble(envelope, &p.frame, &p.seal);

    // In the envelope, which is read before anything is trusted: tag 98, an
    // array of four, then the hostile item where the protected header goes.
    for (name, item, expect) in [
        ("deep", [vec![0x81u8; 1_000_000], vec![0]].concat(), "nested deeper than 8 levels"),
        ("wide", vec![0x9b, 0, 0, 0, 1, 0, 0, 0, 0], "declares 4294967296 items"),
        ("long", vec![0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "a string declares 9223372036854775807"),
        ("many", [vec![0x9a, 0x00, 0x40, 0x00, 0x00], vec![0x80; 4 << 20]].concat(), "more than 4096 data items"),
    ] {
        let envelope = [vec![0xd8, 0x62, 0x84], item].concat();
        let err = site.refused(
            &format!("envelope-{name}.airlock"),
            &frame_with(&envelope),
            1,
            &["signature envelope is not COSE_Sign", expect],
        );
        assert!(err.contains("malformed bundle"), "{err}");
    }

    // In the manifest, signed by the exporter (decoded only after the signature holds).
    for (name, payload, expect) in [
        ("deep", [vec![0x81u8; 100_000], vec![0]].concat(), "nested deeper than 16 levels"),
        ("long", vec![0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "a string declares"),
        ("wide", vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "too many entries"),
    ] {
        let envelope = hostile::sign_manifest(&payload, &[&site.key]);
        site.refused(
            &format!("manifest-{name}.airlock"),
            &frame_with(&envelope),
            1,
            &["manifest fails its schema", expect],
        );
    }
}

#[test]
fn mix_and_match_blobs_of_two_bundles_combined_are_refused() {
    let site = Site::new();
    let a = hostile::open(&site.export("a", &[("notes.txt", b"notes of a\n"), ("tool.bin", b"tool of a")]));
    let b = hostile::open(&site.export_alone("b", &[("other.txt", b"a file only b carries")], &[]));
    let b_blob = b.manifest.blobs[0].id;

    // A's blobs with one of B's added, resealed by the exporter: the volume must hold exactly A's blobs.
    let mut carried: Vec<(ContentId, &[u8])> =
        a.manifest.blobs.iter().map(|x| (x.id, a.blobs[&x.id].as_slice())).collect();
    carried.insert(1, (b_blob, b.blobs[&b_blob].as_slice()));
    let frame = hostile::blob_frame(&carried);
    let mixed = hostile::assemble(&a.envelope, &frame, &hostile::seal(&a.payload, &frame, &[&site.key]));
    site.refused(
        "added.airlock",
        &mixed,
        1,
        &[&format!("unexpected archive member blob the manifest does not list for this volume: {}", b_blob.short())],
    );

    // One of A's blobs swapped for B's.
    carried.remove(0);
    let frame = hostile::blob_frame(&carried);
    let swapped = hostile::assemble(&a.envelope, &frame, &hostile::seal(&a.payload, &frame, &[&site.key]));
    site.refused("swapped.airlock", &swapped, 1, &["does not list for this volume"]);
}

#[test]
fn mix_and_match_a_manifest_with_the_volume_of_another_bundle_is_refused() {
    let site = Site::new();
    let files: &[(&str, &[u8])] = &[("notes.txt", b"the same notes\n"), ("tool.bin", b"the same tool")];
    let next = site.export("next", files);
    let a = hostile::open(&next);
    // Another bundle with the very same blobs (so frame 2 is byte for byte the same), another manifest.
    let b = hostile::open(&site.export_alone("other", files, &["--channel", "other"]));
    assert_eq!(a.frame, b.frame);
    assert_ne!(a.payload, b.payload);

    site.refused(
        "b-seal.airlock",
        &hostile::assemble(&a.envelope, &b.frame, &b.seal),
        1,
        &["the volume seal belongs to another bundle or volume"],
    );
    // B's volume under A's manifest, where the blobs differ too.
    let c = hostile::open(&site.export_alone("c", &[("c.txt", b"only in c")], &[]));
    site.refused(
        "c-volume.airlock",
        &hostile::assemble(&a.envelope, &c.frame, &c.seal),
        1,
        &["does not list for this volume"],
    );
    site.import(&next).success();
}

#[test]
fn extraneous_dependencies_a_blob_no_entry_needs_is_refused() {
    let site = Site::new();
    let genuine = site.export("second", &[("notes.txt", b"second notes\n")]);
    let p = hostile::open(&genuine);
    let extra: &[u8] = b"a payload nothing asked for";
    let extra_id = ContentId::of(extra);

    // Carried in the volume without being listed (resealed by the exporter).
    let mut carried: Vec<(ContentId, &[u8])> =
        p.manifest.blobs.iter().map(|b| (b.id, p.blobs[&b.id].as_slice())).collect();
    carried.push((extra_id, extra));
    let frame = hostile::blob_frame(&carried);
    let bytes = hostile::assemble(&p.envelope, &frame, &hostile::seal(&p.payload, &frame, &[&site.key]));
    site.refused("unlisted.airlock", &bytes, 1, &["does not list for this volume", &extra_id.short()]);

    // Listed in a signed manifest, but no entry points at it.
    let mut m = p.manifest.clone();
    m.blobs.push(airlock::manifest::Blob {
        id: extra_id,
        size: extra.len() as u64,
        volume: 0,
        carried: true,
        pieces: Vec::new(),
    });
    let mut blobs = p.blobs.clone();
    blobs.insert(extra_id, extra.to_vec());
    site.refused(
        "unused.airlock",
        &hostile::rebuild(&m, &blobs, &[&site.key], &[&site.key]),
        1,
        &["manifest fails its schema", &format!("blob {} is not needed by any entry", extra_id.short())],
    );
}

#[test]
fn extraneous_dependencies_an_entry_pointing_at_another_packages_blob_is_refused() {
    let site = Site::new();
    let genuine = registry_bundle(&site, Faults::default(), "deps");
    let p = hostile::open(&genuine);
    // tinylib's entry, with its own metadata and digests, pointing at tinycrate's blob.
    let mut m = p.manifest.clone();
    let (tinylib, tinycrate) = (entry_index(&m, "npm", "tinylib"), entry_index(&m, "cargo", "tinycrate"));
    m.entries.decoded_mut()[tinylib].blob = m.entries.decoded_mut()[tinycrate].blob;
    m.entries.decoded_mut()[tinylib].size = m.entries.decoded_mut()[tinycrate].size;
    hostile::prune_blobs(&mut m);
    let crate_blob = m.entries.decoded_mut()[tinycrate].blob;
    site.refused(
        "pointing.airlock",
        &hostile::rebuild(&m, &p.blobs, &[&site.key], &[&site.key]),
        1,
        &["digest mismatch", &format!("blob {}: upstream sha", crate_blob.short())],
    );
    site.import(&genuine).success();
}

#[test]
fn malicious_mirror_stripped_or_swapped_evidence_is_decided_by_the_policy_never_silently() {
    let site = Site::new();
    // A proxy on the connected side stripped signatures, attestations and provenance.
    let stripped = registry_bundle(&site, Faults { strip_evidence: true, ..Faults::default() }, "stripped");
    let policy = pinned_npm_policy(&site, "require = [\"npm-signatures\"]\n");
    site.refused_file(
        &stripped,
        &["--policy".as_ref(), policy.as_os_str()],
        1,
        &[
            "refused by policy",
            "the policy requires npm-signatures, which the bundle does not carry",
            "a proxy may have stripped it",
        ],
    );

    // A policy that accepts digest-only takes it, and the report says what was missing and where it was looked for.
    let out = airlock()
        .args(["import", "--json"])
        .arg(&stripped)
        .arg("--trust")
        .arg(&site.public)
        .arg("--mirror")
        .arg(&site.mirror)
        .assert()
        .success();
    let report: Value = common::json_report(&out.get_output().stdout);
    let packages = report["report"]["verified"]["packages"].as_array().unwrap();
    let tinylib = packages.iter().find(|p| p["name"] == "tinylib").unwrap();
    let provenance = tinylib["provenance"].as_str().unwrap();
    assert!(
        provenance.contains("no registry signature (looked for at ") && provenance.contains("/npm/tinylib"),
        "{provenance}"
    );

    // Swapped: the signatures of another version of the same package (here a
    // forged version string) carried with tinylib, judged against the pinned keys.
    let genuine = registry_bundle(&site, Faults::default(), "genuine");
    let p = hostile::open(&genuine);
    let mut m = p.manifest.clone();
    m.channel = "swapped".into();
    let tinylib = entry_index(&m, "npm", "tinylib");
    let signatures = m.entries.decoded_mut()[tinylib].evidence.iter_mut().find(|e| e.kind == "npm-signatures").unwrap();
    let mut list: Value = serde_json::from_slice(&signatures.data).unwrap();
    let sig = list[0]["sig"].as_str().unwrap().to_owned();
    let scoped = entry_index(&p.manifest, "npm", "@airlock-test/scoped");
    let other: Value = serde_json::from_slice(
        &p.manifest.entries.get(scoped).unwrap().evidence.iter().find(|e| e.kind == "npm-signatures").unwrap().data,
    )
    .unwrap();
    assert_ne!(sig, other[0]["sig"]);
    list[0]["sig"] = other[0]["sig"].clone();
    signatures.data = serde_json::to_vec(&list).unwrap();
    let swapped = site.write("swapped.airlock", &hostile::rebuild(&m, &p.blobs, &[&site.key], &[&site.key]));
    let policy = pinned_npm_policy(&site, "");
    site.refused_file(
        &swapped,
        &["--policy".as_ref(), policy.as_os_str()],
        1,
        &["npm tinylib@1.0.0: the npm registry signature does not verify"],
    );
}

/// A member header like airlock's, changed by `edit`, then re-checksummed.
/// Names are written as raw bytes: the tar crate refuses to write `..` or absolute names.
fn header(name: &str, size: u64, edit: impl FnOnce(&mut tar::Header)) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    edit(&mut h);
    h.set_cksum();
    h
}

/// Writes a link name as raw bytes (the tar crate refuses absolute ones).
fn set_link(h: &mut tar::Header, target: &str) {
    h.as_mut_bytes()[157..157 + target.len()].copy_from_slice(target.as_bytes());
}

/// A hostile member header, as `case` names it: its name, size and header.
fn hostile_member(case: &str, blob: &str, blob_size: u64, escape: &Path) -> (String, u64, tar::Header) {
    let (name, size) = match case {
        "directory" => ("blobs/".to_owned(), 0),
        "long-name" => ("././@LongLink".to_owned(), 100),
        "pax" => (blob.to_owned(), 30),
        "absolute" => (escape.display().to_string(), blob_size),
        "dotdot" => (format!("blobs/../../../../../../../..{}", escape.display()), blob_size),
        "setuid" => (blob.to_owned(), blob_size),
        _ => (blob.to_owned(), 0),
    };
    let h = header(&name, size, |h| match case {
        "symlink" => {
            h.set_entry_type(tar::EntryType::Symlink);
            set_link(h, "/etc/passwd");
        }
        "hardlink" => {
            h.set_entry_type(tar::EntryType::Link);
            set_link(h, "/etc/shadow");
        }
        "char-device" => {
            h.set_entry_type(tar::EntryType::Char);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        "block-device" => h.set_entry_type(tar::EntryType::Block),
        "fifo" => h.set_entry_type(tar::EntryType::Fifo),
        "directory" => h.set_entry_type(tar::EntryType::Directory),
        "long-name" => h.set_entry_type(tar::EntryType::GNULongName),
        "pax" => h.set_entry_type(tar::EntryType::XHeader),
        "setuid" => h.set_mode(0o4755),
        _ => {}
    });
    (name, size, h)
}

#[test]
fn wrong_type_members_links_devices_and_escaping_names_are_refused() {
    let site = Site::new();
    let genuine = site.export("second", &[("notes.txt", b"second notes\n"), ("tool.bin", b"tool 2")]);
    let p = hostile::open(&genuine);
    let first = &p.manifest.blobs[0];
    let blob = format!("blobs/{}", first.id.to_hex());
    let escape = site.path("escaped");
    let non_file = "a link, device or other non-file member";
    let odd = "a member with an unexpected name or header";
    for (case, expect) in [
        ("symlink", non_file),
        ("hardlink", non_file),
        ("char-device", non_file),
        ("block-device", non_file),
        ("fifo", non_file),
        ("directory", non_file),
        ("long-name", non_file),
        ("pax", non_file),
        ("absolute", odd),
        ("dotdot", odd),
        ("setuid", odd),
    ] {
        let (member, len, h) = hostile_member(case, &blob, first.size, &escape);
        let data = vec![b'A'; len as usize];
        let frame = hostile::compress(&hostile::tar_stream(&[(h, &data)]));
        let bytes = hostile::assemble(&p.envelope, &frame, &hostile::seal(&p.payload, &frame, &[&site.key]));
        let err = site.refused(&format!("{case}.airlock"), &bytes, 1, &["unexpected archive member", expect]);
        assert!(err.contains(&format!("{member:?}")), "{case}: {err}");
        assert!(!escape.exists(), "{case} wrote outside the mirror");
    }

    // Entry paths that would leave the mirror's tree, in a manifest the exporter signed.
    for (case, path, expect) in [
        ("entry-dotdot", "../../escaped", "has a \"..\" component"),
        ("entry-absolute", "/etc/cron.d/airlock", "absolute path"),
    ] {
        let mut value = hostile::manifest_value(&p.manifest);
        hostile::set_entry_text(&mut value, 0, "path", path);
        hostile::set_entry_text(&mut value, 0, "name", path);
        let payload = airlock::manifest::canonical::to_vec(&value).unwrap();
        let bytes = hostile::rebuild_payload(&payload, &p.manifest, &p.blobs, &[&site.key], &[&site.key]);
        site.refused(&format!("{case}.airlock"), &bytes, 1, &["manifest fails its schema", expect]);
    }
    site.import(&genuine).success();
}

#[test]
fn wrong_type_members_names_differing_only_by_case_or_unicode_normalisation_are_refused() {
    let site = Site::new();
    let genuine = site.export("second", &[("notes.txt", b"second notes\n"), ("docs/caf\u{e9}.txt", b"composed")]);
    let p = hostile::open(&genuine);
    let signed = |m: &Manifest| hostile::rebuild(m, &p.blobs, &[&site.key], &[&site.key]);
    let rename = |from: &str, to: &str| {
        let mut m = p.manifest.clone();
        let mut value = hostile::manifest_value(&m);
        let index = m.entries.iter().position(|e| e.path.as_str() == from).unwrap();
        hostile::set_entry_text(&mut value, index, "path", to);
        hostile::set_entry_text(&mut value, index, "name", to);
        m = ciborium::Value::deserialized(&value).unwrap();
        m.entries.decoded_mut().sort_by(|a, b| a.path.cmp(&b.path));
        m
    };
    // Within one bundle: two files that differ only by case, or only by
    // normalisation (café composed and decomposed), or folders that differ by case.
    for (case, from, to, clash) in [
        ("case", "docs/caf\u{e9}.txt", "NOTES.txt", "files/NOTES.txt and files/notes.txt differ only by case"),
        ("nfd", "notes.txt", "docs/cafe\u{301}.txt", "differ only by case or Unicode normalisation"),
        ("folder", "notes.txt", "Docs/x.txt", "files/Docs and files/docs differ only by case"),
    ] {
        site.refused(&format!("{case}.airlock"), &signed(&rename(from, to)), 1, &["manifest fails its schema", clash]);
    }

    // Across bundles: another channel brings README where the mirror has notes.txt's twin.
    let twin = site.export_alone("twin", &[("Notes.TXT", b"another channel's notes")], &["--channel", "other"]);
    site.refused_file(
        &twin,
        &["--trust".as_ref(), site.public.as_os_str()],
        1,
        &["files/notes.txt and files/Notes.TXT differ only by case", "the mirror already holds one of them"],
    );
    site.import(&genuine).success();
}

#[test]
fn key_compromise_below_threshold_one_stolen_key_of_two_is_not_enough() {
    let site = Site::new();
    let (bob_file, bob_public) = common::keygen(site.dir.path(), "bob");
    let bob = SecretKey::load(&bob_file).unwrap();
    let policy = site.path("two.toml");
    fs::write(
        &policy,
        "version = 1\nthreshold = 2\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n[[keys]]\nname = \"bob\"\nfile = \"bob.pub\"\n",
    )
    .unwrap();
    assert!(bob_public.is_file());
    let trust: &[&std::ffi::OsStr] = &["--policy".as_ref(), policy.as_os_str()];

    let genuine = site.export("second", &[("notes.txt", b"second notes\n"), ("tool.bin", b"tool 2")]);
    let p = hostile::open(&genuine);
    let mut m = p.manifest.clone();
    let evil: &[u8] = b"evil tool";
    let evil_id = ContentId::of(evil);
    let tool = m.entries.iter().position(|e| e.path.as_str() == "tool.bin").unwrap();
    m.entries.decoded_mut()[tool].blob = evil_id;
    m.entries.decoded_mut()[tool].size = evil.len() as u64;
    m.blobs.push(airlock::manifest::Blob {
        id: evil_id,
        size: evil.len() as u64,
        volume: 0,
        carried: true,
        pieces: Vec::new(),
    });
    hostile::prune_blobs(&mut m);
    let mut blobs = p.blobs.clone();
    blobs.insert(evil_id, evil.to_vec());

    // The attacker holds the exporter's key only: one signature, or the same key twice.
    let k = &site.key;
    for (case, keys) in [("one", vec![k]), ("twice", vec![k, k])] {
        let bytes = site.write(&format!("{case}.airlock"), &hostile::rebuild(&m, &blobs, &keys, &keys));
        site.refused_file(&bytes, trust, 1, &["signed by 1 trusted key(s), the policy requires 2"]);
    }

    // A second signature claiming Bob's key id, made with the attacker's own key.
    let payload = hostile::payload_of(&m);
    let forged = forge_cosignature(&hostile::sign_manifest(&payload, &[k]), &bob);
    let carried: Vec<(ContentId, &[u8])> = m.blobs.iter().map(|b| (b.id, blobs[&b.id].as_slice())).collect();
    let frame = hostile::blob_frame(&carried);
    let bytes = hostile::assemble(&forged, &frame, &hostile::seal(&payload, &frame, &[k, &bob]));
    let bundle = site.write("forged.airlock", &bytes);
    site.refused_file(
        &bundle,
        trust,
        1,
        &[
            "bad signature",
            &format!("the signature by trusted key {} does not match the manifest", bob.public().id().short()),
        ],
    );

    // With both operators the genuine bundle imports.
    let both = site.write("both.airlock", &hostile::rebuild(&p.manifest, &p.blobs, &[k, &bob], &[k, &bob]));
    site.import_with(&both, trust).success();
}

/// Adds a signature that names `claimed`'s key id but is made with another key.
fn forge_cosignature(envelope: &[u8], claimed: &SecretKey) -> Vec<u8> {
    use coset::TaggedCborSerializable;
    use ed25519_dalek::ed25519::signature::Signer;
    let mut sign = coset::CoseSign::from_tagged_slice(envelope).unwrap();
    let protected = coset::HeaderBuilder::new()
        .algorithm(coset::iana::Algorithm::EdDSA)
        .key_id(claimed.public().id().0.to_vec())
        .build();
    let mut signature = coset::CoseSignatureBuilder::new().protected(protected).build();
    let tbs = sign.tbs_data(b"airlock bundle manifest v1", &signature);
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    signature.signature = attacker.sign(&tbs).to_bytes().to_vec();
    sign.signatures.push(signature);
    sign.to_tagged_vec().unwrap()
}

#[test]
fn slow_retrieval_a_registry_that_drips_bytes_is_timed_out_on_export() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let registry =
        Registry::start(Faults { drip: vec!["/cargo/dl/tinycrate/0.1.0/download".to_owned()], ..Faults::default() });
    fs::write(dir.path().join("Cargo.lock"), registry::cargo_lock()).unwrap();
    let out_file = dir.path().join("b.airlock");
    let started = std::time::Instant::now();
    let out = airlock()
        .env("HOME", dir.path())
        .args(["export", "--timeout", "3", "--retries", "0", "--cargo-lock"])
        .arg(dir.path().join("Cargo.lock"))
        .arg("--cargo-index")
        .arg(format!("{}/cargo/", registry.base))
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&out_file)
        .assert()
        .code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("tinycrate") && err.contains("below 1024 bytes/s"), "{err}");
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    assert!(!out_file.exists());
}
