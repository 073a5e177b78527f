//! The parser of a PEP 751 pylock.toml: pins or a one-line error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = airlock::ecosystem::pypi::lockfile::parse_pylock(text, "pylock.toml") {
        assert!(!e.to_string().contains('\n'), "a lockfile error spans lines: {e}");
    }
});
