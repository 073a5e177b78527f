//! Deterministic CBOR (RFC 8949 §4.2.1) on top of ciborium.
//!
//! ciborium already writes shortest-form integers and lengths and definite
//! lengths for values whose size is known; what it does not do is sort map
//! keys. We let ciborium encode, then rewrite its bytes with every map sorted
//! by the bytewise order of its encoded keys, refusing what the manifest
//! never needs and what would make the encoding ambiguous: floats, tags,
//! duplicate keys, indefinite lengths. Working on bytes rather than on a
//! `ciborium::Value` tree keeps the cost near twice the encoded size, which
//! matters for manifests of tens of thousands of entries.
//!
//! Decoding is the mirror image: check the document's shape without
//! decoding it ([`check_shape`]), decode straight to the Rust type (with a
//! recursion limit), re-encode that canonically, and reject the input unless
//! the two byte strings are identical.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How deep a manifest may nest; ours needs 5.
const RECURSION_LIMIT: usize = 16;

/// Encodes `value` canonically.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut plain = Vec::new();
    ciborium::into_writer(value, &mut plain).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(plain.len());
    let end = canonical_into(&plain, 0, &mut out)?;
    debug_assert_eq!(end, plain.len(), "ciborium writes one item");
    Ok(out)
}

/// Writes a CBOR array of `len` items canonically to `out`, one item at a
/// time, so that a long sequence is never held encoded (or twice): the
/// canonical form of an array is its header followed by its items' canonical forms.
pub fn write_seq<T: Serialize>(
    out: &mut dyn std::io::Write,
    len: usize,
    items: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    out.write_all(&array_header(len as u64))?;
    let mut count = 0;
    for item in items {
        out.write_all(&to_vec(&item).map_err(std::io::Error::other)?)?;
        count += 1;
    }
    if count != len {
        return Err(std::io::Error::other(format!("{count} items where the array header says {len}")));
    }
    Ok(())
}

/// The shortest-form header of an array of `len` items (major type 4).
#[allow(clippy::cast_possible_truncation)] // each arm's range fits the width it casts to
fn array_header(len: u64) -> Vec<u8> {
    match len {
        0..=23 => vec![0x80 | len as u8],
        24..=0xff => vec![0x98, len as u8],
        0x100..=0xffff => [&[0x99u8][..], &(len as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[0x9au8][..], &(len as u32).to_be_bytes()].concat(),
        _ => [&[0x9bu8][..], &len.to_be_bytes()].concat(),
    }
}

/// Decodes `bytes`, which must be the canonical encoding of a `T`.
pub fn from_slice<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check_shape(bytes, Shape { depth: RECURSION_LIMIT, items: bytes.len() })?;
    let decoded: T = ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT).map_err(|e| match e {
        // A semantic error's message is what a reader wants (a missing field, a wrong type).
        ciborium::de::Error::Semantic(_, message) => message,
        other => format!("not CBOR: {other}"),
    })?;
    // Compared as it is produced rather than built whole: a manifest of
    // tens of thousands of entries is megabytes.
    let mut plain = Vec::new();
    ciborium::into_writer(&decoded, &mut plain).map_err(|e| e.to_string())?;
    let mut same = Compare { expected: bytes, at: 0 };
    canonical_into(&plain, 0, &mut same)?;
    if same.at != bytes.len() {
        return Err(NOT_CANONICAL.into());
    }
    Ok(decoded)
}

const NOT_CANONICAL: &str = "not in deterministic encoding (RFC 8949 §4.2.1)";

/// Where [`canonical_into`] puts what it writes.
trait Output {
    fn put(&mut self, bytes: &[u8]) -> Result<(), String>;
}

impl Output for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Checks the output against bytes already held, failing at the first difference.
struct Compare<'a> {
    expected: &'a [u8],
    at: usize,
}

impl Output for Compare<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), String> {
        let end = self.at + bytes.len();
        if self.expected.get(self.at..end) != Some(bytes) {
            return Err(NOT_CANONICAL.into());
        }
        self.at = end;
        Ok(())
    }
}

/// One item's header at `at`: its major type, additional information,
/// argument, and where its content begins.
fn header(bytes: &[u8], at: usize) -> Result<(u8, u8, u64, usize), String> {
    let initial = *bytes.get(at).ok_or("the CBOR document ends early")?;
    let (major, info) = (initial >> 5, initial & 0x1f);
    let (argument, next) = match info {
        0..=23 => (u64::from(info), at + 1),
        24..=27 => {
            let len = 1usize << (info - 24);
            let field = bytes.get(at + 1..at + 1 + len).ok_or("the CBOR document ends early")?;
            (field.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)), at + 1 + len)
        }
        31 => return Err("indefinite-length CBOR is not allowed".into()),
        _ => return Err(format!("reserved CBOR header byte {initial:#04x}")),
    };
    Ok((major, info, argument, next))
}

/// Where the item starting at `at` ends.
fn skip(bytes: &[u8], at: usize) -> Result<usize, String> {
    let (major, _, argument, mut next) = header(bytes, at)?;
    let items = match major {
        2 | 3 => {
            return usize::try_from(argument).ok().and_then(|n| next.checked_add(n)).ok_or("a string too long".into());
        }
        4 => argument,
        5 => argument.saturating_mul(2),
        6 => 1,
        _ => 0,
    };
    for _ in 0..items {
        next = skip(bytes, next)?;
    }
    Ok(next)
}

/// Copies the item at `at` into `out` with its maps sorted; returns where it ended.
fn canonical_into(bytes: &[u8], at: usize, out: &mut impl Output) -> Result<usize, String> {
    let (major, info, argument, next) = header(bytes, at)?;
    match (major, info) {
        (6, _) => Err(format!("CBOR tag {argument} is not allowed")),
        (7, 25..=27) => Err("floating-point values are not allowed".into()),
        (4, _) => {
            out.put(&bytes[at..next])?;
            let mut item = next;
            for _ in 0..argument {
                item = canonical_into(bytes, item, out)?;
            }
            Ok(item)
        }
        (5, _) => {
            out.put(&bytes[at..next])?;
            // Each entry: its key encoded canonically, and where its value starts and ends.
            let mut entries = Vec::new();
            let mut item = next;
            for _ in 0..argument {
                let mut key = Vec::new();
                let value = canonical_into(bytes, item, &mut key)?;
                item = skip(bytes, value)?;
                entries.push((key, value));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err("duplicate map key".into());
            }
            for (key, value) in entries {
                out.put(&key)?;
                canonical_into(bytes, value, out)?;
            }
            Ok(item)
        }
        _ => {
            let end = skip(bytes, at)?;
            out.put(bytes.get(at..end).ok_or("the CBOR document ends early")?)?;
            Ok(end)
        }
    }
}

/// Bounds on a CBOR document's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Deepest nesting of arrays, maps and tags.
    pub depth: usize,
    /// Most data items in all (every array, map, tag, string, number counts one).
    pub items: usize,
}

/// Walks `bytes` as exactly one CBOR data item without building anything,
/// so that no decoder is handed a document that would make it recurse
/// deeply or allocate more than the input: nesting and item count within
/// `shape`, definite lengths only, and every declared length (of a string,
/// an array or a map) within the bytes that actually follow. Memory used is
/// one counter per nesting level.
pub fn check_shape(bytes: &[u8], shape: Shape) -> Result<(), String> {
    // Items still expected at each open level; the bottom one is the document itself.
    let mut open: Vec<u64> = vec![1];
    let mut items = 0usize;
    let mut at = 0usize;
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        items += 1;
        if items > shape.items {
            return Err(format!("more than {} data items", shape.items));
        }
        let initial = *bytes.get(at).ok_or("the CBOR document ends early")?;
        at += 1;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let argument = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let len = 1usize << (info - 24);
                let field = bytes.get(at..at + len).ok_or("the CBOR document ends early")?;
                at += len;
                field.iter().fold(0u64, |n, b| n << 8 | u64::from(*b))
            }
            31 => return Err("indefinite-length CBOR is not allowed".into()),
            _ => return Err(format!("reserved CBOR header byte {initial:#04x}")),
        };
        let remaining = (bytes.len() - at) as u64;
        let nested = match major {
            0 | 1 | 7 => 0,
            2 | 3 => {
                if argument > remaining {
                    return Err(format!("a string declares {argument} bytes, only {remaining} follow"));
                }
                at += argument as usize;
                0
            }
            4 => argument,
            5 => argument.checked_mul(2).ok_or("a map declares too many entries")?,
            _ => 1, // a tag wraps one item
        };
        // Every item takes at least one byte: a count beyond what is left is a lie.
        if nested > remaining {
            return Err(format!("an array or map declares {nested} items, only {remaining} bytes follow"));
        }
        if major >= 4 && major != 7 {
            if open.len() > shape.depth {
                return Err(format!("nested deeper than {} levels", shape.depth));
            }
            open.push(nested);
        }
    }
    if at != bytes.len() {
        return Err(format!("{} bytes after the CBOR document", bytes.len() - at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;
    use std::collections::BTreeMap;

    #[test]
    fn map_keys_sort_by_encoding_length_first() {
        let mut m = BTreeMap::new();
        m.insert("bb".to_owned(), 1u8);
        m.insert("a".to_owned(), 2u8);
        m.insert("c".to_owned(), 3u8);
        let bytes = to_vec(&m).unwrap();
        // {"a": 2, "c": 3, "bb": 1}: one-byte keys sort before two-byte keys.
        assert_eq!(bytes, [0xa3, 0x61, b'a', 2, 0x61, b'c', 3, 0x62, b'b', b'b', 1]);
        let back: BTreeMap<String, u8> = from_slice(&bytes).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn rejects_non_canonical_forms() {
        // Unsorted keys.
        assert!(from_slice::<Value>(&[0xa2, 0x61, b'b', 1, 0x61, b'a', 2]).is_err());
        // Non-shortest integer (1 as a one-byte follow-on).
        assert!(from_slice::<Value>(&[0x18, 0x01]).is_err());
        // Indefinite-length array.
        assert!(from_slice::<Value>(&[0x9f, 0x01, 0xff]).is_err());
        // Float.
        assert!(from_slice::<Value>(&[0xf9, 0x3c, 0x00]).is_err());
        // Duplicate key.
        assert!(from_slice::<Value>(&[0xa2, 0x61, b'a', 1, 0x61, b'a', 1]).is_err());
        // Trailing bytes.
        assert!(from_slice::<Value>(&[0x01, 0x01]).is_err());
        // Tag.
        assert!(from_slice::<Value>(&[0xc1, 0x01]).is_err());
    }

    #[test]
    fn hostile_lengths_and_nesting_fail_cleanly() {
        // A byte string declaring 2^64-1 bytes with none behind it.
        assert!(from_slice::<Value>(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        // An array declaring 2^32 items.
        assert!(from_slice::<Value>(&[0x9a, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Nesting far deeper than any manifest.
        let deep = vec![0x81u8; 100_000];
        assert!(from_slice::<Value>(&deep).is_err());
    }

    #[test]
    fn sequences_encode_like_the_whole_array() {
        for len in [0usize, 1, 23, 24, 255, 256, 70_000] {
            let items: Vec<BTreeMap<String, usize>> =
                (0..len).map(|i| BTreeMap::from([("bb".to_owned(), i), ("a".to_owned(), len)])).collect();
            let mut out = Vec::new();
            write_seq(&mut out, len, items.iter()).unwrap();
            assert_eq!(out, to_vec(&items).unwrap(), "{len} items");
        }
        assert!(write_seq(&mut Vec::new(), 2, [1u8].iter()).is_err());
    }

    #[test]
    fn shape_is_checked_without_decoding() {
        let shape = Shape { depth: 3, items: 10 };
        let ok = to_vec(&vec![vec![1u8, 2], vec![3]]).unwrap();
        assert_eq!(check_shape(&ok, shape), Ok(()));
        let err = |bytes: &[u8]| check_shape(bytes, shape).unwrap_err();
        assert_eq!(check_shape(&[0x81, 0x81, 0x81, 0x01], shape), Ok(()));
        assert!(err(&[0x81, 0x81, 0x81, 0x81, 0x01]).contains("deeper"));
        assert!(err(&[0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).contains("more than 10"));
        // Declared lengths beyond the input, however large, fail before any allocation.
        assert!(err(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).contains("only 0 follow"));
        assert!(err(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).contains("declares"));
        assert!(err(&[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).contains("too many"));
        assert!(err(&[0x9f, 0xff]).contains("indefinite"));
        assert!(err(&[0x1c]).contains("reserved"));
        assert!(err(&[0x01, 0x01]).contains("after"));
        assert!(err(&[0x82, 0x81, 0x01]).contains("ends early"));
        assert!(err(&[0x19, 0x01]).contains("ends early"));
        assert!(err(&[]).contains("ends early"));
        // Tags nest like arrays.
        assert!(err(&[0xc1, 0xc1, 0xc1, 0xc1, 0x01]).contains("deeper"));
        assert_eq!(check_shape(&[0xc1, 0x01], shape), Ok(()));
    }
}
