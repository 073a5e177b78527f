//! What the registry exporters share on the connected side: the artifact
//! they return, the fetch context, and building entries and evidence. It
//! knows no ecosystem; each one's `source` module uses it.

use std::path::{Path, PathBuf};

use crate::ecosystem::Planned;
use crate::ecosystem::evidence::over_cap;
use crate::error::{Error, Result};
use crate::fetch::{Cache, Cached, Client, Digests, Extra};
use crate::manifest::{Digest, Entry, Evidence, Missing};
use crate::progress::Progress;

/// An artifact ready to be bundled: its manifest entry and where its bytes are.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub entry: Entry,
    pub source: PathBuf,
}

/// The network and cache an exporter works with.
pub struct FetchContext<'a> {
    pub client: &'a Client,
    pub cache: &'a Cache,
    /// Concurrent requests.
    pub jobs: usize,
    pub progress: &'a dyn Progress,
}

impl FetchContext<'_> {
    /// Downloads `url` through the cache; `check` compares its digests with
    /// what the lockfile and the registry state.
    pub fn artifact(&self, url: &str, check: &dyn Fn(&Digests) -> Result<()>) -> Result<Cached> {
        self.artifact_with(url, Extra::default(), check)
    }

    /// [`FetchContext::artifact`] computing the `extra` digests too.
    pub fn artifact_with(&self, url: &str, extra: Extra, check: &dyn Fn(&Digests) -> Result<()>) -> Result<Cached> {
        let cached = self.cache.fetch(self.client, url, extra, check)?;
        self.progress.advance(cached.digests.size);
        Ok(cached)
    }

    /// A metadata document, `None` when the registry answers 404.
    pub fn document(&self, url: &str, accept: &str) -> Result<Option<Vec<u8>>> {
        self.client.get_document(url, accept, crate::fetch::MAX_METADATA_BYTES)
    }
}

/// The error for a digest that does not match what a lockfile or registry states.
#[must_use]
pub fn digest_mismatch(package: &str, what: &str) -> Error {
    Error::Usage(format!(
        "{package}: {what}; the lockfile, the registry or something between them changed the artifact: do not export it, investigate"
    ))
}

/// Builds the manifest entry for a downloaded artifact.
#[must_use]
pub fn entry(ecosystem: &str, name: &str, version: &str, path: crate::id::RelPath, cached: &Cached) -> Entry {
    let mut digests = std::collections::BTreeMap::new();
    digests.insert("sha256".to_owned(), Digest(cached.digests.sha256.clone()));
    Entry {
        ecosystem: ecosystem.to_owned(),
        name: name.to_owned(),
        version: Some(version.to_owned()),
        path,
        blob: cached.digests.blake3,
        size: cached.digests.size,
        digests,
        source: None,
        attributes: std::collections::BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    }
}

/// Records evidence found, or where it was looked for and not found. A
/// document over its kind's cap (`manifest::evidence`), which the importer
/// would refuse, is recorded as missing with the reason, like evidence a
/// proxy stripped: the import policy decides whether the artifact may go
/// without it.
pub fn carry(entry: &mut Entry, kind: &str, found: Option<Vec<u8>>, looked: &str) {
    match found {
        Some(data) => match over_cap(kind, data.len()) {
            None => entry.evidence.push(Evidence { kind: kind.to_owned(), data }),
            Some(excess) => {
                let looked = format!("{looked}, which served {excess}");
                entry.missing.push(Missing { kind: kind.to_owned(), looked });
            }
        },
        None => entry.missing.push(Missing { kind: kind.to_owned(), looked: looked.to_owned() }),
    }
}

/// Carries evidence the mirror is built from (an index line, a version
/// object), which cannot be left out: one over its kind's cap is an error
/// naming the package.
pub fn carry_needed(entry: &mut Entry, kind: &str, data: Vec<u8>, package: &str) -> Result<()> {
    if let Some(excess) = over_cap(kind, data.len()) {
        return Err(Error::Usage(format!(
            "{package}: the registry's {kind} is {excess}; an importer would refuse it, so airlock cannot carry this package: leave it out of the lockfile or report the registry's metadata"
        )));
    }
    entry.evidence.push(Evidence { kind: kind.to_owned(), data });
    Ok(())
}

/// The pins of the lockfile `lock` (name and version each) as what an
/// export would fetch from `from`.
pub fn planned_pins<'a>(
    ecosystem: &'static str,
    from: &str,
    lock: &Path,
    pins: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<Planned> {
    pins.map(|(name, version)| Planned {
        ecosystem,
        name: name.to_owned(),
        version: Some(version.to_owned()),
        from: from.to_owned(),
        input: lock.display().to_string(),
    })
    .collect()
}

/// Moves the items of `more` to the end of `all`; into an empty `all` the
/// list is moved whole, as copying it would hold it twice for a moment.
pub fn append<T>(all: &mut Vec<T>, mut more: Vec<T>) {
    if all.is_empty() {
        *all = more;
    } else {
        all.append(&mut more);
    }
}

/// Reads the lockfiles `locks` in order and hands each to `parse` (its path,
/// text and name for errors), which parses and checks its pins; the first
/// bad file is the error, before anything is fetched.
pub fn read_lockfiles<'a, T>(
    locks: &'a [PathBuf],
    mut parse: impl FnMut(&'a Path, &str, &str) -> Result<T>,
) -> Result<Vec<T>> {
    locks.iter().map(|path| parse(path, &crate::lockfile::read(path)?, &path.display().to_string())).collect()
}

/// Joins a base URL and a path with exactly one slash.
#[must_use]
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}
