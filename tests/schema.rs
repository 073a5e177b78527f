//! Outputs checked against schemas/ with code independent of the library:
//! the volume is opened with the zstd and tar crates, the COSE envelope is
//! taken apart with ciborium, and the payload is validated by the `cddl` crate.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;

use airlock::ecosystem::ManifestExt as _;
use ciborium::Value;

fn schema(name: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name)).unwrap()
}

/// The manifest payload of a bundle, extracted without airlock's reader.
fn manifest_payload(bundle: &Path) -> Vec<u8> {
    let decoder = zstd::stream::read::Decoder::new(fs::File::open(bundle).unwrap()).unwrap();
    let mut archive = tar::Archive::new(decoder);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("manifest.cose"));
    let mut envelope = Vec::new();
    entry.read_to_end(&mut envelope).unwrap();
    let Value::Tag(98, inner) = ciborium::from_reader::<Value, _>(&envelope[..]).unwrap() else {
        panic!("not a tagged COSE_Sign")
    };
    let Value::Array(parts) = *inner else { panic!("COSE_Sign is an array") };
    assert_eq!(parts.len(), 4);
    let Value::Bytes(payload) = &parts[2] else { panic!("payload is a byte string") };
    payload.clone()
}

fn validate_manifest(payload: &[u8]) -> Result<(), String> {
    cddl::validate_cbor_from_slice(&schema("manifest.cddl"), payload, None).map_err(|e| e.to_string())
}

/// The `manifest.segments` member of a bundle (format 2), read without airlock's reader.
fn segments_member(bundle: &Path) -> Vec<u8> {
    let decoder = zstd::stream::read::Decoder::new(fs::File::open(bundle).unwrap()).unwrap();
    let mut archive = tar::Archive::new(decoder);
    let mut entry = archive.entries().unwrap().nth(1).unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("manifest.segments"));
    let mut segments = Vec::new();
    entry.read_to_end(&mut segments).unwrap();
    segments
}

fn field<'v>(map: &'v Value, name: &str) -> &'v Value {
    let Value::Map(fields) = map else { panic!("not a map") };
    &fields.iter().find(|(k, _)| k.as_text() == Some(name)).unwrap_or_else(|| panic!("no {name}")).1
}

/// The segments a root names, cut from `segments` by the sizes the root
/// gives: (blob segments, entry segments), each checked against its BLAKE3.
fn cut_segments(root: &[u8], segments: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let root: Value = ciborium::from_reader(root).unwrap();
    let mut at = 0;
    let mut cut = |list: &str| -> Vec<Vec<u8>> {
        let Value::Array(refs) = field(&root, list) else { panic!("{list} is an array") };
        refs.iter()
            .map(|r| {
                let size = usize::try_from(field(r, "size").as_integer().unwrap()).unwrap();
                let bytes = segments[at..at + size].to_vec();
                at += size;
                let Value::Bytes(id) = field(r, "id") else { panic!("id is bytes") };
                assert_eq!(id.as_slice(), blake3::hash(&bytes).as_bytes(), "segment digest");
                bytes
            })
            .collect()
    };
    let blobs = cut("blobs");
    let entries = cut("entries");
    assert_eq!(at, segments.len(), "the root names every byte of the segments");
    (blobs, entries)
}

/// Validates `bytes` against the schema's rule `rule`.
fn validate_rule(rule: &str, bytes: &[u8]) -> Result<(), String> {
    let rooted = format!("root = {rule}\n{}", schema("manifest.cddl"));
    cddl::validate_cbor_from_slice(&rooted, bytes, None).map_err(|e| e.to_string())
}

/// A format 2 bundle's root and every segment against the schema.
fn validate_bundle(bundle: &Path) {
    let root = manifest_payload(bundle);
    validate_manifest(&root).unwrap();
    validate_rule("manifest-root", &root).unwrap();
    let (blobs, entries) = cut_segments(&root, &segments_member(bundle));
    assert!(!entries.is_empty());
    for segment in &blobs {
        validate_rule("blob-segment", segment).unwrap();
    }
    for segment in &entries {
        validate_rule("entry-segment", segment).unwrap();
        assert!(validate_rule("blob-segment", segment).is_err());
    }
}

#[test]
fn exported_manifests_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    common::sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    validate_bundle(&bundle);

    // The demo's manifest too.
    let demo = dir.path().join("demo");
    common::airlock().args(["demo", "--quiet", "--dir"]).arg(&demo).assert().success();
    validate_bundle(&demo.join("transfer/demo.airlock"));

    // Format 1, as earlier bundles have it: a vector of the corpus.
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vectors");
    let old = manifest_payload(&vectors.join("channel-a-goods.airlock"));
    assert_eq!(field(&ciborium::from_reader::<Value, _>(&old[..]).unwrap(), "format").as_integer(), Some(1.into()));
    validate_manifest(&old).unwrap();
    validate_rule("manifest", &old).unwrap();
    assert!(validate_rule("manifest-root", &old).is_err());
}

#[test]
fn the_schema_rejects_what_the_verifier_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    common::sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let payload = manifest_payload(&bundle);
    let Value::Map(mut fields) = ciborium::from_reader::<Value, _>(&payload[..]).unwrap() else { panic!() };
    // A manifest without its channel is not a manifest.
    fields.retain(|(k, _)| k.as_text() != Some("channel"));
    let mut broken = Vec::new();
    ciborium::into_writer(&Value::Map(fields), &mut broken).unwrap();
    assert!(validate_manifest(&broken).is_err());
}

#[test]
fn times_after_the_year_9999_fail_the_schema_as_they_fail_the_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    common::sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let payload = manifest_payload(&bundle);
    let Value::Map(fields) = ciborium::from_reader::<Value, _>(&payload[..]).unwrap() else { panic!() };
    let with_expiry = |expires: u64| {
        let mut fields = fields.clone();
        for (k, v) in &mut fields {
            if k.as_text() == Some("expires") {
                *v = Value::from(expires);
            }
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&Value::Map(fields), &mut bytes).unwrap();
        bytes
    };
    // 9999-12-31T23:59:59Z is the last time; a second later is the year 10000.
    validate_manifest(&with_expiry(253_402_300_799)).unwrap();
    assert!(validate_manifest(&with_expiry(253_402_300_800)).is_err());
    let segments = segments_member(&bundle);
    let refused = airlock::manifest::Manifest::decode(
        &with_expiry(253_402_300_800),
        Some(&segments),
        &airlock::manifest::segments::NoSegments,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("after 9999-12-31T23:59:59Z"), "{refused}");
}

#[test]
fn policy_files_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = common::keygen(dir.path(), "op");
    let key_line = fs::read_to_string(&public).unwrap().lines().last().unwrap().to_owned();
    let policy = format!(
        "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\npublic = \"{key_line}\"\n[[keys]]\nname = \"file\"\nfile = \"op.pub\"\n"
    );
    let as_json = |text: &str| serde_json::to_string(&toml::from_str::<serde_json::Value>(text).unwrap()).unwrap();
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&policy), None).unwrap();
    // Every rule the policy knows, as the README documents it; airlock loads it too.
    fs::copy(common::registry::fixture("upstream/trusted_root.json"), dir.path().join("trusted_root.json")).unwrap();
    fs::copy(common::registry::fixture("upstream/registry-keys.json"), dir.path().join("npm-keys.json")).unwrap();
    let keyring = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian/debian-archive-keyring.gpg");
    fs::copy(keyring, dir.path().join("debian-archive-keyring.gpg")).unwrap();
    let full = format!(
        "{policy}[sigstore]\ntrusted-root = \"trusted_root.json\"\n\
         [npm]\nrequire = [\"npm-signatures\", \"npm-attestations\"]\nregistry-keys = \"npm-keys.json\"\n\
         [[npm.publishers]]\npackages = [\"@corp/*\"]\nrepository = \"https://github.com/corp/tools\"\n\
         workflow = \".github/workflows/release.yml\"\nissuer = \"https://token.actions.githubusercontent.com\"\n\
         [npm.names]\ndeny = [\"event-stream\"]\nprivate = [\"@corp/*\"]\nprivate-sources = [\"https://npm.corp.example/\"]\n\
         protect = [\"react\"]\nreviewed = [\"preact\"]\n[pypi]\nrequire = [\"pypi-provenance\"]\n[pypi.names]\nallow = [\"*\"]\n\
         [debian]\nkeyring = \"debian-archive-keyring.gpg\"\nvalid-until-grace = \"14d\"\n\
         [oci]\nrequire = [\"cosign-signature\"]\n[[oci.signers]]\nimages = [\"ghcr.io/org/*\"]\n\
         repository = \"https://github.com/org/app\"\nworkflow = \".github/workflows/release.yml\"\n\
         issuer = \"https://token.actions.githubusercontent.com\"\n\
         [[channels]]\nname = \"pypi-weekly\"\nkeys = [\"op\"]\nthreshold = 1\n"
    );
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&full), None).unwrap();
    // (The schema example lists one key twice, inline and by file; the loader refuses that.)
    let loadable = full.replace("[[keys]]\nname = \"file\"\nfile = \"op.pub\"\n", "");
    fs::write(dir.path().join("policy.toml"), &loadable).unwrap();
    airlock::trust::load_policy(&dir.path().join("policy.toml")).unwrap();
    let bad = "version = 1\nthreshold = 0\nkeys = []\n";
    assert!(cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(bad), None).is_err());
    // Channels by name alone, and a channel rule without its threshold.
    let names = policy.replace("threshold = 1\n", "threshold = 1\nchannels = [\"weekly\", \"urgent\"]\n");
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&names), None).unwrap();
    let unbounded = format!("{policy}[[channels]]\nname = \"weekly\"\nkeys = [\"op\"]\n");
    assert!(cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&unbounded), None).is_err());
}

/// The member after the manifest's two in a volume of a split bundle: `volume.cbor`.
fn volume_info(volume: &Path) -> Vec<u8> {
    let decoder = zstd::stream::read::Decoder::new(fs::File::open(volume).unwrap()).unwrap();
    let mut archive = tar::Archive::new(decoder);
    let mut entry = archive.entries().unwrap().nth(2).unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("volume.cbor"));
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn split_volumes_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    let noise: Vec<u8> = (0..30_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    common::write_tree(&input, &[("a.bin", &noise), ("b.bin", &noise[1..]), ("c.bin", &noise[2..])]);
    let bundle = dir.path().join("b.airlock");
    common::export_files(&input, &key, &bundle)
        .args(["--quiet", "--split", "48KiB", "--parity", "1"])
        .assert()
        .success();
    // The volume-info rule as the root of the schema.
    let info_schema = format!("root = volume-info\n{}", schema("manifest.cddl"));
    let mut parity_seen = false;
    for entry in fs::read_dir(&bundle).unwrap() {
        let volume = entry.unwrap().path();
        let payload = manifest_payload(&volume);
        validate_manifest(&payload).unwrap();
        let Value::Map(fields) = ciborium::from_reader::<Value, _>(&payload[..]).unwrap() else { panic!() };
        assert!(fields.iter().any(|(k, v)| k.as_text() == Some("parity") && *v == Value::from(1)));
        let info = volume_info(&volume);
        cddl::validate_cbor_from_slice(&info_schema, &info, None).unwrap();
        parity_seen |= volume.file_name().unwrap().to_str().unwrap().starts_with("parity");
    }
    assert!(parity_seen);
    // A volume index that is not a number is not a volume-info.
    let mut broken = Vec::new();
    ciborium::into_writer(&Value::Map(vec![("volume".into(), "one".into())]), &mut broken).unwrap();
    assert!(cddl::validate_cbor_from_slice(&info_schema, &broken, None).is_err());
}

#[test]
fn serials_revocations_and_statements_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = common::keygen(dir.path(), "op");
    let text = fs::read_to_string(&public).unwrap();
    let key_id = text.lines().next().unwrap().strip_prefix("# airlock public key ").unwrap().to_owned();
    let key_line = text.lines().last().unwrap().to_owned();
    let as_json = |text: &str| serde_json::to_string(&toml::from_str::<serde_json::Value>(text).unwrap()).unwrap();
    let policy = format!(
        "version = 1\nserial = 2\nthreshold = 1\nrevoked = [\"{}\"]\n[[keys]]\nname = \"op\"\npublic = \"{key_line}\"\n",
        "ab".repeat(16)
    );
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&policy), None).unwrap();
    // The 16 hex digits airlock prints are accepted too; other lengths are not.
    let short_id = policy.replace(&"ab".repeat(16), &key_id[..16]);
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&short_id), None).unwrap();
    let odd_id = policy.replace(&"ab".repeat(16), &key_id[..20]);
    assert!(cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&odd_id), None).is_err());

    // What `airlock policy sign` signs is the file's text; taken out of the
    // envelope with ciborium, it is a statement-policy.
    let source = dir.path().join("next.toml");
    fs::write(&source, &policy).unwrap();
    let statement = dir.path().join("next.statement");
    common::airlock()
        .args(["policy", "sign", "--quiet"])
        .arg(&source)
        .arg("--key")
        .arg(&secret)
        .arg("--out")
        .arg(&statement)
        .assert()
        .success();
    let Value::Tag(98, inner) = ciborium::from_reader::<Value, _>(&fs::read(&statement).unwrap()[..]).unwrap() else {
        panic!("not a tagged COSE_Sign")
    };
    let Value::Array(parts) = *inner else { panic!("COSE_Sign is an array") };
    assert_eq!(parts[2], Value::Bytes(policy.clone().into_bytes()));
    let statement_schema = format!("statement = statement-policy\n{}", schema("policy.cddl"));
    cddl::validate_json_from_str(&statement_schema, &as_json(&policy), None).unwrap();
    let by_file = policy.replace(&format!("public = \"{key_line}\""), "file = \"op.pub\"");
    // A policy file may name its key by file; a statement may not.
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&by_file), None).unwrap();
    assert!(cddl::validate_json_from_str(&statement_schema, &as_json(&by_file), None).is_err());
}

#[test]
fn chunked_blobs_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    let noise: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    common::write_tree(&input, &[("big.bin", &noise), ("small.txt", b"small")]);
    let bundle = dir.path().join("b.airlock");
    common::export_files(&input, &key, &bundle).args(["--quiet", "--split", "64KiB"]).assert().success();
    let volume = fs::read_dir(&bundle).unwrap().next().unwrap().unwrap().path();
    validate_bundle(&volume);
    // The pieces as the schema sees them, read without airlock's types.
    let (blob_segments, _) = cut_segments(&manifest_payload(&volume), &segments_member(&volume));
    assert_eq!(blob_segments.len(), 1);
    let Value::Array(blobs) = ciborium::from_reader::<Value, _>(&blob_segments[0][..]).unwrap() else { panic!() };
    let pieces = |blob: &Value| {
        let Value::Map(fields) = blob else { panic!() };
        fields.iter().find(|(k, _)| k.as_text() == Some("pieces")).map(|(_, v)| v.clone())
    };
    let chunked: Vec<Value> = blobs.iter().filter_map(pieces).collect();
    assert_eq!(chunked.len(), 1, "only the large blob is cut");
    let Value::Array(list) = &chunked[0] else { panic!() };
    assert!(list.len() >= 4, "{} pieces", list.len());
    // An empty piece is not a piece.
    let mut blobs = blobs.clone();
    for blob in &mut blobs {
        let Value::Map(blob) = blob else { panic!() };
        if let Some((_, Value::Array(list))) = blob.iter_mut().find(|(k, _)| k.as_text() == Some("pieces")) {
            let Value::Map(first) = &mut list[0] else { panic!() };
            first.iter_mut().find(|(k, _)| k.as_text() == Some("size")).unwrap().1 = Value::from(0);
        }
    }
    let mut broken = Vec::new();
    ciborium::into_writer(&Value::Array(blobs), &mut broken).unwrap();
    assert!(validate_rule("blob-segment", &broken).is_err());
}

#[test]
fn the_example_config_is_read_and_matches_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airlock.toml");
    let config = airlock::config::Config::load(&path).unwrap();
    assert_eq!(config.channel.as_deref(), Some("weekly"));
    assert_eq!(config.pypi.locks.len(), 1, "{config:?}");
    let text = fs::read_to_string(&path).unwrap();
    let as_json = serde_json::to_string(&toml::from_str::<serde_json::Value>(&text).unwrap()).unwrap();
    cddl::validate_json_from_str(&schema("config.cddl"), &as_json, None).unwrap();
}
