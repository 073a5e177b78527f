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

/// Exports `package-lock.json` and `requirements.txt` (as `lockfiles` writes
/// them for the registry's address) from a registry with these faults.
fn export_from(faults: Faults, lockfiles: impl Fn(&str) -> (String, String)) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let (key, _) = keygen(&root, "op");
    let registry = Registry::start(faults);
    let (npm, pypi) = lockfiles(&registry.base);
    fs::write(root.join("package-lock.json"), npm).unwrap();
    fs::write(root.join("requirements.txt"), pypi).unwrap();
    let bundle = root.join("b.airlock");
    common::export_lockfiles(&root, &registry.base, &root.join("cache"), &key, &bundle).assert().success();
    for file in ["trusted_root.json", "registry-keys.json"] {
        fs::copy(registry::fixture(&format!("upstream/{file}")), root.join(file)).unwrap();
    }
    Exported { _dir: dir, root, bundle }
}

/// The fixture packages (test registry keys, mismatched captured evidence).
fn export(faults: Faults) -> Exported {
    export_from(faults, |base| (registry::package_lock_json(base), registry::requirements_txt()))
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
    let report: Value = common::json_report(&out.get_output().stdout);
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
    // The human report has a line per package with --verbose, and layer words for scripts in JSON.
    let human = airlock().args(["verify", "-v"]).arg(&b.bundle).arg("--policy").arg(&policy).assert().success();
    assert!(String::from_utf8_lossy(&human.get_output().stdout).contains("npm tinylib 1.0.0"));
    assert_eq!(tinylib["layers"]["provenance"], "ok", "{tinylib:#}");
    assert_eq!(scoped["layers"]["provenance"], "not-checked", "{scoped:#}");
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

    fs::copy(registry::fixture("upstream/trusted_root.json"), stripped.root.join("trusted_root.json")).unwrap();
    let strict = stripped.policy("[sigstore]\ntrusted-root = \"trusted_root.json\"\n[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys = \"npm-keys.json\"\n[pypi]\nrequire = [\"pypi-provenance\"]\n", None);
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
    // The refusal reports every package, not only the first refused: each
    // refused one on standard output, and all of them in the JSON.
    let npm_only = stripped.policy("[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys = \"npm-keys.json\"\n", None);
    let verify = |flags: &[&str]| {
        let mut cmd = airlock();
        cmd.arg("verify").arg(&stripped.bundle).arg("--policy").arg(&npm_only).args(flags);
        cmd.assert().code(1).get_output().stdout.clone()
    };
    let text = String::from_utf8(verify(&[])).unwrap();
    let json = common::json_report(&verify(&["--json"]));
    // JSON Lines: each entry's report on a line of its own, then the refusal listing none.
    let lines = String::from_utf8(verify(&["--json-lines"])).unwrap();
    let lines: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (last, entries) = lines.split_last().unwrap();
    assert_eq!((&last["schema"], &last["packages"]), (&Value::from("airlock.error.v1"), &Value::Array(Vec::new())));
    assert_eq!(entries.len(), json["packages"].as_array().unwrap().len());
    assert!(entries.iter().zip(json["packages"].as_array().unwrap()).all(|(l, p)| l["report"] == *p));
    let packages = json["packages"].as_array().expect("a refusal carries every entry's report");
    let layer = |p: &Value| p["layers"]["policy"].as_str().unwrap().to_owned();
    let refused: Vec<&Value> = packages.iter().filter(|p| layer(p) == "failed").collect();
    assert!(refused.len() >= 2 && refused.iter().all(|p| p["ecosystem"] == "npm"), "every npm package: {json:#}");
    assert!(packages.iter().any(|p| p["ecosystem"] == "pypi" && layer(p) == "not-required"), "PyPI passes: {json:#}");
    let refused_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("refused   npm ")).collect();
    assert_eq!(refused_lines.len(), refused.len(), "{text}");

    // The unstripped bundle carries what the strict policy requires, except the scoped
    // package's signature is by a key the test policy does not pin.
    let full = export(Faults::default());
    let policy = full.policy("[pypi]\nrequire = [\"pypi-provenance\"]\n", None);
    let out = full.verify(&policy).code(2);
    assert!(one_line(&out.get_output().stderr).contains("pins no Sigstore root"));
    let policy = full.policy("[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys = \"npm-keys.json\"\n", None);
    let out = full.verify(&policy).code(1);
    assert!(one_line(&out.get_output().stderr).contains("@airlock-test/scoped"), "signed by an unpinned key");
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

// Sigstore: real attestations, verified offline against the pinned trusted root.

const GITHUB: &str = "https://token.actions.githubusercontent.com";

/// The packages whose evidence is real (sigstore@1.0.0, pypi-attestations 0.0.19).
fn export_real(faults: Faults) -> Exported {
    export_from(faults, |base| (registry::real_package_lock_json(base), registry::real_requirements_txt()))
}

/// The strict policy a regulated site would write for these two packages.
fn sigstore_policy(npm_publisher: &str, pypi_publisher: &str) -> String {
    format!(
        "[sigstore]\ntrusted-root = \"trusted_root.json\"\n\
         [npm]\nrequire = [\"npm-signatures\", \"npm-attestations\"]\nregistry-keys = \"registry-keys.json\"\n\
         [[npm.publishers]]\npackages = [\"sigstore\"]\n{npm_publisher}\nissuer = \"{GITHUB}\"\n\
         [pypi]\nrequire = [\"pypi-provenance\"]\n\
         [[pypi.publishers]]\npackages = [\"pypi-attestations\"]\n{pypi_publisher}\nissuer = \"{GITHUB}\"\n"
    )
}

fn real_policy(b: &Exported, rules: &str) -> PathBuf {
    let path = b.root.join("policy.toml");
    fs::write(&path, format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n{rules}"))
        .unwrap();
    path
}

fn strict(b: &Exported) -> PathBuf {
    real_policy(
        b,
        &sigstore_policy(
            "repository = \"https://github.com/sigstore/sigstore-js\"\nworkflow = \".github/workflows/publish.yml\"",
            "repository = \"https://github.com/trailofbits/pypi-attestations\"",
        ),
    )
}

fn verify_offline(b: &Exported, policy: &Path) -> assert_cmd::assert::Assert {
    common::airlock_offline().args(["verify", "--json"]).arg(&b.bundle).arg("--policy").arg(policy).assert()
}

#[test]
fn real_attestations_verify_offline_against_the_pinned_root_and_publisher_policy() {
    let b = export_real(Faults::default());
    let policy = strict(&b);
    let out = verify_offline(&b, &policy).success();
    let report: Value = common::json_report(&out.get_output().stdout);
    let npm = package(&report, "sigstore");
    let provenance = npm["provenance"].as_str().unwrap();
    for expected in [
        "registry signature by SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA verified",
        "SLSA provenance by https://github.com/sigstore/sigstore-js/.github/workflows/publish.yml@refs/tags/v1.0.0 (issuer https://token.actions.githubusercontent.com) verified",
        "npm publish by registry key SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA verified",
    ] {
        assert!(provenance.contains(expected), "{expected}: {npm:#}");
    }
    assert!(
        npm["policy"]
            .as_str()
            .unwrap()
            .contains("built by https://github.com/sigstore/sigstore-js/.github/workflows/publish.yml"),
        "{npm:#}"
    );
    let pypi = package(&report, "pypi-attestations");
    assert!(
        pypi["provenance"].as_str().unwrap().contains(
            "PEP 740 publish by https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19"
        ),
        "{pypi:#}"
    );
    assert!(pypi["policy"].as_str().unwrap().contains("requires pypi-provenance"), "{pypi:#}");

    // The import checks the same, with no network, and publishes.
    let mirror = b.root.join("mirror");
    common::airlock_offline()
        .args(["import", "--quiet"])
        .arg(&b.bundle)
        .arg("--policy")
        .arg(&policy)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    assert_eq!(
        fs::read(mirror.join("npm/sigstore/-").join(registry::REAL_NPM)).unwrap(),
        registry::fixture_bytes(&format!("upstream/{}", registry::REAL_NPM))
    );
    assert!(mirror.join("pypi/simple/pypi-attestations").join(registry::REAL_SDIST).is_file());
}

#[test]
fn provenance_from_another_builder_than_the_policy_names_is_rejected_and_changes_nothing() {
    let b = export_real(Faults::default());
    let policy = real_policy(
        &b,
        &sigstore_policy(
            "repository = \"https://github.com/sigstore/sigstore-js-fork\"",
            "repository = \"https://github.com/trailofbits/pypi-attestations\"",
        ),
    );
    let mirror = b.root.join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    let before = snapshot(&mirror);
    let out = common::airlock_offline()
        .arg("import")
        .arg(&b.bundle)
        .arg("--policy")
        .arg(&policy)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(
        err.contains("sigstore@1.0.0")
            && err.contains("expects provenance built by a workflow of https://github.com/sigstore/sigstore-js-fork")
            && err.contains("SLSA provenance by https://github.com/sigstore/sigstore-js/"),
        "{err}"
    );
    assert_eq!(snapshot(&mirror), before);
    // An exact identity for another tag is another identity.
    let policy = real_policy(
        &b,
        &sigstore_policy(
            "identity = \"https://github.com/sigstore/sigstore-js/.github/workflows/publish.yml@refs/tags/v9.9.9\"",
            "repository = \"https://github.com/trailofbits/pypi-attestations\"",
        ),
    );
    verify_offline(&b, &policy).code(1);
    // And a PyPI publisher mismatch.
    let policy = real_policy(
        &b,
        &sigstore_policy(
            "repository = \"https://github.com/sigstore/sigstore-js\"",
            "repository = \"https://github.com/pypa/pypi-attestations\"",
        ),
    );
    let out = verify_offline(&b, &policy).code(1);
    assert!(one_line(&out.get_output().stderr).contains("pypi-attestations"));
}

#[test]
fn a_registry_key_expired_before_the_attestation_was_logged_does_not_vouch() {
    let b = export_real(Faults::default());
    let policy = strict(&b);
    let keys = fs::read_to_string(b.root.join("registry-keys.json")).unwrap();
    fs::write(b.root.join("registry-keys.json"), keys.replace("2025-01-29T00:00:00.000Z", "2023-01-01T00:00:00.000Z"))
        .unwrap();
    let out = verify_offline(&b, &policy).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("sigstore@1.0.0") && err.contains("expired"), "{err}");
}

/// An attestations document with one change made to the SLSA provenance bundle.
fn altered_npm_attestations(change: impl Fn(&mut Value)) -> Vec<u8> {
    let mut doc: Value =
        serde_json::from_slice(&registry::fixture_bytes("upstream/attestations-sigstore-1.0.0.json")).unwrap();
    for attestation in doc["attestations"].as_array_mut().unwrap() {
        if attestation["predicateType"].as_str().unwrap().starts_with("https://slsa.dev/") {
            change(&mut attestation["bundle"]);
        }
    }
    serde_json::to_vec(&doc).unwrap()
}

fn export_with_replaced(path: &str, body: Vec<u8>) -> Exported {
    export_real(Faults { replace: [(path.to_owned(), body)].into(), ..Faults::default() })
}

const NPM_ATTESTATIONS: &str = "/npm/-/npm/v1/attestations/sigstore@1.0.0";

/// The PyPI provenance with one change made to its first transparency entry.
fn altered_pypi_provenance(change: impl Fn(&mut Value)) -> Exported {
    let name = format!("upstream/{}.provenance", registry::REAL_SDIST);
    let mut doc: Value = serde_json::from_slice(&registry::fixture_bytes(&name)).unwrap();
    change(&mut doc["attestation_bundles"][0]["attestations"][0]["verification_material"]["transparency_entries"][0]);
    let path = format!("/integrity/pypi-attestations/0.0.19/{}/provenance", registry::REAL_SDIST);
    export_with_replaced(&path, serde_json::to_vec(&doc).unwrap())
}

#[test]
fn a_truncated_inclusion_proof_is_rejected() {
    let b = altered_pypi_provenance(|entry| {
        entry["inclusionProof"]["hashes"].as_array_mut().unwrap().pop();
    });
    let out = verify_offline(&b, &strict(&b)).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("pypi-attestations") && err.contains("PEP 740 provenance does not verify"), "{err}");
}

#[test]
fn a_forged_checkpoint_or_signed_entry_timestamp_is_rejected() {
    let b = altered_pypi_provenance(|entry| {
        let envelope =
            entry["inclusionProof"]["checkpoint"]["envelope"].as_str().unwrap().replace("31550402", "31550403");
        entry["inclusionProof"]["checkpoint"]["envelope"] = Value::String(envelope);
    });
    verify_offline(&b, &strict(&b)).code(1);
    // npm's attestations carry no inclusion proof: the SET is their only log evidence.
    let body = altered_npm_attestations(|bundle| {
        let promise = &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"];
        let mut set =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, promise.as_str().unwrap()).unwrap();
        let last = set.len() - 1;
        set[last] ^= 1;
        *promise = Value::String(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, set));
    });
    let b = export_with_replaced(NPM_ATTESTATIONS, body);
    let out = verify_offline(&b, &strict(&b)).code(1);
    assert!(one_line(&out.get_output().stderr).contains("attestations do not verify"));
}

#[test]
fn an_attestation_for_another_artifact_is_rejected() {
    // The registry (or a proxy) serves tuf-js's real, valid attestations for sigstore.
    let b = export_with_replaced(NPM_ATTESTATIONS, registry::fixture_bytes("upstream/attestations-tuf-js-1.0.0.json"));
    let out = verify_offline(&b, &strict(&b)).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("sigstore@1.0.0") && err.contains("not pkg:npm/sigstore@1.0.0"), "{err}");

    // PyPI: another file's real attestation, served as this file's provenance.
    let attestation: Value =
        serde_json::from_slice(&registry::fixture_bytes("upstream/rfc8785-0.1.2-py3-none-any.whl.attestation"))
            .unwrap();
    let provenance = serde_json::json!({"version": 1, "attestation_bundles": [{
        "publisher": {"kind": "GitHub", "repository": "trailofbits/pypi-attestations", "workflow": "release.yml"},
        "attestations": [attestation]}]});
    let path = format!("/integrity/pypi-attestations/0.0.19/{}/provenance", registry::REAL_SDIST);
    let b = export_with_replaced(&path, serde_json::to_vec(&provenance).unwrap());
    let out = verify_offline(&b, &strict(&b)).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("pypi-attestations") && err.contains("PEP 740 provenance does not verify"), "{err}");
}

#[test]
fn a_swapped_subject_digest_breaks_the_attestation_signature() {
    // Rewriting the statement to name another digest invalidates the DSSE signature.
    let body = altered_npm_attestations(|bundle| {
        let payload = bundle["dsseEnvelope"]["payload"].as_str().unwrap();
        let statement = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, payload).unwrap();
        let mut statement: Value = serde_json::from_slice(&statement).unwrap();
        statement["subject"][0]["digest"]["sha512"] = Value::String("00".repeat(64));
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, statement.to_string());
        bundle["dsseEnvelope"]["payload"] = Value::String(encoded);
    });
    let b = export_with_replaced(NPM_ATTESTATIONS, body);
    let out = verify_offline(&b, &strict(&b)).code(1);
    assert!(one_line(&out.get_output().stderr).contains("attestations do not verify"));
}

#[test]
fn a_registry_signature_over_another_package_is_rejected() {
    let signatures: Value =
        serde_json::from_slice(&registry::fixture_bytes("upstream/registry-signatures.json")).unwrap();
    let other = signatures["signatures"].as_array().unwrap().iter().find(|s| s["name"] == "tuf-js").unwrap();
    // The packument as the registry serves it, with tuf-js's real signature in place of sigstore's.
    let honest = Registry::start(Faults::default());
    let mut packument: Value = serde_json::from_slice(&http_get(&format!("{}/npm/sigstore", honest.base))).unwrap();
    packument["versions"]["1.0.0"]["dist"]["signatures"] =
        serde_json::json!([{"keyid": other["keyid"], "sig": other["sig"]}]);
    let b = export_with_replaced("/npm/sigstore", serde_json::to_vec(&packument).unwrap());
    let out = verify_offline(&b, &strict(&b)).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("sigstore@1.0.0") && err.contains("registry signature does not verify"), "{err}");
}

fn http_get(url: &str) -> Vec<u8> {
    ureq::get(url).call().unwrap().body_mut().read_to_vec().unwrap()
}

#[test]
fn without_a_pinned_root_attestations_are_reported_unverified() {
    let b = export_real(Faults::default());
    let policy = real_policy(&b, "");
    let out = verify_offline(&b, &policy).success();
    let report: Value = common::json_report(&out.get_output().stdout);
    assert!(
        package(&report, "sigstore")["provenance"]
            .as_str()
            .unwrap()
            .contains("not verified (the policy pins no Sigstore trusted root)")
    );
    assert!(package(&report, "pypi-attestations")["provenance"].as_str().unwrap().contains("not verified"));
    // Rules that need the root without one pinned are a configuration error.
    let policy = real_policy(&b, "[pypi]\nrequire = [\"pypi-provenance\"]\n");
    verify_offline(&b, &policy).code(2);
}

#[test]
fn name_rules_deny_allow_private_and_look_alikes() {
    let b = export_real(Faults::default());
    let cases = [
        ("[npm.names]\ndeny = [\"sig*\"]\n", "denies names matching \"sig*\""),
        ("[pypi.names]\nallow = [\"requests\"]\n", "not on the policy's allow list"),
        ("[npm.names]\nprivate = [\"sigstore\"]\nprivate-sources = [\"https://npm.corp.example/\"]\n", "private name"),
        ("[pypi.names]\nprotect = [\"pypi-attestation\"]\n", "looks like pypi-attestation"),
    ];
    for (rules, expected) in cases {
        let out = verify_offline(&b, &real_policy(&b, rules)).code(1);
        let err = one_line(&out.get_output().stderr);
        assert!(err.contains(expected), "{rules}: {err}");
    }
    // A reviewed name passes the screen.
    let reviewed = "[pypi.names]\nprotect = [\"pypi-attestation\"]\nreviewed = [\"pypi-attestations\"]\n";
    verify_offline(&b, &real_policy(&b, reviewed)).success();
}

#[test]
fn inspect_writes_a_cyclonedx_sbom_with_purls_hashes_and_evidence() {
    let b = export_real(Faults::default());
    let sbom_path = b.root.join("bom.json");
    airlock().args(["inspect", "--quiet"]).arg(&b.bundle).arg("--sbom").arg(&sbom_path).assert().success();
    let sbom: Value = serde_json::from_slice(&fs::read(&sbom_path).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.6");
    let components = sbom["components"].as_array().unwrap();
    let npm = components.iter().find(|c| c["name"] == "sigstore").unwrap();
    assert_eq!(npm["purl"], "pkg:npm/sigstore@1.0.0");
    let sha512 = npm["hashes"].as_array().unwrap().iter().find(|h| h["alg"] == "SHA-512").unwrap();
    assert!(sha512["content"].as_str().unwrap().starts_with("7bea9f6e7ff37f5f"), "{npm:#}");
    let evidence: Vec<&str> = npm["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "airlock:evidence")
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert!(evidence.contains(&"npm-signatures") && evidence.contains(&"npm-attestations"), "{evidence:?}");
    let pypi = components.iter().find(|c| c["name"] == "pypi-attestations").unwrap();
    assert_eq!(pypi["purl"], format!("pkg:pypi/pypi-attestations@0.0.19?file_name={}", registry::REAL_SDIST));
    // The same bundle gives the same document.
    let again = b.root.join("again.json");
    airlock().args(["inspect", "--quiet"]).arg(&b.bundle).arg("--sbom").arg(&again).assert().success();
    assert_eq!(fs::read(&sbom_path).unwrap(), fs::read(&again).unwrap());
}

#[test]
fn a_registry_signature_over_another_version_is_rejected() {
    // The registry (or a proxy) relabels the real 1.0.0 tarball and its real
    // signature as version 1.0.1: the signed message names 1.0.0.
    let honest = Registry::start(Faults::default());
    let mut packument: Value = serde_json::from_slice(&http_get(&format!("{}/npm/sigstore", honest.base))).unwrap();
    let mut object = packument["versions"]["1.0.0"].take();
    object["version"] = Value::String("1.0.1".into());
    packument["versions"] = serde_json::json!({"1.0.1": object});
    packument["time"] = serde_json::json!({"1.0.1": "2023-02-09T17:56:05.000Z"});
    let faults = Faults {
        replace: [("/npm/sigstore".to_owned(), serde_json::to_vec(&packument).unwrap())].into(),
        ..Faults::default()
    };
    let b = export_from(faults, |base| {
        let lock = registry::real_package_lock_json(base).replace("\"1.0.0\"", "\"1.0.1\"");
        (lock, String::new())
    });
    let policy = real_policy(&b, "[npm]\nregistry-keys = \"registry-keys.json\"\n");
    let out = common::airlock_offline().arg("verify").arg(&b.bundle).arg("--policy").arg(&policy).assert().code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("sigstore@1.0.1") && err.contains("does not match sigstore@1.0.1:"), "{err}");
}
