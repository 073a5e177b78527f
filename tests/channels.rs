//! Channels sharing one mirror, attacked by one of them (issue 14, items 10
//! and 11): every path an import writes, carried or generated, is checked
//! against every other before anything is staged; an entry one channel
//! published is never changed or withdrawn by another; and the policy can
//! bind keys to channels. Each bundle is built from parts and signed by a
//! key the site trusts, so the check under test is the only thing in the way.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use airlock::id::{ContentId, RelPath};
use airlock::manifest::{Blob, Digest, Entry, Evidence, FORMAT_SINGLE, Manifest};
use airlock::sign::SecretKey;
use common::{airlock, hostile, one_line, snapshot};
use sha2::Digest as _;

/// A disconnected site trusting two operators' keys, with one mirror.
struct Site {
    dir: tempfile::TempDir,
    alice: SecretKey,
    bob: SecretKey,
    mirror: PathBuf,
}

/// A bundle being built: its channel's next manifest and the blobs it carries.
struct Bundle {
    manifest: Manifest,
    blobs: BTreeMap<ContentId, Vec<u8>>,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        Site { dir, alice: SecretKey::generate().unwrap(), bob: SecretKey::generate().unwrap(), mirror }
    }

    /// The policy trusting both keys (threshold 1), with `channels` (TOML) after the keys.
    fn policy(&self, channels: &str) -> PathBuf {
        let path = self.dir.path().join("policy.toml");
        let (top, tables) = if channels.starts_with("[[") { ("", channels) } else { (channels, "") };
        let text = format!(
            "version = 1\nthreshold = 1\n{top}[[keys]]\nname = \"alice\"\npublic = \"{}\"\n[[keys]]\nname = \"bob\"\npublic = \"{}\"\n{tables}",
            self.alice.public().to_text(),
            self.bob.public().to_text()
        );
        fs::write(&path, text).unwrap();
        path
    }

    /// `bundle` signed by `key`, written to a file named after its channel and sequence.
    fn signed(&self, bundle: &Bundle, key: &SecretKey) -> PathBuf {
        let m = &bundle.manifest;
        let path = self.dir.path().join(format!("{}-{}-{}.airlock", m.channel, m.sequence, key.public().id().short()));
        fs::write(&path, hostile::rebuild(m, &bundle.blobs, &[key], &[key])).unwrap();
        path
    }

    fn run(&self, command: &str, bundle: &Path, policy: &Path) -> assert_cmd::assert::Assert {
        let mut cmd = airlock();
        cmd.args([command, "--quiet"]).arg(bundle).arg("--policy").arg(policy);
        if command == "import" {
            cmd.arg("--mirror").arg(&self.mirror);
        }
        cmd.assert()
    }

    fn import(&self, bundle: &Path, policy: &Path) {
        self.run("import", bundle, policy).success();
    }

    /// `command` refuses `bundle` with exit 1 and one line holding every part of `expect`; the mirror is unchanged.
    fn refused(&self, command: &str, bundle: &Path, policy: &Path, expect: &[&str]) -> String {
        let before = snapshot(&self.mirror);
        let out = self.run(command, bundle, policy).code(1);
        let err = one_line(&out.get_output().stderr);
        for part in expect {
            assert!(err.contains(part), "{command} {}: expected {part:?} in: {err}", bundle.display());
        }
        assert_eq!(snapshot(&self.mirror), before, "{}: the mirror changed", bundle.display());
        let staging = self.mirror.join(".airlock/staging");
        assert_eq!(fs::read_dir(&staging).map_or(0, Iterator::count), 0, "a refused import left staging behind");
        err
    }

    fn read(&self, path: &str) -> Vec<u8> {
        fs::read(self.mirror.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

impl Bundle {
    /// Sequence 1 of `channel`, carrying `entries` with their contents.
    fn new(channel: &str, entries: Vec<(Entry, Vec<u8>)>) -> Self {
        let mut blobs = BTreeMap::new();
        let mut list = Vec::new();
        for (entry, content) in entries {
            blobs.insert(entry.blob, content);
            list.push(entry);
        }
        list.sort_by(|a, b| a.place().cmp(&b.place()));
        let now = airlock::now();
        let manifest = Manifest {
            format: FORMAT_SINGLE,
            tool: "airlock tests/channels.rs".into(),
            channel: channel.into(),
            sequence: 1,
            previous: None,
            created: now - 60,
            expires: now + 86_400,
            signers: Vec::new(),
            volumes: 1,
            parity: 0,
            blobs: blobs
                .iter()
                .map(|(id, d)| Blob { id: *id, size: d.len() as u64, volume: 0, carried: true, pieces: Vec::new() })
                .collect(),
            entries: list.into(),
        };
        Bundle { manifest, blobs }
    }

    /// The channel's next bundle, listing `entries` (chained to this one).
    fn next(&self, entries: Vec<(Entry, Vec<u8>)>) -> Self {
        let mut next = Bundle::new(&self.manifest.channel, entries);
        next.manifest.sequence = self.manifest.sequence + 1;
        next.manifest.previous = Some(ContentId::of(&self.manifest.to_bytes().unwrap()));
        next
    }
}

fn entry(ecosystem: &str, name: &str, version: Option<&str>, path: &str, content: &[u8]) -> Entry {
    let mut digests = BTreeMap::new();
    if ecosystem != "files" {
        digests.insert("sha256".to_owned(), Digest(sha2::Sha256::digest(content).to_vec()));
    }
    Entry {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.map(Into::into),
        path: RelPath::new(path).unwrap(),
        blob: ContentId::of(content),
        size: content.len() as u64,
        digests,
        source: None,
        attributes: BTreeMap::new(),
        evidence: Vec::new(),
        missing: Vec::new(),
    }
}

/// A PyPI file of `project` with its core metadata carried, when given.
fn pypi(project: &str, version: &str, file: &str, content: &[u8], metadata: Option<&[u8]>) -> (Entry, Vec<u8>) {
    let mut e = entry("pypi", project, Some(version), &format!("{project}/{file}"), content);
    if let Some(metadata) = metadata {
        e.evidence.push(Evidence { kind: "pypi-core-metadata".into(), data: metadata.to_vec() });
    }
    (e, content.to_vec())
}

/// A crate with its registry index line; `deps` is the line's dependency list (JSON).
fn krate(name: &str, version: &str, content: &[u8], deps: &str) -> (Entry, Vec<u8>) {
    let mut e = entry("cargo", name, Some(version), &format!("{name}-{version}.crate"), content);
    let cksum = hex::encode(sha2::Sha256::digest(content));
    let line = format!(
        r#"{{"name":"{name}","vers":"{version}","deps":{deps},"cksum":"{cksum}","features":{{}},"yanked":false}}"#
    );
    e.evidence.push(Evidence { kind: "cargo-index-entry".into(), data: line.into_bytes() });
    (e, content.to_vec())
}

fn file(path: &str, content: &[u8]) -> (Entry, Vec<u8>) {
    (entry("files", path, None, path, content), content.to_vec())
}

const SDIST: &[u8] = b"goodpkg 1.0 sdist bytes";
const METADATA: &[u8] = b"Metadata-Version: 2.1\nName: goodpkg\nVersion: 1.0\n";
const EVIL_METADATA: &[u8] = b"Metadata-Version: 2.1\nName: goodpkg\nVersion: 1.0\nRequires-Dist: evil\n";
const CRATE: &[u8] = b"goodcrate 1.0.0 .crate bytes";

#[test]
fn a_pypi_entry_named_after_another_files_core_metadata_is_refused() {
    let site = Site::new();
    let policy = site.policy("");
    // One bundle: goodpkg's sdist with its metadata, and a "file" at the metadata's path.
    let bundle = Bundle::new(
        "pypi",
        vec![
            pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz", SDIST, Some(METADATA)),
            pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz.metadata", EVIL_METADATA, None),
        ],
    );
    let signed = site.signed(&bundle, &site.alice);
    let expect = [
        "pypi/simple/goodpkg/goodpkg-1.0.tar.gz.metadata",
        "the file of pypi goodpkg 1.0 (goodpkg/goodpkg-1.0.tar.gz.metadata)",
        "the core metadata of pypi goodpkg 1.0 (goodpkg/goodpkg-1.0.tar.gz)",
        "the bundle must leave one of them out",
    ];
    site.refused("verify", &signed, &policy, &expect);
    site.refused("import", &signed, &policy, &expect);
    assert!(!site.mirror.exists(), "a refused first import leaves no mirror");
}

#[test]
fn another_channels_file_at_a_core_metadata_path_is_refused() {
    let site = Site::new();
    let policy = site.policy("");
    let first = Bundle::new("a", vec![pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz", SDIST, Some(METADATA))]);
    site.import(&site.signed(&first, &site.alice), &policy);
    let page = site.read("pypi/simple/goodpkg/index.html");
    let digest = hex::encode(sha2::Sha256::digest(METADATA));
    assert!(String::from_utf8_lossy(&page).contains(&format!("data-core-metadata=\"sha256={digest}\"")));

    let other = Bundle::new("b", vec![pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz.metadata", EVIL_METADATA, None)]);
    let signed = site.signed(&other, &site.bob);
    // Alone, the bundle is consistent: verify passes; the mirror is what it collides with.
    site.run("verify", &signed, &policy).success();
    site.refused(
        "import",
        &signed,
        &policy,
        &[
            "channel b",
            "the file of pypi goodpkg 1.0 (goodpkg/goodpkg-1.0.tar.gz.metadata)",
            "the core metadata of pypi goodpkg 1.0 (goodpkg/goodpkg-1.0.tar.gz) (the mirror's, from channel a)",
            "the mirror already holds one of them",
        ],
    );
    assert_eq!(site.read("pypi/simple/goodpkg/goodpkg-1.0.tar.gz.metadata"), METADATA);
}

#[test]
fn a_project_named_index_with_a_file_index_html_is_refused() {
    let site = Site::new();
    let policy = site.policy("");
    let bundle = Bundle::new("pypi", vec![pypi("index", "1.0", "index.html", b"<script>owned</script>", None)]);
    let signed = site.signed(&bundle, &site.alice);
    let expect = [
        "pypi/simple/index/index.html",
        "the file of pypi index 1.0 (index/index.html)",
        "the index page of pypi index",
    ];
    site.refused("verify", &signed, &policy, &expect);
    site.refused("import", &signed, &policy, &expect);
}

#[test]
fn a_crate_differing_only_by_case_from_another_channels_crate_is_refused() {
    let site = Site::new();
    let policy = site.policy("");
    let first = Bundle::new("a", vec![krate("goodcrate", "1.0.0", CRATE, "[]")]);
    site.import(&site.signed(&first, &site.alice), &policy);
    let index = site.read("cargo/index/go/od/goodcrate");

    let other = Bundle::new("b", vec![krate("GoodCrate", "9.9.9", b"another crate", "[]")]);
    let signed = site.signed(&other, &site.bob);
    site.refused(
        "import",
        &signed,
        &policy,
        &[
            "cargo/index/go/od/goodcrate",
            "the index file of cargo GoodCrate",
            "the index file of cargo goodcrate (the mirror's, from channel a)",
        ],
    );
    assert_eq!(site.read("cargo/index/go/od/goodcrate"), index, "goodcrate's index line is still there");
}

#[test]
fn one_channels_plain_file_never_replaces_anothers() {
    let site = Site::new();
    let policy = site.policy("");
    let first = Bundle::new("a", vec![file("tools/tool.bin", b"the genuine tool")]);
    site.import(&site.signed(&first, &site.alice), &policy);

    let other = Bundle::new("b", vec![file("tools/tool.bin", b"another channel's tool")]);
    site.refused(
        "import",
        &site.signed(&other, &site.bob),
        &policy,
        &["files/tools/tool.bin", "channel a published this file", "a channel never replaces another channel's file"],
    );
    assert_eq!(site.read("files/tools/tool.bin"), b"the genuine tool");

    // Its own channel may still change it.
    let changed = first.next(vec![file("tools/tool.bin", b"the genuine tool, version 2")]);
    site.import(&site.signed(&changed, &site.alice), &policy);
    assert_eq!(site.read("files/tools/tool.bin"), b"the genuine tool, version 2");
}

#[test]
fn another_channel_listing_an_artifact_does_not_take_it_over() {
    let site = Site::new();
    let policy = site.policy("");
    let a1 = Bundle::new(
        "a",
        vec![
            krate("goodcrate", "1.0.0", CRATE, "[]"),
            pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz", SDIST, Some(METADATA)),
            file("shared.txt", b"both channels carry this"),
        ],
    );
    site.import(&site.signed(&a1, &site.alice), &policy);
    let index = site.read("cargo/index/go/od/goodcrate");
    let page = site.read("pypi/simple/goodpkg/index.html");

    // Channel B lists the identical artifacts with other evidence: an index
    // line that gained a dependency, core metadata that gained a requirement.
    let evil_dep = r#"[{"name":"evil","req":"^1","features":[],"optional":false,"default_features":true,"target":null,"kind":"normal"}]"#;
    let b1 = Bundle::new(
        "b",
        vec![
            krate("goodcrate", "1.0.0", CRATE, evil_dep),
            pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz", SDIST, Some(EVIL_METADATA)),
            file("shared.txt", b"both channels carry this"),
        ],
    );
    site.import(&site.signed(&b1, &site.bob), &policy);
    assert_eq!(site.read("cargo/index/go/od/goodcrate"), index, "channel a's index line is unchanged");
    assert_eq!(site.read("pypi/simple/goodpkg/goodpkg-1.0.tar.gz.metadata"), METADATA);
    assert_eq!(site.read("pypi/simple/goodpkg/index.html"), page);
    // A third channel's release of the crate regenerates its index file: 1.0.0's line is still channel A's.
    let c1 = Bundle::new("c", vec![krate("goodcrate", "1.1.0", b"goodcrate 1.1.0", "[]")]);
    site.import(&site.signed(&c1, &site.alice), &policy);
    let text = String::from_utf8(site.read("cargo/index/go/od/goodcrate")).unwrap();
    assert!(text.starts_with(std::str::from_utf8(&index).unwrap()), "{text}");
    assert!(text.contains(r#""vers":"1.1.0""#) && !text.contains("evil"), "{text}");
    let index = text.into_bytes();

    // B's next bundle no longer lists them: channel a still does, so they stay.
    let b2 = b1.next(vec![file("b-only.txt", b"b")]);
    site.import(&site.signed(&b2, &site.bob), &policy);
    assert_eq!(site.read("cargo/goodcrate-1.0.0.crate"), CRATE);
    assert_eq!(site.read("cargo/index/go/od/goodcrate"), index);
    assert_eq!(site.read("pypi/simple/goodpkg/goodpkg-1.0.tar.gz"), SDIST);
    assert_eq!(site.read("files/shared.txt"), b"both channels carry this");

    // B lists the plain file again; A drops everything: what B lists stays, the rest is withdrawn.
    let b3 = b2.next(vec![file("b-only.txt", b"b"), file("shared.txt", b"both channels carry this")]);
    site.import(&site.signed(&b3, &site.bob), &policy);
    let a2 = a1.next(vec![file("a-only.txt", b"a")]);
    site.import(&site.signed(&a2, &site.alice), &policy);
    assert_eq!(site.read("files/shared.txt"), b"both channels carry this");
    assert!(!site.mirror.join("cargo/goodcrate-1.0.0.crate").exists(), "no channel lists the crate any more");
    assert!(!site.mirror.join("pypi/simple/goodpkg/goodpkg-1.0.tar.gz").exists());
    // And once B drops it too, it is withdrawn.
    let b4 = b3.next(vec![file("b-only.txt", b"b")]);
    site.import(&site.signed(&b4, &site.bob), &policy);
    assert!(!site.mirror.join("files/shared.txt").exists());
}

#[test]
fn a_key_bound_to_one_channel_cannot_publish_into_another() {
    let site = Site::new();
    let policy = site.policy(&format!(
        "[[channels]]\nname = \"pypi-weekly\"\nkeys = [\"alice\"]\nthreshold = 1\n[[channels]]\nname = \"tools\"\nkeys = [\"{}\"]\nthreshold = 1\n",
        site.bob.public().id()
    ));
    let tools = Bundle::new("tools", vec![file("tool.bin", b"a tool")]);
    let by_alice = site.signed(&tools, &site.alice);
    let expect = [
        "channel tools must be signed by 1 of its own key(s) (bob (",
        "and 0 of them signed (trusted signers: alice (",
        "a key trusted for another channel cannot publish into this one",
    ];
    site.refused("verify", &by_alice, &policy, &expect);
    site.refused("import", &by_alice, &policy, &expect);
    // A channel the table does not list is refused, whoever signed.
    let other = site.signed(&Bundle::new("other", vec![file("x", b"x")]), &site.alice);
    site.refused("import", &other, &policy, &["channel \"other\" is not among the channels the policy accepts"]);
    // Each channel's own key publishes into it.
    site.import(&site.signed(&tools, &site.bob), &policy);
    let weekly = Bundle::new("pypi-weekly", vec![pypi("goodpkg", "1.0", "goodpkg-1.0.tar.gz", SDIST, None)]);
    site.import(&site.signed(&weekly, &site.alice), &policy);
}

#[test]
fn without_a_channels_table_any_trusted_key_publishes_into_any_channel() {
    let site = Site::new();
    let policy = site.policy("");
    for (channel, key) in [("tools", &site.alice), ("pypi-weekly", &site.bob), ("other", &site.alice)] {
        let bundle = Bundle::new(channel, vec![file(&format!("{channel}.txt"), channel.as_bytes())]);
        site.import(&site.signed(&bundle, key), &policy);
    }
    // A list of names alone restricts the channels, not the keys.
    let names = site.policy("channels = [\"tools\"]\n");
    let tools = Bundle::new("tools", vec![file("tools2.txt", b"tools")]);
    site.run("verify", &site.signed(&tools, &site.bob), &names).success();
    site.refused(
        "verify",
        &site.signed(&Bundle::new("other", vec![file("o", b"o")]), &site.bob),
        &names,
        &["not among"],
    );
}

#[test]
fn a_policy_statement_binds_keys_to_channels_and_keeps_them_meetable() {
    let site = Site::new();
    let policy = site.policy("");
    let serial_2 = |channels: &str| {
        let text = fs::read_to_string(&policy).unwrap().replacen("threshold = 1\n", "serial = 2\nthreshold = 1\n", 1);
        format!("{text}{channels}")
    };
    let alice_key = site.dir.path().join("alice");
    site.alice.write_pair(&alice_key, false).unwrap();
    let sign = |name: &str, text: &str| {
        let source = site.dir.path().join(format!("{name}.toml"));
        fs::write(&source, text).unwrap();
        let statement = site.dir.path().join(format!("{name}.statement"));
        let mut cmd = airlock();
        cmd.args(["policy", "sign", "--quiet"]).arg(&source).arg("--key").arg(alice_key.with_extension("key"));
        cmd.arg("--out").arg(&statement).assert().success();
        statement
    };
    let apply = |statement: &Path| {
        airlock().args(["policy", "apply", "--quiet"]).arg(statement).arg("--policy").arg(&policy).assert()
    };

    // A statement whose table could never be met (bob revoked, the only key of his channel) is refused.
    let revoking = serial_2("[[channels]]\nname = \"tools\"\nkeys = [\"bob\"]\nthreshold = 1\n").replacen(
        "serial = 2\n",
        &format!("serial = 2\nrevoked = [\"{}\"]\n", site.bob.public().id()),
        1,
    );
    let source = site.dir.path().join("unmeetable.toml");
    fs::write(&source, &revoking).unwrap();
    let mut cmd = airlock();
    cmd.args(["policy", "sign", "--quiet"]).arg(&source).arg("--key").arg(alice_key.with_extension("key"));
    let out = cmd.arg("--out").arg(site.dir.path().join("unmeetable.statement")).assert().code(2);
    let expected = "channel tools: threshold 1 cannot be met: none of its keys is usable (all revoked)";
    assert!(one_line(&out.get_output().stderr).contains(expected));
    // Made without `policy sign`, the statement is refused on apply, and the policy file stays as it was.
    let statement = site.dir.path().join("crafted.statement");
    let sealed = airlock::sign::envelope::seal(
        revoking.as_bytes(),
        std::slice::from_ref(&site.alice),
        airlock::sign::envelope::POLICY_STATEMENT,
    );
    fs::write(&statement, sealed.unwrap()).unwrap();
    let before = fs::read(&policy).unwrap();
    let err = one_line(&apply(&statement).code(1).get_output().stderr);
    assert!(err.contains(expected), "{err}");
    assert_eq!(fs::read(&policy).unwrap(), before);

    // Signed by the current policy's key (alice, also one of the new policy's): applied.
    let binding = serial_2(
        "[[channels]]\nname = \"tools\"\nkeys = [\"bob\"]\nthreshold = 1\n[[channels]]\nname = \"pypi-weekly\"\nkeys = [\"alice\", \"bob\"]\nthreshold = 1\n",
    );
    apply(&sign("binding", &binding)).success();
    assert_eq!(fs::read_to_string(&policy).unwrap(), binding);
    let tools = Bundle::new("tools", vec![file("tool.bin", b"a tool")]);
    site.refused(
        "import",
        &site.signed(&tools, &site.alice),
        &policy,
        &["channel tools must be signed by 1 of its own key(s)"],
    );
    site.import(&site.signed(&tools, &site.bob), &policy);
}
