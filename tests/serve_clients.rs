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

    let venv = dir.path().join("venv");
    assert!(Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap().success());
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "--index-url", &format!("{base}/pypi/simple/"), "tinyapp==1.0.0"])
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_INDEX_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let app = common::cargo_app(dir.path(), &format!("registry = \"sparse+{base}/cargo/index/\""));
    let out = Command::new("cargo")
        .args(["run", "--quiet"])
        .current_dir(&app)
        .env("CARGO_HOME", dir.path().join("cargo-home"))
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("HELLO, OPS"), "{}", String::from_utf8_lossy(&out.stderr));
}
