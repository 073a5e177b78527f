//! Opt-in, ignored by a plain `cargo test`: export real lockfiles from the
//! public registries (fixtures/lockfiles/), verify the bundle, and check
//! that a second export downloads nothing. Run it with
//! `AIRLOCK_LIVE=1 cargo test --test live -- --ignored`.

mod common;

use std::path::Path;

use serde_json::Value;

#[test]
#[ignore = "reaches the public registries: AIRLOCK_LIVE=1 cargo test --test live -- --ignored"]
fn export_real_lockfiles_from_public_registries() {
    // Asked for (`--ignored`) but not allowed out: fail rather than pass having checked nothing.
    assert_eq!(
        std::env::var("AIRLOCK_LIVE").as_deref(),
        Ok("1"),
        "set AIRLOCK_LIVE=1 to let this test reach the public registries"
    );
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path(), "op");
    let locks = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lockfiles");
    let export = |out: &str| {
        let assert = common::airlock()
            .args(["export", "--json", "--pypi-lock"])
            .arg(locks.join("requirements.txt"))
            .arg("--pypi-lock")
            .arg(locks.join("pylock.toml"))
            .arg("--npm-lock")
            .arg(locks.join("package-lock.json"))
            .arg("--cargo-lock")
            .arg(locks.join("Cargo.lock"))
            .arg("--cache")
            .arg(dir.path().join("cache"))
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(dir.path().join(out))
            .assert()
            .success();
        serde_json::from_slice::<Value>(&assert.get_output().stdout).unwrap()["report"].clone()
    };
    let first = export("a.airlock");
    assert!(first["entries"].as_u64().unwrap() >= 8, "{first:#}");
    common::airlock().arg("verify").arg(dir.path().join("a.airlock")).arg("--trust").arg(&public).assert().success();
    let second = export("b.airlock");
    assert_eq!(second["downloads"], 0);
}
