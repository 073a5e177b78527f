//! Hugging Face models end to end: a fake hub on loopback in the hub's wire
//! format (the revision and tree APIs, the tree paginated by `Link`, resolve
//! downloads with LFS files redirected to a CDN path) serving a small model
//! this test generates (config.json, tokenizer.json, a 3 MiB safetensors
//! file as LFS, .gitattributes); `airlock export --hf-model`, `airlock
//! import`, and the real clients: `huggingface_hub` loads the model from the
//! imported cache with `HF_HUB_OFFLINE=1` and downloads it from `airlock
//! serve` with `HF_ENDPOINT`; `model-signing` signs the model on the hub
//! side and verifies the imported snapshot, and airlock verifies the same
//! signature under a policy pinning the key. Then the hostile cases, each
//! refused with one line and the mirror unchanged.
//!
//! The Python tools come from the venv `.ci/run` makes (`target/pytools`,
//! or `AIRLOCK_PYTOOLS`); without it the tests that need them skip.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{airlock, keygen, one_line, skip, snapshot};
use serde_json::json;
use sha1::Digest as _;

const REPO: &str = "org/tiny";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn git_blob(data: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

/// The model's files: small JSON files in git, a safetensors file in LFS.
fn model_files() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("config.json".into(), br#"{"model_type":"tiny","hidden_size":64}"#.to_vec());
    files
        .insert("tokenizer.json".into(), br#"{"version":"1.0","model":{"type":"WordLevel","vocab":{"a":0}}}"#.to_vec());
    files.insert(".gitattributes".into(), b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n".to_vec());
    let n: u32 = 3 << 20;
    let header = format!(r#"{{"w":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}}}}"#);
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header.as_bytes());
    st.extend((0..n).map(|i: u32| (i * 7 % 251) as u8));
    files.insert("model.safetensors".into(), st);
    files
}

fn is_lfs(path: &str) -> bool {
    path.ends_with(".safetensors")
}

/// What the fake hub serves, and what it saw.
#[derive(Default)]
struct HubState {
    files: BTreeMap<String, Vec<u8>>,
    /// The commit the repository is at.
    commit: String,
    /// The commit the revision API answers (normally [`COMMIT`]).
    answer_commit: Option<String>,
    /// Bytes served instead of a file's, the tree still listing the original.
    tamper: Option<(String, Vec<u8>)>,
    /// (path, Authorization header) of every request.
    seen: Vec<(String, Option<String>)>,
}

struct Hub {
    base: String,
    state: Arc<Mutex<HubState>>,
}

impl Hub {
    fn start(files: BTreeMap<String, Vec<u8>>) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(HubState { files, commit: COMMIT.to_owned(), ..HubState::default() }));
        let (thread_state, thread_base) = (state.clone(), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, base) = (thread_state.clone(), thread_base.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &state, &base);
                });
            }
        });
        Hub { base, state }
    }

    fn auth_of(&self, prefix: &str) -> Vec<Option<String>> {
        let state = self.state.lock().unwrap();
        state.seen.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(_, a)| a.clone()).collect()
    }
}

fn tree_item(path: &str, data: &[u8]) -> serde_json::Value {
    if is_lfs(path) {
        let pointer =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n", sha256(data), data.len());
        json!({"type": "file", "oid": git_blob(pointer.as_bytes()), "size": data.len(), "path": path,
               "lfs": {"oid": sha256(data), "size": data.len(), "pointerSize": pointer.len()}})
    } else {
        json!({"type": "file", "oid": git_blob(data), "size": data.len(), "path": path})
    }
}

fn serve(stream: TcpStream, state: &Mutex<HubState>, base: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut auth = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            auth = Some(value.trim().to_owned());
        }
    }
    let mut state = state.lock().unwrap();
    state.seen.push((target.clone(), auth));
    let real = state.commit.clone();
    let commit = state.answer_commit.clone().unwrap_or_else(|| real.clone());
    let api = format!("/api/models/{REPO}/");
    let resolve = format!("/{REPO}/resolve/{real}/");
    let (status, extra, body): (u16, String, Vec<u8>) =
        if let Some(rev) = target.strip_prefix(&format!("{api}revision/")) {
            let _ = rev;
            let siblings: Vec<_> = state.files.keys().map(|p| json!({"rfilename": p})).collect();
            (200, String::new(), serde_json::to_vec(&json!({"id": REPO, "sha": commit, "siblings": siblings})).unwrap())
        } else if let Some(rest) = target.strip_prefix(&format!("{api}tree/{real}?recursive=true")) {
            // Two pages: the folder-less files first, then the rest, with a directory item.
            let items: Vec<_> = state.files.iter().map(|(p, d)| tree_item(p, d)).collect();
            let half = items.len() / 2;
            if rest.is_empty() {
                let next = format!("{base}{api}tree/{real}?recursive=true&cursor=2");
                (200, format!("Link: <{next}>; rel=\"next\"\r\n"), serde_json::to_vec(&items[..half]).unwrap())
            } else {
                let mut page = items[half..].to_vec();
                page.push(json!({"type": "directory", "oid": "f".repeat(40), "size": 0, "path": "sub"}));
                (200, String::new(), serde_json::to_vec(&page).unwrap())
            }
        } else if let Some(path) = target.strip_prefix(&resolve) {
            match state.files.get(path) {
                Some(data) if is_lfs(path) => (302, format!("Location: {base}/cdn/{}\r\n", sha256(data)), Vec::new()),
                Some(data) => {
                    let served = match &state.tamper {
                        Some((p, bytes)) if p == path => bytes.clone(),
                        _ => data.clone(),
                    };
                    (200, String::new(), served)
                }
                None => (404, String::new(), b"{\"error\":\"Entry not found\"}".to_vec()),
            }
        } else if let Some(sha) = target.strip_prefix("/cdn/") {
            let found = state.files.iter().find(|(_, d)| sha256(d) == sha).map(|(p, d)| (p.clone(), d.clone()));
            match found {
                Some((p, d)) => match &state.tamper {
                    Some((tp, bytes)) if *tp == p => (200, String::new(), bytes.clone()),
                    _ => (200, String::new(), d),
                },
                None => (404, String::new(), Vec::new()),
            }
        } else {
            (404, String::new(), b"{\"error\":\"Repository not found\"}".to_vec())
        };
    drop(state);
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )?;
    out.write_all(&body)?;
    out.flush()
}

/// The Python venv with `huggingface_hub` and `model-signing`, if there is one.
fn pytools() -> Option<PathBuf> {
    let dir = std::env::var_os("AIRLOCK_PYTOOLS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools"), PathBuf::from);
    let python = dir.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import huggingface_hub, model_signing, OpenSSL"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(dir)
}

fn python(tools: &Path, script: &str, envs: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(tools.join("bin/python"));
    cmd.args(["-c", script]).env_remove("HF_TOKEN").env("HF_HUB_DISABLE_TELEMETRY", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An ECDSA P-256 key pair for model-signing, in PEM.
fn signing_key(tools: &Path, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    signing_key_on(tools, dir, name, "SECP256R1")
}

/// An ECDSA key pair on `curve` (a `cryptography` curve class name), in PEM.
fn signing_key_on(tools: &Path, dir: &Path, name: &str, curve: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub")));
    let script = format!(
        "from cryptography.hazmat.primitives.asymmetric import ec\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = ec.generate_private_key(ec.{curve}())\n\
         open({:?}, 'wb').write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))\n\
         open({:?}, 'wb').write(k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))\n",
        private.display().to_string(),
        public.display().to_string(),
    );
    python(tools, &script, &[]);
    (private, public)
}

/// `model_signing sign key` over the files, returning model.sig's bytes.
fn model_sign(tools: &Path, dir: &Path, files: &BTreeMap<String, Vec<u8>>, key: &Path) -> Vec<u8> {
    model_sign_by(tools, dir, files, &["key".as_ref(), "--private_key".as_ref(), key.as_os_str()])
}

/// The model's files written into `model` (emptied first), for model-signing to sign.
fn model_folder(model: &Path, files: &BTreeMap<String, Vec<u8>>) -> PathBuf {
    let _ = fs::remove_dir_all(model);
    for (p, d) in files {
        let path = model.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, d).unwrap();
    }
    model.to_owned()
}

/// `model_signing sign METHOD ARGS...` over the files, returning model.sig's bytes.
fn model_sign_by(tools: &Path, dir: &Path, files: &BTreeMap<String, Vec<u8>>, method: &[&std::ffi::OsStr]) -> Vec<u8> {
    let model = model_folder(&dir.join("to-sign"), files);
    let out = Command::new(tools.join("bin/model_signing"))
        .arg("sign")
        .args(method)
        .arg(&model)
        .arg("--signature")
        .arg(model.join("model.sig"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fs::read(model.join("model.sig")).unwrap()
}

fn export(hub: &Hub, dir: &Path, key: &Path, out: &Path, model: &str) -> std::process::Output {
    export_in(hub, dir, key, out, model, None)
}

fn export_in(hub: &Hub, dir: &Path, key: &Path, out: &Path, model: &str, state: Option<&Path>) -> std::process::Output {
    let mut cmd = airlock();
    cmd.args(["export", "--quiet", "--hf-model", model, "--cache"])
        .arg(dir.join("cache"))
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .env("HF_ENDPOINT", &hub.base)
        .env("HF_TOKEN", "hf_secret")
        .env("HF_HOME", dir.join("no-hf-home"));
    if let Some(state) = state {
        cmd.arg("--state").arg(state);
    }
    cmd.output().unwrap()
}

fn policy(dir: &Path, public: &Path, extra: &str) -> PathBuf {
    let path = dir.join("policy.toml");
    let text = format!(
        "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"{}\"\n{extra}",
        public.file_name().unwrap().to_str().unwrap()
    );
    fs::write(&path, text).unwrap();
    path
}

fn import(bundle: &Path, policy: &Path, mirror: &Path) -> std::process::Output {
    airlock()
        .args(["import", "--quiet"])
        .arg(bundle)
        .arg("--policy")
        .arg(policy)
        .arg("--mirror")
        .arg(mirror)
        .output()
        .unwrap()
}

fn folder(mirror: &Path) -> PathBuf {
    mirror.join("huggingface/hub/models--org--tiny")
}

#[test]
fn a_model_crosses_into_the_hub_cache_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let files = model_files();
    let hub = Hub::start(files.clone());
    let bundle = root.join("model.airlock");
    let state = root.join("state");
    let out = export_in(&hub, root, &key, &bundle, REPO, Some(&state));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The token went to the hub's API and resolve routes, not to the CDN an LFS file redirected to.
    assert!(hub.auth_of("/api/").iter().all(|a| a.as_deref() == Some("Bearer hf_secret")));
    assert!(!hub.auth_of("/cdn/").is_empty());
    assert!(hub.auth_of("/cdn/").iter().all(Option::is_none), "the token followed a redirect");
    // Both tree pages were read.
    assert_eq!(hub.auth_of(&format!("/api/models/{REPO}/tree/")).len(), 2);

    let parts = common::hostile::open(&bundle);
    let entries: Vec<_> = parts.manifest.entries.iter().filter(|e| e.ecosystem == "huggingface").collect();
    assert_eq!(entries.len(), files.len());
    let head = entries.iter().find(|e| e.evidence.iter().any(|v| v.kind == "hf-files")).unwrap();
    assert!(
        head.missing.iter().any(|m| m.kind == "model-signature" && m.looked.ends_with("/model.sig")),
        "{:?}",
        head.missing
    );

    let mirror = root.join("mirror");
    let policy = policy(root, &public, "");
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let repo = folder(&mirror);
    assert_eq!(fs::read(repo.join("refs/main")).unwrap(), COMMIT.as_bytes(), "refs/main holds the commit, no newline");
    for (path, data) in &files {
        assert_eq!(&fs::read(repo.join("snapshots").join(COMMIT).join(path)).unwrap(), data, "{path}");
        let etag = if is_lfs(path) { sha256(data) } else { git_blob(data) };
        assert_eq!(&fs::read(repo.join("blobs").join(etag)).unwrap(), data, "{path}");
    }
    let tree: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join(format!("trees/{COMMIT}.json"))).unwrap()).unwrap();
    assert_eq!(tree["files"]["model.safetensors"]["lfs_sha256"], sha256(&files["model.safetensors"]));

    // The next week's bundle of the channel: main moved to a new commit.
    let newer = "9".repeat(40);
    let mut moved = files.clone();
    moved.insert("config.json".into(), br#"{"model_type":"tiny","hidden_size":128}"#.to_vec());
    {
        let mut state = hub.state.lock().unwrap();
        state.files = moved.clone();
        state.commit = newer.clone();
    }
    let next = root.join("next.airlock");
    let out = export_in(&hub, root, &key, &next, REPO, Some(&state));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = import(&next, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(repo.join("refs/main")).unwrap(), newer.as_bytes());
    assert_eq!(fs::read(repo.join("snapshots").join(&newer).join("config.json")).unwrap(), moved["config.json"]);
    assert!(!repo.join("snapshots").join(COMMIT).exists(), "the channel dropped the old commit");
    assert!(!repo.join(format!("trees/{COMMIT}.json")).exists());
    assert!(repo.join("blobs").join(sha256(&files["model.safetensors"])).exists(), "the shared blob stays");
    assert!(!repo.join("blobs").join(git_blob(&files["config.json"])).exists(), "the old config's blob went");
    {
        let mut state = hub.state.lock().unwrap();
        state.files = files.clone();
        state.commit = COMMIT.to_owned();
    }

    // A hub whose bytes disagree with its own tree: the export refuses, one line, no bundle.
    hub.state.lock().unwrap().tamper =
        Some(("config.json".into(), br#"{"model_type":"evil","hidden_size":64}"#.to_vec()));
    let bad = root.join("tampered.airlock");
    let out = export(&hub, &root.join("fresh"), &key, &bad, REPO);
    assert_eq!(out.status.code(), Some(2));
    let line = one_line(&out.stderr);
    assert!(line.contains("config.json") && line.contains("git blob id"), "{line}");
    assert!(!bad.exists());
    hub.state.lock().unwrap().tamper = Some(("model.safetensors".into(), vec![0u8; files["model.safetensors"].len()]));
    let out = export(&hub, &root.join("fresh2"), &key, &bad, REPO);
    assert!(one_line(&out.stderr).contains("LFS oid"), "{}", String::from_utf8_lossy(&out.stderr));
    hub.state.lock().unwrap().tamper = None;

    // A pinned commit the hub resolves to another: refused.
    hub.state.lock().unwrap().answer_commit = Some("f".repeat(40));
    let out = export(&hub, &root.join("fresh3"), &key, &bad, &format!("{REPO}@{COMMIT}"));
    assert!(one_line(&out.stderr).contains("another commit"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!bad.exists());
}

/// A signed bundle whose config.json is other bytes of the same size, its
/// BLAKE3 and SHA-256 (in the entry and in the hf-files listing) made to
/// match them, its git blob id (digest, etag, listing oid) left as the hub's:
/// what an exporter holding a trusted key could carry. `keep_git_sha1`
/// false drops the git-sha1 digest too.
fn forged_config(bundle: &Path, key: &Path, bytes: &[u8], keep_git_sha1: bool) -> Vec<u8> {
    use airlock::ecosystem::huggingface::listing::Listing;
    let parts = common::hostile::open(bundle);
    let mut manifest = parts.manifest;
    let mut blobs = parts.blobs;
    let blob = airlock::id::ContentId::of(bytes);
    let config = manifest.entries.decoded_mut().iter_mut().find(|e| e.path.as_str().ends_with("/config.json")).unwrap();
    let old = config.blob;
    assert_eq!(config.size, bytes.len() as u64, "the forged bytes keep the size");
    config.blob = blob;
    config.digests.insert("sha256".into(), airlock::manifest::Digest(hex::decode(sha256(bytes)).unwrap()));
    if !keep_git_sha1 {
        config.digests.remove("git-sha1");
    }
    let head =
        manifest.entries.decoded_mut().iter_mut().find(|e| e.evidence.iter().any(|v| v.kind == "hf-files")).unwrap();
    let evidence = head.evidence.iter_mut().find(|v| v.kind == "hf-files").unwrap();
    let mut listing = Listing::parse(&evidence.data).unwrap();
    listing.files.iter_mut().find(|f| f.path == "config.json").unwrap().sha256 = sha256(bytes);
    evidence.data = listing.to_bytes();
    manifest.blobs.iter_mut().find(|b| b.id == old).unwrap().id = blob;
    blobs.insert(blob, bytes.to_vec());
    let key = airlock::sign::SecretKey::load(key).unwrap();
    common::hostile::rebuild(&manifest, &blobs, &[&key], &[&key])
}

#[test]
fn a_file_that_is_not_its_git_blob_id_is_refused_offline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let files = model_files();
    let hub = Hub::start(files.clone());
    let bundle = root.join("model.airlock");
    let out = export(&hub, root, &key, &bundle, REPO);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Files outside LFS carry their git blob id as a git-sha1 digest; LFS files only their sha256.
    let parts = common::hostile::open(&bundle);
    for e in parts.manifest.entries.iter().filter(|e| e.ecosystem == "huggingface") {
        let path = e.path.as_str().rsplit_once(&format!("{COMMIT}/")).unwrap().1;
        let git_sha1 = e.digests.get("git-sha1").map(|d| hex::encode(&d.0));
        let expected = (!is_lfs(path)).then(|| git_blob(&files[path]));
        assert_eq!(git_sha1, expected, "{path}");
        assert_eq!(e.digests["sha256"].0, hex::decode(sha256(&files[path])).unwrap(), "{path}");
    }

    let policy = policy(root, &public, "");
    let mirror = root.join("mirror");
    let evil = br#"{"model_type":"tiny","hidden_size":65}"#;
    for (name, keep, expect) in [
        ("forged", true, "upstream git-sha1 digest does not match"),
        ("forged-without-git-sha1", false, "its etag attribute is neither its sha256 nor its git-sha1 digest"),
    ] {
        let forged = root.join(format!("{name}.airlock"));
        fs::write(&forged, forged_config(&bundle, &key, evil, keep)).unwrap();
        let verify = airlock().arg("verify").arg(&forged).arg("--policy").arg(&policy).output().unwrap();
        assert_eq!(verify.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&verify.stderr));
        assert!(one_line(&verify.stderr).contains(expect), "{name}: {}", String::from_utf8_lossy(&verify.stderr));
        let out = import(&forged, &policy, &mirror);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(expect) && line.contains(&format!("{name}.airlock")), "{name}: {line}");
        assert!(!mirror.exists(), "{name}: a refused import left a mirror");
    }

    // The bundle as exported imports, its cache blob named by the verified git blob id.
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = folder(&mirror).join("blobs").join(git_blob(&files["config.json"]));
    assert_eq!(fs::read(config).unwrap(), files["config.json"]);
}

/// Exports the (possibly changed) hub's model; imports under `policy`.
fn cross(hub: &Hub, root: &Path, key: &Path, name: &str) -> PathBuf {
    let bundle = root.join(format!("{name}.airlock"));
    let out = export(hub, &root.join(format!("cache-{name}")), key, &bundle, REPO);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    bundle
}

#[test]
#[allow(clippy::too_many_lines)]
fn signed_model_verifies_and_the_real_clients_load_it() {
    let Some(tools) = pytools() else {
        skip("no Python venv with huggingface_hub and model-signing (.ci/run makes target/pytools)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let (signer, signer_pub) = signing_key(&tools, root, "signer");
    let (other, _) = signing_key(&tools, root, "other");
    let mut files = model_files();
    let signature = model_sign(&tools, root, &files, &signer);
    files.insert("model.sig".into(), signature);
    let hub = Hub::start(files.clone());
    let bundle = cross(&hub, root, &key, "signed");

    fs::copy(&signer_pub, root.join("signer-key.pub")).unwrap();
    let rules = "[huggingface]\nrequire = [\"model-signature\"]\n[[huggingface.signers]]\nmodels = [\"org/*\"]\nkey = \"signer-key.pub\"\n";
    let policy = policy(root, &public, rules);
    let verify = airlock().args(["verify", "-v"]).arg(&bundle).arg("--policy").arg(&policy).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(report.contains("model signature by signer-key.pub verified over 3 files"), "{report}");
    let mirror = root.join("mirror");
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // huggingface_hub, offline, from the imported cache: the original bytes.
    let cache = mirror.join("huggingface/hub");
    let loaded = python(
        &tools,
        "import hashlib, os\nfrom huggingface_hub import snapshot_download\n\
         p = snapshot_download('org/tiny')\n\
         for n in sorted(os.listdir(p)):\n    print(n, hashlib.sha256(open(os.path.join(p, n), 'rb').read()).hexdigest())\n",
        &[("HF_HUB_CACHE", &cache), ("HF_HUB_OFFLINE", Path::new("1"))],
    );
    for (path, data) in &files {
        assert!(loaded.contains(&format!("{path} {}", sha256(data))), "{path} not loaded as exported: {loaded}");
    }
    // model-signing agrees, on the imported snapshot.
    let snapshot_dir = folder(&mirror).join("snapshots").join(COMMIT);
    let out = Command::new(tools.join("bin/model_signing"))
        .args(["verify", "key"])
        .arg(&snapshot_dir)
        .arg("--signature")
        .arg(snapshot_dir.join("model.sig"))
        .arg("--public_key")
        .arg(&signer_pub)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "model-signing: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // huggingface_hub against airlock serve, into a fresh cache.
    let server = airlock::serve::bind(&airlock::serve::ServeOptions {
        mirror: mirror.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
    })
    .unwrap()
    .spawn(|_| {});
    let endpoint = format!("http://{}/huggingface", server.local_addr());
    let fresh = root.join("client-cache");
    let got = python(
        &tools,
        "import hashlib, os\nfrom huggingface_hub import snapshot_download, hf_hub_download\n\
         p = snapshot_download('org/tiny')\n\
         for n in sorted(os.listdir(p)):\n    print(n, hashlib.sha256(open(os.path.join(p, n), 'rb').read()).hexdigest())\n\
         f = hf_hub_download('org/tiny', 'config.json', revision='main', cache_dir=os.environ['OTHER'])\n\
         print('single', hashlib.sha256(open(f, 'rb').read()).hexdigest())\n",
        &[("HF_HUB_CACHE", &fresh), ("HF_ENDPOINT", Path::new(&endpoint)), ("OTHER", &root.join("other-cache"))],
    );
    for (path, data) in &files {
        assert!(got.contains(&format!("{path} {}", sha256(data))), "{path} not served as exported: {got}");
    }
    assert!(got.contains(&format!("single {}", sha256(&files["config.json"]))), "{got}");
    // A range, as the client asks when it resumes.
    let addr = server.local_addr();
    let answer = get_raw(addr, &format!("/huggingface/{REPO}/resolve/main/model.safetensors"), "Range: bytes=8-15\r\n");
    // Header names are case-insensitive (hyper writes them in lower case).
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 206"), "{text}");
    assert!(text.contains(&format!("x-repo-commit: {COMMIT}")), "{text}");
    assert!(text.contains(&format!("x-linked-etag: \"{}\"", sha256(&files["model.safetensors"]))), "{text}");
    assert!(answer.ends_with(&files["model.safetensors"][8..16]));
    server.stop().unwrap();

    // Hostile: each refused with one line, exit 1, the mirror unchanged.
    let before = snapshot(&mirror);
    let refuse = |bundle: &Path, policy: &Path, expect: &str| {
        let out = import(bundle, policy, &mirror);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(expect), "{line}");
        assert_eq!(snapshot(&mirror), before, "the mirror changed");
    };
    // A file changed after signing (the hub's tree agrees with the new bytes).
    let mut changed = files.clone();
    changed.insert("config.json".into(), br#"{"model_type":"tiny","hidden_size":65}"#.to_vec());
    hub.state.lock().unwrap().files = changed;
    hub.state.lock().unwrap().commit = "1".repeat(40);
    let b = cross(&hub, root, &key, "changed");
    refuse(&b, &policy, "config.json is not the file its model signature lists");
    // A file added that the signature does not list.
    let mut added = files.clone();
    added.insert("extra.py".into(), b"import os\n".to_vec());
    hub.state.lock().unwrap().files = added;
    hub.state.lock().unwrap().commit = "2".repeat(40);
    let b = cross(&hub, root, &key, "added");
    refuse(&b, &policy, "does not list extra.py");
    // A signature by another key.
    let mut resigned = model_files();
    resigned.insert("model.sig".into(), model_sign(&tools, root, &resigned, &other));
    hub.state.lock().unwrap().files = resigned;
    hub.state.lock().unwrap().commit = "3".repeat(40);
    let b = cross(&hub, root, &key, "other");
    refuse(&b, &policy, "does not verify with a key");
}

/// The model-signing project's own keyless test vector
/// (fixtures/model-signing/v1.1.0-sigstore: a real Fulcio certificate for
/// stefanb@us.ibm.com, its Rekor entry and RFC 3161 timestamp), checked
/// offline against Sigstore's public-good trusted root as pinned.
fn keyless_files() -> BTreeMap<String, Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model-signing/v1.1.0-sigstore");
    // `ignore-me` is what the signer left out with --ignore-paths: not carried.
    ["signme-1", "signme-2", "model.sig"].iter().map(|n| ((*n).to_owned(), fs::read(dir.join(n)).unwrap())).collect()
}

const KEYLESS_SIGNER: &str = "identity = \"stefanb@us.ibm.com\"\nissuer = \"https://sigstore.verify.ibm.com/oauth2\"\n";

fn keyless_policy(root: &Path, public: &Path, signer: &str, pin_root: bool) -> PathBuf {
    let sigstore = if pin_root {
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model-signing/trusted_root.json"),
            root.join("trusted_root.json"),
        )
        .unwrap();
        "[sigstore]\ntrusted-root = \"trusted_root.json\"\n"
    } else {
        ""
    };
    let rules = format!(
        "{sigstore}[huggingface]\nrequire = [\"model-signature\"]\n[[huggingface.signers]]\nmodels = [\"org/*\"]\n{signer}"
    );
    policy(root, public, &rules)
}

#[test]
fn a_keyless_model_signature_verifies_offline_against_the_pinned_identity() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let files = keyless_files();
    let hub = Hub::start(files.clone());
    let bundle = cross(&hub, root, &key, "keyless");
    let policy = keyless_policy(root, &public, KEYLESS_SIGNER, true);

    let verify =
        common::airlock_offline().args(["verify", "-v"]).arg(&bundle).arg("--policy").arg(&policy).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(
        report.contains(
            "model signature by stefanb@us.ibm.com (issuer https://sigstore.verify.ibm.com/oauth2, Sigstore) verified over 2 files"
        ),
        "{report}"
    );
    let mirror = root.join("mirror");
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snapshot_dir = folder(&mirror).join("snapshots").join(COMMIT);
    assert_eq!(fs::read(snapshot_dir.join("signme-1")).unwrap(), files["signme-1"]);
    model_signing_keyless(root, &snapshot_dir, true);

    let before = snapshot(&mirror);
    let refuse = |bundle: &Path, policy: &Path, expect: &str| {
        let out = import(bundle, policy, &mirror);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(expect), "{line}");
        assert_eq!(snapshot(&mirror), before, "the mirror changed");
    };
    // Another identity, or the right one from another issuer.
    let other = keyless_policy(
        root,
        &public,
        "identity = \"someone@example.com\"\nissuer = \"https://sigstore.verify.ibm.com/oauth2\"\n",
        true,
    );
    refuse(
        &bundle,
        &other,
        "is by stefanb@us.ibm.com (issuer https://sigstore.verify.ibm.com/oauth2), not by a signer",
    );
    let issuer = keyless_policy(
        root,
        &public,
        "identity = \"stefanb@us.ibm.com\"\nissuer = \"https://accounts.google.com\"\n",
        true,
    );
    refuse(
        &bundle,
        &issuer,
        "not by a signer [[huggingface.signers]] names for it: stefanb@us.ibm.com (issuer https://accounts.google.com)",
    );
    // No Sigstore root pinned: nothing to check a certificate against.
    let unpinned = keyless_policy(root, &public, KEYLESS_SIGNER, false);
    refuse(&bundle, &unpinned, "pins no [sigstore] trusted-root");
    // (Each policy above was written over the same file: the pinned one again.)
    let policy = keyless_policy(root, &public, KEYLESS_SIGNER, true);
    // A file changed after signing (the hub's tree agrees with the new bytes).
    let mut changed = files.clone();
    changed.insert("signme-2".into(), b"changed\n".to_vec());
    hub.state.lock().unwrap().files = changed;
    hub.state.lock().unwrap().commit = "4".repeat(40);
    let b = cross(&hub, root, &key, "keyless-changed");
    refuse(&b, &policy, "signme-2 is not the file its model signature lists");
    // The statement edited to list the new file: its signature no longer holds.
    let sig: serde_json::Value = serde_json::from_slice(&files["model.sig"]).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut statement: serde_json::Value =
        serde_json::from_slice(&b64.decode(sig["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()).unwrap();
    statement["predicate"]["resources"][1]["digest"] = json!(sha256(b"changed\n"));
    // ...and its subject recomputed, so the statement is consistent and only the signature can tell.
    let mut subject = sha2::Sha256::new();
    for r in statement["predicate"]["resources"].as_array().unwrap() {
        subject.update(hex::decode(r["digest"].as_str().unwrap()).unwrap());
    }
    statement["subject"][0]["digest"]["sha256"] = json!(hex::encode(subject.finalize()));
    let mut forged = sig.clone();
    forged["dsseEnvelope"]["payload"] = json!(b64.encode(serde_json::to_vec(&statement).unwrap()));
    let mut refiled = files.clone();
    refiled.insert("signme-2".into(), b"changed\n".to_vec());
    refiled.insert("model.sig".into(), serde_json::to_vec(&forged).unwrap());
    hub.state.lock().unwrap().files = refiled;
    hub.state.lock().unwrap().commit = "5".repeat(40);
    let b = cross(&hub, root, &key, "keyless-forged");
    refuse(&b, &policy, "does not verify against the pinned Sigstore root");
    // model-signing agrees: the forged folder fails its check too.
    let forged_dir = root.join("forged-model");
    fs::create_dir(&forged_dir).unwrap();
    for (name, data) in &hub.state.lock().unwrap().files {
        fs::write(forged_dir.join(name), data).unwrap();
    }
    model_signing_keyless(root, &forged_dir, false);
}

/// `model_signing verify sigstore` on `model` (its model.sig), offline with
/// the same pinned root, must succeed or fail as `accept` says.
fn model_signing_keyless(root: &Path, model: &Path, accept: bool) {
    let Some(tools) = pytools() else {
        skip("no Python venv with model-signing (.ci/run makes target/pytools): its keyless verdict not compared");
        return;
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model-signing");
    let read = |n: &str| serde_json::from_slice::<serde_json::Value>(&fs::read(fixtures.join(n)).unwrap()).unwrap();
    let config = json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": read("trusted_root.json"),
        "signingConfig": read("signing_config.json"),
    });
    let config_path = root.join("trust-config.json");
    fs::write(&config_path, config.to_string()).unwrap();
    let out = Command::new(tools.join("bin/model_signing"))
        .args(["verify", "sigstore", "--identity", "stefanb@us.ibm.com"])
        .args(["--identity_provider", "https://sigstore.verify.ibm.com/oauth2", "--trust_config"])
        .arg(&config_path)
        .arg("--signature")
        .arg(model.join("model.sig"))
        .arg(model)
        .output()
        .unwrap();
    assert_eq!(
        out.status.success(),
        accept,
        "model-signing on {}: {}{}",
        model.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority, an intermediate and a code-signing certificate
/// (P-384) it issued, made with Python's `cryptography` in `dir`: ca.pem,
/// intermediate.pem, signer.pem, signer.key; and other-ca.pem, unrelated.
fn certificate_chain(tools: &Path, dir: &Path) {
    let script = format!(
        "import datetime\n\
         from cryptography import x509\n\
         from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID\n\
         from cryptography.hazmat.primitives import hashes, serialization as s\n\
         from cryptography.hazmat.primitives.asymmetric import ec\n\
         d = {dir:?}\n\
         now = datetime.datetime.now(datetime.timezone.utc)\n\
         def name(n): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n)])\n\
         def cert(subject, key, issuer, issuer_key, ca):\n\
         \x20   b = x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))\n\
         \x20   b = b.public_key(key.public_key()).serial_number(x509.random_serial_number())\n\
         \x20   b = b.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))\n\
         \x20   b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)\n\
         \x20   b = b.add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)\n\
         \x20   if not ca: b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)\n\
         \x20   return b.sign(issuer_key, hashes.SHA256())\n\
         def pem(path, c): open(d + '/' + path, 'wb').write(c.public_bytes(s.Encoding.PEM))\n\
         root = ec.generate_private_key(ec.SECP256R1())\n\
         pem('ca.pem', cert('Site Model Root CA', root, 'Site Model Root CA', root, True))\n\
         mid = ec.generate_private_key(ec.SECP256R1())\n\
         pem('intermediate.pem', cert('Site Model Signing CA', mid, 'Site Model Root CA', root, True))\n\
         leaf = ec.generate_private_key(ec.SECP384R1())\n\
         pem('signer.pem', cert('release-signer', leaf, 'Site Model Signing CA', mid, False))\n\
         open(d + '/signer.key', 'wb').write(leaf.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))\n\
         other = ec.generate_private_key(ec.SECP256R1())\n\
         pem('other-ca.pem', cert('Other Root CA', other, 'Other Root CA', other, True))\n",
        dir = dir.display().to_string()
    );
    python(tools, &script, &[]);
}

#[test]
fn a_model_signed_by_certificate_verifies_against_the_pinned_authority() {
    let Some(tools) = pytools() else {
        skip("no Python venv with model-signing (.ci/run makes target/pytools): the certificate method is not tried");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    certificate_chain(&tools, root);
    let mut files = model_files();
    let (signer, chain) = (root.join("signer.key"), root.join("intermediate.pem"));
    let method = ["certificate".as_ref(), "--private_key".as_ref(), signer.as_os_str()];
    let signing = [root.join("signer.pem"), chain];
    let args: Vec<&std::ffi::OsStr> = method
        .into_iter()
        .chain(["--signing_certificate".as_ref(), signing[0].as_os_str()])
        .chain(["--certificate_chain".as_ref(), signing[1].as_os_str()])
        .collect();
    files.insert("model.sig".into(), model_sign_by(&tools, root, &files, &args));
    let hub = Hub::start(files.clone());
    let bundle = cross(&hub, root, &key, "certificate");
    let signer_rule = |ca: &str| {
        format!(
            "[huggingface]\nrequire = [\"model-signature\"]\n[[huggingface.signers]]\nmodels = [\"org/*\"]\ncertificate-chain = \"{ca}\"\n"
        )
    };
    let pinned = policy(root, &public, &signer_rule("ca.pem"));
    let verify =
        common::airlock_offline().args(["verify", "-v"]).arg(&bundle).arg("--policy").arg(&pinned).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(
        report.contains("model signature by certificate CN=release-signer of ca.pem verified over 3 files"),
        "{report}"
    );
    let mirror = root.join("mirror");
    let out = import(&bundle, &pinned, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // model-signing agrees, on the imported snapshot.
    let snapshot_dir = folder(&mirror).join("snapshots").join(COMMIT);
    let out = Command::new(tools.join("bin/model_signing"))
        .args(["verify", "certificate"])
        .arg(&snapshot_dir)
        .arg("--signature")
        .arg(snapshot_dir.join("model.sig"))
        .arg("--certificate_chain")
        .arg(root.join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "model-signing: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Pinned to another authority: refused, one line, the mirror unchanged.
    let before = snapshot(&mirror);
    let other = policy(root, &public, &signer_rule("other-ca.pem"));
    let out = import(&bundle, &other, &mirror);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let line = one_line(&out.stderr);
    assert!(line.contains("its certificate does not chain to other-ca.pem (UnknownIssuer)"), "{line}");
    assert_eq!(snapshot(&mirror), before, "the mirror changed");
}

#[test]
fn p384_and_p521_model_signing_keys_are_checked_with_their_curves_hash() {
    let Some(tools) = pytools() else {
        skip("no Python venv with model-signing (.ci/run makes target/pytools): P-384 and P-521 keys are not tried");
        return;
    };
    for (name, curve) in [("p384", "SECP384R1"), ("p521", "SECP521R1")] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (key, public) = keygen(root, "op");
        let (signer, signer_pub) = signing_key_on(&tools, root, name, curve);
        let (_, other_pub) = signing_key_on(&tools, root, &format!("{name}-other"), curve);
        let mut files = model_files();
        files.insert("model.sig".into(), model_sign(&tools, root, &files, &signer));
        let hub = Hub::start(files);
        let bundle = cross(&hub, root, &key, name);
        let rule = |file: &Path| {
            format!(
                "[huggingface]\nrequire = [\"model-signature\"]\n[[huggingface.signers]]\nmodels = [\"org/*\"]\nkey = \"{}\"\n",
                file.file_name().unwrap().to_str().unwrap()
            )
        };
        let pinned = policy(root, &public, &rule(&signer_pub));
        let out = airlock().args(["verify", "-v"]).arg(&bundle).arg("--policy").arg(&pinned).output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {report}{}", String::from_utf8_lossy(&out.stderr));
        assert!(report.contains(&format!("model signature by {name}.pub verified over 3 files")), "{report}");
        let other = policy(root, &public, &rule(&other_pub));
        let out = airlock().args(["verify"]).arg(&bundle).arg("--policy").arg(&other).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(
            line.contains(&format!(
                "does not verify with a key [[huggingface.signers]] pins for it ({name}-other.pub)"
            )),
            "{line}"
        );
    }
}

/// GET `path` from `addr` with the `headers` lines, the whole answer (head and body).
fn get_raw(addr: std::net::SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

/// [`get_raw`] without extra headers, as text.
fn get_text(addr: std::net::SocketAddr, path: &str) -> String {
    String::from_utf8_lossy(&get_raw(addr, path, "")).into_owned()
}

/// A revision with a slash (a pull request's `refs/pr/1`) crosses and is
/// served as the hub client asks for it: encoded as one segment.
#[test]
fn a_revision_with_a_slash_is_served_as_the_client_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let files = model_files();
    let hub = Hub::start(files.clone());
    let bundle = root.join("pr.airlock");
    let out = export(&hub, &root.join("cache"), &key, &bundle, &format!("{REPO}@refs/pr/1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mirror = root.join("mirror");
    let out = import(&bundle, &policy(root, &public, ""), &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(folder(&mirror).join("refs/refs/pr/1")).unwrap(), COMMIT.as_bytes());

    let server = airlock::serve::bind(&airlock::serve::ServeOptions {
        mirror: mirror.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
    })
    .unwrap()
    .spawn(|_| {});
    let addr = server.local_addr();
    let info = get_text(addr, &format!("/huggingface/api/models/{REPO}/revision/refs%2Fpr%2F1"));
    assert!(info.starts_with("HTTP/1.1 200") && info.contains(&format!("\"sha\":\"{COMMIT}\"")), "{info}");
    let file = get_text(addr, &format!("/huggingface/{REPO}/resolve/refs%2Fpr%2F1/config.json"));
    assert!(file.starts_with("HTTP/1.1 200"), "{file}");
    assert!(file.to_ascii_lowercase().contains(&format!("x-repo-commit: {COMMIT}")), "{file}");
    assert!(file.ends_with(std::str::from_utf8(&files["config.json"]).unwrap()), "{file}");
    // A resumed download: If-Range names the tag the hub route gave, so the range is kept.
    let tag = file.lines().find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: "))).unwrap().trim();
    let ranged = |condition: &str| {
        let path = format!("/huggingface/{REPO}/resolve/refs%2Fpr%2F1/config.json");
        String::from_utf8_lossy(&get_raw(addr, &path, &format!("Range: bytes=0-1\r\nIf-Range: {condition}\r\n")))
            .into_owned()
    };
    assert!(ranged(tag).starts_with("HTTP/1.1 206"), "{}", ranged(tag));
    assert!(ranged("\"another\"").starts_with("HTTP/1.1 200"));
    // Unencoded, the slashes are path separators: no such revision.
    let unencoded = get_text(addr, &format!("/huggingface/{REPO}/resolve/refs/pr/1/config.json"));
    assert!(unencoded.starts_with("HTTP/1.1 404"), "{unencoded}");
    // A revision that steps out is refused as any other name.
    let escape = get_text(addr, &format!("/huggingface/{REPO}/resolve/..%2F..%2Fx/config.json"));
    assert!(escape.starts_with("HTTP/1.1 400"), "{escape}");

    // The hub's own client, where it is installed.
    if let Some(tools) = pytools() {
        let endpoint = format!("http://{addr}/huggingface");
        let got = python(
            &tools,
            "import hashlib\nfrom huggingface_hub import hf_hub_download\n\
             f = hf_hub_download('org/tiny', 'config.json', revision='refs/pr/1')\n\
             print('got', hashlib.sha256(open(f, 'rb').read()).hexdigest())\n",
            &[("HF_HUB_CACHE", &root.join("client")), ("HF_ENDPOINT", Path::new(&endpoint))],
        );
        assert!(got.contains(&format!("got {}", sha256(&files["config.json"]))), "{got}");
    } else {
        skip(
            "no Python venv with huggingface_hub (.ci/run makes target/pytools): the client's own request is not tried",
        );
    }
    server.stop().unwrap();
}

/// model-signing's own Python API (its CLI has no flag for it) signing the
/// files with `key`, hashing them in shards of `shard` bytes.
fn model_sign_shards(tools: &Path, dir: &Path, files: &BTreeMap<String, Vec<u8>>, key: &Path, shard: u64) -> Vec<u8> {
    let model = model_folder(&dir.join("to-sign-shards"), files);
    let signature = dir.join("shards.sig");
    let script = format!(
        "from model_signing import signing, hashing\n\
         hashed = hashing.Config().use_shard_serialization(shard_size={shard})\n\
         signing.Config().use_elliptic_key_signer(private_key={:?}).set_hashing_config(hashed).sign({:?}, {:?})\n",
        key.display().to_string(),
        model.display().to_string(),
        signature.display().to_string(),
    );
    python(tools, &script, &[]);
    fs::read(signature).unwrap()
}

#[test]
#[allow(clippy::too_many_lines)]
fn a_model_signed_in_shards_verifies_each_shard_against_the_bytes() {
    let Some(tools) = pytools() else {
        skip("no Python venv with huggingface_hub and model-signing (.ci/run makes target/pytools)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (key, public) = keygen(root, "op");
    let (signer, signer_pub) = signing_key(&tools, root, "signer");
    let mut files = model_files();
    // 1 MiB shards: the 3 MiB safetensors file is four, the small files one each.
    let signature = model_sign_shards(&tools, root, &files, &signer, 1 << 20);
    files.insert("model.sig".into(), signature);
    let hub = Hub::start(files.clone());
    let bundle = cross(&hub, root, &key, "shards");
    let parts = common::hostile::open(&bundle);
    let big = parts.manifest.entries.iter().find(|e| e.path.as_str().ends_with("/model.safetensors")).unwrap();
    let shards = &big.digests["sha256-shards"].0;
    assert_eq!(shards.len(), 8 + 4 * 32, "the shard size and four shard digests");

    fs::copy(&signer_pub, root.join("signer-key.pub")).unwrap();
    let rules = "[huggingface]\nrequire = [\"model-signature\"]\n[[huggingface.signers]]\nmodels = [\"org/*\"]\nkey = \"signer-key.pub\"\n";
    let policy = policy(root, &public, rules);
    let verify = airlock().args(["verify", "-v"]).arg(&bundle).arg("--policy").arg(&policy).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(report.contains("model signature by signer-key.pub verified over 6 shards of 1048576 bytes"), "{report}");
    let mirror = root.join("mirror");
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // model-signing agrees, on the imported snapshot, through its API (its CLI hashes by
    // files): shards of the same size; the snapshot's files are links into blobs/.
    let snapshot_dir = folder(&mirror).join("snapshots").join(COMMIT);
    let script = format!(
        "from model_signing import verifying, hashing\n\
         v = verifying.Config().use_elliptic_key_verifier(public_key={:?})\n\
         v.set_hashing_config(hashing.Config().use_shard_serialization(shard_size={}, allow_symlinks=True).set_ignored_paths(paths=['model.sig']))\n\
         v.verify({:?}, {:?})\nprint('verified')\n",
        signer_pub.display().to_string(),
        1 << 20,
        snapshot_dir.display().to_string(),
        snapshot_dir.join("model.sig").display().to_string(),
    );
    assert!(python(&tools, &script, &[]).contains("verified"));

    // Re-signed by the trusted exporter key: shard digests that are not the bytes' are refused,
    // whether the listing and the entry agree on them (checked against the bytes as they stream)
    // or not (checked against each other); the mirror is unchanged.
    // Under a policy that names no model signer, so the bytes' own check is what refuses;
    // into a new mirror (the same channel and sequence again would be refused as a fork).
    let op = airlock::sign::SecretKey::load(&key).unwrap();
    let policy = self::policy(root, &public, "");
    for (what, entry_too, expect) in [
        ("both", true, "upstream sha256-shards digest does not match"),
        ("the listing only", false, "shard digests are not the ones its listing states"),
    ] {
        use airlock::ecosystem::huggingface::listing::Listing;
        let mut manifest = parts.manifest.clone();
        let head = manifest
            .entries
            .decoded_mut()
            .iter_mut()
            .find(|e| e.evidence.iter().any(|v| v.kind == "hf-files"))
            .unwrap();
        let evidence = head.evidence.iter_mut().find(|v| v.kind == "hf-files").unwrap();
        let mut listing = Listing::parse(&evidence.data).unwrap();
        let file = listing.files.iter_mut().find(|f| f.path == "model.safetensors").unwrap();
        let listed = file.shards.as_mut().unwrap();
        listed.sha256[2] = "0".repeat(64);
        let forged = listed.digest();
        evidence.data = listing.to_bytes();
        if entry_too {
            let big = manifest
                .entries
                .decoded_mut()
                .iter_mut()
                .find(|e| e.path.as_str().ends_with("/model.safetensors"))
                .unwrap();
            big.digests.insert("sha256-shards".into(), airlock::manifest::Digest(forged));
        }
        let path = root.join("forged.airlock");
        fs::write(&path, common::hostile::rebuild(&manifest, &parts.blobs, &[&op], &[&op])).unwrap();
        let fresh = root.join(format!("fresh-{entry_too}"));
        let out = import(&path, &policy, &fresh);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(one_line(&out.stderr).contains(expect), "{what}: {}", one_line(&out.stderr));
        assert!(!fresh.join("huggingface").exists(), "{what}: something was published");
    }
}
