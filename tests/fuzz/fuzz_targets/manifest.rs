//! The manifest decoder, both formats: any bytes are refused or decoded,
//! never a panic. What format 1 accepts is the one canonical encoding of
//! what it returns; what format 2 accepts (the input's first four bytes,
//! little-endian, say how long the root is; the segments follow) encodes
//! to a manifest that decodes to the same.
#![no_main]

use airlock::ecosystem::ManifestExt as _;
use airlock::manifest::Manifest;
use airlock::manifest::segments::NoSegments;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_bytes(data) {
        assert_eq!(manifest.to_bytes().unwrap(), data, "accepted a non-canonical manifest");
    }
    let Some((len, rest)) = data.split_first_chunk::<4>() else { return };
    let Some((root, segments)) = usize::try_from(u32::from_le_bytes(*len)).ok().and_then(|n| rest.split_at_checked(n))
    else {
        return;
    };
    if let Ok(manifest) = Manifest::decode(root, Some(segments), &NoSegments) {
        let (root, segments) = manifest.encode().unwrap();
        assert_eq!(Manifest::decode(&root, segments.as_deref(), &NoSegments).unwrap(), manifest, "format 2 does not round-trip");
    }
});
