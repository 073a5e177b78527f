//! Deterministic CBOR (RFC 8949 §4.2.1) on top of ciborium.
//!
//! ciborium already writes shortest-form integers and lengths and definite
//! lengths for values whose size is known; what it does not do is sort map
//! keys. We go through `ciborium::Value`, sort every map by the bytewise
//! order of its encoded keys, and refuse what the manifest never needs and
//! what would make the encoding ambiguous: floats, tags, duplicate keys.
//!
//! Decoding is the mirror image: decode to a `Value` (with a recursion
//! limit), re-encode canonically, and reject the input unless the two byte
//! strings are identical. Only then is the value turned into Rust types.

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How deep a manifest may nest; ours needs 5.
const RECURSION_LIMIT: usize = 16;

/// Encodes `value` canonically.
pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let value = Value::serialized(value).map_err(|e| e.to_string())?;
    encode_value(&canonicalize(value)?)
}

/// Decodes `bytes`, accepting them only if they are the canonical encoding.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value: Value =
        ciborium::de::from_reader_with_recursion_limit(bytes, RECURSION_LIMIT).map_err(|e| format!("not CBOR: {e}"))?;
    let canonical = encode_value(&canonicalize(value.clone())?)?;
    if canonical != bytes {
        return Err("not in deterministic encoding (RFC 8949 §4.2.1)".into());
    }
    value.deserialized().map_err(|e| e.to_string())
}

fn encode_value(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn canonicalize(value: Value) -> Result<Value, String> {
    Ok(match value {
        Value::Float(_) => return Err("floating-point values are not allowed".into()),
        Value::Tag(tag, _) => return Err(format!("CBOR tag {tag} is not allowed")),
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect::<Result<_, _>>()?),
        Value::Map(entries) => {
            let mut keyed = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let k = canonicalize(k)?;
                keyed.push((encode_value(&k)?, k, canonicalize(v)?));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err("duplicate map key".into());
            }
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
