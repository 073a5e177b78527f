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

/// `entries` in the order of their places.
fn by_place(entries: &[Entry]) -> Vec<&Entry> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.place().cmp(&b.place()));
    sorted
}

impl DiffArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let held = self.held.source()?;
        let (old, new) = (inspect(&self.old, held.as_ref())?, inspect(&self.new, held.as_ref())?);
        // Both sides sorted by place and walked together: maps of each
        // side's entries as reports took some 1 KB an entry.
        let (before, after) = (by_place(old.entries.decoded()), by_place(new.entries.decoded()));
        let change = |kind, e: &Entry| Change {
            kind,
            ecosystem: e.ecosystem.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            path: e.path.to_string(),
        };
        let (mut changes, mut removed) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < before.len() || j < after.len() {
            let order = match (before.get(i), after.get(j)) {
                (Some(o), Some(e)) => o.place().cmp(&e.place()),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => removed.push(change("removed", before[i])),
                std::cmp::Ordering::Greater => changes.push(change("added", after[j])),
                std::cmp::Ordering::Equal if before[i].blob != after[j].blob => {
                    changes.push(change("changed", after[j]));
                }
                std::cmp::Ordering::Equal => {}
            }
            i += usize::from(order.is_le());
            j += usize::from(order.is_ge());
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
