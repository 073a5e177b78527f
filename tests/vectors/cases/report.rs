//! Issue 14, "the report must not claim what was not checked": damaged
//! copies of the reference bundle, which the mirror already imported (so
//! the import must read the copy before saying `already-imported`), and an
//! expired bundle, which tests/careless.rs also gives together with a good one.

use super::Made;
use super::basics::GOOD;
use crate::base::{Base, CREATED};

pub fn cases(base: &Base) -> Vec<Made> {
    let good = base.signed(&base.files("vectors", GOOD));
    let manifest_frame = manifest_frame_len(&good);

    let mut appended = good.clone();
    appended.extend_from_slice(b"bytes a copy tool appended\n");
    let doubled = [good.as_slice(), good.as_slice()].concat();
    // Half the file: for this small bundle the cut falls in the manifest frame.
    let half = good[..good.len() / 2].to_vec();
    // The manifest frame whole, and half of what follows: the copy still
    // says which bundle it is, only reading it through shows the damage.
    let cut_blobs = good[..manifest_frame + (good.len() - manifest_frame) / 2].to_vec();

    let mut expired = base.files("vectors-expired", GOOD);
    expired.manifest.expires = CREATED + 86_400;

    vec![
        ("good-with-bytes-appended.airlock".into(), appended),
        ("good-doubled.airlock".into(), doubled),
        ("good-truncated-in-half.airlock".into(), half),
        ("good-truncated-in-its-blobs.airlock".into(), cut_blobs),
        ("expired.airlock".into(), base.signed(&expired)),
    ]
}

/// Bytes of frame 1 (the manifest's raw-block zstd frame): a 9-byte header,
/// then blocks of a 3-byte header each, up to 128 KiB of content per block.
fn manifest_frame_len(volume: &[u8]) -> usize {
    let content = u32::from_le_bytes(volume[5..9].try_into().unwrap()) as usize;
    9 + content + 3 * content.div_ceil(128 << 10)
}
