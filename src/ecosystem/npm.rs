//! npm: package-lock.json on the connected side, tarballs with the
//! registry's integrity, signatures and attestations carried as evidence.

use base64::Engine as _;
use serde_json::Value;

use crate::ecosystem::registry::{Artifact, FetchContext, carry, carry_needed, digest_mismatch, entry, join_url};
use crate::ecosystem::{Change, Ecosystem};
use crate::error::{Error, Result};
use crate::fetch::{Digests, parallel};
use crate::id::RelPath;
use crate::lockfile::npm::NpmPin;
use crate::manifest::{Digest, Entry};
use crate::mirror::Tree;

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
        if !valid_name(&entry.name) {
            return Err("not a valid npm package name".into());
        }
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

    /// Tarballs in the registry's layout, attestation documents where the
    /// registry's attestations endpoint puts them, and one packument per
    /// package regenerated from all its versions, keeping `dist.signatures`
    /// and pointing tarball and attestation URLs at `{{AIRLOCK_BASE}}`, which
    /// `airlock serve` replaces with its own address.
    fn publish(&self, change: &Change<'_>, tree: &mut Tree) -> Result<()> {
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
                tree.remove(NAME, &format!("{name}/packument.json"))?;
                continue;
            }
            tree.write_with(NAME, &format!("{name}/packument.json"), |out| write_packument(name, &versions, out))?;
        }
        Ok(())
    }
}

/// The placeholder `airlock serve` replaces with `http://HOST`.
pub const BASE_PLACEHOLDER: &str = "{{AIRLOCK_BASE}}";

/// Where the registry's attestations endpoint keeps a version's document.
fn attestations_path(entry: &Entry) -> String {
    format!("-/npm/v1/attestations/{}@{}", entry.name, entry.version.as_deref().unwrap_or_default())
}

/// Writes the packument for `name` from the carried version objects:
/// `{"dist-tags":{"latest":…},"name":…,"versions":{…}}`, keys in order as
/// a `serde_json` map writes them. One version object is parsed at a time
/// and written out before the next: a package's version objects together
/// may be most of a manifest, and parsed all at once they would take many
/// times its size.
fn write_packument(name: &str, versions: &[&Entry], out: &mut dyn std::io::Write) -> std::io::Result<()> {
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
        serde_json::to_writer(&mut *out, &version_object(name, version, entry))?;
    }
    out.write_all(b"}}")
}

/// A version's part of the packument: its carried object, with the tarball
/// and attestation URLs pointing at the mirror.
fn version_object(name: &str, version: &str, entry: &Entry) -> Value {
    let mut object = entry
        .evidence
        .iter()
        .find(|e| e.kind == "npm-version")
        .and_then(|e| serde_json::from_slice::<Value>(&e.data).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({"name": name, "version": version}));
    let dist = object.as_object_mut().expect("an object").entry("dist").or_insert_with(|| serde_json::json!({}));
    if let Some(dist) = dist.as_object_mut() {
        dist.insert("tarball".into(), format!("{BASE_PLACEHOLDER}/npm/{}", entry.path).into());
        let sha512 = entry.digests.get("sha512").map(|d| base64::engine::general_purpose::STANDARD.encode(&d.0));
        if let Some(sha512) = sha512 {
            dist.entry("integrity").or_insert_with(|| format!("sha512-{sha512}").into());
        }
        if entry.evidence.iter().any(|e| e.kind == "npm-attestations") {
            let url = format!("{BASE_PLACEHOLDER}/npm/{}", attestations_path(entry));
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

/// npm names: optionally `@scope/`, then URL-safe characters (old packages may use capitals).
fn valid_name(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let unscoped = match name.strip_prefix('@') {
        Some(rest) => match rest.split_once('/') {
            Some((scope, pkg)) if part(scope) => pkg,
            _ => return false,
        },
        None => name,
    };
    name.len() <= 214 && part(unscoped)
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
    let cached = ctx.artifact(tarball, &check)?;
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
        assert!(valid_name("is-number"));
        assert!(valid_name("@sindresorhus/is"));
        assert!(!valid_name("@scope"));
        assert!(!valid_name("../evil"));
        assert!(!valid_name(".hidden"));
        assert_eq!(tarball_path("@sindresorhus/is", "4.6.0"), "@sindresorhus/is/-/is-4.6.0.tgz");
        assert_eq!(packument_url("http://r/", "@a/b"), "http://r/@a%2fb");
    }

    #[test]
    fn sri_parsing() {
        let sri = "sha1-abc sha512-".to_owned() + &base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert_eq!(sri_sha512(&sri), Some(vec![7u8; 64]));
        assert_eq!(sri_sha512("sha512-notbase64!"), None);
    }
}
