//! An import killed at any moment leaves the published mirror as it was
//! before (or, if the kill came after the atomic switch, as it is after),
//! never in between; and a re-run finishes the import.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{export_in_channel, keygen, snapshot, write_tree};

#[test]
fn killed_imports_never_leave_a_half_published_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");

    let first_in = dir.path().join("first");
    write_tree(&first_in, &[("shared.txt", b"version one"), ("only-first.txt", b"kept")]);
    let first = dir.path().join("first.airlock");
    let state = dir.path().join("state");
    export_in_channel(&first_in, &[&key], &first, Some(&state));

    // Enough data that an import takes a while: 160 incompressible files.
    let second_in = dir.path().join("second");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let blobs: Vec<(String, Vec<u8>)> = (0..160)
        .map(|i| {
            let data = (0..64 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            (format!("bulk/{i:03}.bin"), data)
        })
        .collect();
    let mut files: Vec<(&str, &[u8])> = blobs.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    files.push(("shared.txt", b"version two"));
    write_tree(&second_in, &files);
    let second = dir.path().join("second.airlock");
    export_in_channel(&second_in, &[&key], &second, Some(&state));

    let mirror = dir.path().join("mirror");
    let import_into = |bundle: &Path, mirror: &Path| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("airlock"));
        cmd.arg("import").arg("--quiet").arg(bundle).arg("--trust").arg(&public).arg("--mirror").arg(mirror);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    };
    let import = |bundle: &Path| import_into(bundle, &mirror);
    assert!(import(&first).status().unwrap().success());
    let before = snapshot(&mirror.join("files"));

    // How long a full import takes, to spread the kills across it.
    let scratch = dir.path().join("scratch-mirror");
    let started = Instant::now();
    assert!(import_into(&second, &scratch).status().unwrap().success());
    let full = started.elapsed();
    let after = snapshot(&scratch.join("files"));
    // The second bundle's inventory no longer lists only-first.txt: withdrawn.
    let expected_after = after.clone();

    let mut outcomes = (0, 0);
    for step in 0..12u32 {
        let delay = full * step / 10;
        let mut child = import(&second).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = snapshot(&mirror.join("files"));
        if now == before {
            outcomes.0 += 1;
        } else if now == expected_after {
            outcomes.1 += 1;
            break;
        } else {
            panic!("after a kill at {delay:?} the mirror is neither the old nor the new state");
        }
    }
    assert!(outcomes.0 > 0, "no kill landed before publication; the test did not test anything");
    // A re-run completes the import (and removes the killed runs' staging).
    assert!(import(&second).status().unwrap().success());
    assert_eq!(snapshot(&mirror.join("files")), expected_after);
    let staging = mirror.join(".airlock/staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
}

/// A split bundle's import killed at many points: the mirror is always the
/// old one or the new one, each run keeps the volumes it finished, and a
/// re-run resumes from them and completes.
#[test]
fn killed_multi_volume_imports_resume_and_never_damage_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let state = dir.path().join("state");
    let first_in = dir.path().join("first");
    write_tree(&first_in, &[("shared.txt", b"version one"), ("kept.txt", b"kept")]);
    let first = dir.path().join("first.airlock");
    export_in_channel(&first_in, &[&key], &first, Some(&state));

    let second_in = dir.path().join("second");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let blobs: Vec<(String, Vec<u8>)> = (0..120)
        .map(|i| {
            let data = (0..64 * 1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            (format!("bulk/{i:03}.bin"), data)
        })
        .collect();
    let mut files: Vec<(&str, &[u8])> = blobs.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    files.push(("shared.txt", b"version two"));
    write_tree(&second_in, &files);
    let second = dir.path().join("second.airlock");
    common::airlock()
        .args(["export", "--quiet", "--files"])
        .arg(&second_in)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&second)
        .arg("--state")
        .arg(&state)
        .args(["--split", "700KiB", "--parity", "1"])
        .assert()
        .success();
    let volumes = std::fs::read_dir(&second).unwrap().count();
    assert!(volumes >= 10, "{volumes} volumes");

    let mirror = dir.path().join("mirror");
    let import_into = |mirror: &Path| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("airlock"));
        cmd.arg("import").arg("--quiet").arg(&second).arg("--trust").arg(&public).arg("--mirror").arg(mirror);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    };
    common::airlock()
        .args(["import", "--quiet"])
        .arg(&first)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let before = snapshot(&mirror.join("files"));

    let scratch = dir.path().join("scratch-mirror");
    let started = Instant::now();
    assert!(import_into(&scratch).status().unwrap().success());
    let full = started.elapsed();
    let after = snapshot(&scratch.join("files"));
    assert_ne!(before, after);

    let staged = |mirror: &Path| -> usize {
        std::fs::read_dir(mirror.join(".airlock/staging"))
            .unwrap()
            .map(|d| std::fs::read_dir(d.unwrap().path().join("volumes")).map_or(0, Iterator::count))
            .sum()
    };
    // Kill points spread over a full import; every run resumes from the
    // volumes the runs before it kept, so the staged count never goes down.
    let (mut killed_before, mut last_staged, mut progressed) = (0, 0, false);
    for step in 1..=12u32 {
        let delay = full * step / 14;
        let mut child = import_into(&mirror).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = snapshot(&mirror.join("files"));
        if now == after {
            break;
        }
        assert!(now == before, "after a kill at {delay:?} the mirror is neither the old nor the new state");
        killed_before += 1;
        let count = staged(&mirror);
        assert!(count >= last_staged, "a killed run lost volumes an earlier run kept ({last_staged} -> {count})");
        progressed |= count > 0;
        last_staged = count;
    }
    assert!(killed_before > 0, "no kill landed before publication; the test did not test anything");
    assert!(progressed, "no killed run kept a volume: resuming was not exercised");
    assert!(import_into(&mirror).status().unwrap().success());
    assert_eq!(snapshot(&mirror.join("files")), after);
    assert_eq!(std::fs::read_dir(mirror.join(".airlock/staging")).unwrap().count(), 0);
}
