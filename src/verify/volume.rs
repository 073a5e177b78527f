//! One volume: its manifest frame opened and checked (steps 2 and 3),
//! then its blobs streamed and its seal checked (steps 4 and 5).

use std::io;

use super::blobs::{BlobPlan, stream_blobs};
use super::{BlobSink, VerifiedManifest, check_manifest};
use crate::bundle::reader::{Envelope, Member, Tail, VolumeReader};
use crate::bundle::split::MAX_STRIPE;
use crate::bundle::{PARITY_MEMBER, ParityInfo, VOLUME_MEMBER, VolumeSeal, volume_label};
use crate::error::{Error, Rejection, Result};
use crate::id::ContentId;
use crate::manifest::Manifest;
use crate::manifest::canonical;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sign::envelope;

/// A volume whose manifest passed the checks, positioned after its
/// `volume.cbor`: the caller knows which volume of which set it claims to
/// be (its seal confirms it once the rest is read).
pub struct OpenVolume<R: io::Read> {
    reader: VolumeReader<R>,
    /// Index in the set.
    pub index: u32,
    /// In parity volumes: what the recovery bytes cover.
    pub parity: Option<ParityInfo>,
    /// The manifest digest: which bundle the volume belongs to.
    pub digest: ContentId,
}

impl<R: io::Read> OpenVolume<R> {
    /// "volume 2 of 5", "parity volume 1 of 1".
    #[must_use]
    pub fn label(&self, manifest: &Manifest) -> String {
        volume_label(self.index, manifest.volumes, manifest.parity)
    }
}

/// Reads a volume's manifest frame and checks the manifest (step 2 and 3),
/// unless `manifests` already holds one with the same envelope; a new one
/// is added to `manifests`. In a split set, reads which volume this is.
pub fn open_volume<R: io::Read>(
    raw: R,
    subject: &str,
    policy: &Policy,
    now: u64,
    manifests: &mut Vec<VerifiedManifest>,
) -> Result<OpenVolume<R>> {
    // A volume of a set whose manifest was checked already is only compared with it.
    let known: Vec<&crate::bundle::FrameSeen> = manifests.iter().map(|m| m.frame.as_ref()).collect();
    let (mut reader, frame) = VolumeReader::open_among(raw, subject, &known)?;
    let position = match frame {
        Envelope::Known(position) => position,
        Envelope::Read(frame) => {
            manifests.push(check_manifest(frame, policy, now, subject)?);
            manifests.len() - 1
        }
    };
    let verified = &manifests[position];
    let manifest = &verified.manifest;
    if manifest.is_single_volume() {
        return Ok(OpenVolume { reader, index: 0, parity: None, digest: verified.digest });
    }
    let reject = |m: String| Error::rejected(subject, Rejection::Malformed(m));
    let Member::Info { size } = reader.next_member()? else {
        return Err(reject(format!("a volume of a split bundle must start with {VOLUME_MEMBER}")));
    };
    let info = reader.read_info(size)?;
    let is_parity = info.volume >= manifest.volumes;
    if info.volume >= manifest.total_volumes() || is_parity != info.parity.is_some() {
        return Err(reject(format!(
            "{VOLUME_MEMBER} names volume {} of a set of {}",
            info.volume,
            manifest.total_volumes()
        )));
    }
    if let Some(parity) = &info.parity {
        // A rebuild holds a stripe per volume: no more than the exporter ever writes.
        if u64::from(parity.stripe) > MAX_STRIPE {
            return Err(reject(format!(
                "{VOLUME_MEMBER} of a parity volume declares stripes of {} bytes; airlock writes at most {} KiB",
                parity.stripe,
                MAX_STRIPE >> 10
            )));
        }
        let stripe_ok = parity.stripe > 0 && parity.stripe % 512 == 0;
        if !stripe_ok || parity.sizes.len() != manifest.volumes as usize {
            return Err(reject(format!("{VOLUME_MEMBER} of a parity volume does not describe the data volumes")));
        }
    }
    Ok(OpenVolume { reader, index: info.volume, parity: info.parity, digest: verified.digest })
}

/// Reads the rest of an opened volume: a data volume's blobs into `sink`
/// (step 4 and 5) or a parity volume's recovery bytes; then checks its seal.
pub fn verify_volume<R: io::Read, S: BlobSink>(
    mut volume: OpenVolume<R>,
    verified: &VerifiedManifest,
    policy: &Policy,
    sink: &mut S,
    progress: &dyn Progress,
) -> Result<()> {
    let subject = volume.reader.name().to_owned();
    match &volume.parity {
        None => {
            let plan = BlobPlan::new(&verified.manifest, volume.index);
            stream_blobs(&mut volume.reader, plan, sink, progress, &subject)?;
        }
        Some(info) => {
            let expected = info.member_size();
            match volume.reader.next_member()? {
                Member::Parity { size } if size == expected => {}
                _ => {
                    return Err(Error::rejected(
                        &subject,
                        Rejection::UnexpectedMember(format!("where {PARITY_MEMBER} of {expected} bytes belongs")),
                    ));
                }
            }
            let mut counted = crate::progress::ProgressWriter { inner: io::sink(), progress };
            volume.reader.copy_member(expected, &mut counted).map_err(|e| e.into_error(&subject))?;
            if volume.reader.next_member()? != Member::End {
                return Err(Error::rejected(&subject, Rejection::UnexpectedMember(format!("after {PARITY_MEMBER}"))));
            }
        }
    }
    check_seal(&volume.reader.finish()?, verified, volume.index, policy).map_err(|r| Error::rejected(&subject, r))
}

/// The seal must be signed like the manifest and name this manifest, this
/// volume and exactly the compressed bytes that were read.
fn check_seal(tail: &Tail, verified: &VerifiedManifest, volume: u32, policy: &Policy) -> Result<(), Rejection> {
    let opened = envelope::verify(&tail.seal, policy.keyring(), envelope::VOLUME_SEAL)?;
    let seal: VolumeSeal =
        canonical::from_slice(opened.payload).map_err(|e| Rejection::Malformed(format!("volume seal: {e}")))?;
    let expected = VolumeSeal {
        format: 1,
        manifest: verified.digest,
        volume,
        frame: tail.frame.digest,
        frame_size: tail.frame.size,
    };
    if seal.manifest != verified.digest || seal.volume != volume {
        return Err(Rejection::Malformed("the volume seal belongs to another bundle or volume".into()));
    }
    if seal != expected {
        return Err(Rejection::DigestMismatch("the compressed blob frame is not the one the exporter sealed".into()));
    }
    Ok(())
}
