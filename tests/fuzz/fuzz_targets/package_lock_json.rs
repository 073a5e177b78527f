//! The parser of an npm package-lock.json: pins or a one-line error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = airlock::ecosystem::npm::lockfile::parse_package_lock(text, "package-lock.json") {
        assert!(!e.to_string().contains('\n'), "a lockfile error spans lines: {e}");
    }
});
