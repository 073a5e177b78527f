//! `airlock inspect`

use std::path::PathBuf;

use clap::Args;

use super::{HeldArgs, Output, bytes};
use crate::durable::Existing;
use crate::error::Result;
use crate::inspect::inspect;

/// Show what a bundle holds and who claims to have signed it (no key needed, nothing verified)
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle file
    pub bundle: PathBuf,
    /// Also write a CycloneDX 1.6 SBOM (JSON) of the bundle's contents to this file (a new file, unless --force)
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// With --sbom: replace FILE if it exists (never the bundle itself, nor anything but a regular file)
    #[arg(long, requires = "sbom")]
    pub force: bool,
    #[command(flatten)]
    pub held: HeldArgs,
}

impl InspectArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        if let Some(path) = &self.sbom {
            // Before reading anything: the SBOM may replace neither the bundle nor a volume of it.
            let mut inputs = vec![self.bundle.clone()];
            if self.bundle.is_dir() {
                inputs.extend(crate::verify::set::expand(std::slice::from_ref(&self.bundle))?);
            }
            let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
            crate::durable::check_output(path, "--sbom", Existing::unless(self.force), &inputs)?;
        }
        let r = inspect(&self.bundle, self.held.source()?.as_ref())?;
        if let Some(path) = &self.sbom {
            crate::durable::write_atomically_with(path, 0o644, |out| crate::sbom::write_cyclonedx(&r, out))?;
        }
        out.line(format!("bundle    {} (format {}, {})", r.bundle, r.format, r.tool));
        out.line(format!("manifest  {}", r.manifest_digest));
        out.line(format!("channel   {} sequence {}", r.channel, r.sequence));
        out.line(format!("created   {}  expires {}", r.created, r.expires));
        out.line(format!("signers   {} (claimed, not verified: use `airlock verify`)", r.claimed_signers.join(", ")));
        if let Some(segments) = &r.segments {
            let left_out = segments.named - segments.carried;
            let read =
                if left_out > 0 { format!(", {left_out} left out and read from the mirror") } else { String::new() };
            out.line(format!("segments  {} carried of {} named{read}", segments.carried, segments.named));
        }
        out.line(format!("entries   {} ({})", r.entries.len(), bytes(r.bytes)));
        for e in r.entries.iter() {
            let version = e.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
            out.line(format!("  {:<6} {}{}  {}  {}", e.ecosystem, e.name, version, e.path, bytes(e.size)));
            let digests: Vec<String> = std::iter::once(format!("blake3:{}", &e.blake3[..16]))
                .chain(e.digests.iter().map(|(k, v)| format!("{k}:{}", &v[..16.min(v.len())])))
                .collect();
            out.line(format!("         digests  {}", digests.join(" ")));
            if let Some(last) = e.pieces.last() {
                let (first, end) = (e.pieces[0].volume, last.volume);
                out.line(format!("         cut into {} pieces across volumes {first}-{end}:", e.pieces.len()));
                for p in &e.pieces {
                    out.line(format!(
                        "           volume {:<4} at {:>14}  {:>10}  blake3:{}",
                        p.volume,
                        p.offset,
                        bytes(p.size),
                        &p.blake3[..16]
                    ));
                }
            }
            if !e.evidence.is_empty() || !e.missing.is_empty() {
                let missing: Vec<&str> = e.missing.iter().map(|m| m.split(' ').next().unwrap_or(m)).collect();
                let present = if e.evidence.is_empty() { "-".to_owned() } else { e.evidence.join(", ") };
                let absent = if missing.is_empty() { "-".to_owned() } else { missing.join(", ") };
                out.line(format!("         evidence {present}; missing {absent}"));
            }
        }
        out.report("inspect", &r);
        Ok(())
    }
}
