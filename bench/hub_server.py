"""A Hugging Face hub on loopback for bench/hub: generates a model of a few
large LFS files and some small git files (fixed seed), and serves it in the
hub's wire format with --latency-ms added to every request, for airlock
export and huggingface_hub's snapshot_download alike.

    python3 hub_server.py gen   --tree DIR --mib N [--files K] [--seed S]
    python3 hub_server.py serve --tree DIR --port-file FILE [--latency-ms MS]
    python3 hub_server.py check --tree DIR --snapshot DIR   (every file there, every byte right)

Routes: /api/models/REPO/revision/REV (the model info with siblings),
/api/models/REPO/tree/REV (recursive, one page), and /REPO/resolve/REV/PATH
(GET and HEAD) with the headers the hub client checks: X-Repo-Commit, a
quoted ETag (the git blob id, or the LFS SHA-256 as X-Linked-Etag with
X-Linked-Size), Content-Length and Range. LFS files answer 302 to /cdn/SHA,
as the hub's LFS storage does. /_bench/stats counts requests and bytes.

Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

REPO = "bench/model"
COMMIT = "b3c4a1f00d5eedfacecafe0123456789abcdef01"
CHUNK = 1 << 20


def git_blob_id(path):
    size = os.path.getsize(path)
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def generate(tree, mib, files, seed):
    """`files` safetensors shards of `mib` MiB in all (incompressible), and
    the small JSON files a model repository has, in tree/files/; the tree
    listing with every digest in tree/listing.json."""
    rng = random.Random(seed)
    root = os.path.join(tree, "files")
    os.makedirs(root, exist_ok=True)
    small = {
        "config.json": json.dumps({"model_type": "bench", "hidden_size": 4096, "layers": 32}, indent=2),
        "tokenizer_config.json": json.dumps({"model_max_length": 4096}),
        "generation_config.json": json.dumps({"do_sample": True, "temperature": 0.7}),
        ".gitattributes": "*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": "# bench model\n\nGenerated for bench/hub.\n",
    }
    for name, text in small.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    per = (mib << 20) // files
    for i in range(files):
        name = f"model-{i + 1:05d}-of-{files:05d}.safetensors"
        with open(os.path.join(root, name), "wb") as f:
            left = per
            while left:
                n = min(left, CHUNK)
                f.write(rng.randbytes(n))
                left -= n
    listing = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        item = {"type": "file", "path": name, "size": os.path.getsize(path)}
        if name.endswith(".safetensors"):
            item["lfs"] = {"oid": sha256_of(path), "size": item["size"], "pointerSize": 134}
            item["oid"] = hashlib.sha1(name.encode()).hexdigest()  # the pointer's id; not the content's
        else:
            item["oid"] = git_blob_id(path)
        listing.append(item)
    with open(os.path.join(tree, "listing.json"), "w") as f:
        json.dump(listing, f)


def make_handler(tree, latency):
    listing = json.load(open(os.path.join(tree, "listing.json")))
    by_path = {item["path"]: item for item in listing}
    by_sha = {item["lfs"]["oid"]: item for item in listing if "lfs" in item}
    stats = {"requests": 0, "bytes": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, headers, body=b"", path=None, length=None):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if path is None:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            sent = 0
            if path is None:
                self.wfile.write(body)
                sent = len(body)
            else:
                start, count = length
                with open(path, "rb") as f:
                    f.seek(start)
                    while count:
                        block = f.read(min(count, CHUNK))
                        if not block:
                            break
                        self.wfile.write(block)
                        count -= len(block)
                        sent += len(block)
            with lock:
                stats["bytes"] += sent

        def json(self, value, extra=None):
            body = json.dumps(value).encode()
            self.answer(200, {"Content-Type": "application/json", **(extra or {})}, body)

        def file(self, item):
            path = os.path.join(tree, "files", item["path"])
            size = item["size"]
            start, end = 0, size - 1
            status = 200
            headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", "X-Repo-Commit": COMMIT}
            if "lfs" in item:
                headers["ETag"] = f'"{item["lfs"]["oid"]}"'
            else:
                headers["ETag"] = f'"{item["oid"]}"'
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                a, _, b = rng[6:].partition("-")
                start = int(a) if a else 0
                end = min(int(b), size - 1) if b else size - 1
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            headers["Content-Length"] = str(end - start + 1)
            self.answer(status, headers, path=path, length=(start, end - start + 1))

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            if latency:
                time.sleep(latency)
            with lock:
                stats["requests"] += 1
            url = urlsplit(self.path)
            path = unquote(url.path)
            api = f"/api/models/{REPO}/"
            resolve_prefixes = [f"/{REPO}/resolve/{COMMIT}/", f"/{REPO}/resolve/main/"]
            if path == "/_bench/stats":
                return self.json(stats)
            if path.startswith(api + "revision/"):
                siblings = [{"rfilename": i["path"]} for i in listing]
                return self.json({"id": REPO, "modelId": REPO, "sha": COMMIT, "siblings": siblings, "private": False})
            if path.startswith(api + "tree/"):
                return self.json(listing)
            if path == f"/api/models/{REPO}":
                return self.json({"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": i["path"]} for i in listing]})
            for prefix in resolve_prefixes:
                if path.startswith(prefix):
                    item = by_path.get(path[len(prefix):])
                    if item is None:
                        return self.answer(404, {"Content-Type": "application/json", "X-Error-Code": "EntryNotFound"}, b"{}")
                    if "lfs" in item:
                        # As the hub does: the resolve answer names the LFS object; the bytes come from the CDN.
                        host = self.headers.get("Host", "127.0.0.1")
                        return self.answer(302, {
                            "Location": f"http://{host}/cdn/{item['lfs']['oid']}",
                            "X-Repo-Commit": COMMIT,
                            "X-Linked-Etag": f'"{item["lfs"]["oid"]}"',
                            "X-Linked-Size": str(item["size"]),
                            "ETag": f'"{item["oid"]}"',
                        })
                    return self.file(item)
            if path.startswith("/cdn/"):
                item = by_sha.get(path[5:])
                if item is None:
                    return self.answer(404, {}, b"")
                return self.file(item)
            self.answer(404, {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"}, b"{}")

    return Handler


def serve(tree, port_file, latency_ms):
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(tree, latency_ms / 1000.0))
    server.daemon_threads = True
    with open(port_file + ".part", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".part", port_file)
    server.serve_forever()


def check(tree, snapshot):
    """Exit 1 unless `snapshot` holds exactly the model's files with their bytes."""
    listing = json.load(open(os.path.join(tree, "listing.json")))
    got = sorted(os.listdir(snapshot))
    want = sorted(i["path"] for i in listing)
    if got != want:
        raise SystemExit(f"the snapshot holds {got}, not {want}")
    for item in listing:
        path = os.path.join(snapshot, item["path"])
        if sha256_of(path) != sha256_of(os.path.join(tree, "files", item["path"])):
            raise SystemExit(f"{item['path']} differs")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--tree", required=True)
    g.add_argument("--mib", type=int, default=1024)
    g.add_argument("--files", type=int, default=4)
    g.add_argument("--seed", type=int, default=7)
    s = sub.add_parser("serve")
    s.add_argument("--tree", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--latency-ms", type=float, default=20)
    c = sub.add_parser("check")
    c.add_argument("--tree", required=True)
    c.add_argument("--snapshot", required=True)
    args = p.parse_args()
    if args.cmd == "check":
        check(args.tree, args.snapshot)
    elif args.cmd == "gen":
        generate(args.tree, args.mib, args.files, args.seed)
    else:
        serve(args.tree, args.port_file, args.latency_ms)


if __name__ == "__main__":
    main()
