//! Upstream provenance checked offline, against trust roots pinned in the
//! import policy (never taken from the bundle): the primitives the
//! ecosystems' evidence checks share. Sigstore bundles (certificate chain,
//! transparency log, DSSE) are verified here; what an ecosystem's documents
//! look like, and which statements it expects, is the ecosystem's
//! (`ecosystem::<name>::evidence`). Nothing here names an ecosystem.

pub mod certificate;
pub mod sigstore;

/// Seconds since the epoch of an RFC 3339 UTC time (fractions allowed).
#[must_use]
pub fn rfc3339_secs(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z').split('.').next()?).ok()?;
    time.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339_secs("2025-01-29T00:00:00.000Z"), Some(1_738_108_800));
        assert_eq!(rfc3339_secs("nonsense"), None);
    }
}
