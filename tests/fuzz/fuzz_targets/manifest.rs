//! The manifest decoder: any bytes are refused or decoded, never a panic;
//! what it accepts is the one canonical encoding of what it returns.
#![no_main]

use airlock::ecosystem::ManifestExt as _;
use airlock::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_bytes(data) {
        assert_eq!(manifest.to_bytes().unwrap(), data, "accepted a non-canonical manifest");
    }
});
