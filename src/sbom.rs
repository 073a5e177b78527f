//! A CycloneDX 1.6 SBOM of a bundle's contents, so a site's existing tools
//! can read what came in: one component per entry with its purl, every hash
//! the bundle carries, where it came from, and which upstream evidence was
//! found or missing. Deterministic: the same bundle gives the same bytes.

use std::io::{self, Write};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::ecosystem;
use crate::inspect::{InspectEntry, InspectReport};

/// CycloneDX's names for the digests a manifest carries. Not `git-sha1`:
/// a git blob id is SHA-1 over a header and the bytes, not the file's SHA-1,
/// and CycloneDX has no name for it.
const HASH_NAMES: [(&str, &str); 3] = [("sha1", "SHA-1"), ("sha256", "SHA-256"), ("sha512", "SHA-512")];

/// Writes the SBOM of an inspected bundle to `out`, one component at a time:
/// built as one value it took some 6 KB an entry (600 MiB for a bundle of
/// 100 000 files). The evidence is what the bundle carries, not what a
/// policy verified: `airlock verify` decides trust.
pub fn write_cyclonedx(report: &InspectReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(out, &Document(report)).map_err(io::Error::from)
}

/// The document, its keys in the order `serde_json` sorts a map's, so that
/// the bytes are what the same document built as one value would give.
struct Document<'a>(&'a InspectReport);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let report = self.0;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("bomFormat", "CycloneDX")?;
        map.serialize_entry("components", &Components(report))?;
        map.serialize_entry("metadata", &metadata(report))?;
        map.serialize_entry("serialNumber", &serial_number(&report.manifest_digest))?;
        map.serialize_entry("specVersion", "1.6")?;
        map.serialize_entry("version", &1)?;
        map.end()
    }
}

/// The components, each made as it is written.
struct Components<'a>(&'a InspectReport);

impl Serialize for Components<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.entries.iter().map(|e| component(&e)))
    }
}

/// What the SBOM says of the bundle itself.
fn metadata(report: &InspectReport) -> Value {
    json!({
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::escape;
    use crate::id::{ContentId, RelPath};
    use crate::inspect::InspectEntries;
    use crate::manifest::{Digest, Entry, Evidence, Missing};

    fn cyclonedx(report: &InspectReport) -> Value {
        let mut bytes = Vec::new();
        write_cyclonedx(report, &mut bytes).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Written a component at a time, the SBOM is byte for byte what
    /// `serde_json` writes for the same document built as one value.
    #[test]
    fn the_sbom_written_as_it_goes_is_the_document_as_one_value() {
        let mut pkg = entry("pypi", "six", "1.0", "six/six-1.0.tar.gz");
        pkg.digests.insert("sha256".into(), Digest(vec![0x33; 32]));
        pkg.missing.push(Missing {
            kind: "pypi-provenance".into(),
            looked: "https://pypi.org/integrity/six/1.0/six-1.0.tar.gz/provenance".into(),
        });
        let mut file = entry("files", "notes.txt", "", "notes.txt");
        file.version = None;
        file.source = None;
        let report = report(vec![pkg, file]);
        let mut streamed = Vec::new();
        write_cyclonedx(&report, &mut streamed).unwrap();
        let whole = json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": serial_number(&report.manifest_digest),
            "version": 1,
            "metadata": metadata(&report),
            "components": report.entries.iter().map(|e| component(&e)).collect::<Vec<_>>(),
        });
        assert_eq!(String::from_utf8(streamed).unwrap(), serde_json::to_string_pretty(&whole).unwrap());
    }

    fn report(entries: Vec<Entry>) -> InspectReport {
        InspectReport {
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
            entries: InspectEntries::new(entries.into(), Vec::new()),
        }
    }

    #[test]
    fn serial_numbers_are_version_8_uuids() {
        let serial = serial_number(&"f".repeat(64));
        assert_eq!(serial, "urn:uuid:ffffffff-ffff-8fff-bfff-ffffffffffff");
    }

    #[test]
    fn purl_segments_are_encoded() {
        assert_eq!(escape::url_segment("1.0.0+build 1"), "1.0.0%2Bbuild%201");
    }

    fn entry(ecosystem: &str, name: &str, version: &str, path: &str) -> Entry {
        Entry {
            ecosystem: ecosystem.into(),
            name: name.into(),
            version: Some(version.into()),
            path: RelPath::new(path).unwrap(),
            blob: ContentId([0xab; 32]),
            size: 1,
            digests: BTreeMap::new(),
            source: Some(name.into()),
            attributes: BTreeMap::new(),
            evidence: vec![Evidence { kind: name.into(), data: Vec::new() }],
            missing: vec![],
        }
    }

    /// `entry` as `inspect` reports it.
    fn inspected(entry: &Entry) -> InspectEntry {
        InspectEntries::new(vec![entry.clone()].into(), Vec::new()).iter().next().unwrap()
    }

    #[test]
    fn a_git_blob_id_is_not_given_as_the_files_sha1() {
        let mut with_both = entry("huggingface", "org/m", &"a".repeat(40), "hub/x/config.json");
        with_both.digests.insert("sha1".into(), Digest(vec![0x11; 20]));
        with_both.digests.insert("git-sha1".into(), Digest(vec![0x22; 20]));
        let mut git_only = with_both.clone();
        git_only.digests.remove("sha1");
        let sha1s = |e: &Entry| -> Vec<Value> {
            let hashes = component(&inspected(e))["hashes"].as_array().unwrap().clone();
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
