//! npm, pip and cargo install from the imported mirror through `airlock serve`, with no
//! network: a plain install, `npm ci` on a lockfile that points at the
//! public registry, and npm's own integrity check on a corrupted tarball.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use airlock::serve::{ServeOptions, ServerHandle, bind};
use common::imported_mirror;
use common::registry;

fn serve(mirror: &Path) -> ServerHandle {
    let options = ServeOptions { mirror: mirror.to_owned(), listen: "127.0.0.1:0".parse().unwrap() };
    bind(&options).unwrap().spawn(|_| {})
}

fn npm(project: &Path, registry: &str, args: &[&str]) -> Output {
    Command::new("npm")
        .args(args)
        .args(["--registry", registry, "--no-audit", "--no-fund", "--prefer-online", "--fetch-retries", "0"])
        .arg("--cache")
        .arg(project.join(".npm-cache"))
        .env("npm_config_userconfig", project.join(".npmrc-none"))
        .env_remove("npm_config_registry")
        .env_remove("NPM_CONFIG_REGISTRY")
        .current_dir(project)
        .output()
        .expect("npm runs")
}

fn project(dir: &Path) -> std::path::PathBuf {
    let project = dir.join("web");
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        r#"{"name":"web","version":"1.0.0","private":true,"dependencies":{"@airlock-test/scoped":"2.1.0"}}"#,
    )
    .unwrap();
    project
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "npm failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn npm_install_and_ci_work_through_airlock_serve() {
    let (dir, mirror) = imported_mirror();
    let server = serve(&mirror);
    let url = format!("http://{}/npm/", server.local_addr());
    let web = project(dir.path());
    assert_ok(&npm(&web, &url, &["install"]));
    let greeting = Command::new("node")
        .args(["-e", "console.log(require('@airlock-test/scoped')('ops'))"])
        .current_dir(&web)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&greeting.stdout).contains("hello, ops"), "{greeting:?}");

    // npm ci on a lockfile whose resolved URLs name the public registry.
    let ci = dir.path().join("ci");
    fs::create_dir_all(&ci).unwrap();
    fs::copy(web.join("package.json"), ci.join("package.json")).unwrap();
    fs::write(ci.join("package-lock.json"), registry::package_lock_json("https://registry.npmjs.org")).unwrap();
    assert_ok(&npm(&ci, &url, &["ci"]));
    assert!(ci.join("node_modules/tinylib/index.js").is_file());
}

#[test]
fn npm_refuses_a_tarball_corrupted_in_the_mirror() {
    let (dir, mirror) = imported_mirror();
    // Swap in another valid tarball: only the integrity check can tell.
    let tarball = mirror.join("npm/tinylib/-/tinylib-1.0.0.tgz");
    let other = fs::read(registry::fixture(&format!("npm/{}", registry::SCOPED))).unwrap();
    fs::remove_file(&tarball).unwrap();
    fs::write(&tarball, &other).unwrap();
    let server = serve(&mirror);
    let web = project(dir.path());
    let out = npm(&web, &format!("http://{}/npm/", server.local_addr()), &["install"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EINTEGRITY"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn pip_and_cargo_also_install_over_http_from_airlock_serve() {
    let (dir, mirror) = imported_mirror();
    let server = serve(&mirror);
    let base = format!("http://{}", server.local_addr());

    let out = common::pip_install(dir.path(), &format!("{base}/pypi/simple/")).arg("tinyapp==1.0.0").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let app = common::cargo_app(dir.path(), &format!("registry = \"sparse+{base}/cargo/index/\""));
    let out = common::cargo_run(dir.path(), &app);
    assert!(String::from_utf8_lossy(&out.stdout).contains("HELLO, OPS"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn npm_audit_signatures_against_the_mirror() {
    // Import with a policy that pins the (test) registry's keys: the mirror
    // then serves them at the keys endpoint, and the packuments keep dist.signatures.
    let (dir, mirror) = common::imported_mirror_with_policy("[npm]\nregistry-keys = \"npm-keys.json\"\n");
    let server = serve(&mirror);
    let url = format!("http://{}/npm/", server.local_addr());
    let web = dir.path().join("audit");
    fs::create_dir_all(&web).unwrap();
    fs::write(
        web.join("package.json"),
        r#"{"name":"audit","version":"1.0.0","private":true,"dependencies":{"tinylib":"1.0.0"}}"#,
    )
    .unwrap();
    assert_ok(&npm(&web, &url, &["install"]));

    // An independent check of what the server answers: the keys endpoint is the pinned
    // document and tinylib's signature verifies over NAME@VERSION:INTEGRITY with it.
    let keys = http_get(&format!("{url}-/npm/v1/keys"));
    assert_eq!(keys, registry::npm_keys_json(None).into_bytes());
    let packument: serde_json::Value = serde_json::from_slice(&http_get(&format!("{url}tinylib"))).unwrap();
    let dist = &packument["versions"]["1.0.0"]["dist"];
    let keys = airlock::ecosystem::npm::RegistryKeys::from_json(&keys, "served keys").unwrap();
    let signatures = serde_json::to_vec(&dist["signatures"]).unwrap();
    keys.verify("tinylib", "1.0.0", dist["integrity"].as_str().unwrap(), &signatures, None).unwrap();

    // The same check by an independent implementation: Node's crypto, as npm uses it.
    // (`npm audit signatures` itself cannot run here: it first fetches the registry keys
    // from Sigstore's TUF repository and fails without network.)
    let key = keys_der(&http_get(&format!("{url}-/npm/v1/keys")));
    let script = "const c=require('crypto');const [k,s,m]=process.argv.slice(1);\
        const ok=c.verify('sha256',Buffer.from(m),{key:Buffer.from(k,'base64'),format:'der',type:'spki'},Buffer.from(s,'base64'));\
        process.exit(ok?0:1)";
    let message = format!("tinylib@1.0.0:{}", dist["integrity"].as_str().unwrap());
    let sig = dist["signatures"][0]["sig"].as_str().unwrap();
    let status = Command::new("node").args(["-e", script, &key, sig, &message]).status().unwrap();
    assert!(status.success(), "node's crypto does not accept the served signature");
    let status = Command::new("node").args(["-e", script, &key, sig, "tinylib@1.0.1:x"]).status().unwrap();
    assert!(!status.success(), "node's crypto accepted a signature over another message");
}

fn keys_der(document: &[u8]) -> String {
    let doc: serde_json::Value = serde_json::from_slice(document).unwrap();
    doc["keys"][0]["key"].as_str().unwrap().to_owned()
}

fn http_get(url: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    // HTTP/1.0, so the body ends with the connection (never chunked).
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    response[split + 4..].to_vec()
}
