"""Benchmark: a class of 64 students hammering one lab.

Run from the project root::

    .venv/bin/python bench/classroom.py [--clients 64] [--seconds 10]

The lab runs as a teacher would run it (``python -m helpers.lab --json``, its own
process). ``--clients`` simulated students each repeat, for ``--seconds``: open a TCP
connection, do a full TLS handshake with certificate and host-name verification, send
``GET /`` and read the whole response. The students live in two worker processes (one
per core, so the client side is not limited by one interpreter's GIL) with their
threads spread evenly, and they rotate over the lab's scenarios that a default client
accepts.

Printed: handshakes per second, failures (goal 0), and latency percentiles of one
handshake + GET (goal p99 < 250 ms on a 2-core machine). For reference the same run
measures one lone client first, so the ratio "p99 under load / lone p50" shows what the
crowd costs.

Not a test: the numbers depend on the machine. Only loopback is used; the lab process
is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

SCENARIOS = ("valid", "wildcard", "ip-san", "tls-1.2-only", "revoked", "no-san")


def one_visit(ctx: ssl.SSLContext, host: str, port: int) -> None:
    """Handshake + GET / + read to the end, as a browser tab or requests.get would."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with ctx.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response {data[:40]!r}")


def student(targets, cafile: str, stop_at: float, offset: int, out: list) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    latencies, failures, i = [], 0, offset
    while time.perf_counter() < stop_at:
        host, port = targets[i % len(targets)]
        i += 1
        t0 = time.perf_counter()
        try:
            one_visit(ctx, host, port)
            latencies.append(time.perf_counter() - t0)
        except (OSError, RuntimeError):
            failures += 1
    out.append((latencies, failures))


def worker(targets, cafile: str, threads: int, first: int, seconds: float, queue) -> None:
    out: list = []
    stop_at = time.perf_counter() + seconds
    pool = [
        threading.Thread(target=student, args=(targets, cafile, stop_at, first + n, out))
        for n in range(threads)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put(([x for lat, _ in out for x in lat], sum(f for _, f in out)))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()

    lab = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        info = json.loads(lab.stdout.readline())
        targets = [
            (info["scenarios"][name]["host"], info["scenarios"][name]["port"]) for name in SCENARIOS
        ]
        cafile = info["ca_bundle"]

        # Reference: one lone client, same visit, same run.
        ctx = ssl.create_default_context(cafile=cafile)
        lone = []
        for i in range(100):
            t0 = time.perf_counter()
            one_visit(ctx, *targets[i % len(targets)])
            lone.append(time.perf_counter() - t0)
        lone_p50 = statistics.median(lone)

        queue: mp.Queue = mp.Queue()
        per_proc = [
            args.clients // args.procs + (n < args.clients % args.procs) for n in range(args.procs)
        ]
        procs = [
            mp.Process(
                target=worker, args=(targets, cafile, k, sum(per_proc[:n]), args.seconds, queue)
            )
            for n, k in enumerate(per_proc)
        ]
        started = time.perf_counter()
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
    finally:
        lab.send_signal(signal.SIGTERM)  # the lab process we started
        try:
            lab.wait(timeout=10)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()

    latencies = [x for lat, _ in results for x in lat]
    failures = sum(f for _, f in results)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(
        f"clients: {args.clients} in {args.procs} processes, {args.seconds:.0f} s, cores: {os.cpu_count()}"
    )
    print(
        f"visits (handshake + GET): {len(latencies)}  ->  {len(latencies) / elapsed:.0f} per second"
    )
    print(f"failures: {failures}  (goal 0)")
    print(
        f"latency p50: {p50 * 1000:.1f} ms   p99: {p99 * 1000:.1f} ms   max: {max(latencies) * 1000:.1f} ms  (goal p99 < 250 ms)"
    )
    print(
        f"lone client p50: {lone_p50 * 1000:.2f} ms   ratio p99 under load / lone p50: {p99 / lone_p50:.1f}"
    )
    ok = failures == 0 and p99 < 0.250
    print("goal met" if ok else "goal NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
