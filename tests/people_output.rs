//! What people read: `verify` and `import` end with one summary line, list
//! entries only with `--verbose`, and count in words that agree.

mod common;

use std::fs;

use common::{airlock, export, keygen, write_tree};

fn stdout(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

#[test]
fn verify_and_import_end_with_one_summary_line_and_list_entries_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("only.txt", b"one file")]);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    let short = airlock::sign::PublicKey::load(&public).unwrap().id().short();

    let plain = stdout(airlock().arg("verify").arg(&bundle).arg("--trust").arg(&public));
    let last = plain.lines().last().unwrap();
    assert_eq!(last, format!("verified 1 entry, 0 problems, signed by {short}"), "{plain}");
    assert!(!plain.contains("transfer ok"), "entries are listed only with --verbose: {plain}");

    let verbose = stdout(airlock().args(["verify", "-v"]).arg(&bundle).arg("--trust").arg(&public));
    assert!(verbose.contains("  files only.txt (only.txt)"), "{verbose}");
    assert!(verbose.contains("transfer ok (1 trusted signer(s)) | content ok"), "{verbose}");
    assert!(verbose.lines().last().unwrap().starts_with("verified 1 entry, 0 problems"), "{verbose}");

    let mirror = dir.path().join("mirror");
    let imported =
        stdout(airlock().arg("import").arg(&bundle).arg("--trust").arg(&public).arg("--mirror").arg(&mirror));
    assert!(imported.contains("published 1 file into"), "{imported}");
    assert_eq!(imported.lines().last().unwrap(), format!("imported 1 entry, 0 problems, signed by {short}"));
}

#[test]
fn large_counts_are_grouped_by_thousands() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    let files: Vec<(String, Vec<u8>)> = (0..1203).map(|i| (format!("f{i}.txt"), i.to_string().into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    write_tree(&input, &refs);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    let out = stdout(airlock().arg("verify").arg(&bundle).arg("--trust").arg(&public));
    assert!(out.lines().last().unwrap().starts_with("verified 1 203 entries, 0 problems"), "{out}");
}

/// The one line a refused command printed on standard error, with its exit code checked.
fn refused(cmd: &mut assert_cmd::Command, code: i32) -> String {
    common::one_line(&cmd.assert().code(code).get_output().stderr)
}

#[test]
fn careless_inputs_get_the_right_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("a.txt", b"a")]);
    let out = dir.path().join("b.airlock");
    let export = |key: &std::path::Path| {
        let mut cmd = airlock();
        cmd.args(["export", "--files"]).arg(&input).arg("--key").arg(key).arg("--out").arg(&out);
        cmd
    };
    // A .pub or a folder given as the secret key is named as such, with no chmod advice.
    let err = refused(&mut export(&public), 2);
    assert!(err.contains("is a public key, not a secret one") && !err.contains("chmod"), "{err}");
    let err = refused(&mut export(dir.path()), 2);
    assert!(err.contains("is a folder, not a secret key"), "{err}");
    // One key twice would sign twice.
    let err = refused(export(&key).arg("--key").arg(&key), 2);
    assert!(err.contains("is the same key") && err.contains("give each key once"), "{err}");
    assert!(!out.exists());
    // A Python version that is not one.
    let err = refused(export(&key).args(["--python-version", "banana"]), 2);
    assert!(err.contains("\"banana\" is not a Python version"), "{err}");
    // An old SOURCE_DATE_EPOCH makes a bundle born expired: exported (reproducibly), but said.
    let warned = export(&key).env("SOURCE_DATE_EPOCH", "1600000000").assert().success().get_output().stderr.clone();
    let warned = String::from_utf8(warned).unwrap();
    assert!(warned.contains("expired already") && warned.contains("SOURCE_DATE_EPOCH"), "{warned}");
    fs::remove_file(&out).unwrap();
    export(&key).assert().success();
    // A mirror whose parent does not exist is not created with all its parents.
    let deep = dir.path().join("no/such/parent/mirror");
    let err = refused(airlock().arg("import").arg(&out).arg("--trust").arg(&public).arg("--mirror").arg(&deep), 2);
    assert!(err.contains("its parent folder") && err.contains("does not exist"), "{err}");
    assert!(!dir.path().join("no").exists());
    // status and gc of a path that does not exist say so.
    let err = refused(airlock().args(["status", "--mirror"]).arg(dir.path().join("nope")), 2);
    assert!(err.contains("no such folder"), "{err}");
}

#[test]
fn a_public_key_saved_with_a_byte_order_mark_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let with_bom = dir.path().join("bom.pub");
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(fs::read(&public).unwrap());
    fs::write(&with_bom, bytes).unwrap();
    let input = dir.path().join("in");
    write_tree(&input, &[("a.txt", b"a")]);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    airlock().arg("verify").arg(&bundle).arg("--trust").arg(&with_bom).assert().success();
}

#[test]
fn a_split_bundle_is_named_by_its_folder_in_inspect_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    let files: Vec<(String, Vec<u8>)> =
        (0..3u8).map(|i| (format!("big{i}"), (0..12_000u32).map(|n| (n * 7 + u32::from(i)) as u8).collect())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    write_tree(&input, &refs);
    let split = dir.path().join("split");
    common::export_files(&input, &key, &split).args(["--split", "16KiB", "--parity", "1"]).assert().success();
    let shown = split.display().to_string();
    let inspect = stdout(airlock().arg("inspect").arg(&split));
    assert!(inspect.starts_with(&format!("bundle    {shown} (")), "{inspect}");
    let diff = stdout(airlock().arg("diff").arg(&split).arg(&split));
    assert!(diff.starts_with(&format!("{shown} (sequence 1) -> {shown} (sequence 1)")), "{diff}");
}
