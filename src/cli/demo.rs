//! `airlock demo`: the whole round trip on embedded fixtures, including the
//! two rejections an operator should see once (a damaged bundle, a bundle
//! signed by a key the site does not trust).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{Output, bytes};
use crate::error::{Error, IoContext, Result};
use crate::export::{ExportOptions, Inputs, Network, export};
use crate::import::import;
use crate::policy::Policy;
use crate::progress::Silent;
use crate::sign::SecretKey;
use crate::verify::{Discard, verify_bundle};

/// The demo payload, embedded so the demo needs nothing but the binary.
const PAYLOAD: &[(&str, &[u8])] = &[
    ("docs/release-notes.txt", include_bytes!("../../fixtures/demo/docs/release-notes.txt")),
    ("docs/Überblick und Plan.md", include_bytes!("../../fixtures/demo/docs/Überblick und Plan.md")),
    ("tools/install.sh", include_bytes!("../../fixtures/demo/tools/install.sh")),
    ("data/sample.bin", include_bytes!("../../fixtures/demo/data/sample.bin")),
    ("data/empty.dat", include_bytes!("../../fixtures/demo/data/empty.dat")),
];

/// Run the whole round trip on built-in sample files: keygen, export, verify, import
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Work in DIR (must be new or empty); default: a new folder under the system temp dir, kept for you to look at
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct DemoReport {
    dir: String,
    exported_entries: usize,
    bundle: String,
    manifest_digest: String,
    tampered_rejected: String,
    untrusted_rejected: String,
    mirror: String,
    published: Vec<String>,
}

impl DemoArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let dir = self.work_dir()?;
        let step = |s: &str| out.line(s);
        step(&format!("airlock demo in {}", dir.display()));

        let operator = SecretKey::generate()?;
        fs::create_dir_all(dir.join("keys")).at(&dir)?;
        operator.write_pair(&dir.join("keys/operator"), false)?;
        step(&format!(
            "1. keygen   operator key {} -> keys/operator.key, keys/operator.pub",
            operator.public().id().short()
        ));

        let outgoing = dir.join("outgoing");
        for (name, data) in PAYLOAD {
            let path = outgoing.join(name);
            fs::create_dir_all(path.parent().expect("has parent")).at(&path)?;
            fs::write(&path, data).at(&path)?;
        }
        let bundle = dir.join("transfer/demo.airlock");
        fs::create_dir_all(dir.join("transfer")).at(&dir)?;
        let trusted = Policy::from_keys(vec![operator.public().clone()], 1)?;
        let options = ExportOptions {
            inputs: Inputs { files: vec![outgoing], ..Inputs::default() },
            keys: vec![operator.into()],
            out: bundle.clone(),
            channel: "demo".into(),
            expires_in: Duration::from_hours(168),
            now: crate::now(),
            force: false,
            threads: 0,
            network: Network::default(),
            state: None,
            full: false,
            split: None,
        };
        let exported = export(&options, &Silent)?;
        step(&format!(
            "2. export   {} files ({}) -> transfer/demo.airlock ({}), manifest {}",
            exported.entries,
            bytes(exported.bytes),
            bytes(exported.bundle_bytes),
            &exported.manifest_digest[..16]
        ));

        let (_, verified) = verify_bundle(&bundle, &trusted, crate::now(), &mut Discard, &Silent)?;
        step(&format!(
            "3. verify   signature by {} and {} blobs check out offline",
            verified.trusted_signers.join(", "),
            verified.blobs
        ));

        let tampered_rejected = reject_tampered(&bundle, &dir.join("transfer/tampered.airlock"), &trusted)?;
        step(&format!("4. tamper   one flipped bit is refused: {tampered_rejected}"));

        let untrusted_rejected = reject_untrusted(&bundle)?;
        step(&format!("5. trust    a site that pins another key refuses it: {untrusted_rejected}"));

        let mirror = dir.join("mirror");
        let imported = import(&bundle, &trusted, &mirror, crate::now(), false, &Silent)?;
        step(&format!(
            "6. import   published {} files into mirror/files/ (generation {})",
            imported.mirror.published.len(),
            imported.mirror.generation
        ));
        for path in &imported.mirror.published {
            step(&format!("             mirror/{path}"));
        }
        out.report(
            "demo",
            &DemoReport {
                dir: dir.display().to_string(),
                exported_entries: exported.entries,
                bundle: exported.bundle,
                manifest_digest: exported.manifest_digest,
                tampered_rejected,
                untrusted_rejected,
                mirror: imported.mirror.mirror,
                published: imported.mirror.published,
            },
        );
        Ok(())
    }

    fn work_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.dir {
            if dir.exists() && fs::read_dir(dir).at(dir)?.next().is_some() {
                return Err(Error::Usage(format!(
                    "{}: is not empty; pass a new or empty folder to --dir",
                    dir.display()
                )));
            }
            fs::create_dir_all(dir).at(dir)?;
            Ok(dir.clone())
        } else {
            let tmp = tempfile::Builder::new().prefix("airlock-demo-").tempdir().at(&std::env::temp_dir())?;
            Ok(tmp.keep())
        }
    }
}

/// Copies the bundle with one bit flipped in its middle and shows that verification refuses it.
fn reject_tampered(bundle: &Path, copy: &Path, policy: &Policy) -> Result<String> {
    let mut data = fs::read(bundle).at(bundle)?;
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    fs::write(copy, &data).at(copy)?;
    expect_rejection(verify_bundle(copy, policy, crate::now(), &mut Discard, &Silent).map(|_| ()))
}

/// Verifies with a policy that trusts only a stranger's key.
fn reject_untrusted(bundle: &Path) -> Result<String> {
    let stranger = SecretKey::generate()?;
    let policy = Policy::from_keys(vec![stranger.public().clone()], 1)?;
    expect_rejection(verify_bundle(bundle, &policy, crate::now(), &mut Discard, &Silent).map(|_| ()))
}

fn expect_rejection(result: Result<()>) -> Result<String> {
    match result {
        Err(e @ Error::Rejected { .. }) => Ok(format!("exit {} ({})", e.exit_code(), e.kind())),
        Err(other) => Err(other),
        Ok(()) => Err(Error::Usage(
            "the demo's damaged bundle was accepted; this airlock build is broken, do not use it".into(),
        )),
    }
}
