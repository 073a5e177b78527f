//! The signature envelope decoder, as a manifest envelope and as a volume
//! seal, before and after the trust decision: refused or opened, never a panic.
#![no_main]

use std::sync::LazyLock;

use airlock::policy::Policy;
use airlock::sign::{SecretKey, envelope};
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let key = SecretKey::generate().unwrap();
    Policy::from_keys(vec![key.public().clone()], 1).unwrap()
});

fuzz_target!(|data: &[u8]| {
    for purpose in [envelope::MANIFEST, envelope::VOLUME_SEAL] {
        if let Ok(opened) = envelope::open_untrusted(data, purpose) {
            // What opens must also go through the trust decision cleanly.
            let _ = envelope::verify(data, POLICY.keyring(), purpose);
            assert!(opened.claimed_signers.len() <= data.len());
        }
    }
});
