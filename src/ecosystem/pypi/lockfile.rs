//! Python lockfiles: pip-compile / `pip freeze` requirements files and
//! PEP 751 `pylock.toml`.
//!
//! A requirements file pins versions and, with `--generate-hashes`, the
//! sha256 of every acceptable file; `pylock.toml` pins the exact files.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::lockfile::{LockError, sha256_from_hex};

/// One pinned Python distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiPin {
    /// The PEP 503-normalized project name.
    pub name: String,
    /// The version exactly as the lockfile wrote it.
    pub version: String,
    /// Every sha256 the lockfile accepts for this pin (one per allowed file).
    pub sha256: Vec<[u8; 32]>,
    /// The exact files, when the lockfile names them (only `pylock.toml` does).
    pub files: Vec<PinnedFile>,
}

/// One file of a pin in `pylock.toml`: a wheel or the sdist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    /// The file name: the `name` key, or the last segment of `url`.
    pub name: String,
    pub url: Option<String>,
    pub sha256: Option<[u8; 32]>,
    pub size: Option<u64>,
}

/// The PEP 503 normalized form of a project name: lower case, every run of
/// `-`, `_` and `.` replaced by one `-`.
#[must_use]
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// requirements.txt

/// What to do about anything that is not an exact pin from an index.
const PIN: &str = "pin every package exactly from a package index with `pip-compile --generate-hashes` or `pip freeze`";
/// What to do about includes.
const FLATTEN: &str =
    "flatten the requirements into one file of exact pins with `pip-compile --generate-hashes` (or `pip freeze`)";
/// What to do about a bad hash.
const REHASH: &str = "regenerate the file with `pip-compile --generate-hashes`";

/// Options that say where or how pip installs, not what is pinned; airlock
/// ignores them (the exporter chooses where to fetch from).
const IGNORED_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
];

/// File names pip treats as local archives rather than project names.
const ARCHIVE_SUFFIXES: &[&str] = &[".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"];

/// Parses a pip-compile or `pip freeze` style requirements file. Every
/// requirement must be an exact `name==version` pin; hashes are optional
/// but must be sha256. Pins come back sorted by normalized name.
pub fn parse_requirements(text: &str, origin: &str) -> Result<Vec<PypiPin>, LockError> {
    // Keyed by normalized name, with the line of the first pin for duplicate reports.
    let mut pins: BTreeMap<String, (PypiPin, usize)> = BTreeMap::new();
    for (line, logical) in logical_lines(text) {
        let Some(pin) = parse_line(&logical).map_err(|m| LockError::at_line(origin, line, m))? else {
            continue;
        };
        match pins.entry(pin.name.clone()) {
            Entry::Vacant(slot) => {
                slot.insert((pin, line));
            }
            Entry::Occupied(mut slot) => {
                let (kept, first) = slot.get_mut();
                if kept.version != pin.version {
                    let message = format!(
                        "{} is pinned to {} here but to {} on line {first}; keep exactly one pin per package, \
                         as `pip-compile --generate-hashes` writes",
                        pin.name, pin.version, kept.version
                    );
                    return Err(LockError::at_line(origin, line, message));
                }
                // The same pin twice is harmless: accept the hashes of both.
                add_unique(&mut kept.sha256, pin.sha256);
            }
        }
    }
    Ok(pins.into_values().map(|(pin, _)| pin).collect())
}

/// Joins backslash-continued lines and drops comments, returning each logical
/// line with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (content, continued) = split_physical(raw);
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        joined.push_str(content);
        joined.push(' ');
        if continued {
            pending = Some((start, joined));
        } else {
            out.push((start, joined));
        }
    }
    // A backslash on the last line continues into nothing.
    out.extend(pending);
    out
}

/// The part of a physical line before its comment, and whether it continues
/// on the next line. As in pip, a trailing backslash continues the line only
/// when the line has no comment (the comment swallows the backslash).
fn split_physical(raw: &str) -> (&str, bool) {
    if let Some(at) = comment_start(raw) {
        return (&raw[..at], false);
    }
    match raw.trim_end().strip_suffix('\\') {
        Some(body) => (body, true),
        None => (raw, false),
    }
}

/// A `#` starts a comment at the beginning of a line or after whitespace
/// (elsewhere it is part of a URL fragment, as in pip).
fn comment_start(line: &str) -> Option<usize> {
    line.char_indices()
        .find(|&(at, c)| c == '#' && (at == 0 || line[..at].ends_with(char::is_whitespace)))
        .map(|(at, _)| at)
}

/// One logical line: nothing (blank or an ignored option), a pin, or the reason it is refused.
fn parse_line(line: &str) -> Result<Option<PypiPin>, String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let Some(first) = tokens.first() else {
        return Ok(None);
    };
    if first.starts_with('-') {
        return global_option(first, line.trim()).map(|()| None);
    }
    // As in pip, the requirement ends at the first token that looks like an option.
    let split = tokens.iter().position(|t| t.starts_with('-')).unwrap_or(tokens.len());
    let (name, version) = parse_spec(&tokens[..split].join(" "))?;
    let sha256 = parse_options(&name, &tokens[split..])?;
    Ok(Some(PypiPin { name: normalize(&name), version, sha256, files: Vec::new() }))
}

/// Checks a line that starts with an option: includes and editables are
/// refused, options about where pip looks are ignored.
fn global_option(token: &str, line: &str) -> Result<(), String> {
    match option_name(token) {
        "-r" | "--requirement" | "-c" | "--constraint" => {
            Err(format!("`{line}` includes another file, which airlock does not follow; {FLATTEN}"))
        }
        "-e" | "--editable" => Err(format!("`{line}` is an editable requirement, which airlock cannot carry; {PIN}")),
        name if IGNORED_OPTIONS.contains(&name) => Ok(()),
        _ => Err(format!("unknown option `{token}`; remove it or {PIN}")),
    }
}

/// The option in `token`: long options end at `=`, short ones may have their
/// value glued on (`-rbase.txt`).
fn option_name(token: &str) -> &str {
    if token.starts_with("--") { token.split('=').next().unwrap_or(token) } else { token.get(..2).unwrap_or(token) }
}

/// Reads `name[extras]==version ; markers` into the name as written and the
/// version. Extras and markers choose where and with what a pin is installed,
/// not which files it is, so they are dropped.
fn parse_spec(spec: &str) -> Result<(String, String), String> {
    let requirement = spec.split(';').next().unwrap_or_default().trim();
    // `name @ URL` (PEP 508); an `@` inside a URL (`git+ssh://git@host`) is not one.
    if let Some((before, _)) = requirement.split_once('@')
        && !is_url_or_path(before)
    {
        return Err(format!("`{requirement}` is a direct URL requirement, which airlock cannot carry; {PIN}"));
    }
    if is_url_or_path(requirement) {
        return Err(format!(
            "`{requirement}` is a URL, VCS or local path requirement, which airlock cannot carry; {PIN}"
        ));
    }
    let name_end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    let name = &requirement[..name_end];
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("cannot read the requirement `{requirement}`; {PIN}"));
    }
    let rest = skip_extras(name, requirement[name_end..].trim_start())?.trim();
    if rest.is_empty() {
        return Err(format!("{name} has no version; {PIN}"));
    }
    match rest.strip_prefix("===").or_else(|| rest.strip_prefix("==")).map(str::trim) {
        Some(version) if is_exact_version(version) => Ok((name.to_owned(), version.to_owned())),
        _ => Err(format!("{name} is not pinned to one version (`{rest}`); {PIN}")),
    }
}

/// URLs, VCS references, paths and archive files: nothing a package name can look like.
fn is_url_or_path(requirement: &str) -> bool {
    let lower = requirement.to_ascii_lowercase();
    requirement.contains([':', '/', '\\'])
        || requirement.starts_with(['.', '~'])
        || ARCHIVE_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix))
}

/// What follows the `[extra,...]` part, if any.
fn skip_extras<'a>(name: &str, rest: &'a str) -> Result<&'a str, String> {
    let Some(inside) = rest.strip_prefix('[') else {
        return Ok(rest);
    };
    match inside.split_once(']') {
        Some((_, after)) => Ok(after),
        None => Err(format!("{name} has an unclosed `[` in its extras; {PIN}")),
    }
}

/// A single version, not a wildcard (`1.*`), list (`1.0,<2`) or anything else.
fn is_exact_version(version: &str) -> bool {
    !version.is_empty()
        && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '_' | '-'))
}

/// The per-requirement options after a pin: `--hash` values are collected,
/// build options are ignored (they do not change which files are pinned).
fn parse_options(name: &str, tokens: &[&str]) -> Result<Vec<[u8; 32]>, String> {
    let mut hashes = Vec::new();
    let mut iter = tokens.iter();
    while let Some(&token) = iter.next() {
        // Both `--hash=VALUE` and `--hash VALUE` are accepted by pip.
        let (option, value) = match token.split_once('=') {
            Some((option, value)) => (option, value),
            None => (token, iter.next().copied().unwrap_or_default()),
        };
        match option {
            "--hash" => add_unique(&mut hashes, [parse_hash(name, value)?]),
            "--config-settings" | "--global-option" | "--install-option" => {}
            _ => return Err(format!("unknown option `{option}` after {name}; remove it or {PIN}")),
        }
    }
    Ok(hashes)
}

/// `sha256:HEX`; other algorithms are refused so no pin is silently unchecked.
fn parse_hash(name: &str, value: &str) -> Result<[u8; 32], String> {
    match value.split_once(':') {
        Some(("sha256", hex)) => sha256_from_hex(hex)
            .ok_or_else(|| format!("{name} has a malformed sha256 hash `{hex}` (64 hex digits expected); {REHASH}")),
        Some((algorithm, _)) => {
            Err(format!("{name} has a {algorithm} hash, but airlock accepts only sha256 hashes; {REHASH}"))
        }
        None => Err(format!("{name} has a malformed hash `{value}` (sha256:HEX expected); {REHASH}")),
    }
}

/// Appends the digests not already present, keeping the file's order.
fn add_unique(into: &mut Vec<[u8; 32]>, from: impl IntoIterator<Item = [u8; 32]>) {
    for digest in from {
        if !into.contains(&digest) {
            into.push(digest);
        }
    }
}

// ---------------------------------------------------------------------------
// pylock.toml (PEP 751)

/// What to do about a `pylock.toml` airlock cannot read.
const REGEN_PYLOCK: &str = "regenerate it with `pip lock` or `uv export --format pylock.toml`";
/// What to do about a package that does not come from an index.
const FROM_INDEX: &str = "lock it from a package index instead (publish it to an internal index if it has none)";

/// Read first, so a future major version fails on its version, not on its shape.
#[derive(Deserialize)]
struct PylockVersion {
    #[serde(rename = "lock-version")]
    lock_version: Option<String>,
}

/// The parts of PEP 751 airlock uses; every other key is ignored.
#[derive(Deserialize)]
struct Pylock {
    #[serde(default)]
    packages: Vec<LockedPackage>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: Option<String>,
    // Only their presence matters: these sources cannot be carried.
    vcs: Option<IgnoredAny>,
    directory: Option<IgnoredAny>,
    archive: Option<IgnoredAny>,
    sdist: Option<LockedFile>,
    #[serde(default)]
    wheels: Vec<LockedFile>,
}

#[derive(Deserialize)]
struct LockedFile {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// Parses a PEP 751 `pylock.toml` (lock-version 1.x). Every package must come
/// from an index with its files listed by URL. Pins come back sorted by
/// normalized name and version; a name may appear with several versions
/// (PEP 751 allows one per environment).
pub fn parse_pylock(text: &str, origin: &str) -> Result<Vec<PypiPin>, LockError> {
    let header: PylockVersion = toml::from_str(text).map_err(|e| LockError::toml(origin, text, &e, REGEN_PYLOCK))?;
    check_lock_version(header.lock_version.as_deref()).map_err(|m| LockError::new(origin, m))?;
    let lock: Pylock = toml::from_str(text).map_err(|e| LockError::toml(origin, text, &e, REGEN_PYLOCK))?;
    let mut pins: BTreeMap<(String, String), PypiPin> = BTreeMap::new();
    for package in &lock.packages {
        let pin = pylock_pin(package).map_err(|m| LockError::new(origin, m))?;
        match pins.entry((pin.name.clone(), pin.version.clone())) {
            Entry::Vacant(slot) => {
                slot.insert(pin);
            }
            // The same version listed for two environments: one pin with the files of both.
            Entry::Occupied(mut slot) => merge_files(slot.get_mut(), pin),
        }
    }
    Ok(pins.into_values().collect())
}

/// PEP 751: tools must refuse a major version they do not know.
fn check_lock_version(version: Option<&str>) -> Result<(), String> {
    let Some(version) = version else {
        return Err(format!("no lock-version, so this is not a PEP 751 lockfile; {REGEN_PYLOCK}"));
    };
    if version.split('.').next() == Some("1") {
        Ok(())
    } else {
        Err(format!("lock-version {version:?} is not supported (airlock reads 1.x); {REGEN_PYLOCK}"))
    }
}

/// One `[[packages]]` entry as a pin, or why airlock cannot carry it.
fn pylock_pin(package: &LockedPackage) -> Result<PypiPin, String> {
    let name = &package.name;
    let kind = [
        (package.vcs.is_some(), "vcs"),
        (package.directory.is_some(), "directory"),
        (package.archive.is_some(), "archive"),
    ]
    .into_iter()
    .find_map(|(present, kind)| present.then_some(kind));
    if let Some(kind) = kind {
        return Err(format!("package {name} is locked to a {kind} source, which airlock cannot carry; {FROM_INDEX}"));
    }
    let Some(version) = &package.version else {
        return Err(format!("package {name} has no version; {FROM_INDEX}"));
    };
    // Wheels first: they are what installers prefer.
    let files =
        package.wheels.iter().chain(&package.sdist).map(|f| pinned_file(name, f)).collect::<Result<Vec<_>, _>>()?;
    if files.is_empty() {
        return Err(format!("package {name} {version} lists no sdist or wheels; {REGEN_PYLOCK}"));
    }
    let mut sha256 = Vec::new();
    add_unique(&mut sha256, files.iter().filter_map(|f| f.sha256));
    Ok(PypiPin { name: normalize(name), version: version.clone(), sha256, files })
}

/// One wheel or sdist; it must have a URL, since a local path means nothing
/// on the machine that fetches.
fn pinned_file(package: &str, file: &LockedFile) -> Result<PinnedFile, String> {
    let Some(url) = &file.url else {
        return Err(match &file.path {
            Some(path) => format!(
                "package {package}: file {path:?} has only a local path, which airlock cannot carry; {FROM_INDEX}"
            ),
            None => format!("package {package}: a file has neither url nor path; {REGEN_PYLOCK}"),
        });
    };
    let name = file.name.as_deref().unwrap_or_else(|| url_file_name(url));
    // The name becomes a file name later: refuse anything that could be a path.
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        return Err(format!("package {package}: file {url:?} has no usable file name ({name:?}); {REGEN_PYLOCK}"));
    }
    let sha256 = match file.hashes.get("sha256") {
        Some(hex) => Some(sha256_from_hex(hex).ok_or_else(|| {
            format!(
                "package {package}: file {name} has a malformed sha256 {hex:?} (64 hex digits expected); {REGEN_PYLOCK}"
            )
        })?),
        None => None,
    };
    Ok(PinnedFile { name: name.to_owned(), url: Some(url.clone()), sha256, size: file.size })
}

/// The last path segment of a URL, without query or fragment.
fn url_file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default()
}

/// Adds the files and digests of `other` (same name and version) to `pin`.
fn merge_files(pin: &mut PypiPin, other: PypiPin) {
    add_unique(&mut pin.sha256, other.sha256);
    for file in other.files {
        if !pin.files.iter().any(|f| f.name == file.name) {
            pin.files.push(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIX_WHL: &str = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254";
    const SIX_SDIST: &str = "1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926";
    const IDNA_WHL: &str = "82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0";
    const IDNA_SDIST: &str = "028ff3aadf0609c1fd278d8ea3089299412a7a8b9bd005dd08b9f8285bcb5cfc";

    fn digest(hex: &str) -> [u8; 32] {
        sha256_from_hex(hex).unwrap()
    }

    /// The error for `text`, which must fail.
    fn req_err(text: &str) -> String {
        parse_requirements(text, "requirements.txt").unwrap_err().to_string()
    }

    fn pylock_err(text: &str) -> String {
        parse_pylock(text, "pylock.toml").unwrap_err().to_string()
    }

    #[test]
    fn normalizes_like_pep_503() {
        assert_eq!(normalize("Django"), "django");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert_eq!(normalize("Foo__Bar-.-baz"), "foo-bar-baz");
        assert_eq!(normalize("typing_extensions"), "typing-extensions");
    }

    #[test]
    fn reads_pip_compile_output() {
        let text = format!(
            "#
# This file is autogenerated by pip-compile with Python 3.12
# by the following command:
#
#    pip-compile --generate-hashes --output-file=requirements.txt requirements.in
#
--index-url https://pypi.org/simple
--extra-index-url https://mirror.example/simple

Idna[all]==3.7 \\
    --hash=sha256:{IDNA_SDIST} \\
    --hash=sha256:{IDNA_WHL}
    # via requests
six==1.16.0 ; python_version >= \"3\" \\
    --hash=sha256:{SIX_SDIST} \\
    --hash=sha256:{SIX_WHL}
    # via
    #   -r requirements.in
    #   python-dateutil
"
        );
        let pins = parse_requirements(&text, "requirements.txt").unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(pins[0].name, "idna");
        assert_eq!(pins[0].version, "3.7");
        assert_eq!(pins[0].sha256, vec![digest(IDNA_SDIST), digest(IDNA_WHL)]);
        assert!(pins[0].files.is_empty());
        assert_eq!(pins[1].name, "six");
        assert_eq!(pins[1].version, "1.16.0");
        assert_eq!(pins[1].sha256, vec![digest(SIX_SDIST), digest(SIX_WHL)]);
    }

    #[test]
    fn reads_pip_freeze_output_with_comments() {
        let text = "# pip freeze\nZope.Interface==6.4.post2  # trailing comment\n\nsix===1.16.0\nidna == 3.7\n";
        let pins = parse_requirements(text, "requirements.txt").unwrap();
        let got: Vec<(&str, &str)> = pins.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(got, [("idna", "3.7"), ("six", "1.16.0"), ("zope-interface", "6.4.post2")]);
        assert!(pins.iter().all(|p| p.sha256.is_empty()));
    }

    #[test]
    fn hash_may_be_a_separate_token_and_markers_may_be_glued() {
        let text = format!("six==1.16.0;python_version>='3' --hash sha256:{SIX_WHL}\n");
        let pins = parse_requirements(&text, "r.txt").unwrap();
        assert_eq!(pins[0].name, "six");
        assert_eq!(pins[0].sha256, vec![digest(SIX_WHL)]);
    }

    #[test]
    fn comment_ends_a_continuation_as_in_pip() {
        // The backslash is inside the comment, so the next line is a new requirement.
        let text = "six==1.16.0  # note \\\nidna==3.7\n";
        let pins = parse_requirements(text, "r.txt").unwrap();
        assert_eq!(pins.len(), 2);
    }

    #[test]
    fn the_same_pin_twice_merges_hashes() {
        let text = format!("six==1.16.0 --hash=sha256:{SIX_WHL}\nSix==1.16.0 --hash=sha256:{SIX_SDIST}\n");
        let pins = parse_requirements(&text, "r.txt").unwrap();
        assert_eq!(pins.len(), 1);
        assert_eq!(pins[0].sha256, vec![digest(SIX_WHL), digest(SIX_SDIST)]);
    }

    #[test]
    fn refuses_unpinned_requirements() {
        let e = req_err("idna==3.7\nsix\n");
        assert!(e.starts_with("requirements.txt:2: six has no version;"), "{e}");
        assert!(e.contains("pip-compile"), "{e}");
    }

    #[test]
    fn refuses_ranges() {
        for spec in ["six>=1.16", "six~=1.16", "six==1.*", "six==1.16,<2", "six!=1.15", "six<2"] {
            let e = req_err(&format!("\n{spec}\n"));
            assert!(e.starts_with("requirements.txt:2: six is not pinned to one version"), "{spec}: {e}");
        }
    }

    #[test]
    fn refuses_url_vcs_and_path_requirements() {
        for spec in [
            "git+https://github.com/benjaminp/six.git#egg=six",
            "https://files.example/six-1.16.0.tar.gz",
            "./vendor/six",
            "git+ssh://git@github.com/benjaminp/six.git@1.16.0#egg=six",
            "/opt/six",
            "six-1.16.0-py2.py3-none-any.whl",
        ] {
            let e = req_err(&format!("idna==3.7\n{spec}\n"));
            assert!(e.starts_with("requirements.txt:2: `"), "{spec}: {e}");
            assert!(e.contains("URL, VCS or local path requirement"), "{spec}: {e}");
        }
    }

    #[test]
    fn refuses_direct_references() {
        let e = req_err("six @ https://files.example/six-1.16.0.tar.gz\n");
        assert!(
            e.starts_with("requirements.txt:1: `six @ https://files.example/six-1.16.0.tar.gz` is a direct URL"),
            "{e}"
        );
        let e = req_err("six[x]@file:six\n");
        assert!(e.starts_with("requirements.txt:1: `six[x]@file:six` is a direct URL"), "{e}");
    }

    #[test]
    fn refuses_editables() {
        let e = req_err("six==1.16.0\n-e git+https://github.com/benjaminp/six.git#egg=six\n");
        assert!(
            e.starts_with("requirements.txt:2: `-e git+https://github.com/benjaminp/six.git#egg=six` is an editable"),
            "{e}"
        );
        let e = req_err("--editable=.\n");
        assert!(e.starts_with("requirements.txt:1: `--editable=.` is an editable"), "{e}");
    }

    #[test]
    fn refuses_includes_and_says_how_to_flatten() {
        for (line, shown) in [
            ("-r base.txt", "`-r base.txt`"),
            ("--requirement=base.txt", "`--requirement=base.txt`"),
            ("-c constraints.txt", "`-c constraints.txt`"),
            ("-rbase.txt", "`-rbase.txt`"),
        ] {
            let e = req_err(&format!("six==1.16.0\n\n{line}\n"));
            assert!(e.starts_with(&format!("requirements.txt:3: {shown} includes another file")), "{e}");
            assert!(e.contains("does not follow") && e.contains("pip-compile"), "{e}");
        }
    }

    #[test]
    fn refuses_hash_algorithms_other_than_sha256() {
        let text = format!("six==1.16.0 \\\n    --hash=sha256:{SIX_WHL} \\\n    --hash=sha512:abcd\n");
        let e = req_err(&text);
        assert!(e.starts_with("requirements.txt:1: six has a sha512 hash"), "{e}");
        assert!(e.contains("only sha256"), "{e}");
    }

    #[test]
    fn refuses_malformed_sha256() {
        let e = req_err("idna==3.7\nsix==1.16.0 --hash=sha256:abc\n");
        assert!(e.starts_with("requirements.txt:2: six has a malformed sha256 hash `abc`"), "{e}");
        let e = req_err("six==1.16.0 --hash=deadbeef\n");
        assert!(e.contains("six has a malformed hash `deadbeef`"), "{e}");
    }

    #[test]
    fn refuses_two_versions_of_one_package() {
        let e = req_err("six==1.16.0\nidna==3.7\nSix==1.15.0\n");
        assert!(e.starts_with("requirements.txt:3: six is pinned to 1.15.0 here but to 1.16.0 on line 1"), "{e}");
    }

    #[test]
    fn refuses_unknown_options() {
        let e = req_err("--frobnicate\n");
        assert!(e.starts_with("requirements.txt:1: unknown option `--frobnicate`"), "{e}");
        let e = req_err("six==1.16.0 --frob=1\n");
        assert!(e.starts_with("requirements.txt:1: unknown option `--frob` after six"), "{e}");
    }

    #[test]
    fn ignores_index_options() {
        let text = "-i https://pypi.org/simple\n--find-links=/wheels\n--no-binary :all:\n--pre\nsix==1.16.0\n";
        assert_eq!(parse_requirements(text, "r.txt").unwrap().len(), 1);
    }

    #[test]
    fn every_requirements_error_is_one_line() {
        for text in ["six\n", "-r x\n", "six==1 --hash=md5:00\n", "six==1\nsix==2\n", "pkg @ https://x\n"] {
            assert!(!req_err(text).contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn parses_the_requirements_fixture() {
        let text = include_str!("../../../fixtures/lockfiles/requirements.txt");
        let pins = parse_requirements(text, "requirements.txt").unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!((pins[0].name.as_str(), pins[0].version.as_str()), ("idna", "3.7"));
        assert_eq!(pins[0].sha256, vec![digest(IDNA_SDIST), digest(IDNA_WHL)]);
        assert_eq!((pins[1].name.as_str(), pins[1].version.as_str()), ("six", "1.16.0"));
        assert_eq!(pins[1].sha256, vec![digest(SIX_SDIST), digest(SIX_WHL)]);
    }

    // -- pylock.toml

    /// A lock in the shape `pip lock` and `uv export` write, with both table styles.
    fn sample_pylock() -> String {
        format!(
            r#"lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.9"
created-by = "uv"

[[packages]]
name = "Six"
version = "1.16.0"
index = "https://pypi.org/simple"
sdist = {{ url = "https://files.pythonhosted.org/packages/71/39/171f1c67cd00715f190ba0b100d606d440a28c93c7714febeca8b79af85e/six-1.16.0.tar.gz", upload-time = 2021-05-05T14:18:18Z, size = 34041, hashes = {{ sha256 = "{SIX_SDIST}" }} }}
wheels = [
    {{ name = "six-1.16.0-py2.py3-none-any.whl", url = "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl", upload-time = 2021-05-05T14:18:17Z, size = 11053, hashes = {{ sha256 = "{SIX_WHL}" }} }},
]

[[packages]]
name = "idna"
version = "3.7"
marker = "python_version >= '3.5'"

[[packages.wheels]]
url = "https://files.pythonhosted.org/packages/e5/3e/741d8c82801c347547f8a2a06aa57dbb1992be9e948df2ea0eda2c8b79e8/idna-3.7-py3-none-any.whl"
hashes = {{ sha256 = "{IDNA_WHL}", sha512 = "ignored" }}

[packages.tool.example]
note = "tool tables are ignored"
"#
        )
    }

    #[test]
    fn reads_a_pylock() {
        let pins = parse_pylock(&sample_pylock(), "pylock.toml").unwrap();
        assert_eq!(pins.len(), 2);
        let idna = &pins[0];
        assert_eq!((idna.name.as_str(), idna.version.as_str()), ("idna", "3.7"));
        assert_eq!(idna.sha256, vec![digest(IDNA_WHL)]);
        assert_eq!(idna.files.len(), 1);
        assert_eq!(idna.files[0].name, "idna-3.7-py3-none-any.whl");
        assert_eq!(idna.files[0].size, None);
        let six = &pins[1];
        assert_eq!((six.name.as_str(), six.version.as_str()), ("six", "1.16.0"));
        assert_eq!(six.sha256, vec![digest(SIX_WHL), digest(SIX_SDIST)]);
        let names: Vec<&str> = six.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["six-1.16.0-py2.py3-none-any.whl", "six-1.16.0.tar.gz"]);
        assert_eq!(six.files[1].size, Some(34041));
        assert_eq!(six.files[1].sha256, Some(digest(SIX_SDIST)));
        assert!(six.files[1].url.as_deref().unwrap().ends_with("/six-1.16.0.tar.gz"));
    }

    #[test]
    fn pylock_may_list_a_name_per_environment() {
        let text = format!(
            r#"lock-version = "1.0"
[[packages]]
name = "six"
version = "1.16.0"
marker = "sys_platform == 'linux'"
wheels = [{{ url = "https://x.example/six-1.16.0-py2.py3-none-any.whl", hashes = {{ sha256 = "{SIX_WHL}" }} }}]
[[packages]]
name = "six"
version = "1.16.0"
marker = "sys_platform == 'win32'"
sdist = {{ url = "https://x.example/six-1.16.0.tar.gz?download=1#frag", hashes = {{ sha256 = "{SIX_SDIST}" }} }}
[[packages]]
name = "six"
version = "1.15.0"
marker = "python_version < '3'"
sdist = {{ url = "https://x.example/six-1.15.0.tar.gz", hashes = {{}} }}
"#
        );
        let pins = parse_pylock(&text, "pylock.toml").unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(pins[0].version, "1.15.0");
        assert_eq!(pins[0].files[0].sha256, None);
        assert!(pins[0].sha256.is_empty());
        assert_eq!(pins[1].version, "1.16.0");
        assert_eq!(pins[1].files.len(), 2);
        assert_eq!(pins[1].files[1].name, "six-1.16.0.tar.gz");
    }

    #[test]
    fn refuses_vcs_directory_and_archive_packages() {
        for (kind, table) in [
            (
                "vcs",
                r#"vcs = { type = "git", url = "https://github.com/benjaminp/six.git", commit-id = "65486e4383f9f411da95937451205d3c7b61b9e1" }"#,
            ),
            ("directory", r#"directory = { path = "./vendor/six", editable = true }"#),
            ("archive", r#"archive = { url = "https://x.example/six.zip", hashes = { sha256 = "00" } }"#),
        ] {
            let text = format!("lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\n{table}\n");
            let e = pylock_err(&text);
            assert_eq!(
                e,
                format!(
                    "pylock.toml: package six is locked to a {kind} source, which airlock cannot carry; {FROM_INDEX}"
                )
            );
        }
    }

    #[test]
    fn refuses_path_only_files() {
        let text = "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n\
                    wheels = [{ path = \"dist/six-1.16.0-py2.py3-none-any.whl\", hashes = { sha256 = \"00\" } }]\n";
        let e = pylock_err(text);
        assert!(
            e.starts_with(
                "pylock.toml: package six: file \"dist/six-1.16.0-py2.py3-none-any.whl\" has only a local path"
            ),
            "{e}"
        );
    }

    #[test]
    fn refuses_packages_without_version_or_files() {
        let e = pylock_err(
            "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nsdist = { url = \"https://x/six.tar.gz\" }\n",
        );
        assert!(e.starts_with("pylock.toml: package six has no version;"), "{e}");
        let e = pylock_err("lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n");
        assert!(e.starts_with("pylock.toml: package six 1.16.0 lists no sdist or wheels;"), "{e}");
    }

    #[test]
    fn refuses_malformed_sha256_in_pylock() {
        let text = "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n\
                    sdist = { url = \"https://x/six-1.16.0.tar.gz\", hashes = { sha256 = \"1e61c374\" } }\n";
        let e = pylock_err(text);
        assert!(
            e.starts_with("pylock.toml: package six: file six-1.16.0.tar.gz has a malformed sha256 \"1e61c374\""),
            "{e}"
        );
    }

    #[test]
    fn refuses_file_names_that_are_paths() {
        let text = "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n\
                    sdist = { name = \"../six.tar.gz\", url = \"https://x/six.tar.gz\" }\n";
        assert!(pylock_err(text).contains("has no usable file name (\"../six.tar.gz\")"));
        let text = "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n\
                    sdist = { url = \"https://x/dir/\" }\n";
        assert!(pylock_err(text).contains("has no usable file name (\"\")"));
    }

    #[test]
    fn checks_the_lock_version() {
        let e = pylock_err("lock-version = \"2.0\"\n[[packages]]\nname = 3\n");
        assert!(e.starts_with("pylock.toml: lock-version \"2.0\" is not supported (airlock reads 1.x)"), "{e}");
        let e = pylock_err("[[packages]]\nname = \"six\"\n");
        assert!(e.starts_with("pylock.toml: no lock-version"), "{e}");
        assert!(parse_pylock("lock-version = \"1.1\"\n", "pylock.toml").unwrap().is_empty());
    }

    #[test]
    fn toml_errors_name_the_line() {
        let e = pylock_err("lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = 1.16\n");
        assert!(e.starts_with("pylock.toml:4: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = pylock_err("lock-version = \"1.0\"\n[[packages]\n");
        assert!(e.starts_with("pylock.toml:2: "), "{e}");
    }

    #[test]
    fn parses_the_pylock_fixture() {
        let text = include_str!("../../../fixtures/lockfiles/pylock.toml");
        let pins = parse_pylock(text, "pylock.toml").unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!((pins[0].name.as_str(), pins[0].version.as_str()), ("idna", "3.7"));
        assert_eq!(pins[0].sha256, vec![digest(IDNA_WHL), digest(IDNA_SDIST)]);
        assert_eq!(pins[0].files[0].size, Some(66836));
        assert_eq!(pins[0].files[1].name, "idna-3.7.tar.gz");
        assert_eq!((pins[1].name.as_str(), pins[1].version.as_str()), ("six", "1.16.0"));
        assert_eq!(pins[1].sha256, vec![digest(SIX_WHL), digest(SIX_SDIST)]);
        assert_eq!(pins[1].files[1].size, Some(34041));
    }
}
