//! npm: package-lock.json on the connected side, tarballs with the
//! registry's integrity, signatures and attestations carried as evidence.

pub mod cli;
pub mod config;
pub mod lockfile;
mod serve;
pub mod source;

use base64::Engine as _;
use serde_json::Value;

use self::lockfile::NpmPin;
use crate::ecosystem::registry::{Artifact, FetchContext, carry, carry_needed, digest_mismatch, entry, join_url};
use crate::ecosystem::{Change, Ecosystem, Reserved};
use crate::ecosystem::{Provenance, Trust};
use crate::error::Rejection;
use crate::error::{Error, Result};
use crate::fetch::{Digests, Extra, parallel};
use crate::http;
use crate::id::RelPath;
use crate::lockfile::LockError;
use crate::manifest::evidence::EvidenceKind;
use crate::manifest::{Digest, Entry};
use crate::mirror::Layout;

mod evidence;
mod policy;
mod registry_keys;

pub use evidence::{purl, verify_attestations};
pub use registry_keys::{RegistryKeys, SignatureError};

/// Name in manifests and top-level mirror folder.
pub const NAME: &str = "npm";
/// The public registry, used when neither flag, config nor npm's own configuration names one.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

/// The npm ecosystem.
pub struct Npm;

impl Ecosystem for Npm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check_entry(&self, entry: &Entry) -> Result<(), String> {
        let version = entry.version.as_deref().ok_or("an npm package has a version")?;
        check_name(&entry.name)?;
        check_version(version)?;
        if entry.path.as_str() != tarball_path(&entry.name, version) {
            return Err(format!("path {} is not where npm's layout puts {}@{version}", entry.path, entry.name));
        }
        if !entry.digests.contains_key("sha512") && !entry.digests.contains_key("sha1") {
            return Err("an npm tarball carries the registry's sha512 or sha1 digest".into());
        }
        // The version object becomes this version's part of the packument:
        // it must be this package's, not another's served under its name.
        if let Some(object) = entry.evidence.iter().find(|e| e.kind == "npm-version") {
            let object: Value = serde_json::from_slice(&object.data).map_err(|_| "its npm-version is not JSON")?;
            let field = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
            if field("name") != entry.name || field("version") != version {
                return Err(format!(
                    "it carries the registry metadata of {}@{}, not its own",
                    field("name"),
                    field("version")
                ));
            }
        }
        Ok(())
    }

    /// The tarball and its attestations document are the version's own;
    /// the packument is shared by the package's versions.
    fn reserve<'a>(&self, entry: &'a Entry, add: &mut dyn FnMut(Reserved<'a>)) {
        add(Reserved::own(entry.path.as_str(), "tarball"));
        add(Reserved::own(attestations_path(entry), "attestations document"));
        add(Reserved::shared(packument_path(&entry.name), "packument", &entry.name));
    }

    fn reserved_globally(&self) -> &'static [(&'static str, &'static str)] {
        &[(KEYS_PATH, "registry keys document")]
    }

    /// Tarballs in the registry's layout, attestation documents where the
    /// registry's attestations endpoint puts them, and one packument per
    /// package regenerated from all its versions, keeping `dist.signatures`
    /// and pointing tarball and attestation URLs at `{{AIRLOCK_BASE}}`, which
    /// `airlock serve` replaces with its own address.
    /// A packument is asked for as `NAME` (`@scope%2fname`, which a bucket
    /// decodes to `@scope/name`), never by its file name.
    fn static_aliases(&self, path: &str) -> Vec<String> {
        path.strip_suffix(PACKUMENT)
            .and_then(|p| p.strip_suffix('/'))
            .map(|name| vec![name.to_owned()])
            .unwrap_or_default()
    }

    fn publish(&self, change: &Change<'_>, tree: &mut dyn Layout) -> Result<()> {
        for entry in &change.removed {
            tree.remove(NAME, entry.path.as_str())?;
            tree.remove(NAME, &attestations_path(entry))?;
        }
        for entry in &change.new {
            tree.link_blob(NAME, &entry.path, &entry.blob)?;
            if let Some(doc) = entry.evidence.iter().find(|e| e.kind == "npm-attestations") {
                tree.write(NAME, &attestations_path(entry), &doc.data)?;
            }
        }
        for name in change.touched() {
            let versions = change.versions_of(name);
            if versions.is_empty() {
                tree.remove(NAME, &packument_path(name))?;
                continue;
            }
            let base = change.base_url.unwrap_or(BASE_PLACEHOLDER);
            tree.write_with(NAME, &packument_path(name), &mut |out| write_packument(name, &versions, base, out))?;
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
        &["npm-version", "npm-signatures"]
    }

    fn pinned_keys_path(&self) -> Option<&'static str> {
        Some(KEYS_PATH)
    }

    fn lockfile_flag(&self) -> Option<&'static str> {
        Some("--npm-lock")
    }

    fn evidence_kinds(&self) -> &'static [EvidenceKind] {
        &evidence::EVIDENCE
    }

    fn verify_evidence(&self, entry: &Entry, trust: &Trust<'_>, id: &str) -> Result<Provenance, Rejection> {
        evidence::verify(entry, trust, id)
    }
}

/// The placeholder `airlock serve` replaces with `http://HOST`.
pub const BASE_PLACEHOLDER: &str = "{{AIRLOCK_BASE}}";

/// Where the mirror serves the registry keys document the import policy pins.
pub const KEYS_PATH: &str = "-/npm/v1/keys";

/// A package's packument, in the package's folder.
const PACKUMENT: &str = "packument.json";

/// Where the registry's attestations endpoint keeps the versions' documents.
const ATTESTATIONS_DIR: &str = "-/npm/v1/attestations";

/// Where a package's packument is kept.
fn packument_path(name: &str) -> String {
    format!("{name}/{PACKUMENT}")
}

/// Where the registry's attestations endpoint keeps a version's document.
fn attestations_path(entry: &Entry) -> String {
    format!("{ATTESTATIONS_DIR}/{}@{}", entry.name, entry.version.as_deref().unwrap_or_default())
}

/// Writes the packument for `name` from the carried version objects:
/// `{"dist-tags":{"latest":…},"name":…,"versions":{…}}`, keys in order as
/// a `serde_json` map writes them. One version object is parsed at a time
/// and written out before the next: a package's version objects together
/// may be most of a manifest, and parsed all at once they would take many
/// times its size.
/// The URLs in it start with `base`: the mirror's `--base-url`, or
/// [`BASE_PLACEHOLDER`] for `airlock serve` to fill in.
fn write_packument(name: &str, versions: &[&Entry], base: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    // By version, as a map would order them; of two with the same version the later counts.
    let mut sorted: Vec<(&str, &Entry)> =
        versions.iter().map(|e| (e.version.as_deref().unwrap_or_default(), *e)).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut unique: Vec<(&str, &Entry)> = Vec::with_capacity(sorted.len());
    for item in sorted {
        match unique.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => unique.push(item),
        }
    }
    let latest = unique
        .iter()
        .filter_map(|(v, _)| semver::Version::parse(v).ok())
        .filter(|v| v.pre.is_empty())
        .max()
        .map(|v| v.to_string())
        .or_else(|| unique.last().map(|(v, _)| (*v).to_owned()))
        .unwrap_or_default();
    out.write_all(b"{\"dist-tags\":{\"latest\":")?;
    serde_json::to_writer(&mut *out, &latest)?;
    out.write_all(b"},\"name\":")?;
    serde_json::to_writer(&mut *out, name)?;
    out.write_all(b",\"versions\":{")?;
    for (i, (version, entry)) in unique.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, version)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, &version_object(name, version, entry, base))?;
    }
    out.write_all(b"}}")
}

/// A version's part of the packument: its carried object, with the tarball
/// and attestation URLs pointing at the mirror.
fn version_object(name: &str, version: &str, entry: &Entry, base: &str) -> Value {
    let mut object = entry
        .evidence
        .iter()
        .find(|e| e.kind == "npm-version")
        .and_then(|e| serde_json::from_slice::<Value>(&e.data).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({"name": name, "version": version}));
    let dist = object.as_object_mut().expect("an object").entry("dist").or_insert_with(|| serde_json::json!({}));
    if let Some(dist) = dist.as_object_mut() {
        dist.insert("tarball".into(), format!("{base}/npm/{}", entry.path).into());
        let sha512 = entry.digests.get("sha512").map(|d| base64::engine::general_purpose::STANDARD.encode(&d.0));
        if let Some(sha512) = sha512 {
            dist.entry("integrity").or_insert_with(|| format!("sha512-{sha512}").into());
        }
        if entry.carries("npm-attestations") {
            let url = format!("{base}/npm/{}", attestations_path(entry));
            let attestations = dist.entry("attestations").or_insert_with(|| serde_json::json!({}));
            if let Some(a) = attestations.as_object_mut() {
                a.insert("url".into(), url.into());
            }
        } else {
            // Not carried: a URL to nowhere would only make clients fail.
            dist.remove("attestations");
        }
    }
    object
}

/// Longest npm package name, scope included (validate-npm-package-name).
pub const MAX_NAME_LEN: usize = 214;
/// Longest version node-semver parses.
pub const MAX_VERSION_LEN: usize = 256;

/// An npm package name as the registry's rules (validate-npm-package-name)
/// allow it: 1 to 214 characters; `name` or `@scope/name`; each part made
/// of URL-safe characters (letters, digits, `-`, `.`, `_`, `~`: the
/// `!'()*` that old packages could use are refused), the whole not
/// starting with `.` or `_` and no part starting with `.`; not
/// `node_modules` or `favicon.ico`. Capitals are allowed only in unscoped
/// names: old packages have them (`JSONStream`), scopes came after the rule
/// that new names are lower case. Checked on both sides: for every
/// lockfile pin at export, for every entry on import.
pub fn check_name(name: &str) -> Result<(), String> {
    let part = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let valid = match name.strip_prefix('@') {
        Some(rest) => rest
            .split_once('/')
            .is_some_and(|(scope, pkg)| part(scope) && part(pkg) && !rest.bytes().any(|b| b.is_ascii_uppercase())),
        None => part(name) && !name.starts_with('_'),
    };
    let denied = ["node_modules", "favicon.ico"].iter().any(|d| d.eq_ignore_ascii_case(name));
    if valid && !denied && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid npm package name (1 to 214 URL-safe characters, as name or @scope/name, not starting with '.' or '_')"
        ))
    }
}

/// An npm version: a semantic version (`SemVer` 2.0, as the registry stores
/// them), at most 256 characters.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.len() <= MAX_VERSION_LEN && semver::Version::parse(version).is_ok() {
        Ok(())
    } else {
        Err(format!("{version:?} is not a valid npm version (a semantic version such as 1.2.3)"))
    }
}

/// Refuses, before anything is fetched, a lockfile pin whose name or
/// version npm cannot have (exit 2, naming `origin` and the pin).
pub fn check_pins(pins: &[NpmPin], origin: &str) -> Result<()> {
    for pin in pins {
        check_name(&pin.name).and_then(|()| check_version(&pin.version)).map_err(|why| {
            LockError::new(origin, format!("npm package {:?} {:?}: {why}; correct the lockfile", pin.name, pin.version))
        })?;
    }
    Ok(())
}

/// Where the registry layout keeps a tarball: `NAME/-/BASENAME-VERSION.tgz`.
#[must_use]
pub fn tarball_path(name: &str, version: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    format!("{name}/-/{base}-{version}.tgz")
}

/// The packument URL: scoped names keep their `@` and encode the slash.
fn packument_url(registry: &str, name: &str) -> String {
    join_url(registry, &name.replace('/', "%2f"))
}

/// Resolves every pin against `registry` and downloads its tarball.
pub fn resolve(pins: &[NpmPin], registry: &str, ctx: &FetchContext) -> Result<Vec<Artifact>> {
    let mut names: Vec<&str> = pins.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let packuments = parallel(&names, ctx.jobs, |name| {
        let url = packument_url(registry, name);
        let body = ctx.document(&url, "application/json")?.ok_or_else(|| {
            Error::Usage(format!("npm package {name}: not found at {url}; check the name and --npm-registry"))
        })?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            Error::Usage(format!("{url}: the registry's answer is not a packument ({e}); check --npm-registry"))
        })?;
        Ok((name.to_owned(), url, doc))
    })?;
    parallel(pins, ctx.jobs, |pin| {
        let (_, url, doc) = packuments.iter().find(|(n, _, _)| *n == pin.name).expect("every name was fetched");
        resolve_one(pin, url, doc, ctx)
    })
}

fn resolve_one(pin: &NpmPin, packument_url: &str, doc: &Value, ctx: &FetchContext) -> Result<Artifact> {
    let id = format!("{}@{}", pin.name, pin.version);
    let version = doc.get("versions").and_then(|v| v.get(&pin.version)).ok_or_else(|| {
        Error::Usage(format!(
            "npm package {id}: the registry has no such version ({packument_url}); check the lockfile"
        ))
    })?;
    let dist = version
        .get("dist")
        .ok_or_else(|| Error::Usage(format!("npm package {id}: the registry gives no dist section")))?;
    let text = |key: &str| dist.get(key).and_then(Value::as_str);
    let registry_integrity = text("integrity");
    let locked = pin.integrity.as_deref().and_then(sri_sha512);
    if let (Some(locked), Some(served)) = (&locked, registry_integrity.and_then(sri_sha512))
        && *locked != served
    {
        return Err(digest_mismatch(
            &format!("npm package {id}"),
            "the lockfile's integrity differs from the registry's",
        ));
    }
    let sha512 = locked.or_else(|| registry_integrity.and_then(sri_sha512));
    let sha1 = text("shasum").and_then(|s| hex::decode(s).ok());
    if sha512.is_none() && sha1.is_none() {
        return Err(Error::Usage(format!(
            "npm package {id}: neither the lockfile nor the registry states a digest; airlock will not carry an unverifiable tarball"
        )));
    }
    let tarball = text("tarball")
        .or(pin.resolved.as_deref())
        .ok_or_else(|| Error::Usage(format!("npm package {id}: no tarball URL")))?;
    let check = |d: &Digests| {
        if sha512.as_ref().is_some_and(|want| *want != d.sha512) {
            return Err(digest_mismatch(
                &format!("npm package {id}"),
                "the tarball's sha512 differs from the integrity pinned",
            ));
        }
        if sha1.as_ref().is_some_and(|want| *want != d.sha1) {
            return Err(digest_mismatch(
                &format!("npm package {id}"),
                "the tarball's sha1 differs from the registry's shasum",
            ));
        }
        Ok(())
    };
    let cached = ctx.artifact_with(tarball, Extra::BOTH, &check)?;
    let path = RelPath::new(&tarball_path(&pin.name, &pin.version))
        .map_err(|e| Error::Usage(format!("npm package {id}: {e}")))?;
    let mut e = entry(NAME, &pin.name, &pin.version, path, &cached);
    e.digests.insert("sha512".into(), Digest(cached.digests.sha512.clone()));
    e.digests.insert("sha1".into(), Digest(cached.digests.sha1.clone()));
    e.source = Some(tarball.to_owned());
    // When the version was published decides whether a since-expired registry key still vouches for it.
    if let Some(time) = doc.get("time").and_then(|t| t.get(&pin.version)).and_then(Value::as_str) {
        e.attributes.insert("published".into(), time.to_owned());
    }
    carry_needed(&mut e, "npm-version", serde_json::to_vec(version).expect("JSON"), &format!("npm package {id}"))?;
    let signatures = dist.get("signatures").filter(|s| s.as_array().is_some_and(|a| !a.is_empty()));
    carry(
        &mut e,
        "npm-signatures",
        signatures.map(|s| serde_json::to_vec(s).expect("JSON")),
        &format!("{packument_url} dist.signatures"),
    );
    match dist.get("attestations").and_then(|a| a.get("url")).and_then(Value::as_str) {
        Some(url) => carry(&mut e, "npm-attestations", ctx.document(url, "application/json")?, url),
        None => carry(&mut e, "npm-attestations", None, &format!("{packument_url} dist.attestations")),
    }
    Ok(Artifact { entry: e, source: cached.path })
}

/// The sha512 digest in a Subresource Integrity string, if it has one.
pub(crate) fn sri_sha512(sri: &str) -> Option<Vec<u8>> {
    sri.split_whitespace()
        .filter_map(|part| part.strip_prefix("sha512-"))
        .find_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|d| d.len() == 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for good in
            ["is-number", "@sindresorhus/is", "JSONStream", "lodash.merge", "@types/node", "a~b", "@a/_b", "http"]
        {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "@scope",
            "@scope/",
            "@/x",
            "@a/b/c",
            "../evil",
            ".hidden",
            "_private",
            "@scope/.x",
            "@Scope/x",
            "@a/B",
            "crazy!",
            "a(b)",
            "it's",
            "a*",
            "a b",
            " a",
            "a/b",
            "<svg onload=alert(1)>",
            "node_modules",
            "Favicon.ico",
            "caf\u{e9}",
            long.as_str(),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["1.0.0", "0.0.1-alpha.1", "1.2.3+build.5", "10.20.30-rc.1+x"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["", "1.0", "v1.0.0", "1.0.0 ", "latest", "1.0.0<script>", "01.0.0", "1.0.0/../x"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        assert_eq!(tarball_path("@sindresorhus/is", "4.6.0"), "@sindresorhus/is/-/is-4.6.0.tgz");
        assert_eq!(packument_url("http://r/", "@a/b"), "http://r/@a%2fb");
    }

    #[test]
    fn the_lockfile_fixture_passes_the_grammar_and_hostile_pins_do_not() {
        let text = include_str!("../../../fixtures/lockfiles/package-lock.json");
        let pins = super::lockfile::parse_package_lock(text, "package-lock.json").unwrap();
        assert!(!pins.is_empty());
        check_pins(&pins, "package-lock.json").unwrap();
        let mut hostile = pins[0].clone();
        hostile.name = "_x\n".into();
        let e = check_pins(&[hostile], "package-lock.json").unwrap_err().to_string();
        assert!(e.starts_with("package-lock.json: npm package \"_x\\n\""), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    /// Item 12 of issue 14: the packument is built by `serde_json`, so a
    /// hostile name, version or carried version object stays a string
    /// (tested without the name grammar, which refuses them first).
    #[test]
    fn hostile_names_stay_strings_in_the_packument() {
        use crate::escape::testing::HOSTILE;
        for hostile in HOSTILE {
            let object = serde_json::json!({"name": hostile, "version": hostile, "description": hostile});
            let entry = Entry {
                ecosystem: NAME.into(),
                name: (*hostile).into(),
                version: Some((*hostile).into()),
                path: RelPath::new(&tarball_path(hostile, hostile)).unwrap(),
                blob: crate::id::ContentId::of(b"x"),
                size: 1,
                digests: [("sha512".to_owned(), Digest(vec![1; 64]))].into(),
                source: None,
                attributes: std::collections::BTreeMap::new(),
                evidence: vec![crate::manifest::Evidence {
                    kind: "npm-version".into(),
                    data: serde_json::to_vec(&object).unwrap(),
                }],
                missing: vec![],
            };
            let mut bytes = Vec::new();
            write_packument(hostile, &[&entry], BASE_PLACEHOLDER, &mut bytes).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let doc: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(doc["name"], *hostile);
            assert_eq!(doc["dist-tags"]["latest"], *hostile);
            let version = &doc["versions"][*hostile];
            assert_eq!(version["description"], *hostile);
            assert_eq!(version["dist"]["tarball"], format!("{BASE_PLACEHOLDER}/npm/{}", entry.path));
        }
    }

    #[test]
    fn sri_parsing() {
        let sri = "sha1-abc sha512-".to_owned() + &base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert_eq!(sri_sha512(&sri), Some(vec![7u8; 64]));
        assert_eq!(sri_sha512("sha512-notbase64!"), None);
    }
}
