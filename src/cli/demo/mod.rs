//! `airlock demo`: the whole round trip on embedded fixtures with no
//! network — sample files and packages from a loopback registry with their
//! real upstream evidence, exported from lockfiles, verified under a policy
//! that pins the trust roots, imported, and installed from the mirror by the
//! clients this machine has — including the rejections an operator should
//! see once (a forged registry signature, a damaged bundle, a bundle signed
//! by a key the site does not trust).

mod clients;
mod packages;
mod registry;

use std::fs;
use std::path::{Path, PathBuf};

use clap::{Args, Parser};
use serde::Serialize;

use super::export::ExportArgs;
use super::{Output, bytes};
use crate::error::{Error, IoContext, Result};
use crate::export::{ExportReport, export};
use crate::import::import;
use crate::policy::Policy;
use crate::progress::Silent;
use crate::sign::SecretKey;
use crate::verify::{Discard, EntryReport, VerifyReport, verify_bundle};
use clients::{ClientResult, ClientRun};
use packages::{Packages, Vars};

/// The sample files, embedded so the demo needs nothing but the binary.
const PAYLOAD: &[(&str, &[u8])] = &[
    ("docs/release-notes.txt", include_bytes!("../../../fixtures/demo/docs/release-notes.txt")),
    ("docs/Überblick und Plan.md", include_bytes!("../../../fixtures/demo/docs/Überblick und Plan.md")),
    ("tools/install.sh", include_bytes!("../../../fixtures/demo/tools/install.sh")),
    ("data/sample.bin", include_bytes!("../../../fixtures/demo/data/sample.bin")),
    ("data/empty.dat", include_bytes!("../../../fixtures/demo/data/empty.dat")),
];

/// Run the whole round trip on built-in sample files and packages, offline: keygen, export from lockfiles, verify, import, install
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Work in DIR (must be new or empty); default: a new folder under the system temp dir, kept for you to look at
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct DemoReport<'a> {
    dir: String,
    registry: String,
    exported_entries: usize,
    bundle: String,
    manifest_digest: String,
    /// The packages' evidence as the pinned policy judged it.
    packages: Vec<EntryReport<'a>>,
    forged_rejected: String,
    tampered_rejected: String,
    untrusted_rejected: String,
    mirror: String,
    published: crate::mirror::Paths,
    clients: Vec<ClientRun>,
}

/// `export --config FILE`, parsed as the command line would be, so the
/// demo runs the export an operator runs.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct ExportCommand {
    #[command(flatten)]
    args: ExportArgs,
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
            " 1. keygen    operator key {} -> keys/operator.key, keys/operator.pub",
            operator.public().id().short()
        ));

        for (name, data) in PAYLOAD {
            let path = dir.join("outgoing").join(name);
            fs::create_dir_all(path.parent().expect("has parent")).at(&path)?;
            fs::write(&path, data).at(&path)?;
        }
        let packages = Packages::embedded();
        let (_registry, base) = registry::start(&packages)?;
        packages.write_into(
            &dir,
            &Vars::default().with("@REGISTRY@", base.clone()).with("@MIRROR@", path(&dir.join("mirror"))),
        )?;
        step(&format!(
            " 2. registry  {base} serves the sample packages on loopback with their upstream evidence; connected/ holds their lockfiles and airlock.toml"
        ));

        fs::create_dir_all(dir.join("transfer")).at(&dir)?;
        let exported = export_config(&dir, "connected/airlock.toml", "transfer/demo.airlock")?;
        step(&format!(
            " 3. export    airlock export --config connected/airlock.toml: {} files and {} packages ({}) -> transfer/demo.airlock ({}), manifest {}",
            PAYLOAD.len(),
            exported.entries - PAYLOAD.len(),
            bytes(exported.bytes),
            bytes(exported.bundle_bytes),
            &exported.manifest_digest[..16]
        ));

        let bundle = dir.join("transfer/demo.airlock");
        let policy = crate::trust::load_policy(&dir.join("inside/policy.toml"))?;
        let (_, verified) = verify_bundle(&bundle, &policy, crate::now(), &mut Discard, &Silent)?;
        step(&format!(
            " 4. verify    offline, under inside/policy.toml (pinning the operator's key, the registry keys and Sigstore's trusted root): signature by {} and {} blobs check out",
            verified.trusted_signers.join(", "),
            verified.blobs
        ));
        let judged = judged_packages(&verified);
        for p in &judged {
            step(&format!("              {} {} {}", p.ecosystem(), p.name(), p.version().unwrap_or("")));
            step(&format!("                evidence  {}", p.provenance));
            step(&format!("                policy    {}", p.policy));
        }

        let forged = export_config(&dir, "connected/forged.toml", "transfer/forged.airlock")?;
        let forged_rejected = rejection(
            verify_bundle(Path::new(&forged.bundle), &policy, crate::now(), &mut Discard, &Silent).map(|_| ()),
        )?;
        step(&format!(
            " 5. forged    a registry that replays another package's real signature is refused: {forged_rejected}"
        ));

        let tampered_rejected = reject_tampered(&bundle, &dir.join("transfer/tampered.airlock"), &policy)?;
        step(&format!(" 6. tamper    one flipped bit is refused: {tampered_rejected}"));

        let untrusted_rejected = reject_untrusted(&bundle)?;
        step(&format!(" 7. trust     a site that pins another key refuses it: {untrusted_rejected}"));

        let mirror = dir.join("mirror");
        let imported = import(&bundle, &policy, &mirror, crate::now(), false, &Silent)?;
        step(&format!(
            " 8. import    published {} files into mirror/ (generation {})",
            imported.mirror.published.len(),
            imported.mirror.generation
        ));
        for published in imported.mirror.published.iter() {
            step(&format!("              mirror/{published}"));
        }

        let clients = install(&packages, &dir, &mirror)?;
        for (i, run) in clients.iter().enumerate() {
            let head = if i == 0 { " 9. install   " } else { "              " };
            step(&format!("{head}{:<6} {}", run.name, client_line(run)));
        }
        out.report(
            "demo",
            &DemoReport {
                dir: dir.display().to_string(),
                registry: base,
                exported_entries: exported.entries,
                bundle: exported.bundle,
                manifest_digest: exported.manifest_digest,
                packages: judged,
                forged_rejected,
                tampered_rejected,
                untrusted_rejected,
                mirror: imported.mirror.mirror,
                published: imported.mirror.published,
                clients,
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

/// `airlock export --config CONFIG --key keys/operator.key --out OUT` in `dir`,
/// with its own download cache.
fn export_config(dir: &Path, config: &str, out: &str) -> Result<ExportReport> {
    let argv = [
        "--config".into(),
        dir.join(config),
        "--key".into(),
        dir.join("keys/operator.key"),
        "--out".into(),
        dir.join(out),
        "--cache".into(),
        dir.join("connected/cache"),
    ];
    let parsed = ExportCommand::try_parse_from(argv).map_err(|e| Error::Usage(format!("the demo's export: {e}")))?;
    let (options, _clear) = parsed.args.options()?;
    export(&options, &Silent)
}

/// The packages' reports (the sample files have no upstream evidence to show).
fn judged_packages(report: &VerifyReport) -> Vec<EntryReport<'_>> {
    report.packages.iter().filter(|p| p.ecosystem() != crate::ecosystem::files::NAME).collect()
}

/// Serves the mirror on loopback and runs the clients this machine has against it.
fn install(packages: &Packages, dir: &Path, mirror: &Path) -> Result<Vec<ClientRun>> {
    let options = crate::serve::ServeOptions {
        mirror: mirror.to_owned(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let server = crate::serve::bind(&options)?.spawn(|_| {});
    let vars = Vars::default()
        .with("@DIR@", path(dir))
        .with("@MIRROR@", path(mirror))
        .with("@SERVE@", format!("http://{}", server.local_addr()));
    Ok(packages.script().client.iter().map(|client| clients::run(client, dir, &vars)).collect())
}

fn client_line(run: &ClientRun) -> String {
    match run.result {
        ClientResult::Installed => run.detail.clone(),
        ClientResult::Skipped => format!("skipped: {}", run.detail),
        ClientResult::Failed => format!("FAILED: {}", run.detail),
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
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

/// How a bad bundle was refused: `exit N (kind)`.
fn expect_rejection(result: Result<()>) -> Result<String> {
    refusal(result, false)
}

/// The same, with what the refusal said.
fn rejection(result: Result<()>) -> Result<String> {
    refusal(result, true)
}

fn refusal(result: Result<()>, with_message: bool) -> Result<String> {
    match result {
        Err(e @ Error::Rejected { .. }) => {
            let said = if with_message { format!(": {e}") } else { String::new() };
            Ok(format!("exit {} ({}){said}", e.exit_code(), e.kind()))
        }
        Err(other) => Err(other),
        Ok(()) => {
            Err(Error::Usage("the demo's bad bundle was accepted; this airlock build is broken, do not use it".into()))
        }
    }
}
