//! npm's `package-lock.json`, lockfile versions 2 and 3 (npm 7 and later).
//!
//! Only the `packages` section is read: it maps each folder npm creates
//! (`node_modules/a/node_modules/b`) to the version, tarball and integrity
//! installed there.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::Deserialize;

use crate::lockfile::LockError;

/// One pinned npm package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPin {
    /// The package name, with its scope (`@scope/pkg`).
    pub name: String,
    pub version: String,
    /// The tarball URL, when the lockfile records it.
    pub resolved: Option<String>,
    /// The SRI string as written (`sha512-...`, possibly several, space-separated).
    pub integrity: Option<String>,
}

/// What to do about a lockfile airlock cannot read.
const REGEN: &str = "regenerate the lockfile with `npm install`";
/// What to do about a lockfile in an old or unknown format.
const UPGRADE: &str = "run `npm install --lockfile-version 3` to rewrite it";
/// The folder prefix that marks an installed package (as opposed to a workspace folder).
const NODE_MODULES: &str = "node_modules/";

#[derive(Deserialize)]
struct PackageLock {
    #[serde(rename = "lockfileVersion")]
    lockfile_version: Option<u64>,
    /// Entries are read one by one after the version check, so their errors
    /// can name the package.
    packages: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockEntry {
    name: Option<String>,
    version: Option<String>,
    resolved: Option<String>,
    integrity: Option<String>,
    #[serde(default)]
    link: bool,
    #[serde(default)]
    in_bundle: bool,
}

/// Parses a `package-lock.json` (lockfileVersion 2 or 3) into its installed
/// packages, deduplicated and sorted by name and version.
pub fn parse_package_lock(text: &str, origin: &str) -> Result<Vec<NpmPin>, LockError> {
    let lock: PackageLock = serde_json::from_str(text).map_err(|e| json_error(origin, &e))?;
    check_version(lock.lockfile_version).map_err(|m| LockError::new(origin, m))?;
    let Some(packages) = lock.packages else {
        return Err(LockError::new(origin, format!("has no \"packages\" section; {UPGRADE}")));
    };
    // Keyed by (name, version), with the first key seen for conflict reports.
    let mut pins: BTreeMap<(String, String), (NpmPin, String)> = BTreeMap::new();
    for (key, value) in packages {
        let Some(pin) = entry_pin(&key, value).map_err(|m| LockError::new(origin, m))? else {
            continue;
        };
        match pins.entry((pin.name.clone(), pin.version.clone())) {
            Entry::Vacant(slot) => {
                slot.insert((pin, key));
            }
            Entry::Occupied(mut slot) => {
                let (kept, first_key) = slot.get_mut();
                merge_copy(kept, pin, first_key, &key).map_err(|m| LockError::new(origin, m))?;
            }
        }
    }
    Ok(pins.into_values().map(|(pin, _)| pin).collect())
}

/// A one-line JSON error located by line (`serde_json` puts the position at the end).
fn json_error(origin: &str, err: &serde_json::Error) -> LockError {
    let text = err.to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(message, _)| message);
    let message = format!("{message}; {REGEN}");
    match err.line() {
        0 => LockError::new(origin, message),
        line => LockError::at_line(origin, line, message),
    }
}

/// Version 1 (npm 6) has no `packages` section; versions above 3 are unknown.
fn check_version(version: Option<u64>) -> Result<(), String> {
    match version {
        Some(2 | 3) => Ok(()),
        Some(1) => Err(format!("lockfileVersion 1 (npm 6 and older) is not supported; {UPGRADE}")),
        Some(other) => Err(format!("lockfileVersion {other} is not supported (airlock reads 2 and 3); {UPGRADE}")),
        None => Err(format!("has no lockfileVersion, so npm 7 or later did not write it; {UPGRADE}")),
    }
}

/// The pin for one `packages` entry, `None` for entries that are not
/// separately fetched packages, or why airlock cannot carry it.
fn entry_pin(key: &str, value: serde_json::Value) -> Result<Option<NpmPin>, String> {
    // The root project ("") and workspace folders ("packages/lib") are the
    // user's own code, not something to fetch.
    let Some(at) = key.rfind(NODE_MODULES) else {
        return Ok(None);
    };
    let entry = LockEntry::deserialize(value).map_err(|e| format!("package entry {key:?}: {e}; {REGEN}"))?;
    // Links point at workspace folders; bundled packages ship inside their parent's tarball.
    if entry.link || entry.in_bundle {
        return Ok(None);
    }
    // `name` is present when the folder name differs from it (aliases like `npm:pkg@1`).
    let name = entry.name.unwrap_or_else(|| key[at + NODE_MODULES.len()..].to_owned());
    if let Some(resolved) = &entry.resolved
        && !(resolved.starts_with("https://") || resolved.starts_with("http://"))
    {
        return Err(format!(
            "package {name} ({key}) is resolved to {resolved:?}, a git or local dependency airlock cannot carry; \
             depend on a version from the npm registry instead"
        ));
    }
    let Some(version) = entry.version else {
        return Err(format!("package {name} ({key}) has no version; {REGEN}"));
    };
    if let Some(integrity) = &entry.integrity
        && !valid_integrity(integrity)
    {
        return Err(format!(
            "package {name}@{version} ({key}) has integrity {integrity:?}, not sha512-/sha1- base64; {REGEN}"
        ));
    }
    Ok(Some(NpmPin { name, version, resolved: entry.resolved, integrity: entry.integrity }))
}

/// Folds a second copy of the same name and version (npm nests copies where
/// versions conflict) into the first; two different digests for one version
/// mean the lockfile was tampered with or merged badly.
fn merge_copy(kept: &mut NpmPin, copy: NpmPin, first_key: &str, key: &str) -> Result<(), String> {
    match (&kept.integrity, copy.integrity) {
        (Some(a), Some(b)) if *a != b => {
            return Err(format!(
                "package {}@{} has integrity {a:?} at {first_key} but {b:?} at {key}; {REGEN}",
                kept.name, kept.version
            ));
        }
        (None, b) => kept.integrity = b,
        _ => {}
    }
    // A different tarball URL for the same version is a mirror, not a conflict: the first wins.
    if kept.resolved.is_none() {
        kept.resolved = copy.resolved;
    }
    Ok(())
}

/// One or more space-separated `sha512-<base64>` or `sha1-<base64>` (the two
/// algorithms npm writes), each of the right length.
fn valid_integrity(text: &str) -> bool {
    let mut tokens = text.split_whitespace().peekable();
    tokens.peek().is_some()
        && tokens.all(|token| match token.split_once('-') {
            Some(("sha512", digest)) => is_base64_of(digest, 64),
            Some(("sha1", digest)) => is_base64_of(digest, 20),
            _ => false,
        })
}

/// Whether `text` is standard padded base64 of exactly `bytes` bytes.
fn is_base64_of(text: &str, bytes: usize) -> bool {
    let body = (bytes * 4).div_ceil(3);
    let padding = (3 - bytes % 3) % 3;
    let raw = text.as_bytes();
    raw.len() == body + padding
        && raw[..body].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && raw[body..].iter().all(|&b| b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const IS_NUMBER_7: &str =
        "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==";
    const SINDRESORHUS_IS: &str =
        "sha512-t09vSN3MdfsyCHoFcTRCH/iUtG7OJ0CsjzB8cjAmKc/va/kIgeDI/TxsigdncE/4be734m0cvIYwNaV4i2XqAw==";
    const MS_2_0_0_SHA1: &str = "sha1-VgiurfwAvmwpAd9fmGF4jeDVl8g=";

    /// A v3 lockfile of a workspace project, as npm 10 writes it: a scoped
    /// package, an alias, nested copies (one identical, one older version)
    /// and a workspace with its link.
    const SAMPLE: &str = r#"{
  "name": "acme-app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "acme-app",
      "version": "1.0.0",
      "workspaces": ["packages/*"],
      "dependencies": {
        "@sindresorhus/is": "^4.6.0",
        "debug": "^4.3.4",
        "string-width-cjs": "npm:string-width@^4.2.0",
        "to-regex-range": "^5.0.1"
      }
    },
    "node_modules/@acme/my-lib": {
      "resolved": "packages/my-lib",
      "link": true
    },
    "node_modules/@sindresorhus/is": {
      "version": "4.6.0",
      "resolved": "https://registry.npmjs.org/@sindresorhus/is/-/is-4.6.0.tgz",
      "integrity": "sha512-t09vSN3MdfsyCHoFcTRCH/iUtG7OJ0CsjzB8cjAmKc/va/kIgeDI/TxsigdncE/4be734m0cvIYwNaV4i2XqAw==",
      "license": "MIT",
      "engines": { "node": ">=10" },
      "funding": { "url": "https://github.com/sindresorhus/is?sponsor=1" }
    },
    "node_modules/debug": {
      "version": "4.3.4",
      "resolved": "https://registry.npmjs.org/debug/-/debug-4.3.4.tgz",
      "integrity": "sha512-PRWFHuSU3eDtQJPvnNY7Jcket1j0t5OuOsFzPPzsekD52Zl8qUfFIPEiswXqIvHWGVHOgX+7G/vCNNhehwxfkQ==",
      "license": "MIT",
      "dependencies": { "ms": "2.1.2" },
      "engines": { "node": ">=6.0" },
      "peerDependenciesMeta": { "supports-color": { "optional": true } }
    },
    "node_modules/debug/node_modules/ms": {
      "version": "2.0.0",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.0.0.tgz",
      "integrity": "sha1-VgiurfwAvmwpAd9fmGF4jeDVl8g=",
      "license": "MIT"
    },
    "node_modules/is-number": {
      "version": "7.0.0",
      "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
      "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
      "license": "MIT",
      "engines": { "node": ">=0.12.0" }
    },
    "node_modules/ms": {
      "version": "2.1.3",
      "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
      "license": "MIT"
    },
    "node_modules/string-width-cjs": {
      "name": "string-width",
      "version": "4.2.3",
      "resolved": "https://registry.npmjs.org/string-width/-/string-width-4.2.3.tgz",
      "integrity": "sha512-wKyQRQpjJ0sIp62ErSZdGsjMJWsap5oRNihHhu6G7JVO/9jIB6UyevL+tXuOqrng8j/cxKTWyWUwvSTriiZz/g==",
      "license": "MIT",
      "engines": { "node": ">=8" }
    },
    "node_modules/to-regex-range": {
      "version": "5.0.1",
      "resolved": "https://registry.npmjs.org/to-regex-range/-/to-regex-range-5.0.1.tgz",
      "integrity": "sha512-65P7iz6X5yEr1cwcgvQxbbIw7Uk3gOy5dIdtZ4rDveLqhrdJP+Li/Hx6tyK0NEb+2GCyneCMJiGqrADCSNk8sQ==",
      "license": "MIT",
      "dependencies": { "is-number": "^7.0.0" },
      "engines": { "node": ">=8.0" }
    },
    "node_modules/to-regex-range/node_modules/is-number": {
      "version": "7.0.0",
      "resolved": "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
      "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
      "license": "MIT"
    },
    "packages/my-lib": {
      "name": "@acme/my-lib",
      "version": "0.1.0",
      "dependencies": { "is-number": "^7.0.0" }
    }
  }
}"#;

    fn err(text: &str) -> String {
        parse_package_lock(text, "package-lock.json").unwrap_err().to_string()
    }

    /// SAMPLE with each entry added (or replaced) under its key.
    fn sample_with(entries: &[(&str, serde_json::Value)]) -> String {
        let mut lock: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        for (key, entry) in entries {
            lock["packages"][*key] = entry.clone();
        }
        serde_json::to_string_pretty(&lock).unwrap()
    }

    fn pairs(pins: &[NpmPin]) -> Vec<(&str, &str)> {
        pins.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect()
    }

    #[test]
    fn reads_a_v3_workspace_lockfile() {
        let pins = parse_package_lock(SAMPLE, "package-lock.json").unwrap();
        assert_eq!(
            pairs(&pins),
            [
                ("@sindresorhus/is", "4.6.0"),
                ("debug", "4.3.4"),
                ("is-number", "7.0.0"),
                ("ms", "2.0.0"),
                ("ms", "2.1.3"),
                ("string-width", "4.2.3"),
                ("to-regex-range", "5.0.1"),
            ]
        );
        assert_eq!(pins[0].resolved.as_deref(), Some("https://registry.npmjs.org/@sindresorhus/is/-/is-4.6.0.tgz"));
        assert_eq!(pins[0].integrity.as_deref(), Some(SINDRESORHUS_IS));
        assert_eq!(pins[2].integrity.as_deref(), Some(IS_NUMBER_7));
        assert_eq!(pins[3].integrity.as_deref(), Some(MS_2_0_0_SHA1));
        assert_eq!(
            pins[5].resolved.as_deref(),
            Some("https://registry.npmjs.org/string-width/-/string-width-4.2.3.tgz")
        );
    }

    #[test]
    fn reads_v2_and_tolerates_missing_resolved() {
        // npm with omit-lockfile-registry-resolved writes no `resolved`; v2 also keeps `dependencies`.
        let text = format!(
            r#"{{ "name": "x", "lockfileVersion": 2, "requires": true,
  "packages": {{ "": {{ "name": "x" }},
    "node_modules/is-number": {{ "version": "7.0.0", "integrity": "{IS_NUMBER_7}" }} }},
  "dependencies": {{ "is-number": {{ "version": "7.0.0", "integrity": "{IS_NUMBER_7}" }} }} }}"#
        );
        let pins = parse_package_lock(&text, "package-lock.json").unwrap();
        assert_eq!(
            pins,
            [NpmPin {
                name: "is-number".into(),
                version: "7.0.0".into(),
                resolved: None,
                integrity: Some(IS_NUMBER_7.into())
            }]
        );
    }

    #[test]
    fn skips_bundled_packages() {
        let text = sample_with(&[(
            "node_modules/debug/node_modules/bundled",
            serde_json::json!({ "version": "1.0.0", "inBundle": true }),
        )]);
        let pins = parse_package_lock(&text, "package-lock.json").unwrap();
        assert!(pins.iter().all(|p| p.name != "bundled"));
    }

    #[test]
    fn keeps_several_integrity_hashes_whole() {
        // Lockfiles written by npm 5 and 6 sometimes kept both digests.
        let both = format!("{IS_NUMBER_7} sha1-dTU0W4lnNNX4DE0GxQlVUnoU8Ss=");
        let entry = serde_json::json!({ "version": "7.0.0", "integrity": both });
        let text = sample_with(&[
            ("node_modules/is-number", entry.clone()),
            ("node_modules/to-regex-range/node_modules/is-number", entry),
        ]);
        let pins = parse_package_lock(&text, "package-lock.json").unwrap();
        let is_number = pins.iter().find(|p| p.name == "is-number").unwrap();
        assert_eq!(is_number.integrity.as_deref(), Some(both.as_str()));
    }

    #[test]
    fn a_nested_copy_fills_in_what_the_first_lacks() {
        let text = sample_with(&[("node_modules/is-number", serde_json::json!({ "version": "7.0.0" }))]);
        let pins = parse_package_lock(&text, "package-lock.json").unwrap();
        let is_number = pins.iter().find(|p| p.name == "is-number").unwrap();
        assert_eq!(is_number.integrity.as_deref(), Some(IS_NUMBER_7));
        assert!(is_number.resolved.is_some());
    }

    #[test]
    fn refuses_git_dependencies() {
        let text = sample_with(&[(
            "node_modules/left-pad",
            serde_json::json!({
                "version": "1.3.0",
                "resolved": "git+ssh://git@github.com/left-pad/left-pad.git#5d5ac6d8f5b5dd8e3e3ee69d2b7e0d5ef63e6c3f",
                "license": "WTFPL"
            }),
        )]);
        let e = err(&text);
        assert!(
            e.starts_with("package-lock.json: package left-pad (node_modules/left-pad) is resolved to \"git+ssh://"),
            "{e}"
        );
        assert!(e.contains("a git or local dependency airlock cannot carry"), "{e}");
    }

    #[test]
    fn refuses_local_and_github_shorthand_dependencies() {
        for resolved in ["file:../vendor/x-1.0.0.tgz", "github:user/x#abc", "git+https://github.com/user/x.git"] {
            let text = sample_with(&[(
                "node_modules/@acme/x",
                serde_json::json!({ "version": "1.0.0", "resolved": resolved }),
            )]);
            let e = err(&text);
            assert!(e.starts_with("package-lock.json: package @acme/x (node_modules/@acme/x) is resolved to"), "{e}");
        }
    }

    #[test]
    fn refuses_bad_integrity() {
        for integrity in [
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBE",
            "sha1-VgiurfwAvmwpAd9fmGF4jeDVl8g",
            "sha1-VgiurfwAvmwpAd9f!GF4jeDVl8g=",
            "md5-abc",
            "",
        ] {
            let text =
                sample_with(&[("node_modules/ms", serde_json::json!({ "version": "2.1.3", "integrity": integrity }))]);
            let e = err(&text);
            assert!(e.starts_with("package-lock.json: package ms@2.1.3 (node_modules/ms) has integrity"), "{e}");
        }
    }

    #[test]
    fn refuses_a_package_without_version() {
        let text = sample_with(&[(
            "node_modules/ms",
            serde_json::json!({ "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz" }),
        )]);
        assert!(err(&text).starts_with("package-lock.json: package ms (node_modules/ms) has no version;"));
    }

    #[test]
    fn refuses_conflicting_copies() {
        let text = sample_with(&[(
            "node_modules/to-regex-range/node_modules/is-number",
            serde_json::json!({ "version": "7.0.0", "integrity": SINDRESORHUS_IS }),
        )]);
        let e = err(&text);
        assert!(e.starts_with("package-lock.json: package is-number@7.0.0 has integrity"), "{e}");
        assert!(e.contains("at node_modules/is-number but"), "{e}");
    }

    #[test]
    fn refuses_version_1_and_unknown_versions() {
        let e = err(r#"{ "name": "x", "lockfileVersion": 1, "requires": true, "dependencies": {} }"#);
        assert!(e.starts_with("package-lock.json: lockfileVersion 1 (npm 6 and older) is not supported"), "{e}");
        assert!(e.contains("npm install --lockfile-version 3"), "{e}");
        let e = err(r#"{ "lockfileVersion": 4, "packages": {} }"#);
        assert!(e.contains("lockfileVersion 4 is not supported"), "{e}");
        let e = err(r#"{ "packages": {} }"#);
        assert!(e.contains("has no lockfileVersion"), "{e}");
    }

    #[test]
    fn refuses_a_lockfile_without_packages() {
        let e = err(r#"{ "name": "x", "lockfileVersion": 3 }"#);
        assert!(e.starts_with("package-lock.json: has no \"packages\" section;"), "{e}");
    }

    #[test]
    fn json_errors_name_the_line() {
        let e = err("{\n  \"lockfileVersion\": 3,\n  \"packages\": {,}\n}");
        assert!(e.starts_with("package-lock.json:3: "), "{e}");
        assert!(!e.contains(" at line "), "{e}");
        let e = err(r#"{ "lockfileVersion": 3, "packages": { "node_modules/ms": { "version": 2 } } }"#);
        assert!(e.starts_with("package-lock.json: package entry \"node_modules/ms\": invalid type"), "{e}");
    }

    #[test]
    fn validates_base64_lengths() {
        assert!(is_base64_of("VgiurfwAvmwpAd9fmGF4jeDVl8g=", 20));
        assert!(!is_base64_of("VgiurfwAvmwpAd9fmGF4jeDVl8g==", 20));
        assert!(valid_integrity(IS_NUMBER_7));
        assert!(valid_integrity(&format!("{IS_NUMBER_7} {MS_2_0_0_SHA1}")));
        assert!(!valid_integrity("   "));
    }

    #[test]
    fn parses_the_package_lock_fixture() {
        let text = include_str!("../../../fixtures/lockfiles/package-lock.json");
        let pins = parse_package_lock(text, "package-lock.json").unwrap();
        assert_eq!(pairs(&pins), [("@sindresorhus/is", "4.6.0"), ("is-number", "7.0.0")]);
        assert_eq!(pins[0].integrity.as_deref(), Some(SINDRESORHUS_IS));
        assert_eq!(pins[1].integrity.as_deref(), Some(IS_NUMBER_7));
        assert_eq!(pins[1].resolved.as_deref(), Some("https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz"));
    }
}
