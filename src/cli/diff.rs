//! `airlock diff`

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{HeldArgs, Output};
use crate::error::Result;
use crate::inspect::{InspectEntry, inspect};

/// Show what changed between two bundles (no key needed; nothing is verified)
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older bundle
    pub old: PathBuf,
    /// The newer bundle
    pub new: PathBuf,
    #[command(flatten)]
    pub held: HeldArgs,
}

#[derive(Serialize)]
struct Change {
    #[serde(rename = "change")]
    kind: &'static str,
    ecosystem: String,
    name: String,
    version: Option<String>,
    path: String,
}

#[derive(Serialize)]
struct DiffReport {
    old: String,
    new: String,
    old_sequence: u64,
    new_sequence: u64,
    changes: Vec<Change>,
}

impl DiffArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let held = self.held.source()?;
        let (old, new) = (inspect(&self.old, held.as_ref())?, inspect(&self.new, held.as_ref())?);
        let key = |e: &InspectEntry| (e.ecosystem.clone(), e.path.clone());
        let before: BTreeMap<_, _> = old.entries.iter().map(|e| (key(&e), e)).collect();
        let after: BTreeMap<_, _> = new.entries.iter().map(|e| (key(&e), e)).collect();
        let change = |kind, e: &InspectEntry| Change {
            kind,
            ecosystem: e.ecosystem.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            path: e.path.clone(),
        };
        let mut changes = Vec::new();
        for (k, e) in &after {
            match before.get(k) {
                None => changes.push(change("added", e)),
                Some(o) if o.blake3 != e.blake3 => changes.push(change("changed", e)),
                Some(_) => {}
            }
        }
        for (k, e) in &before {
            if !after.contains_key(k) {
                changes.push(change("removed", e));
            }
        }
        out.line(format!("{} (sequence {}) -> {} (sequence {})", old.bundle, old.sequence, new.bundle, new.sequence));
        for c in &changes {
            let mark = match c.kind {
                "added" => '+',
                "removed" => '-',
                _ => '~',
            };
            let version = c.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
            out.line(format!("{mark} {} {}{}  {}", c.ecosystem, c.name, version, c.path));
        }
        if changes.is_empty() {
            out.line("no changes");
        }
        out.report(
            "diff",
            &DiffReport {
                old: old.bundle.clone(),
                new: new.bundle.clone(),
                old_sequence: old.sequence,
                new_sequence: new.sequence,
                changes,
            },
        );
        Ok(())
    }
}
