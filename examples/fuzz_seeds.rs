//! Writes the seed corpus of the fuzz targets in tests/fuzz/ into the folder
//! given (default `tests/fuzz/seeds`), one subfolder per target: small
//! bundles made with the library (one and two signers, an incremental one),
//! their envelopes, manifests and seals, and the lockfiles of fixtures/lockfiles/.
//! `bash tests/fuzz/run.sh` runs it before fuzzing.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock::bundle::reader::{Member, VolumeReader};
use airlock::export::{ExportOptions, Inputs, Network, export};
use airlock::progress::Silent;
use airlock::sign::{SecretKey, envelope};

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args().nth(1).map_or_else(|| root.join("tests/fuzz/seeds"), PathBuf::from);
    let seeds = |target: &str| -> Result<PathBuf, Box<dyn Error>> {
        let dir = out.join(target);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    };

    let work = tempfile::tempdir()?;
    let keys = [SecretKey::generate()?, SecretKey::generate()?];
    let state = work.path().join("state");
    let trees: [&[(&str, &[u8])]; 3] = [
        &[("a.txt", b"alpha\n"), ("d/b.bin", &[0, 1, 2, 255]), ("empty", b"")],
        &[("a.txt", b"alpha\n"), ("d/b.bin", &[0, 1, 2, 255]), ("caf\u{e9}.md", "gr\u{fc}\u{df}e\n".as_bytes())],
        &[("only.txt", b"one file, two signers\n")],
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
            keys: if n == 2 { keys.to_vec() } else { vec![keys[0].clone()] },
            out: bundle.clone(),
            channel: "seeds".into(),
            expires_in: Duration::from_hours(1),
            now: airlock::now(),
            force: false,
            threads: 0,
            network: Network::default(),
            // The first two chain, so the second is incremental.
            state: (n < 2).then(|| state.clone()),
            full: false,
            split: None,
        };
        export(&options, &Silent)?;
        fs::copy(&bundle, seeds("volume")?.join(format!("bundle-{n}")))?;

        let (mut volume, envelope_bytes) = VolumeReader::open(fs::File::open(&bundle)?, "seed")?;
        while let Member::Blob { size, .. } = volume.next_member()? {
            volume.copy_member(size, &mut std::io::sink()).map_err(|e| e.into_error("seed"))?;
        }
        let tail = volume.finish()?;
        let payload = envelope::open_untrusted(&envelope_bytes, envelope::MANIFEST).map_err(|r| r.to_string())?.payload;
        fs::write(seeds("envelope")?.join(format!("manifest-{n}")), &envelope_bytes)?;
        fs::write(seeds("envelope")?.join(format!("seal-{n}")), &tail.seal)?;
        fs::write(seeds("manifest")?.join(format!("manifest-{n}")), payload)?;
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
    println!("seeds written to {}", out.display());
    Ok(())
}
