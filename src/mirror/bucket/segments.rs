//! The manifest segments of a bucket mirror, at `.airlock/segments/<blake3>`
//! (see `mirror/segments.rs`).

use super::Bucket;
use super::s3::{Created, Put, S3};
use crate::error::Result;
use crate::fetch::Payload;
use crate::id::ContentId;
use crate::manifest::canonical;
use crate::manifest::folder::check_held;
use crate::manifest::segments::{MAX_ROOT_BYTES, Root, SegmentSource};
use crate::mirror::segments::{KeptSegments, live_segments, missing_advice};

pub(super) const PREFIX: &str = ".airlock/segments/";

fn key(id: &ContentId) -> String {
    format!("{PREFIX}{}", id.to_hex())
}

/// The segments of a bucket mirror, read-only and without the lock.
pub struct BucketSegments {
    s3: S3,
}

impl std::fmt::Debug for BucketSegments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketSegments").field("url", &self.s3.url).finish()
    }
}

impl BucketSegments {
    pub fn open(url: &str) -> Result<Self> {
        Ok(BucketSegments { s3: S3::from_url(url)? })
    }
}

impl SegmentSource for BucketSegments {
    fn segment(&self, id: &ContentId, size: u64) -> std::result::Result<Option<Vec<u8>>, String> {
        let key = key(id);
        match self.s3.get_bytes(&key, size).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(bytes) => check_held(bytes, id, size, &format!("{}/{key}", self.s3.url)),
        }
    }

    fn missing_advice(&self) -> String {
        missing_advice(&self.s3.url)
    }
}

impl Bucket {
    /// Puts every file of `kept` not there yet (create-only: a key taken
    /// holds those bytes, as S3 writes an object whole), four at a time.
    /// Returns those it wrote.
    pub(super) fn keep_segments(&self, kept: &KeptSegments<'_>) -> Result<Vec<ContentId>> {
        let files: Vec<(ContentId, &[u8])> = kept.files().collect();
        let created = crate::fetch::parallel(&files, 4, |(id, bytes)| {
            let blake3 = id.to_hex();
            let put =
                Put { content_type: "application/cbor", cache_control: "no-store", blake3: &blake3, create_only: true };
            Ok(self.s3.put(&key(id), &Payload::Bytes(bytes), &put)? == Created::Written)
        })?;
        Ok(files.iter().zip(created).filter(|(_, new)| *new).map(|((id, _), _)| *id).collect())
    }

    /// Deletes what [`Bucket::keep_segments`] wrote for a bundle that was then not published.
    pub(super) fn forget_segments(&self, written: &[ContentId]) -> Result<()> {
        written.iter().try_for_each(|id| self.s3.delete(&key(id)))
    }

    /// The segment keys that the latest root of each channel names.
    pub(super) fn live_segment_keys(&self) -> Result<std::collections::BTreeSet<String>> {
        let live = live_segments(&self.state, |id| {
            let bytes = self.s3.get_bytes(&key(id), MAX_ROOT_BYTES)?;
            Ok(bytes.and_then(|b| canonical::from_slice::<Root>(&b).ok()))
        })?;
        Ok(live.iter().map(key).collect())
    }
}
