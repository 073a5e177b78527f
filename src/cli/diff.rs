//! `airlock diff`

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{HeldArgs, Output};
use crate::error::Result;
use crate::inspect::inspect;
use crate::manifest::Entry;

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
        // Both sides sorted by place and walked together: maps of each
        // side's entries as reports took some 1 KB an entry.
        let (mut before, mut after) =
            (old.entries.entries().by_place().peekable(), new.entries.entries().by_place().peekable());
        let change = |kind, e: &Entry| Change {
            kind,
            ecosystem: e.ecosystem.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            path: e.path.to_string(),
        };
        let (mut changes, mut removed) = (Vec::new(), Vec::new());
        loop {
            let order = match (before.peek(), after.peek()) {
                (Some(o), Some(e)) => o.place().cmp(&e.place()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => break,
            };
            let (old, new) =
                (order.is_le().then(|| before.next()).flatten(), order.is_ge().then(|| after.next()).flatten());
            match (old, new) {
                (Some(o), None) => removed.push(change("removed", &o)),
                (None, Some(e)) => changes.push(change("added", &e)),
                (Some(o), Some(e)) if o.blob != e.blob => changes.push(change("changed", &e)),
                _ => {}
            }
        }
        changes.append(&mut removed);
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
