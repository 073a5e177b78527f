//! `inspect`: what a bundle says about itself, without any key.
//!
//! Nothing here is verified against a policy: the report says which keys
//! *claim* to have signed. Use `verify` to decide trust.

use std::fs::File;
use std::path::Path;

use serde::Serialize;

use crate::bundle::reader::VolumeReader;
use crate::ecosystem::ManifestExt as _;
use crate::error::{Error, Result};
use crate::id::ContentId;
use crate::manifest::segments::SegmentSource;
use crate::manifest::{Blob, Entries, Manifest};
use crate::sign::envelope;
use crate::time::rfc3339;

/// The manifest of a bundle, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub bundle: String,
    pub manifest_digest: String,
    pub format: u32,
    pub tool: String,
    pub channel: String,
    pub sequence: u64,
    pub previous: Option<String>,
    pub created: String,
    pub expires: String,
    pub claimed_signers: Vec<String>,
    pub volumes: u32,
    pub bytes: u64,
    /// Format 2: the segments the root names, and how many the bundle carries.
    pub segments: Option<InspectSegments>,
    pub entries: InspectEntries,
}

/// How the manifest of a format 2 bundle is cut.
#[derive(Debug, Clone, Serialize)]
pub struct InspectSegments {
    pub named: usize,
    /// Those the bundle carries; the others an earlier bundle of the channel
    /// carried, and were read from the mirror given.
    pub carried: usize,
}

/// The manifest's entries, each made into an [`InspectEntry`] as it is
/// read: made all at once they took some 500 bytes an entry beside the
/// manifest's own.
#[derive(Debug, Clone)]
pub struct InspectEntries {
    entries: Entries,
    /// The blobs cut into pieces, by id, each entry's pieces are looked up
    /// in (searching the blob table for each entry was entries x blobs).
    chunked: Vec<Blob>,
}

impl InspectEntries {
    /// `entries`, with the pieces of those of `blobs` that are cut.
    #[must_use]
    pub fn new(entries: Entries, blobs: Vec<Blob>) -> Self {
        let mut chunked: Vec<Blob> = blobs.into_iter().filter(|b| !b.pieces.is_empty()).collect();
        chunked.sort_unstable_by_key(|b| b.id);
        InspectEntries { entries, chunked }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = InspectEntry> + '_ {
        self.entries.iter().map(|e| InspectEntry {
            ecosystem: e.ecosystem.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            path: e.path.to_string(),
            size: e.size,
            blake3: e.blob.to_hex(),
            digests: e.digests.iter().map(|(k, v)| (k.clone(), hex::encode(&v.0))).collect(),
            source: e.source.clone(),
            evidence: e.evidence.iter().map(|ev| ev.kind.clone()).collect(),
            missing: e.missing.iter().map(|m| format!("{} ({})", m.kind, m.looked)).collect(),
            pieces: self.pieces_of(&e.blob),
        })
    }

    /// The entries as the manifest gives them.
    #[must_use]
    pub fn entries(&self) -> &Entries {
        &self.entries
    }

    fn pieces_of(&self, id: &ContentId) -> Vec<InspectPiece> {
        let Ok(at) = self.chunked.binary_search_by_key(id, |b| b.id) else { return Vec::new() };
        self.chunked[at]
            .pieces_at()
            .map(|(offset, p)| InspectPiece { volume: p.volume + 1, offset, size: p.size, blake3: p.id.to_hex() })
            .collect()
    }
}

impl Serialize for InspectEntries {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// One entry of the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct InspectEntry {
    pub ecosystem: String,
    pub name: String,
    pub version: Option<String>,
    pub path: String,
    pub size: u64,
    pub blake3: String,
    pub digests: std::collections::BTreeMap<String, String>,
    pub source: Option<String>,
    pub evidence: Vec<String>,
    pub missing: Vec<String>,
    /// A blob larger than a volume: its pieces in order (absent for a blob carried whole).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pieces: Vec<InspectPiece>,
}

/// One piece of a chunked blob.
#[derive(Debug, Clone, Serialize)]
pub struct InspectPiece {
    /// The data volume carrying it, from 1 as its file is named.
    pub volume: u32,
    pub offset: u64,
    pub size: u64,
    pub blake3: String,
}

/// Reads the manifest of the bundle at `path`; the segments an incremental
/// bundle leaves out from `held`.
pub fn inspect(path: &Path, held: &dyn SegmentSource) -> Result<InspectReport> {
    // A split bundle's folder: every volume holds the same manifest; read
    // one, and name the bundle by the folder the operator gave.
    let label = path.display().to_string();
    let expanded;
    let path = if path.is_dir() {
        expanded = crate::verify::set::expand(&[path.to_path_buf()])?;
        expanded[0].as_path()
    } else {
        path
    };
    // Errors name the volume file read.
    let subject = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::input(path, "bundle", &e))?;
    let (_, frame) = VolumeReader::open(file, &subject)?;
    let opened =
        envelope::open_untrusted(&frame.envelope, envelope::MANIFEST).map_err(|r| Error::rejected(&subject, r))?;
    let m = Manifest::decode(opened.payload, frame.segments(), held).map_err(|e| e.into_error(&subject))?;
    Ok(InspectReport {
        bundle: label,
        manifest_digest: ContentId::of(opened.payload).to_hex(),
        format: m.format,
        tool: m.tool.clone(),
        channel: m.channel.clone(),
        sequence: m.sequence,
        previous: m.previous.map(|p| p.to_hex()),
        created: rfc3339(m.created),
        expires: rfc3339(m.expires),
        claimed_signers: opened.claimed_signers.iter().map(super::id::KeyId::short).collect(),
        volumes: m.volumes,
        bytes: m.blob_bytes(),
        segments: frame
            .segments()
            .and_then(|_| crate::manifest::segments::named(opened.payload).ok())
            .map(|refs| InspectSegments { named: refs.len(), carried: refs.iter().filter(|r| r.carried).count() }),
        entries: InspectEntries::new(m.entries, m.blobs),
    })
}
