//! PyPI: requirements.txt / pylock.toml on the connected side, resolved
//! through the PEP 691 JSON simple API; the PEP 658 core metadata and the
//! PEP 740 provenance travel as evidence, yanked flags and requires-python
//! as attributes.

pub mod cli;
pub mod config;
pub mod lockfile;
mod serve;
pub mod source;

use std::fmt::Write as _;

use serde::Deserialize;

use self::lockfile::{PypiPin, normalize};
use crate::ecosystem::registry::{Artifact, FetchContext, carry, digest_mismatch, entry, join_url};
use crate::ecosystem::{Change, Ecosystem, Reserved};
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::error::{Error, Result};
use crate::escape;
use crate::fetch::{Digests, parallel};
use crate::http;
use crate::id::RelPath;
use crate::lockfile::LockError;
use crate::manifest::Entry;
use crate::manifest::evidence::EvidenceKind;
use crate::mirror::Layout;

mod evidence;
mod policy;

pub use evidence::verify_pep740;

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "pypi";
/// The public index, used when neither flag, config nor pip's configuration names one.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple/";
/// The PEP 691 JSON form of the simple API: asked of the index at export, served by `airlock serve`.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";
/// The simple API's folder, and the Integrity API's (PEP 740), in the mirror and in URLs.
const SIMPLE: &str = "simple";
const INTEGRITY: &str = "integrity";
/// A project's pages in its folder: PEP 503 HTML and PEP 691 JSON.
const PAGE_HTML: &str = "index.html";
const PAGE_JSON: &str = "index.json";
/// A file's PEP 740 provenance, in the Integrity API's folder of the file.
const PROVENANCE: &str = "provenance";

/// The PyPI ecosystem.
pub struct Pypi;

impl Ecosystem for Pypi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        let version = entry.version.as_deref().ok_or("a PyPI file has a version")?;
        check_name(&entry.name)?;
        if normalize(&entry.name) != entry.name {
            return Err("the project name is not in its normalized form".into());
        }
        check_version(version)?;
        let mut parts = entry.path.components();
        let file = match (parts.next(), parts.next(), parts.next()) {
            (Some(project), Some(file), None) if project == entry.name => file,
            _ => return Err(format!("path {} is not PROJECT/FILENAME", entry.path)),
        };
        // Wheel and sdist names start with the project's name: another
        // project's file listed under this one is the wrong software.
        if !normalize(file).starts_with(&format!("{}-", entry.name)) {
            return Err(format!("file {file} is not a file of project {}", entry.name));
        }
        check_file_name(file)?;
        if !entry.digests.contains_key("sha256") {
            return Err("a PyPI file carries the index's sha256".into());
        }
        Ok(())
    }

    /// The file, its PEP 658 metadata and PEP 740 provenance are the
    /// entry's own; the project's pages are shared by its files.
    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        add(Reserved::own(simple_path(entry), "file"));
        add(Reserved::own(metadata_path(entry), "core metadata"));
        add(Reserved::own(provenance_path(entry), "provenance"));
        for page in project_page_paths(&entry.name) {
            add(Reserved::shared(page, "index page", &entry.name));
        }
    }

    fn reserved_globally(&self) -> &'static [(&'static str, &'static str)] {
        &[(ROOT_PAGE, "root index page"), (ROOT_PAGE_JSON, "root index page")]
    }

    /// Files, their PEP 658 metadata and PEP 740 provenance go under
    /// `pypi/simple/PROJECT/` and `pypi/integrity/...`; every project page
    /// (HTML for pip's file:// index, PEP 691 JSON for `airlock serve`) and
    /// the root page are regenerated from all entries.
    /// A PEP 503 page is asked for by its folder (`simple/NAME/`, `simple/`).
    fn static_aliases(&self, path: &str) -> Vec<String> {
        path.strip_suffix(PAGE_HTML)
            .filter(|folder| folder.ends_with('/'))
            .map(|folder| vec![folder.to_owned()])
            .unwrap_or_default()
    }

    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        for entry in &change.removed {
            let file = simple_path(entry);
            tree.remove(NAME, &file)?;
            tree.remove(NAME, &metadata_path(entry))?;
            tree.remove(NAME, &provenance_path(entry))?;
        }
        for entry in &change.new {
            let file = simple_path(entry);
            tree.link_blob(NAME, &RelPath::new(&file).expect("built from a checked path"), &entry.blob)?;
            for evidence in &entry.evidence {
                match evidence.kind.as_str() {
                    "pypi-core-metadata" => tree.write(NAME, &metadata_path(entry), &evidence.data)?,
                    "pypi-provenance" => tree.write(NAME, &provenance_path(entry), &evidence.data)?,
                    _ => {}
                }
            }
        }
        let mut projects: Vec<&str> = change.all.iter().map(|e| e.name.as_str()).collect();
        projects.sort_unstable();
        projects.dedup();
        for project in change.touched() {
            let files = change.versions_of(project);
            let [html_path, json_path] = project_page_paths(project);
            if files.is_empty() {
                tree.remove(NAME, &html_path)?;
                tree.remove(NAME, &json_path)?;
                continue;
            }
            let listed: Vec<Listed<'_>> = files.iter().map(|entry| Listed::new(entry, tree)).collect();
            let (html, json) = project_pages(project, &listed, change.base_url);
            tree.write(NAME, &html_path, html.as_bytes())?;
            tree.write(NAME, &json_path, json.as_bytes())?;
        }
        tree.write(NAME, ROOT_PAGE, root_page(&projects).as_bytes())?;
        tree.write(NAME, ROOT_PAGE_JSON, root_page_json(&projects).as_bytes())
    }

    fn route(&self, route: &http::Route<'_>, folder: &http::Folder<'_>) -> http::Response {
        serve::route(route, folder)
    }

    fn client_url(&self, base: &str) -> Option<String> {
        Some(serve::client_url(base))
    }

    /// A release has several files, so the file name is a qualifier.
    fn purl(&self, name: &str, version: &str, path: &str) -> Option<String> {
        let file_name = path.rsplit('/').next().unwrap_or_default();
        Some(format!("{}?file_name={}", super::purl(NAME, name, version), escape::url_segment(file_name)))
    }

    fn lockfile_flag(&self) -> Option<&'static str> {
        Some("--pypi-lock")
    }

    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &evidence::EVIDENCE
    }

    fn normalize_name(&self, name: &str) -> String {
        policy::normalize_name(name)
    }

    fn verify_evidence(&self, entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
        evidence::verify(entry, trust, id)
    }
}

/// A project name as PEP 508 allows it: ASCII letters, digits, `-`, `_` and
/// `.`, starting and ending with a letter or digit. Checked on both sides:
/// for every lockfile pin at export, for every entry on import.
pub fn check_name(name: &str) -> Result<(), String> {
    let inner = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    let ends = name.bytes().next().zip(name.bytes().next_back());
    if ends.is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric())
        && name.bytes().all(inner)
    {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid PyPI project name (PEP 508: letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"
        ))
    }
}

/// A version pip accepts: PEP 440, as the `packaging` library parses it
/// (any case, an optional leading `v`, the separators `.`, `-` and `_`
/// between the parts), without surrounding white space. So `1.0`,
/// `2!1.0.post2.dev3`, `1.0rc1`, `1.0-1` and the local `1.0+abc.7` are
/// versions; `..`, `1.*`, an empty string or one with a NUL are not.
pub fn check_version(version: &str) -> Result<(), String> {
    if pep440::is_version(version) { Ok(()) } else { Err(format!("{version:?} is not a valid PyPI version (PEP 440)")) }
}

/// Refuses, before anything is fetched, a lockfile pin whose name or
/// version PyPI cannot have (exit 2, naming `origin` and the pin).
pub fn check_pins(pins: &[PypiPin], origin: &str) -> Result<()> {
    for pin in pins {
        check_name(&pin.name).and_then(|()| check_version(&pin.version)).map_err(|why| {
            LockError::new(
                origin,
                format!("PyPI package {:?} {:?}: {why}; correct the lockfile", pin.name, pin.version),
            )
        })?;
    }
    Ok(())
}

/// A distribution file's name: the characters wheel and sdist names are
/// made of (PEP 427 and PEP 625, and the older sdist names with the
/// project's own spelling), nothing a page, a URL or a shell would read as markup.
fn check_file_name(file: &str) -> Result<(), String> {
    if file.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+!".contains(&b)) {
        Ok(())
    } else {
        Err(format!("file name {file:?} has characters no wheel or sdist name has"))
    }
}

/// PEP 440 versions, read with the grammar of `packaging`'s `VERSION_PATTERN`.
mod pep440 {
    /// Whether `text` is a PEP 440 version.
    pub fn is_version(text: &str) -> bool {
        if !text.is_ascii() {
            return false;
        }
        let lower = text.to_ascii_lowercase();
        let mut r = Reader { rest: lower.as_bytes() };
        r.eat(b"v");
        // An epoch `N!`, or the first number of the release.
        if !r.number() {
            return false;
        }
        if r.eat(b"!") && !r.number() {
            return false;
        }
        while r.rest.len() > 1 && r.rest[0] == b'.' && r.rest[1].is_ascii_digit() {
            r.rest = &r.rest[1..];
            r.number();
        }
        r.labelled(&["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"]);
        // A post release is `-N` or a labelled one.
        if r.rest.first() == Some(&b'-') && r.rest.get(1).is_some_and(u8::is_ascii_digit) {
            r.rest = &r.rest[1..];
            r.number();
        } else {
            r.labelled(&["post", "rev", "r"]);
        }
        r.labelled(&["dev"]);
        if r.eat(b"+") {
            // The local part: alphanumeric runs joined by single separators.
            loop {
                if !r.alphanumeric() {
                    return false;
                }
                if !r.separator() {
                    break;
                }
            }
        }
        r.rest.is_empty()
    }

    struct Reader<'a> {
        rest: &'a [u8],
    }

    impl Reader<'_> {
        fn eat(&mut self, token: &[u8]) -> bool {
            match self.rest.strip_prefix(token) {
                Some(rest) => {
                    self.rest = rest;
                    true
                }
                None => false,
            }
        }

        fn run(&mut self, class: impl Fn(&u8) -> bool) -> bool {
            let n = self.rest.iter().take_while(|b| class(b)).count();
            self.rest = &self.rest[n..];
            n > 0
        }

        fn number(&mut self) -> bool {
            self.run(u8::is_ascii_digit)
        }

        fn alphanumeric(&mut self) -> bool {
            self.run(u8::is_ascii_alphanumeric)
        }

        fn separator(&mut self) -> bool {
            self.eat(b".") || self.eat(b"-") || self.eat(b"_")
        }

        /// An optional `[-_.]? LABEL [-_.]? N?`; nothing is consumed when
        /// none of `labels` follows (longer labels are listed first).
        fn labelled(&mut self, labels: &[&str]) {
            let start = self.rest;
            self.separator();
            if labels.iter().any(|label| self.eat(label.as_bytes())) {
                self.separator();
                self.number();
            } else {
                self.rest = start;
            }
        }
    }
}

/// `simple/PROJECT/FILENAME` in the mirror's pypi folder.
fn simple_path(entry: &Entry) -> String {
    format!("{SIMPLE}/{}", entry.path)
}

/// Where PEP 658 puts a file's core metadata: beside it, named after it.
fn metadata_path(entry: &Entry) -> String {
    format!("{}.metadata", simple_path(entry))
}

/// A project's PEP 503 HTML page and PEP 691 JSON page.
fn project_page_paths(project: &str) -> [String; 2] {
    [format!("{SIMPLE}/{project}/{PAGE_HTML}"), format!("{SIMPLE}/{project}/{PAGE_JSON}")]
}

/// The PEP 503 root page, listing every project: [`PAGE_HTML`] in [`SIMPLE`].
const ROOT_PAGE: &str = "simple/index.html";
/// The PEP 691 JSON form of [`ROOT_PAGE`].
const ROOT_PAGE_JSON: &str = "simple/index.json";

/// The simple API version a page declares: PEP 700's 1.1 (with `size`,
/// `versions`), or 1.3 once a file carries PEP 740 `provenance`, which
/// that version introduced (clients ignore keys of a later version than the
/// page declares).
fn api_version(with_provenance: bool) -> &'static str {
    if with_provenance { "1.3" } else { "1.1" }
}

fn file_name(entry: &Entry) -> &str {
    entry.path.as_str().rsplit('/').next().unwrap_or_default()
}

/// Where PEP 740's Integrity API puts a file's provenance.
fn provenance_path(entry: &Entry) -> String {
    format!(
        "{INTEGRITY}/{}/{}/{}/{PROVENANCE}",
        entry.name,
        entry.version.as_deref().unwrap_or_default(),
        file_name(entry)
    )
}

/// A file on a project page, with what the generation holds beside it.
struct Listed<'a> {
    entry: &'a Entry,
    /// The sha256 of its PEP 658 core metadata file, when that is there.
    metadata_sha256: Option<String>,
    /// Whether its PEP 740 provenance is there.
    provenance: bool,
}

impl<'a> Listed<'a> {
    fn new(entry: &'a Entry, tree: &dyn Layout) -> Self {
        let metadata = tree.read(NAME, &metadata_path(entry));
        Listed {
            entry,
            metadata_sha256: metadata.map(|m| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&m))),
            provenance: tree.read(NAME, &provenance_path(entry)).is_some(),
        }
    }
}

/// The PEP 503 HTML page and the PEP 691 JSON page of one project. Every
/// text from the entries goes through [`escape::html`], every URL through
/// [`escape::url_segment`] first; the JSON is built by `serde_json`. File
/// URLs are relative; provenance URLs are absolute under `base_url` when
/// there is one (PEP 740 asks for absolute ones; relative is all a mirror
/// that does not know its address can give).
fn project_pages(project: &str, files: &[Listed<'_>], base_url: Option<&str>) -> (String, String) {
    let title = escape::html(project);
    let version = api_version(files.iter().any(|f| f.provenance));
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"{version}\"><title>Links for {title}</title></head>\n<body>\n<h1>Links for {title}</h1>\n"
    );
    // The JSON page is written file by file as the HTML one is: a project of
    // tens of thousands of files built as a `serde_json::Value` took some
    // 2.5 KB a file. Keys in the order serde_json sorts a map's.
    let mut json = String::from("{\"files\":[");
    for (i, listed) in files.iter().enumerate() {
        let entry = listed.entry;
        let name = file_name(entry);
        let url = escape::url_segment(name);
        let sha256 = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
        let mut attrs = String::new();
        let requires_python = entry.attributes.get("requires-python").map(String::as_str);
        if let Some(rp) = requires_python {
            let _ = write!(attrs, " data-requires-python=\"{}\"", escape::html(rp));
        }
        let yanked = entry.attributes.get("yanked").map(String::as_str);
        if let Some(reason) = yanked {
            let _ = write!(attrs, " data-yanked=\"{}\"", escape::html(reason));
        }
        // Advertise core metadata only when the file is really there: pip
        // fails on an advertised .metadata it cannot read.
        if let Some(digest) = &listed.metadata_sha256 {
            let _ =
                write!(attrs, " data-core-metadata=\"sha256={digest}\" data-dist-info-metadata=\"sha256={digest}\"");
        }
        let provenance = listed.provenance.then(|| match base_url {
            Some(base) => format!("{base}/{NAME}/{}", escape::url_path(&provenance_path(entry))),
            None => escape::url_path(&format!("../../{}", provenance_path(entry))),
        });
        if let Some(url) = &provenance {
            let _ = write!(attrs, " data-provenance=\"{}\"", escape::html(url));
        }
        let _ = writeln!(
            html,
            "<a href=\"{}#sha256={}\"{attrs}>{}</a><br/>",
            escape::html(&url),
            escape::html(&sha256),
            escape::html(name)
        );
        let file = JsonFile {
            core_metadata: listed.metadata_sha256.as_deref().map(|sha256| Sha256 { sha256 }),
            filename: name,
            hashes: Sha256 { sha256: &sha256 },
            provenance: provenance.as_deref(),
            requires_python,
            size: entry.size,
            url: &url,
            yanked: yanked
                .map(|reason| if reason.is_empty() { YankedJson::Flag(true) } else { YankedJson::Reason(reason) }),
        };
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::to_string(&file).expect("JSON"));
    }
    html.push_str("</body>\n</html>\n");
    let mut versions: Vec<&str> = files.iter().filter_map(|f| f.entry.version.as_deref()).collect();
    versions.sort_unstable();
    versions.dedup();
    let rest = serde_json::json!({"meta": {"api-version": version}, "name": project, "versions": versions});
    // `rest` is an object: its text without the opening brace ends this one.
    let _ = write!(json, "],{}", &serde_json::to_string(&rest).expect("JSON")[1..]);
    (html, json)
}

/// One file of a PEP 691 project page (fields in the order of their keys).
#[derive(serde::Serialize)]
struct JsonFile<'a> {
    #[serde(rename = "core-metadata", skip_serializing_if = "Option::is_none")]
    core_metadata: Option<Sha256<'a>>,
    filename: &'a str,
    hashes: Sha256<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<&'a str>,
    #[serde(rename = "requires-python", skip_serializing_if = "Option::is_none")]
    requires_python: Option<&'a str>,
    size: u64,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    yanked: Option<YankedJson<'a>>,
}

#[derive(serde::Serialize)]
struct Sha256<'a> {
    sha256: &'a str,
}

/// PEP 691's `yanked`: `true`, or the reason given.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum YankedJson<'a> {
    Flag(bool),
    Reason(&'a str),
}

/// The PEP 503 root page: a link to every project's page.
fn root_page(projects: &[&str]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Simple index</title></head>\n<body>\n",
    );
    for project in projects {
        let href = escape::url_segment(project);
        let _ = writeln!(html, "<a href=\"{}/\">{}</a><br/>", escape::html(&href), escape::html(project));
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// The PEP 691 JSON root page: every project by name.
fn root_page_json(projects: &[&str]) -> String {
    /// One project of the root page: a `serde_json::Value` for each of a
    /// large mirror's projects would take a few hundred bytes each.
    #[derive(serde::Serialize)]
    struct Project<'a> {
        name: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Meta {
        #[serde(rename = "api-version")]
        api_version: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Root<'a> {
        meta: Meta,
        projects: Vec<Project<'a>>,
    }
    let projects = projects.iter().map(|name| Project { name }).collect();
    serde_json::to_string(&Root { meta: Meta { api_version: api_version(false) }, projects }).expect("JSON")
}

/// Which files of a release to take.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Every file of the release, whatever its tags.
    pub all: bool,
    /// CPython versions the wheels must run on, e.g. `3.12`.
    pub python_versions: Vec<String>,
    /// Platform families, e.g. `manylinux_x86_64`, `musllinux_aarch64`, `win_amd64`.
    pub platforms: Vec<String>,
    /// Take the sdist too.
    pub sdist: bool,
}

impl Default for Selection {
    /// A `manylinux` `x86_64` CPython 3.12 and the sdist.
    fn default() -> Self {
        Selection {
            all: false,
            python_versions: vec!["3.12".into()],
            platforms: vec!["manylinux_x86_64".into()],
            sdist: true,
        }
    }
}

/// PEP 691 project page.
#[derive(Deserialize)]
struct Project {
    files: Vec<IndexFile>,
}

/// PEP 691 file, with the PEP 658/714 and PEP 740 keys.
#[derive(Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Yanked,
    #[serde(rename = "core-metadata")]
    core_metadata: Option<MetadataFlag>,
    #[serde(rename = "dist-info-metadata")]
    dist_info_metadata: Option<MetadataFlag>,
    provenance: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Yanked {
    #[default]
    No,
    Flag(bool),
    Reason(String),
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum MetadataFlag {
    Flag(bool),
    Hashes(std::collections::BTreeMap<String, String>),
}

/// Resolves every pin against the simple index at `index`.
pub fn resolve(pins: &[PypiPin], index: &str, selection: &Selection, ctx: &FetchContext) -> Result<Vec<Artifact>> {
    let mut names: Vec<&str> = pins.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let projects = parallel(&names, ctx.jobs, |name| {
        let url = join_url(index, &format!("{name}/"));
        let body = ctx.document(&url, SIMPLE_JSON)?.ok_or_else(|| {
            Error::Usage(format!("PyPI project {name}: not found at {url}; check the name and --pypi-index"))
        })?;
        let project: Project = serde_json::from_slice(&body).map_err(|e| {
            Error::Usage(format!("{url}: the index did not answer with PEP 691 JSON ({e}); airlock needs an index that serves the JSON simple API"))
        })?;
        Ok((name.to_owned(), url, project))
    })?;
    let mut jobs = Vec::new();
    for pin in pins {
        let (_, url, project) = projects.iter().find(|(n, _, _)| *n == pin.name).expect("every project was fetched");
        for file in choose(pin, project, url, selection)? {
            jobs.push((pin, url.as_str(), file));
        }
    }
    parallel(&jobs, ctx.jobs, |(pin, project_url, file)| fetch_file(pin, project_url, file, ctx))
}

/// The files of `pin`'s release that the selection (and the lockfile's hashes) ask for.
fn choose<'p>(pin: &PypiPin, project: &'p Project, url: &str, selection: &Selection) -> Result<Vec<&'p IndexFile>> {
    let id = format!("{}=={}", pin.name, pin.version);
    let release: Vec<&IndexFile> = project
        .files
        .iter()
        .filter(|f| file_version(&f.filename, &pin.name).as_deref() == Some(pin.version.as_str()))
        .collect();
    if release.is_empty() {
        return Err(Error::Usage(format!("PyPI {id}: the index has no files for this version ({url}); check the pin")));
    }
    let chosen: Vec<&IndexFile> = if pin.files.is_empty() {
        let wanted = |f: &&IndexFile| selection.all || wanted_file(&f.filename, selection);
        let hashed = |f: &&IndexFile| {
            pin.sha256.is_empty()
                || f.hashes.get("sha256").and_then(|h| hex32(h)).is_some_and(|h| pin.sha256.contains(&h))
        };
        release.into_iter().filter(wanted).filter(hashed).collect()
    } else {
        // A pylock.toml names its files; take exactly those.
        let mut exact = Vec::new();
        for pinned in &pin.files {
            let file = release.iter().find(|f| f.filename == pinned.name).ok_or_else(|| {
                Error::Usage(format!(
                    "PyPI {id}: the lockfile pins {} which the index does not serve ({url})",
                    pinned.name
                ))
            })?;
            exact.push(*file);
        }
        exact
    };
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "PyPI {id}: no file of the release matches the lockfile's hashes and the platform selection; use --python-version/--python-platform or --pypi-all-files"
        )));
    }
    Ok(chosen)
}

fn fetch_file(pin: &PypiPin, project_url: &str, file: &IndexFile, ctx: &FetchContext) -> Result<Artifact> {
    let id = format!("PyPI {}=={} ({})", pin.name, pin.version, file.filename);
    let index_sha = file.hashes.get("sha256").and_then(|h| hex32(h));
    let locked_sha = pin.files.iter().find(|f| f.name == file.filename).and_then(|f| f.sha256);
    let check = |d: &Digests| {
        for (want, whose) in [(index_sha, "index's"), (locked_sha, "lockfile's")] {
            if want.is_some_and(|w| w[..] != d.sha256[..]) {
                return Err(digest_mismatch(&id, &format!("the file's sha256 differs from the {whose}")));
            }
        }
        if !pin.sha256.is_empty() && !pin.sha256.iter().any(|h| h[..] == d.sha256[..]) {
            return Err(digest_mismatch(&id, "the file's sha256 is not among the lockfile's --hash values"));
        }
        Ok(())
    };
    if index_sha.is_none() && locked_sha.is_none() && pin.sha256.is_empty() {
        return Err(Error::Usage(format!(
            "{id}: neither the index nor the lockfile states a sha256; airlock will not carry an unverifiable file"
        )));
    }
    let url = resolve_url(project_url, &file.url);
    let cached = ctx.artifact(&url, &check)?;
    let path =
        RelPath::new(&format!("{}/{}", pin.name, file.filename)).map_err(|e| Error::Usage(format!("{id}: {e}")))?;
    let mut e = entry(NAME, &pin.name, &pin.version, path, &cached);
    e.source = Some(url.clone());
    if let Some(rp) = &file.requires_python {
        e.attributes.insert("requires-python".into(), rp.clone());
    }
    match &file.yanked {
        Yanked::No | Yanked::Flag(false) => {}
        Yanked::Flag(true) => {
            e.attributes.insert("yanked".into(), String::new());
        }
        Yanked::Reason(reason) => {
            e.attributes.insert("yanked".into(), reason.clone());
        }
    }
    let metadata_url = format!("{url}.metadata");
    match file.core_metadata.clone().or_else(|| file.dist_info_metadata.clone()) {
        None | Some(MetadataFlag::Flag(false)) => {
            carry(&mut e, "pypi-core-metadata", None, &format!("{project_url} core-metadata"));
        }
        Some(flag) => {
            let metadata = ctx.document(&metadata_url, "*/*")?;
            if let (Some(body), MetadataFlag::Hashes(hashes)) = (&metadata, &flag) {
                let want = hashes.get("sha256").and_then(|h| hex32(h));
                if want.is_some_and(|w| w[..] != <sha2::Sha256 as sha2::Digest>::digest(body)[..]) {
                    return Err(digest_mismatch(&id, "the core metadata file's sha256 differs from the index's"));
                }
            }
            carry(&mut e, "pypi-core-metadata", metadata, &metadata_url);
        }
    }
    match &file.provenance {
        Some(url) => {
            let url = resolve_url(project_url, url);
            carry(&mut e, "pypi-provenance", ctx.document(&url, "application/json")?, &url);
        }
        None => carry(&mut e, "pypi-provenance", None, &format!("{project_url} provenance")),
    }
    Ok(Artifact { entry: e, source: cached.path })
}

/// The version in a wheel or sdist file name of project `name`, or `None`.
fn file_version(filename: &str, name: &str) -> Option<String> {
    let stem = filename
        .strip_suffix(".whl")
        .or_else(|| filename.strip_suffix(".tar.gz"))
        .or_else(|| filename.strip_suffix(".zip"))?;
    if filename.len() > stem.len() && &filename[stem.len()..] == ".whl" {
        let mut parts = stem.split('-');
        let project = parts.next()?;
        let version = parts.next()?;
        return (normalize(project) == name).then(|| version.to_owned());
    }
    // sdist: NAME-VERSION, where NAME may itself contain dashes.
    let (project, version) = stem.rsplit_once('-')?;
    (normalize(project) == name).then(|| version.to_owned())
}

/// Whether a file fits the selection: the sdist if asked for, a wheel whose
/// tags run on one of the CPython versions and platforms.
fn wanted_file(filename: &str, selection: &Selection) -> bool {
    let Some(stem) = filename.strip_suffix(".whl") else {
        return selection.sdist;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    let [.., python, abi, platform] = parts[..] else { return false };
    let runs_on_python = selection.python_versions.iter().any(|v| {
        let digits = v.replace('.', "");
        python.split('.').any(|tag| {
            tag == "py3"
                || tag == format!("py{digits}")
                || tag == format!("cp{digits}")
                || (abi == "abi3" && abi3_covers(tag, &digits))
        })
    });
    let runs_on_platform =
        platform.split('.').any(|tag| tag == "any" || selection.platforms.iter().any(|p| platform_matches(tag, p)));
    runs_on_python && runs_on_platform
}

/// An abi3 wheel built for cp3N runs on every CPython from 3.N on.
fn abi3_covers(tag: &str, target_digits: &str) -> bool {
    let minor = |digits: &str| digits.strip_prefix('3').and_then(|m| m.parse::<u32>().ok());
    match (tag.strip_prefix("cp").and_then(minor), minor(target_digits)) {
        (Some(built), Some(target)) => built <= target,
        _ => false,
    }
}

/// `manylinux_x86_64` matches `manylinux1_x86_64`, `manylinux2014_x86_64`,
/// `manylinux_2_17_x86_64`…; other families match the same way; anything
/// else must be equal.
fn platform_matches(tag: &str, wanted: &str) -> bool {
    match wanted.split_once('_') {
        Some((family @ ("manylinux" | "musllinux"), arch)) => {
            tag.starts_with(family) && tag.ends_with(&format!("_{arch}"))
        }
        Some(("macosx", arch)) => tag.starts_with("macosx_") && tag.ends_with(&format!("_{arch}")),
        _ => tag == wanted,
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// File URLs in a simple index may be relative to the project page (RFC 3986 §5.2, paths only).
fn resolve_url(base: &str, url: &str) -> String {
    if url.contains("://") {
        return url.to_owned();
    }
    let origin_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[origin_end..].find('/').map_or(base.len(), |i| origin_end + i);
    let (origin, base_path) = base.split_at(host_end);
    let joined = if url.starts_with('/') {
        url.to_owned()
    } else {
        format!("{}{url}", &base_path[..=base_path.rfind('/').unwrap_or(0).min(base_path.len().saturating_sub(1))])
    };
    let (path, query) = joined.split_once(['?', '#']).map_or((joined.as_str(), ""), |(p, _)| (p, &joined[p.len()..]));
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("{origin}/{}{query}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_pep_508() {
        for good in ["six", "A", "zope.interface", "Django", "python-dateutil", "a_b", "0x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", ".a", "a.", "<svg onload=alert(1)>", "a b", "a/b", "caf\u{e9}", "a\0", ".."] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_follow_pep_440_as_pip_reads_it() {
        for good in [
            "1",
            "1.0",
            "1.16.0",
            "2024.1.15",
            "6.4.post2",
            "1.0.dev0",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0c1",
            "1.0alpha",
            "1.0.preview.3",
            "1!2.0",
            "1.0-1",
            "1.0.post",
            "1.0-r1",
            "1.0rev2",
            "1.0a1.post2.dev3",
            "1.0+abc",
            "1.0+abc.7",
            "1.0+ubuntu-1_2",
            "v1.0",
            "1.0RC1",
            "1.0_a_1",
            "1.0a.",
            "1.0dev-",
            "0.0.0",
        ] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "", "..", ".", "1.", "1..0", "1.0\0", "\x001.0", " 1.0", "1.0 ", "1.*", "1.0,<2", "a1.0", "1.0+",
            "1.0+a..b", "1.0+a+b", "1!", "!1", "1.0_1", "1.0-", "latest", "1.0/../x", "<script>", "1.0 +a",
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_lockfile_fixtures_pass_the_grammar_and_hostile_pins_do_not() {
        use super::lockfile::{parse_pylock, parse_requirements};
        let requirements = include_str!("../../../fixtures/lockfiles/requirements.txt");
        check_pins(&parse_requirements(requirements, "requirements.txt").unwrap(), "requirements.txt").unwrap();
        let pylock = include_str!("../../../fixtures/lockfiles/pylock.toml");
        check_pins(&parse_pylock(pylock, "pylock.toml").unwrap(), "pylock.toml").unwrap();
        let hostile = pylock.replacen("name = \"idna\"", "name = \"<svg onload=alert(1)>\"", 1);
        let e = check_pins(&parse_pylock(&hostile, "pylock.toml").unwrap(), "pylock.toml").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("pylock.toml: PyPI package \"<svg onload=alert(1)>\""), "{e}");
    }

    fn listed_entry(project: &str, file: &str, version: &str, attribute: &str) -> Entry {
        Entry {
            ecosystem: NAME.into(),
            name: project.into(),
            version: Some(version.into()),
            path: RelPath::new(&format!("{project}/{file}")).unwrap(),
            blob: crate::id::ContentId::of(b"x"),
            size: 1,
            digests: [("sha256".to_owned(), crate::manifest::Digest(vec![0xab; 32]))].into(),
            source: None,
            attributes: [("requires-python", attribute), ("yanked", attribute)]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            evidence: vec![],
            missing: vec![],
        }
    }

    /// PEP 700: `size` in every file; PEP 740: a page with provenance
    /// declares the version that introduced it; PEP 691: the root in JSON.
    #[test]
    fn pages_declare_what_they_carry() {
        let entry = listed_entry("six", "six-1.0.tar.gz", "1.0", ">=3.8");
        let page = |provenance| {
            let listed = [Listed { entry: &entry, metadata_sha256: None, provenance }];
            let (html, json) = project_pages("six", &listed, None);
            (html, serde_json::from_str::<serde_json::Value>(&json).unwrap())
        };
        let (html, json) = page(false);
        assert_eq!(json["meta"]["api-version"], "1.1");
        assert_eq!(json["files"][0]["size"], 1);
        assert!(html.contains(r#"content="1.1""#), "{html}");
        let (html, json) = page(true);
        assert_eq!(json["meta"]["api-version"], "1.3");
        assert!(json["files"][0]["provenance"].is_string());
        assert!(html.contains(r#"content="1.3""#), "{html}");
        let root: serde_json::Value = serde_json::from_str(&root_page_json(&["idna", "six"])).unwrap();
        assert_eq!(
            root,
            serde_json::json!({"meta": {"api-version": "1.1"}, "projects": [{"name": "idna"}, {"name": "six"}]})
        );
    }

    /// The JSON page written file by file is, byte for byte, what
    /// `serde_json` writes for the same page built as one value (as it was).
    #[test]
    fn json_page_is_what_serde_json_writes_for_the_page_as_one_value() {
        let yanked = listed_entry("six", "six-1.0.tar.gz", "1.0", "");
        let mut plain = listed_entry("six", "six-1.1-py3-none-any.whl", "1.1", ">=3.8");
        plain.attributes.remove("yanked");
        let reason = listed_entry("six", "six-1.2.tar.gz", "1.2", "broken <build>");
        let listed = [
            Listed { entry: &yanked, metadata_sha256: Some("cd".repeat(32)), provenance: true },
            Listed { entry: &plain, metadata_sha256: None, provenance: false },
            Listed { entry: &reason, metadata_sha256: None, provenance: true },
        ];
        let (_, json) = project_pages("six", &listed, Some("http://mirror:8080"));
        let file = |f: &Listed<'_>, extra: serde_json::Value| {
            let name = file_name(f.entry);
            let mut value = serde_json::json!({"filename": name, "url": escape::url_segment(name), "hashes": {"sha256": "ab".repeat(32)}, "size": 1});
            for (key, v) in extra.as_object().unwrap() {
                value[key] = v.clone();
            }
            value
        };
        let provenance =
            |f: &Listed<'_>| format!("http://mirror:8080/{NAME}/{}", escape::url_path(&provenance_path(f.entry)));
        let expected = serde_json::json!({
            "meta": {"api-version": "1.3"},
            "name": "six",
            "files": [
                file(&listed[0], serde_json::json!({"requires-python": "", "yanked": true, "core-metadata": {"sha256": "cd".repeat(32)}, "provenance": provenance(&listed[0])})),
                file(&listed[1], serde_json::json!({"requires-python": ">=3.8"})),
                file(&listed[2], serde_json::json!({"requires-python": "broken <build>", "yanked": "broken <build>", "provenance": provenance(&listed[2])})),
            ],
            "versions": ["1.0", "1.1", "1.2"],
        });
        assert_eq!(json, serde_json::to_string(&expected).unwrap());
        assert_eq!(
            project_pages("six", &[], None).1,
            r#"{"files":[],"meta":{"api-version":"1.1"},"name":"six","versions":[]}"#
        );
    }

    /// Item 12 of issue 14: the pages escape what they interpolate, tested
    /// without the name grammar (which refuses all of these first).
    #[test]
    fn hostile_names_stay_text_in_every_page() {
        use crate::escape::testing::{HOSTILE, is_relative, skeleton};
        let render = |project: &str, file: &str, version: &str, attribute: &str| {
            let entry = listed_entry(project, file, version, attribute);
            let listed = [Listed { entry: &entry, metadata_sha256: Some("ab".repeat(32)), provenance: true }];
            let (html, json) = project_pages(project, &listed, None);
            (html, json, root_page(&[project, "six"]))
        };
        let (benign_page, _, benign_root) = render("six", "six-1.0.tar.gz", "1.0", ">=3.8");
        for hostile in HOSTILE {
            let file = format!("{hostile}-1.0.tar.gz");
            let (page, json, root) = render(hostile, &file, hostile, hostile);
            for (html, benign) in [(&page, &benign_page), (&root, &benign_root)] {
                let (tags, hrefs) = skeleton(html);
                assert_eq!(tags, skeleton(benign).0, "{hostile}: {html}");
                assert!(hrefs.iter().all(|h| is_relative(h)), "{hostile}: {hrefs:?}");
                if hostile.contains(['<', '>', '"', '\'', '&']) {
                    assert!(!html.contains(hostile), "{hostile} unescaped in {html}");
                }
            }
            let json: serde_json::Value = serde_json::from_str(&json).unwrap();
            let listed = &json["files"][0];
            assert_eq!(json["name"], *hostile);
            assert_eq!(json["versions"][0], *hostile);
            assert_eq!(listed["filename"], file);
            assert_eq!(listed["requires-python"], *hostile);
            assert_eq!(listed["url"], escape::url_segment(&file));
            for url in [&listed["url"], &listed["provenance"]] {
                assert!(is_relative(url.as_str().unwrap()), "{hostile}: {url}");
            }
        }
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(file_version("six-1.16.0-py2.py3-none-any.whl", "six").as_deref(), Some("1.16.0"));
        assert_eq!(file_version("zope.interface-6.0.tar.gz", "zope-interface").as_deref(), Some("6.0"));
        assert_eq!(file_version("other-1.0.tar.gz", "six"), None);
    }

    #[test]
    fn default_selection_takes_manylinux_cpython_and_sdist() {
        let s = Selection::default();
        assert!(wanted_file("six-1.16.0-py2.py3-none-any.whl", &s));
        assert!(wanted_file("six-1.16.0.tar.gz", &s));
        assert!(wanted_file("x-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", &s));
        assert!(wanted_file("x-1-cp38-abi3-manylinux2014_x86_64.whl", &s));
        assert!(!wanted_file("x-1-cp311-cp311-manylinux_2_17_x86_64.whl", &s));
        assert!(!wanted_file("x-1-cp312-cp312-win_amd64.whl", &s));
        assert!(!wanted_file("x-1-cp312-cp312-musllinux_1_1_x86_64.whl", &s));
        assert!(!wanted_file("x-1-cp312-cp312-manylinux_2_17_aarch64.whl", &s));
    }

    #[test]
    fn relative_urls() {
        assert_eq!(
            resolve_url("http://h:1/simple/six/", "../../files/six.whl#sha256=ab"),
            "http://h:1/files/six.whl#sha256=ab"
        );
        assert_eq!(resolve_url("http://h:1/simple/six/", "six.whl"), "http://h:1/simple/six/six.whl");
        assert_eq!(resolve_url("http://h:1/simple/six/", "/files/six.whl"), "http://h:1/files/six.whl");
        assert_eq!(resolve_url("http://h:1/simple/six/", "https://f/six.whl"), "https://f/six.whl");
    }
}
