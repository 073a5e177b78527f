//! A CycloneDX 1.6 SBOM of a bundle's contents, so a site's existing tools
//! can read what came in: one component per entry with its purl, every hash
//! the bundle carries, where it came from, and which upstream evidence was
//! found or missing. Deterministic: the same bundle gives the same bytes.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::inspect::{InspectEntry, InspectReport};

/// CycloneDX's names for the digests a manifest carries.
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

/// The package URL (github.com/package-url/purl-spec) of an entry. A PyPI
/// release has several files, so the file name is a qualifier.
fn purl(entry: &InspectEntry) -> Option<String> {
    let version = entry.version.as_deref()?;
    let file_name = entry.path.rsplit('/').next().unwrap_or_default();
    match entry.ecosystem.as_str() {
        "npm" => Some(format!("pkg:npm/{}@{}", entry.name.replacen('@', "%40", 1), encode(version))),
        "pypi" => Some(format!("pkg:pypi/{}@{}?file_name={}", entry.name, encode(version), encode(file_name))),
        "cargo" => Some(format!("pkg:cargo/{}@{}", entry.name, encode(version))),
        _ => None,
    }
}

/// Percent-encodes what a purl segment must not hold verbatim.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b".-_~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
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

    #[test]
    fn serial_numbers_are_version_8_uuids() {
        let serial = serial_number(&"f".repeat(64));
        assert_eq!(serial, "urn:uuid:ffffffff-ffff-8fff-bfff-ffffffffffff");
    }

    #[test]
    fn purl_segments_are_encoded() {
        assert_eq!(encode("1.0.0+build 1"), "1.0.0%2Bbuild%201");
    }
}
