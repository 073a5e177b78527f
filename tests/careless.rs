//! Issue 14, hostile and careless inputs that are not one bundle, so do not
//! fit the corpus in fixtures/vectors/: several files named together (a
//! good bundle and garbage, /etc/passwd, an empty file, an expired bundle),
//! damaged copies of split volumes, and careless output flags.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{airlock, keygen, one_line, snapshot, write_tree};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vectors")
}

fn good() -> PathBuf {
    vectors().join("good.airlock")
}

/// `airlock COMMAND --quiet FILES... --policy fixtures/vectors/policy.toml` (and `--mirror MIRROR` for import).
fn run(command: &str, files: &[&Path], mirror: Option<&Path>) -> std::process::Output {
    let mut cmd = airlock();
    cmd.args([command, "--quiet"]).args(files).arg("--policy").arg(vectors().join("policy.toml"));
    if let Some(mirror) = mirror {
        cmd.arg("--mirror").arg(mirror);
    }
    cmd.output().unwrap()
}

/// The command failed with `code` and one error line naming `file`; returns the line.
fn refused(output: &std::process::Output, code: i32, file: &Path) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let line = one_line(&output.stderr);
    assert!(line.contains(&file.display().to_string()), "the error does not name {}: {line}", file.display());
    line
}

/// Files that are not a volume of the reference bundle, each with a word of the reason.
fn not_volumes(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let garbage = dir.join("garbage.airlock");
    fs::write(&garbage, b"this is not an airlock bundle, it only has the name of one\n").unwrap();
    let empty = dir.join("empty.airlock");
    fs::write(&empty, b"").unwrap();
    vec![
        (garbage, "not an airlock volume"),
        (empty, "truncated"),
        (PathBuf::from("/etc/passwd"), "not an airlock volume"),
        (vectors().join("expired.airlock"), "expired"),
        (vectors().join("untrusted-signer.airlock"), "trusted"),
    ]
}

#[test]
fn verify_checks_every_file_named_not_only_the_first() {
    let dir = tempfile::tempdir().unwrap();
    for (other, reason) in not_volumes(dir.path()) {
        for files in [[good().as_path(), &other], [&other, good().as_path()]] {
            let line = refused(&run("verify", &files, None), 1, &other);
            assert!(line.contains(reason), "{line}");
        }
    }
}

#[test]
fn import_checks_every_file_named_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    for (other, reason) in not_volumes(dir.path()) {
        let line = refused(&run("import", &[&good(), &other], Some(&mirror)), 1, &other);
        assert!(line.contains(reason), "{line}");
        assert!(!mirror.exists(), "a refused import created the mirror");
    }
    // Into a mirror that already holds the bundle: refused all the same, mirror unchanged.
    assert!(run("import", &[&good()], Some(&mirror)).status.success());
    let before = snapshot(&mirror);
    for (other, _) in not_volumes(dir.path()) {
        refused(&run("import", &[&good(), &other], Some(&mirror)), 1, &other);
        assert_eq!(snapshot(&mirror), before);
    }
}

#[test]
fn two_different_bundles_named_together_are_refused_naming_both() {
    let fork = vectors().join("fork-of-good.airlock");
    for command in ["verify", "import"] {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        let output = run(command, &[&good(), &fork], (command == "import").then_some(mirror.as_path()));
        let line = refused(&output, 2, &fork);
        assert!(line.contains(&good().display().to_string()) && line.contains("two bundles"), "{line}");
    }
}

#[test]
fn a_damaged_second_copy_of_a_bundle_is_read_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.airlock");
    fs::copy(vectors().join("good-truncated-in-its-blobs.airlock"), &copy).unwrap();
    refused(&run("verify", &[&good(), &copy], None), 1, &copy);
    let mirror = dir.path().join("mirror");
    refused(&run("import", &[&good(), &copy], Some(&mirror)), 1, &copy);
    assert!(!mirror.exists(), "a refused import created the mirror");
    // The same file named twice is one file, read once.
    assert!(run("verify", &[&good(), &good()], None).status.success());
}

// Split bundles: every volume file given is read, and the report says which were not.

const SPLIT: &str = "64KiB";

/// Incompressible bytes, so that volumes fill up.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

struct Split {
    dir: tempfile::TempDir,
    public: PathBuf,
    bundle: PathBuf,
}

impl Split {
    /// A split bundle of several volumes, with `parity` parity volumes.
    fn new(parity: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = keygen(dir.path(), "op");
        let input = dir.path().join("in");
        let files: Vec<(String, Vec<u8>)> =
            (0..6).map(|i| (format!("pkg/{i}.bin"), noise(25_000, 40 + i as u64))).collect();
        let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        write_tree(&input, &borrowed);
        let bundle = dir.path().join("b.airlock");
        common::export_files(&input, &key, &bundle)
            .args(["--quiet", "--split", SPLIT, "--parity", &parity.to_string()])
            .assert()
            .success();
        Split { dir, public, bundle }
    }

    /// The volume files, data volumes first.
    fn volumes(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.bundle).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| (p.file_name().unwrap().to_str().unwrap().starts_with("parity"), p.clone()));
        files
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    fn command(&self, command: &str, files: &[&Path]) -> assert_cmd::Command {
        let mut cmd = airlock();
        cmd.args([command, "--json"]).args(files).arg("--trust").arg(&self.public);
        if command == "import" {
            cmd.arg("--mirror").arg(self.mirror());
        }
        cmd
    }
}

/// Flips a byte in the middle of `path` (after the manifest frame of these volumes).
fn damage(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_damaged_volume_of_an_already_imported_split_bundle_is_refused() {
    let split = Split::new(0);
    split.command("import", &[&split.bundle]).assert().success();
    let before = snapshot(&split.mirror());
    let victim = split.volumes()[1].clone();
    damage(&victim);
    let output = split.command("import", &[&split.bundle]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report = json(&output);
    assert!(report["error"].as_str().unwrap().contains(victim.to_str().unwrap()), "{report}");
    assert_eq!(snapshot(&split.mirror()), before);
    // The good volumes alone are still `already-imported`, and each was read.
    let good: Vec<PathBuf> = split.volumes().into_iter().filter(|v| *v != victim).collect();
    let refs: Vec<&Path> = good.iter().map(PathBuf::as_path).collect();
    let report = json(&split.command("import", &refs).output().unwrap());
    assert_eq!(report["report"]["outcome"], "already-imported", "{report}");
    assert_eq!(report["report"]["verified"]["volumes"]["verified"].as_array().unwrap().len(), good.len(), "{report}");
}

#[test]
fn with_parity_a_damaged_volume_of_an_already_imported_bundle_is_rebuilt_and_reported() {
    let split = Split::new(1);
    split.command("import", &[&split.bundle]).assert().success();
    let victim = split.volumes()[0].clone();
    damage(&victim);
    let report = json(&split.command("import", &[&split.bundle]).assert().success().get_output().clone());
    assert_eq!(report["report"]["outcome"], "already-imported", "{report}");
    let volumes = &report["report"]["verified"]["volumes"];
    assert!(volumes["damaged"][0].as_str().unwrap().contains(victim.to_str().unwrap()), "{report}");
    assert_eq!(volumes["rebuilt"].as_array().unwrap().len(), 1, "{report}");
}

#[test]
fn a_parity_volume_named_alone_is_read() {
    let split = Split::new(1);
    let parity = split.volumes().pop().unwrap();
    let report = json(&split.command("verify", &[&parity]).assert().success().get_output().clone());
    assert_eq!(report["report"]["volumes"]["verified"][0].as_str().unwrap().split(" (").next(), Some("parity volume 1 of 1"));
    damage(&parity);
    let output = split.command("verify", &[&parity]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(json(&output)["error"].as_str().unwrap().contains(parity.to_str().unwrap()));
}

#[test]
fn every_copy_of_a_volume_is_read_and_a_damaged_one_stood_in_for_is_reported() {
    let split = Split::new(0);
    let volumes = split.volumes();
    let copy = split.dir.path().join("copy-of-first.airlock");
    fs::copy(&volumes[0], &copy).unwrap();
    damage(&copy);
    let mut files: Vec<&Path> = volumes.iter().map(PathBuf::as_path).collect();
    files.push(&copy);
    let report = json(&split.command("verify", &files).assert().success().get_output().clone());
    let damaged = &report["report"]["volumes"]["damaged"];
    assert!(damaged[0].as_str().unwrap().contains(copy.to_str().unwrap()), "{report}");
}

#[test]
fn volumes_verified_by_an_earlier_run_are_reported_as_not_read() {
    let split = Split::new(0);
    let volumes = split.volumes();
    split.command("import", &[&volumes[0]]).assert().code(4);
    let report = json(&split.command("import", &[&split.bundle]).assert().success().get_output().clone());
    let not_read = &report["report"]["verified"]["volumes"]["not_read"];
    assert_eq!(not_read.as_array().unwrap().len(), 1, "{report}");
    assert!(not_read[0].as_str().unwrap().starts_with(volumes[0].to_str().unwrap()), "{report}");
}
