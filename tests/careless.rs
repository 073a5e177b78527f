//! Issue 14, hostile and careless inputs that are not one bundle, so do not
//! fit the corpus in fixtures/vectors/: several files named together (a
//! good bundle and garbage, /etc/passwd, an empty file, an expired bundle),
//! damaged copies of split volumes, and careless output flags.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{airlock, keygen, one_line, snapshot, write_tree};
use serde_json::json;

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
fn a_fifo_or_device_named_as_a_bundle_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.airlock");
    if !mkfifo(&fifo) {
        println!("skipped the FIFO case: mkfifo is not available here");
    }
    let mirror = dir.path().join("mirror");
    for other in [fifo.as_path(), Path::new("/dev/null")].into_iter().filter(|p| p.exists()) {
        for command in ["verify", "import"] {
            let mut cmd = airlock();
            cmd.args([command, "--quiet"]).arg(good()).arg(other).arg("--policy").arg(vectors().join("policy.toml"));
            if command == "import" {
                cmd.arg("--mirror").arg(&mirror);
            }
            // Reading the FIFO would wait for a writer: the timeout turns that into a failure.
            let output = cmd.timeout(std::time::Duration::from_mins(1)).output().unwrap();
            let line = refused(&output, 2, other);
            assert!(line.contains("not a regular file"), "{line}");
        }
    }
    assert!(!mirror.exists());
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
            (0..6u64).map(|i| (format!("pkg/{i}.bin"), noise(25_000, 40 + i))).collect();
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
    common::json_report(&output.stdout)
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
    assert!(volumes["damaged"][0]["error"].as_str().unwrap().contains(victim.to_str().unwrap()), "{report}");
    assert_eq!(volumes["damaged"][0]["file"], json!(victim.file_name().unwrap().to_str().unwrap()), "{report}");
    assert_eq!(volumes["rebuilt"].as_array().unwrap().len(), 1, "{report}");
}

#[test]
fn a_parity_volume_named_alone_is_read() {
    let split = Split::new(1);
    let parity = split.volumes().pop().unwrap();
    let report = json(&split.command("verify", &[&parity]).assert().success().get_output().clone());
    let verified = &report["report"]["volumes"]["verified"][0];
    assert_eq!(verified["text"].as_str().unwrap().split(" (").next(), Some("parity volume 1 of 1"));
    assert_eq!((&verified["kind"], &verified["number"]), (&json!("parity"), &json!(1)), "{report}");
    assert_eq!(verified["file"], json!("parity-1-of-1.airlock"), "{report}");
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
    assert!(damaged[0]["error"].as_str().unwrap().contains(copy.to_str().unwrap()), "{report}");
    assert_eq!(damaged[0]["given"], json!(copy.to_str().unwrap()), "{report}");
}

#[test]
fn volumes_verified_by_an_earlier_run_are_reported_as_not_read() {
    let split = Split::new(0);
    let volumes = split.volumes();
    let waiting = json(split.command("import", &[&volumes[0]]).assert().code(4).get_output());
    // Exit 4 names, for scripts, the volumes still needed.
    assert_eq!(waiting["kind"], json!("incomplete"), "{waiting}");
    let still_needed: Vec<String> =
        volumes[1..].iter().map(|v| v.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(waiting["missing_volumes"], json!(still_needed), "{waiting}");
    // status shows the import waiting; gc keeps it and says so.
    let status = airlock().args(["status", "--mirror"]).arg(split.mirror()).output().unwrap();
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(text.contains("waiting   bundle") && text.contains(&format!("1 of {} volumes", volumes.len())), "{text}");
    let gc = json(&airlock().args(["gc", "--json", "--mirror"]).arg(split.mirror()).output().unwrap());
    assert_eq!(gc["report"]["staging_kept"][0]["volumes_done"], json!(1), "{gc}");
    assert_eq!(gc["report"]["staging_removed"], json!([]), "{gc}");
    // --dry-run says what --all-staging would remove, and removes nothing.
    let dry = json(
        &airlock()
            .args(["gc", "--json", "--dry-run", "--all-staging", "--mirror"])
            .arg(split.mirror())
            .output()
            .unwrap(),
    );
    assert_eq!(
        (dry["report"]["staging_removed"].as_array().unwrap().len(), &dry["report"]["dry_run"]),
        (1, &json!(true)),
        "{dry}"
    );
    let still = json(&airlock().args(["gc", "--json", "--mirror"]).arg(split.mirror()).output().unwrap());
    assert_eq!(
        still["report"]["staging_kept"].as_array().unwrap().len(),
        1,
        "the dry run removed the staging: {still}"
    );
    let report = json(&split.command("import", &[&split.bundle]).assert().success().get_output().clone());
    let not_read = &report["report"]["verified"]["volumes"]["not_read"];
    assert_eq!(not_read.as_array().unwrap().len(), 1, "{report}");
    assert!(not_read[0]["text"].as_str().unwrap().starts_with(volumes[0].to_str().unwrap()), "{report}");
    assert_eq!(not_read[0]["given"], json!(volumes[0].to_str().unwrap()), "{report}");
}

// Careless flags must not destroy data.

/// A key pair and a small input folder for exports.
struct Exporter {
    dir: tempfile::TempDir,
    key: PathBuf,
    input: PathBuf,
}

impl Exporter {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = keygen(dir.path(), "op");
        let input = dir.path().join("in");
        write_tree(&input, &[("notes.txt", b"release notes\n")]);
        Exporter { dir, key, input }
    }

    fn export(&self, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
        common::export_files(&self.input, &self.key, out).arg("--quiet").args(extra).assert()
    }
}

#[test]
fn split_force_refuses_a_folder_that_holds_anything_but_volumes() {
    let e = Exporter::new();
    let thesis = e.dir.path().join("thesis");
    write_tree(&thesis, &[("thesis.tex", b"chapter one"), ("figures/plot.png", b"\x89PNG")]);
    let before = snapshot(&thesis);
    let out = e.export(&thesis, &["--split", SPLIT, "--force"]).code(2);
    let line = one_line(&out.get_output().stderr);
    assert!(line.contains(thesis.to_str().unwrap()) && line.contains("not a volume"), "{line}");
    assert_eq!(snapshot(&thesis), before, "the folder was changed");

    // Volumes of a bundle and one file that only has a volume's name: refused too.
    let bundle = e.dir.path().join("b.airlock");
    e.export(&bundle, &["--split", SPLIT]).success();
    let fake = bundle.join("volume-9-of-9.airlock");
    fs::write(&fake, b"a note that happens to have a volume's name").unwrap();
    let before = snapshot(&bundle);
    let line = one_line(&e.export(&bundle, &["--split", SPLIT, "--force"]).code(2).get_output().stderr);
    assert!(line.contains(fake.to_str().unwrap()), "{line}");
    assert_eq!(snapshot(&bundle), before);

    // A folder of nothing but an earlier bundle's volumes is replaced, and so is a bundle file.
    fs::remove_file(&fake).unwrap();
    write_tree(&e.input, &[("more.txt", b"more")]);
    e.export(&bundle, &["--split", SPLIT, "--force"]).success();
    assert!(snapshot(&bundle) != before);
    let single = e.dir.path().join("single.airlock");
    e.export(&single, &[]).success();
    e.export(&single, &["--split", SPLIT, "--force"]).success();
    assert!(single.is_dir());
}

#[test]
fn export_out_may_not_be_an_input() {
    let e = Exporter::new();
    let key_before = fs::read(&e.key).unwrap();
    let refusal = one_line(&e.export(&e.key, &["--force"]).code(2).get_output().stderr);
    assert!(refusal.contains("input"), "{refusal}");
    assert_eq!(fs::read(&e.key).unwrap(), key_before);
    let before = snapshot(&e.input);
    e.export(&e.input, &["--split", SPLIT, "--force"]).code(2);
    assert_eq!(snapshot(&e.input), before);
    // A lockfile, through a symbolic link to it.
    let lock = e.dir.path().join("requirements.txt");
    fs::write(&lock, "demo==1.0 --hash=sha256:00\n").unwrap();
    let to_lock = e.dir.path().join("link.airlock");
    std::os::unix::fs::symlink(&lock, &to_lock).unwrap();
    airlock()
        .args(["export", "--quiet", "--pypi-lock"])
        .arg(&lock)
        .arg("--key")
        .arg(&e.key)
        .arg("--out")
        .arg(&to_lock)
        .arg("--force")
        .assert()
        .code(2);
    assert_eq!(fs::read_to_string(&lock).unwrap(), "demo==1.0 --hash=sha256:00\n");
}

#[test]
fn inspect_sbom_refuses_an_existing_file_without_force_and_never_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.airlock");
    fs::copy(good(), &bundle).unwrap();
    let bytes = fs::read(&bundle).unwrap();
    let inspect = |sbom: &Path, force: bool| {
        let mut cmd = airlock();
        cmd.args(["inspect", "--quiet"]).arg(&bundle).arg("--sbom").arg(sbom);
        if force {
            cmd.arg("--force");
        }
        cmd.assert()
    };
    for force in [false, true] {
        let line = one_line(&inspect(&bundle, force).code(2).get_output().stderr);
        assert!(line.contains("input"), "{line}");
        assert_eq!(fs::read(&bundle).unwrap(), bytes, "--sbom replaced the bundle");
    }
    let to_bundle = dir.path().join("link.json");
    std::os::unix::fs::symlink(&bundle, &to_bundle).unwrap();
    inspect(&to_bundle, true).code(2);
    assert_eq!(fs::read(&bundle).unwrap(), bytes);

    let existing = dir.path().join("bom.json");
    fs::write(&existing, b"someone's notes").unwrap();
    let refusal = one_line(&inspect(&existing, false).code(2).get_output().stderr);
    assert!(refusal.contains("--force"), "{refusal}");
    assert_eq!(fs::read(&existing).unwrap(), b"someone's notes");
    inspect(&existing, true).success();
    let sbom: serde_json::Value = serde_json::from_slice(&fs::read(&existing).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    // A new file needs no --force; a folder is never a file to write.
    inspect(&dir.path().join("new.json"), false).success();
    inspect(dir.path(), true).code(2);
}

/// A FIFO at `path`, or `false` when mkfifo is not available here.
fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo").arg(path).status().is_ok_and(|s| s.success())
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

const OUTPUT_FLAGS: [&str; 5] =
    ["inspect --sbom", "export --out", "keygen --out", "policy sign --out", "export --state"];

/// The command of `flag` writing to `target` (keygen's PREFIX.pub, the
/// state's CHANNEL.json), with --force where the command has it.
fn writing_to(flag: &str, target: &Path, e: &Exporter) -> assert_cmd::Command {
    let mut cmd = airlock();
    match flag {
        "inspect --sbom" => {
            cmd.args(["inspect", "--quiet"]).arg(good()).arg("--sbom").arg(target).arg("--force");
        }
        "export --out" => {
            cmd = common::export_files(&e.input, &e.key, target);
            cmd.args(["--quiet", "--force"]);
        }
        "keygen --out" => {
            cmd.args(["keygen", "--quiet", "--unencrypted", "--force", "--out"]).arg(target.with_extension(""));
        }
        "policy sign --out" => {
            let policy = e.dir.path().join("next.toml");
            let public = fs::read_to_string(e.key.with_extension("pub")).unwrap();
            let line = public.lines().last().unwrap();
            let text =
                format!("version = 1\nserial = 2\nthreshold = 1\n[[keys]]\nname = \"op\"\npublic = \"{line}\"\n");
            fs::write(&policy, text).unwrap();
            cmd.args(["policy", "sign", "--quiet"]).arg(&policy).arg("--key").arg(&e.key).arg("--out").arg(target);
        }
        "export --state" => {
            cmd = common::export_files(&e.input, &e.key, &target.with_extension("airlock"));
            cmd.args(["--quiet", "--channel", "careless", "--state"]).arg(target.parent().unwrap());
        }
        _ => unreachable!("{flag}"),
    }
    cmd
}

#[test]
fn no_output_flag_replaces_a_fifo_or_a_folder() {
    let e = Exporter::new();
    let mut problems = Vec::new();
    for flag in OUTPUT_FLAGS {
        for kind in ["fifo", "folder"] {
            let dir = e.dir.path().join(format!("{}-{kind}", flag.replace(' ', "")));
            fs::create_dir(&dir).unwrap();
            let target = if flag == "export --state" { dir.join("careless.json") } else { dir.join("out.pub") };
            if kind == "folder" {
                fs::create_dir(&target).unwrap();
            } else if !mkfifo(&target) {
                println!("skipped the FIFO cases: mkfifo is not available here");
                continue;
            }
            // A command that opened the FIFO would hang: the timeout turns that into a failure.
            let out = writing_to(flag, &target, &e).timeout(std::time::Duration::from_mins(1)).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(2) || !stderr.contains(target.to_str().unwrap()) {
                problems.push(format!("{flag} on a {kind}: exit {:?}: {stderr}", out.status.code()));
            }
            if !(if kind == "fifo" { is_fifo(&target) } else { target.is_dir() }) {
                problems.push(format!("{flag} replaced the {kind}"));
            }
            if target.with_extension("airlock").exists() {
                problems.push(format!("{flag} on a {kind}: the bundle was written all the same"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn as_root_sbom_does_not_replace_a_device_node() {
    use std::os::unix::fs::FileTypeExt;
    // A private node with /dev/full's numbers, so that a failure cannot break the machine's own.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let made = std::process::Command::new("mknod").arg(&full).args(["c", "1", "7"]).status();
    if !made.is_ok_and(|s| s.success()) {
        println!("skipped: not root (or mknod is not permitted), so no device node to test --sbom against");
        return;
    }
    for device in [full.as_path(), Path::new("/dev/full")] {
        for force in [false, true] {
            let mut cmd = airlock();
            cmd.args(["inspect", "--quiet"]).arg(good()).arg("--sbom").arg(device);
            if force {
                cmd.arg("--force");
            }
            let line = one_line(&cmd.assert().code(2).get_output().stderr);
            assert!(line.contains("a device"), "{line}");
            let kind = fs::symlink_metadata(device).unwrap().file_type();
            assert!(kind.is_char_device(), "{} is no longer a device node", device.display());
        }
    }
}

// `airlock serve`: `..` in a name is not a path component.

#[test]
fn serve_fetches_a_file_whose_name_holds_two_dots_and_refuses_dot_dot_components() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("release..notes.txt", b"notes with two dots\n"), ("docs/..hidden", b"hidden\n")]);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let mirror = dir.path().join("mirror");
    airlock()
        .args(["import", "--quiet"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let options = airlock::serve::ServeOptions { mirror, listen: "127.0.0.1:0".parse().unwrap() };
    let server = airlock::serve::bind(&options).unwrap().spawn(|_| {});
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let reply = get("/files/release..notes.txt");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("notes with two dots\n"), "{reply}");
    assert!(get("/files/docs/..hidden").starts_with("HTTP/1.1 200"));
    for path in [
        "/files/../files/release..notes.txt",
        "/files/%2e%2e/x",
        "/files/docs/%2E%2E/release..notes.txt",
        "/files/.%2e",
        "/files/a%5c..",
        "/files/a%00b",
        "/files/./release..notes.txt",
    ] {
        let reply = get(path);
        assert!(reply.starts_with("HTTP/1.1 400"), "{path}: {reply}");
    }
    server.stop().unwrap();
}

/// An export whose manifest segments pass the 1 MiB it holds spools them
/// to `TMPDIR`; one it cannot write is exit 3 naming it, and no bundle.
/// Verify and import spool the same segments as they read them: the same
/// line, and no mirror.
#[test]
fn a_command_spooling_a_manifest_to_a_tmpdir_it_cannot_use_names_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("many");
    for folder in 0..25 {
        let sub = input.join(format!("d{folder:02}"));
        fs::create_dir_all(&sub).unwrap();
        for i in 0..1000 {
            fs::write(sub.join(format!("f{i:04}.txt")), format!("{folder} {i}\n")).unwrap();
        }
    }
    let missing = dir.path().join("no-such-tmp");
    let out = dir.path().join("b.airlock");
    let output = common::export_files(&input, &key, &out).arg("--quiet").env("TMPDIR", &missing).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let line = one_line(&output.stderr);
    assert!(line.contains(&missing.display().to_string()), "{line}");
    assert!(!out.exists(), "no bundle is left");
    // The same export with a TMPDIR it can use writes the bundle.
    common::export_files(&input, &key, &out).arg("--quiet").env("TMPDIR", dir.path()).assert().success();
    let mirror = dir.path().join("mirror");
    for command in ["verify", "import"] {
        let mut cmd = airlock();
        cmd.args([command, "--quiet"]).arg(&out).arg("--trust").arg(&public).env("TMPDIR", &missing);
        if command == "import" {
            cmd.arg("--mirror").arg(&mirror);
        }
        let output = cmd.output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{command}: {}", String::from_utf8_lossy(&output.stderr));
        let line = one_line(&output.stderr);
        assert!(line.contains(&missing.display().to_string()), "{command}: {line}");
    }
    assert!(!mirror.exists(), "no mirror is made");
}
