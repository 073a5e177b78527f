//! Byte ranges of a file (RFC 9110 §14), for every whole-file answer
//! (`Response::finish` applies them): one range of `bytes=FIRST-LAST`,
//! `bytes=FIRST-` or `bytes=-SUFFIX` is answered 206 with that part,
//! streamed; a range past the end 416. A header that is not one range of
//! bytes (several ranges, another unit, a typo) is ignored and the whole
//! file sent, as the RFC allows.

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Asked {
    Whole,
    /// The first byte and the length.
    Part(u64, u64),
    Unsatisfiable,
}

pub(super) fn parse(header: Option<&str>, len: u64) -> Asked {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Asked::Whole };
    let Some((first, last)) = spec.trim().split_once('-') else { return Asked::Whole };
    if spec.contains(',') {
        return Asked::Whole;
    }
    let number =
        |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok()).flatten();
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => Asked::Unsatisfiable,
            Some(n) if len > 0 => Asked::Part(len - n.min(len), n.min(len)),
            Some(_) => Asked::Unsatisfiable,
            None => Asked::Whole,
        },
        (first, "") => match number(first) {
            Some(a) if a < len => Asked::Part(a, len - a),
            Some(_) => Asked::Unsatisfiable,
            None => Asked::Whole,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b && a < len => Asked::Part(a, b.min(len - 1) - a + 1),
            (Some(a), Some(b)) if a <= b => Asked::Unsatisfiable,
            _ => Asked::Whole,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_of_bytes() {
        assert_eq!(parse(None, 10), Asked::Whole);
        assert_eq!(parse(Some("bytes=0-3"), 10), Asked::Part(0, 4));
        assert_eq!(parse(Some("bytes=5-"), 10), Asked::Part(5, 5));
        assert_eq!(parse(Some("bytes=8-100"), 10), Asked::Part(8, 2));
        assert_eq!(parse(Some("bytes=-3"), 10), Asked::Part(7, 3));
        assert_eq!(parse(Some("bytes=-30"), 10), Asked::Part(0, 10));
        assert_eq!(parse(Some("bytes=10-"), 10), Asked::Unsatisfiable);
        assert_eq!(parse(Some("bytes=10-12"), 10), Asked::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Asked::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-5"), 0), Asked::Unsatisfiable);
        for ignored in ["bytes=0-1,3-4", "items=0-1", "bytes=3-1", "bytes=a-", "bytes=-", "bytes=+1-2", "0-1"] {
            assert_eq!(parse(Some(ignored), 10), Asked::Whole, "{ignored}");
        }
    }
}
