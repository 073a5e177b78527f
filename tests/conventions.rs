//! Conventions operators know from cargo, restic, cosign and skopeo:
//! shell completions, environment defaults, a --version that names the
//! bundle format, keygen's naming, and serve's --listen forms.

mod common;

use std::fs;
use std::process::Command as Process;

use common::airlock;

#[test]
fn completions_print_a_bash_script_bash_accepts() {
    let output = airlock().args(["completions", "bash"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("airlock"), "the script names the command");
    assert!(script.contains("keygen") && script.contains("import"), "the script names the subcommands");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("airlock.bash");
    fs::write(&path, &script).unwrap();
    let checked = Process::new("bash").arg("-n").arg(&path).output().expect("bash is installed");
    assert!(checked.status.success(), "bash -n: {}", String::from_utf8_lossy(&checked.stderr));
}

#[test]
fn completions_exist_for_every_shell_operators_use() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = airlock().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("airlock"), "{shell}");
    }
}

#[test]
fn completions_refuse_an_unknown_shell_in_one_line() {
    let output = airlock().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::one_line(&output.stderr);
    assert!(stderr.contains("tcsh") && stderr.contains("bash"), "{stderr}");
}

#[test]
fn version_names_the_bundle_format() {
    let output = airlock().arg("--version").output().unwrap();
    assert!(output.status.success());
    let expected = format!("airlock {} (bundle format 1)\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}
