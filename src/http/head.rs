//! Reading and parsing a request head.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use super::server::MAX_HEAD;

/// A parsed request head.
pub struct Request {
    /// For the log: the method and target as received ("-" when missing).
    pub(super) method: String,
    pub(super) target: String,
    host: Option<String>,
    accept: String,
    /// `Range`, for a route that serves byte ranges.
    range: Option<String>,
    /// The connection's local address, the fallback for a missing Host.
    local: SocketAddr,
}

impl Request {
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

/// Only what can be a host name, IP literal and port, so nothing else reaches the JSON we write.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'))
}

/// The first byte of a TLS record carrying a handshake; no HTTP method starts with it.
const TLS_HANDSHAKE: u8 = 0x16;

pub(super) enum HeadRead {
    Complete(Vec<u8>),
    /// The client connected and closed or timed out without a byte: not a request.
    Nothing,
    /// The connection ended in the middle of the head.
    Partial,
    TimedOut,
    TooLarge,
}

/// Reads up to the blank line that ends the request head, within `deadline`
/// overall (a client dripping bytes cannot hold the thread for longer).
pub(super) fn read_head(stream: &mut TcpStream, deadline: Instant) -> HeadRead {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return if head.is_empty() { HeadRead::Nothing } else { HeadRead::TimedOut };
        }
        match stream.read(&mut chunk) {
            Ok(0) => return if head.is_empty() { HeadRead::Nothing } else { HeadRead::Partial },
            // A TLS handshake (a client trying HTTPS first, as skopeo and
            // podman do for a registry they may not verify) is closed at once,
            // so the client falls back to plain HTTP without waiting out the timeout.
            Ok(_) if head.is_empty() && chunk[0] == TLS_HANDSHAKE => return HeadRead::Nothing,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return if head.is_empty() { HeadRead::Nothing } else { HeadRead::TimedOut };
            }
            Err(_) => return HeadRead::Nothing,
        }
        if let Some(end) = head_end(&head) {
            if end > MAX_HEAD {
                return HeadRead::TooLarge;
            }
            head.truncate(end);
            return HeadRead::Complete(head);
        }
        if head.len() >= MAX_HEAD {
            return HeadRead::TooLarge;
        }
    }
}

/// Where the head ends (after its blank line), accepting bare LF line ends too.
fn head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| match &buf[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

/// Parses the request line and the headers we use; `false` when the head is
/// malformed (400), with what could be read of it for the log line.
pub(super) fn parse_head(head: &[u8], local: SocketAddr) -> (Request, bool) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let mut request = Request {
        method: parts.first().filter(|m| !m.is_empty()).unwrap_or(&"-").to_string(),
        target: parts.get(1).filter(|t| !t.is_empty()).unwrap_or(&"-").to_string(),
        host: None,
        accept: String::new(),
        range: None,
        local,
    };
    let well_formed = parts.len() == 3
        && !parts[0].is_empty()
        && parts[0].bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && parts[2].starts_with("HTTP/1.")
        && !parts[1].bytes().any(|b| b.is_ascii_control());
    if !well_formed {
        return (request, false);
    }
    // Absolute form (as sent to proxies): keep only the path.
    if let Some(rest) = request.target.strip_prefix("http://").or_else(|| request.target.strip_prefix("https://")) {
        request.target = rest.find('/').map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned());
    }
    if !request.target.starts_with('/') {
        return (request, false);
    }
    for line in lines.take_while(|line| !line.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return (request, false);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("host") && request.host.is_none() {
            request.host = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("range") && request.range.is_none() {
            request.range = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("accept") {
            if !request.accept.is_empty() {
                request.accept.push_str(", ");
            }
            request.accept.push_str(value);
        }
    }
    (request, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\n"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn hosts_are_sanitized() {
        assert!(valid_host("127.0.0.1:8080"));
        assert!(valid_host("[::1]:80"));
        assert!(!valid_host("evil\",\"x"));
        assert!(!valid_host(""));
    }
}
