//! Deterministic CBOR (RFC 8949 §4.2.1) on top of ciborium.
//!
//! ciborium already writes shortest-form integers and lengths and definite
//! lengths for values whose size is known; what it does not do is sort map
//! keys. We let ciborium encode, then sort every map of its bytes in place
//! by the bytewise order of its encoded keys, refusing what the manifest
//! never needs and what would make the encoding ambiguous: floats, tags,
//! duplicate keys, indefinite lengths. Sorting only moves map entries, so
//! the canonical bytes are as long as ciborium's and can take their place:
//! the cost is the encoded size once (sized exactly beforehand), not a
//! `ciborium::Value` tree or a second copy, which matters for manifests of
//! tens of thousands of entries.
//!
//! Decoding is the mirror image: check the document's shape without
//! decoding it ([`check_shape`]), decode straight to the Rust type (with a
//! recursion limit), re-encode that canonically, and reject the input unless
//! the two byte strings are identical.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How deep a manifest may nest; ours needs 5.
pub(crate) const RECURSION_LIMIT: usize = 16;

/// Encodes `value` canonically.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    // Counted first so that the buffer is allocated once at its final size:
    // growing by doubling would reserve up to twice a large manifest.
    let mut bytes = Vec::with_capacity(encoded_len(value)?);
    ciborium::into_writer(value, &mut bytes).map_err(|e| e.to_string())?;
    let end = canonicalize(&mut bytes, 0)?;
    debug_assert_eq!(end, bytes.len(), "ciborium writes one item");
    Ok(bytes)
}

/// How long the canonical encoding of `value` is (as long as ciborium's:
/// sorting maps only moves their entries), without making it.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, String> {
    let mut counter = ByteCounter(0);
    ciborium::into_writer(value, &mut counter).map_err(|e| e.to_string())?;
    Ok(counter.0)
}

/// Counts the bytes written to it and keeps none.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a CBOR array of `len` items canonically to `out`, one item at a
/// time, so that a long sequence is never held encoded (or twice): the
/// canonical form of an array is its header followed by its items' canonical forms.
pub fn write_seq<T: Serialize>(
    out: &mut dyn std::io::Write,
    len: usize,
    items: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    write_head(&mut head, 4, len as u64);
    out.write_all(&head)?;
    let mut count = 0;
    // One buffer for every item, without the length count `to_vec` makes
    // first: items are small, and there may be tens of thousands of them.
    let mut buf = Vec::new();
    for item in items {
        buf.clear();
        ciborium::into_writer(&item, &mut buf).map_err(std::io::Error::other)?;
        canonicalize(&mut buf, 0).map_err(std::io::Error::other)?;
        out.write_all(&buf)?;
        count += 1;
    }
    if count != len {
        return Err(std::io::Error::other(format!("{count} items where the array header says {len}")));
    }
    Ok(())
}

/// Reads what [`write_seq`] wrote, one item at a time: the array's head,
/// then each item decoded and handed to `each` before the next is read, so
/// that the caller keeps only what it needs of them. Returns the count.
/// (For files this program wrote, such as the mirror's inventory: items are
/// decoded as they come, without the canonical check of [`from_slice`].)
pub fn read_seq<T: DeserializeOwned>(reader: impl std::io::Read, mut each: impl FnMut(T)) -> Result<u64, String> {
    read_seq_announced(reader, |len| len, |_, item| each(item))
}

/// [`read_seq`] with a state: `begin` makes it from the array's length
/// before the first item, `each` gets it with every item, and it is
/// returned at the end.
pub fn read_seq_announced<S, T: DeserializeOwned>(
    mut reader: impl std::io::Read,
    begin: impl FnOnce(u64) -> S,
    mut each: impl FnMut(&mut S, T),
) -> Result<S, String> {
    // The head: its initial byte, then the argument bytes that byte announces, read by `header`.
    let mut head = [0u8; 9];
    reader.read_exact(&mut head[..1]).map_err(|e| format!("the array's head: {e}"))?;
    let follow = match head[0] & 0x1f {
        info @ 24..=27 => 1 << (info - 24),
        _ => 0,
    };
    reader.read_exact(&mut head[1..=follow]).map_err(|e| format!("the array's head: {e}"))?;
    let (major, _, len, _) = header(&head[..=follow], 0)?;
    if major != 4 {
        return Err(format!("an item of major type {major} where an array was expected"));
    }
    let mut state = begin(len);
    for k in 0..len {
        let item = ciborium::de::from_reader_with_recursion_limit(&mut reader, RECURSION_LIMIT)
            .map_err(|e| format!("item {} of {len}: {e}", k + 1))?;
        each(&mut state, item);
    }
    let mut after = [0u8; 1];
    match reader.read(&mut after) {
        Ok(0) => Ok(state),
        Ok(_) => Err(format!("data after the {len} items of the array")),
        Err(e) => Err(format!("after the array: {e}")),
    }
}

/// Decodes `bytes`, which must be the canonical encoding of a `T`.
pub fn from_slice<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let decoded: T = decode_unchecked(bytes)?;
    // One buffer of the document's size: to_vec sorts in place.
    if to_vec(&decoded)? != bytes {
        return Err(NOT_CANONICAL.into());
    }
    Ok(decoded)
}

/// Why a document that decodes is refused: it is not the one encoding.
pub(crate) const NOT_CANONICAL: &str = "not in deterministic encoding (RFC 8949 §4.2.1)";

/// Decodes `bytes` after checking their shape, without checking that they
/// are the canonical encoding: the caller must (as `from_slice` does).
pub(crate) fn decode_unchecked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check_shape(bytes, Shape { depth: RECURSION_LIMIT, items: bytes.len() })?;
    ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT).map_err(|e| match e {
        // A semantic error's message is what a reader wants (a missing field, a wrong type).
        ciborium::de::Error::Semantic(_, message) => message,
        other => format!("not CBOR: {other}"),
    })
}

/// Whether `encoded` is the canonical encoding of `value`; `buf` is
/// scratch space, reused across calls.
pub(crate) fn encodes_as<T: Serialize>(value: &T, encoded: &[u8], buf: &mut Vec<u8>) -> Result<bool, String> {
    buf.clear();
    ciborium::into_writer(value, &mut *buf).map_err(|e| e.to_string())?;
    canonicalize(buf, 0)?;
    Ok(buf.as_slice() == encoded)
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

/// Where the content of the item starting at `at` begins: after its head.
pub(crate) fn content_start(bytes: &[u8], at: usize) -> Result<usize, String> {
    header(bytes, at).map(|(_, _, _, next)| next)
}

/// Where the item starting at `at` ends, within `bytes`.
pub(crate) fn item_end(bytes: &[u8], at: usize) -> Result<usize, String> {
    let end = skip(bytes, at)?;
    if end > bytes.len() {
        return Err("the CBOR document ends early".into());
    }
    Ok(end)
}

/// Appends the shortest head of an item of major type `major` with `argument`
/// (a string's length, an array's item count).
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let big_endian = argument.to_be_bytes();
    // The argument in the initial byte, or in the fewest of 1, 2, 4 or 8 bytes after it.
    let (info, follow) = match argument {
        0..=23 => (big_endian[7], 0),
        24..=0xff => (24, 1),
        0x100..=0xffff => (25, 2),
        0x1_0000..=0xffff_ffff => (26, 4),
        _ => (27, 8),
    };
    out.push(major << 5 | info);
    out.extend_from_slice(&big_endian[8 - follow..]);
}

/// Sorts every map in the item at `at` in place; returns where the item ends.
fn canonicalize(bytes: &mut [u8], at: usize) -> Result<usize, String> {
    let (major, info, argument, next) = header(bytes, at)?;
    match (major, info) {
        (6, _) => Err(format!("CBOR tag {argument} is not allowed")),
        (7, 25..=27) => Err("floating-point values are not allowed".into()),
        (4, _) => {
            let mut item = next;
            for _ in 0..argument {
                item = canonicalize(bytes, item)?;
            }
            Ok(item)
        }
        (5, _) => sort_map(bytes, next, argument),
        _ => item_end(bytes, at),
    }
}

/// One entry of a map being sorted: where its key starts, where its value
/// starts and where it ends.
#[derive(Debug, Clone, Copy)]
struct MapEntry {
    key: usize,
    value: usize,
    end: usize,
}

/// Canonicalizes the `count` entries of the map whose first key is at `first`
/// and puts them in the bytewise order of their keys; returns where the map ends.
fn sort_map(bytes: &mut [u8], first: usize, count: u64) -> Result<usize, String> {
    let mut entries = Vec::new();
    let mut item = first;
    for _ in 0..count {
        let value = canonicalize(bytes, item)?;
        let end = item_end(bytes, value)?;
        entries.push(MapEntry { key: item, value, end });
        item = end;
    }
    let key = |e: &MapEntry| e.key..e.value;
    entries.sort_by(|a, b| bytes[key(a)].cmp(&bytes[key(b)]));
    if entries.windows(2).any(|w| bytes[key(&w[0])] == bytes[key(&w[1])]) {
        return Err("duplicate map key".into());
    }
    // A value's canonical form does not depend on where it sits, so values
    // are sorted where they are and moved with their entry afterwards.
    for entry in &entries {
        canonicalize(bytes, entry.value)?;
    }
    reorder(&mut bytes[first..item], first, &entries);
    Ok(item)
}

/// Most entries a map may have to be reordered by rotating its bytes in
/// place; larger maps go through a copy of the map. Rotation moves up to
/// entries × map size bytes, which for our maps (at most a dozen entries,
/// one of them the whole manifest's) is cheap and needs no second copy of
/// the manifest; a copy keeps maps with many entries linear.
const ROTATE_MAX_ENTRIES: usize = 16;

/// Rewrites `map`, the bytes of `sorted`'s entries starting at offset
/// `base` of the document, with the entries in `sorted` order.
fn reorder(map: &mut [u8], base: usize, sorted: &[MapEntry]) {
    if sorted.is_sorted_by_key(|e| e.key) {
        return;
    }
    if sorted.len() > ROTATE_MAX_ENTRIES {
        let mut copy = Vec::with_capacity(map.len());
        for entry in sorted {
            copy.extend_from_slice(&map[entry.key - base..entry.end - base]);
        }
        map.copy_from_slice(&copy);
        return;
    }
    // Lengths of the entries not yet placed, by their first key offset, in
    // the order they now lie in after `placed` bytes of placed ones.
    let mut unplaced: Vec<(usize, usize)> = sorted.iter().map(|e| (e.key, e.end - e.key)).collect();
    unplaced.sort_unstable();
    let mut placed = 0;
    for entry in sorted {
        let index = unplaced.iter().position(|u| u.0 == entry.key).expect("each entry is placed once");
        let before: usize = unplaced[..index].iter().map(|u| u.1).sum();
        let len = unplaced.remove(index).1;
        map[placed..placed + before + len].rotate_right(len);
        placed += len;
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
    fn a_sequence_is_read_back_item_by_item_to_its_end_and_no_further() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Item {
            name: String,
            maybe: Option<u64>,
            list: Vec<u8>,
        }
        // Lengths around every width of an array's head: 0, 23, 24, 255, 256, 70 000.
        for len in [0usize, 1, 23, 24, 255, 256, 70_000] {
            let items = || {
                (0..len).map(|i| Item {
                    name: "x".repeat(i % 30),
                    maybe: (i % 3 == 0).then_some(i as u64),
                    list: vec![1; i % 5],
                })
            };
            let mut bytes = Vec::new();
            write_seq(&mut bytes, len, items()).unwrap();
            let mut read = Vec::new();
            assert_eq!(read_seq(bytes.as_slice(), |item: Item| read.push(item)).unwrap(), len as u64);
            assert!(read.into_iter().eq(items()), "{len} items");
            // One byte more, or one fewer, is refused.
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(read_seq(longer.as_slice(), |_: Item| ()).is_err());
            assert!(read_seq(&bytes[..bytes.len() - 1], |_: Item| ()).is_err());
        }
    }

    /// The copying encoder this module had before sorting in place: every
    /// map's entries copied into a new buffer in key order.
    fn copied_canonical(plain: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
        let (major, _, argument, next) = header(plain, at).unwrap();
        out.extend_from_slice(&plain[at..next]);
        match major {
            4 => (0..argument).fold(next, |item, _| copied_canonical(plain, item, out)),
            5 => {
                let mut entries = Vec::new();
                let mut item = next;
                for _ in 0..argument {
                    let mut key = Vec::new();
                    let value = copied_canonical(plain, item, &mut key);
                    item = skip(plain, value).unwrap();
                    entries.push((key, value));
                }
                entries.sort();
                for (key, value) in entries {
                    out.extend_from_slice(&key);
                    copied_canonical(plain, value, out);
                }
                item
            }
            _ => {
                let end = skip(plain, at).unwrap();
                out.extend_from_slice(&plain[next..end]);
                end
            }
        }
    }

    fn assert_same_as_copying<T: Serialize>(value: &T) {
        let mut plain = Vec::new();
        ciborium::into_writer(value, &mut plain).unwrap();
        let mut expected = Vec::new();
        copied_canonical(&plain, 0, &mut expected);
        assert_eq!(to_vec(value).unwrap(), expected);
        assert_eq!(encoded_len(value).unwrap(), expected.len());
    }

    #[test]
    fn sorting_in_place_gives_the_bytes_copying_gave() {
        // Keys whose text order is not their canonical order ("b" < "aa"),
        // in maps small enough to rotate and large enough to copy.
        let key = |i: usize| "k".repeat(i % 7 + 1) + &format!("{}", (i * 37) % 101);
        for len in [0, 1, 2, 5, ROTATE_MAX_ENTRIES, ROTATE_MAX_ENTRIES + 1, 200] {
            let map: BTreeMap<String, Vec<u8>> = (0..len).map(|i| (key(i), vec![0; i * 13 % 300])).collect();
            assert_same_as_copying(&map);
            let nested: BTreeMap<String, BTreeMap<String, Vec<u8>>> =
                (0..len.min(20)).map(|i| (key(i * 5), map.clone())).collect();
            assert_same_as_copying(&nested);
            assert_same_as_copying(&vec![map.clone(), BTreeMap::new(), map]);
        }
        // Maps as keys, and values of every size class before and after them.
        let inner =
            Value::Map(vec![(Value::Text("zz".into()), Value::Integer(1.into())), (Value::Bool(true), Value::Null)]);
        let outer = Value::Map(vec![
            (Value::Bytes(vec![9; 300]), Value::Text("x".repeat(70_000))),
            (inner.clone(), inner.clone()),
            (Value::Integer((-5).into()), Value::Array(vec![inner; 3])),
            (Value::Text("a".into()), Value::Bytes(vec![])),
        ]);
        assert_same_as_copying(&outer);
        let mut manifest = crate::manifest::tests::sample();
        manifest.entries = (0..50).map(|_| manifest.entries[0].clone()).collect();
        assert_same_as_copying(&manifest);
    }

    #[test]
    fn heads_are_shortest_form() {
        for n in [0u64, 23, 24, 255, 256, 65_535, 65_536, 0xffff_ffff, 0x1_0000_0000, u64::MAX] {
            let mut head = Vec::new();
            write_head(&mut head, 0, n);
            let mut expected = Vec::new();
            ciborium::into_writer(&n, &mut expected).unwrap();
            assert_eq!(head, expected, "{n}");
            let mut bytes_head = Vec::new();
            write_head(&mut bytes_head, 2, n);
            assert_eq!(bytes_head[0], expected[0] | 0x40);
            assert_eq!(bytes_head[1..], expected[1..]);
        }
    }

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
