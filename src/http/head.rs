//! The request head as handlers and responses see it, taken from what
//! hyper parsed: the method and target (for the route and the log), and
//! the few headers anything here reads.

use std::net::SocketAddr;

use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, HOST, HeaderMap, HeaderName, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE,
};

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method and the target's path and query, as received.
    pub(super) method: String,
    pub(super) target: String,
    host: Option<String>,
    accept: String,
    /// `Range`, for a route that serves byte ranges.
    range: Option<String>,
    /// The validators a client sends to revalidate what it has.
    pub(super) if_none_match: Option<String>,
    pub(super) if_modified_since: Option<String>,
    /// `If-Range`: the tag or date of the copy a range continues.
    pub(super) if_range: Option<String>,
    pub(super) accept_encoding: String,
    /// The connection's local address, the fallback for a missing Host.
    local: SocketAddr,
}

impl Request {
    pub(super) fn from_parts(parts: &hyper::http::request::Parts, local: SocketAddr) -> Self {
        let headers = &parts.headers;
        let target = parts.uri.path_and_query().map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned());
        Request {
            method: parts.method.as_str().to_owned(),
            target,
            host: first(headers, &HOST).or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned())),
            accept: joined(headers, &ACCEPT),
            range: first(headers, &RANGE),
            if_none_match: Some(joined(headers, &IF_NONE_MATCH)).filter(|v| !v.is_empty()),
            if_modified_since: first(headers, &IF_MODIFIED_SINCE),
            if_range: first(headers, &IF_RANGE),
            accept_encoding: joined(headers, &ACCEPT_ENCODING),
            local,
        }
    }

    /// `http://HOST` for URLs that point back at this server.
    #[must_use]
    pub fn base(&self) -> String {
        match &self.host {
            Some(host) if valid_host(host) => format!("http://{host}"),
            _ => format!("http://{}", self.local),
        }
    }

    /// Whether the Accept headers (joined) mention `content_type`.
    #[must_use]
    pub fn accepts(&self, content_type: &str) -> bool {
        self.accept.contains(content_type)
    }

    /// The `Range` header, if one was sent.
    #[must_use]
    pub fn range(&self) -> Option<&str> {
        self.range.as_deref()
    }
}

/// The first value of `name`, if it is text.
fn first(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned())
}

/// Every value of `name` that is text, joined with `, ` as one list.
fn joined(headers: &HeaderMap, name: &HeaderName) -> String {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::trim).collect();
    values.join(", ")
}

/// Only what can be a host name, IP literal and port, so nothing else reaches the JSON we write.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_sanitized() {
        assert!(valid_host("127.0.0.1:8080"));
        assert!(valid_host("[::1]:80"));
        assert!(!valid_host("evil\",\"x"));
        assert!(!valid_host(""));
    }

    #[test]
    fn headers_are_read_from_the_parsed_head() {
        let request = hyper::Request::get("http://mirror.example/npm/x?q=1")
            .header("Accept", "application/json")
            .header("Accept", "text/html")
            .header("If-None-Match", "\"a\"")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let request = Request::from_parts(&parts, "127.0.0.1:1".parse().unwrap());
        assert_eq!(request.target, "/npm/x?q=1");
        assert_eq!(request.base(), "http://mirror.example");
        assert!(request.accepts("text/html") && request.accepts("application/json"));
        assert_eq!(request.if_none_match.as_deref(), Some("\"a\""));
        assert_eq!(request.range(), None);
    }
}
