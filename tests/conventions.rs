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
    let expected = format!("airlock {} (bundle format 2)\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

/// A folder with a signed bundle of a small tree and the exporter's keys.
fn exported() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    common::sample_tree(&input);
    let (secret, public) = common::keygen(dir.path(), "ops");
    let bundle = dir.path().join("b.airlock");
    airlock()
        .args(["export", "--quiet", "--files"])
        .arg(&input)
        .arg("--out")
        .arg(&bundle)
        .env("AIRLOCK_KEY", &secret)
        .assert()
        .success();
    (dir, bundle, secret, public)
}

#[test]
fn environment_names_the_key_the_mirror_and_the_policy() {
    let (dir, bundle, _, public) = exported();
    let policy = dir.path().join("policy.toml");
    fs::write(
        &policy,
        format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"ops\"\nfile = {:?}\n", public.display().to_string()),
    )
    .unwrap();
    let mirror = dir.path().join("mirror");
    airlock()
        .args(["import", "--quiet"])
        .arg(&bundle)
        .env("AIRLOCK_POLICY", &policy)
        .env("AIRLOCK_MIRROR", &mirror)
        .assert()
        .success();
    assert!(mirror.join("files/a.txt").exists());
    airlock().args(["status", "--quiet"]).env("AIRLOCK_MIRROR", &mirror).assert().success();
}

#[test]
fn trust_keys_override_the_policy_the_environment_names() {
    let (dir, bundle, _, public) = exported();
    let missing = dir.path().join("no-such-policy.toml");
    airlock()
        .args(["verify", "--quiet"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .env("AIRLOCK_POLICY", &missing)
        .assert()
        .success();
}

#[test]
fn without_trust_the_error_names_every_way_to_give_it() {
    if std::path::Path::new("/etc/airlock/policy.toml").exists() {
        return common::skip("/etc/airlock/policy.toml exists on this machine, so it is the default");
    }
    let (_dir, bundle, _, _) = exported();
    let output = airlock().arg("verify").arg(&bundle).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = common::one_line(&output.stderr);
    for way in ["--trust", "--policy", "AIRLOCK_POLICY", "/etc/airlock/policy.toml"] {
        assert!(stderr.contains(way), "{way} in {stderr}");
    }
}

#[test]
fn help_names_the_variables_the_flags_read() {
    let output = airlock().args(["import", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("env: AIRLOCK_MIRROR") && help.contains("env: AIRLOCK_POLICY"), "{help}");
    let output = airlock().args(["export", "--help"]).output().unwrap();
    assert!(String::from_utf8(output.stdout).unwrap().contains("env: AIRLOCK_KEY"));
}

/// The one line of a key file that is not a comment.
fn key_line(path: &std::path::Path) -> String {
    fs::read_to_string(path).unwrap().lines().find(|l| !l.starts_with('#')).unwrap().to_owned()
}

#[test]
fn public_from_writes_the_public_key_of_a_clear_key_again() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = common::keygen(dir.path(), "alice");
    let again = dir.path().join("again");
    let output =
        airlock().args(["keygen", "--json", "--public-from"]).arg(&secret).arg("--out").arg(&again).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = common::json_report(&output.stdout);
    assert_eq!(report["report"]["storage"], "clear");
    assert_eq!(report["report"]["public_key"], again.with_extension("pub").display().to_string());
    assert_eq!(key_line(&again.with_extension("pub")), key_line(&public));
    assert!(!again.with_extension("key").exists(), "only PREFIX.pub is written");
    // Like keygen, it does not replace a key file unless told to.
    let output = airlock().args(["keygen", "--public-from"]).arg(&secret).arg("--out").arg(&again).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(common::one_line(&output.stderr).contains("--force"));
    airlock()
        .args(["keygen", "--quiet", "--force", "--public-from"])
        .arg(&secret)
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
}

#[test]
fn public_from_opens_an_encrypted_key_with_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let passphrase = dir.path().join("passphrase");
    fs::write(&passphrase, "correct horse\n").unwrap();
    let prefix = dir.path().join("bob");
    airlock()
        .args(["keygen", "--quiet", "--out"])
        .arg(&prefix)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .assert()
        .success();
    let again = dir.path().join("bob-again");
    let wrong = dir.path().join("wrong");
    fs::write(&wrong, "wrong\n").unwrap();
    let refused = airlock()
        .args(["keygen", "--public-from"])
        .arg(prefix.with_extension("key"))
        .arg("--out")
        .arg(&again)
        .arg("--passphrase-file")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(!again.with_extension("pub").exists(), "nothing written with a wrong passphrase");
    airlock()
        .args(["keygen", "--quiet", "--public-from"])
        .arg(prefix.with_extension("key"))
        .arg("--out")
        .arg(&again)
        .arg("--passphrase-file")
        .arg(&passphrase)
        .assert()
        .success();
    assert_eq!(key_line(&again.with_extension("pub")), key_line(&prefix.with_extension("pub")));
}

#[test]
fn keygen_refuses_a_folder_as_out() {
    let dir = tempfile::tempdir().unwrap();
    let keydir = dir.path().join("keydir");
    fs::create_dir(&keydir).unwrap();
    let slash = format!("{}/", dir.path().join("new").display());
    for out in [keydir.display().to_string(), slash] {
        let output = airlock().args(["keygen", "--unencrypted", "--out", &out]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{out}");
        let line = common::one_line(&output.stderr);
        assert!(line.contains("--out is a file prefix, e.g.") && line.contains("/alice"), "{line}");
    }
    assert_eq!(fs::read_dir(&keydir).unwrap().count(), 0, "no hidden .key or .pub");
    assert!(!dir.path().join("new").exists());
}

#[test]
fn keygen_drops_a_key_suffix_from_out_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        airlock().args(["keygen", "--unencrypted", "--out"]).arg(dir.path().join("carl.key")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("warning: --out ") && stderr.contains("file prefix"), "{stderr}");
    assert!(dir.path().join("carl.key").exists() && dir.path().join("carl.pub").exists());
    assert!(!dir.path().join("carl.key.key").exists());
}

/// The address `airlock serve --listen LISTEN` says it listens on; the server is stopped again.
fn served_on(mirror: &std::path::Path, listen: &str) -> String {
    use std::io::BufRead;
    let mut child = Process::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["serve", "--listen", listen, "--mirror"])
        .arg(mirror)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    first.split(" on http://").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or_default().to_owned()
}

#[test]
fn serve_listens_on_a_host_name_or_a_bare_port() {
    let (dir, bundle, _, public) = exported();
    let mirror = dir.path().join("mirror");
    airlock()
        .args(["import", "--quiet"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    let on_name = served_on(&mirror, "localhost:0");
    assert!(on_name.starts_with("127.0.0.1:") || on_name.starts_with("[::1]:"), "{on_name}");
    assert!(served_on(&mirror, "0").starts_with("127.0.0.1:"));
    let output = airlock().args(["serve", "--listen", "localhost", "--mirror"]).arg(&mirror).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(common::one_line(&output.stderr).contains("HOST:PORT"));
}

#[test]
fn a_busy_mirror_is_exit_5_and_wait_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = common::keygen(dir.path(), "op");
    let input = dir.path().join("in");
    common::write_tree(&input, &[("a.txt", b"a")]);
    let bundle = dir.path().join("b.airlock");
    common::export(&input, &[&key], &bundle);
    let mirror = dir.path().join("mirror");
    airlock().arg("import").arg(&bundle).arg("--trust").arg(&public).arg("--mirror").arg(&mirror).assert().success();
    // Another holder of the lock: util-linux flock(1) takes the same flock(2) lock airlock does.
    let mut holder = std::process::Command::new("flock")
        .arg(mirror.join(".airlock/lock"))
        .args(["sleep", "2"])
        .spawn()
        .expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = airlock().args(["gc", "--json", "--mirror"]).arg(&mirror).assert().code(5);
    let report = common::json_report(&busy.get_output().stdout);
    assert_eq!((&report["kind"], &report["exit_code"]), (&serde_json::json!("busy"), &serde_json::json!(5)));
    assert!(report["error"].as_str().unwrap().contains("--wait"), "{report}");
    let waited = airlock().args(["gc", "--wait=30", "--mirror"]).arg(&mirror).assert().success();
    let stderr = String::from_utf8_lossy(&waited.get_output().stderr).into_owned();
    assert!(stderr.contains("waiting for the mirror lock"), "{stderr}");
    holder.wait().unwrap();
    // A bounded wait ends with the same exit 5 when the lock stays held.
    let mut holder =
        std::process::Command::new("flock").arg(mirror.join(".airlock/lock")).args(["sleep", "3"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    airlock().args(["gc", "--wait=1", "--mirror"]).arg(&mirror).assert().code(5);
    holder.wait().unwrap();
}

/// `export --dry-run` checks every input and names what each lockfile, list
/// and flag would have fetched, from where — with no network at all and
/// registries that do not exist, so a single request would have failed it —
/// and writes nothing: no bundle, no download cache.
#[test]
fn export_dry_run_names_what_it_would_fetch_asks_no_registry_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, _) = common::keygen(root, "op");
    let nowhere = "http://127.0.0.1:9";
    fs::write(root.join("requirements.txt"), common::registry::requirements_txt()).unwrap();
    fs::write(root.join("package-lock.json"), common::registry::package_lock_json(nowhere)).unwrap();
    fs::write(root.join("Cargo.lock"), common::registry::cargo_lock()).unwrap();
    fs::write(root.join("images.txt"), "127.0.0.1:9/team/app:1.0\n").unwrap();
    fs::write(root.join("pkgs.txt"), "hello\ntree:arm64\n").unwrap();
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::write(root.join("docs/a.txt"), "four").unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = common::airlock_offline();
        cmd.args(extra)
            .args(["export", "--dry-run", "--files", "docs", "--pypi-lock", "requirements.txt"])
            .args(["--npm-lock", "package-lock.json", "--cargo-lock", "Cargo.lock", "--oci-images", "images.txt"])
            .args(["--debian-packages", "pkgs.txt", "--debian-suite", "bookworm", "--hf-model", "org/model@v1"])
            .args(["--pypi-index", &format!("{nowhere}/simple/"), "--npm-registry", &format!("{nowhere}/npm/")])
            .args(["--cargo-index", &format!("{nowhere}/cargo/"), "--debian-archive", &format!("{nowhere}/debian")])
            .args(["--cache", "cache", "--out", "b.airlock", "--key"])
            .arg(&key)
            .env("HF_ENDPOINT", nowhere)
            .current_dir(root);
        cmd.output().unwrap()
    };

    let out = run(&["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = common::json_report(&out.stdout);
    assert_eq!(report["schema"], "airlock.export-plan.v1");
    let plan = &report["report"];
    assert_eq!(plan["files"][0]["files"], 1);
    assert_eq!(plan["files"][0]["bytes"], 4);
    let named: Vec<String> = plan["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {} {} {} {}", p["ecosystem"], p["name"], p["version"], p["from"], p["input"]))
        .collect();
    for expected in [
        format!("\"pypi\" \"tinyapp\" \"1.0.0\" \"{nowhere}/simple/\" \"requirements.txt\""),
        format!("\"npm\" \"tinylib\" \"1.0.0\" \"{nowhere}/npm/\" \"package-lock.json\""),
        format!("\"cargo\" \"tinyhelper\" \"0.2.0\" \"{nowhere}/cargo/\" \"Cargo.lock\""),
        "\"oci\" \"127.0.0.1:9/team/app\" \"1.0\" \"127.0.0.1:9\" \"images.txt\"".to_owned(),
        format!("\"debian\" \"tree:arm64\" null \"{nowhere}/debian (bookworm)\" \"pkgs.txt\""),
        format!("\"huggingface\" \"org/model\" \"v1\" \"{nowhere}\" \"--hf-model\""),
    ] {
        assert!(named.contains(&expected), "{expected} not in {named:#?}");
    }
    assert!(!root.join("b.airlock").exists() && !root.join("cache").exists(), "a dry run writes nothing");

    let out = run(&["-v"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("  npm    tinylib 1.0.0 from {nowhere}/npm/ (package-lock.json)")), "{text}");
    assert!(
        text.contains(
            "would fetch 10 packages named by the inputs (pypi 2, npm 2, cargo 2, debian 2, oci 1, huggingface 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("nothing was fetched or written: run the same command without --dry-run to export"),
        "{text}"
    );

    // It refuses what the export would refuse, before anything else.
    fs::write(root.join("b.airlock"), "someone's file").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::one_line(&out.stderr).contains("b.airlock: already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(root.join("b.airlock")).unwrap(), b"someone's file");
}
