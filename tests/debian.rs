//! Debian end to end: export from a loopback archive serving real files of
//! deb.debian.org (fixtures/debian/README.md), verification against
//! Debian's keyring on import, the mirror apt reads, and apt itself
//! installing from it and refusing an altered `InRelease`. Negative cases are
//! bundles signed by the site's own key whose Debian chain is broken: each
//! must be refused by the Debian checks (exit 1, one line, mirror unchanged).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use airlock::id::ContentId;
use airlock::manifest::{Digest, Manifest};
use airlock::sign::SecretKey;
use common::{airlock, hostile, one_line, snapshot};
use sha2::Digest as _;

const SUITE: &str = "bookworm-updates";
const DEV: &str = "pool/main/s/samba/libwbclient-dev_4.17.12+dfsg-0+deb12u2_amd64.deb";
const LIB: &str = "pool/main/s/samba/libwbclient0_4.17.12+dfsg-0+deb12u2_amd64.deb";
const PACKAGES: &str = "dists/bookworm-updates/main/binary-amd64/Packages.xz";
const TRANSLATION: &str = "dists/bookworm-updates/main/i18n/Translation-en.xz";
/// The same suite's i386 index and packages, for the multi-architecture export.
const PACKAGES_I386: &str = "dists/bookworm-updates/main/binary-i386/Packages.xz";
const DEV_I386: &str = "pool/main/s/samba/libwbclient-dev_4.17.12+dfsg-0+deb12u2_i386.deb";
const LIB_I386: &str = "pool/main/s/samba/libwbclient0_4.17.12+dfsg-0+deb12u2_i386.deb";
/// What the targets have already (libwbclient0 needs libbsd0 and libc6, in bookworm, not -updates).
const BASE: &str = "libc6:amd64\t2.36-9+deb12u10\nlibbsd0:amd64\t0.11.7-2\n";

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/debian").join(path)
}

fn archive_file(path: &str) -> Vec<u8> {
    fs::read(fixture("archive/debian").join(path)).unwrap()
}

/// A loopback archive serving fixtures/debian/archive/ at `/debian/`, every
/// file under dists/ also at its by-hash name, `replace` bodies swapped in.
fn start_archive(replace: BTreeMap<String, Vec<u8>>) -> String {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for rel in ["dists/bookworm-updates/InRelease", PACKAGES, TRANSLATION, DEV, LIB, PACKAGES_I386, DEV_I386, LIB_I386]
    {
        let body = archive_file(rel);
        if rel.contains("/main/") {
            let dir = rel.rsplit_once('/').unwrap().0;
            files.insert(
                format!("/debian/{dir}/by-hash/SHA256/{}", hex::encode(sha2::Sha256::digest(&body))),
                body.clone(),
            );
        }
        files.insert(format!("/debian/{rel}"), body);
    }
    for (path, body) in replace {
        files.insert(path, body);
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/debian", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let mut stream = stream;
            let _ = match files.get(&path) {
                Some(body) => stream
                    .write_all(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .as_bytes(),
                    )
                    .and_then(|()| stream.write_all(body)),
                None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    base
}

/// A site: the exporter's key, a policy pinning Debian's keyring, a mirror.
struct Site {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    policy: PathBuf,
    mirror: PathBuf,
}

impl Site {
    fn new() -> Site {
        Site::with_policy("[debian]\nkeyring = \"debian-archive-keyring.gpg\"\n")
    }

    fn with_policy(debian: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (key_file, public) = common::keygen(dir.path(), "op");
        fs::copy(fixture("debian-archive-keyring.gpg"), dir.path().join("debian-archive-keyring.gpg")).unwrap();
        fs::copy(fixture("test/test-keyring.gpg"), dir.path().join("test-keyring.gpg")).unwrap();
        let policy = dir.path().join("policy.toml");
        let text = format!(
            "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"{}\"\n{debian}",
            public.file_name().unwrap().to_str().unwrap()
        );
        fs::write(&policy, text).unwrap();
        let mirror = dir.path().join("mirror");
        Site { dir, key_file, policy, mirror }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `airlock export` of libwbclient-dev's closure from `base`, not yet run.
    fn export(&self, base: &str, out: &Path) -> assert_cmd::Command {
        fs::write(self.path("pkgs.txt"), "# the test closure\nlibwbclient-dev\n").unwrap();
        fs::write(self.path("base.txt"), BASE).unwrap();
        let mut cmd = airlock();
        cmd.args(["export", "--quiet", "--debian-packages"])
            .arg(self.path("pkgs.txt"))
            .args(["--debian-suite", SUITE, "--debian-archive", base, "--debian-base"])
            .arg(self.path("base.txt"))
            .arg("--debian-keyring")
            .arg(fixture("debian-archive-keyring.gpg"))
            .arg("--cache")
            .arg(self.path("cache"))
            .arg("--key")
            .arg(&self.key_file)
            .arg("--out")
            .arg(out);
        cmd
    }

    fn exported(&self) -> PathBuf {
        let out = self.path("debian.airlock");
        if !out.exists() {
            let base = start_archive(BTreeMap::new());
            self.export(&base, &out).assert().success();
        }
        out
    }

    fn import(&self, bundle: &Path) -> assert_cmd::assert::Assert {
        airlock()
            .args(["import", "--quiet"])
            .arg(bundle)
            .arg("--policy")
            .arg(&self.policy)
            .arg("--mirror")
            .arg(&self.mirror)
            .assert()
    }

    /// Imports `bytes` and checks it is refused with exit 1, one line naming
    /// every part of `expect`, and the mirror unchanged.
    fn refused(&self, name: &str, bytes: &[u8], expect: &[&str]) {
        let bundle = self.path(name);
        fs::write(&bundle, bytes).unwrap();
        let before = snapshot(&self.mirror);
        let out = self.import(&bundle).code(1);
        let err = one_line(&out.get_output().stderr);
        assert_eq!(String::from_utf8_lossy(&out.get_output().stderr).lines().count(), 1, "{err}");
        for part in expect {
            assert!(err.contains(part), "{name}: expected {part:?} in: {err}");
        }
        assert_eq!(snapshot(&self.mirror), before, "{name}: the mirror changed");
    }

    fn key(&self) -> SecretKey {
        SecretKey::load(&self.key_file).unwrap()
    }
}

#[test]
fn export_verify_import_publishes_debians_files_byte_for_byte() {
    let site = Site::new();
    let bundle = site.exported();
    let parts = hostile::open(&bundle);
    let schema = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/manifest.cddl")).unwrap();
    cddl::validate_cbor_from_slice(&schema, &parts.payload, None).unwrap();
    let manifest = parts.manifest;
    let mut names: Vec<String> = manifest.entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bookworm-updates",
            "bookworm-updates/main/binary-amd64/Packages.xz",
            "bookworm-updates/main/i18n/Translation-en.xz",
            "libwbclient-dev",
            "libwbclient0"
        ]
    );
    airlock().args(["verify"]).arg(&bundle).arg("--policy").arg(&site.policy).assert().success();
    site.import(&bundle).success();
    let root = site.mirror.join("debian/debian");
    for rel in ["dists/bookworm-updates/InRelease", PACKAGES, TRANSLATION, DEV, LIB] {
        assert_eq!(fs::read(root.join(rel)).unwrap(), archive_file(rel), "{rel}");
    }
    let packages = archive_file(PACKAGES);
    let hashed = format!(
        "dists/bookworm-updates/main/binary-amd64/by-hash/SHA256/{}",
        hex::encode(sha2::Sha256::digest(&packages))
    );
    assert_eq!(fs::read(root.join(hashed)).unwrap(), packages);
}

#[test]
fn two_architectures_each_get_their_closure_and_index() {
    let site = Site::new();
    let base = start_archive(BTreeMap::new());
    let out = site.path("two.airlock");
    site.export(&base, &out).args(["--debian-arch", "amd64", "--debian-arch", "i386"]).assert().success();
    let manifest = hostile::open(&out).manifest;
    let mut paths: Vec<String> =
        manifest.entries.iter().map(|e| e.path.as_str().trim_start_matches("debian/").to_owned()).collect();
    paths.sort_unstable();
    let mut expected =
        vec!["dists/bookworm-updates/InRelease", PACKAGES, PACKAGES_I386, TRANSLATION, DEV, DEV_I386, LIB, LIB_I386];
    expected.sort_unstable();
    assert_eq!(paths, expected);
    site.import(&out).success();
    for rel in [DEV_I386, LIB_I386, PACKAGES_I386] {
        assert_eq!(fs::read(site.mirror.join("debian/debian").join(rel)).unwrap(), archive_file(rel), "{rel}");
    }
    // A qualifier naming an architecture the export does not carry.
    fs::write(site.path("pkgs.txt"), "libwbclient0:arm64\n").unwrap();
    let mut cmd = airlock();
    cmd.args(["export", "--quiet", "--debian-packages"]).arg(site.path("pkgs.txt"));
    cmd.args(["--debian-suite", SUITE, "--debian-archive", &base, "--debian-keyring"]);
    cmd.arg(fixture("debian-archive-keyring.gpg"))
        .arg("--key")
        .arg(&site.key_file)
        .arg("--out")
        .arg(site.path("arm.airlock"));
    let err = one_line(&cmd.assert().code(2).get_output().stderr);
    assert!(err.contains("libwbclient0:arm64: only --debian-arch amd64 is exported; add --debian-arch arm64"), "{err}");
}

#[test]
fn the_report_names_debians_signers() {
    let site = Site::new();
    let bundle = site.exported();
    let out = airlock().args(["verify", "--json"]).arg(&bundle).arg("--policy").arg(&site.policy).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("InRelease of bookworm-updates signed by Debian Archive Automatic Signing Key (12/bookworm)"),
        "{text}"
    );
}

#[test]
fn export_refuses_a_deb_or_an_index_the_archive_altered_and_an_inrelease_of_another_keyring() {
    let site = Site::new();
    let mut deb = archive_file(LIB);
    deb[1000] ^= 1;
    let base = start_archive(BTreeMap::from([(format!("/debian/{LIB}"), deb)]));
    let out = site.export(&base, &site.path("a.airlock")).assert().code(2);
    let err = one_line(&out.get_output().stderr);
    assert!(err.contains("the .deb's SHA256 or size differs from its Packages stanza"), "{err}");

    let mut index = archive_file(PACKAGES);
    index[100] ^= 1;
    let by_hash = format!(
        "/debian/dists/bookworm-updates/main/binary-amd64/by-hash/SHA256/{}",
        hex::encode(sha2::Sha256::digest(archive_file(PACKAGES)))
    );
    let base = start_archive(BTreeMap::from([(by_hash, index)]));
    let err = one_line(&site.export(&base, &site.path("b.airlock")).assert().code(2).get_output().stderr);
    assert!(err.contains("differs from the signed InRelease"), "{err}");

    let base = start_archive(BTreeMap::from([(
        "/debian/dists/bookworm-updates/InRelease".to_owned(),
        fs::read(fixture("test/InRelease-expired")).unwrap(),
    )]));
    let err = one_line(&site.export(&base, &site.path("c.airlock")).assert().code(2).get_output().stderr);
    assert!(err.contains("has no signature by a key of the keyring that verifies"), "{err}");
    assert!(!site.path("a.airlock").exists() && !site.path("c.airlock").exists());
}

/// The exported bundle with `edit` applied to its manifest and blobs, re-signed by the site's key.
fn tampered(site: &Site, edit: impl FnOnce(&mut Manifest, &mut BTreeMap<ContentId, Vec<u8>>)) -> Vec<u8> {
    let parts = hostile::open(&site.exported());
    let (mut manifest, mut blobs) = (parts.manifest, parts.blobs);
    edit(&mut manifest, &mut blobs);
    let key = site.key();
    hostile::rebuild(&manifest, &blobs, &[&key], &[&key])
}

/// Replaces the bytes of the entry at `path` (its blob, size and digests follow).
fn replace_blob(manifest: &mut Manifest, blobs: &mut BTreeMap<ContentId, Vec<u8>>, path: &str, bytes: Vec<u8>) {
    let i = manifest.entries.iter().position(|e| e.path.as_str() == format!("debian/{path}")).unwrap();
    let old = manifest.entries.decoded_mut()[i].blob;
    let id = ContentId::of(&bytes);
    let entry = &mut manifest.entries.decoded_mut()[i];
    entry.blob = id;
    entry.size = bytes.len() as u64;
    entry.digests.insert("sha256".into(), Digest(sha2::Sha256::digest(&bytes).to_vec()));
    for b in manifest.blobs.iter_mut().filter(|b| b.id == old) {
        b.id = id;
        b.size = bytes.len() as u64;
    }
    blobs.insert(id, bytes);
}

#[test]
fn import_refuses_a_broken_debian_chain_with_one_line_and_the_mirror_unchanged() {
    let site = Site::new();
    site.import(&site.exported()).success();

    let flipped = tampered(&site, |m, b| {
        let mut deb = archive_file(LIB);
        deb[1000] ^= 1;
        replace_blob(m, b, LIB, deb);
    });
    site.refused("flipped-deb.airlock", &flipped, &["libwbclient0", "its stanza names SHA256"]);

    let index = tampered(&site, |m, b| {
        let mut packages = archive_file(TRANSLATION);
        packages.extend_from_slice(b"\n");
        replace_blob(m, b, TRANSLATION, packages);
    });
    site.refused("index.airlock", &index, &["main/i18n/Translation-en.xz is not the file the signed InRelease lists"]);

    let renamed = tampered(&site, |m, _| {
        let dev = m.entries.iter().find(|e| e.name == "libwbclient-dev").unwrap().evidence.clone();
        let lib = m.entries.decoded_mut().iter_mut().find(|e| e.name == "libwbclient0").unwrap();
        lib.evidence = dev;
    });
    site.refused("renamed.airlock", &renamed, &["libwbclient0", "its stanza names Package \"libwbclient-dev\""]);
}

#[test]
fn import_refuses_an_inrelease_by_a_key_not_in_the_pinned_keyring() {
    let site = Site::with_policy("[debian]\nkeyring = \"test-keyring.gpg\"\n");
    let bundle = fs::read(site.exported()).unwrap();
    site.refused(
        "stranger.airlock",
        &bundle,
        &["bad signature", "InRelease of bookworm-updates has no signature by a key of the keyring that verifies"],
    );
}

#[test]
fn import_refuses_a_release_past_valid_until_and_the_grace() {
    // Signed by the test key, which this policy pins: only the date is wrong.
    let site = Site::with_policy("[debian]\nkeyring = \"test-keyring.gpg\"\nvalid-until-grace = \"14d\"\n");
    let expired = fs::read(fixture("test/InRelease-expired")).unwrap();
    let bundle = tampered(&site, |m, b| {
        replace_blob(m, b, "dists/bookworm-updates/InRelease", expired.clone());
        for e in &mut m.entries {
            for ev in e.evidence.iter_mut().filter(|ev| ev.kind == "debian-inrelease") {
                ev.data = expired.clone();
            }
        }
    });
    site.refused("expired.airlock", &bundle, &["valid until 2026-01-01T00:00:00Z", "valid-until-grace (14days)"]);
}

/// The site's first bundle as the channel's next one, with `inrelease`
/// in place of the suite's `InRelease` (and as every entry's evidence).
fn next_bundle(
    site: &Site,
    inrelease: &[u8],
    edit: impl FnOnce(&mut Manifest, &mut BTreeMap<ContentId, Vec<u8>>),
) -> Vec<u8> {
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(site.mirror.join(".airlock/current/state.json")).unwrap()).unwrap();
    let last = state["imports"].as_array().unwrap().last().unwrap().clone();
    tampered(site, |m, b| {
        m.sequence = last["sequence"].as_u64().unwrap() + 1;
        m.previous = Some(ContentId::from_hex(last["manifest_digest"].as_str().unwrap()).unwrap());
        replace_blob(m, b, "dists/bookworm-updates/InRelease", inrelease.to_vec());
        for e in &mut m.entries {
            for ev in e.evidence.iter_mut().filter(|ev| ev.kind == "debian-inrelease") {
                ev.data = inrelease.to_vec();
            }
        }
        edit(m, b);
    })
}

#[test]
fn a_newer_inrelease_replaces_the_suite_with_its_index_files_and_an_older_one_is_refused() {
    // Debian's keyring and the test key that signed the fixture's newer and older Releases.
    let site = Site::with_policy("[debian]\nkeyring = \"both.gpg\"\n");
    let mut both = fs::read(fixture("debian-archive-keyring.gpg")).unwrap();
    both.extend(fs::read(fixture("test/rolling-keyring.gpg")).unwrap());
    fs::write(site.path("both.gpg"), both).unwrap();
    site.import(&site.exported()).success();
    let root = site.mirror.join("debian/debian");
    let hashed = |bytes: &[u8]| {
        root.join(format!(
            "dists/bookworm-updates/main/binary-amd64/by-hash/SHA256/{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    };
    let old_packages = archive_file(PACKAGES);
    assert!(hashed(&old_packages).is_file());

    // The next Release of the suite, with Packages.xz recompressed (same
    // paragraphs, other bytes): both are replaced, the old by-hash name goes.
    let newer = fs::read(fixture("test/InRelease-newer")).unwrap();
    let packages = fs::read(fixture("test/Packages-newer.xz")).unwrap();
    let bundle = next_bundle(&site, &newer, |m, b| replace_blob(m, b, PACKAGES, packages.clone()));
    fs::write(site.path("newer.airlock"), &bundle).unwrap();
    site.import(&site.path("newer.airlock")).success();
    assert_eq!(fs::read(root.join("dists/bookworm-updates/InRelease")).unwrap(), newer);
    assert_eq!(fs::read(root.join(PACKAGES)).unwrap(), packages);
    assert_eq!(fs::read(hashed(&packages)).unwrap(), packages);
    assert!(!hashed(&old_packages).exists(), "the replaced index's by-hash file stayed");
    assert!(root.join(LIB).is_file() && root.join(DEV).is_file());

    // A validly signed but older Release: a rollback of the suite.
    let older = fs::read(fixture("test/InRelease-older")).unwrap();
    let rollback = next_bundle(&site, &older, |_, _| {});
    site.refused(
        "older.airlock",
        &rollback,
        &["bookworm-updates InRelease", "before the one the mirror holds", "never goes back to an older Release"],
    );
}

/// An APT configuration of its own under `dir`: nothing of the host's
/// apt.conf.d, sources or state; Valid-Until checked (the host turns it off).
fn apt_config(dir: &Path, uri: &str) -> PathBuf {
    // What the targets have (the --debian-base listing), as dpkg's status.
    let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n\n\
Package: libbsd0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.11.7-2\n\n";
    let keyring = fixture("debian-archive-keyring.gpg");
    apt_config_with(dir, &format!("deb [signed-by={}] {uri} {SUITE} main\n", keyring.display()), status)
}

/// [`apt_config`] with its sources.list and dpkg status given.
fn apt_config_with(dir: &Path, sources: &str, status: &str) -> PathBuf {
    for d in
        ["state/lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d"]
    {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::write(dir.join("status"), status).unwrap();
    fs::write(dir.join("etc/sources.list"), sources).unwrap();
    let d = dir.display();
    let conf = format!(
        "Dir::State \"{d}/state\";\nDir::State::status \"{d}/status\";\nDir::Cache \"{d}/cache\";\n\
Dir::Etc::SourceList \"{d}/etc/sources.list\";\nDir::Etc::SourceParts \"{d}/etc/sources.list.d\";\n\
Dir::Etc::Parts \"{d}/etc/apt.conf.d\";\nDir::Etc::PreferencesParts \"{d}/etc/preferences.d\";\n\
Dir::Etc::Preferences \"{d}/etc/preferences\";\nAcquire::Check-Valid-Until \"true\";\n\
APT::Sandbox::User \"root\";\nAPT::Architecture \"amd64\";\nAPT::Architectures {{ \"amd64\"; }};\n\
Acquire::Languages {{ \"en\"; }};\nDebug::NoLocking \"true\";\nAcquire::http::Proxy \"DIRECT\";\n"
    );
    let path = dir.join("apt.conf");
    fs::write(&path, conf).unwrap();
    path
}

fn apt_get(config: &Path, args: &[&str]) -> std::process::Output {
    Process::new("apt-get").env("APT_CONFIG", config).env("LC_ALL", "C").args(args).output().unwrap()
}

#[test]
fn apt_installs_from_the_mirror_checking_debians_signature_and_refuses_an_altered_inrelease() {
    if Process::new("apt-get").arg("--version").output().is_err() {
        common::skip("apt-get is not installed");
        return;
    }
    let site = Site::new();
    site.import(&site.exported()).success();
    let apt = site.path("apt");
    let config = apt_config(&apt, &format!("copy:{}/debian/debian", site.mirror.display()));
    apt_installs(&apt, &config);

    // The same mirror with one byte of its InRelease changed: apt refuses it.
    let inrelease = site.mirror.join("debian/debian/dists/bookworm-updates/InRelease");
    let text = fs::read_to_string(&inrelease).unwrap().replacen("Label: Debian", "Label: Debiam", 1);
    let _ = fs::remove_file(&inrelease);
    fs::write(&inrelease, text).unwrap();
    let altered = site.path("apt-altered");
    let config = apt_config(&altered, &format!("copy:{}/debian/debian", site.mirror.display()));
    let update = apt_get(&config, &["update"]);
    let said = format!("{}{}", String::from_utf8_lossy(&update.stdout), String::from_utf8_lossy(&update.stderr));
    assert!(!update.status.success() && said.contains("BADSIG") && said.contains("is not signed"), "{said}");
    assert!(
        !altered.join("state/lists").read_dir().unwrap().any(|f| f
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with("_Packages")),
        "{said}"
    );
}

/// `[debian] publish = "site-signed"`: the mirror's Packages list only what
/// it holds, its Release is the site's, signed by the site's key, which
/// apt trusts instead of Debian's; Debian's `InRelease` is kept beside it.
#[test]
fn site_signed_mode_lists_only_what_the_mirror_holds_and_apt_trusts_the_site_key() {
    use std::os::unix::fs::PermissionsExt as _;
    if Process::new("apt-get").arg("--version").output().is_err() {
        common::skip("apt-get is not installed");
        return;
    }
    let site = Site::with_policy(
        "[debian]\nkeyring = \"debian-archive-keyring.gpg\"\npublish = \"site-signed\"\nsite-key = \"site.asc\"\nsite-valid-for = \"10d\"\n",
    );
    let made = airlock().args(["keygen", "--openpgp", "--out"]).arg(site.path("site")).assert().success();
    let said = String::from_utf8_lossy(&made.get_output().stdout).into_owned();
    assert!(said.contains("site.asc (OpenPGP, not encrypted") && said.contains("site.pub.asc"), "{said}");
    let secret_mode = fs::metadata(site.path("site.asc")).unwrap().permissions().mode() & 0o777;
    assert_eq!(secret_mode, 0o600);
    // An existing key is not overwritten.
    let again = airlock().args(["keygen", "--openpgp", "--out"]).arg(site.path("site")).assert().code(2);
    assert!(one_line(&again.get_output().stderr).contains("already exists"));
    // Readable by others: refused before anything is read from the bundle.
    let bundle = site.exported();
    fs::set_permissions(site.path("site.asc"), fs::Permissions::from_mode(0o644)).unwrap();
    let err = one_line(&site.import(&bundle).code(2).get_output().stderr);
    assert!(err.contains("readable by others") && err.contains("chmod 600"), "{err}");
    fs::set_permissions(site.path("site.asc"), fs::Permissions::from_mode(0o600)).unwrap();
    site.import(&bundle).success();

    let dists = site.mirror.join("debian/debian/dists/bookworm-updates");
    assert_eq!(fs::read(dists.join("InRelease.upstream")).unwrap(), archive_file("dists/bookworm-updates/InRelease"));
    let packages = fs::read_to_string(dists.join("main/binary-amd64/Packages")).unwrap();
    let listed: Vec<&str> = packages.lines().filter_map(|l| l.strip_prefix("Package: ")).collect();
    assert_eq!(listed, ["libwbclient-dev", "libwbclient0"], "{packages}");
    let release = fs::read_to_string(dists.join("Release")).unwrap();
    assert!(release.contains("Codename: bookworm-updates\n") && release.contains("Valid-Until: "), "{release}");
    assert!(release.contains(" main/binary-amd64/Packages\n") && !release.contains("Packages.xz"), "{release}");

    // apt with the site's key: the mirror installs; with Debian's keyring it is refused.
    let apt = site.path("apt-site");
    let line = |key: &Path| {
        format!("deb [signed-by={}] copy:{}/debian/debian {SUITE} main\n", key.display(), site.mirror.display())
    };
    let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n\n\
Package: libbsd0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.11.7-2\n\n";
    let config = apt_config_with(&apt, &line(&site.path("site.pub.asc")), status);
    apt_installs(&apt, &config);
    let debian = site.path("apt-debian-key");
    let config = apt_config_with(&debian, &line(&fixture("debian-archive-keyring.gpg")), status);
    let update = apt_get(&config, &["update"]);
    let said = format!("{}{}", String::from_utf8_lossy(&update.stdout), String::from_utf8_lossy(&update.stderr));
    assert!(!update.status.success() || said.contains("NO_PUBKEY") || said.contains("not signed"), "{said}");
    assert!(said.contains("NO_PUBKEY") || said.contains("is not signed"), "{said}");
}

#[test]
fn apt_installs_through_airlock_serve_by_hash_included() {
    if Process::new("apt-get").arg("--version").output().is_err() {
        common::skip("apt-get is not installed");
        return;
    }
    let site = Site::new();
    site.import(&site.exported()).success();
    let options = airlock::serve::ServeOptions { mirror: site.mirror.clone(), listen: "127.0.0.1:0".parse().unwrap() };
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = requests.clone();
    let server = airlock::serve::bind(&options).unwrap().spawn(move |line| log.lock().unwrap().push(line.to_string()));
    let apt = site.path("apt-http");
    let config = apt_config(&apt, &format!("http://{}/debian/debian", server.local_addr()));
    apt_installs(&apt, &config);
    let requests = requests.lock().unwrap();
    assert!(requests.iter().any(|l| l.contains("/main/binary-amd64/by-hash/SHA256/")), "{requests:?}");
}

/// `apt-get update` with no error or warning, then `install --download-only`
/// of libwbclient-dev, whose two .deb files land in apt's cache as Debian made them.
fn apt_installs(apt: &Path, config: &Path) {
    let update = apt_get(config, &["update"]);
    let said = format!("{}{}", String::from_utf8_lossy(&update.stdout), String::from_utf8_lossy(&update.stderr));
    assert!(update.status.success(), "{said}");
    assert!(!said.contains("W:") && !said.contains("E:") && !said.contains("Err:"), "{said}");
    let install = apt_get(config, &["install", "--download-only", "--yes", "libwbclient-dev"]);
    let said = format!("{}{}", String::from_utf8_lossy(&install.stdout), String::from_utf8_lossy(&install.stderr));
    assert!(install.status.success(), "{said}");
    let mut fetched: Vec<Vec<u8>> = fs::read_dir(apt.join("cache/archives"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .map(|p| fs::read(p).unwrap())
        .collect();
    fetched.sort();
    let mut expected = vec![archive_file(DEV), archive_file(LIB)];
    expected.sort();
    assert!(fetched == expected, "apt fetched other files: {said}");
}

#[test]
fn the_config_file_names_the_same_inputs() {
    let site = Site::new();
    let base = start_archive(BTreeMap::new());
    fs::write(site.path("pkgs.txt"), "libwbclient0\n").unwrap();
    fs::write(site.path("base.txt"), BASE).unwrap();
    let keyring = fixture("debian-archive-keyring.gpg");
    let config = format!(
        "[debian]\npackages = [\"pkgs.txt\"]\narchive = \"{base}\"\nsuites = [\"{SUITE}\"]\ncomponents = [\"main\"]\n\
         architecture = \"amd64\"\nkeyring = \"{}\"\nbase = \"base.txt\"\n",
        keyring.display()
    );
    fs::write(site.path("airlock.toml"), config).unwrap();
    let out = site.path("config.airlock");
    airlock()
        .args(["export", "--quiet", "--config"])
        .arg(site.path("airlock.toml"))
        .arg("--cache")
        .arg(site.path("cache"))
        .arg("--key")
        .arg(&site.key_file)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let names: Vec<String> = hostile::open(&out).manifest.entries.iter().map(|e| e.name.clone()).collect();
    assert!(names.contains(&"libwbclient0".to_owned()) && !names.contains(&"libwbclient-dev".to_owned()), "{names:?}");
}

/// Opt-in (`AIRLOCK_LIVE=1 cargo test --test debian -- --ignored`): hello,
/// tree and htop from bookworm through the archive this host's apt uses,
/// checked against the installed debian-archive-keyring, imported, and
/// fetched by apt from the mirror.
#[test]
#[ignore = "reaches Debian's archive: AIRLOCK_LIVE=1 cargo test --test debian -- --ignored"]
fn live_bookworm_export_verify_import_and_apt() {
    assert_eq!(std::env::var("AIRLOCK_LIVE").as_deref(), Ok("1"), "set AIRLOCK_LIVE=1 to let this test reach Debian");
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    assert!(keyring.is_file(), "install debian-archive-keyring");
    let site = Site::with_policy("[debian]\nkeyring = \"host-keyring.gpg\"\n");
    fs::copy(keyring, site.path("host-keyring.gpg")).unwrap();
    fs::write(site.path("pkgs.txt"), "hello\ntree\nhtop\n").unwrap();
    let bundle = site.path("live.airlock");
    let out = airlock()
        .args(["export", "--json", "--debian-packages"])
        .arg(site.path("pkgs.txt"))
        .args(["--debian-suite", "bookworm", "--cache"])
        .arg(site.path("cache"))
        .arg("--key")
        .arg(&site.key_file)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    let report: serde_json::Value = common::json_report(&out.get_output().stdout);
    assert!(report["report"]["entries"].as_u64().unwrap() > 5, "{report:#}");
    airlock().args(["verify"]).arg(&bundle).arg("--policy").arg(&site.policy).assert().success();
    site.import(&bundle).success();
    let apt = site.path("apt");
    let sources =
        format!("deb [signed-by={}] copy:{}/debian/debian bookworm main\n", keyring.display(), site.mirror.display());
    let config = apt_config_with(&apt, &sources, "");
    let update = apt_get(&config, &["update"]);
    let said = format!("{}{}", String::from_utf8_lossy(&update.stdout), String::from_utf8_lossy(&update.stderr));
    assert!(update.status.success() && !said.contains("W:") && !said.contains("E:"), "{said}");
    let get =
        apt_get(&config, &["install", "--download-only", "--no-install-recommends", "-y", "hello", "tree", "htop"]);
    let said = format!("{}{}", String::from_utf8_lossy(&get.stdout), String::from_utf8_lossy(&get.stderr));
    assert!(get.status.success(), "{said}");
    for name in ["hello", "tree", "htop"] {
        let fetched = apt
            .join("cache/archives")
            .read_dir()
            .unwrap()
            .any(|f| f.unwrap().file_name().to_string_lossy().starts_with(&format!("{name}_")));
        assert!(fetched, "apt did not fetch {name}: {said}");
    }
}
