//! Blobs larger than a volume: `export --split` cuts them into pieces, one
//! per volume, each checked on its own as its volume is read; the import
//! assembles them in staging over any number of runs, in any order of
//! volumes, with parity rebuilding a volume from volumes verified in
//! earlier runs, and a killed import resuming from what is durable.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{airlock, keygen, one_line, snapshot, write_tree};

const MIB: usize = 1 << 20;

/// Incompressible bytes, eight at a time (a 64 MiB file in a debug build).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    input: PathBuf,
    public: PathBuf,
    bundle: PathBuf,
}

/// A 64 MiB file and two small ones, exported over 16 MiB volumes with `extra`.
fn fixture(extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (key, public) = keygen(&root, "op");
    let input = root.join("in");
    let big = noise(64 * MIB, 0x9e37_79b9_7f4a_7c15);
    write_tree(
        &input,
        &[("a-small.txt", b"before the big one"), ("model.safetensors", &big), ("z-small.txt", b"after")],
    );
    let bundle = root.join("bundle");
    common::export_files(&input, &key, &bundle).args(["--quiet", "--split", "16MiB"]).args(extra).assert().success();
    Fixture { _dir: dir, root, input, public, bundle }
}

/// The volume files, data volumes first, in order.
fn volumes(bundle: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files: Vec<PathBuf> = fs::read_dir(bundle).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().partition(|p| p.file_name().unwrap().to_str().unwrap().starts_with("volume-"))
}

fn import_cmd(paths: &[&Path], public: &Path, mirror: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("airlock"));
    cmd.args(["import", "--quiet"]).args(paths).arg("--trust").arg(public).arg("--mirror").arg(mirror);
    cmd
}

fn import(paths: &[&Path], public: &Path, mirror: &Path) -> assert_cmd::assert::Assert {
    airlock().args(["import", "--quiet"]).args(paths).arg("--trust").arg(public).arg("--mirror").arg(mirror).assert()
}

/// Bytes of disk the files under `dir` take (a chunk file is sparse until every piece is in).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() { disk_use(&path) } else { fs::metadata(&path).unwrap().blocks() * 512 }
        })
        .sum()
}

fn staging(mirror: &Path) -> Option<PathBuf> {
    fs::read_dir(mirror.join(".airlock/staging")).ok()?.next().map(|e| e.unwrap().path())
}

/// Peak RSS in KiB of `cmd`, measured by GNU time, or `None` where it is missing.
fn peak_rss(mut cmd: Command) -> (bool, Option<u64>) {
    let report = tempfile::NamedTempFile::new().unwrap();
    if !Path::new("/usr/bin/time").exists() {
        return (cmd.status().unwrap().success(), None);
    }
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(report.path()).arg(cmd.get_program()).args(cmd.get_args());
    let ok = timed.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success();
    let kib = fs::read_to_string(report.path()).ok().and_then(|t| t.trim().lines().last()?.parse().ok());
    (ok, kib)
}

#[test]
fn a_64_mib_blob_crosses_16_mib_volumes_in_reverse_over_two_runs_one_rebuilt_from_parity_later() {
    let f = fixture(&["--parity", "1"]);
    let (data, parity) = volumes(&f.bundle);
    assert!(data.len() >= 5, "{} data volumes", data.len());
    assert_eq!(parity.len(), 1);
    for file in data.iter().chain(&parity) {
        let size = fs::metadata(file).unwrap().len();
        assert!(size <= 16 << 20, "{} is {size} bytes", file.display());
    }

    // inspect names the pieces, in order, one per volume.
    let shown = airlock().arg("inspect").arg(&f.bundle).assert().success();
    let text = String::from_utf8_lossy(&shown.get_output().stdout).into_owned();
    assert!(text.contains(&format!("cut into {} pieces across volumes 1-{}", data.len(), data.len())), "{text}");
    let json = airlock().args(["inspect", "--json"]).arg(&f.bundle).assert().success();
    let report: serde_json::Value = common::json_report(&json.get_output().stdout);
    // The report, inside the `--json` envelope.
    let report = report.get("report").unwrap_or(&report);
    let entries = report["entries"].as_array().unwrap();
    let big = entries.iter().find(|e| e["path"] == "model.safetensors").unwrap();
    let pieces = big["pieces"].as_array().unwrap();
    assert_eq!(pieces.iter().map(|p| p["size"].as_u64().unwrap()).sum::<u64>(), 64 << 20);
    assert!(entries.iter().filter(|e| e["path"] != "model.safetensors").all(|e| e.get("pieces").is_none()));

    // Run 1: the last volumes, in reverse order; the first two are not here yet.
    let mirror = f.root.join("mirror");
    let late: Vec<&Path> = data[2..].iter().rev().map(PathBuf::as_path).collect();
    let (ok, rss) = peak_rss(import_cmd(&late, &f.public, &mirror));
    assert!(!ok, "an incomplete set is not published");
    let staged = staging(&mirror).expect("the verified volumes are kept");
    let staged_bytes = disk_use(&staged);
    let given_bytes: u64 = data[2..].iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert!(staged.join("copies").is_dir(), "a set with parity keeps copies of the volumes verified");
    // The pieces and the copies of their volumes: about twice the volumes' bytes, not more.
    assert!(staged_bytes < 2 * given_bytes + (4 << 20), "{staged_bytes} bytes staged for {given_bytes}");
    assert!(!mirror.join("files").exists());

    // Run 2: volume 2 and the parity volume; volume 1 never arrives and is
    // rebuilt from parity and the volumes verified in run 1 (not given again).
    let second: Vec<&Path> = vec![parity[0].as_path(), data[1].as_path()];
    import(&second, &f.public, &mirror).success();
    assert_eq!(snapshot(&mirror.join("files")), snapshot(&f.input), "published bytes differ from the originals");
    assert!(staging(&mirror).is_none(), "staging is removed once published");
    eprintln!(
        "measured: peak RSS of run 1 {} KiB; staging after run 1 {} bytes for {} bytes of volumes",
        rss.map_or("(no /usr/bin/time)".into(), |k| k.to_string()),
        staged_bytes,
        given_bytes
    );
    if let Some(kib) = rss {
        assert!(kib < 96 * 1024, "peak RSS {kib} KiB: a 64 MiB blob must not be held whole");
    }
}

#[test]
fn without_parity_no_volume_copies_are_kept_and_a_single_run_publishes_the_same_bytes() {
    let f = fixture(&[]);
    let (data, parity) = volumes(&f.bundle);
    assert!(parity.is_empty());
    let mirror = f.root.join("mirror");
    import(&[&data[0]], &f.public, &mirror).code(4);
    let staged = staging(&mirror).unwrap();
    assert!(!staged.join("copies").exists(), "copies are for parity only");
    // Run 2: the rest, in reverse order; volume 1 is not read again.
    let rest: Vec<&Path> = data[1..].iter().rev().map(PathBuf::as_path).collect();
    let (ok, rss) = peak_rss(import_cmd(&rest, &f.public, &mirror));
    assert!(ok);
    assert_eq!(snapshot(&mirror.join("files")), snapshot(&f.input));
    if let Some(kib) = rss {
        eprintln!("measured: peak RSS of the import finishing the 64 MiB blob {kib} KiB");
        assert!(kib < 96 * 1024, "peak RSS {kib} KiB");
    }
}

#[test]
fn a_damaged_piece_is_named_as_soon_as_its_volume_is_read_and_nothing_is_kept_of_it() {
    let f = fixture(&[]);
    let (data, _) = volumes(&f.bundle);
    let mirror = f.root.join("mirror");
    import(&[&data[0]], &f.public, &mirror).code(4);
    // Deep inside volume 3's blob frame: a bit of the piece it carries.
    let mut bytes = fs::read(&data[2]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    fs::write(&data[2], &bytes).unwrap();
    let name = data[2].display().to_string();
    let out = import(&[&data[2], &data[1]], &f.public, &mirror).code(1);
    let message = one_line(&out.get_output().stderr);
    assert!(message.contains(&name), "{message}");
    assert!(!mirror.join("files").exists());
    // Volume 1 stays verified; volume 2, read after the damaged one, too.
    let markers = fs::read_dir(staging(&mirror).unwrap().join("volumes")).unwrap().count();
    assert_eq!(markers, 2);
}

#[test]
fn an_import_killed_while_assembling_resumes_from_staging_without_the_volumes_already_read() {
    let f = fixture(&[]);
    let (data, _) = volumes(&f.bundle);
    let last = data.last().unwrap().as_path();
    let mut killed_in_assembly = 0;
    for attempt in 0..6u32 {
        let mirror = f.root.join(format!("mirror-{attempt}"));
        let early: Vec<&Path> = data[..data.len() - 1].iter().map(PathBuf::as_path).collect();
        import(&early, &f.public, &mirror).code(4);
        let staged = staging(&mirror).unwrap();
        let mut child =
            import_cmd(&[last], &f.public, &mirror).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Wait until the last volume's marker is durable: every piece is in
        // staging and the import is reading the assembled blob back.
        let deadline = Instant::now() + Duration::from_mins(2);
        let markers = || fs::read_dir(staged.join("volumes")).map_or(0, Iterator::count);
        while markers() < data.len() && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(u64::from(attempt) * 20));
        let _ = child.kill();
        let status = child.wait().unwrap();
        // Killed once every piece was durable, before the atomic switch (a
        // kill after it leaves the new mirror, which crash.rs covers).
        let in_assembly = !status.success() && markers() == data.len() && !mirror.join("files").exists();
        if in_assembly {
            killed_in_assembly += 1;
            // Resume with no volume at all but the last, which is not read
            // again either: the pieces come from staging.
            let renamed = f.root.join("gone");
            let _ = fs::remove_dir_all(&renamed);
            fs::create_dir(&renamed).unwrap();
            let moved: Vec<PathBuf> = early
                .iter()
                .map(|p| {
                    let to = renamed.join(p.file_name().unwrap());
                    fs::rename(p, &to).unwrap();
                    to
                })
                .collect();
            import(&[last], &f.public, &mirror).success();
            for (from, to) in early.iter().zip(&moved) {
                fs::rename(to, from).unwrap();
            }
        } else if status.success() {
            // Too late: published already; the next attempt kills sooner.
        } else {
            import(&[last], &f.public, &mirror).success();
        }
        assert_eq!(snapshot(&mirror.join("files")), snapshot(&f.input));
        if killed_in_assembly > 0 && attempt >= 1 {
            break;
        }
    }
    assert!(killed_in_assembly > 0, "no kill landed while the blob was assembled");
}

#[test]
fn in_one_run_the_pieces_come_in_order_and_verify_and_import_check_the_whole_on_the_way() {
    let f = fixture(&["--parity", "1"]);
    airlock().arg("verify").arg(&f.bundle).arg("--trust").arg(&f.public).assert().success();
    let mirror = f.root.join("mirror");
    let (ok, rss) = peak_rss(import_cmd(&[&f.bundle], &f.public, &mirror));
    assert!(ok);
    assert_eq!(snapshot(&mirror.join("files")), snapshot(&f.input));
    if let Some(kib) = rss {
        eprintln!("measured: peak RSS of a one-run import of the 64 MiB blob over 16 MiB volumes {kib} KiB");
        assert!(kib < 96 * 1024, "peak RSS {kib} KiB");
    }
}
