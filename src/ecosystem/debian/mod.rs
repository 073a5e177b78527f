//! Debian packages with Debian's own signatures: each suite's `InRelease`
//! (OpenPGP-signed by the archive), the index files it lists (`Packages.xz`,
//! `Translation-*.xz`), and the `.deb` files of a dependency closure, all
//! carried byte for byte and published at the paths apt reads, so apt on
//! the disconnected side checks Debian's signature itself.
//!
//! Three kinds of entry, told apart by their path in the `debian/` folder:
//!
//! | path | name | evidence |
//! | --- | --- | --- |
//! | `ARCHIVE/dists/SUITE/InRelease` | `SUITE` | `debian-inrelease`: the same bytes |
//! | `ARCHIVE/dists/SUITE/COMPONENT/...` | `SUITE/COMPONENT/...` | `debian-inrelease`: the suite's `InRelease` |
//! | `ARCHIVE/pool/...deb` | the package | `debian-stanza`: its Packages paragraph |
//!
//! The chain is checked as apt checks it: the `InRelease` signature against
//! the pinned keyring, each index file's SHA256 and size against the
//! `InRelease` (both per entry, in `verify_evidence`), each `.deb` against its
//! stanza (per entry, in `check_entry`), and each stanza against the signed
//! `Packages.xz` of its archive (when publishing, where the index files are
//! at hand: see [`Debian::publish`]).

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

pub mod cli;
pub mod config;
pub mod control;
mod evidence;
pub mod lockfile;
pub mod openpgp;
mod policy;
pub mod resolve;
mod serve;
pub mod site;
pub mod source;
pub mod sources;

use std::collections::{BTreeMap, HashSet};

use sha2::Digest as _;

use crate::ecosystem::{Change, Ecosystem, Provenance, Reserved, Trust};
use crate::error::{Error, Rejection, Result};
use crate::id::RelPath;
use crate::manifest::Entry;
use crate::manifest::evidence::EvidenceKind;
use crate::mirror::Layout;

pub use evidence::{INRELEASE, STANZA};
pub use policy::Roots;

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "debian";
/// Debian's archive, used when neither flag nor config names one.
pub const DEFAULT_ARCHIVE: &str = "http://deb.debian.org/debian";
/// The keyring the exporter checks `InRelease` against by default.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The Debian ecosystem.
pub struct Debian;

/// What an entry's path says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `ARCHIVE/dists/SUITE/InRelease`.
    Release { archive: &'a str, suite: &'a str },
    /// `ARCHIVE/dists/SUITE/REL`, REL as the `InRelease` lists it.
    Index { archive: &'a str, suite: &'a str, rel: &'a str },
    /// `ARCHIVE/POOL-PATH`, the stanza's `Filename`.
    Deb { archive: &'a str, filename: &'a str },
}

/// What `path` (in the `debian/` folder) is, or why it is none of them.
pub fn kind(path: &str) -> Result<Kind<'_>, String> {
    let (archive, rest) = path.split_once('/').ok_or("a Debian path starts with its archive's folder")?;
    check_segment(archive, "archive")?;
    if let Some(rest) = rest.strip_prefix("dists/") {
        let (suite, rel) = rest.split_once('/').ok_or("a dists/ path names a suite and a file")?;
        check_segment(suite, "suite")?;
        if rel == "InRelease" {
            return Ok(Kind::Release { archive, suite });
        }
        index_shape(rel)?;
        return Ok(Kind::Index { archive, suite, rel });
    }
    // Debian's file names are exactly `.deb`, `.xz`: a case-insensitive match would accept what apt would not read.
    #[allow(clippy::case_sensitive_file_extension_comparisons)]
    if rest.starts_with("pool/") && rest.ends_with(".deb") {
        return Ok(Kind::Deb { archive, filename: rest });
    }
    Err(format!("{path} is neither ARCHIVE/dists/SUITE/... nor ARCHIVE/pool/....deb"))
}

fn check_segment(s: &str, what: &str) -> Result<(), String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+~".contains(&b)) && s != "." && s != ".." {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid {what} name"))
    }
}

/// The index files airlock carries: `COMPONENT/binary-ARCH/Packages.xz`
/// and `COMPONENT/i18n/Translation-LANG.xz`, what apt fetches by default.
#[allow(clippy::case_sensitive_file_extension_comparisons)] // as in `kind`
fn index_shape(rel: &str) -> Result<(), String> {
    let parts: Vec<&str> = rel.split('/').collect();
    let ok = match parts[..] {
        [component, dir, "Packages.xz"] => check_segment(component, "component").is_ok() && dir.starts_with("binary-"),
        [component, "i18n", file] => {
            check_segment(component, "component").is_ok() && file.starts_with("Translation-") && file.ends_with(".xz")
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("{rel} is not an index file airlock carries (Packages.xz, Translation-*.xz)")) }
}

/// `DIR/by-hash/SHA256/HEX` beside an index file, where apt fetches it
/// when the Release says `Acquire-By-Hash: yes`.
#[must_use]
pub fn by_hash(path: &str, sha256: &[u8]) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{dir}/by-hash/SHA256/{}", hex::encode(sha256))
}

impl Ecosystem for Debian {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        let sha256 = entry.digests.get("sha256").ok_or("a Debian entry carries its sha256")?;
        match kind(entry.path.as_str())? {
            Kind::Release { suite, .. } => {
                if entry.name != suite || entry.version.is_some() {
                    return Err(format!("an InRelease entry is named after its suite ({suite}), without a version"));
                }
                let carried = evidence_of(entry, INRELEASE).ok_or("an InRelease entry carries debian-inrelease")?;
                if sha2::Sha256::digest(carried)[..] != sha256.0[..] || carried.len() as u64 != entry.size {
                    return Err("its debian-inrelease is not the InRelease it publishes".into());
                }
                Ok(())
            }
            Kind::Index { suite, rel, .. } => {
                if entry.name != format!("{suite}/{rel}") || entry.version.is_some() {
                    return Err(format!("an index entry is named SUITE/PATH ({suite}/{rel}), without a version"));
                }
                evidence_of(entry, INRELEASE).ok_or("an index entry carries its suite's debian-inrelease")?;
                Ok(())
            }
            Kind::Deb { filename, .. } => {
                let version = entry.version.as_deref().ok_or("a .deb entry has a version")?;
                let stanza = evidence_of(entry, STANZA).ok_or("a .deb entry carries its debian-stanza")?;
                let arch = entry.attributes.get("architecture").map(String::as_str);
                check_stanza(stanza, &entry.name, version, arch, filename, &sha256.0, entry.size)
            }
        }
    }

    /// Each entry's own file; an index file also at its by-hash name; and
    /// what site-signed publication writes beside them (no entry's path can
    /// be one of those, but the paths are the entry's all the same).
    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        let path = entry.path.as_str();
        match kind(path) {
            Ok(Kind::Release { .. }) => add(Reserved::own(path, "InRelease")),
            Ok(Kind::Index { .. }) => {
                add(Reserved::own(path, "index file"));
                if let Some(sha) = entry.digests.get("sha256") {
                    add(Reserved::own(by_hash(path, &sha.0), "by-hash index file"));
                }
            }
            _ => add(Reserved::own(path, ".deb file")),
        }
        for generated in site_files(entry) {
            add(Reserved::own(generated, "site-signed index file"));
        }
    }

    /// An apt repository: every carried file at its path, byte for byte,
    /// index files also under `by-hash/SHA256/`. Before anything of this
    /// import is published, each new `.deb`'s stanza must be a paragraph of
    /// a `Packages.xz` of its archive (whose SHA256 the signed `InRelease`
    /// lists, checked in verification): the last link of apt's chain.
    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        let site = change.pinned.and_then(|p| p.roots.downcast_ref::<Roots>()).and_then(|r| r.site.as_ref());
        check_no_rollback(change, tree)?;
        for entry in &change.removed {
            tree.remove(NAME, entry.path.as_str())?;
            for generated in site_files(entry) {
                tree.remove(NAME, &generated)?;
            }
        }
        // A withdrawn or replaced index's old content leaves its by-hash name with it.
        for entry in change.removed.iter().chain(&change.replaced) {
            if let (Ok(Kind::Index { .. }), Some(sha)) = (kind(entry.path.as_str()), entry.digests.get("sha256")) {
                tree.remove(NAME, &by_hash(entry.path.as_str(), &sha.0))?;
            }
        }
        for entry in &change.new {
            match kind(entry.path.as_str()) {
                // Site-signed, the site's InRelease takes the path; Debian's is kept beside it.
                Ok(Kind::Release { .. }) if site.is_some() => {
                    let upstream = RelPath::new(&upstream_path(entry.path.as_str())).map_err(Error::Usage)?;
                    tree.link_blob(NAME, &upstream, &entry.blob)?;
                }
                _ => tree.link_blob(NAME, &entry.path, &entry.blob)?,
            }
            if let (Ok(Kind::Index { .. }), Some(sha)) = (kind(entry.path.as_str()), entry.digests.get("sha256")) {
                let hashed = RelPath::new(&by_hash(entry.path.as_str(), &sha.0)).map_err(Error::Usage)?;
                tree.link_blob(NAME, &hashed, &entry.blob)?;
            }
        }
        check_listed(change, tree)?;
        match site {
            Some(site) => site::publish_site(&change.all, tree, site, crate::time::now()),
            None => Ok(()),
        }
    }

    fn route(&self, route: &crate::http::Route<'_>, folder: &crate::http::Folder<'_>) -> crate::http::Response {
        serve::route(route, folder)
    }

    /// What an apt source line names before `ARCHIVE SUITE COMPONENT`.
    fn client_url(&self, base: &str) -> Option<String> {
        Some(format!("{base}/{NAME}/"))
    }

    /// A suite moves on: its channel's next bundle brings a newer InRelease
    /// and the index files it lists (never an older one: see
    /// [`check_no_rollback`]). A `.deb` never changes once published.
    fn entry_replaceable(&self, entry: &Entry) -> bool {
        matches!(kind(entry.path.as_str()), Ok(Kind::Release { .. } | Kind::Index { .. }))
    }

    /// `pkg:deb/debian/NAME@VERSION?arch=ARCH`, the architecture from the
    /// pool file name (`NAME_VERSION_ARCH.deb`), as the purl spec's deb type asks.
    fn purl(&self, name: &str, version: &str, path: &str) -> Option<String> {
        let Ok(Kind::Deb { filename, .. }) = kind(path) else { return None };
        let purl = super::purl("deb/debian", name, version);
        let arch = filename.strip_suffix(".deb").and_then(|f| f.rsplit_once('_')).map(|(_, arch)| arch);
        Some(match arch {
            Some(arch) if check_segment(arch, "architecture").is_ok() => {
                format!("{purl}?arch={}", crate::escape::url_segment(arch))
            }
            _ => purl,
        })
    }

    fn lockfile_flag(&self) -> Option<&'static str> {
        Some("--debian-packages")
    }

    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &evidence::EVIDENCE
    }

    fn verify_evidence(&self, entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
        evidence::verify(entry, trust, id)
    }
}

/// Where site-signed publication keeps Debian's InRelease.
fn upstream_path(inrelease: &str) -> String {
    format!("{inrelease}{}", site::UPSTREAM_SUFFIX)
}

/// What site-signed publication writes for `entry`: beside an InRelease,
/// Debian's copy and the site's Release and Release.gpg; beside a
/// Packages.xz, the site's Packages.
fn site_files(entry: &Entry) -> Vec<String> {
    let path = entry.path.as_str();
    match kind(path) {
        Ok(Kind::Release { .. }) => {
            let dists = path.trim_end_matches("InRelease");
            vec![upstream_path(path), format!("{dists}Release"), format!("{dists}Release.gpg")]
        }
        Ok(Kind::Index { rel, .. }) if rel.ends_with("/Packages.xz") => {
            vec![path.trim_end_matches(".xz").to_owned()]
        }
        _ => Vec::new(),
    }
}

/// A replaced InRelease may only be followed by one dated later: a bundle
/// signed by a trusted key must not roll a suite back to an older, validly
/// signed Release (with the security updates since then missing). The one
/// published is read from `tree` before anything of this import is placed
/// (the inventory keeps only the kind of a Debian entry's evidence).
fn check_no_rollback(change: &Change<'_>, tree: &dyn Layout) -> Result<()> {
    let date = |inrelease: &[u8]| -> Result<u64, String> {
        let text = openpgp::signed_text(inrelease)?;
        let release = control::paragraph(text.trim_start_matches('\n')).map_err(|e| format!("its Release: {e}"))?;
        control::parse_date(release.get("Date").ok_or("its Release has no Date")?)
    };
    for old in &change.replaced {
        if !matches!(kind(old.path.as_str()), Ok(Kind::Release { .. })) {
            continue;
        }
        let Some(new) = change.new.iter().find(|e| e.path == old.path) else { continue };
        // Site-signed, the mirror's InRelease is the site's: Debian's is beside it.
        let published = tree
            .read(NAME, &upstream_path(old.path.as_str()))
            .or_else(|| tree.read(NAME, old.path.as_str()))
            .unwrap_or_default();
        let was = date(&published).map_err(|m| refused(&format!("{} InRelease in the mirror", old.name), m))?;
        let now = date(evidence_of(new, INRELEASE).unwrap_or_default())
            .map_err(|m| refused(&format!("{} InRelease", new.name), m))?;
        if now < was {
            return Err(refused(
                &format!("{} InRelease", new.name),
                format!(
                    "it is dated {}, before the one the mirror holds ({}); a suite never goes back to an older Release: export the suite again",
                    crate::time::rfc3339(now),
                    crate::time::rfc3339(was)
                ),
            ));
        }
    }
    Ok(())
}

/// The carried evidence of `kind`.
fn evidence_of<'a>(entry: &'a Entry, kind: &str) -> Option<&'a [u8]> {
    entry.evidence.iter().find(|e| e.kind == kind).map(|e| e.data.as_slice())
}

/// A stanza against the entry carrying it: the package, version,
/// architecture, file name, SHA256 and size it states.
pub fn check_stanza(
    stanza: &[u8],
    name: &str,
    version: &str,
    arch: Option<&str>,
    filename: &str,
    sha256: &[u8],
    size: u64,
) -> Result<(), String> {
    let text = std::str::from_utf8(stanza).map_err(|_| "its stanza is not UTF-8".to_owned())?;
    let p = control::paragraph(text).map_err(|e| format!("its stanza: {e}"))?;
    let field = |f: &str| p.get(f).ok_or_else(|| format!("its stanza has no {f}"));
    let states = |f: &str, want: &str| -> Result<(), String> {
        let have = field(f)?;
        if have == want { Ok(()) } else { Err(format!("its stanza names {f} {have:?}, the entry {want:?}")) }
    };
    states("Package", name)?;
    states("Version", version)?;
    if let Some(arch) = arch {
        states("Architecture", arch)?;
    }
    states("Filename", filename)?;
    states("SHA256", &hex::encode(sha256))?;
    states("Size", &size.to_string())?;
    Ok(())
}

/// Every new `.deb`'s stanza, verbatim, among the paragraphs of the
/// `Packages.xz` files of its archive that the tree holds after this import.
fn check_listed(change: &Change<'_>, tree: &dyn Layout) -> Result<()> {
    let debs: Vec<(&Entry, &str)> = change
        .new
        .iter()
        .filter_map(|e| match kind(e.path.as_str()) {
            Ok(Kind::Deb { archive, .. }) => Some((*e, archive)),
            _ => None,
        })
        .collect();
    if debs.is_empty() {
        return Ok(());
    }
    let mut listed: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for entry in &change.all {
        if let Ok(Kind::Index { archive, rel, .. }) = kind(entry.path.as_str())
            && rel.ends_with("/Packages.xz")
        {
            let packed = tree.read(NAME, entry.path.as_str()).unwrap_or_default();
            let text = unxz(&packed, entry.path.as_str()).map_err(|m| refused(&entry.name, m))?;
            listed.entry(archive).or_default().extend(control::split_paragraphs(&text).map(str::to_owned));
        }
    }
    for (entry, archive) in debs {
        let stanza =
            String::from_utf8_lossy(evidence_of(entry, STANZA).unwrap_or_default()).trim_matches('\n').to_owned();
        if !listed.get(archive).is_some_and(|set| set.contains(&stanza)) {
            return Err(refused(
                &format!("{} {}", entry.name, entry.version.as_deref().unwrap_or_default()),
                format!(
                    "its stanza is in no signed Packages.xz of {archive} the mirror holds; export its suite's index files with it"
                ),
            ));
        }
    }
    Ok(())
}

fn refused(what: &str, why: String) -> Error {
    Error::rejected(format!("debian {what}"), Rejection::Policy(why))
}

/// The text of an xz-compressed index file, decompressed into a capped
/// buffer (a Packages file of a whole release is about 50 MB).
pub fn unxz(packed: &[u8], what: &str) -> Result<String, String> {
    let mut out = Capped(Vec::new());
    let mut reader = std::io::BufReader::new(packed);
    lzma_rs::xz_decompress(&mut reader, &mut out)
        .map_err(|e| format!("{what}: not xz data within {MAX_INDEX} bytes ({e})"))?;
    String::from_utf8(out.0).map_err(|_| format!("{what}: not UTF-8 text"))
}

/// The most an index file may decompress to.
const MAX_INDEX: usize = 512 << 20;

struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_INDEX {
            return Err(std::io::Error::other("over the cap"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_name_the_architecture() {
        let purl = |path: &str| Debian.purl("libwbclient0", "2:4.17.12+dfsg-0+deb12u2", path);
        assert_eq!(
            purl("debian/pool/main/s/samba/libwbclient0_4.17.12+dfsg-0+deb12u2_amd64.deb").as_deref(),
            Some("pkg:deb/debian/libwbclient0@2%3A4.17.12%2Bdfsg-0%2Bdeb12u2?arch=amd64")
        );
        assert_eq!(purl("debian/dists/bookworm/InRelease"), None);
    }

    #[test]
    fn paths_and_their_kinds() {
        assert_eq!(
            kind("debian/dists/bookworm/InRelease").unwrap(),
            Kind::Release { archive: "debian", suite: "bookworm" }
        );
        assert!(matches!(kind("debian/dists/bookworm/main/binary-amd64/Packages.xz"), Ok(Kind::Index { .. })));
        assert!(matches!(kind("debian/dists/bookworm/main/i18n/Translation-en.xz"), Ok(Kind::Index { .. })));
        assert!(matches!(kind("debian/pool/main/h/hello/hello_2.10-3_amd64.deb"), Ok(Kind::Deb { .. })));
        for bad in ["debian", "debian/dists/bookworm/Release.gpg", "debian/dists/../InRelease", "debian/pool/x.txt"] {
            assert!(kind(bad).is_err(), "{bad}");
        }
        assert_eq!(
            by_hash("d/dists/s/main/binary-amd64/Packages.xz", &[0xab]),
            "d/dists/s/main/binary-amd64/by-hash/SHA256/ab"
        );
    }
}
