//! Hostile bundles of this area (see cases/mod.rs): chunked blobs (issue
//! 18) whose pieces do not describe the blob (sizes not adding up, a
//! piece past the end, two pieces in one volume, an empty piece, more
//! pieces than volumes, a single piece), refused from the manifest before
//! any blob is read; and a piece whose bytes are not the ones its BLAKE3
//! names, in a volume sealed by a trusted key, refused as it is read.

use airlock::bundle::{VOLUME_MEMBER, VolumeInfo, VolumeSeal, member_header};
use airlock::id::ContentId;
use airlock::manifest::{Piece, canonical};
use airlock::sign::envelope;

use super::Made;
use crate::base::{Base, Bundle};
use crate::common::hostile;

/// The chunked blob: 3000 bytes that volume 1 and volume 2 carry in two pieces.
fn content() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn piece(data: &[u8], volume: u32) -> Piece {
    Piece { id: ContentId::of(data), size: data.len() as u64, volume }
}

/// A set of two data volumes carrying `model.bin` in `pieces`.
fn chunked(base: &Base, pieces: Vec<Piece>) -> Bundle {
    let mut bundle = base.files("vectors", &[("model.bin", &content())]);
    bundle.manifest.volumes = 2;
    bundle.manifest.blobs[0].pieces = pieces;
    bundle
}

pub fn cases(base: &Base) -> Vec<Made> {
    let data = content();
    let (a, b) = data.split_at(1000);
    let hostile = [
        ("chunk-pieces-fall-short", vec![piece(a, 0), piece(&b[..1000], 1)]),
        ("chunk-pieces-overlap", vec![piece(&data[..2000], 0), piece(&data[1000..], 1)]),
        ("chunk-two-pieces-in-one-volume", vec![piece(a, 0), piece(b, 0)]),
        ("chunk-empty-piece", vec![piece(&data, 0), piece(&[], 1)]),
        ("chunk-more-pieces-than-volumes", vec![piece(a, 0), piece(&b[..1000], 1), piece(&b[1000..], 2)]),
        ("chunk-one-piece", vec![piece(&data, 0)]),
    ];
    let mut made: Vec<Made> = hostile
        .into_iter()
        .map(|(name, pieces)| {
            let bundle = chunked(base, pieces);
            let first = bundle.manifest.blobs[0].pieces[0].size as usize;
            (format!("{name}/volume-1-of-2.airlock"), volume(base, &bundle, 0, &data[..first.min(data.len())]))
        })
        .collect();
    // A well-formed set whose first volume carries the right number of
    // bytes for piece 1, but not its bytes; its seal is signed by the
    // trusted key, so only the piece's own digest catches it.
    let bundle = chunked(base, vec![piece(a, 0), piece(b, 1)]);
    let mut forged = a.to_vec();
    forged[500] ^= 1;
    made.push(("chunk-piece-forged/volume-1-of-2.airlock".into(), volume(base, &bundle, 0, &forged)));
    // Volume 2 carrying its own piece and piece 1 again: a piece in two
    // volumes (alone, so that no good volume is kept in staging).
    let bundle = chunked(base, vec![piece(a, 0), piece(b, 1)]);
    made.push(("chunk-piece-in-two-volumes/volume-2-of-2.airlock".into(), volume_of(base, &bundle, 1, &[b, a])));
    // Both volumes, every piece the bytes its BLAKE3 names, but the pieces
    // are not the blob: its BLAKE3 (and the entry's) is that of other bytes.
    let mut other = data.clone();
    other[2999] ^= 1;
    let mut bundle = chunked(base, vec![piece(a, 0), piece(b, 1)]);
    let wrong = ContentId::of(&other);
    bundle.manifest.blobs[0].id = wrong;
    bundle.manifest.entries.decoded_mut()[0].blob = wrong;
    for (index, bytes) in [(0, a), (1, b)] {
        made.push((
            format!("chunk-pieces-not-the-blob/volume-{}-of-2.airlock", index + 1),
            volume(base, &bundle, index, bytes),
        ));
    }
    made
}

/// Data volume `index` of `bundle` carrying `bytes` as its piece of the
/// chunked blob, manifest and seal signed by the trusted key.
fn volume(base: &Base, bundle: &Bundle, index: u32, bytes: &[u8]) -> Vec<u8> {
    volume_of(base, bundle, index, &[bytes])
}

/// Data volume `index` of `bundle` carrying each of `members` as a member `blobs/<the chunked blob>`.
fn volume_of(base: &Base, bundle: &Bundle, index: u32, members: &[&[u8]]) -> Vec<u8> {
    let payload = bundle.manifest.to_bytes().unwrap();
    let envelope = hostile::sign_manifest(&payload, &[&base.trusted]);
    let info = canonical::to_vec(&VolumeInfo { volume: index, parity: None }).unwrap();
    let blob = bundle.manifest.blobs[0].id;
    let mut stream = vec![(member_header(VOLUME_MEMBER, info.len() as u64).unwrap(), info.as_slice())];
    stream.extend(members.iter().map(|bytes| (hostile::blob_header(&blob, bytes.len() as u64), *bytes)));
    let frame = hostile::compress(&hostile::tar_stream(&stream));
    let seal = VolumeSeal {
        format: 1,
        manifest: ContentId::of(&payload),
        volume: index,
        frame: ContentId::of(&frame),
        frame_size: frame.len() as u64,
    };
    let seal =
        envelope::seal(&canonical::to_vec(&seal).unwrap(), std::slice::from_ref(&base.trusted), envelope::VOLUME_SEAL)
            .unwrap();
    hostile::assemble(&envelope, &frame, &seal)
}
