//! Debian on the export side: pkgs.txt in; each suite's `InRelease` checked
//! against the connected side's keyring (fail fast, before fetching
//! packages), the index files apt reads fetched by hash and checked against
//! it, the closure resolved, and each `.deb` fetched and checked against its
//! stanza's SHA256 and size, all through the shared fetch layer.

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::control::{self, Listed};
use super::openpgp::{Keyring, verify_cleartext};
use super::resolve::{Follow, Universe, closure};
use super::{DEFAULT_ARCHIVE, DEFAULT_KEYRING, INRELEASE, NAME, STANZA, lockfile, unxz};
use crate::ecosystem::registry::{
    Artifact, FetchContext, carry_needed, digest_mismatch, entry, join_url, read_lockfiles,
};
use crate::ecosystem::{Pinned, Planned, Source};
use crate::error::{Error, Result};
use crate::fetch::{Digests, parallel};
use crate::id::RelPath;

/// Debian's part of an export.
#[derive(Debug, Clone, Default)]
pub struct Lockfiles {
    /// pkgs.txt files.
    pub locks: Vec<PathBuf>,
    /// The archive URL; `None`: the one the host's apt uses for the first
    /// suite, else [`DEFAULT_ARCHIVE`].
    pub archive: Option<String>,
    pub suites: Vec<String>,
    /// Default `main`.
    pub components: Vec<String>,
    /// Default `amd64`; each is resolved on its own (with `all`).
    pub architectures: Vec<String>,
    /// The connected side's keyring; default [`DEFAULT_KEYRING`].
    pub keyring: Option<PathBuf>,
    /// A `dpkg-query -W` listing of what the targets have.
    pub base: Option<PathBuf>,
    /// Follow `Recommends` (as apt installs them by default).
    pub recommends: bool,
}

impl Source for Lockfiles {
    fn lockfiles(&self) -> &[PathBuf] {
        &self.locks
    }

    fn read(&self) -> Result<Box<dyn Pinned + '_>> {
        let wanted = read_lockfiles(&self.locks, |_, text, origin| Ok(lockfile::parse_packages(text, origin)?))?;
        if self.locks.is_empty() {
            return Ok(Box::new(Plan { source: self, wanted, base: Vec::new() }));
        }
        if self.suites.is_empty() {
            return Err(Error::Usage("--debian-packages needs at least one --debian-suite (e.g. bookworm)".into()));
        }
        let base = match &self.base {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| Error::input(path, "--debian-base listing", &e))?;
                lockfile::parse_base(&text, &path.display().to_string())?
            }
            None => Vec::new(),
        };
        Ok(Box::new(Plan { source: self, wanted, base }))
    }
}

struct Plan<'a> {
    source: &'a Lockfiles,
    wanted: Vec<Vec<lockfile::Wanted>>,
    base: Vec<(String, String)>,
}

impl Pinned for Plan<'_> {
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>> {
        if self.source.locks.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.source;
        let archive = s.archive_url();
        let folder = archive_folder(&archive)?;
        let arches = if s.architectures.is_empty() { vec!["amd64".to_owned()] } else { s.architectures.clone() };
        let components = if s.components.is_empty() { vec!["main".to_owned()] } else { s.components.clone() };
        let keyring_path = s.keyring.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_KEYRING));
        let keyring_bytes = std::fs::read(&keyring_path)
            .map_err(|e| Error::input(&keyring_path, "Debian keyring (--debian-keyring)", &e))?;
        let keyring = Keyring::from_bytes(&keyring_bytes).map_err(|w| {
            Error::Usage(format!("{}: {w}; name Debian's keyring with --debian-keyring", keyring_path.display()))
        })?;
        let wanted: Vec<lockfile::Wanted> = self.wanted.iter().flatten().cloned().collect();
        check_qualifiers(&wanted, &arches)?;
        let mut artifacts = Vec::new();
        let mut universes: Vec<Universe> = arches.iter().map(|_| Universe::default()).collect();
        for (n, suite) in s.suites.iter().enumerate() {
            let fetched = fetch_suite(ctx, &archive, &folder, suite, &components, &arches, &keyring)?;
            for (i, text, origin) in &fetched.packages {
                universes[*i].add_index(n, text, &arches[*i], origin)?;
            }
            artifacts.extend(fetched.artifacts);
        }
        let follow = Follow { recommends: s.recommends };
        // Each architecture's closure on its own; a `name:arch` line only in its own.
        let mut picked = Vec::new();
        for (arch, universe) in arches.iter().zip(&universes) {
            let of_arch: Vec<lockfile::Wanted> =
                wanted.iter().filter(|w| w.arch.as_deref().is_none_or(|a| a == arch || a == "all")).cloned().collect();
            if !of_arch.is_empty() {
                picked.extend(closure(universe, &of_arch, &self.base, arch, follow)?);
            }
        }
        // One .deb a pool path (a package listed by two suites, or `all` in two closures, is carried once).
        let mut seen = std::collections::BTreeSet::new();
        picked.retain(|c| seen.insert(c.stanza.get("Filename").unwrap_or_default().to_owned()));
        let debs = parallel(&picked, ctx.jobs, |c| fetch_deb(ctx, &archive, &folder, &s.suites[c.suite], c))?;
        artifacts.extend(debs);
        Ok(artifacts)
    }

    /// The packages as the lists name them; their dependencies are found
    /// only in the archive's index.
    fn planned(&self) -> Vec<Planned> {
        if self.source.locks.is_empty() {
            return Vec::new();
        }
        let from = format!("{} ({})", self.source.archive_url(), self.source.suites.join(", "));
        let planned = |(list, wanted): (&PathBuf, &Vec<lockfile::Wanted>)| {
            wanted
                .iter()
                .map(|w| Planned {
                    ecosystem: NAME,
                    name: w.arch.as_ref().map_or_else(|| w.name.clone(), |arch| format!("{}:{arch}", w.name)),
                    version: w.version.clone(),
                    from: from.clone(),
                    input: list.display().to_string(),
                })
                .collect::<Vec<_>>()
        };
        self.source.locks.iter().zip(&self.wanted).flat_map(planned).collect()
    }
}

impl Lockfiles {
    /// The flag's archive, else the one apt on this host uses for the first
    /// suite, else Debian's.
    fn archive_url(&self) -> String {
        let host = || {
            let suite = self.suites.first()?;
            super::sources::archive_for(&super::sources::read_sources(Path::new("/etc/apt")), suite)
        };
        self.archive.clone().or_else(host).unwrap_or_else(|| DEFAULT_ARCHIVE.to_owned())
    }
}

/// A `name:arch` line must name an architecture the export carries.
fn check_qualifiers(wanted: &[lockfile::Wanted], arches: &[String]) -> Result<()> {
    for w in wanted {
        if let Some(arch) = w.arch.as_deref()
            && arch != "all"
            && !arches.iter().any(|a| a == arch)
        {
            return Err(Error::Usage(format!(
                "{}:{arch}: only --debian-arch {} is exported; add --debian-arch {arch} or drop the qualifier",
                w.name,
                arches.join(" --debian-arch ")
            )));
        }
    }
    Ok(())
}

/// The mirror folder of an archive: its URL's last path segment (`debian`, `debian-security`).
pub fn archive_folder(archive: &str) -> Result<String> {
    let last = archive.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    super::check_segment(last, "archive folder").map_err(|e| {
        Error::Usage(format!("--debian-archive {archive}: {e}; the URL's last path segment names its mirror folder"))
    })?;
    Ok(last.to_owned())
}

struct Suite {
    artifacts: Vec<Artifact>,
    /// The Packages texts, by the index of their architecture, with a name for errors.
    packages: Vec<(usize, String, String)>,
}

fn fetch_suite(
    ctx: &FetchContext<'_>,
    archive: &str,
    folder: &str,
    suite: &str,
    components: &[String],
    arches: &[String],
    keyring: &Keyring,
) -> Result<Suite> {
    let dists = format!("dists/{suite}");
    let url = join_url(archive, &format!("{dists}/InRelease"));
    let body = ctx
        .document(&url, "text/plain")?
        .ok_or_else(|| Error::Usage(format!("{url}: not found; check --debian-archive and --debian-suite {suite}")))?;
    let verified = verify_cleartext(&body, keyring)
        .map_err(|why| Error::Usage(format!("{url}: {why}; is --debian-keyring the archive's keyring?")))?;
    let release =
        control::paragraph(verified.text.trim_start_matches('\n')).map_err(|e| Error::Usage(format!("{url}: {e}")))?;
    super::evidence::check_release(&release, suite, crate::time::now(), 0, &url)
        .map_err(|r| Error::Usage(r.to_string()))?;
    let listed = control::sha256_list(&release).map_err(|e| Error::Usage(format!("{url}: {e}")))?;
    let by_hash = release.get("Acquire-By-Hash") == Some("yes");
    // The same bytes through the cache, so the entry has a file: checked
    // against what was verified (the archive may have moved on in between).
    let sha = sha2::Sha256::digest(&body).to_vec();
    let same = |d: &Digests| {
        if d.sha256 == sha {
            Ok(())
        } else {
            Err(Error::Usage(format!("{url}: changed while it was fetched; run the export again")))
        }
    };
    let cached = ctx.artifact(&url, &same)?;
    let path = rel_path(&format!("{folder}/{dists}/InRelease"))?;
    let mut release_entry = entry(NAME, suite, "", path, &cached);
    release_entry.version = None;
    release_entry.source = Some(url.clone());
    carry_needed(&mut release_entry, INRELEASE, body.clone(), &format!("debian {suite}"))?;
    let mut out =
        Suite { artifacts: vec![Artifact { entry: release_entry, source: cached.path }], packages: Vec::new() };
    for component in components {
        for (i, arch) in arches.iter().enumerate() {
            let rel = format!("{component}/binary-{arch}/Packages.xz");
            let Some(line) = listed.iter().find(|l| l.path == rel) else {
                return Err(Error::Usage(format!("{url} lists no {rel}; check --debian-component and --debian-arch")));
            };
            let (artifact, text) = fetch_index(ctx, archive, folder, suite, line, by_hash, &body)?;
            out.packages.push((i, text, format!("{dists}/{rel}")));
            out.artifacts.push(artifact);
        }
        let rel = format!("{component}/i18n/Translation-en.xz");
        if let Some(line) = listed.iter().find(|l| l.path == rel) {
            out.artifacts.push(fetch_index(ctx, archive, folder, suite, line, by_hash, &body)?.0);
        }
    }
    Ok(out)
}

fn fetch_index(
    ctx: &FetchContext<'_>,
    archive: &str,
    folder: &str,
    suite: &str,
    line: &Listed,
    by_hash: bool,
    inrelease: &[u8],
) -> Result<(Artifact, String)> {
    let dists = format!("dists/{suite}");
    let path = format!("{dists}/{}", line.path);
    let url = if by_hash { join_url(archive, &super::by_hash(&path, &line.sha256)) } else { join_url(archive, &path) };
    let id = format!("debian {suite}/{}", line.path);
    let check = |d: &Digests| {
        if d.sha256[..] != line.sha256[..] || d.size != line.size {
            return Err(digest_mismatch(&id, "the index file's SHA256 or size differs from the signed InRelease"));
        }
        Ok(())
    };
    let cached = ctx.artifact(&url, &check)?;
    let text = if line.path.ends_with("/Packages.xz") {
        let packed = cached.read_checked()?;
        unxz(&packed, &url).map_err(Error::Usage)?
    } else {
        String::new()
    };
    let mut e = entry(NAME, &format!("{suite}/{}", line.path), "", rel_path(&format!("{folder}/{path}"))?, &cached);
    e.version = None;
    e.source = Some(url);
    carry_needed(&mut e, INRELEASE, inrelease.to_vec(), &id)?;
    Ok((Artifact { entry: e, source: cached.path }, text))
}

fn fetch_deb(
    ctx: &FetchContext<'_>,
    archive: &str,
    folder: &str,
    suite: &str,
    c: &super::resolve::Candidate,
) -> Result<Artifact> {
    let id = format!("debian {} {}", c.name, c.version);
    let field = |f: &str| c.stanza.get(f).ok_or_else(|| Error::Usage(format!("{id}: its stanza has no {f}")));
    let filename = field("Filename")?;
    let size: u64 =
        field("Size")?.parse().map_err(|_| Error::Usage(format!("{id}: its stanza's Size is not a number")))?;
    let sha = crate::lockfile::sha256_from_hex(field("SHA256")?)
        .ok_or_else(|| Error::Usage(format!("{id}: its stanza's SHA256 is malformed")))?;
    let check = |d: &Digests| {
        if d.sha256[..] != sha[..] || d.size != size {
            return Err(digest_mismatch(&id, "the .deb's SHA256 or size differs from its Packages stanza"));
        }
        Ok(())
    };
    let url = join_url(archive, filename);
    let cached = ctx.artifact(&url, &check)?;
    let mut e = entry(NAME, &c.name, &c.version, rel_path(&format!("{folder}/{filename}"))?, &cached);
    e.source = Some(url);
    e.attributes.insert("architecture".into(), c.arch.clone());
    e.attributes.insert("suite".into(), suite.to_owned());
    carry_needed(&mut e, STANZA, c.stanza.raw.clone().into_bytes(), &id)?;
    Ok(Artifact { entry: e, source: cached.path })
}

fn rel_path(path: &str) -> Result<RelPath> {
    super::kind(path).map_err(|e| Error::Usage(format!("the archive names {path}: {e}")))?;
    RelPath::new(path).map_err(|e| Error::Usage(format!("the archive names {path}: {e}")))
}
