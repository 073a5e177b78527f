//! `sign`: one more operator co-signs an existing bundle (the two-person
//! rule). The co-signer first verifies the bundle completely against the
//! keys they trust, then adds their signature to the manifest envelope and
//! to the volume seal. The compressed blob frame is copied byte for byte:
//! nothing the first signer sealed changes.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use serde::Serialize;

use crate::bundle::ManifestFrame;
use crate::bundle::reader::{Member, VolumeReader};
use crate::bundle::writer::{write_manifest_frame, write_seal};
use crate::error::{Error, IoContext, Result};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sign::{Signer, envelope};
use crate::verify::{Discard, verify_bundle};

/// What `sign` did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    pub bundle: String,
    pub manifest_digest: String,
    pub added_signer: String,
    pub signers: Vec<String>,
}

/// Verifies `bundle` against `policy`, then adds `key`'s signature in place (atomically).
pub fn cosign(
    bundle: &Path,
    key: &dyn Signer,
    policy: &Policy,
    now: u64,
    progress: &dyn Progress,
) -> Result<SignReport> {
    let subject = bundle.display().to_string();
    let (verified, _) = verify_bundle(bundle, policy, now, &mut Discard, progress)?;
    let opened = envelope::open_untrusted(&verified.frame.envelope, envelope::MANIFEST)
        .map_err(|r| Error::rejected(&subject, r))?;
    let id = key.public().id();
    if opened.claimed_signers.contains(&id) {
        return Err(Error::Usage(format!("{subject}: already signed by key {}; a key counts once", id.short())));
    }
    let (frame_start, frame_size, seal) = locate_blob_frame(bundle)?;
    let new_envelope = envelope::add_signature(&verified.frame.envelope, key, envelope::MANIFEST)
        .map_err(|e| e.into_error(&subject))?;
    // The segments are named by the root the signatures cover: they stay as they are.
    let new_frame = ManifestFrame { envelope: new_envelope, segments: verified.reread_segments(bundle)? };
    let new_seal = envelope::add_signature(&seal, key, envelope::VOLUME_SEAL).map_err(|e| e.into_error(&subject))?;

    let dir = bundle.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".airlock-sign-").tempfile_in(dir).at(dir)?;
    {
        let mut out = BufWriter::new(tmp.as_file());
        write_manifest_frame(&mut out, &new_frame).at(bundle)?;
        let mut source = File::open(bundle).map_err(|e| Error::input(bundle, "bundle", &e))?;
        source.seek(io::SeekFrom::Start(frame_start)).at(bundle)?;
        let copied = io::copy(&mut BufReader::new(source).take(frame_size), &mut out).at(bundle)?;
        if copied != frame_size {
            return Err(Error::Usage(format!("{subject}: changed while being signed; run the command again")));
        }
        write_seal(&mut out, &new_seal).and_then(|()| out.flush()).at(bundle)?;
    }
    tmp.as_file().sync_all().at(bundle)?;
    let mode = std::fs::metadata(bundle).at(bundle)?.permissions();
    std::fs::set_permissions(tmp.path(), mode).at(bundle)?;
    tmp.persist(bundle).map_err(|e| Error::io(bundle, e.error))?;
    crate::durable::sync_dir(dir)?;
    let mut signers: Vec<String> = opened.claimed_signers.iter().map(crate::id::KeyId::short).collect();
    signers.push(id.short());
    Ok(SignReport { bundle: subject, manifest_digest: verified.digest.to_hex(), added_signer: id.short(), signers })
}

/// Where frame 2 starts, how long it is, and the seal envelope.
fn locate_blob_frame(bundle: &Path) -> Result<(u64, u64, Vec<u8>)> {
    let subject = bundle.display().to_string();
    let file = File::open(bundle).map_err(|e| Error::input(bundle, "bundle", &e))?;
    let total = file.metadata().at(bundle)?.len();
    let (mut volume, _) = VolumeReader::open(file, &subject)?;
    while let Member::Blob { size, .. } = volume.next_member()? {
        volume.copy_member(size, &mut io::sink()).map_err(|e| e.into_error(&subject))?;
    }
    let tail = volume.finish()?;
    let seal_frame = 8 + tail.seal.len() as u64;
    let start = total - seal_frame - tail.frame.size;
    Ok((start, tail.frame.size, tail.seal))
}
