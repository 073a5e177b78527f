//! Outputs checked against schemas/ with code independent of the library:
//! the volume is opened with the zstd and tar crates, the COSE envelope is
//! taken apart with ciborium, and the payload is validated by the `cddl` crate.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;

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

#[test]
fn exported_manifests_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    common::sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let payload = manifest_payload(&bundle);
    validate_manifest(&payload).unwrap();

    // The demo's manifest too.
    let demo = dir.path().join("demo");
    common::airlock().args(["demo", "--quiet", "--dir"]).arg(&demo).assert().success();
    validate_manifest(&manifest_payload(&demo.join("transfer/demo.airlock"))).unwrap();
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
fn policy_files_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = common::keygen(dir.path(), "op");
    let key_line = fs::read_to_string(&public).unwrap().lines().last().unwrap().to_owned();
    let policy = format!(
        "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\npublic = \"{key_line}\"\n[[keys]]\nname = \"file\"\nfile = \"op.pub\"\n"
    );
    let as_json = |text: &str| serde_json::to_string(&toml::from_str::<serde_json::Value>(text).unwrap()).unwrap();
    cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&policy), None).unwrap();
    let bad = "version = 1\nthreshold = 0\nkeys = []\n";
    assert!(cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(bad), None).is_err());
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
    let short_id = policy.replace(&"ab".repeat(16), &key_id[..16]);
    assert!(cddl::validate_json_from_str(&schema("policy.cddl"), &as_json(&short_id), None).is_err());

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
