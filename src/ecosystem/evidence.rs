//! What the ecosystems share on the trust side: the evidence kinds of every
//! ecosystem of this build (the manifest knows none itself), and the types
//! an ecosystem's evidence verification takes and fills in. Verification
//! (`verify`) calls each ecosystem through [`Ecosystem::verify_evidence`];
//! nothing here depends on `verify`.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::ALL;
use crate::manifest::Manifest;
use crate::manifest::evidence::{self as kinds, EvidenceKind};
use crate::manifest::segments::{SegmentBytes, SegmentSource, Undecoded};
use crate::policy::Rules;
use crate::provenance::sigstore::{Attested, Findings, SigstoreRoot};

/// Every evidence kind of this build's ecosystems, with its cap, in the
/// ecosystems' order.
pub static EVIDENCE: LazyLock<Vec<&'static EvidenceKind>> =
    LazyLock::new(|| ALL.iter().flat_map(|e| e.evidence_kinds()).collect());

/// The evidence kind called `name`, if an ecosystem of this build has it
/// (a [`KindOf`](crate::manifest::evidence::KindOf)).
#[must_use]
pub fn kind(name: &str) -> Option<&'static EvidenceKind> {
    EVIDENCE.iter().copied().find(|k| k.name == name)
}

/// `2000000 bytes, over the 1 MiB cap for npm-version` when a document of
/// `len` bytes of kind `name` is over its cap.
#[must_use]
pub fn over_cap(name: &str, len: usize) -> Option<String> {
    kinds::over_cap(kind, name, len)
}

/// Whether a document of `len` bytes of kind `name` fits its cap.
pub fn check_size(name: &str, len: usize) -> Result<(), String> {
    kinds::check_size(kind, name, len)
}

/// Decoding and checking a manifest with this build's evidence kinds: what
/// every reader of a manifest calls (`Manifest::from_bytes`, `.check()`
/// with this trait in scope).
pub trait ManifestExt: Sized {
    /// Decodes canonical bytes of a format 1 manifest and checks the rules the schema cannot say.
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
    /// Decodes a manifest frame's signed payload and, in format 2, its
    /// segments (taken or borrowed: taken, they are given back as decoded);
    /// checks the rules.
    fn decode<S: SegmentBytes>(
        payload: &[u8],
        segments: Option<S>,
        held: &dyn SegmentSource,
    ) -> Result<Self, Undecoded>;
    /// The cross-field rules, the evidence kinds and their caps.
    fn check(&self) -> Result<(), String>;
}

impl ManifestExt for Manifest {
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Manifest::from_bytes_with(bytes, kind)
    }

    fn decode<S: SegmentBytes>(
        payload: &[u8],
        segments: Option<S>,
        held: &dyn SegmentSource,
    ) -> Result<Self, Undecoded> {
        Manifest::decode_with(payload, segments, held, kind)
    }

    fn check(&self) -> Result<(), String> {
        self.check_with(kind)
    }
}

/// The trust roots an ecosystem's evidence is checked against: the
/// Sigstore root the policy pins and the policy's rules for the ecosystem.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub sigstore: Option<&'a SigstoreRoot>,
    pub rules: Option<&'a Rules>,
}

impl Trust<'_> {
    /// Whether the rules require evidence of `kind`.
    #[must_use]
    pub fn requires(&self, kind: &str) -> bool {
        self.rules.is_some_and(|r| r.requires(kind))
    }
}

/// One layer's result, for scripts (the report's prose stands beside it).
/// `failed` appears only in the report of a rejected bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Checked and it holds.
    Ok,
    /// Checked and it does not hold: the entry was refused.
    Failed,
    /// The evidence is not in the bundle (the report says where the exporter looked).
    Absent,
    /// Nothing to check: the policy requires nothing of this layer.
    NotRequired,
    /// Carried but not checked here (no pinned root for it, or another entry vouches for it).
    NotChecked,
}

impl Outcome {
    /// The word reports use (the same as its JSON form).
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Absent => "absent",
            Outcome::NotRequired => "not-required",
            Outcome::NotChecked => "not-checked",
        }
    }

    /// The result of two independent pieces of evidence for one layer: the
    /// better of the two (one verified signature is a verified layer).
    #[must_use]
    pub fn either(self, other: Outcome) -> Outcome {
        let rank = |o: Outcome| match o {
            Outcome::Failed => 4,
            Outcome::Ok => 3,
            Outcome::NotChecked => 2,
            Outcome::NotRequired => 1,
            Outcome::Absent => 0,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

/// What an ecosystem established of an entry's upstream provenance.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// What the report says.
    pub text: Cow<'static, str>,
    /// The layer's result.
    pub outcome: Outcome,
    /// The attestations that verified, for the policy's publisher rules.
    pub attested: Vec<Attested>,
}

impl Provenance {
    /// Provenance that verified against a pinned root.
    pub fn verified(text: impl Into<Cow<'static, str>>, attested: Vec<Attested>) -> Self {
        Provenance { text: text.into(), outcome: Outcome::Ok, attested }
    }

    /// No provenance in the bundle.
    pub fn absent(text: impl Into<Cow<'static, str>>) -> Self {
        Provenance { text: text.into(), outcome: Outcome::Absent, attested: Vec::new() }
    }

    /// Provenance carried but not checked here, or vouched for by another entry.
    pub fn not_checked(text: impl Into<Cow<'static, str>>) -> Self {
        Provenance { text: text.into(), outcome: Outcome::NotChecked, attested: Vec::new() }
    }

    /// Provenance with an outcome worked out by the ecosystem.
    pub fn with(outcome: Outcome, text: impl Into<Cow<'static, str>>, attested: Vec<Attested>) -> Self {
        Provenance { text: text.into(), outcome, attested }
    }
}

/// What the report says of evidence the entry does not carry: where the
/// exporter looked, if it did.
#[must_use]
pub fn absent(entry: &crate::manifest::Entry, kind: &str, absent: &str) -> String {
    match entry.missing.iter().find(|m| m.kind == kind) {
        Some(m) => format!("{absent} (looked for at {})", m.looked),
        None => absent.to_owned(),
    }
}

/// The report's words for the attestations a document held.
#[must_use]
pub fn describe(findings: &Findings) -> String {
    let mut parts: Vec<String> = findings.verified.iter().map(|a| format!("{a} verified")).collect();
    parts.extend(findings.unchecked.iter().cloned());
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_cap_and_one_ecosystem() {
        let names: Vec<&str> = EVIDENCE.iter().map(|k| k.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for kind in EVIDENCE.iter() {
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
