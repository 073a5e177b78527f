//! `airlock export`

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::keys::{ClearKeys, KeyParser, UnlockArgs};
use super::{Output, bytes, counted};
use crate::config::Config;
use crate::ecosystem::{Source, cargo, debian, huggingface, npm, oci, pypi};
use crate::error::{Error, Result};
use crate::escape::one_line;
use crate::export::{ExportOptions, Inputs, MAX_EXPIRES_IN, Network, Split, export};
use crate::fetch::Cache;
use crate::sign::signer::KeySource;

// Each ecosystem's flags are defined in its folder (`ecosystem::<name>::cli`)
// and flattened here, the one place that lists them, where `--help` has always
// shown them: lockfiles with the inputs, endpoints together, PyPI's file
// choices after them.
/// Resolve artifacts and write a signed, content-addressed bundle
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Ship every regular file under DIR (published under MIRROR/files/); repeatable
    #[arg(long, value_name = "DIR")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub pypi_lock: pypi::cli::LockArgs,
    #[command(flatten)]
    pub npm_lock: npm::cli::LockArgs,
    #[command(flatten)]
    pub cargo_lock: cargo::cli::LockArgs,
    #[command(flatten)]
    pub debian_packages: debian::cli::LockArgs,
    #[command(flatten)]
    pub oci_images: oci::cli::LockArgs,
    #[command(flatten)]
    pub hf_repos: huggingface::cli::RepoArgs,
    /// Read inputs, endpoints, platform choices and channel from an airlock.toml (schemas/config.cddl)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Secret key to sign with: a key file (encrypted or in clear), or a PKCS#11 URI (pkcs11:token=...;object=...); repeat to co-sign with several keys
    #[arg(long, value_name = "KEY", required = true, value_parser = KeyParser, env = "AIRLOCK_KEY", hide_env_values = true)]
    pub key: Vec<KeySource>,
    /// The bundle file to write
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Sync channel the bundle belongs to [default: default]
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// How long the bundle stays importable, e.g. 30d, 12h, 2weeks; at most 100years [default: 30d]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expires: Option<Duration>,
    #[command(flatten)]
    pub pypi_index: pypi::cli::IndexArgs,
    #[command(flatten)]
    pub npm_registry: npm::cli::RegistryArgs,
    #[command(flatten)]
    pub cargo_index: cargo::cli::IndexArgs,
    #[command(flatten)]
    pub debian_archive: debian::cli::ArchiveArgs,
    #[command(flatten)]
    pub oci_registry: oci::cli::RegistryArgs,
    #[command(flatten)]
    pub pypi_files: pypi::cli::FileArgs,
    /// Download cache [default: $XDG_CACHE_HOME/airlock or ~/.cache/airlock]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Concurrent downloads
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Seconds to wait for data from a registry before giving up on a request
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// How often to retry a request that failed in a way that may pass (connection error, 429, 5xx)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: u32,
    /// Channel state folder: numbers bundles in sequence and chains each to the previous one
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// With --state: carry every blob, even those earlier bundles of the channel carried (for a new site, or after loss)
    #[arg(long)]
    pub full: bool,
    /// Write BUNDLE as a folder of volumes of at most SIZE bytes each (4GiB, 700MiB, 100KiB, 4GB, bytes), or for a medium: fat32 (4 GiB - 1), dvd (4,691,984,384: single-layer DVD less 8 MiB for its file system), bd25 (25,016,926,208: single-layer BD-R less 8 MiB). Every volume holds the signed manifest and its own seal, so each can be verified alone
    #[arg(long, value_name = "SIZE", value_parser = crate::bundle::split::parse_size)]
    pub split: Option<u64>,
    /// With --split: add N parity volumes (Reed-Solomon), so that any N missing or damaged data volumes are rebuilt on import
    #[arg(long, value_name = "N", requires = "split", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub parity: u32,
    /// Replace BUNDLE if it exists (a regular file; with --split, only an earlier bundle, never a folder holding other files)
    #[arg(long)]
    pub force: bool,
    /// Check the key, config, lockfiles, folders and --out, and say what would be fetched; ask no registry and write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

/// `export --dry-run`: what the inputs name, checked, and what an export
/// would then fetch.
fn dry_run(options: &ExportOptions, out: &Output) -> Result<()> {
    let plan = crate::export::plan(options)?;
    out.line(format!(
        "would export into {} (channel {}, expires {}, signed by {})",
        plan.bundle,
        plan.channel,
        plan.expires,
        plan.signers.join(", ")
    ));
    for folder in &plan.files {
        out.line(format!(
            "  {:<6} {}: {} ({})",
            "files",
            one_line(&folder.folder),
            counted(folder.files, "file", "files"),
            bytes(folder.bytes)
        ));
    }
    for p in &plan.packages {
        let version = p.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        let line = format!("  {:<6} {}{version} from {} ({})", p.ecosystem, p.name, p.from, p.input);
        out.detail(one_line(&line));
    }
    if !plan.packages.is_empty() {
        let mut by_ecosystem: Vec<(&str, usize)> = Vec::new();
        for p in &plan.packages {
            match by_ecosystem.iter_mut().find(|(name, _)| *name == p.ecosystem) {
                Some((_, n)) => *n += 1,
                None => by_ecosystem.push((p.ecosystem, 1)),
            }
        }
        let counts: Vec<String> = by_ecosystem.iter().map(|(name, n)| format!("{name} {n}")).collect();
        out.line(format!(
            "would fetch {} named by the inputs ({}; -v lists them) with their evidence, and what the registries add to them (a system package's dependencies, an image's platforms and layers, a model's files)",
            counted(plan.packages.len(), "package", "packages"),
            counts.join(", ")
        ));
    }
    out.line("nothing was fetched or written: run the same command without --dry-run to export");
    out.report("export-plan", &plan);
    Ok(())
}

/// A `--expires` duration: from one second to [`MAX_EXPIRES_IN`] (100
/// years), refused here, before anything is read or written.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30d, 12h, 2weeks)"))?;
    if d.as_secs() == 0 {
        return Err("must be at least one second".into());
    }
    if d > MAX_EXPIRES_IN {
        return Err("must be at most 100years: a bundle should not stay importable for longer".into());
    }
    Ok(d)
}

impl ExportArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let (options, clear) = self.options()?;
        if self.dry_run {
            return dry_run(&options, out);
        }
        let progress = out.progress();
        let report = export(&options, &progress)?;
        out.line(format!(
            "exported  {}, {}, {} -> {} ({})",
            counted(report.entries, "entry", "entries"),
            counted(report.blobs, "blob", "blobs"),
            bytes(report.bytes),
            report.bundle,
            bytes(report.bundle_bytes)
        ));
        if options.inputs.any_lockfile() {
            out.line(match report.downloads {
                0 => "fetched   nothing from registries: every artifact came from the cache".to_owned(),
                1 => "fetched   1 artifact from registries (any others came from the cache)".to_owned(),
                n => format!("fetched   {n} artifacts from registries (any others came from the cache)"),
            });
        }
        if report.carried_blobs < report.blobs {
            out.line(format!(
                "carried   {} of {} blobs ({}): the rest went in earlier bundles of the channel (incremental; --full carries all)",
                report.carried_blobs,
                report.blobs,
                bytes(report.carried_bytes)
            ));
        }
        if report.volumes + report.parity_volumes > 1 {
            out.line(format!(
                "volumes   {} data + {} parity in {}/ (each verifiable alone)",
                report.volumes, report.parity_volumes, report.bundle
            ));
        }
        out.line(format!(
            "manifest  {} (channel {}, sequence {})",
            report.manifest_digest, report.channel, report.sequence
        ));
        out.line(format!("signed by {}", report.signers.join(", ")));
        out.line(format!("expires   {}", report.expires));
        out.report("export", &report);
        // Build environments set SOURCE_DATE_EPOCH to a commit's time; a
        // bundle dated from it can be born expired (reproducible on purpose,
        // but no import will take it).
        if options.now.saturating_add(options.expires_in.as_secs()) <= crate::now() {
            out.warn(format!(
                "{}: expired already ({}): it is dated {} from SOURCE_DATE_EPOCH; no import will accept it: unset SOURCE_DATE_EPOCH or give a longer --expires",
                report.bundle,
                report.expires,
                report.created
            ));
        }
        clear.warn(out);
        Ok(())
    }

    /// The export these flags ask for, with the keys opened (and which of
    /// them are stored in clear, to warn about).
    pub(super) fn options(&self) -> Result<(ExportOptions, ClearKeys)> {
        // The key and config files are inputs too; the library checks the others.
        let named: Vec<&std::path::Path> =
            self.key.iter().filter_map(KeySource::path).chain(self.config.iter().map(PathBuf::as_path)).collect();
        crate::durable::refuse_inputs(&self.out, "--out", &named)?;
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let (keys, clear) = self.unlock.open(&self.key)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
        let expires = match (self.expires, &config.expires) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                parse_duration(text).map_err(|e| Error::Usage(format!("config expires {text:?}: {e}")))?
            }
            (None, None) => Duration::from_hours(30 * 24),
        };
        let options = ExportOptions {
            inputs: self.inputs(&config),
            keys,
            out: self.out.clone(),
            channel: self.channel.clone().or(config.channel.clone()).unwrap_or_else(|| "default".into()),
            expires_in: expires,
            now: crate::creation_time(),
            force: self.force,
            threads,
            network: self.network(),
            state: self.state.clone(),
            full: self.full,
            split: self.split.map(|size| Split { size, parity: self.parity }),
        };
        Ok((options, clear))
    }

    fn inputs(&self, config: &Config) -> Inputs {
        Inputs { files: config.files.iter().chain(&self.files).cloned().collect(), sources: self.sources(config) }
    }

    /// Each ecosystem's lockfiles and endpoint: its flags over its config section.
    fn sources(&self, config: &Config) -> Vec<Box<dyn Source>> {
        vec![
            Box::new(pypi::cli::lockfiles(&self.pypi_lock, &self.pypi_index, &self.pypi_files, &config.pypi)),
            Box::new(npm::cli::lockfiles(&self.npm_lock, &self.npm_registry, &config.npm)),
            Box::new(cargo::cli::lockfiles(&self.cargo_lock, &self.cargo_index, &config.cargo)),
            Box::new(debian::cli::lockfiles(&self.debian_packages, &self.debian_archive, &config.debian)),
            Box::new(oci::cli::images(&self.oci_images, &self.oci_registry, &config.oci)),
            Box::new(huggingface::cli::repos(&self.hf_repos, &config.huggingface)),
        ]
    }

    fn network(&self) -> Network {
        Network {
            cache: self.cache.clone().unwrap_or_else(Cache::default_dir),
            jobs: usize::from(self.jobs),
            read_timeout: Duration::from_secs(self.timeout),
            retries: self.retries,
        }
    }
}
