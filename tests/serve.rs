//! `airlock serve` over a mirror built by hand in the published layout: every
//! route, HEAD, path escapes, limits, concurrency and the request log, through
//! a small HTTP client on std's `TcpStream`.
#![cfg(unix)]

mod common;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use airlock::serve::{self, ServeOptions, ServerHandle};
use common::{airlock, one_line, write_tree};
use tempfile::TempDir;

const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-MIRROR";
const PACKUMENT: &str = r#"{"name":"left-pad","versions":{"1.3.0":{"dist":{"tarball":"{{AIRLOCK_BASE}}/npm/left-pad/-/left-pad-1.3.0.tgz","attestations":{"url":"{{AIRLOCK_BASE}}/npm/-/npm/v1/attestations/left-pad@1.3.0"}}}}}"#;
const SCOPED_PACKUMENT: &str = r#"{"name":"@scope/pkg","versions":{"2.0.0":{"dist":{"tarball":"{{AIRLOCK_BASE}}/npm/@scope/pkg/-/pkg-2.0.0.tgz"}}}}"#;

/// Deterministic bytes that are not all alike (a 1 MiB "tarball").
/// A packument of about 1 MiB with the placeholder in every version (so
/// that chunk boundaries cut some of them).
fn big_packument() -> String {
    let versions: Vec<String> = (0..12_000)
        .map(|i| format!("\"1.{i}.0\":{{\"dist\":{{\"tarball\":\"{{{{AIRLOCK_BASE}}}}/npm/big/-/big-1.{i}.0.tgz\"}}}}"))
        .collect();
    format!("{{\"name\":\"big\",\"versions\":{{{}}}}}", versions.join(","))
}

fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

struct Fixture {
    dir: TempDir,
    server: Option<ServerHandle>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    /// A mirror in the layout `airlock import` publishes: generation 1 under
    /// .airlock, `current` pointing at it, the ecosystem folders linked in.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        let generation = mirror.join(".airlock/generations/1");
        let tarball = noise(1 << 20, 7);
        let notes = "release notes, line after line\n".repeat(1000);
        let big = big_packument();
        write_tree(
            &generation,
            &[
                ("state.json", br#"{"generation":1,"imports":[]}"#),
                ("pypi/simple/index.html", b"<html>root index</html>"),
                ("pypi/simple/index.json", br#"{"meta":{"api-version":"1.1"},"projects":[]}"#),
                ("pypi/simple/demo/index.html", b"<html>demo index</html>"),
                ("pypi/simple/demo/index.json", br#"{"name":"demo","files":[]}"#),
                ("pypi/simple/demo/demo-1.0-py3-none-any.whl", b"PK wheel bytes"),
                ("pypi/simple/demo/demo-1.0-py3-none-any.whl.metadata", b"Metadata-Version: 2.1\nName: demo\n"),
                ("pypi/simple/demo/demo-1.0.tar.gz", b"sdist bytes"),
                ("pypi/simple/htmlonly/index.html", b"<html>html only</html>"),
                ("pypi/simple/noindex/noindex-1.0.tar.gz", b"no index here"),
                ("pypi/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance", br#"{"attestation_bundles":[]}"#),
                ("npm/left-pad/packument.json", PACKUMENT.as_bytes()),
                ("npm/left-pad/-/left-pad-1.3.0.tgz", &tarball),
                ("npm/big/packument.json", big.as_bytes()),
                ("npm/@scope/pkg/packument.json", SCOPED_PACKUMENT.as_bytes()),
                ("npm/@scope/pkg/-/pkg-2.0.0.tgz", b"scoped tarball"),
                ("npm/-/npm/v1/attestations/left-pad@1.3.0", br#"{"attestations":["left-pad"]}"#),
                ("npm/-/npm/v1/attestations/@scope/pkg@2.0.0", br#"{"attestations":["scoped"]}"#),
                ("cargo/index/1/a", b"{\"name\":\"a\"}\n"),
                ("cargo/index/2/ab", b"{\"name\":\"ab\"}\n"),
                ("cargo/index/3/a/abc", b"{\"name\":\"abc\"}\n"),
                ("cargo/index/se/rd/serde", b"{\"name\":\"serde\",\"vers\":\"1.0.0\"}\n"),
                ("cargo/serde-1.0.0.crate", b"crate bytes"),
                ("files/a.txt", b"alpha\n"),
                ("files/notes.txt", notes.as_bytes()),
                ("files/nested/b.bin", &[0, 1, 2, 3, 255]),
                ("files/with space.txt", b"spaced\n"),
            ],
        );
        symlink("generations/1", mirror.join(".airlock/current")).unwrap();
        for ecosystem in ["pypi", "npm", "cargo", "files"] {
            symlink(Path::new(".airlock/current").join(ecosystem), mirror.join(ecosystem)).unwrap();
        }
        // Outside the mirror: links into it must not serve it.
        let outside = dir.path().join("outside");
        write_tree(&outside, &[("secret.txt", SECRET), ("index.html", SECRET), ("pkg/packument.json", SECRET)]);
        symlink(outside.join("secret.txt"), generation.join("files/escape.txt")).unwrap();
        symlink(&outside, generation.join("files/escape-dir")).unwrap();
        symlink(&outside, generation.join("pypi/simple/evil")).unwrap();
        symlink(outside.join("pkg"), generation.join("npm/evil")).unwrap();
        symlink("../../../../../outside/secret.txt", generation.join("files/relative-escape.txt")).unwrap();
        let mut fixture = Fixture { dir, server: None, log: Arc::new(Mutex::new(Vec::new())) };
        fixture.start();
        fixture
    }

    fn start(&mut self) {
        let options = ServeOptions { mirror: self.mirror(), listen: "127.0.0.1:0".parse().unwrap() };
        let server = serve::bind(&options).unwrap();
        let log = Arc::clone(&self.log);
        self.server = Some(server.spawn(move |line| log.lock().unwrap().push(line.to_owned())));
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[])
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
            let _ = write!(raw, "Host: {}\r\n", self.addr());
        }
        for (name, value) in headers {
            let _ = write!(raw, "{name}: {value}\r\n");
        }
        raw.push_str("\r\n");
        send(self.addr(), raw.as_bytes())
    }

    /// Restarts the server with a connection limit of `limit`.
    fn restart_with_limit(&mut self, limit: usize) {
        self.server.take().unwrap().stop().unwrap();
        let options = ServeOptions { mirror: self.mirror(), listen: "127.0.0.1:0".parse().unwrap() };
        let server = serve::bind(&options).unwrap().with_connection_limit(limit);
        let log = Arc::clone(&self.log);
        self.server = Some(server.spawn(move |line| log.lock().unwrap().push(line.to_owned())));
    }

    /// The request lines logged, without their time and client (checked here).
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(|line| without_time_and_client(line)).collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            if thread::panicking() {
                drop(server);
            } else {
                server.stop().unwrap();
            }
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, content type and body at once.
    fn assert(&self, status: u16, content_type: &str, body: &[u8]) {
        assert_eq!(self.status, status, "{}", self.text());
        let actual = self.header("content-type").unwrap_or_default();
        assert!(actual.starts_with(content_type), "content type {actual:?}, expected {content_type:?}");
        assert_eq!(self.body, body, "body {:?}", self.text());
    }
}

/// Sends a raw request and reads one response.
fn send(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(raw).unwrap();
    read_reply(&mut stream, raw.starts_with(b"HEAD "))
}

/// Reads one response: its head, then the body its head announces
/// (`Content-Length`, chunked, or up to the close); none for HEAD and 304.
fn read_reply(stream: &mut TcpStream, head_only: bool) -> Reply {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a complete response head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end - 4].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    // An HTTP/1.0 request is answered in HTTP/1.0.
    assert!(status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let mut reply = Reply { status, headers, body: buf[end..].to_vec() };
    if head_only || status == 304 {
        reply.body.clear();
    } else if let Some(length) = reply.header("content-length").map(|v| v.parse::<usize>().unwrap()) {
        while reply.body.len() < length {
            let mut chunk = vec![0u8; 65536];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed {} bytes into a body of {length}", reply.body.len());
            reply.body.extend_from_slice(&chunk[..n]);
        }
        reply.body.truncate(length);
    } else if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = dechunk(stream, std::mem::take(&mut reply.body));
    } else {
        stream.read_to_end(&mut reply.body).unwrap();
    }
    reply
}

/// A chunked body, from what was read after the head and the rest of the stream.
fn dechunk(stream: &mut TcpStream, mut raw: Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        while !raw[at..].windows(2).any(|w| w == b"\r\n") {
            let mut chunk = vec![0u8; 65536];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed inside a chunked body");
            raw.extend_from_slice(&chunk[..n]);
        }
        let line_end = at + raw[at..].windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[at..line_end]).unwrap().trim(), 16).unwrap();
        let data = line_end + 2;
        while raw.len() < data + size + 2 {
            let mut chunk = vec![0u8; 65536];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed inside a chunk");
            raw.extend_from_slice(&chunk[..n]);
        }
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[data..data + size]);
        at = data + size + 2;
    }
}

fn assert_no_secret(reply: &Reply) {
    assert!(!reply.body.windows(SECRET.len()).any(|w| w == SECRET), "leaked the outside file: {reply:?}");
}

#[test]
fn pypi_routes() {
    let f = Fixture::new();
    f.get("/pypi/simple/").assert(200, "text/html", b"<html>root index</html>");
    f.get("/pypi/simple/demo/").assert(200, "text/html", b"<html>demo index</html>");
    let wheel = f.get("/pypi/simple/demo/demo-1.0-py3-none-any.whl");
    wheel.assert(200, "application/octet-stream", b"PK wheel bytes");
    assert_eq!(wheel.header("content-length"), Some("14"));
    f.get("/pypi/simple/demo/demo-1.0-py3-none-any.whl.metadata").assert(
        200,
        "text/plain",
        b"Metadata-Version: 2.1\nName: demo\n",
    );
    f.get("/pypi/simple/demo/demo-1.0.tar.gz").assert(200, "application/octet-stream", b"sdist bytes");
    f.get("/pypi/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance").assert(
        200,
        "application/json",
        br#"{"attestation_bundles":[]}"#,
    );
    f.get("/pypi/integrity/demo/1.0/other.whl/provenance").assert(404, "text/plain", b"404 Not Found\n");
    f.get("/pypi/simple/nothing/").assert(404, "text/plain", b"404 Not Found\n");
    f.get("/pypi/simple/demo/missing.whl").assert(404, "text/plain", b"404 Not Found\n");
    // A file is not a folder.
    assert_eq!(f.get("/pypi/simple/demo/demo-1.0.tar.gz/").status, 404);

    // Folders without the slash redirect to it (the query string travels along).
    let redirect = f.get("/pypi/simple/demo");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/pypi/simple/demo/"));
    assert_eq!(f.get("/pypi/simple").header("location"), Some("/pypi/simple/"));
    assert_eq!(f.get("/pypi/simple/demo?x=1").header("location"), Some("/pypi/simple/demo/?x=1"));

    // PEP 691: JSON when asked for and present, HTML otherwise.
    let pip_accept =
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    let json = f.request("GET", "/pypi/simple/demo/", &[("Accept", pip_accept)]);
    json.assert(200, "application/vnd.pypi.simple.v1+json", br#"{"name":"demo","files":[]}"#);
    assert_eq!(json.header("vary"), Some("Accept"));
    f.request("GET", "/pypi/simple/", &[("Accept", pip_accept)]).assert(
        200,
        "application/vnd.pypi.simple.v1+json",
        br#"{"meta":{"api-version":"1.1"},"projects":[]}"#,
    );
    // PEP 691's "latest" alias is answered with the version served.
    f.request("GET", "/pypi/simple/demo/", &[("Accept", "application/vnd.pypi.simple.latest+json")]).assert(
        200,
        "application/vnd.pypi.simple.v1+json",
        br#"{"name":"demo","files":[]}"#,
    );
    f.request("GET", "/pypi/simple/htmlonly/", &[("Accept", pip_accept)]).assert(
        200,
        "text/html",
        b"<html>html only</html>",
    );
    f.request("GET", "/pypi/simple/demo/", &[("Accept", "text/html")]).assert(
        200,
        "text/html",
        b"<html>demo index</html>",
    );
}

#[test]
fn npm_routes() {
    let f = Fixture::new();
    let addr = f.addr();
    let expected = |host: &str, template: &str| template.replace("{{AIRLOCK_BASE}}", &format!("http://{host}"));

    // The packument points back at whatever host the client used.
    let packument = f.request("GET", "/npm/left-pad", &[("Host", "mirror.example:4873")]);
    packument.assert(200, "application/json", expected("mirror.example:4873", PACKUMENT).as_bytes());
    assert!(packument.text().contains("http://mirror.example:4873/npm/left-pad/-/left-pad-1.3.0.tgz"));
    assert!(!packument.text().contains("{{AIRLOCK_BASE}}"));
    f.get("/npm/left-pad").assert(200, "application/json", expected(&addr.to_string(), PACKUMENT).as_bytes());
    // Without a Host header, the listen address.
    let no_host = send(addr, b"GET /npm/left-pad HTTP/1.0\r\n\r\n");
    no_host.assert(200, "application/json", expected(&addr.to_string(), PACKUMENT).as_bytes());
    // A Host that is not a host name does not get into the JSON.
    let hostile = f.request("GET", "/npm/left-pad", &[("Host", "x\"y")]);
    hostile.assert(200, "application/json", expected(&addr.to_string(), PACKUMENT).as_bytes());

    // Scoped: every spelling npm and people use.
    for path in ["/npm/@scope%2fpkg", "/npm/@scope%2Fpkg", "/npm/@scope/pkg"] {
        f.request("GET", path, &[("Host", "h:1")]).assert(
            200,
            "application/json",
            expected("h:1", SCOPED_PACKUMENT).as_bytes(),
        );
    }

    let tarball = f.get("/npm/left-pad/-/left-pad-1.3.0.tgz");
    tarball.assert(200, "application/octet-stream", &noise(1 << 20, 7));
    assert_eq!(tarball.header("content-length"), Some("1048576"));
    f.get("/npm/@scope/pkg/-/pkg-2.0.0.tgz").assert(200, "application/octet-stream", b"scoped tarball");
    f.get("/npm/@scope%2fpkg/-/pkg-2.0.0.tgz").assert(200, "application/octet-stream", b"scoped tarball");

    f.get("/npm/-/npm/v1/attestations/left-pad@1.3.0").assert(
        200,
        "application/json",
        br#"{"attestations":["left-pad"]}"#,
    );
    f.get("/npm/-/npm/v1/attestations/left-pad%401.3.0").assert(
        200,
        "application/json",
        br#"{"attestations":["left-pad"]}"#,
    );
    for path in ["/npm/-/npm/v1/attestations/@scope%2fpkg@2.0.0", "/npm/-/npm/v1/attestations/%40scope%2Fpkg%402.0.0"] {
        f.get(path).assert(200, "application/json", br#"{"attestations":["scoped"]}"#);
    }

    let not_found = br#"{"error":"Not found"}"#;
    for path in [
        "/npm/no-such-package",
        "/npm/@scope%2fnope",
        "/npm/left-pad/-/left-pad-9.9.9.tgz",
        "/npm/left-pad/-/packument.json",
        "/npm/-/npm/v1/attestations/left-pad@9.9.9",
        "/npm/left-pad/1.3.0",
        "/npm/",
    ] {
        f.get(path).assert(404, "application/json", not_found);
    }
}

#[test]
fn cargo_routes() {
    let f = Fixture::new();
    f.request("GET", "/cargo/index/config.json", &[("Host", "crates.internal:8080")]).assert(
        200,
        "application/json",
        br#"{"dl":"http://crates.internal:8080/cargo/crates/{crate}/{version}/download"}"#,
    );
    let config = f.get("/cargo/index/config.json");
    let dl = format!(r#"{{"dl":"http://{}/cargo/crates/{{crate}}/{{version}}/download"}}"#, f.addr());
    config.assert(200, "application/json", dl.as_bytes());
    f.get("/cargo/index/1/a").assert(200, "text/plain", b"{\"name\":\"a\"}\n");
    f.get("/cargo/index/2/ab").assert(200, "text/plain", b"{\"name\":\"ab\"}\n");
    f.get("/cargo/index/3/a/abc").assert(200, "text/plain", b"{\"name\":\"abc\"}\n");
    f.get("/cargo/index/se/rd/serde").assert(200, "text/plain", b"{\"name\":\"serde\",\"vers\":\"1.0.0\"}\n");
    f.get("/cargo/crates/serde/1.0.0/download").assert(200, "application/octet-stream", b"crate bytes");
    assert_eq!(f.get("/cargo/index/se/rd/nope").status, 404);
    assert_eq!(f.get("/cargo/crates/serde/9.9.9/download").status, 404);
    assert_eq!(f.get("/cargo/crates/serde/1.0.0").status, 404);
    assert_eq!(f.get("/cargo/index/se/").status, 404);
    // The crate files themselves, where a --base-url config's `dl` points.
    f.get("/cargo/serde-1.0.0.crate").assert(200, "application/octet-stream", b"crate bytes");
    assert_eq!(f.get("/cargo/serde-9.9.9.crate").status, 404);
}

#[test]
fn files_and_head() {
    let f = Fixture::new();
    f.get("/files/a.txt").assert(200, "text/plain", b"alpha\n");
    f.get("/files/nested/b.bin").assert(200, "application/octet-stream", &[0, 1, 2, 3, 255]);
    f.get("/files/with%20space.txt").assert(200, "text/plain", b"spaced\n");
    assert_eq!(f.get("/files/missing").status, 404);

    let head = f.request("HEAD", "/npm/left-pad/-/left-pad-1.3.0.tgz", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1048576"));
    assert_eq!(head.header("content-type"), Some("application/octet-stream"));
    assert!(head.body.is_empty());
    let head = f.request("HEAD", "/npm/left-pad", &[("Host", "h:1")]);
    assert_eq!(
        head.header("content-length"),
        Some(PACKUMENT.replace("{{AIRLOCK_BASE}}", "http://h:1").len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    // A large packument is rewritten as it streams (its length known once sent: chunked),
    // the placeholder replaced wherever the chunks cut it.
    let get = f.request("GET", "/npm/big", &[("Host", "h:1")]);
    assert_eq!(get.header("transfer-encoding"), Some("chunked"));
    assert_eq!(get.text(), big_packument().replace("{{AIRLOCK_BASE}}", "http://h:1"));
    let head = f.request("HEAD", "/files/missing", &[]);
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());
}

#[test]
fn folders_are_never_listed() {
    let f = Fixture::new();
    // `/` is the catalog of the mirror's inventory, never a listing of its folders.
    let root = f.get("/");
    assert!(!root.text().contains("noindex-1.0") && !root.text().contains("b.bin"), "/: {}", root.text());
    for path in [
        "/files/",
        "/files",
        "/files/nested/",
        "/files/nested",
        "/pypi/",
        "/pypi/simple/noindex/",
        "/pypi/simple/noindex",
        "/pypi/integrity/demo/",
        "/cargo/",
        "/cargo/index/",
        "/npm/left-pad/-/",
        "/nothing/here",
    ] {
        let reply = f.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert!(!reply.text().contains("noindex-1.0") && !reply.text().contains("b.bin"), "{path}");
    }
}

#[test]
fn path_escapes_are_refused() {
    let f = Fixture::new();
    for path in [
        "/npm/../../etc/passwd",
        "/pypi/simple/%2e%2e/%2e%2e/x",
        "/files/a/../../b",
        "/files/..%2f..%2foutside%2fsecret.txt",
        "/files/%2E%2E/%2E%2E/outside/secret.txt",
        "/files/a%5c..%5csecret",
        "/files/a\\b",
        "/files/a%00b",
        "/files//etc/passwd",
        "//etc/passwd",
        "/files/./a.txt",
        "/files/%zz",
        "/files/%ff",
    ] {
        let reply = f.get(path);
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert_no_secret(&reply);
    }
    // Links inside the mirror that point outside it.
    for path in [
        "/files/escape.txt",
        "/files/relative-escape.txt",
        "/files/escape-dir/secret.txt",
        "/pypi/simple/evil/",
        "/pypi/simple/evil/secret.txt",
        "/npm/evil",
    ] {
        let reply = f.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
        assert_no_secret(&reply);
    }
    // The mirror's own links into .airlock are fine; .airlock itself is not a route.
    assert_eq!(f.get("/.airlock/current/state.json").status, 404);
    assert_eq!(f.get("/files/../.airlock/current/state.json").status, 400);
}

#[test]
fn only_get_and_head() {
    let f = Fixture::new();
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let reply = f.request(method, "/files/a.txt", &[("Content-Length", "0")]);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    // A POST with a body still gets its answer.
    let reply =
        send(f.addr(), b"POST /npm/-/npm/v1/security/audits HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(reply.status, 405);
}

#[test]
fn malformed_and_oversized_requests() {
    let f = Fixture::new();
    assert_eq!(send(f.addr(), b"GARBAGE\r\n\r\n").status, 400);
    assert_eq!(send(f.addr(), b"GET /files/a.txt\r\n\r\n").status, 400);
    assert_eq!(send(f.addr(), b"GET /files/a.txt HTTP/2.0\r\n\r\n").status, 400);
    assert_eq!(send(f.addr(), b"GET files/a.txt HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(send(f.addr(), b"GET /files/a.txt HTTP/1.1\r\nno colon here\r\n\r\n").status, 400);
    // Bare LF line ends and the absolute form are accepted.
    send(f.addr(), b"GET /files/a.txt HTTP/1.1\nHost: x\n\n").assert(200, "text/plain", b"alpha\n");
    send(f.addr(), b"GET http://x/files/a.txt HTTP/1.1\r\n\r\n").assert(200, "text/plain", b"alpha\n");

    // A head over 16 KiB is 431, and the response still arrives.
    let mut big = b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\nX-Filler: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(send(f.addr(), &big).status, 431);
    // Just under the cap is fine.
    let mut fits = b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\nX-Filler: ".to_vec();
    fits.extend(std::iter::repeat_n(b'a', 16 * 1024 - fits.len() - 4));
    fits.extend_from_slice(b"\r\n\r\n");
    assert_eq!(fits.len(), 16 * 1024);
    send(f.addr(), &fits).assert(200, "text/plain", b"alpha\n");

    // A head that arrives in pieces.
    let mut stream = TcpStream::connect(f.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for piece in [&b"GET /files/a"[..], b".txt HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"] {
        stream.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    read_reply(&mut stream, false).assert(200, "text/plain", b"alpha\n");

    // A client that hangs up halfway is closed (and logged as a bad request); one that sends nothing is not logged.
    let mut half = TcpStream::connect(f.addr()).unwrap();
    half.write_all(b"GET /files/a.txt HTTP/1.1\r\n").unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = half.read_to_end(&mut rest);
    assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 400 "), "{}", String::from_utf8_lossy(&rest));
    drop(TcpStream::connect(f.addr()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f.log().iter().any(|line| line == "- - 400 -") {
        assert!(Instant::now() < deadline, "the half request was not logged: {:?}", f.log());
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kept_alive_connections_answer_request_after_request() {
    let f = Fixture::new();
    let mut stream = TcpStream::connect(f.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for _ in 0..3 {
        stream.write_all(b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        read_reply(&mut stream, false).assert(200, "text/plain", b"alpha\n");
    }
    // Pipelined: both answered, in order; the second asks to close, and the stream ends after it.
    stream
        .write_all(
            b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /files/with%20space.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut both = Vec::new();
    stream.read_to_end(&mut both).unwrap();
    let text = String::from_utf8_lossy(&both);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    let (first, second) = (text.find("\r\n\r\nalpha\n").unwrap(), text.find("\r\n\r\nspaced\n").unwrap());
    assert!(first < second && text.ends_with("spaced\n"), "{text}");
}

#[test]
fn responses_carry_validators_and_current_copies_get_304() {
    let f = Fixture::new();
    let first = f.get("/files/a.txt");
    let tag = first.header("etag").expect("an ETag").to_owned();
    let modified = first.header("last-modified").expect("a Last-Modified").to_owned();
    let again = f.request("GET", "/files/a.txt", &[("If-None-Match", &tag)]);
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let since = f.request("GET", "/files/a.txt", &[("If-Modified-Since", &modified)]);
    assert_eq!(since.status, 304);
    f.request("GET", "/files/a.txt", &[("If-None-Match", "\"other\"")]).assert(200, "text/plain", b"alpha\n");
    // A generated document is tagged by its content.
    let page = f.get("/pypi/simple/");
    let page_tag = page.header("etag").expect("an ETag on a generated page").to_owned();
    assert_eq!(f.request("GET", "/pypi/simple/", &[("If-None-Match", &page_tag)]).status, 304);
}

#[test]
fn text_is_compressed_for_clients_that_ask_and_ranges_resume() {
    let f = Fixture::new();
    // A file streamed from disk, compressed on the way.
    let plain = f.get("/files/notes.txt");
    assert_eq!(plain.status, 200);
    let packed = f.request("GET", "/files/notes.txt", &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(packed.header("content-encoding"), Some("gzip"), "{:?}", packed.headers);
    assert_eq!(packed.header("vary"), Some("Accept-Encoding"));
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed.body[..]).read_to_end(&mut unpacked).unwrap();
    assert_eq!(unpacked, plain.body);
    assert_ne!(packed.header("etag"), plain.header("etag"), "each encoding has its own tag");
    assert!(packed.body.len() * 10 < plain.body.len(), "{} of {}", packed.body.len(), plain.body.len());
    // Binary files are sent as they are, and a broken download resumes.
    let whole = f.request("GET", "/npm/left-pad/-/left-pad-1.3.0.tgz", &[("Accept-Encoding", "gzip")]);
    assert_eq!(whole.header("content-encoding"), None);
    let rest = f.request("GET", "/npm/left-pad/-/left-pad-1.3.0.tgz", &[("Range", "bytes=1000-")]);
    assert_eq!(rest.status, 206);
    assert_eq!(rest.body, whole.body[1000..]);
    // If-Range: the range only continues the same file; another tag gets the whole.
    let tag = whole.header("etag").unwrap().to_owned();
    let same = f.request("GET", "/npm/left-pad/-/left-pad-1.3.0.tgz", &[("Range", "bytes=1000-"), ("If-Range", &tag)]);
    assert_eq!((same.status, same.body.len()), (206, whole.body.len() - 1000));
    let changed =
        f.request("GET", "/npm/left-pad/-/left-pad-1.3.0.tgz", &[("Range", "bytes=1000-"), ("If-Range", "\"old\"")]);
    assert_eq!((changed.status, changed.body.len()), (200, whole.body.len()));
    // gzip refused by weight is not used.
    let refused = f.request("GET", "/files/notes.txt", &[("Accept-Encoding", "gzip;q=0")]);
    assert_eq!(refused.header("content-encoding"), None);
}

#[test]
fn hundreds_of_idle_connections_do_not_delay_a_client() {
    let f = Fixture::new();
    // A slowloris: connections that send half a head and then nothing.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut stream = TcpStream::connect(f.addr()).unwrap();
            stream.write_all(b"GET /files/a.txt HTTP/1.1\r\nHo").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    for _ in 0..10 {
        f.get("/files/a.txt").assert(200, "text/plain", b"alpha\n");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "served slowly: {:?}", started.elapsed());
    drop(idle);
}

#[test]
fn concurrent_clients_get_correct_bytes() {
    let f = Fixture::new();
    let addr = f.addr();
    let expected = noise(1 << 20, 7);
    let clients: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                stream.write_all(b"GET /npm/left-pad/-/left-pad-1.3.0.tgz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                read_reply(&mut stream, false)
            })
        })
        .collect();
    for client in clients {
        let reply = client.join().unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.body == expected, "a client got different bytes ({} bytes)", reply.body.len());
    }
    wait_for_log(&f, 20);
    let log = f.log();
    assert_eq!(log.len(), 20);
    assert!(log.iter().all(|line| line == "GET /npm/left-pad/-/left-pad-1.3.0.tgz 200 1048576"), "{log:?}");
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let mut f = Fixture::new();
    f.restart_with_limit(8);
    // Fill every slot with a client that has not sent its request yet.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(f.addr()).unwrap()).collect();
    thread::sleep(Duration::from_millis(200));
    let refused = f.get("/files/a.txt");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    drop(idle);
    // The slots come back once those clients leave.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = f.get("/files/a.txt");
        if reply.status == 200 {
            assert_eq!(reply.body, b"alpha\n");
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed: {}", reply.status);
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_log_line_per_request() {
    let f = Fixture::new();
    let tarball = f.get("/npm/left-pad/-/left-pad-1.3.0.tgz");
    assert_eq!(tarball.status, 200);
    f.request("HEAD", "/files/a.txt", &[]);
    f.get("/files/missing");
    f.request("POST", "/files/a.txt", &[]);
    f.get("/files/a%20b/../c");
    f.get("/pypi/simple/demo");
    send(f.addr(), b"GARBAGE\r\n\r\n");
    // That line is written when hyper ends the connection, a moment after the client has its answer.
    wait_for_log(&f, 7);
    // Connecting without sending anything is not a request.
    drop(TcpStream::connect(f.addr()).unwrap());
    f.get("/files/a.txt");
    wait_for_log(&f, 8);
    assert_eq!(
        f.log(),
        [
            "GET /npm/left-pad/-/left-pad-1.3.0.tgz 200 1048576",
            "HEAD /files/a.txt 200 0",
            "GET /files/missing 404 14",
            "POST /files/a.txt 405 23",
            "GET /files/a%20b/../c 400 16",
            "GET /pypi/simple/demo 301 22",
            // hyper answers a head it cannot parse itself: no method or target to log.
            "- - 400 -",
            "GET /files/a.txt 200 6",
        ]
    );
}

#[test]
fn the_mirror_follows_a_new_generation() {
    let f = Fixture::new();
    let meta = f.mirror().join(".airlock");
    write_tree(&meta.join("generations/2"), &[("files/a.txt", b"second\n")]);
    symlink("generations/2", meta.join("current.tmp")).unwrap();
    fs::rename(meta.join("current.tmp"), meta.join("current")).unwrap();
    f.get("/files/a.txt").assert(200, "text/plain", b"second\n");
    assert_eq!(f.get("/files/nested/b.bin").status, 404);
}

#[test]
fn bind_refuses_what_is_not_a_mirror_and_busy_ports() {
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let options = |mirror: PathBuf| ServeOptions { mirror, listen };

    let err = serve::bind(&options(dir.path().join("missing"))).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("no such folder"), "{err}");

    write_tree(dir.path(), &[("plain/readme.txt", b"hi")]);
    let err = serve::bind(&options(dir.path().join("plain"))).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("not an airlock mirror"), "{err}");

    let err = serve::bind(&options(dir.path().join("plain/readme.txt"))).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");

    fs::create_dir_all(dir.path().join("mirror/.airlock")).unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    let err = serve::bind(&ServeOptions { mirror: dir.path().join("mirror"), listen: taken }).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let message = err.to_string();
    assert!(message.contains(&taken.to_string()) && message.contains("choose another port"), "{message}");

    // An empty mirror (nothing imported yet) serves, with nothing in it.
    let server = serve::bind(&options(dir.path().join("mirror"))).unwrap().spawn(|_| {});
    assert_eq!(send(server.local_addr(), b"GET /pypi/simple/ HTTP/1.1\r\n\r\n").status, 404);
    server.stop().unwrap();
}

#[test]
fn cli_refuses_a_missing_mirror() {
    let out = airlock().args(["serve", "--mirror", "/nonexistent"]).assert().code(2);
    let line = one_line(&out.get_output().stderr);
    assert!(line.contains("/nonexistent") && line.contains("no such folder"), "{line}");
}

#[test]
fn cli_serves_and_logs_requests() {
    let f = Fixture::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["serve", "--listen", "127.0.0.1:0", "--mirror"])
        .arg(f.mirror())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first.split(" on http://").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or_default();
    let addr: Result<SocketAddr, _> = url.parse();
    let reply = addr.as_ref().ok().map(|addr| send(*addr, b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
    // The request's line, read before the server is stopped (it is written once the body is sent).
    let mut stderr = String::new();
    if reply.is_some() {
        BufReader::new(child.stderr.take().unwrap()).read_line(&mut stderr).unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let addr = addr.unwrap_or_else(|_| panic!("no address in {first:?}"));
    assert_eq!(
        first.trim_end(),
        format!(
            "serving {} on http://{addr} (npm: http://{addr}/npm/, pypi: http://{addr}/pypi/simple/, \
             cargo: sparse+http://{addr}/cargo/index/, debian: http://{addr}/debian/, oci: docker://{addr}/, \
             huggingface: http://{addr}/huggingface)",
            f.mirror().display()
        )
    );
    reply.unwrap().assert(200, "text/plain", b"alpha\n");
    assert_eq!(without_time_and_client(stderr.trim_end()), "GET /files/a.txt 200 6");
}

/// Waits (up to 5 s) until the fixture has logged `lines` lines.
fn wait_for_log(f: &Fixture, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.log().len() < lines && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

/// `2026-12-02T19:40:00Z 127.0.0.1 GET /x 200 6` -> `GET /x 200 6`, after
/// checking the time and the client address are there.
fn without_time_and_client(line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let (time, client, rest) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    assert!(time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "no time first: {line}");
    assert_eq!(client, "127.0.0.1", "no client address: {line}");
    rest.to_owned()
}
