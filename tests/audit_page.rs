//! The audit pages, loaded in a real browser (Debian's headless Chromium):
//! each import leaves `.airlock/reports/<manifest digest>.html` showing the
//! bundle, its signers and every entry with its five layers, and
//! `airlock serve` shows the catalog at `/` linking to those pages. Names a
//! trusted bundle carries are shown as text, never as markup.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use common::{airlock, export, json_report, keygen, write_tree};

/// A name that would be markup if it were not escaped.
const HOSTILE: &str = "\"><img src=x onerror=alert(1)>.txt";

/// The DOM Chromium builds from `url`, serialized; `None` (and a visible
/// skip) where Chromium is not installed.
fn dom(url: &str) -> Option<String> {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| which(c)) else {
        common::skip("chromium is not installed (apt-get install chromium), so the audit pages were not loaded");
        return None;
    };
    let out = Process::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed on {url}");
    Some(String::from_utf8(out.stdout).unwrap())
}

fn which(program: &str) -> bool {
    Process::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

/// Imports a bundle of plain files, one of them with `HOSTILE` as its name;
/// returns (tempdir, mirror, import report).
fn imported() -> (tempfile::TempDir, std::path::PathBuf, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    write_tree(&input, &[("notes.txt", b"notes"), (HOSTILE, b"hostile")]);
    let bundle = dir.path().join("b.airlock");
    export(&input, &[&key], &bundle);
    let mirror = dir.path().join("mirror");
    let out = airlock()
        .args(["import", "--json"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let report = json_report(&out.get_output().stdout);
    (dir, mirror, report)
}

/// The escaped name no markup came of: the DOM holds it as text only.
fn shows_as_text(dom: &str) {
    assert!(
        dom.contains("\"&gt;&lt;img src=x onerror=alert(1)&gt;.txt"),
        "the hostile name is not shown as text: {dom}"
    );
    assert!(!dom.contains("<img"), "markup from a bundle became an element: {dom}");
    assert!(!dom.contains("<script"), "{dom}");
}

#[test]
fn each_import_leaves_a_page_showing_its_entries_and_their_layers() {
    let (_dir, mirror, report) = imported();
    let digest = report["report"]["verified"]["manifest_digest"].as_str().unwrap();
    let page = mirror.join(format!(".airlock/reports/{digest}.html"));
    assert_eq!(report["report"]["audit_page"], page.display().to_string());
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(mirror.join(format!(".airlock/reports/{digest}.json"))).unwrap()).unwrap();
    assert_eq!(json["verified"]["manifest_digest"], digest);
    let Some(dom) = dom(&format!("file://{}", page.display())) else { return };
    assert!(dom.contains(digest), "{dom}");
    assert!(dom.contains("<td class=\"name\">notes.txt</td>"), "{dom}");
    assert_eq!(dom.matches("<tr class=\"entry\">").count(), 2, "{dom}");
    for word in ["ok", "absent", "not-required"] {
        assert!(dom.contains(&format!("<span class=\"{word}\">{word}</span>")), "{word}: {dom}");
    }
    shows_as_text(&dom);
}

#[test]
fn serve_shows_the_catalog_at_the_root_linking_each_import() {
    let (_dir, mirror, report) = imported();
    let digest = report["report"]["verified"]["manifest_digest"].as_str().unwrap().to_owned();
    let (mut child, base) = serve(&mirror);
    let catalog = dom(&format!("{base}/"));
    let page = catalog.as_ref().map(|_| dom(&format!("{base}/-/reports/{digest}.html")).unwrap());
    let escaping = status_of(&format!("{base}/-/reports/..%2fcurrent%2fstate.json"));
    let not_a_report = status_of(&format!("{base}/-/reports/state.json"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(escaping == 400 || escaping == 404, "{escaping}");
    assert_eq!(not_a_report, 404);
    let (Some(catalog), Some(page)) = (catalog, page) else { return };
    assert!(catalog.contains("2 entries from 1 imports"), "{catalog}");
    assert!(catalog.contains(&format!("href=\"/-/reports/{digest}.html\"")), "{catalog}");
    assert!(catalog.contains("<td class=\"name\">notes.txt</td>"), "{catalog}");
    shows_as_text(&catalog);
    assert!(page.contains("<td class=\"name\">notes.txt</td>"), "{page}");
    shows_as_text(&page);
}

/// `airlock serve` on a free port; the child and its base URL.
fn serve(mirror: &Path) -> (std::process::Child, String) {
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("airlock"))
        .args(["serve", "--listen", "127.0.0.1:0", "--mirror"])
        .arg(mirror)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // "serving MIRROR on http://127.0.0.1:PORT (...)"
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve names its address").to_owned();
    (child, url)
}

/// The status and body of a plain GET, over a raw socket.
fn get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, reply.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

fn status_of(url: &str) -> u16 {
    get(url).0
}

fn body_of(url: &str) -> String {
    get(url).1
}

#[test]
fn the_served_catalog_follows_each_import_while_the_server_runs() {
    // The page is rendered once for each published state and kept: a new
    // import must show at once, the same state must not be rendered again.
    let (dir, mirror, _) = imported();
    let (mut child, base) = serve(&mirror);
    let first = body_of(&format!("{base}/"));
    let again = body_of(&format!("{base}/"));
    let (key, public) = (dir.path().join("op.key"), dir.path().join("op.pub"));
    let input = dir.path().join("more");
    write_tree(&input, &[("more.txt", b"more"), ("third.txt", b"third")]);
    let bundle = dir.path().join("c.airlock");
    let export = airlock()
        .args(["export", "--quiet", "--channel", "more", "--files"])
        .arg(&input)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .assert();
    export.success();
    airlock()
        .args(["import", "--quiet"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let after = body_of(&format!("{base}/"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.contains("2 entries from 1 imports"), "{first}");
    assert_eq!(first, again);
    assert!(after.contains("from 2 imports"), "{after}");
    assert!(after.contains("<td class=\"name\">more.txt</td>"), "{after}");
}
