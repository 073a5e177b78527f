//! The mirror served as it stands by a stock web server: `import
//! --base-url` makes every document final, and pip, npm (a scoped package
//! included) and cargo (sparse) install through a real nginx and a real
//! Caddy running the configurations shipped in contrib/, unchanged but for
//! their address and `root` lines.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{airlock, assert_ok, imported_mirror, skip};

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/nginx/airlock.conf");
const CADDYFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/caddy/Caddyfile");

/// A loopback port free a moment ago (nginx binds it by itself).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A web server in the foreground, stopped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The installed `name`, from the folders Debian and a local install put it in.
fn binary(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Waits until something listens on `port`; `log` says why not.
fn wait_listening(port: u16, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = fs::read_to_string(log).unwrap_or_default();
        assert!(started.elapsed() < Duration::from_secs(15), "the server did not start listening: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nginx with the shipped server block.
fn start_nginx(nginx: &Path, dir: &Path, mirror: &Path, port: u16) -> Server {
    let shipped = fs::read_to_string(CONF).unwrap();
    assert!(
        shipped.contains("    listen 8080;\n") && shipped.contains("    root /srv/mirror;\n"),
        "{CONF} changed shape"
    );
    let server = shipped
        .replace("    listen 8080;\n", &format!("    listen 127.0.0.1:{port};\n"))
        .replace("    root /srv/mirror;\n", &format!("    root {};\n", mirror.display()));
    let prefix = dir.join("nginx");
    let child = common::spawn_nginx(nginx, &prefix, &server);
    let server = Server(child);
    wait_listening(port, &prefix.join("error.log"));
    server
}

/// Caddy with the shipped Caddyfile (its admin endpoint off, so tests can run side by side).
fn start_caddy(caddy: &Path, dir: &Path, mirror: &Path, port: u16) -> Server {
    let shipped = fs::read_to_string(CADDYFILE).unwrap();
    assert!(
        shipped.contains("http://:8080 {\n") && shipped.contains("\troot * /srv/mirror\n"),
        "{CADDYFILE} changed shape"
    );
    let site = shipped
        .replace("http://:8080 {\n", &format!("http://127.0.0.1:{port} {{\n"))
        .replace("\troot * /srv/mirror\n", &format!("\troot * {}\n", mirror.display()));
    let home = dir.join("caddy");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join("Caddyfile"), format!("{{\n\tadmin off\n}}\n\n{site}")).unwrap();
    let log = fs::File::create(home.join("caddy.log")).unwrap();
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(home.join("Caddyfile"))
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("caddy starts");
    let server = Server(child);
    wait_listening(port, &home.join("caddy.log"));
    server
}

/// The imported fixture mirror, re-rendered for `base` (the path that
/// changes a mirror's address without re-importing).
fn mirror_for(base: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, mirror) = imported_mirror();
    let out = airlock().args(["import", "--mirror"]).arg(&mirror).args(["--base-url", base]).output().unwrap();
    assert_ok("airlock import --base-url", &out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("for {} (generation 2)", base.trim_end_matches('/'))), "{said}");
    (dir, mirror)
}

#[test]
fn pip_npm_and_cargo_install_through_nginx_with_the_shipped_configuration() {
    let Some(nginx) = binary("nginx") else {
        skip("nginx is not installed (Debian: apt-get install nginx), so the shipped configuration is not tried");
        return;
    };
    clients_install_through(|dir, mirror, port| start_nginx(&nginx, dir, mirror, port));
}

#[test]
fn pip_npm_and_cargo_install_through_caddy_with_the_shipped_caddyfile() {
    let Some(caddy) = binary("caddy") else {
        skip("caddy is not installed (Debian: apt-get install caddy), so the shipped Caddyfile is not tried");
        return;
    };
    clients_install_through(|dir, mirror, port| start_caddy(&caddy, dir, mirror, port));
}

/// The fixture mirror, rendered for a loopback port, served by `start`;
/// then pip, npm and cargo install from it.
fn clients_install_through(start: impl FnOnce(&Path, &Path, u16) -> Server) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (dir, mirror) = mirror_for(&base);
    let _server = start(dir.path(), &mirror, port);

    common::clients_install_from(dir.path(), &base, "nginx");
}

/// What `--base-url` writes: final URLs in the documents, recorded in the
/// state, kept by later imports; refused when it is not an address.
#[test]
fn base_url_renders_final_documents_and_refuses_what_is_not_an_address() {
    let (_dir, mirror) = mirror_for("https://mirror.example/airlock/");
    let packument = fs::read_to_string(mirror.join("npm/tinylib/packument.json")).unwrap();
    assert!(!packument.contains("{{AIRLOCK_BASE}}"), "{packument}");
    assert!(packument.contains("\"https://mirror.example/airlock/npm/tinylib/-/tinylib-1.0.0.tgz\""), "{packument}");
    let config = fs::read_to_string(mirror.join("cargo/index/config.json")).unwrap();
    assert_eq!(config, r#"{"dl":"https://mirror.example/airlock/cargo/{crate}-{version}.crate"}"#);
    let state = fs::read_to_string(mirror.join(".airlock/current/state.json")).unwrap();
    assert!(state.contains("\"base_url\": \"https://mirror.example/airlock\""), "{state}");
    assert!(mirror.join("cargo/tinycrate-0.1.0.crate").is_file());

    for (bad, why) in [
        ("mirror.example", "not an http:// or https:// URL"),
        ("ftp://mirror.example", "not an http:// or https:// URL"),
        ("http://mirror.example/?x=1", "a query or a fragment"),
        ("http://user@mirror.example", "names no host (or carries a user name)"),
        ("http://mirror.example/\"><script>", "a character URLs may not"),
    ] {
        let before = common::snapshot(&mirror);
        let out = airlock().args(["import", "--mirror"]).arg(&mirror).args(["--base-url", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let line = common::one_line(&out.stderr);
        assert!(line.contains("--base-url") && line.contains(why), "{bad}: {line}");
        assert_eq!(before, common::snapshot(&mirror), "{bad} changed the mirror");
    }
    let missing = mirror.with_file_name("no-such-mirror");
    let out =
        airlock().args(["import", "--mirror"]).arg(&missing).args(["--base-url", "http://m.example"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(common::one_line(&out.stderr).contains("no such folder"), "{out:?}");
    assert!(!missing.exists());
}
