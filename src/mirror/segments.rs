//! The manifest segments of the bundles a mirror imported (format 2), kept
//! by BLAKE3 so that an incremental bundle may leave out the segments its
//! channel's previous bundle carried (`carried: false` in the root):
//!
//! ```text
//! MIRROR/.airlock/segments/<blake3>     a segment, or a root (named by its digest)
//! s3://BUCKET/PREFIX/.airlock/segments/<blake3>
//! ```
//!
//! An import keeps its root and every segment it carries before it
//! publishes; `gc` keeps what the latest root of each channel names. What is
//! read back is checked against the signed root that names it, like a
//! carried segment, so a damaged or planted file here can only make an
//! import fail, never change what it publishes.

use std::path::Path;
use std::sync::Arc;

use super::{META, State};
use crate::error::Result;
use crate::id::ContentId;
use crate::manifest::folder::SegmentFolder;
use crate::manifest::segments::{Root, SegmentSource};

pub use crate::manifest::folder::{CarriedSegments, KeptSegments};

/// Where the segments are, under the mirror's `.airlock`.
const SEGMENTS: &str = "segments";

/// The segments of the local mirror at `mirror`. Read without the lock
/// (what is read is checked against a signed root; a file `gc` removed
/// meanwhile is "not held", and the import says what to do).
#[must_use]
pub fn local_segments(mirror: &Path) -> SegmentFolder {
    SegmentFolder::new(mirror.join(META).join(SEGMENTS), missing_advice(&mirror.display().to_string()))
}

/// What to do about a segment the mirror `mirror` does not hold.
pub(super) fn missing_advice(mirror: &str) -> String {
    format!(
        "the mirror {mirror} does not hold it: import the channel's bundles in order (the one this bundle follows first, again if it was imported already), or ask for a --full bundle"
    )
}

/// Removes every segment and root of the local mirror at `mirror` that no
/// channel's latest root names (and what a killed import left); returns
/// (files, bytes) removed.
pub(super) fn collect_local(mirror: &Path, state: &State, dry_run: bool) -> Result<(usize, u64)> {
    let folder = local_segments(mirror);
    let live = live_segments(state, |id| folder.root(id))?;
    folder.retain(&live, dry_run)
}

/// The roots of each channel's latest import and every segment they name.
pub(super) fn live_segments(
    state: &State,
    read_root: impl Fn(&ContentId) -> Result<Option<Root>>,
) -> Result<std::collections::BTreeSet<ContentId>> {
    let mut latest: std::collections::BTreeMap<&str, &super::ImportRecord> = std::collections::BTreeMap::new();
    for record in &state.imports {
        let newer = latest.get(record.channel.as_str()).is_none_or(|held| held.sequence < record.sequence);
        if newer {
            latest.insert(&record.channel, record);
        }
    }
    let mut live = std::collections::BTreeSet::new();
    for record in latest.values() {
        let Some(digest) = ContentId::from_hex(&record.manifest_digest) else { continue };
        if let Some(root) = read_root(&digest)? {
            live.insert(digest);
            live.extend(root.blobs.iter().chain(&root.entries).map(|r| r.id));
        }
    }
    Ok(live)
}

/// Whether the local mirror at `mirror` holds the root `digest` and every
/// segment it names with its size (what the channel's next incremental
/// bundle leaves out); `None` when it holds no such root (format 1, or
/// imported before roots were kept). Sizes only: reading is what checks them.
pub fn holds_segments_of(mirror: &Path, digest: &ContentId) -> Result<Option<bool>> {
    let folder = local_segments(mirror);
    let Some(root) = folder.root(digest)? else { return Ok(None) };
    let held = |r: &crate::manifest::segments::SegmentRef| {
        std::fs::metadata(folder.dir().join(r.id.to_hex())).is_ok_and(|m| m.len() == r.size)
    };
    Ok(Some(root.blobs.iter().chain(&root.entries).all(held)))
}

/// The segments held where `--mirror` points, read-only: a folder (which
/// need not exist yet: it holds none) or object storage.
pub fn held_segments(mirror: &Path) -> Result<Arc<dyn SegmentSource>> {
    if super::is_bucket(mirror) {
        let url = mirror.to_str().expect("an s3:// address is UTF-8");
        return Ok(Arc::new(super::bucket::BucketSegments::open(url)?));
    }
    Ok(Arc::new(local_segments(mirror)))
}
