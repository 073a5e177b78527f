#!/usr/bin/env python3
"""The hostile and crowded traffic of bench/serve, against one server.

    serve_load.py slowloris HOST:PORT PATH [--idle N] [--requests R]
        N connections send half a request head and then one header byte
        every few seconds (a slowloris); meanwhile one client makes R
        requests for PATH, each on a new connection. Prints the client's
        p50 / p99 / max latency in ms and how many of its requests got 200.
    serve_load.py crowd HOST:PORT PATH [--connections N]
        N connections opened at once, each sending one GET for PATH.
        Prints how many were answered 200 and how long the last one took.
    serve_load.py slow-readers HOST:PORT PATH --pid PID [--readers N]
        N clients ask for PATH (gzip accepted) and read it at 64 KiB/s; the
        server's resident memory (PID) is sampled. Prints its peak RSS in MiB
        above what it was before.

Standard library only, so it runs wherever python3 does. Output is one
line of `key=value` pairs for bench/serve to read.
"""

import argparse
import asyncio
import statistics
import time


def request(host, path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()


async def fetch_status(host, port, path, extra=""):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request(f"{host}:{port}", path, extra))
        await writer.drain()
        line = await reader.readline()
        while await reader.read(1 << 16):
            pass
        return int(line.split()[1]) if line.startswith(b"HTTP/") else 0
    finally:
        writer.close()


async def slowloris(host, port, path, idle, requests):
    holders = []
    for _ in range(idle):
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode())
            holders.append(writer)
        except OSError:
            break

    async def drip():
        while True:
            await asyncio.sleep(5)
            for writer in holders:
                try:
                    writer.write(b"X")
                except (ConnectionError, RuntimeError):
                    pass

    dripping = asyncio.ensure_future(drip())
    await asyncio.sleep(1)
    latencies, ok = [], 0
    for _ in range(requests):
        started = time.monotonic()
        try:
            status = await asyncio.wait_for(fetch_status(host, port, path), 30)
        except (OSError, asyncio.TimeoutError):
            status = 0
        latencies.append((time.monotonic() - started) * 1000)
        ok += status == 200
    dripping.cancel()
    for writer in holders:
        writer.close()
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(f"held={len(holders)} ok={ok} of={requests} p50_ms={statistics.median(latencies):.1f} "
          f"p99_ms={p99:.1f} max_ms={latencies[-1]:.1f}")


async def crowd(host, port, path, connections):
    started = time.monotonic()

    async def one():
        try:
            return await asyncio.wait_for(fetch_status(host, port, path), 30)
        except (OSError, asyncio.TimeoutError):
            return 0

    statuses = await asyncio.gather(*(one() for _ in range(connections)))
    elapsed = time.monotonic() - started
    answered = sum(1 for s in statuses if s == 200)
    refused = sum(1 for s in statuses if s == 503)
    print(f"answered={answered} refused={refused} of={connections} seconds={elapsed:.2f}")


def rss_kib(pids):
    """The resident memory of the server's processes, summed (nginx: master and workers)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                total += next((int(l.split()[1]) for l in status if l.startswith("VmRSS:")), 0)
        except FileNotFoundError:
            pass
    return total


async def slow_readers(host, port, path, pid, readers):
    before = rss_kib(pid)
    peak = before

    async def read_slowly():
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 16)
        writer.write(request(f"{host}:{port}", path, "Accept-Encoding: gzip\r\n"))
        await writer.drain()
        total = 0
        for _ in range(20):
            data = await reader.read(1 << 16)
            if not data:
                break
            total += len(data)
            await asyncio.sleep(1)
        writer.close()
        return total

    tasks = [asyncio.ensure_future(read_slowly()) for _ in range(readers)]
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.2)
    print(f"rss_before_mib={before / 1024:.1f} rss_peak_mib={peak / 1024:.1f} "
          f"growth_mib={(peak - before) / 1024:.1f} readers={readers}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["slowloris", "crowd", "slow-readers"])
    parser.add_argument("address")
    parser.add_argument("path")
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--pid", type=lambda text: [int(p) for p in text.split(",")], default=[])
    args = parser.parse_args()
    host, port = args.address.rsplit(":", 1)
    if args.mode == "slowloris":
        asyncio.run(slowloris(host, int(port), args.path, args.idle, args.requests))
    elif args.mode == "crowd":
        asyncio.run(crowd(host, int(port), args.path, args.connections))
    else:
        asyncio.run(slow_readers(host, int(port), args.path, args.pid, args.readers))


if __name__ == "__main__":
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main()
