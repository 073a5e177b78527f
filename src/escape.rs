//! Escaping for the documents airlock generates from entry data: the
//! PyPI simple pages (HTML), the SBOM's package URLs, the URLs in pages.
//! Names and versions pass their ecosystem's grammar before anything is
//! published, but the pages do not rely on it: whatever text reaches a
//! document goes through here, so no name can become markup or a scheme.
//! JSON documents are built with `serde_json`, which escapes by construction.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with its control characters (line breaks, escape sequences)
/// written as Rust escapes, for one line of a terminal or a log: text from
/// a bundle or a lockfile can then neither break the one-line error rule
/// nor drive the terminal.
#[must_use]
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` for HTML element content or a quoted attribute value (either
/// quote): `&`, `<`, `>`, `"` and `'` become character references.
#[must_use]
pub fn html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` as one segment of a URL path (or of a package URL): every byte
/// but the unreserved `A-Za-z0-9-._~` (RFC 3986 §2.3) is percent-encoded,
/// so a segment holds no `/`, `?`, `#` or `:` (a relative link stays
/// relative: `javascript:x` becomes `javascript%3Ax`).
#[must_use]
pub fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A relative URL path: each `/`-separated segment through [`url_segment`].
#[must_use]
pub fn url_path(path: &str) -> String {
    path.split('/').map(url_segment).collect::<Vec<_>>().join("/")
}

/// What the tests of every generated document render: names and texts
/// that would be markup, break out of an attribute, or be a scheme if
/// they were written as they are (none holds a `/`, so each can be a path
/// component). The grammar refuses them all; the documents are tested
/// without it.
#[cfg(test)]
pub(crate) mod testing {
    pub const HOSTILE: &[&str] = &[
        "<svg onload=alert(1)>",
        "\"><svg onload=alert(1)>",
        "' onmouseover='alert(1)",
        "x\" data-x=\"y",
        "a&b&amp;c",
        "javascript:alert(1)",
        "<a href=\"javascript:alert(1)\">x",
    ];

    /// The markup of an HTML document as a browser would take it apart:
    /// each tag as its name and attribute names (values left out), and
    /// every `href` value with its character references undone.
    pub fn skeleton(html: &str) -> (Vec<String>, Vec<String>) {
        let mut tags = Vec::new();
        let mut hrefs = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            rest = &rest[start + 1..];
            let mut tag = String::new();
            let mut attribute = String::new();
            while let Some(c) = rest.chars().next() {
                rest = &rest[c.len_utf8()..];
                match c {
                    '>' => break,
                    '"' => {
                        let end = rest.find('"').unwrap_or(rest.len());
                        if attribute.trim_end_matches('=').trim() == "href" {
                            hrefs.push(unescape(&rest[..end]));
                        }
                        rest = &rest[(end + 1).min(rest.len())..];
                        tag.push_str("=\"\"");
                        attribute.clear();
                    }
                    c if c.is_whitespace() => {
                        tag.push(' ');
                        attribute.clear();
                    }
                    c => {
                        tag.push(c);
                        attribute.push(c);
                    }
                }
            }
            tags.push(tag);
        }
        (tags, hrefs)
    }

    fn unescape(value: &str) -> String {
        value
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    /// Whether an href is a relative reference: no scheme before its first `/`, `?` or `#`.
    pub fn is_relative(href: &str) -> bool {
        let head = href.split(['/', '?', '#']).next().unwrap_or_default();
        !head.contains(':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_as_escapes() {
        assert_eq!(one_line("a\nb\u{1b}[31mc\td"), "a\\nb\\u{1b}[31mc\\td");
        assert!(matches!(one_line("caf\u{e9} <x>"), Cow::Borrowed(_)));
    }

    #[test]
    fn html_escapes_markup_and_both_quotes() {
        assert_eq!(html("<svg onload=alert(1)>"), "&lt;svg onload=alert(1)&gt;");
        assert_eq!(html(r#"a"b'c&d"#), "a&quot;b&#39;c&amp;d");
        assert!(matches!(html("six-1.0.tar.gz"), Cow::Borrowed(_)));
    }

    #[test]
    fn url_segments_keep_only_unreserved_bytes() {
        assert_eq!(url_segment("six-1.0+local_x~y.whl"), "six-1.0%2Blocal_x~y.whl");
        assert_eq!(url_segment("javascript:alert(1)"), "javascript%3Aalert%281%29");
        assert_eq!(url_segment("a/b?c#d \"e'"), "a%2Fb%3Fc%23d%20%22e%27");
        assert_eq!(url_segment("\u{e9}"), "%C3%A9");
        assert_eq!(url_path("../../integrity/a b/1.0/f"), "../../integrity/a%20b/1.0/f");
    }
}
