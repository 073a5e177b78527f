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

    // A git-sha1 digest that is the file's plain SHA-1, not its git blob id
    // (git's header `blob <size>\0` left out), signed by the trusted key.
    let mut plain_sha1 = good.clone();
    let notes = plain_sha1.manifest.entries.decoded_mut().iter_mut().find(|e| e.path.as_str() == "notes.txt").unwrap();
    let digest = <sha1::Sha1 as sha2::Digest>::digest(GOOD[0].1).to_vec();
    notes.digests.insert("git-sha1".into(), airlock::manifest::Digest(digest));

    vec![
        ("good.airlock".into(), volume),
        ("git-sha1-not-the-git-blob-id.airlock".into(), base.signed(&plain_sha1)),
        ("blob-changed-not-resigned.airlock".into(), changed),
        ("untrusted-signer.airlock".into(), good.signed_by(&[&base.other])),
        ("fork-of-good.airlock".into(), base.signed(&fork)),
    ]
}
