//! A CycloneDX 1.6 SBOM of a bundle's contents, so a site's existing tools
//! can read what came in: one component per entry with its purl, every hash
//! the bundle carries, where it came from, and which upstream evidence was
//! found or missing. Deterministic: the same bundle gives the same bytes.

use serde_json::{Value, json};

use crate::ecosystem;
use crate::inspect::{InspectEntry, InspectReport};

/// CycloneDX's names for the digests a manifest carries. Not `git-sha1`:
/// a git blob id is SHA-1 over a header and the bytes, not the file's SHA-1,
/// and CycloneDX has no name for it.
const HASH_NAMES: [(&str, &str); 3] = [("sha1", "SHA-1"), ("sha256", "SHA-256"), ("sha512", "SHA-512")];

/// The SBOM of an inspected bundle. The evidence is what the bundle carries,
/// not what a policy verified: `airlock verify` decides trust.
#[must_use]
pub fn cyclonedx(report: &InspectReport) -> Value {
    let components: Vec<Value> = report.entries.iter().map(component).collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(&report.manifest_digest),
        "version": 1,
        "metadata": {
            "timestamp": report.created,
            "tools": {"components": [{"type": "application", "name": "airlock", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {
                "type": "data",
                "bom-ref": "bundle",
                "name": format!("airlock bundle {} #{}", report.channel, report.sequence),
                "hashes": [{"alg": "BLAKE3", "content": report.manifest_digest}],
            },
            "properties": [
                property("airlock:manifest-blake3", &report.manifest_digest),
                property("airlock:channel", &report.channel),
                property("airlock:sequence", &report.sequence.to_string()),
                property("airlock:expires", &report.expires),
                property("airlock:claimed-signers", &report.claimed_signers.join(" ")),
            ],
        },
        "components": components,
    })
}

fn component(entry: &InspectEntry) -> Value {
    let mut hashes = vec![json!({"alg": "BLAKE3", "content": entry.blake3})];
    for (ours, theirs) in HASH_NAMES {
        if let Some(digest) = entry.digests.get(ours) {
            hashes.push(json!({"alg": theirs, "content": digest}));
        }
    }
    let mut properties = vec![property("airlock:ecosystem", &entry.ecosystem), property("airlock:path", &entry.path)];
    properties.extend(entry.evidence.iter().map(|kind| property("airlock:evidence", kind)));
    properties.extend(entry.missing.iter().map(|missing| property("airlock:evidence-missing", missing)));
    let mut value = json!({
        "type": if entry.ecosystem == "files" { "file" } else { "library" },
        "bom-ref": format!("{}:{}", entry.ecosystem, entry.path),
        "name": entry.name,
        "hashes": hashes,
        "properties": properties,
    });
    if let Some(version) = &entry.version {
        value["version"] = json!(version);
    }
    if let Some(purl) = purl(entry) {
        value["purl"] = json!(purl);
    }
    if let Some(source) = &entry.source {
        value["externalReferences"] = json!([{"type": "distribution", "url": source}]);
    }
    value
}

/// The package URL (github.com/package-url/purl-spec) of an entry with a
/// version, as its ecosystem spells it ([`ecosystem::Ecosystem::purl`]).
fn purl(entry: &InspectEntry) -> Option<String> {
    let version = entry.version.as_deref()?;
    ecosystem::by_name(&entry.ecosystem)?.purl(&entry.name, version, &entry.path)
}

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// A stable `urn:uuid:` from the manifest digest (RFC 9562 version 8 layout).
fn serial_number(manifest_hex: &str) -> String {
    let mut hex: Vec<char> = manifest_hex.chars().take(32).collect();
    hex.resize(32, '0');
    hex[12] = '8';
    hex[16] = ['8', '9', 'a', 'b'][hex[16].to_digit(16).unwrap_or(0) as usize % 4];
    let s: String = hex.into_iter().collect();
    format!("urn:uuid:{}-{}-{}-{}-{}", &s[..8], &s[8..12], &s[12..16], &s[16..20], &s[20..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape;

    #[test]
    fn serial_numbers_are_version_8_uuids() {
        let serial = serial_number(&"f".repeat(64));
        assert_eq!(serial, "urn:uuid:ffffffff-ffff-8fff-bfff-ffffffffffff");
    }

    #[test]
    fn purl_segments_are_encoded() {
        assert_eq!(escape::url_segment("1.0.0+build 1"), "1.0.0%2Bbuild%201");
    }

    fn entry(ecosystem: &str, name: &str, version: &str, path: &str) -> InspectEntry {
        InspectEntry {
            ecosystem: ecosystem.into(),
            name: name.into(),
            version: Some(version.into()),
            path: path.into(),
            size: 1,
            blake3: "ab".repeat(32),
            digests: std::collections::BTreeMap::new(),
            source: Some(name.into()),
            evidence: vec![name.into()],
            missing: vec![],
            pieces: vec![],
        }
    }

    #[test]
    fn a_git_blob_id_is_not_given_as_the_files_sha1() {
        let mut with_both = entry("huggingface", "org/m", &"a".repeat(40), "hub/x/config.json");
        with_both.digests.insert("sha1".into(), "11".repeat(20));
        with_both.digests.insert("git-sha1".into(), "22".repeat(20));
        let mut git_only = with_both.clone();
        git_only.digests.remove("sha1");
        let sha1s = |e: &InspectEntry| -> Vec<Value> {
            let hashes = component(e)["hashes"].as_array().unwrap().clone();
            assert!(!hashes.iter().any(|h| h["content"] == "22".repeat(20)), "{hashes:?}");
            hashes.into_iter().filter(|h| h["alg"] == "SHA-1").map(|h| h["content"].clone()).collect()
        };
        assert_eq!(sha1s(&with_both), vec![json!("11".repeat(20))]);
        assert!(sha1s(&git_only).is_empty());
    }

    /// Item 12 of issue 14: hostile names (not refused here: inspect
    /// verifies nothing) are plain strings in the SBOM, and no purl holds
    /// one unencoded.
    #[test]
    fn hostile_names_stay_strings_and_purls_stay_encoded() {
        use crate::escape::testing::HOSTILE;
        let benign = [entry("npm", "@scope/pkg", "1.0.0", "@scope/pkg/-/pkg-1.0.0.tgz")];
        let report = |entries: Vec<InspectEntry>| InspectReport {
            bundle: "b.airlock".into(),
            manifest_digest: "cd".repeat(32),
            format: 1,
            tool: "airlock".into(),
            channel: "default".into(),
            sequence: 1,
            previous: None,
            created: "2026-01-01T00:00:00Z".into(),
            expires: "2026-02-01T00:00:00Z".into(),
            claimed_signers: vec![],
            volumes: 1,
            bytes: 1,
            segments: None,
            entries,
        };
        assert_eq!(cyclonedx(&report(benign.to_vec()))["components"][0]["purl"], "pkg:npm/%40scope/pkg@1.0.0");
        for hostile in HOSTILE {
            let entries =
                ["npm", "pypi", "cargo"].map(|eco| entry(eco, hostile, hostile, &format!("{hostile}/{hostile}")));
            let text = serde_json::to_string(&cyclonedx(&report(entries.to_vec()))).unwrap();
            let sbom: Value = serde_json::from_str(&text).unwrap();
            for component in sbom["components"].as_array().unwrap() {
                assert_eq!(component["name"], *hostile);
                assert_eq!(component["version"], *hostile);
                let purl = component["purl"].as_str().unwrap();
                assert!(!purl.contains(['<', '>', '"', '\'', '&', ' ']), "{purl}");
                assert_eq!(purl.matches(':').count(), 1, "{purl}");
            }
        }
    }
}
