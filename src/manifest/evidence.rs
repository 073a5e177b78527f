//! The kinds of upstream evidence a manifest may carry, and the most bytes
//! one document of each kind may have (`evidence-kind` in
//! schemas/manifest.cddl; the README's table says the same).
//!
//! The caps are the one place these limits live: `Manifest::check` refuses
//! a manifest with a larger document (so an importer refuses it before any
//! parser sees it, and an exporter never writes it), and the exporters
//! check what a registry serves against them while they collect it.
//!
//! Each cap is far above what the registries serve (measured, in the
//! comments) and low enough that parsing one document of the worst shape
//! (`[0,0,0,…]`: a JSON value in memory is 16 to 32 times its two bytes)
//! costs tens of MiB, not the gigabyte a document the size of the manifest
//! cap would: documents are parsed one at a time.

/// One kind of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceKind {
    /// Its name in manifests and policies.
    pub name: &'static str,
    /// The most bytes one document of this kind may have.
    pub max_bytes: u64,
    /// Whether the mirror is built from it, so that an exporter cannot
    /// carry the artifact without it: one over the cap is refused at export
    /// rather than recorded as missing.
    pub needed: bool,
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Every kind, with its cap.
pub const EVIDENCE: [EvidenceKind; 6] = [
    // A version's object from the full packument. The largest of aws-sdk,
    // typescript, next, @types/node, react-native, npm and electron (2025)
    // is 9.5 KiB; the registry puts readmes at the top, not per version.
    EvidenceKind { name: "npm-version", max_bytes: MIB, needed: true },
    // `dist.signatures`: one or two records of about 200 bytes.
    EvidenceKind { name: "npm-signatures", max_bytes: 64 * KIB, needed: false },
    // The attestations document: two Sigstore bundles, about 12 KiB.
    EvidenceKind { name: "npm-attestations", max_bytes: MIB, needed: false },
    // PEP 658 METADATA, with the long description (pydantic's: 132 KiB).
    // Written to the mirror as it is, never parsed.
    EvidenceKind { name: "pypi-core-metadata", max_bytes: 4 * MIB, needed: false },
    // A PEP 740 provenance object: about 10 KiB per attestation.
    EvidenceKind { name: "pypi-provenance", max_bytes: MIB, needed: false },
    // One line of the sparse index. The longest of web-sys, windows,
    // windows-sys, stm32-metapac and embassy-stm32 (2025) is 81 KiB
    // (embassy-stm32's, its features one per chip).
    EvidenceKind { name: "cargo-index-entry", max_bytes: MIB, needed: true },
];

/// The kind called `name`, if this format knows it.
#[must_use]
pub fn kind(name: &str) -> Option<&'static EvidenceKind> {
    EVIDENCE.iter().find(|k| k.name == name)
}

/// Whether a document of `len` bytes of kind `name` fits its cap; the error
/// says how large it is and what the cap is. An unknown kind has no cap
/// here (`Manifest::check` refuses unknown kinds on its own).
pub fn check_size(name: &str, len: usize) -> Result<(), String> {
    match over_cap(name, len) {
        Some(excess) => Err(format!("its {name} document is {excess}")),
        None => Ok(()),
    }
}

/// `2000000 bytes, over the 1 MiB cap for npm-version` when a document of
/// `len` bytes of kind `name` is over its cap.
#[must_use]
pub fn over_cap(name: &str, len: usize) -> Option<String> {
    let kind = kind(name).filter(|kind| len as u64 > kind.max_bytes)?;
    Some(format!("{len} bytes, over the {} cap for {name}", describe_bytes(kind.max_bytes)))
}

/// `64 KiB`, `1 MiB`: the caps are whole KiB or MiB.
fn describe_bytes(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) { format!("{} MiB", bytes / MIB) } else { format!("{} KiB", bytes / KIB) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_cap_and_the_list_of_kinds_is_the_table() {
        assert_eq!(super::super::EVIDENCE_KINDS.to_vec(), EVIDENCE.iter().map(|k| k.name).collect::<Vec<_>>());
        for kind in &EVIDENCE {
            assert!(check_size(kind.name, kind.max_bytes as usize).is_ok());
            let err = check_size(kind.name, kind.max_bytes as usize + 1).unwrap_err();
            assert!(err.contains(kind.name) && err.contains("over the"), "{err}");
        }
        assert_eq!(
            check_size("npm-signatures", 70_000).unwrap_err(),
            "its npm-signatures document is 70000 bytes, over the 64 KiB cap for npm-signatures"
        );
    }
}
