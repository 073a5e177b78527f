//! Single-bit changes in a bundle are rejected (every bit of the signed
//! frames, a sample of the compressed one), and a rejected import leaves
//! the mirror exactly as it was.

mod common;

use std::fs;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use airlock::bundle::reader::{Member, VolumeReader};
use airlock::error::Error;
use airlock::export::{ExportOptions, Inputs, Network, export};
use airlock::import::import;
use airlock::policy::Policy;
use airlock::progress::Silent;
use airlock::sign::SecretKey;
use airlock::verify::{Discard, verify_bundle};

fn small_bundle(dir: &Path, key: SecretKey, name: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    small_bundle_in(dir, key, name, files, None)
}

fn small_bundle_in(
    dir: &Path,
    key: SecretKey,
    name: &str,
    files: &[(&str, &[u8])],
    state: Option<&Path>,
) -> std::path::PathBuf {
    let input = dir.join(format!("{name}-in"));
    common::write_tree(&input, files);
    let out = dir.join(name);
    let options = ExportOptions {
        inputs: Inputs { files: vec![input], ..Inputs::default() },
        keys: vec![key.into()],
        out: out.clone(),
        channel: "default".into(),
        expires_in: Duration::from_hours(1),
        now: airlock::now(),
        force: false,
        threads: 0,
        network: Network::default(),
        state: state.map(Path::to_path_buf),
        full: false,
        split: None,
    };
    export(&options, &Silent).unwrap();
    out
}

fn key_pair() -> (SecretKey, Policy) {
    let key = SecretKey::generate().unwrap();
    let policy = Policy::from_keys(vec![key.public().clone()], 1).unwrap();
    (key, policy)
}

/// Where a volume's three frames lie: the manifest's, the blobs', the seal's.
fn frames(volume: &[u8]) -> [Range<usize>; 3] {
    let (mut reader, _) = VolumeReader::open(volume, "volume").unwrap();
    while let Member::Blob { size, .. } = reader.next_member().unwrap() {
        reader.copy_member(size, &mut std::io::sink()).unwrap();
    }
    let tail = reader.finish().unwrap();
    let seal_start = volume.len() - 8 - tail.seal.len();
    let blobs_start = seal_start - usize::try_from(tail.frame.size).unwrap();
    [0..blobs_start, blobs_start..seal_start, seal_start..volume.len()]
}

/// The bit flips tried: all eight bits of every byte of the manifest's
/// frame and of the seal's, the signed parts. In the compressed blob frame,
/// bits 0 and 7 of every byte and one more that moves from byte to byte,
/// so every bit position of it is tried too.
fn flips(volume: &[u8]) -> Vec<(usize, u8)> {
    let [manifest, blobs, seal] = frames(volume);
    let mut flips = Vec::new();
    for pos in manifest.chain(seal) {
        flips.extend((0..8).map(|bit| (pos, 1u8 << bit)));
    }
    for pos in blobs {
        flips.extend([(pos, 0x01), (pos, 0x80), (pos, 1 << (1 + pos % 6))]);
    }
    flips.sort_unstable();
    flips
}

#[test]
fn every_bit_flip_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (key, policy) = key_pair();
    let bundle =
        small_bundle(dir.path(), key, "b.airlock", &[("a.txt", b"alpha"), ("d/b.txt", b"bravo bravo"), ("e", b"")]);
    let original = fs::read(&bundle).unwrap();
    verify_bundle(&bundle, &policy, airlock::now(), &mut Discard, &Silent).expect("the untouched bundle verifies");
    let flips = flips(&original);
    assert!(flips.len() > 3 * original.len(), "{} flips over {} bytes", flips.len(), original.len());
    // Frame 1 holds the signed root and the segments it names: every bit of both is flipped.
    let (_, frame) = VolumeReader::open(&original[..], "volume").unwrap();
    let segments = frame.segments().expect("export writes format 2, with segments").to_vec().unwrap();
    let at = original.windows(segments.len()).position(|w| w == &segments[..]).expect("the segments are stored raw");
    assert!(at + segments.len() <= frames(&original)[0].end, "the segments lie in frame 1");
    // Two workers, each on its own copy: a verification is milliseconds in a debug build.
    let accepted: Vec<(usize, u8)> = std::thread::scope(|scope| {
        let workers: Vec<_> = flips
            .chunks(flips.len().div_ceil(2))
            .enumerate()
            .map(|(n, chunk)| {
                let (original, policy, copy) = (&original, &policy, dir.path().join(format!("copy-{n}")));
                scope.spawn(move || {
                    let mut accepted = Vec::new();
                    for &(pos, bit) in chunk {
                        let mut data = original.clone();
                        data[pos] ^= bit;
                        fs::write(&copy, &data).unwrap();
                        match verify_bundle(&copy, policy, airlock::now(), &mut Discard, &Silent) {
                            Err(Error::Rejected { .. }) => {}
                            Err(other) => panic!("flip {bit:#04x} at {pos} gave a non-rejection error: {other}"),
                            Ok(_) => accepted.push((pos, bit)),
                        }
                    }
                    accepted
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(accepted.is_empty(), "bit flips accepted at {accepted:?} of {} bytes", original.len());
}

#[test]
fn truncation_and_appended_data_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (key, policy) = key_pair();
    let bundle = small_bundle(dir.path(), key, "b.airlock", &[("a.txt", b"alpha"), ("b.txt", b"bravo")]);
    let original = fs::read(&bundle).unwrap();
    let copy = dir.path().join("copy");
    for len in 0..original.len() {
        fs::write(&copy, &original[..len]).unwrap();
        let result = verify_bundle(&copy, &policy, airlock::now(), &mut Discard, &Silent);
        assert!(matches!(result, Err(Error::Rejected { .. })), "truncation to {len} bytes accepted");
    }
    let mut longer = original.clone();
    longer.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]); // an empty zstd skippable frame
    fs::write(&copy, &longer).unwrap();
    assert!(matches!(
        verify_bundle(&copy, &policy, airlock::now(), &mut Discard, &Silent),
        Err(Error::Rejected { .. })
    ));
}

#[test]
fn rejected_imports_leave_the_mirror_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (key, policy) = key_pair();
    let state = dir.path().join("state");
    let first = small_bundle_in(
        dir.path(),
        key.clone(),
        "first.airlock",
        &[("keep.txt", b"already published"), ("x/y.txt", b"old")],
        Some(&state),
    );
    let mirror = dir.path().join("mirror");
    import(&first, &policy, &mirror, airlock::now(), false, &Silent).unwrap();
    let before = common::snapshot(&mirror);

    let second = small_bundle_in(
        dir.path(),
        key,
        "second.airlock",
        &[("keep.txt", b"already published"), ("x/y.txt", b"new contents"), ("z.txt", b"zulu")],
        Some(&state),
    );
    let original = fs::read(&second).unwrap();
    let copy = dir.path().join("copy");
    for pos in (0..original.len()).step_by(5) {
        let mut data = original.clone();
        data[pos] ^= 0x04;
        fs::write(&copy, &data).unwrap();
        let result = import(&copy, &policy, &mirror, airlock::now(), false, &Silent);
        assert!(matches!(result, Err(Error::Rejected { .. })), "flip at {pos} imported");
        assert_eq!(common::snapshot(&mirror), before, "mirror changed after a rejected import (flip at {pos})");
    }
    // The untouched bundle still imports afterwards.
    import(&second, &policy, &mirror, airlock::now(), false, &Silent).unwrap();
    assert_eq!(fs::read(mirror.join("files/x/y.txt")).unwrap(), b"new contents");
    assert_eq!(fs::read(mirror.join("files/keep.txt")).unwrap(), b"already published");
}
