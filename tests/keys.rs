//! Operator keys that do not sit on disk in clear: key files encrypted with
//! a passphrase, and keys on a PKCS#11 token (`SoftHSM2` standing in for a
//! smart card, a `YubiKey` or an HSM). Every signing command takes a clear
//! file, an encrypted file and a token URI alike, and the same key gives the
//! same bytes whichever way it is held.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use base64::Engine;
use common::{airlock, keygen, one_line, sample_tree};

const PASSPHRASE: &str = "correct horse battery staple";

/// `airlock` with none of the key variables of the machine running the tests.
fn cmd() -> Command {
    let mut cmd = airlock();
    for var in ["AIRLOCK_PASSPHRASE_FILE", "AIRLOCK_PIN_FILE", "AIRLOCK_PKCS11_MODULE"] {
        cmd.env_remove(var);
    }
    cmd
}

fn write_secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("{text}\n")).unwrap();
    path
}

/// A new encrypted key PREFIX.key / PREFIX.pub under `dir`, sealed with `passphrase_file`.
fn keygen_encrypted(dir: &Path, name: &str, passphrase_file: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    cmd()
        .args(["keygen", "--quiet", "--out"])
        .arg(&prefix)
        .arg("--passphrase-file")
        .arg(passphrase_file)
        .assert()
        .success();
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

fn export(input: &Path, key: &str, out: &Path) -> Command {
    let mut cmd = cmd();
    cmd.args(["export", "--files"]).arg(input).args(["--key", key]).arg("--out").arg(out);
    cmd
}

fn verify(bundle: &Path, trusted: &[&Path], threshold: usize) {
    let mut verify = cmd();
    verify.arg("verify").arg(bundle);
    for public in trusted {
        verify.arg("--trust").arg(public);
    }
    verify.args(["--threshold", &threshold.to_string()]).assert().success();
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The seed of a clear key file.
fn clear_seed(key: &Path) -> [u8; 32] {
    let text = fs::read_to_string(key).unwrap();
    let line = text.lines().find(|l| l.starts_with("airlock-sec-ed25519:")).unwrap();
    hex::decode(&line["airlock-sec-ed25519:".len()..]).unwrap().try_into().unwrap()
}

#[test]
fn an_encrypted_key_signs_and_verifies_like_a_clear_one() {
    let dir = tempfile::tempdir().unwrap();
    let pw = write_secret(dir.path(), "pw", PASSPHRASE);
    let (key, public) = keygen_encrypted(dir.path(), "op", &pw);
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let written = fs::read_to_string(&key).unwrap();
    assert!(written.contains("airlock-sec-ed25519-encrypted:v1 public="), "{written}");
    assert!(written.contains(" kdf=argon2id m=131072 t=3 p=1 "), "the default cost is in the file: {written}");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    let out = export(&input, text(&key), &bundle).arg("--passphrase-file").arg(&pw).assert().success();
    assert!(out.get_output().stderr.is_empty(), "no warning for an encrypted key");
    verify(&bundle, &[&public], 1);
    // The passphrase file may also come from the environment.
    let again = dir.path().join("again.airlock");
    export(&input, text(&key), &again).env("AIRLOCK_PASSPHRASE_FILE", &pw).assert().success();
    verify(&again, &[&public], 1);
}

#[test]
fn a_wrong_passphrase_is_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pw = write_secret(dir.path(), "pw", PASSPHRASE);
    let wrong = write_secret(dir.path(), "wrong", "correct horse battery stapler");
    let (key, public) = keygen_encrypted(dir.path(), "op", &pw);
    let input = dir.path().join("in");
    sample_tree(&input);

    let bundle = dir.path().join("b.airlock");
    let out = export(&input, text(&key), &bundle).arg("--passphrase-file").arg(&wrong).assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("wrong passphrase") && err.contains("op.key"), "{err}");
    assert!(!bundle.exists(), "no bundle");

    // Co-signing with a wrong passphrase leaves the bundle as it was.
    let (other, _) = keygen(dir.path(), "other");
    export(&input, text(&other), &bundle).assert().success();
    let before = fs::read(&bundle).unwrap();
    let out = cmd()
        .arg("sign")
        .arg(&bundle)
        .args(["--key", text(&key), "--trust", text(&other.with_extension("pub")), "--passphrase-file"])
        .arg(&wrong)
        .assert()
        .code(2);
    assert!(one_line(&out.get_output().stderr).contains("wrong passphrase"));
    assert_eq!(fs::read(&bundle).unwrap(), before);

    // policy sign writes no statement.
    let policy = dir.path().join("next.toml");
    let line = fs::read_to_string(&public).unwrap().lines().last().unwrap().to_owned();
    fs::write(
        &policy,
        format!("version = 1\nserial = 2\nthreshold = 1\n[[keys]]\nname = \"op\"\npublic = \"{line}\"\n"),
    )
    .unwrap();
    let statement = dir.path().join("next.statement");
    let out = cmd()
        .args(["policy", "sign"])
        .arg(&policy)
        .args(["--key", text(&key), "--out", text(&statement), "--passphrase-file"])
        .arg(&wrong)
        .assert()
        .code(2);
    assert!(one_line(&out.get_output().stderr).contains("wrong passphrase"));
    assert!(!statement.exists());
}

#[test]
fn an_encrypted_key_file_holds_no_key_material_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let pw = write_secret(dir.path(), "pw", PASSPHRASE);
    let (key, public) = keygen(dir.path(), "op");
    let seed = clear_seed(&key);
    let public_before = fs::read(&public).unwrap();
    cmd().args(["keygen", "--quiet", "--encrypt"]).arg(&key).arg("--passphrase-file").arg(&pw).assert().success();
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::read(&public).unwrap(), public_before, "the public key is untouched");

    let file = fs::read(&key).unwrap();
    let lower = String::from_utf8(file.clone()).unwrap();
    let upper = lower.to_uppercase();
    // No 8 bytes of the seed in a row, raw or as hex; nor the seed in base64.
    for window in seed.windows(8) {
        assert!(!file.windows(8).any(|w| w == window), "raw seed bytes in the file");
        let hexed = hex::encode(window);
        assert!(!lower.contains(&hexed) && !upper.contains(&hexed.to_uppercase()), "seed hex in the file");
    }
    for engine in [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::URL_SAFE] {
        let encoded = engine.encode(seed);
        assert!(!lower.contains(&encoded[..16]), "seed base64 in the file");
    }

    // The same key, now behind the passphrase: what the .pub pins still verifies.
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    export(&input, text(&key), &bundle).arg("--passphrase-file").arg(&pw).assert().success();
    verify(&bundle, &[&public], 1);

    // Encrypting it again is refused and changes nothing.
    let out = cmd().args(["keygen", "--encrypt"]).arg(&key).arg("--passphrase-file").arg(&pw).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("already encrypted"));
    assert_eq!(fs::read(&key).unwrap(), file);
}

#[test]
fn with_no_terminal_and_no_passphrase_file_one_line_says_how() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("op");
    let out = cmd().args(["keygen", "--out"]).arg(&prefix).assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("--passphrase-file") && err.contains("--unencrypted"), "{err}");
    assert!(!prefix.with_extension("key").exists() && !prefix.with_extension("pub").exists(), "nothing written");

    let empty = write_secret(dir.path(), "empty", "");
    let out = cmd().args(["keygen", "--out"]).arg(&prefix).arg("--passphrase-file").arg(&empty).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("empty"));
    assert!(!prefix.with_extension("key").exists());

    let pw = write_secret(dir.path(), "pw", PASSPHRASE);
    let (key, _) = keygen_encrypted(dir.path(), "op", &pw);
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    let out = export(&input, text(&key), &bundle).assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("--passphrase-file") && err.contains("AIRLOCK_PASSPHRASE_FILE"), "{err}");
    assert!(!bundle.exists());
}

#[test]
fn signing_with_a_clear_key_says_so_once_it_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "op");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    let out = export(&input, text(&key), &bundle).assert().success();
    let warning = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(warning.starts_with("warning: ") && warning.contains("stored in clear"), "{warning}");
    assert!(warning.contains(&format!("airlock keygen --encrypt {}", key.display())), "{warning}");
    // Not with --quiet, and an error stays one line.
    let quiet = export(&input, text(&key), &dir.path().join("q.airlock")).arg("--quiet").assert().success();
    assert!(quiet.get_output().stderr.is_empty());
    let out = export(&input, text(&key), &bundle).assert().code(2);
    one_line(&out.get_output().stderr);

    let (other, other_public) = keygen(dir.path(), "other");
    let out = cmd().arg("sign").arg(&bundle).args(["--key", text(&other), "--trust", text(&public)]).assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("stored in clear"));
    verify(&bundle, &[&public, &other_public], 2);
}

/// A `SoftHSM2` token store in a temporary folder, or `None` (and a visible
/// skip) where `SoftHSM2` is not installed.
struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
}

const MODULES: [&str; 2] = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"];
const PIN: &str = "31415926";

impl SoftHsm {
    fn new() -> Option<Self> {
        let module = MODULES.iter().map(PathBuf::from).find(|m| m.is_file());
        let util =
            std::process::Command::new("softhsm2-util").arg("--version").output().is_ok_and(|o| o.status.success());
        let (Some(module), true) = (module, util) else {
            common::skip("SoftHSM2 is not installed (apt-get install softhsm2): no PKCS#11 token to test with");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = format!(
            "directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().display()
        );
        fs::write(dir.path().join("softhsm2.conf"), conf).unwrap();
        write_secret(dir.path(), "pin", PIN);
        let hsm = SoftHsm { dir, module };
        hsm.util(&["--init-token", "--free", "--label", "ops", "--pin", PIN, "--so-pin", "27182818"]);
        Some(hsm)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    fn util(&self, args: &[&str]) {
        let status = std::process::Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "softhsm2-util {args:?}");
    }

    /// `airlock` reaching this token store, with the module from the environment.
    fn airlock(&self) -> Command {
        let mut cmd = cmd();
        cmd.env("SOFTHSM2_CONF", self.conf()).env("AIRLOCK_PKCS11_MODULE", &self.module);
        cmd
    }

    /// The same command, with the PIN file.
    fn signing(&self, args: &[&str]) -> Command {
        let mut cmd = self.airlock();
        cmd.args(args).arg("--pin-file").arg(self.pin_file());
        cmd
    }

    /// Puts the ed25519 `seed` on the token as a key pair labelled `label`
    /// with id a1 (PKCS#8, as softhsm2-util imports it).
    fn import(&self, seed: &[u8; 32], label: &str) {
        self.import_as(seed, label, "a1", &[]);
    }

    fn import_as(&self, seed: &[u8; 32], label: &str, id: &str, options: &[&str]) {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend(seed);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        let path = self.dir.path().join(format!("{label}.pem"));
        fs::write(&path, pem).unwrap();
        let mut args = vec!["--import", text(&path), "--token", "ops", "--label", label, "--id", id, "--pin", PIN];
        args.extend(options);
        self.util(&args);
        fs::remove_file(path).unwrap();
    }
}

fn policy_file(path: &Path, serial: u64, keys: &[(&str, &Path)]) {
    let listed: Vec<String> = keys
        .iter()
        .map(|(name, public)| {
            let line = fs::read_to_string(public).unwrap().lines().last().unwrap().to_owned();
            format!("[[keys]]\nname = \"{name}\"\npublic = \"{line}\"\n")
        })
        .collect();
    fs::write(path, format!("version = 1\nserial = {serial}\nthreshold = 1\n{}", listed.concat())).unwrap();
}

#[test]
fn a_key_made_on_the_token_signs_every_command() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let uri = "pkcs11:token=ops;object=alice";
    let alice = dir.path().join("alice");
    let out = hsm.signing(&["keygen", "--pkcs11", uri, "--out", text(&alice)]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("on the token"), "{stdout}");
    let alice_pub = alice.with_extension("pub");
    assert!(fs::read_to_string(&alice_pub).unwrap().contains(&format!("held at {uri}")));
    assert!(!alice.with_extension("key").exists(), "only the .pub is written");
    // The same name again is refused; --existing writes the .pub of the key there.
    let out = hsm.signing(&["keygen", "--pkcs11", uri, "--out", text(&dir.path().join("again"))]).assert().code(2);
    assert!(one_line(&out.get_output().stderr).contains("already holds"));
    let again = dir.path().join("again");
    hsm.signing(&["keygen", "--quiet", "--existing", "--pkcs11", uri, "--out", text(&again)]).assert().success();
    assert_eq!(fs::read(again.with_extension("pub")).unwrap(), fs::read(&alice_pub).unwrap());

    // Export with the token, co-sign with a file key, verify and import with the .pub files.
    let (bob, bob_pub) = keygen(dir.path(), "bob");
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    let out =
        hsm.signing(&["export", "--files", text(&input), "--key", uri, "--out", text(&bundle)]).assert().success();
    assert!(out.get_output().stderr.is_empty(), "no warning for a token key");
    verify(&bundle, &[&alice_pub], 1);
    cmd().args(["sign", "--quiet", text(&bundle), "--key", text(&bob), "--trust", text(&alice_pub)]).assert().success();
    verify(&bundle, &[&alice_pub, &bob_pub], 2);
    let mirror = dir.path().join("mirror");
    cmd()
        .args(["import", text(&bundle), "--trust", text(&alice_pub), "--trust", text(&bob_pub), "--threshold", "2"])
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();
    assert_eq!(fs::read(mirror.join("files/a.txt")).unwrap(), b"alpha\n");

    // The other way round: a file key exports, the token co-signs.
    let other = dir.path().join("other.airlock");
    cmd()
        .args(["export", "--quiet", "--files", text(&input), "--key", text(&bob), "--out", text(&other)])
        .assert()
        .success();
    hsm.signing(&["sign", "--quiet", text(&other), "--key", uri, "--trust", text(&bob_pub)]).assert().success();
    verify(&other, &[&alice_pub, &bob_pub], 2);

    // policy sign with the token; the statement applies.
    let current = dir.path().join("policy.toml");
    policy_file(&current, 1, &[("alice", &alice_pub)]);
    let next = dir.path().join("next.toml");
    policy_file(&next, 2, &[("alice", &alice_pub), ("bob", &bob_pub)]);
    let statement = dir.path().join("next.statement");
    hsm.signing(&["policy", "sign", "--quiet", text(&next), "--key", uri, "--out", text(&statement)])
        .assert()
        .success();
    cmd().args(["policy", "apply", "--quiet", text(&statement), "--policy", text(&current)]).assert().success();
    assert_eq!(fs::read(&current).unwrap(), fs::read(&next).unwrap());
}

#[test]
fn a_wrong_pin_and_a_missing_object_are_one_line_and_exit_2() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let uri = "pkcs11:token=ops;object=alice";
    hsm.signing(&["keygen", "--quiet", "--pkcs11", uri, "--out", text(&dir.path().join("alice"))]).assert().success();
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    let export = |key: &str| {
        let mut cmd = hsm.airlock();
        cmd.args(["export", "--files", text(&input), "--key", key, "--out", text(&bundle)]);
        cmd
    };
    let failure = |mut cmd: Command, expect: &[&str]| {
        let out = cmd.assert().code(2);
        let err = one_line(&out.get_output().stderr);
        for text in expect {
            assert!(err.contains(text), "expected {text:?} in: {err}");
        }
        assert!(!bundle.exists(), "nothing written");
    };
    let wrong = write_secret(dir.path(), "wrong", "00000000");
    let mut cmd = export(uri);
    cmd.arg("--pin-file").arg(&wrong);
    failure(cmd, &["refused the PIN", uri]);
    // A PIN in the URI is never repeated in a message.
    let out = export("pkcs11:token=ops;object=alice?pin-value=12345678").assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("refused the PIN") && !err.contains("12345678"), "{err}");
    let mut cmd = export("pkcs11:token=ops;object=nobody");
    cmd.arg("--pin-file").arg(hsm.pin_file());
    failure(cmd, &["no private key object", "object=nobody"]);
    let mut cmd = export("pkcs11:token=elsewhere;object=alice");
    cmd.arg("--pin-file").arg(hsm.pin_file());
    failure(cmd, &["no token matches", "\"ops\""]);
    failure(export(uri), &["PIN", "--pin-file"]);
    let mut cmd = export(uri);
    cmd.env_remove("AIRLOCK_PKCS11_MODULE").arg("--pin-file").arg(hsm.pin_file());
    failure(cmd, &["--pkcs11-module", "AIRLOCK_PKCS11_MODULE"]);
    // A URI airlock cannot act on is a usage error before anything runs.
    failure(export("pkcs11:token=ops;object=a b"), &["percent-encoded"]);
}

#[test]
fn a_file_an_encrypted_file_and_a_token_give_the_same_bytes() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (clear, public) = keygen(dir.path(), "op");
    let seed = clear_seed(&clear);
    hsm.import(&seed, "op");
    let encrypted = dir.path().join("encrypted.key");
    fs::copy(&clear, &encrypted).unwrap();
    let pw = write_secret(dir.path(), "pw", PASSPHRASE);
    cmd().args(["keygen", "--quiet", "--encrypt", text(&encrypted), "--passphrase-file", text(&pw)]).assert().success();
    let uri = "pkcs11:token=ops;object=op";
    hsm.signing(&["keygen", "--quiet", "--existing", "--pkcs11", uri, "--out", text(&dir.path().join("token"))])
        .assert()
        .success();
    let token_pub = fs::read_to_string(dir.path().join("token.pub")).unwrap();
    assert_eq!(token_pub.lines().last(), fs::read_to_string(&public).unwrap().lines().last(), "the same public key");

    let input = dir.path().join("in");
    sample_tree(&input);
    let next = dir.path().join("next.toml");
    policy_file(&next, 2, &[("op", &public)]);
    let holders = [("clear", text(&clear)), ("encrypted", text(&encrypted)), ("token", uri)];
    // One creation time for all three: the bundles then differ only if the signatures do.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let mut bundles = Vec::new();
    let mut statements = Vec::new();
    for (name, key) in holders {
        let bundle = dir.path().join(format!("{name}.airlock"));
        let mut export =
            hsm.signing(&["export", "--quiet", "--files", text(&input), "--key", key, "--out", text(&bundle)]);
        export.args(["--expires", "30d", "--passphrase-file", text(&pw)]).env("SOURCE_DATE_EPOCH", &now);
        export.assert().success();
        bundles.push(fs::read(&bundle).unwrap());
        let statement = dir.path().join(format!("{name}.statement"));
        let mut sign =
            hsm.signing(&["policy", "sign", "--quiet", text(&next), "--key", key, "--out", text(&statement)]);
        sign.args(["--passphrase-file", text(&pw)]).assert().success();
        statements.push(fs::read(&statement).unwrap());
        verify(&bundle, &[&public], 1);
    }
    assert!(bundles.windows(2).all(|w| w[0] == w[1]), "the bundles differ");
    assert!(statements.windows(2).all(|w| w[0] == w[1]), "the statements differ");
}

#[test]
fn a_public_key_object_is_found_by_the_private_keys_id_whatever_its_label() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (clear, public) = keygen(dir.path(), "op");
    let seed = clear_seed(&clear);
    // As a YubiKey labels them: "Private key for ..." and "Public key for ...", one id.
    hsm.import_as(&seed, "Private key for op", "b2", &["--no-public-key"]);
    hsm.import_as(&seed, "Public key for op", "b2", &["--force"]);
    let uri = "pkcs11:token=ops;object=Private%20key%20for%20op";
    let written = dir.path().join("token");
    hsm.signing(&["keygen", "--quiet", "--existing", "--pkcs11", uri, "--out", text(&written)]).assert().success();
    let line = |path: &Path| fs::read_to_string(path).unwrap().lines().last().unwrap().to_owned();
    assert_eq!(line(&written.with_extension("pub")), line(&public));
    // A name that matches two private keys is refused, not guessed.
    let mut cmd = hsm.signing(&["keygen", "--existing", "--force", "--pkcs11", "pkcs11:token=ops;id=%b2"]);
    let out = cmd.arg("--out").arg(&written).assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("2 private keys") && err.contains("match"), "{err}");
}

#[test]
fn a_refused_uri_is_one_line_that_never_repeats_its_pin() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    sample_tree(&input);
    let bundle = dir.path().join("b.airlock");
    for (uri, says) in [
        ("pkcs11:token=ops;object=a b?pin-value=S3CRET", "percent-encoded"),
        ("pkcs11:token=ops;object=a?pin-value=S3CRET&S3CRET", "no '='"),
        ("pkcs11:token=ops;object=a?pin-value=S3CRET&pin-source=/p", "not both"),
    ] {
        let out = export(&input, uri, &bundle).assert().code(2);
        let err = one_line(&out.get_output().stderr);
        assert!(err.contains("--key: not a usable PKCS#11 URI") && err.contains(says), "{err}");
        assert!(!err.contains("S3CRET"), "{err}");
    }
    let out = cmd()
        .args(["keygen", "--pkcs11", "pkcs11:tokn=ops?pin-value=S3CRET", "--out"])
        .arg(dir.path().join("k"))
        .assert()
        .code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("unknown path attribute") && !err.contains("S3CRET"), "{err}");
    assert!(!bundle.exists());
}
