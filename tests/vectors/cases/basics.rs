//! The reference bundle every other case departs from, and the basic ways a
//! bundle is refused: changed bytes, an untrusted signer, a fork of a channel.

use super::Made;
use crate::base::Base;
use crate::common::hostile;

pub const GOOD: &[(&str, &[u8])] = &[("notes.txt", b"release notes\n"), ("tools/tool.bin", b"\x00\x01the tool\xff")];

pub fn cases(base: &Base) -> Vec<Made> {
    let good = base.files("vectors", GOOD);
    let volume = base.signed(&good);

    // One byte of a blob changed inside the compressed frame, signatures kept.
    let mut parts = hostile::open_bytes(&volume);
    let blob = parts.blobs.values_mut().next().unwrap();
    blob[0] ^= 1;
    let frame = hostile::blob_frame(&parts.blobs.iter().map(|(id, d)| (*id, d.as_slice())).collect::<Vec<_>>());
    let changed = hostile::assemble(&parts.envelope, &frame, &parts.seal);

    // The same channel and sequence with other content: a fork once the good one is imported.
    let fork = base.files("vectors", &[("notes.txt", b"other notes\n")]);

    vec![
        ("good.airlock".into(), volume),
        ("blob-changed-not-resigned.airlock".into(), changed),
        ("untrusted-signer.airlock".into(), good.signed_by(&[&base.other])),
        ("fork-of-good.airlock".into(), base.signed(&fork)),
    ]
}
