//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod hostile;
pub mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The binary under test, with a clean environment for reproducibility
/// (no default mirror, policy or key from the shell that runs the tests).
pub fn airlock() -> Command {
    let mut cmd = Command::cargo_bin("airlock").expect("binary built");
    for variable in ["SOURCE_DATE_EPOCH", "AIRLOCK_POLICY", "AIRLOCK_MIRROR", "AIRLOCK_KEY"] {
        cmd.env_remove(variable);
    }
    cmd
}

/// `airlock keygen --unencrypted --out DIR/NAME` (keys in clear: the tests need no passphrase), returning (secret, public) paths.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    airlock().args(["keygen", "--quiet", "--unencrypted", "--out"]).arg(&prefix).assert().success();
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// Writes `files` (relative path -> contents) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
}

/// A small tree with nesting, spaces, unicode and an empty file.
pub fn sample_tree(root: &Path) {
    write_tree(
        root,
        &[
            ("a.txt", b"alpha\n"),
            ("nested/deeper/b.bin", &[0u8, 1, 2, 3, 255]),
            ("with space/ünïcödé.md", "grüße\n".as_bytes()),
            ("empty", b""),
        ],
    );
}

/// `airlock export --files INPUT --key KEY --out OUT`, not yet run, for tests
/// that add flags or expect a failure.
pub fn export_files(input: &Path, key: &Path, out: &Path) -> Command {
    let mut cmd = airlock();
    cmd.args(["export", "--files"]).arg(input).arg("--key").arg(key).arg("--out").arg(out);
    cmd
}

/// Exports `input` signed by `keys` into `out`.
pub fn export(input: &Path, keys: &[&Path], out: &Path) {
    export_in_channel(input, keys, out, None);
}

/// Exports with the channel state in `state`, so successive bundles chain.
pub fn export_in_channel(input: &Path, keys: &[&Path], out: &Path, state: Option<&Path>) {
    let mut cmd = airlock();
    cmd.args(["export", "--quiet", "--files"]).arg(input).arg("--out").arg(out);
    if let Some(state) = state {
        cmd.arg("--state").arg(state);
    }
    for key in keys {
        cmd.arg("--key").arg(key);
    }
    cmd.assert().success();
}

/// Every file under `root` (following the mirror's links) with its bytes,
/// ignoring airlock's own staging area.
pub fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel.starts_with(".airlock/staging") || rel == ".airlock/lock" {
            continue;
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            out.insert(
                format!("{rel} -> link"),
                fs::read_link(&path).unwrap().to_string_lossy().into_owned().into_bytes(),
            );
            if path.is_dir() && !rel.starts_with(".airlock") {
                walk(root, &path, out);
            }
        } else if meta.is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
            walk(root, &path, out);
        } else {
            out.insert(rel, fs::read(&path).unwrap());
        }
    }
}

/// Asserts a failed command printed exactly one line on stderr.
pub fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(text.trim_end().lines().count(), 1, "expected one line on stderr, got: {text}");
    assert!(text.starts_with("error: "), "{text}");
    text
}

/// Exports the fixture lockfiles from the fake registry and imports the
/// bundle; returns (tempdir, mirror). The registry is gone afterwards.
pub fn imported_mirror() -> (tempfile::TempDir, PathBuf) {
    imported_mirror_with_policy("")
}

/// `airlock export --quiet` of whichever of requirements.txt, package-lock.json
/// and Cargo.lock are in `dir`, from the fake registry at `base`, with each
/// present ecosystem's endpoint pointed at it. Callers add flags and assert.
pub fn export_lockfiles(dir: &Path, base: &str, cache: &Path, key: &Path, out: &Path) -> Command {
    let mut cmd = airlock();
    cmd.args(["export", "--quiet"]);
    let inputs = [
        ("requirements.txt", "--pypi-lock", "--pypi-index", "simple"),
        ("package-lock.json", "--npm-lock", "--npm-registry", "npm"),
        ("Cargo.lock", "--cargo-lock", "--cargo-index", "cargo"),
    ];
    for (file, lock_flag, endpoint_flag, route) in inputs {
        if dir.join(file).exists() {
            cmd.arg(lock_flag).arg(dir.join(file)).arg(endpoint_flag).arg(format!("{base}/{route}/"));
        }
    }
    cmd.arg("--cache").arg(cache).arg("--key").arg(key).arg("--out").arg(out);
    cmd
}

/// The same, imported under a policy with `rules` (the fake registry's npm
/// keys are in `npm-keys.json` beside it).
pub fn imported_mirror_with_policy(rules: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let registry = registry::Registry::start(registry::Faults::default());
    fs::write(root.join("requirements.txt"), registry::requirements_txt()).unwrap();
    fs::write(root.join("package-lock.json"), registry::package_lock_json(&registry.base)).unwrap();
    fs::write(root.join("Cargo.lock"), registry::cargo_lock()).unwrap();
    export_lockfiles(root, &registry.base, &root.join("cache"), &key, &root.join("b.airlock")).assert().success();
    let mirror = root.join("mirror");
    fs::write(root.join("npm-keys.json"), registry::npm_keys_json(None)).unwrap();
    let policy = root.join("policy.toml");
    let pinned = format!(
        "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"{}\"\n{rules}",
        public.file_name().unwrap().to_str().unwrap()
    );
    fs::write(&policy, pinned).unwrap();
    airlock()
        .args(["import", "--quiet"])
        .arg(root.join("b.airlock"))
        .arg("--policy")
        .arg(&policy)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    (dir, mirror)
}

/// A cargo project under `dir/app` that depends on the two fixture crates,
/// with crates.io replaced by the source `[source.airlock]` described by `source`.
pub fn cargo_app(dir: &Path, source: &str) -> PathBuf {
    let app = dir.join("app");
    fs::create_dir_all(app.join("src")).unwrap();
    fs::create_dir_all(app.join(".cargo")).unwrap();
    let manifest = "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ntinycrate = \"=0.1.0\"\ntinyhelper = \"=0.2.0\"\n";
    fs::write(app.join("Cargo.toml"), manifest).unwrap();
    fs::write(
        app.join("src/main.rs"),
        "fn main() { println!(\"{}\", tinyhelper::shout(&tinycrate::greet(\"ops\"))); }\n",
    )
    .unwrap();
    let config = format!("[source.crates-io]\nreplace-with = \"airlock\"\n\n[source.airlock]\n{source}\n");
    fs::write(app.join(".cargo/config.toml"), config).unwrap();
    app
}

/// `pip install --index-url INDEX` from a fresh venv under `dir`, with
/// none of the user's pip configuration, cache or index variables; callers
/// add the requirements.
pub fn pip_install(dir: &Path, index: &str) -> std::process::Command {
    let venv = dir.join("venv");
    let made = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap();
    assert!(made.success(), "python3 -m venv failed");
    let mut cmd = std::process::Command::new(venv.join("bin/pip"));
    cmd.args(["install", "--index-url", index])
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_INDEX_URL");
    cmd
}

/// Fails the test with `what` and the output unless `out` succeeded.
pub fn assert_ok(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// pip, npm (a scoped package too) and cargo (sparse) install the fixture
/// packages from the mirror served at `base` (`through` names the server).
pub fn clients_install_from(dir: &Path, base: &str, through: &str) {
    let out = pip_install(dir, &format!("{base}/pypi/simple/"))
        .args(["tinyapp==1.0.0", "sdistonly==0.1.0"])
        .output()
        .unwrap();
    assert_ok(&format!("pip install through {through}"), &out);

    let web = dir.join("web");
    fs::create_dir_all(&web).unwrap();
    fs::write(
        web.join("package.json"),
        r#"{"name":"web","version":"1.0.0","private":true,"dependencies":{"@airlock-test/scoped":"2.1.0","tinylib":"1.0.0"}}"#,
    )
    .unwrap();
    let out = std::process::Command::new("npm")
        .args(["install", "--registry", &format!("{base}/npm/"), "--no-audit", "--no-fund", "--fetch-retries", "0"])
        .arg("--cache")
        .arg(web.join(".npm-cache"))
        .env("npm_config_userconfig", web.join(".npmrc-none"))
        .env_remove("npm_config_registry")
        .env_remove("NPM_CONFIG_REGISTRY")
        .current_dir(&web)
        .output()
        .expect("npm runs");
    assert_ok(&format!("npm install through {through}"), &out);
    assert!(web.join("node_modules/@airlock-test/scoped/package.json").is_file());

    let app = cargo_app(dir, &format!("registry = \"sparse+{base}/cargo/index/\""));
    let out = cargo_run(dir, &app);
    assert_ok(&format!("cargo run through {through}"), &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("HELLO, OPS"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `cargo run --quiet` of [`cargo_app`] under `dir`, with its own cargo home and target.
pub fn cargo_run(dir: &Path, app: &Path) -> std::process::Output {
    std::process::Command::new("cargo")
        .args(["run", "--quiet"])
        .current_dir(app)
        .env("CARGO_HOME", dir.join("cargo-home"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap()
}

/// Where skipped checks are recorded (`target/tmp/skipped-tests.txt`);
/// `.ci/run` prints and counts them at the end.
pub const SKIPPED_FILE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.txt");

/// A check this machine cannot make. With `AIRLOCK_NO_SKIP=1` (`.ci/run`
/// sets it) that fails the test; otherwise it prints `SKIPPED: TEST: WHY`
/// and adds that line to [`SKIPPED_FILE`], so a skip is never mistaken
/// for a pass. The test is named by its thread, as the test harness names it.
pub fn skip(why: &str) {
    static RECORDED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let line = format!("SKIPPED: {test}: {why}");
    let forbidden = std::env::var("AIRLOCK_NO_SKIP").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(!forbidden, "{line} (AIRLOCK_NO_SKIP is set: this machine must be able to run it)");
    if !RECORDED.lock().unwrap().insert(line.clone()) {
        return;
    }
    // Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
    let file = fs::OpenOptions::new().create(true).append(true).open(SKIPPED_FILE);
    if let Err(e) = file.and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes())) {
        panic!("{line}, and recording the skip in {SKIPPED_FILE} failed: {e}");
    }
}

/// Whether `unshare -n` works here (root, or a sandbox that allows it).
pub fn can_unshare_network() -> bool {
    static CAN_UNSHARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN_UNSHARE
        .get_or_init(|| std::process::Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success()))
}

/// The binary under test with no network at all, in a fresh network
/// namespace (`unshare -n`), so a test proves that what it runs never
/// needs a connection. Where `unshare -n` is not permitted the command
/// runs with the network present, so that the test's other assertions
/// still run, and the missing proof is [`skip`]ped: printed and counted,
/// or a failure under `AIRLOCK_NO_SKIP=1`.
pub fn airlock_offline() -> Command {
    if !can_unshare_network() {
        skip("`unshare -n` is not permitted here, so this run does not prove that no network is used");
        return airlock();
    }
    let mut cmd = Command::new("unshare");
    cmd.arg("-n").arg(assert_cmd::cargo::cargo_bin("airlock"));
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// The `--json` document on `stdout`, checked against
/// schemas/reports.schema.json before a test looks inside: every report a
/// test reads is a report the schema describes.
pub fn json_report(stdout: &[u8]) -> serde_json::Value {
    static VALIDATOR: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/reports.schema.json");
        let schema: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).expect("schemas/reports.schema.json is a valid JSON Schema")
    });
    let text = String::from_utf8_lossy(stdout);
    let value: serde_json::Value =
        serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("--json printed no JSON document ({e}): {text}"));
    let problems: Vec<String> =
        VALIDATOR.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(problems.is_empty(), "the report does not match schemas/reports.schema.json: {problems:#?}\n{value:#}");
    value
}

/// nginx in the foreground under `prefix` (its configuration, logs and
/// temporary folders), serving `server` (one or more `server { }` blocks,
/// written to `prefix/airlock.conf` and included): the shipped server block
/// or a test's own. The caller waits until it listens.
pub fn spawn_nginx(nginx: &Path, prefix: &Path, server: &str) -> std::process::Child {
    use std::os::unix::fs::MetadataExt as _;
    fs::create_dir_all(prefix).unwrap();
    fs::write(prefix.join("airlock.conf"), server).unwrap();
    // Run as root, nginx's workers would drop to `nobody`, who cannot read a private temp dir.
    let user = if fs::metadata("/proc/self").unwrap().uid() == 0 { "user root;\n" } else { "" };
    let main = format!(
        "{user}worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n  access_log {p}/access.log;\n  default_type application/octet-stream;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  include {p}/airlock.conf;\n}}\n",
        p = prefix.display()
    );
    fs::write(prefix.join("nginx.conf"), main).unwrap();
    std::process::Command::new(nginx)
        .arg("-p")
        .arg(prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts")
}
