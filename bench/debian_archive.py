"""Fake Debian archive for bench/debian: generates a deterministic archive
(one suite, one component, amd64; N packages with incompressible payloads
as .deb files, a dependency graph, Packages.xz, Translation-en.xz, a
Release with by-hash paths), and serves a tree on loopback with a latency
added to every request.

    python3 debian_archive.py gen   --tree DIR --packages N [--seed S] [--suite bench]
    python3 debian_archive.py serve --tree DIR --port-file FILE [--latency-ms MS]

gen writes DIR/debian/ (the archive, Release unsigned: bench/debian signs
it), DIR/pkgs.txt (the top-level packages) and DIR/closure.txt (their
closure over Depends, taking the first alternative, as airlock and apt do
when nothing else is installed). The .deb files are not valid archives:
apt-get download and airlock export check only their SHA256 and size.

Python 3 standard library only.
"""

import argparse
import hashlib
import lzma
import math
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

MIN_SIZE, MAX_SIZE = 20 << 10, 2 << 20
DATE = "Thu, 26 Nov 2026 00:00:00 UTC"


def payload_size(rng):
    """Log-uniform between 20 KiB and 2 MiB (as bench/clients_registry.py)."""
    return int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))


def generate(tree, count, seed, suite):
    rng = random.Random(seed)
    root = os.path.join(tree, "debian")
    names = [f"bench-pkg-{i:04d}" for i in range(count)]
    depends = []  # per package: a list of alternatives lists
    stanzas, translations = [], []
    for i, name in enumerate(names):
        version = f"1.{rng.randint(0, 30)}.{rng.randint(0, 20)}-{rng.randint(1, 3)}"
        deps = []
        if i > 0:
            # A few lower-numbered packages, mostly near ones; one in five an `a | b`.
            for j in sorted(set(rng.randrange(max(0, i - 40), i) for _ in range(rng.randint(1, 3)))):
                alt = [j]
                if rng.random() < 0.2 and j > 0:
                    alt.append(rng.randrange(0, j))
                deps.append(alt)
        depends.append(deps)
        data = rng.randbytes(payload_size(rng))
        filename = f"pool/main/b/{name}/{name}_{version}_amd64.deb"
        path = os.path.join(root, filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        description = f"airlock benchmark package {i}"
        stanza = [
            f"Package: {name}",
            f"Version: {version}",
            "Architecture: amd64",
            "Maintainer: airlock bench <bench@example.invalid>",
            f"Installed-Size: {len(data) // 1024 + 1}",
        ]
        if deps:
            stanza.append("Depends: " + ", ".join(" | ".join(names[k] for k in alt) for alt in deps))
        md5 = hashlib.md5(description.encode() + b"\n").hexdigest()
        stanza += [
            "Section: misc",
            "Priority: optional",
            f"Filename: {filename}",
            f"Size: {len(data)}",
            f"SHA256: {hashlib.sha256(data).hexdigest()}",
            f"Description: {description}",
            f"Description-md5: {md5}",
        ]
        stanzas.append("\n".join(stanza) + "\n")
        translations.append(f"Package: {name}\nDescription-md5: {md5}\nDescription-en: {description}\n")

    dists = os.path.join(root, "dists", suite)
    plain = {
        "main/binary-amd64/Packages": "\n".join(stanzas).encode(),
        "main/i18n/Translation-en": "\n".join(translations).encode(),
    }
    files = {rel + ".xz": lzma.compress(data, preset=6) for rel, data in plain.items()}
    # apt looks an index up by its uncompressed name, then fetches a
    # compressed form the Release lists; as Debian's, the plain files are
    # listed, not served.
    lines = [f" {hashlib.sha256(data).hexdigest()} {len(data):>16} {rel}" for rel, data in plain.items()]
    for rel, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        for target in (rel, os.path.join(os.path.dirname(rel), "by-hash/SHA256", digest)):
            out = os.path.join(dists, target)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "wb") as f:
                f.write(data)
        lines.append(f" {digest} {len(data):>16} {rel}")
    release = (
        f"Origin: airlock-bench\nLabel: airlock-bench\nSuite: {suite}\nCodename: {suite}\nDate: {DATE}\n"
        "Acquire-By-Hash: yes\nArchitectures: amd64\nComponents: main\nDescription: airlock benchmark archive\n"
        "SHA256:\n" + "\n".join(lines) + "\n"
    )
    with open(os.path.join(dists, "Release"), "w") as f:
        f.write(release)

    # Top level: the packages nothing depends on. Their closure, first alternatives.
    needed = {k for deps in depends for alt in deps for k in alt}
    top = [i for i in range(count) if i not in needed]
    closure, todo = set(), list(top)
    while todo:
        i = todo.pop()
        if i in closure:
            continue
        closure.add(i)
        todo.extend(alt[0] for alt in depends[i])
    with open(os.path.join(tree, "pkgs.txt"), "w") as f:
        f.write("# generated by bench/debian: the top-level packages\n" + "".join(f"{names[i]}\n" for i in top))
    with open(os.path.join(tree, "closure.txt"), "w") as f:
        f.write("".join(f"{names[i]}\n" for i in sorted(closure)))


def check(tree, names_file):
    """Exit 0 if the names in names_file (one a line) contain every top-level
    package and every Depends of each is satisfied within them: the command
    fetched a whole closure. Prints how many."""
    with lzma.open(os.path.join(tree, "debian/dists/bench/main/binary-amd64/Packages.xz"), "rt") as f:
        stanzas = [dict(line.split(": ", 1) for line in block.splitlines()) for block in f.read().split("\n\n") if block.strip()]
    depends = {st["Package"]: [[a.strip() for a in group.split("|")] for group in st.get("Depends", "").split(",") if group.strip()]
               for st in stanzas}
    with open(names_file) as f:
        got = set(f.read().split())
    with open(os.path.join(tree, "pkgs.txt")) as f:
        top = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    missing = [t for t in top if t not in got] + [
        f"{name}: {' | '.join(group)}" for name in sorted(got) for group in depends.get(name, [["(unknown package)"]])
        if not any(a in got for a in group)]
    print(f"{len(got)} packages; missing: {missing[:5] or 'none'}")
    return 1 if missing else 0


def serve(tree, port_file, latency_ms, port):
    latency = latency_ms / 1000.0
    lock = threading.Lock()
    stats = {"requests": 0, "bytes": 0, "debs": 0, "missing": 0}
    root = os.path.realpath(tree)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "airlock-bench-debian"
        disable_nagle_algorithm = True  # as in clients_registry.py

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = unquote(urlsplit(self.path).path)
            if path == "/_bench/stats":
                with lock:
                    body = repr(stats).replace("'", '"').encode()
                return self.reply(200, body)
            if latency:
                time.sleep(latency)
            file = os.path.realpath(os.path.join(root, path.lstrip("/")))
            if not file.startswith(root + os.sep) or not os.path.isfile(file):
                with lock:
                    stats["requests"] += 1
                    stats["missing"] += 1
                return self.reply(404, b"not found\n")
            size = os.path.getsize(file)
            with lock:
                stats["requests"] += 1
                stats["bytes"] += size
                stats["debs"] += file.endswith(".deb")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Last-Modified", DATE.replace("UTC", "GMT"))
            self.end_headers()
            with open(file, "rb") as f:
                self.connection.sendfile(f)

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    server = Server(("127.0.0.1", port), Handler)
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
    g.add_argument("--packages", type=int, default=300)
    g.add_argument("--seed", type=int, default=20261202)
    g.add_argument("--suite", default="bench")
    c = sub.add_parser("check")
    c.add_argument("--tree", required=True)
    c.add_argument("--names", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tree", required=True)
    s.add_argument("--port-file", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()
    if args.command == "gen":
        generate(args.tree, args.packages, args.seed, args.suite)
    elif args.command == "check":
        return check(args.tree, args.names)
    else:
        serve(args.tree, args.port_file, args.latency_ms, args.port)


if __name__ == "__main__":
    sys.exit(main())
