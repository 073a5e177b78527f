"""Fixture registry for bench/clients: generates a deterministic registry tree
(PyPI wheels, npm tarballs, crates), serves it on loopback in each registry's
wire format, and writes the lockfiles that pin it.

    python3 clients_registry.py gen   --tree DIR --packages N [--seed S]
    python3 clients_registry.py serve --tree DIR --port-file FILE [--latency-ms MS]
    python3 clients_registry.py locks --tree DIR --base URL --out DIR

Python 3 standard library only.
"""

import argparse
import base64
import csv
import gzip
import hashlib
import html
import io
import json
import math
import os
import random
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

PYPI_JSON = "application/vnd.pypi.simple.v1+json"
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
MIN_SIZE, MAX_SIZE = 20 << 10, 2 << 20


# --------------------------------------------------------------------------
# Generation


def payload_size(rng):
    """Log-uniform between 20 KiB and 2 MiB: many small packages, a few big
    ones, as in a real dependency tree (mean about 440 KiB)."""
    return int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))


def digests(data):
    return {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": base64.b64encode(hashlib.sha512(data).digest()).decode(),
        "sha1": hashlib.sha1(data).hexdigest(),
    }


def tar_gz(members, mtime=1700000000):
    """A gzip'd tar of (path, bytes) members, byte-for-byte deterministic."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members:
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def wheel(project, version, payload):
    """A valid py3-none-any wheel: module, dist-info METADATA, WHEEL, RECORD."""
    module = project.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nSummary: airlock benchmark fixture\n".encode()
    files = [
        (f"{module}/__init__.py", f'"""{project} fixture."""\n__version__ = "{version}"\n'.encode()),
        (f"{module}/data.bin", payload),
        (f"{dist_info}/METADATA", metadata),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: airlock-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([path, f"sha256={digest}", len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    files.append((f"{dist_info}/RECORD", record.getvalue().encode()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return out.getvalue(), metadata


def generate(tree, count, seed):
    rng = random.Random(seed)
    catalog = {"pypi": [], "npm": [], "cargo": []}
    for sub in ("pypi/files", "npm/tarballs", "cargo/crates"):
        os.makedirs(os.path.join(tree, sub), exist_ok=True)

    def write(rel, data):
        with open(os.path.join(tree, rel), "wb") as f:
            f.write(data)

    for i in range(count):
        version = f"1.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
        project = f"bench-py-{i:04d}"
        filename = f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
        data, metadata = wheel(project, version, rng.randbytes(payload_size(rng)))
        write(f"pypi/files/{filename}", data)
        write(f"pypi/files/{filename}.metadata", metadata)
        catalog["pypi"].append(
            {"name": project, "version": version, "file": filename, **digests(data),
             "metadata_sha256": hashlib.sha256(metadata).hexdigest()}
        )

        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
        name = f"bench-npm-{i:04d}"
        manifest = json.dumps({"name": name, "version": version, "main": "index.js", "license": "MIT"}, indent=2)
        data = tar_gz([
            ("package/package.json", manifest.encode()),
            ("package/index.js", f"module.exports = {json.dumps(name)};\n".encode()),
            ("package/data.bin", rng.randbytes(payload_size(rng))),
        ])
        filename = f"{name}-{version}.tgz"
        write(f"npm/tarballs/{filename}", data)
        catalog["npm"].append({"name": name, "version": version, "file": filename, **digests(data)})

        version = f"0.{rng.randint(1, 30)}.{rng.randint(0, 20)}"
        name = f"bench-crate-{i:04d}"
        root = f"{name}-{version}"
        cargo_toml = (
            f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'
            f'description = "airlock benchmark fixture"\nlicense = "MIT"\n'
        )
        data = tar_gz([
            (f"{root}/Cargo.toml", cargo_toml.encode()),
            (f"{root}/src/lib.rs", b"pub static DATA: &[u8] = include_bytes!(\"../data.bin\");\n"),
            (f"{root}/data.bin", rng.randbytes(payload_size(rng))),
        ])
        filename = f"{root}.crate"
        write(f"cargo/crates/{filename}", data)
        catalog["cargo"].append({"name": name, "version": version, "file": filename, **digests(data)})

    with open(os.path.join(tree, "catalog.json"), "w") as f:
        json.dump(catalog, f, indent=1)


# --------------------------------------------------------------------------
# Lockfiles


def cargo_index_path(name):
    name = name.lower()
    if len(name) <= 2:
        return f"{len(name)}/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[:2]}/{name[2:4]}/{name}"


def write_locks(tree, base, out):
    with open(os.path.join(tree, "catalog.json")) as f:
        catalog = json.load(f)
    os.makedirs(out, exist_ok=True)

    # pip-compile style requirements.txt: exact pins, one --hash per file.
    lines = [f"{p['name']}=={p['version']} \\\n    --hash=sha256:{p['sha256']}\n" for p in catalog["pypi"]]
    with open(os.path.join(out, "requirements.txt"), "w") as f:
        f.write("# generated by bench/clients\n" + "".join(lines))

    # npm: package.json + package-lock.json v3 with resolved and integrity.
    npm_dir = os.path.join(out, "npm")
    os.makedirs(npm_dir, exist_ok=True)
    deps = {p["name"]: p["version"] for p in catalog["npm"]}
    package = {"name": "bench-app", "version": "1.0.0", "private": True, "dependencies": deps}
    packages = {"": {"name": "bench-app", "version": "1.0.0", "dependencies": deps}}
    for p in catalog["npm"]:
        packages[f"node_modules/{p['name']}"] = {
            "version": p["version"],
            "resolved": f"{base}/npm/{p['name']}/-/{p['file']}",
            "integrity": f"sha512-{p['sha512']}",
            "license": "MIT",
        }
    lock = {"name": "bench-app", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": packages}
    with open(os.path.join(npm_dir, "package.json"), "w") as f:
        json.dump(package, f, indent=2)
        f.write("\n")
    with open(os.path.join(npm_dir, "package-lock.json"), "w") as f:
        json.dump(lock, f, indent=2)
        f.write("\n")

    # cargo: a package depending on every crate, and Cargo.lock v4 exactly as
    # cargo writes it (so `cargo vendor --locked` accepts it unchanged). The
    # lock's checksum is the sha256 of the .crate, as is the index's cksum.
    cargo_dir = os.path.join(out, "cargo")
    os.makedirs(os.path.join(cargo_dir, "src"), exist_ok=True)
    crates = sorted(catalog["cargo"], key=lambda c: c["name"])
    with open(os.path.join(cargo_dir, "Cargo.toml"), "w") as f:
        f.write('[package]\nname = "bench-app"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n')
        for c in crates:
            f.write(f'{c["name"]} = "={c["version"]}"\n')
    with open(os.path.join(cargo_dir, "src/lib.rs"), "w") as f:
        f.write("")
    packs = [("bench-app", "0.1.0", None, None, [c["name"] for c in crates])]
    packs += [(c["name"], c["version"], CRATES_IO, c["sha256"], []) for c in crates]
    packs.sort(key=lambda p: (p[0], p[1]))
    text = "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n"
    for name, version, source, checksum, dependencies in packs:
        text += f'\n[[package]]\nname = "{name}"\nversion = "{version}"\n'
        if source:
            text += f'source = "{source}"\nchecksum = "{checksum}"\n'
        if dependencies:
            text += "dependencies = [\n" + "".join(f' "{d}",\n' for d in dependencies) + "]\n"
    with open(os.path.join(cargo_dir, "Cargo.lock"), "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# Server


class Registry:
    """Every metadata document, rendered once for `base`; artifacts stay on disk."""

    def __init__(self, tree, base):
        with open(os.path.join(tree, "catalog.json")) as f:
            catalog = json.load(f)
        self.docs = {}  # path -> {content type: bytes}
        self.files = {}  # path -> (file on disk, content type)
        self.redirects = {}
        # PyPI: PEP 503 HTML and PEP 691 JSON project pages, PEP 658 metadata.
        root = ['<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1"></head><body>\n']
        for p in catalog["pypi"]:
            name, filename = p["name"], p["file"]
            root.append(f'<a href="{name}/">{name}</a><br/>\n')
            url = f"{base}/files/{filename}"
            meta = p["metadata_sha256"]
            page_html = (
                '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
                f"<title>Links for {name}</title></head><body><h1>Links for {name}</h1>\n"
                f'<a href="{html.escape(url)}#sha256={p["sha256"]}" data-dist-info-metadata="sha256={meta}" '
                f'data-core-metadata="sha256={meta}">{filename}</a><br/>\n</body></html>\n'
            )
            page_json = {
                "meta": {"api-version": "1.1"},
                "name": name,
                "versions": [p["version"]],
                "files": [{
                    "filename": filename, "url": url, "hashes": {"sha256": p["sha256"]}, "size": p["size"],
                    "core-metadata": {"sha256": meta}, "dist-info-metadata": {"sha256": meta},
                    "upload-time": "2024-01-01T00:00:00.000000Z",
                }],
            }
            self.docs[f"/simple/{name}/"] = {
                "text/html": page_html.encode(),
                PYPI_JSON: json.dumps(page_json).encode(),
            }
            self.redirects[f"/simple/{name}"] = f"/simple/{name}/"
            self.files[f"/files/{filename}"] = (os.path.join(tree, "pypi/files", filename), "application/octet-stream")
            self.docs[f"/files/{filename}.metadata"] = {"text/plain": open(
                os.path.join(tree, "pypi/files", filename + ".metadata"), "rb").read()}
        root.append("</body></html>\n")
        self.docs["/simple/"] = {"text/html": "".join(root).encode()}
        # npm: packuments and tarballs.
        for p in catalog["npm"]:
            name, version = p["name"], p["version"]
            tarball = f"{base}/npm/{name}/-/{p['file']}"
            packument = {
                "_id": name, "name": name, "dist-tags": {"latest": version},
                "versions": {version: {
                    "name": name, "version": version, "main": "index.js", "license": "MIT",
                    "_id": f"{name}@{version}",
                    "dist": {"integrity": f"sha512-{p['sha512']}", "shasum": p["sha1"], "tarball": tarball},
                }},
                "time": {"created": "2024-01-01T00:00:00.000Z", version: "2024-01-01T00:00:00.000Z"},
            }
            self.docs[f"/npm/{name}"] = {"application/json": json.dumps(packument).encode()}
            self.files[f"/npm/{name}/-/{p['file']}"] = (os.path.join(tree, "npm/tarballs", p["file"]), "application/octet-stream")
        # cargo: sparse index and downloads.
        self.docs["/index/config.json"] = {"application/json": json.dumps({"dl": f"{base}/dl", "api": None}).encode()}
        for c in catalog["cargo"]:
            line = {"name": c["name"], "vers": c["version"], "deps": [], "cksum": c["sha256"], "features": {}, "yanked": False}
            self.docs[f"/index/{cargo_index_path(c['name'])}"] = {"text/plain": (json.dumps(line) + "\n").encode()}
            self.files[f"/dl/{c['name']}/{c['version']}/download"] = (
                os.path.join(tree, "cargo/crates", c["file"]), "application/octet-stream")
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "metadata": 0, "artifacts": 0, "other": 0, "bytes": 0}
        self.log = None

    def count(self, path, kind, size):
        with self.lock:
            self.stats["requests"] += 1
            self.stats[kind] += 1
            self.stats["bytes"] += size
            if self.log:
                self.log.write(f"{kind} {size} {path}\n")
                self.log.flush()


def negotiate(accept, offered):
    """The content type the Accept header prefers among `offered` (the first
    offered on a tie, so `*/*` gets PEP 503 HTML and only a client that asks
    for PEP 691 JSON gets it)."""
    best, best_q = None, -1.0
    for part in (accept or "*/*").split(","):
        fields = [f.strip() for f in part.split(";")]
        media, q = fields[0].lower(), 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        for candidate in offered:
            if q > best_q and q > 0 and (media == candidate or media == "*/*" or
                                          (media.endswith("/*") and candidate.startswith(media[:-1]))):
                best, best_q = candidate, q
    # PEP 691: a client that asks for nothing we serve still gets HTML.
    return best or offered[0]


def make_handler(registry, latency):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real registries allow
        server_version = "airlock-bench-registry"
        # Headers and body go out in separate writes; with Nagle on, the body
        # of a small response waits for the client's delayed ACK (40 ms).
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = unquote(urlsplit(self.path).path)
            if path == "/_bench/stats":
                with registry.lock:
                    body = json.dumps(registry.stats).encode()
                return self.reply(200, "application/json", body)
            if latency:
                time.sleep(latency)
            if path in registry.redirects:
                registry.count(path, "other", 0)
                self.send_response(301)
                self.send_header("Location", registry.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            doc = registry.docs.get(path)
            if doc is not None:
                kind = negotiate(self.headers.get("Accept"), sorted(doc, key=lambda k: k != "text/html"))
                registry.count(path, "metadata", len(doc[kind]))
                return self.reply(200, kind, doc[kind])
            found = registry.files.get(path)
            if found is None:
                registry.count(path, "other", 0)
                return self.reply(404, "text/plain", b"not found\n")
            file, kind = found
            try:
                size = os.path.getsize(file)
            except OSError:
                registry.count(path, "other", 0)
                return self.reply(404, "text/plain", b"not found\n")
            registry.count(path, "artifacts", size)
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(file, "rb") as f:
                self.connection.sendfile(f)

        def reply(self, status, kind, body):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if kind != "application/octet-stream":
                self.send_header("Vary", "Accept")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve(tree, port_file, latency_ms, port, log):
    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", port), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    registry = Registry(tree, base)
    if log:
        registry.log = open(log, "a")
    server.RequestHandlerClass = make_handler(registry, latency_ms / 1000.0)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(tmp, port_file)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--tree", required=True)
    g.add_argument("--packages", type=int, default=150)
    g.add_argument("--seed", type=int, default=20261128)
    s = sub.add_parser("serve")
    s.add_argument("--tree", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--latency-ms", type=float, default=20)
    s.add_argument("--log", help="append one line per request: kind, bytes, path")
    lk = sub.add_parser("locks")
    lk.add_argument("--tree", required=True)
    lk.add_argument("--base", required=True)
    lk.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "gen":
        generate(args.tree, args.packages, args.seed)
    elif args.command == "serve":
        serve(args.tree, args.port_file, args.latency_ms, args.port, args.log)
    else:
        write_locks(args.tree, args.base.rstrip("/"), args.out)


if __name__ == "__main__":
    sys.exit(main())
