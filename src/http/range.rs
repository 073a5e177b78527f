//! Byte ranges of a file (RFC 9110 §14): one range of `bytes=FIRST-LAST`,
//! `bytes=FIRST-` or `bytes=-SUFFIX` is answered 206 with that part,
//! streamed; a range past the end 416. A header that is not one range of
//! bytes (several ranges, another unit, a typo) is ignored and the whole
//! file sent, as the RFC allows.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use super::response::{Body, Response};

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

/// A regular file streamed whole (200) or in the part `range` asks (206,
/// 416 when past its end), with `Accept-Ranges: bytes`.
#[must_use]
pub fn open_range(path: &Path, content_type: &'static str, range: Option<&str>) -> Response {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return Response::from_error(&e),
    };
    let len = match file.metadata() {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => return Response::status(404),
        Err(e) => return Response::from_error(&e),
    };
    let response = match parse(range, len) {
        Asked::Whole => Response::with_body(200, content_type, Body::File(file, len)),
        Asked::Part(start, part) => {
            if let Err(e) = file.seek(SeekFrom::Start(start)) {
                return Response::from_error(&e);
            }
            Response::with_body(206, content_type, Body::Part(file, part))
                .header("Content-Range", format!("bytes {start}-{}/{len}", start + part - 1))
        }
        Asked::Unsatisfiable => Response::status(416).header("Content-Range", format!("bytes */{len}")),
    };
    response.header("Accept-Ranges", "bytes".into())
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
