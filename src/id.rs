//! Validated identifiers: content ids, key ids and relative paths.
//!
//! Each type checks its invariants in its own `Deserialize`, so a value that
//! exists is a valid one (schemas/manifest.cddl: `content-id`, `key-id`, `rel-path`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        /// The bytes' order, compared eight at a time as big-endian words:
        /// inline, where the derived order called `memcmp`, which was a fifth
        /// of verify's time in its binary searches over ids.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                let word = |bytes: &[u8; $len], k: usize| {
                    u64::from_be_bytes(bytes[8 * k..8 * k + 8].try_into().expect("eight bytes"))
                };
                (0..$len / 8)
                    .map(|k| word(&self.0, k).cmp(&word(&other.0, k)))
                    .find(|order| order.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            pub const LEN: usize = $len;

            /// Lower-case hex, the form used in member names, reports and files.
            #[must_use]
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses the lower- or upper-case hex form.
            pub fn from_hex(text: &str) -> Option<Self> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(text, &mut out).ok()?;
                Some(Self(out))
            }

            /// The first 16 hex digits, for human-facing output.
            #[must_use]
            pub fn short(&self) -> String {
                self.to_hex()[..16].to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a byte string of {} bytes", $len)
                    }
                    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<$name, E> {
                        <[u8; $len]>::try_from(v).map($name).map_err(|_| E::invalid_length(v.len(), &self))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    };
}

fixed_bytes!(
    /// A BLAKE3 digest naming a blob, or a whole manifest.
    ContentId,
    32
);

fixed_bytes!(
    /// A signing key's id: the first 16 bytes of BLAKE3 over a domain tag and
    /// the public key, so ids from other tools can never collide with ours.
    KeyId,
    16
);

impl ContentId {
    /// The BLAKE3 digest of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        ContentId(*blake3::hash(bytes).as_bytes())
    }
}

/// Longest relative path accepted, in bytes (`PATH_MAX` on Linux).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest path component accepted, in bytes (`NAME_MAX` on Linux).
pub const MAX_COMPONENT_LEN: usize = 255;

/// A relative, forward-slash path that cannot leave the directory it is
/// joined to: no empty, `.` or `..` components, no leading slash, no
/// backslash, no control characters, within the Linux limits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    /// Validates `text`; the error says what is wrong with it.
    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty path".into());
        }
        if text.len() > MAX_PATH_LEN {
            return Err(format!("path longer than {MAX_PATH_LEN} bytes"));
        }
        if text.starts_with('/') {
            return Err(format!("absolute path {text:?}"));
        }
        if let Some(c) = text.chars().find(|c| c.is_control() || *c == '\\') {
            return Err(format!("path {text:?} contains the character {c:?}"));
        }
        for part in text.split('/') {
            match part {
                "" => return Err(format!("path {text:?} has an empty component")),
                "." | ".." => return Err(format!("path {text:?} has a {part:?} component")),
                _ if part.len() > MAX_COMPONENT_LEN => {
                    return Err(format!("path {text:?} has a component longer than {MAX_COMPONENT_LEN} bytes"));
                }
                _ => {}
            }
        }
        Ok(RelPath(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RelPath::new(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_id_hex_round_trips() {
        let id = ContentId::of(b"hello");
        assert_eq!(ContentId::from_hex(&id.to_hex()), Some(id));
        // Ordered as their bytes are, whichever byte first differs.
        let ids: Vec<ContentId> = (0..64u8).map(|n| ContentId::of(&[n])).collect();
        for a in &ids {
            for b in &ids {
                assert_eq!(a.cmp(b), a.0.cmp(&b.0), "{a} {b}");
                for k in 0..32 {
                    let mut c = *a;
                    c.0[k] = c.0[k].wrapping_add(1);
                    assert_eq!(a.cmp(&c), a.0.cmp(&c.0), "{a} at byte {k}");
                }
            }
        }
        assert_eq!(id.short().len(), 16);
        assert_eq!(ContentId::from_hex("00"), None);
    }

    #[test]
    fn rel_path_refuses_escapes() {
        for bad in ["", "/etc/passwd", "a/../b", "..", "./a", "a//b", "a/", "a\\b", "a\nb", "a/./b"] {
            assert!(RelPath::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a/b c/ünï.txt", "..a", "a..", ".hidden/x"] {
            assert!(RelPath::new(good).is_ok(), "{good:?} refused");
        }
        assert!(RelPath::new(&"x".repeat(256)).is_err());
    }

    #[test]
    fn rel_path_validates_when_decoded() {
        let err = serde_json::from_str::<RelPath>("\"../x\"").unwrap_err();
        assert!(err.to_string().contains(".."));
    }
}
