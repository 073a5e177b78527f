//! What `verify` and `import` report: the bundle, its signers, and each
//! entry's five layers (the JSON of `--json` and the lines people read).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::{VerifiedManifest, set};
use crate::ecosystem::Outcome;
use crate::manifest::{EntryRef, Manifest};
use crate::policy::Policy;
use crate::time::rfc3339;

/// What a successful verification established.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub bundle: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub created: String,
    pub expires: String,
    pub trusted_signers: Vec<String>,
    /// Signatures by keys the policy revoked, which were not counted.
    pub revoked_signers: Vec<String>,
    pub entries: usize,
    pub blobs: usize,
    pub bytes: u64,
    /// Blobs of an incremental bundle that earlier bundles carried: checked by
    /// `import` against the mirror, not by `verify`.
    pub not_carried: usize,
    /// Per package, each of the five layers and its result.
    pub packages: PackageReports,
    /// The volumes of a split bundle: which were read, rebuilt, missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<set::VolumesReport>,
}

/// What the digest, provenance and policy layers found for one entry. The
/// transfer and content layers say the same of every entry of a verified
/// bundle and the entry's names are in the manifest, so neither is repeated
/// here: a bundle may have tens of thousands of entries.
#[derive(Debug, Clone)]
pub struct EntryFindings {
    pub digest: Cow<'static, str>,
    pub provenance: Cow<'static, str>,
    pub policy: Cow<'static, str>,
    /// The digest, provenance and policy layers' results, in that order.
    pub outcomes: [Outcome; 3],
}

/// Every entry's findings, in manifest order, in 16 bytes an entry: each
/// text is kept once, as the entries of a bundle mostly share theirs word
/// for word (every plain file's, every wheel's "sha256 match").
#[derive(Debug, Default)]
pub struct Findings {
    texts: Vec<Cow<'static, str>>,
    /// Where each text is in `texts`, while findings are added.
    index: HashMap<Cow<'static, str>, u32>,
    rows: Vec<([u32; 3], [Outcome; 3])>,
}

impl Findings {
    /// Adds the next entry's findings.
    pub fn push(&mut self, found: EntryFindings) {
        let EntryFindings { digest, provenance, policy, outcomes } = found;
        let texts = [digest, provenance, policy].map(|text| self.text(text));
        self.rows.push((texts, outcomes));
    }

    fn text(&mut self, text: Cow<'static, str>) -> u32 {
        if let Some(&at) = self.index.get(&text) {
            return at;
        }
        let at = u32::try_from(self.texts.len()).expect("fewer than 2^32 texts");
        self.texts.push(text.clone());
        self.index.insert(text, at);
        at
    }

    /// Done adding: the lookup of texts goes.
    #[must_use]
    pub fn done(mut self) -> Arc<Self> {
        self.index = HashMap::new();
        self.texts.shrink_to_fit();
        self.rows.shrink_to_fit();
        Arc::new(self)
    }

    /// The findings of each entry, in order: its three texts and outcomes.
    fn iter(&self) -> impl Iterator<Item = ([&str; 3], [Outcome; 3])> {
        self.rows.iter().map(|(texts, outcomes)| (texts.map(|at| &*self.texts[at as usize]), *outcomes))
    }
}

/// Every entry's report, built from the manifest and the findings as it is read.
#[derive(Debug, Clone)]
pub struct PackageReports {
    manifest: Arc<Manifest>,
    findings: Arc<Findings>,
    transfer: String,
    /// `false` in the copy of a report whose entries were written apart
    /// (`--json-lines`): it lists none.
    listed: bool,
}

/// A report that lists every entry (`verify`, `import`): a script reading
/// JSON Lines gets each entry on a line of its own, written as it is
/// encoded, then the report without them.
pub trait ListsEntries: Serialize {
    /// The entries' reports.
    fn entries(&self) -> &PackageReports;
    /// The same report listing no entries.
    #[must_use]
    fn unlisted(&self) -> Self;
}

impl ListsEntries for VerifyReport {
    fn entries(&self) -> &PackageReports {
        &self.packages
    }
    fn unlisted(&self) -> Self {
        VerifyReport { packages: self.packages.unlisted(), ..self.clone() }
    }
}

/// What was established for one entry, layer by layer (DESIGN.md's table).
#[derive(Debug, Clone)]
pub struct EntryReport<'a> {
    /// The entry: its ecosystem, name, version and path are the report's.
    entry: EntryRef<'a>,
    pub transfer: &'a str,
    pub content: &'a str,
    pub digest: &'a str,
    pub provenance: &'a str,
    pub policy: &'a str,
    /// Each layer's result as a word scripts can match on.
    pub layers: Layers,
}

impl EntryReport<'_> {
    #[must_use]
    pub fn ecosystem(&self) -> &str {
        &self.entry.ecosystem
    }
    #[must_use]
    pub fn name(&self) -> &str {
        &self.entry.name
    }
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.entry.version.as_deref()
    }
    #[must_use]
    pub fn path(&self) -> &str {
        self.entry.path.as_str()
    }
}

/// An [`EntryReport`] as it serializes: the entry's fields first.
#[derive(Serialize)]
struct EntryReportFields<'a> {
    ecosystem: &'a str,
    name: &'a str,
    version: Option<&'a str>,
    path: &'a str,
    transfer: &'a str,
    content: &'a str,
    digest: &'a str,
    provenance: &'a str,
    policy: &'a str,
    layers: &'a Layers,
}

impl Serialize for EntryReport<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        EntryReportFields {
            ecosystem: self.ecosystem(),
            name: self.name(),
            version: self.version(),
            path: self.path(),
            transfer: self.transfer,
            content: self.content,
            digest: self.digest,
            provenance: self.provenance,
            policy: self.policy,
            layers: &self.layers,
        }
        .serialize(serializer)
    }
}

/// The five layers' results of one entry.
#[derive(Debug, Clone, Serialize)]
pub struct Layers {
    pub transfer: Outcome,
    pub content: Outcome,
    pub digest: Outcome,
    pub provenance: Outcome,
    pub policy: Outcome,
}

impl PackageReports {
    fn new(verified: &VerifiedManifest) -> Self {
        Self::of(verified.manifest.clone(), verified.packages.clone(), verified.trusted_signers.len())
    }

    /// The reports of `manifest`'s entries from their findings, in order.
    pub(super) fn of(manifest: Arc<Manifest>, findings: Arc<Findings>, signers: usize) -> Self {
        PackageReports { manifest, findings, transfer: format!("ok ({signers} trusted signer(s))"), listed: true }
    }

    /// These reports, listing no entry.
    #[must_use]
    pub fn unlisted(&self) -> Self {
        PackageReports { listed: false, ..self.clone() }
    }

    /// The entries' reports, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = EntryReport<'_>> {
        let listed = if self.listed { self.manifest.entries.len() } else { 0 };
        self.manifest.entries.iter().take(listed).zip(self.findings.iter()).map(
            |(entry, ([digest, provenance, policy], outcomes))| {
                EntryReport {
                    entry,
                    transfer: &self.transfer,
                    content: "ok (BLAKE3 and size)",
                    digest,
                    provenance,
                    policy,
                    layers: Layers {
                        // A report exists only for a bundle whose envelope and content verified.
                        transfer: Outcome::Ok,
                        content: Outcome::Ok,
                        digest: outcomes[0],
                        provenance: outcomes[1],
                        policy: outcomes[2],
                    },
                }
            },
        )
    }
}

impl crate::error::EntryReports for PackageReports {
    fn each(&self, each: &mut dyn FnMut(serde_json::Value) -> std::io::Result<()>) -> std::io::Result<()> {
        self.iter().try_for_each(|report| each(serde_json::to_value(&report).expect("reports serialize")))
    }
}

impl Serialize for PackageReports {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl VerifyReport {
    /// The report on `bundle` (as the operator named it).
    #[must_use]
    pub fn new(
        bundle: &str,
        verified: &VerifiedManifest,
        policy: &Policy,
        volumes: Option<set::VolumesReport>,
    ) -> Self {
        let m = &verified.manifest;
        VerifyReport {
            volumes,
            bundle: bundle.to_owned(),
            manifest_digest: verified.digest.to_hex(),
            channel: m.channel.clone(),
            sequence: m.sequence,
            created: rfc3339(m.created),
            expires: rfc3339(m.expires),
            trusted_signers: verified.trusted_signers.iter().map(|id| policy.describe(id)).collect(),
            revoked_signers: verified.revoked_signers.iter().map(|id| policy.describe(id)).collect(),
            entries: m.entries.len(),
            blobs: m.blobs.len(),
            bytes: m.blob_bytes(),
            not_carried: m.blobs_not_carried().count(),
            packages: PackageReports::new(verified),
        }
    }
}
