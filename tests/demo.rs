//! `airlock demo`: the package round trip on the embedded fixtures with no
//! network at all (a fresh network namespace with only loopback up), the
//! real upstream evidence verified under the pinned policy, the forged
//! signature refused, and the clients on this machine installing from the
//! mirror. The embedded tar is checked against the script that writes it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{airlock, json_report, one_line, skip};
use predicates::prelude::*;
use serde_json::Value;

/// `airlock ARGS` with no network but loopback, where this machine allows
/// it (`unshare -n` and `ip`); otherwise with the network, the missing proof skipped visibly.
fn offline_with_loopback(args: &[&str]) -> Command {
    let bin = assert_cmd::cargo::cargo_bin("airlock");
    let has_ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
    if !common::can_unshare_network() || !has_ip {
        skip("`unshare -n` or `ip` is missing here, so this run does not prove the demo needs no network");
        let mut cmd = Command::new(bin);
        cmd.args(args);
        return cmd;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""]).arg(bin).args(args);
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

fn package<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| {
        panic!("no package {name}: {report:#}");
    })
}

fn installed_here(probe: &[&str]) -> bool {
    Command::new(probe[0]).args(&probe[1..]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_demo_carries_packages_with_their_evidence_and_the_clients_install_them_offline() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let out = offline_with_loopback(&["--json", "demo", "--dir", work.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = &json_report(&out.stdout)["report"];

    let npm = package(report, "sigstore");
    for verified in [
        "registry signature by SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA verified",
        "SLSA provenance by https://github.com/sigstore/sigstore-js/.github/workflows/publish.yml@refs/tags/v1.0.0",
        "npm publish by registry key SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA verified",
    ] {
        assert!(npm["provenance"].as_str().unwrap().contains(verified), "{verified}: {npm:#}");
    }
    assert_eq!(npm["layers"]["policy"], "ok", "{npm:#}");
    let pypi = package(report, "pypi-attestations");
    assert!(pypi["provenance"].as_str().unwrap().contains("PEP 740 publish by https://github.com/trailofbits/"));
    assert_eq!(pypi["layers"]["policy"], "ok", "{pypi:#}");
    assert_eq!(package(report, "tinyapp")["layers"]["provenance"], "absent");
    assert_eq!(package(report, "tinycrate")["layers"]["digest"], "ok");

    let forged = report["forged_rejected"].as_str().unwrap();
    assert!(forged.starts_with("exit 1 (bad-signature)") && forged.contains("sigstore@1.0.0"), "{forged}");
    assert!(report["untrusted_rejected"].as_str().unwrap().starts_with("exit 1"));

    for published in ["npm/sigstore/-/sigstore-1.0.0.tgz", "cargo/tinycrate-0.1.0.crate", "files/tools/install.sh"] {
        assert!(work.join("mirror").join(published).is_file(), "{published}");
    }

    let clients = report["clients"].as_array().unwrap();
    let expected = [
        ("pip", &["python3", "-m", "pip", "--version"][..], "hello, ops"),
        ("npm", &["npm", "--version"][..], "sigstore-1.0.0.tgz"),
        ("cargo", &["cargo", "--version"][..], "HELLO, OPS"),
    ];
    assert_eq!(clients.len(), expected.len(), "{clients:#?}");
    for ((name, probe, printed), client) in expected.iter().zip(clients) {
        assert_eq!(client["name"], *name);
        if installed_here(probe) {
            assert_eq!(client["result"], "installed", "{client:#}");
            assert!(client["detail"].as_str().unwrap().contains(printed), "{client:#}");
        } else {
            assert_eq!(client["result"], "skipped", "{client:#}");
            skip(&format!("{name} is not installed here, so the demo did not install with it"));
        }
    }
}

#[test]
fn the_demo_speaks_to_people_and_refuses_a_used_folder() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    airlock()
        .args(["demo", "--dir"])
        .arg(&work)
        .assert()
        .success()
        .stdout(predicate::str::contains(" 4. verify    offline, under inside/policy.toml"))
        .stdout(predicate::str::contains(
            " 5. forged    a registry that replays another package's real signature is refused: exit 1 (bad-signature)",
        ))
        .stdout(predicate::str::contains(" 8. import    published 10 files into mirror/"))
        .stdout(predicate::str::contains(" 9. install   pip"));
    assert!(work.join("mirror/files/docs/Überblick und Plan.md").is_file());
    let out = airlock().args(["demo", "--dir"]).arg(&work).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("is not empty; pass a new or empty folder to --dir"));
}

#[test]
fn the_embedded_packages_are_what_their_script_writes() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo-packages/make.py");
    let Ok(out) = Command::new("python3").arg(&script).arg("--check").output() else {
        skip("python3 is not installed here, so fixtures/demo-packages/packages.tar is not checked against its script");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A site behind a proxy (the variables set, the proxy unreachable from
/// here): the demo's traffic is all on loopback, which never goes through it.
#[test]
fn the_demo_runs_behind_a_proxy_it_does_not_need() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("airlock"));
    cmd.args(["--json", "demo", "--dir"]).arg(&work);
    for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env(name, "http://127.0.0.1:9");
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = &json_report(&out.stdout)["report"];
    for client in report["clients"].as_array().unwrap() {
        assert_ne!(client["result"], "failed", "{client:#}");
    }
}
