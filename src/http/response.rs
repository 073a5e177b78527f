//! Responses: status, content type, extra headers, and a body held in memory
//! or streamed from a file.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::net::TcpStream;

pub const HTML: &str = "text/html; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const JSON: &str = "application/json";
pub const BINARY: &str = "application/octet-stream";

/// The content type of a file, by its extension.
#[must_use]
pub fn content_type(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    let extension = name.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension {
        "html" | "htm" => HTML,
        "json" => JSON,
        "txt" | "metadata" | "md" => TEXT,
        _ => BINARY,
    }
}

pub struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

pub(super) enum Body {
    Bytes(Vec<u8>),
    /// A regular file and its length when opened.
    File(File, u64),
}

impl Response {
    pub(super) fn with_body(status: u16, content_type: &'static str, body: Body) -> Self {
        Response { status, content_type, headers: Vec::new(), body }
    }

    #[must_use]
    pub fn bytes(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response::with_body(status, content_type, Body::Bytes(body.into()))
    }

    /// A bare status with a one-line text body.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Response::bytes(status, TEXT, format!("{status} {}\n", reason(status)))
    }

    /// 404, 403 or 500, as fits the error.
    #[must_use]
    pub fn from_error(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Response::status(404),
            io::ErrorKind::PermissionDenied => Response::status(403),
            _ => Response::status(500),
        }
    }

    #[must_use]
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A 200 file response cut to a single `bytes=START-[END]` or
    /// `bytes=-SUFFIX` range (206, or 416 when it is past the end);
    /// anything else is answered whole, as RFC 9110 allows.
    #[must_use]
    pub fn ranged(mut self, range: Option<&str>) -> Self {
        let (200, Some(spec), Body::File(file, length)) = (self.status, range, &mut self.body) else { return self };
        let total = *length;
        let Some((first, last)) = spec.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')) else {
            return self;
        };
        let (start, end) = match (first.trim(), last.trim()) {
            ("", suffix) => match suffix.parse::<u64>() {
                Ok(n) if n > 0 => (total.saturating_sub(n), total.saturating_sub(1)),
                _ => return self,
            },
            (start, "") => match start.parse::<u64>() {
                Ok(s) => (s, total.saturating_sub(1)),
                Err(_) => return self,
            },
            (start, end) => match (start.parse::<u64>(), end.parse::<u64>()) {
                (Ok(s), Ok(e)) if s <= e => (s, e.min(total.saturating_sub(1))),
                _ => return self,
            },
        };
        if start >= total {
            return Response::status(416).header("Content-Range", format!("bytes */{total}"));
        }
        if file.seek(io::SeekFrom::Start(start)).is_err() {
            return Response::status(500);
        }
        *length = end - start + 1;
        self.status = 206;
        self.header("Content-Range", format!("bytes {start}-{end}/{total}"))
    }

    /// The status code.
    #[must_use]
    pub fn code(&self) -> u16 {
        self.status
    }

    /// Writes the response (no body for HEAD); returns the body bytes sent.
    pub(super) fn send(self, stream: &mut TcpStream, head_only: bool) -> u64 {
        let length = match &self.body {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, length) => *length,
        };
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {length}\r\nConnection: close\r\n\
             X-Content-Type-Options: nosniff\r\n",
            self.status,
            reason(self.status),
            self.content_type
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut head = head.into_bytes();
        match self.body {
            _ if head_only => {
                let _ = stream.write_all(&head);
                0
            }
            Body::Bytes(bytes) => {
                head.extend_from_slice(&bytes);
                if stream.write_all(&head).is_ok() { length } else { 0 }
            }
            Body::File(file, length) => {
                if stream.write_all(&head).is_err() {
                    return 0;
                }
                let mut reader = (&file).take(length);
                match io::copy(&mut reader, stream) {
                    Ok(sent) => sent,
                    // What was read from the file is at most a buffer more than what was sent.
                    Err(_) => (&file).stream_position().unwrap_or(0),
                }
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_response(data: &[u8]) -> Response {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        file.seek(io::SeekFrom::Start(0)).unwrap();
        Response::with_body(200, BINARY, Body::File(file, data.len() as u64))
    }

    fn range_of(response: &Response) -> (u16, Option<&str>, u64) {
        let header = response.headers.iter().find(|(n, _)| *n == "Content-Range").map(|(_, v)| v.as_str());
        let length = match &response.body {
            Body::File(_, length) => *length,
            Body::Bytes(bytes) => bytes.len() as u64,
        };
        (response.status, header, length)
    }

    #[test]
    fn single_ranges_are_answered_with_206() {
        let data = b"0123456789";
        assert_eq!(range_of(&file_response(data).ranged(Some("bytes=2-4"))), (206, Some("bytes 2-4/10"), 3));
        assert_eq!(range_of(&file_response(data).ranged(Some("bytes=7-"))), (206, Some("bytes 7-9/10"), 3));
        assert_eq!(range_of(&file_response(data).ranged(Some("bytes=-2"))), (206, Some("bytes 8-9/10"), 2));
        assert_eq!(range_of(&file_response(data).ranged(Some("bytes=5-100"))), (206, Some("bytes 5-9/10"), 5));
        assert_eq!(range_of(&file_response(data).ranged(Some("bytes=10-"))).0, 416);
        for whole in [None, Some("bytes=4-2"), Some("items=1-2"), Some("bytes=a-b"), Some("bytes=1-2,4-5")] {
            assert_eq!(range_of(&file_response(data).ranged(whole)), (200, None, 10), "{whole:?}");
        }
    }
}
