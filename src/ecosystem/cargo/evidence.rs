//! The crates' upstream evidence: the index line, carried because a local
//! registry serves it as is; crates have no upstream signatures.

use crate::manifest::evidence::{EvidenceKind, MIB};

/// The crates' evidence kinds, with their caps.
pub const EVIDENCE: [EvidenceKind; 1] = [
    // One line of the sparse index. The longest of web-sys, windows,
    // windows-sys, stm32-metapac and embassy-stm32 (2025) is 81 KiB
    // (embassy-stm32's, its features one per chip).
    EvidenceKind { name: "cargo-index-entry", max_bytes: MIB, needed: true },
];

/// What the report says of a crate's provenance.
pub const PROVENANCE: &str = "index entry carried; crates have no upstream signatures (digest-only)";
