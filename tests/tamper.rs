//! Every single-bit change anywhere in a bundle is rejected, and a rejected
//! import leaves the mirror exactly as it was.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

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
        keys: vec![key],
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

#[test]
fn every_bit_flip_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (key, policy) = key_pair();
    let bundle =
        small_bundle(dir.path(), key, "b.airlock", &[("a.txt", b"alpha"), ("d/b.txt", b"bravo bravo"), ("e", b"")]);
    let original = fs::read(&bundle).unwrap();
    verify_bundle(&bundle, &policy, airlock::now(), &mut Discard, &Silent).expect("the untouched bundle verifies");
    let copy = dir.path().join("copy");
    let mut accepted = Vec::new();
    for pos in 0..original.len() {
        for bit in [0x01u8, 0x80] {
            let mut data = original.clone();
            data[pos] ^= bit;
            fs::write(&copy, &data).unwrap();
            match verify_bundle(&copy, &policy, airlock::now(), &mut Discard, &Silent) {
                Err(Error::Rejected { .. }) => {}
                Err(other) => panic!("flip at {pos} gave a non-rejection error: {other}"),
                Ok(_) => accepted.push((pos, bit)),
            }
        }
    }
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
