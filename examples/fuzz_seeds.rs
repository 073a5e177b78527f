//! Writes the seed corpus of the fuzz targets in tests/fuzz/ into the folder
//! given (default `tests/fuzz/seeds`), one subfolder per target: small
//! bundles made with the library (one and two signers, an incremental one,
//! the volumes of a split bundle with parity), their envelopes, manifests
//! and seals, and the lockfiles of fixtures/lockfiles/.
//! `bash tests/fuzz/run.sh` runs it before fuzzing.
//!
//! The bundles are signed by the fuzzing key and made at the fuzzing
//! clock's time, so that the `volume` target, which trusts that key at that
//! time, verifies and imports them: its mutants start from valid bundles.
//! Both are fixed here as in tests/fuzz/src/lib.rs (`KEY_SEED`,
//! `SEED_TIME`), which this crate cannot depend on; the seeds are the same
//! bytes on every run.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock::bundle::reader::{Member, VolumeReader};
use airlock::export::{ExportOptions, Inputs, Network, Split, export};
use airlock::progress::Silent;
use airlock::sign::{SecretKey, envelope};

/// `KEY_SEED` of tests/fuzz/src/lib.rs: a published test key nothing else trusts.
const KEY_SEED: [u8; 32] = *b"airlock fuzz key, never trusted!";
/// `SEED_TIME` of tests/fuzz/src/lib.rs.
const SEED_TIME: u64 = 1_750_000_000;

/// The fuzzing key, through the public API (a private `.key` file).
fn fuzz_key(dir: &Path) -> Result<SecretKey, Box<dyn Error>> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fuzz.key");
    fs::write(&path, format!("airlock-sec-ed25519:{}\n", hex::encode(KEY_SEED)))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    Ok(SecretKey::load(&path)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args().nth(1).map_or_else(|| root.join("tests/fuzz/seeds"), PathBuf::from);
    let seeds = |target: &str| -> Result<PathBuf, Box<dyn Error>> {
        let dir = out.join(target);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    };

    let work = tempfile::tempdir()?;
    // The second key of the co-signed seed is not trusted by the target: one of two signatures counts.
    let keys = [fuzz_key(work.path())?, SecretKey::generate()?];
    let state = work.path().join("state");
    // Bytes zstd cannot shrink, so that two blobs need two of the smallest volumes.
    let noise: Vec<u8> = (0..18_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let trees: [&[(&str, &[u8])]; 4] = [
        &[("a.txt", b"alpha\n"), ("d/b.bin", &[0, 1, 2, 255]), ("empty", b"")],
        &[("a.txt", b"alpha\n"), ("d/b.bin", &[0, 1, 2, 255]), ("caf\u{e9}.md", "gr\u{fc}\u{df}e\n".as_bytes())],
        &[("only.txt", b"one file, two signers\n")],
        &[("x/1.bin", &noise[..9000]), ("x/2.bin", &noise[9000..]), ("y.txt", b"split in volumes\n")],
    ];
    for (n, files) in trees.iter().enumerate() {
        let input = work.path().join(format!("in{n}"));
        for (name, data) in *files {
            let path = input.join(name);
            fs::create_dir_all(path.parent().expect("a file has a folder"))?;
            fs::write(path, data)?;
        }
        let bundle = work.path().join(format!("{n}.airlock"));
        let options = ExportOptions {
            inputs: Inputs { files: vec![input], ..Inputs::default() },
            keys: if n == 2 { keys.iter().cloned().map(Into::into).collect() } else { vec![keys[0].clone().into()] },
            out: bundle.clone(),
            channel: "seeds".into(),
            expires_in: Duration::from_hours(1),
            now: SEED_TIME,
            force: false,
            threads: 0,
            network: Network::default(),
            // The first two chain, so the second is incremental.
            state: (n < 2).then(|| state.clone()),
            full: false,
            // The last is split into the smallest volumes, one blob each, with a parity volume.
            split: (n == 3).then_some(Split { size: 20 << 10, parity: 1 }),
        };
        export(&options, &Silent)?;
        if n == 3 {
            for volume in fs::read_dir(&bundle)? {
                let volume = volume?.path();
                let name = volume.file_name().expect("a volume has a name").to_string_lossy().into_owned();
                fs::copy(&volume, seeds("volume")?.join(format!("split-{name}")))?;
            }
            continue;
        }
        fs::copy(&bundle, seeds("volume")?.join(format!("bundle-{n}")))?;

        let (mut volume, envelope_bytes) = VolumeReader::open(fs::File::open(&bundle)?, "seed")?;
        while let Member::Blob { size, .. } = volume.next_member()? {
            volume.copy_member(size, &mut std::io::sink()).map_err(|e| e.into_error("seed"))?;
        }
        let tail = volume.finish()?;
        let payload =
            envelope::open_untrusted(&envelope_bytes.envelope, envelope::MANIFEST).map_err(|r| r.to_string())?.payload;
        fs::write(seeds("envelope")?.join(format!("manifest-{n}")), &envelope_bytes.envelope)?;
        fs::write(seeds("envelope")?.join(format!("seal-{n}")), &tail.seal)?;
        // The manifest target reads a format 2 manifest as the root's length (4 bytes LE), the root, the segments.
        let mut manifest = u32::try_from(payload.len())?.to_le_bytes().to_vec();
        manifest.extend_from_slice(payload);
        if let Some(segments) = envelope_bytes.segments() {
            manifest.extend_from_slice(&segments.to_vec()?);
        }
        fs::write(seeds("manifest")?.join(format!("manifest-{n}")), manifest)?;
    }

    let lockfiles = root.join("fixtures/lockfiles");
    for (target, file) in [
        ("requirements_txt", "requirements.txt"),
        ("pylock_toml", "pylock.toml"),
        ("package_lock_json", "package-lock.json"),
        ("cargo_lock", "Cargo.lock"),
    ] {
        fs::copy(lockfiles.join(file), seeds(target)?.join(file))?;
    }
    // Sigstore bundles as the registries serve them: npm provenance (v0.1,
    // an intoto entry), npm's attestations documents (each holding two),
    // PEP 740 and a model signature (v0.3).
    let upstream = root.join("fixtures/registry/upstream");
    fs::copy(
        upstream.join("npm-sigstore-1.3.0-provenance.sigstore.json"),
        seeds("sigstore_bundle")?.join("npm-provenance"),
    )?;
    let attestations: serde_json::Value =
        serde_json::from_slice(&fs::read(upstream.join("attestations-sigstore-1.0.0.json"))?)?;
    for (n, attestation) in attestations["attestations"].as_array().into_iter().flatten().enumerate() {
        fs::write(seeds("sigstore_bundle")?.join(format!("npm-attestation-{n}")), attestation["bundle"].to_string())?;
    }
    fs::copy(
        root.join("fixtures/model-signing/v1.1.0-sigstore/model.sig"),
        seeds("sigstore_bundle")?.join("model-sig"),
    )?;
    println!("seeds written to {}", out.display());
    Ok(())
}
