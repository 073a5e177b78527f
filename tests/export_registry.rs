//! `airlock export` from lockfiles against a fake registry on loopback.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use common::registry::{self, Faults, Registry};
use common::{airlock, keygen, one_line};
use serde_json::Value;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    key: PathBuf,
    public: PathBuf,
    registry: Registry,
}

fn setup(faults: Faults) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let (key, public) = keygen(&root, "op");
    let registry = Registry::start(faults);
    fs::write(root.join("requirements.txt"), registry::requirements_txt()).unwrap();
    fs::create_dir_all(root.join("web")).unwrap();
    fs::write(root.join("web/package-lock.json"), registry::package_lock_json(&registry.base)).unwrap();
    fs::write(root.join("Cargo.lock"), registry::cargo_lock()).unwrap();
    Setup { _dir: dir, root, key, public, registry }
}

impl Setup {
    /// `airlock export` of all three lockfiles against the fake registry.
    fn export(&self, out: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        let r = &self.root;
        airlock()
            .env("HOME", r)
            .args(["export", "--json", "--timeout", "3"])
            .arg("--pypi-lock")
            .arg(r.join("requirements.txt"))
            .arg("--npm-lock")
            .arg(r.join("web/package-lock.json"))
            .arg("--cargo-lock")
            .arg(r.join("Cargo.lock"))
            .arg("--pypi-index")
            .arg(format!("{}/simple/", self.registry.base))
            .arg("--npm-registry")
            .arg(format!("{}/npm/", self.registry.base))
            .arg("--cargo-index")
            .arg(format!("{}/cargo/", self.registry.base))
            .arg("--cache")
            .arg(r.join("cache"))
            .arg("--key")
            .arg(&self.key)
            .arg("--out")
            .arg(r.join(out))
            .args(extra)
            .assert()
    }

    fn inspect(&self, bundle: &str) -> Value {
        let out = airlock().args(["inspect", "--json"]).arg(self.root.join(bundle)).assert().success();
        serde_json::from_slice::<Value>(&out.get_output().stdout).unwrap()["report"].clone()
    }
}

fn entry<'a>(report: &'a Value, ecosystem: &str, name: &str, path_end: &str) -> &'a Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ecosystem"] == ecosystem && e["name"] == name && e["path"].as_str().unwrap().ends_with(path_end))
        .unwrap_or_else(|| panic!("no {ecosystem} entry {name} ending {path_end} in {report:#}"))
}

fn kinds(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().split(' ').next().unwrap().to_owned()).collect()
}

#[test]
fn one_export_carries_all_three_lockfiles_with_their_evidence() {
    let s = setup(Faults::default());
    s.export("b.airlock", &[]).success();
    let report = s.inspect("b.airlock");
    assert_eq!(report["entries"].as_array().unwrap().len(), 7, "{report:#}");

    let wheel = entry(&report, "pypi", "tinyapp", registry::WHEEL);
    assert_eq!(wheel["version"], "1.0.0");
    assert!(wheel["digests"]["sha256"].is_string());
    assert_eq!(kinds(&wheel["evidence"]), ["pypi-core-metadata", "pypi-provenance"]);
    let sdist = entry(&report, "pypi", "tinyapp", registry::SDIST);
    assert_eq!(kinds(&sdist["missing"]), ["pypi-core-metadata", "pypi-provenance"]);

    let tinylib = entry(&report, "npm", "tinylib", ".tgz");
    assert_eq!(kinds(&tinylib["evidence"]), ["npm-version", "npm-signatures", "npm-attestations"]);
    assert!(tinylib["digests"]["sha512"].is_string() && tinylib["digests"]["sha1"].is_string());
    let scoped = entry(&report, "npm", "@airlock-test/scoped", ".tgz");
    assert_eq!(scoped["path"], "@airlock-test/scoped/-/scoped-2.1.0.tgz");
    assert_eq!(kinds(&scoped["missing"]), ["npm-attestations"]);

    let krate = entry(&report, "cargo", "tinycrate", ".crate");
    assert_eq!(kinds(&krate["evidence"]), ["cargo-index-entry"]);

    // The bundle verifies and imports on the other side.
    airlock().arg("verify").arg(s.root.join("b.airlock")).arg("--trust").arg(&s.public).assert().success();
    let mirror = s.root.join("mirror");
    airlock()
        .arg("import")
        .arg(s.root.join("b.airlock"))
        .arg("--trust")
        .arg(&s.public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let wheel_bytes = fs::read(registry::fixture(&format!("pypi/{}", registry::WHEEL))).unwrap();
    assert_eq!(fs::read(mirror.join("pypi/simple/tinyapp").join(registry::WHEEL)).unwrap(), wheel_bytes);
    assert!(mirror.join("npm/@airlock-test/scoped/-/scoped-2.1.0.tgz").is_file());
    assert!(mirror.join("cargo/tinycrate-0.1.0.crate").is_file());
}

#[test]
fn exporting_again_fetches_nothing() {
    let s = setup(Faults::default());
    let first = s.export("a.airlock", &[]).success();
    let report: Value = common::json_report(&first.get_output().stdout);
    assert_eq!(report["report"]["downloads"], 7);
    let artifact_hits = s.registry.artifact_hits();
    let second = s.export("b.airlock", &[]).success();
    let report: Value = common::json_report(&second.get_output().stdout);
    assert_eq!(report["report"]["downloads"], 0);
    assert_eq!(s.registry.artifact_hits(), artifact_hits, "the second export downloaded artifacts again");
}

#[test]
fn stripped_evidence_is_recorded_as_missing_with_where_it_was_looked_for() {
    let s = setup(Faults { strip_evidence: true, ..Faults::default() });
    s.export("b.airlock", &[]).success();
    let report = s.inspect("b.airlock");
    let tinylib = entry(&report, "npm", "tinylib", ".tgz");
    assert_eq!(kinds(&tinylib["missing"]), ["npm-signatures", "npm-attestations"]);
    assert!(tinylib["missing"][0].as_str().unwrap().contains("/npm/tinylib dist.signatures"), "{tinylib:#}");
    let wheel = entry(&report, "pypi", "tinyapp", registry::WHEEL);
    assert_eq!(kinds(&wheel["missing"]), ["pypi-provenance"]);
}

#[test]
fn a_tampered_artifact_fails_the_export_naming_the_package() {
    let mut replace = HashMap::new();
    replace.insert("/npm/tinylib/-/tinylib-1.0.0.tgz".to_owned(), b"not the tarball".to_vec());
    let s = setup(Faults { replace, ..Faults::default() });
    let out = s.export("b.airlock", &[]).code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("tinylib@1.0.0") && err.contains("sha512"), "{err}");
    assert!(!s.root.join("b.airlock").exists());
}

#[test]
fn a_lockfile_pin_that_differs_from_the_registry_fails() {
    let s = setup(Faults::default());
    let krate = fs::read(registry::fixture(&format!("cargo/{}", registry::CRATE))).unwrap();
    let lock = registry::cargo_lock().replace(&registry::sha256_hex(&krate), &"0".repeat(64));
    fs::write(s.root.join("Cargo.lock"), lock).unwrap();
    let out = s.export("b.airlock", &[]).code(2);
    assert!(one_line(&out.get_output().stderr).contains("crate tinycrate 0.1.0"));
}

#[test]
fn a_pin_that_does_not_exist_is_named() {
    let s = setup(Faults::default());
    fs::write(s.root.join("requirements.txt"), "tinyapp==9.9.9\n").unwrap();
    let out = s.export("b.airlock", &[]).code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("tinyapp==9.9.9"), "{err}");
}

#[test]
fn transient_registry_errors_are_retried() {
    let mut fail = HashMap::new();
    fail.insert("/npm/tinylib".to_owned(), (503, 1));
    fail.insert("/cargo/dl/tinycrate/0.1.0/download".to_owned(), (500, 1));
    let s = setup(Faults { fail, ..Faults::default() });
    s.export("b.airlock", &[]).success();
    assert_eq!(s.registry.hits("/npm/tinylib"), 2);
}

#[test]
fn persistent_registry_errors_and_garbage_fail_clearly() {
    let mut fail = HashMap::new();
    fail.insert("/simple/tinyapp/".to_owned(), (500, 100));
    let s = setup(Faults { fail, ..Faults::default() });
    let out = s.export("b.airlock", &[]).code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("/simple/tinyapp/") && err.contains("500"), "{err}");

    let mut replace = HashMap::new();
    replace.insert("/npm/tinylib".to_owned(), b"<html>proxy login</html>".to_vec());
    let s = setup(Faults { replace, ..Faults::default() });
    let out = s.export("b.airlock", &[]).code(2);
    assert!(one_line(&out.get_output().stderr).contains("not a packument"));
}

#[test]
fn git_dependencies_are_refused_by_name() {
    let s = setup(Faults::default());
    let mut lock: Value = serde_json::from_str(&registry::package_lock_json(&s.registry.base)).unwrap();
    lock["packages"]["node_modules/fromgit"] =
        serde_json::json!({"version": "1.0.0", "resolved": "git+ssh://git@github.com/x/fromgit.git#abc"});
    fs::write(s.root.join("web/package-lock.json"), serde_json::to_string(&lock).unwrap()).unwrap();
    let out = s.export("b.airlock", &[]).code(2);
    assert!(one_line(&out.get_output().stderr).contains("fromgit"));
}

#[test]
fn a_cached_copy_damaged_after_download_is_removed_and_fetched_again() {
    // Downloads are not fsynced: a crash can leave a cached file of the right
    // size with other bytes in it. The bundle writer's BLAKE3 check finds it.
    let s = setup(Faults::default());
    s.export("a.airlock", &[]).success();
    let wheel = fs::read(registry::fixture(&format!("pypi/{}", registry::WHEEL))).unwrap();
    let cached = s.root.join("cache/blobs").join(blake3::hash(&wheel).to_hex().as_str());
    let mut damaged = wheel.clone();
    damaged[40] ^= 0xff;
    fs::write(&cached, &damaged).unwrap();
    let out = s.export("b.airlock", &[]).code(2);
    let line = one_line(&out.get_output().stderr);
    assert!(line.contains("download cache's copy") && line.contains("run the export again"), "{line}");
    assert!(!cached.exists(), "the damaged copy stayed in the cache");
    assert!(!s.root.join("b.airlock").exists());
    let again = s.export("b.airlock", &[]).success();
    let report: Value = common::json_report(&again.get_output().stdout);
    assert_eq!(report["report"]["downloads"], 1, "only the damaged copy is fetched again");
    airlock().arg("verify").arg(s.root.join("b.airlock")).arg("--trust").arg(&s.public).assert().success();
}

#[test]
fn an_interrupted_download_resumes() {
    let s = setup(Faults::default());
    // A previous run left the first half of the wheel in the cache.
    let url = format!("{}/files/{}", s.registry.base, registry::WHEEL);
    let wheel = fs::read(registry::fixture(&format!("pypi/{}", registry::WHEEL))).unwrap();
    let partial = s.root.join("cache/partial").join(registry::sha256_hex(url.as_bytes()));
    fs::create_dir_all(partial.parent().unwrap()).unwrap();
    fs::write(&partial, &wheel[..wheel.len() / 2]).unwrap();
    s.export("b.airlock", &[]).success();
    airlock().arg("verify").arg(s.root.join("b.airlock")).arg("--trust").arg(&s.public).assert().success();
}

#[test]
fn a_config_file_names_the_same_inputs() {
    let s = setup(Faults::default());
    let base = &s.registry.base;
    let config = format!(
        "channel = \"weekly\"\nexpires = \"7d\"\n[pypi]\nlocks = [\"requirements.txt\"]\nindex = \"{base}/simple/\"\npython-versions = [\"3.12\"]\n[npm]\nlocks = [\"web/package-lock.json\"]\nregistry = \"{base}/npm/\"\n[cargo]\nlocks = [\"Cargo.lock\"]\nindex = \"{base}/cargo/\"\n"
    );
    fs::write(s.root.join("airlock.toml"), config).unwrap();
    airlock()
        .args(["export", "--quiet", "--config"])
        .arg(s.root.join("airlock.toml"))
        .arg("--cache")
        .arg(s.root.join("cache"))
        .arg("--key")
        .arg(&s.key)
        .arg("--out")
        .arg(s.root.join("c.airlock"))
        .assert()
        .success();
    let report = s.inspect("c.airlock");
    assert_eq!(report["channel"], "weekly");
    assert_eq!(report["entries"].as_array().unwrap().len(), 7);
    let bad = s.root.join("bad.toml");
    fs::write(&bad, "chanel = \"typo\"\n").unwrap();
    let out = airlock()
        .args(["export", "--config"])
        .arg(&bad)
        .arg("--key")
        .arg(&s.key)
        .arg("--out")
        .arg(s.root.join("d"))
        .assert()
        .code(2);
    one_line(&out.get_output().stderr);
}

#[test]
fn a_pylock_takes_exactly_the_files_it_pins() {
    let s = setup(Faults::default());
    let wheel = fs::read(registry::fixture(&format!("pypi/{}", registry::WHEEL))).unwrap();
    let pylock = format!(
        "lock-version = \"1.0\"\ncreated-by = \"test\"\n\n[[packages]]\nname = \"tinyapp\"\nversion = \"1.0.0\"\nwheels = [{{ name = \"{}\", url = \"{}/files/{}\", size = {}, hashes = {{ sha256 = \"{}\" }} }}]\n",
        registry::WHEEL,
        s.registry.base,
        registry::WHEEL,
        wheel.len(),
        registry::sha256_hex(&wheel)
    );
    fs::write(s.root.join("pylock.toml"), pylock).unwrap();
    airlock()
        .args(["export", "--quiet", "--pypi-lock"])
        .arg(s.root.join("pylock.toml"))
        .arg("--pypi-index")
        .arg(format!("{}/simple/", s.registry.base))
        .arg("--cache")
        .arg(s.root.join("cache"))
        .arg("--key")
        .arg(&s.key)
        .arg("--out")
        .arg(s.root.join("p.airlock"))
        .assert()
        .success();
    let report = s.inspect("p.airlock");
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0]["path"].as_str().unwrap().ends_with(registry::WHEEL));
}
