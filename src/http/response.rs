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
    content_type: std::borrow::Cow<'static, str>,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

pub(super) enum Body {
    Bytes(Vec<u8>),
    /// A regular file and its length when opened.
    File(File, u64),
    /// Part of a regular file: the file (positioned at the part's start),
    /// that start, and the part's length.
    Part(File, u64, u64),
}

impl Response {
    pub(super) fn with_body(status: u16, content_type: &'static str, body: Body) -> Self {
        Response { status, content_type: content_type.into(), headers: Vec::new(), body }
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

    /// The same response with a content type only known at run time (a
    /// document's own media type).
    #[must_use]
    pub fn typed(mut self, content_type: String) -> Self {
        self.content_type = content_type.into();
        self
    }

    #[must_use]
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
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
            Body::File(_, length) | Body::Part(_, _, length) => *length,
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
            Body::Part(file, start, length) => {
                if stream.write_all(&head).is_err() {
                    return 0;
                }
                match io::copy(&mut (&file).take(length), stream) {
                    Ok(sent) => sent,
                    Err(_) => (&file).stream_position().unwrap_or(start).saturating_sub(start),
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
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}
