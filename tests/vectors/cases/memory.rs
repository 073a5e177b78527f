//! Hostile bundles of this area (see cases/mod.rs): evidence over its
//! kind's cap, and a parity volume declaring a larger stripe than the
//! exporter writes (issue 14.13). tests/resources.rs measures the memory
//! of the same attacks at full size.

use airlock::bundle::{PARITY_MEMBER, ParityInfo, VOLUME_MEMBER, VolumeInfo, VolumeSeal, member_header};
use airlock::ecosystem::evidence::kind;
use airlock::id::ContentId;
use airlock::manifest::{Digest, Evidence, canonical};
use airlock::sign::envelope;
use sha2::Digest as _;

use super::Made;
use crate::base::{self, Base};
use crate::common::hostile;

pub fn cases(base: &Base) -> Vec<Made> {
    vec![("evidence-over-cap.airlock".into(), evidence_over_cap(base)), parity_stripe_too_large(base)]
}

/// An npm entry whose `dist.signatures` is one byte over the 64 KiB cap.
fn evidence_over_cap(base: &Base) -> Vec<u8> {
    let tarball = b"a tarball".to_vec();
    let mut entry = base::entry("npm", "big", Some("1.0.0"), "big/-/big-1.0.0.tgz", &tarball);
    entry.digests.insert("sha512".into(), Digest(sha2::Sha512::digest(&tarball).to_vec()));
    let cap = kind("npm-signatures").unwrap().max_bytes as usize;
    let mut data = b"[{\"keyid\":\"SHA256:x\",\"sig\":\"AAAA\"}".to_vec();
    data.resize(cap, b' ');
    data.push(b']');
    entry.evidence.push(Evidence { kind: "npm-signatures".into(), data });
    base.signed(&base.bundle("vectors", vec![entry], vec![tarball]))
}

/// The parity volume of a set of one data volume (left out, so an import
/// must rebuild it) declaring stripes of 128 KiB, twice what airlock writes.
fn parity_stripe_too_large(base: &Base) -> Made {
    let mut bundle = base.files("vectors", &[("notes.txt", b"release notes\n")]);
    bundle.manifest.parity = 1;
    let payload = bundle.manifest.to_bytes().unwrap();
    let envelope = hostile::sign_manifest(&payload, &[&base.trusted]);
    let (blob, content) = bundle.blobs.iter().next().unwrap();
    let data_info = canonical::to_vec(&VolumeInfo { volume: 0, parity: None }).unwrap();
    let data_frame = hostile::compress(&hostile::tar_stream(&[
        (member_header(VOLUME_MEMBER, data_info.len() as u64).unwrap(), &data_info),
        (hostile::blob_header(blob, content.len() as u64), content),
    ]));
    let data_volume = hostile::assemble(&envelope, &data_frame, &seal_volume(base, &payload, &data_frame, 0));
    let info = ParityInfo { stripe: 128 << 10, sizes: vec![data_volume.len() as u64] };
    let recovery = vec![0u8; info.member_size() as usize];
    let parity_info = canonical::to_vec(&VolumeInfo { volume: 1, parity: Some(info) }).unwrap();
    let frame = hostile::compress(&hostile::tar_stream(&[
        (member_header(VOLUME_MEMBER, parity_info.len() as u64).unwrap(), &parity_info),
        (member_header(PARITY_MEMBER, recovery.len() as u64).unwrap(), &recovery),
    ]));
    let volume = hostile::assemble(&envelope, &frame, &seal_volume(base, &payload, &frame, 1));
    ("parity-stripe-too-large/parity-1-of-1.airlock".into(), volume)
}

/// The seal of volume `index`, signed by the trusted key.
fn seal_volume(base: &Base, payload: &[u8], frame: &[u8], index: u32) -> Vec<u8> {
    let seal = VolumeSeal {
        format: 1,
        manifest: ContentId::of(payload),
        volume: index,
        frame: ContentId::of(frame),
        frame_size: frame.len() as u64,
    };
    envelope::seal(&canonical::to_vec(&seal).unwrap(), std::slice::from_ref(&base.trusted), envelope::VOLUME_SEAL)
        .unwrap()
}
