//! A fake registry on loopback serving the fixtures under fixtures/registry/
//! in each registry's real wire format: a PEP 691 simple index with PEP 658
//! metadata and PEP 740 provenance, npm packuments with dist.signatures and
//! attestations, a sparse cargo index. Metadata is generated from the
//! fixture files, so digests always match them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;

/// How the registry misbehaves, if at all.
#[derive(Default, Clone)]
pub struct Faults {
    /// Serve metadata with signatures, attestations and provenance removed (a stripping proxy).
    pub strip_evidence: bool,
    /// Answer this status for a path, this many times (then behave).
    pub fail: HashMap<String, (u16, usize)>,
    /// Paths whose body is sent one byte per second.
    pub drip: Vec<String>,
    /// Paths whose body is replaced by these bytes (a tampering proxy).
    pub replace: HashMap<String, Vec<u8>>,
}

pub struct Registry {
    pub base: String,
    hits: Arc<Mutex<Vec<String>>>,
}

pub fn fixture(parts: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry").join(parts)
}

fn read(parts: &str) -> Vec<u8> {
    std::fs::read(fixture(parts)).unwrap()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

pub fn sri(data: &[u8]) -> String {
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(data)))
}

pub const WHEEL: &str = "tinyapp-1.0.0-py3-none-any.whl";
pub const SDIST: &str = "tinyapp-1.0.0.tar.gz";
/// A package published only as an sdist (with an in-tree build backend).
pub const SDIST_ONLY: &str = "sdistonly-0.1.0.tar.gz";
pub const TINYLIB: &str = "tinylib-1.0.0.tgz";
pub const SCOPED: &str = "airlock-test-scoped-2.1.0.tgz";
pub const CRATE: &str = "tinycrate-0.1.0.crate";
pub const HELPER_CRATE: &str = "tinyhelper-0.2.0.crate";

impl Registry {
    pub fn start(faults: Faults) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes = Arc::new(routes(&base, faults.strip_evidence));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(faults));
        let thread_hits = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, hits, faults) = (routes.clone(), thread_hits.clone(), faults.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &routes, &hits, &faults);
                });
            }
        });
        Registry { base, hits }
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().iter().filter(|p| *p == path).count()
    }

    /// Requests for artifacts (not metadata).
    pub fn artifact_hits(&self) -> usize {
        let artifacts = [".whl", ".tar.gz", ".tgz", "/download"];
        self.hits.lock().unwrap().iter().filter(|p| artifacts.iter().any(|a| p.ends_with(a))).count()
    }
}

fn routes(base: &str, strip: bool) -> HashMap<String, (String, Vec<u8>)> {
    let mut r: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    let mut add = |path: &str, kind: &str, body: Vec<u8>| {
        r.insert(path.to_owned(), (kind.to_owned(), body));
    };
    // PyPI.
    let (wheel, sdist, metadata) =
        (read(&format!("pypi/{WHEEL}")), read(&format!("pypi/{SDIST}")), read(&format!("pypi/{WHEEL}.metadata")));
    let provenance_url = format!("{base}/integrity/tinyapp/1.0.0/{WHEEL}/provenance");
    let mut wheel_file = json!({
        "filename": WHEEL, "url": format!("{base}/files/{WHEEL}"), "hashes": {"sha256": sha256_hex(&wheel)},
        "requires-python": ">=3.8", "core-metadata": {"sha256": sha256_hex(&metadata)}, "size": wheel.len(),
    });
    if !strip {
        wheel_file["provenance"] = json!(provenance_url);
    }
    let sdist_file = json!({
        "filename": SDIST, "url": format!("../../files/{SDIST}"), "hashes": {"sha256": sha256_hex(&sdist)},
        "requires-python": ">=3.8", "yanked": "superseded by 1.0.1", "size": sdist.len(),
    });
    let project = json!({"meta": {"api-version": "1.1"}, "name": "tinyapp", "files": [wheel_file, sdist_file], "versions": ["1.0.0"]});
    add("/simple/tinyapp/", "application/vnd.pypi.simple.v1+json", serde_json::to_vec(&project).unwrap());
    add(&format!("/files/{WHEEL}"), "application/octet-stream", wheel);
    add(&format!("/files/{WHEEL}.metadata"), "text/plain", metadata);
    add(&format!("/files/{SDIST}"), "application/octet-stream", sdist);
    let sdist_only = read(&format!("pypi/{SDIST_ONLY}"));
    let project = json!({"meta": {"api-version": "1.1"}, "name": "sdistonly", "versions": ["0.1.0"], "files": [
        {"filename": SDIST_ONLY, "url": format!("{base}/files/{SDIST_ONLY}"), "hashes": {"sha256": sha256_hex(&sdist_only)}, "requires-python": ">=3.8"}]});
    add("/simple/sdistonly/", "application/vnd.pypi.simple.v1+json", serde_json::to_vec(&project).unwrap());
    add(&format!("/files/{SDIST_ONLY}"), "application/octet-stream", sdist_only);
    add(
        &format!("/integrity/tinyapp/1.0.0/{WHEEL}/provenance"),
        "application/json",
        read("upstream/pypi_attestations-0.0.19.tar.gz.provenance"),
    );

    // npm.
    let signatures: serde_json::Value = serde_json::from_slice(&read("upstream/registry-signatures.json")).unwrap();
    let first = &signatures["signatures"][0];
    for (name, version, file, path) in [
        ("tinylib", "1.0.0", TINYLIB, "tinylib/-/tinylib-1.0.0.tgz"),
        ("@airlock-test/scoped", "2.1.0", SCOPED, "@airlock-test/scoped/-/scoped-2.1.0.tgz"),
    ] {
        let tarball = read(&format!("npm/{file}"));
        let mut dist = json!({
            "integrity": sri(&tarball), "shasum": hex::encode(sha1::Sha1::digest(&tarball)),
            "tarball": format!("{base}/npm/{path}"),
        });
        if !strip {
            // tinylib is signed by the test registry key; the scoped package carries a
            // real signature captured from the public registry for another package.
            dist["signatures"] = if name == "tinylib" {
                json!([{"keyid": TEST_KEYID, "sig": test_sign(&format!("{name}@{version}:{}", sri(&tarball)))}])
            } else {
                json!([{"keyid": first["keyid"], "sig": first["sig"]}])
            };
            if name == "tinylib" {
                dist["attestations"] = json!({"url": format!("{base}/npm/-/npm/v1/attestations/{name}@{version}"), "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}});
            }
        }
        let mut object = json!({"name": name, "version": version, "dist": dist});
        if name == "@airlock-test/scoped" {
            object["dependencies"] = json!({"tinylib": "1.0.0"});
        }
        let packument = json!({"name": name, "dist-tags": {"latest": version}, "versions": {version: object}, "time": {version: "2024-05-01T10:00:00.000Z"}});
        add(&format!("/npm/{}", name.replace('/', "%2f")), "application/json", serde_json::to_vec(&packument).unwrap());
        add(&format!("/npm/{path}"), "application/octet-stream", tarball);
    }
    add(
        "/npm/-/npm/v1/attestations/tinylib@1.0.0",
        "application/json",
        read("upstream/attestations-sigstore-1.0.0.json"),
    );

    real_packages(&mut add, base, strip);

    // Cargo sparse index.
    add("/cargo/config.json", "application/json", format!("{{\"dl\":\"{base}/cargo/dl\"}}").into_bytes());
    for (name, version, file) in [("tinycrate", "0.1.0", CRATE), ("tinyhelper", "0.2.0", HELPER_CRATE)] {
        let krate = read(&format!("cargo/{file}"));
        let line = json!({"name": name, "vers": version, "deps": [], "cksum": sha256_hex(&krate), "features": {}, "yanked": false});
        let older = json!({"name": name, "vers": "0.0.9", "deps": [], "cksum": "00".repeat(32), "features": {}, "yanked": true});
        add(&format!("/cargo/ti/ny/{name}"), "text/plain", format!("{older}\n{line}\n").into_bytes());
        add(&format!("/cargo/dl/{name}/{version}/download"), "application/octet-stream", krate);
    }
    r
}

/// Published packages whose real upstream evidence fixtures/registry/upstream
/// holds: npm sigstore@1.0.0 (registry signature, SLSA provenance and publish
/// attestation) and PyPI pypi-attestations 0.0.19 (PEP 740 provenance).
fn real_packages(add: &mut impl FnMut(&str, &str, Vec<u8>), base: &str, strip: bool) {
    let tarball = read(&format!("upstream/{REAL_NPM}"));
    let signatures: serde_json::Value = serde_json::from_slice(&read("upstream/registry-signatures.json")).unwrap();
    let signed = signatures["signatures"].as_array().unwrap().iter().find(|s| s["name"] == "sigstore").unwrap();
    let mut dist = json!({"integrity": sri(&tarball), "tarball": format!("{base}/npm/sigstore/-/{REAL_NPM}")});
    if !strip {
        dist["signatures"] = json!([{"keyid": signed["keyid"], "sig": signed["sig"]}]);
        dist["attestations"] = json!({"url": format!("{base}/npm/-/npm/v1/attestations/sigstore@1.0.0"), "provenance": {"predicateType": "https://slsa.dev/provenance/v0.2"}});
    }
    let packument = json!({"name": "sigstore", "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "sigstore", "version": "1.0.0", "dist": dist}},
        "time": {"1.0.0": "2023-02-09T17:56:05.000Z"}});
    add("/npm/sigstore", "application/json", serde_json::to_vec(&packument).unwrap());
    add(&format!("/npm/sigstore/-/{REAL_NPM}"), "application/octet-stream", tarball);
    add(
        "/npm/-/npm/v1/attestations/sigstore@1.0.0",
        "application/json",
        read("upstream/attestations-sigstore-1.0.0.json"),
    );

    let sdist = read(&format!("upstream/{REAL_SDIST}"));
    let mut file = json!({"filename": REAL_SDIST, "url": format!("{base}/files/{REAL_SDIST}"),
        "hashes": {"sha256": sha256_hex(&sdist)}, "requires-python": ">=3.9", "size": sdist.len()});
    if !strip {
        file["provenance"] = json!(format!("{base}/integrity/pypi-attestations/0.0.19/{REAL_SDIST}/provenance"));
    }
    let project =
        json!({"meta": {"api-version": "1.1"}, "name": "pypi-attestations", "files": [file], "versions": ["0.0.19"]});
    add("/simple/pypi-attestations/", "application/vnd.pypi.simple.v1+json", serde_json::to_vec(&project).unwrap());
    add(&format!("/files/{REAL_SDIST}"), "application/octet-stream", sdist);
    add(
        &format!("/integrity/pypi-attestations/0.0.19/{REAL_SDIST}/provenance"),
        "application/json",
        read(&format!("upstream/{REAL_SDIST}.provenance")),
    );
}

pub const REAL_NPM: &str = "sigstore-1.0.0.tgz";
pub const REAL_SDIST: &str = "pypi_attestations-0.0.19.tar.gz";

/// Lockfiles pinning the packages with real upstream evidence.
pub fn real_package_lock_json(base: &str) -> String {
    let tarball = read(&format!("upstream/{REAL_NPM}"));
    serde_json::to_string_pretty(&json!({
        "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"sigstore": "1.0.0"}},
            "node_modules/sigstore": {"version": "1.0.0", "resolved": format!("{base}/npm/sigstore/-/{REAL_NPM}"), "integrity": sri(&tarball)},
        }
    }))
    .unwrap()
}

pub fn real_requirements_txt() -> String {
    format!(
        "pypi-attestations==0.0.19 \\\n    --hash=sha256:{}\n",
        sha256_hex(&read(&format!("upstream/{REAL_SDIST}")))
    )
}

/// A fixture file's bytes (for tests that build tampered variants).
pub fn fixture_bytes(parts: &str) -> Vec<u8> {
    read(parts)
}

fn serve(
    stream: TcpStream,
    routes: &HashMap<String, (String, Vec<u8>)>,
    hits: &Mutex<Vec<String>>,
    faults: &Mutex<Faults>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").replace("%2F", "%2f");
    let mut range_start = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range_start = v.trim().trim_end_matches('-').parse::<usize>().ok();
        }
    }
    hits.lock().unwrap().push(path.clone());
    let mut out = stream;
    let (failure, drip, replaced) = {
        let mut f = faults.lock().unwrap();
        let failure = match f.fail.get_mut(&path) {
            Some((status, left)) if *left > 0 => {
                *left -= 1;
                Some(*status)
            }
            _ => None,
        };
        (failure, f.drip.contains(&path), f.replace.get(&path).cloned())
    };
    if let Some(status) = failure {
        return write!(out, "HTTP/1.1 {status} Failure\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    let Some((kind, body)) = routes.get(&path) else {
        return write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    let body = replaced.unwrap_or_else(|| body.clone());
    let (status, body) = match range_start {
        Some(start) if start < body.len() => ("206 Partial Content", body[start..].to_vec()),
        _ => ("200 OK", body),
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if drip {
        for byte in body {
            out.write_all(&[byte])?;
            out.flush()?;
            std::thread::sleep(Duration::from_secs(1));
        }
        return Ok(());
    }
    out.write_all(&body)?;
    let _ = reader.read(&mut [0u8; 1]);
    Ok(())
}

/// The key id of the fake registry's signing key.
pub const TEST_KEYID: &str = "SHA256:airlock-test-registry-key";

fn test_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn test_sign(message: &str) -> String {
    use p256::ecdsa::signature::Signer as _;
    let sig: p256::ecdsa::Signature = test_key().sign(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
}

/// The fake registry's keys document (as `/-/npm/v1/keys` serves it), with
/// `expires` for the key, to pin in a policy.
pub fn npm_keys_json(expires: Option<&str>) -> String {
    use p256::pkcs8::EncodePublicKey as _;
    let der = test_key().verifying_key().to_public_key_der().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    json!({"keys": [{"keyid": TEST_KEYID, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256", "key": key, "expires": expires}]}).to_string()
}

/// Lockfiles pinning the fixtures, as the real tools write them.
pub fn requirements_txt() -> String {
    let (wheel, sdist) = (read(&format!("pypi/{WHEEL}")), read(&format!("pypi/{SDIST}")));
    let sdist_only = read(&format!("pypi/{SDIST_ONLY}"));
    format!(
        "# This file is autogenerated by pip-compile with Python 3.12\nsdistonly==0.1.0 \\\n    --hash=sha256:{}\n    # via -r requirements.in\ntinyapp==1.0.0 \\\n    --hash=sha256:{} \\\n    --hash=sha256:{}\n    # via -r requirements.in\n",
        sha256_hex(&sdist_only),
        sha256_hex(&wheel),
        sha256_hex(&sdist)
    )
}

pub fn package_lock_json(base: &str) -> String {
    let (tinylib, scoped) = (read(&format!("npm/{TINYLIB}")), read(&format!("npm/{SCOPED}")));
    serde_json::to_string_pretty(&json!({
        "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"@airlock-test/scoped": "2.1.0"}},
            "node_modules/@airlock-test/scoped": {"version": "2.1.0", "resolved": format!("{base}/npm/@airlock-test/scoped/-/scoped-2.1.0.tgz"), "integrity": sri(&scoped), "dependencies": {"tinylib": "1.0.0"}},
            "node_modules/tinylib": {"version": "1.0.0", "resolved": format!("{base}/npm/tinylib/-/tinylib-1.0.0.tgz"), "integrity": sri(&tinylib)},
        }
    }))
    .unwrap()
}

pub fn cargo_lock() -> String {
    let krate = read(&format!("cargo/{CRATE}"));
    let helper = read(&format!("cargo/{HELPER_CRATE}"));
    format!(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"tinycrate\",\n \"tinyhelper\",\n]\n\n[[package]]\nname = \"tinycrate\"\nversion = \"0.1.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n[[package]]\nname = \"tinyhelper\"\nversion = \"0.2.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n",
        sha256_hex(&krate),
        sha256_hex(&helper)
    )
}
