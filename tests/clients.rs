//! The real clients install from the imported mirror with no network:
//! pip from the `file://` simple index, cargo through source replacement to
//! the local registry. (npm through `airlock serve` is in `tests/serve_clients.rs`.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::imported_mirror;
use common::registry;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn venv(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    venv
}

fn pip(venv: &Path, mirror: &Path) -> Command {
    let mut cmd = Command::new(venv.join("bin/pip"));
    cmd.env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_CONFIG_FILE")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .args(["install", "--index-url"])
        .arg(format!("file://{}/pypi/simple/", mirror.display()));
    cmd
}

#[test]
fn pip_installs_the_wheel_and_the_sdist_from_the_file_index() {
    let (dir, mirror) = imported_mirror();
    let index = fs::read_to_string(mirror.join("pypi/simple/tinyapp/index.html")).unwrap();
    assert!(
        index.contains("#sha256=") && index.contains("data-core-metadata=") && index.contains("data-provenance="),
        "{index}"
    );

    let venv = venv(dir.path());
    run(pip(&venv, &mirror).arg("tinyapp==1.0.0"));
    let greeting =
        run(Command::new(venv.join("bin/python")).args(["-c", "import tinyapp; print(tinyapp.greet('ops'))"]));
    assert!(greeting.contains("hello, ops"), "{greeting}");

    // A package published only as an sdist builds and installs too.
    run(pip(&venv, &mirror).arg("sdistonly==0.1.0"));
    let answer = run(Command::new(venv.join("bin/python")).args(["-c", "import sdistonly; print(sdistonly.answer())"]));
    assert!(answer.contains("42"), "{answer}");
}

#[test]
fn pip_refuses_a_file_corrupted_in_the_mirror_after_import() {
    let (dir, mirror) = imported_mirror();
    let wheel = mirror.join("pypi/simple/tinyapp").join(registry::WHEEL);
    // Replace the published file (not the object it links to) with other bytes.
    let mut bytes = fs::read(&wheel).unwrap();
    bytes[100] ^= 0xff;
    fs::remove_file(&wheel).unwrap();
    fs::write(&wheel, &bytes).unwrap();
    let venv = venv(dir.path());
    let out = pip(&venv, &mirror).args(["--only-binary", ":all:", "tinyapp==1.0.0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HASH"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cargo_builds_offline_from_the_local_registry() {
    let (dir, mirror) = imported_mirror();
    let source = format!("local-registry = \"{}\"", mirror.join("cargo").display());
    let app = common::cargo_app(dir.path(), &source);
    let out = run(Command::new("cargo")
        .args(["run", "--offline", "--quiet"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", dir.path().join("target")));
    assert!(out.contains("HELLO, OPS"), "{out}");
}
