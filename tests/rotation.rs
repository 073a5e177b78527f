//! Key rotation and revocation: the trust policy's next serial shipped as a
//! signed statement (`airlock policy sign` / `airlock policy apply`), applied
//! only when a threshold of the current policy's keys and of the new
//! policy's own keys signed it and the serial is exactly the next one. Every
//! refusal leaves the policy file (and the mirror) exactly as it was.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::assert::Assert;
use common::{airlock, export_in_channel, keygen, one_line, snapshot, write_tree};
use serde_json::Value;

/// A key pair made by `airlock keygen`, with what an operator reads off its `.pub` file.
struct Key {
    secret: PathBuf,
    public: PathBuf,
}

impl Key {
    fn new(dir: &Path, name: &str) -> Self {
        let (secret, public) = keygen(dir, name);
        Key { secret, public }
    }

    /// The `airlock-pub-ed25519:` line, for `public =` in a policy.
    fn public_line(&self) -> String {
        fs::read_to_string(&self.public).unwrap().lines().last().unwrap().to_owned()
    }

    /// The full key id, from the `.pub` file's comment line.
    fn id(&self) -> String {
        let text = fs::read_to_string(&self.public).unwrap();
        text.lines().next().unwrap().strip_prefix("# airlock public key ").unwrap().to_owned()
    }

    /// The short id errors and reports use.
    fn short(&self) -> String {
        self.id()[..16].to_owned()
    }
}

/// A policy text with every key inline, as a statement must carry it.
fn policy_text(serial: u64, threshold: usize, keys: &[(&str, &Key)], revoked: &[&Key]) -> String {
    let revoked: Vec<String> = revoked.iter().map(|k| format!("\"{}\"", k.id())).collect();
    let listed: Vec<String> = keys
        .iter()
        .map(|(name, key)| format!("[[keys]]\nname = \"{name}\"\npublic = \"{}\"\n", key.public_line()))
        .collect();
    format!(
        "version = 1\nserial = {serial}\nthreshold = {threshold}\nrevoked = [{}]\n{}",
        revoked.join(", "),
        listed.concat()
    )
}

/// Writes `text` to DIR/NAME.toml and signs it into DIR/NAME.statement with each key in turn.
fn statement(dir: &Path, name: &str, text: &str, signers: &[&Key]) -> PathBuf {
    let source = dir.join(format!("{name}.toml"));
    fs::write(&source, text).unwrap();
    let out = dir.join(format!("{name}.statement"));
    for key in signers {
        airlock()
            .args(["policy", "sign", "--quiet"])
            .arg(&source)
            .arg("--key")
            .arg(&key.secret)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
    }
    out
}

fn apply(statement: &Path, policy: &Path) -> Assert {
    airlock().args(["policy", "apply", "--json"]).arg(statement).arg("--policy").arg(policy).assert()
}

/// Applying `statement` is refused (exit 1) with a one-line error containing
/// each of `expect`, and the policy file is left byte for byte as it was.
fn refused(statement: &Path, policy: &Path, expect: &[&str]) {
    let before = fs::read(policy).unwrap();
    let out = apply(statement, policy).code(1);
    let err = one_line(&out.get_output().stderr);
    for text in expect {
        assert!(err.contains(text), "expected {text:?} in: {err}");
    }
    assert_eq!(fs::read(policy).unwrap(), before, "a refused statement changed the policy");
}

fn import(bundle: &Path, policy: &Path, mirror: &Path) -> Assert {
    airlock().args(["import", "--json"]).arg(bundle).arg("--policy").arg(policy).arg("--mirror").arg(mirror).assert()
}

/// Exports the week's release signed by `keys`, numbered by the channel state in `state`.
fn week(dir: &Path, n: u32, keys: &[&Key], state: &Path, name: &str) -> PathBuf {
    let input = dir.join(format!("week{n}"));
    write_tree(&input, &[("release.txt", format!("release of week {n}\n").as_bytes())]);
    let out = dir.join(format!("{name}.airlock"));
    let secrets: Vec<&Path> = keys.iter().map(|k| k.secret.as_path()).collect();
    export_in_channel(&input, &secrets, &out, Some(state));
    out
}

/// A copy of an exporter's channel state (its files and the segments
/// folder), so two bundles can claim the same next place.
fn copy_state(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_state(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn json(out: &Assert) -> Value {
    common::json_report(&out.get_output().stdout)
}

#[test]
fn a_rotated_key_counts_before_the_rotation_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (old, new) = (Key::new(root, "old"), Key::new(root, "new"));
    // The site's first policy may name its key by file; statements may not.
    let policy = root.join("policy.toml");
    fs::write(&policy, "version = 1\nthreshold = 1\n[[keys]]\nname = \"old\"\nfile = \"old.pub\"\n").unwrap();
    let state = root.join("state");
    let mirror = root.join("mirror");

    let first = week(root, 1, &[&old], &state, "week1");
    import(&first, &policy, &mirror).success();

    // Serial 2 replaces the old key with the new one; both keyholders sign.
    let next = policy_text(2, 1, &[("new", &new)], &[]);
    let rotation = statement(root, "serial2", &next, &[&old, &new]);
    let report = json(&apply(&rotation, &policy).success());
    assert_eq!(report["report"]["outcome"], "applied");
    assert_eq!(report["report"]["keys_removed"][0], format!("old ({})", old.short()));
    assert_eq!(report["report"]["keys_added"][0], format!("new ({})", new.short()));
    assert_eq!(fs::read_to_string(&policy).unwrap(), next, "the policy is the statement's text, byte for byte");

    // Week 2, once signed by the old key and once by the new one, both in the same place of the channel.
    let other_state = root.join("state-copy");
    copy_state(&state, &other_state);
    let by_old = week(root, 2, &[&old], &other_state, "week2-old");
    let by_new = week(root, 2, &[&new], &state, "week2-new");
    let before = snapshot(&mirror);
    let out = import(&by_old, &policy, &mirror).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains(&format!("not trusted: {}", old.short())), "{err}");
    assert_eq!(snapshot(&mirror), before);
    let out = airlock().arg("verify").arg(&first).arg("--policy").arg(&policy).assert().code(1);
    assert!(one_line(&out.get_output().stderr).contains(&old.short()));

    import(&by_new, &policy, &mirror).success();
    assert_eq!(fs::read_to_string(mirror.join("files/release.txt")).unwrap(), "release of week 2\n");
}

#[test]
fn a_statement_needs_a_threshold_of_the_current_keys_and_of_its_own_each_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let keys: Vec<Key> = ["old1", "old2", "new1", "new2"].iter().map(|n| Key::new(root, n)).collect();
    let [old1, old2, new1, new2] = [&keys[0], &keys[1], &keys[2], &keys[3]];
    let policy = root.join("policy.toml");
    fs::write(&policy, policy_text(1, 2, &[("old1", old1), ("old2", old2)], &[])).unwrap();
    let next = policy_text(2, 2, &[("new1", new1), ("new2", new2)], &[]);

    let only_new = statement(root, "only-new", &next, &[new1, new2]);
    refused(&only_new, &policy, &["signed by 0 key(s) of the current policy (serial 1), it requires 2"]);
    let only_old = statement(root, "only-old", &next, &[old1, old2]);
    refused(&only_old, &policy, &["signed by 0 key(s) of the new policy (serial 2), it requires 2"]);

    // One old key, signing twice, is still one key.
    let once = statement(root, "once", &next, &[old1, new1, new2]);
    let out = airlock()
        .args(["policy", "sign"])
        .arg(root.join("once.toml"))
        .arg("--key")
        .arg(&old1.secret)
        .arg("--out")
        .arg(&once)
        .assert()
        .code(2);
    assert!(one_line(&out.get_output().stderr).contains("already signed"));
    let twice = root.join("twice.statement");
    let again = airlock::sign::envelope::add_signature(
        &fs::read(&once).unwrap(),
        &airlock::sign::SecretKey::load(&old1.secret).unwrap(),
        airlock::sign::envelope::POLICY_STATEMENT,
    )
    .unwrap();
    fs::write(&twice, again).unwrap();
    refused(&twice, &policy, &["signed by 1 key(s) of the current policy", "requires 2", &old1.short()]);

    // The second old keyholder co-signs: now both thresholds are met.
    statement(root, "once", &next, &[old2]);
    let report = json(&apply(&once, &policy).success());
    assert_eq!(report["report"]["signed_by_current"].as_array().unwrap().len(), 2);
    assert_eq!(report["report"]["signed_by_new"].as_array().unwrap().len(), 2);
    assert_eq!(fs::read_to_string(&policy).unwrap(), next);
}

#[test]
fn the_serial_must_be_exactly_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a, b) = (Key::new(root, "a"), Key::new(root, "b"));
    let policy = root.join("policy.toml");
    fs::write(&policy, policy_text(1, 1, &[("a", &a)], &[])).unwrap();
    let serial2 = statement(root, "serial2", &policy_text(2, 1, &[("a", &a)], &[]), &[&a]);
    let serial3 = statement(root, "serial3", &policy_text(3, 1, &[("a", &a), ("b", &b)], &[]), &[&a, &b]);

    refused(&serial3, &policy, &["skip", "serial 3", "apply the statement of serial 2 first"]);
    apply(&serial2, &policy).success();
    // The same statement again changes nothing and succeeds, so a script can retry.
    let before = fs::read(&policy).unwrap();
    assert_eq!(json(&apply(&serial2, &policy).success())["report"]["outcome"], "already-applied");
    assert_eq!(fs::read(&policy).unwrap(), before);
    // Another text claiming the current serial is a conflict, not a no-op.
    let other2 = statement(root, "other2", &policy_text(2, 1, &[("a", &a), ("b", &b)], &[]), &[&a, &b]);
    refused(&other2, &policy, &["conflict", "serial 2"]);

    apply(&serial3, &policy).success();
    refused(&serial2, &policy, &["rollback", "serial 2, older than serial 3"]);
    refused(&other2, &policy, &["rollback"]);

    // A policy without a serial past 1 cannot become a statement at all.
    fs::write(root.join("first.toml"), policy_text(1, 1, &[("a", &a)], &[])).unwrap();
    let out = airlock()
        .args(["policy", "sign"])
        .arg(root.join("first.toml"))
        .arg("--key")
        .arg(&a.secret)
        .arg("--out")
        .arg(root.join("first.statement"))
        .assert()
        .code(2);
    assert!(one_line(&out.get_output().stderr).contains("serial = N+1"));
    assert!(!root.join("first.statement").exists());
}

#[test]
fn a_revoked_key_does_not_count_under_a_two_of_three_policy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (alice, bob, carol) = (Key::new(root, "alice"), Key::new(root, "bob"), Key::new(root, "carol"));
    let all = [("alice", &alice), ("bob", &bob), ("carol", &carol)];
    let policy = root.join("policy.toml");
    fs::write(&policy, policy_text(1, 2, &all, &[])).unwrap();
    let state = root.join("state");
    let mirror = root.join("mirror");
    let first = week(root, 1, &[&alice, &carol], &state, "week1");
    import(&first, &policy, &mirror).success();

    // Serial 2 revokes carol's key and still lists it.
    let revoking = statement(root, "serial2", &policy_text(2, 2, &all, &[&carol]), &[&alice, &bob]);
    let report = json(&apply(&revoking, &policy).success());
    assert_eq!(report["report"]["keys_revoked"][0], format!("carol ({})", carol.short()));

    let other_state = root.join("state-copy");
    copy_state(&state, &other_state);
    let alice_and_carol = week(root, 2, &[&alice, &carol], &other_state, "week2-ac");
    let before = snapshot(&mirror);
    let out = import(&alice_and_carol, &policy, &mirror).code(1);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("signed by 1 trusted key(s), the policy requires 2"), "{err}");
    assert!(err.contains(&format!("revoked, not counted: {}", carol.short())), "{err}");
    assert_eq!(snapshot(&mirror), before);

    // Signed by all three, it imports, and the report says carol's signature did not count.
    let all_three = week(root, 2, &[&alice, &bob, &carol], &state, "week2-abc");
    let report = json(&import(&all_three, &policy, &mirror).success());
    assert_eq!(report["report"]["verified"]["revoked_signers"][0], format!("carol ({})", carol.short()));
    assert_eq!(report["report"]["verified"]["trusted_signers"].as_array().unwrap().len(), 2);
    let out = airlock().arg("verify").arg(&all_three).arg("--policy").arg(&policy).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(&format!("revoked   carol ({}): signature not counted", carol.short())), "{text}");

    // Nor does a revoked key count toward a policy statement, and a revocation cannot be lifted.
    let with_carol = statement(root, "serial3", &policy_text(3, 2, &all, &[&carol]), &[&alice, &carol]);
    refused(&with_carol, &policy, &["signed by 1 key(s) of the current policy", "revoked, not counted"]);
    let lifting = statement(root, "lifting", &policy_text(3, 2, &all, &[]), &[&alice, &bob]);
    refused(&lifting, &policy, &["lifts the revocation of key carol"]);
}

#[test]
fn a_tampered_statement_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (old, new) = (Key::new(root, "old"), Key::new(root, "new"));
    let policy = root.join("policy.toml");
    fs::write(&policy, policy_text(1, 1, &[("old", &old)], &[])).unwrap();
    let signed = statement(root, "serial2", &policy_text(2, 1, &[("new", &new)], &[]), &[&old, &new]);
    let genuine = fs::read(&signed).unwrap();

    // The key's name changed in transit: still a valid policy, no longer the signed one.
    let at = genuine.windows(12).position(|w| w == b"name = \"new\"").unwrap();
    let mut renamed = genuine.clone();
    renamed[at + 8] = b'N';
    let tampered = root.join("tampered.statement");
    fs::write(&tampered, &renamed).unwrap();
    refused(&tampered, &policy, &["bad signature", "does not match the policy statement", "do not apply it"]);

    // Any one changed bit anywhere is refused.
    for index in 0..genuine.len() {
        let mut flipped = genuine.clone();
        flipped[index] ^= 0x01;
        fs::write(&tampered, &flipped).unwrap();
        let before = fs::read(&policy).unwrap();
        let out = airlock().args(["policy", "apply"]).arg(&tampered).arg("--policy").arg(&policy).assert();
        let code = out.get_output().status.code();
        assert_eq!(code, Some(1), "a flip at byte {index} was not refused");
        assert_eq!(fs::read(&policy).unwrap(), before);
    }
    apply(&signed, &policy).success();
}

#[test]
fn statements_carry_their_keys_and_co_signers_sign_the_same_text() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a, b) = (Key::new(root, "a"), Key::new(root, "b"));
    let sign = |source: &Path, key: &Key, out: &Path| {
        airlock().args(["policy", "sign"]).arg(source).arg("--key").arg(&key.secret).arg("--out").arg(out).assert()
    };
    let by_file = root.join("by-file.toml");
    fs::write(&by_file, "version = 1\nserial = 2\nthreshold = 1\n[[keys]]\nname = \"a\"\nfile = \"a.pub\"\n").unwrap();
    let out = sign(&by_file, &a, &root.join("s")).code(2);
    assert!(one_line(&out.get_output().stderr).contains("must carry its keys"));
    assert!(!root.join("s").exists());

    let statement_path = statement(root, "serial2", &policy_text(2, 1, &[("a", &a)], &[]), &[&a]);
    let before = fs::read(&statement_path).unwrap();
    fs::write(root.join("edited.toml"), policy_text(2, 1, &[("a", &a), ("b", &b)], &[])).unwrap();
    let out = sign(&root.join("edited.toml"), &b, &statement_path).code(2);
    assert!(one_line(&out.get_output().stderr).contains("different policy text"));
    assert_eq!(fs::read(&statement_path).unwrap(), before);

    // A bundle is not a policy statement.
    let input = root.join("in");
    write_tree(&input, &[("x", b"x")]);
    let bundle = root.join("b.airlock");
    common::export(&input, &[&a.secret], &bundle);
    let policy = root.join("policy.toml");
    fs::write(&policy, policy_text(1, 1, &[("a", &a)], &[])).unwrap();
    refused(&bundle, &policy, &["not a policy statement"]);
    let out = apply(&statement_path, &root.join("missing.toml")).code(2);
    one_line(&out.get_output().stderr);
}
