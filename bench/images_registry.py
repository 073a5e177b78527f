"""Fixtures for bench/images: a deterministic OCI layout of N images, and a
latency proxy on loopback in front of a registry.

    python3 images_registry.py gen   --layout DIR --images N --mib M [--seed S]
    python3 images_registry.py proxy --upstream HOST:PORT --port-file FILE [--latency-ms MS]
    python3 images_registry.py check --expect HOST:PORT --registry HOST:PORT --images N

Each image `appI` is one manifest, its config and four layers of
incompressible bytes (tar archives of one file): a base layer every image
shares (a quarter of M MiB) and three of its own. The proxy forwards every
request, streaming bodies both ways, with --latency-ms added before each
one is answered, as a registry across a WAN answers.

Python 3 standard library only.
"""

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import sys
import tarfile
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
CHUNK = 1 << 20


def put_blob(layout, media, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media, "digest": "sha256:" + digest, "size": len(data)}


def layer(rng, name, size):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = 0
        tar.addfile(info, io.BytesIO(rng.randbytes(size)))
    return out.getvalue()


def generate(layout, images, mib, seed):
    rng = random.Random(seed)
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    total = mib << 20
    base = put_blob(layout, LAYER, layer(rng, "base.bin", total // 4))
    refs = []
    for i in range(images):
        own = [put_blob(layout, LAYER, layer(rng, f"app{i}-{k}.bin", total // 4)) for k in range(3)]
        config = {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in [base] + own]},
            "config": {"Labels": {"bench.image": f"app{i}"}},
        }
        config_desc = put_blob(layout, CONFIG, json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc, "layers": [base] + own}
        desc = put_blob(layout, MANIFEST, json.dumps(manifest, sort_keys=True).encode())
        desc["annotations"] = {"org.opencontainers.image.ref.name": f"app{i}"}
        refs.append(desc)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": refs}, f)


def make_proxy(upstream, latency):
    host, port = upstream.rsplit(":", 1)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            if latency:
                time.sleep(latency)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {}
            for name, value in self.headers.items():
                if name.lower() not in ("host", "connection"):
                    # Repeated headers (skopeo sends one Accept per media type) as one list.
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
            conn = http.client.HTTPConnection(host, int(port), timeout=300)
            conn.request(self.command, self.path, body=body, headers=headers)
            reply = conn.getresponse()
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                    self.send_header(name, value)
            chunked = reply.getheader("Content-Length") is None and self.command != "HEAD" and reply.status not in (204, 304)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                while True:
                    data = reply.read(CHUNK)
                    if not data:
                        break
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.wfile.write(data)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            conn.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward

    return Proxy


def proxy(upstream, port_file, latency_ms):
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_proxy(upstream, latency_ms / 1000.0))
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


def manifest_digest(registry, image):
    request = urllib.request.Request(f"http://{registry}/v2/bench/{image}/manifests/v1", headers={"Accept": MANIFEST})
    with urllib.request.urlopen(request) as reply:
        return "sha256:" + hashlib.sha256(reply.read()).hexdigest()


def check(expect, registry, images):
    """Every image's manifest in `registry` is the one in `expect`, byte for byte."""
    for i in range(images):
        got, want = manifest_digest(registry, f"app{i}"), manifest_digest(expect, f"app{i}")
        if got != want:
            sys.exit(f"bench/app{i}:v1 is {got} in {registry}, not {want} as in {expect}")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--layout", required=True)
    g.add_argument("--images", type=int, default=6)
    g.add_argument("--mib", type=int, default=48)
    g.add_argument("--seed", type=int, default=17)
    p = sub.add_parser("proxy")
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--latency-ms", type=float, default=20)
    c = sub.add_parser("check")
    c.add_argument("--expect", required=True)
    c.add_argument("--registry", required=True)
    c.add_argument("--images", type=int, required=True)
    args = parser.parse_args()
    if args.command == "gen":
        generate(args.layout, args.images, args.mib, args.seed)
    elif args.command == "proxy":
        proxy(args.upstream, args.port_file, args.latency_ms)
    else:
        check(args.expect, args.registry, args.images)


if __name__ == "__main__":
    main()
