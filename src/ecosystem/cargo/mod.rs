//! Crates: Cargo.lock on the connected side, resolved through a sparse
//! registry index; the version's index line travels as evidence, exactly as
//! the registry published it, because a local registry must serve it as is.

pub mod cli;
pub mod config;
pub mod lockfile;
mod serve;
pub mod source;

use serde::Deserialize;
use serde_json::Value;

use self::lockfile::CratePin;
use crate::ecosystem::registry::{Artifact, FetchContext, carry_needed, digest_mismatch, entry, join_url};
use crate::ecosystem::{Change, Ecosystem, Reserved};
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::error::{Error, Result};
use crate::fetch::{Digests, parallel};
use crate::http;
use crate::id::RelPath;
use crate::lockfile::LockError;
use crate::manifest::Entry;
use crate::manifest::evidence::EvidenceKind;
use crate::mirror::Layout;

mod evidence;
mod policy;

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "cargo";
/// crates.io's sparse index, used when neither flag, config nor cargo's source replacement names one.
pub const DEFAULT_INDEX: &str = "https://index.crates.io/";
/// How Cargo.lock names crates.io.
const CRATES_IO_SOURCES: [&str; 2] =
    ["registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"];

/// The crates ecosystem.
pub struct Cargo;

impl Ecosystem for Cargo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        let version = entry.version.as_deref().ok_or("a crate has a version")?;
        check_name(&entry.name)?;
        check_version(version)?;
        if entry.path.as_str() != crate_file(&entry.name, version) {
            return Err(format!("path {} is not NAME-VERSION.crate", entry.path));
        }
        if !entry.digests.contains_key("sha256") {
            return Err("a crate carries the registry's sha256 checksum".into());
        }
        let line = entry
            .evidence
            .iter()
            .find(|e| e.kind == "cargo-index-entry")
            .ok_or("a crate carries its registry index entry")?;
        check_index_entry(&line.data, &entry.name, version, &entry.digests["sha256"].0)
    }

    /// The `.crate` file is the version's own; the index file is shared by
    /// the versions of the crate spelled exactly alike. Its path is in lower
    /// case (cargo treats crate names case-insensitively), so `GoodCrate`
    /// and `goodcrate` claim one file and are refused.
    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        add(Reserved::own(entry.path.as_str(), ".crate file"));
        add(Reserved::shared(index_file(&entry.name), "index file", &entry.name));
    }

    /// `airlock serve` answers `index/config.json` itself.
    fn reserved_globally(&self) -> &'static [(&'static str, &'static str)] {
        &[(CONFIG_PATH, "registry config")]
    }

    /// A cargo local registry: `.crate` files at the top of `cargo/`, the
    /// index under `cargo/index/` with each version's line exactly as the
    /// registry published it (cargo checks the `.crate` against its `cksum`).
    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        for entry in &change.removed {
            tree.remove(NAME, entry.path.as_str())?;
        }
        for entry in &change.new {
            tree.link_blob(NAME, &entry.path, &entry.blob)?;
        }
        for name in change.touched() {
            let mut versions = change.versions_of(name);
            if versions.is_empty() {
                tree.remove(NAME, &index_file(name))?;
                continue;
            }
            versions.sort_by_key(|e| e.version.as_deref().and_then(|v| semver::Version::parse(v).ok()));
            let mut lines = Vec::new();
            for entry in versions {
                let line = entry
                    .evidence
                    .iter()
                    .find(|e| e.kind == "cargo-index-entry")
                    .map(|e| e.data.as_slice())
                    .unwrap_or_default();
                lines.extend_from_slice(line);
                lines.push(b'\n');
            }
            tree.write(NAME, &index_file(name), &lines)?;
        }
        // With a base URL the sparse registry's config is a file like the
        // rest, and its `dl` names the crate files where they lie, so a
        // static web server needs no mapping; without one `airlock serve`
        // answers it from the request's Host.
        if let Some(base) = change.base_url {
            let dl = format!("{base}/{NAME}/{{crate}}-{{version}}.crate");
            tree.write(NAME, CONFIG_PATH, serde_json::json!({ "dl": dl }).to_string().as_bytes())?;
        }
        Ok(())
    }

    fn route(&self, route: &http::Route<'_>, folder: &http::Folder<'_>) -> http::Response {
        serve::route(route, folder)
    }

    fn client_url(&self, base: &str) -> Option<String> {
        Some(serve::client_url(base))
    }

    fn purl(&self, name: &str, version: &str, _path: &str) -> Option<String> {
        Some(super::purl(NAME, name, version))
    }

    fn inventory_evidence(&self) -> &'static [&'static str] {
        &["cargo-index-entry"]
    }

    fn lockfile_flag(&self) -> Option<&'static str> {
        Some("--cargo-lock")
    }

    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &evidence::EVIDENCE
    }

    fn normalize_name(&self, name: &str) -> String {
        policy::normalize_name(name)
    }

    fn verify_evidence(&self, _entry: &Entry, _trust: &Trust<'_>, _id: &str) -> Result<Provenance, Rejection> {
        Ok(Provenance::absent(evidence::PROVENANCE))
    }
}

/// The index's folder in the mirror's cargo folder and in URLs.
const INDEX: &str = "index";
/// The registry config, which `airlock serve` generates: [`INDEX`]`/config.json`.
const CONFIG_PATH: &str = "index/config.json";

/// The carried index line is published as this crate's line in the mirror's
/// index, so it must be one line, and name this crate, this version and
/// this file's sha256: a genuine line of another crate, served under this
/// name, would make the mirror vouch for the wrong software.
fn check_index_entry(line: &[u8], name: &str, version: &str, sha256: &[u8]) -> Result<(), String> {
    if line.contains(&b'\n') {
        return Err("its registry index entry spans several lines".into());
    }
    let record: Value = serde_json::from_slice(line).map_err(|_| "its registry index entry is not JSON")?;
    let field = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or_default();
    if field("name") != name || field("vers") != version {
        return Err(format!("it carries the registry index entry of {} {}, not its own", field("name"), field("vers")));
    }
    if field("cksum") != hex::encode(sha256) {
        return Err("its registry index entry's cksum is not the crate's sha256".into());
    }
    Ok(())
}

/// Longest crate name crates.io accepts.
pub const MAX_NAME_LEN: usize = 64;

/// A crate name as crates.io allows it: 1 to 64 ASCII letters, digits, `-`
/// and `_`, starting with a letter. Checked on both sides: for every
/// Cargo.lock pin at export, for every entry on import.
pub fn check_name(name: &str) -> Result<(), String> {
    let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if starts_with_letter
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid crate name (1 to 64 ASCII letters, digits, '-' and '_', starting with a letter)"
        ))
    }
}

/// A crate version: a semantic version, as cargo requires.
pub fn check_version(version: &str) -> Result<(), String> {
    match semver::Version::parse(version) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{version:?} is not a valid crate version (a semantic version such as 1.2.3)")),
    }
}

/// Refuses, before anything is fetched, a Cargo.lock pin whose name or
/// version a registry cannot have (exit 2, naming `origin` and the pin).
pub fn check_pins(pins: &[CratePin], origin: &str) -> Result<()> {
    for pin in pins {
        check_name(&pin.name).and_then(|()| check_version(&pin.version)).map_err(|why| {
            LockError::new(origin, format!("crate {:?} {:?}: {why}; correct the lockfile", pin.name, pin.version))
        })?;
    }
    Ok(())
}

/// `NAME-VERSION.crate`, as cargo's local registries keep them.
#[must_use]
pub fn crate_file(name: &str, version: &str) -> String {
    format!("{name}-{version}.crate")
}

/// Where the mirror keeps a crate's index file.
fn index_file(name: &str) -> String {
    format!("{INDEX}/{}", index_path(name))
}

/// The path of a crate's file in a registry index. Names are checked
/// ([`check_name`]) before this is asked, but a name that is not (empty,
/// not ASCII) still gets a path rather than a panic: its characters are
/// counted, not its bytes.
#[must_use]
pub fn index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let prefix = |n: usize| lower.chars().take(n).collect::<String>();
    let middle = lower.chars().skip(2).take(2).collect::<String>();
    match lower.chars().count() {
        0 => "0/".to_owned(),
        1 => format!("1/{lower}"),
        2 => format!("2/{lower}"),
        3 => format!("3/{}/{lower}", prefix(1)),
        _ => format!("{}/{middle}/{lower}", prefix(2)),
    }
}

#[derive(Deserialize)]
struct IndexConfig {
    dl: String,
}

/// The download URL from the index's `dl` template.
fn download_url(dl: &str, name: &str, version: &str, checksum: &str) -> String {
    const MARKERS: [&str; 5] = ["{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}"];
    if !MARKERS.iter().any(|m| dl.contains(m)) {
        return join_url(dl, &format!("{name}/{version}/download"));
    }
    let prefix = index_path(name);
    let prefix = prefix.rsplit_once('/').map_or("", |(p, _)| p);
    dl.replace("{crate}", name)
        .replace("{version}", version)
        .replace("{prefix}", prefix)
        .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
        .replace("{sha256-checksum}", checksum)
}

/// Resolves every registry pin of a Cargo.lock against the sparse index `index`.
pub fn resolve(pins: &[CratePin], index: &str, ctx: &FetchContext) -> Result<Vec<Artifact>> {
    for pin in pins {
        if !CRATES_IO_SOURCES.contains(&pin.source.as_str()) && !pin.source.starts_with("sparse+") {
            return Err(Error::Usage(format!(
                "crate {} {}: comes from {}, a git-based registry index airlock cannot fetch; use its sparse index",
                pin.name, pin.version, pin.source
            )));
        }
    }
    let index_of = |pin: &CratePin| -> String {
        if CRATES_IO_SOURCES.contains(&pin.source.as_str()) {
            index.to_owned()
        } else {
            pin.source["sparse+".len()..].to_owned()
        }
    };
    let mut indexes: Vec<String> = pins.iter().map(index_of).collect();
    indexes.sort();
    indexes.dedup();
    let configs = parallel(&indexes, ctx.jobs, |base| {
        let url = join_url(base, "config.json");
        let body = ctx.document(&url, "application/json")?.ok_or_else(|| {
            Error::Usage(format!("{url}: not found; is this a sparse registry index? check --cargo-index"))
        })?;
        let config: IndexConfig = serde_json::from_slice(&body)
            .map_err(|e| Error::Usage(format!("{url}: not a registry config ({e}); check --cargo-index")))?;
        Ok((base.clone(), config.dl))
    })?;
    parallel(pins, ctx.jobs, |pin| {
        let base = index_of(pin);
        let dl = &configs.iter().find(|(b, _)| *b == base).expect("every index was read").1;
        resolve_one(pin, &base, dl, ctx)
    })
}

fn resolve_one(pin: &CratePin, index: &str, dl: &str, ctx: &FetchContext) -> Result<Artifact> {
    let id = format!("crate {} {}", pin.name, pin.version);
    let url = join_url(index, &index_path(&pin.name));
    let body = ctx
        .document(&url, "text/plain")?
        .ok_or_else(|| Error::Usage(format!("{id}: not in the registry index ({url}); check the lockfile")))?;
    let line = body
        .split(|b| *b == b'\n')
        .find(|line| {
            serde_json::from_slice::<Value>(line)
                .ok()
                .is_some_and(|v| v.get("vers").and_then(Value::as_str) == Some(&pin.version))
        })
        .ok_or_else(|| {
            Error::Usage(format!("{id}: the registry index has no such version ({url}); check the lockfile"))
        })?;
    let record: Value = serde_json::from_slice(line).expect("parsed above");
    let cksum = record.get("cksum").and_then(Value::as_str).and_then(|c| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(c, &mut out).ok().map(|()| out)
    });
    let cksum = cksum.ok_or_else(|| Error::Usage(format!("{id}: the index entry has no valid cksum ({url})")))?;
    if pin.checksum.is_some_and(|c| c != cksum) {
        return Err(digest_mismatch(&id, "Cargo.lock's checksum differs from the registry index's cksum"));
    }
    let check = |d: &Digests| {
        if d.sha256[..] != cksum[..] {
            return Err(digest_mismatch(&id, "the .crate file's sha256 differs from the index's cksum"));
        }
        Ok(())
    };
    let source = download_url(dl, &pin.name, &pin.version, &hex::encode(cksum));
    let cached = ctx.artifact(&source, &check)?;
    let path = RelPath::new(&crate_file(&pin.name, &pin.version)).map_err(|e| Error::Usage(format!("{id}: {e}")))?;
    let mut e = entry(NAME, &pin.name, &pin.version, path, &cached);
    e.source = Some(source);
    if record.get("yanked").and_then(Value::as_bool) == Some(true) {
        e.attributes.insert("yanked".into(), "true".into());
    }
    carry_needed(&mut e, "cargo-index-entry", line.to_vec(), &id)?;
    Ok(Artifact { entry: e, source: cached.path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("cc"), "2/cc");
        assert_eq!(index_path("syn"), "3/s/syn");
        assert_eq!(index_path("Serde_JSON"), "se/rd/serde_json");
        // Names that never pass check_name still get a path, never a panic.
        assert_eq!(index_path(""), "0/");
        assert_eq!(index_path("\u{e9}t\u{e9}x"), "\u{e9}t/\u{e9}x/\u{e9}t\u{e9}x");
    }

    #[test]
    fn crate_names_and_versions() {
        for good in ["a", "itoa", "cfg-if", "serde_json", "Inflector", "x86_64"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "1a", "-a", "_a", "a b", "a.b", "a/b", "<svg>", "caf\u{e9}", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["0.1.0", "1.0.11", "1.0.0-alpha.1", "1.0.0+build"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["", "1.0", "v1.0.0", "1.0.0/../x", "latest"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_lockfile_fixture_passes_the_grammar_and_an_empty_name_does_not() {
        let text = include_str!("../../../fixtures/lockfiles/Cargo.lock");
        let pins = super::lockfile::parse_cargo_lock(text, "Cargo.lock").unwrap();
        check_pins(&pins, "Cargo.lock").unwrap();
        let hostile = text.replacen("name = \"itoa\"", "name = \"\"", 1);
        let pins = super::lockfile::parse_cargo_lock(&hostile, "Cargo.lock").unwrap();
        let e = check_pins(&pins, "Cargo.lock").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("Cargo.lock: crate \"\" \"1.0.11\": \"\" is not a valid crate name"), "{e}");
    }

    #[test]
    fn download_templates() {
        assert_eq!(
            download_url("https://static.crates.io/crates", "itoa", "1.0.11", "ab"),
            "https://static.crates.io/crates/itoa/1.0.11/download"
        );
        assert_eq!(
            download_url("http://h/dl/{prefix}/{crate}-{version}.crate?c={sha256-checksum}", "itoa", "1.0.11", "ab"),
            "http://h/dl/it/oa/itoa-1.0.11.crate?c=ab"
        );
    }
}
