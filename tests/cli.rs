//! The command-line contract, driven through the binary.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{airlock, export, keygen, one_line, sample_tree, snapshot};
use predicates::prelude::*;

#[test]
fn keygen_writes_a_private_key_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = keygen(dir.path(), "op");
    assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(fs::read_to_string(&public).unwrap().contains("airlock-pub-ed25519:"));
    let before = fs::read(&secret).unwrap();
    let out = airlock().args(["keygen", "--out"]).arg(dir.path().join("op")).assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(fs::read(&secret).unwrap(), before);
    airlock()
        .args(["keygen", "--quiet", "--unencrypted", "--force", "--out"])
        .arg(dir.path().join("op"))
        .assert()
        .success();
    assert_ne!(fs::read(&secret).unwrap(), before);
}

#[test]
fn export_verify_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    common::export_files(&input, &key, &bundle)
        .args(["--channel", "weekly", "--expires", "7d"])
        .assert()
        .success()
        .stdout(predicate::str::contains("exported  4 entries"));
    airlock()
        .arg("verify")
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .assert()
        .success()
        .stdout(predicate::str::contains("verified"));
    let mirror = dir.path().join("mirror");
    airlock().arg("import").arg(&bundle).arg("--trust").arg(&public).arg("--mirror").arg(&mirror).assert().success();
    for (name, _) in common::snapshot(&input) {
        if !name.ends_with('/') {
            assert_eq!(
                fs::read(mirror.join("files").join(&name)).unwrap(),
                fs::read(input.join(&name)).unwrap(),
                "{name}"
            );
        }
    }
    // Importing the same bundle again succeeds and changes no published file.
    let files_before = snapshot(&mirror.join("files"));
    airlock().arg("import").arg(&bundle).arg("--trust").arg(&public).arg("--mirror").arg(&mirror).assert().success();
    assert_eq!(snapshot(&mirror.join("files")), files_before);
}

#[test]
fn json_reports_are_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);

    let out = airlock().args(["inspect", "--json"]).arg(&bundle).assert().success();
    let report: serde_json::Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["ok"], true);
    assert_eq!(report["report"]["entries"].as_array().unwrap().len(), 4);
    assert_eq!(report["report"]["channel"], "default");

    let out = airlock().args(["verify", "--json"]).arg(&bundle).arg("--trust").arg(&public).assert().success();
    let report: serde_json::Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["entries"], 4);

    let stranger = keygen(dir.path(), "stranger").1;
    let out = airlock().args(["verify", "--json"]).arg(&bundle).arg("--trust").arg(&stranger).assert().code(1);
    let report: serde_json::Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(report["kind"], "below-threshold");
    assert_eq!(report["exit_code"], 1);
}

#[test]
fn quiet_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    airlock()
        .args(["verify", "--quiet"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .assert()
        .success()
        .stdout("")
        .stderr("");
}

#[test]
fn untrusted_signer_is_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    let (_, stranger) = keygen(dir.path(), "stranger");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    let mirror = dir.path().join("mirror");
    let out = airlock()
        .arg("import")
        .arg(&bundle)
        .arg("--trust")
        .arg(&stranger)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("requires 1"), "{err}");
    assert!(!mirror.exists(), "a rejected first import must leave no mirror behind");
}

#[test]
fn co_signing_meets_a_threshold_and_one_key_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(dir.path(), "alice");
    let (bob, bob_pub) = keygen(dir.path(), "bob");
    let input = dir.path().join("in");
    sample_tree(&input);
    let both = dir.path().join("both.airlock");
    export(&input, &[&alice, &bob], &both);
    let one = dir.path().join("one.airlock");
    export(&input, &[&alice], &one);
    // The same key given twice is refused: it would sign twice and count once.
    let twice = dir.path().join("twice.airlock");
    let refused = common::export_files(&input, &alice, &twice).arg("--key").arg(&alice).assert().code(2);
    assert!(one_line(&refused.get_output().stderr).contains("give each key once"));
    assert!(!twice.exists());

    let policy = dir.path().join("policy.toml");
    fs::write(
        &policy,
        format!(
            "version = 1\nthreshold = 2\n[[keys]]\nname = \"alice\"\nfile = \"alice.pub\"\n[[keys]]\nname = \"bob\"\npublic = \"{}\"\n",
            fs::read_to_string(&bob_pub).unwrap().lines().last().unwrap()
        ),
    )
    .unwrap();
    airlock().arg("verify").arg(&both).arg("--policy").arg(&policy).assert().success();
    airlock().arg("verify").arg(&one).arg("--policy").arg(&policy).assert().code(1);
    airlock()
        .arg("verify")
        .arg(&both)
        .arg("--trust")
        .arg(&alice_pub)
        .arg("--trust")
        .arg(&bob_pub)
        .args(["--threshold", "2"])
        .assert()
        .success();
    let out =
        airlock().arg("verify").arg(&one).arg("--trust").arg(&alice_pub).args(["--threshold", "2"]).assert().code(2);
    one_line(&out.get_output().stderr);
}

#[test]
fn expired_bundle_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("old.airlock");
    // Created in 2020 and valid for a day.
    airlock()
        .env("SOURCE_DATE_EPOCH", "1600000000")
        .args(["export", "--quiet", "--expires", "1d", "--files"])
        .arg(&input)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    let out = airlock().arg("verify").arg(&bundle).arg("--trust").arg(&public).assert().code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("expired at 2020-09-14"), "{err}");
}

#[test]
fn same_input_gives_the_same_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let digest = |name: &str| {
        let bundle = dir.path().join(name);
        airlock()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["export", "--quiet", "--files"])
            .arg(&input)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&bundle)
            .assert()
            .success();
        let out = airlock().args(["inspect", "--json"]).arg(&bundle).assert().success();
        let v: serde_json::Value = common::json_report(&out.get_output().stdout);
        (v["report"]["manifest_digest"].as_str().unwrap().to_owned(), fs::read(&bundle).unwrap())
    };
    let (a, bytes_a) = digest("a.airlock");
    let (b, bytes_b) = digest("b.airlock");
    assert_eq!(a, b);
    // ed25519 signatures are deterministic too, so the whole bundle is.
    assert_eq!(bytes_a, bytes_b);
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    let missing = dir.path().join("missing");
    let x = dir.path().join("x");
    let shown = |p: &std::path::Path| p.display().to_string();
    let os = |parts: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<std::ffi::OsString> {
        parts.iter().map(|p| p.as_ref().to_owned()).collect()
    };
    let export_with = |more: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut args = os(&[&"export", &"--files", &input, &"--key", &key, &"--out", &x]);
        args.extend(os(more));
        args
    };
    // Each case: the arguments, and what its one line must name (the flag,
    // the file, the value) besides the `error:` prefix.
    let cases: Vec<(Vec<std::ffi::OsString>, Vec<String>)> = vec![
        (os(&[&"export", &"--bogus"]), vec!["'--bogus'".into(), "airlock export --help".into()]),
        (os(&[&"export", &"--files", &missing, &"--key", &key, &"--out", &x]), vec![shown(&missing), "--files".into()]),
        (
            os(&[&"export", &"--files", &input, &"--key", &public, &"--out", &x]),
            vec![shown(&public), "is a public key, not a secret one".into()],
        ),
        (
            os(&[&"export", &"--files", &input, &"--key", &key, &"--out", &bundle]),
            vec![shown(&bundle), "already exists".into(), "--force".into()],
        ),
        (export_with(&[&"--expires", &"soon"]), vec!["'soon'".into(), "--expires".into()]),
        (export_with(&[&"--channel", &"a/b"]), vec!["--channel".into(), "\"a/b\"".into()]),
        (os(&[&"verify", &bundle]), vec!["--trust".into(), "airlock verify --help".into()]),
        (os(&[&"verify", &bundle, &"--trust", &missing]), vec![shown(&missing), "public key".into()]),
        (os(&[&"verify", &bundle, &"--trust", &key]), vec![shown(&key), "not an airlock public key".into()]),
        (os(&[&"verify", &missing, &"--trust", &public]), vec![shown(&missing), "bundle".into()]),
        (os(&[&"verify", &dir.path(), &"--trust", &public]), vec![shown(dir.path()), "folder".into()]),
        (os(&[&"verify", &bundle, &"--policy", &missing]), vec![shown(&missing), "policy".into()]),
        (os(&[&"import", &bundle, &"--trust", &public]), vec!["--mirror".into(), "airlock import --help".into()]),
        (
            os(&[&"import", &bundle, &"--trust", &public, &"--mirror", &input]),
            vec![shown(&input), "--mirror".into(), "not an airlock mirror".into()],
        ),
        (os(&[&"inspect", &missing]), vec![shown(&missing), "bundle".into()]),
    ];
    for (args, names) in cases {
        let out = airlock().args(&args).assert().code(2);
        let line = one_line(&out.get_output().stderr);
        for name in &names {
            assert!(line.contains(name.as_str()), "airlock {args:?}: the error does not name {name}: {line}");
        }
    }
    // Nothing was written by the failed exports.
    assert!(!x.exists());
}

#[test]
fn secret_key_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let input = dir.path().join("in");
    sample_tree(&input);
    let out = common::export_files(&input, &key, &dir.path().join("b")).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("chmod 600"));
}

#[test]
fn symlinks_in_the_input_are_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    std::os::unix::fs::symlink("/etc/passwd", input.join("link")).unwrap();
    let out = common::export_files(&input, &key, &dir.path().join("b")).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("symbolic link"));
}

#[test]
fn garbage_is_rejected_as_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = keygen(dir.path(), "op");
    let junk = dir.path().join("junk");
    fs::write(&junk, b"this is not a bundle at all").unwrap();
    let out = airlock().arg("verify").arg(&junk).arg("--trust").arg(&public).assert().code(1);
    assert!(one_line(&out.get_output().stderr).contains("not an airlock volume"));
    let empty = dir.path().join("empty");
    fs::write(&empty, b"").unwrap();
    let out = airlock().arg("inspect").arg(&empty).assert().code(1);
    one_line(&out.get_output().stderr);
}

#[test]
fn help_and_version() {
    airlock().arg("--help").assert().success().stdout(predicate::str::contains("export"));
    airlock().arg("--version").assert().success().stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
    airlock().assert().code(2);
}
