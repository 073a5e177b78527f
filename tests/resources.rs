//! Bounded resources: the importer's memory and open files stay small
//! whatever the size of the bundle, because every blob streams from the
//! medium through the hashers into staging and nothing is held whole.

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;

use common::hostile::run_measuring_memory;

/// Peak resident memory allowed to an import, whatever the bundle.
const MEMORY_CAP_KIB: u64 = 64 << 10;
/// Open descriptors allowed: stdio, the bundle, the mirror's lock and a few directories and staged files.
const FD_CAP: usize = 32;

/// Incompressible bytes from a xorshift generator, written in 1 MiB chunks.
fn write_noise(path: &std::path::Path, bytes: usize, mut seed: u64) {
    let mut file = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..bytes / chunk.len() {
        for word in chunk.chunks_exact_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            word.copy_from_slice(&seed.to_le_bytes());
        }
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
}

#[test]
fn importing_a_large_bundle_stays_under_the_memory_cap_with_few_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    fs::create_dir_all(input.join("small")).unwrap();
    // 384 MiB in all: blobs far larger than the cap, and many small ones.
    for (i, mib) in [96usize, 64, 64, 64, 32, 32, 32].iter().enumerate() {
        write_noise(&input.join(format!("big-{i}.bin")), mib << 20, 0x9e37_79b9_7f4a_7c15 + i as u64);
    }
    for i in 0..200 {
        fs::write(input.join(format!("small/{i:03}.txt")), format!("small file {i}\n").repeat(i + 1)).unwrap();
    }
    let bundle = dir.path().join("big.airlock");
    common::export(&input, &[&key], &bundle);
    assert!(fs::metadata(&bundle).unwrap().len() > 384 << 20);

    let mirror = dir.path().join("mirror");
    let (out, peak_kib, fds) = run_measuring_memory(
        Command::new(assert_cmd::cargo::cargo_bin("airlock"))
            .args(["import", "--quiet"])
            .arg(&bundle)
            .arg("--trust")
            .arg(&public)
            .arg("--mirror")
            .arg(&mirror),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::metadata(mirror.join("files/big-0.bin")).unwrap().len(), 96 << 20);
    println!(
        "import of {} MiB: peak RSS {peak_kib} KiB, at most {fds} open files",
        fs::metadata(&bundle).unwrap().len() >> 20
    );
    assert!(peak_kib > 0, "the child's memory was never sampled");
    assert!(peak_kib < MEMORY_CAP_KIB, "import peaked at {peak_kib} KiB, the cap is {MEMORY_CAP_KIB} KiB");
    assert!(fds > 0 && fds <= FD_CAP, "import held {fds} open files at once");
}
