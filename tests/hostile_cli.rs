//! Hostile and careless input on the exporting side (issue 14): an expiry
//! past what the format can carry, and lockfiles naming packages no
//! registry can have. Each is refused with exit 2 and one line, before
//! anything is written (the bundle, the download cache).

mod common;

use std::fs;
use std::path::Path;

use common::{airlock, keygen, one_line, snapshot, write_tree};

/// An export that must be refused: exit 2, one line holding every part of
/// `expect`, and nothing new in `dir`.
fn refused(dir: &Path, args: &[&str], expect: &[&str]) {
    let before = snapshot(dir);
    let out = airlock().current_dir(dir).args(["export", "--quiet"]).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let err = one_line(&out.stderr);
    for part in expect {
        assert!(err.contains(part), "{args:?}: expected {part:?} in {err}");
    }
    assert_eq!(snapshot(dir), before, "{args:?}: the refused export wrote something");
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "op");
    write_tree(&dir.path().join("in"), &[("a.txt", b"alpha\n")]);
    dir
}

#[test]
fn an_expiry_beyond_100_years_is_refused_at_parse_time_and_nothing_is_written() {
    let dir = setup();
    let base = ["--files", "in", "--key", "op.key", "--out", "b.airlock"];
    for expires in ["100000years", "101years", "36525days 1s"] {
        let args: Vec<&str> = base.iter().copied().chain(["--expires", expires]).collect();
        refused(dir.path(), &args, &["--expires", "at most 100years"]);
    }
    // Through a config file it is refused alike, naming the setting.
    fs::write(dir.path().join("airlock.toml"), "expires = \"100000years\"\nfiles = [\"in\"]\n").unwrap();
    refused(
        dir.path(),
        &["--config", "airlock.toml", "--key", "op.key", "--out", "b.airlock"],
        &["config expires \"100000years\"", "at most 100years"],
    );
    // 100 years is the longest accepted, and the bundle verifies.
    let args: Vec<&str> = base.iter().copied().chain(["--expires", "100years"]).collect();
    airlock().current_dir(dir.path()).args(["export", "--quiet"]).args(&args).assert().success();
    airlock().current_dir(dir.path()).args(["verify", "--quiet", "b.airlock", "--trust", "op.pub"]).assert().success();
}

#[test]
fn a_creation_time_whose_expiry_passes_the_year_9999_is_refused() {
    let dir = setup();
    let before = snapshot(dir.path());
    let out = airlock()
        .current_dir(dir.path())
        .env("SOURCE_DATE_EPOCH", "253402300000")
        .args(["export", "--quiet", "--files", "in", "--key", "op.key", "--out", "b.airlock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out.stderr).contains("after 9999-12-31T23:59:59Z"));
    assert_eq!(snapshot(dir.path()), before);
}

/// Lockfiles naming a package outside its ecosystem's grammar: refused
/// before the registry is asked (the endpoints point at a closed loopback
/// port) and before the download cache is made.
#[test]
fn a_lockfile_naming_an_invalid_package_is_refused_naming_the_file_and_the_package() {
    let dir = setup();
    let pylock = "lock-version = \"1.0\"\n[[packages]]\nname = \"<svg onload=alert(1)>\"\nversion = \"1.0\"\n\
                  sdist = { url = \"https://files.example/x-1.0.tar.gz\", hashes = { sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\" } }\n";
    let requirements = "six==1.16.0\nidna==..\n";
    let package_lock = r#"{"lockfileVersion": 3, "packages": {"": {}, "node_modules/_private": {"version": "1.0.0",
        "resolved": "https://registry.example/_private/-/_private-1.0.0.tgz"}}}"#;
    let cargo_lock = "version = 4\n[[package]]\nname = \"\"\nversion = \"1.0.0\"\n\
                      source = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    let npm_version = r#"{"lockfileVersion": 3, "packages": {"node_modules/left-pad": {"version": "1.3.0<script>"}}}"#;
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        ("pylock.toml", pylock, "--pypi-lock", &["pylock.toml: PyPI package \"<svg onload=alert(1)>\"", "PEP 508"]),
        (
            "requirements.txt",
            requirements,
            "--pypi-lock",
            &["requirements.txt: PyPI package \"idna\" \"..\"", "PEP 440"],
        ),
        ("package-lock.json", package_lock, "--npm-lock", &["package-lock.json: npm package \"_private\""]),
        ("npm/package-lock.json", npm_version, "--npm-lock", &["npm package \"left-pad\" \"1.3.0<script>\""]),
        ("Cargo.lock", cargo_lock, "--cargo-lock", &["Cargo.lock: crate \"\"", "not a valid crate name"]),
    ];
    let closed = "http://127.0.0.1:9/";
    for (file, text, flag, expect) in cases {
        let path = dir.path().join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        let args = [
            flag,
            file,
            "--pypi-index",
            closed,
            "--npm-registry",
            closed,
            "--cargo-index",
            closed,
            "--cache",
            "cache",
            "--key",
            "op.key",
            "--out",
            "b.airlock",
        ];
        refused(dir.path(), &args, expect);
        fs::remove_file(&path).unwrap();
    }
}
