//! A volume, as `inspect` reads it and as `verify` and `import` take it
//! from a trusted but hostile signer: see `airlock_fuzz::check` for what is
//! checked and `airlock_fuzz::mutator` for how inputs are made from the
//! seed bundles (tar headers, member names and order, frame boundaries and
//! lengths, the seal and the manifest, re-signed with the fuzzing key).
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    airlock_fuzz::check(data);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    airlock_fuzz::mutator::mutate(data, size, max_size, seed, libfuzzer_sys::fuzzer_mutate)
});
