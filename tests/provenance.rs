//! The provenance and policy layers on import: npm registry signatures
//! checked against keys the policy pins, evidence the policy requires, and
//! stripped evidence decided by policy, never silently.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::registry::{self, Faults, Registry};
use common::{airlock, keygen, one_line, snapshot};
use serde_json::Value;

struct Exported {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bundle: PathBuf,
}

fn export(faults: Faults) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let (key, _) = keygen(&root, "op");
    let registry = Registry::start(faults);
    fs::write(root.join("package-lock.json"), registry::package_lock_json(&registry.base)).unwrap();
    fs::write(root.join("requirements.txt"), registry::requirements_txt()).unwrap();
    let bundle = root.join("b.airlock");
    airlock()
        .args(["export", "--quiet", "--npm-lock"])
        .arg(root.join("package-lock.json"))
        .arg("--pypi-lock")
        .arg(root.join("requirements.txt"))
        .arg("--npm-registry")
        .arg(format!("{}/npm/", registry.base))
        .arg("--pypi-index")
        .arg(format!("{}/simple/", registry.base))
        .arg("--cache")
        .arg(root.join("cache"))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    Exported { _dir: dir, root, bundle }
}

impl Exported {
    fn policy(&self, rules: &str, key_expires: Option<&str>) -> PathBuf {
        fs::write(self.root.join("npm-keys.json"), registry::npm_keys_json(key_expires)).unwrap();
        let path = self.root.join("policy.toml");
        fs::write(&path, format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n{rules}"))
            .unwrap();
        path
    }

    fn verify(&self, policy: &Path) -> assert_cmd::assert::Assert {
        airlock().args(["verify", "--json"]).arg(&self.bundle).arg("--policy").arg(policy).assert()
    }
}

fn package<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["report"]["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()
}

#[test]
fn pinned_registry_keys_verify_npm_signatures_and_the_report_shows_every_layer() {
    let b = export(Faults::default());
    let policy = b.policy("[npm]\nregistry-keys = \"npm-keys.json\"\n", None);
    let out = b.verify(&policy).success();
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let tinylib = package(&report, "tinylib");
    assert!(
        tinylib["provenance"]
            .as_str()
            .unwrap()
            .contains("registry signature by SHA256:airlock-test-registry-key verified"),
        "{tinylib:#}"
    );
    for layer in ["transfer", "content", "digest", "policy"] {
        assert!(
            tinylib[layer].as_str().unwrap().contains("ok") || tinylib[layer].as_str().unwrap().contains("match"),
            "{layer}: {tinylib:#}"
        );
    }
    // Signed by a key this site does not pin: reported, not counted.
    let scoped = package(&report, "@airlock-test/scoped");
    assert!(scoped["provenance"].as_str().unwrap().contains("not verified"), "{scoped:#}");
    // The human report has a line per package.
    let human = airlock().arg("verify").arg(&b.bundle).arg("--policy").arg(&policy).assert().success();
    assert!(String::from_utf8_lossy(&human.get_output().stdout).contains("npm tinylib 1.0.0"));
}

#[test]
fn a_required_signature_by_an_unpinned_key_is_rejected() {
    let b = export(Faults::default());
    let policy = b.policy("[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys = \"npm-keys.json\"\n", None);
    let out = b.verify(&policy).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("@airlock-test/scoped") && err.contains("does not pin"), "{err}");
}

#[test]
fn a_key_that_expired_before_publication_does_not_vouch() {
    let b = export(Faults::default());
    let policy = b.policy("[npm]\nregistry-keys = \"npm-keys.json\"\n", Some("2024-01-01T00:00:00.000Z"));
    let out = b.verify(&policy).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("tinylib") && err.contains("expired"), "{err}");
    // Expiring after publication it still counts.
    let policy = b.policy("[npm]\nregistry-keys = \"npm-keys.json\"\n", Some("2025-01-01T00:00:00.000Z"));
    b.verify(&policy).success();
}

#[test]
fn stripped_evidence_is_decided_by_policy_and_a_rejected_import_changes_nothing() {
    let stripped = export(Faults { strip_evidence: true, ..Faults::default() });
    // Digest-only is acceptable when the policy says nothing.
    let lenient = stripped.policy("", None);
    let mirror = stripped.root.join("mirror");
    airlock()
        .args(["import", "--quiet"])
        .arg(&stripped.bundle)
        .arg("--policy")
        .arg(&lenient)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let before = snapshot(&mirror);

    let strict = stripped.policy("[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys = \"npm-keys.json\"\n[pypi]\nrequire = [\"pypi-provenance\"]\n", None);
    let out = airlock()
        .arg("import")
        .arg(&stripped.bundle)
        .arg("--policy")
        .arg(&strict)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("requires") && err.contains("stripped"), "{err}");
    assert_eq!(snapshot(&mirror), before);

    // The unstripped bundle carries what the strict policy requires, except the scoped
    // package's signature is by a key the test policy does not pin.
    let full = export(Faults::default());
    let policy = full.policy("[pypi]\nrequire = [\"pypi-provenance\"]\n", None);
    let out = full.verify(&policy).code(1);
    assert!(one_line(&out.get_output().stderr).contains("sdistonly"), "the sdist-only package has no provenance");
}

#[test]
fn policy_mistakes_are_configuration_errors() {
    let b = export(Faults::default());
    for rules in [
        "[npm]\nrequire = [\"npm-signatures\"]\n",
        "[npm]\nrequire = [\"sigstore\"]\n",
        "[cargo]\nregistry-keys = \"npm-keys.json\"\n",
        "[npm]\nregistry-keys = \"missing.json\"\n",
    ] {
        let policy = b.policy(rules, None);
        let out = b.verify(&policy).code(2);
        one_line(&out.get_output().stderr);
    }
}
