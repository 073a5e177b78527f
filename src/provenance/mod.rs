//! Upstream provenance checked offline, against trust roots pinned in the
//! import policy (never taken from the bundle): npm registry signatures
//! (ECDSA P-256 over `NAME@VERSION:INTEGRITY`) and Sigstore bundles (npm
//! provenance and publish attestations, PEP 740 attestations).

pub mod npm;
pub mod sigstore;
