//! `airlock serve`: a read-only HTTP/1.1 server over a published mirror, so
//! pip, npm and cargo on the disconnected side install from it.
//!
//! ```text
//! GET /pypi/simple/[<project>/]                        index.html (index.json for PEP 691 clients)
//! GET /pypi/simple/<project>/<file>                    artifacts and *.metadata
//! GET /pypi/integrity/<project>/<version>/<file>/provenance    PEP 740 provenance
//! GET /npm/<name>, /npm/@scope%2fname, /npm/@scope/name        the packument
//! GET /npm/<name>/-/<file>.tgz                         tarballs
//! GET /npm/-/npm/v1/attestations/<name>@<version>      attestation documents
//! GET /npm/-/npm/v1/keys                                the registry keys the import policy pins
//! GET /cargo/index/config.json                         generated sparse-registry config
//! GET /cargo/index/<prefix>/<name>                     index files
//! GET /cargo/crates/<name>/<version>/download          MIRROR/cargo/<name>-<version>.crate
//! GET /files/<path>                                    plain files
//! ```
//!
//! Packuments and the cargo config carry the placeholder `{{AIRLOCK_BASE}}`
//! (or are generated) and get `http://HOST` from the request's Host header,
//! so the URLs in them point back at this server under whatever name the
//! client used.
//!
//! Safety rules: only GET and HEAD; the path is percent-decoded once and
//! refused (400) if it then holds a `..` or `.` segment, a backslash, a
//! control character or an empty segment (`..` inside a name, as in
//! `release..notes.txt`, is fine); the mirror's links are followed, but a resolved path
//! outside the canonical mirror folder is 404; only regular files are
//! served, never a listing. One thread per connection, at most
//! [`MAX_CONNECTIONS`] at a time (more get 503), one request per
//! connection, a request head of at most [`MAX_HEAD`] bytes (else 431), and
//! 30 s to send it. File bodies are streamed, never held in memory.
//!
//! The library never prints: each request is handed to the caller's `log`
//! function as one line, `METHOD PATH STATUS BYTES` (BYTES counts the body
//! sent; `-` stands for a method or path that never arrived).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, io_reason};

/// Connections served at the same time; more are answered 503.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head (request line and headers) accepted; more is 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send its request head, and the longest a write may stall.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Connections beyond [`MAX_CONNECTIONS`] that are still answered (with 503);
/// past that they are closed unanswered.
const MAX_REFUSING: usize = 16;
/// A refused connection gets this long to send its head and read the 503.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After the response, unread input is drained this long (so closing does not
/// reset the connection before the client read the response).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// Replaced in packuments by `http://HOST`.
pub const BASE_PLACEHOLDER: &str = "{{AIRLOCK_BASE}}";
/// The PEP 691 JSON form of the simple API.
pub const PEP691_JSON: &str = "application/vnd.pypi.simple.v1+json";

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const BINARY: &str = "application/octet-stream";
const NPM_NOT_FOUND: &str = r#"{"error":"Not found"}"#;

/// What to serve and where.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The mirror folder `airlock import` publishes into.
    pub mirror: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    root: PathBuf,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// Checks that `options.mirror` is an airlock mirror and binds the listen address.
pub fn bind(options: &ServeOptions) -> Result<Server> {
    let mirror = &options.mirror;
    match fs::metadata(mirror) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Usage(format!(
                "{}: is not a folder; give --mirror the folder airlock import publishes into",
                mirror.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "{}: no such folder; give --mirror the folder airlock import publishes into",
                mirror.display()
            )));
        }
        Err(e) => return Err(Error::input(mirror, "the mirror folder", &e)),
    }
    if !mirror.join(".airlock").is_dir() {
        return Err(Error::Usage(format!(
            "{}: is not an airlock mirror (no .airlock inside); give --mirror the folder airlock import publishes into",
            mirror.display()
        )));
    }
    let root = fs::canonicalize(mirror).map_err(|e| Error::input(mirror, "the mirror folder", &e))?;
    let listener = TcpListener::bind(options.listen).map_err(|e| bind_error(options.listen, &e))?;
    let local = listener.local_addr().map_err(|e| bind_error(options.listen, &e))?;
    Ok(Server { listener, root, local, stop: Arc::new(AtomicBool::new(false)) })
}

fn bind_error(addr: SocketAddr, e: &io::Error) -> Error {
    if e.kind() == io::ErrorKind::AddrInUse {
        Error::Usage(format!("{addr}: address already in use; choose another port with --listen"))
    } else {
        Error::Usage(format!("{addr}: cannot listen there ({}); choose another address with --listen", io_reason(e)))
    }
}

impl Server {
    /// The address actually bound (with the real port when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves until stopped through a [`ServerHandle`] (from [`spawn`](Server::spawn)),
    /// or forever. Each request is passed to `log` as one line.
    pub fn run(self, log: &(dyn Fn(&str) + Sync)) -> Result<()> {
        let active = AtomicUsize::new(0);
        let refusing = AtomicUsize::new(0);
        let site = &Site { root: &self.root, local: self.local };
        thread::scope(|scope| {
            loop {
                let stream = match self.listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) if self.stop.load(Ordering::SeqCst) => break,
                    Err(_) => {
                        // Out of file descriptors or an aborted handshake: try again shortly.
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                if self.stop.load(Ordering::SeqCst) {
                    break;
                }
                let (slots, refuse) = if acquire(&active, MAX_CONNECTIONS) {
                    (&active, false)
                } else if acquire(&refusing, MAX_REFUSING) {
                    (&refusing, true)
                } else {
                    continue; // dropping the stream closes it
                };
                let spawned = thread::Builder::new().name("airlock-serve".into()).spawn_scoped(scope, move || {
                    let _slot = Slot(slots);
                    site.connection(stream, refuse, log);
                });
                if spawned.is_err() {
                    slots.fetch_sub(1, Ordering::SeqCst);
                }
            }
        });
        Ok(())
    }

    /// Runs the server on its own thread; the handle stops it (also when dropped).
    #[must_use]
    pub fn spawn(self, log: impl Fn(&str) + Send + Sync + 'static) -> ServerHandle {
        let local = self.local;
        let stop = Arc::clone(&self.stop);
        let thread = thread::Builder::new()
            .name("airlock-serve-accept".into())
            .spawn(move || self.run(&log))
            .expect("spawning the server thread");
        ServerHandle { local, stop, thread: Some(thread) }
    }
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, waits for the connections in flight, and returns what
    /// [`Server::run`] returned.
    pub fn stop(mut self) -> Result<()> {
        match self.halt() {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }

    fn halt(&mut self) -> Option<thread::Result<Result<()>>> {
        let thread = self.thread.take()?;
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; if even that fails, leave the thread be rather than hang.
        TcpStream::connect_timeout(&wake_addr(self.local), Duration::from_secs(5)).ok()?;
        Some(thread.join())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn wake_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn acquire(slots: &AtomicUsize, limit: usize) -> bool {
    slots.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1)).is_ok()
}

/// Gives a connection slot back when the connection's thread ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What every connection shares.
struct Site<'a> {
    /// The canonical mirror folder; nothing outside it is served.
    root: &'a Path,
    local: SocketAddr,
}

/// A parsed request head.
struct Request {
    /// For the log: the method and target as received ("-" when missing).
    method: String,
    target: String,
    host: Option<String>,
    accept: String,
    /// The connection's local address, the fallback for a missing Host.
    local: SocketAddr,
}

impl Request {
    /// `http://HOST` for URLs that point back at this server.
    fn base(&self) -> String {
        match &self.host {
            Some(host) if valid_host(host) => format!("http://{host}"),
            _ => format!("http://{}", self.local),
        }
    }
}

/// Only what can be a host name, IP literal and port, so nothing else reaches the JSON we write.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'))
}

impl Site<'_> {
    fn connection(&self, mut stream: TcpStream, refuse: bool, log: &(dyn Fn(&str) + Sync)) {
        let timeout = if refuse { REFUSE_TIMEOUT } else { TIMEOUT };
        if stream.set_write_timeout(Some(timeout)).is_err() {
            return;
        }
        let local = stream.local_addr().unwrap_or(self.local);
        let (request, response) = match read_head(&mut stream, Instant::now() + timeout) {
            HeadRead::Nothing => return,
            HeadRead::TooLarge => (None, Response::status(431)),
            HeadRead::Partial => (None, Response::status(400)),
            HeadRead::TimedOut => (None, Response::status(408)),
            HeadRead::Complete(head) => {
                let (request, well_formed) = parse_head(&head, local);
                let response = if !well_formed {
                    Response::status(400)
                } else if refuse {
                    Response::status(503).header("Retry-After", "1".into())
                } else {
                    self.respond(&request)
                };
                (Some(request), response)
            }
        };
        let head_only = request.as_ref().is_some_and(|r| r.method == "HEAD");
        let status = response.status;
        let sent = response.send(&mut stream, head_only);
        let (method, target) = request.as_ref().map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
        log(&format!("{} {} {status} {sent}", log_safe(method), log_safe(target)));
        linger(stream);
    }

    fn respond(&self, request: &Request) -> Response {
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
        let redirect = || {
            let mut location = format!("{raw_path}/");
            if let Some(query) = query {
                let _ = write!(location, "?{query}");
            }
            Response::status(301).header("Location", location)
        };
        match segments.split_first() {
            Some((&"pypi", rest)) => self.pypi(request, rest, dir, redirect),
            Some((&"npm", rest)) => {
                let response = self.npm(request, rest, dir);
                if response.status == 404 { Response::bytes(404, JSON, NPM_NOT_FOUND) } else { response }
            }
            Some((&"cargo", rest)) => self.cargo(request, rest, dir),
            Some((&"files", rest)) if !rest.is_empty() && !dir => {
                let name = rest.last().expect("not empty");
                self.file(&prefixed("files", rest), content_type(name))
            }
            _ => Response::status(404),
        }
    }

    fn pypi(&self, request: &Request, segments: &[&str], dir: bool, redirect: impl Fn() -> Response) -> Response {
        match segments {
            ["simple", ..] => {
                let path = prefixed("pypi", segments);
                match self.find(&path) {
                    Found::Dir if !dir => {
                        if matches!(self.find(&with(&path, "index.html")), Found::File(_)) {
                            redirect()
                        } else {
                            Response::status(404)
                        }
                    }
                    Found::Dir => {
                        if request.accept.contains(PEP691_JSON)
                            && let Found::File(json) = self.find(&with(&path, "index.json"))
                        {
                            return open(&json, PEP691_JSON).header("Vary", "Accept".into());
                        }
                        match self.find(&with(&path, "index.html")) {
                            Found::File(html) => open(&html, HTML).header("Vary", "Accept".into()),
                            _ => Response::status(404),
                        }
                    }
                    Found::File(file) if !dir => open(&file, content_type(segments.last().expect("not empty"))),
                    _ => Response::status(404),
                }
            }
            ["integrity", .., last] if !dir => {
                let kind = if *last == "provenance" { JSON } else { content_type(last) };
                self.file(&prefixed("pypi", segments), kind)
            }
            _ => Response::status(404),
        }
    }

    fn npm(&self, request: &Request, segments: &[&str], dir: bool) -> Response {
        let unscoped = |name: &str| !name.starts_with('@') && name != "-";
        match segments {
            ["-", "npm", "v1", "attestations", spec @ ..] if !dir && (1..=2).contains(&spec.len()) => {
                self.file(&prefixed("npm", segments), JSON)
            }
            // The registry keys pinned in the import policy, written by the import.
            ["-", "npm", "v1", "keys"] if !dir => self.file(&prefixed("npm", segments), JSON),
            [name] if unscoped(name) => self.packument(request, &["npm", name, "packument.json"]),
            [scope, name] if scope.starts_with('@') => self.packument(request, &["npm", scope, name, "packument.json"]),
            [name, "-", file] if !dir && unscoped(name) && is_tarball(file) => {
                self.file(&prefixed("npm", segments), BINARY)
            }
            [scope, _, "-", file] if !dir && scope.starts_with('@') && is_tarball(file) => {
                self.file(&prefixed("npm", segments), BINARY)
            }
            _ => Response::status(404),
        }
    }

    /// The packument, with its URLs pointed at this server. It is read whole to
    /// rewrite it; artifacts never are.
    fn packument(&self, request: &Request, path: &[&str]) -> Response {
        let Found::File(file) = self.find(path) else {
            return Response::status(404);
        };
        match fs::read_to_string(&file) {
            Ok(text) => Response::bytes(200, JSON, text.replace(BASE_PLACEHOLDER, &request.base())),
            Err(e) => Response::from_error(&e),
        }
    }

    fn cargo(&self, request: &Request, segments: &[&str], dir: bool) -> Response {
        if dir {
            return Response::status(404);
        }
        match segments {
            ["index", "config.json"] => {
                let dl = format!("{}/cargo/crates/{{crate}}/{{version}}/download", request.base());
                Response::bytes(200, JSON, serde_json::json!({ "dl": dl }).to_string())
            }
            ["index", _, ..] => self.file(&prefixed("cargo", segments), TEXT),
            ["crates", name, version, "download"] => {
                let file = format!("{name}-{version}.crate");
                self.file(&["cargo", &file], BINARY)
            }
            _ => Response::status(404),
        }
    }

    /// A regular file at `path` below the mirror, or 404.
    fn file(&self, path: &[&str], content_type: &'static str) -> Response {
        match self.find(path) {
            Found::File(file) => open(&file, content_type),
            _ => Response::status(404),
        }
    }

    /// Resolves `path` below the mirror, following links, and refuses anything
    /// that ends up outside the mirror folder.
    fn find(&self, path: &[&str]) -> Found {
        let mut joined = self.root.to_path_buf();
        joined.extend(path);
        let Ok(real) = fs::canonicalize(&joined) else {
            return Found::Missing;
        };
        if !real.starts_with(self.root) {
            return Found::Missing;
        }
        match fs::metadata(&real) {
            Ok(meta) if meta.is_file() => Found::File(real),
            Ok(meta) if meta.is_dir() => Found::Dir,
            _ => Found::Missing,
        }
    }
}

enum Found {
    /// A regular file, by its canonical path.
    File(PathBuf),
    Dir,
    Missing,
}

fn prefixed<'a>(first: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut path = Vec::with_capacity(rest.len() + 1);
    path.push(first);
    path.extend_from_slice(rest);
    path
}

fn with<'a>(path: &[&'a str], last: &'a str) -> Vec<&'a str> {
    let mut path = path.to_vec();
    path.push(last);
    path
}

/// Opens a resolved file for streaming; only regular files.
fn open(path: &Path, content_type: &'static str) -> Response {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return Response::from_error(&e),
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => {
            Response { status: 200, content_type, headers: Vec::new(), body: Body::File(file, meta.len()) }
        }
        Ok(_) => Response::status(404),
        Err(e) => Response::from_error(&e),
    }
}

fn is_tarball(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|extension| extension.eq_ignore_ascii_case("tgz"))
}

fn content_type(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    let extension = name.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension {
        "html" | "htm" => HTML,
        "json" => JSON,
        "txt" | "metadata" | "md" => TEXT,
        _ => BINARY,
    }
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

enum HeadRead {
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
fn read_head(stream: &mut TcpStream, deadline: Instant) -> HeadRead {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return if head.is_empty() { HeadRead::Nothing } else { HeadRead::TimedOut };
        }
        match stream.read(&mut chunk) {
            Ok(0) => return if head.is_empty() { HeadRead::Nothing } else { HeadRead::Partial },
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
fn parse_head(head: &[u8], local: SocketAddr) -> (Request, bool) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let mut request = Request {
        method: parts.first().filter(|m| !m.is_empty()).unwrap_or(&"-").to_string(),
        target: parts.get(1).filter(|t| !t.is_empty()).unwrap_or(&"-").to_string(),
        host: None,
        accept: String::new(),
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
        } else if name.eq_ignore_ascii_case("accept") {
            if !request.accept.is_empty() {
                request.accept.push_str(", ");
            }
            request.accept.push_str(value);
        }
    }
    (request, true)
}

/// Escapes what would break the one-line, space-separated log format.
fn log_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads and discards what the client still sends, briefly, after our half of
/// the connection is closed: closing with unread input would reset the
/// connection and could destroy the response before the client reads it.
fn linger(mut stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 8192];
    let mut total = 0;
    while total < LINGER_BYTES {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    /// A regular file and its length when opened.
    File(File, u64),
}

impl Response {
    fn bytes(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, content_type, headers: Vec::new(), body: Body::Bytes(body.into()) }
    }

    /// A bare status with a one-line text body.
    fn status(status: u16) -> Self {
        Response::bytes(status, TEXT, format!("{status} {}\n", reason(status)))
    }

    fn from_error(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Response::status(404),
            io::ErrorKind::PermissionDenied => Response::status(403),
            _ => Response::status(500),
        }
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Writes the response (no body for HEAD); returns the body bytes sent.
    fn send(self, stream: &mut TcpStream, head_only: bool) -> u64 {
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
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
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

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\n"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn hosts_and_log_fields_are_sanitized() {
        assert!(valid_host("127.0.0.1:8080"));
        assert!(valid_host("[::1]:80"));
        assert!(!valid_host("evil\",\"x"));
        assert!(!valid_host(""));
        assert_eq!(log_safe("/a b\tc"), "/a%20b%09c");
    }
}
