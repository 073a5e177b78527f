//! The kinds of upstream evidence a manifest may carry, and the most bytes
//! one document of each kind may have (`evidence-kind` in
//! schemas/manifest.cddl; the README's table says the same).
//!
//! The manifest knows no kind itself: each ecosystem lists its own, with
//! their caps (`Ecosystem::evidence_kinds`), and whoever decodes or checks
//! a manifest passes the lookup ([`KindOf`]; `ecosystem::ManifestExt` does
//! it for this build's ecosystems).
//!
//! The caps are the one place these limits live: `Manifest::check` refuses
//! a manifest with a larger document (so an importer refuses it before any
//! parser sees it, and an exporter never writes it), and the exporters
//! check what a registry serves against them while they collect it.
//!
//! Each cap is far above what the registries serve (measured, in the
//! ecosystems' tables) and low enough that parsing one document of the worst
//! shape (`[0,0,0,…]`: a JSON value in memory is 16 to 32 times its two
//! bytes) costs tens of MiB, not the gigabyte a document the size of the
//! manifest cap would: documents are parsed one at a time.

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

/// The kind called by a name, if the reader knows it.
pub type KindOf = fn(&str) -> Option<&'static EvidenceKind>;

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;

/// Whether a document of `len` bytes of kind `name` fits its cap; the error
/// says how large it is and what the cap is. An unknown kind has no cap
/// here (`Manifest::check` refuses unknown kinds on its own).
pub fn check_size(kinds: KindOf, name: &str, len: usize) -> Result<(), String> {
    match over_cap(kinds, name, len) {
        Some(excess) => Err(format!("its {name} document is {excess}")),
        None => Ok(()),
    }
}

/// `2000000 bytes, over the 1 MiB cap for npm-version` when a document of
/// `len` bytes of kind `name` is over its cap.
#[must_use]
pub fn over_cap(kinds: KindOf, name: &str, len: usize) -> Option<String> {
    let kind = kinds(name).filter(|kind| len as u64 > kind.max_bytes)?;
    Some(format!("{len} bytes, over the {} cap for {name}", describe_bytes(kind.max_bytes)))
}

/// `64 KiB`, `1 MiB`: the caps are whole KiB or MiB.
fn describe_bytes(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) { format!("{} MiB", bytes / MIB) } else { format!("{} KiB", bytes / KIB) }
}
