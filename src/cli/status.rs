//! `airlock status`

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{Output, bytes};
use crate::error::Result;
use crate::mirror::WaitingImport;

/// Show a mirror's channels, last imports, contents, and what the next bundle of each channel must be
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The mirror: its folder, or s3://BUCKET/PREFIX
    #[arg(long, value_name = "MIRROR", env = "AIRLOCK_MIRROR", hide_env_values = true)]
    pub mirror: PathBuf,
}

#[derive(Serialize)]
struct ChannelStatus {
    channel: String,
    last_sequence: u64,
    last_manifest: String,
    last_import: String,
    next_sequence: u64,
    /// The last import's manifest segments are all held (a local mirror, format 2).
    segments_held: Option<bool>,
}

#[derive(Serialize)]
struct StatusReport {
    mirror: String,
    generation: Option<u64>,
    imports: usize,
    channels: Vec<ChannelStatus>,
    /// Per ecosystem: entries and bytes published.
    contents: BTreeMap<String, crate::mirror::Tally>,
    /// Split bundles whose import waits for more volumes.
    waiting: Vec<WaitingImport>,
}

impl StatusArgs {
    /// Whether the last import `digest`'s segments are held (local mirrors only).
    fn segments_held(&self, digest: &str) -> Result<Option<bool>> {
        match crate::id::ContentId::from_hex(digest) {
            Some(id) if !crate::mirror::is_bucket(&self.mirror) => crate::mirror::holds_segments_of(&self.mirror, &id),
            _ => Ok(None),
        }
    }

    pub fn run(&self, out: &Output) -> Result<()> {
        let published = crate::mirror::read_published(&self.mirror, crate::now())?;
        let state = &published.state;
        let mut channels: BTreeMap<&str, &crate::mirror::ImportRecord> = BTreeMap::new();
        for record in &state.imports {
            let slot = channels.entry(record.channel.as_str()).or_insert(record);
            if record.sequence >= slot.sequence {
                *slot = record;
            }
        }
        let report = StatusReport {
            mirror: published.location.clone(),
            generation: published.generation,
            imports: state.imports.len(),
            channels: channels
                .values()
                .map(|r| {
                    Ok(ChannelStatus {
                        channel: r.channel.clone(),
                        last_sequence: r.sequence,
                        last_manifest: r.manifest_digest.clone(),
                        last_import: r.imported.clone(),
                        next_sequence: r.sequence + 1,
                        segments_held: self.segments_held(&r.manifest_digest)?,
                    })
                })
                .collect::<Result<_>>()?,
            contents: published.contents.clone(),
            waiting: published.waiting.clone(),
        };
        out.line(format!(
            "mirror    {} (generation {}, {} imports)",
            report.mirror,
            report.generation.map_or("none".into(), |g| g.to_string()),
            report.imports
        ));
        for c in &report.channels {
            out.line(format!(
                "channel   {}: last sequence {} (manifest {}, imported {}); next bundle must be sequence {} chained to it",
                c.channel,
                c.last_sequence,
                &c.last_manifest[..16],
                c.last_import,
                c.next_sequence
            ));
            if c.segments_held == Some(false) {
                out.line(format!(
                    "note      channel {}: manifest segments of the last import are missing, so its next incremental bundle will be refused; import that bundle again (it keeps them) or ask for a --full bundle",
                    c.channel
                ));
            }
        }
        for (ecosystem, c) in &report.contents {
            let files = if c.entries == 1 { "file" } else { "files" };
            out.line(format!("contents  {ecosystem}: {} {files}, {}", c.entries, bytes(c.bytes)));
        }
        for w in &report.waiting {
            out.line(format!(
                "waiting   bundle {} (channel {}, sequence {}): {} of {} volumes verified and kept; give the rest to `airlock import` before {}",
                w.bundle, w.channel, w.sequence, w.volumes_done, w.volumes, w.expires
            ));
        }
        out.report("status", &report);
        Ok(())
    }
}
