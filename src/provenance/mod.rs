//! Upstream provenance checked offline, against trust roots pinned in the
//! import policy (never taken from the bundle).
//!
//! Done: npm registry signatures (ECDSA P-256 over `NAME@VERSION:INTEGRITY`).
//! Not yet: Sigstore bundles (npm provenance attestations, PEP 740); they are
//! carried and their presence can be required, but they are not verified.

pub mod npm;
