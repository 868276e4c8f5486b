"""Benchmark: the lab's TLS 1.3 handshake rate against ``openssl s_server``, and its start-up time.

Run from the project root::

    .venv/bin/python bench/handshakes.py [--seconds 3] [--rounds 3]

1. Handshakes per second: the same Python client loop (fresh TCP connection, full TLS 1.3
   handshake with certificate and host-name verification, close) against

   * the lab's ``valid`` server (``python -m helpers.lab --json`` in its own process), and
   * ``openssl s_server -www`` with the very same certificate chain and key,

   alternating rounds so that both see the same machine load. Reports the ratio
   lab / s_server (goal >= 1.0: the lab is not the bottleneck of a lesson).
2. Cold start: ``Lab(directory=<empty>).start()`` (build every certificate + listen on
   every port), and warm start (certificates from the cache). Goal <= 0.3 s.

Not a test: numbers depend on the machine. Only loopback is used; every process the
script starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.lab import Lab
from helpers.lab.build import ensure

ROOT = Path(__file__).resolve().parent.parent

HOST = "valid.lab.localhost"


def handshakes_per_second(port: int, cafile: Path, seconds: float) -> float:
    """Full handshakes per second from one client thread, verification on."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    count = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            assert tls.version() == "TLSv1.3"
        count += 1
    return count / (time.perf_counter() - start)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def start_times(repeats: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            lab = Lab(directory=tmp).start()
            cold.append(time.perf_counter() - t)
            lab.stop()
            for _ in range(2):
                t = time.perf_counter()
                lab = Lab(directory=tmp).start()
                warm.append(time.perf_counter() - t)
                lab.stop()
    return cold, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    cold, warm = start_times(3)
    print(
        f"cold start (build certificates + listen): median {statistics.median(cold) * 1000:.0f} ms "
        f"(runs: {', '.join(f'{x * 1000:.0f}' for x in cold)})"
    )
    print(
        f"warm start (cached certificates + listen): median {statistics.median(warm) * 1000:.0f} ms "
        f"(runs: {', '.join(f'{x * 1000:.0f}' for x in warm)})"
    )

    with tempfile.TemporaryDirectory() as tmp:
        files = ensure(tmp)
        chain, key = files.chains["valid"], files.keys["valid"]
        lab = subprocess.Popen(
            [sys.executable, "-m", "helpers.lab", "--json", "--dir", tmp],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        s_port = _free_port()
        s_server = subprocess.Popen(
            [
                "openssl",
                "s_server",
                "-accept",
                f"127.0.0.1:{s_port}",
                "-www",
                "-quiet",
                "-cert",
                str(chain),
                "-cert_chain",
                str(chain),
                "-key",
                str(key),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert lab.stdout is not None
            info = json.loads(lab.stdout.readline())
            lab_port = info["scenarios"]["valid"]["port"]
            _wait_listening(s_port, s_server)
            ca = files.ca_bundle
            handshakes_per_second(lab_port, ca, 0.3)  # warm-up both
            handshakes_per_second(s_port, ca, 0.3)
            lab_rates, s_rates = [], []
            for _ in range(args.rounds):
                lab_rates.append(handshakes_per_second(lab_port, ca, args.seconds))
                s_rates.append(handshakes_per_second(s_port, ca, args.seconds))
        finally:
            _stop(lab)
            _stop(s_server)
            if lab.stdout is not None:
                lab.stdout.close()
    lab_rate, s_rate = statistics.median(lab_rates), statistics.median(s_rates)
    print(
        f"lab 'valid' server : {lab_rate:7.0f} handshakes/s  (rounds: {', '.join(f'{r:.0f}' for r in lab_rates)})"
    )
    print(
        f"openssl s_server   : {s_rate:7.0f} handshakes/s  (rounds: {', '.join(f'{r:.0f}' for r in s_rates)})"
    )
    print(f"ratio lab / s_server: {lab_rate / s_rate:.2f}  (goal >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
