//! From a request target to a [`Route`]: the method check, percent-decoding
//! once, and the path rules that keep a request inside what is served.

use std::fmt::Write as _;

use super::head::Request;
use super::response::Response;
use super::server::Handler;

/// A GET or HEAD request with its decoded, checked path, as a handler sees it.
pub struct Route<'a> {
    pub request: &'a Request,
    /// The decoded path's segments (below what [`split_first`](Route::split_first) took off).
    pub segments: &'a [&'a str],
    /// Whether the path ends in a slash.
    pub dir: bool,
    /// The same segments as sent (still encoded), in step with `segments`;
    /// empty once a prefix taken off held an encoded slash.
    encoded: &'a [&'a str],
    /// The path as received (still encoded) and the query, for redirects.
    raw_path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Route<'a> {
    /// The first segment and the route below it.
    #[must_use]
    pub fn split_first(&self) -> Option<(&'a str, Route<'a>)> {
        let (first, rest) = self.segments.split_first()?;
        let encoded = match self.encoded.split_first() {
            Some((sent, tail)) if percent_decode(sent).as_deref() == Some(*first) => tail,
            _ => &[],
        };
        Some((first, Route { segments: rest, encoded, ..*self }))
    }

    /// The segments decoded one by one as the client sent them, so that a
    /// segment with an encoded slash (`refs%2Fpr%2F1`, as the hub client
    /// sends a revision) stays one; `None` when that is no longer known.
    /// Each is made of segments the path checks passed.
    #[must_use]
    pub fn segments_as_sent(&self) -> Option<Vec<String>> {
        if self.encoded.is_empty() && !self.segments.is_empty() {
            return None;
        }
        self.encoded.iter().map(|s| percent_decode(s)).collect()
    }

    /// The segments after `prefix` (a `/`-separated path), if the route starts with it.
    #[must_use]
    pub fn below(&self, prefix: &str) -> Option<&'a [&'a str]> {
        let mut rest = self.segments;
        for part in prefix.split('/') {
            let (first, tail) = rest.split_first()?;
            if *first != part {
                return None;
            }
            rest = tail;
        }
        Some(rest)
    }

    /// Whether the route is exactly the file `path` (a `/`-separated path, no trailing slash).
    #[must_use]
    pub fn is(&self, path: &str) -> bool {
        !self.dir && self.below(path).is_some_and(<[&str]>::is_empty)
    }

    /// The query string (after `?`, still encoded), if there is one.
    #[must_use]
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// `http://HOST` for URLs that point back at this server.
    #[must_use]
    pub fn base(&self) -> String {
        self.request.base()
    }

    /// 301 to the same path with a slash added, keeping the query.
    #[must_use]
    pub fn redirect_to_dir(&self) -> Response {
        let mut location = format!("{}/", self.raw_path);
        if let Some(query) = self.query {
            let _ = write!(location, "?{query}");
        }
        Response::status(301).header("Location", location)
    }
}

/// Checks the method and the path, then asks `handler`.
pub(super) fn respond(handler: &dyn Handler, request: &Request) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::status(405).header("Allow", "GET, HEAD".into());
    }
    let target = request.target.as_str();
    let (raw_path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let Some(path) = percent_decode(raw_path) else {
        return Response::status(400);
    };
    let Some((segments, dir)) = split_path(&path) else {
        return Response::status(400);
    };
    let trimmed = raw_path.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let encoded: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
    handler.respond(&Route { request, segments: &segments, dir, encoded: &encoded, raw_path, query })
}

/// Decodes `%XX` escapes once; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex_digit(*bytes.get(i + 1)?)?;
            let low = hex_digit(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Splits a decoded path into its segments and whether it ends in a slash;
/// `None` (400) for anything that could step outside or is ambiguous.
fn split_path(path: &str) -> Option<(Vec<&str>, bool)> {
    let rest = path.strip_prefix('/')?;
    if path.contains('\\') || path.chars().any(char::is_control) {
        return None;
    }
    if rest.is_empty() {
        return Some((Vec::new(), true));
    }
    let dir = rest.ends_with('/');
    let body = if dir { &rest[..rest.len() - 1] } else { rest };
    let segments: Vec<&str> = body.split('/').collect();
    // `..` and `.` are refused as segments (after decoding, so `%2e%2e` too),
    // not as substrings: `release..notes.txt` is a file name like any other.
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return None;
    }
    Some((segments, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_once_and_checked() {
        assert_eq!(percent_decode("/npm/@scope%2fname").as_deref(), Some("/npm/@scope/name"));
        assert_eq!(percent_decode("/a%252e").as_deref(), Some("/a%2e"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/a%+f"), None);
        assert_eq!(percent_decode("/a%ff"), None);
        assert_eq!(split_path("/"), Some((vec![], true)));
        assert_eq!(split_path("/pypi/simple/"), Some((vec!["pypi", "simple"], true)));
        assert_eq!(split_path("/files/a"), Some((vec!["files", "a"], false)));
        for bad in
            ["", "x", "/a/../b", "/..", "/../", "/a/..", "/a/.", "/a//b", "//etc", "/a\\b", "/a\0b", "/./a", "/a\nb"]
        {
            assert_eq!(split_path(bad), None, "{bad:?}");
        }
        for encoded in ["/files/%2e%2e/x", "/files/a%2f%2e%2e%2fb", "/files/.%2e", "/files/a%5cb", "/files/a%00b"] {
            assert_eq!(split_path(&percent_decode(encoded).unwrap()), None, "{encoded:?}");
        }
        for name in ["release..notes.txt", "..hidden", "a..", "..."] {
            let path = format!("/files/{name}");
            assert_eq!(split_path(&path), Some((vec!["files", name], false)), "{name:?}");
        }
    }
}
