//! What people read: `verify` and `import` end with one summary line, list
//! entries only with `--verbose`, and count in words that agree.

mod common;

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
