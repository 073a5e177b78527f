//! What every lockfile parser shares: its error, and reading the file.
//!
//! The parsers live in their ecosystems (`ecosystem::<name>::lockfile`). Each
//! turns one lockfile format into a list of exact pins (name, version and
//! whatever digests the file records), sorted by name and version, without
//! touching the network. Anything airlock cannot carry across the gap —
//! ranges, git or local sources, includes it does not follow — is refused
//! with a [`LockError`] that names the package or line and says how to
//! produce a usable file. This module knows no ecosystem.

use std::fmt;
use std::path::Path;

/// Why a lockfile cannot be used. `origin` is the file (with `:LINE` when the
/// problem is on one line); `message` ends with what the user should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockError {
    pub origin: String,
    pub message: String,
}

impl LockError {
    /// Builds an error, escaping control characters so the text from the
    /// file can never break the one-line rule of the error policy.
    pub(crate) fn new(origin: impl AsRef<str>, message: impl AsRef<str>) -> Self {
        LockError { origin: one_line(origin.as_ref()), message: one_line(message.as_ref()) }
    }

    /// An error about one line of `origin` (1-based).
    pub(crate) fn at_line(origin: &str, line: usize, message: impl AsRef<str>) -> Self {
        LockError::new(format!("{origin}:{line}"), message)
    }

    /// A TOML syntax or shape error, located by line so the message stays on
    /// one line (the `toml` crate's own display quotes the source over several).
    pub(crate) fn toml(origin: &str, text: &str, err: &toml::de::Error, hint: &str) -> Self {
        let message = format!("{}; {hint}", err.message().trim());
        match err.span() {
            Some(span) => LockError::at_line(origin, line_of(text, span.start), message),
            None => LockError::new(origin, message),
        }
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for LockError {}

impl From<LockError> for crate::error::Error {
    /// A lockfile is the operator's input, so its problems are usage errors (exit 2).
    fn from(e: LockError) -> Self {
        crate::error::Error::Usage(e.to_string())
    }
}

/// Replaces control characters (newlines above all) with their escapes.
fn one_line(text: &str) -> String {
    crate::escape::one_line(text).into_owned()
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    // Splitting at newlines gives one piece per line started before `offset`.
    text.as_bytes()[..offset.min(text.len())].split(|&b| b == b'\n').count()
}

/// The text of the lockfile at `path`.
pub(crate) fn read(path: &Path) -> crate::error::Result<String> {
    std::fs::read_to_string(path).map_err(|e| crate::error::Error::input(path, "lockfile", &e))
}

/// Exactly 64 hex digits (either case) as a SHA-256 digest.
pub(crate) fn sha256_from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_origin_then_message() {
        let e = LockError::at_line("deps.lock", 12, "six is not pinned; pin it");
        assert_eq!(e.to_string(), "deps.lock:12: six is not pinned; pin it");
    }

    #[test]
    fn control_characters_are_escaped() {
        let e = LockError::new("a\nb", "x\ny\tz");
        assert_eq!(e.to_string(), "a\\nb: x\\ny\\tz");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn maps_to_a_usage_error() {
        let err: crate::error::Error = LockError::new("deps.lock", "bad; fix it").into();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.to_string(), "deps.lock: bad; fix it");
    }

    #[test]
    fn toml_errors_are_one_line_with_a_line_number() {
        let text = "a = 1\nb = \n";
        let err = toml::from_str::<toml::Table>(text).unwrap_err();
        let e = LockError::toml("x.toml", text, &err, "fix it");
        assert!(e.origin.starts_with("x.toml:2"), "{e}");
        assert!(e.message.ends_with("; fix it"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("ab\ncd\n", 0), 1);
        assert_eq!(line_of("ab\ncd\n", 2), 1);
        assert_eq!(line_of("ab\ncd\n", 3), 2);
        assert_eq!(line_of("ab\ncd\n", 99), 3);
    }

    #[test]
    fn sha256_hex_needs_exactly_64_digits() {
        let hex64 = "ab".repeat(32);
        assert_eq!(sha256_from_hex(&hex64), Some([0xab; 32]));
        assert_eq!(sha256_from_hex(&hex64.to_uppercase()), Some([0xab; 32]));
        assert_eq!(sha256_from_hex(&hex64[..62]), None);
        assert_eq!(sha256_from_hex(&format!("{hex64}00")), None);
        assert_eq!(sha256_from_hex(&"zz".repeat(32)), None);
    }
}
