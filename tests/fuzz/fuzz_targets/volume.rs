//! The volume reader: frame 1, the manifest member and its envelope, the
//! blob members of the compressed frame, the end of the archive and the
//! seal. Signatures are not judged here (no input could forge one), so the
//! manifest inside is decoded as `inspect` does, to reach that decoder too.
#![no_main]

use airlock::bundle::reader::{Member, VolumeReader};
use airlock::manifest::Manifest;
use airlock::sign::envelope;
use libfuzzer_sys::fuzz_target;

/// Members larger than this are skipped: a verifier compares the declared
/// size with the manifest before copying, so size alone finds nothing here.
const MAX_MEMBER: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok((mut volume, envelope_bytes)) = VolumeReader::open(data, "fuzz") else { return };
    if let Ok(opened) = envelope::open_untrusted(&envelope_bytes, envelope::MANIFEST) {
        let _ = Manifest::from_bytes(&opened.payload);
    }
    loop {
        match volume.next_member() {
            Ok(Member::Blob { size, .. } | Member::Parity { size }) if size <= MAX_MEMBER => {
                if volume.copy_member(size, &mut std::io::sink()).is_err() {
                    return;
                }
            }
            // A split bundle's `volume.cbor`: its own canonical-CBOR decoder.
            Ok(Member::Info { size }) => {
                if volume.read_info(size).is_err() {
                    return;
                }
            }
            Ok(Member::Blob { .. } | Member::Parity { .. }) | Err(_) => return,
            Ok(Member::End) => break,
        }
    }
    if let Ok(tail) = volume.finish() {
        let _ = envelope::open_untrusted(&tail.seal, envelope::VOLUME_SEAL);
    }
});
