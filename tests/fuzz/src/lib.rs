//! Shared code of airlock's fuzz targets: the test key and clock the
//! `volume` target trusts, what it checks of each input ([`check`]), and its
//! structure-aware mutator ([`mutator`]).
//!
//! A signature says who sent a bundle, not that it is harmless: the
//! dangerous input is a hostile bundle signed by a trusted key. No fuzzer
//! can forge a signature, so the mutator plays that signer: it re-signs
//! the manifest and the seal of every mutant with [`key`], and [`check`]
//! runs the real verification and import under a policy trusting that key.
//! Only the public API of the airlock crate is used.

pub mod layout;
pub mod mutator;
pub mod rng;

use std::fs;
use std::path::Path;
use std::sync::LazyLock;

use airlock::Error;
use airlock::bundle::reader::{Member, VolumeReader};
use airlock::ecosystem::ManifestExt as _;
use airlock::import::import;
use airlock::manifest::Manifest;
use airlock::policy::Policy;
use airlock::progress::Silent;
use airlock::sign::{SecretKey, envelope};
use airlock::verify::{Discard, open_volume, verify_volume};

/// When the seeds were exported (examples/fuzz_seeds.rs uses the same time).
pub const SEED_TIME: u64 = 1_750_000_000;
/// The clock of the trusted path: a minute after the seeds were made,
/// inside their hour of validity, and the same for every run.
pub const NOW: u64 = SEED_TIME + 60;
/// The seed of the fuzzing key (examples/fuzz_seeds.rs has the same). It is
/// published here, so nothing but these targets may ever trust it.
pub const KEY_SEED: [u8; 32] = *b"airlock fuzz key, never trusted!";

/// Members larger than this are not copied on the untrusted path: a
/// verifier compares the declared size with the manifest before copying.
const MAX_MEMBER: u64 = 16 << 20;

/// The fuzzing key, loaded through the public API (a private key file).
pub fn key() -> &'static SecretKey {
    static KEY: LazyLock<SecretKey> = LazyLock::new(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("fuzz.key");
        fs::write(&path, key_file_text()).expect("writing the fuzz key");
        set_private(&path);
        SecretKey::load(&path).expect("the fuzz key loads")
    });
    &KEY
}

/// The text of a `.key` file holding [`KEY_SEED`].
#[must_use]
pub fn key_file_text() -> String {
    let hex: String = KEY_SEED.iter().map(|b| format!("{b:02x}")).collect();
    format!("airlock-sec-ed25519:{hex}\n")
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600 the fuzz key");
}

/// A policy trusting [`key`] alone.
pub fn policy() -> &'static Policy {
    static POLICY: LazyLock<Policy> =
        LazyLock::new(|| Policy::from_keys(vec![key().public().clone()], 1).expect("a one-key policy"));
    &POLICY
}

/// How far an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its manifest was not signed by the trusted key or did not pass its checks.
    Untrusted,
    /// The manifest was trusted, the import refused the volume.
    Refused,
    /// Imported into a new mirror.
    Imported,
}

/// Everything the `volume` target asks of one input: the reader as
/// `inspect` uses it, then verification and import under [`policy`].
/// Panics (the fuzzer's finding) when airlock panics, when an error is
/// not one line, when bad bytes in memory are called an I/O error, or
/// when a refused import leaves anything in a new mirror.
pub fn check(data: &[u8]) -> Outcome {
    read_untrusted(data);
    if !verify_trusted(data) {
        return Outcome::Untrusted;
    }
    import_trusted(data)
}

/// The reader on its own, as `inspect` and every command start: frame 1,
/// the manifest inside (decoded without trusting it), the blob members,
/// the end of the archive and the seal.
fn read_untrusted(data: &[u8]) {
    let Ok((mut volume, frame)) = VolumeReader::open(data, "fuzz") else { return };
    if let Ok(opened) = envelope::open_untrusted(&frame.envelope, envelope::MANIFEST) {
        let _ = Manifest::decode(opened.payload, frame.segments(), &airlock::manifest::segments::NoSegments);
    }
    loop {
        match volume.next_member() {
            Ok(Member::Blob { size, .. } | Member::Parity { size }) if size <= MAX_MEMBER => {
                if volume.copy_member(size, &mut std::io::sink()).is_err() {
                    return;
                }
            }
            // A split bundle's `volume.cbor`: its own canonical-CBOR decoder.
            Ok(Member::Info { size }) => {
                if volume.read_info(size).is_err() {
                    return;
                }
            }
            Ok(Member::Blob { .. } | Member::Parity { .. }) | Err(_) => return,
            Ok(Member::End) => break,
        }
    }
    if let Ok(tail) = volume.finish() {
        let _ = envelope::open_untrusted(&tail.seal, envelope::VOLUME_SEAL);
    }
}

/// `verify` of one volume: true when the manifest was trusted (then the import gets as far).
fn verify_trusted(data: &[u8]) -> bool {
    let mut manifests = Vec::new();
    let result = open_volume(data, "fuzz", policy(), NOW, &mut manifests)
        .and_then(|volume| verify_volume(volume, &manifests[0], policy(), &mut Discard, &Silent));
    if let Err(e) = &result {
        assert_one_line(e);
        assert!(!matches!(e, Error::Io { .. }), "bytes in memory were called an I/O error: {e}");
    }
    !manifests.is_empty()
}

/// `import` into a new mirror on a memory file system where there is one.
fn import_trusted(data: &[u8]) -> Outcome {
    static WORK: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
        dir.expect("a temporary folder")
    });
    let bundle = WORK.path().join("bundle.airlock");
    let mirror = WORK.path().join("mirror");
    fs::write(&bundle, data).expect("writing the input");
    let result = import(&bundle, policy(), &mirror, NOW, false, &Silent);
    let outcome = match &result {
        Ok(_) => Outcome::Imported,
        Err(e) => {
            assert_one_line(e);
            if let Error::Rejected { .. } = e {
                assert!(!mirror.exists(), "a refused import left a new mirror behind: {}", listing(&mirror));
            }
            Outcome::Refused
        }
    };
    // Split volumes stay staged by design (exit 4); the next input gets a new mirror.
    if mirror.exists() {
        fs::remove_dir_all(&mirror).expect("removing the mirror");
    }
    outcome
}

fn assert_one_line(e: &Error) {
    let text = e.to_string();
    assert!(!text.contains(['\n', '\r']), "an error spans lines: {text:?}");
}

/// What is in `dir`, for the failure message.
fn listing(dir: &Path) -> String {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        found.push(path.strip_prefix(dir).unwrap_or(&path).display().to_string());
        if let Ok(entries) = fs::read_dir(&path) {
            todo.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    found.sort();
    found.join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use airlock::export::{ExportOptions, Inputs, Network, export};

    use super::*;

    /// A bundle like the seeds: signed by the fuzzing key at `SEED_TIME`.
    fn seed_bundle() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir_all(input.join("d")).unwrap();
        fs::write(input.join("a.txt"), b"alpha\n").unwrap();
        fs::write(input.join("d/b.bin"), [0u8, 1, 2, 255]).unwrap();
        let out = dir.path().join("b.airlock");
        let options = ExportOptions {
            inputs: Inputs { files: vec![input], ..Inputs::default() },
            keys: vec![key().clone().into()],
            out: out.clone(),
            channel: "seeds".into(),
            expires_in: Duration::from_hours(1),
            now: SEED_TIME,
            force: false,
            threads: 0,
            network: Network::default(),
            state: None,
            full: false,
            split: None,
        };
        export(&options, &Silent).unwrap();
        fs::read(out).unwrap()
    }

    /// Stands in for libFuzzer's byte mutation, which needs the fuzzer linked.
    fn flip_a_byte(data: &mut [u8], size: usize, _max: usize) -> usize {
        if size > 0 {
            data[size / 2] ^= 0x20;
        }
        size
    }

    /// The point of re-signing: a seed imports, and most mutants get past
    /// the signature into the code behind it, where the fuzzer must look.
    #[test]
    fn seeds_import_and_most_mutants_get_past_the_signature() {
        let seed = seed_bundle();
        assert_eq!(check(&seed), Outcome::Imported);
        let mut counts = [0usize; 3];
        for n in 0..400 {
            let mut data = seed.clone();
            data.resize(seed.len() + 4096, 0);
            let max = data.len();
            let len = mutator::mutate(&mut data, seed.len(), max, n, flip_a_byte);
            let outcome = check(&data[..len]);
            counts[outcome as usize] += 1;
        }
        let [untrusted, refused, imported] = counts;
        eprintln!("of 400 mutants: {untrusted} untrusted, {refused} refused after the signature, {imported} imported");
        assert!(refused + imported > untrusted, "untrusted {untrusted}, refused {refused}, imported {imported}");
        assert!(imported > 0 && refused > imported, "untrusted {untrusted}, refused {refused}, imported {imported}");
    }
}
