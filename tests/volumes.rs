//! Split bundles on small media: volumes of at most --split bytes, each
//! verifiable alone, imported in any order over several runs, with parity
//! standing in for a lost volume; and the faults media bring: a missing,
//! truncated, repeated or foreign volume, a full disk.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{airlock, keygen, one_line, snapshot, write_tree};

const SPLIT: u64 = 64 << 10;

/// Incompressible bytes, so volumes fill up as they would with real packages.
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

/// Files of 20-35 KiB, so a 64 KiB volume holds one or two.
fn sample_files(dir: &Path, count: usize, seed: u64) -> PathBuf {
    let input = dir.join(format!("in-{seed}"));
    let files: Vec<(String, Vec<u8>)> =
        (0..count).map(|i| (format!("pkg/{i:02}.bin"), noise(20_000 + i * 1_300, seed + i as u64))).collect();
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    write_tree(&input, &borrowed);
    input
}

fn export_split(input: &Path, key: &Path, out: &Path, extra: &[&str]) {
    airlock()
        .args(["export", "--quiet", "--files"])
        .arg(input)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .args(["--split", &SPLIT.to_string()])
        .args(extra)
        .assert()
        .success();
}

/// The volume files of a split bundle, data volumes first, in order.
fn volumes(bundle: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(bundle).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| (p.file_name().unwrap().to_str().unwrap().starts_with("parity"), p.clone()));
    files
}

fn import(paths: &[&Path], public: &Path, mirror: &Path) -> assert_cmd::assert::Assert {
    airlock().args(["import", "--quiet"]).args(paths).arg("--trust").arg(public).arg("--mirror").arg(mirror).assert()
}

/// The published files, as the clients see them.
fn published(mirror: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    snapshot(&mirror.join("files"))
}

fn inputs(input: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    snapshot(input)
}

fn staged_volumes(mirror: &Path) -> usize {
    let staging = mirror.join(".airlock/staging");
    fs::read_dir(&staging)
        .map_or(0, |dirs| dirs.map(|d| fs::read_dir(d.unwrap().path().join("volumes")).unwrap().count()).sum())
}

#[test]
fn volumes_fit_the_size_and_each_verifies_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 10, 1);
    let bundle = dir.path().join("b.airlock");
    export_split(&input, &key, &bundle, &["--parity", "1"]);
    let files = volumes(&bundle);
    assert!(files.len() >= 5, "expected several volumes, got {files:?}");
    let count = files.len() - 1;
    for (i, file) in files.iter().enumerate() {
        let size = fs::metadata(file).unwrap().len();
        assert!(size <= SPLIT, "{} is {size} bytes, over {SPLIT}", file.display());
        let out = airlock().arg("verify").arg(file).arg("--trust").arg(&public).assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        // Each volume names the others as missing (parity volumes do not count as missing).
        let other = if i == 0 { 2 } else { 1 };
        assert!(text.contains(&format!("volume {other} of {count}")), "{text}");
        // Any zstd reads a volume (the seal is a skippable frame).
        let mut tar = Vec::new();
        zstd::stream::copy_decode(fs::File::open(file).unwrap(), &mut tar).unwrap();
        assert!(tar.len() > 1024);
    }
    airlock().arg("verify").arg(&bundle).arg("--trust").arg(&public).assert().success();
    let out = airlock().args(["inspect", "--json"]).arg(&bundle).assert().success();
    let report: serde_json::Value = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["volumes"], count);
}

#[test]
fn volumes_import_in_reverse_order_across_two_runs_without_reading_done_ones_again() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 12, 2);
    let bundle = dir.path().join("b.airlock");
    export_split(&input, &key, &bundle, &[]);
    let mut files = volumes(&bundle);
    files.reverse();
    let half = files.len() / 2;
    let (late, early) = files.split_at(half);
    let mirror = dir.path().join("mirror");

    // Run 1: the later volumes, last first. Not complete: exit 4, names what is missing, publishes nothing.
    let early_refs: Vec<&Path> = late.iter().map(PathBuf::as_path).collect();
    let out = import(&early_refs, &public, &mirror).code(4);
    let message = one_line(&out.get_output().stderr);
    let first_name = files.last().unwrap().file_name().unwrap().to_str().unwrap();
    assert!(message.contains(&format!("volume 1 of {} ({first_name})", files.len())), "{message}");
    assert!(!mirror.join("files").exists(), "published before the set was complete");
    assert_eq!(staged_volumes(&mirror), half);

    // Run 2: the rest, in reverse, plus damaged copies of the volumes run 1
    // verified: they are not read again, so the damage does not matter.
    let damaged = dir.path().join("again");
    fs::create_dir(&damaged).unwrap();
    let mut paths: Vec<PathBuf> = early.to_vec();
    for file in late {
        let copy = damaged.join(file.file_name().unwrap());
        let mut bytes = fs::read(file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        fs::write(&copy, bytes).unwrap();
        paths.push(copy);
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    import(&refs, &public, &mirror).success();
    assert_eq!(published(&mirror), inputs(&input));
    assert_eq!(fs::read_dir(mirror.join(".airlock/staging")).unwrap().count(), 0, "staging kept after publishing");

    // A third run of the same bundle is a no-op.
    import(&[&bundle], &public, &mirror).success();
}

#[test]
fn a_missing_volume_is_named_and_the_mirror_stays_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let first_in = dir.path().join("first");
    write_tree(&first_in, &[("kept.txt", b"already published")]);
    let first = dir.path().join("first.airlock");
    common::export_in_channel(&first_in, &[&key], &first, Some(&state));
    let mirror = dir.path().join("mirror");
    import(&[&first], &public, &mirror).success();
    let before = snapshot(&mirror);

    let input = sample_files(dir.path(), 8, 3);
    let bundle = dir.path().join("b.airlock");
    airlock()
        .args(["export", "--quiet", "--files"])
        .arg(&input)
        .args(["--key"])
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .arg("--state")
        .arg(&state)
        .args(["--split", "64KiB"])
        .assert()
        .success();
    let files = volumes(&bundle);
    let count = files.len();
    fs::remove_file(&files[1]).unwrap();
    let out = import(&[&bundle], &public, &mirror).code(4);
    let message = one_line(&out.get_output().stderr);
    let width = count.to_string().len();
    assert!(message.contains(&format!("volume 2 of {count} (volume-{:0width$}-of-{count}.airlock)", 2)), "{message}");
    assert_eq!(snapshot(&mirror), before, "the mirror changed while a volume was missing");

    // verify on the folder checks the set: incomplete too.
    let out = airlock().arg("verify").arg(&bundle).arg("--trust").arg(&public).assert().code(4);
    assert!(one_line(&out.get_output().stderr).contains("volume 2 of"));
}

#[test]
fn a_truncated_volume_is_rejected_by_name_and_a_good_copy_finishes_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 8, 4);
    let bundle = dir.path().join("b.airlock");
    export_split(&input, &key, &bundle, &[]);
    let files = volumes(&bundle);
    let good = dir.path().join("good-copy.airlock");
    fs::copy(&files[2], &good).unwrap();
    let len = fs::metadata(&files[2]).unwrap().len();
    fs::OpenOptions::new().write(true).open(&files[2]).unwrap().set_len(len - 100).unwrap();

    let mirror = dir.path().join("mirror");
    let out = import(&[&bundle], &public, &mirror).code(1);
    let message = one_line(&out.get_output().stderr);
    assert!(message.contains(files[2].file_name().unwrap().to_str().unwrap()), "{message}");
    assert!(message.contains("truncated"), "{message}");
    assert!(!mirror.join("files").exists());
    // The other volumes were verified and kept: the good copy alone finishes.
    assert_eq!(staged_volumes(&mirror), files.len() - 1);
    import(&[&good], &public, &mirror).success();
    assert_eq!(published(&mirror), inputs(&input));
}

#[test]
fn volumes_of_two_bundles_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let one = dir.path().join("one.airlock");
    let two = dir.path().join("two.airlock");
    export_split(&sample_files(dir.path(), 4, 5), &key, &one, &[]);
    export_split(&sample_files(dir.path(), 4, 6), &key, &two, &[]);
    let a = volumes(&one)[0].clone();
    let b = volumes(&two)[1].clone();
    let mirror = dir.path().join("mirror");
    let out = import(&[&a, &b], &public, &mirror).code(2);
    let message = one_line(&out.get_output().stderr);
    assert!(message.contains("two bundles"), "{message}");
    assert!(message.contains(a.to_str().unwrap()) && message.contains(b.to_str().unwrap()), "{message}");
    assert!(!mirror.exists(), "a refused import created the mirror");
    airlock().arg("verify").arg(&a).arg(&b).arg("--trust").arg(&public).assert().code(2);
}

#[test]
fn a_repeated_volume_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 6, 7);
    let bundle = dir.path().join("b.airlock");
    export_split(&input, &key, &bundle, &[]);
    let files = volumes(&bundle);
    let copy = dir.path().join("copy-of-first.airlock");
    fs::copy(&files[0], &copy).unwrap();
    let mirror = dir.path().join("mirror");
    // The same volume three times: in the folder, by its path, and a copy.
    import(&[&bundle, &files[0], &copy], &public, &mirror).success();
    assert_eq!(published(&mirror), inputs(&input));
    // And again in a later run of an incomplete set.
    let other = dir.path().join("mirror2");
    import(&[&files[0], &copy], &public, &other).code(4);
    import(&[&files[0]], &public, &other).code(4);
    assert_eq!(staged_volumes(&other), 1);
}

#[test]
fn with_one_parity_volume_any_one_data_volume_may_be_lost_or_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 9, 8);
    let bundle = dir.path().join("b.airlock");
    export_split(&input, &key, &bundle, &["--parity", "1"]);
    let files = volumes(&bundle);
    let data = files.len() - 1;
    assert!(data >= 3);
    for lost in 0..data {
        let copy = dir.path().join(format!("lost-{lost}"));
        fs::create_dir(&copy).unwrap();
        for file in &files {
            fs::copy(file, copy.join(file.file_name().unwrap())).unwrap();
        }
        let victim = copy.join(files[lost].file_name().unwrap());
        if lost % 2 == 0 {
            fs::remove_file(&victim).unwrap();
        } else {
            // Damaged rather than lost: one flipped byte.
            let mut bytes = fs::read(&victim).unwrap();
            let at = bytes.len() - 200;
            bytes[at] ^= 1;
            fs::write(&victim, bytes).unwrap();
        }
        let mirror = dir.path().join(format!("mirror-{lost}"));
        let out = airlock()
            .args(["import", "--json"])
            .arg(&copy)
            .arg("--trust")
            .arg(&public)
            .arg("--mirror")
            .arg(&mirror)
            .assert()
            .success();
        let report: serde_json::Value = common::json_report(&out.get_output().stdout);
        let rebuilt = &report["report"]["verified"]["volumes"]["rebuilt"];
        assert_eq!(rebuilt.as_array().unwrap().len(), 1, "{report}");
        assert!(rebuilt[0]["text"].as_str().unwrap().starts_with(&format!("volume {} of", lost + 1)), "{report}");
        assert_eq!(rebuilt[0]["number"], serde_json::json!(lost + 1), "{report}");
        assert_eq!(published(&mirror), inputs(&input), "volume {lost} lost");
    }
    // Two lost volumes are more than one parity volume can rebuild.
    let copy = dir.path().join("lost-two");
    fs::create_dir(&copy).unwrap();
    for file in &files[2..] {
        fs::copy(file, copy.join(file.file_name().unwrap())).unwrap();
    }
    let out = import(&[&copy], &public, &dir.path().join("mirror-two")).code(4);
    assert!(one_line(&out.get_output().stderr).contains("volume 1 of"));
}

#[test]
fn a_blob_larger_than_a_volume_is_cut_across_volumes_within_the_size() {
    // Issue 18: a blob larger than a volume was a usage error; it is now cut.
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("big.iso", &noise(200_000, 9)), ("small.txt", b"small")]);
    let bundle = dir.path().join("b.airlock");
    common::export_files(&input, &key, &bundle).args(["--quiet", "--split", "64KiB"]).assert().success();
    let files = volumes(&bundle);
    assert!(files.len() >= 4, "{} volumes", files.len());
    for file in &files {
        assert!(fs::metadata(file).unwrap().len() <= SPLIT, "{}", file.display());
    }
    let mirror = dir.path().join("mirror");
    let paths: Vec<&Path> = files.iter().rev().map(PathBuf::as_path).collect();
    import(&paths, &public, &mirror).success();
    assert_eq!(published(&mirror), inputs(&input));
}

#[test]
fn volumes_with_no_room_beside_the_manifest_are_a_usage_error_naming_a_size_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    // Enough entries that the manifest every volume repeats fills 16 KiB.
    let names: Vec<String> = (0..300).map(|i| format!("docs/a-rather-long-file-name-{i:04}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    write_tree(&input, &files);
    let bundle = dir.path().join("b.airlock");
    let out = common::export_files(&input, &key, &bundle).args(["--split", "16KiB"]).assert().code(2);
    let message = one_line(&out.get_output().stderr);
    assert!(message.contains("no room for blobs beside the manifest"), "{message}");
    let size = message.split("the smallest --split that does is ").nth(1).unwrap().split(' ').next().unwrap();
    assert!(!bundle.exists());
    common::export_files(&input, &key, &bundle).args(["--quiet", "--split", size]).assert().success();
    let mirror = dir.path().join("mirror");
    import(&[&bundle], &public, &mirror).success();
    assert_eq!(published(&mirror), inputs(&input));
}

#[test]
fn without_split_the_bundle_is_one_file_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 3, 10);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    assert!(bundle.is_file());
    // No volume.cbor member: the first member after the manifest (its envelope and segments) is a blob.
    let mut tar = Vec::new();
    zstd::stream::copy_decode(fs::File::open(&bundle).unwrap(), &mut tar).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names[..2], ["manifest.cose", "manifest.segments"]);
    assert!(names[2..].iter().all(|n| n.starts_with("blobs/")), "{names:?}");
}

#[test]
fn gc_removes_staging_only_of_bundles_that_can_no_longer_be_imported() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let export_in = |input: &Path, out: &Path, extra: &[&str]| {
        airlock()
            .args(["export", "--quiet", "--files"])
            .arg(input)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(out)
            .args(extra)
            .assert()
            .success();
    };
    let mirror = dir.path().join("mirror");
    let gc = |extra: &[&str]| airlock().args(["gc", "--quiet", "--mirror"]).arg(&mirror).args(extra).assert().success();

    // Half of bundle 1 of channel weekly, and half of a bundle of channel other.
    let weekly = dir.path().join("weekly-1.airlock");
    let state_arg = state.to_str().unwrap();
    export_in(
        &sample_files(dir.path(), 6, 11),
        &weekly,
        &["--state", state_arg, "--channel", "weekly", "--split", "64KiB"],
    );
    let other = dir.path().join("other-1.airlock");
    export_in(&sample_files(dir.path(), 6, 12), &other, &["--channel", "other", "--split", "64KiB"]);
    import(&[&volumes(&weekly)[0]], &public, &mirror).code(4);
    import(&[&volumes(&other)[0]], &public, &mirror).code(4);
    assert_eq!(staged_volumes(&mirror), 2);
    gc(&[]);
    assert_eq!(staged_volumes(&mirror), 2, "gc removed staging of bundles that can still be imported");

    // Bundle 2 of weekly is imported: bundle 1 can never be, its staging goes.
    let next = dir.path().join("weekly-2.airlock");
    export_in(&sample_files(dir.path(), 2, 13), &next, &["--state", state_arg, "--channel", "weekly", "--full"]);
    import(&[&next], &public, &mirror).success();
    gc(&[]);
    assert_eq!(staged_volumes(&mirror), 1);
    gc(&["--all-staging"]);
    assert_eq!(fs::read_dir(mirror.join(".airlock/staging")).unwrap().count(), 0);
}

/// A tmpfs of limited size, unmounted on drop; `None` where this process
/// may not mount one (the check is then [`common::skip`]ped: printed and
/// counted, or a failure under `AIRLOCK_NO_SKIP=1`).
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(at: &Path, bytes: u64) -> Option<SmallFs> {
        fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(SmallFs(at.to_owned())),
            Ok(_) | Err(_) => {
                common::skip(
                    "cannot mount a small tmpfs here (needs root and mount), so the full-disk check is untested",
                );
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_one_clean_line_naming_the_bytes_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let Some(small) = SmallFs::mount(&dir.path().join("small"), 2 << 20) else { return };
    let (key, public) = keygen(dir.path(), "op");
    let tiny_in = dir.path().join("tiny");
    write_tree(&tiny_in, &[("a.txt", b"fits")]);
    let tiny = dir.path().join("tiny.airlock");
    common::export(&tiny_in, &[&key], &tiny);
    let mirror = small.0.join("mirror");
    import(&[&tiny], &public, &mirror).success();
    let before = snapshot(&mirror);

    // About 3 MiB of packages for a 2 MiB filesystem, as one file and split.
    let input = dir.path().join("big");
    let files: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("{i:02}.bin"), noise(50_000, 100 + i))).collect();
    write_tree(&input, &files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect::<Vec<_>>());
    // Another channel than the tiny bundle's, so only the space can refuse them.
    let single = dir.path().join("single.airlock");
    common::export_files(&input, &key, &single).args(["--quiet", "--channel", "big"]).assert().success();
    let split = dir.path().join("split.airlock");
    common::export_files(&input, &key, &split)
        .args(["--quiet", "--channel", "big", "--split", "256KiB"])
        .assert()
        .success();
    for bundle in [&single, &split] {
        let out = import(&[bundle], &public, &mirror).code(3);
        let message = one_line(&out.get_output().stderr);
        assert!(message.contains("needs") && message.contains("available"), "{message}");
        let needed: u64 = message.split(" needs ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(needed > 2 << 20, "{message}");
        assert_eq!(snapshot(&mirror), before, "a full disk changed the mirror");
        assert_eq!(staged_volumes(&mirror), 0);
    }
    // A fresh mirror on a full disk is not even created.
    let fresh = small.0.join("fresh");
    import(&[&single], &public, &fresh).code(3);
    assert!(!fresh.exists());
    // An export that does not fit (the disk fills under the thread that
    // writes the compressed bytes) is one line naming the bundle, and
    // leaves nothing there.
    let on_small = small.0.join("big.airlock");
    let out = common::export_files(&input, &key, &on_small).args(["--quiet", "--channel", "big"]).assert().code(3);
    let message = one_line(&out.get_output().stderr);
    assert!(message.contains("big.airlock") && message.contains("space"), "{message}");
    let left: Vec<_> = fs::read_dir(&small.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "mirror" && name != "lost+found")
        .collect();
    assert!(left.is_empty(), "an export that failed left {left:?}");
}

#[test]
fn a_volume_whose_manifest_segments_are_damaged_is_named_and_parity_stands_in() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = sample_files(dir.path(), 9, 21);
    let bundle = dir.path().join("b.airlock");
    export_split(&input, &key, &bundle, &["--parity", "1"]);
    let files = volumes(&bundle);
    // One byte of an entry's path in volume 2's copy of the segments (frame 1 is stored, not compressed).
    let victim = &files[1];
    let mut bytes = fs::read(victim).unwrap();
    let at = bytes.windows(10).position(|w| w == b"pkg/04.bin").expect("the segments hold the paths");
    bytes[at + 5] ^= 1;
    fs::write(victim, &bytes).unwrap();
    // Named with the others, after a good volume: refused by name, as damaged.
    let out = airlock().arg("verify").arg(&files[0]).arg(victim).arg("--trust").arg(&public).assert().code(1);
    let line = one_line(&out.get_output().stderr);
    assert!(line.contains(victim.to_str().unwrap()) && line.contains("this volume is damaged"), "{line}");
    // Found in the folder: set aside, and the parity volume rebuilds it.
    let mirror = dir.path().join("mirror");
    let out = airlock()
        .args(["import", "--json"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let report = common::json_report(&out.get_output().stdout);
    assert_eq!(report["report"]["verified"]["volumes"]["rebuilt"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(published(&mirror), inputs(&input));
}
