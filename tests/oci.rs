//! Container images end to end: Debian's `docker-registry` (distribution
//! 2.8) on loopback as the upstream, seeded with `skopeo` from OCI layouts
//! this test builds (a two-platform index and a single-platform image
//! sharing a layer, and a cosign `.sig` written from cosign's
//! specification); `airlock export --oci-images`, `airlock import` under a
//! policy pinning the cosign key, and `skopeo copy oci:MIRROR/oci:REF` as the
//! real client, whose output is compared with the originals. Then hostile
//! bundles: each refused with one line, the mirror unchanged.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock::sign::SecretKey;
use base64::Engine as _;
use common::{airlock, hostile, keygen, one_line, skip, snapshot};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use serde_json::json;
use sha2::Digest as _;

fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Whether docker-registry and skopeo are here; skipped visibly if not.
fn registry_tools() -> bool {
    let here = have("docker-registry") && have("skopeo");
    if !here {
        skip("docker-registry and skopeo are not installed (apt-get install docker-registry skopeo)");
    }
    here
}

/// A `docker-registry` on a free loopback port, killed on drop.
struct Upstream {
    child: Child,
    host: String,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Upstream {
    start_registry_with(dir, "")
}

/// A `docker-registry` with `extra` added to its configuration (an `auth:` section).
fn start_registry_with(dir: &Path, extra: &str) -> Upstream {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("127.0.0.1:{port}");
    let config = dir.join("registry.yml");
    let storage = dir.join("registry-data");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n{extra}",
            storage.display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let upstream = Upstream { child, host };
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://{}/v2/", upstream.host);
    while http().get(&url).call().is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    upstream
}

/// An OCI layout being built: blobs by digest, and its index.json.
struct Layout {
    dir: PathBuf,
    refs: Vec<serde_json::Value>,
}

impl Layout {
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir, refs: Vec::new() }
    }

    /// Stores `data`, returning its descriptor.
    fn blob(&self, media: &str, data: &[u8]) -> serde_json::Value {
        fs::write(self.dir.join("blobs/sha256").join(sha(data)), data).unwrap();
        json!({ "mediaType": media, "digest": format!("sha256:{}", sha(data)), "size": data.len() })
    }

    fn tag(&mut self, mut descriptor: serde_json::Value, name: &str) {
        descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": name });
        self.refs.push(descriptor);
        let index = json!({ "schemaVersion": 2, "manifests": self.refs });
        fs::write(self.dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, data).unwrap();
    builder.into_inner().unwrap()
}

/// A one-layer linux/amd64 image holding the file `name`, pushed to the
/// registry `host` as `reference` (`team/tool:1.0`); its manifest.
fn upstream_image(layout: &mut Layout, host: &str, reference: &str, name: &str, content: &[u8]) -> Vec<u8> {
    let tag = reference.replace(['/', ':'], "-");
    let (descriptor, manifest) = image(layout, "amd64", &[&tar_of(name, content)]);
    layout.tag(descriptor, &tag);
    push(layout, &tag, &format!("{host}/{reference}"));
    manifest
}

/// An image manifest for `arch` over `layers`.
fn image(layout: &Layout, arch: &str, layers: &[&[u8]]) -> (serde_json::Value, Vec<u8>) {
    let diff_ids: Vec<String> = layers.iter().map(|l| format!("sha256:{}", sha(l))).collect();
    let config = json!({ "architecture": arch, "os": "linux", "rootfs": { "type": "layers", "diff_ids": diff_ids } });
    let config = layout.blob(CONFIG, &serde_json::to_vec(&config).unwrap());
    let layers: Vec<_> = layers.iter().map(|l| layout.blob(LAYER, l)).collect();
    let manifest = json!({ "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    (layout.blob(MANIFEST, &bytes), bytes)
}

/// cosign's `.sig` for `repository@sha256:digest`: the simple-signing
/// payload, signed (ECDSA P-256, DER, base64) in the layer's annotation.
/// Returns (manifest, config, payload).
fn cosign_sig(layout: &Layout, key: &SigningKey, repository: &str, digest: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let payload = simple_signing(repository, digest);
    let signature: Signature = key.sign(&payload);
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let annotations = json!({ "dev.cosignproject.cosign/signature": encoded });
    let (manifest, config) = one_layer_manifest(layout, SIMPLE_SIGNING, &payload, annotations);
    (manifest, config, payload)
}

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";

/// cosign's simple-signing payload for `repository@sha256:digest`.
fn simple_signing(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": format!("sha256:{digest}") },
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap()
}

/// A manifest as cosign writes `.sig` and `.att`: one layer of `media`
/// holding `data` with `annotations`, and a config naming it. Stored in
/// `layout`; returns (manifest, config).
fn one_layer_manifest(layout: &Layout, media: &str, data: &[u8], annotations: serde_json::Value) -> (Vec<u8>, Vec<u8>) {
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha(data))] }
    }))
    .unwrap();
    let config_d = layout.blob(CONFIG, &config);
    let mut layer = layout.blob(media, data);
    layer["annotations"] = annotations;
    let manifest = serde_json::to_vec(
        &json!({ "schemaVersion": 2, "mediaType": MANIFEST, "config": config_d, "layers": [layer] }),
    )
    .unwrap();
    layout.blob(MANIFEST, &manifest);
    (manifest, config)
}

/// cosign's `.att` for the image `digest` (as `cosign attest --key`
/// writes it): one layer, a DSSE envelope of an in-toto statement whose
/// subject is the digest, signed (ECDSA P-256, DER) over the DSSE
/// pre-authentication encoding. Returns (manifest, config, envelope).
fn cosign_att(layout: &Layout, key: &SigningKey, repository: &str, digest: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{ "name": repository, "digest": { "sha256": digest } }],
        "predicate": { "builder": { "id": "https://ci.example/builder" }, "buildType": "https://ci.example/build" }
    }))
    .unwrap();
    let kind = "application/vnd.in-toto+json";
    let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), statement.len()).into_bytes();
    pae.extend_from_slice(&statement);
    let signature: Signature = key.sign(&pae);
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = serde_json::to_vec(&json!({
        "payloadType": kind,
        "payload": b64.encode(&statement),
        "signatures": [{ "keyid": "", "sig": b64.encode(signature.to_der().as_bytes()) }]
    }))
    .unwrap();
    let annotations = json!({ "predicateType": "https://slsa.dev/provenance/v0.2" });
    let (manifest, config) = one_layer_manifest(layout, DSSE, &envelope, annotations);
    (manifest, config, envelope)
}

fn pem(key: &SigningKey) -> String {
    let der = key.verifying_key().to_public_key_der().unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn push(layout: &Layout, name: &str, to: &str) {
    let from = format!("oci:{}:{name}", layout.dir.display());
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--quiet",
        "--dest-tls-verify=false",
        &from,
        &format!("docker://{to}"),
    ]);
}

fn import(bundle: &Path, policy: &Path, mirror: &Path) -> std::process::Output {
    import_with(airlock(), "--quiet", bundle, policy, mirror)
}

/// `airlock import --json` run by `command` (the binary, or the binary with no network).
fn import_json(command: assert_cmd::Command, bundle: &Path, policy: &Path, mirror: &Path) -> std::process::Output {
    import_with(command, "--json", bundle, policy, mirror)
}

fn import_with(
    mut command: assert_cmd::Command,
    how: &str,
    bundle: &Path,
    policy: &Path,
    mirror: &Path,
) -> std::process::Output {
    command.args(["import", how]).arg(bundle).arg("--policy").arg(policy).arg("--mirror").arg(mirror).output().unwrap()
}

#[test]
#[allow(clippy::too_many_lines)]
fn images_with_cosign_signatures_cross_and_skopeo_reads_the_mirror() {
    if !registry_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let upstream = start_registry(root);
    let host = &upstream.host;

    // Upstream: team/app:1.0, an index of linux/amd64 and linux/arm64; team/tool:1.0,
    // one manifest; both share a layer. tool is signed by the pinned key.
    let mut layout = Layout::new(root.join("layout"));
    let shared = tar_of("shared.txt", b"shared by every image\n");
    let amd = tar_of("amd64.txt", b"amd64 only\n");
    let arm = tar_of("arm64.txt", b"arm64 only\n");
    let (amd_d, amd_manifest) = image(&layout, "amd64", &[&shared, &amd]);
    let (arm_d, _) = image(&layout, "arm64", &[&shared, &arm]);
    let mut platforms = Vec::new();
    for (mut d, arch) in [(amd_d, "amd64"), (arm_d, "arm64")] {
        d["platform"] = json!({ "architecture": arch, "os": "linux" });
        platforms.push(d);
    }
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": platforms })).unwrap();
    let index_d = layout.blob(INDEX, &index);
    layout.tag(index_d, "app");
    let (tool_d, tool_manifest) = image(&layout, "amd64", &[&shared]);
    layout.tag(tool_d, "tool");
    let signer = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let tool_repo = format!("{host}/team/tool");
    let tool_hex = sha(&tool_manifest);
    let (sig_manifest, _, _) = cosign_sig(&layout, &signer, &tool_repo, &tool_hex);
    layout.tag(json!({ "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(&sig_manifest)), "size": sig_manifest.len() }), "sig");
    push(&layout, "app", &format!("{host}/team/app:1.0"));
    push(&layout, "tool", &format!("{tool_repo}:1.0"));
    push(&layout, "sig", &format!("{tool_repo}:sha256-{tool_hex}.sig"));
    let (att_manifest, _, att_envelope) = cosign_att(&layout, &signer, &tool_repo, &tool_hex);
    layout.tag(json!({ "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(&att_manifest)), "size": att_manifest.len() }), "att");
    push(&layout, "att", &format!("{tool_repo}:sha256-{tool_hex}.att"));

    // Export: tags resolved to digests, linux/amd64 chosen, the shared layer carried once.
    let (key, public) = keygen(root, "op");
    fs::write(root.join("images.txt"), format!("# images\n{host}/team/app:1.0\n{tool_repo}:1.0\n")).unwrap();
    let bundle = root.join("images.airlock");
    airlock()
        .args(["export", "--quiet", "--oci-images"])
        .arg(root.join("images.txt"))
        .args(["--oci-plain-http", host, "--cache"])
        .arg(root.join("cache"))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    let parts = hostile::open(&bundle);
    let entries = &parts.manifest.entries;
    let shared_path = format!("blobs/sha256/{}", sha(&shared));
    assert_eq!(entries.iter().filter(|e| e.path.as_str() == shared_path).count(), 1);
    assert!(!entries.iter().any(|e| e.path.as_str().ends_with(&sha(&arm))), "arm64 was not asked for");
    let app = entries.iter().find(|e| e.name.ends_with("/team/app") && e.version.is_some()).unwrap();
    assert_eq!(app.version.as_deref(), Some(format!("sha256:{}", sha(&index)).as_str()));
    assert!(app.missing.iter().any(|m| m.kind == "cosign-signature" && m.looked.contains(".sig")), "{:?}", app.missing);

    // Import under a policy pinning the cosign key for team/tool.
    fs::write(root.join("cosign.pub"), pem(&signer)).unwrap();
    let policy = root.join("policy.toml");
    fs::write(
        &policy,
        format!(
            "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"{}\"\n[oci]\n[[oci.signers]]\nimages = [\"{host}/team/tool\"]\nkey = \"cosign.pub\"\n",
            public.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let mirror = root.join("mirror");
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verify = airlock().args(["verify", "-v"]).arg(&bundle).arg("--policy").arg(&policy).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(report.contains("cosign signature by cosign.pub verified"), "{report}");
    assert!(
        report.contains("cosign attestations verified: https://slsa.dev/provenance/v0.2 by cosign.pub"),
        "{report}"
    );

    // The real client reads the layout: the amd64 image of app, tool, and tool's signature.
    let layout_dir = mirror.join("oci");
    for (name, manifest, blobs) in [
        (format!("{host}/team/app:1.0"), &amd_manifest, vec![&shared, &amd]),
        (format!("{tool_repo}:1.0"), &tool_manifest, vec![&shared]),
        (format!("{tool_repo}:sha256-{tool_hex}.sig"), &sig_manifest, vec![]),
        (format!("{tool_repo}:sha256-{tool_hex}.att"), &att_manifest, vec![&att_envelope]),
    ] {
        let out_dir = root.join(format!("out-{}", sha(name.as_bytes())));
        skopeo(&[
            "copy",
            "--quiet",
            "--override-arch",
            "amd64",
            "--override-os",
            "linux",
            &format!("oci:{}:{name}", layout_dir.display()),
            &format!("dir:{}", out_dir.display()),
        ]);
        assert_eq!(sha(&fs::read(out_dir.join("manifest.json")).unwrap()), sha(manifest), "{name}");
        for blob in blobs {
            assert_eq!(fs::read(out_dir.join(sha(blob))).unwrap(), *blob, "{name}");
        }
    }

    // Hostile bundles, each re-signed by the trusted exporter key: refused with one line, mirror unchanged.
    let op = SecretKey::load(&key).unwrap();
    let before = snapshot(&mirror);
    let refuse = |what: &str,
                  change: &dyn Fn(&mut airlock::manifest::Manifest, &mut std::collections::BTreeMap<_, _>),
                  expect: &str| {
        let mut manifest = parts.manifest.clone();
        let mut blobs = parts.blobs.clone();
        change(&mut manifest, &mut blobs);
        let path = root.join("hostile.airlock");
        fs::write(&path, hostile::rebuild(&manifest, &blobs, &[&op], &[&op])).unwrap();
        let out = import(&path, &policy, &mirror);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(expect), "{what}: {line}");
        assert_eq!(snapshot(&mirror), before, "{what}: the mirror changed");
    };
    let tool_index = entries.iter().position(|e| e.name == tool_repo && e.version.is_some()).unwrap();
    // A layer swapped for other bytes, consistently re-addressed: no image lists it.
    refuse(
        "a layer swapped",
        &|m, blobs| {
            let other = tar_of("evil.txt", b"swapped\n");
            let id = airlock::id::ContentId::of(&other);
            let entry = m.entries.decoded_mut().iter_mut().find(|e| e.path.as_str() == shared_path).unwrap();
            entry.blob = id;
            entry.size = other.len() as u64;
            entry.digests.insert("sha256".into(), airlock::manifest::Digest(sha2::Sha256::digest(&other).to_vec()));
            entry.path = airlock::id::RelPath::new(&format!("blobs/sha256/{}", sha(&other))).unwrap();
            m.blobs.push(airlock::manifest::Blob { id, size: other.len() as u64, ..m.blobs[0].clone() });
            blobs.insert(id, other);
            hostile::prune_blobs(m);
            // Sorted again, as the format requires: the attack is the layer, not the order.
            m.entries.decoded_mut().sort_by(|a, b| a.place().cmp(&b.place()));
        },
        "which the bundle does not carry",
    );
    // tool's manifest naming another config than the one carried.
    refuse(
        "a manifest whose config digest lies",
        &|m, _| {
            let e = &mut m.entries.decoded_mut()[tool_index];
            let doc = e.evidence.iter_mut().find(|d| d.kind == "oci-manifest").unwrap();
            let mut value: serde_json::Value = serde_json::from_slice(&doc.data).unwrap();
            value["config"]["digest"] = json!(format!("sha256:{}", "0".repeat(64)));
            doc.data = serde_json::to_vec(&value).unwrap();
        },
        "carries no oci-manifest with the image's digest",
    );
    let forged = |key: &SigningKey, digest: &str| {
        let scratch = Layout::new(root.join("scratch"));
        let (manifest, config, payload) = cosign_sig(&scratch, key, &tool_repo, digest);
        move |m: &mut airlock::manifest::Manifest| {
            let e = &mut m.entries.decoded_mut()[tool_index];
            e.evidence.retain(|d| !d.kind.starts_with("cosign"));
            for (kind, data) in [("cosign-signature", &manifest), ("cosign-blob", &config), ("cosign-blob", &payload)] {
                e.evidence.push(airlock::manifest::Evidence { kind: kind.into(), data: data.clone() });
            }
        }
    };
    let over_other = forged(&signer, &sha(&amd_manifest));
    refuse("a signature over another digest", &|m, _| over_other(m), "is over sha256:");
    let stranger = SigningKey::from_slice(&[0x17; 32]).unwrap();
    let unpinned = forged(&stranger, &tool_hex);
    refuse("a signature by an unpinned key", &|m, _| unpinned(m), "no cosign signature it carries verifies");
    // An image tagged with the name of another image's signature, to stand in for it.
    let amd_hex = sha(&amd_manifest);
    refuse(
        "an image tagged as another's .sig",
        &|m, _| {
            m.entries.decoded_mut()[tool_index].attributes.insert("tags".into(), format!("1.0 sha256-{amd_hex}.sig"));
        },
        "is a tag of cosign's and the referrers' tag schemes",
    );
    // Attestations: one about another image, one by a key nobody pinned.
    let forged_att = |key: &SigningKey, digest: &str| {
        let scratch = Layout::new(root.join("scratch-att"));
        let (manifest, config, envelope) = cosign_att(&scratch, key, &tool_repo, digest);
        move |m: &mut airlock::manifest::Manifest| {
            let e = &mut m.entries.decoded_mut()[tool_index];
            let att = e.evidence.iter().position(|d| d.kind == "cosign-attestation").unwrap();
            e.evidence.remove(att);
            for (kind, data) in
                [("cosign-attestation", &manifest), ("cosign-blob", &config), ("cosign-blob", &envelope)]
            {
                e.evidence.push(airlock::manifest::Evidence { kind: kind.into(), data: data.clone() });
            }
        }
    };
    let about_other = forged_att(&signer, &sha(&amd_manifest));
    refuse("an attestation about another image", &|m, _| about_other(m), "its cosign attestation is about");
    let att_by_stranger = forged_att(&stranger, &tool_hex);
    refuse(
        "an attestation by an unpinned key",
        &|m, _| att_by_stranger(m),
        "a cosign attestation it carries does not verify with a signer [[oci.signers]] pins",
    );
    refuse(
        "a hostile repository name",
        &|m, _| {
            for e in m.entries.decoded_mut().iter_mut().filter(|e| e.name == tool_repo) {
                e.name = format!("{host}/team/../../etc");
            }
        },
        "is not a repository",
    );
}

/// What [`carried`] put in the mirror, for the registry tests.
struct Carried {
    _upstream: Upstream,
    /// The upstream registry, `127.0.0.1:PORT`.
    host: String,
    mirror: PathBuf,
    /// team/app:1.0's index (linux/amd64 and linux/arm64, amd64 carried) and its amd64 manifest.
    index: Vec<u8>,
    amd_manifest: Vec<u8>,
    /// team/tool:1.0 (one manifest) and its cosign `.sig` and `.att` manifests.
    tool_manifest: Vec<u8>,
    sig_manifest: Vec<u8>,
    att_manifest: Vec<u8>,
    /// Every config and layer carried, and the arm64 layer that was not.
    blobs: Vec<Vec<u8>>,
    arm_layer: Vec<u8>,
}

/// An upstream registry with team/app:1.0 (a two-platform index) and
/// team/tool:1.0 signed by cosign's tag scheme, exported for linux/amd64
/// (or with `--oci-all-platforms`) and imported into a mirror; `None`
/// (skipped) without docker-registry and skopeo.
fn carried(root: &Path, all_platforms: bool) -> Option<Carried> {
    if !registry_tools() {
        return None;
    }
    let upstream = start_registry(root);
    let host = upstream.host.clone();
    let mut layout = Layout::new(root.join("layout"));
    let shared = tar_of("shared.txt", b"shared by every image\n");
    let amd = tar_of("amd64.txt", &b"amd64 only\n".repeat(500));
    let arm = tar_of("arm64.txt", b"arm64 only\n");
    let (amd_d, amd_manifest) = image(&layout, "amd64", &[&shared, &amd]);
    let (arm_d, _) = image(&layout, "arm64", &[&shared, &arm]);
    let mut platforms = Vec::new();
    for (mut d, arch) in [(amd_d, "amd64"), (arm_d, "arm64")] {
        d["platform"] = json!({ "architecture": arch, "os": "linux" });
        platforms.push(d);
    }
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": platforms })).unwrap();
    layout.tag(layout.blob(INDEX, &index), "app");
    let (tool_d, tool_manifest) = image(&layout, "amd64", &[&shared]);
    layout.tag(tool_d, "tool");
    let signer = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let tool_repo = format!("{host}/team/tool");
    let (sig_manifest, sig_config, payload) = cosign_sig(&layout, &signer, &tool_repo, &sha(&tool_manifest));
    layout.tag(
        json!({ "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(&sig_manifest)), "size": sig_manifest.len() }),
        "sig",
    );
    push(&layout, "app", &format!("{host}/team/app:1.0"));
    push(&layout, "tool", &format!("{tool_repo}:1.0"));
    push(&layout, "sig", &format!("{tool_repo}:sha256-{}.sig", sha(&tool_manifest)));
    let (att_manifest, att_config, envelope) = cosign_att(&layout, &signer, &tool_repo, &sha(&tool_manifest));
    layout.tag(
        json!({ "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(&att_manifest)), "size": att_manifest.len() }),
        "att",
    );
    push(&layout, "att", &format!("{tool_repo}:sha256-{}.att", sha(&tool_manifest)));

    let (key, public) = keygen(root, "op");
    fs::write(root.join("images.txt"), format!("{host}/team/app:1.0\n{tool_repo}:1.0\n")).unwrap();
    let bundle = root.join("images.airlock");
    airlock()
        .args(["export", "--quiet", "--oci-images"])
        .arg(root.join("images.txt"))
        .args(["--oci-plain-http", &host, "--cache"])
        .arg(root.join("cache"))
        .args(if all_platforms { &["--oci-all-platforms"][..] } else { &[] })
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&bundle)
        .assert()
        .success();
    fs::write(root.join("cosign.pub"), pem(&signer)).unwrap();
    let policy = root.join("policy.toml");
    fs::write(
        &policy,
        format!(
            "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"{}\"\n[oci]\n[[oci.signers]]\nimages = [\"{tool_repo}\"]\nkey = \"cosign.pub\"\n",
            public.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let mirror = root.join("mirror");
    let out = import(&bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config_of = |manifest: &[u8]| {
        let value: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        let hex = value["config"]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
        fs::read(layout.dir.join("blobs/sha256").join(hex)).unwrap()
    };
    let mut blobs = vec![
        shared,
        amd,
        config_of(&amd_manifest),
        config_of(&tool_manifest),
        sig_config,
        payload,
        att_config,
        envelope,
    ];
    if all_platforms {
        blobs.push(arm.clone());
        let index_value: serde_json::Value = serde_json::from_slice(&index).unwrap();
        let arm_hex =
            index_value["manifests"][1]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
        blobs.push(config_of(&fs::read(layout.dir.join("blobs/sha256").join(arm_hex)).unwrap()));
    }
    Some(Carried {
        _upstream: upstream,
        host,
        mirror,
        index,
        amd_manifest,
        tool_manifest,
        sig_manifest,
        att_manifest,
        blobs,
        arm_layer: arm,
    })
}

/// A plain HTTP client that reports every status as a response.
fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// `(status, content type, Docker-Content-Digest, body)` of `GET|HEAD url`.
fn call(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String, String, Vec<u8>, Option<String>) {
    let agent = http();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = agent.run(request.body(()).unwrap()).unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, digest, length) = (
        header("content-type").unwrap_or_default(),
        header("docker-content-digest").unwrap_or_default(),
        header("content-length"),
    );
    let status = response.status().as_u16();
    let body = if method == "HEAD" { Vec::new() } else { response.body_mut().read_to_vec().unwrap() };
    (status, content_type, digest, body, length)
}

#[test]
#[allow(clippy::too_many_lines)]
fn airlock_serve_is_a_registry_skopeo_pulls_from() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let Some(c) = carried(root, false) else { return };
    let options = airlock::serve::ServeOptions { mirror: c.mirror.clone(), listen: "127.0.0.1:0".parse().unwrap() };
    let server = airlock::serve::bind(&options).unwrap().spawn(|_| {});
    let addr = server.local_addr().to_string();
    let v2 = format!("http://{addr}/v2");
    let (tool_hex, amd_hex, index_hex) = (sha(&c.tool_manifest), sha(&c.amd_manifest), sha(&c.index));

    // The API's base, manifests by tag and by digest (GET and HEAD), typed by their own media type.
    let agent = http();
    let base = agent.get(&format!("{v2}/")).call().unwrap();
    assert_eq!(base.status(), 200);
    assert_eq!(base.headers().get("docker-distribution-api-version").unwrap(), "registry/2.0");
    let (status, media, digest, body, _) = call("GET", &format!("{v2}/team/app/manifests/1.0"), &[]);
    assert_eq!((status, media.as_str(), digest.clone()), (200, INDEX, format!("sha256:{index_hex}")));
    assert_eq!(body, c.index);
    let (status, media, digest, body, length) =
        call("HEAD", &format!("{v2}/team/tool/manifests/sha256:{tool_hex}"), &[]);
    assert_eq!((status, media.as_str(), digest), (200, MANIFEST, format!("sha256:{tool_hex}")));
    assert!(body.is_empty());
    assert_eq!(length, Some(c.tool_manifest.len().to_string()));
    // The full carried repository (the registry as the first path component) names it too.
    let full = format!("{v2}/{}/team/tool/manifests/1.0", c.host);
    assert_eq!(call("GET", &full, &[]).3, c.tool_manifest);
    // A repository serves only what its own names lead to; unknown names are the spec's errors.
    let (status, _, _, body, _) = call("GET", &format!("{v2}/team/tool/manifests/sha256:{amd_hex}"), &[]);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));
    let (status, _, _, body, _) = call("GET", &format!("{v2}/team/nothing/tags/list"), &[]);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("NAME_UNKNOWN"));
    assert_eq!(call("GET", &format!("{v2}/team/app/blobs/sha256:{}", sha(&c.arm_layer)), &[]).0, 404);
    assert_eq!(call("GET", &format!("{v2}/team/app/manifests/sha256:nothex"), &[]).0, 400);

    // Blobs streamed, whole or one range of them.
    let layer = &c.blobs[1];
    let url = format!("{v2}/team/app/blobs/sha256:{}", sha(layer));
    let (status, media, digest, body, _) = call("GET", &url, &[]);
    assert_eq!((status, media.as_str(), digest), (200, "application/octet-stream", format!("sha256:{}", sha(layer))));
    assert_eq!(&body, layer);
    let (status, _, _, body, length) = call("GET", &url, &[("Range", "bytes=100-199")]);
    assert_eq!((status, body.as_slice(), length.as_deref()), (206, &layer[100..200], Some("100")));
    let (status, _, _, body, _) = call("GET", &url, &[("Range", "bytes=-10")]);
    assert_eq!((status, body.as_slice()), (206, &layer[layer.len() - 10..]));
    let past = format!("bytes={}-", layer.len());
    assert_eq!(call("GET", &url, &[("Range", &past)]).0, 416);
    let (status, _, _, body, length) = call("HEAD", &url, &[]);
    assert_eq!((status, body.len(), length), (200, 0, Some(layer.len().to_string())));

    // Tags, and the referrers API: tool's cosign signature, nothing for app.
    let (_, _, _, body, _) = call("GET", &format!("{v2}/team/tool/tags/list"), &[]);
    let tags: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        tags,
        json!({ "name": "team/tool", "tags": ["1.0", format!("sha256-{tool_hex}.att"), format!("sha256-{tool_hex}.sig")] })
    );
    let (status, media, _, body, _) = call("GET", &format!("{v2}/team/tool/referrers/sha256:{tool_hex}"), &[]);
    assert_eq!((status, media.as_str()), (200, INDEX));
    let referrers: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let listed: Vec<&str> =
        referrers["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    let mut expected = vec![format!("sha256:{}", sha(&c.sig_manifest)), format!("sha256:{}", sha(&c.att_manifest))];
    expected.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    assert_eq!(listed_sorted, expected, "{referrers}");
    let (_, _, _, body, _) = call("GET", &format!("{v2}/team/app/referrers/sha256:{index_hex}"), &[]);
    let referrers: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(referrers["manifests"], json!([]));

    // The real client: skopeo inspects and copies from airlock serve; what it wrote is what was carried.
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", &format!("docker://{addr}/team/tool:1.0")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, c.tool_manifest);
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--override-arch", "amd64", "--override-os", "linux"])
        .arg(format!("docker://{addr}/team/app:1.0"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], format!("sha256:{index_hex}"), "{inspected}");
    let pulled = root.join("pulled");
    for (name, manifest) in [
        ("team/app:1.0".to_owned(), &c.amd_manifest),
        ("team/tool:1.0".to_owned(), &c.tool_manifest),
        (format!("team/tool:sha256-{tool_hex}.sig"), &c.sig_manifest),
        (format!("team/tool:sha256-{tool_hex}.att"), &c.att_manifest),
    ] {
        let from = format!("docker://{addr}/{name}");
        let to = format!("oci:{}:{}", pulled.display(), sha(name.as_bytes()));
        skopeo(&[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--override-arch",
            "amd64",
            "--override-os",
            "linux",
            &from,
            &to,
        ]);
        let index: serde_json::Value = serde_json::from_slice(&fs::read(pulled.join("index.json")).unwrap()).unwrap();
        let got = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == sha(name.as_bytes()));
        let got_hex = got.unwrap()["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
        let doc = fs::read(pulled.join("blobs/sha256").join(&got_hex)).unwrap();
        assert_eq!(
            got_hex,
            sha(manifest),
            "{name}: {} vs {}",
            String::from_utf8_lossy(&doc),
            String::from_utf8_lossy(manifest)
        );
    }
    for blob in &c.blobs {
        assert_eq!(fs::read(pulled.join("blobs/sha256").join(sha(blob))).unwrap(), *blob);
    }
    podman_pulls(root, &addr, &c.index);
    server.stop().unwrap();

    // A site registry that checks indexes (distribution does) refuses one whose other platforms were not carried.
    fs::create_dir_all(root.join("site")).unwrap();
    let site = start_registry(&root.join("site"));
    let out = airlock_push(&c.mirror, &format!("http://{}", site.host), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let line = one_line(&out.stderr);
    assert!(
        line.contains("platforms that were not carried (linux/arm64)") && line.contains("--oci-all-platforms"),
        "{line}"
    );
}

/// `podman pull` from airlock serve, where podman runs here: the image it
/// names by `manifest`'s digest (the index it pulled through).
/// Its storage is a folder of the test's own, so nothing is left behind.
fn podman_pulls(root: &Path, addr: &str, manifest: &[u8]) {
    let podman = || {
        let mut cmd = Command::new("podman");
        cmd.arg("--root").arg(root.join("podman-root")).arg("--runroot").arg(root.join("podman-run"));
        cmd.args(["--storage-driver", "vfs"]);
        cmd
    };
    let runs = podman().args(["info"]).output().is_ok_and(|o| o.status.success());
    if !runs {
        skip("podman does not run here (apt-get install podman; it needs user namespaces or root)");
        return;
    }
    let reference = format!("{addr}/team/app:1.0");
    let out = podman()
        .args(["pull", "--quiet", "--tls-verify=false", "--arch", "amd64", "--os", "linux", &reference])
        .output()
        .unwrap();
    assert!(out.status.success(), "podman pull: {}", String::from_utf8_lossy(&out.stderr));
    let out = podman().args(["image", "inspect", "--format", "{{.Digest}}", &reference]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("sha256:{}", sha(manifest)), "{out:?}");
}

fn airlock_push(mirror: &Path, registry: &str, extra: &[&str]) -> std::process::Output {
    airlock()
        .args(["push", "--mirror"])
        .arg(mirror)
        .args(["--registry", registry, "--retries", "0"])
        .args(extra)
        .output()
        .unwrap()
}

fn inspect_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw", reference]).output().unwrap();
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
#[allow(clippy::too_many_lines)]
fn airlock_push_fills_a_site_registry_with_images_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let Some(c) = carried(root, true) else { return };
    fs::create_dir_all(root.join("site")).unwrap();
    let site = start_registry(&root.join("site"));
    let tool_hex = sha(&c.tool_manifest);

    let out = airlock_push(&c.mirror, &site.host, &["--plain-http"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{}/team/app -> {}/team/app", c.host, site.host)), "{stdout}");
    // The layer app and tool share is uploaded once and mounted into the other repository.
    assert!(
        stdout.contains(&format!("{} blobs uploaded", c.blobs.len())) && stdout.contains(", 1 mounted"),
        "{stdout}"
    );
    // app's index and its two platforms' manifests, tool's manifest, its signature and attestation.
    assert!(stdout.contains("6 manifests uploaded, 0 already there; 4 tags set"), "{stdout}");

    // The site registry serves what was carried, byte for byte, signature included.
    let s = &site.host;
    assert_eq!(inspect_raw(&format!("docker://{s}/team/app:1.0")), c.index);
    assert_eq!(inspect_raw(&format!("docker://{s}/team/tool:1.0")), c.tool_manifest);
    assert_eq!(inspect_raw(&format!("docker://{s}/team/tool:sha256-{tool_hex}.sig")), c.sig_manifest);
    assert_eq!(inspect_raw(&format!("docker://{s}/team/tool:sha256-{tool_hex}.att")), c.att_manifest);
    let pulled = root.join("from-site");
    skopeo(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--override-arch",
        "amd64",
        "--override-os",
        "linux",
        &format!("docker://{s}/team/app:1.0"),
        &format!("oci:{}:app", pulled.display()),
    ]);
    let index: serde_json::Value = serde_json::from_slice(&fs::read(pulled.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], format!("sha256:{}", sha(&c.amd_manifest)));
    for blob in [&c.blobs[0], &c.blobs[1], &c.blobs[2]] {
        assert_eq!(fs::read(pulled.join("blobs/sha256").join(sha(blob))).unwrap(), *blob);
    }

    // A second push uploads nothing.
    let out = airlock_push(&c.mirror, &format!("http://{s}"), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 blobs uploaded (0 bytes)") && stdout.contains("0 manifests uploaded"), "{stdout}");
    assert!(stdout.contains("0 tags set"), "{stdout}");

    // Only what --images names, under a prefix of the site's.
    let out = airlock_push(&c.mirror, &format!("http://{s}/mirror"), &["--images", &format!("{}/team/tool", c.host)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(inspect_raw(&format!("docker://{s}/mirror/team/tool:1.0")), c.tool_manifest);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pushed 1 repository (3 tags)") && stdout.contains("6 blobs uploaded"), "{stdout}");

    // Each failure is one line with its exit code.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for (what, registry, extra, code, expect) in [
        ("unreachable", format!("http://{closed}"), vec![], 2, "check the registry address".to_owned()),
        (
            "not in the mirror",
            format!("http://{s}"),
            vec!["--images", "elsewhere.example/*"],
            2,
            "matches no image".into(),
        ),
        ("a bad address", "Site:x".into(), vec![], 2, "write HOST[:PORT]".into()),
    ] {
        let extra: Vec<&str> = extra.iter().map(|s| &**s).collect();
        let out = airlock_push(&c.mirror, &registry, &extra);
        assert_eq!(out.status.code(), Some(code), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(&expect), "{what}: {line}");
    }
    let out = airlock_push(&root.join("nowhere"), &s.clone(), &["--plain-http"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out.stderr).contains("no such folder"), "{}", one_line(&out.stderr));
    // A layer changed on disk in the mirror is refused, not pushed.
    let layer = c.mirror.join("oci/blobs/sha256").join(sha(&c.blobs[1]));
    let mut bytes = fs::read(&layer).unwrap();
    bytes[0] ^= 1;
    fs::remove_file(&layer).unwrap();
    fs::write(&layer, bytes).unwrap();
    let out = airlock_push(&c.mirror, &format!("http://{s}/fresh"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(one_line(&out.stderr).contains("does not match its digest"), "{}", one_line(&out.stderr));
    let listed = http().get(&format!("http://{s}/v2/fresh/team/app/tags/list")).call().unwrap();
    assert_ne!(listed.status(), 200, "nothing tagged after the refusal");
}

/// bcrypt (cost 4, so each request's check is quick) of [`PASSWORD`], for docker-registry's htpasswd.
const HTPASSWD: &str = "alice:$2b$04$AWndB1M5RxzxNVmx0mrYQeTjNp4EiAS53j63.tOsJQ2LdXvPV616G\n";
const PASSWORD: &str = "s3cret-pw";

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A token service as distribution's `auth: token:` expects one: a JWT
/// (ES256, the signing certificate in `x5c`) granting what each `scope`
/// asks, for `alice` with [`PASSWORD`] only. Returns its realm URL; it
/// runs until the test process ends. `issued` counts the tokens.
/// The refresh token the loopback token service takes for an identity token.
const IDENTITY_TOKEN: &str = "refresh-token-for-alice";

fn token_service(dir: &Path, issued: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> (String, PathBuf) {
    use p256::pkcs8::EncodePrivateKey as _;
    let key = SigningKey::from_slice(&[0x23; 32]).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    fs::write(dir.join("token.key"), format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"))
        .unwrap();
    let cert = dir.join("token.crt");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-new", "-days", "2", "-subj", "/CN=airlock-test-token", "-key"])
        .arg(dir.join("token.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let x5c: String = fs::read_to_string(&cert).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}")));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && std::io::Read::read(&mut stream, &mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
            // GET with Basic credentials, or the OAuth2 refresh-token grant (POST, a form) for an identity token.
            let (authorized, scopes, field) = if head.starts_with("POST ") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = std::io::Read::read_exact(&mut stream, &mut body);
                let form: Vec<(String, String)> = String::from_utf8_lossy(&body)
                    .split('&')
                    .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), percent_decoded(v))))
                    .collect();
                let value = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
                let ok = value("grant_type") == "refresh_token" && value("refresh_token") == IDENTITY_TOKEN;
                (ok, value("scope").split(' ').map(str::to_owned).collect::<Vec<_>>(), "access_token")
            } else {
                let ok = head
                    .lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("authorization:") && l[14..].trim() == expected);
                let query = target.split_once('?').map_or("", |(_, q)| q);
                let scopes = query.split('&').filter_map(|p| p.strip_prefix("scope=")).map(percent_decoded).collect();
                (ok, scopes, "token")
            };
            let reply = if authorized {
                let mut access = Vec::new();
                for scope in scopes.iter().filter(|s| !s.is_empty()) {
                    let mut parts = scope.rsplitn(2, ':');
                    let actions: Vec<&str> = parts.next().unwrap().split(',').collect();
                    let name =
                        parts.next().unwrap_or_default().strip_prefix("repository:").unwrap_or_default().to_owned();
                    access.push(json!({ "type": "repository", "name": name, "actions": actions }));
                }
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let header = json!({ "typ": "JWT", "alg": "ES256", "x5c": [x5c] });
                let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let claims = json!({
                    "iss": "airlock-test-issuer", "sub": "alice", "aud": "airlock-test",
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("token-{n}"), "access": access,
                });
                let input =
                    format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
                let signature: Signature = key.sign(input.as_bytes());
                let token = format!("{input}.{}", b64url(&signature.to_bytes()));
                let body = json!({ field: token, "expires_in": 300 }).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            };
            let _ = std::io::Write::write_all(&mut stream, reply.as_bytes());
        }
    });
    (realm, cert)
}

/// The airlock command with only `auth_file` to find credentials in.
fn with_auth(auth_file: Option<&Path>, home: &Path) -> assert_cmd::Command {
    let mut cmd = airlock();
    cmd.env("HOME", home).env_remove("XDG_RUNTIME_DIR").env_remove("DOCKER_CONFIG");
    match auth_file {
        Some(file) => cmd.env("REGISTRY_AUTH_FILE", file),
        None => cmd.env_remove("REGISTRY_AUTH_FILE"),
    };
    cmd
}

#[test]
#[allow(clippy::too_many_lines)]
fn registries_that_ask_for_a_login_basic_or_bearer_token() {
    if !have("docker-registry") || !have("skopeo") || !have("openssl") {
        skip("docker-registry, skopeo and openssl are not installed (apt-get install docker-registry skopeo openssl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let home = root.join("home");
    fs::create_dir_all(&home).unwrap();
    // Upstream: htpasswd (Basic). Site: bearer tokens from the loopback token service.
    fs::create_dir_all(root.join("up")).unwrap();
    fs::write(root.join("htpasswd"), HTPASSWD).unwrap();
    let upstream = start_registry_with(
        &root.join("up"),
        &format!("auth:\n  htpasswd:\n    realm: airlock-test\n    path: {}\n", root.join("htpasswd").display()),
    );
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (realm, cert) = token_service(root, std::sync::Arc::clone(&issued));
    fs::create_dir_all(root.join("site")).unwrap();
    let site = start_registry_with(
        &root.join("site"),
        &format!(
            "auth:\n  token:\n    realm: {realm}\n    service: airlock-test\n    issuer: airlock-test-issuer\n    rootcertbundle: {}\n",
            cert.display()
        ),
    );
    let (up, s) = (&upstream.host, &site.host);
    let creds = format!("alice:{PASSWORD}");

    // One image upstream, pushed with skopeo's own login.
    let mut layout = Layout::new(root.join("layout"));
    let (d, manifest) = image(&layout, "amd64", &[&tar_of("a.txt", b"behind a login\n")]);
    layout.tag(d, "app");
    let from = format!("oci:{}:app", layout.dir.display());
    skopeo(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &from,
        &format!("docker://{up}/team/app:1.0"),
    ]);

    // The auth files as podman and docker write them.
    let pair = base64::engine::general_purpose::STANDARD.encode(&creds);
    let auth = root.join("auth.json");
    fs::write(&auth, json!({ "auths": { up: { "auth": pair }, s: { "auth": pair } } }).to_string()).unwrap();
    let wrong = root.join("wrong.json");
    let bad = base64::engine::general_purpose::STANDARD.encode("alice:not-it");
    fs::write(&wrong, json!({ "auths": { up: { "auth": bad }, s: { "auth": bad } } }).to_string()).unwrap();

    // Export through Basic: without credentials, with wrong ones, then with the auth file.
    fs::write(root.join("images.txt"), format!("{up}/team/app:1.0\n")).unwrap();
    let (key, public) = keygen(root, "op");
    let bundle = root.join("images.airlock");
    let export = |auth_file: Option<&Path>| {
        with_auth(auth_file, &home)
            .args(["export", "--quiet", "--oci-images"])
            .arg(root.join("images.txt"))
            .args(["--oci-plain-http", up, "--retries", "0", "--cache"])
            .arg(root.join("cache"))
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&bundle)
            .output()
            .unwrap()
    };
    for (file, expect) in
        [(None, "asks for credentials and none are filed"), (Some(wrong.as_path()), "refused the credentials")]
    {
        let out = export(file);
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(expect) && !line.contains(PASSWORD), "{line}");
        assert!(!bundle.exists());
    }
    // A credential helper, as docker's config names one: per registry, or for all (credsStore).
    let bin = root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-airlocktest");
    let script = r#"#!/bin/sh
read host
if [ -z "$HOLDS_NOTHING" ] && [ "$1 $host" = "get UP" ]; then
  printf '{"ServerURL":"%s","Username":"alice","Secret":"PASSWORD"}' "$host"
else
  echo 'credentials not found in native keychain'; exit 1
fi
"#;
    fs::write(&helper, script.replace("UP", up).replace("PASSWORD", PASSWORD)).unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let helpers = |config: serde_json::Value| {
        let file = root.join("helpers.json");
        fs::write(&file, config.to_string()).unwrap();
        with_auth(Some(&file), &home)
            .env("PATH", &path)
            .args(["export", "--quiet", "--oci-images"])
            .arg(root.join("images.txt"))
            .args(["--oci-plain-http", up, "--retries", "0", "--cache"])
            .arg(root.join("cache-helper"))
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(root.join("helper.airlock"))
            .output()
            .unwrap()
    };
    for (config, expect) in [
        (
            json!({ "credsStore": "absent" }),
            "docker-credential-absent: the credential helper the file names is not on PATH",
        ),
        (
            json!({ "credHelpers": { "elsewhere.example": "airlocktest" }, "credsStore": "airlocktest", "auths": {} }),
            "",
        ),
        (json!({ "credHelpers": { up: "airlocktest" } }), ""),
    ] {
        let out = helpers(config.clone());
        if expect.is_empty() {
            assert!(out.status.success(), "{config}: {}", String::from_utf8_lossy(&out.stderr));
        } else {
            assert_eq!(out.status.code(), Some(2), "{config}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(one_line(&out.stderr).contains(expect), "{config}: {}", one_line(&out.stderr));
        }
        let _ = fs::remove_file(root.join("helper.airlock"));
    }
    // A helper that holds nothing for the registry: as if no credentials were filed.
    let file = root.join("helpers.json");
    fs::write(&file, json!({ "credHelpers": { up: "airlocktest" } }).to_string()).unwrap();
    let out = with_auth(Some(&file), &home)
        .env("PATH", &path)
        .env("HOLDS_NOTHING", "1")
        .args(["export", "--quiet", "--oci-images"])
        .arg(root.join("images.txt"))
        .args(["--oci-plain-http", up, "--retries", "0", "--cache"])
        .arg(root.join("cache-nothing"))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(root.join("helper.airlock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(one_line(&out.stderr).contains("asks for credentials and none are filed"), "{}", one_line(&out.stderr));

    let out = export(Some(&auth));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mirror = root.join("mirror");
    airlock()
        .args(["import", "--quiet"])
        .arg(&bundle)
        .arg("--trust")
        .arg(&public)
        .arg("--mirror")
        .arg(&mirror)
        .assert()
        .success();

    // Push through bearer tokens: refused without or with wrong credentials, then accepted.
    let push = |auth_file: Option<&Path>| {
        with_auth(auth_file, &home)
            .args(["push", "--plain-http", "--retries", "0", "--mirror"])
            .arg(&mirror)
            .args(["--registry", s])
            .output()
            .unwrap()
    };
    let out = push(None);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(one_line(&out.stderr).contains("asks for credentials"), "{}", one_line(&out.stderr));
    let out = push(Some(&wrong));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(one_line(&out.stderr).contains("refused the credentials"), "{}", one_line(&out.stderr));
    let before = issued.load(std::sync::atomic::Ordering::SeqCst);
    let out = push(Some(&auth));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 blobs uploaded"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(issued.load(std::sync::atomic::Ordering::SeqCst) > before, "the push used a token");
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", "--creds", &creds, &format!("docker://{s}/team/app:1.0")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, manifest);

    // Export through bearer tokens too: the site registry as an upstream, blobs fetched through the cache with the token.
    fs::write(root.join("site-images.txt"), format!("{s}/team/app:1.0\n")).unwrap();
    let again = root.join("again.airlock");
    let out = with_auth(Some(&auth), &home)
        .args(["export", "--quiet", "--oci-images"])
        .arg(root.join("site-images.txt"))
        .args(["--oci-plain-http", s, "--retries", "0", "--cache"])
        .arg(root.join("cache2"))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries = hostile::open(&again).manifest.entries;
    assert_eq!(entries.len(), 3, "the manifest, its config and its layer");

    // An identity token (a refresh token, as `docker login` leaves for some registries), from the auth
    // file or from a helper answering `<token>`: exchanged at the token service, never sent as a password.
    let tokens = root.join("tokens.json");
    fs::write(
        &tokens,
        json!({ "auths": { up: { "identitytoken": IDENTITY_TOKEN }, s: { "identitytoken": IDENTITY_TOKEN } } })
            .to_string(),
    )
    .unwrap();
    let token_helper = bin.join("docker-credential-airlocktoken");
    fs::write(
        &token_helper,
        format!("#!/bin/sh\nread host\nprintf '{{\"Username\":\"<token>\",\"Secret\":\"{IDENTITY_TOKEN}\"}}'\n"),
    )
    .unwrap();
    fs::set_permissions(&token_helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let by_helper = root.join("token-helper.json");
    fs::write(&by_helper, json!({ "credsStore": "airlocktoken" }).to_string()).unwrap();
    for (n, file) in [&tokens, &by_helper].into_iter().enumerate() {
        let before = issued.load(std::sync::atomic::Ordering::SeqCst);
        let out = with_auth(Some(file), &home)
            .env("PATH", &path)
            .args(["export", "--quiet", "--oci-images"])
            .arg(root.join("site-images.txt"))
            .args(["--oci-plain-http", s, "--retries", "0", "--cache"])
            .arg(root.join(format!("cache-token-{n}")))
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(root.join(format!("token-{n}.airlock")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        assert!(issued.load(std::sync::atomic::Ordering::SeqCst) > before, "a token was issued for the identity token");
    }
    // A registry asking for a password (Basic) gets no identity token: one line, exit 2.
    fs::remove_file(&bundle).unwrap();
    let out = export(Some(&tokens));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let line = one_line(&out.stderr);
    assert!(line.contains("holds an identity token for it") && !line.contains(IDENTITY_TOKEN), "{line}");
}

/// Puts `data` into `repository` of the registry at `host` (a monolithic
/// upload), as any client does for an artifact skopeo does not copy.
fn put_blob(host: &str, repository: &str, data: &[u8]) {
    let agent = http();
    let started = agent.post(&format!("http://{host}/v2/{repository}/blobs/uploads/")).send_empty().unwrap();
    assert_eq!(started.status(), 202, "upload to {repository}");
    let location = started.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let location = if location.starts_with("http") { location } else { format!("http://{host}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = agent
        .put(&format!("{location}{sep}digest=sha256:{}", sha(data)))
        .header("Content-Type", "application/octet-stream")
        .send(data)
        .unwrap();
    assert_eq!(put.status(), 201, "blob into {repository}");
}

fn put_manifest(host: &str, repository: &str, reference: &str, media: &str, doc: &[u8]) {
    let put = http()
        .put(&format!("http://{host}/v2/{repository}/manifests/{reference}"))
        .header("Content-Type", media)
        .send(doc)
        .unwrap();
    assert_eq!(put.status(), 201, "manifest {reference} into {repository}: {:?}", put.into_body().read_to_string());
}

/// An OCI 1.1 artifact about `subject` (an SPDX SBOM, `artifactType`
/// set, the empty config), as `oras attach` or `cosign attach --type` write one.
fn referrer(subject: &[u8], sbom: &[u8]) -> (Vec<u8>, serde_json::Value) {
    let empty = json!({ "mediaType": "application/vnd.oci.empty.v1+json", "digest": format!("sha256:{}", sha(b"{}")), "size": 2 });
    let layer =
        json!({ "mediaType": "application/spdx+json", "digest": format!("sha256:{}", sha(sbom)), "size": sbom.len() });
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/spdx+json",
        "config": empty, "layers": [layer],
        "subject": { "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(subject)), "size": subject.len() },
        "annotations": { "org.opencontainers.image.created": "2026-12-01T00:00:00Z" }
    }))
    .unwrap();
    let descriptor = json!({
        "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(&manifest)), "size": manifest.len(),
        "artifactType": "application/spdx+json"
    });
    (manifest, descriptor)
}

fn export_images(root: &Path, host: &str, list: &str, bundle: &Path) -> std::process::Output {
    fs::write(root.join("images.txt"), list).unwrap();
    let key = root.join("op.key");
    airlock()
        .args(["export", "--quiet", "--oci-images"])
        .arg(root.join("images.txt"))
        .args(["--oci-plain-http", host, "--cache"])
        .arg(root.join(format!("cache-{}", bundle.file_name().unwrap().to_string_lossy())))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(bundle)
        .output()
        .unwrap()
}

#[test]
#[allow(clippy::too_many_lines)]
fn referrers_and_sboms_cross_with_the_image_and_reach_the_site_registry() {
    if !registry_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let upstream = start_registry(root);
    let host = upstream.host.clone();
    let mut layout = Layout::new(root.join("layout"));
    let tool_manifest = upstream_image(&mut layout, &host, "team/tool:1.0", "tool.txt", b"the tool\n");
    let tool_hex = sha(&tool_manifest);

    // cosign attach sbom: a manifest at sha256-<hex>.sbom whose layer is the SBOM.
    let spdx = br#"{"spdxVersion":"SPDX-2.3","name":"tool","packages":[]}"#.to_vec();
    let sbom_config = serde_json::to_vec(&json!({ "architecture": "", "os": "", "config": {},
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha(&spdx))] } }))
    .unwrap();
    let sbom_manifest = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": MANIFEST,
        "config": layout.blob(CONFIG, &sbom_config), "layers": [layout.blob("text/spdx+json", &spdx)] }))
    .unwrap();
    for blob in [&sbom_config, &spdx] {
        put_blob(&host, "team/tool", blob);
    }
    put_manifest(&host, "team/tool", &format!("sha256-{tool_hex}.sbom"), MANIFEST, &sbom_manifest);

    // An OCI 1.1 referrer, listed (distribution 2.8 has no referrers API) at the fallback tag.
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"tool (attached)"}"#.to_vec();
    let (referrer_manifest, referrer_d) = referrer(&tool_manifest, &sbom);
    for blob in [&b"{}"[..], &sbom] {
        put_blob(&host, "team/tool", blob);
    }
    let referrer_hex = sha(&referrer_manifest);
    put_manifest(&host, "team/tool", &format!("sha256:{referrer_hex}"), MANIFEST, &referrer_manifest);
    let listing =
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [referrer_d] })).unwrap();
    put_manifest(&host, "team/tool", &format!("sha256-{tool_hex}"), INDEX, &listing);

    let bundle = root.join("tool.airlock");
    let (key, public) = keygen(root, "op");
    assert_eq!((key.file_name().unwrap(), public.file_name().unwrap()), ("op.key".as_ref(), "op.pub".as_ref()));
    let out = export_images(root, &host, &format!("{host}/team/tool:1.0\n"), &bundle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy = root.join("policy.toml");
    fs::write(&policy, "version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n").unwrap();
    let mirror = root.join("mirror");
    let out = import_json(airlock(), &bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("1 OCI referrer(s) carried (application/spdx+json), not checked"), "{report}");
    assert!(report.contains("cosign SBOM carried (1 document(s))"), "{report}");

    // The layout names the referrer by digest, its listing at the fallback tag, and the .sbom by cosign's tag.
    let index: serde_json::Value = serde_json::from_slice(&fs::read(mirror.join("oci/index.json")).unwrap()).unwrap();
    let names: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().filter_map(|d| d["annotations"][REF_NAME].as_str()).collect();
    let repo = format!("{host}/team/tool");
    for name in [
        format!("{repo}:1.0"),
        format!("{repo}:sha256-{tool_hex}.sbom"),
        format!("{repo}@sha256:{referrer_hex}"),
        format!("{repo}:sha256-{tool_hex}"),
    ] {
        assert!(names.contains(&name.as_str()), "index.json lacks {name}: {names:?}");
    }
    assert_eq!(fs::read(mirror.join(format!("oci/blobs/sha256/{}", sha(&sbom)))).unwrap(), sbom);

    // airlock serve answers the referrers API with it.
    let options = airlock::serve::ServeOptions { mirror: mirror.clone(), listen: "127.0.0.1:0".parse().unwrap() };
    let server = airlock::serve::bind(&options).unwrap().spawn(|_| {});
    let serve_addr = server.local_addr().to_string();
    let (status, _, _, body, _) =
        call("GET", &format!("http://{serve_addr}/v2/team/tool/referrers/sha256:{tool_hex}"), &[]);
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let digests: Vec<&str> =
        listed["manifests"].as_array().unwrap().iter().filter_map(|d| d["digest"].as_str()).collect();
    assert!(digests.contains(&format!("sha256:{referrer_hex}").as_str()), "{listed}");

    // Exported again from serve (whose referrers API answers, so no fallback tag is read): the referrer crosses again.
    let again = root.join("again.airlock");
    let out = export_images(root, &serve_addr, &format!("{serve_addr}/team/tool:1.0\n"), &again);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = import_json(airlock(), &again, &policy, &root.join("mirror2"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 OCI referrer(s) carried (application/spdx+json)"));

    // Pushed into a site registry without the referrers API: by digest, and listed at the fallback tag.
    fs::create_dir_all(root.join("site")).unwrap();
    let site = start_registry(&root.join("site"));
    let out = airlock_push(&mirror, &site.host, &["--plain-http"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, _, _, body, _) = call(
        "GET",
        &format!("http://{}/v2/team/tool/manifests/sha256:{referrer_hex}", site.host),
        &[("Accept", MANIFEST)],
    );
    assert_eq!((status, body), (200, referrer_manifest.clone()));
    let (status, _, _, body, _) =
        call("GET", &format!("http://{}/v2/team/tool/manifests/sha256-{tool_hex}", site.host), &[("Accept", INDEX)]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains(&referrer_hex), "{}", String::from_utf8_lossy(&body));
    let sbom_tag = format!("http://{}/v2/team/tool/manifests/sha256-{tool_hex}.sbom", site.host);
    assert_eq!(call("GET", &sbom_tag, &[("Accept", MANIFEST)]).3, sbom_manifest);

    // Re-signed by the trusted key, a referrer about another image, or one without its blobs, is refused.
    let op = SecretKey::load(&key).unwrap();
    let parts = hostile::open(&bundle);
    let before = snapshot(&mirror);
    let other_subject = |data: &mut Vec<u8>| {
        let mut value: serde_json::Value = serde_json::from_slice(data).unwrap();
        value["subject"]["digest"] = json!(format!("sha256:{}", "0".repeat(64)));
        *data = serde_json::to_vec(&value).unwrap();
    };
    for (what, expect) in [
        ("another subject", "does not name this image (sha256:"),
        ("its blob left out", "which the bundle does not carry"),
    ] {
        let mut manifest = parts.manifest.clone();
        let tool = manifest.entries.decoded_mut().iter_mut().find(|e| e.version.is_some()).unwrap();
        if what == "another subject" {
            other_subject(&mut tool.evidence.iter_mut().find(|d| d.kind == "oci-referrer").unwrap().data);
        } else {
            tool.evidence.retain(|d| d.kind != "oci-referrer-blob" || d.data != sbom);
        }
        let path = root.join("hostile.airlock");
        fs::write(&path, hostile::rebuild(&manifest, &parts.blobs, &[&op], &[&op])).unwrap();
        let out = import(&path, &policy, &mirror);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(one_line(&out.stderr).contains(expect), "{what}: {}", one_line(&out.stderr));
        assert_eq!(snapshot(&mirror), before, "{what}: the mirror changed");
    }

    // A listing that names a referrer of another image is refused at export, in one line.
    let (other_d, other_manifest) = image(&layout, "arm64", &[&tar_of("other.txt", b"other\n")]);
    layout.tag(other_d, "other");
    push(&layout, "other", &format!("{host}/team/tool:other"));
    let (stray, stray_d) = referrer(&other_manifest, &sbom);
    put_manifest(&host, "team/tool", &format!("sha256:{}", sha(&stray)), MANIFEST, &stray);
    let listing =
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [referrer_d, stray_d] }))
            .unwrap();
    put_manifest(&host, "team/tool", &format!("sha256-{tool_hex}"), INDEX, &listing);
    let out = export_images(root, &host, &format!("{host}/team/tool:1.0\n"), &root.join("stray.airlock"));
    assert!(!out.status.success());
    let said = one_line(&out.stderr);
    assert!(said.contains("names another subject"), "{said}");
    assert!(!root.join("stray.airlock").exists(), "nothing written");
}

/// A stand-in for Fulcio, its CT log and Rekor (`tests/tools/fake_sigstore.py`,
/// on the venv .ci/run makes): issues keyless signatures over what this test
/// builds; the verifier is only ever given `trusted_root.json`.
struct FakeSigstore {
    python: PathBuf,
    dir: PathBuf,
}

const FAKE_SIGSTORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/fake_sigstore.py");

impl FakeSigstore {
    /// A new set of services in `dir`; `None` (skipped) without the venv.
    fn new(dir: &Path) -> Option<FakeSigstore> {
        let venv = std::env::var_os("AIRLOCK_PYTOOLS")
            .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools"), PathBuf::from);
        let python = venv.join("bin/python");
        let ok = Command::new(&python).args(["-c", "import cryptography"]).output().is_ok_and(|o| o.status.success());
        if !ok {
            skip(
                "no Python venv with cryptography (.ci/run makes target/pytools): keyless image signatures not tested",
            );
            return None;
        }
        let fake = FakeSigstore { python, dir: dir.to_owned() };
        fake.run(&["root".as_ref(), dir.as_os_str()]);
        Some(fake)
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Vec<u8> {
        let out = Command::new(&self.python).arg(FAKE_SIGSTORE).args(args).output().unwrap();
        assert!(out.status.success(), "fake_sigstore {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// `what` signed as `command` (`cosign` or `bundle`) does, by `by`:
    /// `--san SAN --issuer URL` (keyless) or `--key FILE`.
    fn sign(&self, command: &str, what: &[u8], by: &[&str]) -> Vec<u8> {
        let input = self.dir.join(format!("input-{}", sha(what)));
        fs::write(&input, what).unwrap();
        let mut args = vec![command.as_ref(), self.dir.as_os_str(), input.as_os_str()];
        args.extend(by.iter().map(std::ffi::OsStr::new));
        self.run(&args)
    }

    /// A cosign key pair at `path`.key and `path`.pub.
    fn keygen(&self, path: &Path) {
        self.run(&["keygen".as_ref(), path.as_os_str()]);
    }

    fn trusted_root(&self) -> PathBuf {
        self.dir.join("trusted_root.json")
    }

    /// sigstore-python's verdict on the bundle at `path` (DSSE), offline
    /// against this trusted root and identity; skipped where the venv has
    /// no sigstore (model-signing brings it).
    fn independently_verified(&self, path: &Path, san: &str, issuer: &str) {
        let check = r"
import sys
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier, policy
verifier = Verifier(trusted_root=TrustedRoot.from_file(sys.argv[1]))
bundle = Bundle.from_json(open(sys.argv[2]).read())
verifier.verify_dsse(bundle, policy.Identity(identity=sys.argv[3], issuer=sys.argv[4]))
";
        let has = Command::new(&self.python).args(["-c", "import sigstore"]).output().is_ok_and(|o| o.status.success());
        if !has {
            skip("no sigstore-python in the venv: the Sigstore bundle not checked by an independent verifier");
            return;
        }
        let out = Command::new(&self.python)
            .args(["-c", check])
            .arg(self.trusted_root())
            .arg(path)
            .args([san, issuer])
            .output()
            .unwrap();
        assert!(out.status.success(), "sigstore-python refused the bundle: {}", String::from_utf8_lossy(&out.stderr));
    }
}

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const TOOL_WORKFLOW: &str = "https://github.com/org/tool/.github/workflows/release.yml@refs/tags/v1";
const APP_SIGNER: &str = "release@app.example";

/// cosign's `.sig` as `cosign sign` writes it keylessly: the layer's
/// annotations hold the signature, the Fulcio certificate and chain, and
/// Rekor's record. Returns (manifest, config, payload).
fn cosign_keyless_sig(
    layout: &Layout,
    fake: &FakeSigstore,
    repository: &str,
    digest: &str,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let payload = simple_signing(repository, digest);
    let signed: serde_json::Value =
        serde_json::from_slice(&fake.sign("cosign", &payload, &["--san", TOOL_WORKFLOW, "--issuer", GITHUB])).unwrap();
    let annotations = json!({
        "dev.cosignproject.cosign/signature": signed["signature"],
        "dev.sigstore.cosign/certificate": signed["certificate"],
        "dev.sigstore.cosign/chain": signed["chain"],
        "dev.sigstore.cosign/bundle": signed["bundle"],
    });
    let (manifest, config) = one_layer_manifest(layout, SIMPLE_SIGNING, &payload, annotations);
    (manifest, config, payload)
}

/// cosign's `.att` as `cosign attest` wrote it keylessly before the bundle
/// format: a DSSE envelope of an SLSA provenance statement about `digest`,
/// the certificate, chain and Rekor record (an intoto entry) in the layer's
/// annotations. Returns (manifest, config, envelope).
fn cosign_keyless_att(layout: &Layout, fake: &FakeSigstore, digest: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "tool", "digest": { "sha256": digest } }],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": { "buildDefinition": { "buildType": "https://ci.example/build" } }
    }))
    .unwrap();
    let signed: serde_json::Value =
        serde_json::from_slice(&fake.sign("attest", &statement, &["--san", TOOL_WORKFLOW, "--issuer", GITHUB]))
            .unwrap();
    let envelope = signed["envelope"].as_str().unwrap().as_bytes().to_vec();
    let annotations = json!({
        "dev.cosignproject.cosign/signature": "",
        "dev.sigstore.cosign/certificate": signed["certificate"],
        "dev.sigstore.cosign/chain": signed["chain"],
        "dev.sigstore.cosign/bundle": signed["bundle"],
        "predicateType": "https://slsa.dev/provenance/v1",
    });
    let (manifest, config) = one_layer_manifest(layout, DSSE, &envelope, annotations);
    (manifest, config, envelope)
}

const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// `cosign sign` in the bundle format (cosign 3's default): a referrer of
/// `subject` whose layer is a Sigstore bundle, a DSSE envelope over an
/// in-toto statement about the image, signed `by` (as [`FakeSigstore::sign`]).
/// Returns (manifest, descriptor, bundle).
fn cosign_bundle_referrer(
    fake: &FakeSigstore,
    subject: &[u8],
    about: &str,
    by: &[&str],
) -> (Vec<u8>, serde_json::Value, Vec<u8>) {
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "", "digest": { "sha256": about } }],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {}
    }))
    .unwrap();
    let bundle = fake.sign("bundle", &statement, by);
    let empty = json!({ "mediaType": "application/vnd.oci.empty.v1+json", "digest": format!("sha256:{}", sha(b"{}")), "size": 2 });
    let layer = json!({ "mediaType": BUNDLE_TYPE, "digest": format!("sha256:{}", sha(&bundle)), "size": bundle.len() });
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": BUNDLE_TYPE,
        "config": empty, "layers": [layer],
        "subject": { "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(subject)), "size": subject.len() },
    }))
    .unwrap();
    let descriptor = json!({
        "mediaType": MANIFEST, "digest": format!("sha256:{}", sha(&manifest)), "size": manifest.len(),
        "artifactType": BUNDLE_TYPE
    });
    (manifest, descriptor, bundle)
}

fn keyless_policy(root: &Path, name: &str, signers: &str, pin_root: bool) -> PathBuf {
    let sigstore = if pin_root { "[sigstore]\ntrusted-root = \"trusted_root.json\"\n" } else { "" };
    let policy = root.join(name);
    fs::write(
        &policy,
        format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"op\"\nfile = \"op.pub\"\n{sigstore}[oci]\nrequire = [\"cosign-signature\"]\n{signers}"),
    )
    .unwrap();
    policy
}

#[test]
#[allow(clippy::too_many_lines)]
fn keyless_image_signatures_verify_offline_against_the_pinned_identity() {
    if !registry_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let Some(fake) = FakeSigstore::new(&root.join("sigstore")) else { return };
    fs::copy(fake.trusted_root(), root.join("trusted_root.json")).unwrap();
    let upstream = start_registry(root);
    let host = upstream.host.clone();
    let mut layout = Layout::new(root.join("layout"));

    // team/tool:1.0 signed keylessly by its release workflow in cosign's tag scheme.
    let tool_manifest = upstream_image(&mut layout, &host, "team/tool:1.0", "tool.txt", b"the tool\n");
    let tool_hex = sha(&tool_manifest);
    let tool_repo = format!("{host}/team/tool");
    let (sig_manifest, sig_config, payload) = cosign_keyless_sig(&layout, &fake, &tool_repo, &tool_hex);
    for blob in [&sig_config, &payload] {
        put_blob(&host, "team/tool", blob);
    }
    put_manifest(&host, "team/tool", &format!("sha256-{tool_hex}.sig"), MANIFEST, &sig_manifest);
    let (att_manifest, att_config, envelope) = cosign_keyless_att(&layout, &fake, &tool_hex);
    for blob in [&att_config, &envelope] {
        put_blob(&host, "team/tool", blob);
    }
    put_manifest(&host, "team/tool", &format!("sha256-{tool_hex}.att"), MANIFEST, &att_manifest);

    // team/app:1.0 signed in the bundle format: a referrer, listed at the fallback tag (distribution 2.8).
    let app_manifest = upstream_image(&mut layout, &host, "team/app:1.0", "app.txt", b"the app\n");
    let app_hex = sha(&app_manifest);
    let (referrer_manifest, referrer_d, sigstore_bundle) =
        cosign_bundle_referrer(&fake, &app_manifest, &app_hex, &["--san", APP_SIGNER, "--issuer", GITHUB]);
    for blob in [&b"{}"[..], &sigstore_bundle] {
        put_blob(&host, "team/app", blob);
    }
    put_manifest(&host, "team/app", &format!("sha256:{}", sha(&referrer_manifest)), MANIFEST, &referrer_manifest);
    let listing =
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [referrer_d] })).unwrap();
    put_manifest(&host, "team/app", &format!("sha256-{app_hex}"), INDEX, &listing);

    // team/lib:1.0 signed with a cosign key in the bundle format (`cosign sign --key`, cosign 3).
    let lib_manifest = upstream_image(&mut layout, &host, "team/lib:1.0", "lib.txt", b"the lib\n");
    let lib_hex = sha(&lib_manifest);
    fake.keygen(&root.join("cosign"));
    let key_file = root.join("cosign.key");
    let (lib_referrer, lib_referrer_d, lib_bundle) =
        cosign_bundle_referrer(&fake, &lib_manifest, &lib_hex, &["--key", key_file.to_str().unwrap()]);
    for blob in [&b"{}"[..], &lib_bundle] {
        put_blob(&host, "team/lib", blob);
    }
    put_manifest(&host, "team/lib", &format!("sha256:{}", sha(&lib_referrer)), MANIFEST, &lib_referrer);
    let listing =
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [lib_referrer_d] })).unwrap();
    put_manifest(&host, "team/lib", &format!("sha256-{lib_hex}"), INDEX, &listing);

    keygen(root, "op");
    let bundle = root.join("images.airlock");
    let out =
        export_images(root, &host, &format!("{tool_repo}:1.0\n{host}/team/app:1.0\n{host}/team/lib:1.0\n"), &bundle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let signers = format!(
        "[[oci.signers]]\nimages = [\"{tool_repo}\"]\nrepository = \"https://github.com/org/tool\"\nworkflow = \".github/workflows/release.yml\"\nissuer = \"{GITHUB}\"\n\
         [[oci.signers]]\nimages = [\"{host}/team/app\"]\nidentity = \"{APP_SIGNER}\"\nissuer = \"{GITHUB}\"\n\
         [[oci.signers]]\nimages = [\"{host}/team/lib\"]\nkey = \"cosign.pub\"\n"
    );
    let policy = keyless_policy(root, "policy.toml", &signers, true);
    let mirror = root.join("mirror");
    // With no network at all: everything it checks is pinned or carried.
    let out = import_json(common::airlock_offline(), &bundle, &policy, &mirror);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    common::json_report(&out.stdout);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!(
            "keyless cosign signature by https://github.com/org/tool/.github/workflows/release.yml (issuer {GITHUB}) verified"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "cosign attestations verified: https://slsa.dev/provenance/v1 by https://github.com/org/tool/.github/workflows/release.yml (issuer {GITHUB})"
        )),
        "{report}"
    );
    let app_by = format!("{APP_SIGNER} (issuer {GITHUB})");
    assert!(report.contains(&format!("cosign signature by {app_by} verified (Sigstore bundle)")), "{report}");
    assert!(
        report.contains(&format!(
            "Sigstore bundle referrer(s) verified: https://sigstore.dev/cosign/sign/v1 by {app_by}"
        )),
        "{report}"
    );
    assert!(report.contains("cosign signature by cosign.pub verified (Sigstore bundle)"), "{report}");
    assert!(!report.contains("keyless cosign signature by cosign.pub"), "a key is not keyless: {report}");

    // An independent verifier (sigstore-python, in the same venv) accepts the bundle as the mirror holds it.
    let carried = mirror.join(format!("oci/blobs/sha256/{}", sha(&sigstore_bundle)));
    assert_eq!(fs::read(&carried).unwrap(), sigstore_bundle);
    fake.independently_verified(&carried, APP_SIGNER, GITHUB);

    // The wrong workflow, an unpinned root, no root, another identity: exit 1, one line, nothing written.
    let other_root = FakeSigstore::new(&root.join("other-sigstore")).unwrap();
    let refused = |what: &str, policy: &Path, bundle: &Path, expect: &str| {
        let mirror = root.join(format!("mirror-{}", sha(what.as_bytes())));
        let out = import(bundle, policy, &mirror);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let line = one_line(&out.stderr);
        assert!(line.contains(expect), "{what}: {line}");
        assert!(!mirror.join("oci").exists(), "{what}: the mirror was written");
    };
    let wrong_workflow = signers.replace("release.yml\"", "nightly.yml\"");
    refused(
        "the wrong workflow",
        &keyless_policy(root, "wrong-workflow.toml", &wrong_workflow, true),
        &bundle,
        &format!(
            "its keyless cosign signature is by {TOOL_WORKFLOW} (issuer {GITHUB}), not by a signer [[oci.signers]] names"
        ),
    );
    refused(
        "another identity for the bundle",
        &keyless_policy(root, "other-identity.toml", &signers.replace(APP_SIGNER, "someone@app.example"), true),
        &bundle,
        &format!("Sigstore bundle is by {APP_SIGNER} (issuer {GITHUB}), not by a signer"),
    );
    fs::copy(other_root.trusted_root(), root.join("other_root.json")).unwrap();
    let unpinned = keyless_policy(root, "unpinned.toml", &signers, true);
    fs::write(&unpinned, fs::read_to_string(&unpinned).unwrap().replace("trusted_root.json", "other_root.json"))
        .unwrap();
    refused("a root that is not the signer's", &unpinned, &bundle, "does not verify against the pinned Sigstore root");
    let stranger = root.join("stranger");
    fake.keygen(&stranger);
    refused(
        "a bundle by an unpinned key",
        &keyless_policy(root, "stranger.toml", &signers.replace("cosign.pub", "stranger.pub"), true),
        &bundle,
        "Sigstore bundle does not verify with a signer [[oci.signers]] pins for it (stranger.pub)",
    );
    refused(
        "a keyless bundle where only keys are pinned",
        &keyless_policy(
            root,
            "keys-only.toml",
            &signers.replace(&format!("identity = \"{APP_SIGNER}\"\nissuer = \"{GITHUB}\""), "key = \"cosign.pub\""),
            true,
        ),
        &bundle,
        "is signed keylessly, but [[oci.signers]] pins only keys for this image (cosign.pub)",
    );
    refused(
        "no root pinned",
        &keyless_policy(root, "no-root.toml", &signers, false),
        &bundle,
        "pins no [sigstore] trusted-root",
    );

    // Re-signed by the trusted exporter key: a validly signed keyless bundle about another
    // image put in as app's referrer, and tool's Rekor record taken away.
    let op = SecretKey::load(&root.join("op.key")).unwrap();
    let parts = hostile::open(&bundle);
    let (_, _, about_tool) =
        cosign_bundle_referrer(&fake, &app_manifest, &tool_hex, &["--san", APP_SIGNER, "--issuer", GITHUB]);
    let mut manifest = parts.manifest.clone();
    let app = manifest
        .entries
        .decoded_mut()
        .iter_mut()
        .find(|e| e.name == format!("{host}/team/app") && e.version.is_some())
        .unwrap();
    let blob = app.evidence.iter_mut().find(|d| d.kind == "oci-referrer-blob" && d.data == sigstore_bundle).unwrap();
    blob.data = about_tool.clone();
    let referrer = app.evidence.iter_mut().find(|d| d.kind == "oci-referrer").unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&referrer.data).unwrap();
    value["layers"][0]["digest"] = json!(format!("sha256:{}", sha(&about_tool)));
    value["layers"][0]["size"] = json!(about_tool.len());
    referrer.data = serde_json::to_vec(&value).unwrap();
    let path = root.join("about-other.airlock");
    fs::write(&path, hostile::rebuild(&manifest, &parts.blobs, &[&op], &[&op])).unwrap();
    refused("a bundle about another image", &policy, &path, "its Sigstore bundle does not verify");

    let mut manifest = parts.manifest.clone();
    let tool = manifest.entries.decoded_mut().iter_mut().find(|e| e.name == tool_repo && e.version.is_some()).unwrap();
    let sig = tool.evidence.iter_mut().find(|d| d.kind == "cosign-signature").unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&sig.data).unwrap();
    value["layers"][0]["annotations"].as_object_mut().unwrap().remove("dev.sigstore.cosign/bundle");
    sig.data = serde_json::to_vec(&value).unwrap();
    let path = root.join("no-record.airlock");
    fs::write(&path, hostile::rebuild(&manifest, &parts.blobs, &[&op], &[&op])).unwrap();
    refused("no Rekor record", &policy, &path, "carries no Rekor record");

    // A keyless attestation, validly signed by the tool's workflow, about another image.
    let scratch = Layout::new(root.join("scratch-att"));
    let (att_manifest, att_config, envelope) = cosign_keyless_att(&scratch, &fake, &app_hex);
    let mut manifest = parts.manifest.clone();
    let tool = manifest.entries.decoded_mut().iter_mut().find(|e| e.name == tool_repo && e.version.is_some()).unwrap();
    tool.evidence.retain(|d| d.kind != "cosign-attestation");
    for (kind, data) in
        [("cosign-attestation", &att_manifest), ("cosign-blob", &att_config), ("cosign-blob", &envelope)]
    {
        tool.evidence.push(airlock::manifest::Evidence { kind: kind.into(), data: data.clone() });
    }
    let path = root.join("att-about-other.airlock");
    fs::write(&path, hostile::rebuild(&manifest, &parts.blobs, &[&op], &[&op])).unwrap();
    refused(
        "a keyless attestation about another image",
        &policy,
        &path,
        "its keyless cosign attestation does not verify",
    );
}

/// nginx on `port` in front of the registry at `upstream`, taking request
/// bodies of at most `max_body` (as a site's proxy often caps them).
fn start_capping_proxy(dir: &Path, upstream: &str, port: u16, max_body: &str) -> Option<Upstream> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(PathBuf::from).find(|p| p.is_file());
    let Some(nginx) = nginx else {
        skip("nginx is not installed (apt-get install nginx): chunked pushes through a capping proxy not tried");
        return None;
    };
    let prefix = dir.join("nginx");
    let server = format!(
        "server {{\n  listen 127.0.0.1:{port};\n  client_max_body_size {max_body};\n  location / {{\n    proxy_pass http://{upstream};\n    proxy_set_header Host $http_host;\n  }}\n}}\n"
    );
    let child = common::spawn_nginx(&nginx, &prefix, &server);
    let proxy = Upstream { child, host: format!("127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(15);
    while http().get(&format!("http://{}/v2/", proxy.host)).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(proxy)
}

#[test]
fn push_in_chunks_through_a_proxy_that_caps_request_bodies() {
    if !registry_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let upstream = start_registry(root);
    let host = upstream.host.clone();
    let mut layout = Layout::new(root.join("layout"));
    // 100 KiB that tar and zstd cannot shrink: one layer over the proxy's 24 KiB cap.
    let noise: Vec<u8> = (0..100u32 << 10).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let manifest = upstream_image(&mut layout, &host, "team/big:1.0", "big.bin", &noise);
    keygen(root, "op");
    let bundle = root.join("big.airlock");
    let out = export_images(root, &host, &format!("{host}/team/big:1.0\n"), &bundle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mirror = root.join("mirror");
    let out = airlock()
        .args(["import", "--quiet"])
        .arg(&bundle)
        .args(["--trust"])
        .arg(root.join("op.pub"))
        .arg("--mirror")
        .arg(&mirror)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    fs::create_dir_all(root.join("site")).unwrap();
    let site = start_registry(&root.join("site"));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(proxy) = start_capping_proxy(root, &site.host, port, "24k") else { return };
    // Whole, the layer is refused by the proxy (413): one line, exit 2.
    let out = airlock_push(&mirror, &proxy.host, &["--plain-http"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(one_line(&out.stderr).contains("413"), "{}", one_line(&out.stderr));
    // In 16 KiB chunks it goes through, and the registry holds the image byte for byte.
    let out = airlock_push(&mirror, &proxy.host, &["--plain-http", "--chunk-size", "16KiB"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, _, _, body, _) =
        call("GET", &format!("http://{}/v2/team/big/manifests/1.0", proxy.host), &[("Accept", MANIFEST)]);
    assert_eq!((status, body), (200, manifest.clone()));
    let layer = tar_of("big.bin", &noise);
    let (status, _, _, body, _) =
        call("GET", &format!("http://{}/v2/team/big/blobs/sha256:{}", site.host, sha(&layer)), &[]);
    assert_eq!((status, body.len()), (200, layer.len()));
    assert_eq!(sha(&body), sha(&layer));
    let log = fs::read_to_string(root.join("nginx/access.log")).unwrap();
    assert!(log.matches("\"PATCH ").count() >= 7, "the layer went in chunks: {log}");
}
