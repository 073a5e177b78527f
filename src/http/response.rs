//! Responses: status, content type, extra headers, and a body held in memory
//! or streamed from a file.

use std::fs::File;
use std::io::{self, Seek as _, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use super::body::{Log, LogLine, Replace, Sent, read_exactly};
use super::head::Request;

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
    /// Part of a regular file: the file (positioned at the part's start)
    /// and the part's length.
    Part(File, u64),
    /// A regular file and its length, sent with a placeholder replaced as it streams.
    Replaced(File, u64, Box<Replace>),
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

    /// A whole-file response made to replace `placeholder` by `value` as it
    /// streams; any other response (an error opening the file) as it is.
    pub(super) fn replacing(self, placeholder: &str, value: &str) -> Self {
        match self.body {
            Body::File(file, len) if self.status == 200 => {
                Response { body: Body::Replaced(file, len, Box::new(Replace::new(placeholder, value))), ..self }
            }
            _ => self,
        }
    }

    /// The body's length.
    fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, length) | Body::Part(_, length) | Body::Replaced(_, length, _) => *length,
        }
    }

    /// The response hyper sends for `request`: with validators (`ETag`,
    /// and `Last-Modified` for a file) unless the handler set its own,
    /// answered 304 when the client's copy is current, and gzip-compressed
    /// when the client accepts it and the content is text.
    pub(super) fn finish(self, request: &Request, log: Log, head: &str) -> hyper::Response<Sent> {
        let range = request.range().filter(|_| self.range_applies(request));
        self.narrowed(range).headers_and_body(request, log, head)
    }

    /// A whole file (200) answered as the one range of bytes the request
    /// asks for (206), or 416 when the range is past its end: every file
    /// route resumes, not only those that ask for it.
    fn narrowed(mut self, range: Option<&str>) -> Self {
        let Body::File(file, len) = &mut self.body else { return self };
        if self.status != 200 {
            return self;
        }
        let len = *len;
        if !self.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept-ranges")) {
            self.headers.push(("Accept-Ranges", "bytes".into()));
        }
        match super::range::parse(range, len) {
            super::range::Asked::Whole => self,
            super::range::Asked::Part(start, part) => {
                if let Err(e) = file.seek(io::SeekFrom::Start(start)) {
                    return Response::from_error(&e);
                }
                let Body::File(file, _) = self.body else { unreachable!("matched above") };
                self.body = Body::Part(file, part);
                self.status = 206;
                self.header("Content-Range", format!("bytes {start}-{}/{len}", start + part - 1))
            }
            super::range::Asked::Unsatisfiable => {
                Response::status(416).header("Content-Range", format!("bytes */{len}"))
            }
        }
    }

    fn headers_and_body(mut self, request: &Request, log: Log, head: &str) -> hyper::Response<Sent> {
        let own_tag = self.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("etag"));
        let text = compressible(&self.content_type);
        let gzip =
            !own_tag && self.status == 200 && text && accepts_gzip(&request.accept_encoding) && self.len() >= MIN_GZIP;
        if text {
            self.headers.push(("Vary", "Accept-Encoding".into()));
        }
        if !own_tag && matches!(self.status, 200 | 206) {
            let (tag, modified) = self.validators();
            let tag = if gzip { format!("{}-gzip\"", tag.trim_end_matches('"')) } else { tag };
            let current = self.status == 200 && not_modified(request, &tag, modified);
            self.headers.push(("ETag", tag));
            if let Some(modified) = modified {
                self.headers.push(("Last-Modified", httpdate::fmt_http_date(modified)));
            }
            if current {
                self.status = 304;
                self.body = Body::Bytes(Vec::new());
            }
        }
        if self.len() <= INLINE && !matches!(self.body, Body::Bytes(_)) {
            match inlined(self.body) {
                Ok(body) => self.body = body,
                Err(_) => return super::body::internal_error(),
            }
        }
        let mut builder = hyper::Response::builder()
            .status(self.status)
            .header("Content-Type", self.content_type.as_ref())
            .header("X-Content-Type-Options", "nosniff");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value.as_str());
        }
        if gzip {
            builder = builder.header("Content-Encoding", "gzip");
        } else if self.status != 304 && !matches!(self.body, Body::Replaced(..)) {
            builder = builder.header("Content-Length", self.len());
        }
        let log = LogLine { log, head: format!("{head} {}", self.status) };
        let body = match self.body {
            Body::Bytes(bytes) if gzip => Sent::bytes(gzip_all(&bytes), log),
            Body::Bytes(bytes) => Sent::bytes(bytes, log),
            Body::File(file, length) | Body::Part(file, length) => Sent::file(file, length, None, gzip, log),
            Body::Replaced(file, length, replace) => Sent::file(file, length, Some(*replace), gzip, log),
        };
        builder.body(body).unwrap_or_else(|_| super::body::internal_error())
    }

    /// Whether a `Range` continues the copy the client has: always without
    /// `If-Range`; with it, only when it names the `ETag` this response
    /// carries (the handler's own, or the file's) strongly, or exactly the
    /// file's modification date (RFC 9110 §13.1.5); else the whole file is
    /// sent, so a changed file is never spliced.
    fn range_applies(&self, request: &Request) -> bool {
        let Some(condition) = request.if_range.as_deref() else { return true };
        let Body::File(file, _) = &self.body else { return true };
        let (tag, modified) = file_validators(file, "");
        if condition.starts_with('"') {
            let own = self.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("etag"));
            return condition == own.map_or(tag.as_str(), |(_, value)| value.as_str());
        }
        let since = httpdate::parse_http_date(condition).ok();
        matches!((since, modified), (Some(since), Some(modified)) if epoch_seconds(modified) == epoch_seconds(since))
    }

    /// A strong `ETag` and, for a file, its modification time: a file's
    /// size and time to the nanosecond (as web servers make them; the mirror
    /// replaces files, it does not rewrite them), a document's BLAKE3.
    fn validators(&self) -> (String, Option<SystemTime>) {
        match &self.body {
            Body::Bytes(bytes) => (format!("\"{}\"", &blake3::hash(bytes).to_hex()[..32]), None),
            Body::File(file, _) | Body::Part(file, _) => file_validators(file, ""),
            // What replaces the placeholder is part of what is sent.
            Body::Replaced(file, _, replace) => {
                file_validators(file, &format!("-{}", &blake3::hash(&replace.to).to_hex()[..8]))
            }
        }
    }
}

/// A file's size and time to the nanosecond (with `suffix`), and that time.
fn file_validators(file: &File, suffix: &str) -> (String, Option<SystemTime>) {
    let meta = file.metadata().ok();
    let modified = meta.as_ref().and_then(|m| m.modified().ok());
    let nanos = modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let size = meta.map_or(0, |m| m.len());
    (format!("\"{size:x}-{nanos:x}{suffix}\""), modified)
}

/// Whole seconds since the epoch: HTTP dates have no finer resolution.
fn epoch_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Files up to this size are read when the answer is made and sent in one
/// piece: one chunk either way, without a second trip to the blocking pool.
const INLINE: u64 = 64 * 1024;

/// A small file body, read now.
fn inlined(body: Body) -> io::Result<Body> {
    match body {
        Body::File(file, len) | Body::Part(file, len) => Ok(Body::Bytes(read_exactly(&file, len)?)),
        Body::Replaced(file, len, mut replace) => Ok(Body::Bytes(replace.apply(&read_exactly(&file, len)?, true))),
        bytes @ Body::Bytes(_) => Ok(bytes),
    }
}

/// Bodies below this are sent as they are: compressing them saves nothing.
const MIN_GZIP: u64 = 1024;

/// Text worth compressing: pages, JSON documents, indexes.
fn compressible(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    media.starts_with("text/") || media.ends_with("json") || media.ends_with("+xml") || media == "application/xml"
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a weight above zero.
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// Whether the client's copy is the current one: `If-None-Match` naming the
/// tag (or `*`), else `If-Modified-Since` not before the file's time (RFC 9110 §13.2.2).
fn not_modified(request: &Request, tag: &str, modified: Option<SystemTime>) -> bool {
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return false;
    }
    if let Some(listed) = &request.if_none_match {
        return listed.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == tag);
    }
    let since = request.if_modified_since.as_deref().and_then(|s| httpdate::parse_http_date(s).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => epoch_seconds(modified) <= epoch_seconds(since),
        _ => false,
    }
}

fn gzip_all(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    // Writing to memory does not fail.
    encoder.write_all(data).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
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
